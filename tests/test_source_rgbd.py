"""RGB-D frames: depth decoding against Open3D's readers on the shared NYU / SUN / TUM /
Redwood frames, intrinsics, Redwood poses, annotations and failure modes."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from jax_spatial.lift.scene_lift import lift_scene
from jax_spatial.observe import observe_scene
from jax_spatial.scene import SceneSkip
from jax_spatial.sources import get_source
from jax_spatial.sources.rgbd import OPEN3D_MAX_DEPTH, RgbdFramesSource, decode_depth

o3d = pytest.importorskip("open3d")


def _open3d_nyu_pgm(path):
    """Open3D's own example reader: big-endian samples (create_from_nyu_format swaps back)."""
    data = path.read_bytes()
    header_end = data.index(b"65535") + len(b"65535\n")
    return np.frombuffer(data, ">u2", offset=header_end).reshape(480, 640).astype(np.uint16)


@pytest.fixture
def frames_root(real_data):
    return real_data("rgbd_frames")


@pytest.mark.parametrize("name", ["NYU", "SUN", "TUM"])
def test_depth_matches_open3d(frames_root, name):
    folder = frames_root / "RGBD" / "other_formats"
    color_path = next(folder.glob(f"{name}_color.*"))
    depth_path = next(folder.glob(f"{name}_depth.*"))
    color = o3d.io.read_image(str(color_path)) if name != "NYU" else None
    if name == "NYU":
        color = o3d.geometry.Image(np.zeros((480, 640, 3), np.uint8))
        raw = o3d.geometry.Image(_open3d_nyu_pgm(depth_path))
        rgbd = o3d.geometry.RGBDImage.create_from_nyu_format(color, raw)
    elif name == "SUN":
        rgbd = o3d.geometry.RGBDImage.create_from_sun_format(
            color, o3d.io.read_image(str(depth_path))
        )
    else:
        rgbd = o3d.geometry.RGBDImage.create_from_tum_format(
            color, o3d.io.read_image(str(depth_path))
        )
    ref = np.asarray(rgbd.depth, np.float64)
    dataset = name.lower()
    ours = decode_depth(depth_path, dataset).astype(np.float64)
    ours = np.where(ours <= OPEN3D_MAX_DEPTH[dataset], ours, 0.0)
    assert (ref > 0).mean() > 0.5
    np.testing.assert_array_equal(ours > 0, ref > 0)
    # Open3D rounds NYU's metric depth to whole millimetres before scaling.
    np.testing.assert_allclose(ours, ref, atol=5.1e-4 if name == "NYU" else 1e-6)


def test_redwood_depth_and_pose(frames_root):
    src = RgbdFramesSource(str(frames_root))
    scene = src.load("RGBD/00000")
    frame = scene.frames[0]
    color = o3d.io.read_image(str(frames_root / "RGBD" / "color" / "00000.jpg"))
    depth = o3d.io.read_image(str(frames_root / "RGBD" / "depth" / "00000.png"))
    ref = np.asarray(o3d.geometry.RGBDImage.create_from_color_and_depth(
        color, depth, depth_trunc=100.0).depth)  # fmt: skip
    np.testing.assert_allclose(frame.depth, ref, atol=1e-6)
    np.testing.assert_allclose(frame.K, [[525, 0, 319.5], [0, 525, 239.5], [0, 0, 1]])
    # y-up ICL-NUIM world turned z-up: the camera's down axis points along world -z.
    down = frame.world_from_cam[:3, 1]
    assert np.degrees(np.arccos(-down[2])) < 5.0
    assert scene.meta["estimators"]["gravity"] == "trajectory:y-up"
    assert scene.objects == []


def test_discovery_and_intrinsics(frames_root):
    src = get_source("rgbd", str(frames_root))
    ids = src.scene_ids()
    assert ids == sorted(ids)
    assert {"RGBD/other_formats/NYU", "RGBD/other_formats/SUN", "RGBD/other_formats/TUM"} <= set(
        ids
    )
    assert sum(i.startswith("RGBD/0000") for i in ids) == 5
    nyu = src.load("RGBD/other_formats/NYU").frames[0]
    np.testing.assert_allclose(np.diag(nyu.K)[:2], [518.8579, 519.4696], atol=1e-3)
    np.testing.assert_allclose(nyu.K[:2, 2], [325.5824, 253.7362], atol=1e-3)
    tum = RgbdFramesSource(str(frames_root), tum_camera="fr1").load("RGBD/other_formats/TUM")
    np.testing.assert_allclose(tum.frames[0].K[0], [517.3, 0, 318.6])
    level = [[1, 0, 0], [0, 0, 1], [0, -1, 0]]
    np.testing.assert_allclose(tum.frames[0].world_from_cam[:3, :3], level, atol=1e-7)


def test_annotations_lift(frames_root, tmp_path):
    # A COCO-style box on the TUM frame's centre: the lifting finds the surface there.
    ann = {
        "images": [{"id": 1, "file_name": "RGBD/other_formats/TUM_color.png"}],
        "categories": [{"id": 3, "name": "thing"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 3, "bbox": [300, 220, 40, 40], "iscrowd": 0}
        ],
    }
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(ann))
    src = RgbdFramesSource(str(frames_root), annotations=str(path))
    assert src.load("RGBD/other_formats/NYU").objects == []
    scene = lift_scene(src.load("RGBD/other_formats/TUM"))
    (obj,) = scene.objects
    frame = scene.frames[0]
    median = float(np.median(frame.depth[220:260, 300:340][frame.depth[220:260, 300:340] > 0]))
    # Level camera: view y is the camera's depth axis.
    assert abs(obj.box3d.centre[1] - median) < 0.1 * median + 0.1
    (obs,) = observe_scene(scene)
    assert obs.categories == ["thing"]


def test_broken_frames(tmp_path, frames_root):
    folder = frames_root / "RGBD" / "other_formats"
    shutil.copy(folder / "TUM_depth.png", tmp_path / "TUM_depth.png")
    (tmp_path / "TUM_color.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    src = RgbdFramesSource(str(tmp_path))
    with pytest.raises(SceneSkip, match="corrupt"):
        src.load("TUM")
    shutil.copy(folder / "SUN_color.jpg", tmp_path / "TUM_color.png")
    (tmp_path / "TUM_depth.png").write_bytes(b"nope")
    with pytest.raises(SceneSkip, match="unreadable depth"):
        RgbdFramesSource(str(tmp_path)).load("TUM")
    with pytest.raises(SceneSkip, match="no frame"):
        src.load("missing")
