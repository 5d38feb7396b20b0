"""KITTI native reader: boxes, cameras and LiDAR land where the real labels say they are."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from jax_spatial.geometry import boxes
from jax_spatial.observe import observe_frame
from jax_spatial.scene import SceneSkip
from jax_spatial.sources import get_source
from jax_spatial.sources import kitti as kitti_lib


def _kitti_root(real_data) -> pathlib.Path:
    return real_data("kitti_object", "training")


def projected_boxes(scene, frame) -> np.ndarray:
    """`[n, 4]` pixel boxes of the scene's world boxes seen through `frame`, clipped."""
    cam_from_world = np.linalg.inv(frame.world_from_cam)
    corners = []
    for obj in scene.objects:
        b = obj.box3d
        world = np.asarray(boxes.box_corners(b.centre, b.extent, b.rotation))
        corners.append(world @ cam_from_world[:3, :3].T + cam_from_world[:3, 3])
    box, visible, _ = boxes.projected_box2d(np.stack(corners), frame.K, frame.width, frame.height)
    assert np.all(np.asarray(visible))
    return np.asarray(box)


def devkit_corners_rect(h, w, length, location, rotation_y) -> np.ndarray:
    """`[8, 3]` corners exactly as the KITTI devkit builds them, in rect coordinates."""
    x = np.array([1, 1, -1, -1, 1, 1, -1, -1]) * length / 2
    y = np.array([0, 0, 0, 0, -1, -1, -1, -1]) * h
    z = np.array([1, -1, -1, 1, 1, -1, -1, 1]) * w / 2
    c, s = np.cos(rotation_y), np.sin(rotation_y)
    R = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return (R @ np.stack([x, y, z])).T + np.asarray(location)


def test_root_may_be_the_object_folder_or_the_split(real_data):
    split = _kitti_root(real_data)
    a = get_source("kitti", str(split.parent))
    b = get_source("kitti", str(split))
    c = get_source("kitti", str(split.parent), split="training")
    assert a.scene_ids() == b.scene_ids() == c.scene_ids() == ["000000", "000008"]


@pytest.mark.parametrize("scene_id", ["000000", "000008"])
def test_projected_3d_boxes_land_on_the_2d_labels(real_data, scene_id):
    scene = get_source("kitti", str(_kitti_root(real_data))).load(scene_id)
    frame = scene.frame("image_2")
    projected = projected_boxes(scene, frame)
    labels = np.stack([o.boxes2d["image_2"] for o in scene.objects])
    # Labels of truncated objects are clipped at the last pixel (W - 1, H - 1) while the
    # projection is clipped at the image edge (W, H): compare both clipped to the label range.
    limit = np.array([frame.width - 1, frame.height - 1] * 2, float)
    err = np.abs(np.minimum(projected, limit) - np.minimum(labels, limit))
    per_object = np.median(err, axis=1)
    print(f"kitti {scene_id}: median {np.median(err):.2f} px, max {err.max():.2f} px, "
          f"per object medians {np.round(per_object, 2).tolist()}")  # fmt: skip
    assert np.median(err) <= 3.0
    assert np.all(per_object <= 3.0)
    # One side of the pedestrian in 000000 is off by ~9.6 px: its 3D box spans the stride.
    assert err.max() <= 12.0


def test_world_boxes_match_the_devkit_corners(real_data):
    root = _kitti_root(real_data)
    scene = get_source("kitti", str(root)).load("000008")
    lines = (root / "label_2" / "000008.txt").read_text().splitlines()
    for obj in scene.objects:
        fields = lines[obj.index].split()
        h, w, length = map(float, fields[8:11])
        location = np.array(fields[11:14], float)
        expected = devkit_corners_rect(h, w, length, location, float(fields[14]))
        expected_world = expected @ kitti_lib.WORLD_FROM_RECT.T
        b = obj.box3d
        got = np.asarray(boxes.box_corners(b.centre, b.extent, b.rotation), np.float64)
        # Same 8 points, in whatever order.
        dist = np.linalg.norm(got[:, None] - expected_world[None], axis=-1)
        assert np.all(dist.min(axis=1) < 1e-4) and np.all(dist.min(axis=0) < 1e-4)
        # Box z is world up, so extent is (l, w, h) and the rotation is a yaw.
        np.testing.assert_allclose(b.extent, [length, w, h])
        np.testing.assert_allclose(b.rotation[:, 2], [0, 0, 1], atol=1e-12)
        # Bottom face at the label's location (rect y is down, world z up).
        bottom_z = b.centre[2] - h / 2
        np.testing.assert_allclose(bottom_z, -location[1], atol=1e-9)


def test_dontcare_lines_are_ignore_boxes_and_indices_are_line_numbers(real_data):
    scene = get_source("kitti", str(_kitti_root(real_data))).load("000008")
    assert [o.index for o in scene.objects] == [0, 1, 2, 3, 4, 5]
    assert {o.category for o in scene.objects} == {"car"}
    frame = scene.frame("image_2")
    assert frame.ignore_boxes.shape == (4, 4)
    np.testing.assert_allclose(frame.ignore_boxes[0], [800.38, 163.67, 825.45, 184.07])
    assert scene.objects[0].extra["truncated"] == pytest.approx(0.88)
    assert scene.objects[0].extra["occluded"] == 3


