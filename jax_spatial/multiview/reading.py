"""Reading `spatial_qa_clips` examples: back to `Clip` and `ClipQA`, and a grain pipeline.

    source = tfds.data_source("spatial_qa_clips/procedural_clips_small", split="train")
    clip, qas = clip_records(source[0])      # the Clip and ClipQAs the example was written from
    for batch in clip_qa_batches(source, batch_size=4, max_frames=16, image_size=(224, 224)):
        batch["frames"]        # [4, 16, 224, 224, 3] uint8, letterboxed, zero-padded
        batch["frame_valid"]   # [4, 16] bool
        batch["question"]      # 4 strings

`example_clip` rebuilds the clip exactly (geometry, times and numeric answers are stored as
float64, `datasets.clip_examples`), so `multiview.make_clip_batch([clip.arrays()])` and the
relations give what they gave before the clip was written. Frames keep their encoded bytes
(`Frame.image_bytes`); nothing is decoded until a frame is asked for.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import grain
import numpy as np

from jax_spatial.multiview.clip import Clip, sample_frame_indices
from jax_spatial.multiview.qa_types import ClipQA
from jax_spatial.reading import collate, decode_image, letterbox
from jax_spatial.scene import Box3D, Frame, SceneObject

# A clip with more questions than this is an error in the data: grain's flat map needs a bound.
MAX_QA_PER_CLIP = 1024


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _float_or_none(value) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def example_clip(example: dict) -> Clip:
    """The `Clip` an example was written from (frames hold the stored encoded bytes).

    Objects stored without a box (`has_box3d` false) come back with `box3d=None`; a source
    without footprints or a room polygon gives None for them.
    """
    frames_in, objects_in = example["frames"], example["objects"]
    t, n = len(frames_in["frame_id"]), len(objects_in["category"])
    K = np.asarray(frames_in["K"], np.float64).reshape(t, 3, 3)
    pose = np.asarray(frames_in["world_from_cam"], np.float64).reshape(t, 4, 4)
    frames = [
        Frame(
            frame_id=_text(frames_in["frame_id"][k]),
            width=int(frames_in["width"][k]),
            height=int(frames_in["height"][k]),
            K=K[k],
            world_from_cam=pose[k],
            image_bytes=bytes(frames_in["image"][k]),
        )
        for k in range(t)
    ]
    centre = np.asarray(objects_in["centre"], np.float64).reshape(n, 3)
    extent = np.asarray(objects_in["extent"], np.float64).reshape(n, 3)
    rotation = np.asarray(objects_in["rotation"], np.float64).reshape(n, 3, 3)
    has_box = np.asarray(objects_in["has_box3d"], bool).reshape(n)
    objects = [
        SceneObject(
            index=int(objects_in["index"][k]),
            category=_text(objects_in["category"][k]),
            box3d=Box3D(centre[k], extent[k], rotation[k]) if has_box[k] else None,
            caption=_text(objects_in["caption"][k]) or None,
        )
        for k in range(n)
    ]
    # Stored object-major (`objects/visible [T]` per object): back to the clip's `[T, N]`.
    visible = np.asarray(objects_in["visible"], bool).reshape(n, t).T
    score = np.asarray(objects_in["visible_score"], np.int64).reshape(n, t).T
    polygon = np.asarray(example["room_polygon"], np.float64).reshape(-1, 2)
    footprint = np.asarray(objects_in["footprint"], np.float64).reshape(n, 4, 2)
    return Clip(
        clip_id=_text(example["clip_id"]),
        scene_id=_text(example["scene_id"]),
        source=_text(example["source"]),
        frames=frames,
        frame_time=np.asarray(frames_in["time"], np.float64).reshape(t),
        objects=objects,
        visible=np.ascontiguousarray(visible),
        visible_score=np.ascontiguousarray(score),
        visibility_rule=_text(example["visibility_rule"]),
        min_pixels=int(example["min_pixels"]),
        room_polygon=polygon if len(polygon) else None,
        room_area=_float_or_none(example["room_area"]),
        room_height=_float_or_none(example["room_height"]),
        footprints=footprint if bool(example["has_footprints"]) else None,
        root=None,
        meta=json.loads(_text(example["meta"]) or "{}"),
    )


def example_clip_qa(example: dict, k: int) -> ClipQA:
    """Question `k` of a clip example as the `ClipQA` it was written from."""
    qa = example["qa"]
    unit = _text(qa["unit"][k])
    return ClipQA(
        clip_id=_text(example["clip_id"]),
        task=_text(qa["task"][k]),
        relation=_text(qa["relation"][k]),
        kind=_text(qa["kind"][k]),
        question=_text(qa["question"][k]),
        answer=_text(qa["answer"][k]),
        canonical=_text(qa["canonical"][k]),
        choices=[_text(c) for c in qa["choices"][k]],
        frames=[int(i) for i in qa["frames"][k]],
        objects=[int(i) for i in qa["objects"][k]],
        value=_float_or_none(qa["value"][k]),
        unit=unit or None,
        template_id=_text(qa["template_id"][k]),
        meta=json.loads(_text(qa["meta"][k]) or "{}"),
    )


def num_questions(example: dict) -> int:
    return len(example["qa"]["kind"])


def example_clip_qas(example: dict) -> list[ClipQA]:
    """Every question of a clip example, in stored order."""
    return [example_clip_qa(example, k) for k in range(num_questions(example))]


def clip_records(example: dict) -> tuple[Clip, list[ClipQA]]:
    """`(clip, questions)` of one example: what `writers.clip_jsonl` and the export take."""
    return example_clip(example), example_clip_qas(example)


def question_frames(qa: ClipQA, num_frames: int) -> list[int]:
    """The frame positions a question shows: its `frames`, or all of the clip's when empty."""
    return list(qa.frames) if qa.frames else list(range(num_frames))


