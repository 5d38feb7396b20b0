"""`jax-spatial bench build` and `bench review`: thin shells over `benchmark.build` and
`benchmark.review`.

    jax-spatial bench build [--source S --root R] --out B [--max-scenes M] [--seed K]
        [--set key=value ...] [--config F] [--per-cell N] [--split test] [--splits ...]
    jax-spatial bench build --out B --verified-only
    jax-spatial bench review B [--port 8765] [--host 127.0.0.1] [--no-browser] [--reviewer NAME]

`--root`, `--max-scenes`, `--seed`, `--set`, `--config`, `--batch-size` and `--lift` are read by
`cli.prepare_run`, the code `generate` reads them with.
"""

from __future__ import annotations

import argparse
import json
import shlex

from jax_spatial.benchmark import splits
from jax_spatial.errors import UsageError, UserError

DEFAULT_PER_CELL = 10
# Flags that build a benchmark; `--verified-only` filters an existing one and takes none.
_BUILD_FLAGS = ("source", "root", "max_scenes", "seed", "set", "config", "batch_size", "lift",
                "per_cell")  # fmt: skip


def command_line(args: argparse.Namespace) -> str:
    """The command as a normalised string (flags in a fixed order, defaults filled in), so a
    manifest does not depend on how the command was typed or called."""
    parts = ["jax-spatial", "bench", "build", "--source", args.source or "procedural"]
    if args.root:
        parts += ["--root", args.root]
    parts += ["--out", args.out]
    if args.config:
        parts += ["--config", args.config]
    for item in args.set or ():
        parts += ["--set", item]
    if args.max_scenes is not None:
        parts += ["--max-scenes", str(args.max_scenes)]
    parts += ["--seed", str(args.seed or 0)]
    if args.batch_size is not None:
        parts += ["--batch-size", str(args.batch_size)]
    if args.lift is not None:
        parts.append("--lift" if args.lift else "--no-lift")
    parts += ["--per-cell", str(args.per_cell or DEFAULT_PER_CELL)]
    parts += ["--split", args.split, "--splits", args.splits]
    return shlex.join(parts)


def _build(args: argparse.Namespace) -> int:
    if args.verified_only:
        return _verified_only(args)
    from tqdm import tqdm

    from jax_spatial import cli
    from jax_spatial.benchmark import build

    if args.per_cell is not None and args.per_cell < 1:
        raise UsageError(f"--per-cell must be at least 1, got {args.per_cell}")
    args.per_cell = args.per_cell or DEFAULT_PER_CELL
    prepared = cli.prepare_run(args)
    config = build.BenchConfig(per_cell=args.per_cell)
    about = {
        "command": command_line(args),
        "source": {
            "name": prepared.source_name,
            "root": prepared.root,
            "options": {k: prepared.options[k] for k in sorted(prepared.options)},
            "lift": prepared.lift,
        },
        "split": {
            "name": prepared.split,
            "fractions": splits.fractions_dict(prepared.fractions),
            "rule": "examples.scene_split: SHA-256 of the scene id on the cumulative fractions",
        },
    }

    def progress(total):
        return tqdm(total=total, unit="scene", desc=f"bench {prepared.source_name}",
                    disable=args.quiet)  # fmt: skip

    manifest = build.build_bench(
        prepared.source,
        prepared.out,
        prepared.run,
        config,
        prepared.scene_ids,
        about=about,
        progress=progress,
    )
    print(_build_text(manifest, prepared.out))
    return 0


def _build_text(manifest: dict, out: str) -> str:
    lines = [
        f"wrote {manifest['items']} items ({manifest['distinct_questions']} questions) from "
        f"{manifest['scenes']['used']} scenes of split {manifest['split']['name']} "
        f"in {manifest['seconds']} s -> {out}/bench.jsonl",
        "per task: " + ", ".join(f"{k} {v}" for k, v in manifest["per_task"].items()),
    ]
    yes_no, letters = manifest["yes_no"], manifest["letters"]
    if yes_no["n"]:
        lines.append(f"yes/no: yes {yes_no['rates']['yes']:.1%} of {yes_no['n']}")
    if letters["n"]:
        shares = ", ".join(f"{k} {v:.1%}" for k, v in letters["rates"].items())
        lines.append(f"letters: {shares} of {letters['n']} ({manifest['relettered']} re-lettered)")
    short = sum(len(v) for v in manifest["short_cells"].values())
    if short:
        lines.append(
            f"{short} cells have fewer than {manifest['per_cell']} items "
            "(manifest.json: short_cells)"
        )
    return "\n".join(lines)


