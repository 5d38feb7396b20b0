"""Estimates of what a plain image lacks: metric depth, intrinsics and gravity.

Each estimator is a small object with a `name` (recorded with the output for provenance, so a
dataset says which depth model or prior made each box) and one method returning a frozen
estimate that carries the same name. Implementations:

* depth: `PrecomputedDepth` reads maps made offline (16-bit PNG in millimetres, `.npy` in
  metres, with a scale option); `TransformersDepthEstimator` runs a Hugging Face
  depth-estimation model (e.g. Depth Anything V2 Metric) and is the only part that needs the
  optional `torch` and `transformers` packages, imported when it is built.
* intrinsics: `ExifIntrinsics` from the EXIF focal length, falling back to `FovPrior`
  (60 degrees horizontal by default).
* gravity: `LevelGravity` (pitch = roll = 0), `FixedGravity`.

Images are passed as a path, a PIL image, or an `[H, W, 3]` uint8 array; estimators that need
a file (precomputed maps, EXIF) take the path from `image_path`.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

# 35 mm film is 36 mm wide: the "35 mm equivalent" focal length is quoted for that width.
FILM_35MM_WIDTH_MM = 36.0

# EXIF tags (the Exif sub-IFD).
_EXIF_IFD = 0x8769
_TAG_FOCAL_LENGTH = 0x920A
_TAG_FOCAL_35MM = 0xA405


@dataclasses.dataclass(frozen=True)
class DepthEstimate:
    """`depth`: `[H, W]` float32 camera-z metres, 0 where unknown; `name`: provenance."""

    depth: np.ndarray
    name: str


@dataclasses.dataclass(frozen=True)
class IntrinsicsEstimate:
    """`K`: `[3, 3]` OpenCV intrinsics for the image as given; `name`: provenance."""

    K: np.ndarray
    name: str


@dataclasses.dataclass(frozen=True)
class GravityEstimate:
    """Camera tilt in radians (see `frames.view_from_cam_rotation`); `name`: provenance."""

    pitch: float
    roll: float
    name: str

    def view_from_cam(self) -> np.ndarray:
        """`[3, 3]` rotation for the lifting stage."""
        from jax_spatial.geometry import frames

        return np.asarray(frames.view_from_cam_rotation(self.pitch, self.roll), np.float64)


@runtime_checkable
class DepthEstimator(Protocol):
    name: str

    def estimate_depth(self, image, image_path: str | None = None) -> DepthEstimate: ...


@runtime_checkable
class IntrinsicsEstimator(Protocol):
    name: str

    def estimate_intrinsics(self, image, image_path: str | None = None) -> IntrinsicsEstimate: ...


@runtime_checkable
class GravityEstimator(Protocol):
    name: str

    def estimate_gravity(self, image, image_path: str | None = None) -> GravityEstimate: ...


def _image_size(image, image_path=None) -> tuple[int, int]:
    """(width, height) of a PIL image, an `[H, W, ...]` array, or the file at a path."""
    if isinstance(image, Image.Image):
        return image.size
    if isinstance(image, np.ndarray):
        return int(image.shape[1]), int(image.shape[0])
    path = image if isinstance(image, str | os.PathLike) else image_path
    if path is None:
        raise ValueError("need an image or an image path to know the image size")
    with Image.open(path) as im:
        return im.size


def _to_pil(image, image_path=None) -> Image.Image:
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, np.ndarray):
        return Image.fromarray(np.asarray(image, np.uint8)).convert("RGB")
    path = image if isinstance(image, str | os.PathLike) else image_path
    if path is None:
        raise ValueError("no image given")
    with Image.open(path) as im:
        return im.convert("RGB")


# --------------------------------------------------------------------------------------------
# Depth


def read_depth(path, scale: float | None = None) -> np.ndarray:
    """Reads a depth map file as `[H, W]` float32 metres (0 where unknown).

    Args:
      path: a 16-bit PNG (millimetres unless `scale` says otherwise, the convention of
        ScanNet, NYU and TUM exports) or a `.npy` array (metres unless scaled).
      scale: metres per stored unit; default 0.001 for PNG and 1.0 for `.npy`.
    """
    path = os.fspath(path)
    if path.endswith(".npy"):
        raw = np.load(path, allow_pickle=False)
        scale = 1.0 if scale is None else scale
    else:
        with Image.open(path) as im:
            raw = np.asarray(im)
        scale = 0.001 if scale is None else scale
    if raw.ndim != 2:
        raise ValueError(f"{path}: depth must be a single channel, got shape {raw.shape}")
    depth = raw.astype(np.float32) * np.float32(scale)
    return np.where(np.isfinite(depth) & (depth > 0), depth, 0.0).astype(np.float32)


@dataclasses.dataclass
class PrecomputedDepth:
    """Depth maps made offline, found next to the images or in a folder of their own.

    The map of `photos/abc.jpg` is `<directory>/abc<suffix>` (the image's own folder when
    `directory` is None).
    """

    directory: str | None = None
    suffix: str = ".png"
    scale: float | None = None
    name: str = "precomputed"

    def path_for(self, image_path: str) -> str:
        stem = os.path.splitext(os.path.basename(image_path))[0]
        folder = self.directory if self.directory is not None else os.path.dirname(image_path)
        return os.path.join(folder, stem + self.suffix)

    def estimate_depth(self, image, image_path: str | None = None) -> DepthEstimate:
        path = image if isinstance(image, str | os.PathLike) else image_path
        if path is None:
            raise ValueError("PrecomputedDepth needs the image path to find its depth map")
        depth = read_depth(self.path_for(os.fspath(path)), self.scale)
        if not isinstance(image, str | os.PathLike):
            w, h = _image_size(image)
            if depth.shape != (h, w):
                raise ValueError(f"depth map {depth.shape} does not match the image {(h, w)}")
        return DepthEstimate(depth=depth, name=f"{self.name}:{self.suffix.lstrip('.')}")


class TransformersDepthEstimator:
    """Metric depth from a Hugging Face `transformers` depth-estimation model.

    Args:
      model: a hub id or local folder (e.g.
        "depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf"), or a loaded
        `PreTrainedModel` (then `processor` is required).
      processor: the model's image processor; loaded with `AutoImageProcessor` when None.
      device: torch device string.
      allow_relative: relative-depth models predict affine-invariant disparity, not metres,
        and boxes lifted from it would be meaningless; they are refused unless this is set.

    The model's output is resized back to the image (bilinear) and returned in metres.
    Needs `pip install jax-spatial[depth]` (torch and transformers).
    """

    def __init__(self, model, processor=None, device: str = "cpu", allow_relative: bool = False):
        try:
            import torch  # noqa: F401
            import transformers
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError(
                "TransformersDepthEstimator needs torch and transformers: "
                "pip install 'jax-spatial[depth]'"
            ) from err
        if isinstance(model, str | os.PathLike):
            self.name = f"hf:{os.fspath(model)}"
            processor = processor or transformers.AutoImageProcessor.from_pretrained(model)
            model = transformers.AutoModelForDepthEstimation.from_pretrained(model)
        else:
            if processor is None:
                raise ValueError("a model object needs its image processor")
            self.name = f"hf:{getattr(model.config, 'name_or_path', '') or type(model).__name__}"
        kind = getattr(model.config, "depth_estimation_type", "metric")
        if kind != "metric" and not allow_relative:
            raise ValueError(
                f"{self.name} predicts {kind} depth; lifting needs metric depth "
                "(pass allow_relative=True to use it anyway)"
            )
        self.model = model.to(device).eval()
        self.processor = processor
        self.device = device

    def estimate_depth(self, image, image_path: str | None = None) -> DepthEstimate:
        import torch

        pil = _to_pil(image, image_path)
        inputs = self.processor(images=pil, return_tensors="pt").to(self.device)
        with torch.no_grad():
            predicted = self.model(**inputs).predicted_depth  # [1, h, w]
        depth = torch.nn.functional.interpolate(
            predicted[:, None], size=(pil.height, pil.width), mode="bilinear", align_corners=False
        )[0, 0]
        depth = depth.float().cpu().numpy()
        depth = np.where(np.isfinite(depth) & (depth > 0), depth, 0.0).astype(np.float32)
        return DepthEstimate(depth=depth, name=self.name)


# --------------------------------------------------------------------------------------------
# Intrinsics


def intrinsics_from_hfov(width: int, height: int, hfov_deg: float) -> np.ndarray:
    """`[3, 3]` K with square pixels, principal point at the image centre."""
    f = 0.5 * width / math.tan(math.radians(hfov_deg) / 2)
    return np.array([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]])


@dataclasses.dataclass
class FovPrior:
    """A fixed horizontal field of view.

    60 degrees is the middle of what photos are taken with: a 50 mm "normal" lens sees 40
    degrees, a phone's main camera (26 mm equivalent) 69, a 24 mm wide angle 74. Against that
    range the worst focal error is about 1.6x at the narrow end, 1.3x at the wide end. A focal
    error scales lateral and vertical offsets (x / z, height / z) but not depth, so left/right,
    above/below and front/behind keep their signs and only metric sizes and distances shrink or
    grow.
    """

    hfov_deg: float = 60.0
    name: str = "fov_prior"

    def estimate_intrinsics(self, image, image_path: str | None = None) -> IntrinsicsEstimate:
        w, h = _image_size(image, image_path)
        return IntrinsicsEstimate(
            K=intrinsics_from_hfov(w, h, self.hfov_deg), name=f"{self.name}:{self.hfov_deg:g}deg"
        )


def _exif_focal(pil: Image.Image) -> tuple[float | None, float | None]:
    """(FocalLengthIn35mmFilm, FocalLength) in mm from the image's EXIF, None when absent."""
    exif = pil.getexif()
    sub = exif.get_ifd(_EXIF_IFD) if exif else {}

    def get(tag):
        value = sub.get(tag, exif.get(tag) if exif else None)
        try:
            value = float(value)
        except (TypeError, ValueError, ZeroDivisionError):
            return None
        return value if math.isfinite(value) and value > 0 else None

    return get(_TAG_FOCAL_35MM), get(_TAG_FOCAL_LENGTH)


