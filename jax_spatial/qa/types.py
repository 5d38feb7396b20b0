"""The question/answer record the QA stage emits and the writers consume."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class QARecord:
    """One question about one frame.

    Attributes:
      task: "position" | "size" | "existence" | "counting".
      relation: the relation asked about ("left_of", "taller_than", ...; "count" for counting).
      kind: "yes_no" | "multiple_choice" | "count".
      question, answer: the natural-language text ("Is the chair left of the table?",
        "Yes, the chair is to the left of the table.").
      canonical: the machine-checkable answer: "yes"/"no", a choice letter "A".."D", or a
        decimal integer string for counts.
      choices: the choice texts, in letter order, for multiple choice (else empty).
      objects: positions (into the `FrameObservation`'s object arrays) of the referenced
        objects, in the order the question mentions them.
      category: for existence and counting, the category asked about.
      template_id: which phrasing produced the text (for auditing and balance checks).
      answer_template_id: which phrasing produced the answer.
      slots: the template slots that do not name an object ("pred": "to the left of", ...).
      object_slots: the slots that name an object, as positions into the observation
        ({"a": 3, "b": 1}); `qa.phrase.render_text` fills them with any reference style
        (caption, `<ref>` tags, "the object in the red box"), so the question can be re-asked
        in every instruction format (`jax_spatial.formats`). Empty on hand-built records.
    """

    task: str
    relation: str
    kind: str
    question: str
    answer: str
    canonical: str
    choices: list[str] = dataclasses.field(default_factory=list)
    objects: list[int] = dataclasses.field(default_factory=list)
    category: str | None = None
    template_id: str = ""
    answer_template_id: str = ""
    slots: dict[str, str] = dataclasses.field(default_factory=dict)
    object_slots: dict[str, int] = dataclasses.field(default_factory=dict)
