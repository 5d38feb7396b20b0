"""Slow, independent references for the multi-view relations: one object at a time.

Plain Python loops over objects, pairs and triples, in float64, from a clip's own numpy dict
(the `make_clip_batch` input), sharing nothing with `relations.py` but the rules
(docs/multi_view.md) and `MultiViewConfig`. Where an independent algorithm exists it is
used:

* box distance: a bounded linear least-squares problem solved by scipy's exact active-set
  solver (`lsq_linear`, method "bvls"): minimise `|c_a + R_a u - c_b - R_b w|` over
  `|u| <= e_a / 2`, `|w| <= e_b / 2`, no features, no separating axes;
* longest side: the corner-to-corner edge lengths of the box;
* relative direction: the angle from `atan2(cross, dot)` of the two floor-plane vectors, the
  classes by explicit sector tests, the query's half-width from its footprint corners;
* first appearance: a scan of frames in time order; counts: sets of object indices.

The tests compare the compiled pass against these; the benchmark times them as the baseline.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping

import numpy as np
from scipy.optimize import lsq_linear

from jax_spatial.multiview.batch import local_ids
from jax_spatial.multiview.relations import MultiViewConfig

DEFAULT_CONFIG = MultiViewConfig()

# Corner k of a unit box, as signs on the box's own axes.
_SIGNS = np.array(list(itertools.product((-1.0, 1.0), repeat=3)))


def box_corners(centre, extent, rotation) -> np.ndarray:
    """`[8, 3]` corners of one box, float64."""
    c = np.asarray(centre, np.float64)
    e = np.asarray(extent, np.float64)
    r = np.asarray(rotation, np.float64)
    return c + (_SIGNS * (0.5 * e)) @ r.T


def reference_box_distance(centre_a, extent_a, rotation_a, centre_b, extent_b, rotation_b):
    """Closest-point distance of two solid oriented boxes by bounded least squares (float64).

    Points of box a are `c_a + R_a u` with `|u_k| <= e_a,k / 2` (likewise b), so the distance
    is `min |[R_a, -R_b] [u; w] - (c_b - c_a)|` over a box of `(u, w)`: a convex, bounded
    linear least-squares problem that BVLS solves exactly. 0 when the boxes overlap.
    """
    ra = np.asarray(rotation_a, np.float64)
    rb = np.asarray(rotation_b, np.float64)
    half = 0.5 * np.concatenate(
        [np.asarray(extent_a, np.float64), np.asarray(extent_b, np.float64)]
    )
    target = np.asarray(centre_b, np.float64) - np.asarray(centre_a, np.float64)
    matrix = np.concatenate([ra, -rb], axis=1)  # [3, 6]
    # BVLS needs a strictly positive box width; a flat side is a zero-width interval.
    lo, hi = -half, np.maximum(half, 1e-15)
    res = lsq_linear(matrix, target, bounds=(lo, hi), method="bvls", tol=1e-12)
    return float(np.linalg.norm(matrix @ res.x - target))


def longest_side(centre, extent, rotation) -> float:
    """The longest of the box's three side lengths, measured corner to corner."""
    corners = box_corners(centre, extent, rotation)
    # Corner 0 is (-,-,-); corners 4, 2, 1 differ from it along the box's x, y, z axes.
    return max(float(np.linalg.norm(corners[k] - corners[0])) for k in (4, 2, 1))


def footprint_radius(centre, extent, rotation) -> float:
    """Largest horizontal distance of a box corner from the box centre."""
    corners = box_corners(centre, extent, rotation)
    c = np.asarray(centre, np.float64)
    return max(math.hypot(p[0] - c[0], p[1] - c[1]) for p in corners)


def _signed_angle_deg(d, v) -> float:
    """Angle from floor-plane vector d to v, degrees in (-180, 180], anticlockwise positive."""
    cross = d[0] * v[1] - d[1] * v[0]
    dot = d[0] * v[0] + d[1] * v[1]
    return math.degrees(math.atan2(cross, dot))


def direction_classes(angle: float, back_angle: float) -> dict[str, tuple[int, float]]:
    """Per difficulty, `(class index, degrees to the nearest class boundary)`, by sectors."""
    a = abs(angle)
    if angle > 0:
        easy = 0  # left
    else:
        easy = 1  # right
    if a >= back_angle:
        medium = 2  # back
    else:
        medium = easy
    if angle > 0:
        hard = 0 if a < 90 else 2  # front-left / back-left
    else:
        hard = 1 if a < 90 else 3  # front-right / back-right
    boundaries = {
        "easy": (0.0, 180.0),
        "medium": (0.0, back_angle),
        "hard": (0.0, 90.0, 180.0),
    }
    cls = {"easy": easy, "medium": medium, "hard": hard}
    return {k: (cls[k], min(abs(a - x) for x in boundaries[k])) for k in cls}


