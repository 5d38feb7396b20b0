"""Drawing visual prompts (boxes, translucent masks, numbered marks) on image batches, jitted.

`draw_prompts(images, spec, masks, style)` draws `[B, P]` padded prompt specs over
`[B, H, W, 3]` uint8 images in one compiled call; shapes are static (`B`, `P`, `M`, `H`, `W`
and the `DrawStyle`), so a loader that pads to a few buckets compiles a few times.
`draw_prompts_inplace` draws into the caller's batch (donated), skipping the copy of the
batch that `draw_prompts` makes for its output (on CPU, most of its time).

On CPU each prompt touches only its own pixels (small windows updated in place); elsewhere
every rule is evaluated on every pixel (whole-image passes), see "Drawing" below. Both paint
the same pixels.

Pixel rules (tests/test_draw.py pins each; tests/test_draw_exact.py checks both drawers bit
for bit against a whole-image reference of them):

* Pixel `(col, row)` covers `[col, col + 1) x [row, row + 1)`, the project's convention, so a
  box `(x1, y1, x2, y2)` spans columns `round(x1) .. round(x2) - 1`.
* **Box**: a border `thickness` px wide drawn *inside* that span (an edge box stays visible
  after clipping to the image, and the border never covers a neighbour's pixels outside it).
* **Mask**: `out = round((1 - alpha) * img + alpha * colour)` per channel inside the mask,
  computed in float32 (each product and the sum rounded, as numpy computes), rounding half
  to even; masks blend in prompt order.
* **Mark**: a filled disc of `mark_radius(style)` px in the prompt's colour with a one-glyph-
  pixel dark rim, and the label's digits (1 or 2, from the 5 x 7 bitmap font below, scaled by
  `glyph_scale`) in white, or black on light colours (yellow, orange), where white would not
  read. The centre is the pole of inaccessibility of the object's mask (the mask point
  farthest from its edge, ties to the one nearest the centroid), so the mark sits on the
  object even for an L-shaped or ring-shaped mask whose centroid lies outside it; without a
  mask, the box centre.

Drawing order: all masks, then all box borders, then all marks, so a border is never tinted
by a mask and a mark is never cut by a border.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jax_spatial.formats.spec import PALETTE, FormattedQA, Prompt

KIND_NONE, KIND_BOX, KIND_MASK, KIND_MARK = 0, 1, 2, 3
KIND_CODES = {"box": KIND_BOX, "mask": KIND_MASK, "mark": KIND_MARK}

# 5 x 7 bitmap digits, defined here so nothing is downloaded and every platform draws the
# same pixels.
_GLYPH_ROWS = {
    0: ("01110", "10001", "10011", "10101", "11001", "10001", "01110"),
    1: ("00100", "01100", "00100", "00100", "00100", "00100", "01110"),
    2: ("01110", "10001", "00001", "00010", "00100", "01000", "11111"),
    3: ("11110", "00001", "00001", "01110", "00001", "00001", "11110"),
    4: ("00010", "00110", "01010", "10010", "11111", "00010", "00010"),
    5: ("11111", "10000", "11110", "00001", "00001", "10001", "01110"),
    6: ("00110", "01000", "10000", "11110", "10001", "10001", "01110"),
    7: ("11111", "00001", "00010", "00100", "01000", "01000", "01000"),
    8: ("01110", "10001", "10001", "01110", "10001", "10001", "01110"),
    9: ("01110", "10001", "10001", "01111", "00001", "00010", "01100"),
}
GLYPHS = np.array(
    [[[c == "1" for c in row] for row in _GLYPH_ROWS[d]] for d in range(10)], dtype=bool
)  # [10, 7, 5]
GLYPH_H, GLYPH_W = GLYPHS.shape[1:]
# Colours brighter than this (Rec. 601 luma) get black digits instead of white.
_LIGHT_LUMA = 140.0


@dataclasses.dataclass(frozen=True)
class DrawStyle:
    """Static drawing parameters (hashable: a jit static argument).

    Attributes:
      thickness: box border width in px.
      alpha: mask opacity in [0, 1].
      glyph_scale: px per glyph pixel of the mark digits (a digit is 5s x 7s px).
      pole_stride: the mask is pooled by this factor before the pole search (speed; the
        mark is placed to within this many px).
      pole_iters: erosion steps of the pole search: depths beyond `pole_iters * pole_stride`
        px count as equal and the tie goes to the point nearest the centroid.
    """

    thickness: int = 3
    alpha: float = 0.5
    glyph_scale: int = 2
    pole_stride: int = 4
    pole_iters: int = 24


def style_for(height: int, width: int) -> DrawStyle:
    """The style for an image size: strokes and digits grow with the image (480p: 3 px, 2x).

    The reason: a VLM sees the image resized to ~448 px, so a 3 px border on a 1296 px frame
    would shrink to one pixel; scaling with the short side keeps prompts equally visible.
    """
    short = min(height, width)
    return DrawStyle(thickness=max(2, round(short / 160)), glyph_scale=max(1, round(short / 240)))


def mark_radius(style: DrawStyle) -> int:
    """Disc radius in px: one digit's corners plus a margin of one glyph pixel.

    Formats label marks with one digit; a two-digit label is still drawn, a little wider
    than the disc.
    """
    s = style.glyph_scale
    return int(np.ceil(np.hypot(GLYPH_W * s / 2, GLYPH_H * s / 2))) + s


def min_mark_side(style: DrawStyle) -> int:
    """Smallest box side (px) on which a mark is legible without hiding its object: the
    disc's diameter."""
    return 2 * mark_radius(style)


