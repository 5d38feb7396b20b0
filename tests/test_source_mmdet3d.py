"""mmdetection3d v1.x info reader: real KITTI / SUN RGB-D samples, hand-built ScanNet / nuScenes."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from PIL import Image

from jax_spatial.geometry import boxes
from jax_spatial.observe import observe_frame
from jax_spatial.scene import SceneSkip
from jax_spatial.sources import get_source
from jax_spatial.sources.mmdet3d import normalize_dataset, rq_decompose
from jax_spatial.sources.safe_pickle import UnsafePickleError, load_pickle


def cam_points(frame, world_points) -> np.ndarray:
    cam_from_world = np.linalg.inv(frame.world_from_cam)
    return np.asarray(world_points) @ cam_from_world[:3, :3].T + cam_from_world[:3, 3]


def world_corners(obj) -> np.ndarray:
    """`[8, 3]` float64 corners (numpy: the jax helper computes in float32)."""
    b = obj.box3d
    return (boxes.CORNER_SIGNS * b.extent / 2) @ b.rotation.T + b.centre


def projected_box(frame, obj) -> np.ndarray:
    corners = cam_points(frame, world_corners(obj))
    box, visible, _ = boxes.projected_box2d(corners, frame.K, frame.width, frame.height)
    assert bool(visible)
    return np.asarray(box)


def same_point_set(a, b, atol):
    dist = np.linalg.norm(np.asarray(a)[:, None] - np.asarray(b)[None], axis=-1)
    return bool(np.all(dist.min(axis=1) <= atol) and np.all(dist.min(axis=0) <= atol))


def write_infos(path, data_list, metainfo):
    with open(path, "wb") as f:
        pickle.dump({"metainfo": metainfo, "data_list": data_list}, f, protocol=4)


def write_png(path, width=64, height=48):
    Image.new("RGB", (width, height)).save(path)


# -- real samples ---------------------------------------------------------------------------


def test_kitti_infos_give_the_same_scene_as_the_native_reader(real_data):
    native = get_source("kitti", str(real_data("kitti_object", "training"))).load("000008")
    source = get_source("mmdet3d", str(real_data("mmdet3d_infos", "kitti_000008")))
    assert source.dataset == "kitti" and source.scene_ids() == ["000008"]
    scene = source.load("000008")
    assert [o.index for o in scene.objects] == [o.index for o in native.objects]
    for a, b in zip(native.objects, scene.objects, strict=True):
        assert a.category == b.category == "car"
        np.testing.assert_allclose(b.box3d.centre, a.box3d.centre, atol=1e-4)
        np.testing.assert_allclose(b.box3d.extent, a.box3d.extent, atol=1e-4)
        np.testing.assert_allclose(b.box3d.rotation, a.box3d.rotation, atol=1e-4)
        np.testing.assert_allclose(b.boxes2d["image_2"], a.boxes2d["image_2"])
    fa, fb = native.frame("image_2"), scene.frame("image_2")
    np.testing.assert_allclose(fb.K, fa.K, atol=1e-4)
    np.testing.assert_allclose(fb.world_from_cam, fa.world_from_cam, atol=1e-4)
    np.testing.assert_allclose(fb.ignore_boxes, fa.ignore_boxes)  # the 4 DontCare regions
    assert (fb.width, fb.height) == (1242, 375)


def test_kitti_infos_points_match_the_native_velodyne_chain(tmp_path, real_data):
    root = real_data("mmdet3d_infos", "kitti_000008")
    scene = get_source("mmdet3d", str(root)).load("000008")
    assert scene.points.shape == (17238, 3)
    info = load_pickle(root / "000008.pkl")["data_list"][0]
    for obj in scene.objects:
        b = obj.box3d
        count = int(
            np.asarray(boxes.points_in_box(scene.points, b.centre, b.extent, b.rotation)).sum()
        )
        expected = info["instances"][obj.index]["num_lidar_pts"]
        assert 0.85 * expected <= count <= 1.15 * expected
    # The native reader with the same sweep as velodyne/ puts every point at the same place.
    kitti = real_data("kitti_object", "training")
    split = tmp_path / "training"
    for part, suffix in (("image_2", ".png"), ("label_2", ".txt"), ("calib", ".txt")):
        (split / part).mkdir(parents=True)
        (split / part / f"000008{suffix}").symlink_to(kitti / part / f"000008{suffix}")
    (split / "velodyne").mkdir()
    (split / "velodyne" / "000008.bin").symlink_to(root / "000008.bin")
    native = get_source("kitti", str(tmp_path)).load("000008")
    np.testing.assert_allclose(native.points, scene.points, atol=1e-3)


def test_sunrgbd_camera_from_depth2img(real_data):
    scene = get_source("mmdet3d", str(real_data("mmdet3d_infos", "sunrgbd_000017"))).load("000017")
    frame = scene.frame("CAM0")
    # The provenance's decomposition: fx = fy = 529.5, cx = 365, cy = 265, no skew (to the
    # float32 precision Rtilt was stored with).
    np.testing.assert_allclose(frame.K, [[529.5, 0, 365], [0, 529.5, 265], [0, 0, 1]], atol=1e-2)
    rot = frame.world_from_cam[:3, :3]
    np.testing.assert_allclose(rot.T @ rot, np.eye(3), atol=1e-6)
    assert np.linalg.det(rot) == pytest.approx(1.0)
    np.testing.assert_allclose(frame.world_from_cam[:3, 3], 0.0)
    # Looking roughly along upright +y, tilted down: the camera's forward axis has z < 0.
    forward = rot[:, 2]
    assert forward[1] > 0.9 and forward[2] < 0
    # The points were lifted from this camera's depth image, so they all project into it.
    cam = cam_points(frame, scene.points)
    assert np.all(cam[:, 2] > 0)
    uv = cam[:, :2] / cam[:, 2:] @ frame.K[:2, :2].T + frame.K[:2, 2]
    inside = (uv[:, 0] >= -1) & (uv[:, 0] <= frame.width + 1) & (uv[:, 1] >= -1)
    inside &= uv[:, 1] <= frame.height + 1
    assert inside.mean() > 0.999


def test_sunrgbd_boxes_project_onto_their_2d_boxes(real_data):
    root = real_data("mmdet3d_infos", "sunrgbd_000017")
    scene = get_source("mmdet3d", str(root)).load("000017")
    frame = scene.frame("CAM0")
    assert [o.category for o in scene.objects] == ["night stand", "bed"]
    err = np.abs(np.stack([projected_box(frame, o) - o.boxes2d["CAM0"] for o in scene.objects]))
    print(f"sunrgbd 000017: median {np.median(err):.2f} px, max {err.max():.2f} px, "
          f"per side {np.round(err, 1).tolist()}")  # fmt: skip
    # SUN RGB-D's 2D boxes were drawn separately from its (looser) 3D boxes, so they agree to
    # about 10 px, not to a pixel. A flipped yaw puts the bed's sides 90+ px off, and a bottom
    # centre origin 50-180 px, so these bounds still pin the convention down.
    assert np.median(err) <= 10.0
    assert err.max() <= 15.0
    # Gravity centres: the scan's points fill the boxes.
    for obj in scene.objects:
        b = obj.box3d
        assert (
            np.asarray(boxes.points_in_box(scene.points, b.centre, b.extent, b.rotation)).sum()
            > 500
        )


def test_observe_frame_on_info_scenes(real_data):
    scene = get_source("mmdet3d", str(real_data("mmdet3d_infos", "sunrgbd_000017"))).load("000017")
    obs = observe_frame(scene, scene.frames[0])
    assert obs.categories == ["night stand", "bed"]
    assert obs.box2d_source == ["annotated", "annotated"]
    assert np.all(obs.centre[:, 1] > 0)


def test_scannet_real_boxes_sit_on_the_real_scan(real_data):
    root = real_data("scannet_scene0000_00")
    source = get_source(
        "mmdet3d", str(root), infos="scannet_infos_v1.x_aligned_boxes.pkl", allow_no_frames=True
    )
    assert source.dataset == "scannet" and source.scene_ids() == ["scene0000_00"]
    scene = source.load("scene0000_00")
    assert scene.frames == [] and len(scene.objects) == 27
    # The info names the scan scene0000_00.bin; the shared folder holds it under another name.
    assert scene.points is None
    scan = np.fromfile(root / "points_xyzrgb_float32.bin", np.float32).reshape(-1, 6)[:, :3]
    align = np.asarray(load_pickle(root / "scannet_infos_v1.x_aligned_boxes.pkl")["data_list"][0][
        "axis_align_matrix"])  # fmt: skip
    aligned = scan @ align[:3, :3].T + align[:3, 3]
    for obj in scene.objects:
        b = obj.box3d
        assert (
            np.asarray(boxes.points_in_box(aligned, b.centre, b.extent, b.rotation, 0.02)).sum() > 0
        )
    with pytest.raises(SceneSkip, match="no usable frame"):
        get_source("mmdet3d", str(root), infos="scannet_infos_v1.x_aligned_boxes.pkl").load(
            "scene0000_00"
        )


# -- hand-built ScanNet (posed images) ------------------------------------------------------

F, CX, CY = 500.0, 32.0, 24.0


def _scannet_setup(tmp_path, layout):
    """An aligned frame turned 30 degrees and shifted from the scan frame, one chair, one camera.

    In the aligned frame (the world): the chair's box is centred at (1, 2, 0.5) with sides
    (0.4, 0.6, 1.0); a level camera stands at (1, -1, 0.5) looking along +y.
    """
    a = np.deg2rad(30.0)
    align = np.eye(4)
    align[:3, :3] = [[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]
    align[:3, 3] = [0.5, -0.2, 0.1]
    aligned_from_cam = np.eye(4)
    aligned_from_cam[:3, :3] = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]]).T  # columns: x, y, z
    aligned_from_cam[:3, 3] = [1.0, -1.0, 0.5]
    cam2global = np.linalg.inv(align) @ aligned_from_cam  # the unaligned scan's pose
    K4 = np.eye(4)
    K4[:3, :3] = [[F, 0, CX], [0, F, CY], [0, 0, 1]]
    write_png(tmp_path / "00000.jpg")
    # One scan point at the chair's centre, stored unaligned as ScanNet scans are.
    centre_scan = np.linalg.inv(align) @ np.array([1.0, 2.0, 0.5, 1.0])
    np.array([[*centre_scan[:3], 10, 20, 30]], np.float32).tofile(tmp_path / "scene0001_00.bin")
    info = {
        "lidar_points": {"lidar_path": "points/scene0001_00.bin", "num_pts_feats": 6},
        "axis_align_matrix": align.tolist(),
        "instances": [
            {"bbox_3d": [1.0, 2.0, 0.5, 0.4, 0.6, 1.0], "bbox_label_3d": 2},
            {"bbox_3d": [0.0, 0.0, 0.0, 1.0, 1.0, 1.0], "bbox_label_3d": -1},
        ],
    }
    if layout == "images":
        info["images"] = [
            {"img_path": "posed_images/scene0001_00/00000.jpg", "cam2global": cam2global}
        ]
        info["cam2img"] = K4
    else:
        info["img_paths"] = ["posed_images/scene0001_00/00000.jpg"]
        info["extrinsics"] = [cam2global]
        info["intrinsics"] = K4
    write_infos(tmp_path / "scannet_infos.pkl", [info], {"DATASET": "SCANNET"})


@pytest.mark.parametrize("layout", ["images", "nerfdet"])
def test_scannet_posed_images_hand_built(tmp_path, layout):
    _scannet_setup(tmp_path, layout)
    scene = get_source("mmdet3d", str(tmp_path)).load("scene0001_00")
    assert len(scene.objects) == 1  # label -1 is not an object
    chair = scene.objects[0]
    assert chair.category == "chair" and chair.index == 0
    expected = np.array([[1 + sx * 0.2, 2 + sy * 0.3, 0.5 + sz * 0.5]
                         for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])  # fmt: skip
    assert same_point_set(world_corners(chair), expected, 1e-9)
    frame = scene.frame("00000")
    assert (frame.width, frame.height) == (64, 48)
    np.testing.assert_allclose(frame.world_from_cam[:3, 3], [1.0, -1.0, 0.5], atol=1e-9)
    # By hand: the corner (1.2, 1.7, 1.0) is 0.2 right, 2.7 ahead, 0.5 up of the camera.
    cam = cam_points(frame, [[1.2, 1.7, 1.0]])[0]
    np.testing.assert_allclose(cam, [0.2, -0.5, 2.7], atol=1e-9)
    uv = frame.K @ (cam / cam[2])
    np.testing.assert_allclose(uv[:2], [CX + F * 0.2 / 2.7, CY - F * 0.5 / 2.7], atol=1e-9)
    # The scan point is moved into the aligned world.
    np.testing.assert_allclose(scene.points[0], [1.0, 2.0, 0.5], atol=1e-5)


# -- hand-built nuScenes --------------------------------------------------------------------


def _nuscenes_setup(tmp_path, with_lidar2cam=True):
    """LiDAR frame: x right, y forward, z up. A car ahead, heading 30 deg anticlockwise from +x.

    Car: gravity centre (2, 10, -1), l w h = (4, 2, 1.5), yaw pi/6. CAM_FRONT sits 0.5 m above
    the LiDAR, level, looking along +y.
    """
    cam_from_lidar = np.eye(4)
    cam_from_lidar[:3, :3] = [[1, 0, 0], [0, 0, -1], [0, 1, 0]]  # cam = (x, -z, y)
    cam_from_lidar[:3, 3] = cam_from_lidar[:3, :3] @ -np.array([0.0, 0.0, 0.5])
    write_png(tmp_path / "front.jpg", 1600, 900)
    car = [2.0, 10.0, -1.0, 4.0, 2.0, 1.5, np.pi / 6, 0.0, 0.0]
    ped = [-3.0, 6.0, -0.8, 0.6, 0.6, 1.8, 0.0, 0.0, 0.0]
    car_cam = cam_from_lidar[:3, :3] @ car[:3] + cam_from_lidar[:3, 3]
    ped_cam = cam_from_lidar[:3, :3] @ ped[:3] + cam_from_lidar[:3, 3]
    image = {"img_path": "front.jpg", "cam2img": [[1266.0, 0, 800], [0, 1266.0, 450], [0, 0, 1]]}
    lidar_points = {"lidar_path": "sweep.bin", "num_pts_feats": 5}
    if with_lidar2cam:
        image["lidar2cam"] = cam_from_lidar.tolist()
    else:
        lidar2ego = np.eye(4)
        lidar2ego[:3, 3] = [0.9, 0.0, 1.8]
        image["cam2ego"] = (lidar2ego @ np.linalg.inv(cam_from_lidar)).tolist()
        lidar_points["lidar2ego"] = lidar2ego.tolist()
    info = {
        "token": "abc123",
        "images": {"CAM_FRONT": image},
        "lidar_points": lidar_points,
        "instances": [
            {"bbox_3d": car, "bbox_label_3d": 0, "bbox_label": 0},
            {"bbox_3d": [5.0, 5.0, 0.0, 1.0, 1.0, 1.0, 0.0], "bbox_label_3d": -1},
            {"bbox_3d": ped, "bbox_label_3d": 7, "bbox_label": 7},
        ],
        # Per-camera list in its own order, boxes in the camera frame (gravity centre, l h w).
        "cam_instances": {
            "CAM_FRONT": [
                {
                    "bbox": [100, 300, 160, 500],
                    "bbox_label": 7,
                    "bbox_3d": [*ped_cam, 0.6, 1.8, 0.6, 0.0],
                },
                {
                    "bbox": [700, 380, 960, 520],
                    "bbox_label": 0,
                    "bbox_3d": [*car_cam, 4.0, 1.5, 2.0, 0.0],
                },
            ]
        },
    }
    np.zeros((2, 5), np.float32).tofile(tmp_path / "sweep.bin")
    metainfo = {"categories": {"car": 0, "truck": 1, "trailer": 2, "bus": 3,
                               "construction_vehicle": 4, "bicycle": 5, "motorcycle": 6,
                               "pedestrian": 7, "traffic_cone": 8, "barrier": 9, "animal": -1},
                "dataset": "nuscenes"}  # fmt: skip
    write_infos(tmp_path / "nuscenes_infos_val.pkl", [info], metainfo)


@pytest.mark.parametrize("with_lidar2cam", [True, False])
def test_nuscenes_hand_built(tmp_path, with_lidar2cam):
    _nuscenes_setup(tmp_path, with_lidar2cam)
    source = get_source("mmdet3d", str(tmp_path))
    assert source.dataset == "nuscenes" and source.scene_ids() == ["abc123"]
    scene = source.load("abc123")
    car, ped = scene.objects
    assert (car.category, car.index, ped.category, ped.index) == ("car", 0, "pedestrian", 2)
    # By hand: the length axis is (cos 30, sin 30, 0), the width axis (-sin 30, cos 30, 0), the
    # height axis +z, and the centre is the box's middle (nuScenes boxes are gravity-centred).
    length_axis = np.array([np.sqrt(3) / 2, 0.5, 0.0])
    width_axis = np.array([-0.5, np.sqrt(3) / 2, 0.0])
    expected = np.array([[2.0, 10.0, -1.0] + sl * 2.0 * length_axis + sw * 1.0 * width_axis
                         + [0, 0, sh * 0.75]
                         for sl in (-1, 1) for sw in (-1, 1) for sh in (-1, 1)])  # fmt: skip
    assert same_point_set(world_corners(car), expected, 1e-9)
    np.testing.assert_allclose(car.box3d.extent, [4.0, 2.0, 1.5])
    frame = scene.frame("CAM_FRONT")
    assert (frame.width, frame.height) == (1600, 900)
    # By hand: the LiDAR point (3, 8, -0.25) is 3 right, 0.75 below the camera (which is 0.5
    # above the LiDAR) and 8 ahead.
    np.testing.assert_allclose(
        cam_points(frame, [[3.0, 8.0, -0.25]])[0], [3.0, 0.75, 8.0], atol=1e-9
    )
    # cam_instances are matched by centre: the car is entry 1 of that camera's list.
    assert car.frame_index == {"CAM_FRONT": 1} and ped.frame_index == {"CAM_FRONT": 0}
    np.testing.assert_allclose(car.boxes2d["CAM_FRONT"], [700, 380, 960, 520])
    assert scene.points.shape == (2, 3)


# -- policies ---------------------------------------------------------------------------------


def _sunrgbd_copy(tmp_path, real_data, mutate):
    """The SUN RGB-D sample's info, changed by `mutate`, with its image linked (not copied)."""
    root = real_data("mmdet3d_infos", "sunrgbd_000017")
    data = load_pickle(root / "sunrgbd_000017_infos.pkl")
    mutate(data["data_list"][0])
    (tmp_path / "000017.jpg").symlink_to(root / "000017.jpg")
    write_infos(tmp_path / "infos.pkl", data["data_list"], data["metainfo"])
    return get_source("mmdet3d", str(tmp_path))


