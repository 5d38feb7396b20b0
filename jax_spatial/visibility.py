"""Occlusion: how much of each object a frame really shows.

`visible_fraction` answers, for each candidate object of a frame, "what fraction of the object's
own surface is not hidden by *something else*?". Self-occlusion (the back of a sofa behind its
front) does not count: a sofa seen whole scores about 1, one behind a wall about 0, one half
behind a chair about 0.5. Two evidence sources, used in this order:

**Depth map** (`frame.depth`, `[H, W]` metres of camera z, 0 = unknown). Every pixel (on a grid
of at most `DEPTH_MAX_SAMPLES` per object) whose ray crosses the object's 3D box is classified
by the measured depth `d` against the ray's entry and exit depths `(z_in, z_out)` into the box:

* seen: `z_in - tol <= d <= z_out + tol`, the measured surface lies in the box;
* hidden: `d < z_in - tol`, something in front of the box stops the ray;
* neither: `d > z_out + tol` (the ray passes through the box's empty space, e.g. under a table
  top or between chair legs) or `d == 0` (no measurement).

`fraction = seen / (seen + hidden)`, `count = seen`. `tol = max(DEPTH_TOL_M, DEPTH_TOL_REL * d)`.

**Scan points** (`scene.points`, `[P, 3]` world). The object's samples are the scene points
inside its box (grown by `BOX_MARGIN_M`) that are in front of the camera and project into the
image. Every other point is a potential occluder. Points are splatted into a z-buffer: a point
at depth `z` covers a square cell of `2^l` pixels, `l` the smallest level whose cell is at least
the point's projected spacing `f * spacing / z`, so a surface sampled every `spacing` metres
leaves no holes for samples behind it to leak through, at any distance. The levels form a
min-pyramid (cell `(u >> l, v >> l)` at level `l`); a sample's occluder depth is the minimum over
levels of the cell that holds its pixel. A separate pyramid is kept per object, built from the
points outside that object's box, which is what makes self-occlusion not count. A sample is
visible unless an occluder is nearer by more than `tol = max(POINTS_TOL_M, POINTS_TOL_REL * z)`.
`fraction = visible / samples`, `count = visible`.

`sample_box` is the pixel box `(x1, y1, x2, y2)` of the visible samples: of the seen pixels for a
depth map; of the visible points for a scan, grown on every side by half a point's projected
spacing (a sampled surface reaches half a spacing past its outermost sample) and clipped to
the image and to the object's projected 3D box. It is nan where nothing is visible.

Thresholds and why:

* `BOX_MARGIN_M = 0.02`: annotated boxes are tight to the mesh vertices the scan points are
  drawn from; 2 cm absorbs float32 rounding and boxes fitted a little inside the surface, and is
  below the scan's nearest-neighbour spacing (3.5 cm median on ScanNet), so the floor or wall an
  object touches barely enters its samples.
* `POINTS_TOL_M = 0.10`, `POINTS_TOL_REL = 0.05`: an occluder cell holds the nearest of the
  points splatted into it, which on a surface seen at a grazing angle is up to one cell's worth
  of depth in front of the sample behind it (the floor in front of a cabinet's foot); 10 cm is
  about two scan spacings and 5% of the depth covers the coarser cells far away.
* `DEPTH_TOL_M = 0.05`, `DEPTH_TOL_REL = 0.02`: structured-light and stereo depth errors grow
  with depth and are about 1-2% at a few metres; 5 cm also absorbs box annotation slack.
* `SPACING_SCALE = 1.5` times the median nearest-neighbour distance: the median understates the
  gaps of an unevenly sampled scan (its 90th percentile is about 1.6 x the median on ScanNet),
  and a gap in the z-buffer lets hidden samples through.
* `MAX_LEVEL = 7` (cells up to 128 px): a point closer than that would need a bigger splat is
  treated as a 128 px splat; at ScanNet spacing this is a point nearer than about 0.5 m.

**LiDAR sweeps** (`scene.meta["lidar_origin"]`, the sensor's `[3]` world position, set by the
KITTI and nuScenes readers). A spinning LiDAR samples angles, not metres: its returns lie on
rings a fixed elevation step apart (about 0.4 deg on KITTI's HDL-64E) and, along a ring, a
fixed azimuth step apart (0.1-0.2 deg), so the gap between neighbouring returns grows with
the range, and the gap to the next ring is several times the gap along a ring. The median
nearest-neighbour distance sees only the along-ring gap of the near points, and a surface
splatted that finely is a grid of horizontal stripes that hidden points show through. For a
sweep, `estimate_ring_spacing` measures the angular step instead: `SPACING_SCALE` times the
larger of the median gap along a ring and the median gap to the nearest return of another
ring (the nearest neighbour in azimuth/elevation whose elevation differs more than its
azimuth), and each point gets `spacing = angular step * its range from the sensor`. The
camera sits within a metre or two of the sensor, so a gap seen from the sensor at that angle
is about as wide seen from the camera. `scene.meta["point_spacing"]` (metres, one for all
points) still overrides both estimates.
"""

