"""Synthetic RGB-D frames with known boxes, for testing and benchmarking image-only lifting.

A tilted camera (pitch, roll) looks at yaw-rotated boxes standing on a floor in front of a back
wall. Depth is rendered exactly by ray casting (slab test per box, planes for floor and wall),
then made realistic in the ways that hurt lifting: depth noise that grows with distance (as
for stereo and ToF sensors and for monocular estimators), "flying pixels" at depth edges (a
pixel that straddles an object's silhouette gets a depth between foreground and background),
missing depth (0) and NaN holes. Instance masks are the exact visible silhouettes, as an
annotator or a segmenter would give them, so their boundary pixels carry the flying depth.

Everything is numpy on the host; `render_frame` returns a `SyntheticFrame` holding the
ground-truth boxes in the view frame next to the noisy inputs.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass
class SyntheticFrame:
    """One rendered frame and its ground truth.

    Attributes:
      depth: `[H, W]` float32 noisy camera-z depth, metres; 0 or NaN where missing.
      clean_depth: `[H, W]` float32 exact depth of the nearest surface.
      masks: `[M, H, W]` bool visible silhouette of each box (may be empty when hidden).
      K: `[3, 3]` intrinsics.
      pitch, roll: camera tilt (radians), `view_from_cam = frames.view_from_cam_rotation(...)`.
      view_from_cam: `[3, 3]` float64.
      centre, extent: `[M, 3]` ground-truth boxes in the view frame (x right, y forward, z up).
      yaw: `[M]` box heading about view z; `rotation` is `rotation_z(yaw)`.
      visible_points: list of `[P_i, 3]` exact view-frame surface points of each box that the
        camera sees (the best any lifting from this view can use).
    """

    depth: np.ndarray
    clean_depth: np.ndarray
    masks: np.ndarray
    K: np.ndarray
    pitch: float
    roll: float
    view_from_cam: np.ndarray
    centre: np.ndarray
    extent: np.ndarray
    yaw: np.ndarray
    visible_points: list


def view_from_cam_np(pitch: float, roll: float) -> np.ndarray:
    """numpy twin of `frames.view_from_cam_rotation` (the reference must not share code)."""
    cp, sp, cr, sr = np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    ry = np.array([[cr, 0, sr], [0, 1, 0], [-sr, 0, cr]])
    level = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])
    return rx @ ry @ level


def yaw_rotation_np(yaw) -> np.ndarray:
    """`[...]` -> `[..., 3, 3]` rotation about +z."""
    yaw = np.asarray(yaw, np.float64)
    c, s = np.cos(yaw), np.sin(yaw)
    o, z = np.ones_like(c), np.zeros_like(c)
    return np.stack(
        [np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2
    )


def _sample_boxes(rng, num, cam_height):
    """Non-overlapping boxes on the floor in front of the camera (view frame)."""
    centres, extents, yaws = [], [], []
    tries = 0
    while len(centres) < num and tries < 1000:
        tries += 1
        ext = np.array([rng.uniform(0.3, 1.4), rng.uniform(0.3, 1.4), rng.uniform(0.3, 1.3)])
        c = np.array([rng.uniform(-2.2, 2.2), rng.uniform(2.5, 7.0), -cam_height + ext[2] / 2])
        radius = 0.5 * np.hypot(ext[0], ext[1])
        if any(
            np.hypot(*(c[:2] - o[:2])) < radius + 0.5 * np.hypot(e[0], e[1]) + 0.1
            for o, e in zip(centres, extents, strict=True)
        ):
            continue
        centres.append(c)
        extents.append(ext)
        yaws.append(rng.uniform(-np.pi, np.pi))
    return np.array(centres), np.array(extents), np.array(yaws)


def _ray_box_t(origin_local, dir_local, half):
    """Slab test. `[3]`/`[R, 3]` box-local rays, `[3]` half extents -> `[R]` entry t (inf)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / dir_local
        t1 = (-half - origin_local) * inv
        t2 = (half - origin_local) * inv
    t_near = np.nanmax(np.minimum(t1, t2), axis=-1)
    t_far = np.nanmin(np.maximum(t1, t2), axis=-1)
    hit = (t_far >= t_near) & (t_near > 0)
    return np.where(hit, t_near, np.inf)


