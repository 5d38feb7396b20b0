"""Beam side of the `spatial_qa` builder: scene groups in, `(key, example)` pairs out.

`tfds build --beam_pipeline_options=...` makes the builder return `GenerateExamples`; TFDS
applies it to its pipeline and writes the shards. Work is split by scene-id group
(`examples.partition`): each group is generated, batched and validated on one worker, so the
bytes of every example are the same whether 1 or 100 workers ran. TFDS then orders the
examples by a hash of their keys, which fixes the shard contents too.

Validation failures and skipped scenes are Beam counters (`spatial_qa` namespace:
`frames_rejected`, `qa_rejected`, `scenes_skipped`, `reason/<rule>`), visible in the runner's
UI and in the pipeline result. The plumbing is `beam_groups`, shared with the clip builder.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from jax_spatial.datasets import beam_groups, examples

NAMESPACE = "spatial_qa"


class GenerateExamples(beam_groups.GenerateGroups):
    """`PBegin -> PCollection[(key, example)]` over fixed scene-id groups.

    Args:
      spec: the source, by value (each worker builds its own).
      shards: the scene-id groups (`examples.partition`).
      config: `engine.GenerateConfig`.
    """

    def __init__(self, spec: examples.SourceSpec, shards: Sequence[Sequence[str]], config):
        generate = functools.partial(examples.generate_shard, spec, config=config)
        super().__init__(shards, generate, NAMESPACE, unit="frame")
        self.spec = spec
        self.config = config
