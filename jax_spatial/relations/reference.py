"""A slow, independent reference for the single-view relations: one object pair at a time.

Written the way open-source spatial-VQA pipelines (SpatialRGPT, VQASynth) evaluate their
predicates: a Python loop over object pairs, each predicate a small function of two objects
whose geometry is derived with numpy, in float64, from the object's own data for that pair
(VQASynth calls `A_cloud.get_center()` inside every predicate). Here every pair re-derives both
boxes' geometry from their eight corners: centre as the corners' mean, axis-aligned bounds as
their min/max, sides as corner-to-corner edge lengths, width across the line of sight as the
spread of the corners projected on the perpendicular. `per_pair_geometry=False` derives it once
per object instead (same results, a faster Python baseline).

It shares nothing with `single_view.py` but the rules (docs/relations.md) and `RelationConfig`.
Tests re-derive every answer with it; the benchmark uses it as the baseline.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence

import numpy as np

from jax_spatial.observe import FrameObservation
from jax_spatial.relations.single_view import RelationConfig
from jax_spatial.relations.types import FAMILIES, POSITION_FAMILIES, RELATIVE_KINDS

DEFAULT_CONFIG = RelationConfig()

# Corner k of a unit box, as signs on the box's own x, y, z axes.
_SIGNS = np.array(list(itertools.product((-1.0, 1.0), repeat=3)))


@dataclasses.dataclass
class ReferenceFacts:
    """The facts of one frame of n objects with K distinct categories.

    Attributes:
      pair: `[n, n, 6]` int8 "i <relation> j" sign per family (`FAMILIES` order).
      pair_value: `[n, n, 6]` float64 measured value (metres or log ratio).
      unique_ref: `[n]` bool.
      categories: the K category names in order of first appearance (the frame-local ids).
      exists: `[n, K, 6, 2]` int8 existence answers per reference object r.
      counts: `[K]` int; count_ok: `[K]` bool.
      relative: `[n]` int bit mask over `RELATIVE_KINDS` (bit k: kind k names the object).
    """

    pair: np.ndarray
    pair_value: np.ndarray
    unique_ref: np.ndarray
    categories: list[str]
    exists: np.ndarray
    counts: np.ndarray
    count_ok: np.ndarray
    relative: np.ndarray | None = None

    def relative_names(self, i: int) -> list[str]:
        """Names of the relative expressions that single out object i ("leftmost", ...)."""
        mask = 0 if self.relative is None else int(self.relative[i])
        return [kind[0] for k, kind in enumerate(RELATIVE_KINDS) if mask >> k & 1]


def _object_info(centre, extent, rotation, config: RelationConfig, hidden: float = 0.0) -> dict:
    """Per-object quantities, all from the 8 corners of the box (float64).

    `hidden` is how far a lifted box may reach behind what the camera saw (metres): its volume
    and width then have upper bounds (`volume_hi`, `width_hi`) beside the measured values.
    """
    corners = (
        np.asarray(centre, np.float64)
        + (_SIGNS * (0.5 * np.asarray(extent, np.float64))) @ np.asarray(rotation, np.float64).T
    )  # [8, 3]
    c = corners.mean(axis=0)
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    # Corner 0 is (-,-,-); corners 4, 2, 1 differ from it along the box's x, y, z axes.
    sides = [float(np.linalg.norm(corners[k] - corners[0])) for k in (4, 2, 1)]
    floored = [max(s, config.min_extent_m) for s in sides]
    # Width across the line of sight: spread of the corners along the horizontal direction
    # perpendicular to the ray to the centre. The box's floored sides widen it the same way
    # as the volume, so a flat box seen edge-on is not thinner than 1 cm.
    rng = math.hypot(c[0], c[1])
    if rng < 1e-6:
        perp = np.array([1.0, 0.0, 0.0])
    else:
        perp = np.array([c[1] / rng, -c[0] / rng, 0.0])
    floored_corners = c + (_SIGNS * (0.5 * np.array(floored))) @ np.asarray(rotation, np.float64).T
    proj = floored_corners @ perp
    vert = floored_corners[:, 2]
    ray = np.array([-perp[1], perp[0], 0.0]) if rng >= 1e-6 else np.array([0.0, 1.0, 0.0])
    sight = floored_corners @ ray
    depth_along_sight = max(float(sight.max() - sight.min()), config.min_extent_m)
    volume = floored[0] * floored[1] * floored[2]
    width = max(float(proj.max() - proj.min()), config.min_extent_m)
    height = float(vert.max() - vert.min())
    # A lifted box (hidden > 0) may also be `lifted_side_shrink` too small on every side.
    grow = 1.0 + (config.lifted_side_shrink if hidden > 0 else 0.0)
    return {
        "hidden": float(hidden),
        "volume_hi": volume * (depth_along_sight + hidden) / depth_along_sight * grow**3,
        "width_hi": (width + hidden) * grow,
        "height_hi": height * grow,
        "x": c[0],
        "y": c[1],
        "z": c[2],
        "half": 0.5 * (hi - lo),
        "bottom": lo[2],
        "top": hi[2],
        "azimuth": math.atan2(c[0], c[1]),
        "elevation": math.atan2(c[2], rng),
        "range": rng,
        "volume": volume,
        "height": height,
        "width": width,
    }


def _separated(d, a, b, axis, config):
    margin = max(config.abs_margin_m, config.frac_margin * (a["half"][axis] + b["half"][axis]))
    # A lifted box's centre may be off by a share of its hidden depth.
    return abs(d) > margin + config.lifted_centre_slack * (a["hidden"] + b["hidden"])


def left_right(a: dict, b: dict, config: RelationConfig) -> tuple[int, float]:
    """+1 when a is clearly left of b, -1 clearly right of b, else 0; and x_b - x_a."""
    d = b["x"] - a["x"]
    if not _separated(d, a, b, 0, config):
        return 0, d
    gap = math.radians(config.min_image_angle_deg)
    # Azimuth grows to the right; the left one must also look left in the image.
    if d > 0 and b["azimuth"] - a["azimuth"] > gap:
        return 1, d
    if d < 0 and a["azimuth"] - b["azimuth"] > gap:
        return -1, d
    return 0, d


def above_below(a: dict, b: dict, config: RelationConfig) -> tuple[int, float]:
    """+1 when a is clearly above b, -1 clearly below, else 0; and z_a - z_b."""
    d = a["z"] - b["z"]
    if not _separated(d, a, b, 2, config):
        return 0, d
    upper, lower = (a, b) if d > 0 else (b, a)
    if upper["bottom"] < lower["top"] - config.contact_tolerance_m:
        return 0, d
    # Over it on the floor plan, not merely higher elsewhere in the room.
    for axis in ("x", "y"):
        k = "xyz".index(axis)
        gap = abs(a[axis] - b[axis]) - (a["half"][k] + b["half"][k])
        if gap > config.max_horizontal_gap_m:
            return 0, d
    if upper["elevation"] - lower["elevation"] <= math.radians(config.min_image_angle_deg):
        return 0, d
    return (1 if d > 0 else -1), d


def front_behind(a: dict, b: dict, config: RelationConfig) -> tuple[int, float]:
    """+1 when a is clearly in front of b (nearer), -1 clearly behind, else 0; and y_b - y_a."""
    d = b["y"] - a["y"]
    if not _separated(d, a, b, 1, config):
        return 0, d
    if d > 0 and a["range"] < b["range"]:
        return 1, d
    if d < 0 and a["range"] > b["range"]:
        return -1, d
    return 0, d


def _size_compare(sa, sb, ratio, min_diff, sa_hi=None, sb_hi=None) -> tuple[int, float]:
    """The bigger one must beat the other's upper bound (its measured size when exact)."""
    sa_hi = sa if sa_hi is None else sa_hi
    sb_hi = sb if sb_hi is None else sb_hi
    value = math.log(sa) - math.log(sb)
    if value > 0 and sa / sb_hi >= ratio and sa - sb_hi >= min_diff:
        return 1, value
    if value < 0 and sb / sa_hi >= ratio and sb - sa_hi >= min_diff:
        return -1, value
    return 0, value


