"""Scene sources: each reads one dataset in its native layout and yields `Scene`s.

A source is a class registered under a name, built from a root folder plus options, that lists
its scene ids and loads one scene at a time. Loading one id at a time lets a run shard the ids
across processes (`ids[process_index::process_count]`), resume, and skip a bad scene (a
`SceneSkip` or any exception from `load`) without losing the rest.
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Callable

from jax_spatial.scene import Scene, SceneSkip

_REGISTRY: dict[str, type[Source]] = {}
# Modules that register sources on import, by source name, so `get_source` can import lazily.
_MODULES = {
    "kitti": "jax_spatial.sources.kitti",
    "scannet": "jax_spatial.sources.scannet",
    "mmdet3d": "jax_spatial.sources.mmdet3d",
    "procedural": "jax_spatial.sources.procedural",
    "coco": "jax_spatial.sources.coco",
    "visual_genome": "jax_spatial.sources.visual_genome",
    "rgbd": "jax_spatial.sources.rgbd",
    "sunrgbd_lifted": "jax_spatial.sources.sunrgbd",
}


class Source(abc.ABC):
    """A dataset reader. Subclasses set `name` and implement `scene_ids` and `load`."""

    name: str = ""

    def __init__(self, root: str, **options):
        self.root = root
        self.options = options

    @abc.abstractmethod
    def scene_ids(self) -> list[str]:
        """All scene ids under `root`, sorted so every process sees the same order."""

    @abc.abstractmethod
    def load(self, scene_id: str) -> Scene:
        """Reads one scene. Raises `SceneSkip` (or any error) with a clear reason when it cannot."""


def register(name: str) -> Callable[[type[Source]], type[Source]]:
    """Class decorator: `@register("kitti") class KittiSource(Source): ...`."""

    def wrap(cls: type[Source]) -> type[Source]:
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def get_source(name: str, root: str, **options) -> Source:
    """Builds the source registered as `name` for the dataset at `root`."""
    if name not in _REGISTRY and name in _MODULES:
        importlib.import_module(_MODULES[name])
    if name not in _REGISTRY:
        known = sorted(set(_REGISTRY) | set(_MODULES))
        raise KeyError(f"unknown source {name!r}; known sources: {', '.join(known)}")
    return _REGISTRY[name](root, **options)


def available_sources() -> list[str]:
    return sorted(set(_REGISTRY) | set(_MODULES))


__all__ = ["Scene", "SceneSkip", "Source", "available_sources", "get_source", "register"]
