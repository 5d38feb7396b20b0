"""The host-side scene model every source yields: ragged, numpy, one per scene.

A `Scene` holds frames and objects in the source's own `world` frame, converted by the source
so that world z points up (against gravity). Objects carry their 3D oriented box in that world
frame where the dataset annotates one, and optionally per-frame annotated 2D boxes. Frames carry
the encoded image (bytes or a path), intrinsics, the camera-to-world pose, and optional depth.

Multi-frame by design: a ScanNet scene has many posed frames that see the same objects, which
is what the multi-view tasks need; a KITTI frame is a scene of one frame.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np


@dataclasses.dataclass(frozen=True)
class Box3D:
    """An oriented box in the scene's world frame (z up).

    Attributes:
      centre: `[3]` metres, the box's geometric centre.
      extent: `[3]` full side lengths along the box's own x, y, z axes, metres.
      rotation: `[3, 3]` world_from_box.
    """

    centre: np.ndarray
    extent: np.ndarray
    rotation: np.ndarray

    def __post_init__(self):
        for name, shape in (("centre", (3,)), ("extent", (3,)), ("rotation", (3, 3))):
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.shape != shape:
                raise ValueError(f"Box3D.{name} must have shape {shape}, got {value.shape}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"Box3D.{name} has non-finite values: {value.tolist()}")
            object.__setattr__(self, name, value)
        if np.any(self.extent <= 0):
            raise ValueError(f"Box3D.extent must be positive, got {self.extent.tolist()}")


@dataclasses.dataclass
class SceneObject:
    """One annotated object.

    Attributes:
      index: position in the source's annotation order (the line of a KITTI label file, the
        entry of an mmdetection3d `instances` list). QA `meta` reports it so answers can be
        traced back to the annotation.
      category: the dataset's class name, lower case with spaces ("night stand").
      caption: a referring phrase when the dataset has one; else None and the category is used.
      box3d: the 3D box in the world frame, when annotated.
      boxes2d: frame_id -> `[4]` annotated pixel box `(x1, y1, x2, y2)`, where the dataset
        gives one (KITTI labels, mmdetection3d `cam_instances`).
      frame_index: frame_id -> index in that frame's own annotation list when it differs from
        `index` (nuScenes keeps one list per camera).
      masks: frame_id -> instance mask in that frame: a COCO RLE dict (`{"size": [H, W],
        "counts": ...}`, compressed string or uncompressed list) or a polygon list
        (`[[x1, y1, x2, y2, ...], ...]` in pixels). Decoded by `jax_spatial.masks`.
      attributes: free-form attributes (colour, material, ...).
      extra: source-specific fields kept for debugging (truncation, occlusion level, ...).
    """

    index: int
    category: str
    box3d: Box3D | None = None
    caption: str | None = None
    boxes2d: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    frame_index: dict[str, int] = dataclasses.field(default_factory=dict)
    masks: dict[str, object] = dataclasses.field(default_factory=dict)
    attributes: tuple[str, ...] = ()
    extra: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Frame:
    """One image of a scene.

    Attributes:
      frame_id: unique within the scene.
      width, height: image size in pixels.
      K: `[3, 3]` OpenCV intrinsics.
      world_from_cam: `[4, 4]` camera-to-world pose in the z-up world frame, a rigid motion
        (a reflection or a scaled pose raises `SceneSkip`). Image-only sources,
        which know no world, use the view frame as their world: the pose is then the camera's
        tilt alone (`frames.view_from_cam_rotation(pitch, roll)`), from a gravity estimate.
      image_path: where the encoded image lives (absolute, or relative to `Scene.root`).
      image_bytes: the encoded image itself, when it is not a file.
      depth: `[H, W]` float32 camera-z depth in metres, 0 where unknown (optional).
      ignore_boxes: `[M, 4]` pixel regions the annotators skipped (KITTI DontCare). Objects can
        hide there unlabelled, so a frame with any cannot be counted exhaustively.
      exhaustive: every object of the annotated categories that the image shows is annotated;
        counting questions are asked only on such frames.
    """

    frame_id: str
    width: int
    height: int
    K: np.ndarray
    world_from_cam: np.ndarray
    image_path: str | None = None
    image_bytes: bytes | None = None
    depth: np.ndarray | None = None
    ignore_boxes: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 4)))
    exhaustive: bool = True

    def __post_init__(self):
        self.K = np.asarray(self.K, dtype=np.float64)
        self.world_from_cam = np.asarray(self.world_from_cam, dtype=np.float64)
        if self.K.shape != (3, 3):
            raise ValueError(f"Frame {self.frame_id}: K must be 3x3, got {self.K.shape}")
        if self.world_from_cam.shape != (4, 4):
            raise ValueError(
                f"Frame {self.frame_id}: world_from_cam must be 4x4, "
                f"got {self.world_from_cam.shape}"
            )
        if not (np.all(np.isfinite(self.K)) and np.all(np.isfinite(self.world_from_cam))):
            raise ValueError(f"Frame {self.frame_id}: non-finite intrinsics or pose")
        # Sources check their poses and name the file; this catches any that does not. A
        # mirrored pose swaps left and right in every answer, a scaled one every distance.
        problem = rigid_problem(self.world_from_cam)
        if problem is not None:
            raise SceneSkip(
                f"Frame {self.frame_id}: world_from_cam is not a rigid pose: {problem}",
                field="world_from_cam",
            )
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"Frame {self.frame_id}: bad image size {self.width}x{self.height}")
        self.ignore_boxes = np.asarray(self.ignore_boxes, dtype=np.float64).reshape(-1, 4)


@dataclasses.dataclass
class Scene:
    """A scene as a source yields it.

    Attributes:
      scene_id: unique within the source.
      source: the source's registry name ("kitti", "scannet", "mmdet3d", ...).
      frames: the scene's images.
      objects: the annotated objects, in annotation order.
      points: `[P, 3]` world-frame points (a scan or LiDAR sweep) for occlusion tests, optional.
      root: folder that relative `image_path`s are resolved against.
      meta: source-specific facts kept for provenance.
    """

    scene_id: str
    source: str
    frames: list[Frame]
    objects: list[SceneObject]
    points: np.ndarray | None = None
    root: str | None = None
    meta: Mapping = dataclasses.field(default_factory=dict)

    def frame(self, frame_id: str) -> Frame:
        for frame in self.frames:
            if frame.frame_id == frame_id:
                return frame
        raise KeyError(f"scene {self.scene_id} has no frame {frame_id!r}")


class SceneSkip(Exception):
    """Raised by sources and stages for one bad scene: the run logs it, counts it and goes on.

    `file` and `field` (optional) name the input at fault, e.g. an info file and
    `data_list[3].images.CAM2`, or a label file and `line 7`; the run's summary lists them
    with the reason. The message should name them too: it is what a person reads.
    """

    def __init__(self, message: str = "", *, file: str | None = None, field: str | None = None):
        super().__init__(message)
        self.file = None if file is None else str(file)
        self.field = field


# Largest deviation of a pose's rotation block from orthonormal (|R^T R - I|, entrywise) that
# still counts as rigid: poses stored in float32 are orthonormal to about 1e-6, while a pose
# scaled by 0.1% or sheared by 0.06 degrees is already beyond it.
RIGID_TOLERANCE = 1e-3


def rigid_problem(transform) -> str | None:
    """Why a `[4, 4]` (or `[3, 4]`) transform is not a rigid motion, or None when it is one.

    A rigid motion is a proper rotation (orthonormal, determinant +1: a reflection would
    mirror left and right) plus a translation, with bottom row `0 0 0 1` when given.
    """
    arr = np.asarray(transform, dtype=np.float64)
    if arr.ndim != 2 or arr.shape not in ((3, 4), (4, 4)):
        return f"shape {arr.shape} is not 3x4 or 4x4"
    if not np.all(np.isfinite(arr)):
        return "non-finite entries"
    if arr.shape == (4, 4) and np.abs(arr[3] - [0.0, 0.0, 0.0, 1.0]).max() > RIGID_TOLERANCE:
        return f"bottom row {np.round(arr[3], 6).tolist()} is not [0, 0, 0, 1]"
    rot = arr[:3, :3]
    det = float(np.linalg.det(rot))
    if det < 0:
        return f"a reflection (rotation determinant {det:.4f})"
    error = float(np.abs(rot.T @ rot - np.eye(3)).max())
    if error > RIGID_TOLERANCE:
        return f"not a rotation (|R^T R - I| = {error:.2e}, determinant {det:.4f})"
    return None


def check_rigid(transform, file, field: str) -> np.ndarray:
    """`transform` as a `[4, 4]` float64 rigid motion; raises `SceneSkip` naming the input.

    Args:
      transform: `[4, 4]` or `[3, 4]`.
      file, field: where it came from (`calib/000008.txt`, `R0_rect @ Tr_velo_to_cam`).
    """
    problem = rigid_problem(transform)
    if problem is not None:
        raise SceneSkip(
            f"{file}: {field} is not a rigid pose: {problem}", file=str(file), field=field
        )
    arr = np.asarray(transform, dtype=np.float64)
    out = np.eye(4)
    out[: arr.shape[0], :] = arr
    return out


def box_problem(centre, extent, rotation=None) -> str | None:
    """Why an annotated 3D box cannot be used, or None: a non-finite value, or a side that is
    zero or negative."""
    centre = np.asarray(centre, dtype=np.float64).reshape(-1)
    extent = np.asarray(extent, dtype=np.float64).reshape(-1)
    values = [centre, extent] + ([] if rotation is None else [np.asarray(rotation, np.float64)])
    if not all(np.all(np.isfinite(v)) for v in values):
        return f"non-finite box (centre {centre.tolist()}, size {extent.tolist()})"
    if np.any(extent <= 0):
        return f"size {extent.tolist()} has a zero or negative side"
    return None
