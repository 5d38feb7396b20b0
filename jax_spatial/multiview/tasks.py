"""Multi-view questions: which to ask of each clip, balanced, from the compiled relations.

`clip_questions(clips, tasks, config, seed)` packs the clips into `ClipBatch`es (one per
object bucket), runs the compiled relation pass (`multiview_relations`) and, for relative
distance, the compiled `closest_candidate` over candidate sets drawn per clip; it then picks
each clip's questions on the host from those tensors and phrases them with the templates of
`multiview.templates`. A clip is a handful of questions, so the choice itself is a few
array look-ups per task; the cost is in the relations, which are computed for every object,
pair and triple of a batch at once.

**Naming** (`TaskConfig.naming`). A question names an object as "the <category>" when it is
seen in the clip and no other object of the scene, seen or not, has its category (the
relations' `unique_category`, checked again over every annotated object); so a person who
knows the room could not point at another one. VSI-Bench names objects only this way
(`naming="category"`). With `naming="caption"` (default) an object whose category repeats
may also be named by its caption ("the red chair") when no other object of the scene has
that caption or that category name: the same guarantee, and what the single-view side does
(DESIGN.md, "References"). Procedural rooms draw 5-12 objects from nine categories, so most
categories repeat; by category alone a clip names 1-5 objects (routes then have almost no
landmarks), by caption 7-12.

**Filters**, per task (every number is a `TaskConfig` field with its reason):

* `mv_counting`: categories with `count_complete` (every object of the category in the scene
  is seen by some frame, so the clip's count is the room's: the question says "in this
  room") and at least `min_count` (2) seen instances, each counted once however many frames
  show it; at most `max_count` (10); names plural in form ("clothes") are not counted.
* `abs_distance`: two named objects, closest points of their boxes at least
  `min_distance_m` (0.2 m) apart; the answer is printed in meters with one decimal.
* `object_size`: a named object's longest box side, in whole centimeters.
* numeric answers within the float32 error of a rounding boundary (`distance_guard_m`,
  `size_guard_cm`) are not asked: the printed digit could go either way.
* `room_size`: the exact polygon area (shoelace) where the clip has its floor polygon
  (procedural rooms); else VSI-Bench's alpha-shape area of the scan points when the caller
  passes it (`room_areas`); one decimal, square meters.
* `rel_distance`: a named target and `rel_distance_candidates` (4) named candidates; asked
  only where `closest_candidate` says the answer is clear (the runner-up further by
  `max(0.15 m, 10%)`).
* `rel_direction`: named (stand, face, query) triples where the level's mask holds (every
  class boundary at least 10 degrees plus the query's half-width away, objects 0.5 m apart).
* `appearance_order`: `appearance_categories` (4) categories whose first appearances (the
  earliest frame showing any of their objects) are each more than `appearance_margin_s`
  (1 s, the relations' rule) apart.
* `route`: start at named A facing named B, reach named C by landmarks that are all named;
  the planned route (`route.plan_route`) must have a turn (else there is nothing to fill
  in), cover at least `route_min_m` (1.5 m) and head for each landmark once. Options are
  turn sequences of the same length; the correct one replays to the goal (`route.replay`)
  and every distractor is replayed too and kept only if it fails.
* `rotation`: `rotation_pairs` clips (one object, two views, `meta["rotation"]`). The turn
  between two views is defined up to whole turns, so the number asked is the angle in the
  asked direction in `[0, 360)`: a turn of -105 degrees (clockwise) is 255 anticlockwise or
  105 clockwise. The bins variant asks the nearest multiple of 45 among four options 90
  degrees apart (the answer lies within 22.5 degrees of its option and 67.5 or more from the
  others). A pair whose symmetry report says ambiguous is never asked (the source refuses
  those; `ValueError` here if one arrives).

**Balance.** Multiple-choice letters are dealt in turn per (task, relation, number of
choices) from a seeded start, over the run in clip order, so each letter's share is exact
to one question per group; the distractors fill the other letters in random order.
Relative-direction answers are balanced over classes: each clip asks the class asked least
so far among the classes its clear triples offer.

**Determinism.** Every random choice of a clip comes from `np.random.default_rng([seed,
crc32(clip_id), stream])`; the dealt letters and class counts depend on the clips before it
in the run (that is what makes them balanced), not on batching.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import logging
import math
import zlib
from collections.abc import Sequence

import jax
import numpy as np

from jax_spatial.batching import BUCKETS, bucket_for
from jax_spatial.multiview import route as route_lib
from jax_spatial.multiview import templates as MT
from jax_spatial.multiview.batch import T_BUCKETS, local_ids, make_clip_batch
from jax_spatial.multiview.clip import Clip
from jax_spatial.multiview.qa_types import MULTI_VIEW_TASKS, ClipQA
from jax_spatial.multiview.relations import (
    EASY_CLASSES,
    HARD_CLASSES,
    MEDIUM_CLASSES,
    MultiViewConfig,
    closest_candidate_jit,
    multiview_relations,
)
from jax_spatial.multiview.room import polygon_area
from jax_spatial.qa import grammar
from jax_spatial.qa import templates as T

log = logging.getLogger(__name__)

LETTERS = "ABCDEFGH"
NAMINGS = ("category", "caption")
LEVELS = {"easy": EASY_CLASSES, "medium": MEDIUM_CLASSES, "hard": HARD_CLASSES}
# Random streams of a clip (the third word of its seed).
_STREAM_PICK = 0
_STREAM_CANDIDATES = 1
# Tasks whose phrasings differ per relation (template groups "multi_view/<task>/<relation>").
_BY_RELATION = frozenset({"rel_direction", "rotation"})
# Rotation bins: options are multiples of this, four of them this far apart times two.
BIN_DEG = 45


@dataclasses.dataclass(frozen=True)
class TaskConfig:
    """How many questions of each task a clip gets, and the filters. Frozen (hashable).

    Quotas (per clip; fewer when fewer pass the filters):
      mv_counting: 2 categories. A room has few categories with two or more objects.
      abs_distance, object_size: 2 each. Pairs and objects are many; two per clip keeps the
        tasks at similar shares over a run.
      room_size: 1, there is one room.
      rel_distance: 2 (distinct targets).
      rel_direction: 1 per level (easy, medium, hard), so 3 per clip.
      appearance_order: 1: four categories use most of a clip's first appearances.
      route: 1: planning with replayed distractors is the slowest task (tens of ms a try).
      rotation: 1 per relation (degrees, bins) per rotation pair.

    Filters (module docstring):
      naming: "caption" (default) or "category" (VSI-Bench).
      min_count, max_count: 2 and 10 (10: beyond that neither a viewer nor an annotation
        counts reliably; the single-view `QuotaConfig.max_count`).
      min_distance_m: 0.2 m: nearer objects touch or stand on each other (a cup on a table
        is 0 m from it) and "how far apart" has no interesting answer.
      distance_guard_m: 1 mm, the float32 error bound of `relations.box_distance`: a distance
        this close to a printed-digit boundary (x.x5 m) is not asked.
      size_guard_cm: 0.01 cm: the same for sizes (float32 of a box side is ~1e-5 cm off).
      rel_distance_candidates: 4 options, as VSI-Bench.
      appearance_categories: 4 categories, as VSI-Bench.
      options: 4 choices for appearance order and routes (3 when a one-turn route has only
        two other turn words).
      route_min_m: 1.5 m: the grid distance from the start to the goal a route must cover;
        nearer, the goal stands beside the start (two objects on one table) and the route is
        a step. A route also never heads for the same landmark twice: a person describing
        a way does not send the walker back to an object already reached.
      route_attempts: (A, B, C) triples tried per clip, 64: on procedural rooms about one
        plan in ten passes (a route exists, has a turn, is long enough, repeats no
        landmark); 64 tries find one in 6 of 8 clips, at ~15 ms a try.
      relations: the relation thresholds (`MultiViewConfig`).
      route_config: grid and planner settings (`route.RouteConfig`).
      batch_size: clips per compiled call (padded, so one program per object bucket).
    """

    mv_counting: int = 2
    abs_distance: int = 2
    object_size: int = 2
    room_size: int = 1
    rel_distance: int = 2
    rel_direction: int = 1
    appearance_order: int = 1
    route: int = 1
    rotation: int = 1
    naming: str = "caption"
    min_count: int = 2
    max_count: int = 10
    min_distance_m: float = 0.2
    distance_guard_m: float = 0.001
    size_guard_cm: float = 0.01
    rel_distance_candidates: int = 4
    appearance_categories: int = 4
    options: int = 4
    route_attempts: int = 64
    route_min_m: float = 1.5
    relations: MultiViewConfig = MultiViewConfig()
    route_config: route_lib.RouteConfig = route_lib.RouteConfig()
    batch_size: int = 8

    def __post_init__(self):
        if self.naming not in NAMINGS:
            raise ValueError(f"naming must be one of {NAMINGS}, got {self.naming!r}")
        for task in MULTI_VIEW_TASKS:
            if getattr(self, task) < 0:
                raise ValueError(f"TaskConfig.{task} must be >= 0, got {getattr(self, task)}")
        if self.rel_distance_candidates < 2 or self.options < 2:
            raise ValueError("multiple choice needs at least two options")


# --- balance -------------------------------------------------------------------------------


def stable_int(*parts) -> int:
    """A 32-bit hash of strings and numbers, the same in every process."""
    return zlib.crc32("\x1f".join(map(str, parts)).encode())


class LetterDealer:
    """Deals the correct letter of each multiple-choice question in turn, per group."""

    def __init__(self, seed: int = 0):
        self.seed = seed
        self._next: dict = {}

    def deal(self, group: str, n: int) -> int:
        key = (group, n)
        if key not in self._next:
            self._next[key] = stable_int(self.seed, group, n) % n
        letter = self._next[key]
        self._next[key] = (letter + 1) % n
        return letter


class ClassBalancer:
    """Picks, among the classes a clip offers, the one asked least so far (ties at random)."""

    def __init__(self):
        self.counts: collections.Counter = collections.Counter()

    def pick(self, group: str, available: Sequence, rng: np.random.Generator):
        low = min(self.counts[(group, c)] for c in available)
        tied = [c for c in available if self.counts[(group, c)] == low]
        choice = tied[int(rng.integers(len(tied)))]
        self.counts[(group, choice)] += 1
        return choice


def arrange(correct: str, distractors: Sequence[str], letter: int, rng) -> list[str]:
    """Choices with `correct` at position `letter` and the distractors around it, shuffled."""
    others = [distractors[k] for k in rng.permutation(len(distractors))]
    return others[:letter] + [correct] + others[letter:]


# --- per-clip facts --------------------------------------------------------------------------


@dataclasses.dataclass
class ClipFacts:
    """One clip's compiled relations cut to its objects, with how each object is named.

    Arrays are indexed by the clip's boxed objects (`Clip.arrays()` order); `position` maps
    them to `Clip.objects`. Attributes are those of `MultiViewRelations` without the batch
    axis, plus `category_names` (clip-local id -> name), `names` (`[n]` "the red chair" or
    None) and `closest` (relative-distance rows: target, candidates, closest, clear, gap).
    """

    position: np.ndarray
    categories: list[str]
    category_names: list[str]
    names: list[str | None]
    seen: np.ndarray
    unique_category: np.ndarray
    distance: np.ndarray
    distance_ok: np.ndarray
    size: np.ndarray
    direction: dict
    first_time: np.ndarray
    counts: np.ndarray
    count_complete: np.ndarray
    closest: list = dataclasses.field(default_factory=list)

    @property
    def named(self) -> np.ndarray:
        return np.array([n is not None for n in self.names], bool)


def object_names(clip: Clip, arrays: dict, unique_category, seen, naming: str):
    """Per boxed object, the words that single it out in the scene, or None (module doc)."""
    everyone = [o.category for o in clip.objects]
    captions = [o.caption for o in clip.objects]
    taken = collections.Counter(grammar.display_noun(c).lower() for c in everyone)
    taken.update(grammar.display_noun(c).lower() for c in captions if c)
    names = []
    for k, pos in enumerate(arrays["position"]):
        obj = clip.objects[int(pos)]
        if not seen[k]:
            names.append(None)
        elif unique_category[k] and everyone.count(obj.category) == 1:
            names.append(grammar.definite(obj.category))
        elif (
            naming == "caption"
            and obj.caption
            and grammar.display_noun(obj.caption).lower()
            != grammar.display_noun(obj.category).lower()
            and taken[grammar.display_noun(obj.caption).lower()] == 1
        ):
            names.append(grammar.definite(obj.caption))
        else:
            names.append(None)
    return names


def _clip_rng(seed: int, clip_id: str, stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), stable_int(clip_id), stream])


def _candidate_sets(facts: ClipFacts, k: int, slots: int, rng) -> list[tuple[int, list[int]]]:
    """Up to `slots` (target, k candidates) draws among named objects, distinct targets first."""
    named = np.flatnonzero(facts.named)
    if len(named) < k + 1:
        return []
    out = []
    for _round in range(max(1, slots // len(named) + 1)):
        for target in rng.permutation(named):
            others = [int(o) for o in named if o != target]
            out.append((int(target), [others[i] for i in rng.choice(len(others), k, False)]))
            if len(out) == slots:
                return out
    return out


def clip_facts(
    clips: Sequence[Clip], config: TaskConfig = TaskConfig(), seed: int = 0
) -> list[ClipFacts | None]:
    """The compiled relations of each clip (None for clips without boxed objects or frames).

    Clips are grouped by object and frame bucket and padded to `config.batch_size`, so a run
    compiles one relation program (and one `closest_candidate` program) per bucket pair.
    """
    arrays = [c.arrays() for c in clips]
    out: list[ClipFacts | None] = [None] * len(clips)
    groups: dict = collections.defaultdict(list)
    for k, (clip, arr) in enumerate(zip(clips, arrays, strict=True)):
        n, t = len(arr["centre"]), clip.num_frames
        if n == 0 or t == 0 or n > BUCKETS[-1] or t > T_BUCKETS[-1]:
            log.info("clip %s: %d objects, %d frames: no multi-view relations", clip.clip_id, n, t)
            continue
        groups[(bucket_for(n), bucket_for(t, T_BUCKETS))].append(k)
    slots = 4 * max(1, config.rel_distance)
    K = config.rel_distance_candidates
    for (N, Tb), members in sorted(groups.items()):
        for start in range(0, len(members), config.batch_size):
            chunk = members[start : start + config.batch_size]
            batch = make_clip_batch(
                [arrays[k] for k in chunk], n_bucket=N, t_bucket=Tb, batch_size=config.batch_size
            )
            rel = multiview_relations(batch, config.relations)
            host = jax.device_get(rel)
            B = config.batch_size
            target = np.full((B, slots), -1, np.int32)
            cands = np.zeros((B, slots, K), np.int32)
            cmask = np.zeros((B, slots, K), bool)
            for b, k in enumerate(chunk):
                facts = _facts_of(clips[k], arrays[k], host, b, config)
                out[k] = facts
                draws = _candidate_sets(
                    facts, K, slots, _clip_rng(seed, clips[k].clip_id, _STREAM_CANDIDATES)
                )
                for q, (t, cs) in enumerate(draws):
                    target[b, q], cands[b, q], cmask[b, q] = t, cs, True
            closest, gap, clear = jax.device_get(
                closest_candidate_jit(
                    rel.distance, rel.distance_ok, target, cands, cmask, config.relations
                )
            )
            for b, k in enumerate(chunk):
                out[k].closest = [
                    (int(target[b, q]), cands[b, q].tolist(), int(closest[b, q]),
                     bool(clear[b, q]), float(gap[b, q]))
                    for q in range(slots) if target[b, q] >= 0
                ]  # fmt: skip
    return out


def _facts_of(clip: Clip, arr: dict, host, b: int, config: TaskConfig) -> ClipFacts:
    n = len(arr["centre"])
    seen = np.asarray(host.seen[b, :n])
    unique = np.asarray(host.unique_category[b, :n])
    _, category_names = local_ids(arr["category"])
    C = len(category_names)
    return ClipFacts(
        position=np.asarray(arr["position"]),
        categories=list(arr["category"]),
        category_names=category_names,
        names=object_names(clip, arr, unique, seen, config.naming),
        seen=seen,
        unique_category=unique,
        distance=np.asarray(host.distance[b, :n, :n], np.float64),
        distance_ok=np.asarray(host.distance_ok[b, :n, :n]),
        size=np.asarray(host.size[b, :n], np.float64),
        direction={
            level: (
                np.asarray(getattr(host, f"direction_{level}")[b, :n, :n, :n]),
                np.asarray(getattr(host, f"direction_{level}_ok")[b, :n, :n, :n]),
            )
            for level in LEVELS
        }
        | {"angle": np.asarray(host.direction_angle[b, :n, :n, :n], np.float64)},
        first_time=np.asarray(host.first_time[b, :n], np.float64),
        counts=np.asarray(host.counts[b, :C]),
        count_complete=np.asarray(host.count_complete[b, :C]),
    )


# --- phrasing ----------------------------------------------------------------------------------


@dataclasses.dataclass
class _Ask:
    """What a task function needs about one clip."""

    clip: Clip
    facts: ClipFacts | None
    config: TaskConfig
    rng: np.random.Generator
    dealer: LetterDealer
    balancer: ClassBalancer
    room_area: tuple[float, str] | None

    def pos(self, k: int) -> int:
        return int(self.facts.position[k])

    def render(self, task, relation, question_slots, answer_slots=None):
        """(question, answer, template id, answer template id), phrasings drawn at random."""
        relation = relation if task in _BY_RELATION else None
        group = MT.question_group(task, relation)
        agroup = MT.answer_group(task, relation)
        qs, ans = T.templates(group), T.templates(agroup)
        q = qs[int(self.rng.integers(len(qs)))]
        a = ans[int(self.rng.integers(len(ans)))]
        slots = dict(question_slots) | dict(answer_slots or {})
        return q.render(**slots), a.render(**slots), q.id, a.id


def _mc(ask: _Ask, task, relation, correct, distractors, question_slots, answer_slots):
    """A multiple-choice question: dealt letter, choices arranged, options appended."""
    n = len(distractors) + 1
    letter = ask.dealer.deal(f"{task}/{relation}", n)
    choices = arrange(correct, list(distractors), letter, ask.rng)
    question, answer, tid, aid = ask.render(
        task, relation, question_slots, dict(answer_slots) | {"letter": LETTERS[letter]}
    )
    return f"{question} {MT.options_text(choices)}", answer, LETTERS[letter], choices, tid, aid


def _record(ask: _Ask, task, relation, kind, text, canonical, **fields) -> ClipQA:
    question, answer, tid, aid = text
    meta = fields.pop("meta", {})
    return ClipQA(
        clip_id=ask.clip.clip_id,
        task=task,
        relation=relation,
        kind=kind,
        question=question,
        answer=answer,
        canonical=canonical,
        template_id=tid,
        meta={"answer_template": aid, **meta},
        **fields,
    )


def _round_half_up(x: float, decimals: int = 0) -> float:
    scale = 10.0**decimals
    return math.floor(x * scale + 0.5) / scale


def _near_boundary(x: float, decimals: int, guard: float) -> bool:
    """Whether x lies within `guard` (its own units) of a rounding boundary at `decimals`."""
    scale = 10.0**decimals
    frac = x * scale - math.floor(x * scale)
    return abs(frac - 0.5) < guard * scale


def ask_counting(ask: _Ask) -> list[ClipQA]:
    f, cfg = ask.facts, ask.config
    ids = [
        c
        for c, name in enumerate(f.category_names)
        if f.count_complete[c]
        and cfg.min_count <= int(f.counts[c]) <= cfg.max_count
        and not grammar.is_plural(name)
    ]
    out = []
    for c in [ids[k] for k in ask.rng.permutation(len(ids))][: cfg.mv_counting]:
        name, n = f.category_names[c], int(f.counts[c])
        members = [ask.pos(k) for k in range(len(f.seen)) if f.categories[k] == name and f.seen[k]]
        text = ask.render(
            "mv_counting",
            None,
            {"cats": grammar.pluralize(name)},
            {"count": grammar.count_phrase(n, name), "be_n": grammar.be(n)},
        )
        out.append(
            _record(
                ask, "mv_counting", "count", "count", text, str(n), value=float(n),
                meta={"category": name, "members": members},
            )
        )  # fmt: skip
    return out


def _spread(pairs: list[tuple[int, ...]], quota: int) -> list[tuple[int, ...]]:
    """Up to `quota` of the (already shuffled) tuples, objects not repeated while possible."""
    chosen, used = [], set()
    for p in pairs:
        if len(chosen) < quota and not used & set(p):
            chosen.append(p)
            used |= set(p)
    for p in pairs:
        if len(chosen) < quota and p not in chosen:
            chosen.append(p)
    return chosen


def ask_abs_distance(ask: _Ask) -> list[ClipQA]:
    f, cfg = ask.facts, ask.config
    named = np.flatnonzero(f.named)
    pairs = []
    for i, j in itertools.combinations(named, 2):
        d = float(f.distance[i, j])
        if f.distance_ok[i, j] and d >= cfg.min_distance_m:
            if not _near_boundary(d, 1, cfg.distance_guard_m):
                pairs.append((int(i), int(j)))
    pairs = [pairs[k] for k in ask.rng.permutation(len(pairs))]
    out = []
    for i, j in _spread(pairs, cfg.abs_distance):
        if ask.rng.random() < 0.5:
            i, j = j, i
        d = float(f.distance[i, j])
        value = f"{d:.1f}"
        text = ask.render(
            "abs_distance", None, {"a": f.names[i], "b": f.names[j]}, {"value": value}
        )
        out.append(
            _record(
                ask, "abs_distance", "closest_points", "number", text, value,
                objects=[ask.pos(i), ask.pos(j)], value=round(d, 4), unit="m",
            )
        )  # fmt: skip
    return out


def ask_object_size(ask: _Ask) -> list[ClipQA]:
    f, cfg = ask.facts, ask.config
    ok = [
        int(k)
        for k in np.flatnonzero(f.named)
        if not _near_boundary(f.size[k] * 100.0, 0, cfg.size_guard_cm)
    ]
    out = []
    for k in [ok[i] for i in ask.rng.permutation(len(ok))][: cfg.object_size]:
        cm = float(f.size[k]) * 100.0
        value = str(int(_round_half_up(cm)))
        text = ask.render("object_size", None, {"a": f.names[k]}, {"value": value})
        out.append(
            _record(
                ask, "object_size", "longest_side", "number", text, value,
                objects=[ask.pos(k)], value=round(cm, 2), unit="cm",
            )
        )  # fmt: skip
    return out


def ask_room_size(ask: _Ask) -> list[ClipQA]:
    if ask.config.room_size < 1:
        return []
    polygon = ask.clip.room_polygon
    if polygon is not None:
        area, relation = polygon_area(polygon), "polygon"
    elif ask.room_area is not None:
        area, relation = ask.room_area
    else:
        return []
    value = f"{area:.1f}"
    text = ask.render("room_size", None, {}, {"value": value})
    return [
        _record(
            ask, "room_size", relation, "number", text, value, value=round(float(area), 4),
            unit="m2",
        )
    ]  # fmt: skip


def ask_rel_distance(ask: _Ask) -> list[ClipQA]:
    f, cfg = ask.facts, ask.config
    out, targets = [], set()
    for target, cands, best, clear, gap in f.closest:
        if len(out) == cfg.rel_distance:
            break
        if not clear or target in targets or best < 0:
            continue
        targets.add(target)
        winner = cands[best]
        others = [f.names[c] for c in cands if c != winner]
        question, answer, letter, choices, tid, aid = _mc(
            ask, "rel_distance", "closest", f.names[winner], others,
            {"t": f.names[target]}, {"winner": f.names[winner], "t": f.names[target]},
        )  # fmt: skip
        by_choice = {f.names[c]: c for c in cands}
        out.append(
            _record(
                ask, "rel_distance", "closest", "multiple_choice",
                (question, answer, tid, aid), letter, choices=choices,
                objects=[ask.pos(target)] + [ask.pos(by_choice[c]) for c in choices],
                meta={
                    "target": ask.pos(target),
                    "distances_m": [round(float(f.distance[target, by_choice[c]]), 4)
                                    for c in choices],
                    "gap_m": round(gap, 4),
                },
            )
        )  # fmt: skip
    return out


def ask_rel_direction(ask: _Ask) -> list[ClipQA]:
    f, cfg = ask.facts, ask.config
    named = f.named
    out = []
    for level, classes in LEVELS.items():
        cls, ok = f.direction[level]
        mask = ok & named[:, None, None] & named[None, :, None] & named[None, None, :]
        triples = np.argwhere(mask)
        if not len(triples) or cfg.rel_direction < 1:
            continue
        by_class = collections.defaultdict(list)
        for s, fa, q in triples:
            by_class[int(cls[s, fa, q])].append((int(s), int(fa), int(q)))
        for _ in range(cfg.rel_direction):
            if not by_class:
                break
            c = ask.balancer.pick(f"rel_direction/{level}", sorted(by_class), ask.rng)
            pool = by_class[c]
            s, fa, q = pool.pop(int(ask.rng.integers(len(pool))))
            if not pool:
                del by_class[c]
            word = MT.DIRECTION_OPTIONS[level][c]
            names = {"s": f.names[s], "f": f.names[fa], "q": f.names[q]}
            distractors = [w for w in MT.DIRECTION_OPTIONS[level] if w != word]
            question, answer, letter, choices, tid, aid = _mc(
                ask, "rel_direction", level, word, distractors, names,
                names | {"where": MT.DIRECTION_WHERE[word]},
            )  # fmt: skip
            out.append(
                _record(
                    ask, "rel_direction", level, "multiple_choice",
                    (question, answer, tid, aid), letter, choices=choices,
                    objects=[ask.pos(s), ask.pos(fa), ask.pos(q)],
                    meta={"class": classes[c],
                          "angle_deg": round(float(f.direction["angle"][s, fa, q]), 3)},
                )
            )  # fmt: skip
    return out


def category_first_times(f: ClipFacts) -> dict[str, float]:
    """Per seen category, the earliest first appearance of its objects (seconds)."""
    first: dict[str, float] = {}
    for k, name in enumerate(f.categories):
        if f.seen[k]:
            first[name] = min(first.get(name, math.inf), float(f.first_time[k]))
    return first


def ask_appearance_order(ask: _Ask) -> list[ClipQA]:
    f, cfg = ask.facts, ask.config
    if cfg.appearance_order < 1:
        return []
    first = category_first_times(f)
    margin = cfg.relations.appearance_margin_s
    names = sorted(first, key=lambda c: (first[c], c))
    m = cfg.appearance_categories
    valid = [
        combo
        for combo in itertools.combinations(names, m)
        if all(first[b] - first[a] > margin for a, b in itertools.pairwise(combo))
    ]
    out = []
    for k in ask.rng.permutation(len(valid))[: cfg.appearance_order]:
        order = list(valid[k])
        shown = [grammar.display_noun(c) for c in order]
        perms = [p for p in itertools.permutations(range(m)) if list(p) != list(range(m))]
        picks = ask.rng.choice(len(perms), min(cfg.options - 1, len(perms)), replace=False)
        distractors = [", ".join(shown[i] for i in perms[p]) for p in picks]
        question, answer, letter, choices, tid, aid = _mc(
            ask, "appearance_order", "first_appearance", ", ".join(shown), distractors,
            {"listed": MT.listing(sorted(shown))}, {"order": MT.order_text(order)},
        )  # fmt: skip
        out.append(
            _record(
                ask, "appearance_order", "first_appearance", "multiple_choice",
                (question, answer, tid, aid), letter, choices=choices,
                meta={"order": order, "first_time_s": [first[c] for c in order]},
            )
        )  # fmt: skip
    return out


def _with_turns(instructions, turns):
    """The instructions with their turns replaced, in order, by `turns`."""
    it = iter(turns)
    return [
        route_lib.Instruction(next(it)) if ins.action in route_lib.TURNS else ins
        for ins in instructions
    ]


def ask_route(ask: _Ask) -> list[ClipQA]:
    clip, f, cfg = ask.clip, ask.facts, ask.config
    if cfg.route < 1 or clip.room_polygon is None or clip.footprints is None:
        return []
    rcfg = cfg.route_config
    scene = route_lib.RouteScene.from_footprints(clip.room_polygon, clip.footprints, rcfg)
    named = [int(k) for k in np.flatnonzero(f.named)]
    if len(named) < 3:
        return []
    # Landmarks and route objects are indexed by position in `clip.objects` (footprints).
    name_of = {ask.pos(k): f.names[k] for k in named}
    landmarks = np.zeros(clip.num_objects, bool)
    landmarks[list(name_of)] = True
    triples = list(itertools.permutations(sorted(name_of), 3))
    out = []
    for k in ask.rng.permutation(len(triples))[: cfg.route_attempts]:
        a, b, c = triples[k]
        planned = route_lib.plan_route(scene, a, b, c, landmarks=landmarks, config=rcfg)
        if planned is None or planned.grid_distance_m < cfg.route_min_m:
            continue
        if len(set(planned.landmarks)) < len(planned.landmarks):
            continue
        turns = [ins.action for ins in planned.instructions if ins.action in route_lib.TURNS]
        if not turns:
            continue
        if not route_lib.replay(scene, a, b, c, planned.instructions, rcfg).success:
            log.warning("clip %s: a planned route failed its replay", clip.clip_id)
            continue
        wrong = [
            list(seq)
            for seq in itertools.product(sorted(route_lib.TURNS), repeat=len(turns))
            if list(seq) != turns
            and not route_lib.replay(scene, a, b, c, _with_turns(planned.instructions, seq), rcfg)
            .success
        ]  # fmt: skip
        if not wrong:
            continue
        picks = ask.rng.choice(len(wrong), min(cfg.options - 1, len(wrong)), replace=False)
        distractors = [wrong[p] for p in picks]
        steps, number = [], 0
        for ins in planned.instructions:
            number += 1
            if ins.action in route_lib.TURNS:
                steps.append(f"{number}. {MT.BLANK}")
            else:
                steps.append(f"{number}. Go forward until {name_of[ins.landmark]}.")
        by_text = {MT.turns_option(turns): turns} | {MT.turns_option(d): d for d in distractors}
        question, answer, letter, choices, tid, aid = _mc(
            ask, "route", "turns", MT.turns_option(turns),
            [MT.turns_option(d) for d in distractors],
            {"a": name_of[a], "b": name_of[b], "c": name_of[c], "steps": " ".join(steps)},
            {"turns": MT.turns_text(turns)},
        )  # fmt: skip
        out.append(
            _record(
                ask, "route", "turns", "multiple_choice", (question, answer, tid, aid), letter,
                choices=choices, objects=[a, b, c],
                meta={
                    "start": a, "facing": b, "goal": c,
                    "instructions": [
                        {"action": ins.action, "landmark": ins.landmark}
                        for ins in planned.instructions
                    ],
                    "choice_turns": [by_text[ch] for ch in choices],
                    "length_m": round(planned.length_m, 3),
                    "waypoints": np.round(planned.waypoints, 3).tolist(),
                },
            )
        )  # fmt: skip
        if len(out) == cfg.route:
            break
    return out


def rotation_of(clip: Clip) -> dict | None:
    """A rotation pair's answer (`meta["rotation"]`), checked not to be symmetric."""
    rot = clip.meta.get("rotation")
    if rot is None:
        return None
    if (rot.get("symmetry") or {}).get("ambiguous"):
        raise ValueError(f"clip {clip.clip_id}: a symmetric object cannot be asked about")
    return rot