def _verified_only(args: argparse.Namespace) -> int:
    """Writes `B/bench_verified.jsonl`: the lines of `B/bench.jsonl` judged `accept`."""
    from jax_spatial.benchmark import build, verdicts

    given = [
        f"--{name.replace('_', '-')}" for name in _BUILD_FLAGS if getattr(args, name) is not None
    ]
    if given:
        raise UsageError(
            f"--verified-only filters the benchmark already in --out and takes no "
            f"{', '.join(given)}"
        )
    root = verdicts.bench_folder(args.out, "--out")
    if not (root / verdicts.FILE_NAME).is_file():
        raise UserError(
            f"--out {root} has no {verdicts.FILE_NAME}; review it first (jax-spatial bench "
            f"review {root})"
        )
    marks = verdicts.load_verdicts(root)
    items = verdicts.read_items(root)
    kept = [item for item in items if marks.get(item["id"]) == "accept"]
    path = root / "bench_verified.jsonl"
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for item in kept:
            f.write(json.dumps(item, ensure_ascii=False) + "\n")
    tmp.replace(path)
    summary = {
        "from": str(root / verdicts.BENCH_FILE),
        "items_in_bench": len(items),
        "verdicts": verdicts.progress(marks, len(items)),
        **build.bench_counts(kept),  # its "items": the accepted ones
    }
    (root / "manifest_verified.json").write_text(json.dumps(summary, indent=2) + "\n")
    counts = summary["verdicts"]
    print(
        f"wrote {len(kept)} accepted of {len(items)} items -> {path} "
        f"({counts['reject']} rejected, {counts['unsure']} unsure, "
        f"{len(items) - counts['reviewed']} not reviewed)"
    )
    return 0


def _review(args: argparse.Namespace) -> int:
    from jax_spatial.benchmark import review

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be in 0..65535, got {args.port}")
    review.serve(
        args.bench, args.host, args.port, open_browser=not args.no_browser, reviewer=args.reviewer
    )
    return 0


def add_parsers(sub) -> None:
    bench = sub.add_parser("bench", help="build a balanced benchmark of a test split; review it")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True)

    b = bench_sub.add_parser(
        "build", help="balanced items per task x instruction format -> bench.jsonl, images"
    )
    b.add_argument("--source", help="source name (default: procedural)")
    b.add_argument("--root", help="the dataset folder in its native layout")
    b.add_argument("--out", required=True, help="benchmark folder to write (or to filter)")
    b.add_argument("--seed", type=int, default=None, help="engine seed and item order (0)")
    b.add_argument("--max-scenes", type=int, default=None, help="scenes of the split read")
    b.add_argument("--batch-size", type=int, default=None)
    b.add_argument("--config", help="generate config file, e.g. configs/generate.py:arg")
    b.add_argument("--set", action="append", metavar="KEY=VALUE", help="a source option")
    b.add_argument(
        "--lift",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="lift objects from depth and masks (default as in generate)",
    )
    b.add_argument(
        "--per-cell",
        type=int,
        default=None,
        help=f"items per task x format cell where the data allows (default {DEFAULT_PER_CELL})",
    )
    splits.add_split_flags(b, default="test")
    b.add_argument(
        "--verified-only",
        action="store_true",
        help="write <out>/bench_verified.jsonl: the items of <out>/bench.jsonl accepted in "
        "<out>/verdicts.json",
    )
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    # Every suitable format of every question is a candidate; nothing is drawn to a qa.jsonl.
    b.set_defaults(func=_build, formats="all", write_images=False)

    r = bench_sub.add_parser("review", help="a local web page to accept or reject items")
    r.add_argument("bench", help="benchmark folder (bench build --out)")
    r.add_argument("--port", type=int, default=8765, help="port (0: any free one)")
    r.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    r.add_argument("--no-browser", action="store_true", help="do not open a browser")
    r.add_argument("--reviewer", help="name stored with each verdict")
    r.set_defaults(func=_review)


__all__ = ["add_parsers", "command_line"]
