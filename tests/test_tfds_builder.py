"""The spatial_qa TFDS builder: the folder's own test, and a tiny build read back without TF.

The build is a procedural config of two one-view 96 x 72 rooms, so the whole module runs in
well under a minute; `tfds.data_source` reads it back and every question is compared to the
engine's in-memory records for the same scenes.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")
pytest.importorskip("array_record")

from jax_spatial import engine, reading  # noqa: E402
from jax_spatial.datasets import examples  # noqa: E402
from jax_spatial.datasets.spatial_qa import spatial_qa_dataset_builder as builder_lib  # noqa: E402

# The builder folder's ten-line DatasetBuilderTestCase (kitti config on the dummy data).
from jax_spatial.datasets.spatial_qa.spatial_qa_dataset_builder_test import (  # noqa: E402, F401
    SpatialQATest,
)

OPTIONS = (("num_scenes", 2), ("views_per_scene", 1), ("width", 96), ("height", 72))
TINY = builder_lib.SpatialQAConfig(
    name="test_tiny", source="procedural", options=OPTIONS, scenes_per_shard=1
)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    builder = builder_lib.Builder(config=TINY, data_dir=str(data_dir))
    builder.download_and_prepare(file_format="array_record")
    source = tfds.data_source("spatial_qa/test_tiny", split="train", data_dir=str(data_dir))
    return data_dir, builder, source


@pytest.fixture(scope="module")
def in_memory():
    """The engine's records for the same scenes: `{key: (observation, [QARecord])}`."""
    spec = examples.SourceSpec.create("procedural", None, **dict(OPTIONS))
    src = spec.build()
    config = engine.GenerateConfig()
    summary = engine.Summary()
    out = {}
    for scene_id in src.scene_ids():
        observations = engine.load_observations(src, [scene_id], config, summary)
        for frame_qa in engine.questions_for_observations(observations, config):
            out[examples.frame_key(frame_qa.observation)] = frame_qa
    return out


def test_every_question_reads_back(built, in_memory):
    _, builder, source = built
    assert builder.info.splits["train"].num_examples == len(source) == len(in_memory)
    seen = set()
    for i in range(len(source)):
        example = source[i]
        key = example["key"].decode() if isinstance(example["key"], bytes) else example["key"]
        seen.add(key)
        frame_qa = in_memory[key]
        obs = frame_qa.observation
        assert len(example["qa"]["question"]) == len(frame_qa.qas) > 0
        for (r_obs, record, qa_id), expected in zip(  # noqa: B007 - r_obs checked below
            reading.frame_records(example), frame_qa.qas, strict=True
        ):
            assert qa_id.startswith(key + "/")
            for field in ("task", "relation", "kind", "question", "answer", "canonical"):
                assert getattr(record, field) == getattr(expected, field), field
            assert record.choices == list(expected.choices)
            assert record.objects == list(expected.objects)
            assert record.template_id == expected.template_id
            assert record.slots == expected.slots
            assert record.object_slots == expected.object_slots
        assert r_obs.categories == obs.categories
        np.testing.assert_allclose(r_obs.box2d, obs.box2d, rtol=1e-6, atol=1e-4)
        np.testing.assert_allclose(r_obs.centre, obs.centre, rtol=1e-6, atol=1e-5)
        assert [m is not None for m in r_obs.masks] == [m is not None for m in obs.masks]
    assert seen == set(in_memory)


def test_image_bytes_are_not_reencoded(built, in_memory):
    _, _, source = built
    for i in range(len(source)):
        example = source[i]
        key = example["key"].decode()
        assert example["image"] == in_memory[key].observation.image_bytes
        assert example["image_format"] in (b"png", "png")


def test_data_source_needs_no_tensorflow(built):
    data_dir, _, _ = built
    code = textwrap.dedent(f"""
        import sys
        import tensorflow_datasets as tfds
        ds = tfds.data_source("spatial_qa/test_tiny", split="train", data_dir={str(data_dir)!r})
        assert len(ds) > 0 and len(ds[0]["qa"]["question"]) > 0
        assert "tensorflow" not in sys.modules, "tensorflow was imported"
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ok" in result.stdout


def test_grain_pipeline_batches_every_question(built):
    _, _, source = built
    total = sum(len(source[i]["qa"]["kind"]) for i in range(len(source)))
    batches = list(reading.qa_batches(source, batch_size=4, image_size=(64, 80), seed=3))
    assert sum(len(b["question"]) for b in batches) == total
    first = batches[0]
    assert first["image"].shape == (4, 64, 80, 3) and first["image"].dtype == np.uint8
    formats = {f for b in batches for f in b["format_id"]}
    # Questions with objects are re-asked in sampled formats, not only in their stored text.
    assert formats - {"caption/raw"}, formats


def test_missing_manual_data_names_the_layout(tmp_path):
    config = builder_lib.SpatialQAConfig(
        name="test_kitti_missing", source="kitti", root=str(tmp_path / "nope")
    )
    builder = builder_lib.Builder(config=config, data_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="image_2"):
        builder.download_and_prepare(file_format="array_record")


@pytest.mark.slow
def test_tfds_build_command_line(tmp_path):
    # What the README tells users to type: the `tfds` command on the builder folder. Every
    # example it writes must pass the pre-write validation again when read back.
    import pathlib

    from jax_spatial import validate

    folder = pathlib.Path(builder_lib.__file__).parent
    tfds_cli = pathlib.Path(sys.executable).parent / "tfds"
    result = subprocess.run(
        [str(tfds_cli), "build", str(folder), "--config=procedural_small"]
        + ["--file_format=array_record", f"--data_dir={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    source = tfds.data_source("spatial_qa/procedural_small", split="train", data_dir=str(tmp_path))
    report = validate.ValidationReport()
    total = 0
    for i in range(len(source)):
        example = source[i]
        checked, ok = validate.check_example(example, report)
        assert ok and len(checked["qa"]["question"]) == len(example["qa"]["question"])
        total += len(example["qa"]["question"])
    assert len(source) >= 12 and total > 100
    assert report.qa_checked == total
