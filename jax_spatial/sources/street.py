"""Synthetic street frames: many cars, pedestrians and cyclists seen by a KITTI-like camera.

A dense street is the case where naming objects by category alone fails: every frame holds
several cars and several pedestrians. Boxes only (the image is blank), so it measures what
selection can ask, not what a picture shows; `bench/references.py` and the tests use it.

Layout per scene (seeded by the scene number): a camera 1.65 m above the road looking along
it (world x right, y along the road, z up; KITTI's 1242 x 375 image and 721 px focal length),
cars parked and driving in four lanes from 5 to 80 m ahead, pedestrians on both pavements,
a few cyclists, vans and trucks. Some objects are so far away their boxes are under 4 px:
they may be seen but are not asked about (`observe.Glimpses`), which makes the frame's
counts non-exhaustive, as on real street frames.
"""

from __future__ import annotations

import io

import numpy as np

from jax_spatial.geometry import frames as frames_lib
from jax_spatial.scene import Box3D, Frame, Scene, SceneObject
from jax_spatial.sources import Source, register

# (category, extent (length, width, height) metres, share of the objects)
_KINDS = (
    ("car", (4.2, 1.8, 1.5), 0.5),
    ("pedestrian", (0.6, 0.6, 1.75), 0.3),
    ("cyclist", (1.8, 0.6, 1.7), 0.1),
    ("van", (5.0, 2.0, 2.2), 0.06),
    ("truck", (8.0, 2.5, 3.2), 0.04),
)
_LANES_X = (-5.25, -1.75, 1.75, 5.25)
_PAVEMENT_X = (-8.5, 8.5)
WIDTH, HEIGHT, FOCAL = 1242, 375, 721.5


def _blank_png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (WIDTH, HEIGHT), (110, 110, 110)).save(buffer, format="PNG")
    return buffer.getvalue()


@register("street")
class StreetSource(Source):
    """`count` synthetic street scenes of one frame each, `objects` objects per scene."""

    def __init__(self, root: str | None = None, count: int = 8, objects: int = 40, seed: int = 0):
        super().__init__(root=root, count=count, objects=objects, seed=seed)
        self.count, self.objects, self.seed = int(count), int(objects), int(seed)
        self._png = None

    def scene_ids(self) -> list[str]:
        return [f"street_{i:03d}" for i in range(self.count)]

    def load(self, scene_id: str) -> Scene:
        number = int(scene_id.rsplit("_", 1)[1])
        rng = np.random.default_rng([self.seed, number])
        shares = np.array([k[2] for k in _KINDS])
        objects = []
        for index in range(self.objects):
            category, size, _ = _KINDS[int(rng.choice(len(_KINDS), p=shares / shares.sum()))]
            extent = np.asarray(size) * rng.uniform(0.92, 1.08, 3)
            if category == "pedestrian":
                x = rng.choice(_PAVEMENT_X) + rng.uniform(-1.2, 1.2)
                yaw = rng.uniform(-np.pi, np.pi)
            else:
                x = rng.choice(_LANES_X) + rng.uniform(-0.3, 0.3)
                yaw = np.pi / 2 + rng.choice([0.0, np.pi]) + rng.uniform(-0.08, 0.08)
            # Mostly within 50 m; a tail out to 160 m gives boxes too small to ask about.
            y = rng.uniform(5.0, 50.0) if rng.random() < 0.85 else rng.uniform(80.0, 160.0)
            centre = np.array([x, y, extent[2] / 2])
            objects.append(
                SceneObject(
                    index=index,
                    category=category,
                    box3d=Box3D(centre, extent, np.asarray(frames_lib.rotation_z(yaw))),
                )
            )
        K = np.array([[FOCAL, 0, WIDTH / 2], [0, FOCAL, HEIGHT / 2], [0, 0, 1.0]])
        # OpenCV camera (x right, y down, z forward) in the z-up world: x -> x, y -> -z, z -> y.
        world_from_cam = np.eye(4)
        world_from_cam[:3, :3] = [[1, 0, 0], [0, 0, 1], [0, -1, 0]]
        world_from_cam[:3, 3] = [0.0, 0.0, 1.65]
        if self._png is None:
            self._png = _blank_png()
        frame = Frame("cam", WIDTH, HEIGHT, K, world_from_cam, image_bytes=self._png)
        return Scene(scene_id, self.name, [frame], objects)


__all__ = ["StreetSource"]
