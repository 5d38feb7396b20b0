"""Scene sources: each reads one dataset in its native layout and yields `Scene`s.

A source is a class registered under a name, built from a root folder plus options, that lists
its scene ids and loads one scene at a time. Loading one id at a time lets a run shard the ids
across processes (`ids[process_index::process_count]`), resume, and skip a bad scene (a
`SceneSkip` or any exception from `load`) without losing the rest.

Options are checked when a source is built: a name the source does not take is an error that
lists the ones it does (`source_options`: the keyword parameters of its `__init__`, plus the
names a source reading `**options` declares in `OPTIONS`). Entries of an index file that
cannot become a scene at all (a non-dict item, an entry with no id) are appended to
`Source.skipped_entries` as `{"scene_id", "file", "field", "reason"}`; the run reports them
with the skipped scenes.
"""

from __future__ import annotations

import abc
import importlib
import inspect
from collections.abc import Callable

from jax_spatial.errors import UsageError
from jax_spatial.scene import Scene, SceneSkip

_REGISTRY: dict[str, type[Source]] = {}
# Modules that register sources on import, by source name, so `get_source` can import lazily.
_MODULES = {
    "kitti": "jax_spatial.sources.kitti",
    "scannet": "jax_spatial.sources.scannet",
    "mmdet3d": "jax_spatial.sources.mmdet3d",
    "procedural": "jax_spatial.sources.procedural",
    "procedural_clips": "jax_spatial.sources.procedural_clips",
    "rotation_pairs": "jax_spatial.sources.mesh_folder",
    "coco": "jax_spatial.sources.coco",
    "visual_genome": "jax_spatial.sources.visual_genome",
    "rgbd": "jax_spatial.sources.rgbd",
    "sunrgbd_lifted": "jax_spatial.sources.sunrgbd",
    "street": "jax_spatial.sources.street",
}


class Source(abc.ABC):
    """A dataset reader. Subclasses set `name` and implement `scene_ids` and `load`."""

    name: str = ""
    # Option names read from `**options` rather than named in `__init__` (see `source_options`).
    OPTIONS: tuple[str, ...] = ()

    def __init__(self, root: str, **options):
        self.root = root
        self.options = options
        self.skipped_entries: list[dict] = []

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


class UnknownSourceError(UsageError, KeyError):
    """No source is registered under the name (a `KeyError` too, for older callers)."""

    def __str__(self) -> str:
        # KeyError quotes its message; this one is read by people.
        return str(self.args[0]) if self.args else ""


class UnknownOptionError(UsageError, TypeError):
    """A source was given an option it does not take (a `TypeError`, as for a bad keyword)."""


def source_class(name: str) -> type[Source]:
    """The class registered as `name` (imported on first use)."""
    if name not in _REGISTRY and name in _MODULES:
        importlib.import_module(_MODULES[name])
    if name not in _REGISTRY:
        known = sorted(set(_REGISTRY) | set(_MODULES))
        raise UnknownSourceError(f"unknown source {name!r}; known sources: {', '.join(known)}")
    return _REGISTRY[name]


def source_options(name: str) -> dict[str, object]:
    """Option name -> default (None when it has none) of the source registered as `name`.

    The keyword parameters of the class's `__init__` (and of the classes it hands `**options`
    to, through their `OPTIONS`), which is what `--set key=value` may name.
    """
    cls = source_class(name)
    out: dict[str, object] = {}
    for klass in reversed(cls.__mro__):
        init = klass.__dict__.get("__init__")
        if init is not None and issubclass(klass, Source):
            for param in list(inspect.signature(init).parameters.values())[2:]:
                if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
                    default = None if param.default is param.empty else param.default
                    out[param.name] = default
        for option in klass.__dict__.get("OPTIONS", ()):
            if isinstance(option, tuple):
                out[option[0]] = option[1]
            else:
                out.setdefault(option, None)
    return out


def get_source(name: str, root: str, **options) -> Source:
    """Builds the source registered as `name` for the dataset at `root`.

    Raises:
      UnknownSourceError: no such source.
      UnknownOptionError: an option the source does not take (the message lists its options).
    """
    cls = source_class(name)
    known = source_options(name)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise UnknownOptionError(
            f"source {name} has no option {', '.join(map(repr, unknown))}; "
            f"its options: {', '.join(sorted(known)) or 'none'}"
        )
    return cls(root, **options)


def available_sources() -> list[str]:
    return sorted(set(_REGISTRY) | set(_MODULES))


__all__ = [
    "Scene",
    "SceneSkip",
    "Source",
    "UnknownOptionError",
    "UnknownSourceError",
    "available_sources",
    "get_source",
    "register",
    "source_class",
    "source_options",
]