def test_camera_pose_and_intrinsics(real_data):
    root = _kitti_root(real_data)
    scene = get_source("kitti", str(root)).load("000008")
    frame = scene.frame("image_2")
    assert (frame.width, frame.height) == (1242, 375)
    assert pathlib.Path(frame.image_path).is_absolute() and pathlib.Path(frame.image_path).is_file()
    P2 = kitti_lib.read_calib(root / "calib" / "000008.txt")["P2"]
    np.testing.assert_allclose(frame.K, P2[:, :3])
    # Any rect point projects with P2 exactly as with K through the frame's pose.
    rect = np.array([[1.0, 1.5, 10.0], [-4.0, 0.5, 30.0]])
    uvw = (P2 @ np.c_[rect, np.ones(2)].T).T
    world = rect @ kitti_lib.WORLD_FROM_RECT.T
    cam_from_world = np.linalg.inv(frame.world_from_cam)
    cam = world @ cam_from_world[:3, :3].T + cam_from_world[:3, 3]
    uv = (frame.K @ cam.T).T
    np.testing.assert_allclose(uv[:, :2] / uv[:, 2:], uvw[:, :2] / uvw[:, 2:], atol=1e-9)
    # A level camera looking along world +y.
    np.testing.assert_allclose(frame.world_from_cam[:3, 2], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(frame.world_from_cam[:3, 1], [0, 0, -1], atol=1e-12)


def _link_split(tmp_path, real_data, scene_id="000008", parts=("image_2", "label_2", "calib")):
    """A split folder in tmp_path whose files are links to the shared sample (no copies)."""
    src = _kitti_root(real_data)
    split = tmp_path / "training"
    suffix = {"image_2": ".png", "label_2": ".txt", "calib": ".txt"}
    for part in parts:
        (split / part).mkdir(parents=True)
        (split / part / f"{scene_id}{suffix[part]}").symlink_to(
            src / part / f"{scene_id}{suffix[part]}"
        )
    return split


def test_velodyne_points_are_placed_in_world(tmp_path, real_data):
    split = _link_split(tmp_path, real_data)
    (split / "velodyne").mkdir()
    # The mmdetection3d demo keeps the same frame's (field-of-view reduced) LiDAR sweep.
    sweep = real_data("mmdet3d_infos", "kitti_000008", "000008.bin")
    (split / "velodyne" / "000008.bin").symlink_to(sweep)
    scene = get_source("kitti", str(tmp_path)).load("000008")
    assert scene.points.shape == (sweep.stat().st_size // 16, 3)
    # mmdetection3d counted these LiDAR points in the boxes (num_lidar_pts of its info file).
    reference_counts = [1325, 1900, 881, 659, 55, 162]
    for obj, expected in zip(scene.objects, reference_counts, strict=True):
        b = obj.box3d
        count = int(
            np.asarray(boxes.points_in_box(scene.points, b.centre, b.extent, b.rotation)).sum()
        )
        assert 0.85 * expected <= count <= 1.15 * expected, (obj.index, count, expected)
    without = get_source("kitti", str(tmp_path), load_points=False).load("000008")
    assert without.points is None


def test_missing_image_is_a_scene_skip(tmp_path, real_data):
    _link_split(tmp_path, real_data, parts=("label_2", "calib"))
    source = get_source("kitti", str(tmp_path))
    assert source.scene_ids() == ["000008"]
    with pytest.raises(SceneSkip, match="missing image"):
        source.load("000008")


def test_label_with_only_dontcare_gives_zero_objects(tmp_path, real_data):
    split = _link_split(tmp_path, real_data, parts=("image_2", "calib"))
    (split / "label_2").mkdir()
    (split / "label_2" / "000008.txt").write_text(
        "DontCare -1.00 -1 -10.00 800.38 163.67 825.45 184.07 -1 -1 -1 -1000 -1000 -1000 -10\n"
    )
    scene = get_source("kitti", str(tmp_path)).load("000008")
    assert scene.objects == []
    assert scene.frames[0].ignore_boxes.shape == (1, 4)


def test_readable_categories():
    assert kitti_lib.readable_category("Person_sitting") == "person sitting"
    assert kitti_lib.readable_category("Tram") == "tram"
    assert kitti_lib.readable_category("Misc") == "misc"


@pytest.mark.parametrize("scene_id, count, exhaustive", [("000000", 1, True), ("000008", 6, False)])
def test_observe_frame_end_to_end(real_data, scene_id, count, exhaustive):
    scene = get_source("kitti", str(_kitti_root(real_data))).load(scene_id)
    assert scene.points is None  # the shared sample has no velodyne folder
    obs = observe_frame(scene, scene.frames[0])
    assert obs.num_objects == count
    assert obs.box2d_source == ["annotated"] * count
    assert obs.exhaustive is exhaustive  # DontCare regions disable counting
    # Everything is in front of the camera, and cars stand on the road about 1.65 m below it.
    assert np.all(obs.centre[:, 1] > 0)
    bottoms = obs.centre[:, 2] - obs.extent[:, 2] / 2
    assert np.all((bottoms > -2.0) & (bottoms < -1.3))
