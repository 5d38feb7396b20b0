"""Schema checks for every record before it is written: a bad record is counted, never stored.

Two record shapes are checked by the same rules:

* the engine's in-memory pair (`FrameObservation`, `QARecord`), before a JSONL line is written
  (`check_frame`, `check_qa`, `filter_frame_qa`);
* the TFDS example dict (`jax_spatial.datasets.examples.frame_example`), before the builder
  hands it to the writer (`check_example`).

Frame rules (a failing frame is dropped whole, with all its questions):

* image size positive; `K` `[3, 3]` and `view_from_cam` `[4, 4]` finite; encoded image
  present (bytes or a path) for examples that carry the bytes;
* per object: centre `[3]`, extent `[3]` (> 0), rotation `[3, 3]` finite; visibility in 0..1;
  annotation index >= 0; non-empty category; 2D box finite with `x1 < x2`, `y1 < y2`, inside
  the image up to `BOX_TOLERANCE_PX`.

Question rules (a failing question is dropped, its frame kept):

* non-empty question and answer text; task, kind known;
* yes/no: canonical in {"yes", "no"}, no choices;
* multiple choice: 2..4 non-empty choices, canonical the letter of one of them;
* count: canonical a decimal non-negative integer;
* referenced object ids in `0..num_objects-1`, without repeats.

Every failure is recorded as `"<rule>: <detail>"` in a `ValidationReport`, whose `as_dict()`
goes into the run summary (`summary["validation"]`).
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

# Annotated boxes use the dataset's own pixel convention: KITTI's inclusive `x2 = W - 1` vs the
# continuous `x2 = W` of this project, and sub-pixel float labels, differ by up to one pixel.
BOX_TOLERANCE_PX = 1.0
TASKS = ("position", "size", "existence", "counting")
KINDS = ("yes_no", "multiple_choice", "count")
LETTERS = "ABCD"


@dataclasses.dataclass
class ValidationReport:
    """Counts of checked and rejected records, with a histogram of the reasons."""

    frames_checked: int = 0
    frames_rejected: int = 0
    qa_checked: int = 0
    qa_rejected: int = 0
    reasons: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    # A few full messages, for debugging; bounded so a systematic failure cannot blow up memory.
    examples: list = dataclasses.field(default_factory=list)
    max_examples: int = 20

    def reject(self, where: str, problems: Sequence[str]) -> None:
        for problem in problems:
            self.reasons[problem.split(":")[0]] += 1
            if len(self.examples) < self.max_examples:
                self.examples.append(f"{where}: {problem}")

    def merge(self, other: ValidationReport) -> None:
        self.frames_checked += other.frames_checked
        self.frames_rejected += other.frames_rejected
        self.qa_checked += other.qa_checked
        self.qa_rejected += other.qa_rejected
        self.reasons.update(other.reasons)
        room = self.max_examples - len(self.examples)
        self.examples.extend(other.examples[: max(room, 0)])

    def as_dict(self) -> dict:
        return {
            "frames_checked": self.frames_checked,
            "frames_rejected": self.frames_rejected,
            "qa_checked": self.qa_checked,
            "qa_rejected": self.qa_rejected,
            "reasons": dict(sorted(self.reasons.items())),
            "examples": list(self.examples),
        }


def _finite(name: str, value, shape: tuple[int, ...]) -> list[str]:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return [f"{name}_type: not numeric"]
    if array.shape != shape:
        return [f"{name}_shape: expected {shape}, got {array.shape}"]
    if not np.all(np.isfinite(array)):
        return [f"{name}_finite: {array.tolist()}"]
    return []


def check_geometry(
    width: int,
    height: int,
    K,
    view_from_cam,
    categories: Sequence[str],
    object_index,
    box2d,
    centre,
    extent,
    rotation,
    visibility,
) -> list[str]:
    """Frame-level problems of one frame's image geometry and objects (empty when valid).

    Args:
      width, height: image size.
      K: `[3, 3]`; view_from_cam: `[4, 4]`.
      categories: `n` names; object_index: `[n]`; box2d: `[n, 4]` pixels;
      centre, extent: `[n, 3]`; rotation: `[n, 3, 3]`; visibility: `[n]`.
    """
    problems = []
    if not (isinstance(width, int | np.integer) and isinstance(height, int | np.integer)):
        problems.append(f"image_size_type: {type(width).__name__}, {type(height).__name__}")
    elif width <= 0 or height <= 0:
        problems.append(f"image_size: {width}x{height}")
    problems += _finite("K", K, (3, 3))
    problems += _finite("view_from_cam", view_from_cam, (4, 4))
    n = len(categories)
    for name, value, shape in (
        ("object_index", object_index, (n,)),
        ("box2d", box2d, (n, 4)),
        ("centre", centre, (n, 3)),
        ("extent", extent, (n, 3)),
        ("rotation", rotation, (n, 3, 3)),
        ("visibility", visibility, (n,)),
    ):
        problems += _finite(name, value, shape)
    if problems or n == 0:
        return problems
    if any(not isinstance(c, str) or not c for c in categories):
        problems.append("category_empty: an object has no category")
    if np.any(np.asarray(object_index) < 0):
        problems.append(f"object_index_range: {np.asarray(object_index).tolist()}")
    if np.any(np.asarray(extent) <= 0):
        problems.append("extent_range: non-positive box side")
    vis = np.asarray(visibility, np.float64)
    if np.any((vis < 0) | (vis > 1)):
        problems.append(f"visibility_range: {vis.tolist()}")
    box = np.asarray(box2d, np.float64)
    tol = BOX_TOLERANCE_PX
    inside = (
        (box[:, 0] >= -tol)
        & (box[:, 1] >= -tol)
        & (box[:, 2] <= width + tol)
        & (box[:, 3] <= height + tol)
        & (box[:, 0] < box[:, 2])
        & (box[:, 1] < box[:, 3])
    )
    for i in np.flatnonzero(~inside):
        problems.append(
            f"box2d_range: object {i} box {box[i].round(2).tolist()} in {width}x{height}"
        )
    return problems


def check_qa_fields(
    task: str,
    kind: str,
    question: str,
    answer: str,
    canonical: str,
    choices: Sequence[str],
    objects: Sequence[int],
    num_objects: int,
) -> list[str]:
    """Problems of one question's fields (empty when valid); `num_objects` of its frame."""
    problems = []
    if not isinstance(question, str) or not question.strip():
        problems.append("question_empty: no question text")
    if not isinstance(answer, str) or not answer.strip():
        problems.append("answer_empty: no answer text")
    if task not in TASKS:
        problems.append(f"task_unknown: {task!r}")
    if kind == "yes_no":
        if canonical not in ("yes", "no"):
            problems.append(f"yes_no_canonical: {canonical!r}")
        if len(choices):
            problems.append(f"yes_no_choices: {list(choices)!r}")
    elif kind == "multiple_choice":
        if not 2 <= len(choices) <= len(LETTERS):
            problems.append(f"choices_count: {len(choices)}")
        elif any(not isinstance(c, str) or not c.strip() for c in choices):
            problems.append("choices_empty: an empty choice")
        if canonical not in LETTERS[: len(choices)]:
            problems.append(f"choice_canonical: {canonical!r} for {len(choices)} choices")
    elif kind == "count":
        if not (isinstance(canonical, str) and canonical.isdecimal() and canonical.isascii()):
            problems.append(f"count_canonical: {canonical!r} is not a non-negative integer")
    else:
        problems.append(f"kind_unknown: {kind!r}")
    ids = [int(i) for i in objects]
    if any(i < 0 or i >= num_objects for i in ids):
        problems.append(f"object_ids_range: {ids} with {num_objects} objects")
    if len(set(ids)) != len(ids):
        problems.append(f"object_ids_repeat: {ids}")
    return problems


