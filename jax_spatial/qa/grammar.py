"""English helpers for filling question templates: articles, plurals, number words, agreement.

Category names arrive lower case with spaces ("night stand", "garbage bin", "person sitting");
captions are free noun phrases ("red chair with a cushion", "pair of shoes"). Everything here
works on the phrase's *head noun*: the last word before the first postmodifier (a preposition,
a relative pronoun or a listed participle), so "pair of shoes" inflects "pair" and
"person sitting" inflects "person".

The rules are small tables plus the regular English endings; they cover the nouns of the
indoor and driving datasets the engine reads, and `tests/test_grammar.py` pins them.
"""

from __future__ import annotations

import re

# Words that end a noun phrase's head: what follows them modifies the head.
_POSTMODIFIERS = frozenset(
    "of with on in at near next by from under over behind beside between against for to "
    "that which who whose without inside outside along across above below atop".split()
)
# Participles that start a postmodifier ("person sitting", "man riding a bike"). Listed, not
# guessed from "-ing": "office building" and "wall painting" end in nouns.
_PARTICIPLES = frozenset(
    "sitting standing walking running lying riding holding wearing hanging leaning parked "
    "moving sleeping cycling carrying pushing talking waiting mounted attached placed".split()
)
# Irregular singular -> plural, matched on the whole head noun.
_IRREGULAR = {
    "person": "people",
    "man": "men",
    "woman": "women",
    "child": "children",
    "foot": "feet",
    "tooth": "teeth",
    "mouse": "mice",
    "goose": "geese",
    "ox": "oxen",
    "die": "dice",
    "cactus": "cacti",
    "fungus": "fungi",
    "radius": "radii",
    "axis": "axes",
    "index": "indices",
    "vertex": "vertices",
    "matrix": "matrices",
    "crisis": "crises",
    "datum": "data",
    "medium": "media",
    "snowman": "snowmen",
    "fireman": "firemen",
    "policeman": "policemen",
    "mailman": "mailmen",
    "cameraman": "cameramen",
    "salesperson": "salespeople",
    "elf": "elves",
    "life": "lives",
    "hoof": "hooves",
    "dwarf": "dwarves",
    "sheaf": "sheaves",
}
# Compounds inherit these endings ("bookshelf" -> "bookshelves", "penknife" -> "penknives");
# only endings that no unrelated word shares are listed ("human" must not become "humen").
_IRREGULAR_SUFFIXES = (
    ("shelf", "shelves"),
    ("knife", "knives"),
    ("leaf", "leaves"),
    ("loaf", "loaves"),
    ("wife", "wives"),
    ("half", "halves"),
    ("wolf", "wolves"),
    ("scarf", "scarves"),
    ("thief", "thieves"),
    ("calf", "calves"),
    ("woman", "women"),
)
# Same form in singular and plural.
_UNCHANGED = frozenset(
    "sheep deer fish moose bison aircraft spacecraft series species offspring swine "
    "salmon trout shrimp squid chassis news".split()
)
# Nouns plural in form, including ones that name one thing ("clothes", "glasses" the
# spectacles) or a bunch ("books" as one annotated pile): they take "are" and "some" and do
# not inflect again.
_PLURAL_FORM = frozenset(
    "clothes pants trousers jeans shorts scissors glasses spectacles sunglasses goggles "
    "headphones earphones binoculars pliers tongs tweezers stairs blinds".split()
)
# Mass nouns, counted through a unit noun: "two pieces of office furniture".
_MASS = {
    "furniture": ("piece", "pieces"),
    "luggage": ("piece", "pieces"),
    "equipment": ("piece", "pieces"),
    "clothing": ("item", "items"),
    "laundry": ("pile", "piles"),
    "garbage": ("pile", "piles"),
    "trash": ("pile", "piles"),
}
# Dataset labels that are not English noun phrases, and what to say instead.
_RENAME = {
    "misc": "miscellaneous object",
    "otherprop": "object",
    "other prop": "object",
    "otherfurniture": "piece of furniture",
    "other furniture": "piece of furniture",
}
# Words ending in "s" that are singular, and take "-es".
_SINGULAR_S = frozenset(
    "bus gas lens canvas atlas bias iris octopus virus walrus campus circus census bonus "
    "status apparatus hippopotamus thermos mattress dress compass boss grass class glass "
    "pass brass moss cross press kiss abacus".split()
)
# "-o" nouns that take "-es".
_O_ES = frozenset("potato tomato hero echo veto torpedo mosquito volcano buffalo domino".split())
# "-ch" pronounced /k/ takes a plain "-s".
_CH_K = frozenset("stomach epoch monarch patriarch matriarch".split())

_SMALL_NUMBERS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty".split()
)
_TENS = {2: "twenty", 3: "thirty", 4: "forty", 5: "fifty", 6: "sixty", 7: "seventy",
         8: "eighty", 9: "ninety"}  # fmt: skip