from __future__ import annotations

import numpy as np

from jax_spatial.geometry import cameras
from jax_spatial.scene import Frame, Scene

BOX_MARGIN_M = 0.02
POINTS_TOL_M = 0.10
POINTS_TOL_REL = 0.05
DEPTH_TOL_M = 0.05
DEPTH_TOL_REL = 0.02
SPACING_SCALE = 1.5
MAX_LEVEL = 7
# A depth-map object is judged on at most this many pixels (a regular grid over its box): the
# fraction's standard error is then below 1%, and a wall-sized box costs no more than a cup.
DEPTH_MAX_SAMPLES = 4096
# Nearest-neighbour spacing is estimated on at most this many points, enough for a stable median.
_SPACING_SUBSAMPLE = 5000
# Neighbours searched for the gap to the next ring: rings are 2-5 along-ring steps apart, so
# the first return of a neighbouring ring is among the nearest dozen in angle.
_RING_NEIGHBOURS = 32


def visible_fraction(
    scene: Scene,
    frame: Frame,
    centre_w: np.ndarray,
    extent: np.ndarray,
    rot_w: np.ndarray,
    candidates: np.ndarray,
    *,
    point_spacing: float | None = None,
):
    """Fraction of each candidate object's surface that `frame` shows (see module docstring).

    Args:
      scene: supplies `points` `[P, 3]` (world) when the frame has no depth.
      frame: supplies `K`, `world_from_cam`, image size and optionally `depth` `[H, W]`.
      centre_w, extent, rot_w: `[n, 3]`, `[n, 3]`, `[n, 3, 3]` world-frame boxes.
      candidates: `[n]` bool; only these are measured (the others get 0, 0, nan).
      point_spacing: metres between neighbouring scan points; when None, read from
        `scene.meta["point_spacing"]` or estimated (`point_spacings`: per point for a LiDAR
        sweep, one number for a scan).

    Returns:
      fraction: `[n]` float in [0, 1].
      count: `[n]` int, visible samples.
      sample_box: `[n, 4]` float pixel box of the visible samples, nan where none.
    """
    centre_w = np.asarray(centre_w, np.float64).reshape(-1, 3)
    extent = np.asarray(extent, np.float64).reshape(-1, 3)
    rot_w = np.asarray(rot_w, np.float64).reshape(-1, 3, 3)
    candidates = np.asarray(candidates, bool).reshape(-1)
    n = len(centre_w)
    fraction, count = np.zeros(n), np.zeros(n, np.int64)
    sample_box = np.full((n, 4), np.nan)
    if not candidates.any():
        return fraction, count, sample_box

    cam_from_world = np.linalg.inv(np.asarray(frame.world_from_cam, np.float64))
    centre_c = centre_w @ cam_from_world[:3, :3].T + cam_from_world[:3, 3]
    rot_c = cam_from_world[:3, :3] @ rot_w  # cam_from_box, [n, 3, 3]
    K = np.asarray(frame.K, np.float64)
    if frame.depth is not None:
        idx = np.flatnonzero(candidates)
        f, c, b = _depth_visibility(frame, K, centre_c[idx], extent[idx], rot_c[idx])
    elif scene.points is not None and len(scene.points):
        points_w = np.asarray(scene.points, np.float64)[:, :3]
        if point_spacing is None:
            point_spacing = point_spacings(scene, points_w)
        idx = np.flatnonzero(candidates)
        points_c = points_w @ cam_from_world[:3, :3].T + cam_from_world[:3, 3]
        f, c, b = _points_visibility(
            frame, K, points_c, centre_c[idx], extent[idx], rot_c[idx], point_spacing
        )
    else:
        # Nothing to measure with: the caller keeps the objects (fraction 1, no sample box).
        fraction[candidates] = 1.0
        return fraction, count, sample_box
    fraction[idx], count[idx], sample_box[idx] = f, c, b
    return fraction, count, sample_box


