"""Which questions to ask about each frame: a jit-compiled pass with fixed-size outputs.

`select_questions(batch, relations, quotas)` reads the relation tensors of a `[B, N]` batch and
returns a `Selection`: for every frame, fixed-size index arrays (padded with -1) plus the
number of real entries, so the pass compiles once per bucket and the host (phrase.py) only
turns indices into words.

Rules (the why is in `QuotaConfig` and in the comments below):

* **References**: an object is asked about only when it can be singled out in a way the run
  allows (`QuotaConfig.references`): by its caption when no other object that may be seen
  shares it (`unique_ref`, caption kind), by a relative referring expression ("the leftmost
  car", `relative`, one kind drawn at random per object among those that hold), or by
  pointing (box text, a drawn box, mask or mark), which works for any askable object.
  `Selection.object_ref` says which one each object got, caption before relative before
  pointing.
* **No giveaways**: a relative name must not answer the question. A pair of one category is
  not asked in the family that names one of them ("is the leftmost car left of the other
  car?"), nor existence of the object's own category in that family ("is there a car left of
  the leftmost car?").
* **Pair questions** (position and size families) are asked only about a clear pair
  (`pair != 0`) of two referable objects, each unordered pair at most once per family and
  frame (candidates are the upper triangle `i < j`).
* **Spread over families**: candidates are ranked inside their family by random noise, and
  families take turns in a per-frame random order (round robin), so a frame with 6 position
  questions asks two per family when each has candidates, and a family with few candidates
  gives its turns to the others.
* **Kinds**: a `multiple_choice_fraction` share of the pair slots are multiple choice, spread
  evenly over the slots from a random phase (a low-discrepancy split, not coin flips, so the
  global share is exact up to one question per frame).
* **Yes/no balance**: the yes/no slots of a frame alternate yes, no, yes, ... from a random
  start; for a "yes" the asked relation is the true one, for a "no" its opposite. Which
  object is mentioned first is a coin flip, so the asked relation word is balanced too.
* **Letter balance**: the multiple-choice slots alternate the correct letter A, B, A, ... from
  a random start; the comparative asked ("further left" or "further right") is a coin flip.
* **Existence**: per (reference, category, family) one direction is asked (a coin flip where
  both are decidable); yes and no candidates are drawn separately and the frame takes
  `min(#yes, #no, existence // 2)` of each, interleaved from a random start. Exact balance
  per frame, at the price of skipping frames that only have one answer.
* **Counting**: categories with `count_ok` and a count in `1..max_count`, drawn at random.

Determinism: every random number is the threefry-2x32 hash (`jax.random`'s cipher) of a
counter `(stream, index)` under the frame's key `batch.key[b]`, where `stream` names the use
(see `_STREAM_*`) and `index` names the element by its object ids and family, not by its
position in a padded array. A frame therefore gets the same questions whichever batch it is in and
whatever bucket `N` it was padded to.
"""

from __future__ import annotations

import dataclasses
import functools

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.random import threefry_2x32

from jax_spatial.batching import ObjectBatch
from jax_spatial.relations.types import (
    FAMILIES,
    POSITION_FAMILIES,
    RELATIVE_KINDS,
    SIZE_FAMILIES,
    SingleViewRelations,
)

KIND_YES_NO = 0
KIND_MULTIPLE_CHOICE = 1

# `Selection.object_ref`: how each object is named. Relative kind k (`RELATIVE_KINDS`) is
# REF_RELATIVE + k.
REF_NONE = -2
REF_POINTING = -1
REF_CAPTION = 0
REF_RELATIVE = 1
REFERENCE_KINDS = ("caption", "relative", "pointing")

# Random streams hashed with the frame key. Each stream's elements are named by an index
# (see `_frame_randomness`); the two output words of one hash serve two independent uses.
_STREAM_PAIR = 1  # [N, N, F] pair (i, j, f): word 0 rank inside the family
_STREAM_EXIST = 2  # [N, C, F] (r, c, f): word 0 rank in its pool, word 1 direction coin
_STREAM_COUNT = 3  # [C] category: word 0 rank
_STREAM_SLOT = 4  # [P] pair slot m: word 0 bit swap order, word 1 bit comparative
_STREAM_FRAME = 5  # per-frame scalars and family turn orders, indexed by _FRAME_*
_FRAME_KIND_PHASE, _FRAME_YES_START, _FRAME_LETTER_START, _FRAME_EXIST_FIRST = 0, 1, 2, 3
_FRAME_SIZE_OFFSET = 8  # + the above: the size task's own phase and starts
_FRAME_PAIR_FAMILY_ORDER = 16  # + family index
_FRAME_EXIST_FAMILY_ORDER = 32  # + family index
_STREAM_REF = 6  # [N, R] (object, relative kind): word 0 rank among the kinds that hold
# Object ids are packed into 12 bits each of a 32-bit element index: (i << 20) | (j << 8) | f.
_MAX_OBJECTS = 1 << 12