def decode_frames(example: dict, frames: Sequence[int] | None = None) -> list[np.ndarray]:
    """Decoded frames `[H, W, 3]` uint8 of an example (all, or the positions in `frames`)."""
    images = example["frames"]["image"]
    picks = range(len(images)) if frames is None else frames
    return [decode_image(bytes(images[t])) for t in picks]


class _FlattenClipQA(grain.experimental.FlatMapTransform):
    """A clip example -> one element per question (the clip's fields shared, not copied)."""

    max_fan_out = MAX_QA_PER_CLIP

    def flat_map(self, example):
        return [(example, k) for k in range(num_questions(example))]


def clip_qa_element(example: dict, k: int, max_frames: int, image_size) -> dict:
    """Question `k` of a clip as fixed-shape arrays (what `clip_qa_dataset` yields).

    A question showing more than `max_frames` frames gets `max_frames` of them, spread
    evenly (the uniform rule clips are sampled by); fewer are zero-padded, `frame_valid`
    marking the real ones, so every element has the same shape.

    Returns:
      `frames [max_frames, H, W, 3]` uint8 (letterboxed to `image_size = (H, W)`),
      `frame_valid [max_frames]` bool, `frame_time [max_frames]` float32 seconds,
      `scale [max_frames]` float32 (pixel `(x, y)` of a frame lands at `(x, y) * scale`),
      and the question's text fields, `value` (float32, NaN when none) and `qa_id`.
    """
    qa = example_clip_qa(example, k)
    num_frames = len(example["frames"]["frame_id"])
    picks = question_frames(qa, num_frames)
    if len(picks) > max_frames:
        picks = [picks[i] for i in sample_frame_indices(len(picks), max_frames, "uniform")]
    height, width = image_size
    frames = np.zeros((max_frames, height, width, 3), np.uint8)
    scale = np.zeros(max_frames, np.float32)
    times = np.zeros(max_frames, np.float32)
    stored_times = np.asarray(example["frames"]["time"], np.float64).reshape(num_frames)
    for slot, (t, image) in enumerate(zip(picks, decode_frames(example, picks), strict=True)):
        frames[slot], scale[slot] = letterbox(image, image_size)
        times[slot] = stored_times[t]
    valid = np.arange(max_frames) < len(picks)
    return {
        "frames": frames,
        "frame_valid": valid,
        "frame_time": times,
        "scale": scale,
        "question": qa.question,
        "answer": qa.answer,
        "kind": qa.kind,
        "canonical": qa.canonical,
        "task": qa.task,
        "unit": qa.unit or "",
        "value": np.float32(np.nan if qa.value is None else qa.value),
        "qa_id": f"{_text(example['key'])}/{k}",
    }


def clip_qa_dataset(
    source,
    *,
    max_frames: int = 16,
    image_size: tuple[int, int] = (224, 224),
    seed: int = 0,
    shuffle: bool = True,
) -> grain.IterDataset:
    """A grain `IterDataset` of single clip questions (`clip_qa_element` each).

    Args:
      source: random-access clip examples (`tfds.data_source(...)`, or a list of dicts).
      max_frames: frames per element (static, for jit).
      image_size: `(H, W)` of every frame.
      seed: the clip shuffling seed.
      shuffle: shuffle clips (questions of a clip stay adjacent).
    """
    clips = grain.MapDataset.source(source)
    if shuffle:
        clips = clips.shuffle(seed=seed)
    flat = grain.experimental.FlatMapIterDataset(clips.to_iter_dataset(), _FlattenClipQA())
    return flat.map(lambda element: clip_qa_element(*element, max_frames, image_size))


def clip_qa_batches(
    source,
    *,
    batch_size: int,
    max_frames: int = 16,
    image_size: tuple[int, int] = (224, 224),
    seed: int = 0,
    shuffle: bool = True,
    drop_remainder: bool = False,
) -> grain.IterDataset:
    """`clip_qa_dataset` batched: `frames [B, F, H, W, 3]`, `frame_valid [B, F]`, text lists."""
    dataset = clip_qa_dataset(
        source, max_frames=max_frames, image_size=image_size, seed=seed, shuffle=shuffle
    )
    return dataset.batch(batch_size, drop_remainder=drop_remainder, batch_fn=collate)


__all__ = [
    "MAX_QA_PER_CLIP",
    "clip_qa_batches",
    "clip_qa_dataset",
    "clip_qa_element",
    "clip_records",
    "decode_frames",
    "example_clip",
    "example_clip_qa",
    "example_clip_qas",
    "num_questions",
    "question_frames",
]
