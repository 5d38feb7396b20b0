"""Multi-host JAX generation of the `spatial_qa` TFDS dataset: one shard per process, then metadata.

Every process runs the same program (after `jax.distributed.initialize()`)::

    import jax
    from jax_spatial.datasets import examples, multihost

    jax.distributed.initialize()                    # coordinator, ranks from the cluster env
    spec = examples.SourceSpec.create("procedural", None, num_scenes=2000, seed=0)
    out = "gs://BUCKET/tfds/spatial_qa/procedural/1.0.0"
    multihost.generate_host_shards(spec, out, jax.process_index(), jax.process_count())
    multihost.barrier()                             # every shard is written
    if jax.process_index() == 0:
        multihost.finalize(out, jax.process_count())

Process `i` of `n` takes `sorted(scene_ids)[i::n]`, runs the engine's stages with its batches
split over `jax.local_devices()` (no cross-host collective: each host's work is independent),
and writes shard `i` of `n`, `<name>-<split>.array_record-0000i-of-0000n`, plus a small
manifest (`_hosts/`) with the shard's length and byte count. `finalize` turns the manifests
into the split info and calls `tfds.folder_dataset.write_metadata`, after which
`tfds.builder_from_directory(out)` and `tfds.data_source` read the whole dataset.

The example set and every example's bytes do not depend on `n`: examples are built per frame,
every random choice is keyed on (seed, scene, frame), and records are written in
`examples.canonical_bytes` form. Only which shard holds an example changes with `n`.
"""

from __future__ import annotations

import collections
import json
import logging
import os
from collections.abc import Sequence

import jax
import numpy as np
from etils import epath

from jax_spatial import batching, engine, validate
from jax_spatial.datasets import examples
from jax_spatial.observe import FrameObservation
from jax_spatial.qa.phrase import phrase_batch
from jax_spatial.qa.select import select_questions
from jax_spatial.relations.single_view import single_view_relations

log = logging.getLogger(__name__)

DATASET_NAME = "spatial_qa"
SPLIT = "train"
FILE_FORMAT = "array_record"
HOSTS_DIR = "_hosts"  # not matched by the shard template, so `write_metadata` ignores it


def host_scene_ids(scene_ids: Sequence[str], process_index: int, process_count: int) -> list[str]:
    """The scene ids one process generates: `sorted(scene_ids)[process_index::process_count]`.

    Sorted first so every process agrees on the split whatever order the source lists ids in.
    """
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index {process_index} not in [0, {process_count})")
    return sorted(scene_ids)[process_index::process_count]


def local_batch_sharding(devices: Sequence[jax.Device] | None = None):
    """A `NamedSharding` splitting the leading (batch) axis over this process's devices.

    A mesh of local devices only is fully addressable, so jitted stages run on it without
    involving the other hosts.
    """
    devices = list(devices) if devices is not None else jax.local_devices()
    mesh = jax.sharding.Mesh(np.array(devices), ("batch",))
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("batch"))


