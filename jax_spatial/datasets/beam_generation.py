"""Beam side of the `spatial_qa` builder: scene groups in, `(key, example)` pairs out.

`tfds build --beam_pipeline_options=...` makes the builder return `GenerateExamples`; TFDS
applies it to its pipeline and writes the shards. Work is split by scene-id group
(`examples.partition`): each group is generated, batched and validated on one worker, so the
bytes of every example are the same whether 1 or 100 workers ran. TFDS then orders the
examples by a hash of their keys, which fixes the shard contents too.

Validation failures and skipped scenes are Beam counters (`spatial_qa` namespace:
`frames_rejected`, `qa_rejected`, `scenes_skipped`, `reason/<rule>`), visible in the runner's
UI and in the pipeline result.
"""

from __future__ import annotations

from collections.abc import Sequence

from tensorflow_datasets.core.utils.lazy_imports_utils import apache_beam as beam

from jax_spatial import validate
from jax_spatial.datasets import examples

NAMESPACE = "spatial_qa"


def _generate_group(indexed_group, spec: examples.SourceSpec, config):
    """`(shard index, scene ids)` -> valid `(key, example)`s, counting rejections."""
    _, scene_ids = indexed_group
    report = validate.ValidationReport()
    skipped: list = []
    yield from examples.generate_shard(spec, scene_ids, config, report, skipped)
    metrics = beam.metrics.Metrics
    for name, value in (
        ("frames_checked", report.frames_checked),
        ("frames_rejected", report.frames_rejected),
        ("qa_checked", report.qa_checked),
        ("qa_rejected", report.qa_rejected),
        ("scenes_skipped", len(skipped)),
    ):
        metrics.counter(NAMESPACE, name).inc(value)
    for reason, count in report.reasons.items():
        metrics.counter(NAMESPACE, f"reason/{reason}").inc(count)


class GenerateExamples(beam.PTransform):
    """`PBegin -> PCollection[(key, example)]` over fixed scene-id groups.

    Args:
      spec: the source, by value (each worker builds its own).
      shards: the scene-id groups (`examples.partition`).
      config: `engine.GenerateConfig`.
    """

    def __init__(self, spec: examples.SourceSpec, shards: Sequence[Sequence[str]], config):
        super().__init__()
        self.spec = spec
        self.shards = [(i, tuple(group)) for i, group in enumerate(shards)]
        self.config = config

    def expand(self, pbegin):
        return (
            pbegin
            | "SceneGroups" >> beam.Create(self.shards)
            # Create emits every group in one bundle; a reshuffle spreads them over workers.
            | "Spread" >> beam.Reshuffle()
            | "Generate" >> beam.FlatMap(_generate_group, spec=self.spec, config=self.config)
        )
