"""Multi-view (frame-set) relations: clips of one scene, decided in its gravity-aligned world.

`batch.make_clip_batch` pads per-clip numpy dicts into a `ClipBatch` `[B, T, N]`;
`relations.multiview_relations` (jit) decides every fact of a batch, `reference` re-derives
them object by object in plain Python; `room` measures floor areas and `route` plans and
replays "go forward until ..." routes on a free-space grid.
"""

from jax_spatial.multiview.batch import T_BUCKETS, ClipBatch, local_ids, make_clip_batch
from jax_spatial.multiview.relations import (
    EASY_CLASSES,
    HARD_CLASSES,
    MEDIUM_CLASSES,
    MultiViewConfig,
    MultiViewRelations,
    compute_multiview_relations,
    multiview_relations,
)

__all__ = [
    "EASY_CLASSES",
    "HARD_CLASSES",
    "MEDIUM_CLASSES",
    "T_BUCKETS",
    "ClipBatch",
    "MultiViewConfig",
    "MultiViewRelations",
    "compute_multiview_relations",
    "local_ids",
    "make_clip_batch",
    "multiview_relations",
]
