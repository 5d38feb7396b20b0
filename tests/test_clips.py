"""Clips: frame sampling, polygon rooms, the camera walk, visibility, ground truth, rotations.

References are independent of the code under test: hand-checked cases, a winding-number
point-in-polygon test and a per-edge distance loop written here, rooms' areas from the
rectangles they were built from, the rasterizer's own pixels (floor seen from above, walls
seen at eye level against a 2D ray cast), and ScanNet visibility judged by eye.
"""

from __future__ import annotations

import io
import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from jax_spatial import masks as mask_lib
from jax_spatial.geometry import frames
from jax_spatial.multiview import clip as clip_lib
from jax_spatial.render import meshes, rasterizer
from jax_spatial.sources import get_source, mesh_folder, procedural
from jax_spatial.sources import procedural_clips as pc
from jax_spatial.writers import ground_truth_clips as gtc

SIZE = dict(width=160, height=120)
CLIP_OPTIONS = dict(num_scenes=3, seed=3, **SIZE)


@pytest.fixture(scope="module")
def clip_source():
    return get_source("procedural_clips", None, **CLIP_OPTIONS)


@pytest.fixture(scope="module")
def clips(clip_source):
    return [clip_source.load_clip(i) for i in clip_source.scene_ids()]


@pytest.fixture(scope="module")
def pair_source():
    return get_source("rotation_pairs", None, num_pairs=4, seed=1, width=128, height=96)


@pytest.fixture(scope="module")
def pairs(pair_source):
    return [pair_source.load(i) for i in pair_source.scene_ids()]


# -- independent references ---------------------------------------------------------------


def _winding_inside(point, polygon) -> bool:
    """Winding number of `polygon` around `point` is non-zero (Sunday's algorithm)."""
    x, y = point
    wn = 0
    for (x0, y0), (x1, y1) in zip(polygon, np.roll(polygon, -1, 0), strict=True):
        side = (x1 - x0) * (y - y0) - (x - x0) * (y1 - y0)
        if y0 <= y < y1 and side > 0:
            wn += 1
        elif y1 <= y < y0 and side < 0:
            wn -= 1
    return wn != 0


def _segment_distance(p, a, b) -> float:
    ab, ap = np.subtract(b, a), np.subtract(p, a)
    t = min(1.0, max(0.0, float(np.dot(ap, ab) / np.dot(ab, ab))))
    return float(np.linalg.norm(ap - t * ab))


def _wall_distance(p, polygon) -> float:
    return min(
        _segment_distance(p, a, b) for a, b in zip(polygon, np.roll(polygon, -1, 0), strict=True)
    )


def _footprint_distance(p, quad) -> float:
    if _winding_inside(p, quad):
        return 0.0
    return _wall_distance(p, quad)


def _construction_area(room) -> float:
    lx, ly = room.construction["base"]
    if "cut" in room.construction:
        return lx * ly - math.prod(room.construction["cut"])
    if "alcove" in room.construction:
        return lx * ly + math.prod(room.construction["alcove"])
    return lx * ly


# -- sampling and polygons ----------------------------------------------------------------


def test_uniform_sampling_follows_the_vsibench_rule():
    # np.linspace(0, 99, 16, dtype=int), worked by hand: floor(k * 99 / 15).
    expected = [0, 6, 13, 19, 26, 33, 39, 46, 52, 59, 66, 72, 79, 85, 92, 99]
    assert clip_lib.sample_frame_indices(100, 16).tolist() == expected
    assert clip_lib.sample_frame_indices(5, 16).tolist() == [0, 1, 2, 3, 4]
    picked = clip_lib.sample_frame_indices(40, 8, "random", seed=2)
    assert len(set(picked.tolist())) == 8 and np.all(np.diff(picked) > 0)
    assert clip_lib.sample_frame_indices(40, 8, "all").tolist() == list(range(40))
    with pytest.raises(ValueError, match="mode"):
        clip_lib.sample_frame_indices(40, 8, "every_other")


