"""Beam plumbing shared by the `spatial_qa` and `spatial_qa_clips` builders.

Work is split by fixed scene-id group (`examples.partition`): each group is generated,
batched and validated on one worker, so the bytes of every example are the same whether 1 or
100 workers ran; TFDS then orders the examples by a hash of their keys. A group's validation
report and skipped scenes become Beam counters in the builder's namespace
(`<unit>s_checked`, `<unit>s_rejected`, `qa_checked`, `qa_rejected`, `scenes_skipped`,
`reason/<rule>`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from tensorflow_datasets.core.utils.lazy_imports_utils import apache_beam as beam

from jax_spatial import validate

# `generate(scene_ids, report=, skipped=)` -> valid `(key, example)`s; picklable (a
# module-level function or a `functools.partial` of one), since Beam ships it to workers.
GroupGenerator = Callable[..., Iterator[tuple[str, dict]]]


def count_report(
    namespace: str, report: validate.ValidationReport, skipped: list, unit: str
) -> None:
    """Adds one group's report to the Beam counters; `unit` is "frame" or "clip"."""
    metrics = beam.metrics.Metrics
    for name, value in (
        (f"{unit}s_checked", report.frames_checked),
        (f"{unit}s_rejected", report.frames_rejected),
        ("qa_checked", report.qa_checked),
        ("qa_rejected", report.qa_rejected),
        ("scenes_skipped", len(skipped)),
    ):
        metrics.counter(namespace, name).inc(value)
    for reason, count in report.reasons.items():
        metrics.counter(namespace, f"reason/{reason}").inc(count)


def _generate_group(indexed_group, generate: GroupGenerator, namespace: str, unit: str):
    """`(shard index, scene ids)` -> valid `(key, example)`s, counting rejections."""
    _, scene_ids = indexed_group
    report = validate.ValidationReport()
    skipped: list = []
    yield from generate(scene_ids, report=report, skipped=skipped)
    count_report(namespace, report, skipped, unit)


class GenerateGroups(beam.PTransform):
    """`PBegin -> PCollection[(key, example)]` over fixed scene-id groups.

    Args:
      shards: the scene-id groups (`examples.partition`).
      generate: see `GroupGenerator`.
      namespace: the Beam counters' namespace.
      unit: what an example is, "frame" or "clip" (names the counters).
    """

    def __init__(
        self, shards: Sequence[Sequence[str]], generate: GroupGenerator, namespace: str, unit: str
    ):
        super().__init__()
        self.shards = [(i, tuple(group)) for i, group in enumerate(shards)]
        self.generate = generate
        self.namespace = namespace
        self.unit = unit

    def expand(self, pbegin):
        return (
            pbegin
            | "SceneGroups" >> beam.Create(self.shards)
            # Create emits every group in one bundle; a reshuffle spreads them over workers.
            | "Spread" >> beam.Reshuffle()
            | "Generate"
            >> beam.FlatMap(
                _generate_group, generate=self.generate, namespace=self.namespace, unit=self.unit
            )
        )
