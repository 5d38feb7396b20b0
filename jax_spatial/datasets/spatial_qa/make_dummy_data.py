r"""Writes `dummy_data/kitti/training/`: two tiny KITTI-layout frames made up from scratch.

    python jax_spatial/datasets/spatial_qa/make_dummy_data.py

The builder test runs the `kitti` config on them through `--manual_dir`, which exercises the
manual-data path (layout lookup, image bytes read from files) without any real dataset. Each
frame has a level camera (`P2 = [K | 0]`, `R0_rect = I`) and four objects standing on the road
1.6 m below it; labels are the devkit's format and 2D boxes are the projected 3D boxes, drawn
as flat coloured blocks on a sky/road background (a 240 x 80 PNG, a few kB).
"""

from __future__ import annotations

import pathlib

import numpy as np
from PIL import Image, ImageDraw

WIDTH, HEIGHT = 240, 80
K = np.array([[120.0, 0.0, 120.0], [0.0, 120.0, 40.0], [0.0, 0.0, 1.0]])
CAMERA_HEIGHT_M = 1.6
# (KITTI type, h, w, l, x, z, rotation_y, RGB): bottom centre at (x, CAMERA_HEIGHT_M, z).
FRAMES = {
    "000100": [
        ("Car", 1.5, 1.6, 3.9, -3.2, 12.0, 0.1, (200, 30, 30)),
        ("Car", 1.6, 1.7, 4.2, 3.5, 20.0, -0.2, (30, 60, 200)),
        ("Pedestrian", 1.75, 0.6, 0.8, 0.4, 7.0, 1.5, (240, 200, 20)),
        ("Cyclist", 1.7, 0.6, 1.8, -1.2, 25.0, 1.2, (20, 160, 60)),
    ],
    "000101": [
        ("Van", 2.1, 1.9, 4.8, 2.8, 10.0, 0.0, (230, 230, 230)),
        ("Car", 1.4, 1.6, 3.8, -3.0, 16.0, 0.3, (20, 20, 20)),
        ("Pedestrian", 1.65, 0.6, 0.7, -0.8, 6.0, -1.4, (160, 40, 160)),
        ("Truck", 3.2, 2.4, 8.0, 6.0, 30.0, 0.05, (120, 80, 40)),
    ],
}


def corners(h, w, length, x, z, rotation_y) -> np.ndarray:
    """`[8, 3]` rect-frame corners, as the devkit builds them."""
    xs = np.array([1, 1, -1, -1, 1, 1, -1, -1]) * length / 2
    ys = np.array([0, 0, 0, 0, -1, -1, -1, -1]) * h
    zs = np.array([1, -1, -1, 1, 1, -1, -1, 1]) * w / 2
    c, s = np.cos(rotation_y), np.sin(rotation_y)
    rot = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return (rot @ np.stack([xs, ys, zs])).T + np.array([x, CAMERA_HEIGHT_M, z])


def box2d(points: np.ndarray) -> np.ndarray:
    uvw = points @ K.T
    uv = uvw[:, :2] / uvw[:, 2:]
    lo = np.clip(uv.min(0), 0, [WIDTH, HEIGHT])
    hi = np.clip(uv.max(0), 0, [WIDTH, HEIGHT])
    return np.concatenate([lo, hi])


def write(root: pathlib.Path) -> None:
    split = root / "kitti" / "training"
    for sub in ("image_2", "label_2", "calib"):
        (split / sub).mkdir(parents=True, exist_ok=True)
    p2 = np.concatenate([K, np.zeros((3, 1))], axis=1)
    velo = np.array([[0, -1, 0, 0], [0, 0, -1, -0.08], [1, 0, 0, -0.27]], np.float64)
    calib = "".join(
        f"{name}: {' '.join(f'{v:.6e}' for v in matrix.reshape(-1))}\n"
        for name, matrix in (
            ("P0", p2),
            ("P1", p2),
            ("P2", p2),
            ("P3", p2),
            ("R0_rect", np.eye(3)),
            ("Tr_velo_to_cam", velo),
            ("Tr_imu_to_velo", velo),
        )
    )
    for frame_id, objects in FRAMES.items():
        image = Image.new("RGB", (WIDTH, HEIGHT), (150, 190, 230))
        draw = ImageDraw.Draw(image)
        draw.rectangle([0, HEIGHT // 2, WIDTH, HEIGHT], fill=(90, 90, 95))
        lines = []
        # Far to near, so nearer objects are drawn over farther ones as in a photo.
        for kind, h, w, length, x, z, ry, rgb in sorted(objects, key=lambda o: -o[5]):
            box = box2d(corners(h, w, length, x, z, ry))
            draw.rectangle([float(v) for v in box], fill=rgb)
            alpha = ry - np.arctan2(x, z)
            lines.append(
                f"{kind} 0.00 0 {alpha:.2f} {box[0]:.2f} {box[1]:.2f} {box[2]:.2f} {box[3]:.2f} "
                f"{h:.2f} {w:.2f} {length:.2f} {x:.2f} {CAMERA_HEIGHT_M:.2f} {z:.2f} {ry:.2f}"
            )
        image.save(split / "image_2" / f"{frame_id}.png", optimize=True)
        (split / "label_2" / f"{frame_id}.txt").write_text("\n".join(lines) + "\n")
        (split / "calib" / f"{frame_id}.txt").write_text(calib)


if __name__ == "__main__":
    write(pathlib.Path(__file__).resolve().parent / "dummy_data")