# Initial strings read with a vowel sound although spelled with a consonant ("an hour",
# "an honest", "an heir"), or against the "u" rule below ("an unidentified").
_AN_BEFORE = ("hour", "honest", "honor", "honour", "heir", "unid", "unimp", "unin")
# Initial strings read with a consonant sound although spelled with a vowel ("a unit",
# "a European", "a one-way sign", "a utensil").
_A_BEFORE = (
    "one", "once", "uni", "use", "usu", "uten", "uter", "uti", "ukul", "ure", "uri", "uro",
    "eu", "ewe", "ufo", "ubiq",
)  # fmt: skip
# Letters whose spoken name begins with a vowel sound: "an LED", "an SUV", "an HDMI cable".
_VOWEL_SOUND_LETTERS = frozenset("AEFHILMNORSX")
# Digit strings read with a vowel sound: "an 8", "an 11", "an 18", "an 80", "an 800".
_VOWEL_SOUND_NUMBER = re.compile(r"^(8|11|18|8\d|8\d\d|11\d\d|18\d\d)(\D|$)")
_DETERMINERS = ("the ", "a ", "an ", "this ", "that ")


def display_noun(phrase: str) -> str:
    """A dataset label made readable: whitespace collapsed, "misc" -> "miscellaneous object"."""
    phrase = " ".join(str(phrase).replace("_", " ").split())
    return _RENAME.get(phrase.lower(), phrase)


def _split_head(phrase: str) -> tuple[str, str, str]:
    """`"pair of shoes"` -> `("", "pair", " of shoes")`; `"red chair"` -> `("red ", "chair", "")`.

    Returns (the words before the head with a trailing space, the head, the rest with a
    leading space).
    """
    words = phrase.split(" ")
    end = len(words)
    for k, word in enumerate(words[1:], start=1):
        bare = word.lower().strip(",")
        if bare in _POSTMODIFIERS or bare in _PARTICIPLES:
            end = k
            break
    head = words[end - 1]
    before = " ".join(words[: end - 1])
    after = " ".join(words[end:])
    return (before + " " if before else ""), head, (" " + after if after else "")


def _match_case(template: str, word: str) -> str:
    """Gives `word` the capitalisation of `template` (for irregular replacements)."""
    if template.isupper() and len(template) > 1:
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def _pluralize_word(word: str) -> str:
    """Plural of one noun ("box" -> "boxes", "shelf" -> "shelves")."""
    # Hyphenated compounds inflect the last part ("t-shirt" -> "t-shirts").
    if "-" in word.strip("-"):
        stem, _, last = word.rpartition("-")
        return f"{stem}-{_pluralize_word(last)}"
    low = word.lower()
    if not low:
        return word
    if word.isupper() and len(word) > 1:  # acronyms: "TV" -> "TVs"
        return word + "s"
    if low in _IRREGULAR:
        return _match_case(word, _IRREGULAR[low])
    if low in _UNCHANGED or low in _PLURAL_FORM or low in _IRREGULAR.values():
        return word
    for singular, plural in _IRREGULAR_SUFFIXES:
        if low.endswith(singular):
            return word[: len(word) - len(singular)] + plural
    if low in _SINGULAR_S:
        return word + "es"
    if low.endswith("is"):  # Greek "-is" -> "-es" ("basis" -> "bases")
        return word[:-2] + "es"
    if low.endswith("z"):
        # "quiz" -> "quizzes" after a single vowel; "waltz" -> "waltzes".
        return word + ("zes" if len(low) > 1 and low[-2] in "aeiou" else "es")
    if low.endswith(("ss", "us", "sh", "x")):
        return word + "es"
    if low.endswith("ch"):
        return word + ("s" if low in _CH_K else "es")
    if low.endswith("s"):
        # Spelled like a plural and not a known singular: already plural ("chairs").
        return word
    if low.endswith("y") and len(low) > 1 and low[-2] not in "aeiou":
        return word[:-1] + "ies"
    if low.endswith("o") and low in _O_ES:
        return word + "es"
    # Other "-f"/"-fe" nouns keep the f ("roof" -> "roofs", "safe" -> "safes"); those that
    # change are in the irregular tables.
    return word + "s"


def pluralize(phrase: str) -> str:
    """Plural of a noun phrase, inflecting its head noun.

    "bus" -> "buses", "shelf" -> "shelves", "person" -> "people", "night stand" ->
    "night stands", "pair of shoes" -> "pairs of shoes", "office furniture" ->
    "pieces of office furniture", "clothes" -> "clothes".
    """
    phrase = display_noun(phrase)
    before, head, after = _split_head(phrase)
    if head.lower() in _MASS:
        return f"{_MASS[head.lower()][1]} of {phrase}"
    return before + _pluralize_word(head) + after


