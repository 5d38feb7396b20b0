"""SUN RGB-D lifted like a plain image: projected-point depth and 2D boxes, 3D boxes held out.

Registered as `sunrgbd_lifted`, a source of its own rather than a mode of `mmdet3d`: it reads
the scene through `mmdet3d.Mmdet3dInfosSource` (frame K and pose from `depth2img`, the 2D
boxes, the point cloud) and then throws away what an image-only pipeline would not have. Keeping
it separate leaves the `mmdet3d` source a faithful reader and makes this one an honest
benchmark of image-only lifting on real data with 3D ground truth.

Per scene:

1. **Depth.** SUN RGB-D's mmdetection3d infos ship the depth as a point cloud in upright depth
   coordinates (the world), not as a depth image. `project_depth` moves the points into the
   camera, projects them with K and keeps the nearest point per pixel (a z-buffer). The cloud
   is subsampled (50,000 points for a 730x530 image: about one pixel in eight), so the map is
   sparse; `dilate_px` (default 1) fills each empty pixel with the nearest depth in its
   `(2 d + 1)^2` neighbourhood, the z-buffer rule again, so the lifting's mask grid (stride 3
   on this image size) still finds depth on most of its cells while no surface moves by more
   than a pixel.
2. **Objects.** Each object's annotated `box3d` moves to `extra["box3d_annotated"]` and is set
   to None; its 2D box (`boxes2d`, from the info's `bbox`) is all the lifting gets.
3. **Lift** with `lift_scene` (option `lift=False` returns the scene before this step, with
   depth, for callers that lift themselves). The frame's gravity comes from the pose (the
   dataset's Rtilt), as an IMU would give it, and the boxes land in the upright world, so
   `box3d` and `extra["box3d_annotated"]` compare directly.

`scene.meta["estimators"]` is `{"depth": "projected_points", "intrinsics": "depth2img",
"gravity": "rtilt"}`.

Options: those of `mmdet3d` (`infos`, ...), plus `dilate_px`, `lift`, `lift_config`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jax_spatial.lift.image_only import LiftConfig
from jax_spatial.lift.scene_lift import lift_scene
from jax_spatial.scene import Frame, Scene, SceneSkip
from jax_spatial.sources import Source, register
from jax_spatial.sources.mmdet3d import Mmdet3dInfosSource

# Closer than this a point is behind or on the lens: Kinect-class sensors see nothing nearer
# than ~0.4 m, so 0.1 m only removes numerical junk.
_MIN_DEPTH_M = 0.1


def project_depth(points, world_from_cam, K, width: int, height: int, dilate_px: int = 1):
    """Sparse depth image from a world-frame point cloud (nearest point per pixel).

    Args:
      points: `[P, 3]` world-frame points.
      world_from_cam: `[4, 4]` camera pose.
      K: `[3, 3]` intrinsics.
      width, height: image size.
      dilate_px: fill empty pixels from the nearest depth within this many pixels (0: none).

    Returns:
      `[H, W]` float32 camera-z depth in metres, 0 where no point lands.
    """
    points = np.asarray(points, np.float64).reshape(-1, 3)
    cam_from_world = np.linalg.inv(np.asarray(world_from_cam, np.float64))
    cam = points @ cam_from_world[:3, :3].T + cam_from_world[:3, 3]
    z = cam[:, 2]
    front = np.isfinite(z) & (z > _MIN_DEPTH_M)
    cam, z = cam[front], z[front]
    px = cam @ np.asarray(K, np.float64).T
    u = np.floor(px[:, 0] / z).astype(np.int64)
    v = np.floor(px[:, 1] / z).astype(np.int64)
    inside = (u >= 0) & (u < width) & (v >= 0) & (v < height)
    flat = np.full(height * width, np.inf)
    # minimum.at resolves pixels hit by several points to the nearest one (the z-buffer).
    np.minimum.at(flat, v[inside] * width + u[inside], z[inside])
    depth = flat.reshape(height, width)
    if dilate_px > 0:
        padded = np.pad(depth, dilate_px, constant_values=np.inf)
        nearest = depth.copy()
        for dy in range(-dilate_px, dilate_px + 1):
            for dx in range(-dilate_px, dilate_px + 1):
                shifted = padded[
                    dilate_px + dy : dilate_px + dy + height,
                    dilate_px + dx : dilate_px + dx + width,
                ]
                nearest = np.minimum(nearest, shifted)
        depth = np.where(np.isfinite(depth), depth, nearest)
    return np.where(np.isfinite(depth), depth, 0.0).astype(np.float32)


@register("sunrgbd_lifted")
class SunRgbdLiftedSource(Source):
    """SUN RGB-D mmdetection3d infos, lifted from projected-point depth and 2D boxes."""

    # Handed on to `Mmdet3dInfosSource`.
    OPTIONS = (("infos", None), ("dataset", "sunrgbd"), ("load_points", True),
               ("allow_no_frames", False))  # fmt: skip

    def __init__(
        self,
        root: str,
        dilate_px: int = 1,
        lift: bool = True,
        lift_config: LiftConfig | None = None,
        **options,
    ):
        options.setdefault("dataset", "sunrgbd")
        super().__init__(root, dilate_px=dilate_px, lift=lift, **options)
        self.inner = Mmdet3dInfosSource(root, **options)
        if self.inner.dataset != "sunrgbd":
            raise ValueError(f"sunrgbd_lifted reads SUN RGB-D infos, got {self.inner.dataset}")
        self.dilate_px = int(dilate_px)
        self.lift = lift
        self.lift_config = lift_config or LiftConfig()

    def scene_ids(self) -> list[str]:
        return self.inner.scene_ids()

    def load(self, scene_id: str) -> Scene:
        scene = self.inner.load(scene_id)
        if scene.points is None or len(scene.points) == 0:
            raise SceneSkip(f"sunrgbd {scene_id}: no point cloud to make depth from")
        frames: list[Frame] = []
        for frame in scene.frames:
            depth = project_depth(
                scene.points, frame.world_from_cam, frame.K, frame.width, frame.height,
                self.dilate_px,
            )  # fmt: skip
            frames.append(dataclasses.replace(frame, depth=depth))
        objects = []
        for obj in scene.objects:
            extra = dict(obj.extra)
            if obj.box3d is not None:
                extra["box3d_annotated"] = obj.box3d
            objects.append(dataclasses.replace(obj, box3d=None, extra=extra))
        meta = dict(scene.meta)
        meta["estimators"] = {
            "depth": "projected_points",
            "intrinsics": "depth2img",
            "gravity": "rtilt",
        }
        scene = dataclasses.replace(
            scene, source=self.name, frames=frames, objects=objects, meta=meta
        )
        return lift_scene(scene, self.lift_config) if self.lift else scene


__all__ = ["SunRgbdLiftedSource", "project_depth"]
