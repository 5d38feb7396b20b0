"""The `spatial_qa_clips` TFDS example: one frame set (clip) and its multi-view questions.

Kept out of the builder folder, as `examples.py` is for single frames, so Beam workers and
notebooks import it by module path. **One example per clip**, key `"<source>/<clip_id>"`::

    key, clip_id, source, scene_id      Text
    visibility_rule                     Text: "instance_map" | "depth" | "scan_points" |
                                        "projection" (`multiview.clip.frame_visibility`)
    min_pixels                          int32: its pixel threshold
    room_polygon                        [P, 2] float64 floor polygon, world metres,
                                        anticlockwise; P = 0 when the source has none
    room_area, room_height              float64 m^2, m; NaN when unknown
    has_footprints                      bool: objects/footprint holds real footprints
    meta                                Text: the clip's `meta` as sorted JSON
                                        (frame_indices, frame_time_from, seed, room_shape,
                                        room_construction, trajectory, rotation, ...)
    frames  (Sequence, T, in time order; positions are what `qa.frames` indexes)
      image                             bytes scalar: the source's encoded file, untouched
      image_format                      Text: "png" | "jpeg" | ... ("" unknown)
      frame_id                          Text
      time                              float64 seconds since the scene's first frame
      width, height                     int32
      K                                 [3, 3] float64 OpenCV intrinsics
      world_from_cam                    [4, 4] float64 camera-to-world (world z up)
    objects  (Sequence, N, annotation order; positions are what `qa.objects` indexes)
      index                             int32 annotation index in the source
      category, caption                 Text (caption "" when the source has none)
      has_box3d                         bool (False: centre/extent 0, rotation identity)
      centre, extent                    [3] float64 world metres (extent: full side lengths)
      rotation                          [3, 3] float64 world_from_box
      footprint                         [4, 2] float64 floor footprint (zeros without one)
      visible                           Sequence(bool), T: frame t shows the object
      visible_score                     Sequence(int32), T: what `visible` thresholds
    qa  (Sequence, one per `ClipQA`)
      task, relation, kind, question, answer, canonical, template_id      Text
      choices                           Sequence(Text), letter order
      frames                            Sequence(int32) positions into `frames`; empty = all
      objects                           Sequence(int32) positions into `objects`
      value                             float64 exact numeric answer; NaN when there is none
      unit                              Text ("m", "cm", "m2", "deg"; "" when none)
      meta                              Text: the record's `meta` as sorted JSON

**Images.** A sequence of bytes scalars (`Sequence(Tensor((), object))`), not
`Sequence(Image)` or `Video`: both hand `tfds.data_source` decoded `[T, H, W, 3]` arrays (16
noise PNGs of 160 x 120, 57 kB each: 24 ms per read against 2.6 ms for the bytes, measured
with TFDS 4.9.10), and the numpy reading path takes no `SkipDecoding` (it raises), so the bytes
would never come back. Bytes in, the same bytes out; readers decode the frames they need
(`multiview.reading`).

**Floats.** `tf.train.Example` stores only 32-bit floats, so a `Scalar(float64)` comes back
rounded (0.1 + 0.2 reads as 0.30000001192...). Every float here is float64 in TFDS's bytes
encoding (`Encoding.BYTES`: the array's raw little-endian bytes), so numeric answers, times
and geometry read back exactly and a clip rebuilt from its example (`multiview.reading`)
gives the same relations, bit for bit. The images dominate the size anyway.

**Visibility** is stored per object (`objects/visible [T]`): a top-level `[T, N]` tensor
needs two unknown dimensions, which TFDS 4.9.10 cannot decode when `N = 0`.

Nothing is padded on disk. Questions are validated before they are written
(`clip_qa_problems`); a bad one is dropped and counted, its clip kept.
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import json
import logging
import math
import pathlib
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from jax_spatial import validate
from jax_spatial.datasets.examples import SourceSpec, image_format
from jax_spatial.multiview.clip import Clip
from jax_spatial.multiview.qa_types import MULTI_VIEW_TASKS, ClipQA
from jax_spatial.writers.ground_truth_clips import json_safe

log = logging.getLogger(__name__)

FRAME_FIELDS = (
    "image",
    "image_format",
    "frame_id",
    "time",
    "width",
    "height",
    "K",
    "world_from_cam",
)
OBJECT_FIELDS = (
    "index",
    "category",
    "caption",
    "has_box3d",
    "centre",
    "extent",
    "rotation",
    "footprint",
    "visible",
    "visible_score",
)
QA_FIELDS = (
    "task",
    "relation",
    "kind",
    "question",
    "answer",
    "canonical",
    "choices",
    "frames",
    "objects",
    "value",
    "unit",
    "template_id",
    "meta",
)
KINDS = ("multiple_choice", "count", "number", "yes_no")
LETTERS = "ABCDEFGH"
# Where the builder looks for the multi-view question generator by default.
DEFAULT_QUESTIONS = "jax_spatial.multiview.tasks:clip_questions"


def features():
    """The `tfds.features.FeaturesDict` of one clip example (module docstring)."""
    import tensorflow_datasets as tfds

    text = tfds.features.Text
    exact = tfds.features.Encoding.BYTES

    def f64(shape):
        return tfds.features.Tensor(shape=shape, dtype=np.float64, encoding=exact)

    return tfds.features.FeaturesDict(
        {
            "key": text(),
            "clip_id": text(),
            "source": text(),
            "scene_id": text(),
            "visibility_rule": text(),
            "min_pixels": tfds.features.Scalar(dtype=np.int32),
            "room_polygon": f64((None, 2)),
            "room_area": f64(()),
            "room_height": f64(()),
            "has_footprints": tfds.features.Scalar(dtype=np.bool_),
            "meta": text(),
            "frames": tfds.features.Sequence(
                {
                    "image": tfds.features.Tensor(shape=(), dtype=np.object_),
                    "image_format": text(),
                    "frame_id": text(),
                    "time": f64(()),
                    "width": tfds.features.Scalar(dtype=np.int32),
                    "height": tfds.features.Scalar(dtype=np.int32),
                    "K": f64((3, 3)),
                    "world_from_cam": f64((4, 4)),
                }
            ),
            "objects": tfds.features.Sequence(
                {
                    "index": tfds.features.Scalar(dtype=np.int32),
                    "category": text(),
                    "caption": text(),
                    "has_box3d": tfds.features.Scalar(dtype=np.bool_),
                    "centre": f64((3,)),
                    "extent": f64((3,)),
                    "rotation": f64((3, 3)),
                    "footprint": f64((4, 2)),
                    "visible": tfds.features.Sequence(tfds.features.Scalar(dtype=np.bool_)),
                    "visible_score": tfds.features.Sequence(tfds.features.Scalar(dtype=np.int32)),
                }
            ),
            "qa": tfds.features.Sequence(
                {
                    "task": text(),
                    "relation": text(),
                    "kind": text(),
                    "question": text(),
                    "answer": text(),
                    "canonical": text(),
                    "choices": tfds.features.Sequence(text()),
                    "frames": tfds.features.Sequence(tfds.features.Scalar(dtype=np.int32)),
                    "objects": tfds.features.Sequence(tfds.features.Scalar(dtype=np.int32)),
                    "value": f64(()),
                    "unit": text(),
                    "template_id": text(),
                    "meta": text(),
                }
            ),
        }
    )


# ------------------------------------------------------------------------------------------
# One clip -> one example dict.


def sorted_json(mapping) -> str:
    """Sorted, compact JSON: the same dict always gives the same bytes (floats exact)."""
    return json.dumps(json_safe(mapping or {}), sort_keys=True, separators=(",", ":"))


def clip_key(clip: Clip) -> str:
    """ "procedural_clips/room_000003:uniform16"."""
    return f"{clip.source}/{clip.clip_id}"


def frame_bytes(clip: Clip, t: int) -> bytes:
    """Frame `t`'s encoded image exactly as the source holds it (bytes, else the file's)."""
    frame = clip.frames[t]
    if frame.image_bytes is not None:
        return bytes(frame.image_bytes)
    if not frame.image_path:
        raise ValueError(f"{clip.clip_id}: frame {frame.frame_id} has no image")
    path = pathlib.Path(frame.image_path)
    if not path.is_absolute() and clip.root:
        path = pathlib.Path(clip.root) / path
    return path.read_bytes()


def _optional(value) -> float:
    return math.nan if value is None else float(value)


def clip_example(clip: Clip, qas: Sequence[ClipQA], images: Sequence[bytes] | None = None) -> dict:
    """One clip and its questions -> an example dict (ready for `features().encode_example`).

    Args:
      clip: the clip the questions are about (`qa.frames` / `qa.objects` index it).
      qas: its questions; every `qa.clip_id` must be `clip.clip_id`.
      images: the frames' encoded bytes (default `frame_bytes(clip, t)` for each frame).

    Raises:
      ValueError: a question of another clip, or a frame without an image.
    """
    f64 = np.float64
    t, n = clip.num_frames, clip.num_objects
    for qa in qas:
        if qa.clip_id != clip.clip_id:
            raise ValueError(f"question of clip {qa.clip_id!r} given with clip {clip.clip_id!r}")
    if images is None:
        images = [frame_bytes(clip, k) for k in range(t)]
    boxes = [o.box3d for o in clip.objects]
    visible = np.asarray(clip.visible, bool).reshape(t, n)
    score = np.asarray(clip.visible_score, np.int64).reshape(t, n)
    footprints = (
        np.zeros((n, 4, 2)) if clip.footprints is None else np.asarray(clip.footprints, f64)
    )
    frames = {
        "image": [bytes(b) for b in images],
        "image_format": [image_format(b) for b in images],
        "frame_id": [f.frame_id for f in clip.frames],
        "time": np.asarray(clip.frame_time, f64).reshape(t),
        "width": np.array([f.width for f in clip.frames], np.int32),
        "height": np.array([f.height for f in clip.frames], np.int32),
        "K": np.asarray(clip.K, f64).reshape(t, 3, 3),
        "world_from_cam": np.asarray(clip.world_from_cam, f64).reshape(t, 4, 4),
    }
    # Boxless objects get zeros and the identity (`has_box3d` false); reshaped so that no
    # objects still gives `[0, 3]`, `[0, 3, 3]`.
    centre = np.array([np.zeros(3) if b is None else b.centre for b in boxes], f64)
    extent = np.array([np.zeros(3) if b is None else b.extent for b in boxes], f64)
    rotation = np.array([np.eye(3) if b is None else b.rotation for b in boxes], f64)
    objects = {
        "index": np.array([o.index for o in clip.objects], np.int32),
        "category": [o.category for o in clip.objects],
        "caption": [o.caption or "" for o in clip.objects],
        "has_box3d": np.array([b is not None for b in boxes], bool),
        "centre": centre.reshape(n, 3),
        "extent": extent.reshape(n, 3),
        "rotation": rotation.reshape(n, 3, 3),
        "footprint": footprints.reshape(n, 4, 2),
        "visible": [visible[:, k] for k in range(n)],
        "visible_score": [score[:, k].astype(np.int32) for k in range(n)],
    }
    qa = {
        "task": [q.task for q in qas],
        "relation": [q.relation for q in qas],
        "kind": [q.kind for q in qas],
        "question": [q.question for q in qas],
        "answer": [q.answer for q in qas],
        "canonical": [q.canonical for q in qas],
        "choices": [list(q.choices) for q in qas],
        "frames": [np.asarray(q.frames, np.int32).reshape(-1) for q in qas],
        "objects": [np.asarray(q.objects, np.int32).reshape(-1) for q in qas],
        "value": np.array([_optional(q.value) for q in qas], f64),
        "unit": [q.unit or "" for q in qas],
        "template_id": [q.template_id for q in qas],
        "meta": [sorted_json(q.meta) for q in qas],
    }
    polygon = clip.room_polygon
    return {
        "key": clip_key(clip),
        "clip_id": clip.clip_id,
        "source": clip.source,
        "scene_id": clip.scene_id,
        "visibility_rule": clip.visibility_rule,
        "min_pixels": int(clip.min_pixels),
        "room_polygon": np.zeros((0, 2)) if polygon is None else np.asarray(polygon, f64),
        "room_area": _optional(clip.room_area),
        "room_height": _optional(clip.room_height),
        "has_footprints": clip.footprints is not None,
        "meta": sorted_json(clip.meta),
        "frames": frames,
        "objects": objects,
        "qa": qa,
    }


# ------------------------------------------------------------------------------------------
# Validation.


def clip_qa_problems(clip: Clip, qa: ClipQA) -> list[str]:
    """Why a question cannot be written with its clip (`"<rule>: <detail>"`), empty if valid.

    Rules: the clip's id; non-empty question and answer; a known task and kind; yes/no
    canonical in {yes, no}; multiple choice 2..8 non-empty choices with the canonical letter
    among them; a count's canonical a non-negative decimal integer; a number's value finite
    with a unit; frame and object positions in range and distinct; `meta` JSON-serializable.
    """
    problems = []
    if qa.clip_id != clip.clip_id:
        problems.append(f"clip_id: {qa.clip_id!r} is not {clip.clip_id!r}")
    if not isinstance(qa.question, str) or not qa.question.strip():
        problems.append("question_empty: no question text")
    if not isinstance(qa.answer, str) or not qa.answer.strip():
        problems.append("answer_empty: no answer text")
    if qa.task not in MULTI_VIEW_TASKS:
        problems.append(f"task_unknown: {qa.task!r}")
    if qa.kind == "yes_no":
        if qa.canonical not in ("yes", "no"):
            problems.append(f"yes_no_canonical: {qa.canonical!r}")
    elif qa.kind == "multiple_choice":
        if not 2 <= len(qa.choices) <= len(LETTERS):
            problems.append(f"choices_count: {len(qa.choices)}")
        elif any(not isinstance(c, str) or not c.strip() for c in qa.choices):
            problems.append("choices_empty: an empty choice")
        if qa.canonical not in LETTERS[: len(qa.choices)]:
            problems.append(f"choice_canonical: {qa.canonical!r} for {len(qa.choices)} choices")
    elif qa.kind == "count":
        c = qa.canonical
        if not (isinstance(c, str) and c.isdecimal() and c.isascii()):
            problems.append(f"count_canonical: {c!r} is not a non-negative integer")
    elif qa.kind == "number":
        if qa.value is None or not math.isfinite(float(qa.value)):
            problems.append(f"number_value: {qa.value!r} is not a finite number")
        if not qa.unit:
            problems.append("number_unit: a numeric answer needs a unit")
    else:
        problems.append(f"kind_unknown: {qa.kind!r}")
    if qa.value is not None and not math.isfinite(float(qa.value)):
        problems.append(f"value_finite: {qa.value!r}")
    if qa.kind != "multiple_choice" and qa.choices:
        problems.append(f"choices_unexpected: {qa.kind} with {len(qa.choices)} choices")
    for name, ids, size in (
        ("frame", qa.frames, clip.num_frames),
        ("object", qa.objects, clip.num_objects),
    ):
        ids = [int(i) for i in ids]
        if any(i < 0 or i >= size for i in ids):
            problems.append(f"{name}_ids_range: {ids} with {size} {name}s")
        if len(set(ids)) != len(ids):
            problems.append(f"{name}_ids_repeat: {ids}")
    try:
        sorted_json(qa.meta)
    except (TypeError, ValueError) as error:
        problems.append(f"meta_json: {error}")
    return problems


def valid_clip_qas(
    clip: Clip, qas: Sequence[ClipQA], report: validate.ValidationReport | None = None
) -> list[ClipQA]:
    """The questions that pass `clip_qa_problems`; the others are counted in `report`.

    `report.frames_*` count clips here (`ValidationReport` is shared with single frames).
    """
    report = report if report is not None else validate.ValidationReport()
    kept = []
    for number, qa in enumerate(qas):
        report.qa_checked += 1
        problems = clip_qa_problems(clip, qa)
        if problems:
            report.qa_rejected += 1
            report.reject(f"{clip_key(clip)}/{number}", problems)
        else:
            kept.append(qa)
    return kept


def verify_frames(images: Sequence[bytes]) -> None:
    """Decodes every frame fully: a truncated file fails here, not in a trainer.

    Raises:
      OSError: naming the first frame that does not decode.
    """
    from PIL import Image

    for t, data in enumerate(images):
        try:
            with Image.open(io.BytesIO(data)) as image:
                image.load()
        except (OSError, ValueError, SyntaxError) as error:
            raise OSError(f"frame {t} does not decode: {error}") from error


# ------------------------------------------------------------------------------------------
# Generation: a fixed group of scenes -> clips -> questions -> examples.


@dataclasses.dataclass(frozen=True)
class ClipSpec:
    """How clips are made, by value (Beam pickles it to every worker).

    Attributes:
      source: the source (`examples.SourceSpec`).
      num_frames: frames per clip (`multiview.clip.sample_clip`).
      mode: "uniform", "random" or "all".
      seed: the sampling seed of `mode="random"`.
      questions: `"module:function"`, a function `clips -> list[list[ClipQA]]` (one list per
        clip, in order), imported where the clips are made.
    """

    source: SourceSpec
    num_frames: int = 16
    mode: str = "uniform"
    seed: int = 0
    questions: str = DEFAULT_QUESTIONS


def resolve_questions(path: str) -> Callable[[list[Clip]], list[list[ClipQA]]]:
    """The function `"module:function"` names.

    Raises:
      ImportError: the module does not import or has no such function (the message says
        what the function must be).
    """
    module_name, sep, name = path.partition(":")
    if not sep or not module_name or not name:
        raise ImportError(f"questions {path!r} is not 'module:function'")
    try:
        function = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as error:
        raise ImportError(
            f"questions {path!r} cannot be imported ({type(error).__name__}: {error}); it must "
            "name a function clips -> list[list[ClipQA]]"
        ) from error
    if not callable(function):
        raise ImportError(f"questions {path!r} is not a function")
    return function


def generate_clip_shard(
    spec: ClipSpec,
    scene_ids: Sequence[str],
    report: validate.ValidationReport | None = None,
    skipped: list | None = None,
) -> Iterator[tuple[str, dict]]:
    """Clips of one scene group, their questions (one call, batched), valid examples.

    Args:
      spec: the source, sampling and question generator.
      scene_ids: the group (`examples.partition`).
      report: collects question validation counts and rejected clips.
      skipped: collects `{"scene_id", "reason", "file", "field"}` of scenes that could not
        be loaded, and clips whose frames do not decode.

    Yields:
      `(key, example)` per clip, in `scene_ids` order.
    """
    from jax_spatial.multiview.clip import load_clips

    report = report if report is not None else validate.ValidationReport()
    skipped = skipped if skipped is not None else []
    source = spec.source.build()
    clips = list(
        load_clips(
            source, spec.num_frames, spec.mode, ids=scene_ids, seed=spec.seed, skipped=skipped
        )
    )
    if not clips:
        return
    per_clip = list(resolve_questions(spec.questions)(clips))
    if len(per_clip) != len(clips):
        raise ValueError(
            f"questions {spec.questions!r} returned {len(per_clip)} lists for {len(clips)} clips"
        )
    for clip, qas in zip(clips, per_clip, strict=True):
        report.frames_checked += 1
        try:
            images = [frame_bytes(clip, t) for t in range(clip.num_frames)]
            verify_frames(images)
        except (OSError, ValueError) as error:
            report.frames_rejected += 1
            report.reject(clip_key(clip), [f"clip_frames: {error}"])
            skipped.append(
                {"scene_id": clip.scene_id, "reason": str(error), "file": None, "field": "image"}
            )
            continue
        kept = valid_clip_qas(clip, list(qas), report)
        yield clip_key(clip), clip_example(clip, kept, images)


__all__ = [
    "DEFAULT_QUESTIONS",
    "FRAME_FIELDS",
    "KINDS",
    "OBJECT_FIELDS",
    "QA_FIELDS",
    "ClipSpec",
    "clip_example",
    "clip_key",
    "clip_qa_problems",
    "features",
    "frame_bytes",
    "generate_clip_shard",
    "json_safe",
    "resolve_questions",
    "sorted_json",
    "valid_clip_qas",
    "verify_frames",
]
