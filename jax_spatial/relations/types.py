"""Relation tensors the jitted relation pass emits and the QA stage consumes.

Six single-view relation families. Each is a comparison with two directions; `+1` means the
first word applies to "i (relation) j", `-1` the second, `0` unclear (inside the margins),
invalid or i == j. Decided in the view frame (x right, y forward, z up); the clarity rules
are in `single_view.py` and docs/relations.md.

| family           | +1 (first)  | -1 (second)  | measured on                                    |
|------------------|-------------|--------------|------------------------------------------------|
| `left_right`     | left of     | right of     | x of the centres (and their azimuths)          |
| `above_below`    | above       | below        | z of the centres (and box bottoms/tops)        |
| `front_behind`   | in front of | behind       | y of the centres, smaller = in front (ranges)  |
| `bigger_smaller` | bigger than | smaller than | box volume                                     |
| `taller_shorter` | taller than | shorter than | vertical extent                                |
| `wider_thinner`  | wider than  | thinner than | horizontal extent across the line of sight     |
"""

from __future__ import annotations

import flax.struct
import jax.numpy as jnp

FAMILIES = (
    "left_right",
    "above_below",
    "front_behind",
    "bigger_smaller",
    "taller_shorter",
    "wider_thinner",
)
# Relation names by (family, direction index): direction 0 is the family's +1 word.
RELATIONS = {
    "left_right": ("left_of", "right_of"),
    "above_below": ("above", "below"),
    "front_behind": ("in_front_of", "behind"),
    "bigger_smaller": ("bigger_than", "smaller_than"),
    "taller_shorter": ("taller_than", "shorter_than"),
    "wider_thinner": ("wider_than", "thinner_than"),
}
POSITION_FAMILIES = ("left_right", "above_below", "front_behind")
SIZE_FAMILIES = ("bigger_smaller", "taller_shorter", "wider_thinner")

# Relative referring expressions: (name, family, sign, rank). Object o of category c is "the
# <name> c" when every other object of c that may be seen stands clearly in the family's
# relation to it, exactly `rank - 1` of them on the `sign` side of o and the rest on the other:
# "leftmost" (left_right, +1, 1) is clearly left of every other c; "second_from_left" has one
# c clearly left of it and every other c clearly right. Bit k of `relative` is kind k.
RELATIVE_KINDS = (
    ("leftmost", "left_right", 1, 1),
    ("rightmost", "left_right", -1, 1),
    ("second_from_left", "left_right", 1, 2),
    ("second_from_right", "left_right", -1, 2),
    ("nearest", "front_behind", 1, 1),
    ("farthest", "front_behind", -1, 1),
    ("tallest", "taller_shorter", 1, 1),
    ("shortest", "taller_shorter", -1, 1),
    ("biggest", "bigger_smaller", 1, 1),
    ("smallest", "bigger_smaller", -1, 1),
)


@flax.struct.dataclass
class SingleViewRelations:
    """Every single-view fact of a batch of frames. A pytree; all shapes static.

    Attributes:
      pair: `[B, N, N, F]` int8 sign per family (see module doc); antisymmetric in (i, j).
      pair_value: `[B, N, N, F]` float32 the measured quantity the sign was decided on
        (metres, or a log ratio for sizes), positive when the +1 word applies.
      unique_ref: `[B, N]` bool the object is askable and its reference phrase names exactly
        one valid object of the frame (glimpses included), so "the <phrase>" points at it.
      exists: `[B, N, C, F, 2]` int8 "is there a <category c> <relation f, d> the <object r>":
        +1 yes (some other object of c has that relation clearly), -1 no (every other object of c
        has the opposite relation clearly, and there is at least one), 0 unclear. C == N:
        categories are frame-local ids. 0 wherever r is padding or not askable, and for the
        size families (existence is asked about positions only). A "yes" needs an askable
        witness; a "no" holds for every valid member, glimpses included.
      counts: `[B, C]` int32 number of valid objects per frame-local category.
      count_ok: `[B, C]` bool the category exists in the frame and the frame is exhaustive.
      relative: `[B, N]` int32 bit mask over `RELATIVE_KINDS` of the relative referring
        expressions that single the object out among the valid objects of its category
        ("the leftmost car"); 0 for padding, glimpses and objects alone in their category.
        None on results built without it.
    """

    pair: jnp.ndarray
    pair_value: jnp.ndarray
    unique_ref: jnp.ndarray
    exists: jnp.ndarray
    counts: jnp.ndarray
    count_ok: jnp.ndarray
    relative: jnp.ndarray | None = None