def questions_on_local_devices(
    observations: Sequence[FrameObservation],
    config: engine.GenerateConfig,
    devices: Sequence[jax.Device] | None = None,
) -> list[engine.FrameQA]:
    """`engine.questions_for_observations`, with each batch split over the local devices.

    Batches are built as the engine builds them (`batches_by_bucket`, `pad_observations`);
    the batch size is rounded up to a multiple of the device count so the `[B, N, ...]`
    leaves split evenly. On one device this is the engine's path. Results do not depend on
    the batch size: a frame's random key comes from its ids, not its batch slot.

    Args:
      observations: frames to ask about.
      config: the run settings (`batch_size`, `seed`, `relations`, `quotas`).
      devices: defaults to `jax.local_devices()`.

    Returns:
      One `FrameQA` per observation, in input order.
    """
    sharding = local_batch_sharding(devices)
    num_devices = sharding.mesh.size
    batch_size = -(-config.batch_size // num_devices) * num_devices
    position = {(obs.scene_id, obs.frame_id): i for i, obs in enumerate(observations)}
    results = [engine.FrameQA(obs, []) for obs in observations]
    for bucket, group in batching.batches_by_bucket(observations, batch_size):
        batch = batching.pad_observations(group, bucket, batch_size, config.seed)
        batch = jax.device_put(batch, sharding)
        relations = single_view_relations(batch, config.relations)
        selection = jax.device_get(select_questions(batch, relations, config.quotas))
        for obs, qas in zip(group, phrase_batch(group, selection), strict=False):
            results[position[(obs.scene_id, obs.frame_id)]] = engine.FrameQA(obs, qas)
    return results


def _template(out_dir, dataset_name: str, split: str):
    from tensorflow_datasets.core import naming

    return naming.ShardedFileTemplate(
        data_dir=epath.Path(out_dir),
        dataset_name=dataset_name,
        split=split,
        filetype_suffix=FILE_FORMAT,
    )


def _manifest_path(out_dir, process_index: int, process_count: int) -> epath.Path:
    return epath.Path(out_dir) / HOSTS_DIR / f"host-{process_index:05d}-of-{process_count:05d}.json"


def generate_host_shards(
    source,
    out_dir: str | os.PathLike,
    process_index: int,
    process_count: int,
    config: engine.GenerateConfig | None = None,
    *,
    scene_ids: Sequence[str] | None = None,
    dataset_name: str = DATASET_NAME,
    split: str = SPLIT,
    devices: Sequence[jax.Device] | None = None,
) -> dict:
    """Generates this process's scenes and writes its shard and manifest; returns the manifest.

    Scenes are loaded `config.chunk_scenes` at a time (bounding host memory) and written in
    scene-id then frame order. Each record is `features().serialize_example` in
    `examples.canonical_bytes` form, the same bytes the TFDS builder writes.

    Args:
      source: a `examples.SourceSpec` or a built `Source`.
      out_dir: the dataset version folder, shared by all processes (`.../<name>/<version>`).
      process_index, process_count: this process's rank and the number of processes.
      config: `engine.GenerateConfig` (defaults when None); `max_scenes` caps the sorted ids.
      scene_ids: all processes' ids (default: the source's); this process takes its slice.
      dataset_name, split: used in the shard file names.
      devices: the devices batches are split over (default `jax.local_devices()`).

    Returns:
      The manifest: shard file name, `num_examples`, `num_bytes`, validation counts, skips.
    """
    from array_record.python import array_record_module

    config = config if config is not None else engine.GenerateConfig()
    if isinstance(source, examples.SourceSpec):
        source = source.build()
    ids = sorted(scene_ids if scene_ids is not None else source.scene_ids())
    ids = ids[: config.max_scenes] if config.max_scenes else ids
    mine = host_scene_ids(ids, process_index, process_count)
    features = examples.features()
    out = epath.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = _template(out, dataset_name, split).sharded_filepath(
        shard_index=process_index, num_shards=process_count
    )
    # Written under a name the shard template does not match, renamed when complete: a
    # crashed host leaves no half shard that `finalize` could pick up.
    tmp = out / HOSTS_DIR / (path.name + ".tmp")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    report, summary = validate.ValidationReport(), engine.Summary()
    num_examples = num_bytes = 0
    writer = array_record_module.ArrayRecordWriter(os.fspath(tmp), "group_size:1")
    try:
        for start in range(0, len(mine), config.chunk_scenes):
            chunk = mine[start : start + config.chunk_scenes]
            observations = engine.load_observations(source, chunk, config, summary)
            for frame_qa in questions_on_local_devices(observations, config, devices):
                obs = frame_qa.observation
                try:
                    image = examples.encoded_image(obs, getattr(source, "root", None))
                    example = examples.frame_example(obs, frame_qa.qas, image)
                except (OSError, ValueError) as error:
                    report.frames_checked += 1
                    report.frames_rejected += 1
                    report.qa_checked += len(frame_qa.qas)
                    report.qa_rejected += len(frame_qa.qas)
                    reason = f"example_build: {type(error).__name__}: {error}"
                    report.reject(examples.frame_key(obs), [reason])
                    continue
                example, ok = validate.check_example(example, report)
                if not ok:
                    continue
                record = examples.canonical_bytes(features.serialize_example(example))
                writer.write(record)
                num_examples += 1
                num_bytes += len(record)
    finally:
        writer.close()
    tmp.rename(path)
    manifest = {
        "shard": path.name,
        "process_index": process_index,
        "process_count": process_count,
        "scenes": len(mine),
        "num_examples": num_examples,
        "num_bytes": num_bytes,
        "validation": report.as_dict(),
        "skipped": summary.skipped,
    }
    # Written last: a manifest means its shard is complete.
    manifest_path = _manifest_path(out, process_index, process_count)
    manifest_tmp = manifest_path.with_name(manifest_path.name + ".tmp")
    manifest_tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    manifest_tmp.rename(manifest_path)
    log.info(
        "host %d/%d: %d scenes -> %d examples in %s",
        process_index,
        process_count,
        len(mine),
        num_examples,
        path.name,
    )
    return manifest


def barrier(name: str = "spatial_qa_shards_written") -> None:
    """Waits until every process reaches it (no-op in a single process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def finalize(
    out_dir: str | os.PathLike,
    process_count: int,
    *,
    dataset_name: str = DATASET_NAME,
    split: str = SPLIT,
    description: str | None = None,
) -> dict:
    """Writes the TFDS metadata (`dataset_info.json`, `features.json`) for all hosts' shards.

    Run once, after every host finished (process 0 after `barrier()`, or a separate job).
    Split sizes come from the host manifests, so no shard is re-read. Checks the result by
    reading one example through `tfds.data_source` (no TensorFlow needed).

    Args:
      out_dir: the folder `generate_host_shards` wrote to.
      process_count: how many processes wrote shards (one shard each).
      dataset_name, split: as given to `generate_host_shards`.
      description: the dataset description in `dataset_info.json`.

    Returns:
      `{"num_examples", "num_bytes", "shard_lengths", "validation", "skipped"}` over all hosts.
    """
    import tensorflow_datasets as tfds

    out = epath.Path(out_dir)
    manifests = []
    for index in range(process_count):
        path = _manifest_path(out, index, process_count)
        if not path.exists():
            raise FileNotFoundError(f"host {index} of {process_count} has not finished: no {path}")
        manifests.append(json.loads(path.read_text()))
    template = _template(out, dataset_name, split)
    split_info = tfds.core.SplitInfo(
        name=split,
        shard_lengths=[m["num_examples"] for m in manifests],
        num_bytes=sum(m["num_bytes"] for m in manifests),
        filename_template=template,
    )
    tfds.folder_dataset.write_metadata(
        data_dir=out,
        features=examples.features(),
        split_infos=[split_info],
        filename_template=template,
        # The built-in check reads through `as_dataset`, which array_record does not support.
        check_data=False,
        description=description or "Spatial QA, one example per frame (jax_spatial).",
        homepage="https://github.com/jax-spatial/jax_spatial",
    )
    total = split_info.num_examples
    if total:
        source = tfds.builder_from_directory(os.fspath(out)).as_data_source(split=split)
        if len(source) != total:
            raise ValueError(f"{out}: data_source holds {len(source)} examples, expected {total}")
        source[0]  # fails here if the features do not match the records
    report = validate.ValidationReport()
    for m in manifests:
        fields = dict(m["validation"])
        fields["reasons"] = collections.Counter(fields.get("reasons", {}))
        report.merge(validate.ValidationReport(**fields))
    return {
        "num_examples": total,
        "num_bytes": split_info.num_bytes,
        "shard_lengths": list(split_info.shard_lengths),
        "validation": report.as_dict(),
        "skipped": [s for m in manifests for s in m["skipped"]],
    }


__all__ = [
    "barrier",
    "finalize",
    "generate_host_shards",
    "host_scene_ids",
    "local_batch_sharding",
    "questions_on_local_devices",
]
