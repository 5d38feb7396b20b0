"""Turning a frame's `Selection` row into `QARecord`s: templates filled on the host.

Conventions:

* Objects are named as selection decided (`Selection.object_ref`): by their reference phrase
  with "the" ("the chair", "the red chair") when no other object that may be seen shares it;
  by a relative referring expression ("the leftmost car", "the second chair from the left",
  "the car nearest the camera", "the tallest shelf", `RELATIVE_TEXT`); or, when only pointing
  singles it out, by its phrase with its box (`<ref>the car</ref><box>[[...]]</box>`), so the
  record's own text is never ambiguous. `referring_names` gives the words per object (None
  for pointing only); the engine stores them on the observation (`with_referring`), where the
  instruction formats read them.
* Yes/no: canonical "yes" / "no"; a "no" answer states the relation that holds ("No, the
  chair is to the right of the table.").
* Multiple choice: the question is the template sentence followed by the choices in letter
  order on the same line, `"<sentence> (A) <choice A> (B) <choice B>"`; inline mentions in
  the sentence follow the same order. `choices` holds the choice texts ("the chair"), the
  canonical answer is the letter "A" or "B", and the answer text opens with it
  ("(A) The chair is further left than the table.").
* Existence: canonical "yes" / "no"; when the category is the reference object's own, it is
  "another chair" / "other chairs". A "no" answer says where the category's objects are
  ("No, both chairs are to the right of the table.").
* Counting: canonical is the count as a decimal string; the answer uses number words
  ("There are three chairs."). Categories whose name is plural in form ("clothes",
  "blinds") are not counted: "how many clothes" has no well-defined answer.
* `QARecord.objects` lists the positions (into the observation) of the objects the question
  mentions, in mention order: (subject, object) for yes/no, (choice A, choice B) for
  multiple choice, the reference object for existence, none for counting (it names a
  category, and listing its members would give the answer away to a visual prompt).
* Without `Selection.object_ref` (a hand-built selection), a question naming an object by a
  bare category that a captioned object shares ("the chair" beside "the red chair") is never
  asked about (`FrameObservation.ambiguous_reference`).

* Re-rendering: each record keeps its template ids, its non-object slot values (`slots`) and
  its object slots as observation positions (`object_slots`); `render_text` fills them with
  another naming style, which is how `jax_spatial.formats` asks the same question with
  `<ref>` tags, boxes, masks or numbered marks. The record's own `question`/`answer` are that
  rendering with caption names.

Every random choice (template, answer phrasing, synonym variant) is drawn from a numpy
Generator seeded from the frame key, in a fixed order, so phrasing is deterministic.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import jax
import numpy as np

from jax_spatial.observe import FrameObservation
from jax_spatial.qa import grammar
from jax_spatial.qa import templates as T
from jax_spatial.qa.select import (
    KIND_MULTIPLE_CHOICE,
    REF_CAPTION,
    REF_POINTING,
    REF_RELATIVE,
    Selection,
)
from jax_spatial.qa.types import QARecord
from jax_spatial.relations.types import FAMILIES, POSITION_FAMILIES, RELATIONS, RELATIVE_KINDS
from jax_spatial.writers.jsonl import box_to_1000

# The words of each relative kind (`RELATIVE_KINDS`), `{noun}` the object's category.
RELATIVE_TEXT = {
    "leftmost": "the leftmost {noun}",
    "rightmost": "the rightmost {noun}",
    "second_from_left": "the second {noun} from the left",
    "second_from_right": "the second {noun} from the right",
    "nearest": "the {noun} nearest the camera",
    "farthest": "the {noun} farthest from the camera",
    "tallest": "the tallest {noun}",
    "shortest": "the shortest {noun}",
    "biggest": "the biggest {noun}",
    "smallest": "the smallest {noun}",
}
assert set(RELATIVE_TEXT) == {k[0] for k in RELATIVE_KINDS}


def relative_text(kind: int, category: str) -> str | None:
    """Relative kind `kind` of an object of `category` in words; None for plural-form nouns
    ("the leftmost clothes" does not name one thing)."""
    noun = grammar.display_noun(category)
    if grammar.is_plural(noun):
        return None
    return RELATIVE_TEXT[RELATIVE_KINDS[kind][0]].format(noun=grammar.singular_unit(noun))


def referring_names(obs: FrameObservation, row: Selection) -> list[str | None]:
    """The words that single out each object of a frame (`FrameObservation.referring`).

    Args:
      obs: the frame.
      row: its `Selection` row (`object_ref` `[N]`); without `object_ref`, objects are named
        by caption where it is unique in the frame, glimpses included.

    Returns:
      per object: "the red chair", "the leftmost car", or None (only pointing works).
    """
    if getattr(row, "object_ref", None) is None:
        return [
            grammar.definite(p) if unique else None
            for p, unique in zip(obs.reference_phrases, obs.caption_unique, strict=True)
        ]
    refs = np.asarray(row.object_ref)
    out: list[str | None] = []
    for o, phrase in enumerate(obs.reference_phrases):
        code = int(refs[o])
        if code == REF_CAPTION:
            out.append(grammar.definite(phrase))
        elif code >= REF_RELATIVE:
            out.append(relative_text(code - REF_RELATIVE, obs.categories[o]))
        else:
            out.append(None)
    return out


def _text_names(obs: FrameObservation, referring: Sequence[str | None]) -> list[str]:
    """Names for the record's own text: the referring words, else phrase and box."""
    names = []
    for o, words in enumerate(referring):
        if words is None:
            box = ", ".join(str(v) for v in box_to_1000(obs.box2d[o], obs.width, obs.height))
            words = f"<ref>{grammar.definite(obs.reference_phrases[o])}</ref><box>[[{box}]]</box>"
        names.append(words)
    return names


