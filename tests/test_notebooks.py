"""The notebooks run end to end (nbclient, a real kernel) on their tiny setting.

`JAX_SPATIAL_NOTEBOOK_SCALE=tiny` shrinks the scene counts and steps; everything else is the
code a Colab user runs. The quickstart needs nothing beside the checkout (the procedural
default), so it must pass without ../shared.
"""

from __future__ import annotations

import os
import pathlib

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[1] / "notebooks"


def _needs_gemma_extra():
    import importlib.util

    missing = [m for m in ("sentencepiece", "safetensors") if importlib.util.find_spec(m) is None]
    return pytest.mark.skipif(
        bool(missing), reason=f"needs the gemma extra (pip install 'jax-spatial[gemma]'): {missing}"
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [
        "quickstart.ipynb",
        "finetune.ipynb",
        "score.ipynb",
        pytest.param("finetune_gemma3.ipynb", marks=_needs_gemma_extra()),
    ],
)
def test_notebook_executes(name, tmp_path, monkeypatch):
    monkeypatch.setenv("JAX_SPATIAL_NOTEBOOK_SCALE", "tiny")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    # Run from a folder shaped like notebooks/ (outputs go under it, not the checkout).
    work = tmp_path / "notebooks"
    work.mkdir()
    client = nbclient.NotebookClient(
        notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(work)}}
    )
    client.execute()
    errors = [
        o
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors, errors
    assert os.listdir(work / "out")
