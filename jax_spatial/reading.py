"""Reading `spatial_qa` shards for training: grain pipeline, one element per question.

    source = tfds.data_source("spatial_qa/procedural_small", split="train")  # no TensorFlow
    for batch in qa_batches(source, batch_size=8, image_size=(224, 224), seed=0):
        batch["image"]      # [8, 224, 224, 3] uint8, overlays drawn, letterboxed
        batch["question"]   # 8 strings in the sampled formats

Stages (each a plain function, usable alone from a notebook):

    frames (random access) -> shuffle (per epoch) -> flatten QA -> sample a format
      -> decode image, draw the format's prompts -> letterbox to a fixed size -> batch

Formats: a stored question keeps its referenced objects and template slots, so
`formats.expand.expand_formats` re-phrases it in any suitable format and `formats.draw` draws
its boxes, masks or marks; a new format is drawn each epoch (the sampling seed comes from the
pipeline's per-element Generator). Without the formats package, questions are read as stored
(the "caption/raw" format).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence

import grain
import numpy as np
from PIL import Image

from jax_spatial.observe import FrameObservation
from jax_spatial.qa.types import QARecord

# A frame with more questions than this is an error in the data: grain's flat map needs a bound.
MAX_QA_PER_FRAME = 512


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def example_observation(example: dict) -> FrameObservation:
    """The `FrameObservation` an example was written from (float32 geometry, masks as RLE)."""
    objects = example["objects"]
    n = len(objects["category"])
    height, width = int(example["height"]), int(example["width"])
    masks = [
        {"size": [height, width], "counts": _text(rle)} if len(rle) else None
        for rle in objects["mask_rle"]
    ]
    return FrameObservation(
        scene_id=_text(example["scene_id"]),
        frame_id=_text(example["frame_id"]),
        source=_text(example["source"]),
        width=width,
        height=height,
        K=np.asarray(example["K"], np.float64),
        view_from_cam=np.asarray(example["view_from_cam"], np.float64),
        image_path=None,
        image_bytes=example["image"],
        object_index=np.asarray(objects["index"], np.int64).reshape(n),
        categories=[_text(c) for c in objects["category"]],
        captions=[_text(c) or None for c in objects["caption"]],
        centre=np.asarray(objects["centre"], np.float64).reshape(n, 3),
        extent=np.asarray(objects["extent"], np.float64).reshape(n, 3),
        rotation=np.asarray(objects["rotation"], np.float64).reshape(n, 3, 3),
        box2d=np.asarray(objects["box2d"], np.float64).reshape(n, 4),
        box2d_source=[_text(s) for s in objects["box2d_source"]],
        visibility=np.asarray(objects["visibility"], np.float64).reshape(n),
        exhaustive=bool(example["exhaustive"]),
        masks=masks if any(m is not None for m in masks) else [None] * n,
        # Examples written before the field: caption uniqueness is judged from the objects.
        referring=(
            [_text(w) or None for w in objects["referring"]] if "referring" in objects else None
        ),
    )


def example_qa(example: dict, k: int) -> QARecord:
    """Question `k` of an example as the engine's `QARecord`."""
    qa = example["qa"]

    def field(name, default=""):
        return _text(qa[name][k]) if name in qa else default

    return QARecord(
        task=field("task"),
        relation=field("relation"),
        kind=field("kind"),
        question=field("question"),
        answer=field("answer"),
        canonical=field("canonical"),
        choices=[_text(c) for c in qa["choices"][k]],
        objects=[int(i) for i in qa["objects"][k]],
        category=field("category") or None,
        template_id=field("template_id"),
        answer_template_id=field("answer_template_id"),
        slots=json.loads(field("slots", "{}") or "{}"),
        object_slots=json.loads(field("object_slots", "{}") or "{}"),
    )


def frame_records(example: dict) -> list[tuple[FrameObservation, QARecord, str]]:
    """An example's questions as `(observation, record, qa_id)`, `qa_id = "<key>/<k>"`."""
    obs = example_observation(example)
    key = _text(example["key"])
    return [(obs, example_qa(example, k), f"{key}/{k}") for k in range(len(example["qa"]["kind"]))]