def point_samples(scene: Scene, frame: Frame, centre_w, extent, rot_w, candidates=None):
    """The scan-point rule's samples, for pictures and checks.

    Args: as `visible_fraction` (`candidates` defaults to all objects).

    Returns:
      dict of `object` `[S]` (index into the given boxes), `uv` `[S, 2]` pixels, `z` `[S]`
      camera depth, `occluder_z` `[S]` nearest other surface at that pixel (inf if none), and
      `visible` `[S]` bool.
    """
    centre_w = np.asarray(centre_w, np.float64).reshape(-1, 3)
    extent = np.asarray(extent, np.float64).reshape(-1, 3)
    rot_w = np.asarray(rot_w, np.float64).reshape(-1, 3, 3)
    n = len(centre_w)
    idx = np.flatnonzero(np.ones(n, bool) if candidates is None else np.asarray(candidates))
    cam_from_world = np.linalg.inv(np.asarray(frame.world_from_cam, np.float64))
    points_w = np.asarray(scene.points, np.float64)[:, :3]
    points_c = points_w @ cam_from_world[:3, :3].T + cam_from_world[:3, 3]
    out: dict = {}
    _points_visibility(
        frame,
        np.asarray(frame.K, np.float64),
        points_c,
        centre_w[idx] @ cam_from_world[:3, :3].T + cam_from_world[:3, 3],
        extent[idx],
        cam_from_world[:3, :3] @ rot_w[idx],
        point_spacings(scene, points_w),
        samples_out=out,
    )
    out["object"] = idx[out["object"]]
    return out


def point_spacings(scene: Scene, points_w: np.ndarray | None = None):
    """Metres between each scan point and its neighbours: a float, or `[P]` for a LiDAR sweep.

    `scene.meta["point_spacing"]` when set; else, when `scene.meta["lidar_origin"]` names the
    sensor's world position, `estimate_ring_spacing` times each point's range from it; else
    `estimate_spacing` of the points (see the module docstring).

    Args:
      scene: supplies `points` `[P, 3]` (world) and `meta`.
      points_w: the points, when the caller has them as float64 already.
    """
    meta = scene.meta or {}
    if meta.get("point_spacing") is not None:
        return float(meta["point_spacing"])
    if points_w is None:
        points_w = np.asarray(scene.points, np.float64)[:, :3]
    origin = meta.get("lidar_origin")
    if origin is None:
        return estimate_spacing(points_w)
    offset = points_w - np.asarray(origin, np.float64).reshape(1, 3)
    step = estimate_ring_spacing(offset)
    # A return nearer than 10 cm to the sensor is noise; the floor keeps its splat finite.
    return step * np.maximum(np.linalg.norm(offset, axis=-1), 0.1)