def min_box_side(style: DrawStyle) -> int:
    """Smallest box side (px) worth drawing: the border covers at most half of it."""
    return 4 * style.thickness


# ------------------------------------------------------------------------------------------
# Drawing on CPU (`_draw_windows`). Each step touches only the pixels it may change: a mask
# blend the tiles of its mask's bounding box, a border its four edges in short strips, a mark
# the square around its disc. `while` loops run over the batch's prompts of each kind (in
# image, prompt order) and carry the `[B, H, W, 3]` buffer; a window is read with
# `lax.dynamic_slice` and written back with `lax.dynamic_update_slice`, which XLA does in
# place (tests/test_draw_exact.py checks the compiled code), so the only whole-batch pass left
# is the copy XLA makes of a non-donated `images` (none for `draw_prompts_inplace`).
# Windows have static sizes; one that would leave the image is moved back inside it (clamped,
# as `dynamic_slice` does), and every predicate uses the absolute row and column of each
# window pixel, so a window paints exactly the pixels of the whole-image rule that it holds,
# whatever the clamping.
#
# Why: the previous version (now `_draw_dense`, kept for accelerators) evaluated every rule on
# every pixel, a few whole-image selects per prompt; on CPU each costs about a copy of the
# image while PIL touches only a rectangle's perimeter (docs/formats.md, "Benchmark").

# `(rows, cols)` of a mask-blend tile. Sizes from 16 to 64 rows and 64 to 256 columns time
# the same on the benchmark; whole rows (640 columns) are slower, as they blend more pixels
# outside the mask.
_MASK_TILE = (32, 128)
# Lengths of the strips a border edge is drawn in: left and right edges in chunks of this
# many rows, top and bottom edges in chunks of this many columns (8 to 64 rows and 64 to 256
# columns time the same; a border's cost is the image rows it touches).
_EDGE_ROWS, _EDGE_COLS = 32, 128

# Glyph rows as bit patterns, `[10, 7]` int32: bit `GLYPH_W - 1 - x` of row `y` is pixel
# `(x, y)` of the digit. A mark looks up a row per window row and shifts, instead of gathering
# one `GLYPHS` entry per pixel.
_GLYPH_ROW_BITS = (GLYPHS * (1 << np.arange(GLYPH_W - 1, -1, -1))).sum(-1).astype(np.int32)


def _put(win, paint, value):
    """`where(paint[..., None], value, win)` for a `[h, w, 3]` uint8 window and `[h, w]` bool
    paint, in wrapping uint8 arithmetic: XLA CPU vectorises a multiply by the 0/1 paint
    broadcast over channels, not a select on a broadcast bool (several times slower)."""
    on = paint.astype(jnp.uint8)[..., None]
    return win + on * (jnp.asarray(value, jnp.uint8) - win)


@functools.cache
def _blend_table(alpha: float) -> np.ndarray:
    """`[256, 256]` uint8 the mask rule for every `(pixel value, colour value)`: float32
    products and sum, each rounded (IEEE, as numpy computes), then rounded half to even."""
    a = np.float32(alpha)
    v = np.arange(256, dtype=np.float32)
    return np.round((np.float32(1.0) - a) * v[:, None] + a * v[None, :]).astype(np.uint8)


@functools.cache
def _integer_blend_weights(alpha: float) -> tuple[int, int, int] | None:
    """Fixed-point weights `(w_image, w_colour, bits)` whose integer blend (`_round_fixed`)
    equals `_blend_table(alpha)` for all 256 x 256 `(pixel, colour)` pairs, else None
    (checked here exhaustively, once per alpha).

    The fewest `bits` (8 .. 16) that are exact win: their sums fit in uint16, which XLA CPU
    vectorises twice as wide as uint32. Exact for 0.5 (the default), 0.25, 0.4, 0.6, 0.75,
    0.2, ...; not for alphas like 0.35 or 0.1 whose float32 products round across a half.
    """
    want = _blend_table(alpha).astype(np.int64)
    a = np.float32(alpha)
    w = np.float32(1.0) - a
    v = np.arange(256, dtype=np.int64)[:, None]
    for bits in range(8, 17):
        w_image, w_colour = round(float(w) * 2**bits), round(float(a) * 2**bits)
        if np.array_equal(_round_fixed(w_image * v + w_colour * v.T, bits), want):
            # Fewer ops in the kernel: (128, 128, 8) -> (1, 1, 1) for alpha 0.5.
            while bits > 1 and w_image % 2 == 0 and w_colour % 2 == 0:
                w_image, w_colour, bits = w_image // 2, w_colour // 2, bits - 1
            return w_image, w_colour, bits
    return None


