"""Drawing visual prompts (boxes, translucent masks, numbered marks) on image batches, jitted.

`draw_prompts(images, spec, masks, style)` draws `[B, P]` padded prompt specs over
`[B, H, W, 3]` uint8 images in one compiled call; shapes are static (`B`, `P`, `M`, `H`, `W`
and the `DrawStyle`), so a loader that pads to a few buckets compiles a few times.

Pixel rules (tests/test_draw.py pins each):

* Pixel `(col, row)` covers `[col, col + 1) x [row, row + 1)`, the project's convention, so a
  box `(x1, y1, x2, y2)` spans columns `round(x1) .. round(x2) - 1`.
* **Box**: a border `thickness` px wide drawn *inside* that span (an edge box stays visible
  after clipping to the image, and the border never covers a neighbour's pixels outside it).
* **Mask**: `out = round((1 - alpha) * img + alpha * colour)` per channel inside the mask,
  computed in float32, rounding half to even; masks blend in prompt order.
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
# One image.


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
    norm = 1.0 / float(H * H + W * W)  # keeps the tie-break below one depth step
    sy = (jnp.arange(hp, dtype=jnp.float32) + 0.5) * stride
    sx = (jnp.arange(wp, dtype=jnp.float32) + 0.5) * stride
    d2_small = ((sy[:, None] - cy) ** 2 + (sx[None, :] - cx) ** 2) * norm
    score = jnp.where(depth > 0, depth.astype(jnp.float32) - d2_small, -1.0)
    k = jnp.argmax(score.reshape(-1))
    pole_small = jnp.stack([sx[k % wp], sy[k // wp]])
    # Mask thinner than the pooling: the mask pixel nearest the centroid.
    d2_full = (ys[:, None] - cy) ** 2 + (xs[None, :] - cx) ** 2
    kf = jnp.argmin(jnp.where(mask, d2_full, jnp.inf).reshape(-1))
    pole_full = jnp.stack([xs[kf % W], ys[kf // W]])
    pole = jnp.where(jnp.any(small), pole_small, pole_full)
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
    digit = jnp.where(two & (slot == 0), n // 10, n % 10)
    gy = jnp.clip(ly // s, 0, GLYPH_H - 1)
    gx = jnp.clip(within // s, 0, GLYPH_W - 1)
    on = jnp.asarray(GLYPHS)[digit, gy, gx] & in_text
    paint = jnp.where(on, 3, jnp.where(disc, 2, jnp.where(rim, 1, 0))).astype(jnp.int32)
    luma = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
    ink = jnp.where(luma > _LIGHT_LUMA, 0.0, 255.0)
    return paint, ink


def _draw_one(image, kind, colour, box, label, mask_index, masks, centre, style: DrawStyle):
    """Draws one image's prompts. Shapes: `[H, W, 3]`, `[P]`, `[P, 3]`, `[P, 4]`, `[P]`, `[P]`,
    `[M, H, W]`, `[P, 2]` or None; returns `[H, W, 3]` uint8.

    The image stays uint8 between steps (each step converts inside its own fused loop), so
    memory traffic is a byte per channel per pass.
    """
    H, W, _ = image.shape
    P = kind.shape[0]
    M = masks.shape[0]
    img = image
    colour_f = colour.astype(jnp.float32)
    rows = jnp.arange(H)[:, None]
    cols = jnp.arange(W)[None, :]
    has_mask = (mask_index >= 0) & (M > 0)
    mask_of = [masks[jnp.clip(mask_index[p], 0, max(M - 1, 0))] & has_mask[p] for p in range(P)]

    a = jnp.float32(style.alpha)
    for p in range(P):
        inside = mask_of[p] & (kind[p] == KIND_MASK)
        blended = jnp.round((1.0 - a) * img.astype(jnp.float32) + a * colour_f[p])
        img = jnp.where(inside[..., None], blended.astype(jnp.uint8), img)

    t = style.thickness
    for p in range(P):
        c0, r0, c1, r1 = (jnp.round(box[p, i]).astype(jnp.int32) for i in range(4))
        c0, c1 = jnp.clip(c0, 0, W), jnp.clip(c1, 0, W)
        r0, r1 = jnp.clip(r0, 0, H), jnp.clip(r1, 0, H)
        # Separable: row and column predicates, combined per pixel.
        in_c, in_r = (cols >= c0) & (cols < c1), (rows >= r0) & (rows < r1)
        edge_c = (cols < c0 + t) | (cols >= c1 - t)
        edge_r = (rows < r0 + t) | (rows >= r1 - t)
        border = in_c & in_r & (edge_c | edge_r) & (kind[p] == KIND_BOX)
        img = jnp.where(border[..., None], colour[p], img)

    for p in range(P):
        box_centre = jnp.stack([(box[p, 0] + box[p, 2]) / 2, (box[p, 1] + box[p, 3]) / 2])
        if centre is None:
            where = _pole(mask_of[p], style.pole_stride, style.pole_iters)
        else:
            where = centre[p]
        cx, cy = jnp.where(jnp.all(jnp.isfinite(where)), where, box_centre)
        paint, ink = _mark_paint(cols, rows, cx, cy, colour_f[p], label[p], style)
        paint = jnp.where(kind[p] == KIND_MARK, paint, 0)[..., None]
        img = jnp.where(paint == 1, jnp.uint8(0), img)
        img = jnp.where(paint == 2, colour[p], img)
        img = jnp.where(paint == 3, ink.astype(jnp.uint8), img)
    return img


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
    fn = functools.partial(_draw_one, style=style)
    if centre is None:
        return jax.vmap(lambda *a: fn(*a, None))(
            images, kind, colour, box, label, mask_index, masks
        )
    return jax.vmap(fn)(images, kind, colour, box, label, mask_index, masks, centre)


@functools.partial(jax.jit, static_argnames=("style",))
def mark_centres(masks, box, style=DrawStyle()):
    """`[B, P, 2]` where marks go: the pole of each `[B, P, H, W]` mask, else the centre of
    its `[B, P, 4]` box. Precompute once per object and pass as `draw_prompts(centre=...)`."""

    def one(mask, b):
        pole = _pole(mask, style.pole_stride, style.pole_iters)
        mid = jnp.stack([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])
        return jnp.where(jnp.all(jnp.isfinite(pole)), pole, mid)

    return jax.vmap(jax.vmap(one))(masks, box)


draw_prompts = jax.jit(draw_prompts_nojit, static_argnames=("style",))
draw_prompts.__doc__ = "Jit-compiled `draw_prompts_nojit` (same arguments, `style` static)."


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


def render_formatted(image: np.ndarray, obs, fqa: FormattedQA, style: DrawStyle | None = None):
    """One example's image with its format's prompts drawn (raw formats: the image itself).

    Args:
      image: `[H, W, 3]` uint8, the frame `obs` describes.
      obs: its `FrameObservation`.
      fqa: the `FormattedQA`.
      style: default `style_for(H, W)`.

    Returns:
      `[H, W, 3]` uint8.
    """
    image = np.asarray(image, np.uint8)
    if not fqa.prompts:
        return image
    H, W = image.shape[:2]
    style = style or style_for(H, W)
    masks = decode_masks(obs, [p.object for p in fqa.prompts])
    packed = pack_prompts([fqa.prompts], obs.box2d, masks, H, W)
    return np.asarray(draw_prompts(image[None], **packed, style=style))[0]


__all__ = [
    "GLYPHS",
    "KIND_BOX",
    "KIND_CODES",
    "KIND_MARK",
    "KIND_MASK",
    "KIND_NONE",
    "DrawStyle",
    "Prompt",
    "decode_masks",
    "draw_prompts",
    "draw_prompts_nojit",
    "mark_centres",
    "mark_radius",
    "min_box_side",
    "min_mark_side",
    "pack_prompts",
    "render_formatted",
    "style_for",
]