def sample_format(obs: FrameObservation, qa: QARecord, qa_id: str, seed: int):
    """One suitable instruction format for the question (`FormattedQA`), or None without formats.

    `seed` varies per epoch; with `qa_id` it fixes the format, colours and labels.
    """
    try:
        from jax_spatial.formats.expand import expand_formats
    except ImportError:
        return None
    chosen = expand_formats(obs, qa, select=1, seed=seed, qa_id=qa_id)
    return chosen[0] if chosen else None


def decode_image(data: bytes) -> np.ndarray:
    """Encoded bytes -> `[H, W, 3]` uint8."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def letterbox(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """Resizes `[h, w, 3]` to fit `size = (H, W)` keeping the aspect, pads bottom/right with 0.

    Returns:
      (`[H, W, 3]` uint8, scale): pixel `(x, y)` of the input lands at `(x, y) * scale`.
    """
    out_h, out_w = size
    h, w = image.shape[:2]
    scale = min(out_h / h, out_w / w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    resized = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.BILINEAR))
    out = np.zeros((out_h, out_w, 3), np.uint8)
    out[:new_h, :new_w] = resized
    return out, scale


class _FlattenQA(grain.experimental.FlatMapTransform):
    """A frame example -> one element per question (the frame's fields shared, not copied)."""

    max_fan_out = MAX_QA_PER_FRAME

    def flat_map(self, example):
        return [(example, k) for k in range(len(example["qa"]["kind"]))]


def _format_and_draw(element, rng: np.random.Generator, image_size, draw: bool) -> dict:
    example, k = element
    obs = example_observation(example)
    qa = example_qa(example, k)
    qa_id = f"{_text(example['key'])}/{k}"
    fqa = sample_format(obs, qa, qa_id, int(rng.integers(2**31)))
    image = decode_image(example["image"])
    if fqa is not None and draw and fqa.prompts:
        from jax_spatial.formats import draw as draw_lib

        image = draw_lib.render_formatted(image, obs, fqa)
    image, scale = letterbox(image, image_size)
    return {
        "image": image,
        "scale": np.float32(scale),
        "question": fqa.question if fqa is not None else qa.question,
        "answer": fqa.answer if fqa is not None else qa.answer,
        "format_id": fqa.format_id if fqa is not None else "caption/raw",
        "canonical": qa.canonical,
        "kind": qa.kind,
        "task": qa.task,
        "qa_id": qa_id,
    }


def collate(items: Sequence[dict]) -> dict:
    """Stacks arrays (`[B, ...]`); strings stay lists."""
    out = {}
    for name in items[0]:
        values = [item[name] for item in items]
        out[name] = values if isinstance(values[0], str) else np.stack(values)
    return out


def qa_dataset(
    source,
    *,
    image_size: tuple[int, int] = (224, 224),
    seed: int = 0,
    shuffle: bool = True,
    draw: bool = True,
) -> grain.IterDataset:
    """A grain `IterDataset` of single questions (see the module docstring for the stages).

    Args:
      source: random-access frames (`tfds.data_source(..., split=...)`, or any sequence of
        example dicts).
      image_size: `(H, W)` of every output image.
      seed: shuffling and format-sampling seed.
      shuffle: shuffle frames (questions of a frame stay adjacent; shuffle further in a
        window downstream where that matters).
      draw: draw the sampled format's prompts on the image.
    """
    frames = grain.MapDataset.source(source)
    if shuffle:
        frames = frames.shuffle(seed=seed)
    flat = grain.experimental.FlatMapIterDataset(frames.to_iter_dataset(), _FlattenQA())
    return flat.random_map(
        lambda element, rng: _format_and_draw(element, rng, image_size, draw), seed=seed
    )


def qa_batches(
    source,
    *,
    batch_size: int,
    image_size: tuple[int, int] = (224, 224),
    seed: int = 0,
    shuffle: bool = True,
    draw: bool = True,
    drop_remainder: bool = False,
) -> grain.IterDataset:
    """`qa_dataset` batched: images `[B, H, W, 3]` uint8, `scale` `[B]`, text as lists."""
    return qa_dataset(source, image_size=image_size, seed=seed, shuffle=shuffle, draw=draw).batch(
        batch_size, drop_remainder=drop_remainder, batch_fn=collate
    )


__all__ = [
    "collate",
    "decode_image",
    "example_observation",
    "example_qa",
    "frame_records",
    "letterbox",
    "qa_batches",
    "qa_dataset",
    "sample_format",
]