def render_frame(
    seed: int,
    width: int = 320,
    height: int = 240,
    num_objects: int | None = None,
    noise: float = 0.002,
    flying_fraction: float = 0.6,
    missing_fraction: float = 0.02,
    nan_fraction: float = 0.005,
) -> SyntheticFrame:
    """Renders one random frame.

    Args:
      seed: everything random follows from it.
      width, height: image size; the horizontal field of view is drawn in 55..75 degrees.
      num_objects: boxes to place (5..10 when None; fewer if they do not fit).
      noise: depth noise sigma is `noise * z**2` metres plus 3 mm (5 mm at 1 m, 3.5 cm at 4 m,
        8 cm at 6 m with the default): the quadratic growth of stereo and structured-light
        sensors, at about a Kinect's level.
      flying_fraction: share of depth-edge pixels whose depth is mixed with a neighbour's.
      missing_fraction, nan_fraction: share of pixels set to 0 / NaN.
    """
    rng = np.random.default_rng(seed)
    num = int(rng.integers(5, 11)) if num_objects is None else int(num_objects)
    pitch = float(np.deg2rad(rng.uniform(-25, 5)))
    roll = float(np.deg2rad(rng.uniform(-8, 8)))
    cam_height = rng.uniform(1.1, 1.7)
    hfov = np.deg2rad(rng.uniform(55, 75))
    f = 0.5 * width / np.tan(0.5 * hfov)
    K = np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]])
    view_from_cam = view_from_cam_np(pitch, roll)
    centre, extent, yaw = _sample_boxes(rng, num, cam_height)
    rotation = yaw_rotation_np(yaw)

    # Rays through pixel centres with camera z = 1, so the hit parameter t is the depth.
    u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    d_cam = np.stack([(u - K[0, 2]) / f, (v - K[1, 2]) / f, np.ones_like(u)], -1).reshape(-1, 3)
    d_view = d_cam @ view_from_cam.T

    t_all = []
    for c, e, r in zip(centre, extent, rotation, strict=True):
        t_all.append(_ray_box_t(r.T @ (-c), d_view @ r, 0.5 * e))
    with np.errstate(divide="ignore", invalid="ignore"):
        t_floor = np.where(d_view[:, 2] < -1e-6, -cam_height / d_view[:, 2], np.inf)
        t_wall = np.where(d_view[:, 1] > 1e-6, 9.0 / d_view[:, 1], np.inf)
    t_stack = np.stack(t_all + [t_floor, t_wall], 0)  # [M + 2, R]
    ids = np.argmin(t_stack, 0)
    t = np.min(t_stack, 0)
    t = np.where(np.isfinite(t), t, 0.0)
    clean = t.reshape(height, width).astype(np.float32)
    ids = ids.reshape(height, width)
    masks = (
        np.stack([ids == i for i in range(len(centre))], 0)
        if len(centre)
        else np.zeros((0, height, width), bool)
    )

    depth = clean + rng.normal(size=clean.shape) * (noise * clean**2 + 0.003)
    # Flying pixels: where a 4-neighbour is on another surface more than 10 cm away, the
    # sensor (or an estimator's smoothing) mixes the two depths.
    pad = np.pad(clean, 1, mode="edge")
    neighbours = np.stack(
        [pad[:-2, 1:-1], pad[2:, 1:-1], pad[1:-1, :-2], pad[1:-1, 2:]], 0
    )  # [4, H, W]
    gaps = np.abs(neighbours - clean[None])
    far = np.argmax(gaps, 0)
    edge = (gaps.max(0) > 0.1) & (rng.random(clean.shape) < flying_fraction)
    other = np.take_along_axis(neighbours, far[None], 0)[0]
    mix = rng.uniform(0.1, 0.9, clean.shape)
    depth = np.where(edge, (1 - mix) * clean + mix * other, depth)
    depth = np.where(rng.random(clean.shape) < missing_fraction, 0.0, depth)
    depth = np.where(rng.random(clean.shape) < nan_fraction, np.nan, depth).astype(np.float32)

    points_view = (d_view * t[:, None]).reshape(height, width, 3)
    visible = [points_view[m] for m in masks]
    return SyntheticFrame(
        depth=depth,
        clean_depth=clean,
        masks=masks,
        K=K,
        pitch=pitch,
        roll=roll,
        view_from_cam=view_from_cam,
        centre=centre.reshape(-1, 3),
        extent=extent.reshape(-1, 3),
        yaw=yaw,
        visible_points=visible,
    )


def wrap_quarter_turn(angle):
    """Maps a box heading to [-pi/4, pi/4): a box is the same box turned by 90 degrees."""
    return (np.asarray(angle) + np.pi / 4) % (np.pi / 2) - np.pi / 4


def canonical_extent(extent, yaw):
    """Reorders `[..., 3]` extents to match `wrap_quarter_turn(yaw)` (swaps x, y on odd turns)."""
    extent = np.asarray(extent, np.float64)
    quarter = np.floor((np.asarray(yaw) + np.pi / 4) / (np.pi / 2)).astype(int) % 2
    swapped = extent[..., [1, 0, 2]]
    return np.where(quarter[..., None] == 1, swapped, extent)
