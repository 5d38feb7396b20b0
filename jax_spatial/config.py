"""Python config files (`get_config(arg)`), as in big_vision, and their mapping to run settings.

A config file is a Python module with `get_config(arg: str | None) -> ml_collections.ConfigDict`.
On the command line it is named `path/to/file.py` or `path/to/file.py:arg`; `arg` is a
comma-separated `key=value` list the file parses itself (see `parse_arg`).

Every key is checked: a key that no setting has (a typo) is an error that names the known
ones, never silently ignored, because an ignored margin or quota changes a dataset without
saying so. Source options given as `key=value` strings (`--set`, a builder's config) are read
by `parse_options`, typed after the source's defaults.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import importlib.util
import pathlib
from collections.abc import Iterable, Mapping

import ml_collections

from jax_spatial.engine import GenerateConfig
from jax_spatial.errors import UsageError, UserError
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
            raise UsageError(f"config arg {item!r} is not key=value")
        if defaults and key not in defaults:
            raise UsageError(_unknown("config arg", key, defaults))
        out[key] = _typed(key, value, defaults.get(key), "config arg")
    return out


def _unknown(what: str, key: str, known: Iterable[str], prefix: str = "") -> str:
    """The message for a key no setting has, with the closest known key as a hint."""
    known = sorted(known)
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown {what} {prefix + key!r}{hint}; known: {', '.join(known) or 'none'}"


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def parse_value(text: str):
    """A `key=value` value as Python: bools, None, numbers, lists and tuples; else the text.

    `"true"` -> True, `"none"` -> None, `"3"` -> 3, `"(525, 525, 319.5, 239.5)"` -> a tuple,
    `"depth"` -> "depth" (anything that is not a literal stays a string).
    """
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def _typed(key: str, value: str, default, what: str):
    """`value` cast to `default`'s type (bool, int, float, str); `parse_value` without one."""
    try:
        if isinstance(default, bool):
            low = value.strip().lower()
            if low not in _TRUE + _FALSE:
                raise ValueError(f"expected true or false, got {value!r}")
            return low in _TRUE
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except ValueError as error:
        raise UsageError(f"{what} {key}={value}: {error}") from None
    if isinstance(default, str):
        return value
    return parse_value(value)


def parse_options(
    items: Iterable[str], defaults: Mapping[str, object] | None = None, what: str = "option"
) -> dict[str, object]:
    """`["depth_dir=depth", "hfov_deg=55"]` -> `{"depth_dir": "depth", "hfov_deg": 55.0}`.

    The reader of `--set key=value` (repeatable; later ones win) and of string option lists in
    builder configs. With `defaults` (name -> default value, e.g. `sources.source_options`),
    a name not among them is an error naming the known ones, and each value is cast to its
    default's type; a default of None leaves the type to `parse_value`.

    Raises:
      UsageError: an item is not `key=value`, names an unknown option, or has a value its
        default's type cannot hold.
    """
    out: dict[str, object] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"{what} {item!r} is not key=value")
        if defaults is not None and key not in defaults:
            raise UsageError(_unknown(what, key, defaults))
        out[key] = _typed(key, value, (defaults or {}).get(key), what)
    return out


def load_config(spec: str) -> ml_collections.ConfigDict:
    """Loads `file.py[:arg]` and returns its `get_config(arg)`."""
    path, _, arg = spec.partition(":")
    file = pathlib.Path(path)
    if not file.is_file():
        what = "is a folder, not a config file" if file.is_dir() else "not found"
        raise UserError(f"config file {path} {what}")
    module_spec = importlib.util.spec_from_file_location(f"jax_spatial_config_{file.stem}", file)
    if module_spec is None or module_spec.loader is None:
        raise UserError(f"config file {path} is not a Python file")
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except SyntaxError as error:
        raise UserError(f"config file {path}:{error.lineno}: {error.msg}") from None
    except Exception as error:  # noqa: BLE001 - any failure of a user's file is theirs to fix
        raise UserError(f"config file {path} failed: {type(error).__name__}: {error}") from None
    if not callable(getattr(module, "get_config", None)):
        raise UserError(f"config file {path} has no get_config(arg)")
    try:
        config = module.get_config(arg or None)
    except UserError:
        raise
    except Exception as error:  # noqa: BLE001
        raise UserError(
            f"config file {path}: get_config({arg!r}) failed: {type(error).__name__}: {error}"
        ) from None
    if not isinstance(config, ml_collections.ConfigDict | dict):
        raise UserError(f"config file {path}: get_config returned {type(config).__name__}")
    return ml_collections.ConfigDict(config) if isinstance(config, dict) else config


# Keys of a generate config that are not `GenerateConfig` fields: the command line reads them.
CLI_KEYS = ("source", "root", "options", "lift")


def _dataclass_from(cls, values, where: str):
    if not isinstance(values, Mapping):
        raise UserError(f"config key {where} must be a dict, got {type(values).__name__}")
    fields = {f.name for f in dataclasses.fields(cls)}
    for key in values:
        if key not in fields:
            raise UserError(_unknown("config key", key, fields, prefix=f"{where}."))
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def generate_config_from(config: ml_collections.ConfigDict) -> GenerateConfig:
    """Builds `GenerateConfig` from a ConfigDict with optional `observe`, `relations`, `quotas`.

    Raises:
      UserError: a key (top level or nested) that no setting has; `CLI_KEYS` are allowed at
        the top level and left to the caller.
    """
    values = config.to_dict()
    nested = {
        "observe": ObserveConfig,
        "relations": RelationConfig,
        "quotas": QuotaConfig,
    }
    kwargs = {}
    for key, cls in nested.items():
        if key in values:
            kwargs[key] = _dataclass_from(cls, values.pop(key), key)
    top = {f.name for f in dataclasses.fields(GenerateConfig)}
    for key in values:
        if key not in top and key not in CLI_KEYS:
            raise UserError(_unknown("config key", key, (top - set(nested)) | set(CLI_KEYS)))
    kwargs.update({k: v for k, v in values.items() if k in top})
    return GenerateConfig(**kwargs)
