"""Drawn overlay images for the JSONL export: one JPEG per (QA, drawn image prompt).

The formats of one QA that draw the same prompts (`caption/boxes`, `ref/boxes`, ...,
`image_text/boxes` share colours and objects) share one file,
`<out>/images/<qa id>__<image prompt>.jpg`; a frame's images are drawn in one jitted call per
chunk of `CHUNK` (padded, so a run compiles once per image size).
"""

from __future__ import annotations

import os
import pathlib

import numpy as np
from PIL import Image

from jax_spatial.formats import draw
from jax_spatial.formats.spec import FormattedQA
from jax_spatial.observe import FrameObservation
from jax_spatial.viz.overlay import load_image

# Images per device call: big enough to amortise dispatch, small enough that a 1296 x 968
# frame's float32 working copies stay a few hundred MB.
CHUNK = 8
# Prompts per image the drawing compiles for (questions reference at most two objects).
MIN_PROMPTS = 2
JPEG_QUALITY = 92
# Full-resolution colour (4:4:4): the default 4:2:0 halves the colour resolution, which washes
# a 2 px box border of a small frame into its neighbours, and the border's colour is what an
# "object in the red box" question names.
JPEG_SUBSAMPLING = 0


def frame_image(obs: FrameObservation, image_root: str | os.PathLike | None = None) -> np.ndarray:
    """`[H, W, 3]` uint8 frame, resized to the observation's size if the file differs."""
    encoded = obs.image_bytes if obs.image_bytes is not None else obs.image_path
    image = load_image(encoded, image_root)
    if image.size != (obs.width, obs.height):
        image = image.resize((obs.width, obs.height), Image.BILINEAR)
    return np.asarray(image, np.uint8)


def image_name(qa_id: str, image_prompt: str) -> str:
    """ "images/scannet/scene0000_00/00000/3__boxes.jpg" (relative to the output folder)."""
    return f"images/{qa_id}__{image_prompt}.jpg"


def write_frame_images(
    out_dir: str | pathlib.Path,
    obs: FrameObservation,
    items: list[tuple[str, FormattedQA]],
    image: np.ndarray,
) -> dict[tuple[str, str], str]:
    """Draws and writes the overlay images of one frame's formatted QA.

    Args:
      out_dir: the run's output folder.
      obs: the frame.
      items: (qa id, formatted QA) pairs; `raw` ones are skipped.
      image: `[H, W, 3]` uint8 the frame.

    Returns:
      {(qa id, image prompt): path relative to `out_dir`} for every drawn image.
    """
    out_dir = pathlib.Path(out_dir)
    jobs: dict[tuple[str, str], tuple] = {}
    for qa_id, fqa in items:
        if fqa.prompts:
            jobs.setdefault((qa_id, fqa.image_prompt), fqa.prompts)
    if not jobs:
        return {}
    H, W = image.shape[:2]
    style = draw.style_for(H, W)
    objects = sorted({p.object for prompts in jobs.values() for p in prompts})
    masks = draw.decode_masks(obs, objects)
    keys = list(jobs)
    written = {}
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start : start + CHUNK]
        prompt_lists = [jobs[k] for k in chunk] + [()] * (CHUNK - len(chunk))
        packed = draw.pack_prompts(prompt_lists, obs.box2d, masks, H, W, MIN_PROMPTS)
        batch = np.broadcast_to(image, (CHUNK, H, W, 3))
        drawn = np.asarray(draw.draw_prompts(batch, **packed, style=style))
        for k, key in enumerate(chunk):
            name = image_name(*key)
            path = out_dir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(drawn[k]).save(
                path, quality=JPEG_QUALITY, subsampling=JPEG_SUBSAMPLING
            )
            written[key] = name
    return written


__all__ = ["frame_image", "image_name", "write_frame_images"]
