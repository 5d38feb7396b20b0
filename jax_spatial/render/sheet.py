"""Contact sheets of renders (RGB, colourised depth, instance ids), for looking at the output.

`python bench/render_sheet.py --out /tmp/render_sheet.png` writes one; `procedural_rows` and
`mesh_tiles` are importable from a notebook.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw

from jax_spatial.render import meshes, rasterizer

# Anchors of a perceptual-ish colormap (dark blue -> teal -> yellow), near = bright.
_DEPTH_ANCHORS = np.array(
    [
        (0.05, 0.03, 0.25),
        (0.15, 0.35, 0.60),
        (0.15, 0.62, 0.55),
        (0.55, 0.80, 0.30),
        (0.98, 0.90, 0.15),
    ]
)


def colourise_depth(depth: np.ndarray, far: float | None = None) -> np.ndarray:
    """`[H, W]` metres -> `[H, W, 3]` uint8; 0 (no hit) is black, near is bright."""
    depth = np.asarray(depth, np.float64)
    hit = depth > 0
    far = far or (float(depth[hit].max()) if hit.any() else 1.0)
    t = np.clip(1.0 - depth / far, 0.0, 1.0) * (len(_DEPTH_ANCHORS) - 1)
    k = np.minimum(t.astype(int), len(_DEPTH_ANCHORS) - 2)
    f = (t - k)[..., None]
    rgb = _DEPTH_ANCHORS[k] * (1 - f) + _DEPTH_ANCHORS[k + 1] * f
    return (np.where(hit[..., None], rgb, 0.0) * 255).round().astype(np.uint8)


def colourise_ids(ids: np.ndarray) -> np.ndarray:
    """`[H, W]` int ids -> `[H, W, 3]` uint8 with a fixed hashed colour per id, -1 black."""
    ids = np.asarray(ids, np.int64)
    h = (ids * 2654435761) % (2**32)
    rgb = np.stack([(h >> s) & 255 for s in (0, 8, 16)], -1).astype(np.float64)
    rgb = 60 + rgb * (195 / 255)
    return np.where((ids >= 0)[..., None], rgb, 0).astype(np.uint8)


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """`[4, 4]` world_from_cam of an OpenCV camera at `eye` looking at `target` (z-up world)."""
    eye, target, up = (np.asarray(a, np.float64) for a in (eye, target, up))
    forward = target - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    pose = np.eye(4)
    pose[:3, :3] = np.stack([right, down, forward], 1)
    pose[:3, 3] = eye
    return pose


def _label(img: np.ndarray, text: str) -> np.ndarray:
    im = Image.fromarray(img)
    draw = ImageDraw.Draw(im)
    draw.rectangle([0, 0, 7 * len(text) + 6, 14], fill=(0, 0, 0))
    draw.text((3, 1), text, fill=(255, 255, 255))
    return np.asarray(im)


def procedural_rows(num_scenes: int = 3, seed: int = 0, **options) -> list[np.ndarray]:
    """One row per procedural view: RGB | depth | instance ids, each `[H, W, 3]` uint8."""
    from jax_spatial.sources.procedural import ProceduralSource

    source = ProceduralSource(None, num_scenes=num_scenes, seed=seed, **options)
    rows = []
    for scene_id in source.scene_ids():
        scene = source.load(scene_id)
        for frame in scene.frames:
            rgb = np.asarray(Image.open(io.BytesIO(frame.image_bytes)).convert("RGB"))
            ids = np.full(frame.depth.shape, -1, np.int64)
            from jax_spatial import masks as mask_lib

            for obj in scene.objects:
                if frame.frame_id in obj.masks:
                    ids[mask_lib.decode(obj.masks[frame.frame_id])] = obj.index
            seen = [o.caption or o.category for o in scene.objects if frame.frame_id in o.masks]
            rows.append(
                np.concatenate(
                    [
                        _label(rgb, f"{scene_id}/{frame.frame_id}"),
                        _label(
                            colourise_depth(frame.depth), f"depth max {frame.depth.max():.1f} m"
                        ),
                        _label(colourise_ids(ids), f"{len(seen)} objects"),
                    ],
                    1,
                )
            )
    return rows


def mesh_tiles(paths, size=(240, 240)) -> list[np.ndarray]:
    """Each mesh file rendered alone, scaled to 1 m, seen from the front-left and above."""
    h, w = size
    tiles = []
    f = 0.5 * w / np.tan(np.radians(25))
    K = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1.0]])
    for path in paths:
        mesh = meshes.normalised(meshes.load_mesh(path), 1.0)
        centre = mesh.bounds.mean(0)
        tris, textures = meshes.pack([(mesh, np.eye(4), 0)])
        eye = centre + 2.4 * np.array([-0.55, -0.75, 0.45])
        out = rasterizer.render(
            tris,
            textures,
            K,
            look_at(eye, centre),
            height=h,
            width=w,
            background=(0.22, 0.22, 0.26),
        )
        rgb = (np.asarray(out.rgb) * 255).round().astype(np.uint8)
        tiles.append(_label(rgb, path.name))
    return tiles


def grid(tiles: list[np.ndarray], columns: int) -> np.ndarray:
    """Tiles of equal size -> one image, row-major, padded with black."""
    h, w, _ = tiles[0].shape
    rows = -(-len(tiles) // columns)
    out = np.zeros((rows * h, columns * w, 3), np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        out[r * h : (r + 1) * h, c * w : (c + 1) * w] = tile
    return out
