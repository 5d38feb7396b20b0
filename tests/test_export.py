"""The TFDS -> InternVL / LLaVA JSONL exporter on a tiny procedural build (two 96 x 72 rooms)."""

from __future__ import annotations

import json

import pytest

tfds = pytest.importorskip("tensorflow_datasets")
pytest.importorskip("array_record")

from jax_spatial import cli  # noqa: E402
from jax_spatial.datasets.spatial_qa import spatial_qa_dataset_builder as builder_lib  # noqa: E402
from jax_spatial.writers import export  # noqa: E402

OPTIONS = (("num_scenes", 2), ("views_per_scene", 1), ("width", 96), ("height", 72))
TINY = builder_lib.SpatialQAConfig(
    name="test_tiny_export", source="procedural", options=OPTIONS, scenes_per_shard=1
)
NAME = "spatial_qa/test_tiny_export"


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    builder = builder_lib.Builder(config=TINY, data_dir=str(data_dir))
    builder.download_and_prepare(file_format="array_record")
    source = tfds.data_source(NAME, split="train", data_dir=str(data_dir))
    stored = {}  # qa id -> (question, answer, suitable formats, image bytes)
    for i in range(len(source)):
        example = source[i]
        key, qa = _text(example["key"]), example["qa"]
        for k in range(len(qa["question"])):
            stored[f"{key}/{k}"] = (
                _text(qa["question"][k]),
                _text(qa["answer"][k]),
                [_text(f) for f in qa["formats"][k]],
                example["image"],
            )
    assert stored
    return data_dir, stored


def _expected_lines(stored, formats: str) -> int:
    if formats == "all":
        return sum(len(f) for _, _, f, _ in stored.values())
    return sum(min(int(formats), len(f)) for _, _, f, _ in stored.values())


@pytest.mark.parametrize("style", export.STYLES)
@pytest.mark.parametrize("formats", ["1", "all", "3"])
def test_export_lines_images_and_text(built, tmp_path, style, formats):
    data_dir, stored = built
    out = tmp_path / "out"
    summary = export.export_dataset(data_dir, out, name=NAME, style=style, formats=formats)
    lines = (out / f"{style}.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert summary.lines == len(records) == _expected_lines(stored, formats)
    assert summary.qa == len(stored)
    raw_lines = 0
    for record in records:
        qa_id, _, fmt = record["id"].partition("@")
        fmt = fmt or "caption/raw"
        question, answer, suitable, image_bytes = stored[qa_id]
        assert fmt in suitable
        human, gpt = record["conversations"]
        assert human["from"] == "human" and gpt["from"] == "gpt"
        assert human["value"].startswith("<image>\n") and human["value"].count("<image>") == 1
        image = out / record["image"]
        assert image.is_file(), record["image"]
        if style == "llava":
            assert set(record) == {"id", "image", "conversations"}
        else:
            assert record["meta"]["format"] == fmt and record["meta"]["qa_id"] == qa_id
        if fmt.endswith("/raw"):
            assert image.read_bytes() == image_bytes  # passed through, not re-encoded
        else:
            assert record["image"].endswith(f"__{fmt.split('/')[1]}.jpg")
        if fmt == "caption/raw":
            raw_lines += 1
            assert human["value"] == "<image>\n" + question
            assert gpt["value"] == answer
    if formats == "all":
        assert raw_lines == len(stored)
        # Overlays were drawn, not only raw frames copied.
        assert any(not f.endswith("/raw") for f in summary.per_format)


def test_export_is_deterministic_and_reads_dataset_folder(built, tmp_path):
    data_dir, _ = built
    folder = next((data_dir / NAME).iterdir())  # .../test_tiny_export/1.0.0
    a = export.export_dataset(folder, tmp_path / "a", style="llava", formats="2", seed=5)
    b = export.export_dataset(
        data_dir, tmp_path / "b", name=NAME, style="llava", formats="2", seed=5
    )
    assert a.lines == b.lines > 0
    assert (tmp_path / "a/llava.jsonl").read_bytes() == (tmp_path / "b/llava.jsonl").read_bytes()


def test_cli_export(built, tmp_path, capsys):
    data_dir, stored = built
    argv = ["export", "--data-dir", str(data_dir), "--name", NAME, "--out", str(tmp_path)]
    assert cli.main([*argv, "--style", "llava", "--formats", "1", "--json-array"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["lines"] == len(stored)
    lines = (tmp_path / "llava.jsonl").read_text().splitlines()
    assert len(lines) == len(stored)
    # The LLaVA-1.5 array holds the same records, in the same order.
    assert summary["array_path"] == str(tmp_path / "llava.json")
    assert json.loads((tmp_path / "llava.json").read_text()) == [json.loads(x) for x in lines]
