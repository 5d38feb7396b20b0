"""Image-only lifting: instance masks + metric depth + intrinsics + gravity -> view-frame boxes.

For a frame with no 3D annotation (a web photo with estimated depth, intrinsics and gravity,
or an RGB-D frame with masks but no boxes) each object's box is fitted to its own masked depth
pixels, lifted to the gravity-aligned view frame (x right, y forward, z up). Everything runs
under `jit` on padded objects with static shapes; `lift_frames` maps over frames.
`lift_objects_from_ids` / `lift_frames_from_ids` take one instance-id map per frame instead
of stacked masks.

Per object (the thresholds live in `LiftConfig`, each with its reason; docs/lifting.md has the
full story):

1. **Pixel box.** Each mask's tight pixel box from two any-reductions (rows, columns): the
   only work over the whole `[N, H, W]` mask stack (with an instance-id map, `ids == n` is
   compared inside those reductions and never stored).
2. **Sample grid.** Lay a `G x G` grid (G = `ceil(sqrt(max_points))`, 40) over the box and take
   one random pixel per cell (a fixed jitter table shifted by a random offset per object), so
   the sample spreads evenly over the object without aliasing and the shape is static. Boxes
   narrower than G pixels get every pixel once. Gather mask and depth at the samples only.
   Keep samples inside the mask with valid depth (finite and > 0; NaN counts as missing).
   Drop samples on a depth edge ("flying pixels", whose depth mixes object and background):
   the edge test of `depth_edge_erode` (or plain `erode`) evaluated on the
   `(2 erode_px + 1)^2` neighbourhood gathered around each sample, which gives exactly the
   full-image erosion at that pixel. Objects with fewer than `min_points` samples left fall
   back to their un-eroded samples. Work per frame is O(N G^2), whatever the image size.
3. **Lift** with `cameras.cam_from_px` at pixel centres and rotate by `view_from_cam`.
4. **Trim.** Drop samples whose camera depth is more than `mad_k` robust sigmas
   (1.4826 * MAD) from the object's median depth (never closer than `mad_floor_m`): this kills
   what erosion missed, background seen through holes and mask leaks onto other surfaces.
   Then trim the `trim_quantile` tails per view axis as a guard against isolated spikes.
   No sorts: the median and MAD by bisection (`masked_median`), the tails by partial sorts
   (`masked_tail_quantiles`, `lax.top_k`).
5. **Yaw** by the minimum-area rectangle over the kept points' horizontal footprint:
   `num_yaws` candidates in `[-pi/4, pi/4)` (a rectangle turned by 90 degrees is the same
   rectangle), then `refine_yaws` candidates around the best, all evaluated at once (one
   projection onto 4 directions per candidate and one max).
6. **Box** from the min/max of the kept points in the yaw-rotated frame; z from the kept
   points' min/max (z is gravity-aligned, so it needs no search).

Outputs for an object that is padding, or keeps fewer than `min_points` samples, have
`ok = False`, a zero box and the identity rotation.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from jax_spatial.geometry import cameras

# 1.4826 * MAD estimates the standard deviation of a Gaussian.
_MAD_TO_SIGMA = 1.4826

# A lifted box is complete (its size may be compared) only where at least this share of its
# mask has valid depth (finite, > 0). Depth sensors lose 2-5% of an object's pixels at its
# edges and on dark or shiny patches, which the box survives; a larger hole can take a whole
# end of the object, and the box fitted to the rest is too small while looking whole.
MIN_VALID_DEPTH_FRACTION = 0.9


@dataclasses.dataclass(frozen=True)
class LiftConfig:
    """Static thresholds of image-only lifting (hashable: it is a static jit argument)."""

    # A 40x40 grid over the object's pixel box pins down the extremes of a box to 1/40 of its
    # side in each image direction, finer than monocular depth error. Masks fill ~2/3 of their
    # box, so ~1000 samples land on the object; a 32x32 grid (1024) measured 3-12% worse
    # median extent errors on the bench (docs/lifting.md).
    max_points: int = 1600
    # One pixel of erosion removes the silhouette row where depth sensors and monocular
    # estimators blend object and background; more would cost thin objects (poles, chair legs)
    # most of their pixels.
    erode_px: int = 1
    edge_only: bool = True
    edge_jump_rel: float = 0.05
    edge_jump_min_m: float = 0.05
    # Below 20 samples neither the median/MAD nor the footprint rectangle is stable.
    min_points: int = 20
    # 5 robust sigmas: an object seen corner-on has most pixels on its front faces and a long
    # thin tail on a receding face, which 3 sigmas cut (measured on synthetic frames); 5 still
    # cuts background leaks metres behind the object.
    mad_k: float = 5.0
    # A frontal flat face has a MAD near the noise level (millimetres on clean depth): the floor
    # stops such an object from losing its own noisy points.
    mad_floor_m: float = 0.05
    # 1% per tail per axis: at most ~6% of the points, shrinking a uniform extent by ~2%,
    # which is well under the error of monocular depth, and it guards against the spikes that
    # survive the depth test (lateral mask leaks).
    trim_quantile: float = 0.01
    # 18 candidates = 5 degree steps over the quarter turn, then 11 within +-2.5 degrees
    # (0.5 degree steps): finer than the yaw noise of a box fitted to noisy depth.
    num_yaws: int = 18
    refine_yaws: int = 11
    # A box fitted to one visible face is flat along the depth direction; 1 cm keeps the
    # volume positive (Box3D and volume ratios need it) without pretending to know more.
    min_extent_m: float = 0.01
    # Former mask-grid stride. Sampling no longer reads whole masks, so it is not used by the
    # lifting any more; kept (with `stride_for`) so existing configs and callers still work.
    stride: int | None = None
    # Side G of the jittered sample grid laid over each object's pixel box; None: the smallest
    # grid with at least `max_points` cells. A grid with more than `max_points` cells is
    # subsampled to `max_points` usable samples (stratified, `sample_pixels`).
    sample_grid: int | None = None

    def grid_size(self) -> int:
        if self.sample_grid is not None:
            return int(self.sample_grid)
        return math.isqrt(self.max_points - 1) + 1

    def stride_for(self, height: int, width: int) -> int:
        if self.stride is not None:
            return int(self.stride)
        return max(1, math.ceil(math.sqrt(height * width / (320 * 240))))


@flax.struct.dataclass
class LiftedObjects:
    """Boxes lifted from one frame's masks (leading axes `[...]` are `[N]` or `[B, N]`).

    Attributes:
      centre: `[..., 3]` box centre in the view frame, metres.
      extent: `[..., 3]` full side lengths along the box axes.
      rotation: `[..., 3, 3]` view_from_box, a rotation about view z (yaw only).
      yaw: `[...]` box heading in `[-pi/4, pi/4)`, anticlockwise from view +x.
      ok: `[...]` bool: a real object with at least `min_points` kept samples.
      num_points: `[...]` int32 samples kept after trimming (<= max_points).
      num_pixels: `[...]` int32 mask pixels with valid depth, counted on the sample grid and
        scaled by the pixels per cell (exact for boxes at most G pixels on a side).
      visible_fraction: `[...]` mask pixels with valid depth / mask pixels (0 for empty), on
        the sample grid.
      box2d: `[..., 4]` tight pixel box of the full-resolution mask, NaN when empty.
    """

    centre: jnp.ndarray
    extent: jnp.ndarray
    rotation: jnp.ndarray
    yaw: jnp.ndarray
    ok: jnp.ndarray
    num_points: jnp.ndarray
    num_pixels: jnp.ndarray
    visible_fraction: jnp.ndarray
    box2d: jnp.ndarray


# --------------------------------------------------------------------------------------------
# Building blocks (one object, or `[N, ...]` by broadcasting)


def erode(masks, px: int):
    """Plain 8-neighbour erosion of `[..., H, W]` bool masks by `px` pixels.

    Outside the image counts as set, so an object cut by the image border keeps its border
    pixels: there is no depth edge there.
    """
    for _ in range(px):
        masks = masks & _all_neighbours(masks, fill=True)
    return masks


def _shifted(x, dy: int, dx: int, fill):
    """`x[..., i + dy, j + dx]` with `fill` outside the image. `[..., H, W]`."""
    h, w = x.shape[-2:]
    pad = [(0, 0)] * (x.ndim - 2) + [(1, 1), (1, 1)]
    return jnp.pad(x, pad, constant_values=fill)[..., 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]


_NEIGHBOURS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]


def _all_neighbours(masks, fill):
    out = masks
    for dy, dx in _NEIGHBOURS:
        out = out & _shifted(masks, dy, dx, fill)
    return out


def depth_edge_erode(masks, depth, depth_ok, jump_rel: float, jump_min_m: float, px: int):
    """Erodes masks only along depth edges, where flying pixels live.

    A mask pixel is dropped when one of its 8 neighbours lies outside the mask, has valid
    depth, and differs in depth by more than `max(jump_rel * depth, jump_min_m)`: the object's
    silhouette against a surface further back (or in front). Where the object meets a surface
    at the same depth (a box standing on the floor) or the image border, nothing is dropped,
    and a face seen at a grazing angle keeps all but its last pixel row, where plain erosion
    would remove such thin strips whole.

    Args:
      masks: `[N, H, W]` bool.
      depth: `[H, W]` metres; depth_ok: `[H, W]` bool valid depth.
      jump_rel, jump_min_m: the depth-jump threshold.
      px: how many times to repeat (each pass peels one pixel off the edge).

    Returns:
      `[N, H, W]` bool.
    """
    d = jnp.where(depth_ok, depth, 0.0)
    tol = jnp.maximum(jump_rel * d, jump_min_m)
    # Per direction, is the neighbour a valid pixel at a different depth? Shared by all objects.
    jumps = jnp.stack(
        [
            _shifted(depth_ok, dy, dx, False)
            & (jnp.abs(_shifted(d, dy, dx, 0.0) - d) > tol)
            & depth_ok
            for dy, dx in _NEIGHBOURS
        ]
    )  # [8, H, W]
    for _ in range(px):
        edge = jnp.zeros_like(masks)
        for j, (dy, dx) in enumerate(_NEIGHBOURS):
            edge = edge | (~_shifted(masks, dy, dx, True) & jumps[j])
        masks = masks & ~edge
    return masks


def _masked_sorted(values, weights):
    """`[..., S]` values, bool weights -> values sorted with the unweighted ones (inf) last."""
    return jnp.sort(jnp.where(weights, values, jnp.inf), axis=-1)


def masked_quantile(values, weights, q):
    """Linearly interpolated quantile of the weighted entries. `[..., S]` -> `[...]`.

    `q` may be a Python float or a `[Q]` array (then `[..., Q]`). Empty rows give inf.
    """
    q_arr = jnp.atleast_1d(jnp.asarray(q, values.dtype))
    sorted_v = _masked_sorted(values, weights)
    last = jnp.maximum(jnp.sum(weights, axis=-1) - 1, 0)[..., None]  # [..., 1]
    pos = q_arr * last  # [..., Q]
    lo = jnp.floor(pos).astype(jnp.int32)
    hi = jnp.minimum(lo + 1, last)
    v_lo = jnp.take_along_axis(sorted_v, lo, axis=-1)
    v_hi = jnp.take_along_axis(sorted_v, hi, axis=-1)
    # inf - inf would give NaN on empty rows; keep them at inf.
    out = jnp.where(v_hi == v_lo, v_lo, v_lo + (pos - lo) * (v_hi - v_lo))
    return out if jnp.ndim(q) else out[..., 0]


def masked_median(values, weights, iters: int = 24):
    """Median of the weighted entries by bisection on the value. `[..., S]` -> `[...]`.

    Each step counts the entries below the midpoint of the bracket (one fused compare-and-sum
    over `S`): `iters` steps shrink the bracket `[min, max]` by `2**iters`, e.g. to 0.6 um
    over 10 m with 24 steps, and cost far less than a sort on CPU. Returns the midpoint of the
    two middle order statistics' bracket for even counts (within the bracket width of
    `masked_quantile(values, weights, 0.5)`); empty rows give 0.
    """
    count = jnp.sum(weights, -1, dtype=jnp.int32)
    lo, hi = _masked_minmax(values, weights)
    lo = jnp.where(count > 0, lo, 0.0)
    hi = jnp.where(count > 0, hi, 0.0)
    # The smallest t with #(v <= t) >= ceil(c / 2) is the lower middle order statistic, the
    # smallest with #(v <= t) >= floor(c / 2) + 1 the upper one.
    need_lo = (count + 1) // 2
    need_hi = count // 2 + 1

    def step(_, bounds):
        lo1, hi1, lo2, hi2 = bounds
        mid1, mid2 = 0.5 * (lo1 + hi1), 0.5 * (lo2 + hi2)
        below1 = jnp.sum(weights & (values <= mid1[..., None]), -1, dtype=jnp.int32)
        below2 = jnp.sum(weights & (values <= mid2[..., None]), -1, dtype=jnp.int32)
        up1, up2 = below1 >= need_lo, below2 >= need_hi
        return (
            jnp.where(up1, lo1, mid1),
            jnp.where(up1, mid1, hi1),
            jnp.where(up2, lo2, mid2),
            jnp.where(up2, mid2, hi2),
        )

    _, hi1, _, hi2 = jax.lax.fori_loop(0, iters, step, (lo, hi, lo, hi))
    return 0.5 * (hi1 + hi2)


def masked_tail_quantiles(values, weights, q: float):
    """`(q, 1 - q)` quantiles of the weighted entries, as `masked_quantile`, for small `q`.

    Only the `floor(q (S - 1)) + 2` smallest and largest entries matter, so two partial sorts
    (`lax.top_k`) replace the full sort. `[..., S]` -> `[..., 2]`; empty rows give inf.
    """
    s = values.shape[-1]
    k = min(s, math.floor(q * (s - 1)) + 2)
    last = jnp.maximum(jnp.sum(weights, axis=-1) - 1, 0)  # [...]
    pos = q * last
    lo = jnp.minimum(jnp.floor(pos).astype(jnp.int32), k - 1)
    hi = jnp.minimum(jnp.minimum(lo + 1, last), k - 1)
    frac = pos - jnp.floor(pos)

    def interp(smallest):  # ascending k smallest (inf-padded) -> the q quantile
        v_lo = jnp.take_along_axis(smallest, lo[..., None], -1)[..., 0]
        v_hi = jnp.take_along_axis(smallest, hi[..., None], -1)[..., 0]
        return jnp.where(v_hi == v_lo, v_lo, v_lo + frac * (v_hi - v_lo))

    low = interp(-jax.lax.top_k(-jnp.where(weights, values, jnp.inf), k)[0])
    high = -interp(-jax.lax.top_k(jnp.where(weights, values, -jnp.inf), k)[0])
    return jnp.stack([low, high], -1)


def _masked_minmax(values, weights, axis=-1):
    lo = jnp.min(jnp.where(weights, values, jnp.inf), axis=axis)
    hi = jnp.max(jnp.where(weights, values, -jnp.inf), axis=axis)
    return lo, hi


def sample_pixels(select, key, num: int):
    """Stratified fixed-size sample of the set entries of a flat mask.

    Args:
      select: `[P]` bool, the pixels to sample from.
      key: PRNG key for the position inside each stratum.
      num: static sample size S.

    Returns:
      `([S] int32 flat indices, [S] bool weights)`. With c < S set pixels, the first c samples
      are exactly those pixels in raster order and the rest are weighted out.
    """
    count = jnp.sum(select, dtype=jnp.int32)
    ranks_seen = jnp.cumsum(select, dtype=jnp.int32)  # [P], non-decreasing
    k = jnp.arange(num, dtype=jnp.int32)
    jitter = jax.random.uniform(key, (num,))
    stratified = jnp.floor((k + jitter) * (count.astype(jnp.float32) / num)).astype(jnp.int32)
    rank = jnp.where(count > num, stratified, k)
    rank = jnp.clip(rank, 0, jnp.maximum(count - 1, 0))
    # The pixel of rank r is the first whose running count reaches r + 1.
    idx = jnp.searchsorted(ranks_seen, rank + 1, side="left", method="scan_unrolled")
    idx = jnp.clip(idx, 0, select.shape[0] - 1).astype(jnp.int32)
    return idx, k < count


def min_area_yaw(xy, weights, num_yaws: int, refine_yaws: int):
    """Heading of the minimum-area rectangle around weighted 2D points.

    Args:
      xy: `[..., S, 2]` horizontal coordinates.
      weights: `[..., S]` bool.
      num_yaws, refine_yaws: coarse candidates over `[-pi/4, pi/4)` and fine ones around the
        best coarse candidate (static).

    Returns:
      `[...]` yaw in `[-pi/4, pi/4)`.
    """
    step = (jnp.pi / 2) / num_yaws
    coarse = -jnp.pi / 4 + step * jnp.arange(num_yaws)

    def areas(yaws):  # yaws [..., Y] -> [..., Y]
        # The rectangle at yaw t spans max(p . d) + max(-p . d) along d = (cos t, sin t) and
        # the same along its normal: one matmul onto 4 directions per candidate, one max.
        c, s = jnp.cos(yaws), jnp.sin(yaws)
        dirs = jnp.stack([jnp.stack([c, s], -1), jnp.stack([-s, c], -1)], -2)  # [..., Y, 2, 2]
        dirs = jnp.concatenate([dirs, -dirs], -2)  # [..., Y, 4, 2]
        dirs = dirs.reshape(dirs.shape[:-3] + (-1, 2))  # [..., 4Y, 2]
        proj = jnp.einsum("...sd,...kd->...sk", xy, dirs)  # [..., S, 4Y]
        reach = jnp.max(jnp.where(weights[..., None], proj, -jnp.inf), axis=-2)
        reach = reach.reshape(reach.shape[:-1] + (-1, 4))  # [..., Y, 4]
        return (reach[..., 0] + reach[..., 2]) * (reach[..., 1] + reach[..., 3])

    batch = xy.shape[:-2]
    coarse_b = jnp.broadcast_to(coarse, batch + (num_yaws,))
    best = jnp.take_along_axis(coarse_b, jnp.argmin(areas(coarse_b), -1)[..., None], -1)
    fine = best + jnp.linspace(-step / 2, step / 2, refine_yaws)
    yaw = jnp.take_along_axis(fine, jnp.argmin(areas(fine), -1)[..., None], -1)[..., 0]
    return (yaw + jnp.pi / 4) % (jnp.pi / 2) - jnp.pi / 4


def _rotation_z(yaw):
    c, s = jnp.cos(yaw), jnp.sin(yaw)
    o, z = jnp.ones_like(c), jnp.zeros_like(c)
    return jnp.stack(
        [jnp.stack([c, -s, z], -1), jnp.stack([s, c, z], -1), jnp.stack([z, z, o], -1)], -2
    )


# --------------------------------------------------------------------------------------------
# One frame


def _bbox_from_any(rows, cols):
    """`[N, H]`, `[N, W]` any-reductions of masks -> int32 `(r0, r1, c0, c1)` (exclusive ends)
    and `[N]` bool nonempty. Empty masks give the empty range `[0, 0)`."""
    h, w = rows.shape[-1], cols.shape[-1]
    nonempty = cols.any(-1)
    r0 = jnp.argmax(rows, -1).astype(jnp.int32)
    r1 = (h - jnp.argmax(rows[..., ::-1], -1)).astype(jnp.int32)
    c0 = jnp.argmax(cols, -1).astype(jnp.int32)
    c1 = (w - jnp.argmax(cols[..., ::-1], -1)).astype(jnp.int32)
    zero = jnp.zeros_like(r0)
    return (
        jnp.where(nonempty, r0, zero),
        jnp.where(nonempty, r1, zero),
        jnp.where(nonempty, c0, zero),
        jnp.where(nonempty, c1, zero),
        nonempty,
    )


def grid_in_box(lo, hi, jitter, axis: int = -1):
    """Jittered positions of one axis of a sample grid over the pixel range `[lo, hi)`.

    Args:
      lo, hi: int32 pixel ranges (hi exclusive), broadcastable against `jitter`.
      jitter: uniform [0, 1) numbers, one per cell; its `axis` indexes the G static cells.
      axis: the cell axis of `jitter`.

    Returns:
      `(int32 positions, bool inside)` shaped like `jitter`. A range longer than G gets one
      random pixel in each of its G cells of `(hi - lo) / G` pixels; a shorter one gets every
      pixel once, in order, and the cells past `hi` are marked outside.
    """
    num = jitter.shape[axis]
    shape = [1] * jitter.ndim
    shape[axis] = num
    k = jnp.arange(num, dtype=jnp.float32).reshape(shape)
    extent = (hi - lo).astype(jnp.float32)
    frac = jnp.where(extent > num, jitter, 0.0)
    step = jnp.maximum(extent / num, 1.0)
    pos = lo + jnp.floor((k + frac) * step).astype(jnp.int32)
    pos = jnp.minimum(pos, jnp.maximum(hi - 1, lo))
    return pos, k < extent


def _erode_patches(inside, depth, depth_ok, passes: int, edge_only: bool, jump_rel, jump_min_m):
    """Centre pixel of `[P, P, ...]` patches (P = 2 passes + 1) after `passes` erosions.

    The same rule as `depth_edge_erode` (or `erode` when not `edge_only`) evaluated only where
    it is needed: each pass is exact on a patch one pixel smaller, so after `passes` passes
    the centre is exact. Outside the image must come in as `inside` True, `depth_ok` False.
    The patch axes lead, so every neighbour is one contiguous `[...]` array.
    """
    d = jnp.where(depth_ok, depth, 0.0)
    tol = jnp.maximum(jump_rel * d, jump_min_m)
    for _ in range(passes):
        p = inside.shape[0]

        def crop(x, dy=0, dx=0, p=p):
            return x[1 + dy : p - 1 + dy, 1 + dx : p - 1 + dx]

        edge = jnp.zeros((p - 2, p - 2) + inside.shape[2:], bool)
        for dy, dx in _NEIGHBOURS:
            outside = ~crop(inside, dy, dx)
            if edge_only:
                jump = jnp.abs(crop(d, dy, dx) - crop(d)) > crop(tol)
                outside = outside & crop(depth_ok, dy, dx) & jump & crop(depth_ok)
            edge = edge | outside
        inside = crop(inside) & ~edge
        d, tol, depth_ok = crop(d), crop(tol), crop(depth_ok)
    return inside[0, 0]


@functools.cache
def _jitter_table(g: int):
    """`[2, g, g]` fixed uniform jitters (a host constant, the same under jit and eagerly)."""
    return np.random.default_rng(0x5EED).random((2, g, g)).astype(np.float32)


def _sample_objects(depth, depth_ok, member, bbox, keys, config: LiftConfig):
    """Sample grids inside each object's pixel box, with the edge test at the samples only.

    Args:
      depth, depth_ok: `[H, W]`.
      member: `(flat [..., N, S] int32 pixel indices) -> [..., N, S] bool`, object n's mask
        at those pixels.
      bbox: `(r0, r1, c0, c1)` `[N]` int32.
      keys: `[N]` PRNG keys.

    Returns:
      `(rows [N, S], cols [N, S], select [N, S] bool, num_mask [N], num_pixels [N])`:
      candidate pixels and whether each is a usable sample (in the mask, valid depth, not
      peeled by the edge test; the un-eroded mask for objects that keep fewer than
      `min_points` candidates after the edge test), and the mask pixels (all / with valid
      depth) that the grid stands for: exact where the box is at most G pixels on a side,
      estimated from the stratified grid elsewhere.
    """
    h, w = depth.shape
    g = config.grid_size()
    r0, r1, c0, c1 = bbox

    # One jitter per cell and axis: a stratified 2D sample of the box. The per-cell jitters
    # are a fixed table shifted (mod 1) by one random offset per object and axis, which keeps
    # them independent across cells at the price of two random numbers per object.
    shift = jax.vmap(lambda k: jax.random.uniform(k, (2, 1, 1)))(keys)  # [N, 2, 1, 1]
    u = (_jitter_table(g)[None] + shift) % 1.0  # [N, 2, g(row), g(col)]
    box = lambda x: x[:, None, None]  # noqa: E731
    rows, r_in = grid_in_box(box(r0), box(r1), u[:, 0], axis=-2)  # [N, g(row), g(col)]
    cols, c_in = grid_in_box(box(c0), box(c1), u[:, 1], axis=-1)
    in_box = r_in & c_in
    # Pixels each grid cell stands for.
    cell_area = jnp.maximum((r1 - r0) / g, 1.0) * jnp.maximum((c1 - c0) / g, 1.0)
    n = rows.shape[0]
    rows, cols, in_box = rows.reshape(n, -1), cols.reshape(n, -1), in_box.reshape(n, -1)
    rows, cols, in_box = jax.lax.optimization_barrier((rows, cols, in_box))
    rad = config.erode_px
    off = jnp.arange(-rad, rad + 1, dtype=jnp.int32)
    pr = off[:, None, None, None] + rows  # [P, 1, N, S]
    pc = off[None, :, None, None] + cols  # [1, P, N, S]
    in_img = (pr >= 0) & (pr < h) & (pc >= 0) & (pc < w)  # [P, P, N, S]
    flat = jnp.clip(pr, 0, h - 1) * w + jnp.clip(pc, 0, w - 1)
    d = depth.reshape(-1)[flat]
    ok = depth_ok.reshape(-1)[flat] & in_img
    inside = member(flat) | ~in_img
    # Gather once: fused into the erosion below, XLA would redo each gather per use.
    inside, d, ok = jax.lax.optimization_barrier((inside, d, ok))
    centre_in = inside[rad, rad] & in_box
    centre_ok = ok[rad, rad]
    plain = centre_in & centre_ok
    eroded = _erode_patches(
        inside, d, ok, rad, config.edge_only, config.edge_jump_rel, config.edge_jump_min_m
    )
    eroded = eroded & plain
    use_eroded = jnp.sum(eroded, -1) >= config.min_points
    select = jnp.where(use_eroded[:, None], eroded, plain)
    num_mask = jnp.round(jnp.sum(centre_in, -1) * cell_area).astype(jnp.int32)
    num_pixels = jnp.round(jnp.sum(plain, -1) * cell_area).astype(jnp.int32)
    return rows, cols, select, num_mask, num_pixels


def _lift_sampled(depth, rows, cols, select, valid, keys, K, view_from_cam, config: LiftConfig):
    """Candidates -> `(points [N, M, 3], kept [N, M], sampled [N, M])`, M = max_points."""
    n, s = select.shape
    if s > config.max_points:
        # More usable candidates than the budget: a stratified subset in grid order.
        sub_keys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys)
        idx, sampled = jax.vmap(lambda sel, k: sample_pixels(sel, k, config.max_points))(
            select, sub_keys
        )
        rows = jnp.take_along_axis(rows, idx, -1)
        cols = jnp.take_along_axis(cols, idx, -1)
    else:
        sampled = select
    sampled = sampled & valid[:, None]
    w = depth.shape[1]
    uv = jnp.stack([cols + 0.5, rows + 0.5], -1).astype(jnp.float32)  # [N, M, 2]
    z = jnp.where(sampled, depth.reshape(-1)[rows * w + cols], 1.0)
    points = cameras.cam_from_px(uv, z, K) @ view_from_cam.T  # [N, M, 3]

    # Depth test around the median: flying pixels and background leaks.
    med = masked_median(z, sampled)
    mad = masked_median(jnp.abs(z - med[:, None]), sampled)
    tol = jnp.maximum(config.mad_k * _MAD_TO_SIGMA * mad, config.mad_floor_m)
    kept = sampled & (jnp.abs(z - med[:, None]) <= tol[:, None])
    if config.trim_quantile > 0:
        coords = jnp.moveaxis(points, -1, 1)  # [N, 3, M]
        bounds = masked_tail_quantiles(coords, kept[:, None, :], config.trim_quantile)
        inside = (coords >= bounds[..., :1]) & (coords <= bounds[..., 1:])
        kept = kept & jnp.all(inside, axis=1)
    return points, kept, sampled


def _prepare(depth, K, view_from_cam, key, n):
    depth = jnp.asarray(depth, jnp.float32)
    depth_ok = jnp.isfinite(depth) & (depth > 0)
    depth = jnp.where(depth_ok, depth, 0.0)
    K = jnp.asarray(K, jnp.float32)
    view_from_cam = jnp.asarray(view_from_cam, jnp.float32)[:3, :3]
    if key is None:
        key = jax.random.key(0)
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(n))
    return depth, depth_ok, K, view_from_cam, keys


def _lift_points_from(depth, member, rows_any, cols_any, valid, K, view_from_cam, key, config):
    """Shared body of the mask and id-map entry points."""
    n = valid.shape[0]
    depth, depth_ok, K, view_from_cam, keys = _prepare(depth, K, view_from_cam, key, n)
    r0, r1, c0, c1, _ = _bbox_from_any(rows_any, cols_any)
    rows, cols, select, num_mask, num_pixels = _sample_objects(
        depth, depth_ok, member, (r0, r1, c0, c1), keys, config
    )
    valid = jnp.asarray(valid, bool)
    points, kept, sampled = _lift_sampled(
        depth, rows, cols, select, valid, keys, K, view_from_cam, config
    )
    visible_fraction = jnp.where(num_mask > 0, num_pixels / jnp.maximum(num_mask, 1), 0.0)
    box2d = _box2d_from_any(rows_any, cols_any)
    return points, kept, sampled, num_pixels, visible_fraction, box2d


def lift_points(depth, masks, valid, K, view_from_cam, key=None, config: LiftConfig = LiftConfig()):
    """Samples, lifts and trims each object's depth pixels (the first half of `lift_objects`).

    Args:
      depth: `[H, W]` camera-z depth in metres; 0, negative or NaN = missing.
      masks: `[N, H, W]` bool instance masks (padded).
      valid: `[N]` bool real objects.
      K: `[3, 3]` intrinsics.
      view_from_cam: `[3, 3]` rotation (or `[4, 4]` transform; its rotation is used).
      key: PRNG key for the jittered sample grid; a fixed key when None, so lifting is
        deterministic. Object i always uses `fold_in(key, i)`, so padding changes nothing.
      config: thresholds.

    Returns:
      `(points [N, S, 3] view frame, kept [N, S] bool, sampled [N, S] bool,
      num_pixels [N] int32, visible_fraction [N])`; `sampled` marks real samples before
      trimming.
    """
    return _lift_points_masks(depth, masks, valid, K, view_from_cam, key, config)[:5]


def _lift_points_masks(depth, masks, valid, K, view_from_cam, key, config):
    masks = jnp.asarray(masks, bool)
    n, h, w = masks.shape
    flat_masks = masks.reshape(-1)
    base = (jnp.arange(n, dtype=jnp.int32) * (h * w))[:, None]

    def member(flat):  # [..., N, S] -> [..., N, S]: one flat gather, no transposes
        return flat_masks[flat + base]

    # The only full-image work: two any-reductions for each mask's pixel box.
    rows_any, cols_any = masks.any(-1), masks.any(-2)
    return _lift_points_from(
        depth, member, rows_any, cols_any, valid, K, view_from_cam, key, config
    )


def _lift_points_ids(depth, ids, valid, K, view_from_cam, key, config):
    ids = jnp.asarray(ids, jnp.int32)
    h, w = ids.shape
    n = valid.shape[0]
    obj = jnp.arange(n, dtype=jnp.int32)

    def member(flat):  # [..., N, S] -> [..., N, S]
        return ids.reshape(-1)[flat] == obj[:, None]

    # Per-object pixel boxes from per-row / per-column id sets ([N, H] and [N, W]).
    rows_any = jnp.any(ids[None, :, :] == obj[:, None, None], -1)
    cols_any = jnp.any(ids[None, :, :] == obj[:, None, None], -2)
    return _lift_points_from(
        depth, member, rows_any, cols_any, valid, K, view_from_cam, key, config
    )


def fit_boxes(points, kept, config: LiftConfig = LiftConfig()):
    """Gravity-aligned boxes around weighted view-frame points.

    Args:
      points: `[N, S, 3]` view frame.
      kept: `[N, S]` bool.

    Returns:
      `(centre [N, 3], extent [N, 3], rotation [N, 3, 3], yaw [N])`; garbage (possibly inf)
      where no point is kept: mask it with the point count.
    """
    yaw = min_area_yaw(points[..., :2], kept, config.num_yaws, config.refine_yaws)
    rotation = _rotation_z(yaw)
    local = jnp.einsum("nji,nsj->nsi", rotation, points)  # box_from_view = rotation^T
    lo, hi = _masked_minmax(local, kept[..., None], axis=-2)
    extent = jnp.maximum(hi - lo, config.min_extent_m)
    centre = jnp.einsum("nij,nj->ni", rotation, 0.5 * (lo + hi))
    return centre, extent, rotation, yaw


def _box2d_from_any(rows, cols):
    """`[N, H]`, `[N, W]` mask any-reductions -> `[N, 4]` float32 tight boxes, NaN when empty
    (see masks.mask_box)."""
    r0, r1, c0, c1, nonempty = _bbox_from_any(rows, cols)
    box = jnp.stack([c0, r0, c1, r1], -1).astype(jnp.float32)
    return jnp.where(nonempty[..., None], box, jnp.nan)


def _finish(points, kept, valid, num_pixels, visible_fraction, box2d, config):
    centre, extent, rotation, yaw = fit_boxes(points, kept, config)
    valid = jnp.asarray(valid, bool)
    num_points = jnp.sum(kept, -1, dtype=jnp.int32)
    ok = valid & (num_points >= config.min_points)
    ok = ok & jnp.all(jnp.isfinite(centre) & jnp.isfinite(extent), -1)
    eye = jnp.broadcast_to(jnp.eye(3, dtype=rotation.dtype), rotation.shape)
    return LiftedObjects(
        centre=jnp.where(ok[:, None], centre, 0.0),
        extent=jnp.where(ok[:, None], extent, 0.0),
        rotation=jnp.where(ok[:, None, None], rotation, eye),
        yaw=jnp.where(ok, yaw, 0.0),
        ok=ok,
        num_points=jnp.where(valid, num_points, 0),
        num_pixels=jnp.where(valid, num_pixels, 0),
        visible_fraction=jnp.where(valid, visible_fraction, 0.0),
        box2d=jnp.where(valid[:, None], box2d, jnp.nan),
    )


def lift_objects_unjitted(
    depth, masks, valid, K, view_from_cam, key=None, config: LiftConfig = LiftConfig()
):
    """Lifts the masked objects of one frame to gravity-aligned view-frame boxes.

    `lift_objects` is this function under `jax.jit` (with `config` static).

    Args:
      depth: `[H, W]` metres (0 / NaN missing).
      masks: `[N, H, W]` bool.
      valid: `[N]` bool.
      K: `[3, 3]`.
      view_from_cam: `[3, 3]` (`frames.view_from_cam_rotation(pitch, roll)`) or `[4, 4]`.
      key: optional PRNG key (see `lift_points`).
      config: static thresholds.

    Returns:
      `LiftedObjects` with `[N, ...]` fields.
    """
    points, kept, _, num_pixels, vis, box2d = _lift_points_masks(
        depth, masks, valid, K, view_from_cam, key, config
    )
    return _finish(points, kept, valid, num_pixels, vis, box2d, config)


def lift_objects_from_ids_unjitted(
    depth, ids, valid, K, view_from_cam, key=None, config: LiftConfig = LiftConfig()
):
    """`lift_objects_unjitted` with the masks given as one instance-id map.

    Args:
      depth: `[H, W]` metres (0 / NaN missing).
      ids: `[H, W]` int: pixel `(i, j)` belongs to object `ids[i, j]`; any value outside
        `[0, N)` (e.g. -1) is background. This is how renderers and most datasets store
        instances, and it is N times smaller than stacked masks.
      valid: `[N]` bool real objects (fixes N).
      K, view_from_cam, key, config: as `lift_objects_unjitted`.

    Returns:
      `LiftedObjects` with `[N, ...]` fields, equal to `lift_objects` on the masks
      `ids == n`.
    """
    points, kept, _, num_pixels, vis, box2d = _lift_points_ids(
        depth, ids, valid, K, view_from_cam, key, config
    )
    return _finish(points, kept, valid, num_pixels, vis, box2d, config)


lift_objects = jax.jit(lift_objects_unjitted, static_argnames=("config",))
lift_objects_from_ids = jax.jit(lift_objects_from_ids_unjitted, static_argnames=("config",))


def _map_frames(one_frame, args, map_batch):
    if map_batch is None:
        return jax.vmap(one_frame)(args)
    return jax.lax.map(one_frame, args, batch_size=map_batch)


@functools.partial(jax.jit, static_argnames=("config", "map_batch"))
def lift_frames(
    depth,
    masks,
    valid,
    K,
    view_from_cam,
    keys=None,
    config: LiftConfig = LiftConfig(),
    map_batch: int | None = None,
):
    """`lift_objects` over a batch of frames.

    Args:
      depth: `[B, H, W]`; masks: `[B, N, H, W]`; valid: `[B, N]`; K: `[B, 3, 3]`;
      view_from_cam: `[B, 3, 3]`.
      keys: optional `[B]` PRNG keys, one per frame. When None every frame uses the fixed key
        of `lift_objects`, so a frame's boxes do not depend on its position in the batch
        (outputs must not depend on how frames were batched across workers).
      map_batch: None vmaps all frames at once (accelerators); an int runs that many frames
        at a time with `lax.map`, which is faster on CPU (1: ~1.5x faster than vmap on the
        bench, whose batched gathers and reductions fall out of cache). The results are the
        same.

    Returns:
      `LiftedObjects` with `[B, N, ...]` fields.
    """
    if keys is None:
        keys = jnp.broadcast_to(jax.random.key(0), depth.shape[:1])
    one = lambda args: lift_objects_unjitted(*args, config=config)  # noqa: E731
    return _map_frames(one, (depth, masks, valid, K, view_from_cam, keys), map_batch)


@functools.partial(jax.jit, static_argnames=("config", "map_batch"))
def lift_frames_from_ids(
    depth,
    ids,
    valid,
    K,
    view_from_cam,
    keys=None,
    config: LiftConfig = LiftConfig(),
    map_batch: int | None = None,
):
    """`lift_objects_from_ids` over a batch of frames: `ids` is `[B, H, W]` int, the rest as
    `lift_frames`. Returns `LiftedObjects` with `[B, N, ...]` fields."""
    if keys is None:
        keys = jnp.broadcast_to(jax.random.key(0), depth.shape[:1])
    one = lambda args: lift_objects_from_ids_unjitted(*args, config=config)  # noqa: E731
    return _map_frames(one, (depth, ids, valid, K, view_from_cam, keys), map_batch)


# --------------------------------------------------------------------------------------------
# Host glue


def to_frame_observation(
    lifted: LiftedObjects,
    *,
    scene_id: str,
    frame_id: str,
    source: str,
    width: int,
    height: int,
    K,
    view_from_cam,
    categories,
    captions=None,
    object_index=None,
    image_path: str | None = None,
    image_bytes: bytes | None = None,
    exhaustive: bool = True,
):
    """One frame's `[N]` lifted objects -> `observe.FrameObservation` with the `ok` ones.

    `categories` (and `captions`, `object_index` when given) list the first objects of the
    padded axis in order; padding beyond them is ignored. The 2D box is the mask's tight box
    (`box2d_source` "mask") and the visibility is the fraction of mask pixels with depth. A box
    is complete (`box_complete`, so sizes may be compared) only where that fraction reaches
    `MIN_VALID_DEPTH_FRACTION`: the part of the mask without depth is missing from
    the box. `view_from_cam` may be `[3, 3]` (a pure tilt) or `[4, 4]`.
    """
    from jax_spatial.observe import FrameObservation

    n = len(categories)
    ok = np.asarray(lifted.ok)[:n]
    keep = np.flatnonzero(ok)
    captions = list(captions) if captions is not None else [None] * n
    object_index = np.arange(n) if object_index is None else np.asarray(object_index)
    vfc = np.asarray(view_from_cam, np.float64)
    if vfc.shape == (3, 3):
        vfc = np.block([[vfc, np.zeros((3, 1))], [np.zeros((1, 3)), np.ones((1, 1))]])
    return FrameObservation(
        scene_id=scene_id,
        frame_id=frame_id,
        source=source,
        width=int(width),
        height=int(height),
        K=np.asarray(K, np.float64),
        view_from_cam=vfc,
        image_path=image_path,
        image_bytes=image_bytes,
        object_index=object_index[keep].astype(np.int64),
        categories=[categories[i] for i in keep],
        captions=[captions[i] for i in keep],
        centre=np.asarray(lifted.centre, np.float64)[keep].reshape(-1, 3),
        extent=np.asarray(lifted.extent, np.float64)[keep].reshape(-1, 3),
        rotation=np.asarray(lifted.rotation, np.float64)[keep].reshape(-1, 3, 3),
        box2d=np.asarray(lifted.box2d, np.float64)[keep].reshape(-1, 4),
        box2d_source=["mask"] * len(keep),
        visibility=np.asarray(lifted.visible_fraction, np.float64)[keep],
        exhaustive=bool(exhaustive),
        box_complete=np.asarray(lifted.visible_fraction, np.float64)[keep]
        >= MIN_VALID_DEPTH_FRACTION,
    )


def pad_masks(mask_list, height: int, width: int, num: int | None = None):
    """Stacks ragged `[H, W]` masks into `([N, H, W] bool, [N] valid)`, N a batching bucket."""
    from jax_spatial.batching import bucket_for

    n = len(mask_list)
    num = bucket_for(n) if num is None else num
    if n > num:
        raise ValueError(f"{n} masks do not fit {num} slots")
    out = np.zeros((num, height, width), bool)
    for i, m in enumerate(mask_list):
        out[i] = m
    return out, np.arange(num) < n
