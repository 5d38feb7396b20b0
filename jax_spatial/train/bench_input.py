"""Decoding inputs from a benchmark folder (`jax-spatial bench build --out B`).

    items = read_bench(B)                                  # one dict per bench.jsonl line
    for batch in bench_prefix_batches(B, items, tokenizer, read_config, batch_size=64): ...

A bench item already carries its image(s) with the overlays drawn and its question in the
item's instruction format, so nothing is re-phrased or re-drawn here: the image is decoded,
letterboxed to the model's size and the question tokenized, exactly as the training input
(`train.data.render_question`) does after drawing. The prediction's `id` is the item's `id`,
which is what `jax-spatial score` keys on.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import numpy as np

from jax_spatial import reading
from jax_spatial.errors import UserError
from jax_spatial.train import batch as batch_lib

_REQUIRED = ("id", "images", "question", "canonical")


def _check_bench_item(item) -> str | None:
    """Why `item` cannot be predicted on, or None."""
    missing = [k for k in _REQUIRED if not isinstance(item, dict) or k not in item]
    if missing:
        return f"missing field(s) {', '.join(missing)}"
    if not isinstance(item["images"], list) or not item["images"]:
        return "field images must be a non-empty list"
    return None


def read_bench(bench_dir: str | pathlib.Path, limit: int | None = None) -> list[dict]:
    """The items of `bench_dir/bench.jsonl`; a missing folder or a bad line is a one-line error
    naming the file and line (a benchmark with a broken line is not scored half-way)."""
    from jax_spatial.benchmark.bench_items import read_bench_lines

    bench_dir = pathlib.Path(bench_dir).expanduser()
    path = bench_dir / "bench.jsonl"
    if not bench_dir.is_dir():
        raise UserError(f"bench folder {bench_dir} not found (build one: jax-spatial bench build)")
    if not path.is_file():
        raise UserError(f"{bench_dir} has no bench.jsonl (is it a bench folder?)")
    lines, _ = read_bench_lines(path, _check_bench_item, strict=True, limit=limit)
    if not lines:
        raise UserError(f"{path} has no items")
    return [item for _, item in lines]


def load_image(bench_dir: pathlib.Path, item: dict) -> np.ndarray:
    """The item's first image as `[H, W, 3]` uint8 (a frame-set item's first frame; the
    single-image models read one image)."""
    path = pathlib.Path(bench_dir) / item["images"][0]
    try:
        return reading.decode_image(path.read_bytes())
    except FileNotFoundError as error:
        raise UserError(f"bench item {item['id']}: image {path} not found") from error
    except OSError as error:  # PIL: truncated or not an image
        raise UserError(f"bench item {item['id']}: cannot read image {path}: {error}") from error


def item_meta(item: dict) -> dict:
    """The prediction line's meta, in the fields `train.decode.write_predictions` writes."""
    return {
        "qa_id": item["id"],
        "task": item.get("task", ""),
        "relation": item.get("relation", ""),
        "kind": item.get("answer_type", ""),
        "canonical": str(item["canonical"]),
        "format_id": item.get("format", ""),
        "question": item["question"],
        "answer": item.get("answer", ""),
        "choices": list(item.get("choices") or []),
        "source": item.get("source", ""),
        "scene_id": item.get("scene", ""),
    }


def bench_prefix_batches(
    bench_dir, items: list[dict], tokenizer, config, batch_size: int
) -> Iterator[dict]:
    """Like `train.data.prefix_batches`, from bench items: `image [B, H, W, 3]`, prefix
    `text`/`mask_*` `[B, L]`, `meta`, `target`, `valid` (the last batch is padded with copies
    of its first row)."""
    from jax_spatial.train.data import META_FIELDS, _Collate, collate_padded

    bench_dir = pathlib.Path(bench_dir).expanduser()
    collate = _Collate(tokenizer.pad_id, config.buckets)
    for start in range(0, len(items), batch_size):
        rows = []
        for item in items[start : start + batch_size]:
            image, _ = reading.letterbox(load_image(bench_dir, item), tuple(config.image_size))
            if config.blind:
                image = np.zeros_like(image)
            meta = item_meta(item)
            rows.append(
                {
                    "image": image,
                    **batch_lib.encode(tokenizer, item["question"], None),
                    **{f: meta[f] for f in META_FIELDS},
                    "meta": meta,
                    "target": batch_lib.target_text(meta, config.answer_style),
                }
            )
        yield collate_padded(collate, rows, batch_size)


__all__ = ["bench_prefix_batches", "item_meta", "load_image", "read_bench"]