def singular_unit(phrase: str) -> str:
    """The countable singular of a phrase: mass nouns get their unit ("piece of furniture")."""
    phrase = display_noun(phrase)
    _, head, _ = _split_head(phrase)
    if head.lower() in _MASS:
        return f"{_MASS[head.lower()][0]} of {phrase}"
    return phrase


def is_plural(phrase: str) -> bool:
    """Whether a noun phrase is plural in form, so it takes "are" ("the clothes are")."""
    phrase = display_noun(phrase)
    if not phrase:
        return False
    _, head, _ = _split_head(phrase)
    low = head.lower()
    if head.isupper() and len(head) > 1:
        return False
    if low in _PLURAL_FORM or low in _IRREGULAR.values():
        return True
    if low in _IRREGULAR or low in _UNCHANGED or low in _SINGULAR_S or low in _MASS:
        return False
    if low.endswith(("ss", "us", "is", "'s")):
        return False
    return low.endswith("s") and len(low) > 2


def indefinite_article(phrase: str) -> str:
    """ "a" or "an" for a phrase, by the sound of its first word.

    "an apple", "an hour", "an umbrella", "an LED", "an 8-ball", "an x-ray" vs "a unit",
    "a one-way sign", "a European", "a TV", "a USB stick", "a T-shirt".
    """
    words = phrase.strip().split(" ")
    first = words[0] if words else ""
    if not first:
        return "a"
    if first[0].isdigit():
        return "an" if _VOWEL_SOUND_NUMBER.match(first) else "a"
    letters = first.split("-")[0]
    # A single letter ("x-ray", "U-turn") or an acronym read letter by letter ("LED", "TV").
    if letters.isalpha() and (len(letters) == 1 or (letters.isupper() and len(first) > 1)):
        return "an" if letters[0].upper() in _VOWEL_SOUND_LETTERS else "a"
    low = first.lower()
    if low.startswith(_AN_BEFORE):
        return "an"
    if low.startswith(_A_BEFORE):
        return "a"
    return "an" if low[0] in "aeiou" else "a"


def with_indefinite(phrase: str) -> str:
    """ "a chair", "an umbrella", "a piece of furniture", "some clothes"."""
    phrase = singular_unit(phrase)
    if is_plural(phrase):
        return f"some {phrase}"
    return f"{indefinite_article(phrase)} {phrase}"


def definite(phrase: str) -> str:
    """ "the <phrase>" for a unique reference; a leading article in a caption is replaced."""
    phrase = display_noun(phrase)
    low = phrase.lower()
    for det in _DETERMINERS:
        if low.startswith(det):
            phrase = phrase[len(det) :]
            break
    return f"the {phrase}"


def number_word(n: int) -> str:
    """ "three" for 3; words up to ninety-nine, digits beyond (and for negatives)."""
    n = int(n)
    if 0 <= n <= 20:
        return _SMALL_NUMBERS[n]
    if 20 < n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f"-{_SMALL_NUMBERS[ones]}" if ones else "")
    return str(n)


def count_phrase(n: int, noun: str) -> str:
    """ "one chair", "three chairs", "two people", "no chairs", "one piece of furniture"."""
    if n == 0:
        return f"no {pluralize(noun)}"
    if n == 1:
        return f"one {singular_unit(noun)}"
    return f"{number_word(n)} {pluralize(noun)}"


def be(subject: int | str) -> str:
    """ "is" or "are": for a count (1 -> "is") or a noun phrase ("the clothes" -> "are")."""
    if isinstance(subject, int):
        return "is" if subject == 1 else "are"
    text = str(subject)
    low = text.lower()
    for det in _DETERMINERS:
        if low.startswith(det):
            text = text[len(det) :]
            break
    return "are" if is_plural(text) else "is"


def capitalize_first(text: str) -> str:
    """Upper-cases the first letter, leaving the rest alone ("the TV is" -> "The TV is")."""
    for k, ch in enumerate(text):
        if ch.isalpha():
            return text[:k] + ch.upper() + text[k + 1 :]
        if not (ch.isspace() or ch in "\"'(["):
            return text
    return text


_SENTENCE_START = re.compile(r"([.?!]\s+)([a-z])")


def capitalize_sentences(text: str) -> str:
    """Capitalises the first letter of each sentence ("yes. the chair" -> "Yes. The chair").

    A sentence starts after ". ", "? " or "! "; templates hold no abbreviations that would
    fool this.
    """
    text = capitalize_first(text)
    return _SENTENCE_START.sub(lambda m: m.group(1) + m.group(2).upper(), text)


__all__ = [
    "be",
    "capitalize_first",
    "capitalize_sentences",
    "count_phrase",
    "definite",
    "display_noun",
    "indefinite_article",
    "is_plural",
    "number_word",
    "pluralize",
    "singular_unit",
    "with_indefinite",
]
