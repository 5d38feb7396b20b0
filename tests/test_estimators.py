"""Tests for the depth, intrinsics and gravity estimators."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from jax_spatial.geometry import frames
from jax_spatial.lift import estimators as est


def _photo(path, size=(64, 48), focal_35=None, focal=None):
    image = Image.new("RGB", size, (120, 80, 40))
    exif = Image.Exif()
    sub = {}
    if focal_35 is not None:
        sub[0xA405] = int(focal_35)
    if focal is not None:
        sub[0x920A] = float(focal)
    if sub:
        exif[0x8769] = sub
    image.save(path, exif=exif)
    return str(path)


def test_protocols_are_satisfied():
    assert isinstance(est.PrecomputedDepth(), est.DepthEstimator)
    assert isinstance(est.FovPrior(), est.IntrinsicsEstimator)
    assert isinstance(est.ExifIntrinsics(), est.IntrinsicsEstimator)
    assert isinstance(est.LevelGravity(), est.GravityEstimator)
    assert isinstance(est.FixedGravity(0.1, 0.0), est.GravityEstimator)


def test_precomputed_depth_png_and_npy(tmp_path):
    image_path = _photo(tmp_path / "frame_001.jpg", size=(5, 4))
    mm = np.arange(20, dtype=np.uint16).reshape(4, 5) * 250
    Image.fromarray(mm).save(tmp_path / "frame_001.png")
    depth = est.PrecomputedDepth().estimate_depth(image_path)
    assert depth.name == "precomputed:png"
    assert depth.depth.dtype == np.float32 and depth.depth.shape == (4, 5)
    np.testing.assert_allclose(depth.depth, mm * 0.001)
    assert depth.depth[0, 0] == 0.0  # 0 stays "unknown"

    metres = np.full((4, 5), 2.5, np.float32)
    metres[1, 1] = np.nan
    (tmp_path / "d").mkdir()
    np.save(tmp_path / "d" / "frame_001.npy", metres)
    npy = est.PrecomputedDepth(directory=str(tmp_path / "d"), suffix=".npy", scale=2.0)
    got = npy.estimate_depth(np.zeros((4, 5, 3), np.uint8), image_path=image_path)
    assert got.depth[0, 0] == pytest.approx(5.0) and got.depth[1, 1] == 0.0  # NaN -> unknown
    with pytest.raises(ValueError, match="does not match"):
        npy.estimate_depth(np.zeros((8, 5, 3), np.uint8), image_path=image_path)
    with pytest.raises(ValueError, match="path"):
        est.PrecomputedDepth().estimate_depth(np.zeros((4, 5, 3), np.uint8))


def test_fov_prior():
    K = est.FovPrior().estimate_intrinsics(np.zeros((480, 640, 3), np.uint8))
    assert K.name == "fov_prior:60deg"
    # 60 degrees horizontal: fx = (W / 2) / tan(30 deg).
    assert K.K[0, 0] == pytest.approx(320 / math.tan(math.radians(30)))
    np.testing.assert_allclose(K.K[:2, 2], [320, 240])


def test_exif_intrinsics(tmp_path):
    path = _photo(tmp_path / "a.jpg", size=(640, 480), focal_35=26)
    K = est.ExifIntrinsics().estimate_intrinsics(path)
    assert K.name == "exif:35mm"
    assert K.K[0, 0] == pytest.approx(26 / 36 * 640)
    with Image.open(path) as pil:
        assert est.ExifIntrinsics().estimate_intrinsics(pil).K[0, 0] == pytest.approx(26 / 36 * 640)

    path = _photo(tmp_path / "b.jpg", size=(400, 300), focal=4.2)
    K = est.ExifIntrinsics(sensor_width_mm=5.6).estimate_intrinsics(path)
    assert K.name == "exif:focal+sensor" and K.K[0, 0] == pytest.approx(4.2 / 5.6 * 400)
    # Focal length without a sensor width, or no EXIF at all: the field-of-view prior.
    assert est.ExifIntrinsics().estimate_intrinsics(path).name == "fov_prior:60deg"
    bare = _photo(tmp_path / "c.jpg")
    assert est.ExifIntrinsics().estimate_intrinsics(bare).name == "fov_prior:60deg"


def test_gravity_priors():
    level = est.LevelGravity().estimate_gravity(None)
    assert (level.pitch, level.roll, level.name) == (0.0, 0.0, "level_prior")
    np.testing.assert_allclose(level.view_from_cam(), frames.VIEW_FROM_LEVEL_CAM)
    tilted = est.FixedGravity(-0.2, 0.05).estimate_gravity(None)
    np.testing.assert_allclose(
        tilted.view_from_cam(), frames.view_from_cam_rotation(-0.2, 0.05), atol=1e-6
    )


def _tiny_depth_anything(kind="metric"):
    torch = pytest.importorskip("torch", reason="optional extra 'depth' (torch) not installed")
    transformers = pytest.importorskip(
        "transformers", reason="optional extra 'depth' (transformers) not installed"
    )
    # A randomly initialised Depth Anything with a 2-layer, 16-wide DINOv2 backbone: the real
    # code path end to end, no weights downloaded.
    backbone = transformers.Dinov2Config(
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        image_size=56,
        patch_size=14,
        out_indices=[1, 2],
        reshape_hidden_states=False,
    )
    config = transformers.DepthAnythingConfig(
        backbone_config=backbone,
        reassemble_hidden_size=16,
        reassemble_factors=[4, 2],
        neck_hidden_sizes=[8, 16],
        fusion_hidden_size=8,
        head_hidden_size=8,
        depth_estimation_type=kind,
        max_depth=20,
    )
    torch.manual_seed(0)
    model = transformers.DepthAnythingForDepthEstimation(config)
    processor_cls = (
        getattr(transformers, "DPTImageProcessorPil", None) or transformers.DPTImageProcessor
    )
    processor = processor_cls(
        do_resize=True, size={"height": 56, "width": 56}, keep_aspect_ratio=False
    )
    return model, processor


def test_transformers_depth_estimator():
    model, processor = _tiny_depth_anything()
    estimator = est.TransformersDepthEstimator(model, processor)
    assert isinstance(estimator, est.DepthEstimator)
    image = (np.random.default_rng(0).random((40, 60, 3)) * 255).astype(np.uint8)
    out = estimator.estimate_depth(image)
    assert out.name.startswith("hf:")
    assert out.depth.shape == (40, 60) and out.depth.dtype == np.float32
    # The metric head ends in a sigmoid scaled by max_depth: values in (0, 20] metres.
    assert np.all(out.depth > 0) and np.all(out.depth <= 20 + 1e-4)


def test_transformers_depth_refuses_relative_models():
    model, processor = _tiny_depth_anything(kind="relative")
    with pytest.raises(ValueError, match="metric"):
        est.TransformersDepthEstimator(model, processor)
    est.TransformersDepthEstimator(model, processor, allow_relative=True)
