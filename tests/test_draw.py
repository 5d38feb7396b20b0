"""Overlay drawing: box borders, exact mask blends, marks on their object, jit == non-jit."""

from __future__ import annotations

import functools

import chex
import numpy as np
import pytest

from jax_spatial.formats import draw
from jax_spatial.formats.spec import PALETTE, FormattedQA, Prompt

H, W = 48, 64
STYLE = draw.DrawStyle(thickness=2, alpha=0.5, glyph_scale=1, pole_stride=2, pole_iters=12)


def _spec(kinds, boxes, labels=None, mask_index=None, colours=None):
    P = len(kinds)
    return dict(
        kind=np.array([kinds], np.int32),
        colour=np.array([colours or [PALETTE["red"]] * P], np.uint8),
        box=np.array([boxes], np.float32),
        label=np.array([labels or [0] * P], np.int32),
        mask_index=np.array([mask_index or [-1] * P], np.int32),
    )


def _draw(image, spec, masks=None, style=STYLE):
    """`[H, W, 3]` first image of a drawn batch (no masks: one all-False slot)."""
    if masks is None:
        masks = np.zeros((1, 1, H, W), bool)
    return np.asarray(draw.draw_prompts(image, **spec, masks=masks, style=style))[0]


def _image(seed=0):
    return np.random.default_rng(seed).integers(0, 256, (1, H, W, 3), dtype=np.uint8)


def test_box_border_exactly_where_it_must_be():
    image = _image()
    out = _draw(image, _spec([draw.KIND_BOX], [[10.2, 5.6, 30.4, 25.0]]))
    # Columns round(10.2) .. round(30.4) - 1 = 10..29, rows 6..24; border 2 px inside.
    expect = np.zeros((H, W), bool)
    expect[6:25, 10:30] = True
    expect[8:23, 12:28] = False
    changed = np.any(out != image[0], axis=-1)
    assert np.all(out[expect] == PALETTE["red"])
    assert not np.any(changed & ~expect)


def test_box_clipped_at_image_edge_keeps_its_visible_border():
    image = np.zeros((1, H, W, 3), np.uint8)
    spec = _spec([draw.KIND_BOX], [[-20.0, -5.0, 20.0, 100.0]])
    out = _draw(image, spec)
    assert np.all(out[:, 18:20] == PALETTE["red"])  # right edge, full height
    assert np.all(out[0:2, 0:20] == PALETTE["red"])  # clipped top edge drawn at row 0
    # The box is drawn as clipped to the image: its left edge runs down column 0.
    assert np.all(out[:, 0:2] == PALETTE["red"])
    assert np.all(out[5:40, 2:18] == 0)


def test_mask_blend_value_is_exact():
    image = _image(1)
    mask = np.zeros((1, 1, H, W), bool)
    mask[0, 0, 10:30, 5:40] = True
    colour = PALETTE["blue"]
    for alpha in (0.5, 0.35):
        style = draw.DrawStyle(thickness=2, alpha=alpha, glyph_scale=1)
        spec = _spec([draw.KIND_MASK], [[5, 10, 40, 30]], mask_index=[0], colours=[colour])
        out = np.asarray(draw.draw_prompts(image, **spec, masks=mask, style=style))[0]
        a = np.float32(alpha)
        expect = np.round(
            (np.float32(1) - a) * image[0].astype(np.float32) + a * np.asarray(colour, np.float32)
        ).astype(np.uint8)
        m = mask[0, 0]
        np.testing.assert_array_equal(out[m], expect[m])
        np.testing.assert_array_equal(out[~m], image[0][~m])


def _l_mask():
    """An L shape whose centroid lies outside it."""
    m = np.zeros((H, W), bool)
    m[4:44, 4:14] = True
    m[34:44, 4:60] = True
    return m


