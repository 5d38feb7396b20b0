"""Contact sheets of QA records: each image with the referenced boxes and its question/answer.

For looking at what the engine writes: every tile shows the frame, the boxes of the objects the
question mentions (first object red, second blue, others green) and, under it, the question,
the answer and the canonical answer.
"""

from __future__ import annotations

import pathlib
import random
import textwrap
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

COLOURS = ((230, 40, 40), (40, 110, 240), (40, 190, 70), (240, 170, 20))
TILE_W = 480
TEXT_H = 150


def _font(size: int):
    # Pillow ships a scalable default font; no download needed.
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: fixed bitmap font
        return ImageFont.load_default()


def render_record(record: dict, root: str | pathlib.Path) -> Image.Image:
    """One tile: the image scaled to `TILE_W` wide, boxes drawn, text underneath."""
    image = Image.open(pathlib.Path(root) / record["image"]).convert("RGB")
    scale = TILE_W / image.width
    image = image.resize((TILE_W, max(1, round(image.height * scale))))
    draw = ImageDraw.Draw(image)
    font = _font(13)
    for k, obj in enumerate(record["meta"]["objects"]):
        colour = COLOURS[min(k, len(COLOURS) - 1)]
        box = [v * scale for v in obj["box"]]
        draw.rectangle(box, outline=colour, width=3)
        label = f"{obj['category']} #{obj['index']}"
        draw.text(
            (box[0] + 3, box[1] + 2),
            label,
            fill=colour,
            font=font,
            stroke_width=2,
            stroke_fill=(0, 0, 0),
        )
    tile = Image.new("RGB", (TILE_W, image.height + TEXT_H), (255, 255, 255))
    tile.paste(image, (0, 0))
    draw = ImageDraw.Draw(tile)
    question = record["conversations"][0]["value"].replace("<image>\n", "")
    answer = record["conversations"][1]["value"]
    meta = record["meta"]
    text = "\n".join(
        textwrap.wrap("Q: " + question, 70)
        + textwrap.wrap("A: " + answer, 70)
        + [f"[{meta['task']} / {meta['relation']} / {meta['canonical']}]  {record['id']}"]
    )
    draw.multiline_text((6, image.height + 4), text, fill=(0, 0, 0), font=_font(12), spacing=2)
    return tile


def contact_sheet(tiles: Sequence[Image.Image], columns: int = 3) -> Image.Image:
    """Tiles in a grid, row height = tallest tile of the row, column width = widest tile."""
    tile_w = max(t.width for t in tiles)
    rows = [tiles[i : i + columns] for i in range(0, len(tiles), columns)]
    heights = [max(t.height for t in row) for row in rows]
    sheet = Image.new("RGB", (tile_w * columns, sum(heights)), (235, 235, 235))
    y = 0
    for row, h in zip(rows, heights, strict=True):
        for c, tile in enumerate(row):
            sheet.paste(tile, (c * tile_w, y))
        y += h
    return sheet


def sample_by_task(records: Sequence[dict], count: int, seed: int) -> list[dict]:
    """Up to `count` records, taken round-robin over `meta.task` after a seeded shuffle of each
    task's records, so every task shows on a sheet however lopsided the mix."""
    by_task: dict[str, list[dict]] = {}
    for record in records:
        by_task.setdefault(record["meta"]["task"], []).append(record)
    rng = random.Random(seed)
    for group in by_task.values():
        rng.shuffle(group)
    chosen: list[dict] = []
    while len(chosen) < count and any(by_task.values()):
        for group in by_task.values():
            if group and len(chosen) < count:
                chosen.append(group.pop())
    if not chosen:
        raise ValueError("no records to draw")
    return chosen


def save_contact_sheet(
    records: Sequence[dict],
    root: str | pathlib.Path,
    out: str | pathlib.Path,
    count: int = 12,
    seed: int = 0,
) -> pathlib.Path:
    """Samples `count` records (stratified by task so every task shows) and writes a PNG."""
    chosen = sample_by_task(records, count, seed)
    out = pathlib.Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet([render_record(r, root) for r in chosen]).save(out)
    return out