# Mixed into the frame key so phrasing randomness is independent of selection randomness.
_PHRASE_STREAM = 0x5048_5241  # "PHRA"
_LETTERS = "AB"


def frame_rng(key) -> np.random.Generator:
    """numpy Generator for a frame's phrasing, seeded from its `[2]` uint32 key."""
    k = np.asarray(key, dtype=np.uint32).reshape(-1)
    return np.random.default_rng([int(x) for x in k] + [_PHRASE_STREAM])


def _pick(rng: np.random.Generator, options: Sequence):
    return options[int(rng.integers(len(options)))]


def _task(family: str) -> str:
    return "position" if family in POSITION_FAMILIES else "size"


def _check_index(obs: FrameObservation, *indices: int) -> None:
    for i in indices:
        if not 0 <= i < obs.num_objects:
            raise ValueError(
                f"{obs.scene_id}/{obs.frame_id}: selection refers to object {i}, "
                f"but the observation has {obs.num_objects}"
            )


# Slots that say "be" in agreement with an object slot: "{is_a} {a} ...", "{winner} {is_w}".
AGREEMENT = {"a": "is_a", "winner": "is_w"}


def render_text(
    qa: QARecord, name: Callable[[int], str], be: Callable[[int], str]
) -> tuple[str, str, list[str]]:
    """Question, answer and choices of a record, with objects named by `name`.

    The same templates and slot values as the record's own text; only the object names (and
    the "is"/"are" that agree with them) change, so a question can be re-asked with `<ref>`
    tags, boxes or "the object in the red box" (see `jax_spatial.formats`).

    Args:
      qa: a record made by this module (its `slots`, `object_slots` and template ids set).
      name: observation position -> the object's name in this style ("the red chair",
        "<ref>the red chair</ref>", "region 2").
      be: observation position -> "is" or "are", agreeing with that name.

    Returns:
      (question, answer, choices); multiple-choice questions end with "(A) <a> (B) <b>".
    """
    if not qa.answer_template_id:
        raise ValueError(f"record {qa.template_id!r} carries no slots to re-render")
    values = dict(qa.slots)
    for slot, position in qa.object_slots.items():
        values[slot] = name(position)
        if slot in AGREEMENT:
            values[AGREEMENT[slot]] = be(position)
    question = T.get(qa.template_id).render(**values)
    answer = T.get(qa.answer_template_id).render(**values)
    choices: list[str] = []
    if qa.kind == "multiple_choice":
        choices = [values["a"], values["b"]]
        question = f"{question} (A) {choices[0]} (B) {choices[1]}"
    return question, answer, choices


def _filled(record: QARecord, names: Sequence[str]) -> QARecord:
    """The record with its text rendered in the default style: objects named by caption."""
    question, answer, choices = render_text(
        record, lambda o: names[o], lambda o: grammar.be(names[o])
    )
    return dataclasses.replace(record, question=question, answer=answer, choices=choices)