def estimate_ring_spacing(points: np.ndarray, seed: int = 0) -> float:
    """Angular step of a LiDAR sweep, radians: `SPACING_SCALE` x the larger of the median
    along-ring gap and the median gap to the next ring.

    Args:
      points: `[P, 3]` returns relative to the sensor, z up (any yaw).

    Returns:
      radians; 0.01 (about half a degree) when there are too few points to measure.
    """
    from scipy.spatial import cKDTree

    points = np.asarray(points, np.float64)
    horizontal = np.hypot(points[:, 0], points[:, 1])
    keep = horizontal > 1e-3
    if keep.sum() < 10:
        return 0.01
    # Azimuth is unwrapped around the sweep's mean direction so that +-pi does not split it.
    mean = np.arctan2(points[keep, 1].sum(), points[keep, 0].sum())
    azimuth = np.angle(np.exp(1j * (np.arctan2(points[keep, 1], points[keep, 0]) - mean)))
    elevation = np.arctan2(points[keep, 2], horizontal[keep])
    angles = np.stack([azimuth, elevation], axis=-1)
    rng = np.random.default_rng(seed)
    query = angles[rng.choice(len(angles), min(len(angles), _SPACING_SUBSAMPLE), replace=False)]
    k = min(_RING_NEIGHBOURS, len(angles))
    dist, nbr = cKDTree(angles).query(query, k=k)
    delta = angles[nbr] - query[:, None, :]
    distinct = dist > 0
    # Another ring: the elevation step dominates. Within a ring it is a small fraction of the
    # azimuth step, so the first such neighbour lies on the ring above or below; the first
    # neighbour where the azimuth step dominates is the next return along the same ring.
    across = distinct & (np.abs(delta[..., 1]) > np.abs(delta[..., 0]))
    along = np.where(distinct & ~across, dist, np.inf).min(axis=1)
    gap = np.where(across, dist, np.inf).min(axis=1)
    along, gap = along[np.isfinite(along)], gap[np.isfinite(gap)]
    if not len(along):
        return 0.01
    step = max(np.median(along), np.median(gap) if len(gap) else 0.0)
    return float(SPACING_SCALE * step)


def estimate_spacing(points: np.ndarray, seed: int = 0) -> float:
    """`SPACING_SCALE` x the median nearest-neighbour distance of `[P, 3]` points, metres."""
    from scipy.spatial import cKDTree

    points = np.asarray(points, np.float64)
    if len(points) < 2:
        return 0.05
    rng = np.random.default_rng(seed)
    query = points[rng.choice(len(points), min(len(points), _SPACING_SUBSAMPLE), replace=False)]
    dist, _ = cKDTree(points).query(query, k=2)
    positive = dist[:, 1][dist[:, 1] > 0]
    return float(SPACING_SCALE * np.median(positive)) if len(positive) else 0.05


def points_tolerance(z):
    """Depth tolerance for the point z-buffer, metres: `max(POINTS_TOL_M, POINTS_TOL_REL * z)`."""
    return np.maximum(POINTS_TOL_M, POINTS_TOL_REL * np.asarray(z))


def depth_tolerance(z):
    """Depth tolerance for depth maps, metres: `max(DEPTH_TOL_M, DEPTH_TOL_REL * z)`."""
    return np.maximum(DEPTH_TOL_M, DEPTH_TOL_REL * np.asarray(z))


def _projected_boxes(K, centre_c, extent, rot_c, width, height):
    """`[m, 4]` clipped pixel boxes and `[m]` far depth of camera-frame boxes (numpy)."""
    from jax_spatial.geometry import boxes

    local = boxes.CORNER_SIGNS[None] * (0.5 * extent[:, None, :])
    corners = np.einsum("nij,nkj->nki", rot_c, local) + centre_c[:, None, :]
    box, _, _ = boxes.projected_box2d(corners, K, width, height)
    return np.asarray(box, np.float64), corners[..., 2].max(axis=1)


