"""Scoring models on a bench folder: predictions and baselines -> one report.

    report = score_bench("out/bench", predictions=["out/run/predictions.jsonl"],
                         baselines=["majority", "random"], report_dir="out/bench/scores")
    print(report_lib.paper_row_text(report))

Every model (a predictions file or a baseline) answers the same items: its text answers are
reduced to canonical form (`extract`), scored per item (`metrics`), and tabulated with
bootstrap intervals (`tables`). An item a model did not answer scores 0 and is listed in
`missing_ids`. See docs/benchmark.md, "Scoring", for the report's layout.
"""

from __future__ import annotations

import collections
import dataclasses
import pathlib

from jax_spatial.benchmark import baselines as baselines_lib
from jax_spatial.benchmark.bench_items import Bench, load_bench
from jax_spatial.benchmark.extract import (
    LETTERS,
    MULTIPLE_CHOICE,
    Extraction,
    extract_answer,
    extract_choice,
)
from jax_spatial.benchmark.metrics import MRA_THRESHOLDS, ItemScore, score_item
from jax_spatial.benchmark.predictions import read_predictions
from jax_spatial.benchmark.tables import model_tables
from jax_spatial.errors import UsageError

REPORT_VERSION = 1
# Listed ids are capped in report.json so a model that answered nothing does not write the
# whole bench twice; the counts are always complete.
MAX_LISTED = 10_000


def _relettered(extraction: Extraction, asked: list[str], item: dict) -> Extraction:
    """A letter given against the choices the model was asked with, in the bench's letters.

    `bench build` re-letters multiple-choice items (swapping which object is A), so a model
    run on the dataset's own lettering answered "A" meaning the text `asked[0]`; that text's
    letter in the bench item is the answer. Where the text is not among the bench choices
    (a format that words choices differently) the letter is mapped by the item's recorded
    re-lettering when it has two choices, else kept.
    """
    if extraction.value is None or extraction.value not in LETTERS[: len(asked)]:
        return extraction
    text = asked[LETTERS.index(extraction.value)]
    choices = list(item.get("choices") or ())
    if choices.count(text) == 1:
        return dataclasses.replace(extraction, value=LETTERS[choices.index(text)])
    moved = (item.get("meta") or {}).get("relettered")
    if isinstance(moved, dict) and len(choices) == 2 and moved.get("from") != moved.get("to"):
        return dataclasses.replace(extraction, value="B" if extraction.value == "A" else "A")
    return extraction


def score_answers(
    bench: Bench, answers: dict[str, str], asked_choices: dict[str, list[str]] | None = None
) -> list[ItemScore]:
    """One `ItemScore` per bench item (in bench order); an absent id scores as missing.

    `asked_choices[id]`: the choices a prediction was asked with, when they differ from the
    item's (see `_relettered`).
    """
    asked_choices = asked_choices or {}
    results = []
    for item in bench.items:
        text = answers.get(item["id"])
        if text is None:
            results.append(score_item(item, None))
            continue
        asked = asked_choices.get(item["id"])
        if item["answer_type"] == MULTIPLE_CHOICE and asked and asked != item["choices"]:
            extraction = _relettered(extract_choice(text, asked), asked, item)
        else:
            extraction = extract_answer(text, item)
        results.append(score_item(item, extraction))
    return results


def _model_entry(bench, name, answers, *, source, resamples, seed, predictions=None, note=None):
    asked = predictions.asked_choices if predictions is not None else None
    results = score_answers(bench, answers, asked)
    entry = {"source": source, "note": note}
    if predictions is not None:
        entry["layout"] = predictions.layout
    missing = [
        item["id"] for item, r in zip(bench.items, results, strict=True) if r.status == "missing"
    ]
    unparsed = [
        {"id": item["id"], "status": r.status}
        for item, r in zip(bench.items, results, strict=True)
        if r.status in ("none", "ambiguous")
    ]
    entry["counts"] = {
        "items": len(bench.items),
        "answered": len(bench.items) - len(missing),
        "missing": len(missing),
        "unparsed": len(unparsed),
    }
    if predictions is not None:
        entry["counts"].update(
            records=predictions.records,
            unknown_ids=len(predictions.unknown_ids),
            duplicates=len(predictions.duplicates),
            skipped_lines=len(predictions.skipped),
            excluded=predictions.excluded,
        )
    entry.update(model_tables(bench.items, results, resamples=resamples, seed=seed))
    entry["missing_ids"] = missing[:MAX_LISTED]
    entry["unparsed"] = unparsed[:MAX_LISTED]
    if predictions is not None:
        entry["unknown_ids"] = predictions.unknown_ids[:MAX_LISTED]
        entry["duplicates"] = predictions.duplicates[:MAX_LISTED]
        entry["skipped_lines"] = predictions.skipped[:MAX_LISTED]
    return name, entry