def check_frame(obs) -> list[str]:
    """Frame-level problems of a `FrameObservation`."""
    problems = check_geometry(
        obs.width,
        obs.height,
        obs.K,
        obs.view_from_cam,
        obs.categories,
        obs.object_index,
        obs.box2d,
        obs.centre,
        obs.extent,
        obs.rotation,
        obs.visibility,
    )
    if obs.image_bytes is None and not obs.image_path:
        problems.append("image_missing: neither bytes nor a path")
    return problems


def check_qa(obs, qa) -> list[str]:
    """Problems of a `QARecord` asked about the `FrameObservation` `obs`."""
    return check_qa_fields(
        qa.task,
        qa.kind,
        qa.question,
        qa.answer,
        qa.canonical,
        qa.choices,
        qa.objects,
        obs.num_objects,
    )


def filter_frame_qa(frame_qa, report: ValidationReport):
    """The engine's `FrameQA` with invalid questions removed, or None when the frame is invalid.

    Counts every check and rejection in `report`.
    """
    obs = frame_qa.observation
    where = f"{obs.source}/{obs.scene_id}/{obs.frame_id}"
    report.frames_checked += 1
    report.qa_checked += len(frame_qa.qas)
    problems = check_frame(obs)
    if problems:
        report.frames_rejected += 1
        report.qa_rejected += len(frame_qa.qas)
        report.reject(where, problems)
        return None
    kept = []
    for number, qa in enumerate(frame_qa.qas):
        qa_problems = check_qa(obs, qa)
        if qa_problems:
            report.qa_rejected += 1
            report.reject(f"{where}/{number}", qa_problems)
        else:
            kept.append(qa)
    return dataclasses.replace(frame_qa, qas=kept)


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def check_example(example: Mapping, report: ValidationReport | None = None) -> tuple[dict, bool]:
    """Validates one TFDS example dict (the builder's layout) before it is written.

    Returns:
      (example with invalid questions removed, True) or (example, False) when the frame
      itself is invalid and must not be written.
    """
    report = report if report is not None else ValidationReport()
    where = _text(example.get("key", "?"))
    objects = example["objects"]
    qa = example["qa"]
    num_qa = len(qa["question"])
    report.frames_checked += 1
    report.qa_checked += num_qa
    problems = check_geometry(
        example["width"],
        example["height"],
        example["K"],
        example["view_from_cam"],
        [_text(c) for c in objects["category"]],
        np.asarray(objects["index"]).reshape(-1),
        np.asarray(objects["box2d"], np.float64).reshape(-1, 4),
        np.asarray(objects["centre"], np.float64).reshape(-1, 3),
        np.asarray(objects["extent"], np.float64).reshape(-1, 3),
        np.asarray(objects["rotation"], np.float64).reshape(-1, 3, 3),
        np.asarray(objects["visibility"], np.float64).reshape(-1),
    )
    image = example.get("image")
    if not isinstance(image, bytes) or not image:
        problems.append("image_missing: no encoded image bytes")
    if problems:
        report.frames_rejected += 1
        report.qa_rejected += num_qa
        report.reject(where, problems)
        return dict(example), False
    num_objects = len(objects["category"])
    keep = []
    for k in range(num_qa):
        qa_problems = check_qa_fields(
            _text(qa["task"][k]),
            _text(qa["kind"][k]),
            _text(qa["question"][k]),
            _text(qa["answer"][k]),
            _text(qa["canonical"][k]),
            [_text(c) for c in qa["choices"][k]],
            [int(i) for i in qa["objects"][k]],
            num_objects,
        )
        if qa_problems:
            report.qa_rejected += 1
            report.reject(f"{where}/{k}", qa_problems)
        else:
            keep.append(k)
    if len(keep) == num_qa:
        return dict(example), True
    out = dict(example)
    out["qa"] = {name: [values[k] for k in keep] for name, values in qa.items()}
    return out, True


__all__ = [
    "BOX_TOLERANCE_PX",
    "ValidationReport",
    "check_example",
    "check_frame",
    "check_geometry",
    "check_qa",
    "check_qa_fields",
    "filter_frame_qa",
]