def _pair_record(obs, names, o0, o1, family, direction, kind, answer, rng) -> QARecord:
    _check_index(obs, o0, o1)
    if kind == KIND_MULTIPLE_CHOICE:
        cmp = _pick(rng, T.COMPARATIVES[family])[direction]
        template = _pick(rng, T.templates(T.pair_group(family, "multiple_choice")))
        winner, loser = (o0, o1) if answer == 0 else (o1, o0)
        reply = _pick(rng, T.templates("answer/multiple_choice"))
        record = QARecord(
            task=_task(family),
            relation=RELATIONS[family][direction],
            kind="multiple_choice",
            question="",
            answer="",
            canonical=_LETTERS[answer],
            objects=[o0, o1],
            template_id=template.id,
            answer_template_id=reply.id,
            slots=dict(cmp=cmp, letter=_LETTERS[answer]),
            object_slots=dict(a=o0, b=o1, winner=winner, loser=loser),
        )
        return _filled(record, names)
    variant = _pick(rng, T.PREDICATES[family])
    true_direction = direction if answer == 1 else 1 - direction
    template = _pick(rng, T.templates(T.pair_group(family, "yes_no")))
    reply = _pick(rng, T.templates("answer/yes" if answer == 1 else "answer/no"))
    record = QARecord(
        task=_task(family),
        relation=RELATIONS[family][direction],
        kind="yes_no",
        question="",
        answer="",
        canonical="yes" if answer == 1 else "no",
        objects=[o0, o1],
        template_id=template.id,
        answer_template_id=reply.id,
        slots=dict(pred=variant[direction], true_pred=variant[true_direction]),
        object_slots=dict(a=o0, b=o1),
    )
    return _filled(record, names)


def _existence_record(obs, names, r, example, family, direction, answer, rng) -> QARecord:
    _check_index(obs, r, example)
    category = obs.categories[example]
    noun = grammar.display_noun(category)
    same = obs.categories[r] == category  # "another chair ... the red chair"
    glimpsed = obs.glimpses.categories if obs.glimpses is not None else []
    n_other = sum(c == category for c in [*obs.categories, *glimpsed]) - (1 if same else 0)
    other = "other " if same else ""
    plural_form = grammar.is_plural(noun)
    unit = grammar.singular_unit(noun)
    if plural_form:
        a_cat, a_cat_decl = f"any {other}{noun}", f"some {other}{noun}"
    elif same:
        a_cat = a_cat_decl = f"another {unit}"
    else:
        a_cat = a_cat_decl = grammar.with_indefinite(noun)
    cats = other + grammar.pluralize(noun)
    if plural_form:
        # "clothes" has no countable instances to number: "all the clothes", "the clothes".
        the_only, all_cats = f"the {other}{noun}", f"all the {cats}"
    else:
        the_only = f"the only {other}{unit}"
        if n_other == 2:
            all_cats = f"both of the other {grammar.pluralize(noun)}" if same else f"both {cats}"
        else:
            all_cats = f"all {grammar.number_word(n_other)} {cats}"
    variant = _pick(rng, T.PREDICATES[family])
    slots = dict(
        a_cat=a_cat,
        a_cat_decl=a_cat_decl,
        cats=cats,
        is_there="are there" if plural_form else "is there",
        there_is="there are" if plural_form else "there is",
        pred=variant[direction],
        true_pred=variant[1 - direction],
        the_only=the_only,
        is_only="are" if plural_form else "is",
        all_cats=all_cats,
    )
    template = _pick(rng, T.templates(T.existence_group(family)))
    if answer == 1:
        group = "answer/existence/yes"
    else:
        group = "answer/existence/no_one" if n_other == 1 else "answer/existence/no_all"
    record = QARecord(
        task="existence",
        relation=RELATIONS[family][direction],
        kind="yes_no",
        question="",
        answer="",
        canonical="yes" if answer == 1 else "no",
        objects=[r],
        category=category,
        template_id=template.id,
        answer_template_id=_pick(rng, T.templates(group)).id,
        slots=slots,
        object_slots=dict(ref=r),
    )
    return _filled(record, names)


