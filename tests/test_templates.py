"""Template registry and phrasing: coverage, rendering, grammar, truth to the relation."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

from jax_spatial.observe import FrameObservation
from jax_spatial.qa import grammar
from jax_spatial.qa import templates as T
from jax_spatial.qa.phrase import frame_rng, phrase_batch, phrase_frame
from jax_spatial.qa.select import KIND_MULTIPLE_CHOICE, KIND_YES_NO, Selection
from jax_spatial.relations.types import FAMILIES, POSITION_FAMILIES, RELATIONS, SIZE_FAMILIES

SAMPLE_OBJECTS = ("chair", "table", "umbrella", "clothes", "TV", "person sitting", "bookshelf")
# Words that say what each relation word means; every predicate/comparative of that
# relation must contain one of them, and none of its opposite's.
MEANING = {
    "left_of": ("left",),
    "right_of": ("right",),
    "above": ("above", "higher"),
    "below": ("below", "lower"),
    "in_front_of": ("in front", "closer", "nearer"),
    "behind": ("behind", "farther"),
    "bigger_than": ("bigger", "larger"),
    "smaller_than": ("smaller",),
    "taller_than": ("taller",),
    "shorter_than": ("shorter",),
    "wider_than": ("wider",),
    "thinner_than": ("narrower", "thinner"),
}
POSITION_WORDS = ("left", "right", "above", "below", "in front", "behind", "higher", "lower")
SIZE_WORDS = ("bigger", "larger", "smaller", "taller", "shorter", "wider", "narrower", "size")


def well_formed(text: str) -> None:
    assert "{" not in text and "}" not in text, text
    assert "  " not in text and " ," not in text and " ?" not in text and " ." not in text, text
    assert text.lstrip("(")[0].isupper(), text
    assert text.endswith(("?", ".")), text
    assert not re.search(r"\b(a|an) (a|an|the)\b", text), text
    assert not re.search(r"\ba [aeiou]", text.replace("a one", "").replace("a unit", "")), text
    assert not re.search(r"\bthe the\b", text, re.IGNORECASE), text


def pair_slots(a, b, pred, true_pred):
    an, bn = grammar.definite(a), grammar.definite(b)
    return dict(a=an, b=bn, is_a=grammar.be(an), pred=pred, true_pred=true_pred)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("kind", ["yes_no", "multiple_choice"])
def test_at_least_eight_phrasings(family, kind):
    group = T.templates(T.pair_group(family, kind))
    assert len(group) >= 8
    assert len({t.text for t in group}) == len(group), "phrasings are distinct"


def test_existence_and_counting_have_eight():
    assert len(T.templates("existence/position")) >= 8
    assert len(T.templates("existence/size")) >= 8
    assert len(T.templates("counting")) >= 8


def test_ids_unique_and_resolvable():
    ids = [t.id for g in T.groups() for t in T.templates(g)]
    assert len(ids) == len(set(ids))
    for template_id in ids:
        assert T.get(template_id).id == template_id


@pytest.mark.parametrize("family", FAMILIES)
def test_lexicon_is_true_to_relation(family):
    for direction, relation in enumerate(RELATIONS[family]):
        opposite = RELATIONS[family][1 - direction]
        for words in list(T.PREDICATES[family]) + list(T.COMPARATIVES[family]):
            word = words[direction]
            assert any(m in word for m in MEANING[relation]), (relation, word)
            assert not any(m in word for m in MEANING[opposite]), (relation, word)


@pytest.mark.parametrize("family", FAMILIES)
def test_templates_stay_in_their_family(family):
    """Question scaffolds add no relation words of their own: the lexicon carries the fact."""
    for kind in ("yes_no", "multiple_choice"):
        for t in T.templates(T.pair_group(family, kind)):
            text = t.text.lower()
            foreign = SIZE_WORDS if family in POSITION_FAMILIES else POSITION_WORDS
            assert not any(w in text for w in foreign), t.id
            assert {"a", "b"} <= t.slots
            assert ("pred" if kind == "yes_no" else "cmp") in t.slots


def test_position_templates_are_viewer_centred():
    for family in POSITION_FAMILIES:
        for kind in ("yes_no", "multiple_choice"):
            texts = [t.text for t in T.templates(T.pair_group(family, kind))]
            viewer = [x for x in texts if re.search(r"camera|viewer|image|picture|photo", x)]
            assert len(viewer) >= len(texts) // 2, (family, kind)


@pytest.mark.parametrize("family", FAMILIES)
def test_pair_templates_render(family):
    for a, b in itertools.permutations(SAMPLE_OBJECTS, 2):
        for variant in T.PREDICATES[family]:
            slots = pair_slots(a, b, variant[0], variant[1])
            for t in T.templates(T.pair_group(family, "yes_no")):
                q = t.render(**slots)
                well_formed(q)
                if t.text.startswith("{is_a}"):
                    assert q.startswith(("Are " if a == "clothes" else "Is ") + "the "), q
            for g in ("answer/yes", "answer/no"):
                for t in T.templates(g):
                    well_formed(t.render(**slots))
        for variant in T.COMPARATIVES[family]:
            an, bn = grammar.definite(a), grammar.definite(b)
            for t in T.templates(T.pair_group(family, "multiple_choice")):
                well_formed(t.render(a=an, b=bn, cmp=variant[0]))
            for t in T.templates("answer/multiple_choice"):
                reply = t.render(
                    letter="A", winner=an, loser=bn, is_w=grammar.be(an), cmp=variant[1]
                )
                well_formed(reply)
                assert "(A)" in reply and f"than {bn}" in reply


def test_missing_slot_raises():
    with pytest.raises(KeyError):
        T.templates("left_right/yes_no")[0].render(a="the chair")


def test_register_extends_group():
    before = len(T.templates("counting"))
    T.register("test/extra", ["How many {cats} are there?"])
    assert T.get("test/extra/0").render(cats="chairs") == "How many chairs are there?"
    assert len(T.templates("counting")) == before


# ------------------------------------------------------------------------------------------
# Phrasing a hand-made selection.


def make_obs(categories, captions=None, exhaustive=True):
    n = len(categories)
    return FrameObservation.from_view_boxes(
        categories,
        np.zeros((n, 3)),
        np.ones((n, 3)),
        captions=captions,
        exhaustive=exhaustive,
        frame_id="0",
        source="test",
    )


def make_row(pairs=(), exists=(), counts=(), key=(1, 2)):
    """A one-frame Selection row. pairs: (o0, o1, family, direction, kind, answer);
    exists: (r, category, example, family, direction, answer); counts: (category, example, n)."""

    def arr(rows, width, default=-1):
        out = np.full((max(len(rows), 1), width), default, np.int32)
        for k, r in enumerate(rows):
            out[k] = r
        return out

    p, e, c = arr(pairs, 6), arr(exists, 6), arr(counts, 3)
    return Selection(
        key=np.asarray(key, np.uint32),
        pair_objects=p[:, :2],
        pair_family=p[:, 2],
        pair_direction=p[:, 3],
        pair_kind=p[:, 4],
        pair_answer=p[:, 5],
        num_pairs=np.int32(len(pairs)),
        exist_object=e[:, 0],
        exist_category=e[:, 1],
        exist_example=e[:, 2],
        exist_family=e[:, 3],
        exist_direction=e[:, 4],
        exist_answer=e[:, 5],
        num_exist=np.int32(len(exists)),
        count_category=c[:, 0],
        count_example=c[:, 1],
        count_value=c[:, 2],
        num_counts=np.int32(len(counts)),
    )


LR = FAMILIES.index("left_right")
BIG = FAMILIES.index("bigger_smaller")


def test_yes_no_answers_state_the_truth():
    obs = make_obs(["chair", "table", "chair"], captions=[None, None, "red chair"])
    obs.captions[0] = "old chair"
    for seed in range(20):
        row = make_row(
            pairs=[(0, 1, LR, 0, KIND_YES_NO, 0), (0, 1, LR, 1, KIND_YES_NO, 1)], key=(seed, 7)
        )
        no, yes = phrase_frame(obs, row)
        assert no.canonical == "no" and no.answer.startswith("No")
        assert no.relation == "left_of" and "right" in no.answer and "left" in no.question
        assert yes.canonical == "yes" and yes.answer.startswith("Yes")
        assert yes.relation == "right_of" and "right" in yes.answer
        assert no.objects == [0, 1] and "the old chair" in no.question.lower()
        assert no.task == "position" and no.kind == "yes_no" and no.template_id


def test_multiple_choice_convention():
    obs = make_obs(["chair", "table"])
    for seed in range(20):
        row = make_row(pairs=[(1, 0, BIG, 1, KIND_MULTIPLE_CHOICE, 1)], key=(seed, 3))
        (qa,) = phrase_frame(obs, row)
        assert qa.kind == "multiple_choice" and qa.task == "size"
        assert qa.choices == ["the table", "the chair"] and qa.objects == [1, 0]
        assert qa.question.endswith("(A) the table (B) the chair")
        assert qa.canonical == "B" and qa.relation == "smaller_than"
        assert "(B) The chair is smaller than the table." in qa.answer or (
            "(B): the chair is smaller than the table." in qa.answer
        )


def test_existence_and_counting_phrasing():
    obs = make_obs(
        ["chair", "table", "chair", "chair", "umbrella"], captions=["red chair"] + [None] * 4
    )
    row = make_row(
        exists=[
            (1, 0, 0, LR, 0, 1),  # a chair left of the table: yes
            (1, 0, 0, LR, 1, 0),  # no chair right of the table: all three are left
            (0, 0, 2, LR, 0, 0),  # no other chair left of the red chair: both are right
            (1, 2, 4, LR, 0, 0),  # no umbrella left of the table: the only one is right
        ],
        counts=[(0, 0, 3)],
    )
    recs = phrase_frame(obs, row)
    yes, no_all, no_other, no_one, count = recs
    assert yes.canonical == "yes" and yes.answer.startswith("Yes") and "a chair" in yes.answer
    assert "the table" in yes.question and yes.objects == [1] and yes.category == "chair"
    assert no_all.answer.lower().endswith("all three chairs are to the left of the table.")
    assert "other chair" in no_other.question
    assert no_other.answer.lower().endswith(
        "both of the other chairs are to the right of the red chair."
    )
    assert "umbrella" in no_one.question
    assert no_one.answer.lower().endswith("the only umbrella is to the right of the table."), (
        no_one.answer
    )
    for qa in recs:
        well_formed(qa.question)
        well_formed(qa.answer)
    assert count.canonical == "3" and "chairs" in count.question and count.objects == []
    assert "three chairs" in count.answer.lower()


def test_plural_form_category_in_existence():
    obs = make_obs(["clothes", "table", "clothes"])
    rows = make_row(exists=[(1, 0, 0, LR, 0, 1), (1, 0, 0, LR, 1, 0)], key=(5, 5))
    yes, no = phrase_frame(obs, rows)
    assert "clothes" in yes.question and "some clothes" in yes.answer, yes.answer
    assert no.answer.lower().endswith("all the clothes are to the left of the table."), no.answer
    assert not re.search(r"\b(a|an|one|both|two) clothes", yes.question + no.question + no.answer)


def test_plural_form_category_is_not_counted():
    obs = make_obs(["clothes", "clothes"])
    assert phrase_frame(obs, make_row(counts=[(0, 0, 2)])) == []


def test_phrasing_is_deterministic_and_batch_matches_frame():
    obs = make_obs(["chair", "table", "lamp"])
    row = make_row(pairs=[(0, 1, LR, 0, KIND_YES_NO, 1), (2, 1, BIG, 0, KIND_MULTIPLE_CHOICE, 0)])
    a = phrase_frame(obs, row, frame_rng(row.key))
    assert a == phrase_frame(obs, row)
    batched = Selection(**{k: np.stack([v, v]) for k, v in vars(row).items()})
    assert phrase_batch([obs], batched) == [a]


def test_all_templates_reachable_through_phrasing():
    """Over many keys, phrasing uses every pair, existence and counting template."""
    obs = make_obs(
        ["chair", "table", "umbrella", "chair"], captions=["red chair", None, None, None]
    )
    pairs = [
        (1, 2, f, d, kind, ans)
        for f in range(len(FAMILIES))
        for d in (0, 1)
        for kind, ans in ((KIND_YES_NO, 0), (KIND_YES_NO, 1), (KIND_MULTIPLE_CHOICE, 1))
    ]
    exists = [(1, 0, 0, f, 0, 1) for f in range(3)]
    used = set()
    for seed in range(200):
        row = make_row(pairs=pairs, exists=exists, counts=[(0, 0, 2)], key=(seed, 11))
        for qa in phrase_frame(obs, row):
            well_formed(qa.answer)
            used.add(qa.template_id)
    wanted = {
        t.id
        for f in FAMILIES
        for k in ("yes_no", "multiple_choice")
        for t in T.templates(T.pair_group(f, k))
    }
    wanted |= {t.id for t in T.templates("existence/position") + T.templates("counting")}
    assert wanted <= used, sorted(wanted - used)
    assert set(SIZE_FAMILIES) | set(POSITION_FAMILIES) == set(FAMILIES)


def test_bare_category_beside_captioned_one_is_not_asked():
    obs = make_obs(["chair", "table", "chair"], captions=[None, None, "red chair"])
    row = make_row(
        pairs=[(0, 1, LR, 0, KIND_YES_NO, 1), (2, 1, LR, 0, KIND_YES_NO, 1)],
        exists=[(0, 1, 1, LR, 0, 1)],
    )
    (qa,) = phrase_frame(obs, row)
    assert qa.objects == [2, 1] and "the red chair" in qa.question
