"""Beam generation: the dataset's bytes do not depend on how many workers built it.

Builds a tiny procedural config with the DirectRunner in-process (1 worker) and in
multi-processing mode (2 worker processes), then compares a hash of every example's
serialized bytes, sorted by key, and of the split sizes in dataset_info. Marked `slow` (about
a minute: each worker process compiles the jitted stages) but meant to run in CI, which has
the two cores it needs.
"""

from __future__ import annotations

import hashlib
import json
import pathlib

import pytest

tfds = pytest.importorskip("tensorflow_datasets")
beam = pytest.importorskip("apache_beam")
array_record = pytest.importorskip("array_record.python.array_record_module")

from jax_spatial.datasets import examples  # noqa: E402
from jax_spatial.datasets.spatial_qa import spatial_qa_dataset_builder as builder_lib  # noqa: E402

CONFIG = builder_lib.SpatialQAConfig(
    name="beam_tiny",
    source="procedural",
    options=(("num_scenes", 4), ("views_per_scene", 1), ("width", 64), ("height", 48)),
    scenes_per_shard=1,
)


def content_hash(version_dir: pathlib.Path) -> tuple[str, int]:
    """sha256 over (key, sha256(record)) sorted by key, plus the split sizes; and the count."""
    features = examples.features()
    digests = []
    for path in sorted(version_dir.glob("spatial_qa-train.array_record-*")):
        reader = array_record.ArrayRecordReader(str(path))
        for record in reader.read_all():
            key = features.deserialize_example_np(record)["key"]
            digests.append((key, examples.example_digest(record)))
        reader.close()
    info = json.loads((version_dir / "dataset_info.json").read_text())
    splits = [(s["name"], s.get("shardLengths"), s.get("numBytes")) for s in info["splits"]]
    h = hashlib.sha256(json.dumps([sorted(digests), splits], default=str).encode())
    return h.hexdigest(), len(digests)


def build(data_dir: pathlib.Path, workers: int) -> pathlib.Path:
    flags = ["--runner=DirectRunner", f"--direct_num_workers={workers}"]
    if workers > 1:
        flags.append("--direct_running_mode=multi_processing")
    builder = builder_lib.Builder(config=CONFIG, data_dir=str(data_dir))
    builder.download_and_prepare(
        file_format="array_record",
        download_config=tfds.download.DownloadConfig(
            beam_options=beam.options.pipeline_options.PipelineOptions(flags)
        ),
    )
    return pathlib.Path(builder.data_dir)


@pytest.mark.slow
def test_one_and_two_workers_write_the_same_bytes(tmp_path):
    one, count_one = content_hash(build(tmp_path / "one", 1))
    two, count_two = content_hash(build(tmp_path / "two", 2))
    print(f"content hash, 1 worker: {one}; 2 workers: {two}")
    assert count_one == count_two == 4
    assert one == two
