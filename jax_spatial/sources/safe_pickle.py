"""Reading untrusted pickles (mmdetection3d "infos" files) without running their code.

`pickle.load` calls whatever global a file names, so a downloaded `.pkl` can run `os.system`.
Info files only ever hold dicts, lists, strings, numbers and numpy arrays or scalars, so
`load_pickle` uses an unpickler whose `find_class` admits exactly the globals those need:

* numpy array, dtype and scalar reconstruction (`numpy.core.multiarray._reconstruct`,
  `numpy.ndarray`, `numpy.dtype`, `numpy.core.multiarray.scalar`, the protocol-5
  `numpy.core.numeric._frombuffer`), under both the numpy 1 (`numpy.core`) and numpy 2
  (`numpy._core`) module names so files written by either version load under either;
* `_codecs.encode`, which protocol-2 pickles use to rebuild `bytes` (array buffers);
* inert builtins that construct plain values (`set`, `frozenset`, `complex`, `slice`, ...) and
  `collections.OrderedDict` / `defaultdict` (mmengine dumps them).

Anything else (`os.system`, `builtins.eval`, `builtins.getattr`, `subprocess.*`, a project's
own classes, ...) raises `UnsafePickleError`, which is both a `pickle.UnpicklingError` and a
`SceneSkip`, and names the refused global.
"""

from __future__ import annotations

import importlib
import io
import os
import pickle

from jax_spatial.scene import SceneSkip

# Modules spelled the numpy-1 way; the numpy-2 spelling (`numpy._core`) is mapped onto these.
_NUMPY_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
}
# Value constructors only: none of these can reach the file system, a shell, or attributes.
_BUILTIN_GLOBALS = {
    "bool",
    "bytearray",
    "bytes",
    "complex",
    "dict",
    "float",
    "frozenset",
    "int",
    "list",
    "range",
    "set",
    "slice",
    "str",
    "tuple",
}
_OTHER_GLOBALS = {
    ("_codecs", "encode"),
    ("collections", "OrderedDict"),
    ("collections", "defaultdict"),
}


class UnsafePickleError(SceneSkip, pickle.UnpicklingError):
    """A pickle asked for a global outside the allow-list; nothing it names was called."""


def _canonical(module: str, name: str) -> tuple[str, str]:
    # Protocol 0-2 pickles written by Python 2 (or with fix_imports) say `__builtin__`.
    if module in ("__builtin__", "builtins"):
        return "builtins", name
    if module == "numpy._core" or module.startswith("numpy._core."):
        module = "numpy.core" + module[len("numpy._core") :]
    return module, name


def _import_numpy_attr(module: str, name: str):
    """Imports `module.name`, preferring numpy 2's `numpy._core` over the deprecated shim."""
    candidates = [module]
    if module.startswith("numpy.core"):
        candidates.insert(0, "numpy._core" + module[len("numpy.core") :])
    for candidate in candidates:
        try:
            return getattr(importlib.import_module(candidate), name)
        except (ImportError, AttributeError):
            continue
    raise pickle.UnpicklingError(f"allowed global {module}.{name} is not available in this numpy")


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only allow-listed globals (see the module docstring)."""

    def find_class(self, module: str, name: str):
        canon = _canonical(module, name)
        if canon in _NUMPY_GLOBALS:
            return _import_numpy_attr(*canon)
        if canon[0] == "builtins" and canon[1] in _BUILTIN_GLOBALS:
            return getattr(importlib.import_module("builtins"), canon[1])
        if canon in _OTHER_GLOBALS:
            return getattr(importlib.import_module(canon[0]), canon[1])
        raise UnsafePickleError(
            f"refused global {module}.{name}: info pickles may only hold numpy arrays and plain "
            "Python values"
        )

    def persistent_load(self, pid):
        # Persistent ids hand object construction to the caller; info files never use them.
        raise UnsafePickleError(f"refused persistent id {pid!r}")


def loads_pickle(data: bytes):
    """Unpickles bytes with `RestrictedUnpickler`."""
    return RestrictedUnpickler(io.BytesIO(data)).load()


def load_pickle(path: str | os.PathLike):
    """Loads a pickle file with `RestrictedUnpickler`.

    Raises:
      UnsafePickleError: the file names a global outside the allow-list (the message names it).
      SceneSkip: the file is missing, truncated or not a pickle.
    """
    try:
        with open(path, "rb") as f:
            return RestrictedUnpickler(f).load()
    except UnsafePickleError as err:
        raise UnsafePickleError(f"{path}: {err}") from None
    except FileNotFoundError as err:
        raise SceneSkip(f"pickle not found: {path}") from err
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError) as err:
        raise SceneSkip(f"{path}: not a readable pickle ({type(err).__name__}: {err})") from err