def _default_names(paths: list[str]) -> list[str]:
    names = []
    for path in paths:
        p = pathlib.Path(path)
        # `jax-spatial predict` writes <workdir>/predictions.jsonl: the run folder names it.
        stem = p.stem
        names.append((p.parent.name or stem) if stem in ("predictions", "samples") else stem)
    return names


def _unique(names: list[str]) -> list[str]:
    counts = collections.Counter()
    out = []
    for name in names:
        counts[name] += 1
        out.append(name if counts[name] == 1 else f"{name}#{counts[name]}")
    return out


def parse_baselines(values) -> list[str]:
    """`--baseline majority --baseline random,oracle` -> ["majority", "random", "oracle"]."""
    out = []
    for value in values or ():
        for name in filter(None, (v.strip() for v in value.split(","))):
            if name not in baselines_lib.BASELINES:
                raise UsageError(
                    f"--baseline {name!r}: expected one of {', '.join(baselines_lib.BASELINES)}"
                )
            if name not in out:
                out.append(name)
    return out


def score_bench(
    bench_dir,
    predictions=(),
    *,
    names=None,
    baselines=(),
    train_split=None,
    verified_only: bool = False,
    resamples: int = 1000,
    seed: int = 0,
    report_dir=None,
) -> dict:
    """Scores every predictions file and baseline on the bench; writes the report if asked."""
    predictions = [str(p) for p in predictions or ()]
    baselines = parse_baselines(baselines)
    if not predictions and not baselines:
        raise UsageError("nothing to score: give --predictions FILE or --baseline NAME")
    if resamples < 0:
        raise UsageError(f"--bootstrap must be 0 (no intervals) or more, got {resamples}")
    if names is not None and len(names) != len(predictions):
        raise UsageError(
            f"--names gives {len(names)} names for {len(predictions)} --predictions files"
        )
    if names is not None and len(set(names)) != len(names):
        raise UsageError(f"--names {','.join(names)}: names must differ")
    if train_split and "majority" not in baselines and "random" not in baselines:
        raise UsageError("--train-split is read by --baseline majority or random only")
    bench = load_bench(bench_dir, verified_only=verified_only)
    # Everything the user named is checked before anything is scored.
    read = [read_predictions(path, bench) for path in predictions]
    train = baselines_lib.read_train_split(train_split) if train_split else None
    labels = list(names) if names is not None else _default_names(predictions)
    entries = []
    for name, preds in zip(labels, read, strict=True):
        entries.append(
            _model_entry(
                bench,
                name,
                preds.answers,
                source=preds.path,
                resamples=resamples,
                seed=seed,
                predictions=preds,
            )
        )
    for baseline in baselines:
        note = None
        if baseline == "majority":
            answers, name = baselines_lib.majority_answers(bench.items, train)
            note = (
                f"most frequent answer per (task, format) of {train_split}"
                if train is not None
                else "most frequent answer per (task, format) of the bench itself "
                "(no --train-split): it has seen the test answers"
            )
        elif baseline == "random":
            answers, name = baselines_lib.random_answers(bench.items, seed, train), "random"
            note = f"uniform over each item's answers, seed {seed}"
        else:
            answers, name = baselines_lib.oracle_answers(bench.items), "oracle"
            note = "the canonical answers"
        entries.append(
            _model_entry(
                bench,
                name,
                answers,
                source=f"baseline:{baseline}",
                resamples=resamples,
                seed=seed,
                note=note,
            )
        )
    final_names = _unique([name for name, _ in entries])
    report = {
        "version": REPORT_VERSION,
        "bench": _bench_summary(bench),
        "settings": {
            "bootstrap": resamples,
            "seed": seed,
            "level": 0.95,
            "interval": "percentile bootstrap, items resampled with replacement within each "
            "cell; averages over tasks resample within each task",
            "mra_thresholds": [round(float(t), 2) for t in MRA_THRESHOLDS],
        },
        "models": {name: entry for name, (_, entry) in zip(final_names, entries, strict=True)},
    }
    if report_dir is not None:
        from jax_spatial.benchmark import report as report_lib

        report["files"] = report_lib.write_report(report, report_dir)
    return report


def _bench_summary(bench: Bench) -> dict:
    def counts(key):
        return dict(sorted(collections.Counter(i[key] for i in bench.items).items()))

    return {
        "path": str(bench.root),
        "items": len(bench.items),
        "tasks": counts("task"),
        "formats": counts("format"),
        "answer_types": counts("answer_type"),
        "verified_only": bench.verified_only,
        "excluded_unverified": len(bench.excluded),
        "skipped_lines": bench.skipped,
    }


__all__ = ["parse_baselines", "score_answers", "score_bench"]
