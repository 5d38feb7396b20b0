"""Pictures for looking at what a frame sees: pixel boxes, labels and projected 3D boxes.

These are debugging and review pictures drawn with PIL on the host (the training-time overlay
drawing is a separate, jitted path). Labels use PIL's built-in bitmap font so nothing is
downloaded.
"""

from __future__ import annotations

import colorsys
import io
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from jax_spatial.geometry import boxes


def load_image(path_or_bytes: str | os.PathLike | bytes, root: str | None = None) -> Image.Image:
    """Opens an encoded image (a path, relative to `root` when given, or the bytes) as RGB."""
    if isinstance(path_or_bytes, bytes | bytearray):
        image = Image.open(io.BytesIO(path_or_bytes))
    else:
        path = os.fspath(path_or_bytes)
        if root is not None and not os.path.isabs(path):
            path = os.path.join(root, path)
        image = Image.open(path)
    return image.convert("RGB")


def palette(n: int) -> list[tuple[int, int, int]]:
    """`n` distinct saturated colours, golden-ratio spaced in hue so neighbours differ most."""
    colours = []
    for i in range(n):
        hue = (i * 0.618033988749895) % 1.0
        r, g, b = colorsys.hsv_to_rgb(hue, 0.9, 1.0)
        colours.append((int(r * 255), int(g * 255), int(b * 255)))
    return colours


def project_corners(obs, index: int | None = None) -> np.ndarray:
    """Pixel positions of an observation's box corners: `[n, 8, 3]` (or `[8, 3]` for `index`).

    The last axis holds u, v and the corner's camera z; corners with z <= 0.05 m are behind the
    near plane and their u, v are meaningless.
    """
    cam_from_view = np.linalg.inv(np.asarray(obs.view_from_cam, np.float64))
    local = boxes.CORNER_SIGNS[None] * (0.5 * np.asarray(obs.extent)[:, None, :])
    corners_v = np.einsum("nij,nkj->nki", np.asarray(obs.rotation), local) + obs.centre[:, None]
    corners_c = corners_v @ cam_from_view[:3, :3].T + cam_from_view[:3, 3]
    z = corners_c[..., 2:3]
    uv = (corners_c / np.maximum(z, 1e-6)) @ np.asarray(obs.K).T
    out = np.concatenate([uv[..., :2], z], axis=-1)
    return out if index is None else out[index]


def draw_observation(
    image: Image.Image,
    obs,
    labels: bool = True,
    wireframe: bool = False,
    width: int = 3,
    font_size: int = 18,
    colours: list[tuple[int, int, int]] | None = None,
) -> Image.Image:
    """Draws each object of a `FrameObservation` onto a copy of `image`.

    Args:
      image: the frame's picture (`load_image(obs.image_path, scene.root)`).
      obs: an `observe.FrameObservation`.
      labels: write `"<object_index>:<category>"` at each box's top-left corner.
      wireframe: also draw the 3D box's 12 projected edges (edges behind the camera skipped).
      width: line width in pixels.
      font_size: label height in pixels where PIL has FreeType (its bundled font scales);
        otherwise PIL's fixed bitmap font is used.
      colours: one RGB per object; default a distinct palette keyed by `object_index`, so an
        object keeps its colour across frames.

    Returns:
      A new RGB image.
    """
    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    try:
        font = ImageFont.load_default(size=font_size)
    except (TypeError, ImportError, OSError):
        # Older PIL or no FreeType: the fixed-size bitmap font still reads.
        font = ImageFont.load_default()
    n = obs.num_objects
    if colours is None:
        keyed = palette(int(max(obs.object_index, default=-1)) + 1)
        colours = [keyed[int(i)] for i in obs.object_index]
    corners = project_corners(obs) if (wireframe and n) else None
    placed: list[tuple[float, float, float, float]] = []
    for k in range(n):
        colour = colours[k]
        if corners is not None:
            for a, b in boxes.EDGES:
                pa, pb = corners[k, a], corners[k, b]
                # An edge with an end behind the camera would project through infinity.
                if pa[2] > 0.05 and pb[2] > 0.05:
                    draw.line([tuple(pa[:2]), tuple(pb[:2])], fill=colour, width=max(1, width - 1))
        x1, y1, x2, y2 = (float(v) for v in obs.box2d[k])
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=width)
        if labels:
            text = f"{int(obs.object_index[k])}:{obs.categories[k]}"
            left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
            tw, th = right - left + 3, bottom - top + 3
            tx, ty = x1 + width, y1 + width
            # Boxes that share a corner would print their labels over each other: step down.
            while any(_overlaps((tx, ty, tx + tw, ty + th), r) for r in placed):
                ty += th + 1
            placed.append((tx, ty, tx + tw, ty + th))
            draw.rectangle([tx - 1, ty - 1, tx + tw - 1, ty + th - 1], fill=(0, 0, 0))
            draw.text((tx - left, ty - top), text, fill=colour, font=font)
    return out


def _overlaps(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
