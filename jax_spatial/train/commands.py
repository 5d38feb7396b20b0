"""`jax-spatial build-data`, `train` and `predict`: thin shells over `datasets.build` and
`train.trainer`.

    jax-spatial build-data --data-dir D --name learn [--num-scenes 64] [--scene-seed 0]
        [--width 128 --height 96] [--splits train=0.8,test=0.2]
    jax-spatial train --config configs/train.py:<arg> --workdir W [--data-dir D]
        [--name spatial_qa/learn] [--split train] [--steps N] [--batch-size B] [--model M]
    jax-spatial predict --workdir W --data-dir D --name N --split test --out preds.jsonl
    jax-spatial predict --workdir W --bench B --out preds.jsonl
"""

from __future__ import annotations

import argparse
import json

from jax_spatial.errors import UsageError, UserError


def _positive(name):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, not {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{name} must be at least 1, not {value}")
        return value

    return parse


def _build_data(args) -> int:
    from jax_spatial.datasets.build import build_dataset, parse_splits

    path = build_dataset(
        args.data_dir,
        args.name,
        split_fractions=parse_splits(args.splits),
        scenes_per_shard=args.scenes_per_shard,
        num_scenes=args.num_scenes,
        seed=args.scene_seed,
        views_per_scene=args.views,
        width=args.width,
        height=args.height,
    )
    print(json.dumps({"dataset": str(path), "name": f"spatial_qa/{args.name}"}))
    return 0


def load_train_config(spec: str | None):
    from jax_spatial import config as config_lib
    from jax_spatial.train import trainer

    if not spec:
        return trainer.default_config()
    try:
        return config_lib.load_config(spec)
    except (FileNotFoundError, AttributeError, ValueError, SyntaxError, KeyError) as error:
        raise UserError(f"config {spec}: {error}") from error


def _train(args) -> int:
    from jax_spatial.train import trainer

    config = load_train_config(args.config)
    overrides = {
        ("data", "data_dir"): args.data_dir,
        ("data", "name"): args.name,
        ("data", "split"): args.split,
        ("steps",): args.steps,
        ("batch_size",): args.batch_size,
        ("model", "name"): args.model,
    }
    for path, value in overrides.items():
        if value is None:
            continue
        node = config
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    if args.model:
        from jax_spatial.train import models

        if args.model not in models.names():
            raise UsageError(f"unknown --model {args.model!r}; known: {', '.join(models.names())}")
    summary = trainer.train(config, args.workdir, show_progress=not args.quiet)
    summary.pop("losses", None)
    ev = summary.pop("eval", {})
    if ev:
        summary["eval_accuracy"] = round(ev["overall"]["all"]["accuracy"], 1)
        summary["eval_per_task"] = {k: round(v["accuracy"], 1) for k, v in ev["task"].items()}
    print(json.dumps(summary))
    return 0


def _predict(args) -> int:
    from jax_spatial.train import trainer

    if (args.bench is None) == (args.name is None):
        raise UsageError("predict: give either --bench B or --name N (with --data-dir)")

    summary = trainer.predict(
        args.workdir,
        args.data_dir,
        args.name,
        args.split,
        args.out,
        batch_size=args.batch_size,
        formats=args.formats,
        every_format=args.every_format,
        max_items=args.max_items,
        seed=args.seed,
        show_progress=not args.quiet,
        bench=args.bench,
    )
    print(json.dumps(summary))
    return 0


def add_parsers(sub) -> None:
    bd = sub.add_parser("build-data", help="build a procedural spatial_qa TFDS dataset with splits")
    bd.add_argument("--data-dir", required=True, help="TFDS data dir to build into")
    bd.add_argument("--name", required=True, help="config name: the dataset is spatial_qa/NAME")
    bd.add_argument("--num-scenes", type=_positive("--num-scenes"), default=64)
    bd.add_argument("--scene-seed", type=int, default=0, help="procedural scene seed")
    bd.add_argument("--views", type=_positive("--views"), default=3, help="views per scene")
    bd.add_argument("--width", type=_positive("--width"), default=128)
    bd.add_argument("--height", type=_positive("--height"), default=96)
    bd.add_argument(
        "--splits",
        default="train=0.8,test=0.2",
        help="scene-disjoint splits by a stable hash of the scene id",
    )
    bd.add_argument("--scenes-per-shard", type=_positive("--scenes-per-shard"), default=8)
    bd.set_defaults(func=_build_data)

    tr = sub.add_parser("train", help="fine-tune a VLM on a built spatial_qa dataset")
    tr.add_argument("--config", help="config file, e.g. configs/train.py:model=tiny_vlm")
    tr.add_argument("--workdir", required=True, help="checkpoints, metrics, plots (resumes)")
    tr.add_argument("--data-dir", help="TFDS data dir holding the dataset")
    tr.add_argument("--name", help="TFDS name, e.g. spatial_qa/procedural_small")
    tr.add_argument("--split", help="training split (default train)")
    tr.add_argument("--steps", type=_positive("--steps"))
    tr.add_argument("--batch-size", type=_positive("--batch-size"))
    tr.add_argument("--model", help="registered model name (tiny_vlm)")
    tr.add_argument("--quiet", action="store_true", help="no progress bar")
    tr.set_defaults(func=_train)

    pr = sub.add_parser("predict", help="greedy answers of a trained model, one JSONL line each")
    pr.add_argument("--workdir", required=True, help="a train --workdir")
    pr.add_argument("--data-dir", help="TFDS data dir holding the dataset")
    pr.add_argument("--name", help="TFDS name, e.g. spatial_qa/procedural_small")
    pr.add_argument(
        "--bench",
        help="a `jax-spatial bench build` folder: answer its items (ids as in bench.jsonl) "
        "instead of a dataset split",
    )
    pr.add_argument("--split", default="test")
    pr.add_argument("--out", required=True, help="predictions JSONL to write")
    pr.add_argument("--batch-size", type=_positive("--batch-size"), default=64)
    pr.add_argument("--formats", default="all", help="'all' or format ids to sample among")
    pr.add_argument(
        "--every-format",
        action="store_true",
        help="one line per (question, format) instead of one sampled format",
    )
    pr.add_argument("--max-items", type=_positive("--max-items"))
    pr.add_argument("--seed", type=int, default=0)
    pr.add_argument("--quiet", action="store_true")
    pr.set_defaults(func=_predict)


__all__ = ["add_parsers", "load_train_config"]
