"""Lifting objects from images into the gravity-aligned view frame.

`image_only` fits boxes to masked depth under jit; `estimators` supplies the depth, intrinsics
and gravity that a plain image lacks; `synthetic` renders frames with known boxes for tests and
benchmarks; `scene_lift` gives every mask- or box-only object of a `Scene` a 3D box.
"""

from jax_spatial.lift.image_only import (
    LiftConfig,
    LiftedObjects,
    lift_frames,
    lift_objects,
    pad_masks,
    to_frame_observation,
)
from jax_spatial.lift.scene_lift import build_estimators, lift_scene, lifted

__all__ = [
    "LiftConfig",
    "build_estimators",
    "lift_scene",
    "lifted",
    "LiftedObjects",
    "lift_frames",
    "lift_objects",
    "pad_masks",
    "to_frame_observation",
]
