"""Oriented 3D boxes: corners, transforms, containment and their 2D projection.

A box is `(centre [..., 3], extent [..., 3], rotation [..., 3, 3])` in some frame F:
`extent` holds the full side lengths along the box's own x, y, z axes and `rotation` is
`F_from_box`, so a box-local point `q` sits at `centre + rotation @ q` in F.

Corner `k` (0..7) has signs `((k >> 2) & 1, (k >> 1) & 1, k & 1)` on (x, y, z), 0 meaning the
negative side; two corners share an edge when their indices differ in exactly one bit.
"""

from __future__ import annotations

import itertools

import jax.numpy as jnp
import numpy as np

from jax_spatial.geometry import cameras

CORNER_SIGNS = np.array(list(itertools.product((-1.0, 1.0), repeat=3)))  # [8, 3]
EDGES = np.array(
    [(a, b) for a in range(8) for b in range(a + 1, 8) if bin(a ^ b).count("1") == 1]
)  # [12, 2]


def box_corners(centre, extent, rotation):
    """`[..., 3]`, `[..., 3]`, `[..., 3, 3]` -> `[..., 8, 3]` corners in the box's frame F."""
    local = jnp.asarray(CORNER_SIGNS) * (0.5 * extent[..., None, :])
    return jnp.einsum("...ij,...kj->...ki", rotation, local) + centre[..., None, :]


def transform_box(a_from_b, centre_b, rotation_b):
    """Moves a box from frame b to frame a with a `[..., 4, 4]` transform; extent is unchanged."""
    rot = a_from_b[..., :3, :3]
    centre_a = jnp.einsum("...ij,...j->...i", rot, centre_b) + a_from_b[..., :3, 3]
    return centre_a, rot @ rotation_b


def axis_half_extent(extent, rotation):
    """Half-size of the box's axis-aligned bounding box in its frame. -> `[..., 3]`."""
    return jnp.einsum("...ij,...j->...i", jnp.abs(rotation), 0.5 * extent)


def volume(extent):
    """`[..., 3]` -> `[...]` cubic metres."""
    return jnp.prod(extent, axis=-1)


def points_in_box(points, centre, extent, rotation, margin=0.0):
    """Which points lie inside the box (grown by `margin` metres on every side).

    Args:
      points: `[..., P, 3]` in the box's frame.
      centre, extent, rotation: `[..., 3]`, `[..., 3]`, `[..., 3, 3]`.

    Returns:
      `[..., P]` bool.
    """
    local = jnp.einsum("...ji,...pj->...pi", rotation, points - centre[..., None, :])
    return jnp.all(jnp.abs(local) <= 0.5 * extent[..., None, :] + margin, axis=-1)


def projected_box2d(corners_cam, K, width, height, near=cameras.NEAR_PLANE_M):
    """Tight pixel box of a 3D box seen by a pinhole camera, clipped to the near plane and image.

    The box's 12 edges are cut at `z = near`, so a box that straddles the camera still gets the
    right extent instead of wrapping around through infinity.

    Args:
      corners_cam: `[..., 8, 3]` corners in the OpenCV camera frame (see `box_corners`).
      K: `[..., 3, 3]` intrinsics.
      width, height: image size in pixels (scalars or `[...]`).

    Returns:
      box: `[..., 4]` `(x1, y1, x2, y2)` clipped to `[0, W] x [0, H]`.
      visible: `[...]` bool, some part lies in front of the near plane and inside the image
        with positive area.
      box_unclipped: `[..., 4]` the same box before clipping to the image (near-plane clipped).
    """
    a = corners_cam[..., EDGES[:, 0], :]
    b = corners_cam[..., EDGES[:, 1], :]
    za, zb = a[..., 2], b[..., 2]
    crosses = (za - near) * (zb - near) < 0
    t = jnp.where(crosses, (near - za) / jnp.where(crosses, zb - za, 1.0), 0.0)
    cut = a + t[..., None] * (b - a)
    points = jnp.concatenate([corners_cam, cut], axis=-2)  # [..., 20, 3]
    keep = jnp.concatenate([corners_cam[..., 2] >= near, crosses], axis=-1)  # [..., 20]
    uv = cameras.px_from_cam(points, K[..., None, :, :])
    big = jnp.asarray(1e9, uv.dtype)
    lo = jnp.min(jnp.where(keep[..., None], uv, big), axis=-2)
    hi = jnp.max(jnp.where(keep[..., None], uv, -big), axis=-2)
    box_unclipped = jnp.concatenate([lo, hi], axis=-1)
    width = jnp.asarray(width, uv.dtype)[..., None]
    height = jnp.asarray(height, uv.dtype)[..., None]
    size = jnp.concatenate([width, height, width, height], axis=-1)
    box = jnp.clip(box_unclipped, 0.0, size)
    visible = jnp.any(keep, axis=-1) & (box[..., 2] > box[..., 0]) & (box[..., 3] > box[..., 1])
    return box, visible, box_unclipped