def bigger_smaller(a: dict, b: dict, config: RelationConfig) -> tuple[int, float]:
    return _size_compare(
        a["volume"], b["volume"], config.volume_ratio, 0.0, a["volume_hi"], b["volume_hi"]
    )


def taller_shorter(a: dict, b: dict, config: RelationConfig) -> tuple[int, float]:
    return _size_compare(
        a["height"],
        b["height"],
        config.height_ratio,
        config.height_diff_m,
        a["height_hi"],
        b["height_hi"],
    )


def wider_thinner(a: dict, b: dict, config: RelationConfig) -> tuple[int, float]:
    return _size_compare(
        a["width"],
        b["width"],
        config.width_ratio,
        config.width_diff_m,
        a["width_hi"],
        b["width_hi"],
    )


PREDICATES = {
    "left_right": left_right,
    "above_below": above_below,
    "front_behind": front_behind,
    "bigger_smaller": bigger_smaller,
    "taller_shorter": taller_shorter,
    "wider_thinner": wider_thinner,
}


def reference_relations(
    centre: np.ndarray,
    extent: np.ndarray,
    rotation: np.ndarray,
    categories: Sequence[str],
    reference_phrases: Sequence[str],
    exhaustive: bool,
    config: RelationConfig = DEFAULT_CONFIG,
    per_pair_geometry: bool = True,
    ambiguous: Sequence[bool] | None = None,
    complete: Sequence[bool] | None = None,
    hidden_depth: Sequence[float] | None = None,
    askable: Sequence[bool] | None = None,
) -> ReferenceFacts:
    """All single-view facts of one frame, pair by pair.

    Args:
      centre, extent, rotation: `[n, 3]`, `[n, 3]`, `[n, 3, 3]` view-frame boxes.
      categories, reference_phrases: `n` names each.
      exhaustive: counting allowed on this frame.
      config: the margins.
      per_pair_geometry: derive both boxes' geometry from their corners for every pair (the
        pipelines' way); False derives it once per object.
      ambiguous: per object, its name is a bare category other objects share, so it is never
        a unique reference (default: none is).
      complete: per object, its box covers the whole object; every family needs both boxes
        complete (default: all are).
      hidden_depth: per object, metres a lifted box may reach behind what was seen (default 0).
      askable: per object, it may be asked about (default: all are). The others are glimpses:
        they count for uniqueness, relative expressions, counts and "no" existence answers,
        never as a question's object or as the witness of a "yes".
    """
    n = len(categories)
    hidden = [0.0] * n if hidden_depth is None else [float(h) for h in hidden_depth]
    info = lambda i: _object_info(centre[i], extent[i], rotation[i], config, hidden[i])
    infos = None if per_pair_geometry else [info(i) for i in range(n)]
    complete = [True] * n if complete is None else [bool(c) for c in complete]
    F = len(FAMILIES)
    pair = np.zeros((n, n, F), np.int8)
    pair_value = np.zeros((n, n, F), np.float64)
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            a, b = (info(i), info(j)) if per_pair_geometry else (infos[i], infos[j])
            for f, family in enumerate(FAMILIES):
                sign, value = PREDICATES[family](a, b, config)
                if not (complete[i] and complete[j]):
                    sign = 0  # an incomplete (cut-off, hidden) lifted box is not trusted
                pair[i, j, f] = sign
                pair_value[i, j, f] = value

    # A bare category name other objects share never names one object (`ambiguous`).
    ambiguous = [False] * n if ambiguous is None else list(ambiguous)
    askable = [True] * n if askable is None else [bool(a) for a in askable]
    unique_ref = np.array(
        [
            askable[i]
            and sum(p == reference_phrases[i] for p in reference_phrases) == 1
            and not ambiguous[i]
            for i in range(n)
        ],
        bool,
    )

    names: list[str] = []
    for name in categories:
        if name not in names:
            names.append(name)
    K = len(names)
    counts = np.array([sum(c == name for c in categories) for name in names], np.int64)
    count_ok = (counts > 0) & bool(exhaustive)

    exists = np.zeros((n, K, F, 2), np.int8)
    for r in range(n):
        if not askable[r]:
            continue
        for k, name in enumerate(names):
            others = [o for o in range(n) if o != r and categories[o] == name]
            if not others:
                continue
            for family in POSITION_FAMILIES:
                f = FAMILIES.index(family)
                for d, wanted in ((0, 1), (1, -1)):
                    if any(int(pair[o, r, f]) == wanted for o in others if askable[o]):
                        exists[r, k, f, d] = 1
                    elif all(int(pair[o, r, f]) == -wanted for o in others):
                        exists[r, k, f, d] = -1

    # Relative expressions, one object and one kind at a time, read off the pair signs.
    relative = np.zeros(n, np.int64)
    for o in range(n):
        if not askable[o]:
            continue
        others = [m for m in range(n) if m != o and categories[m] == categories[o]]
        for k, (_, family, sign, rank) in enumerate(RELATIVE_KINDS):
            f = FAMILIES.index(family)
            signs = [int(pair[o, m, f]) for m in others]
            if len(others) < rank or any(v == 0 for v in signs):
                continue
            # "m is on o's sign side": o left of m is +1, so m left of o is -sign.
            if sum(v == -sign for v in signs) == rank - 1:
                relative[o] |= 1 << k
    return ReferenceFacts(pair, pair_value, unique_ref, names, exists, counts, count_ok, relative)


