"""Python config files (`get_config(arg)`), as in big_vision, and their mapping to run settings.

A config file is a Python module with `get_config(arg: str | None) -> ml_collections.ConfigDict`.
On the command line it is named `path/to/file.py` or `path/to/file.py:arg`; `arg` is a
comma-separated `key=value` list the file parses itself (see `parse_arg`).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import pathlib

import ml_collections

from jax_spatial.engine import GenerateConfig
from jax_spatial.observe import ObserveConfig
from jax_spatial.qa.select import QuotaConfig
from jax_spatial.relations.single_view import RelationConfig


def parse_arg(arg: str | None, **defaults) -> ml_collections.ConfigDict:
    """`"source=kitti,max_scenes=4"` -> ConfigDict, values cast to the defaults' types."""
    out = ml_collections.ConfigDict(defaults)
    if not arg:
        return out
    for item in arg.split(","):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"config arg {item!r} is not key=value")
        default = defaults.get(key)
        if isinstance(default, bool):
            out[key] = value.lower() in ("1", "true", "yes")
        elif isinstance(default, int):
            out[key] = int(value)
        elif isinstance(default, float):
            out[key] = float(value)
        else:
            out[key] = value
    return out


def load_config(spec: str) -> ml_collections.ConfigDict:
    """Loads `file.py[:arg]` and returns its `get_config(arg)`."""
    path, _, arg = spec.partition(":")
    file = pathlib.Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    module_spec = importlib.util.spec_from_file_location(f"jax_spatial_config_{file.stem}", file)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise AttributeError(f"{path} has no get_config(arg)")
    return module.get_config(arg or None)


def _dataclass_from(cls, values):
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - fields
    if unknown:
        raise ValueError(f"unknown {cls.__name__} settings: {sorted(unknown)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def generate_config_from(config: ml_collections.ConfigDict) -> GenerateConfig:
    """Builds `GenerateConfig` from a ConfigDict with optional `observe`, `relations`, `quotas`."""
    values = config.to_dict()
    nested = {
        "observe": ObserveConfig,
        "relations": RelationConfig,
        "quotas": QuotaConfig,
    }
    kwargs = {}
    for key, cls in nested.items():
        if key in values:
            kwargs[key] = _dataclass_from(cls, values.pop(key))
    top = {f.name for f in dataclasses.fields(GenerateConfig)}
    kwargs.update({k: v for k, v in values.items() if k in top})
    return GenerateConfig(**kwargs)
