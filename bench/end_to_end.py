"""Benchmark: scenes -> JSONL shards, the engine against a SpatialRGPT-style reference pipeline.

    .venv/bin/python bench/end_to_end.py                 # 128 and 1280 scenes, ~3 min on CPU
    .venv/bin/python bench/end_to_end.py --scenes 64 --repeats 3

Workload: synthetic scenes (`synthetic_scene`), one 640 x 480 view each of 6..14 boxes standing
on a floor 1.5 m below a level camera, categories from a 12-name vocabulary with colour words so
some captions are unique and some are not. They are built in memory before anything is timed
and both pipelines get the same `Scene` objects, so no rendering, decoding or file reading is
counted on either side: what is compared is geometry -> relations -> QA -> shards.

* engine: `engine.generate` on an in-memory `Source` (chunks of 64 scenes -> shard files,
  `qa.jsonl`, `summary.json`), default `GenerateConfig` (caption/raw, no images). Its jit
  compilation is done by a warm-up run on a few scenes and not timed.
* reference, the way SpatialRGPT-style engines run: per frame `observe_scene` (the same
  projection the engine uses), then per object an Open3D point cloud of the object (points
  sampled in its box, 200 per object) and `get_oriented_bounding_box`; per ordered pair the
  predicates of `relations.reference` (geometry re-derived from corners for every pair); of
  the decided (pair, relation) facts, up to 12 per frame (the engine's default quota total)
  sampled and asked as yes/no questions from a Python template; per record `json.dumps` into
  a shard file of 64 scenes. Capping at the engine's quota keeps the QA counts comparable;
  the per-scene ratio is printed beside the QA-per-second one.

Each (pipeline, scale) runs in its own worker process, started from a small middle process that
reads `resource.getrusage(RUSAGE_CHILDREN).ru_maxrss` after it exits, so every peak RSS is one
worker's alone. Workers print the medians of `--repeats` timed runs (the scene store built
before timing is part of their RSS; its size is printed as `rss_after_scenes`).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

VOCABULARY = (
    "chair table cabinet lamp box sofa bed desk plant shelf stool bin".split()  # 12 names
)
COLOURS = ("red", "blue", "green", "white", "black", "yellow")
WIDTH, HEIGHT = 640, 480
SHARD_SCENES = 64
POINTS_PER_OBJECT = 200
# The engine's default per-frame quotas summed (6 position + 3 size + 2 existence + 1 count).
QA_PER_FRAME = 12


def synthetic_scene(index: int, seed: int = 0):
    """Scene `index`: one level camera 1.5 m above the floor, 6..14 boxes standing in view."""
    from jax_spatial.scene import Box3D, Frame, Scene, SceneObject

    rng = np.random.default_rng([seed, index])
    n = int(rng.integers(6, 15))
    K = np.array([[500.0, 0, WIDTH / 2], [0, 500.0, HEIGHT / 2], [0, 0, 1]])
    # Camera axes in the z-up world: x right, y down (world -z), z forward (world +y).
    world_from_cam = np.eye(4)
    world_from_cam[:3, :3] = [[1, 0, 0], [0, 0, 1], [0, -1, 0]]
    world_from_cam[:3, 3] = [0, 0, 1.5]
    objects = []
    for i in range(n):
        extent = np.exp(rng.uniform(np.log(0.2), np.log(1.5), 3))
        depth = rng.uniform(2.0, 9.0)
        centre = [rng.uniform(-0.4, 0.4) * depth, depth, extent[2] / 2]
        yaw = rng.uniform(-np.pi, np.pi)
        c, s = np.cos(yaw), np.sin(yaw)
        rotation = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
        category = str(rng.choice(VOCABULARY))
        caption = f"{rng.choice(COLOURS)} {category}" if rng.random() < 0.5 else None
        objects.append(SceneObject(i, category, Box3D(np.array(centre), extent, rotation), caption))
    frame = Frame("view_0", WIDTH, HEIGHT, K, world_from_cam, image_path="bench.png")
    return Scene(f"scene{index:06d}", "bench", [frame], objects)


def make_source(scenes):
    """A `Source` over prebuilt scenes (the same objects every run)."""
    from jax_spatial.sources import Source

    class InMemory(Source):
        name = "bench"

        def scene_ids(self):
            return list(scenes)

        def load(self, scene_id):
            return scenes[scene_id]

    return InMemory(None)


def run_engine(scenes, out: pathlib.Path) -> int:
    """`engine.generate` into `out`; returns the QA count."""
    from jax_spatial import engine

    config = engine.GenerateConfig(chunk_scenes=SHARD_SCENES)
    return engine.generate(make_source(scenes), out, config)["qa_total"]


_FAMILY_WORDS = {
    "left_right": ("to the left of", "to the right of"),
    "above_below": ("above", "below"),
    "front_behind": ("in front of", "behind"),
    "bigger_smaller": ("bigger than", "smaller than"),
    "taller_shorter": ("taller than", "shorter than"),
    "wider_thinner": ("wider than", "thinner than"),
}


def open3d_objects(obs, rng):
    """Per-object Open3D oriented boxes from points sampled in each view-space box.

    Returns:
      centre `[n, 3]`, extent `[n, 3]`, rotation `[n, 3, 3]` (view frame).
    """
    import open3d as o3d

    n = len(obs.categories)
    centre, extent, rotation = np.zeros((n, 3)), np.zeros((n, 3)), np.zeros((n, 3, 3))
    for i in range(n):
        local = rng.uniform(-0.5, 0.5, (POINTS_PER_OBJECT, 3)) * obs.extent[i]
        points = local @ obs.rotation[i].T + obs.centre[i]
        obb = o3d.geometry.PointCloud(
            o3d.utility.Vector3dVector(points)
        ).get_oriented_bounding_box()
        centre[i], extent[i], rotation[i] = obb.center, obb.extent, obb.R
    return centre, extent, rotation


def run_reference(scenes, out: pathlib.Path) -> int:
    """The SpatialRGPT-style pipeline (module docstring) into `out`; returns the QA count."""
    from jax_spatial.observe import ObserveConfig, observe_scene
    from jax_spatial.relations.reference import reference_relations
    from jax_spatial.relations.types import FAMILIES

    out.mkdir(parents=True, exist_ok=True)
    ids = list(scenes)
    qa = 0
    config = ObserveConfig()
    for number, start in enumerate(range(0, len(ids), SHARD_SCENES)):
        with open(out / f"part-{number:05d}.jsonl", "w", encoding="utf-8") as shard:
            for scene_id in ids[start : start + SHARD_SCENES]:
                for obs in observe_scene(scenes[scene_id], config):
                    rng = np.random.default_rng(abs(hash((scene_id, obs.frame_id))) % 2**32)
                    centre, extent, rotation = open3d_objects(obs, rng)
                    facts = reference_relations(
                        centre,
                        extent,
                        rotation,
                        obs.categories,
                        obs.reference_phrases,
                        obs.exhaustive,
                    )
                    phrases = obs.reference_phrases
                    n = len(phrases)
                    candidates = [
                        (i, j, f)
                        for i in range(n)
                        for j in range(n)
                        if i != j and facts.unique_ref[i] and facts.unique_ref[j]
                        for f in range(len(FAMILIES))
                        if facts.pair[i, j, f] != 0
                    ]
                    # The same per-frame budget as the engine's quotas, so both write about
                    # as many QA per frame and the rates compare like with like.
                    take = min(QA_PER_FRAME, len(candidates))
                    for c in rng.choice(len(candidates), size=take, replace=False):
                        i, j, f = candidates[c]
                        family, sign = FAMILIES[f], int(facts.pair[i, j, f])
                        words = _FAMILY_WORDS[family][int(rng.integers(2))]
                        truth = (words == _FAMILY_WORDS[family][0]) == (sign > 0)
                        record = {
                            "id": f"{scene_id}/{obs.frame_id}/{qa}",
                            "image": obs.image_path,
                            "conversations": [
                                {
                                    "from": "human",
                                    "value": f"<image>\nIs the {phrases[i]} {words} "
                                    f"the {phrases[j]}?",
                                },
                                {"from": "gpt", "value": "Yes." if truth else "No."},
                            ],
                            "meta": {"task": family, "objects": [i, j]},
                        }
                        shard.write(json.dumps(record) + "\n")
                        qa += 1
    return qa


def worker(pipeline: str, num_scenes: int, repeats: int, seed: int, warmup: int) -> dict:
    """One pipeline on `num_scenes` prebuilt scenes, `repeats` timed runs (in this process)."""
    scenes = {s.scene_id: s for s in (synthetic_scene(i, seed) for i in range(num_scenes))}
    rss_scenes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    run = run_engine if pipeline == "engine" else run_reference
    with tempfile.TemporaryDirectory() as tmp:
        # Untimed warm-up over (up to) the 1x scenes: jit compilation, and the eager jax ops
        # of the shared `observe_scene` compiling once per object count, are not compared.
        run(dict(list(scenes.items())[:warmup]), pathlib.Path(tmp) / "warm")
        seconds, qa = [], 0
        for k in range(repeats):
            start = time.perf_counter()
            qa = run(scenes, pathlib.Path(tmp) / f"run{k}")
            seconds.append(time.perf_counter() - start)
    return {"seconds": seconds, "qa": qa, "rss_after_scenes_kb": rss_scenes}


def measure(pipeline: str, num_scenes: int, repeats: int, seed: int, warmup: int) -> dict:
    """Runs `worker` in a fresh process via a middle process that reads its peak RSS."""
    here = os.path.abspath(__file__)
    middle = (
        "import json, resource, subprocess, sys\n"
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "sys.stderr.write(r.stderr[-3000:]) if r.returncode else None\n"
        "out = json.loads(r.stdout.strip().splitlines()[-1])\n"
        "out['peak_rss_kb'] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(json.dumps(out))\n"
    )
    args = [sys.executable, here, "--worker", pipeline, "--scenes", str(num_scenes)]
    args += ["--repeats", str(repeats), "--seed", str(seed), "--warmup", str(warmup)]
    result = subprocess.run(
        [sys.executable, "-c", middle, *args], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenes", type=int, default=128, help="the 1x workload")
    parser.add_argument("--scale", type=int, default=10, help="the large workload, x --scenes")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warmup", type=int, default=128, help=argparse.SUPPRESS)
    parser.add_argument("--worker", choices=("engine", "reference"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.scenes, args.repeats, args.seed, args.warmup)))
        return
    results = {}
    for factor in (1, args.scale):
        n = args.scenes * factor
        # Medians at both scales: one run of the large workload varies by a third here.
        repeats = args.repeats
        for pipeline in ("engine", "reference"):
            r = measure(pipeline, n, repeats, args.seed, args.scenes)
            r["median_s"] = statistics.median(r["seconds"])
            r["qa_per_s"] = r["qa"] / r["median_s"]
            r["scenes_per_s"] = n / r["median_s"]
            results[(pipeline, factor)] = r
            print(
                f"{pipeline:9s} {n:6d} scenes: median {r['median_s']:7.3f} s over "
                f"{len(r['seconds'])} runs, {r['qa']:7d} QA, {r['qa_per_s']:9.0f} QA/s, "
                f"peak RSS {r['peak_rss_kb'] / 1024:6.0f} MiB "
                f"(scenes alone {r['rss_after_scenes_kb'] / 1024:.0f} MiB)",
                flush=True,
            )
    for factor in (1, args.scale):
        engine, reference = results[("engine", factor)], results[("reference", factor)]
        print(
            f"{factor:2d}x: engine / reference QA per second = "
            f"{engine['qa_per_s'] / reference['qa_per_s']:.1f}x (target >= 50x); "
            f"scenes per second = {engine['scenes_per_s'] / reference['scenes_per_s']:.1f}x"
        )
    for pipeline in ("engine", "reference"):
        small = results[(pipeline, 1)]["peak_rss_kb"]
        large = results[(pipeline, args.scale)]["peak_rss_kb"]
        print(
            f"{pipeline}: peak RSS {args.scale}x / 1x = {large / small:.2f} "
            f"({small / 1024:.0f} -> {large / 1024:.0f} MiB; target <= 1.2 for the engine)"
        )


if __name__ == "__main__":
    main()