def reference_relations_for(
    obs: FrameObservation, config: RelationConfig = DEFAULT_CONFIG, per_pair_geometry: bool = True
) -> ReferenceFacts:
    """`reference_relations` of a `FrameObservation`: its objects at positions `0..n-1`, then
    its glimpses (not askable), as the batch holds them.

    Objects whose phrase or category did not fit the batch (`Glimpses.dropped_*`) are neither
    unique references nor named relatively.
    """
    n = obs.num_objects
    g = obs.glimpses
    if g is None or (
        not len(g) and not g.dropped_phrases and not g.dropped_categories and not len(g.regions)
    ):
        return reference_relations(
            obs.centre,
            obs.extent,
            obs.rotation,
            obs.categories,
            obs.reference_phrases,
            obs.exhaustive,
            config,
            per_pair_geometry,
            obs.ambiguous_reference,
            obs.box_complete,
            obs.hidden_depth,
        )
    dropped_phrases, dropped_categories = set(g.dropped_phrases), set(g.dropped_categories)
    ambiguous = [
        a or p in dropped_phrases
        for a, p in zip(obs.ambiguous_reference, obs.reference_phrases, strict=True)
    ] + [False] * len(g)
    facts = reference_relations(
        np.concatenate([obs.centre, g.centre]),
        np.concatenate([obs.extent, g.extent]),
        np.concatenate([obs.rotation, g.rotation]),
        list(obs.categories) + list(g.categories),
        list(obs.reference_phrases) + g.reference_phrases,
        obs.exhaustive,
        config,
        per_pair_geometry,
        ambiguous,
        list(obs.box_complete) + list(g.box_complete),
        list(obs.hidden_depth) + list(g.hidden_depth),
        askable=[True] * n + [False] * len(g),
    )
    regions = g.regions
    for o, category in enumerate(obs.categories):
        if category in dropped_categories:
            facts.relative[o] = 0
            continue
        # Unlabelled regions may hide any object at any depth: only "leftmost"-like kinds
        # with every region on the far side of the object's pixel box survive.
        for k, (_, family, sign, _) in enumerate(RELATIVE_KINDS):
            if not len(regions):
                break
            x1, x2 = obs.box2d[o][0], obs.box2d[o][2]
            beyond = (
                all(r[0] >= x2 for r in regions) if sign > 0 else all(r[2] <= x1 for r in regions)
            )
            if family != "left_right" or not beyond:
                facts.relative[o] &= ~(1 << k)
    return facts
