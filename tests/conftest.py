"""Shared test fixtures.

Real dataset samples live in `../shared/data/real` beside the checkout and are never copied
into the project. A test that needs them fails when `CI=true` and they are missing (CI must
exercise them), and skips with the reason otherwise.
"""

from __future__ import annotations

import os
import pathlib

import pytest

# Compiled XLA programs are cached on disk across tests and xdist workers: many tests jit the
# same stages at the same shapes, and on two CPU cores compilation dominates their time.
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR", str(pathlib.Path(__file__).resolve().parents[1] / ".jax_cache")
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")

REPO = pathlib.Path(__file__).resolve().parents[1]
REAL_DATA = pathlib.Path(
    os.environ.get("JAX_SPATIAL_REAL_DATA", REPO.parent / "shared" / "data" / "real")
)


def real_data_path(*parts: str) -> pathlib.Path:
    """Path under the real-data folder; fails on CI and skips elsewhere when it is missing."""
    path = REAL_DATA.joinpath(*parts)
    if not path.exists():
        message = (
            f"real sample data not found at {path} "
            "(expected ../shared/data/real beside the checkout)"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def real_data():
    """The `real_data_path` function as a fixture: `real_data("kitti_object", "training")`."""
    return real_data_path