def _round_fixed(total, bits: int):
    """Rounds `bits`-bit fixed-point integers to the nearest integer, half to even: adding
    `half - 1` carries a fraction above a half, and the integer part's low bit carries an
    exact half up to even."""
    return (total + ((1 << (bits - 1)) - 1) + ((total >> bits) & 1)) >> bits


def _blend_values(win, colour, alpha: float):
    """`[..., 3]` uint8 blend of `win` towards `colour` `[3]` uint8 by the mask rule.

    In integers when `_integer_blend_weights` proved that exact for this alpha; otherwise by
    looking the values up in `_blend_table` (a float32 expression in the kernel is not exact:
    XLA CPU contracts `(1 - a) * v + a * c` into a fused multiply-add, which rounds once
    instead of twice and is off by one for 0.4% of the pairs at alpha 0.35).
    """
    weights = _integer_blend_weights(alpha)
    if weights is None:
        lut = jnp.asarray(_blend_table(alpha))[:, colour.astype(jnp.int32)]  # [256, 3]
        return lut.reshape(-1)[win.astype(jnp.int32) * 3 + jnp.arange(3)]
    w_image, w_colour, bits = weights
    wide = jnp.uint16 if 255 * (w_image + w_colour) + (1 << bits) < 2**16 else jnp.uint32
    total = win.astype(wide) * w_image + colour.astype(wide) * w_colour
    return _round_fixed(total, bits).astype(jnp.uint8)


def _paint_window(out, b, row, col, height: int, width: int, paint):
    """`out` with the `height x width` window of image `b` at `(row, col)` replaced by
    `paint(window [h, w, 3], row, col, rows [h, 1], cols [1, w]) -> [h, w, 3]`. The window is
    clamped to the image (and to its size where it is smaller); `row`, `col` are its clamped
    corner and `rows`, `cols` the absolute coordinates of its pixels."""
    _, H, W, _ = out.shape
    h, w = min(height, H), min(width, W)
    row = jnp.clip(row, 0, H - h)
    col = jnp.clip(col, 0, W - w)
    win = lax.dynamic_slice(out, (b, row, col, 0), (1, h, w, 3))[0]
    rows = row + jnp.arange(h)[:, None]
    cols = col + jnp.arange(w)[None, :]
    return lax.dynamic_update_slice(out, paint(win, row, col, rows, cols)[None], (b, row, col, 0))


def _in_order(use):
    """`(order, count)`: the flat `(image, prompt)` indices where `use` (`[B * P]` bool) holds,
    first and in their order, and how many there are."""
    return jnp.argsort(jnp.logical_not(use), stable=True), jnp.sum(use.astype(jnp.int32))


def _extent(any_along):
    """`(lo, hi)` of the True entries of a `[n]` bool vector (`hi <= lo` when none)."""
    n = any_along.shape[0]
    at = jnp.arange(n)
    return jnp.min(jnp.where(any_along, at, n)), jnp.max(jnp.where(any_along, at + 1, 0))


