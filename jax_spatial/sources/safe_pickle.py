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

`load_pickle(path, refused="mark")` instead stands an inert `Refused` marker in for each
refused global (calling it, or building it from state, only records that it was asked for), so
the one bad entry of an info file can be skipped while its valid entries load;
`find_refused(value)` lists where the markers sit (`data_list[3].images.CAM2`).
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


class Refused:
    """Stands in for a refused global and for anything the pickle builds from it.

    Constructing, calling or restoring state on it does nothing but keep the global's name:
    the pickle's own code never runs.
    """

    __slots__ = ("name",)
    global_name = "?"

    def __new__(cls, *args, **kwargs):
        out = object.__new__(cls)
        out.name = cls.global_name
        return out

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass

    def __call__(self, *args, **kwargs):
        return type(self)()

    def __repr__(self) -> str:
        return f"<refused {self.name}>"


def _refused_class(module: str, name: str) -> type:
    return type("Refused", (Refused,), {"__slots__": (), "global_name": f"{module}.{name}"})


def find_refused(value, path: str = "", limit: int = 20) -> list[tuple[str, str]]:
    """`(path, refused global)` of the `Refused` markers inside a loaded value, at most `limit`.

    Paths read like field names: `data_list[3].images.CAM2.cam2img`.
    """
    found: list[tuple[str, str]] = []
    stack = [(path, value)]
    while stack and len(found) < limit:
        where, item = stack.pop()
        if isinstance(item, Refused):
            found.append((where or "(top)", item.name))
        elif isinstance(item, dict):
            for key, sub in item.items():
                if isinstance(key, Refused):
                    found.append((where or "(top)", key.name))
                sub_path = f"{where}.{key}" if where else str(key)
                stack.append((sub_path, sub))
        elif isinstance(item, list | tuple | set | frozenset):
            stack += [(f"{where}[{i}]", sub) for i, sub in enumerate(item)]
    return sorted(found)


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
    """An unpickler that resolves only allow-listed globals (see the module docstring).

    `refused="raise"` (default) fails on the first refused global; `"mark"` hands back an
    inert `Refused` class for it instead.
    """

    def __init__(self, file, *, refused: str = "raise"):
        super().__init__(file)
        if refused not in ("raise", "mark"):
            raise ValueError(f"refused must be 'raise' or 'mark', got {refused!r}")
        self.refused = refused
        self.refused_count = 0

    def find_class(self, module: str, name: str):
        canon = _canonical(module, name)
        if canon in _NUMPY_GLOBALS:
            return _import_numpy_attr(*canon)
        if canon[0] == "builtins" and canon[1] in _BUILTIN_GLOBALS:
            return getattr(importlib.import_module("builtins"), canon[1])
        if canon in _OTHER_GLOBALS:
            return getattr(importlib.import_module(canon[0]), canon[1])
        if self.refused == "mark":
            self.refused_count += 1
            return _refused_class(module, name)
        raise UnsafePickleError(
            f"refused global {module}.{name}: info pickles may only hold numpy arrays and plain "
            "Python values"
        )

    def persistent_load(self, pid):
        # Persistent ids hand object construction to the caller; info files never use them.
        if self.refused == "mark":
            self.refused_count += 1
            return _refused_class("persistent id", repr(pid)[:40])()
        raise UnsafePickleError(f"refused persistent id {pid!r}")


def loads_pickle(data: bytes):
    """Unpickles bytes with `RestrictedUnpickler`."""
    return RestrictedUnpickler(io.BytesIO(data)).load()


class _RestrictedPyUnpickler(pickle._Unpickler):
    """The pure-Python unpickler with the same allow-list: slower, but its stacks are open to
    inspection, which is what `salvage_truncated` needs."""

    find_class = RestrictedUnpickler.find_class
    persistent_load = RestrictedUnpickler.persistent_load

    def __init__(self, file, *, refused: str = "raise"):
        super().__init__(file)
        self.refused = refused
        self.refused_count = 0