def test_mark_centred_inside_its_mask_and_white_digit_drawn():
    mask = _l_mask()
    ys, xs = np.nonzero(mask)
    assert not mask[int(ys.mean()), int(xs.mean())]  # the centroid is outside: the hard case
    image = np.zeros((1, H, W, 3), np.uint8)
    spec = _spec([draw.KIND_MARK], [[4, 4, 60, 44]], labels=[7], mask_index=[0])
    out = np.asarray(draw.draw_prompts(image, **spec, masks=mask[None, None], style=STYLE))[0]
    disc = np.all(out == PALETTE["red"], axis=-1)
    white = np.all(out == 255, axis=-1)
    assert disc.sum() > 20 and white.sum() >= 10  # the "7" has 11 lit glyph pixels
    cy, cx = np.argwhere(disc | white).mean(axis=0)
    assert mask[int(round(cy)), int(round(cx))]
    assert (disc | white)[int(round(cy)), int(round(cx))]


def test_mark_without_mask_sits_at_box_centre_and_glyph_is_right():
    image = np.zeros((1, H, W, 3), np.uint8)
    spec = _spec([draw.KIND_MARK], [[10, 10, 40, 30]], labels=[1])
    out = _draw(image, spec)
    white = np.all(out == 255, axis=-1)
    rows, cols = np.nonzero(white)
    np.testing.assert_array_equal(
        white[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1], draw.GLYPHS[1][:, 1:4]
    )
    assert abs((rows.min() + rows.max() + 1) / 2 - 20) <= 1
    assert abs((cols.min() + cols.max() + 1) / 2 - 25) <= 1


def test_light_colours_get_black_digits():
    image = np.full((1, H, W, 3), 128, np.uint8)
    spec = _spec([draw.KIND_MARK], [[10, 10, 40, 30]], labels=[8], colours=[PALETTE["yellow"]])
    out = _draw(image, spec)
    assert np.any(np.all(out == PALETTE["yellow"], axis=-1))
    assert not np.any(np.all(out == 255, axis=-1))


def test_padding_prompts_draw_nothing():
    image = _image(2)
    spec = _spec([draw.KIND_NONE, draw.KIND_NONE], [[0, 0, 64, 48], [5, 5, 30, 30]], labels=[3, 4])
    out = np.asarray(
        draw.draw_prompts(image, **spec, masks=np.ones((1, 1, H, W), bool), style=STYLE)
    )
    np.testing.assert_array_equal(out, image)


class JitTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_jit_matches_nojit(self):
        rng = np.random.default_rng(3)
        B, P = 3, 3
        images = rng.integers(0, 256, (B, H, W, 3), dtype=np.uint8)
        masks = np.zeros((B, P, H, W), bool)
        masks[:, 0, 5:20, 5:30] = True
        masks[:, 1] = _l_mask()
        args = dict(
            kind=np.array([[2, 1, 3], [3, 2, 0], [1, 3, 2]], np.int32),
            colour=rng.integers(0, 256, (B, P, 3), dtype=np.uint8),
            box=np.array([[[5, 5, 30, 20], [4, 4, 60, 44], [20, 10, 50, 40]]] * B, np.float32),
            label=np.array([[1, 2, 12]] * B, np.int32),
            mask_index=np.array([[0, 1, -1]] * B, np.int32),
            masks=masks,
        )
        fn = self.variant(functools.partial(draw.draw_prompts_nojit, style=STYLE))
        out = fn(images, **args)
        ref = draw.draw_prompts(images, **args, style=STYLE)
        np.testing.assert_array_equal(np.asarray(out), np.asarray(ref))
        assert not np.array_equal(np.asarray(out), images)


def test_render_formatted_raw_is_identity_and_boxes_drawn():
    from types import SimpleNamespace

    obs = SimpleNamespace(box2d=np.array([[10.0, 10.0, 40.0, 30.0]]), masks=None, height=H, width=W)
    image = _image(4)[0]
    raw = FormattedQA("caption/raw", "caption", "raw", "q", "a", ())
    np.testing.assert_array_equal(draw.render_formatted(image, obs, raw), image)
    boxed = FormattedQA("caption/boxes", "caption", "boxes", "q", "a", (Prompt(0, "box", "green"),))
    out = draw.render_formatted(image, obs, boxed, STYLE)
    assert np.all(out[10, 10:40] == PALETTE["green"])


