"""What each object of a frame is, in the numbers the relations compare.

Grounding runs teach a model, beside where each object name looks, to read off that object's
place and size (`object_facts`), and, at the end of the question, which of the question's
first two objects is further right, further away, higher, bigger, taller and wider
(`pair_signs`). These are the quantities `relations.reference` decides the position and size
relations with (the view frame's x right, y forward, z up; the box's volume, vertical
extent and width across the line of sight), so a model that carries them has what every
relation word asks for; which of them a question asks, and in which direction, is left for
the answer to learn. The end of the question is also taught which relation the question asks
(`relation_id`), so both halves of the answer sit in one place.

    facts = object_facts(obs)               # [n, 6] float32, scaled to about -2..2
    signs = pair_signs(facts, qa.objects)   # [6] int32: 1 first > second, 0 less, -1 none
    relation_id("left_of")                  # 0 (an index into RELATIONS; -1: none)
"""

from __future__ import annotations

import numpy as np

FACT_NAMES = ("right", "forward", "up", "volume", "height", "width")
NUM_FACTS = len(FACT_NAMES)

# Metres (positions) and natural-log sizes are divided by these, so a room's objects spread
# over about -2..2 in every fact and one L1 weight suits them all.
# (Procedural rooms, seen from 1.2-1.6 m up: x within +-2 m, y 1-4 m, z 0.5-2 m below.)
_SCALE = np.asarray([1.0, 1.5, 0.5, 3.0, 1.5, 1.5], np.float32)
_CENTRE = np.asarray([0.0, 2.8, -1.0, -1.8, -0.5, -0.5], np.float32)
# Differences below these (in scaled units) give no pair target: too close to call.
_TIE = np.asarray([0.02, 0.02, 0.02, 0.05, 0.05, 0.05], np.float32)


# The relations a question's end is taught to name (grounding runs): the position and size
# families, two directions each; any other relation gets no target (-1).
RELATIONS = (
    "left_of", "right_of", "in_front_of", "behind", "above", "below",
    "bigger_than", "smaller_than", "taller_than", "shorter_than", "wider_than", "thinner_than",
)  # fmt: skip


def relation_id(relation: str) -> int:
    """The relation's index in `RELATIONS`, or -1."""
    return RELATIONS.index(relation) if relation in RELATIONS else -1


def object_facts(obs) -> np.ndarray:
    """`[n, 6]` float32: view-frame centre (x, y, z) and log volume, height and width of each
    object of a `FrameObservation`, centred and scaled (`_CENTRE`, `_SCALE`)."""
    from jax_spatial.relations import reference
    from jax_spatial.relations.single_view import RelationConfig

    config = RelationConfig()
    n = len(obs.categories)
    out = np.zeros((n, NUM_FACTS), np.float32)
    for i in range(n):
        info = reference._object_info(obs.centre[i], obs.extent[i], obs.rotation[i], config)
        sizes = [max(info[k], config.min_extent_m) for k in ("volume", "height", "width")]
        out[i] = [info["x"], info["y"], info["z"], *np.log(sizes)]
    out = (out - _CENTRE) / _SCALE
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def pair_signs(facts: np.ndarray, objects) -> np.ndarray:
    """`[6]` int32 for the question's first two objects: 1 where the first's fact is the
    larger, 0 where it is the smaller, -1 where there is no target (fewer than two objects,
    or a difference too small to call)."""
    out = np.full(NUM_FACTS, -1, np.int32)
    objects = list(objects)
    if len(objects) < 2 or objects[0] == objects[1]:
        return out
    a, b = (int(o) for o in objects[:2])
    if max(a, b) >= len(facts) or min(a, b) < 0:
        return out
    diff = facts[a] - facts[b]
    clear = np.abs(diff) > _TIE
    out[clear] = (diff[clear] > 0).astype(np.int32)
    return out


__all__ = ["FACT_NAMES", "NUM_FACTS", "RELATIONS", "object_facts", "pair_signs", "relation_id"]
