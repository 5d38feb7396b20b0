"""Benchmark: jitted image-only lifting vs a per-object Open3D pipeline.

The Open3D pipeline is the one SpatialRGPT-style data engines run per object: unproject the
masked depth with numpy, `remove_statistical_outlier` (20 neighbours, 2 sigma: Open3D's
tutorial values), `cluster_dbscan` keeping the largest cluster, `get_oriented_bounding_box`.
Both run on the same synthetic frames (`jax_spatial.lift.synthetic`: tilted camera, boxes on a
floor, distance-dependent depth noise, flying pixels, holes) and are scored against the true
boxes.

    python bench/lift.py                      # 50 frames, 320x240, ~1-2 min on 2 CPU cores
    python bench/lift.py --frames 20 --width 640 --height 480

Frames are grouped by object bucket (8 or 16 padded slots, `batching.bucket_for`) as the
engine batches them. Timings are medians over repeats of the whole set, the two methods
interleaved (one jitted pass, then one Open3D pass, ...) so that both see the same load on a
shared machine; warm-up runs are excluded. The jitted side includes the host-to-device copy of
depth and masks and is timed with `block_until_ready`; its compilation (once per bucket shape)
is done before timing.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np
import open3d as o3d

from jax_spatial.batching import bucket_for
from jax_spatial.lift import image_only as io
from jax_spatial.lift import synthetic as syn


def open3d_boxes(frame, dbscan_eps=0.1, dbscan_min_points=10):
    """Per-object Open3D boxes in the view frame: list of (centre [3], extent [3]) or None."""
    h, w = frame.depth.shape
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    K = frame.K
    out = []
    for mask in frame.masks:
        sel = mask & np.isfinite(frame.depth) & (frame.depth > 0)
        z = frame.depth[sel].astype(np.float64)
        if len(z) < 20:
            out.append(None)
            continue
        cam = np.stack([(u[sel] - K[0, 2]) / K[0, 0] * z, (v[sel] - K[1, 2]) / K[1, 1] * z, z], -1)
        pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(cam @ frame.view_from_cam.T))
        pcd, _ = pcd.remove_statistical_outlier(nb_neighbors=20, std_ratio=2.0)
        labels = np.asarray(pcd.cluster_dbscan(eps=dbscan_eps, min_points=dbscan_min_points))
        if labels.size == 0 or labels.max() < 0:
            out.append(None)
            continue
        largest = np.argmax(np.bincount(labels[labels >= 0]))
        pcd = pcd.select_by_index(np.flatnonzero(labels == largest))
        if len(pcd.points) < 4:
            out.append(None)
            continue
        obb = pcd.get_oriented_bounding_box()
        out.append((np.asarray(obb.center), np.asarray(obb.extent)))
    return out


def stack_frames(frames, num):
    masks, valid = zip(
        *(io.pad_masks(list(f.masks), *f.depth.shape, num) for f in frames), strict=True
    )
    return (
        np.stack([f.depth for f in frames]),
        np.stack(masks),
        np.stack(valid),
        np.stack([f.K for f in frames]).astype(np.float32),
        np.stack([f.view_from_cam for f in frames]).astype(np.float32),
    )


def errors(frames, boxes_per_frame):
    """Centre error and order-free extent error (sorted sides) of matched boxes, metres."""
    centre, extent = [], []
    for frame, boxes in zip(frames, boxes_per_frame, strict=True):
        for i, box in enumerate(boxes):
            if box is None or len(frame.visible_points[i]) < 200:
                continue
            centre.append(np.linalg.norm(box[0] - frame.centre[i]))
            extent.append(np.abs(np.sort(box[1]) - np.sort(frame.extent[i])))
    return np.array(centre), np.array(extent)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--open3d-runs", type=int, default=5)
    parser.add_argument("--stride", type=int, default=None, help="LiftConfig.stride (auto)")
    parser.add_argument(
        "--map-batch", type=int, default=None, help="lift_frames map_batch (auto: 1 on CPU)"
    )
    parser.add_argument("--sample-grid", type=int, default=None, help="LiftConfig.sample_grid")
    args = parser.parse_args()

    t0 = time.perf_counter()
    frames = [syn.render_frame(1000 + s, args.width, args.height) for s in range(args.frames)]
    num_objects = sum(len(f.centre) for f in frames)
    print(
        f"rendered {args.frames} frames, {num_objects} objects, {args.width}x{args.height} "
        f"in {time.perf_counter() - t0:.1f}s"
    )

    # Frames grouped by object bucket, as the engine batches them: one compiled shape per
    # bucket, and frames with <= 8 objects do not pay for 16 slots.
    groups = {}
    for b, f in enumerate(frames):
        groups.setdefault(bucket_for(len(f.centre)), []).append(b)
    hosts = {n: stack_frames([frames[b] for b in idx], n) for n, idx in groups.items()}
    print("buckets (objects: frames):", {n: len(idx) for n, idx in sorted(groups.items())})
    config = io.LiftConfig(stride=args.stride, sample_grid=args.sample_grid)
    map_batch = args.map_batch
    if map_batch is None and jax.default_backend() == "cpu":
        map_batch = 1

    def run_jax():
        out = {
            n: io.lift_frames(*jax.device_put(host), config=config, map_batch=map_batch)
            for n, host in hosts.items()
        }
        return jax.block_until_ready(out)

    t0 = time.perf_counter()
    lifted = run_jax()
    print(f"jax: compile + first run {time.perf_counter() - t0:.2f}s")
    open3d_boxes(frames[0])  # warm-up (Open3D's first call initialises its thread pool)
    jax_times, o3d_times = [], []
    for r in range(max(args.runs, args.open3d_runs)):
        if r < args.runs:
            t0 = time.perf_counter()
            lifted = run_jax()
            jax_times.append(time.perf_counter() - t0)
        if r < args.open3d_runs:
            t0 = time.perf_counter()
            o3d_out = [open3d_boxes(f) for f in frames]
            o3d_times.append(time.perf_counter() - t0)

    jax_boxes = [None] * len(frames)
    for n, idx in groups.items():
        ok = np.asarray(lifted[n].ok)
        centre, extent = np.asarray(lifted[n].centre), np.asarray(lifted[n].extent)
        for j, b in enumerate(idx):
            jax_boxes[b] = [
                (centre[j, i], extent[j, i]) if ok[j, i] else None
                for i in range(len(frames[b].centre))
            ]
    jax_med, o3d_med = np.median(jax_times), np.median(o3d_times)
    print(
        f"jax lift_frames:  {jax_med * 1e3:8.1f} ms median over {args.runs} runs "
        f"({jax_med / args.frames * 1e3:.2f} ms/frame)"
    )
    print(
        f"open3d per-object:{o3d_med * 1e3:8.1f} ms median over {args.open3d_runs} runs "
        f"({o3d_med / num_objects * 1e3:.2f} ms/object)"
    )
    print(f"speed-up: {o3d_med / jax_med:.1f}x")
    for name, boxes in (("jax", jax_boxes), ("open3d", o3d_out)):
        c, e = errors(frames, boxes)
        print(
            f"{name:7s} n={len(c):3d}  centre err median {np.median(c):.3f} m  "
            f"extent err median (sorted sides) {np.round(np.median(e, 0), 3).tolist()} m  "
            f"p90 centre {np.percentile(c, 90):.3f} m"
        )


if __name__ == "__main__":
    main()