def ask_rotation(ask: _Ask) -> list[ClipQA]:
    clip, cfg = ask.clip, ask.config
    rot = rotation_of(clip)
    if rot is None or cfg.rotation < 1 or clip.num_frames < 2:
        return []
    obj = int(rot.get("object_index", 0))
    position = next(k for k, o in enumerate(clip.objects) if o.index == obj)
    name = grammar.definite(clip.objects[position].category)
    camera = rot["kind"] == "camera"
    turn = float(rot["camera_yaw_change_deg"] if camera else rot["yaw_change_deg"])
    out = []
    for variant in ("degrees", "bins"):
        for _ in range(cfg.rotation):
            relation = f"camera_{variant}" if camera else variant
            clockwise = bool(ask.rng.random() < 0.5)
            words = MT.ANTICLOCKWISE_WORDS
            direction = MT.CLOCKWISE_WORD if clockwise else words[int(ask.rng.integers(2))]
            value = int(round((-turn if clockwise else turn) % 360.0)) % 360
            slots = {"a": name, "direction": direction}
            meta = {
                "rotation_kind": rot["kind"],
                "yaw_change_deg": turn,
                "direction": "clockwise" if clockwise else "anticlockwise",
                "symmetry_ambiguous": False,
            }
            if variant == "degrees":
                text = ask.render("rotation", relation, slots, {"value": str(value)})
                out.append(
                    _record(
                        ask, "rotation", relation, "number", text, str(value),
                        frames=[0, 1], objects=[position], value=float(value), unit="deg",
                        meta=meta,
                    )
                )  # fmt: skip
                continue
            centre = (BIN_DEG * int(round(value / BIN_DEG))) % 360
            options = [(centre + 2 * BIN_DEG * j) % 360 for j in range(1, 4)]
            question, answer, letter, choices, tid, aid = _mc(
                ask, "rotation", relation, f"about {centre} degrees",
                [f"about {o} degrees" for o in options], slots, {"value": str(centre)},
            )  # fmt: skip
            out.append(
                _record(
                    ask, "rotation", relation, "multiple_choice",
                    (question, answer, tid, aid), letter, choices=choices, frames=[0, 1],
                    objects=[position], value=float(value), unit="deg",
                    meta=meta | {"bin_deg": centre},
                )
            )  # fmt: skip
    return out


