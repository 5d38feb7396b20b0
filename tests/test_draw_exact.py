"""Both drawers paint exactly what the full-image rules paint.

On CPU `formats.draw` draws each prompt in small windows (mask tiles, border strips, a
square per mark) clamped to the image; on other platforms it evaluates every rule on every
pixel (`_draw_dense`, run here on CPU too). `_reference_draw` below is the previous
implementation, kept here as the executable form of the pixel rules: per prompt, full-image
predicates and a select over every pixel. Every case compares them bit for bit, with windows
clamped at every edge and corner, boxes thicker than their sides, two-digit labels against
the right edge, images smaller than a mark's window, NaN centres and the in-kernel pole
search.

One change from the previous implementation: its mask blend computed the float32 rule in
the kernel, where XLA CPU contracts `(1 - a) * v + a * c` into a fused multiply-add (one
rounding instead of two), off by one from the documented rule for 0.2-1.1% of the
(value, colour) pairs at alphas such as 0.35, 0.3 or 0.1 (none at 0.5, the default, nor 0.25,
0.4, ...). The reference here looks the rule up in a numpy table instead, the same values
the old kernel gave wherever it was exact; `test_blend_exact_for_every_pixel_and_colour_value`
checks the drawer against numpy for every pair.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_spatial.formats import draw

# ------------------------------------------------------------------------------------------
# Reference: the full-image implementation (one image; vmapped over the batch).


def _reference_pole(mask, stride: int, iters: int):
    H, W = mask.shape
    hp, wp = -(-H // stride), -(-W // stride)
    padded = jnp.zeros((hp * stride, wp * stride), bool).at[:H, :W].set(mask)
    small = padded.reshape(hp, stride, wp, stride).mean(axis=(1, 3)) >= 0.5

    def erode(cur):
        p = jnp.pad(cur, 1)
        out = cur
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                out = out & p[dy : dy + hp, dx : dx + wp]
        return out

    def body(_, carry):
        cur, depth = carry
        cur = erode(cur)
        return cur, depth + cur.astype(jnp.int32)

    _, depth = jax.lax.fori_loop(0, iters, body, (small, small.astype(jnp.int32)))
    maskf = mask.astype(jnp.float32)
    area = maskf.sum()
    ys = jnp.arange(H, dtype=jnp.float32) + 0.5
    xs = jnp.arange(W, dtype=jnp.float32) + 0.5
    cy = (maskf.sum(axis=1) * ys).sum() / jnp.maximum(area, 1.0)
    cx = (maskf.sum(axis=0) * xs).sum() / jnp.maximum(area, 1.0)
    norm = 1.0 / float(H * H + W * W)
    sy = (jnp.arange(hp, dtype=jnp.float32) + 0.5) * stride
    sx = (jnp.arange(wp, dtype=jnp.float32) + 0.5) * stride
    d2_small = ((sy[:, None] - cy) ** 2 + (sx[None, :] - cx) ** 2) * norm
    score = jnp.where(depth > 0, depth.astype(jnp.float32) - d2_small, -1.0)
    k = jnp.argmax(score.reshape(-1))
    pole_small = jnp.stack([sx[k % wp], sy[k // wp]])
    d2_full = (ys[:, None] - cy) ** 2 + (xs[None, :] - cx) ** 2
    kf = jnp.argmin(jnp.where(mask, d2_full, jnp.inf).reshape(-1))
    pole_full = jnp.stack([xs[kf % W], ys[kf // W]])
    pole = jnp.where(jnp.any(small), pole_small, pole_full)
    return jnp.where(area > 0, pole, jnp.nan)


def _reference_mark_paint(cols, rows, cx, cy, colour, label, style):
    s = style.glyph_scale
    radius = draw.mark_radius(style)
    d2 = (cols + 0.5 - cx) ** 2 + (rows + 0.5 - cy) ** 2
    disc = d2 <= radius**2
    rim = (d2 <= (radius + s) ** 2) & ~disc
    n = jnp.clip(label, 0, 99)
    two = n >= 10
    n_digits = jnp.where(two, 2, 1)
    width = n_digits * draw.GLYPH_W * s + (n_digits - 1) * s
    ox = jnp.round(cx - width / 2).astype(jnp.int32)
    oy = jnp.round(cy - draw.GLYPH_H * s / 2).astype(jnp.int32)
    lx, ly = cols - ox, rows - oy
    slot = lx // ((draw.GLYPH_W + 1) * s)
    within = lx - slot * (draw.GLYPH_W + 1) * s
    in_text = (
        (lx >= 0) & (lx < width) & (ly >= 0) & (ly < draw.GLYPH_H * s) & (within < draw.GLYPH_W * s)
    )
    digit = jnp.where(two & (slot == 0), n // 10, n % 10)
    gy = jnp.clip(ly // s, 0, draw.GLYPH_H - 1)
    gx = jnp.clip(within // s, 0, draw.GLYPH_W - 1)
    on = jnp.asarray(draw.GLYPHS)[digit, gy, gx] & in_text
    paint = jnp.where(on, 3, jnp.where(disc, 2, jnp.where(rim, 1, 0))).astype(jnp.int32)
    luma = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
    ink = jnp.where(luma > 140.0, 0.0, 255.0)
    return paint, ink


def _rule_table(alpha: float) -> np.ndarray:
    """`[256, 256]` uint8 the documented blend of value v towards colour c, as numpy computes
    float32: `round_half_even((1 - a) * v + a * c)`, each product and the sum rounded."""
    a = np.float32(alpha)
    v = np.arange(256, dtype=np.float32)
    return np.round((np.float32(1) - a) * v[:, None] + a * v[None, :]).astype(np.uint8)


def _reference_one(image, kind, colour, box, label, mask_index, masks, centre, style):
    H, W, _ = image.shape
    P, M = kind.shape[0], masks.shape[0]
    img = image
    colour_f = colour.astype(jnp.float32)
    rows = jnp.arange(H)[:, None]
    cols = jnp.arange(W)[None, :]
    has_mask = (mask_index >= 0) & (M > 0)
    mask_of = [masks[jnp.clip(mask_index[p], 0, max(M - 1, 0))] & has_mask[p] for p in range(P)]
    table = jnp.asarray(_rule_table(style.alpha))
    for p in range(P):
        inside = mask_of[p] & (kind[p] == draw.KIND_MASK)
        blended = table[img.astype(jnp.int32), colour[p].astype(jnp.int32)]
        img = jnp.where(inside[..., None], blended, img)
    t = style.thickness
    for p in range(P):
        c0, r0, c1, r1 = (jnp.round(box[p, i]).astype(jnp.int32) for i in range(4))
        c0, c1 = jnp.clip(c0, 0, W), jnp.clip(c1, 0, W)
        r0, r1 = jnp.clip(r0, 0, H), jnp.clip(r1, 0, H)
        in_c, in_r = (cols >= c0) & (cols < c1), (rows >= r0) & (rows < r1)
        edge_c = (cols < c0 + t) | (cols >= c1 - t)
        edge_r = (rows < r0 + t) | (rows >= r1 - t)
        border = in_c & in_r & (edge_c | edge_r) & (kind[p] == draw.KIND_BOX)
        img = jnp.where(border[..., None], colour[p], img)
    for p in range(P):
        box_centre = jnp.stack([(box[p, 0] + box[p, 2]) / 2, (box[p, 1] + box[p, 3]) / 2])
        if centre is None:
            where = _reference_pole(mask_of[p], style.pole_stride, style.pole_iters)
        else:
            where = centre[p]
        cx, cy = jnp.where(jnp.all(jnp.isfinite(where)), where, box_centre)
        paint, ink = _reference_mark_paint(cols, rows, cx, cy, colour_f[p], label[p], style)
        paint = jnp.where(kind[p] == draw.KIND_MARK, paint, 0)[..., None]
        img = jnp.where(paint == 1, jnp.uint8(0), img)
        img = jnp.where(paint == 2, colour[p], img)
        img = jnp.where(paint == 3, ink.astype(jnp.uint8), img)
    return img


@functools.partial(jax.jit, static_argnames=("style",))
def _reference_draw(images, kind, colour, box, label, mask_index, masks, centre, style):
    fn = functools.partial(_reference_one, style=style)
    if centre is None:
        return jax.vmap(lambda *a: fn(*a, None))(
            images, kind, colour, box, label, mask_index, masks
        )
    return jax.vmap(fn)(images, kind, colour, box, label, mask_index, masks, centre)


# ------------------------------------------------------------------------------------------
# Cases.


def _random_spec(rng, B, P, M, H, W, *, with_centre: bool):
    """Prompts of every kind (padding too), boxes crossing and beyond every edge, empty and
    inverted boxes, masks of noise / rectangles / discs / nothing, labels 0..119."""
    x1 = rng.uniform(-0.4 * W, 1.2 * W, (B, P))
    y1 = rng.uniform(-0.4 * H, 1.2 * H, (B, P))
    bw = rng.uniform(-6, 1.3 * W, (B, P))
    bh = rng.uniform(-6, 1.3 * H, (B, P))
    box = np.stack([x1, y1, x1 + bw, y1 + bh], -1).astype(np.float32)
    masks = np.zeros((B, M, H, W), bool)
    yy, xx = np.mgrid[:H, :W]
    for b in range(B):
        for m in range(M):
            shape = rng.integers(0, 4)
            if shape == 1:
                masks[b, m] = rng.random((H, W)) < 0.3
            elif shape == 2:
                r0, c0 = rng.integers(0, H), rng.integers(0, W)
                masks[b, m, r0 : r0 + rng.integers(1, H + 1), c0 : c0 + rng.integers(1, W + 1)] = 1
            elif shape == 3:
                cy, cx = rng.uniform(-5, H + 5), rng.uniform(-5, W + 5)
                masks[b, m] = (yy - cy) ** 2 + (xx - cx) ** 2 < rng.uniform(2, (H + W) ** 2 / 8)
    spec = dict(
        images=rng.integers(0, 256, (B, H, W, 3), dtype=np.uint8),
        kind=rng.integers(0, 4, (B, P)).astype(np.int32),
        colour=rng.integers(0, 256, (B, P, 3), dtype=np.uint8),
        box=box,
        label=rng.integers(0, 120, (B, P)).astype(np.int32),
        mask_index=rng.integers(-1, M + 1, (B, P)).astype(np.int32),  # M: clipped to M - 1
        masks=masks,
        centre=None,
    )
    if with_centre:
        centre = rng.uniform(-25, max(H, W) + 25, (B, P, 2)).astype(np.float32)
        centre[rng.random((B, P)) < 0.3] = np.nan
        spec["centre"] = centre
    return spec


@functools.partial(jax.jit, static_argnames=("style",))
def _dense(images, kind, colour, box, label, mask_index, masks, centre, style):
    """The whole-image path `draw_prompts` takes on accelerators, run here on CPU."""
    args = (images, kind, colour, box, label, mask_index, masks)
    return draw._draw_dense(*args, centre=centre, style=style)


def _assert_same(spec, style):
    want = np.asarray(_reference_draw(**spec, style=style))
    for name, fn in (("windows (CPU)", draw.draw_prompts), ("dense (accelerators)", _dense)):
        got = np.asarray(fn(**spec, style=style))
        if not np.array_equal(got, want):
            bad = np.argwhere(np.any(got != want, axis=-1))
            raise AssertionError(f"{name}: {len(bad)} pixels differ, first (b, row, col) {bad[:5]}")


@pytest.mark.parametrize(
    "H, W, style",
    [
        (
            48,
            64,
            draw.DrawStyle(thickness=2, alpha=0.5, glyph_scale=1, pole_stride=2, pole_iters=6),
        ),
        # Float32 blend path (0.35 has no exact integer form) and thick borders.
        (37, 53, draw.DrawStyle(thickness=5, alpha=0.35, glyph_scale=2, pole_stride=3)),
        # Smaller than a mark's window (and than a border strip chunk) in both directions.
        (13, 11, draw.DrawStyle(thickness=3, alpha=0.25, glyph_scale=1, pole_stride=4)),
        # Wider than one mask tile / border chunk, thicker than short boxes.
        (40, 300, draw.DrawStyle(thickness=7, alpha=0.4, glyph_scale=3, pole_stride=4)),
    ],
)
@pytest.mark.parametrize("with_centre", [True, False])
def test_random_specs_match_the_full_image_rules(H, W, style, with_centre):
    rng = np.random.default_rng([H, W, with_centre])
    for _ in range(3):
        _assert_same(_random_spec(rng, 3, 5, 3, H, W, with_centre=with_centre), style)


H, W = 40, 56
STYLE = draw.DrawStyle(thickness=3, alpha=0.5, glyph_scale=2, pole_stride=2, pole_iters=8)


def _spec(kinds, boxes, *, labels=None, centres=None, mask_index=None, masks=None, seed=0):
    P = len(kinds)
    rng = np.random.default_rng(seed)
    return dict(
        images=rng.integers(0, 256, (1, H, W, 3), dtype=np.uint8),
        kind=np.array([kinds], np.int32),
        colour=rng.integers(0, 256, (1, P, 3), dtype=np.uint8),
        box=np.array([boxes], np.float32),
        label=np.array([labels or [7] * P], np.int32),
        mask_index=np.array([mask_index or [-1] * P], np.int32),
        masks=np.zeros((1, 1, H, W), bool) if masks is None else masks[None],
        centre=None if centres is None else np.array([centres], np.float32),
    )


@pytest.mark.parametrize(
    "box",
    [
        [0, 0, W, H],  # touches all four edges
        [-9.6, -3.2, W + 7.0, H + 11.0],  # beyond all four edges: clipped border
        [2, 3, 5, H - 1],  # narrower than two thicknesses: solid
        [W - 2, -4, W + 30, 6],  # a corner sliver
        [10.4, 10.6, 10.4, 30.0],  # empty (zero width)
        [30, 20, 10, 5],  # inverted: empty
    ],
)
def test_box_windows_at_edges(box):
    _assert_same(_spec([draw.KIND_BOX], [box]), STYLE)


@pytest.mark.parametrize(
    "centre",
    [[0, 0], [W, 0], [0, H], [W, H], [W - 1.5, H / 2], [-3.2, H - 0.5], [W + 12.0, 5.0]],
)
@pytest.mark.parametrize("label", [3, 88])
def test_marks_at_corners_and_edges(centre, label):
    # Two digits are wider than the disc: near the right edge they are cut at the image edge.
    spec = _spec([draw.KIND_MARK], [[0, 0, W, H]], labels=[label], centres=[centre])
    _assert_same(spec, STYLE)


def test_far_and_non_finite_centres():
    centres = [[1e9, 3.0], [np.inf, 20.0], [np.nan, 5.0], [-1e9, -1e9]]
    boxes = [[0, 0, 20, 20], [5, 5, 30, 30], [-np.inf, 0, 10, 10], [30, 10, 60, 38]]
    spec = _spec([draw.KIND_MARK] * 4, boxes, labels=[1, 22, 33, 99], centres=centres)
    _assert_same(spec, STYLE)


def test_overlapping_prompts_keep_the_order():
    masks = np.zeros((2, H, W), bool)
    masks[0, 5:35, 3:50] = True
    masks[1, 0:H, 20:W] = True  # whole-height mask: tiles clamped at the bottom edge
    kinds = [draw.KIND_MASK, draw.KIND_MASK, draw.KIND_BOX, draw.KIND_BOX, draw.KIND_MARK]
    boxes = [[0, 0, W, H], [0, 0, W, H], [4, 4, 40, 30], [10, 8, 52, 36], [0, 0, W, H]]
    kinds += [draw.KIND_MARK]
    boxes += [[0, 0, W, H]]
    spec = _spec(
        kinds,
        boxes,
        labels=[0, 0, 0, 0, 12, 5],
        centres=[[0, 0]] * 4 + [[20, 20], [26, 22]],
        mask_index=[0, 1, -1, -1, 0, -1],
        masks=masks,
    )
    _assert_same(spec, STYLE)
    spec["centre"] = None  # the first mark's pole is searched in its mask
    _assert_same(spec, STYLE)


def test_no_mask_slots():
    spec = _spec([draw.KIND_MASK, draw.KIND_MARK], [[0, 0, 20, 20], [10, 10, 40, 30]])
    spec["masks"] = np.zeros((1, 0, H, W), bool)
    spec["mask_index"] = np.array([[0, 0]], np.int32)
    out = np.asarray(draw.draw_prompts(**spec, style=STYLE))
    assert np.array_equal(out[0, :5], spec["images"][0, :5])  # no blend
    assert np.any(out != spec["images"])  # the mark, at its box centre


@pytest.mark.parametrize("alpha", [0.5, 0.25, 0.4, 0.75, 0.0, 1.0, 0.35, 0.3, 0.1])
def test_blend_exact_for_every_pixel_and_colour_value(alpha):
    """All 256 x 256 (pixel, colour) pairs on channel 0 against the float32 rule."""
    v = np.arange(256, dtype=np.uint8)
    images = np.broadcast_to(v[None, None, :, None], (256, 1, 256, 3)).copy()
    colour = np.stack([v, 255 - v, v // 3], -1)[:, None, :]  # image b: colour b on channel 0
    spec = dict(
        kind=np.full((256, 1), draw.KIND_MASK, np.int32),
        colour=colour,
        box=np.zeros((256, 1, 4), np.float32),
        label=np.zeros((256, 1), np.int32),
        mask_index=np.zeros((256, 1), np.int32),
        masks=np.ones((256, 1, 1, 256), bool),
    )
    style = draw.DrawStyle(alpha=alpha)
    got = np.asarray(draw.draw_prompts(images, **spec, style=style))
    a = np.float32(alpha)
    want = np.round(
        (np.float32(1) - a) * images.astype(np.float32) + a * colour[:, :, None].astype(np.float32)
    ).astype(np.uint8)
    np.testing.assert_array_equal(got, want)


def test_integer_blend_used_where_exact():
    assert draw._integer_blend_weights(0.5) == (1, 1, 1)  # the default alpha: integer path
    assert draw._integer_blend_weights(0.35) is None  # float32 path


def test_inplace_draws_the_same_and_consumes_a_device_batch():
    rng = np.random.default_rng(5)
    spec = _random_spec(rng, 2, 4, 2, H, W, with_centre=True)
    want = np.asarray(draw.draw_prompts(**spec, style=STYLE))
    images = spec.pop("images")
    kept = images.copy()
    got = np.asarray(draw.draw_prompts_inplace(images, **spec, style=STYLE))
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(images, kept)  # a numpy batch is copied, not consumed
    on_device = jax.device_put(images)
    got = draw.draw_prompts_inplace(on_device, **spec, style=STYLE)
    np.testing.assert_array_equal(np.asarray(got), want)
    assert on_device.is_deleted()


def test_mark_centres_match_the_reference_pole_and_the_in_kernel_search():
    rng = np.random.default_rng(6)
    spec = _random_spec(rng, 2, 3, 3, H, W, with_centre=False)
    masks = spec["masks"][:, [0, 1, 2]]  # slot p for prompt p
    centres = np.asarray(draw.mark_centres(masks, spec["box"], style=STYLE))
    for b in range(2):
        for p in range(3):
            box = spec["box"][b, p]
            want = np.asarray(_reference_pole(masks[b, p], STYLE.pole_stride, STYLE.pole_iters))
            if not np.all(np.isfinite(want)):
                want = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2], np.float32)
            np.testing.assert_array_equal(centres[b, p], want)
    spec.update(masks=masks, mask_index=np.tile(np.arange(3, dtype=np.int32), (2, 1)))
    searched = np.asarray(draw.draw_prompts(**spec, style=STYLE))
    spec["centre"] = centres
    np.testing.assert_array_equal(np.asarray(draw.draw_prompts(**spec, style=STYLE)), searched)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the windowed path is CPU's")
@pytest.mark.parametrize("with_centre", [True, False])
def test_batch_buffer_updated_in_place(with_centre):
    """Compiled for CPU, `draw_prompts` copies the batch once (into its output) and
    `draw_prompts_inplace` never: every window is written in place. A copy inside a loop (XLA
    failing to alias a loop's buffer) would cost a whole-batch pass per window."""
    B, P = 4, 3
    spec = _random_spec(np.random.default_rng(7), B, P, 2, H, W, with_centre=with_centre)
    shapes = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in spec.items() if v is not None}
    batch_copy = f"u8[{B},{H},{W},3]{{3,2,1,0}} copy("
    for fn, copies in ((draw.draw_prompts, 1), (draw.draw_prompts_inplace, 0)):
        hlo = fn.lower(**shapes, style=STYLE).compile().as_text()
        assert hlo.count(batch_copy) == copies