@dataclasses.dataclass
class ReferenceClipFacts:
    """Facts of one clip of n objects and t frames (float64 where measured).

    Attributes mirror `MultiViewRelations` cut to the clip's real objects: `seen [n]`,
    `unique_category [n]`, `distance [n, n]`, `distance_ok [n, n]`, `size [n]`,
    `direction_angle [n, n, n]`, `direction_{easy,medium,hard} [n, n, n]` (-1 unclear),
    `direction_slack [3, n, n, n]` (degrees beyond the margin, for tie-aware comparisons),
    `first_frame [n]`, `first_time [n]`, `appears_before [n, n]`, `counts` per category id
    (dict id -> count) and `count_complete` (dict id -> bool), `nearest [n]`,
    `nearest_clear [n]`.
    """

    seen: np.ndarray
    unique_category: np.ndarray
    distance: np.ndarray
    distance_ok: np.ndarray
    size: np.ndarray
    direction_angle: np.ndarray
    direction_easy: np.ndarray
    direction_medium: np.ndarray
    direction_hard: np.ndarray
    direction_slack: np.ndarray
    first_frame: np.ndarray
    first_time: np.ndarray
    appears_before: np.ndarray
    counts: dict
    count_complete: dict
    nearest: np.ndarray
    nearest_clear: np.ndarray


def _category_ids(clip: Mapping) -> list[int]:
    raw = list(clip["category"])
    if all(isinstance(c, str) for c in raw):
        return [int(i) for i in local_ids(raw)[0]]
    return [int(c) for c in raw]


def _rotations(clip: Mapping, n: int) -> list[np.ndarray]:
    if "rotation" in clip:
        return [np.asarray(r, np.float64) for r in clip["rotation"]]
    if "yaw" in clip:
        out = []
        for y in clip["yaw"]:
            c, s = math.cos(y), math.sin(y)
            out.append(np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]))
        return out
    return [np.eye(3) for _ in range(n)]


def closest_of(distances: list[float], config: MultiViewConfig) -> tuple[int, bool]:
    """Index of the smallest distance and whether the runner-up is clearly further."""
    if not distances:
        return -1, False
    order = sorted(range(len(distances)), key=lambda k: (distances[k], k))
    best = order[0]
    if len(order) < 2:
        return best, False
    d1, d2 = distances[order[0]], distances[order[1]]
    margin = max(config.closest_margin_m, config.closest_margin_frac * d2)
    return best, d2 - d1 > margin


@dataclasses.dataclass
class ClipGeometry:
    """One clip's boxes and frames as float64 Python lists (what every reference reads)."""

    centre: list
    extent: list
    rotation: list
    category: list
    visible: np.ndarray
    times: list

    @classmethod
    def of(cls, clip: Mapping) -> ClipGeometry:
        centre = [np.asarray(c, np.float64) for c in clip["centre"]]
        n = len(centre)
        visible = np.asarray(clip["visible"], bool)
        t = visible.shape[0]
        times = clip["frame_time"] if "frame_time" in clip else range(t)
        return cls(
            centre=centre,
            extent=[np.asarray(e, np.float64) for e in clip["extent"]],
            rotation=_rotations(clip, n),
            category=_category_ids(clip),
            visible=visible,
            times=[float(x) for x in times],
        )

    @property
    def n(self) -> int:
        return len(self.centre)


def reference_appearance(g: ClipGeometry, config: MultiViewConfig = DEFAULT_CONFIG):
    """`(first_frame [n], first_time [n], seen [n], appears_before [n, n])`: frames scanned
    from the earliest time (ties: lower index first)."""
    n, t = g.n, len(g.times)
    first_frame = np.full(n, -1, np.int64)
    first_time = np.zeros(n)
    for k in sorted(range(t), key=lambda k: (g.times[k], k)):
        for o in range(n):
            if g.visible[k, o] and first_frame[o] < 0:
                first_frame[o] = k
                first_time[o] = g.times[k]
    seen = first_frame >= 0
    before = np.zeros((n, n), bool)
    for a in range(n):
        for b in range(n):
            if seen[a] and seen[b] and first_time[b] - first_time[a] > config.appearance_margin_s:
                before[a, b] = True
    return first_frame, first_time, seen, before


def reference_distances(g: ClipGeometry, seen) -> tuple[np.ndarray, np.ndarray]:
    """`(distance [n, n], distance_ok [n, n])` by bounded least squares, pair by pair."""
    n = g.n
    distance = np.zeros((n, n))
    ok = np.zeros((n, n), bool)
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            distance[i, j] = reference_box_distance(
                g.centre[i], g.extent[i], g.rotation[i], g.centre[j], g.extent[j], g.rotation[j]
            )
            ok[i, j] = bool(seen[i] and seen[j])
    return distance, ok