def _points_visibility(frame, K, points_c, centre_c, extent, rot_c, spacing, samples_out=None):
    """Scan-point rule for `m` candidate boxes in the camera frame -> `[m]`, `[m]`, `[m, 4]`.

    `spacing` is metres, one float or `[P]` (one per point of `points_c` `[P, 3]`).

    When `samples_out` is a dict it receives the per-sample arrays (`object` `[S]`, `uv`
    `[S, 2]`, `z` `[S]`, `occluder_z` `[S]`, `visible` `[S]`) for pictures and tests.
    """
    m = len(centre_c)
    W, H = int(frame.width), int(frame.height)
    fx = float(max(K[0, 0], K[1, 1]))
    z = points_c[:, 2]
    front = z > cameras.NEAR_PLANE_M
    uv = np.asarray(cameras.px_from_cam(points_c, K), np.float64)
    in_img = front & (uv[:, 0] >= 0) & (uv[:, 0] < W) & (uv[:, 1] >= 0) & (uv[:, 1] < H)
    pts, uv, z = points_c[in_img], uv[in_img], z[in_img]
    spacing = np.asarray(spacing, np.float64)
    if spacing.ndim:  # one spacing per point (a LiDAR sweep)
        spacing = spacing[in_img]
    px = np.floor(uv).astype(np.int64)  # pixel holding the point
    spacing_px = fx * spacing / z
    level = np.clip(np.ceil(np.log2(np.maximum(spacing_px, 1.0))), 0, MAX_LEVEL).astype(np.int64)

    # inside[i, p]: point p belongs to object i (box grown by the margin).
    local = np.einsum("nji,npj->npi", rot_c, pts[None] - centre_c[:, None, :])
    inside = np.all(np.abs(local) <= 0.5 * extent[:, None, :] + BOX_MARGIN_M, axis=-1)

    box2d, far = _projected_boxes(K, centre_c, extent, rot_c, W, H)
    # Occluders of object i: points outside its box, nearer than its farthest corner, whose
    # splat cell can reach its projected box. Restricting to these keeps the pairs few.
    cell = (1 << level).astype(np.float64)
    reach = (
        (uv[None, :, 0] + cell >= box2d[:, None, 0])
        & (uv[None, :, 0] - cell <= box2d[:, None, 2])
        & (uv[None, :, 1] + cell >= box2d[:, None, 1])
        & (uv[None, :, 1] - cell <= box2d[:, None, 3])
    )
    occ = ~inside & reach & (z[None, :] < far[:, None])
    oi, op = np.nonzero(occ)
    levels = MAX_LEVEL + 1
    # One integer key per (object, level, cell); level-0 grid sizes bound every level's.
    gw, gh = W + 1, H + 1

    def key(obj, lev, u, v):
        return ((obj * levels + lev) * gh + (v >> lev)) * gw + (u >> lev)

    occ_key = key(oi, level[op], px[op, 0], px[op, 1])
    order = np.argsort(occ_key, kind="stable")
    occ_key, occ_z = occ_key[order], z[op][order]
    uniq, start = np.unique(occ_key, return_index=True)
    zmin = np.minimum.reduceat(occ_z, start) if len(occ_z) else np.zeros(0)

    si, sp = np.nonzero(inside)
    # Query every level's cell for each sample: [S, levels] keys, min over found ones.
    lev = np.arange(levels)[None, :]
    q = key(si[:, None], lev, px[sp, 0:1], px[sp, 1:2])
    pos = np.clip(np.searchsorted(uniq, q), 0, max(len(uniq) - 1, 0))
    found = (uniq[pos] == q) if len(uniq) else np.zeros(q.shape, bool)
    occluder_z = np.where(found, zmin[pos] if len(uniq) else np.inf, np.inf).min(axis=1)
    visible = occluder_z >= z[sp] - points_tolerance(z[sp])
    if samples_out is not None:
        samples_out.update(object=si, uv=uv[sp], z=z[sp], occluder_z=occluder_z, visible=visible)

    samples = np.bincount(si, minlength=m)
    count = np.bincount(si, weights=visible, minlength=m).astype(np.int64)
    fraction = np.where(samples > 0, count / np.maximum(samples, 1), 0.0)

    # Box of the visible samples, each grown by half its projected spacing.
    half = 0.5 * spacing_px[sp]
    vi = si[visible]
    lo = np.full((m, 2), np.inf)
    hi = np.full((m, 2), -np.inf)
    np.minimum.at(lo, vi, uv[sp][visible] - half[visible, None])
    np.maximum.at(hi, vi, uv[sp][visible] + half[visible, None])
    sample_box = np.concatenate([lo, hi], axis=1)
    sample_box = np.clip(sample_box, np.tile(box2d[:, :2], 2), np.tile(box2d[:, 2:], 2))
    sample_box[count == 0] = np.nan
    return fraction, count, sample_box


