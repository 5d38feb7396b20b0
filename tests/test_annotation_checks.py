"""Bad annotations do not turn into wrong answers.

* an object whose 3D box is invalid (zero or negative size, NaN) is dropped, the frames that
  may show it are not exhaustive (no counting), and the run's summary counts it;
* a depth map that is partly missing inside a mask makes the lifted box incomplete;
* a camera or sensor pose that is a reflection or not rigid is refused, naming file and field;
* a COCO category id the categories list lacks skips the image, naming file and field.
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from PIL import Image

from jax_spatial import engine, masks
from jax_spatial.lift import image_only, scene_lift
from jax_spatial.observe import observe_frame
from jax_spatial.scene import Frame, Scene, SceneObject, SceneSkip, check_rigid, rigid_problem
from jax_spatial.sources import get_source
from jax_spatial.writers.jsonl import read_jsonl

# The pedestrian of KITTI training frame 000000 (its real label line), and two more
# pedestrians whose boxes are broken: a zero length and a NaN location.
PEDESTRIAN = (
    "Pedestrian 0.00 0 -0.20 712.40 143.00 810.73 307.92 1.89 0.48 1.20 1.84 1.47 8.41 0.01"
)
ZERO_SIZE = "Pedestrian 0.00 0 0.10 300.00 150.00 360.00 300.00 1.80 0.50 0.00 -3.0 1.5 9.0 0.0"
NAN_BOX = "Pedestrian 0.00 0 0.10 420.00 150.00 470.00 300.00 1.70 0.50 0.60 nan 1.5 10.0 0.0"


def _kitti_split(tmp_path, real_data, label_lines, calib_text=None, velodyne=None):
    """A KITTI split of frame 000000 whose image (and calib) link to the shared sample."""
    src = real_data("kitti_object", "training")
    split = tmp_path / "training"
    for part in ("image_2", "label_2", "calib"):
        (split / part).mkdir(parents=True)
    (split / "image_2" / "000000.png").symlink_to(src / "image_2" / "000000.png")
    if calib_text is None:
        (split / "calib" / "000000.txt").symlink_to(src / "calib" / "000000.txt")
    else:
        (split / "calib" / "000000.txt").write_text(calib_text)
    (split / "label_2" / "000000.txt").write_text("\n".join(label_lines) + "\n")
    if velodyne is not None:
        (split / "velodyne").mkdir()
        velodyne.astype(np.float32).tofile(split / "velodyne" / "000000.bin")
    return split


# -- invalid 3D boxes ------------------------------------------------------------------------


def test_invalid_kitti_boxes_make_the_frame_non_exhaustive(tmp_path, real_data):
    split = _kitti_split(tmp_path, real_data, [PEDESTRIAN, ZERO_SIZE, NAN_BOX])
    scene = get_source("kitti", str(split)).load("000000")
    assert [o.box3d is None for o in scene.objects] == [False, True, True]
    label = split / "label_2" / "000000.txt"
    assert scene.objects[1].extra["invalid_box3d"].startswith(f"{label}:2: h w l")
    assert "non-finite" in scene.objects[2].extra["invalid_box3d"]
    obs = observe_frame(scene, scene.frames[0])
    assert obs.num_objects == 1 and not obs.exhaustive

    valid_only = get_source("kitti", str(_kitti_split(tmp_path / "b", real_data, [PEDESTRIAN])))
    assert observe_frame(valid_only.load("000000"), scene.frames[0]).exhaustive


def test_run_counts_dropped_objects_and_asks_no_count(tmp_path, real_data):
    split = _kitti_split(tmp_path, real_data, [PEDESTRIAN, ZERO_SIZE, NAN_BOX])
    summary = engine.generate(get_source("kitti", str(split)), tmp_path / "out")
    dropped = summary["objects_dropped"]
    assert dropped["total"] == 2 and dropped["by_reason"] == {"invalid_box3d": 2}
    assert [d["index"] for d in dropped["objects"]] == [1, 2]
    assert all(d["scene_id"] == "000000" for d in dropped["objects"])
    written = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert written["objects_dropped"]["total"] == 2
    # "How many pedestrians?" would be answered 1 where 3 are labelled.
    records = read_jsonl(tmp_path / "out" / "qa.jsonl")
    assert not [r for r in records if r["meta"]["task"] == "counting"]

    # The frame with its one valid pedestrian alone does get counted.
    split = _kitti_split(tmp_path / "b", real_data, [PEDESTRIAN])
    summary = engine.generate(get_source("kitti", str(split)), tmp_path / "out_b")
    assert summary["objects_dropped"]["total"] == 0
    assert summary["per_task"].get("counting", 0) == 1


def _write_infos(path, data_list, metainfo):
    with open(path, "wb") as f:
        pickle.dump({"metainfo": metainfo, "data_list": data_list}, f, protocol=4)


def _scannet_infos(tmp_path, cam2globals, boxes):
    """mmdetection3d ScanNet infos: one posed 64x48 image per `cam2globals` entry."""
    K4 = np.eye(4)
    K4[:3, :3] = [[50.0, 0, 32], [0, 50.0, 24], [0, 0, 1]]
    images = []
    for k, pose in enumerate(cam2globals):
        Image.new("RGB", (64, 48)).save(tmp_path / f"{k:05d}.jpg")
        images.append({"img_path": f"posed_images/scene0001_00/{k:05d}.jpg", "cam2global": pose})
    info = {
        "images": images,
        "cam2img": K4,
        "instances": [{"bbox_3d": b, "bbox_label_3d": 2} for b in boxes],
    }
    _write_infos(tmp_path / "scannet_infos.pkl", [info], {"DATASET": "SCANNET"})
    return tmp_path / "scannet_infos.pkl"


def _level_pose(x=0.0):
    """Camera at (x, -2, 0.5) looking along world +y, level."""
    pose = np.eye(4)
    pose[:3, :3] = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]]).T
    pose[:3, 3] = [x, -2.0, 0.5]
    return pose


@pytest.mark.parametrize(
    "bad", [[0.5, 1.0, 0.5, 0.4, -0.6, 1.0], [0.5, 1.0, np.nan, 0.4, 0.6, 1.0]]
)
def test_invalid_mmdet3d_box_is_dropped_and_blocks_counting(tmp_path, bad):
    good = [0.0, 1.0, 0.5, 0.4, 0.6, 1.0]
    infos = _scannet_infos(tmp_path, [_level_pose()], [good, bad])
    scene = get_source("mmdet3d", str(tmp_path)).load("00000")
    assert scene.objects[1].box3d is None
    assert scene.objects[1].extra["invalid_box3d"].startswith(f"{infos}: instances[1].bbox_3d")
    obs = observe_frame(scene, scene.frames[0])
    assert obs.num_objects == 1 and not obs.exhaustive


# -- depth missing inside a mask ---------------------------------------------------------------


def _box_frame(hole_fraction, hole_value):
    """A 160x120 frame, level camera, of a 0.6 m cube 3 m ahead; `hole_fraction` of the cube's
    pixels (its left columns) have depth `hole_value` instead of the surface depth."""
    W, H, f = 160, 120, 100.0
    K = np.array([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1]])
    depth = np.full((H, W), 6.0, np.float32)  # a wall behind
    mask = np.zeros((H, W), bool)
    u0, u1, v0, v1 = 60, 100, 40, 80  # the cube's front face, 0.6 m at 3 m with f = 100 (20 px)
    mask[v0:v1, u0:u1] = True
    depth[mask] = 3.0
    cut = u0 + int(round(hole_fraction * (u1 - u0)))
    depth[v0:v1, u0:cut] = hole_value
    frame = Frame("f", W, H, K, scene_lift.tilt_pose(0.0, 0.0), image_bytes=b"", depth=depth)
    obj = SceneObject(index=0, category="box", masks={"f": masks.encode_rle(mask)})
    return Scene("s", "test", [frame], [obj]), mask, depth, K


@pytest.mark.parametrize("hole_value", [np.nan, 0.0, -1.0])
def test_partly_missing_depth_makes_the_box_incomplete(hole_value):
    scene, *_ = _box_frame(0.4, hole_value)
    lifted = scene_lift.lift_scene(scene).objects[0].extra["lift"]
    # 40% of the mask has no valid depth: the box covers 60% of the face.
    assert lifted["valid_depth_fraction"] == pytest.approx(0.6, abs=0.02)
    assert lifted["complete"] is False
    whole = scene_lift.lift_scene(_box_frame(0.0, hole_value)[0]).objects[0].extra["lift"]
    assert whole["valid_depth_fraction"] == 1.0 and whole["complete"] is True
    # Up to a twentieth missing (sensor dropouts at the edges) keeps the box complete.
    few = scene_lift.lift_scene(_box_frame(0.05, hole_value)[0]).objects[0].extra["lift"]
    assert few["complete"] is True


@pytest.mark.parametrize("hole_fraction, complete", [(0.0, True), (0.4, False)])
def test_to_frame_observation_uses_the_valid_depth_fraction(hole_fraction, complete):
    _, mask, depth, K = _box_frame(hole_fraction, np.nan)
    stack, valid = image_only.pad_masks([mask], *mask.shape)
    lifted = image_only.lift_objects(depth, stack, valid, K, np.eye(3))
    obs = image_only.to_frame_observation(
        lifted, scene_id="s", frame_id="f", source="test", width=mask.shape[1],
        height=mask.shape[0], K=K, view_from_cam=np.eye(3), categories=["box"],
    )  # fmt: skip
    assert obs.box_complete.tolist() == [complete]


# -- poses that are not rigid ------------------------------------------------------------------


def test_rigid_problem_names_what_is_wrong():
    assert rigid_problem(_level_pose()) is None
    mirrored = _level_pose()
    mirrored[:3, 0] *= -1
    assert "reflection" in rigid_problem(mirrored)
    scaled = _level_pose()
    scaled[:3, :3] *= 1.01
    assert "not a rotation" in rigid_problem(scaled)
    sheared = _level_pose()
    sheared[0, 1] += 0.05
    assert "not a rotation" in rigid_problem(sheared)
    bottom = _level_pose()
    bottom[3, 0] = 0.2
    assert "bottom row" in rigid_problem(bottom)
    # float32 storage of a rigid pose is well inside the tolerance.
    assert rigid_problem(_level_pose().astype(np.float32)) is None
    with pytest.raises(SceneSkip, match="calib.txt: Tr is not a rigid pose") as err:
        check_rigid(mirrored, "calib.txt", "Tr")
    assert (err.value.file, err.value.field) == ("calib.txt", "Tr")


def test_mirrored_scannet_pose_drops_the_frame(tmp_path):
    mirrored = _level_pose(1.0)
    mirrored[:3, 0] *= -1  # x axis flipped: left and right swap
    infos = _scannet_infos(tmp_path, [_level_pose(), mirrored], [[0.0, 1.0, 0.5, 0.4, 0.6, 1.0]])
    scene = get_source("mmdet3d", str(tmp_path)).load("00000")
    assert [f.frame_id for f in scene.frames] == ["00000"]
    (reason,) = scene.meta["dropped_frames"]
    assert reason.startswith(f"00001: {infos} images[1].cam2global is a reflection")
    summary = engine.generate(get_source("mmdet3d", str(tmp_path)), tmp_path / "out")
    assert summary["scenes"]["frames_skipped"] == 1
    (skip,) = summary["scenes"]["skipped_scenes"]
    assert skip["frame_id"] == "00001" and "cam2global" in skip["reason"]


def test_only_mirrored_poses_skip_the_scene(tmp_path):
    scaled = _level_pose()
    scaled[:3, :3] *= 1.2
    _scannet_infos(tmp_path, [scaled], [[0.0, 1.0, 0.5, 0.4, 0.6, 1.0]])
    with pytest.raises(SceneSkip, match=r"images\[0\].cam2global is not a rotation"):
        get_source("mmdet3d", str(tmp_path)).load("00000")


def test_kitti_mirrored_lidar_calibration_is_a_skip(tmp_path, real_data):
    calib = (real_data("kitti_object", "training") / "calib" / "000000.txt").read_text()
    lines = []
    for line in calib.splitlines():
        if line.startswith("Tr_velo_to_cam:"):
            values = np.array(line.split()[1:], float).reshape(3, 4)
            values[:, 0] *= -1  # a mirrored LiDAR: every point on the wrong side
            line = "Tr_velo_to_cam: " + " ".join(f"{v:.12e}" for v in values.ravel())
        lines.append(line)
    split = _kitti_split(
        tmp_path, real_data, [PEDESTRIAN], "\n".join(lines), velodyne=np.ones((3, 4))
    )
    with pytest.raises(SceneSkip, match="R0_rect @ Tr_velo_to_cam is not a rigid pose") as err:
        get_source("kitti", str(split)).load("000000")
    assert err.value.file.endswith("calib/000000.txt")


# -- COCO category ids ----------------------------------------------------------------------


def test_coco_unknown_category_id_is_a_skip(tmp_path):
    (tmp_path / "val2017").mkdir()
    (tmp_path / "annotations").mkdir()
    Image.new("RGB", (32, 24)).save(tmp_path / "val2017" / "a.png")
    depth = np.full((24, 32), 2000, np.uint16)
    (tmp_path / "depth").mkdir()
    Image.fromarray(depth).save(tmp_path / "depth" / "a.png")
    instances = tmp_path / "annotations" / "instances_val2017.json"
    instances.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.png", "width": 32, "height": 24}],
        "categories": [{"id": 1, "name": "cup"}],
        "annotations": [
            {"id": 7, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [1, 1, 5, 5],
             "segmentation": [[1, 1, 6, 1, 6, 6, 1, 6]]},
            {"id": 8, "image_id": 1, "category_id": 99, "iscrowd": 0, "bbox": [10, 1, 5, 5],
             "segmentation": [[10, 1, 15, 1, 15, 6, 10, 6]]},
        ],
    }))  # fmt: skip
    source = get_source("coco", str(tmp_path), depth_dir="depth", captions=False)
    with pytest.raises(SceneSkip, match=r"annotations\[id=8\].category_id 99 is not in") as err:
        source.load("1")
    assert err.value.file == str(instances)
    assert err.value.field == "annotations[id=8].category_id"


def test_frame_refuses_a_mirrored_pose_from_any_source():
    K = np.array([[100.0, 0, 32], [0, 100.0, 24], [0, 0, 1]])
    mirrored = np.diag([-1.0, 1.0, 1.0, 1.0])
    with pytest.raises(SceneSkip, match="world_from_cam is not a rigid pose: a reflection") as err:
        Frame("f", 64, 48, K, mirrored)
    assert err.value.field == "world_from_cam"
    Frame("f", 64, 48, K, np.eye(4))  # a rigid pose is fine


def test_mirrored_nuscenes_lidar2cam_drops_the_camera(tmp_path):
    cam_from_lidar = np.eye(4)
    cam_from_lidar[:3, :3] = [[1, 0, 0], [0, 0, -1], [0, 1, 0]]
    mirrored = cam_from_lidar.copy()
    mirrored[0, :3] *= -1
    images = {}
    for name, pose in (("CAM_FRONT", cam_from_lidar), ("CAM_BACK", mirrored)):
        Image.new("RGB", (64, 48)).save(tmp_path / f"{name}.jpg")
        K = [[50.0, 0, 32], [0, 50.0, 24], [0, 0, 1]]
        images[name] = {"img_path": f"{name}.jpg", "cam2img": K, "lidar2cam": pose.tolist()}
    np.zeros((40, 5), np.float32).tofile(tmp_path / "sweep.bin")
    info = {
        "token": "t0",
        "images": images,
        "lidar_points": {"lidar_path": "sweep.bin", "num_pts_feats": 5},
        "instances": [{"bbox_3d": [0.0, 8.0, 0.0, 4.0, 2.0, 1.5, 0.0], "bbox_label_3d": 0}],
    }
    _write_infos(tmp_path / "nuscenes_infos.pkl", [info], {"dataset": "nuscenes"})
    scene = get_source("mmdet3d", str(tmp_path)).load("t0")
    assert [f.frame_id for f in scene.frames] == ["CAM_FRONT"]
    (reason,) = scene.meta["dropped_frames"]
    assert "images.CAM_BACK.lidar2cam is a reflection" in reason
    assert str(tmp_path / "nuscenes_infos.pkl") in reason
    # The sweep is in the LiDAR frame, which is the world: the sensor sits at its origin.
    assert scene.meta["lidar_origin"] == [0.0, 0.0, 0.0]


def _native_scannet(root, extrinsics, boxes=()):
    """A native ScanNet infos list with one scene `s0` and one 64x48 image per pose."""
    names = []
    for k in range(len(extrinsics)):
        name = f"posed_images/s0/{k:05d}.jpg"
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (64, 48), (90, 90, 90)).save(root / name)
        names.append(name)
    (root / "points").mkdir(exist_ok=True)
    np.zeros((3, 6), np.float32).tofile(root / "points" / "s0.bin")
    boxes = np.asarray(boxes, float).reshape(-1, 6)
    info = {
        "point_cloud": {"num_features": 6, "lidar_idx": "s0"},
        "pts_path": "points/s0.bin",
        "intrinsics": np.diag([50.0, 50.0, 1.0, 1.0]),
        "extrinsics": list(extrinsics),
        "img_paths": names,
        "annos": {
            "gt_num": len(boxes),
            "name": ["chair"] * len(boxes),
            "gt_boxes_upright_depth": boxes,
            "axis_align_matrix": np.eye(4),
        },
    }
    with open(root / "scannet_infos_train.pkl", "wb") as f:
        pickle.dump([info], f)
    return root / "scannet_infos_train.pkl"


def test_native_scannet_mirrored_pose_and_bad_box(tmp_path):
    mirrored = _level_pose()
    mirrored[:3, 1] *= -1
    boxes = [[0.0, 1.0, 0.5, 0.4, 0.6, 1.0], [1.0, 1.0, 0.5, 0.0, 0.6, 1.0]]
    infos = _native_scannet(tmp_path, [_level_pose(), mirrored], boxes)
    summary = engine.generate(get_source("scannet", str(tmp_path)), tmp_path / "out")
    assert summary["scenes"]["done"] == 1 and summary["scenes"]["frames_skipped"] == 1
    (skip,) = summary["scenes"]["skipped_scenes"]
    assert skip["frame_id"] == "00001" and skip["field"] == "extrinsics[1]"
    assert skip["file"] == str(infos) and "reflection" in skip["reason"]
    (dropped,) = summary["objects_dropped"]["objects"]
    assert dropped["index"] == 1 and "gt_boxes_upright_depth[1]" in dropped["reason"]
