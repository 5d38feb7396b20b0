"""The restricted unpickler: hostile pickles are refused before anything runs; info files load."""

from __future__ import annotations

import collections
import os
import pickle

import numpy as np
import pytest

from jax_spatial.scene import SceneSkip
from jax_spatial.sources.safe_pickle import UnsafePickleError, load_pickle, loads_pickle


class _Shell:
    """Pickles to a call of `os.system(command)`: what a hostile info file would contain."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_os_system_pickle_is_refused_and_never_runs(tmp_path, protocol):
    marker = tmp_path / "pwned"
    path = tmp_path / "hostile.pkl"
    payload = {"metainfo": {}, "data_list": [_Shell(f"touch {marker}")]}
    path.write_bytes(pickle.dumps(payload, protocol=protocol))
    with pytest.raises(UnsafePickleError) as err:
        load_pickle(path)
    # os.system pickles as posix.system (nt.system on Windows); the message names it.
    assert "system" in str(err.value) and "refused global" in str(err.value)
    assert isinstance(err.value, SceneSkip) and isinstance(err.value, pickle.UnpicklingError)
    assert not marker.exists()


@pytest.mark.parametrize(
    "module, name",
    [
        ("builtins", "eval"),
        ("builtins", "exec"),
        ("builtins", "getattr"),
        ("builtins", "__import__"),
        ("__builtin__", "open"),
        ("subprocess", "Popen"),
        ("os", "system"),
        ("numpy", "load"),
        ("numpy.testing", "assert_equal"),
        ("copyreg", "_reconstructor"),
    ],
)
def test_dangerous_globals_are_refused(module, name):
    # A protocol-0 GLOBAL followed by a call with one string argument, then STOP.
    data = f"c{module}\n{name}\n(S'x'\ntR.".encode()
    with pytest.raises(UnsafePickleError, match=f"{module}.{name}"):
        loads_pickle(data)


def test_persistent_ids_are_refused():
    with pytest.raises(UnsafePickleError, match="persistent"):
        loads_pickle(b"P0\n.")


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_plain_values_and_numpy_round_trip(protocol):
    value = {
        "f": np.arange(6, dtype=np.float32).reshape(2, 3),
        "i": np.array([[1, -2]], dtype=np.int64),
        "obj": np.array(["a", None], dtype=object),
        "s32": np.float32(1.5),
        "i32": np.int32(7),
        "b": b"\x00\xffbytes",
        "set": {1, 2},
        "frozen": frozenset({"x"}),
        "od": collections.OrderedDict(a=1),
        "c": 1 + 2j,
        "list": [1.0, "two", (3,)],
    }
    out = loads_pickle(pickle.dumps(value, protocol=protocol))
    assert out.keys() == value.keys()
    np.testing.assert_array_equal(out["f"], value["f"])
    assert out["f"].dtype == np.float32
    np.testing.assert_array_equal(out["i"], value["i"])
    assert out["obj"].tolist() == ["a", None]
    assert out["s32"] == np.float32(1.5) and out["s32"].dtype == np.float32
    assert out["i32"] == 7 and out["i32"].dtype == np.int32
    for key in ("b", "set", "frozen", "od", "c", "list"):
        assert out[key] == value[key]


def test_numpy1_module_names_load_under_numpy2():
    # Files written by numpy 1 name `numpy.core.multiarray`; numpy 2 writes `numpy._core`.
    data = pickle.dumps({"a": np.arange(3.0), "s": np.float64(2.0)}, protocol=2)
    for old, new in ((b"numpy._core.", b"numpy.core."), (b"numpy.core.", b"numpy._core.")):
        out = loads_pickle(data.replace(old, new))
        np.testing.assert_array_equal(out["a"], np.arange(3.0))
        assert out["s"] == 2.0


def test_missing_and_corrupt_files_raise_scene_skip(tmp_path):
    with pytest.raises(SceneSkip, match="not found"):
        load_pickle(tmp_path / "absent.pkl")
    truncated = tmp_path / "truncated.pkl"
    truncated.write_bytes(pickle.dumps({"a": list(range(100))}, protocol=4)[:20])
    with pytest.raises(SceneSkip, match="not a readable pickle"):
        load_pickle(truncated)


@pytest.mark.parametrize(
    "parts",
    [
        ("mmdet3d_infos", "kitti_000008", "000008.pkl"),
        ("mmdet3d_infos", "sunrgbd_000017", "sunrgbd_000017_infos.pkl"),
        ("scannet_scene0000_00", "scannet_infos_v1.x_aligned_boxes.pkl"),
        ("scannet_scene0000_00", "scannet_infos_v1.0.pkl"),
    ],
)
def test_real_info_files_load(real_data, parts):
    path = real_data(*parts)
    data = load_pickle(path)
    # The reference: the same file through the unrestricted unpickler (trusted test data).
    with open(path, "rb") as f:
        reference = pickle.load(f)
    assert type(data) is type(reference)
    assert repr(data) == repr(reference)
