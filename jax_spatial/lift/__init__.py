"""Lifting objects from images into the gravity-aligned view frame.

`image_only` fits boxes to masked depth under jit; `estimators` supplies the depth, intrinsics
and gravity that a plain image lacks; `synthetic` renders frames with known boxes for tests and
benchmarks.
"""

from jax_spatial.lift.image_only import (
    LiftConfig,
    LiftedObjects,
    lift_frames,
    lift_objects,
    pad_masks,
    to_frame_observation,
)

__all__ = [
    "LiftConfig",
    "LiftedObjects",
    "lift_frames",
    "lift_objects",
    "pad_masks",
    "to_frame_observation",
]
