"""Relations between objects, decided in view space.

`single_view_relations` (jit) computes every pairwise, existence and counting fact of a padded
batch; `reference.reference_relations` is its slow per-pair reference.
"""

from jax_spatial.relations.single_view import (
    RelationConfig,
    compute_single_view_relations,
    single_view_relations,
)
from jax_spatial.relations.types import (
    FAMILIES,
    POSITION_FAMILIES,
    RELATIONS,
    SIZE_FAMILIES,
    SingleViewRelations,
)

__all__ = [
    "FAMILIES",
    "POSITION_FAMILIES",
    "RELATIONS",
    "SIZE_FAMILIES",
    "RelationConfig",
    "SingleViewRelations",
    "compute_single_view_relations",
    "single_view_relations",
]
