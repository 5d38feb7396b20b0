"""Benchmark: the jitted single-view relation pass against the per-pair Python reference.

Run:

  .venv/bin/python bench/relations.py [--frames 256] [--batch-size 32] [--seed 0]

Workload: `--frames` frames with 8..64 objects each (uniform), boxes of 5 cm..2 m with any yaw
and a little tilt, centres in a room-sized view region (6 m wide, 0.3..8 m ahead, floor 1.5 m
below the camera to 1.2 m above it), categories drawn from a skewed 20-name vocabulary (so
categories repeat and references are often not unique) and a caption on 20% of the objects.

Timed (compilation happens in warm-up calls and is never timed):

* jax, one batch: all frames padded on the host to one `[frames, 64]` batch (not timed), then
  the host->device transfer of that batch and `single_view_relations`, blocked on.
* jax, buckets: as the engine runs it: frames grouped into object-count buckets of
  `--batch-size` frames (`batches_by_bucket` + `pad_observations`, not timed), then per group
  the transfer and the call, blocked on at the end. Less padding, more dispatches.
* jax, buckets + padding: the same with the host padding (`pad_observations` from the
  observations) inside the timed region, for an end-to-end comparison.
* reference: `reference.reference_relations_for` frame by frame, as specified (geometry
  re-derived from the box corners for every pair, as the open-source pipelines do). It takes
  ~0.1 ms per ordered pair, so it is timed on the first `--ref-frames` frames and scaled to
  the workload by the ratio of ordered pairs (printed).
* reference, cached: the same with `per_pair_geometry=False` (each object's geometry derived
  once), a stronger Python baseline, timed on every frame.

The jax rows are medians over `--runs` runs, the references over `--ref-runs` runs; the runs
are interleaved (one of each per round) so that load from other processes on the machine hits
both sides alike. Minimums are printed beside the medians.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import numpy as np
from _machine import machine_info  # bench/ is on sys.path when a benchmark runs as a script

from jax_spatial import batching
from jax_spatial.geometry import frames
from jax_spatial.observe import FrameObservation
from jax_spatial.relations import RelationConfig, single_view_relations
from jax_spatial.relations.reference import reference_relations_for

VOCABULARY = (
    "chair table cabinet door window bookshelf picture counter desk curtain "
    "refrigerator shower_curtain toilet sink bathtub bed sofa lamp pillow box"
).split()


def make_workload(num_frames: int, seed: int) -> list[FrameObservation]:
    """Seeded random frames of 8..64 view-space objects."""
    rng = np.random.default_rng(seed)
    # Zipf-like category frequencies: a few common categories, many rare ones.
    weights = 1.0 / np.arange(1, len(VOCABULARY) + 1)
    weights /= weights.sum()
    out = []
    for k in range(num_frames):
        n = int(rng.integers(8, 65))
        centre = np.stack(
            [rng.uniform(-3, 3, n), rng.uniform(0.3, 8, n), rng.uniform(-1.5, 1.2, n)], -1
        )
        extent = np.exp(rng.uniform(np.log(0.05), np.log(2.0), (n, 3)))
        yaw = rng.uniform(-np.pi, np.pi, n)
        tilt = rng.normal(0.0, 0.05, n)
        rotation = np.asarray(frames.rotation_z(yaw) @ frames.rotation_x(tilt), np.float64)
        categories = [str(c) for c in rng.choice(VOCABULARY, n, p=weights)]
        captions = [
            f"the {c} {i}" if rng.random() < 0.2 else None for i, c in enumerate(categories)
        ]
        out.append(
            FrameObservation.from_view_boxes(
                categories,
                centre,
                extent,
                rotation,
                captions,
                exhaustive=bool(rng.random() < 0.5),
                scene_id=f"bench{k // 8:04d}",
                frame_id=f"{k % 8:02d}",
                source="bench",
            )
        )
    return out


def time_jax_groups(groups, config, pad_inside: bool, batch_size: int, seed: int) -> float:
    """One pass over bucket groups: (padding,) transfer and relations per group. Seconds."""
    start = time.perf_counter()
    outs = []
    for bucket, group, host_batch in groups:
        if pad_inside:
            batch = batching.pad_observations(group, bucket, batch_size, seed)
        else:
            batch = jax.device_put(host_batch)
        outs.append(single_view_relations(batch, config))
    jax.block_until_ready(outs)
    return time.perf_counter() - start


def time_jax_single(host_batch, config) -> float:
    """Transfer of one padded batch and the relation pass over it. Seconds."""
    start = time.perf_counter()
    jax.block_until_ready(single_view_relations(jax.device_put(host_batch), config))
    return time.perf_counter() - start


def time_reference(observations, config, per_pair_geometry: bool) -> float:
    start = time.perf_counter()
    for obs in observations:
        reference_relations_for(obs, config, per_pair_geometry)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--ref-runs", type=int, default=3)
    parser.add_argument(
        "--ref-frames", type=int, default=32, help="frames timed for the per-pair reference"
    )
    args = parser.parse_args()
    config = RelationConfig()

    print(machine_info())
    observations = make_workload(args.frames, args.seed)
    objects = [o.num_objects for o in observations]
    pairs = [n * (n - 1) for n in objects]
    print(
        f"workload: {len(observations)} frames, {sum(objects)} objects "
        f"({min(objects)}..{max(objects)} per frame), {sum(pairs)} ordered pairs"
    )

    groups = []
    for bucket, group in batching.batches_by_bucket(observations, args.batch_size):
        padded = batching.pad_observations(group, bucket, args.batch_size, args.seed)
        groups.append((bucket, group, jax.device_get(padded)))  # host numpy copy
    shapes = sorted({(args.batch_size, bucket) for bucket, _, _ in groups})
    print(f"buckets: {len(groups)} calls per pass, batch shapes {shapes}")
    single = jax.device_get(
        batching.pad_observations(
            observations, batching.bucket_for(max(objects)), len(observations)
        )
    )
    print(f"one batch: shape {single.valid.shape}")

    ref_obs = observations[: args.ref_frames]
    scale = sum(pairs) / sum(pairs[: len(ref_obs)])
    print(
        f"per-pair reference timed on {len(ref_obs)} frames "
        f"({sum(pairs[: len(ref_obs)])} ordered pairs), scaled x{scale:.2f} to the workload"
    )

    # Warm-up: compiles every shape once.
    time_jax_groups(groups, config, False, args.batch_size, args.seed)
    time_jax_single(single, config)
    times = {"single": [], "groups": [], "groups_pad": [], "ref": [], "ref_cached": []}
    for round_ in range(max(args.runs, args.ref_runs)):
        if round_ < args.runs:
            times["single"].append(time_jax_single(single, config))
            times["groups"].append(
                time_jax_groups(groups, config, False, args.batch_size, args.seed)
            )
            times["groups_pad"].append(
                time_jax_groups(groups, config, True, args.batch_size, args.seed)
            )
        if round_ < args.ref_runs:
            times["ref"].append(time_reference(ref_obs, config, True) * scale)
            times["ref_cached"].append(time_reference(observations, config, False))

    med = {k: statistics.median(v) for k, v in times.items()}
    low = {k: min(v) for k, v in times.items()}
    rows = [
        ("jax, one batch (transfer + pass)", "single"),
        ("jax, buckets (transfer + pass)", "groups"),
        ("jax, buckets + host padding", "groups_pad"),
        ("reference, per-pair (scaled)", "ref"),
        ("reference, cached geometry", "ref_cached"),
    ]
    frames_n = len(observations)
    print(f"\n{'path':<34}{'median s':>10}{'min s':>10}{'ms/frame':>10}{'runs':>6}")
    for name, key in rows:
        print(
            f"{name:<34}{med[key]:>10.4f}{low[key]:>10.4f}"
            f"{1e3 * med[key] / frames_n:>10.3f}{len(times[key]):>6}"
        )
    print(f"\n{'speed-up (median / median)':<34}{'per-pair ref':>14}{'cached ref':>12}")
    for name, key in rows[:3]:
        print(f"  {name:<32}{med['ref'] / med[key]:>13.1f}x{med['ref_cached'] / med[key]:>11.1f}x")


if __name__ == "__main__":
    main()
