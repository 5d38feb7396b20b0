"""Visual Genome source: parsing the real v1.2 JSON of images 1..5 inside the distributed zips,
and a synthetic end-to-end (image + depth + VG JSON with 2D boxes only) built in tmp_path."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from jax_spatial import masks as masks_lib
from jax_spatial.lift import synthetic as syn
from jax_spatial.lift.estimators import FixedGravity, FovPrior
from jax_spatial.lift.scene_lift import lift_scene
from jax_spatial.observe import observe_scene
from jax_spatial.scene import SceneSkip
from jax_spatial.sources import get_source
from jax_spatial.sources.visual_genome import VisualGenomeSource, caption_for

W, H = 320, 240


def test_real_zips_parse(real_data):
    root = real_data("visual_genome_v1.2_ids1-5")
    src = VisualGenomeSource(str(root))
    assert src.scene_ids() == ["1", "2", "3", "4", "5"]
    with zipfile.ZipFile(root / "attributes_v1.2.0.zip") as zf:
        raw = json.loads(zf.read("dummy_data/attributes.json.zip/attributes.json"))
    for entry in raw:
        objects = src.read_objects(entry["image_id"])
        expected = [o for o in entry["attributes"] if o.get("names")]
        assert len(objects) == len(expected)
        for obj, ann in zip(objects, expected, strict=True):
            assert obj.category == " ".join(ann["names"][0].lower().split())
            assert obj.extra["object_id"] == ann["object_id"]
            want = [" ".join(a.lower().split()) for a in ann.get("attributes") or []]
            assert list(obj.attributes) == list(dict.fromkeys(a for a in want if a))
            np.testing.assert_array_equal(
                obj.boxes2d["image"], [ann["x"], ann["y"], ann["x"] + ann["w"], ann["y"] + ann["h"]]
            )
            assert obj.caption.endswith(obj.category) and not obj.caption.startswith(("a ", "the "))
    counts = {i: len(src.read_objects(i)) for i in range(1, 6)}
    assert counts == {1: 40, 2: 27, 3: 52, 4: 24, 5: 34}
    clock = src.read_objects(1)[0]
    assert (clock.category, clock.attributes, clock.caption) == (
        "clock",
        ("green", "tall"),
        "green clock",
    )
    # The zips' images are placeholders and there is no depth: a clear skip, not a crash.
    with pytest.raises(SceneSkip):
        src.load("1")


def test_caption_rules():
    assert caption_for("car", ("red", "parked")) == "red car"
    assert caption_for("car", ("red", "parked"), 2) == "red parked car"
    assert caption_for("sign", ("on", 'lit "walk"')) == "sign"
    assert caption_for("phone", ("multi-line phone",)) == "phone"
    assert caption_for("man", ()) == "man"


def make_vg(root, seed=11):
    fr = syn.render_frame(seed, W, H, num_objects=4)
    (root / "VG_100K").mkdir(parents=True)
    (root / "depth").mkdir()
    rgb = np.random.default_rng(seed).integers(0, 255, (H, W, 3), np.uint8)
    Image.fromarray(rgb).save(root / "VG_100K" / "7.jpg")
    depth_mm = np.where(np.isfinite(fr.depth), fr.depth * 1000.0, 0).astype(np.uint16)
    Image.fromarray(depth_mm).save(root / "depth" / "7.png")
    objects, visible = [], []
    for m, mask in enumerate(fr.masks):
        if not mask.sum() > 200:
            continue
        x1, y1, x2, y2 = masks_lib.mask_box(mask)
        objects.append(
            {"object_id": 100 + m, "names": ["Box"], "attributes": ["Wooden", "big"],
             "synsets": ["box.n.01"], "x": x1, "y": y1, "w": x2 - x1, "h": y2 - y1}
        )  # fmt: skip
        visible.append(m)
    objects.append({"object_id": 999, "names": ["shadow"], "x": 0, "y": 0, "w": 0, "h": 0})
    # Written as distributed: inside a zip, under a sub-folder.
    with zipfile.ZipFile(root / "attributes_v1.2.0.zip", "w") as zf:
        zf.writestr("data/attributes.json", json.dumps([{"image_id": 7, "attributes": objects}]))
    return fr, visible


def test_synthetic_end_to_end(tmp_path):
    fr, visible = make_vg(tmp_path)
    hfov = np.degrees(2 * np.arctan(0.5 * W / fr.K[0, 0]))
    src = get_source(
        "visual_genome", str(tmp_path), depth_dir="depth",
        intrinsics=FovPrior(hfov_deg=hfov), gravity=FixedGravity(fr.pitch, fr.roll),
    )  # fmt: skip
    scene = src.load("7")
    assert scene.meta["estimators"]["gravity"] == "fixed"
    assert not scene.frames[0].exhaustive
    assert [o.caption for o in scene.objects][:1] == ["wooden box"]
    out = lift_scene(scene)
    # The zero-size box has nothing to lift from; it is counted, not kept.
    assert out.meta["lift_dropped"] == 1
    assert out.meta["lift_drop_reasons"][0]["category"] == "shadow"
    (obs,) = observe_scene(out)
    assert obs.num_objects >= 2
    for j, k in enumerate(obs.object_index):
        m = visible[k]
        lifted = next(o for o in out.objects if o.index == k)
        assert lifted.extra["lift"]["from"] == "box"
        # Box-only lifting: the median depth of a box this object fills lies on the object,
        # and the depth test removes the background seen around it.
        R = syn.yaw_rotation_np(fr.yaw[m])
        local = fr.visible_points[m] @ R
        ref = R @ (0.5 * (local.min(0) + local.max(0)))
        assert np.linalg.norm(obs.centre[j] - ref) < 0.1 * np.linalg.norm(ref) + 0.1, (
            k,
            obs.centre[j],
            ref,
        )


def test_missing_json(tmp_path):
    with pytest.raises(FileNotFoundError):
        VisualGenomeSource(str(tmp_path))
