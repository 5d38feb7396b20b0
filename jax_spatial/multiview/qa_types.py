"""The question/answer record of a frame set (clip), which the multi-view tasks emit and the
writers (JSONL, TFDS frame-set examples, contact sheet) consume.

It extends the single-view `qa.types.QARecord` idea to a clip: the question is about the
clip's frames (all of them, or the subset in `frames`, e.g. the two views of a rotation
question), objects are indices into the clip's objects, and a numeric answer keeps its exact
value and unit for Mean Relative Accuracy.
"""

from __future__ import annotations

import dataclasses

# Multi-view task families (`task`), VSI-Bench's list plus rotation.
MULTI_VIEW_TASKS = (
    "mv_counting",
    "abs_distance",
    "object_size",
    "room_size",
    "rel_distance",
    "rel_direction",
    "appearance_order",
    "route",
    "rotation",
)


@dataclasses.dataclass
class ClipQA:
    """One question about one clip.

    Attributes:
      clip_id: the clip's id (`Clip.clip_id`), also in the ground-truth file.
      task: one of `MULTI_VIEW_TASKS`.
      relation: the finer kind ("easy" / "medium" / "hard" for direction, "degrees" / "bins"
        for rotation, "camera" for the camera-turn variant, "count", ...).
      kind: "multiple_choice" | "count" | "number" | "yes_no".
      question, answer: natural-language text; the question has no `<image>` placeholders
        (writers add them per frame in their own layout).
      canonical: machine-checkable answer: a letter "A".."D", a decimal integer string for
        counts, or the number as written in the answer ("2.3") for numeric answers.
      choices: choice texts in letter order (multiple choice), else empty.
      frames: positions into the clip's frames the question shows, in order; empty = all.
      objects: positions into the clip's objects the question is about, in mention order.
      value, unit: the exact numeric answer ("m", "cm", "m2", "deg") for number questions.
      template_id: which phrasing produced the text.
      meta: anything else a checker needs (e.g. the route's instruction list, the category).
    """

    clip_id: str
    task: str
    relation: str
    kind: str
    question: str
    answer: str
    canonical: str
    choices: list[str] = dataclasses.field(default_factory=list)
    frames: list[int] = dataclasses.field(default_factory=list)
    objects: list[int] = dataclasses.field(default_factory=list)
    value: float | None = None
    unit: str | None = None
    template_id: str = ""
    meta: dict = dataclasses.field(default_factory=dict)


__all__ = ["MULTI_VIEW_TASKS", "ClipQA"]
