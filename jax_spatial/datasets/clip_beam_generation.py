"""Beam side of the `spatial_qa_clips` builder: scene groups in, `(key, clip example)` out.

The same scheme as `beam_generation` for single frames (both are `beam_groups`): the unit of
work is a fixed scene-id group (`examples.partition`), each group's clips are made, asked
about (one batched call of the question generator) and validated on one worker, and TFDS
orders examples by a hash of their keys, so the bytes do not depend on how many workers ran.
Counters go to the `spatial_qa_clips` namespace: `clips_checked`, `clips_rejected`,
`qa_checked`, `qa_rejected`, `scenes_skipped`, `reason/<rule>`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from jax_spatial.datasets import beam_groups, clip_examples

NAMESPACE = "spatial_qa_clips"


class GenerateClipExamples(beam_groups.GenerateGroups):
    """`PBegin -> PCollection[(key, clip example)]` over fixed scene-id groups.

    Args:
      spec: sources, sampling and question generator, by value (each worker builds its own).
      shards: the scene-id groups (`examples.partition`).
    """

    def __init__(self, spec: clip_examples.ClipSpec, shards: Sequence[Sequence[str]]):
        generate = functools.partial(clip_examples.generate_clip_shard, spec)
        super().__init__(shards, generate, NAMESPACE, unit="clip")
        self.spec = spec