def reference_directions(g: ClipGeometry, seen, config: MultiViewConfig = DEFAULT_CONFIG):
    """`(angle [n, n, n], {level: classes [n, n, n]}, slack [3, n, n, n])`, triple by triple.

    `slack` is the degrees a clear triple has beyond its margin (negative: unclear; -inf:
    excluded by the other filters), for tie-aware comparisons.
    """
    n = g.n
    angle = np.zeros((n, n, n))
    classes = {k: np.full((n, n, n), -1, np.int64) for k in ("easy", "medium", "hard")}
    slack = np.full((3, n, n, n), -np.inf)
    radius = [footprint_radius(g.centre[o], g.extent[o], g.rotation[o]) for o in range(n)]
    for s, f, q in itertools.product(range(n), repeat=3):
        d = g.centre[f][:2] - g.centre[s][:2]
        v = g.centre[q][:2] - g.centre[s][:2]
        dist_f, dist_q = math.hypot(d[0], d[1]), math.hypot(v[0], v[1])
        if dist_f > 0 and dist_q > 0:
            angle[s, f, q] = _signed_angle_deg(d, v)
        if len({s, f, q}) < 3 or not (seen[s] and seen[f] and seen[q]):
            continue
        if min(dist_f, dist_q) < config.min_direction_distance_m:
            continue
        margin = config.direction_margin_deg
        if config.direction_query_extent:
            margin += math.degrees(math.asin(min(1.0, radius[q] / dist_q)))
        levels = direction_classes(angle[s, f, q], config.back_angle_deg).items()
        for level, (name, (cls, gap)) in enumerate(levels):
            slack[level, s, f, q] = gap - margin
            if gap >= margin:
                classes[name][s, f, q] = cls
    return angle, classes, slack


def reference_counts(g: ClipGeometry, seen) -> tuple[dict, dict]:
    """Per category id: seen objects (a set, so each once) and whether all of them are seen."""
    counts: dict[int, int] = {}
    complete: dict[int, bool] = {}
    for c in sorted(set(g.category)):
        members = {o for o in range(g.n) if g.category[o] == c}
        shown = {o for o in members if seen[o]}
        counts[c] = len(shown)
        complete[c] = bool(shown) and shown == members
    return counts, complete


def reference_nearest(distance, distance_ok, config: MultiViewConfig = DEFAULT_CONFIG):
    """`(nearest [n], nearest_clear [n])` from a distance table."""
    n = len(distance)
    nearest = np.full(n, -1, np.int64)
    clear = np.zeros(n, bool)
    for i in range(n):
        others = [j for j in range(n) if distance_ok[i, j]]
        k, ok = closest_of([distance[i, j] for j in others], config)
        if k >= 0:
            nearest[i] = others[k]
            clear[i] = ok
    return nearest, clear


def reference_clip_facts(
    clip: Mapping, config: MultiViewConfig = DEFAULT_CONFIG, directions: bool = True
) -> ReferenceClipFacts:
    """Every multi-view fact of one clip dict, object by object (slow; float64).

    `directions=False` leaves the `[n, n, n]` direction arrays empty-valued (all -1, angle 0),
    for callers that only need the other facts quickly.
    """
    g = ClipGeometry.of(clip)
    n = g.n
    first_frame, first_time, seen, before = reference_appearance(g, config)
    unique = np.zeros(n, bool)
    for o in range(n):
        same = sum(1 for p in range(n) if g.category[p] == g.category[o])
        unique[o] = bool(seen[o]) and same == 1
    distance, distance_ok = reference_distances(g, seen)
    size = np.array([longest_side(g.centre[o], g.extent[o], g.rotation[o]) for o in range(n)])
    if directions:
        angle, classes, slack = reference_directions(g, seen, config)
    else:
        angle = np.zeros((n, n, n))
        classes = {k: np.full((n, n, n), -1, np.int64) for k in ("easy", "medium", "hard")}
        slack = np.full((3, n, n, n), -np.inf)
    counts, complete = reference_counts(g, seen)
    nearest, nearest_clear = reference_nearest(distance, distance_ok, config)
    return ReferenceClipFacts(
        seen=seen,
        unique_category=unique,
        distance=distance,
        distance_ok=distance_ok,
        size=size,
        direction_angle=angle,
        direction_easy=classes["easy"],
        direction_medium=classes["medium"],
        direction_hard=classes["hard"],
        direction_slack=slack,
        first_frame=first_frame,
        first_time=first_time,
        appears_before=before,
        counts=counts,
        count_complete=complete,
        nearest=nearest,
        nearest_clear=nearest_clear,
    )


__all__ = [
    "ClipGeometry",
    "ReferenceClipFacts",
    "box_corners",
    "closest_of",
    "direction_classes",
    "footprint_radius",
    "longest_side",
    "reference_appearance",
    "reference_box_distance",
    "reference_clip_facts",
    "reference_counts",
    "reference_directions",
    "reference_distances",
    "reference_nearest",
]
