"""COCO source: a synthetic COCO split (images, depth PNGs, RLE/polygon JSON) built in tmp_path,
read, lifted and observed against the boxes it was rendered from."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from jax_spatial import masks as masks_lib
from jax_spatial.lift import synthetic as syn
from jax_spatial.lift.estimators import FixedGravity, FovPrior
from jax_spatial.lift.image_only import lift_objects, pad_masks
from jax_spatial.lift.scene_lift import lift_scene, lifted
from jax_spatial.observe import observe_scene
from jax_spatial.scene import SceneSkip
from jax_spatial.sources import get_source
from jax_spatial.sources.coco import CocoSource, xywh_to_xyxy

W, H = 320, 240


def reference_centre(points, yaw):
    """Centre of the yaw-aligned box around a box's visible surface points (the best a lift
    from one view can do)."""
    R = syn.yaw_rotation_np(yaw)
    local = points @ R
    return R @ (0.5 * (local.min(0) + local.max(0)))


def write_image(path, rgb, f35=None):
    image = Image.fromarray(rgb)
    if f35 is None:
        image.save(path)
        return
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0xA405] = int(round(f35))
    image.save(path, exif=exif)


def make_coco(root, seeds=(3, 4), polygon_first=True):
    """A COCO-layout folder; returns {image_id: SyntheticFrame}."""
    (root / "annotations").mkdir(parents=True)
    (root / "val2017").mkdir()
    (root / "depth").mkdir()
    images, anns, caps, truth, gravity = [], [], [], {}, {}
    rng = np.random.default_rng(0)
    ann_id = 1
    for image_id, seed in enumerate(seeds, start=1):
        fr = syn.render_frame(seed, W, H, num_objects=4)
        name = f"{image_id:012d}"
        f35 = fr.K[0, 0] / max(W, H) * 36.0
        write_image(
            root / "val2017" / f"{name}.jpg", rng.integers(0, 255, (H, W, 3), np.uint8), f35
        )
        depth_mm = np.where(np.isfinite(fr.depth), fr.depth * 1000.0, 0).astype(np.uint16)
        Image.fromarray(depth_mm).save(root / "depth" / f"{name}.png")
        images.append({"id": image_id, "file_name": f"{name}.jpg", "width": W, "height": H})
        gravity[f"{name}.jpg"] = {"pitch": fr.pitch, "roll": fr.roll}
        for m, mask in enumerate(fr.masks):
            if not mask.any():
                continue
            box = masks_lib.mask_box(mask)
            if polygon_first and m == 0:
                # The object's tight box as a polygon: exercises the polygon path.
                x1, y1, x2, y2 = box
                seg = [[x1, y1, x2, y1, x2, y2, x1, y2]]
            else:
                seg = masks_lib.encode_rle(mask)
            anns.append({
                "id": ann_id, "image_id": image_id, "category_id": 1 + m % 2, "iscrowd": 0,
                "segmentation": seg, "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
                "area": int(mask.sum()),
            })  # fmt: skip
            ann_id += 1
        caps.append({"id": image_id, "image_id": image_id, "caption": f"boxes in room {seed}"})
        truth[image_id] = fr
    categories = [{"id": 1, "name": "storage_box"}, {"id": 2, "name": "Crate"}]
    (root / "annotations" / "instances_val2017.json").write_text(
        json.dumps({"images": images, "annotations": anns, "categories": categories})
    )
    (root / "annotations" / "captions_val2017.json").write_text(json.dumps({"annotations": caps}))
    (root / "gravity.json").write_text(json.dumps(gravity))
    return truth


@pytest.fixture(scope="module")
def coco_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco")
    return root, make_coco(root)


def test_parse(coco_root):
    root, truth = coco_root
    src = get_source("coco", str(root), depth_dir="depth", gravity=str(root / "gravity.json"))
    assert src.scene_ids() == ["1", "2"]
    scene = src.load("1")
    assert scene.meta["captions"] == ["boxes in room 3"]
    assert scene.meta["estimators"] == {
        "depth": "precomputed:png", "intrinsics": "exif:35mm", "gravity": "gravity_json",
    }  # fmt: skip
    frame = scene.frames[0]
    assert frame.frame_id == "000000000001" and (frame.width, frame.height) == (W, H)
    np.testing.assert_allclose(frame.K[0, 0], truth[1].K[0, 0], rtol=0.03)  # f35 is an integer
    np.testing.assert_allclose(frame.world_from_cam[:3, :3], truth[1].view_from_cam, atol=1e-6)
    assert {o.category for o in scene.objects} <= {"storage box", "crate"}
    assert all(o.box3d is None and frame.frame_id in o.masks for o in scene.objects)
    assert frame.exhaustive and len(frame.ignore_boxes) == 0


def direct_lift(fr, K):
    """`lift_objects` on the rendered frame itself: what the source + lift_scene must match."""
    visible = [m for m in range(len(fr.masks)) if fr.masks[m].any()]
    regions = [fr.masks[m] for m in visible]
    # make_coco wrote the first object as its box polygon.
    x1, y1, x2, y2 = masks_lib.mask_box(regions[0]).astype(int)
    regions[0] = np.zeros((H, W), bool)
    regions[0][y1:y2, x1:x2] = True
    stack, valid = pad_masks(regions, H, W)
    depth = np.where(np.isfinite(fr.depth), np.round(fr.depth * 1000) / 1000, 0)
    out = lift_objects(depth.astype(np.float32), stack, valid, K, fr.view_from_cam)
    return visible, np.asarray(out.centre), np.asarray(out.ok)


def test_source_lift_observe_close_to_truth(coco_root):
    root, truth = coco_root
    src = lifted(
        get_source("coco", str(root), depth_dir="depth", gravity=str(root / "gravity.json"))
    )
    for sid in src.scene_ids():
        scene = src.load(sid)
        fr = truth[int(sid)]
        (obs,) = observe_scene(scene)
        assert obs.num_objects >= 3
        visible, direct, _ = direct_lift(fr, scene.frames[0].K)
        for j, k in enumerate(obs.object_index):
            m = visible[k]
            # The plumbing (JSON -> masks, PNG depth, EXIF K, gravity JSON, padding, view
            # frame) reproduces the lifting run on the frame directly.
            np.testing.assert_allclose(obs.centre[j], direct[k], atol=2e-3)
            # And the truth: the lifting sees front faces with noise growing as z^2 (7 cm
            # sigma at 6 m), and the integer EXIF focal length is up to 2% off: 8% of range.
            ref = reference_centre(fr.visible_points[m], fr.yaw[m])
            assert np.linalg.norm(obs.centre[j] - ref) < 0.08 * np.linalg.norm(ref) + 0.05
            np.testing.assert_allclose(obs.rotation[j][:, 2], [0, 0, 1], atol=1e-6)
        assert all(0 < o.extra["visible_fraction"] <= 1 for o in scene.objects)
        assert scene.meta["lift_dropped"] == 0


def test_exact_intrinsics_match_direct_lift(coco_root):
    root, truth = coco_root
    fr = truth[2]
    hfov = np.degrees(2 * np.arctan(0.5 * W / fr.K[0, 0]))
    src = CocoSource(
        str(root),
        depth_dir="depth",
        intrinsics=FovPrior(hfov_deg=hfov),
        gravity=FixedGravity(fr.pitch, fr.roll),
    )
    scene = lift_scene(src.load("2"))
    visible, direct, ok = direct_lift(fr, fr.K)
    assert len(scene.objects) == int(ok.sum())
    for obj in scene.objects:
        np.testing.assert_allclose(obj.box3d.centre, direct[obj.index], atol=2e-3)


def test_crowd_empty_and_missing(tmp_path):
    make_coco(tmp_path, seeds=(5,))
    path = tmp_path / "annotations" / "instances_val2017.json"
    data = json.loads(path.read_text())
    n = len(data["annotations"])
    data["annotations"].append(
        {"id": 99, "image_id": 1, "category_id": 1, "iscrowd": 1, "bbox": [0, 0, 10, 10],
         "segmentation": {"size": [H, W], "counts": [0, 10]}}
    )  # fmt: skip
    data["annotations"].append(
        {"id": 100, "image_id": 1, "category_id": 2, "iscrowd": 0, "bbox": [5, 5, 3, 3],
         "segmentation": []}
    )  # fmt: skip
    data["images"].append({"id": 7, "file_name": "missing.jpg", "width": W, "height": H})
    data["images"].append({"id": 8, "file_name": "corrupt.jpg", "width": W, "height": H})
    path.write_text(json.dumps(data))
    (tmp_path / "val2017" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0not a jpeg")
    src = CocoSource(str(tmp_path), depth_dir="depth")
    scene = src.load("1")
    assert len(scene.objects) == n + 1
    assert not scene.frames[0].exhaustive
    np.testing.assert_array_equal(scene.frames[0].ignore_boxes, [[0, 0, 10, 10]])
    out = lift_scene(scene)
    assert out.meta["lift_dropped"] == 1
    assert "empty mask" in out.meta["lift_drop_reasons"][0]["reason"]
    assert len(out.objects) == n
    (obs,) = observe_scene(out)
    assert not obs.exhaustive
    with pytest.raises(SceneSkip, match="not found"):
        src.load("7")
    with pytest.raises(SceneSkip, match="corrupt"):
        src.load("8")
    with pytest.raises(SceneSkip, match="no depth available"):
        CocoSource(str(tmp_path)).load("1")


def test_nan_and_mismatched_depth(tmp_path):
    make_coco(tmp_path, seeds=(6,))
    np.save(tmp_path / "depth" / "000000000001.npy", np.full((H, W), np.nan, np.float32))
    with pytest.raises(SceneSkip, match="no valid pixel"):
        CocoSource(str(tmp_path), depth_dir="depth", depth_suffix=".npy").load("1")
    np.save(tmp_path / "depth" / "000000000001.npy", np.ones((H + 1, W), np.float32))
    with pytest.raises(SceneSkip, match="depth map is"):
        CocoSource(str(tmp_path), depth_dir="depth", depth_suffix=".npy").load("1")


def test_xywh():
    np.testing.assert_array_equal(xywh_to_xyxy([1, 2, 3, 4]), [1, 2, 4, 6])
    assert xywh_to_xyxy([1, 2, -1, 4]) is None and xywh_to_xyxy(None) is None