@dataclasses.dataclass
class ExifIntrinsics:
    """Focal length from EXIF, else a field-of-view prior.

    With `FocalLengthIn35mmFilm`: `fx = f35 / 36 mm * max(W, H)`, i.e. the 35 mm equivalent is
    taken along the image's long side (the convention of OpenSfM and COLMAP's EXIF reader;
    strictly it is defined on the diagonal, which differs by a few percent for 4:3 images).
    With only `FocalLength`, it needs the physical sensor width of the long side
    (`sensor_width_mm`): `fx = f / sensor_width * max(W, H)`. The principal point is the image
    centre and pixels are square.

    Attributes:
      sensor_width_mm: the long-side sensor width, for cameras known to the caller.
      fallback: used when EXIF gives nothing usable.
    """

    sensor_width_mm: float | None = None
    fallback: IntrinsicsEstimator = dataclasses.field(default_factory=FovPrior)
    name: str = "exif"

    def estimate_intrinsics(self, image, image_path: str | None = None) -> IntrinsicsEstimate:
        if isinstance(image, Image.Image):
            pil = image
            f35, f_mm = _exif_focal(pil)
        else:
            path = image if isinstance(image, str | os.PathLike) else image_path
            if path is None:
                return self.fallback.estimate_intrinsics(image, image_path)
            with Image.open(path) as pil:
                f35, f_mm = _exif_focal(pil)
        w, h = _image_size(image, image_path)
        long_side = max(w, h)
        if f35 is not None:
            f, name = f35 / FILM_35MM_WIDTH_MM * long_side, f"{self.name}:35mm"
        elif f_mm is not None and self.sensor_width_mm:
            f, name = f_mm / self.sensor_width_mm * long_side, f"{self.name}:focal+sensor"
        else:
            return self.fallback.estimate_intrinsics(image, image_path)
        K = np.array([[f, 0.0, w / 2], [0.0, f, h / 2], [0.0, 0.0, 1.0]])
        return IntrinsicsEstimate(K=K, name=name)


# --------------------------------------------------------------------------------------------
# Gravity


@dataclasses.dataclass
class LevelGravity:
    """Assumes a level camera (pitch = roll = 0): how most photos are taken, and the right
    prior when nothing else is known (horizon-levelled, eye-height shots)."""

    name: str = "level_prior"

    def estimate_gravity(self, image, image_path: str | None = None) -> GravityEstimate:
        return GravityEstimate(pitch=0.0, roll=0.0, name=self.name)


@dataclasses.dataclass
class FixedGravity:
    """A known tilt (radians), e.g. from a phone's IMU or a calibrated rig."""

    pitch: float
    roll: float
    name: str = "fixed"

    def estimate_gravity(self, image, image_path: str | None = None) -> GravityEstimate:
        return GravityEstimate(pitch=float(self.pitch), roll=float(self.roll), name=self.name)