def _blend_masks(out, kind, colour, mask_index, masks, alpha: float):
    """Blends every mask prompt, image by image in prompt order (each blend rounds)."""
    _, H, W, _ = out.shape
    P, M = kind.shape[1], masks.shape[1]
    order, count = _in_order(((kind == KIND_MASK) & (mask_index >= 0)).reshape(-1))
    slot = jnp.clip(mask_index.reshape(-1), 0, M - 1)
    colour = colour.reshape(-1, 3)
    th, tw = min(_MASK_TILE[0], H), min(_MASK_TILE[1], W)

    def one_mask(i, out):
        q = order[i]
        b = q // P
        # The mask's bounding box (one read of the mask); only its tiles are visited.
        mask = lax.dynamic_slice(masks, (b, slot[q], 0, 0), (1, 1, H, W))[0, 0]
        mask8 = mask.astype(jnp.uint8)
        r0, r1 = _extent(jnp.max(mask8, axis=1) > 0)
        c0, c1 = _extent(jnp.max(mask8, axis=0) > 0)
        n_cols = (jnp.maximum(c1 - c0, 0) + tw - 1) // tw
        n_rows = (jnp.maximum(r1 - r0, 0) + th - 1) // th

        def tile(k, out):
            # Tile k owns rows [r_own, r_own + th) x cols [c_own, c_own + tw); a tile clamped
            # at the image edge overlaps its neighbour, so it blends only what it owns (a
            # blend must not apply twice).
            r_own = r0 + (k // n_cols) * th
            c_own = c0 + (k % n_cols) * tw

            def paint(win, row, col, rows, cols):
                m = lax.dynamic_slice(masks, (b, slot[q], row, col), (1, 1, th, tw))
                own = (rows >= r_own) & (rows < r_own + th) & (cols >= c_own) & (cols < c_own + tw)
                return _put(win, m[0, 0] & own, _blend_values(win, colour[q], alpha))

            return _paint_window(out, b, r_own, c_own, th, tw, paint)

        return lax.fori_loop(0, n_rows * n_cols, tile, out)

    return lax.fori_loop(0, count, one_mask, out)


def _pixel_spans(box, H: int, W: int):
    """Flat `[B * P]` int32 `(c0, r0, c1, r1)`: box columns `c0 .. c1 - 1` and rows
    `r0 .. r1 - 1` (rounded corners, clipped to the image)."""
    edges = jnp.round(box.reshape(-1, 4)).astype(jnp.int32)
    return (
        jnp.clip(edges[:, 0], 0, W),
        jnp.clip(edges[:, 1], 0, H),
        jnp.clip(edges[:, 2], 0, W),
        jnp.clip(edges[:, 3], 0, H),
    )


def _draw_borders(out, kind, colour, box, thickness: int):
    """Draws every box border, image by image in prompt order."""
    _, H, W, _ = out.shape
    P = kind.shape[1]
    t = thickness
    order, count = _in_order((kind == KIND_BOX).reshape(-1))
    c0, r0, c1, r1 = _pixel_spans(box, H, W)
    colour = colour.reshape(-1, 3)

    def one_box(i, out):
        q = order[i]
        b = q // P
        C0, R0, C1, R1 = c0[q], r0[q], c1[q], r1[q]
        empty = (C1 <= C0) | (R1 <= R0)

        def paint(win, row, col, rows, cols):
            # The full-image rule, per window pixel (windows may overlap: painting is
            # idempotent).
            in_c, in_r = (cols >= C0) & (cols < C1), (rows >= R0) & (rows < R1)
            edge_c = (cols < C0 + t) | (cols >= C1 - t)
            edge_r = (rows < R0 + t) | (rows >= R1 - t)
            return _put(win, in_c & in_r & (edge_c | edge_r), colour[q])

        # Top and bottom edges: the t rows from R0 and up to R1, in chunks of columns across
        # [C0, C1). Left and right edges: the t columns from C0 and up to C1, in chunks of rows
        # down [R0, R1). Together they hold every border pixel.
        n_across = jnp.where(empty, 0, (C1 - C0 + _EDGE_COLS - 1) // _EDGE_COLS)
        n_down = jnp.where(empty, 0, (R1 - R0 + _EDGE_ROWS - 1) // _EDGE_ROWS)

        def across(k, out):
            row = jnp.where(k % 2 == 0, R0, R1 - t)
            return _paint_window(out, b, row, C0 + (k // 2) * _EDGE_COLS, t, _EDGE_COLS, paint)

        def down(k, out):
            col = jnp.where(k % 2 == 0, C0, C1 - t)
            return _paint_window(out, b, R0 + (k // 2) * _EDGE_ROWS, col, _EDGE_ROWS, t, paint)

        out = lax.fori_loop(0, 2 * n_across, across, out)
        return lax.fori_loop(0, 2 * n_down, down, out)

    return lax.fori_loop(0, count, one_box, out)


def _pole(mask, stride: int, iters: int):
    """`(x, y)` float32 pole of inaccessibility of a `[H, W]` bool mask (approximate).

    Depth = how many 3 x 3 erosions a pooled pixel survives (chessboard distance to the
    edge); the deepest pooled pixel wins, ties to the nearest to the mask's centroid. When
    no pooled pixel is inside (a mask thinner than `stride`), the full-resolution mask pixel
    nearest to the centroid. Returns NaNs for an empty mask.
    """
    H, W = mask.shape
    hp, wp = -(-H // stride), -(-W // stride)
    padded = jnp.zeros((hp * stride, wp * stride), bool).at[:H, :W].set(mask)
    # A pooled pixel is inside when at least half its stride x stride pixels are: counted in
    # integers (the same test as a float mean >= 0.5).
    count = padded.reshape(hp, stride, wp, stride).astype(jnp.int32).sum(axis=(1, 3))
    small = 2 * count >= stride * stride

    def erode(cur):
        # 3 x 3 erosion (outside the grid counts as outside the mask), as a row then a column
        # pass: the same pixels as the AND of the 9 shifts.
        p = jnp.pad(cur, ((0, 0), (1, 1)))
        cur = p[:, :-2] & p[:, 1:-1] & p[:, 2:]
        p = jnp.pad(cur, ((1, 1), (0, 0)))
        return p[:-2] & p[1:-1] & p[2:]

    def body(carry):
        i, cur, depth = carry
        cur = erode(cur)
        return i + 1, cur, depth + cur.astype(jnp.int32)

    # Stops early once nothing is left: further erosions would add nothing.
    _, _, depth = lax.while_loop(
        lambda c: (c[0] < iters) & jnp.any(c[1]), body, (0, small, small.astype(jnp.int32))
    )
    maskf = mask.astype(jnp.float32)
    area = maskf.sum()
    ys = jnp.arange(H, dtype=jnp.float32) + 0.5
    xs = jnp.arange(W, dtype=jnp.float32) + 0.5
    cy = (maskf.sum(axis=1) * ys).sum() / jnp.maximum(area, 1.0)
    cx = (maskf.sum(axis=0) * xs).sum() / jnp.maximum(area, 1.0)
    norm = 1.0 / float(H * H + W * W)  # keeps the tie-break below one depth step
    sy = (jnp.arange(hp, dtype=jnp.float32) + 0.5) * stride
    sx = (jnp.arange(wp, dtype=jnp.float32) + 0.5) * stride
    d2_small = ((sy[:, None] - cy) ** 2 + (sx[None, :] - cx) ** 2) * norm
    score = jnp.where(depth > 0, depth.astype(jnp.float32) - d2_small, -1.0)
    k = jnp.argmax(score.reshape(-1))
    pole_small = jnp.stack([sx[k % wp], sy[k // wp]])

    def nearest_pixel():
        # Mask thinner than the pooling: the mask pixel nearest the centroid.
        d2_full = (ys[:, None] - cy) ** 2 + (xs[None, :] - cx) ** 2
        kf = jnp.argmin(jnp.where(mask, d2_full, jnp.inf).reshape(-1))
        return jnp.stack([xs[kf % W], ys[kf // W]])

    pole = lax.cond(jnp.any(small), lambda: pole_small, nearest_pixel)
    return jnp.where(area > 0, pole, jnp.nan)


def _mark_paint(cols, rows, cx, cy, colour, label, style: DrawStyle):
    """Which pixels of a `[h, w]` grid (`rows` `[h, 1]`, `cols` `[1, w]`) a mark centred on
    `(cx, cy)` paints.

    Returns (paint `[h, w]` int32: 0 untouched, 1 rim, 2 disc, 3 digit; ink float32 the digit
    grey level).
    """
    s = style.glyph_scale
    radius = mark_radius(style)
    d2 = (cols + 0.5 - cx) ** 2 + (rows + 0.5 - cy) ** 2
    disc = d2 <= radius**2
    rim = (d2 <= (radius + s) ** 2) & ~disc
    n = jnp.clip(label, 0, 99)
    two = n >= 10
    n_digits = jnp.where(two, 2, 1)
    width = n_digits * GLYPH_W * s + (n_digits - 1) * s
    ox = jnp.round(cx - width / 2).astype(jnp.int32)
    oy = jnp.round(cy - GLYPH_H * s / 2).astype(jnp.int32)
    lx, ly = cols - ox, rows - oy
    slot = lx // ((GLYPH_W + 1) * s)
    within = lx - slot * (GLYPH_W + 1) * s
    in_text = (lx >= 0) & (lx < width) & (ly >= 0) & (ly < GLYPH_H * s) & (within < GLYPH_W * s)
    gy = jnp.clip(ly // s, 0, GLYPH_H - 1)  # [h, 1]
    gx = jnp.clip(within // s, 0, GLYPH_W - 1)  # [1, w]
    # Glyph row bits of the first and the last digit for every grid row, then one bit per
    # pixel (the same pixels as `GLYPHS[digit, gy, gx]`).
    table = jnp.asarray(_GLYPH_ROW_BITS)
    bits_first = table[jnp.where(two, n // 10, n % 10)][gy]
    bits_last = table[n % 10][gy]
    bits = jnp.where(two & (slot == 0), bits_first, bits_last)
    on = (((bits >> (GLYPH_W - 1 - gx)) & 1) == 1) & in_text
    paint = jnp.where(on, 3, jnp.where(disc, 2, jnp.where(rim, 1, 0))).astype(jnp.int32)
    luma = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
    ink = jnp.where(luma > _LIGHT_LUMA, 0.0, 255.0)
    return paint, ink


def _mark_half(style: DrawStyle) -> int:
    """Half the side of a mark's window: it spans `floor(cx) - half .. floor(cx) + half`, which
    holds the rim (`mark_radius + glyph_scale` px from the centre) and two digits (`11 s` px
    wide, centred), with a pixel to spare for rounding."""
    s = style.glyph_scale
    return max(mark_radius(style) + s, -(-11 * s // 2)) + 2


def _draw_marks(out, kind, colour, box, label, mask_index, masks, centre, style: DrawStyle):
    """Draws every mark, image by image in prompt order; `centre` flat `[B * P, 2]` or None
    (then each mark's pole is searched in its mask, only for marks that have one)."""
    _, H, W, _ = out.shape
    P, M = kind.shape[1], masks.shape[1]
    order, count = _in_order((kind == KIND_MARK).reshape(-1))
    box = box.reshape(-1, 4)
    box_centre = jnp.stack([(box[:, 0] + box[:, 2]) / 2, (box[:, 1] + box[:, 3]) / 2], -1)
    colour = colour.reshape(-1, 3)
    label = label.reshape(-1)
    slot = jnp.clip(mask_index.reshape(-1), 0, max(M - 1, 0))
    has_mask = (mask_index.reshape(-1) >= 0) & (M > 0)
    half = _mark_half(style)
    side = 2 * half + 1
    nan2 = jnp.full((2,), jnp.nan, jnp.float32)

    def one_mark(i, out):
        q = order[i]
        b = q // P
        if centre is not None:
            where = centre[q]
        elif M == 0:
            where = nan2
        else:

            def pole():
                mask = lax.dynamic_slice(masks, (b, slot[q], 0, 0), (1, 1, H, W))[0, 0]
                return _pole(mask, style.pole_stride, style.pole_iters)

            where = lax.cond(has_mask[q], pole, lambda: nan2)
        cx, cy = jnp.where(jnp.all(jnp.isfinite(where)), where, box_centre[q])
        # Window corner from the centre's integer part; clipped first so a far-off (or inf)
        # centre cannot overflow int32; its window then sits at the image edge and paints
        # nothing, like the full-image rule.
        far = float(max(H, W) + 4 * side)
        fx = jnp.floor(jnp.clip(cx, -far, far)).astype(jnp.int32)
        fy = jnp.floor(jnp.clip(cy, -far, far)).astype(jnp.int32)
        colour_f = colour[q].astype(jnp.float32)

        def paint(win, row, col, rows, cols):
            codes, ink = _mark_paint(cols, rows, cx, cy, colour_f, label[q], style)
            win = _put(win, codes == 1, jnp.uint8(0))
            win = _put(win, codes == 2, colour[q])
            return _put(win, codes == 3, ink.astype(jnp.uint8))

        return _paint_window(out, b, fy - half, fx - half, side, side, paint)

    return lax.fori_loop(0, count, one_mark, out)


def draw_prompts_nojit(
    images, kind, colour, box, label, mask_index, masks, centre=None, style=DrawStyle()
):
    """Draws padded prompt specs over a batch of images (not jitted; see `draw_prompts`).

    Args:
      images: `[B, H, W, 3]` uint8.
      kind: `[B, P]` int32 `KIND_NONE` (padding), `KIND_BOX`, `KIND_MASK` or `KIND_MARK`.
      colour: `[B, P, 3]` uint8 RGB.
      box: `[B, P, 4]` float32 pixel boxes `(x1, y1, x2, y2)`.
      label: `[B, P]` int32 the number of a mark (0..99).
      mask_index: `[B, P]` int32 index into `masks[b]`, or -1 for none.
      masks: `[B, M, H, W]` bool (M may be 1 with an all-False mask when none is used).
      centre: optional `[B, P, 2]` float32 mark centres `(x, y)` (NaN: the default). None
        (default) finds each mark's pole in its mask here; a loader that stores centres
        (`mark_centres`, once per object) saves that search on every draw.
      style: static `DrawStyle`.

    Returns:
      `[B, H, W, 3]` uint8.
    """
    args = (
        jnp.asarray(images, jnp.uint8),
        jnp.asarray(kind, jnp.int32),
        jnp.asarray(colour, jnp.uint8),
        jnp.asarray(box, jnp.float32),
        jnp.asarray(label, jnp.int32),
        jnp.asarray(mask_index, jnp.int32),
        jnp.asarray(masks, bool),
    )
    if centre is not None:
        centre = jnp.asarray(centre, jnp.float32)
    # Windows on CPU (sequential small kernels: cheap there); whole-image passes elsewhere,
    # where a `while` step costs a host round trip and elementwise passes are what the
    # hardware is fast at. The choice is made when the call is lowered for its platform.
    return lax.platform_dependent(
        *args,
        cpu=functools.partial(_draw_windows, centre=centre, style=style),
        default=functools.partial(_draw_dense, centre=centre, style=style),
    )


def _draw_windows(images, kind, colour, box, label, mask_index, masks, *, centre, style):
    """The windowed drawer (see "Drawing" above); same arguments as `draw_prompts_nojit`."""
    out = images
    # Order: all masks, then all borders, then all marks (per image; images are independent).
    if masks.shape[1] > 0:
        out = _blend_masks(out, kind, colour, mask_index, masks, style.alpha)
    out = _draw_borders(out, kind, colour, box, style.thickness)
    if centre is not None:
        centre = centre.reshape(-1, 2)
    return _draw_marks(out, kind, colour, box, label, mask_index, masks, centre, style)


def _draw_dense(images, kind, colour, box, label, mask_index, masks, *, centre, style):
    """The whole-image drawer for accelerators: per prompt, the pixel rules evaluated on every
    pixel (a select over the image), vmapped over the batch; same pixels as `_draw_windows`
    (tests/test_draw_exact.py runs both against the reference)."""
    _, H, W, _ = images.shape
    P, M = kind.shape[1], masks.shape[1]
    rows = jnp.arange(H)[:, None]
    cols = jnp.arange(W)[None, :]
    t = style.thickness

    def one(img, kind, colour, box, label, mask_index, masks, centre):
        has_mask = (mask_index >= 0) & (M > 0)
        slot = jnp.clip(mask_index, 0, max(M - 1, 0))
        mask_of = [
            masks[slot[p]] & has_mask[p] if M > 0 else jnp.zeros((H, W), bool) for p in range(P)
        ]
        for p in range(P):
            inside = mask_of[p] & (kind[p] == KIND_MASK)
            img = jnp.where(inside[..., None], _blend_values(img, colour[p], style.alpha), img)
        c0, r0, c1, r1 = _pixel_spans(box, H, W)
        for p in range(P):
            in_c, in_r = (cols >= c0[p]) & (cols < c1[p]), (rows >= r0[p]) & (rows < r1[p])
            edge_c = (cols < c0[p] + t) | (cols >= c1[p] - t)
            edge_r = (rows < r0[p] + t) | (rows >= r1[p] - t)
            border = in_c & in_r & (edge_c | edge_r) & (kind[p] == KIND_BOX)
            img = jnp.where(border[..., None], colour[p], img)
        for p in range(P):
            box_centre = jnp.stack([(box[p, 0] + box[p, 2]) / 2, (box[p, 1] + box[p, 3]) / 2])
            if centre is None:
                where = _pole(mask_of[p], style.pole_stride, style.pole_iters)
            else:
                where = centre[p]
            cx, cy = jnp.where(jnp.all(jnp.isfinite(where)), where, box_centre)
            colour_f = colour[p].astype(jnp.float32)
            codes, ink = _mark_paint(cols, rows, cx, cy, colour_f, label[p], style)
            codes = jnp.where(kind[p] == KIND_MARK, codes, 0)[..., None]
            img = jnp.where(codes == 1, jnp.uint8(0), img)
            img = jnp.where(codes == 2, colour[p], img)
            img = jnp.where(codes == 3, ink.astype(jnp.uint8), img)
        return img

    if centre is None:
        return jax.vmap(lambda *a: one(*a, None))(
            images, kind, colour, box, label, mask_index, masks
        )
    return jax.vmap(one)(images, kind, colour, box, label, mask_index, masks, centre)


@functools.partial(jax.jit, static_argnames=("style",))
def mark_centres(masks, box, style=DrawStyle()):
    """`[B, P, 2]` where marks go: the pole of each `[B, P, H, W]` mask, else the centre of
    its `[B, P, 4]` box. Precompute once per object and pass as `draw_prompts(centre=...)`."""

    def one(args):
        mask, b = args
        pole = _pole(mask, style.pole_stride, style.pole_iters)
        mid = jnp.stack([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])
        return jnp.where(jnp.all(jnp.isfinite(pole)), pole, mid)

    def one_by_one(masks, box):
        # On CPU one mask at a time: the erosion loop then stops at each mask's own depth and
        # the full-resolution fallback runs only for masks that need it.
        B, P, H, W = masks.shape
        flat = (masks.reshape(B * P, H, W), box.reshape(B * P, 4))
        return lax.map(one, flat).reshape(B, P, 2)

    def all_at_once(masks, box):
        return jax.vmap(jax.vmap(lambda m, b: one((m, b))))(masks, box)

    masks, box = jnp.asarray(masks, bool), jnp.asarray(box, jnp.float32)
    return lax.platform_dependent(masks, box, cpu=one_by_one, default=all_at_once)


draw_prompts = jax.jit(draw_prompts_nojit, static_argnames=("style",))
draw_prompts.__doc__ = "Jit-compiled `draw_prompts_nojit` (same arguments, `style` static)."

draw_prompts_inplace = jax.jit(
    draw_prompts_nojit, static_argnames=("style",), donate_argnames=("images",)
)
draw_prompts_inplace.__doc__ = """`draw_prompts` drawing into the `images` buffer itself (donated).

The caller's `images` device array is consumed (deleted) by the call; pass a batch you no
longer need, e.g. one just decoded. This skips the copy of the whole batch that
`draw_prompts` must make (on CPU most of its time: drawing only touches the prompts'
pixels). A numpy `images` is copied to the device first, so it is left as it was.
"""


# ------------------------------------------------------------------------------------------
# Host helpers: prompt specs -> padded arrays.


def pack_prompts(
    prompt_lists, boxes, decoded_masks, height: int, width: int, num_prompts: int | None = None
) -> dict[str, np.ndarray]:
    """Padded arrays for `draw_prompts` from per-image `Prompt` tuples.

    Args:
      prompt_lists: B sequences of `Prompt`.
      boxes: `[n, 4]` pixel boxes of the frame's objects (`obs.box2d`), indexed by
        `Prompt.object`; one array for all images (they show one frame) or a list of B.
      decoded_masks: object position -> `[H, W]` bool mask (or missing / None): used for mask
        prompts and to centre marks; a dict for all images or a list of B dicts.
      height, width: image size.
      num_prompts: P (default: the longest list, at least 1).

    Returns:
      dict with `kind`, `colour`, `box`, `label`, `mask_index` (`[B, P]`-shaped) and `masks`
      `[B, P, H, W]` (mask slot p holds prompt p's mask), ready as keyword arguments.
    """
    B = len(prompt_lists)
    P = max(num_prompts or 0, max((len(x) for x in prompt_lists), default=0), 1)
    uses_masks = any(
        _mask_for(decoded_masks, b, pr.object) is not None
        for b, prompts in enumerate(prompt_lists)
        for pr in prompts
    )
    out = dict(
        kind=np.zeros((B, P), np.int32),
        colour=np.zeros((B, P, 3), np.uint8),
        box=np.zeros((B, P, 4), np.float32),
        label=np.zeros((B, P), np.int32),
        mask_index=np.full((B, P), -1, np.int32),
        masks=np.zeros((B, P if uses_masks else 1, height, width), bool),
    )
    for b, prompts in enumerate(prompt_lists):
        frame_boxes = boxes[b] if isinstance(boxes, list) else boxes
        for p, prompt in enumerate(prompts):
            out["kind"][b, p] = KIND_CODES[prompt.kind]
            out["colour"][b, p] = PALETTE[prompt.colour]
            out["box"][b, p] = np.asarray(frame_boxes[prompt.object], np.float32)
            out["label"][b, p] = prompt.label or 0
            mask = _mask_for(decoded_masks, b, prompt.object)
            if mask is not None:
                out["masks"][b, p] = mask
                out["mask_index"][b, p] = p
    return out


def _mask_for(decoded_masks, b, obj):
    table = decoded_masks[b] if isinstance(decoded_masks, list) else decoded_masks
    return None if table is None else table.get(obj)


def decode_masks(obs, objects) -> dict[int, np.ndarray]:
    """`{position: [H, W] bool}` for the listed objects of `obs` that have a mask."""
    from jax_spatial import masks as mask_lib

    out = {}
    for o in objects:
        spec = None if obs.masks is None else obs.masks[o]
        if spec is not None:
            out[o] = np.asarray(mask_lib.decode(spec, obs.height, obs.width), bool)
    return out


# `render_formatted` draws on a canvas whose sides are multiples of this many px, so a reader
# of a dataset with many image sizes (COCO, Visual Genome) compiles once per canvas bucket,
# not once per size; 128 keeps the padding (drawn over, then cut away) under a third of a
# 480 x 640 image.
CANVAS_STEP = 128


def canvas_size(height: int, width: int, step: int = CANVAS_STEP) -> tuple[int, int]:
    """`(height, width)` rounded up to multiples of `step` (`step=1`: unchanged)."""
    return -(-height // step) * step, -(-width // step) * step


def render_formatted(
    image: np.ndarray,
    obs,
    fqa: FormattedQA,
    style: DrawStyle | None = None,
    canvas_step: int = CANVAS_STEP,
):
    """One example's image with its format's prompts drawn (raw formats: the image itself).

    The image is drawn at the top left of a `canvas_size` canvas and cut out again: the same
    pixels as drawing at its own size (box borders are clipped to the image first, masks
    padded with False, `style` from the image's own size), but compiled once per canvas.
    One caveat: the pole search breaks ties between equally deep mask points by distance to
    the centroid, scaled by the image size, so where two such points are within float32
    rounding of each other a mark on a mask may sit one pooling step (`pole_stride` px) away
    from where the image-size drawing puts it.

    Args:
      image: `[H, W, 3]` uint8, the frame `obs` describes.
      obs: its `FrameObservation`.
      fqa: the `FormattedQA`.
      style: default `style_for(H, W)`.
      canvas_step: canvas sides are multiples of this (1: draw at the image's size).

    Returns:
      `[H, W, 3]` uint8.
    """
    image = np.asarray(image, np.uint8)
    if not fqa.prompts:
        return image
    H, W = image.shape[:2]
    style = style or style_for(H, W)
    CH, CW = canvas_size(H, W, canvas_step)
    masks = {}
    for obj, mask in decode_masks(obs, [p.object for p in fqa.prompts]).items():
        if mask is not None:
            masks[obj] = np.zeros((CH, CW), bool)
            masks[obj][:H, :W] = mask
    packed = pack_prompts([fqa.prompts], obs.box2d, masks, CH, CW)
    # A border is drawn inside its box as clipped to the image; on the canvas the clip edge
    # would be the canvas's, so box prompts are clipped to the image here. Marks keep the
    # unclipped box: its centre is where a mark without a mask goes.
    is_box = packed["kind"] == KIND_BOX
    clipped = np.clip(packed["box"], 0.0, np.array([W, H, W, H], np.float32))
    packed["box"] = np.where(is_box[..., None], clipped, packed["box"])
    canvas = np.zeros((1, CH, CW, 3), np.uint8)
    canvas[0, :H, :W] = image
    return np.asarray(draw_prompts_inplace(canvas, **packed, style=style))[0, :H, :W]


__all__ = [
    "CANVAS_STEP",
    "GLYPHS",
    "KIND_BOX",
    "KIND_CODES",
    "KIND_MARK",
    "KIND_MASK",
    "KIND_NONE",
    "DrawStyle",
    "Prompt",
    "canvas_size",
    "decode_masks",
    "draw_prompts",
    "draw_prompts_inplace",
    "draw_prompts_nojit",
    "mark_centres",
    "mark_radius",
    "min_box_side",
    "min_mark_side",
    "pack_prompts",
    "render_formatted",
    "style_for",
]