@pytest.mark.parametrize("size", [(240, 320), (480, 640), (968, 1296)])
def test_marks_fit_their_minimum_side(size):
    style = draw.style_for(*size)
    r = draw.mark_radius(style)
    s = style.glyph_scale
    # One digit's corners lie inside the disc.
    assert np.hypot(draw.GLYPH_W * s / 2, draw.GLYPH_H * s / 2) <= r
    assert draw.min_mark_side(style) == 2 * r
    assert draw.min_box_side(style) >= 2 * style.thickness


@pytest.mark.parametrize("size", [(72, 96), (100, 130), (333, 500), (480, 640)])
@pytest.mark.parametrize("kind", ["box", "mask", "mark"])
def test_render_formatted_on_a_canvas_equals_drawing_at_the_image_size(size, kind):
    # The canvas (sides rounded up to 128 px) only bounds compilations: boxes past the image
    # edge, masks and marks at the edges, two-object prompts must come out pixel for pixel
    # as drawn at the image's own size.
    from types import SimpleNamespace

    h, w = size
    rng = np.random.default_rng(h * w)
    for trial in range(4):
        n = 2
        x1 = rng.uniform(-0.3 * w, 0.8 * w, n)
        y1 = rng.uniform(-0.3 * h, 0.8 * h, n)
        boxes = np.stack(
            [x1, y1, x1 + rng.uniform(0.15, 0.6, n) * w, y1 + rng.uniform(0.15, 0.6, n) * h], -1
        )
        yy, xx = np.mgrid[0:h, 0:w] + 0.5
        masks = []
        for b in boxes:  # ellipses in the boxes, cut by the image edge
            cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
            rx, ry = (b[2] - b[0]) / 2, (b[3] - b[1]) / 2
            masks.append(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0)
        with_masks = kind == "mask" or trial % 2 == 0
        obs = SimpleNamespace(box2d=boxes, masks=masks if with_masks else None, height=h, width=w)
        label = (3, 7) if kind == "mark" else (None, None)
        prompts = (Prompt(0, kind, "red", label[0]), Prompt(1, kind, "yellow", label[1]))
        fqa = FormattedQA(f"image_text/{kind}s", "image_text", f"{kind}s", "q", "a", prompts)
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        native = draw.render_formatted(image, obs, fqa, canvas_step=1)
        canvas = draw.render_formatted(image, obs, fqa)
        assert draw.canvas_size(h, w) != (h, w) or size == (480, 640)
        np.testing.assert_array_equal(canvas, native)
        assert not np.array_equal(native, image)


def test_images_of_one_canvas_bucket_share_a_compilation():
    from types import SimpleNamespace

    prompts = (Prompt(0, "box", "red"),)
    fqa = FormattedQA("image_text/boxes", "image_text", "boxes", "q", "a", prompts)
    sizes = [(100, 120), (110, 125), (97, 128), (128, 101)]  # all on the 128 x 128 canvas
    assert {draw.canvas_size(*s) for s in sizes} == {(128, 128)}
    assert len({draw.style_for(*s) for s in sizes}) == 1
    before = None
    for h, w in sizes:
        obs = SimpleNamespace(
            box2d=np.array([[5.0, 6.0, 60.0, 70.0]]), masks=None, height=h, width=w
        )
        out = draw.render_formatted(np.zeros((h, w, 3), np.uint8), obs, fqa)
        assert out.shape == (h, w, 3) and np.all(out[6, 5:60] == PALETTE["red"])
        if before is None:
            before = draw.draw_prompts_inplace._cache_size()
    assert draw.draw_prompts_inplace._cache_size() == before