def test_rect_inside_polygon_on_a_hand_checked_l():
    # 4 x 4 square without its top-right 2 x 2 quarter.
    ell = np.array([(0, 0), (4, 0), (4, 2), (2, 2), (2, 4), (0, 4)], float)
    # A rectangle bridging the notch has its corners inside, yet crosses two walls.
    bridge = np.array([(1.2, 2.8), (2.8, 1.2), (3.3, 1.7), (1.7, 3.3)])
    assert all(_winding_inside(p, ell) for p in bridge)
    assert not pc.rect_inside_polygon(bridge, ell)
    assert pc.rect_inside_polygon(np.array([(0.5, 0.5), (3.5, 0.5), (3.5, 1.5), (0.5, 1.5)]), ell)
    # One holding the reflex corner (2, 2), and one touching a wall, are out too.
    assert not pc.rect_inside_polygon(
        np.array([(1.5, 1.5), (2.5, 1.5), (2.5, 2.5), (1.5, 2.5)]), ell
    )
    assert not pc.rect_inside_polygon(np.array([(0, 1), (1, 1), (1, 2), (0, 2)], float), ell)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), shape=st.sampled_from(pc.ROOM_SHAPES))
def test_room_polygons_area_and_triangulation(seed, shape):
    room = pc.sample_room(np.random.default_rng(seed), shape)
    poly = room.polygon
    # The shoelace area equals the rectangles the room was built from (float rounding only).
    assert room.area == pytest.approx(_construction_area(room), rel=1e-12)
    assert len(poly) == {"rect": 4, "l_shape": 6, "alcove": 8}[shape]
    edges = np.roll(poly, -1, 0) - poly
    assert np.all(np.min(np.abs(edges), axis=1) < 1e-9)  # axis-aligned walls
    tris = pc.triangulate_polygon(poly)
    a, b, c = poly[tris[:, 0]], poly[tris[:, 1]], poly[tris[:, 2]]
    signed = 0.5 * ((b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0])
    assert np.all(signed > 0)
    assert signed.sum() == pytest.approx(room.area, rel=1e-12)
    for centroid in (a + b + c) / 3:
        assert _winding_inside(centroid, poly)


# -- rendering the room ---------------------------------------------------------------------


def _render_alone(mesh_list, K, pose, size):
    tris, textures = meshes.pack([(m, np.eye(4), procedural.ROOM_ID) for m in mesh_list])
    out = rasterizer.render(tris, textures, K, pose, height=size, width=size)
    return np.asarray(out.depth), np.asarray(out.instance)


@pytest.mark.parametrize("shape", ["l_shape", "alcove"])
def test_rendered_floor_matches_the_polygon_area(shape):
    rng = np.random.default_rng(11)
    room = pc.sample_room(rng, shape)
    floor = pc.room_meshes(room, rng)[0]
    # A camera high above, looking straight down: the floor is parallel to the image plane,
    # so every floor pixel covers (Z / f)^2 square metres.
    size, height = 400, 50.0
    centre = 0.5 * (room.polygon.min(0) + room.polygon.max(0))
    span = float(np.max(np.ptp(room.polygon, 0))) + 1.0
    f = size * height / span
    K = np.array([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1.0]])
    pose = np.eye(4)
    pose[:3, :3] = np.array([[1.0, 0, 0], [0, -1, 0], [0, 0, -1]])  # x right, y down, z down
    pose[:3, 3] = (centre[0], centre[1], height)
    _, ids = _render_alone([floor], K, pose, size)
    pixel = height / f
    area = float((ids == procedural.ROOM_ID).sum()) * pixel**2
    # Only pixels on the outline can go either way: a band one pixel wide.
    perimeter = float(np.sum(np.linalg.norm(np.roll(room.polygon, -1, 0) - room.polygon, axis=1)))
    assert abs(area - room.area) <= perimeter * pixel
    # A fan triangulation of the L (or a floor left rectangular) would be off by the notch.
    notch = math.prod(room.construction.get("cut", room.construction.get("alcove")))
    assert perimeter * pixel < 0.5 * notch