def salvage_truncated(path: str | os.PathLike, refused: str = "mark"):
    """What a truncated pickle (protocol 2 or later) holds up to where it ends, or None.

    Containers are filled in batches at their end (`APPENDS`, `SETITEMS`), so a truncated file
    leaves its finished entries on the unpickler's stacks rather than in their containers. This
    puts them back: a dict gets its finished key/value pairs, a list its finished items; the
    item that was being read when the file ended is left out, and nothing after it exists.

    Returns:
      `(value, kept)`: the outer value rebuilt, and how many items the innermost list being
      filled kept (the entries not lost); None when the file is not a truncated pickle this
      can rebuild (or is not truncated at all).
    """
    try:
        with open(path, "rb") as f:
            unpickler = _RestrictedPyUnpickler(f, refused=refused)
            try:
                unpickler.load()
                return None  # not truncated
            except UnsafePickleError:
                return None
            except Exception:  # noqa: BLE001, S110 - an opcode cut short fails in many ways
                pass
    except OSError:
        return None
    frames = [*unpickler.metastack, unpickler.stack]
    if not frames or not frames[0]:
        return None
    top, kept = frames[0][0], 0
    for level in range(1, len(frames)):
        parent, content = frames[level - 1][-1] if frames[level - 1] else None, frames[level]
        deeper = level < len(frames) - 1
        if isinstance(parent, list):
            # The last item is the one the file ended in when a deeper frame exists, or when
            # it is an empty container: the file ended just after it was opened.
            started = content and isinstance(content[-1], dict | list) and not content[-1]
            items = content[:-1] if deeper or started else content
            parent.extend(items)
            kept = len(parent)
            break
        if not isinstance(parent, dict):
            break
        pairs = content[: len(content) // 2 * 2]
        for i in range(0, len(pairs), 2):
            try:
                parent[pairs[i]] = pairs[i + 1]
            except TypeError:
                return None  # an unhashable key: not a layout worth guessing at
    return top, kept


def load_pickle_marked(path: str | os.PathLike) -> tuple[object, bool]:
    """`load_pickle(path, refused="mark")` and whether any global was refused (then look with
    `find_refused`; without one there is nothing to look for)."""
    try:
        with open(path, "rb") as f:
            unpickler = RestrictedUnpickler(f, refused="mark")
            return unpickler.load(), unpickler.refused_count > 0
    except Exception:  # noqa: BLE001 - `load_pickle` reads it again and says what is wrong
        pass
    return load_pickle(path, refused="mark"), True


def load_pickle(path: str | os.PathLike, refused: str = "raise"):
    """Loads a pickle file with `RestrictedUnpickler`.

    Args:
      path: the file.
      refused: "raise" on a global outside the allow-list, or "mark" it (see `Refused`).

    Raises:
      UnsafePickleError: the file names a global outside the allow-list (the message names it).
      SceneSkip: the file is missing, truncated or not a pickle.
    """
    try:
        with open(path, "rb") as f:
            return RestrictedUnpickler(f, refused=refused).load()
    except UnsafePickleError as err:
        raise UnsafePickleError(f"{path}: {err}") from None
    except FileNotFoundError as err:
        raise SceneSkip(f"pickle not found: {path}") from err
    except IsADirectoryError as err:
        raise SceneSkip(f"{path} is a folder, not a pickle", file=str(path)) from err
    except EOFError as err:
        raise SceneSkip(
            f"{path}: not a readable pickle (truncated: it ends early)", file=str(path)
        ) from err
    except (
        pickle.UnpicklingError, ValueError, TypeError, IndexError, AttributeError, KeyError,
        MemoryError, RecursionError, OverflowError, UnicodeDecodeError,
    ) as err:  # fmt: skip
        if "truncated" in str(err):
            raise SceneSkip(
                f"{path}: not a readable pickle (truncated: {err})", file=str(path)
            ) from err
        raise SceneSkip(
            f"{path}: not a readable pickle ({type(err).__name__}: {err})", file=str(path)
        ) from err
