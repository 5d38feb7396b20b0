"""Cameras, frames and oriented boxes: batch-agnostic, jit-safe geometry."""

from jax_spatial.geometry import boxes, cameras, frames

__all__ = ["boxes", "cameras", "frames"]