def test_walls_stand_on_the_polygon_edges():
    rng = np.random.default_rng(5)
    room = pc.sample_room(rng, "l_shape")
    lo, hi = room.polygon.min(0), room.polygon.max(0)
    eye_xy = next(
        p
        for p in np.stack(
            np.meshgrid(*(np.arange(a, b, 0.1) for a, b in zip(lo, hi, strict=True))), -1
        ).reshape(-1, 2)
        if _winding_inside(p, room.polygon) and _wall_distance(p, room.polygon) > 0.8
    )
    size = 200
    K = np.array([[80.0, 0, size / 2], [0, 80.0, size / 2], [0, 0, 1.0]])
    checked = 0
    for yaw in (0.0, 90.0, 180.0, 270.0):
        pose = np.eye(4)
        pose[:3, :3] = np.asarray(
            frames.rotation_z(math.radians(yaw) - math.pi / 2)
            @ frames.view_from_cam_rotation(0.0, 0.0),
            np.float64,
        )
        pose[:3, 3] = (eye_xy[0], eye_xy[1], 1.6)
        depth, ids = _render_alone(pc.room_meshes(room, rng), K, pose, size)
        row = size // 2  # pixel centres a hair below the horizon: the walls, not the floor
        right, forward = pose[:2, 0], pose[:2, 2]
        for col in range(size):
            ray = right * (col + 0.5 - K[0, 2]) / K[0, 0] + forward  # camera z = 1
            hits = []
            for a, b in zip(room.polygon, np.roll(room.polygon, -1, 0), strict=True):
                m = np.array([ray, a - b]).T
                if abs(np.linalg.det(m)) < 1e-12:
                    continue
                t, s = np.linalg.solve(m, a - eye_xy)
                if t > 0 and 0 <= s <= 1:
                    hits.append(t)
            assert ids[row, col] == procedural.ROOM_ID
            # float32 rendering: 1e-4 relative, plus 2 mm for the baseboard-free wall plane.
            assert depth[row, col] == pytest.approx(min(hits), rel=1e-4, abs=2e-3)
            checked += 1
    assert checked == 4 * size


# -- the walk and the furniture -----------------------------------------------------------


def test_walk_stays_in_free_space(clip_source):
    for scene_id in clip_source.scene_ids():
        room, placed, traj, K, _ = clip_source.build(scene_id)
        fps = pc.footprints_of(placed)
        np.testing.assert_allclose(np.diff(traj.time), 1.0 / clip_source.fps)
        assert len(traj.time) >= clip_source.num_frames
        assert np.all((traj.position[:, 2] >= 1.5) & (traj.position[:, 2] <= 1.7))
        # Every point the camera passes, not only the frames: the path, every 5 cm.
        seg = np.diff(traj.path, axis=0)
        dense = [traj.path[0]] + [
            p + d * k / max(1, math.ceil(np.linalg.norm(d) / 0.05))
            for p, d in zip(traj.path[:-1], seg, strict=True)
            for k in range(1, max(1, math.ceil(np.linalg.norm(d) / 0.05)) + 1)
        ]
        for p in list(dense) + list(traj.position[:, :2]):
            assert _winding_inside(p, room.polygon)
            assert _wall_distance(p, room.polygon) >= clip_source.wall_clearance - 1e-9
            assert min(_footprint_distance(p, q) for q in fps) >= (
                clip_source.object_clearance - 1e-9
            )
        # Smooth turning: the gaze turns at most 60 deg/s, the sway adds at most 12 deg x
        # 2 pi / 6 s = 12.6 deg/s, so at 2 fps a frame turns at most 36.3 deg.
        assert np.degrees(np.abs(np.diff(traj.yaw))).max() <= 36.3
        # The frames are the walk's: positions along the path at the walking speed.
        step = np.linalg.norm(np.diff(traj.position[:, :2], axis=0), axis=1)
        assert step.max() <= clip_source.speed / clip_source.fps + 1e-9


def test_furniture_inside_the_room_and_apart(clip_source, clips):
    for clip in clips:
        lx, ly = clip.meta["room_construction"]["base"]
        extra = clip.meta["room_construction"].get("alcove", (0.0, 0.0))
        cut = clip.meta["room_construction"].get("cut", (0.0, 0.0))
        assert clip.room_area == pytest.approx(lx * ly + math.prod(extra) - math.prod(cut))
        for obj, quad in zip(clip.objects, clip.footprints, strict=True):
            box = obj.box3d
            corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * box.extent[:2] / 2
            np.testing.assert_allclose(quad, corners @ box.rotation[:2, :2].T + box.centre[:2])
            for p in quad:
                assert _winding_inside(p, clip.room_polygon)
                assert _wall_distance(p, clip.room_polygon) >= pc.WALL_MARGIN_M - 1e-9
            # A reflex corner of the room must not poke into a footprint either.
            for v in clip.room_polygon:
                assert not _winding_inside(v, quad)
        floor = [o for o in clip.objects if o.extra["support"] is None]
        for a, b in itertools.combinations(floor, 2):
            fa = clip.footprints[a.index]
            fb = clip.footprints[b.index]
            assert not procedural._rects_overlap(fa, fb), (a.category, b.category)
            assert not any(_winding_inside(p, fb) for p in fa)


