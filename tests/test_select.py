"""QA selection: fixed shapes, jit vs eager, determinism, batch independence, rules, balance.

Most tests build `ObjectBatch` and `SingleViewRelations` by hand with numpy (random but
consistent: antisymmetric pair signs, unique references from duplicated phrases), so they do
not depend on the relation pass; the last ones run the real pass and phrase the result.
"""

from __future__ import annotations

import collections
import dataclasses
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import absltest

from jax_spatial.batching import ObjectBatch, pad_observations
from jax_spatial.observe import FrameObservation
from jax_spatial.qa.phrase import phrase_batch
from jax_spatial.qa.select import (
    KIND_MULTIPLE_CHOICE,
    KIND_YES_NO,
    REF_CAPTION,
    REF_POINTING,
    QuotaConfig,
    compute_selection,
    select_questions,
)
from jax_spatial.relations.types import FAMILIES, RELATIONS, SingleViewRelations

F = len(FAMILIES)
QUOTAS = QuotaConfig()


# ------------------------------------------------------------------------------------------
# Hand-built frames.


def _first_appearance(ids):
    table = {}
    return np.array([table.setdefault(int(x), len(table)) for x in ids], np.int32)


def synth_frame(rng, n, exhaustive=True, zero_frac=0.3):
    """One frame's arrays at its own size n (host numpy), consistent with the contracts."""
    category = _first_appearance(rng.integers(0, max(1, (n + 1) // 2), n))
    reference = np.arange(n)
    for _ in range(n // 4):  # some objects share a phrase: not unique references
        a, b = rng.integers(0, n, 2)
        reference[a] = reference[b]
    reference = _first_appearance(reference)
    unique_ref = np.array([np.sum(reference == r) == 1 for r in reference], dtype=bool)
    upper = rng.choice(
        [-1, 0, 1], size=(n, n, F), p=[(1 - zero_frac) / 2, zero_frac, (1 - zero_frac) / 2]
    )
    upper = np.triu(upper.transpose(2, 0, 1), k=1).transpose(1, 2, 0)
    pair = (upper - upper.transpose(1, 0, 2)).astype(np.int8)
    n_cat = int(category.max()) + 1 if n else 0
    exists = rng.choice([-1, 0, 1], size=(n, n, F, 2), p=[0.3, 0.4, 0.3]).astype(np.int8)
    exists[~unique_ref] = 0
    exists[:, n_cat:] = 0
    counts = np.zeros(n, np.int32)
    np.add.at(counts, category, 1)
    return dict(
        category=category,
        reference=reference,
        unique_ref=unique_ref,
        pair=pair,
        exists=exists,
        counts=counts,
        count_ok=(counts > 0) & exhaustive,
        exhaustive=exhaustive,
        key=rng.integers(0, 2**32, 2, dtype=np.uint32),
        n=n,
    )


def pad_frames(frames, N, B=None):
    """Stacks frames into a `[B, N]` ObjectBatch and SingleViewRelations (extra rows empty)."""
    B = B or len(frames)
    valid = np.zeros((B, N), bool)
    category = np.full((B, N), -1, np.int32)
    reference = np.full((B, N), -1, np.int32)
    unique_ref = np.zeros((B, N), bool)
    pair = np.zeros((B, N, N, F), np.int8)
    exists = np.zeros((B, N, N, F, 2), np.int8)
    counts = np.zeros((B, N), np.int32)
    count_ok = np.zeros((B, N), bool)
    exhaustive = np.zeros((B,), bool)
    key = np.zeros((B, 2), np.uint32)
    for b, fr in enumerate(frames):
        n = fr["n"]
        valid[b, :n] = True
        category[b, :n] = fr["category"]
        reference[b, :n] = fr["reference"]
        unique_ref[b, :n] = fr["unique_ref"]
        pair[b, :n, :n] = fr["pair"]
        exists[b, :n, :n] = fr["exists"]
        counts[b, :n] = fr["counts"]
        count_ok[b, :n] = fr["count_ok"]
        exhaustive[b] = fr["exhaustive"]
        key[b] = fr["key"]
    batch = ObjectBatch(
        centre=jnp.zeros((B, N, 3)),
        extent=jnp.ones((B, N, 3)),
        rotation=jnp.broadcast_to(jnp.eye(3), (B, N, 3, 3)),
        box2d=jnp.zeros((B, N, 4)),
        category=jnp.asarray(category),
        reference=jnp.asarray(reference),
        visibility=jnp.asarray(valid, jnp.float32),
        valid=jnp.asarray(valid),
        exhaustive=jnp.asarray(exhaustive),
        image_size=jnp.ones((B, 2)),
        key=jnp.asarray(key),
    )
    relations = SingleViewRelations(
        pair=jnp.asarray(pair),
        pair_value=jnp.asarray(pair, jnp.float32),
        unique_ref=jnp.asarray(unique_ref),
        exists=jnp.asarray(exists),
        counts=jnp.asarray(counts),
        count_ok=jnp.asarray(count_ok),
    )
    return batch, relations


def host(selection):
    return jax.tree.map(np.asarray, jax.device_get(selection))


def row(selection, b):
    return jax.tree.map(lambda x: np.asarray(x)[b], selection)


# ------------------------------------------------------------------------------------------


def test_fixed_shapes_and_padding():
    rng = np.random.default_rng(0)
    frames = [synth_frame(rng, n) for n in (3, 8, 0, 5)]
    batch, rel = pad_frames(frames, 8)
    sel = host(select_questions(batch, rel, QUOTAS))
    B, P, E, K = 4, QUOTAS.position + QUOTAS.size, QUOTAS.existence, QUOTAS.counting
    assert sel.pair_objects.shape == (B, P, 2)
    for name in ("pair_family", "pair_direction", "pair_kind", "pair_answer"):
        assert getattr(sel, name).shape == (B, P) and getattr(sel, name).dtype == np.int32
    for name in ("exist_object", "exist_category", "exist_family", "exist_answer"):
        assert getattr(sel, name).shape == (B, E)
    assert sel.count_value.shape == (B, K)
    assert sel.num_pairs.shape == sel.num_exist.shape == sel.num_counts.shape == (B,)
    assert sel.num_pairs[2] == sel.num_exist[2] == sel.num_counts[2] == 0  # empty frame
    for b in range(B):
        assert np.all(sel.pair_family[b, sel.num_pairs[b] :] == -1)
        assert np.all(sel.pair_family[b, : sel.num_pairs[b]] >= 0)
        assert np.all(sel.exist_object[b, sel.num_exist[b] :] == -1)
        assert np.all(sel.count_value[b, sel.num_counts[b] :] == -1)


def test_odd_and_zero_quotas_compile():
    rng = np.random.default_rng(1)
    batch, rel = pad_frames([synth_frame(rng, 6) for _ in range(4)], 8)
    quotas = QuotaConfig(position=0, size=1, existence=3, counting=0)
    sel = host(select_questions(batch, rel, quotas))
    assert sel.pair_objects.shape == (4, 1, 2)
    assert sel.exist_object.shape == (4, 3)
    assert np.all(sel.exist_object[:, 2] == -1)  # an odd quota leaves its last slot empty
    assert sel.count_value.shape == (4, 0)
    with pytest.raises(ValueError):
        QuotaConfig(multiple_choice_fraction=1.5)


class JitTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_jit_matches_eager(self):
        rng = np.random.default_rng(2)
        batch, rel = pad_frames([synth_frame(rng, n) for n in (8, 5, 2)], 8, B=4)
        fn = self.variant(functools.partial(compute_selection, quotas=QUOTAS))
        got = host(fn(batch, rel))
        want = host(select_questions(batch, rel, QUOTAS))
        chex.assert_trees_all_equal(got, want)


def test_deterministic_and_keyed():
    rng = np.random.default_rng(3)
    frames = [synth_frame(rng, 8) for _ in range(4)]
    batch, rel = pad_frames(frames, 8)
    a = host(select_questions(batch, rel, QUOTAS))
    b = host(select_questions(batch, rel, QUOTAS))
    chex.assert_trees_all_equal(a, b)
    rekeyed = [dict(fr, key=fr["key"] ^ np.uint32(0x9E3779B9)) for fr in frames]
    c = host(select_questions(*pad_frames(rekeyed, 8), QUOTAS))
    assert not np.array_equal(a.pair_objects, c.pair_objects)


def test_independent_of_batch_composition_and_padding():
    rng = np.random.default_rng(4)
    target = synth_frame(rng, 7)
    others = [synth_frame(rng, n) for n in (8, 3, 6)]
    alone = row(host(select_questions(*pad_frames([target], 8), QUOTAS)), 0)
    mixed = row(
        host(select_questions(*pad_frames([others[0], others[1], target, others[2]], 8), QUOTAS)), 2
    )
    wide = row(host(select_questions(*pad_frames([others[2], target], 32, B=4), QUOTAS)), 1)
    chex.assert_trees_all_equal(alone, mixed)
    # `object_ref` is per object slot: equal on the frame's 7 objects, REF_NONE on padding.
    np.testing.assert_array_equal(alone.object_ref[:7], wide.object_ref[:7])
    assert (wide.object_ref[7:] < REF_POINTING).all()
    chex.assert_trees_all_equal(alone.replace(object_ref=None), wide.replace(object_ref=None))
    assert alone.num_pairs > 0


def check_rules(frames, sel, quotas):
    """Every selected question obeys the selection rules against the hand-built facts."""
    for b, fr in enumerate(frames):
        r = row(sel, b)
        seen = set()
        for k in range(r.num_pairs):
            o0, o1 = (int(x) for x in r.pair_objects[k])
            f = int(r.pair_family[k])
            sign = int(fr["pair"][o0, o1, f])
            assert sign != 0, "pair questions only on clear pairs"
            for o in (o0, o1):
                assert r.object_ref[o] >= REF_POINTING, "only referable objects"
                # Caption first where it is unique; pointing only where the run allows it.
                assert (r.object_ref[o] == REF_CAPTION) == bool(
                    fr["unique_ref"][o] and "caption" in quotas.references
                )
                if "pointing" not in quotas.references:
                    assert r.object_ref[o] != REF_POINTING
            key = (min(o0, o1), max(o0, o1), f)
            assert key not in seen, "an unordered pair is asked once per family"
            seen.add(key)
            d = int(r.pair_direction[k])
            if r.pair_kind[k] == KIND_YES_NO:
                true_d = 0 if sign > 0 else 1
                assert (r.pair_answer[k] == 1) == (d == true_d)
            else:
                assert r.pair_kind[k] == KIND_MULTIPLE_CHOICE
                winner = (o0, o1)[r.pair_answer[k]]
                loser = (o1, o0)[r.pair_answer[k]]
                assert fr["pair"][winner, loser, f] == (1 if d == 0 else -1)
        n_pos = sum(
            FAMILIES[f] in ("left_right", "above_below", "front_behind")
            for f in r.pair_family[: r.num_pairs]
        )
        assert n_pos <= quotas.position and r.num_pairs - n_pos <= quotas.size
        answers = r.exist_answer[: r.num_exist]
        assert np.sum(answers == 1) == np.sum(answers == 0), "existence is balanced per frame"
        exist_seen = set()
        for k in range(r.num_exist):
            ref, c, f, d = (
                int(x[k])
                for x in (r.exist_object, r.exist_category, r.exist_family, r.exist_direction)
            )
            assert r.object_ref[ref] >= REF_POINTING
            assert fr["exists"][ref, c, f, d] == (1 if answers[k] == 1 else -1)
            assert fr["category"][r.exist_example[k]] == c
            assert (ref, c, f) not in exist_seen
            exist_seen.add((ref, c, f))
            if answers[k] == 0:
                assert fr["exhaustive"]
        for k in range(r.num_counts):
            c = int(r.count_category[k])
            assert fr["count_ok"][c] and r.count_value[k] == fr["counts"][c] <= quotas.max_count
            assert fr["category"][r.count_example[k]] == c


def test_selection_rules():
    rng = np.random.default_rng(5)
    frames = [
        synth_frame(rng, int(n), exhaustive=bool(rng.random() < 0.7))
        for n in rng.integers(0, 17, 16)
    ]
    sel = host(select_questions(*pad_frames(frames, 16), QUOTAS))
    check_rules(frames, sel, QUOTAS)
    assert sel.num_pairs.sum() > 0 and sel.num_exist.sum() > 0 and sel.num_counts.sum() > 0
    # A caption-only run asks only about unique references, as before pointing existed.
    caption_only = dataclasses.replace(QUOTAS, references=("caption",))
    sel = host(select_questions(*pad_frames(frames, 16), caption_only))
    check_rules(frames, sel, caption_only)
    for b, fr in enumerate(frames):
        r = row(sel, b)
        for o in r.pair_objects[: r.num_pairs].reshape(-1):
            assert fr["unique_ref"][o]


def test_sparse_frame_takes_what_it_has():
    rng = np.random.default_rng(6)
    fr = synth_frame(rng, 4)
    fr["pair"][:] = 0
    fr["pair"][0, 1, 0], fr["pair"][1, 0, 0] = 1, -1  # one clear left/right pair
    fr["reference"] = np.arange(4, dtype=np.int32)
    fr["unique_ref"] = np.ones(4, bool)
    sel = row(host(select_questions(*pad_frames([fr], 8), QUOTAS)), 0)
    assert sel.num_pairs == 1 and sel.pair_family[0] == 0
    assert sorted(sel.pair_objects[0].tolist()) == [0, 1]


def test_balance_on_large_workload():
    """Answer and letter shares over 2,048 frames; families and asked words spread evenly."""
    rng = np.random.default_rng(7)
    quotas = dataclasses.replace(QUOTAS, existence=4)
    tallies = collections.defaultdict(int)
    family_count = np.zeros(F, int)
    word_count = np.zeros((F, 2), int)
    for _ in range(8):
        frames = [synth_frame(rng, int(n), zero_frac=0.5) for n in rng.integers(2, 17, 256)]
        sel = host(select_questions(*pad_frames(frames, 16), quotas))
        real = np.arange(sel.pair_kind.shape[1])[None, :] < sel.num_pairs[:, None]
        yn = real & (sel.pair_kind == KIND_YES_NO)
        mc = real & (sel.pair_kind == KIND_MULTIPLE_CHOICE)
        tallies["pairs"] += real.sum()
        tallies["yes"] += (yn & (sel.pair_answer == 1)).sum()
        tallies["yes_no"] += yn.sum()
        tallies["A"] += (mc & (sel.pair_answer == 0)).sum()
        tallies["mc"] += mc.sum()
        e_real = np.arange(sel.exist_answer.shape[1])[None, :] < sel.num_exist[:, None]
        tallies["exist_yes"] += (e_real & (sel.exist_answer == 1)).sum()
        tallies["exist"] += e_real.sum()
        np.add.at(family_count, sel.pair_family[real], 1)
        np.add.at(word_count, (sel.pair_family[real], sel.pair_direction[real]), 1)
        for task, fams in (
            ("pos", real & (sel.pair_family < 3)),
            ("size", real & (sel.pair_family >= 3)),
        ):
            tallies[f"{task}_yes"] += (fams & yn & (sel.pair_answer == 1)).sum()
            tallies[f"{task}_yes_no"] += (fams & yn).sum()
    assert tallies["yes_no"] > 5000 and tallies["exist"] > 2000, dict(tallies)
    assert abs(tallies["yes"] / tallies["yes_no"] - 0.5) < 0.03, dict(tallies)
    for task in ("pos", "size"):  # each task on its own
        assert abs(tallies[f"{task}_yes"] / tallies[f"{task}_yes_no"] - 0.5) < 0.03, dict(tallies)
    assert abs(tallies["A"] / tallies["mc"] - 0.5) < 0.03, dict(tallies)
    assert abs(tallies["exist_yes"] / tallies["exist"] - 0.5) < 0.05, dict(tallies)
    assert abs(tallies["mc"] / tallies["pairs"] - quotas.multiple_choice_fraction) < 0.03
    # Families: none dominates its task (candidates are uniform here, so shares are ~1/3).
    assert family_count[:3].max() / family_count[:3].sum() < 0.4, family_count
    assert family_count[3:].max() / family_count[3:].sum() < 0.4, family_count
    # The asked word ("left of" vs "right of") is balanced within each family.
    assert np.all(np.abs(word_count[:, 0] / word_count.sum(1) - 0.5) < 0.05), word_count


# ------------------------------------------------------------------------------------------
# With the real relation pass and phrasing.

_NAMES = (
    "chair",
    "table",
    "sofa",
    "lamp",
    "bookshelf",
    "umbrella",
    "person",
    "box",
    "night stand",
    "clothes",
)


def random_observation(rng, n, scene="s", frame="f") -> FrameObservation:
    categories = [str(rng.choice(_NAMES)) for _ in range(n)]
    captions = [None] * n
    for k in range(n):  # a few captioned objects
        if rng.random() < 0.2:
            captions[k] = f"{rng.choice(['red', 'old', 'small', 'wooden'])} {categories[k]}"
    centre = np.stack([rng.uniform(-3, 3, n), rng.uniform(1, 8, n), rng.uniform(-1, 1.5, n)], -1)
    extent = rng.uniform(0.2, 2.0, (n, 3))
    return FrameObservation.from_view_boxes(
        categories,
        centre,
        extent,
        captions=captions,
        box2d=np.tile([10.0, 10.0, 50.0, 50.0], (n, 1)),
        exhaustive=bool(rng.random() < 0.8),
        scene_id=scene,
        frame_id=frame,
        source="test",
    )


def test_real_relation_pass_then_phrase():
    single_view = pytest.importorskip("jax_spatial.relations.single_view")
    rng = np.random.default_rng(8)
    checked = collections.Counter()
    for batch_no in range(2):
        observations = [
            random_observation(rng, int(rng.integers(2, 15)), frame=f"{batch_no}-{k}")
            for k in range(16)
        ]
        batch = pad_observations(observations, 16, 16, seed=0)
        rel = single_view.single_view_relations(batch)
        sel = select_questions(batch, rel, QUOTAS)
        pair = np.asarray(rel.pair)
        exists = np.asarray(rel.exists)
        cats = np.asarray(batch.category)
        for b, (obs, records) in enumerate(
            zip(observations, phrase_batch(observations, sel), strict=True)
        ):
            for qa in records:
                assert "{" not in qa.question + qa.answer
                if qa.task in ("position", "size"):
                    family = next(f for f in FAMILIES if qa.relation in RELATIONS[f])
                    f, d = FAMILIES.index(family), RELATIONS[family].index(qa.relation)
                    o0, o1 = qa.objects
                    if qa.kind == "yes_no":
                        true_d = 0 if pair[b, o0, o1, f] > 0 else 1
                        assert pair[b, o0, o1, f] != 0
                        assert qa.canonical == ("yes" if d == true_d else "no")
                        assert qa.answer.startswith("Yes" if qa.canonical == "yes" else "No")
                    else:
                        w = "AB".index(qa.canonical)
                        winner, loser = qa.objects[w], qa.objects[1 - w]
                        assert pair[b, winner, loser, f] == (1 if d == 0 else -1)
                        assert qa.question.endswith(f"(A) {qa.choices[0]} (B) {qa.choices[1]}")
                    checked[qa.kind] += 1
                elif qa.task == "existence":
                    f = next(k for k, fam in enumerate(FAMILIES) if qa.relation in RELATIONS[fam])
                    d = RELATIONS[FAMILIES[f]].index(qa.relation)
                    c = cats[b, obs.categories.index(qa.category)]
                    assert exists[b, qa.objects[0], c, f, d] == (1 if qa.canonical == "yes" else -1)
                    checked["existence"] += 1
                else:
                    assert int(qa.canonical) == obs.categories.count(qa.category)
                    checked["count"] += 1
    assert checked["yes_no"] > 20 and checked["multiple_choice"] > 20, checked
    assert checked["existence"] > 0 and checked["count"] > 0, checked


if __name__ == "__main__":
    absltest.main()
