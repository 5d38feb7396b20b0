"""Contact sheets of multi-view QA: each clip as a strip of its frames, the question below.

For looking at what the multi-view tasks write (`qa_clips.jsonl`): every tile shows the
frames the question is asked of (up to 8 per row), and, when the ground truth has the
room's floor plan, a top view: the room outline, every object's footprint (grey), the
objects the question names filled in mention order (red, blue, green, orange, purple), and
for routes the replayed path from the start (a dot) to the goal. Under it the question, the
answer and `[task / relation / canonical]`.
"""

from __future__ import annotations

import pathlib
import textwrap
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from jax_spatial.viz.qa_sheet import _font, contact_sheet, sample_by_task

COLOURS = ((220, 40, 40), (40, 100, 235), (30, 170, 60), (240, 150, 20), (150, 60, 200))
TILE_W = 720
PER_ROW = 8
PLAN = 220
WRAP = 84


def _strip(record: dict, root: pathlib.Path) -> Image.Image:
    """The record's frames in rows of `PER_ROW`, each thumbnail `TILE_W / PER_ROW` wide (two
    frames: half the tile each)."""
    paths = record["image"]
    per_row = min(PER_ROW, len(paths)) if len(paths) > 2 else 2
    thumb_w = TILE_W // per_row
    thumbs = []
    for k, path in enumerate(paths):
        image = Image.open(root / path).convert("RGB")
        h = max(1, round(image.height * thumb_w / image.width))
        image = image.resize((thumb_w, h))
        ImageDraw.Draw(image).text(
            (3, 2), str(k + 1), fill=(255, 255, 255), font=_font(11), stroke_width=2,
            stroke_fill=(0, 0, 0),
        )  # fmt: skip
        thumbs.append(image)
    rows = [thumbs[i : i + per_row] for i in range(0, len(thumbs), per_row)]
    height = sum(max(t.height for t in row) for row in rows)
    strip = Image.new("RGB", (TILE_W, height), (255, 255, 255))
    y = 0
    for row in rows:
        for c, t in enumerate(row):
            strip.paste(t, (c * thumb_w, y))
        y += max(t.height for t in row)
    return strip


def _plan(record: dict, truth) -> Image.Image | None:
    """Top view of the room with the question's objects (None without a floor polygon)."""
    if truth is None or truth.room_polygon is None or truth.footprints is None:
        return None
    poly = np.asarray(truth.room_polygon)
    lo, hi = poly.min(0), poly.max(0)
    scale = (PLAN - 16) / max(float(np.max(hi - lo)), 1e-6)

    def px(xy):
        xy = np.asarray(xy, float)
        # World y up is image row up: flip rows.
        return [(8 + (x - lo[0]) * scale, PLAN - 8 - (y - lo[1]) * scale) for x, y in xy]

    image = Image.new("RGB", (PLAN, PLAN), (250, 250, 250))
    draw = ImageDraw.Draw(image)
    draw.polygon(px(poly), outline=(0, 0, 0), fill=(236, 232, 222))
    named = [o["position"] for o in record["meta"]["objects"]]
    for fp in truth.footprints:
        draw.polygon(px(fp), outline=(120, 120, 120), fill=(205, 205, 205))
    for rank, k in enumerate(named):
        colour = COLOURS[min(rank, len(COLOURS) - 1)]
        draw.polygon(px(truth.footprints[k]), outline=colour, fill=colour)
        cx, cy = px([truth.footprints[k].mean(0)])[0]
        draw.text((cx + 4, cy - 6), str(rank + 1), fill=colour, font=_font(12),
                  stroke_width=2, stroke_fill=(255, 255, 255))  # fmt: skip
    waypoints = (record["meta"].get("qa_meta") or {}).get("waypoints")
    if waypoints:
        points = px(waypoints)
        draw.line(points, fill=(0, 0, 0), width=2)
        x, y = points[0]
        draw.ellipse((x - 4, y - 4, x + 4, y + 4), fill=(0, 0, 0))
    return image


def render_clip_record(record: dict, root, truth=None) -> Image.Image:
    """One tile: the frame strip, the top view (with `truth`, a `ClipTruth`), the text."""
    strip = _strip(record, pathlib.Path(root))
    plan = _plan(record, truth)
    meta = record["meta"]
    question = record["conversations"][0]["value"].rsplit("\n", 1)[-1]
    answer = record["conversations"][1]["value"]
    width = WRAP if plan is None else WRAP - 32
    lines = (
        textwrap.wrap("Q: " + question, width)
        + textwrap.wrap("A: " + answer, width)
        + [f"[{meta['task']} / {meta['relation']} / {meta['canonical']}]", record["id"]]
    )
    text_h = 8 + 15 * len(lines)
    body_h = max(text_h, PLAN if plan is not None else 0)
    tile = Image.new("RGB", (TILE_W, strip.height + body_h), (255, 255, 255))
    tile.paste(strip, (0, 0))
    x = 0
    if plan is not None:
        tile.paste(plan, (0, strip.height))
        x = PLAN + 6
    ImageDraw.Draw(tile).multiline_text(
        (x + 6, strip.height + 4), "\n".join(lines), fill=(0, 0, 0), font=_font(12), spacing=3
    )
    return tile


def save_clip_sheet(
    records: Sequence[dict],
    root,
    out,
    count: int = 12,
    seed: int = 0,
    truth=None,
    columns: int = 2,
) -> pathlib.Path:
    """Samples `count` records (stratified by task, so every task shows) and writes a PNG.

    Args:
      records: `qa_clips.jsonl` lines.
      root: the folder their `image` paths are relative to.
      out: the PNG to write.
      truth: a `ground_truth_clips.jsonl` (path) or a list of `ClipTruth`s, for top views.
    """
    from jax_spatial.writers.ground_truth_clips import read_ground_truth_clips

    if truth is not None and not isinstance(truth, list):
        truth = read_ground_truth_clips(truth)
    by_clip = {t.clip_id: t for t in truth or []}
    chosen = sample_by_task(records, count, seed)
    tiles = [render_clip_record(r, root, by_clip.get(r["meta"]["clip_id"])) for r in chosen]
    out = pathlib.Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(tiles, columns=columns).save(out)
    return out


__all__ = ["render_clip_record", "save_clip_sheet"]