def _depth_visibility(frame, K, centre_c, extent, rot_c):
    """Depth-map rule for `m` candidate boxes in the camera frame -> `[m]`, `[m]`, `[m, 4]`."""
    depth = np.asarray(frame.depth, np.float64)
    H, W = depth.shape
    box2d, _ = _projected_boxes(K, centre_c, extent, rot_c, W, H)
    m = len(centre_c)
    fraction, count = np.zeros(m), np.zeros(m, np.int64)
    sample_box = np.full((m, 4), np.nan)
    Kinv = np.linalg.inv(K)
    # One object at a time: each gets its own pixel grid, vectorised within the object.
    for i in range(m):
        x1, y1, x2, y2 = box2d[i]
        u0, v0 = int(np.floor(x1)), int(np.floor(y1))
        u1, v1 = int(np.ceil(x2)), int(np.ceil(y2))
        u1, v1 = min(u1, W), min(v1, H)
        if u1 <= u0 or v1 <= v0:
            continue
        stride = max(1, int(np.ceil(np.sqrt((u1 - u0) * (v1 - v0) / DEPTH_MAX_SAMPLES))))
        us, vs = np.meshgrid(np.arange(u0, u1, stride), np.arange(v0, v1, stride))
        us, vs = us.ravel(), vs.ravel()
        d = depth[vs, us]
        # Ray through the pixel centre, scaled to camera z = 1, in box-local coordinates.
        rays = np.stack([us + 0.5, vs + 0.5, np.ones_like(us, float)], -1) @ Kinv.T
        o = -rot_c[i].T @ centre_c[i]  # camera centre in box coordinates
        r = rays @ rot_c[i]  # ray directions in box coordinates
        half = 0.5 * extent[i]
        with np.errstate(divide="ignore", invalid="ignore"):
            t1 = (-half - o) / r
            t2 = (half - o) / r
        tlo = np.where(r == 0, np.where(np.abs(o) <= half, -np.inf, np.inf), np.minimum(t1, t2))
        thi = np.where(r == 0, np.where(np.abs(o) <= half, np.inf, -np.inf), np.maximum(t1, t2))
        z_in = np.maximum(tlo.max(axis=1), cameras.NEAR_PLANE_M)
        z_out = thi.min(axis=1)
        crosses = z_out > z_in
        known = d > 0
        tol = depth_tolerance(d)
        seen = crosses & known & (d >= z_in - tol) & (d <= z_out + tol)
        hidden = crosses & known & (d < z_in - tol)
        n_seen, n_hidden = int(seen.sum()), int(hidden.sum())
        if n_seen + n_hidden:
            fraction[i] = n_seen / (n_seen + n_hidden)
        # The count is in pixels, not grid samples, so thresholds mean the same at any stride.
        count[i] = n_seen * stride * stride
        if n_seen:
            sample_box[i] = [
                us[seen].min(),
                vs[seen].min(),
                min(us[seen].max() + stride, W),
                min(vs[seen].max() + stride, H),
            ]
    return fraction, count, sample_box