def test_clip_is_deterministic(clip_source, clips):
    again = get_source("procedural_clips", None, **CLIP_OPTIONS).load_clip("room_000001")
    first = clips[1]
    assert again.clip_id == first.clip_id == "room_000001:uniform16"
    for a, b in zip(first.frames, again.frames, strict=True):
        assert a.image_bytes == b.image_bytes
        np.testing.assert_array_equal(a.world_from_cam, b.world_from_cam)
    np.testing.assert_array_equal(first.visible, again.visible)
    np.testing.assert_array_equal(first.room_polygon, again.room_polygon)
    other = get_source("procedural_clips", None, **{**CLIP_OPTIONS, "seed": 4})
    room, _, traj, _, _ = other.build("room_000001")
    assert room.polygon.shape != first.room_polygon.shape or not np.allclose(
        room.polygon, first.room_polygon
    )


def test_clip_fields(clips):
    for clip in clips:
        assert clip.num_frames == 16 and clip.visibility_rule == "instance_map"
        assert clip.min_pixels == 48  # 0.25% of 160 x 120
        assert np.all(np.diff(clip.frame_time) > 0)
        ids = [int(f.frame_id.split("_")[1]) for f in clip.frames]
        np.testing.assert_allclose(clip.frame_time, np.array(ids) / 2.0)  # 2 fps
        for frame in clip.frames:
            image = Image.open(io.BytesIO(frame.image_bytes))
            assert image.format == "PNG" and image.size == (160, 120)
            assert frame.depth.min() > 0  # a closed room: every pixel hits something
        arrays = clip.arrays()
        assert arrays["visible"].shape == (16, clip.num_objects)
        np.testing.assert_allclose(
            arrays["cam_from_world"] @ clip.world_from_cam, np.eye(4)[None].repeat(16, 0), atol=1e-9
        )


def test_visibility_agrees_with_the_instance_maps(clip_source, clips):
    for scene_id, clip in zip(clip_source.scene_ids()[:2], clips[:2], strict=True):
        room, placed, _, K, rng = clip_source.build(scene_id)
        items = [(m, np.eye(4), procedural.ROOM_ID) for m in pc.room_meshes(room, rng)]
        items += [(p.mesh(), p.world_from_local, i) for i, p in enumerate(placed)]
        tris, textures = meshes.pack(items, min_triangles=1024)
        out = rasterizer.render(tris, textures, K, clip.world_from_cam, height=120, width=160)
        ids = np.asarray(out.instance)
        counts = np.stack([(ids == i).sum(axis=(1, 2)) for i in range(len(placed))], axis=1)
        np.testing.assert_array_equal(clip.visible_score, counts)
        np.testing.assert_array_equal(clip.visible, counts >= clip.min_pixels)
        assert clip.visible.any()


def test_every_object_is_seen_or_flagged(clips):
    seen = total = 0
    for clip in clips:
        flagged = set(clip.unseen)
        for n in range(clip.num_objects):
            assert (n in flagged) == (not clip.visible[:, n].any())
            assert (clip.first_seen[n] == -1) == (n in flagged)
        record = gtc.clip_record(clip)
        assert record["unseen"] == [clip.objects[n].index for n in sorted(flagged)]
        seen += clip.num_objects - len(flagged)
        total += clip.num_objects
    # The gaze visits every object; only small ones (a cup on a table) stay below 48 px.
    assert seen >= 0.75 * total, (seen, total)


def test_gif_and_jpeg_frames(tmp_path, clips):
    path = clip_lib.save_gif(clips[0], tmp_path / "clip.gif")
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.n_frames == 16
        assert gif.info["duration"] == pytest.approx(1000 * np.diff(clips[0].frame_time)[0])


# -- ground truth -------------------------------------------------------------------------