ASK = {
    "mv_counting": ask_counting,
    "abs_distance": ask_abs_distance,
    "object_size": ask_object_size,
    "room_size": ask_room_size,
    "rel_distance": ask_rel_distance,
    "rel_direction": ask_rel_direction,
    "appearance_order": ask_appearance_order,
    "route": ask_route,
    "rotation": ask_rotation,
}
assert set(ASK) == set(MULTI_VIEW_TASKS)
# Tasks that need the compiled relations (the others read the clip alone).
_NEEDS_FACTS = frozenset(MULTI_VIEW_TASKS) - {"room_size", "rotation"}


def clip_questions(
    clips: Sequence[Clip],
    tasks: Sequence[str] = MULTI_VIEW_TASKS,
    config: TaskConfig = TaskConfig(),
    seed: int = 0,
    room_areas: dict[str, tuple[float, str]] | None = None,
) -> list[list[ClipQA]]:
    """The questions of each clip, in clip order (module docstring for the rules).

    Args:
      clips: room clips and rotation pairs, in the order they are written.
      tasks: the task families to ask (`MULTI_VIEW_TASKS` names).
      config: quotas and filters.
      seed: the run's seed.
      room_areas: clip id -> `(area m^2, relation)` for clips without a floor polygon, e.g.
        `(room.room_area_from_points(points), "alpha_shape")` of a scan.

    Returns:
      `[len(clips)]` lists of `ClipQA`, each clip's in `MULTI_VIEW_TASKS` order.
    """
    unknown = sorted(set(tasks) - set(MULTI_VIEW_TASKS))
    if unknown:
        raise ValueError(f"unknown multi-view tasks {unknown}; known: {MULTI_VIEW_TASKS}")
    rooms = [k for k, c in enumerate(clips) if "rotation" not in c.meta]
    facts: list[ClipFacts | None] = [None] * len(clips)
    if set(tasks) & _NEEDS_FACTS and rooms:
        for k, fact in zip(rooms, clip_facts([clips[k] for k in rooms], config, seed), strict=True):
            facts[k] = fact
    dealer, balancer = LetterDealer(seed), ClassBalancer()
    out = []
    for clip, fact in zip(clips, facts, strict=True):
        ask = _Ask(
            clip, fact, config, _clip_rng(seed, clip.clip_id, _STREAM_PICK), dealer, balancer,
            (room_areas or {}).get(clip.clip_id),
        )  # fmt: skip
        questions: list[ClipQA] = []
        for task in MULTI_VIEW_TASKS:
            if task not in tasks:
                continue
            if task in _NEEDS_FACTS and fact is None:
                continue
            questions.extend(ASK[task](ask))
        out.append(questions)
    return out


__all__ = [
    "ASK",
    "LETTERS",
    "NAMINGS",
    "ClassBalancer",
    "ClipFacts",
    "LetterDealer",
    "TaskConfig",
    "arrange",
    "category_first_times",
    "clip_facts",
    "clip_questions",
    "object_names",
    "rotation_of",
    "stable_int",
]
