"""Procedural scenes: determinism, physical plausibility, self-consistent ground truth."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
from PIL import Image

from jax_spatial import masks as mask_lib
from jax_spatial import observe
from jax_spatial.geometry import boxes
from jax_spatial.sources import get_source, procedural

OPTIONS = dict(num_scenes=3, seed=5, views_per_scene=2, width=160, height=120)


@pytest.fixture(scope="module")
def scenes():
    source = procedural.ProceduralSource(None, **OPTIONS)
    return [source.load(i) for i in source.scene_ids()]


def test_registered_and_ids():
    source = get_source("procedural", None, **OPTIONS)
    assert source.scene_ids() == ["proc_000000", "proc_000001", "proc_000002"]


def test_deterministic_per_seed(scenes):
    again = procedural.ProceduralSource("", **OPTIONS).load("proc_000001")
    first = scenes[1]
    for a, b in zip(first.frames, again.frames, strict=True):
        assert a.image_bytes == b.image_bytes
        np.testing.assert_array_equal(a.depth, b.depth)
        np.testing.assert_array_equal(a.world_from_cam, b.world_from_cam)
    for a, b in zip(first.objects, again.objects, strict=True):
        assert (a.category, a.caption) == (b.category, b.caption)
        np.testing.assert_array_equal(a.box3d.centre, b.box3d.centre)
        assert a.masks == b.masks
    other = procedural.ProceduralSource("", **{**OPTIONS, "seed": 6}).load("proc_000001")
    assert other.frames[0].image_bytes != first.frames[0].image_bytes


def test_frames_and_objects_are_well_formed(scenes):
    for scene in scenes:
        assert 4 <= len(scene.objects) <= 10
        for frame in scene.frames:
            assert frame.exhaustive
            image = Image.open(io.BytesIO(frame.image_bytes))
            assert image.format == "PNG" and image.size == (frame.width, frame.height)
            assert frame.depth.dtype == np.float32 and frame.depth.shape == (120, 160)
            assert frame.depth.min() > 0  # a closed room: every pixel hits something
            assert 1.2 <= frame.world_from_cam[2, 3] <= 1.8
        captions = [o.caption for o in scene.objects if o.caption is not None]
        assert len(captions) == len(set(captions))
        assert sum(len(o.masks) > 0 for o in scene.objects) >= 3


def _footprint_overlap(a, b):
    """Interiors of two z-rotated boxes intersect (touching faces do not count)."""
    if (
        min(a.centre[2] + a.extent[2] / 2, b.centre[2] + b.extent[2] / 2)
        - max(a.centre[2] - a.extent[2] / 2, b.centre[2] - b.extent[2] / 2)
        <= 1e-9
    ):
        return False
    polys = []
    for box in (a, b):
        corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * box.extent[:2] / 2
        polys.append(corners @ box.rotation[:2, :2].T + box.centre[:2])
    for poly in polys:
        for i in range(4):
            edge = poly[(i + 1) % 4] - poly[i]
            axis = np.array([-edge[1], edge[0]]) / np.linalg.norm(edge)
            pa, pb = polys[0] @ axis, polys[1] @ axis
            if pa.max() <= pb.min() + 1e-9 or pb.max() <= pa.min() + 1e-9:
                return False
    return True


def test_no_interpenetration_and_objects_rest_on_supports(scenes):
    for scene in scenes:
        lx, ly, _ = scene.meta["room_size"]
        for obj in scene.objects:
            box = obj.box3d
            bottom = box.centre[2] - box.extent[2] / 2
            support = obj.extra["support"]
            if support is None:
                assert abs(bottom) < 1e-6
            else:
                parent = scene.objects[support].box3d
                assert abs(bottom - (parent.centre[2] + parent.extent[2] / 2)) < 1e-6
            corners = np.asarray(boxes.box_corners(box.centre, box.extent, box.rotation))
            assert np.all(corners[:, 0] > 0) and np.all(corners[:, 0] < lx)
            assert np.all(corners[:, 1] > 0) and np.all(corners[:, 1] < ly)
        for a, b in itertools.combinations(scene.objects, 2):
            assert not _footprint_overlap(a.box3d, b.box3d), (a.caption, b.caption)


def test_masks_lie_inside_projected_boxes(scenes):
    checked = 0
    for scene in scenes:
        for frame in scene.frames:
            cam_from_world = np.linalg.inv(frame.world_from_cam)
            for obj in scene.objects:
                if frame.frame_id not in obj.masks:
                    continue
                mask = mask_lib.decode(obj.masks[frame.frame_id])
                assert mask.shape == (frame.height, frame.width) and mask.any()
                box2d = obj.boxes2d[frame.frame_id]
                np.testing.assert_array_equal(box2d, mask_lib.mask_box(mask))
                b = obj.box3d
                corners = np.asarray(boxes.box_corners(b.centre, b.extent, b.rotation))
                corners_cam = corners @ cam_from_world[:3, :3].T + cam_from_world[:3, 3]
                projected, visible, _ = (
                    np.asarray(x)
                    for x in boxes.projected_box2d(corners_cam, frame.K, frame.width, frame.height)
                )
                assert visible
                # Pixels are whole: a sliver of a pixel inside the projection counts.
                assert box2d[0] >= np.floor(projected[0]) and box2d[1] >= np.floor(projected[1])
                assert box2d[2] <= np.ceil(projected[2]) and box2d[3] <= np.ceil(projected[3])
                checked += 1
    assert checked >= 10


def test_observe_keeps_visible_objects(scenes):
    for scene in scenes[:1]:  # visibility's own compile dominates; one scene is enough
        for frame in scene.frames:
            obs = observe.observe_frame(scene, frame)
            kept = set(obs.object_index.tolist())
            for obj in scene.objects:
                area = (
                    mask_lib.rle_area(obj.masks[frame.frame_id])
                    if obj.masks.get(frame.frame_id)
                    else 0
                )
                # Clearly visible objects (a 10x10 px patch or more) must survive observation.
                if area >= 100:
                    assert obj.index in kept, (scene.scene_id, frame.frame_id, obj.caption, area)


def test_captions_add_adjectives_until_unique():
    from jax_spatial.render import meshes

    def placed(colour, radius):
        shape = meshes.cylinder_shape(radius, 0.5)
        return procedural._Placed(shape, colour, None, np.zeros(3), 0.0, False)

    objs = [
        placed("red", 0.1),
        placed("red", 0.3),
        placed("blue", 0.2),
        placed("green", 0.2),
        placed("green", 0.2),
    ]
    caps = procedural._captions(objs)
    # Size alone singles out the smallest red one; the two equal green ones cannot be told apart.
    assert caps == ["small cylinder", "large cylinder", "blue cylinder", None, None]
    objs[0] = placed("red", 0.2)  # now ties with others overall, but not among the reds
    assert procedural._captions(objs)[:2] == ["small red cylinder", "large cylinder"]


def test_size_spread_unties_size_from_category():
    """At spread 2.5 a category's heights span far more than its own range (cups: 0.08-0.12 m,
    a ratio of 1.5), objects stay under 2.2 m (1 m on a support), supports keep their objects
    on top; the default (spread 1) keeps each category in its own range."""
    import math

    from jax_spatial.errors import UserError

    def furnish(spread, n=40):
        source = procedural.ProceduralSource(None, num_scenes=n, seed=9, size_spread=spread)
        out = []
        for i in range(n):
            rng = np.random.default_rng([9, i])
            room = np.array([6.0, 6.0, 2.8])
            out += source._furnish(room, rng)
        return out

    wide = furnish(2.5)
    heights: dict[str, list[float]] = {}
    for p in wide:
        heights.setdefault(p.shape.category, []).append(float(p.shape.extent[2]))
        assert p.shape.extent[2] <= (1.0 if p.support is not None else 2.2) + 1e-9
        if p.support is not None:
            assert abs(p.centre[2] - p.shape.extent[2] / 2 - p.support.shape.support[0]) < 1e-9
    spans = {c: max(h) / min(h) for c, h in heights.items() if len(h) >= 5}
    assert spans and all(span > 2.0 for span in spans.values()), spans
    cups = [float(p.shape.extent[2]) for p in furnish(1.0) if p.shape.category == "cup"]
    assert len(cups) >= 5 and max(cups) / min(cups) <= 1.5 + 1e-9  # the default: unscaled
    for bad in (0.5, "wide", math.inf):
        with pytest.raises(UserError, match="size_spread"):
            procedural.ProceduralSource(None, size_spread=bad)