def _count_record(obs, example, count, rng) -> QARecord | None:
    _check_index(obs, example)
    category = obs.categories[example]
    noun = grammar.display_noun(category)
    if grammar.is_plural(noun):
        return None
    template = _pick(rng, T.templates("counting"))
    slots = dict(
        cats=grammar.pluralize(noun),
        count=grammar.count_phrase(count, noun),
        be_n=grammar.be(count),
    )
    record = QARecord(
        task="counting",
        relation="count",
        kind="count",
        question="",
        answer="",
        canonical=str(int(count)),
        objects=[],
        category=category,
        template_id=template.id,
        answer_template_id=_pick(rng, T.templates("answer/counting")).id,
        slots=slots,
    )
    return _filled(record, [])


def phrase_frame(
    obs: FrameObservation, row: Selection, rng: np.random.Generator | None = None
) -> list[QARecord]:
    """The QA records of one frame: pair questions, then existence, then counting.

    Args:
      obs: the frame's observation (the one that was padded into the batch).
      row: one frame's slice of a host `Selection` (`pair_objects` `[P, 2]`, `num_pairs` a
        scalar, ...), e.g. `jax.tree.map(lambda x: x[b], selection)`.
      rng: the phrasing Generator; default `frame_rng(row.key)`.

    Returns:
      QARecords in selection order.
    """
    row = jax.tree.map(np.asarray, row)
    if rng is None:
        rng = frame_rng(row.key)
    if getattr(row, "object_ref", None) is None:
        # A hand-built selection: caption names only, and never an ambiguous one.
        names = [grammar.definite(p) for p in obs.reference_phrases]
        ambiguous = obs.ambiguous_reference
    else:
        referring = obs.referring if obs.referring is not None else referring_names(obs, row)
        names = _text_names(obs, referring)
        refs = [int(x) for x in row.object_ref[: obs.num_objects]]
        ambiguous = [code < REF_POINTING for code in refs]
    records: list[QARecord] = []
    for k in range(int(row.num_pairs)):
        o0, o1 = (int(x) for x in row.pair_objects[k])
        _check_index(obs, o0, o1)
        if ambiguous[o0] or ambiguous[o1]:
            continue
        records.append(
            _pair_record(
                obs,
                names,
                o0,
                o1,
                FAMILIES[int(row.pair_family[k])],
                int(row.pair_direction[k]),
                int(row.pair_kind[k]),
                int(row.pair_answer[k]),
                rng,
            )
        )
    for k in range(int(row.num_exist)):
        _check_index(obs, int(row.exist_object[k]))
        if ambiguous[int(row.exist_object[k])]:
            continue
        records.append(
            _existence_record(
                obs,
                names,
                int(row.exist_object[k]),
                int(row.exist_example[k]),
                FAMILIES[int(row.exist_family[k])],
                int(row.exist_direction[k]),
                int(row.exist_answer[k]),
                rng,
            )
        )
    for k in range(int(row.num_counts)):
        record = _count_record(obs, int(row.count_example[k]), int(row.count_value[k]), rng)
        if record is not None:
            records.append(record)
    return records


def phrase_batch(
    observations: Sequence[FrameObservation], selection: Selection
) -> list[list[QARecord]]:
    """QA records of each observation, in order; frames past `len(observations)` are padding.

    Args:
      observations: the frames that were padded into the batch, in batch order.
      selection: the batch's `Selection` (device or host arrays; copied to the host once).
    """
    host = jax.tree.map(np.asarray, jax.device_get(selection))
    out = []
    for b, obs in enumerate(observations):
        row = jax.tree.map(lambda x, b=b: x[b], host)
        out.append(phrase_frame(obs, row, frame_rng(row.key)))
    return out


def referring_batch(
    observations: Sequence[FrameObservation], selection: Selection
) -> list[list[str | None]]:
    """`referring_names` of each observation of a batch, in order."""
    host = jax.tree.map(np.asarray, jax.device_get(selection))
    return [
        referring_names(obs, jax.tree.map(lambda x, b=b: x[b], host))
        for b, obs in enumerate(observations)
    ]


__all__ = [
    "AGREEMENT",
    "RELATIVE_TEXT",
    "frame_rng",
    "phrase_batch",
    "phrase_frame",
    "referring_batch",
    "referring_names",
    "relative_text",
    "render_text",
]
