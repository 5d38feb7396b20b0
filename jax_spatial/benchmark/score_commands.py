"""`jax-spatial score`: a thin shell over `benchmark.score.score_bench`.

    jax-spatial score --bench B --predictions P.jsonl [--predictions Q.jsonl ...]
        [--names a,b] [--baseline majority|random|oracle ...] [--train-split TRAIN]
        [--report DIR] [--verified-only] [--bootstrap 1000] [--seed 0]

Prints the paper-style row (one line per model); with `--report DIR` writes report.json,
report.md, task_x_format.png and per_task.png there.
"""

from __future__ import annotations

import argparse
import sys


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"--names {text!r} has an empty name")
    return names


def _score(args) -> int:
    from jax_spatial.benchmark import report as report_lib
    from jax_spatial.benchmark.score import score_bench

    if args.report:
        from jax_spatial.cli import _check_out_dir

        _check_out_dir(args.report, "--report")
    report = score_bench(
        args.bench,
        args.predictions,
        names=args.names,
        baselines=args.baseline,
        train_split=args.train_split,
        verified_only=args.verified_only,
        resamples=args.bootstrap,
        seed=args.seed,
        report_dir=args.report,
    )
    for name, model in report["models"].items():
        counts = model["counts"]
        problems = [
            f"{counts[key]} {what}"
            for key, what in (
                ("missing", "items without a prediction (scored wrong)"),
                ("unknown_ids", "ids not in the bench (skipped)"),
                ("duplicates", "repeated ids (first kept)"),
                ("skipped_lines", "unreadable lines (skipped)"),
            )
            if counts.get(key)
        ]
        if problems:
            where = "listed in report.json" if args.report else "listed with --report DIR"
            print(f"jax-spatial score: {name}: {', '.join(problems)}; {where}", file=sys.stderr)
        if model.get("note") and model["source"].startswith("baseline:majority"):
            print(f"jax-spatial score: {name}: {model['note']}", file=sys.stderr)
    skipped = report["bench"]["skipped_lines"]
    if skipped:
        print(
            f"jax-spatial score: bench.jsonl: {len(skipped)} bad lines skipped (first: line "
            f"{skipped[0]['line']}: {skipped[0]['reason']})",
            file=sys.stderr,
        )
    print(report_lib.paper_row_text(report))
    if args.report:
        print(f"report: {report['files']['markdown']} (and report.json, PNGs)")
    return 0


def add_parsers(sub) -> None:
    sc = sub.add_parser(
        "score", help="score predictions (and baselines) on a bench folder; tables and plots"
    )
    sc.add_argument("--bench", required=True, help="bench folder (bench.jsonl, verdicts.json)")
    sc.add_argument(
        "--predictions",
        action="append",
        default=[],
        metavar="FILE",
        help="predictions JSONL (jax-spatial predict) or an lmms-eval samples log; repeatable",
    )
    sc.add_argument("--names", type=_names, help="comma-separated names, one per --predictions")
    sc.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="NAME",
        help="majority, random or oracle (repeatable or comma-separated)",
    )
    sc.add_argument(
        "--train-split",
        help="bench-like JSONL (bench.jsonl, qa.jsonl) the majority/random baselines learn from",
    )
    sc.add_argument("--report", metavar="DIR", help="write report.json, report.md and PNGs here")
    sc.add_argument(
        "--verified-only", action="store_true", help="score items with the verdict accept only"
    )
    sc.add_argument(
        "--bootstrap", type=int, default=1000, help="bootstrap resamples for intervals (0: none)"
    )
    sc.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and random")
    sc.set_defaults(func=_score)


__all__ = ["add_parsers"]
