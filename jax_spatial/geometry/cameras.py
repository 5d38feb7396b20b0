"""OpenCV pinhole cameras: projection and unprojection.

The camera frame `cam` is OpenCV's: x right, y down, z forward. Pixel coordinates put the
centre of the top-left pixel at (0.5, 0.5), so a pixel box `[x1, y1, x2, y2]` spans the
continuous image rectangle `[0, W] x [0, H]` (the convention of KITTI, COCO and InternVL).

Every function is written for one item with trailing axes (`(..., 3)` points, `(..., 3, 3)`
intrinsics) and broadcasts over leading axes, so it works unchanged under `jax.vmap` and `jit`.
"""

from __future__ import annotations

import jax.numpy as jnp

# Points closer than this to the image plane are not projected: it keeps the division stable
# and matches the near plane used when clipping boxes (`boxes.projected_box2d`).
NEAR_PLANE_M = 0.05


def intrinsics_matrix(fx, fy, cx, cy):
    """K from focal lengths and principal point. Scalars or `[...]` arrays -> `[..., 3, 3]`."""
    fx, fy, cx, cy = jnp.broadcast_arrays(*map(jnp.asarray, (fx, fy, cx, cy)))
    zero, one = jnp.zeros_like(fx), jnp.ones_like(fx)
    rows = [
        jnp.stack([fx, zero, cx], axis=-1),
        jnp.stack([zero, fy, cy], axis=-1),
        jnp.stack([zero, zero, one], axis=-1),
    ]
    return jnp.stack(rows, axis=-2)


def px_from_cam(points_cam, K):
    """Projects camera-frame points to pixels.

    Args:
      points_cam: `[..., 3]` points in the OpenCV camera frame.
      K: `[..., 3, 3]` intrinsics, broadcastable against the points' leading axes.

    Returns:
      `[..., 2]` pixel coordinates. Points with `z <= NEAR_PLANE_M` are divided by the near
      plane instead of their depth; mask them with `in_front` when that matters.
    """
    z = jnp.maximum(points_cam[..., 2:3], NEAR_PLANE_M)
    xy1 = jnp.concatenate([points_cam[..., :2] / z, jnp.ones_like(z)], axis=-1)
    uvw = jnp.einsum("...ij,...j->...i", K, xy1)
    return uvw[..., :2]


def cam_from_px(uv, depth, K):
    """Unprojects pixels with metric depth (camera z) to camera-frame points.

    Args:
      uv: `[..., 2]` pixel coordinates.
      depth: `[...]` camera z in metres.
      K: `[..., 3, 3]` intrinsics.

    Returns:
      `[..., 3]` points in the camera frame.
    """
    K = jnp.asarray(K)
    fx, fy = K[..., 0, 0], K[..., 1, 1]
    cx, cy = K[..., 0, 2], K[..., 1, 2]
    skew = K[..., 0, 1]
    y = (uv[..., 1] - cy) / fy
    x = (uv[..., 0] - cx - skew * y) / fx
    return jnp.stack([x * depth, y * depth, depth], axis=-1)


def in_front(points_cam, near=NEAR_PLANE_M):
    """`[..., 3]` -> `[...]` bool: the point lies beyond the near plane."""
    return points_cam[..., 2] > near


def in_image(uv, width, height):
    """`[..., 2]` -> `[...]` bool: the pixel lies inside the `[0, W] x [0, H]` rectangle."""
    return (uv[..., 0] >= 0) & (uv[..., 0] <= width) & (uv[..., 1] >= 0) & (uv[..., 1] <= height)
