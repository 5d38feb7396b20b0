"""English helpers: articles, plurals, number words, agreement, capitalisation."""

from __future__ import annotations

import pytest

from jax_spatial.qa import grammar


@pytest.mark.parametrize(
    "singular, plural",
    [
        ("chair", "chairs"),
        ("bus", "buses"),
        ("box", "boxes"),
        ("glass", "glasses"),
        ("bench", "benches"),
        ("dish", "dishes"),
        ("shelf", "shelves"),
        ("bookshelf", "bookshelves"),
        ("knife", "knives"),
        ("person", "people"),
        ("woman", "women"),
        ("child", "children"),
        ("mouse", "mice"),
        ("computer mouse", "computer mice"),
        ("sofa", "sofas"),
        ("curtain", "curtains"),
        ("shower curtain", "shower curtains"),
        ("night stand", "night stands"),
        ("garbage bin", "garbage bins"),
        ("trash can", "trash cans"),
        ("battery", "batteries"),
        ("toy", "toys"),
        ("key", "keys"),
        ("potato", "potatoes"),
        ("piano", "pianos"),
        ("roof", "roofs"),
        ("safe", "safes"),
        ("cactus", "cacti"),
        ("lens", "lenses"),
        ("mattress", "mattresses"),
        ("quiz", "quizzes"),
        ("fish", "fish"),
        ("sheep", "sheep"),
        ("t-shirt", "t-shirts"),
        ("TV", "TVs"),
        ("pair of shoes", "pairs of shoes"),
        ("bottle of water", "bottles of water"),
        ("person sitting", "people sitting"),
        ("office building", "office buildings"),
        ("wall painting", "wall paintings"),
        ("furniture", "pieces of furniture"),
        ("office furniture", "pieces of office furniture"),
        ("clothes", "clothes"),
        ("glasses", "glasses"),
        ("misc", "miscellaneous objects"),
        ("kitchen_cabinet", "kitchen cabinets"),
    ],
)
def test_pluralize(singular, plural):
    assert grammar.pluralize(singular) == plural


@pytest.mark.parametrize(
    "phrase, article",
    [
        ("chair", "a"),
        ("apple", "an"),
        ("umbrella", "an"),
        ("orange", "an"),
        ("hour", "an"),
        ("honest man", "an"),
        ("heir", "an"),
        ("unit", "a"),
        ("uniform", "a"),
        ("utensil", "a"),
        ("urinal", "a"),
        ("ukulele", "a"),
        ("urn", "an"),
        ("unopened box", "an"),
        ("unidentified object", "an"),
        ("one-way sign", "a"),
        ("European car", "a"),
        ("heater", "a"),
        ("LED lamp", "an"),
        ("SUV", "an"),
        ("TV", "a"),
        ("USB stick", "a"),
        ("x-ray", "an"),
        ("T-shirt", "a"),
        ("U-turn sign", "a"),
        ("8-ball", "an"),
        ("11", "an"),
        ("18", "an"),
        ("80", "an"),
        ("110", "a"),
        ("3", "a"),
    ],
)
def test_indefinite_article(phrase, article):
    assert grammar.indefinite_article(phrase) == article


def test_with_indefinite_handles_mass_and_plural_forms():
    assert grammar.with_indefinite("umbrella") == "an umbrella"
    assert grammar.with_indefinite("furniture") == "a piece of furniture"
    assert grammar.with_indefinite("clothes") == "some clothes"
    assert grammar.with_indefinite("misc") == "a miscellaneous object"


@pytest.mark.parametrize(
    "n, word", [(0, "zero"), (1, "one"), (3, "three"), (12, "twelve"), (20, "twenty"),
                (21, "twenty-one"), (40, "forty"), (99, "ninety-nine"), (100, "100")],
)  # fmt: skip
def test_number_word(n, word):
    assert grammar.number_word(n) == word


def test_count_phrase():
    assert grammar.count_phrase(3, "chair") == "three chairs"
    assert grammar.count_phrase(1, "chair") == "one chair"
    assert grammar.count_phrase(2, "person") == "two people"
    assert grammar.count_phrase(1, "person") == "one person"
    assert grammar.count_phrase(4, "bookshelf") == "four bookshelves"
    assert grammar.count_phrase(0, "bus") == "no buses"
    assert grammar.count_phrase(2, "furniture") == "two pieces of furniture"


def test_agreement():
    assert grammar.be("the chair") == "is"
    assert grammar.be("the chairs") == "are"
    assert grammar.be("the clothes") == "are"
    assert grammar.be("the bus") == "is"
    assert grammar.be("the glass") == "is"
    assert grammar.be("the people sitting") == "are"
    assert grammar.be("the pair of shoes") == "is"
    assert grammar.be("the TV") == "is"
    assert grammar.be(1) == "is" and grammar.be(2) == "are" and grammar.be(0) == "are"
    assert not grammar.is_plural("lens") and not grammar.is_plural("mattress")
    assert grammar.is_plural("books") and grammar.is_plural("people")


def test_definite_and_capitalisation():
    assert grammar.definite("chair") == "the chair"
    assert grammar.definite("The red chair") == "the red chair"
    assert grammar.definite("a  wooden   table") == "the wooden table"
    assert grammar.definite("misc") == "the miscellaneous object"
    assert grammar.capitalize_first("the TV is on") == "The TV is on"
    assert grammar.capitalize_first("(the chair)") == "(The chair)"
    assert grammar.capitalize_sentences("yes. the chair is left? no! it is.") == (
        "Yes. The chair is left? No! It is."
    )