def test_ground_truth_round_trips(tmp_path, clips, pairs):
    written = clips + [clip_lib.sample_clip(pairs[0], 2)]
    assert gtc.write_ground_truth_clips(written, tmp_path) == len(written)
    path = tmp_path / gtc.FILE_NAME
    # A broken line and a line naming an object that is not listed are skipped and reported.
    lines = path.read_text().splitlines()
    bad = json.loads(lines[0])
    bad["frames"][0]["visible"] = [999]
    path.write_text("\n".join(lines[:1] + ["{not json", json.dumps(bad)] + lines[1:]) + "\n")
    skipped = []
    truths = gtc.read_ground_truth_clips(path, skipped)
    assert [s["line"] for s in skipped] == [2, 3]
    assert "999" in skipped[1]["reason"]
    assert [t.clip_id for t in truths] == [c.clip_id for c in written]
    for clip, truth in zip(written, truths, strict=True):
        np.testing.assert_array_equal(truth.visible, clip.visible)
        np.testing.assert_array_equal(truth.world_from_cam, clip.world_from_cam)
        np.testing.assert_array_equal(truth.K, clip.K)
        np.testing.assert_array_equal(truth.time, clip.frame_time)
        np.testing.assert_array_equal(truth.centre, [o.box3d.centre for o in clip.objects])
        np.testing.assert_array_equal(truth.rotation, [o.box3d.rotation for o in clip.objects])
        assert truth.category == [o.category for o in clip.objects]
        assert truth.room_area == clip.room_area
        if clip.room_polygon is not None:
            np.testing.assert_array_equal(truth.room_polygon, clip.room_polygon)
            np.testing.assert_array_equal(truth.footprints, clip.footprints)
        for key, value in clip.arrays().items():
            np.testing.assert_array_equal(np.asarray(truth.arrays()[key]), np.asarray(value))
    assert truths[-1].rotation_pair["yaw_change_deg"] == pairs[0].meta["rotation"]["yaw_change_deg"]
    assert truths[-1].room_polygon is None


# -- rotation stimuli ---------------------------------------------------------------------


def _composite(category, rng):
    shape = procedural._make_shape(category, False, rng)
    placed = procedural._Placed(shape, "red", procedural._rgb("red", rng), np.zeros(3), 0.0, False)
    return placed.mesh(), shape.extent


@pytest.mark.parametrize("seed", [0, 1])
def test_symmetric_objects_are_refused_and_a_chair_is_not(seed):
    rng = np.random.default_rng(seed)
    results = {}
    for category in ("cylinder", "box", "chair"):
        mesh, extent = _composite(category, rng)
        K, camera = mesh_folder.stimulus_camera(extent, 128, 96, rng)
        results[category] = mesh_folder.measure_symmetry(mesh, 20.0, 75.0, K, camera, 128, 96)
    # A cylinder looks the same turned by any quarter; a box by a half turn.
    assert results["cylinder"].ambiguous
    assert all(c["match"] for c in results["cylinder"].comparisons)
    box = {c["name"]: c for c in results["box"].comparisons}
    assert results["box"].ambiguous and box["first+180"]["match"] and box["second+180"]["match"]
    assert box["first+180"]["changed"] < 0.01 and box["first+180"]["iou"] > 0.99
    # The chair's backrest gives every alternative away, by a wide margin.
    assert not results["chair"].ambiguous
    assert min(c["changed"] for c in results["chair"].comparisons) > 0.1
    assert max(c["iou"] for c in results["chair"].comparisons) < 0.9


def test_compare_views_counts_the_pixels_that_differ():
    mask_a = np.zeros((4, 5), bool)
    mask_a[1:3, 1:4] = True  # 6 px
    mask_b = np.zeros((4, 5), bool)
    mask_b[1:3, 2:5] = True  # 6 px, 4 shared: union 8
    rgb_a = np.zeros((4, 5, 3))
    rgb_b = np.zeros((4, 5, 3))
    rgb_b[1, 2] = (0.0, 0.2, 0.0)  # a shared pixel past the tolerance
    rgb_b[2, 2] = (0.05, 0.0, 0.0)  # one within it
    iou, changed = mesh_folder.compare_views(rgb_a, mask_a, rgb_b, mask_b)
    assert iou == 4 / 8 and changed == (4 + 1) / 8