@dataclasses.dataclass(frozen=True)
class QuotaConfig:
    """Per-frame question quotas and mix. Frozen and hashable: a static jit argument.

    Attributes:
      position: pair questions from the position families per frame. 6 = two per family when
        all three have candidates. Frames of one scan overlap heavily, so a few questions per
        frame over many frames give more distinct facts than many questions per frame.
      size: pair questions from the size families per frame. 3 = one per family: real sizes
        do not change between the frames of a scene, so asking more per frame mostly repeats
        the same pair's answer frame after frame.
      existence: existence questions per frame; half yes, half no (an odd quota wastes one).
        2 = one of each: existence answers follow from the same pair facts as position
        questions, so they are a small share.
      counting: counting questions per frame. 1: a frame has few countable categories and
        the count of one category repeats over the scene's frames.
      multiple_choice_fraction: share of pair questions asked as multiple choice (the rest
        yes/no). 0.5: both formats appear in benchmarks (InternSpatial, VSI-Bench, CV-Bench),
        and a model should answer both.
      max_count: largest count asked. 10: beyond that, counts in box-annotated scans are
        unreliable (missed and merged instances), and a person could not check them at a
        glance either.
      existence_requires_exhaustive: ask "no" existence questions only on frames whose
        annotation is exhaustive. A "no" claims no unlabelled object of the category is in
        that relation; on a partly labelled frame that claim is unsafe. Since each frame
        takes as many yes as no, such frames get no existence questions at all.
      references: the ways objects may be named (`REFERENCE_KINDS`): the run's instruction
        formats decide it (`formats.expand.reference_kinds`); a caption-only run must not
        spend its quota on objects only a box can point at.
    """

    position: int = 6
    size: int = 3
    existence: int = 2
    counting: int = 1
    multiple_choice_fraction: float = 0.5
    max_count: int = 10
    existence_requires_exhaustive: bool = True
    references: tuple[str, ...] = REFERENCE_KINDS

    def __post_init__(self):
        unknown = set(self.references) - set(REFERENCE_KINDS)
        if unknown:
            raise ValueError(f"unknown reference kinds {sorted(unknown)}; known {REFERENCE_KINDS}")
        for name in ("position", "size", "existence", "counting", "max_count"):
            if getattr(self, name) < 0:
                raise ValueError(f"QuotaConfig.{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.multiple_choice_fraction <= 1.0:
            raise ValueError(
                f"multiple_choice_fraction must be in [0, 1], got {self.multiple_choice_fraction}"
            )


@flax.struct.dataclass
class Selection:
    """The questions chosen for B frames: fixed-size index arrays plus counts. A pytree.

    `P = quotas.position + quotas.size`, `E = quotas.existence`, `K = quotas.counting`.
    Entries `[:num_*]` of each row are real; the rest hold -1. Object indices are positions
    in the frame's object arrays (the `FrameObservation` order); categories are frame-local
    ids (`ObjectBatch.category`).

    Attributes:
      key: `[B, 2]` uint32 the frames' keys (seeds the host-side phrasing).
      pair_objects: `[B, P, 2]` int32. Yes/no: (subject, object) as mentioned, "Is
        <0> <relation> <1>?". Multiple choice: the objects of choices (A, B).
      pair_family: `[B, P]` int32 index into `FAMILIES`.
      pair_direction: `[B, P]` int32 the relation word asked: 0 the family's first word
        (left of, bigger, ...), 1 the second.
      pair_kind: `[B, P]` int32 `KIND_YES_NO` or `KIND_MULTIPLE_CHOICE`.
      pair_answer: `[B, P]` int32 yes/no: 1 yes, 0 no; multiple choice: 0 for A, 1 for B.
      num_pairs: `[B]` int32.
      exist_object: `[B, E]` int32 the reference object r of "is there a <c> <rel> r".
      exist_category: `[B, E]` int32 frame-local category c.
      exist_example: `[B, E]` int32 an object of category c (to name the category).
      exist_family, exist_direction: `[B, E]` int32 the relation asked (c <rel> r).
      exist_answer: `[B, E]` int32 1 yes, 0 no.
      num_exist: `[B]` int32.
      count_category: `[B, K]` int32 frame-local category.
      count_example: `[B, K]` int32 an object of that category.
      count_value: `[B, K]` int32 the answer.
      num_counts: `[B]` int32.
      object_ref: `[B, N]` int32 how each object is named: `REF_CAPTION`, `REF_RELATIVE + k`
        (relative kind k), `REF_POINTING` (only a box, mask or mark singles it out) or
        `REF_NONE` (padding, glimpses, and objects the run's reference kinds cannot single
        out). None on selections made without it.
    """

    key: jnp.ndarray
    pair_objects: jnp.ndarray
    pair_family: jnp.ndarray
    pair_direction: jnp.ndarray
    pair_kind: jnp.ndarray
    pair_answer: jnp.ndarray
    num_pairs: jnp.ndarray
    exist_object: jnp.ndarray
    exist_category: jnp.ndarray
    exist_example: jnp.ndarray
    exist_family: jnp.ndarray
    exist_direction: jnp.ndarray
    exist_answer: jnp.ndarray
    num_exist: jnp.ndarray
    count_category: jnp.ndarray
    count_example: jnp.ndarray
    count_value: jnp.ndarray
    num_counts: jnp.ndarray
    object_ref: jnp.ndarray | None = None


# ------------------------------------------------------------------------------------------
# Randomness keyed on element identity.


def _hash(key_data, stream, index):
    """`[M, 2]` uint32 random words for elements named by (stream, index) (uint32 `[M]`).

    The words are the threefry-2x32 block (the cipher behind `jax.random`'s default keys)
    of the 64-bit counter `(stream, index)` under the frame's key: a value depends only on
    the frame key and the element's own name, never on an array's shape or an element's
    position, so padding and batching cannot change it. All of a frame's randomness goes
    through this one call, which keeps a single threefry in the compiled program (each one
    costs about a second of XLA compile time on CPU).
    """
    M = stream.shape[0]
    out = threefry_2x32((key_data[0], key_data[1]), jnp.concatenate([stream, index]))
    return jnp.stack([out[:M], out[M:]], axis=-1)


def _uniform(bits):
    """uint32 bits -> float32 in [0, 1) from the top 24 bits (exact in float32)."""
    return (bits >> 8).astype(jnp.float32) * (1.0 / (1 << 24))


def _element_index(i, j, f):
    """(i << 20) | (j << 8) | f as uint32: a name for element (i, j, f) independent of N."""
    i, j, f = (jnp.asarray(x, jnp.uint32) for x in (i, j, f))
    return (i << 20) | (j << 8) | f


def _turn_order(words):
    """`[Fs]` int32 a random permutation rank from `[Fs]` random words (the families' turns)."""
    return jnp.argsort(jnp.argsort(words)).astype(jnp.int32)


def _stratified_top(mask, noise, family_rank, k: int):
    """Picks up to k candidates, families taking turns in `family_rank` order.

    Each family's k best candidates (highest noise) come from one `top_k`; round r of the
    round robin holds every family's r-th best, in turn order, and the first k of that
    sequence are kept. (A full sort of the `[M]` candidates per family costs ~100x more on
    CPU at N = 128.)

    Args:
      mask: `[M, Fs]` bool candidates per family.
      noise: `[M, Fs]` float32 in [0, 1), the random order inside each family.
      family_rank: `[Fs]` int32 each family's place in a round.
      k: static number of slots.

    Returns:
      idx `[k]` int32 flat indices into `[M * Fs]` (row-major), count int32 (slots `< count`
      are real).
    """
    M, Fs = mask.shape
    if k == 0:
        return jnp.zeros((0,), jnp.int32), jnp.int32(0)
    per_family = min(k, M)
    best, best_idx = jax.lax.top_k(jnp.where(mask, noise, -1.0).T, per_family)  # [Fs, kf]
    rounds = jnp.arange(per_family, dtype=jnp.int32)[None, :]
    priority = jnp.where(best >= 0.0, rounds * Fs + family_rank[:, None], per_family * Fs)
    k_real = min(k, Fs * per_family)
    _, pick = jax.lax.top_k(-priority.reshape(-1), k_real)
    fam, r = pick // per_family, pick % per_family
    idx = jnp.pad((best_idx[fam, r] * Fs + fam).astype(jnp.int32), (0, k - k_real))
    count = jnp.minimum(jnp.sum(mask, dtype=jnp.int32), k)
    return idx, count


# ------------------------------------------------------------------------------------------
# One frame.


def _pair_candidates(fams, pair, ok_pair, noise, turn, k):
    """Stratified pick of k unordered pairs of one task. -> (i, j, family) `[k]`, count.

    `ok_pair` is `[N, N, F]` the pairs allowed per family; `noise` `[N, N, F]` over all
    families; `turn` `[F]` the families' turn order.
    """
    N = pair.shape[0]
    fams_arr = jnp.asarray(fams, jnp.int32)
    mask = ok_pair[:, :, fams_arr] & (pair[:, :, fams_arr] != 0)  # [N, N, Fs]
    idx, count = _stratified_top(
        mask.reshape(N * N, len(fams)),
        noise[:, :, fams_arr].reshape(N * N, len(fams)),
        _turn_order(turn[fams_arr]),
        k,
    )
    cell, fl = idx // len(fams), idx % len(fams)
    return cell // N, cell % N, fams_arr[fl], count


def _frame_randomness(key_data, N: int, C: int, P: int):
    """Every random word a frame needs, from one hash call.

    Returns a dict: `pair` `[N, N, F]` float noise, `exist` `[N, C, F]` float noise,
    `exist_coin` `[N, C, F]` int32 bits, `count` `[C]` noise, `swap`/`comparative` `[P]` bits,
    `frame` `[48]` uint32 words indexed by `_FRAME_*`, `ref` `[N, R]` noise over the relative
    kinds.
    """
    F = len(FAMILIES)
    R = len(RELATIVE_KINDS)
    ii, jj, ff = jnp.meshgrid(jnp.arange(N), jnp.arange(N), jnp.arange(F), indexing="ij")
    rr, cc, ef = jnp.meshgrid(jnp.arange(N), jnp.arange(C), jnp.arange(F), indexing="ij")
    oo, kk = jnp.meshgrid(jnp.arange(N), jnp.arange(R), indexing="ij")
    parts = [
        (_STREAM_PAIR, _element_index(ii, jj, ff).reshape(-1)),
        (_STREAM_EXIST, _element_index(rr, cc, ef).reshape(-1)),
        (_STREAM_COUNT, jnp.arange(C, dtype=jnp.uint32)),
        (_STREAM_SLOT, jnp.arange(P, dtype=jnp.uint32)),
        (_STREAM_FRAME, jnp.arange(48, dtype=jnp.uint32)),
        (_STREAM_REF, _element_index(oo, 0, kk).reshape(-1)),
    ]
    stream = jnp.concatenate([jnp.full(ix.shape, s, jnp.uint32) for s, ix in parts])
    words = _hash(key_data, stream, jnp.concatenate([ix for _, ix in parts]))
    sizes = [ix.shape[0] for _, ix in parts]
    w_pair, w_exist, w_count, w_slot, w_frame, w_ref = jnp.split(words, list(np.cumsum(sizes)[:-1]))
    return dict(
        ref=_uniform(w_ref[:, 0]).reshape(N, R),
        pair=_uniform(w_pair[:, 0]).reshape(N, N, F),
        exist=_uniform(w_exist[:, 0]).reshape(N, C, F),
        exist_coin=(w_exist[:, 1] & 1).astype(jnp.int32).reshape(N, C, F),
        count=_uniform(w_count[:, 0]),
        swap=(w_slot[:, 0] & 1).astype(bool),
        comparative=(w_slot[:, 1] & 1).astype(jnp.int32),
        frame=w_frame[:, 0],
    )


def _object_references(valid, askable, rel, noise, quotas: QuotaConfig):
    """How each object of a frame is named. -> object_ref `[N]` int32, relative family `[N]`.

    Caption before a relative expression before pointing, within `quotas.references`; the
    relative kind is drawn uniformly among those that hold (`noise` `[N, R]`). The family is
    the `FAMILIES` index of a relative name's relation, -1 for other names.
    """
    N = valid.shape[0]
    allowed = set(quotas.references)
    askable = valid & askable
    caption = askable & rel.unique_ref & ("caption" in allowed)
    bits = jnp.zeros(N, jnp.int32) if rel.relative is None else rel.relative
    if "relative" not in allowed:
        bits = jnp.zeros_like(bits)
    holds = ((bits[:, None] >> jnp.arange(len(RELATIVE_KINDS))) & 1).astype(bool)  # [N, R]
    holds = holds & askable[:, None]
    kind = jnp.argmax(jnp.where(holds, noise, -1.0), axis=-1).astype(jnp.int32)
    relative = holds.any(axis=-1)
    pointing = askable & ("pointing" in allowed)
    object_ref = jnp.where(
        caption,
        REF_CAPTION,
        jnp.where(relative, REF_RELATIVE + kind, jnp.where(pointing, REF_POINTING, REF_NONE)),
    ).astype(jnp.int32)
    kind_family = jnp.asarray([FAMILIES.index(k[1]) for k in RELATIVE_KINDS], jnp.int32)
    family = jnp.where(object_ref >= REF_RELATIVE, kind_family[kind], -1)
    return object_ref, family


def _select_frame(
    key_data, valid, askable, reference, category, exhaustive, rel, quotas: QuotaConfig
):
    """Selection of one frame; arguments are one frame's slices (`[N]`, `[N, N, F]`, ...)."""
    del reference  # folded into `rel.unique_ref`
    N = valid.shape[0]
    C = rel.exists.shape[1]
    F = len(FAMILIES)
    P = quotas.position + quotas.size
    rand = _frame_randomness(key_data, N, C, P)
    frame_word = rand["frame"]
    slots_n = jnp.arange(N)
    pair = rel.pair.astype(jnp.int32)
    object_ref, ref_family = _object_references(valid, askable, rel, rand["ref"], quotas)
    families = jnp.arange(F)
    same_category = category[:, None] == category[None, :]

    # ---- pair questions ---------------------------------------------------------------
    ok_obj = object_ref >= REF_POINTING
    ok_pair = (
        ok_obj[:, None] & ok_obj[None, :] & (slots_n[:, None] < slots_n[None, :])
    )  # each unordered pair once
    # A relative name in the asked family answers a question about two of its category.
    giveaway = same_category[:, :, None] & (
        (ref_family[:, None, None] == families) | (ref_family[None, :, None] == families)
    )
    ok_pair = ok_pair[:, :, None] & ~giveaway  # [N, N, F]
    pos_fams = tuple(FAMILIES.index(f) for f in POSITION_FAMILIES)
    size_fams = tuple(FAMILIES.index(f) for f in SIZE_FAMILIES)
    turn = frame_word[_FRAME_PAIR_FAMILY_ORDER : _FRAME_PAIR_FAMILY_ORDER + F]
    pi, pj, pf, pn = _pair_candidates(pos_fams, pair, ok_pair, rand["pair"], turn, quotas.position)
    si, sj, sf, sn = _pair_candidates(size_fams, pair, ok_pair, rand["pair"], turn, quotas.size)
    i = jnp.concatenate([pi, si])
    j = jnp.concatenate([pj, sj])
    fam = jnp.concatenate([pf, sf])
    real = jnp.concatenate([jnp.arange(quotas.position) < pn, jnp.arange(quotas.size) < sn])
    # Real slots first, each task in its own order.
    compact = jnp.argsort(~real, stable=True)
    i, j, fam, real = i[compact], j[compact], fam[compact], real[compact]
    num_pairs = pn + sn
    slot = jnp.arange(P)

    # Kinds, yes/no answers and letters are spread per task (position, size), so each task
    # is balanced on its own, not only their union. `t` counts a slot within its task.
    is_size = slot >= pn
    t = jnp.where(is_size, slot - pn, slot)
    task_word = jnp.where(
        is_size[:, None], frame_word[_FRAME_SIZE_OFFSET : _FRAME_SIZE_OFFSET + 4], frame_word[:4]
    )  # [P, 4]: this slot's task's words, indexed by _FRAME_KIND_PHASE etc.
    # Kind: slot t is multiple choice when floor((t + 1) p + u) > floor(t p + u); over a
    # task's slots that is round(n p) +- 1, evenly spaced, with a random phase u.
    p = quotas.multiple_choice_fraction
    phase = _uniform(task_word[:, _FRAME_KIND_PHASE])
    is_mc = (jnp.floor((t + 1) * p + phase) > jnp.floor(t * p + phase)) & real
    is_yn = ~is_mc & real

    def index_in_task(mask):
        """Running count of `mask` within each task, from 0."""
        pos_count = jnp.cumsum(mask & ~is_size)
        size_count = jnp.cumsum(mask & is_size)
        return jnp.where(is_size, size_count, pos_count) - 1

    yes_start = (task_word[:, _FRAME_YES_START] & 1).astype(jnp.int32)
    say_yes = ((index_in_task(is_yn) + yes_start) % 2) == 0
    letter_start = (task_word[:, _FRAME_LETTER_START] & 1).astype(jnp.int32)
    letter = ((index_in_task(is_mc) + letter_start) % 2).astype(jnp.int32)

    swap = rand["swap"]
    first = jnp.where(swap, j, i)
    second = jnp.where(swap, i, j)
    sign = pair[jnp.maximum(first, 0), jnp.maximum(second, 0), jnp.maximum(fam, 0)]
    true_dir = jnp.where(sign > 0, 0, 1)
    yn_dir = jnp.where(say_yes, true_dir, 1 - true_dir)
    # Multiple choice: the comparative is a coin flip; the object it fits goes to `letter`.
    mc_dir = rand["comparative"]
    first_fits = jnp.where(mc_dir == 0, sign > 0, sign < 0)
    winner = jnp.where(first_fits, first, second)
    loser = jnp.where(first_fits, second, first)
    choice_a = jnp.where(letter == 0, winner, loser)
    choice_b = jnp.where(letter == 0, loser, winner)

    obj0 = jnp.where(is_mc, choice_a, first)
    obj1 = jnp.where(is_mc, choice_b, second)
    pad = lambda x: jnp.where(real, x, -1).astype(jnp.int32)
    pair_out = dict(
        pair_objects=jnp.stack([pad(obj0), pad(obj1)], axis=-1),
        pair_family=pad(fam),
        pair_direction=pad(jnp.where(is_mc, mc_dir, yn_dir)),
        pair_kind=pad(jnp.where(is_mc, KIND_MULTIPLE_CHOICE, KIND_YES_NO)),
        pair_answer=pad(jnp.where(is_mc, letter, say_yes.astype(jnp.int32))),
        num_pairs=num_pairs.astype(jnp.int32),
    )

    # ---- existence ----------------------------------------------------------------------
    E = quotas.existence
    half = E // 2
    exists = rel.exists.astype(jnp.int32)  # [N(r), C, F, 2]
    e0, e1 = exists[..., 0], exists[..., 1]
    coin = rand["exist_coin"]
    # One direction per (r, c, f), so the frame never asks both "left of" and "right of".
    e_dir = jnp.where((e0 != 0) & (e1 != 0), coin, jnp.where(e0 != 0, 0, 1))
    e_val = jnp.where(e_dir == 0, e0, e1)
    # The category is named through an askable member (`exist_example`).
    has_askable = jnp.any(
        (category[:, None] == jnp.arange(C)[None, :]) & (valid & askable)[:, None], axis=0
    )
    present = (rel.counts > 0) & has_askable  # [C]
    own_family = (category[:, None, None] == jnp.arange(C)[None, :, None]) & (
        ref_family[:, None, None] == families
    )  # [N, C, F]: "is there a car left of the leftmost car" answers itself
    base = ok_obj[:, None, None] & present[None, :, None] & (e_val != 0) & ~own_family
    yes_mask = base & (e_val > 0)
    no_mask = base & (e_val < 0)
    if quotas.existence_requires_exhaustive:
        no_mask = no_mask & exhaustive
    e_turn = _turn_order(frame_word[_FRAME_EXIST_FAMILY_ORDER : _FRAME_EXIST_FAMILY_ORDER + F])
    # The yes and no pools are disjoint, so they can share one noise field.
    e_noise = rand["exist"].reshape(N * C, F)
    idx_yes, n_yes = _stratified_top(yes_mask.reshape(N * C, F), e_noise, e_turn, half)
    idx_no, n_no = _stratified_top(no_mask.reshape(N * C, F), e_noise, e_turn, half)
    k_each = jnp.minimum(n_yes, n_no)
    first_answer = (frame_word[_FRAME_EXIST_FIRST] & 1).astype(jnp.int32)
    # Interleave: pair s holds yes[s] and no[s], in an order fixed per frame.
    flat = jnp.stack([idx_yes, idx_no], axis=-1)  # [half, 2] column 0 yes, 1 no
    answer = jnp.stack([jnp.ones(half, jnp.int32), jnp.zeros(half, jnp.int32)], axis=-1)
    if half:
        flat = jnp.where(first_answer == 1, flat, flat[:, ::-1])
        answer = jnp.where(first_answer == 1, answer, answer[:, ::-1])
    flat, answer = flat.reshape(-1), answer.reshape(-1)
    e_real = (jnp.arange(2 * half) // 2) < k_each
    cell, fl = flat // F, flat % F
    er, ec = cell // C, cell % C
    er_safe, ec_safe = jnp.maximum(er, 0), jnp.maximum(ec, 0)
    example = jnp.argmax(
        (category[None, :] == ec_safe[:, None]) & (valid & askable)[None, :], axis=1
    )
    epad = lambda x: jnp.pad(
        jnp.where(e_real, x, -1).astype(jnp.int32), (0, E - 2 * half), constant_values=-1
    )
    exist_out = dict(
        exist_object=epad(er),
        exist_category=epad(ec),
        exist_example=epad(example),
        exist_family=epad(fl),
        exist_direction=epad(e_dir[er_safe, ec_safe, fl]),
        exist_answer=epad(answer),
        num_exist=(2 * k_each).astype(jnp.int32),
    )

    # ---- counting -----------------------------------------------------------------------
    K = quotas.counting
    counts = rel.counts.astype(jnp.int32)
    c_mask = rel.count_ok & (counts >= 1) & (counts <= quotas.max_count) & has_askable
    c_idx, c_n = _stratified_top(
        c_mask[:, None], rand["count"][:, None], jnp.zeros(1, jnp.int32), K
    )
    c_real = jnp.arange(K) < c_n
    c_example = jnp.argmax(
        (category[None, :] == c_idx[:, None]) & (valid & askable)[None, :], axis=1
    )
    cpad = lambda x: jnp.where(c_real, x, -1).astype(jnp.int32)
    count_out = dict(
        count_category=cpad(c_idx),
        count_example=cpad(c_example),
        count_value=cpad(counts[c_idx]),
        num_counts=c_n.astype(jnp.int32),
    )
    return {**pair_out, **exist_out, **count_out, "object_ref": object_ref}


def compute_selection(
    batch: ObjectBatch, relations: SingleViewRelations, quotas: QuotaConfig = QuotaConfig()
) -> Selection:
    """Chooses each frame's questions (not jitted; see `select_questions`).

    Args:
      batch: `[B, N]` objects; uses `valid`, `askable`, `reference`, `category`,
        `exhaustive`, `key`.
      relations: the batch's `SingleViewRelations` (`pair` `[B, N, N, 6]`, `exists`
        `[B, N, N, 6, 2]`, ...).
      quotas: per-frame quotas (static).

    Returns:
      `Selection` with `[B, P]`, `[B, E]`, `[B, K]` arrays; see its docstring.
    """
    if batch.valid.shape[1] > _MAX_OBJECTS:
        raise ValueError(f"at most {_MAX_OBJECTS} objects per frame, got {batch.valid.shape[1]}")
    per_frame = functools.partial(_select_frame, quotas=quotas)
    out = jax.vmap(per_frame)(
        batch.key.astype(jnp.uint32),
        batch.valid,
        batch.valid if batch.askable is None else batch.askable,
        batch.reference,
        batch.category,
        batch.exhaustive,
        relations,
    )
    return Selection(key=batch.key.astype(jnp.uint32), **out)


@functools.partial(jax.jit, static_argnames=("quotas",))
def select_questions(
    batch: ObjectBatch, relations: SingleViewRelations, quotas: QuotaConfig = QuotaConfig()
) -> Selection:
    """Jit-compiled `compute_selection`; `quotas` is static, so each distinct `QuotaConfig`
    compiles once per batch shape `[B, N]`.

    Returns:
      `Selection`: `pair_*` `[B, P]` (`pair_objects` `[B, P, 2]`), `exist_*` `[B, E]`,
      `count_*` `[B, K]`, `num_*` `[B]`, `key` `[B, 2]`.
    """
    return compute_selection(batch, relations, quotas)


__all__ = [
    "KIND_MULTIPLE_CHOICE",
    "KIND_YES_NO",
    "REFERENCE_KINDS",
    "REF_CAPTION",
    "REF_NONE",
    "REF_POINTING",
    "REF_RELATIVE",
    "QuotaConfig",
    "Selection",
    "compute_selection",
    "select_questions",
]