def test_missing_image_is_a_scene_skip(tmp_path, real_data):
    def mutate(info):
        info["images"]["CAM0"]["img_path"] = "image/999999.jpg"

    source = _sunrgbd_copy(tmp_path, real_data, mutate)
    with pytest.raises(SceneSkip, match="999999.jpg"):
        source.load(source.scene_ids()[0])


def test_empty_instances_give_a_scene_with_zero_objects(tmp_path, real_data):
    def mutate(info):
        info["instances"] = []

    source = _sunrgbd_copy(tmp_path, real_data, mutate)
    scene = source.load(source.scene_ids()[0])
    assert scene.objects == [] and len(scene.frames) == 1
    assert scene.points is None  # the point file was not linked


def test_dataset_option_overrides_metainfo(tmp_path, real_data):
    root = real_data("mmdet3d_infos", "sunrgbd_000017")
    data = load_pickle(root / "sunrgbd_000017_infos.pkl")
    (tmp_path / "000017.jpg").symlink_to(root / "000017.jpg")
    write_infos(tmp_path / "infos.pkl", data["data_list"], {"classes": ["a_b"] * 8})
    with pytest.raises(ValueError, match="dataset"):
        get_source("mmdet3d", str(tmp_path))
    scene = get_source("mmdet3d", str(tmp_path), dataset="SUN RGB-D").load("000017")
    # The file's own class tuple wins over the default one.
    assert [o.category for o in scene.objects] == ["a b", "a b"]
    with pytest.raises(ValueError, match="unsupported"):
        normalize_dataset("waymo")


def test_hostile_info_file_is_refused(tmp_path):
    class Shell:
        def __reduce__(self):
            import os

            return os.system, ("true",)

    with open(tmp_path / "infos.pkl", "wb") as f:
        pickle.dump({"metainfo": {"DATASET": "KITTI"}, "data_list": [Shell()]}, f)
    with pytest.raises(UnsafePickleError, match="system"):
        get_source("mmdet3d", str(tmp_path))


def test_rq_decompose_recovers_intrinsics_and_rotation():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    K = np.array([[600.0, 0.5, 320], [0, 610, 240], [0, 0, 1]])
    K_out, R_out = rq_decompose(2.5 * K @ q)
    np.testing.assert_allclose(K_out, K, atol=1e-9)
    np.testing.assert_allclose(R_out, q, atol=1e-12)
