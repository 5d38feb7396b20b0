"""What batching by like lengths saves: padded tokens and train-step time, against plain batches.

    python bench/length_groups.py [--data-dir out/bench/length_groups] [--name NAME]
        [--batches 48] [--group 8] [--batch-size 32] [--overrides '{"look": true}']

Reads the same number of training batches of one built `spatial_qa` split twice, shuffled
the same way: as plain batches (each padded to the bucket of its longest question) and with
`data.length_group` (the questions of `--group` batches sorted by length and cut again).
Prints the padded text length of both, then times the loop's own train step (`tiny_vlm`,
the `cpu` preset, grounding on) on every batch of both, alternating between the two so the
machine's load falls on both alike; each padded length is compiled by one untimed step
first (counted apart). Prints a table and the ratio of the mean step
times (grouped over plain). Without `--name` it builds 96 procedural rooms x 3 views at the
model's resolution into `--data-dir` first (about a minute; kept for the next run).
"""

from __future__ import annotations

import argparse
import collections
import json
import pathlib
import statistics
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _machine import machine_info  # noqa: E402  bench/ is on sys.path when run as a script


def _dataset(args) -> tuple[str, str]:
    if args.name:
        return args.data_dir, args.name
    from jax_spatial.datasets.build import build_dataset

    data_dir = pathlib.Path(args.data_dir)
    if not (data_dir / "spatial_qa" / "length_groups").is_dir():
        build_dataset(
            data_dir, "length_groups", num_scenes=96, seed=7000, views_per_scene=3,
            width=128, height=96, scenes_per_shard=16, split_fractions=(("train", 1.0),),
        )  # fmt: skip
    return str(data_dir), "spatial_qa/length_groups"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=str(REPO / "out" / "bench" / "length_groups"))
    parser.add_argument("--name", default="", help="a built dataset (default: build one)")
    parser.add_argument("--batches", type=int, default=48)
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--overrides", default="{}", help="tiny_vlm fields as JSON")
    args = parser.parse_args()

    import dataclasses

    import jax
    import numpy as np
    from flax import nnx

    from jax_spatial.train import data as data_lib
    from jax_spatial.train import models, trainer
    from jax_spatial.train.tokenizer import WordTokenizer

    print(machine_info())
    data_dir, name = _dataset(args)
    source = data_lib.open_split(data_dir, name, "train")
    index = data_lib.question_index(source)
    tok = WordTokenizer.train(data_lib.tokenizer_texts(source, max_frames=64))
    read = data_lib.ReadConfig(image_size=(96, 128), ground=True)
    batches = {}
    for label, group in (("plain", 1), ("grouped", args.group)):
        config = dataclasses.replace(read, length_group=group)
        it = iter(data_lib.train_batches(source, index, tok, config, args.batch_size))
        batches[label] = [next(it) for _ in range(args.batches)]

    config = trainer.default_config()
    model = models.build(
        "tiny_vlm", vocab_size=tok.vocab_size, preset="cpu", rngs=nnx.Rngs(0),
        **json.loads(args.overrides),
    )  # fmt: skip
    optimizer = trainer.make_optimizer(model, config, 10 * args.batches)
    step = trainer.make_train_step(1, 1.0)
    fields = data_lib.ARRAY_FIELDS + data_lib.GROUND_FIELDS
    times = {label: [] for label in batches}
    compiles = collections.defaultdict(float)
    seen = set()
    for i in range(args.batches):
        for label in batches:
            host = batches[label][i]
            batch = {k: jax.numpy.asarray(host[k]) for k in fields if k in host}
            length = host["text"].shape[1]
            if length not in seen:  # compile this length first, then time it like the rest
                seen.add(length)
                t = time.perf_counter()
                jax.block_until_ready(step(model, optimizer, batch)["loss"])
                compiles[label] += time.perf_counter() - t
            t = time.perf_counter()
            jax.block_until_ready(step(model, optimizer, batch)["loss"])
            times[label].append((length, time.perf_counter() - t))

    rows = []
    for label, got in times.items():
        lengths = [b["text"].shape[1] for b in batches[label]]
        real = [int(b["mask_input"].sum()) for b in batches[label]]
        rows.append({
            "batches": label,
            "padded_length": float(np.mean(lengths)),
            "real_tokens_share": sum(real) / (args.batch_size * sum(lengths)),
            "lengths": dict(sorted(collections.Counter(lengths).items())),
            "mean_step_s": float(np.mean([t for _, t in got])),
            "median_step_s": statistics.median(t for _, t in got),
            "first_steps_s": compiles[label],
        })  # fmt: skip
    print(f"\n{args.batches} batches of {args.batch_size} from {name}; tiny_vlm cpu preset "
          f"{args.overrides}; group {args.group}\n")
    print("| batches | mean padded text length | real tokens | mean step s | median step s |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['batches']} | {r['padded_length']:.1f} | {r['real_tokens_share']:.0%} | "
              f"{r['mean_step_s']:.3f} | {r['median_step_s']:.3f} |")
    for r in rows:
        print(f"{r['batches']}: lengths {r['lengths']}; compiling the lengths it met first "
              f"{r['first_steps_s']:.1f} s")
    ratio = rows[1]["mean_step_s"] / rows[0]["mean_step_s"]
    print(f"\nratio of mean step time, grouped / plain: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
