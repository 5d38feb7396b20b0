"""Multi-host JAX generation: the dataset read back does not depend on the process count.

Two simulated hosts (process 0 and 1 of 2) against one (0 of 1), each finalized and read with
`tfds.data_source` (no TensorFlow), compared by a sha256 over the (key, record bytes) pairs
sorted by key.

The two hosts run sequentially in this process rather than as `multiprocessing` workers: a
host's work is chosen purely by its index (`sorted(ids)[i::n]`) and uses no
`jax.distributed` state, so separate processes would test nothing more but would each compile
the jitted stages again. Cross-process byte stability (protobuf map order) is what
`examples.canonical_bytes` guarantees and `tests/test_beam.py` checks with real processes.
"""

from __future__ import annotations

import hashlib
import pathlib

import pytest

tfds = pytest.importorskip("tensorflow_datasets")
pytest.importorskip("array_record.python.array_record_module")

from jax_spatial.datasets import examples, multihost  # noqa: E402
from jax_spatial.sources import get_source  # noqa: E402


def content_hash(out_dir: pathlib.Path) -> tuple[str, list[str]]:
    """sha256 over (key, record bytes) sorted by key, read via `tfds.data_source`; and keys."""
    builder = tfds.builder_from_directory(str(out_dir))
    source = builder.as_data_source(split="train")
    features = examples.features()
    pairs = []
    # The data source decodes; the raw records are what the bytes claim is about.
    for record in source.data_source:
        key = features.deserialize_example_np(record)["key"]
        key = key.decode() if isinstance(key, bytes) else str(key)
        pairs.append((key, record))
    assert len(source) == len(pairs)
    assert source[0]["qa"]["question"] is not None  # decoded access works too
    h = hashlib.sha256()
    for key, record in sorted(pairs):
        h.update(key.encode() + b"\0" + hashlib.sha256(record).digest())
    return h.hexdigest(), sorted(key for key, _ in pairs)


def test_two_hosts_and_one_host_give_the_same_dataset(tmp_path):
    source = get_source("procedural", "", num_scenes=4, views_per_scene=2, width=160, height=120)
    one = tmp_path / "one" / "1.0.0"
    two = tmp_path / "two" / "1.0.0"

    multihost.generate_host_shards(source, one, 0, 1)
    total_one = multihost.finalize(one, 1)
    parts = [multihost.generate_host_shards(source, two, i, 2) for i in range(2)]
    total_two = multihost.finalize(two, 2)

    assert [p["scenes"] for p in parts] == [2, 2]
    assert sorted(p.name for p in two.glob("spatial_qa-train.array_record-*")) == [
        "spatial_qa-train.array_record-00000-of-00002",
        "spatial_qa-train.array_record-00001-of-00002",
    ]
    assert total_one["num_examples"] == total_two["num_examples"] == 8
    assert total_one["num_bytes"] == total_two["num_bytes"]

    hash_one, keys_one = content_hash(one)
    hash_two, keys_two = content_hash(two)
    print(f"content hash, 1 host: {hash_one}; 2 hosts: {hash_two}")
    assert keys_one == keys_two
    assert len(set(keys_one)) == 8
    assert hash_one == hash_two


def test_host_scene_ids_cover_every_scene_once():
    ids = [f"s{i:02d}" for i in range(7)][::-1]
    parts = [multihost.host_scene_ids(ids, i, 3) for i in range(3)]
    assert sorted(s for part in parts for s in part) == sorted(ids)
    assert parts[0] == ["s00", "s03", "s06"]
    with pytest.raises(ValueError):
        multihost.host_scene_ids(ids, 3, 3)