def test_rotation_pairs(pair_source, pairs):
    kinds = set()
    for scene in pairs:
        rot = scene.meta["rotation"]
        kinds.add(rot["kind"])
        assert not rot["symmetry"]["ambiguous"]
        assert all(r["reason"] in ("symmetric", "too small") for r in rot["refused"])
        turn = rot["yaw_change_deg"]
        assert turn % 15 == 0 and 30 <= abs(turn) <= 180
        clip = clip_lib.sample_clip(scene, 2)
        assert clip.frame_ids == ["before", "after"] and clip.visible.all()
        # The world is the object's: the second camera is the first turned about the object's
        # axis, by the turn (camera orbit) or against it (object turn).
        before, after = clip.world_from_cam
        expected = turn if rot["kind"] == "camera" else -turn
        np.testing.assert_allclose(after, mesh_folder.turn_about_z(expected) @ before, atol=1e-9)
        # And the object's box, the same in both frames, is what the second image shows:
        # re-rendered alone from the second pose, it covers the same pixels.
        obj = scene.objects[0]
        mesh = pair_source.build(scene.scene_id).mesh
        yaw = math.degrees(math.atan2(obj.box3d.rotation[1, 0], obj.box3d.rotation[0, 0]))
        _, mask, _ = mesh_folder.render_object(mesh, [yaw], clip.K[1], after, 128, 96)
        shown = mask_lib.decode(obj.masks["after"])
        assert (mask[0] & shown).sum() / (mask[0] | shown).sum() > 0.99
    assert kinds == {"object", "camera"}


def test_mesh_folder_categories():
    assert mesh_folder.category_from_path("a/chair_model.obj") == "chair"
    assert mesh_folder.category_from_path("sword/UV.obj") == "sword"
    assert mesh_folder.category_from_path("x/CesiumMilkTruck.glb") == "cesium milk truck"


# -- ScanNet --------------------------------------------------------------------------------

# What each frame of scene0000_00 shows, judged by eye (as in tests/test_source_scannet.py).
SEEN_BY_EYE = {
    "00000": {4, 5, 6, 15, 19},
    "00011": {5, 6, 11, 15, 19},
    "00102": {2, 4, 7, 12, 14},
}


@pytest.mark.real_data
def test_scannet_clip_visibility(real_data):
    scene = get_source("scannet", str(real_data("scannet_scene0000_00"))).load("scene0000_00")
    clip = clip_lib.sample_clip(scene, 16)
    assert clip.frame_ids == ["00000", "00011", "00102"]  # fewer frames than asked: all
    np.testing.assert_allclose(clip.frame_time, [0.0, 11 / 30, 102 / 30])
    assert clip.visibility_rule == "scan_points" and clip.room_polygon is None
    for t, frame_id in enumerate(clip.frame_ids):
        shown = {clip.objects[n].index for n in np.flatnonzero(clip.visible[t])}
        assert shown == SEEN_BY_EYE[frame_id]
    # Without the scan, only projection is left: everything in view, hidden or not.
    scene.points = None
    loose = clip_lib.sample_clip(scene, 16)
    assert loose.visibility_rule == "projection"
    grew = 0
    for t, frame_id in enumerate(loose.frame_ids):
        shown = {loose.objects[n].index for n in np.flatnonzero(loose.visible[t])}
        assert SEEN_BY_EYE[frame_id] <= shown
        grew += len(shown - SEEN_BY_EYE[frame_id])
    assert grew > 0  # objects hidden behind others, or only grazing the image, come back


@pytest.mark.real_data
def test_rotation_pairs_from_a_mesh_folder(real_data):
    folder = real_data("meshes", "trimesh_models")
    chair = meshes.normalised(meshes.load_mesh(folder / "chair_model.obj"), 0.8)
    lo, hi = chair.bounds
    K, camera = mesh_folder.stimulus_camera(hi - lo, 128, 96, np.random.default_rng(0))
    report = mesh_folder.measure_symmetry(chair, 40.0, -60.0, K, camera, 128, 96)
    assert not report.ambiguous and min(c["changed"] for c in report.comparisons) > 0.3
    source = get_source(
        "rotation_pairs", None, num_pairs=1, mesh_dir=str(folder), width=128, height=96
    )
    names = {mesh_folder.category_from_path(p) for p in meshes.find_meshes(folder)}
    for scene_id in source.scene_ids():
        scene = source.load(scene_id)
        assert scene.objects[0].category in names
        assert clip_lib.sample_clip(scene, 2).visible.all()
        assert not scene.meta["rotation"]["symmetry"]["ambiguous"]


def test_bad_options_are_usage_errors():
    from jax_spatial.errors import UsageError

    with pytest.raises(UsageError, match="frames"):
        get_source("procedural_clips", None, frames="every")
    with pytest.raises(UsageError, match="room_shapes"):
        get_source("procedural_clips", None, room_shapes="round")
    with pytest.raises(UsageError, match="kind"):
        get_source("rotation_pairs", None, kind="spin")
