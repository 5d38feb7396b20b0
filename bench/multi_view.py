"""Benchmark: the compiled multi-view relations against the per-object Python references.

Run:

  .venv/bin/python bench/multi_view.py [--clips 32] [--objects 32] [--frames 16] [--seed 0]

Workload: `--clips` random clips, each `--objects` boxes in a 6 m x 5 m room (sides 0.1-2 m,
any yaw, standing on or up to 1 m above the floor), `--frames` frames 0.25-2 s apart where
each object shows in a frame with probability 0.3 and 15% of the objects in none, categories
from a six-name vocabulary; 8 relative-distance questions per clip with 4 candidates each.
The clips fill one `[clips, frames, objects]` ClipBatch exactly (padding is not measured).

Timed, per relation and for the whole pass (compilation happens in warm-up calls and is
never timed; jax rows are medians over `--runs` runs on a device-resident batch, blocked on):

* box distance: `pairwise_box_distance_jit` `[B, N, N]` against `reference_distances`
  (scipy's bounded least squares, pair by pair);
* relative direction: `relative_direction_jit` `[B, N, N, N]` against
  `reference_directions` (a loop over (stand, face, query) triples);
* appearance: `appearance_jit` against `reference_appearance` (a scan of the frames);
* counts: `category_counts_jit` `[B, C]` against `reference_counts` (sets per category);
* closest candidate: `closest_candidate_jit` `[B, Q]` against `closest_of` per question;
* whole pass: `multiview_relations` (every fact above but the questions, plus sizes and
  the nearest object), host-to-device transfer of the batch included, against
  `reference_clip_facts` clip by clip.

The references run `--ref-runs` times (median); they take tens of seconds.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from _machine import machine_info  # bench/ is on sys.path when a benchmark runs as a script

from jax_spatial.multiview import MultiViewConfig, make_clip_batch, multiview_relations
from jax_spatial.multiview import relations as rel
from jax_spatial.multiview.reference import (
    ClipGeometry,
    closest_of,
    reference_appearance,
    reference_clip_facts,
    reference_counts,
    reference_directions,
    reference_distances,
)

CATEGORIES = ("chair", "table", "sofa", "lamp", "tv", "bed")


def make_workload(num_clips: int, n: int, t: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    clips = []
    for _ in range(num_clips):
        extent = np.exp(rng.uniform(np.log(0.1), np.log(2.0), (n, 3)))
        centre = np.stack(
            [rng.uniform(0, 6, n), rng.uniform(0, 5, n), extent[:, 2] / 2 + rng.uniform(0, 1, n)],
            -1,
        )
        yaw = rng.uniform(-np.pi, np.pi, n)
        c, s = np.cos(yaw), np.sin(yaw)
        rotation = np.zeros((n, 3, 3))
        rotation[:, 0, 0], rotation[:, 0, 1], rotation[:, 1, 0], rotation[:, 1, 1] = c, -s, s, c
        rotation[:, 2, 2] = 1
        visible = rng.random((t, n)) < 0.3
        visible[:, rng.random(n) < 0.15] = False
        steps = rng.integers(1, 9, t)
        clips.append(
            {
                "centre": centre,
                "extent": extent,
                "rotation": rotation,
                "category": [str(x) for x in rng.choice(CATEGORIES, n)],
                "visible": visible,
                "frame_time": 0.25 * (np.cumsum(steps) - steps[0]),
            }
        )
    return clips


def timed(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        out.append(time.perf_counter() - start)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--objects", type=int, default=32)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--ref-runs", type=int, default=1)
    args = parser.parse_args()
    config = MultiViewConfig()
    B, N, T, Q, K = args.clips, args.objects, args.frames, args.questions, 4

    print(machine_info())
    clips = make_workload(B, N, T, args.seed)
    host = jax.device_get(make_clip_batch(clips, n_bucket=N, t_bucket=T))
    batch = jax.device_put(host)
    print(
        f"workload: {B} clips x {N} objects x {T} frames; {B * N * (N - 1)} ordered pairs, "
        f"{B * N**3} (stand, face, query) triples, {B * Q} closest-candidate questions"
    )
    rng = np.random.default_rng(args.seed + 1)
    target = rng.integers(0, N, (B, Q))
    cands = np.stack([[rng.choice(N, K, replace=False) for _ in range(Q)] for _ in range(B)])
    mask = np.ones((B, Q, K), bool)
    facts = multiview_relations(batch, config)
    t_j, c_j = jnp.asarray(target, jnp.int32), jnp.asarray(cands, jnp.int32)
    m_j = jnp.asarray(mask)

    jax_fns = {
        "box distance": lambda: rel.pairwise_box_distance_jit(
            batch.centre, batch.extent, batch.rotation
        ),
        "relative direction": lambda: rel.relative_direction_jit(
            batch.centre, batch.extent, batch.rotation, facts.seen, config
        ),
        "appearance": lambda: rel.appearance_jit(
            batch.visible, batch.frame_valid, batch.frame_time, batch.valid, config
        ),
        "counts": lambda: rel.category_counts_jit(batch.category, batch.valid, facts.seen, N),
        "closest candidate": lambda: rel.closest_candidate_jit(
            facts.distance, facts.distance_ok, t_j, c_j, m_j, config
        ),
        "whole pass": lambda: multiview_relations(jax.device_put(host), config),
    }
    for fn in jax_fns.values():  # compile
        jax.block_until_ready(fn())

    geometry = [ClipGeometry.of(c) for c in clips]
    seen = [reference_appearance(g, config)[2] for g in geometry]
    ref_tables = [reference_distances(g, s) for g, s in zip(geometry, seen, strict=True)]

    def ref_closest():
        for b in range(B):
            d, ok = ref_tables[b]
            for q in range(Q):
                t = int(target[b, q])
                cs = [int(c) for c in cands[b, q] if ok[t, c]]
                closest_of([d[t, c] for c in cs], config)

    ref_fns = {
        "box distance": lambda: [
            reference_distances(g, s) for g, s in zip(geometry, seen, strict=True)
        ],
        "relative direction": lambda: [
            reference_directions(g, s, config) for g, s in zip(geometry, seen, strict=True)
        ],
        "appearance": lambda: [reference_appearance(g, config) for g in geometry],
        "counts": lambda: [reference_counts(g, s) for g, s in zip(geometry, seen, strict=True)],
        "closest candidate": ref_closest,
        "whole pass": lambda: [reference_clip_facts(c, config) for c in clips],
    }

    rows = []
    for name in jax_fns:
        jt = timed(jax_fns[name], args.runs)
        rt = timed(ref_fns[name], args.ref_runs)
        rows.append((name, statistics.median(jt), min(jt), statistics.median(rt)))

    print(
        f"\n{'relation':<20}{'jax median ms':>15}{'jax min ms':>12}{'reference s':>13}{'ratio':>11}"
    )
    for name, med, low, ref in rows:
        print(f"{name:<20}{1e3 * med:>15.3f}{1e3 * low:>12.3f}{ref:>13.3f}{ref / med:>10.0f}x")
    print(f"\njax runs: {args.runs} (median), reference runs: {args.ref_runs}")


if __name__ == "__main__":
    main()
