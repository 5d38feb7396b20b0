"""Contact sheet of one QA in every instruction format: the drawn image, the question, the answer.

    python -m jax_spatial.viz.formats_sheet docs/formats_sheet.png

writes the sheet for the procedural source (rendered by the project, masks included, so all
19 formats show). Only project-rendered images belong in the repository.
"""

from __future__ import annotations

import io
import pathlib
import sys
import textwrap
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from jax_spatial.formats.draw import render_formatted
from jax_spatial.formats.expand import expand_formats
from jax_spatial.formats.spec import FORMATS, FormattedQA
from jax_spatial.observe import FrameObservation
from jax_spatial.viz.qa_sheet import _font, contact_sheet
from jax_spatial.writers.jsonl import qa_id_of

TILE_W = 300
TEXT_H = 200
COLUMNS = 5
WRAP = 52


def format_tiles(
    image: np.ndarray, obs: FrameObservation, fqas: Sequence[FormattedQA]
) -> list[Image.Image]:
    """One tile per formatted QA: the drawn image scaled to `TILE_W`, its text underneath."""
    tiles = []
    for fqa in fqas:
        drawn = Image.fromarray(render_formatted(image, obs, fqa))
        scale = TILE_W / drawn.width
        drawn = drawn.resize((TILE_W, round(drawn.height * scale)), Image.BILINEAR)
        tile = Image.new("RGB", (TILE_W, drawn.height + TEXT_H), (255, 255, 255))
        tile.paste(drawn, (0, 0))
        pen = ImageDraw.Draw(tile)
        lines = [fqa.format_id]
        lines += textwrap.wrap("Q: " + fqa.question, WRAP)
        lines += textwrap.wrap("A: " + fqa.answer, WRAP)
        pen.multiline_text(
            (4, drawn.height + 3), "\n".join(lines[:15]), fill=(0, 0, 0), font=_font(10)
        )
        pen.rectangle([0, 0, TILE_W - 1, tile.height - 1], outline=(180, 180, 180))
        tiles.append(tile)
    return tiles


def procedural_examples(count: int = 2, max_scenes: int = 8):
    """(image, obs, qa, qa id) for `count` procedural QA that every format suits, of
    different tasks where possible (first found, deterministic)."""
    from jax_spatial import engine
    from jax_spatial.formats.expand import suitable_formats
    from jax_spatial.observe import observe_scene
    from jax_spatial.sources import get_source

    source = get_source("procedural", "")
    found, kinds = [], set()
    for scene_id in source.scene_ids()[:max_scenes]:
        observations = observe_scene(source.load(scene_id))
        for frame_qa in engine.questions_for_observations(observations, engine.GenerateConfig()):
            obs = frame_qa.observation
            for number, qa in enumerate(frame_qa.qas):
                key = (qa.task, qa.kind)
                if key in kinds or len(suitable_formats(obs, qa)) != len(FORMATS):
                    continue
                image = np.asarray(Image.open(io.BytesIO(obs.image_bytes)).convert("RGB"))
                found.append((image, obs, qa, qa_id_of(obs, number)))
                kinds.add(key)
                if len(found) == count:
                    return found
    return found


def save_formats_sheet(out: str | pathlib.Path, count: int = 2) -> pathlib.Path:
    """Writes a sheet of `count` procedural QA in all 19 formats (palette PNG, small)."""
    tiles = []
    for image, obs, qa, qa_id in procedural_examples(count):
        fqas = expand_formats(obs, qa, "all", seed=0, qa_id=qa_id)
        row_tiles = format_tiles(image, obs, fqas)
        # Start every QA on a new row so its 19 tiles read as a block.
        tiles += row_tiles + [Image.new("RGB", (TILE_W, 1), (235, 235, 235))] * (
            -len(row_tiles) % COLUMNS
        )
    out = pathlib.Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # 256-colour palette: the sheet is for reading, and it keeps the PNG small.
    contact_sheet(tiles, COLUMNS).quantize(256, dither=Image.Dither.NONE).save(out, optimize=True)
    return out


if __name__ == "__main__":
    print(save_formats_sheet(sys.argv[1] if len(sys.argv) > 1 else "docs/formats_sheet.png"))
