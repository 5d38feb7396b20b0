"""Tests for COCO RLE coding, polygon rasterisation and mask boxes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from jax_spatial import masks

# A 4x5 mask, hand-encoded. Column-major pixels: 1000 0110 0110 0110 0001, so the runs are
# 0 1 4 2 2 2 2 2 4 1. Compressed: counts after the second are deltas to the count two back
# (0 1 4 1 -2 0 0 0 2 -1), each a single 5-bit group as chr(48 + (v & 31)): "0141N0002O".
# pycocotools.mask.encode gives the same bytes.
HAND_MASK = np.zeros((4, 5), bool)
HAND_MASK[0, 0] = True
HAND_MASK[1:3, 1:4] = True
HAND_MASK[3, 4] = True
HAND_RUNS = [0, 1, 4, 2, 2, 2, 2, 2, 4, 1]
HAND_STRING = "0141N0002O"

# pycocotools 2.0 output for `frPyObjects([[2, 2, 14, 4, 6, 11]], 13, 16)` (area 49).
COCO_TRIANGLE = {"size": [13, 16], "counts": "l01<2N3N1N0000O1O1O2N1OT1"}
# A 60x40 rectangle in a 100x100 image: a long run of unchanged deltas, multi-group counts.
COCO_RECT = {
    "size": [100, 100],
    "counts": "\\n2l1X1" + "0" * 77 + "Tm2",
}


def test_hand_checked_rle():
    rle = masks.encode_rle(HAND_MASK)
    assert rle == {"size": [4, 5], "counts": HAND_STRING}
    assert masks.encode_rle(HAND_MASK, compressed=False)["counts"] == HAND_RUNS
    np.testing.assert_array_equal(masks.rle_from_string(HAND_STRING), HAND_RUNS)
    np.testing.assert_array_equal(masks.decode_rle(rle), HAND_MASK)
    np.testing.assert_array_equal(
        masks.decode_rle({"size": [4, 5], "counts": HAND_STRING.encode()}), HAND_MASK
    )
    assert masks.rle_area(rle) == HAND_MASK.sum() == 8


def test_pycocotools_reference_strings():
    rect = np.zeros((100, 100), bool)
    rect[20:80, 30:70] = True
    assert masks.encode_rle(rect)["counts"] == COCO_RECT["counts"]
    np.testing.assert_array_equal(masks.decode_rle(COCO_RECT), rect)
    triangle = masks.rasterize_polygons([[2, 2, 14, 4, 6, 11]], 13, 16)
    reference = masks.decode_rle(COCO_TRIANGLE)
    assert reference.sum() == 49
    # pycocotools snaps vertices to a 1/5 px grid: one pixel beside the vertex (6, 11), whose
    # centre (6.5, 10.5) lies just inside the exact edge, is the only difference.
    assert np.count_nonzero(triangle != reference) <= 1


@settings(max_examples=150, deadline=None)
@given(hnp.arrays(bool, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=24)))
def test_rle_round_trip(mask):
    for compressed in (True, False):
        rle = masks.encode_rle(mask, compressed=compressed)
        np.testing.assert_array_equal(masks.decode_rle(rle), mask)
        assert masks.rle_area(rle) == mask.sum()
    runs = masks.encode_rle(mask, compressed=False)["counts"]
    assert sum(runs) == mask.size
    np.testing.assert_array_equal(
        masks.rle_from_string(masks.rle_to_string(runs)), np.asarray(runs)
    )


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 100_000), min_size=0, max_size=40))
def test_rle_string_round_trip_large_counts(runs):
    np.testing.assert_array_equal(
        masks.rle_from_string(masks.rle_to_string(runs)), np.asarray(runs, np.int64)
    )


def test_rle_rejects_bad_counts():
    with pytest.raises(ValueError, match="sum"):
        masks.decode_rle({"size": [2, 2], "counts": [1, 2]})
    with pytest.raises(ValueError):
        masks.decode_rle({"size": [2, 2], "counts": [5, -1]})


@settings(max_examples=60, deadline=None)
@given(
    st.integers(3, 10),
    st.floats(8, 30),
    st.floats(0, 2 * np.pi),
    st.integers(0, 2**31 - 1),
)
def test_polygon_area_matches_shoelace(k, radius, phase, seed):
    # Star-shaped (simple) polygons: the pixel count approximates the exact area with an error
    # bounded by the boundary pixels, about half the perimeter in the worst case.
    rng = np.random.default_rng(seed)
    angles = phase + np.sort(rng.uniform(0, 2 * np.pi, k))
    r = radius * rng.uniform(0.4, 1.0, k)
    xy = np.stack([40 + r * np.cos(angles), 40 + r * np.sin(angles)], -1)
    poly = [xy.ravel().tolist()]
    area = masks.polygon_area(poly)
    perimeter = np.sum(np.linalg.norm(xy - np.roll(xy, -1, 0), axis=-1))
    raster = masks.rasterize_polygons(poly, 80, 80)
    assert abs(raster.sum() - area) <= 0.5 * perimeter + 4


def test_rectangle_polygon_is_exact():
    mask = masks.rasterize_polygons([[10, 10, 30, 10, 30, 20, 10, 20]], 40, 40)
    assert mask.sum() == 200
    np.testing.assert_array_equal(masks.mask_box(mask), [10, 10, 30, 20])
    # Sub-pixel rectangle edges: pixel centres decide.
    mask = masks.rasterize_polygons([[2.4, 1.6, 5.6, 1.6, 5.6, 3.4, 2.4, 3.4]], 6, 8)
    np.testing.assert_array_equal(masks.mask_box(mask), [2, 2, 6, 3])


def test_polygon_rings_union_and_even_odd():
    outer = [0, 0, 20, 0, 20, 20, 0, 20]
    # One ring that bridges to an inner square (zero-width cut) leaves a hole by even-odd.
    ring_with_hole = outer + [0, 0, 5, 5, 5, 15, 15, 15, 15, 5, 5, 5]
    holed = masks.rasterize_polygons([ring_with_hole], 20, 20)
    assert not holed[10, 10] and holed[2, 2]
    assert holed.sum() == 400 - 100
    # Two rings of one annotation are unioned, not xor-ed.
    union = masks.rasterize_polygons([outer, [5, 5, 15, 5, 15, 15, 5, 15]], 20, 20)
    assert union.all()


def test_decode_dispatch_and_errors():
    poly = [[1, 1, 4, 1, 4, 3, 1, 3]]
    mask = masks.decode(poly, 5, 6)
    assert mask.shape == (5, 6) and mask.sum() == 6
    np.testing.assert_array_equal(masks.decode(masks.encode_rle(mask), 5, 6), mask)
    with pytest.raises(ValueError, match="height"):
        masks.decode(poly)
    with pytest.raises(ValueError, match="does not match"):
        masks.decode(masks.encode_rle(mask), 6, 6)
    assert masks.rasterize_polygons([[1, 1, 2, 2]], 4, 4).sum() == 0  # degenerate ring


def test_mask_box_and_area_batched():
    stack = np.zeros((3, 6, 7), bool)
    stack[0, 1:3, 2:5] = True
    stack[1, 5, 6] = True
    boxes = masks.mask_box(stack)
    np.testing.assert_array_equal(boxes[0], [2, 1, 5, 3])
    np.testing.assert_array_equal(boxes[1], [6, 5, 7, 6])
    assert np.isnan(boxes[2]).all()
    np.testing.assert_array_equal(masks.mask_area(stack), [6, 1, 0])
