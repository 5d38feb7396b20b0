"""Score tables of one model: per task, per format, task x format, overall and the
paper-style row, each cell with a bootstrap 95% interval.

    tables = model_tables(bench.items, scores, resamples=1000, seed=0)
    tables["per_task"]["position"] -> {"score": 61.2, "ci": [57.9, 64.4], "n": 400, ...}

Scores are 0..100: the mean over the cell's items of each item's primary score
(`metrics.score_item`: accuracy, exact count accuracy or MRA). Intervals are percentile
intervals of `resamples` bootstrap resamples of the cell's items, seeded by (seed, cell), so
the same cell is resampled the same way for every model. An average over tasks (the overall
score and the paper row's Average) resamples within each task and averages the per-task
resample means, so its interval reflects each task's own size.

The paper-style row follows InternSpatial's single-view table: Position, Size, Rotation,
Counting, Existence, Average. A column whose task the bench lacks is None (shown "—") and
left out of the Average, which is the mean of the present columns; `overall` averages every
task in the bench (multi-view ones too), and `overall_micro` is the plain item mean.
"""

from __future__ import annotations

import collections

import numpy as np

from jax_spatial.benchmark.extract import COUNT, NUMBER
from jax_spatial.benchmark.metrics import (
    ItemScore,
    bootstrap_means,
    gold_number,
    percentile_interval,
)

PAPER_COLUMNS = (
    ("Position", "position"),
    ("Size", "size"),
    ("Rotation", "rotation"),
    ("Counting", "counting"),
    ("Existence", "existence"),
)

_METRIC = {"yes_no": "accuracy", "multiple_choice": "accuracy", COUNT: "exact", NUMBER: "MRA"}


def task_order(tasks) -> list[str]:
    """The paper's columns first, in its order, then the other tasks by name."""
    paper = [task for _, task in PAPER_COLUMNS if task in tasks]
    return paper + sorted(t for t in tasks if t not in paper)


def _metric_name(kinds) -> str:
    names = {_METRIC[k] for k in kinds}
    return names.pop() if len(names) == 1 else "mixed"


class _Cells:
    """Bootstrap means per cell, computed once (a cell's are reused by the averages)."""

    def __init__(self, scores: np.ndarray, resamples: int, seed: int):
        self.scores, self.resamples, self.seed = scores, resamples, seed
        self.cache: dict[tuple, np.ndarray] = {}

    def means(self, key: tuple, idx: np.ndarray) -> np.ndarray | None:
        if self.resamples <= 0:
            return None
        if key not in self.cache:
            self.cache[key] = bootstrap_means(self.scores[idx], self.resamples, self.seed, *key)
        return self.cache[key]


def _interval(means: np.ndarray | None, level: float) -> list[float] | None:
    if means is None:
        return None
    lo, hi = percentile_interval(means * 100, level)
    return [round(lo, 2), round(hi, 2)]


def _cell(idx, items, results, cells: _Cells, key, level) -> dict:
    idx = np.asarray(idx)
    scored = [results[i] for i in idx]
    kinds = sorted({items[i]["answer_type"] for i in idx})
    cell = {
        "score": round(100 * float(cells.scores[idx].mean()), 2),
        "ci": _interval(cells.means(key, idx), level),
        "n": int(idx.size),
        "metric": _metric_name(kinds),
        "answered": sum(r.status != "missing" for r in scored),
        "missing": sum(r.status == "missing" for r in scored),
        "unparsed": sum(r.status in ("none", "ambiguous") for r in scored),
    }
    numeric = [
        (items[i], r)
        for i, r in zip(idx, scored, strict=True)
        if items[i]["answer_type"] in (COUNT, NUMBER)
    ]
    if numeric:
        # Relative error is defined for gt > 0 only; unanswered items have none.
        rel = [r.rel_error for it, r in numeric if r.rel_error is not None and gold_number(it) > 0]
        cell["rel_error"] = round(float(np.mean(rel)), 4) if rel else None
        cell["rel_error_n"] = len(rel)
        cell["mra"] = round(100 * float(np.mean([r.mra or 0.0 for _, r in numeric])), 2)
        cell["exact"] = round(100 * float(np.mean([r.exact for _, r in numeric])), 2)
    return cell


def _average(task_cells: dict[str, dict], tasks, cells: _Cells, groups, level) -> dict | None:
    tasks = [t for t in tasks if t in task_cells]
    if not tasks:
        return None
    score = 100 * float(np.mean([cells.scores[groups[t]].mean() for t in tasks]))
    means = None
    if cells.resamples > 0:
        means = np.mean([cells.means(("task", t), groups[t]) for t in tasks], axis=0)
    return {"score": round(score, 2), "ci": _interval(means, level), "tasks": list(tasks)}


def model_tables(
    items: list[dict],
    results: list[ItemScore],
    *,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict:
    """All tables of one model; `results[i]` scores `items[i]`."""
    scores = np.array([r.score for r in results], dtype=np.float64)
    cells = _Cells(scores, resamples, seed)
    by_task, by_format, by_pair = (collections.defaultdict(list) for _ in range(3))
    for i, item in enumerate(items):
        by_task[item["task"]].append(i)
        by_format[item["format"]].append(i)
        by_pair[(item["task"], item["format"])].append(i)
    groups = {t: np.asarray(v) for t, v in by_task.items()}
    per_task = {
        t: _cell(by_task[t], items, results, cells, ("task", t), level) for t in task_order(by_task)
    }
    per_format = {
        f: _cell(v, items, results, cells, ("format", f), level)
        for f, v in sorted(by_format.items())
    }
    task_x_format: dict[str, dict] = {}
    for (t, f), v in sorted(
        by_pair.items(), key=lambda kv: (list(per_task).index(kv[0][0]), kv[0][1])
    ):
        task_x_format.setdefault(t, {})[f] = _cell(
            v, items, results, cells, ("task_x_format", t, f), level
        )
    overall = _average(per_task, sorted(per_task), cells, groups, level)
    micro = _cell(np.arange(len(items)), items, results, cells, ("all",), level)
    paper_tasks = [task for _, task in PAPER_COLUMNS]
    paper = {name: per_task.get(task) for name, task in PAPER_COLUMNS}
    return {
        "overall": overall,
        "overall_micro": micro,
        "paper_row": {
            "columns": {
                name: None if cell is None else {"task": task, **cell}
                for (name, task), cell in zip(PAPER_COLUMNS, paper.values(), strict=True)
            },
            "average": _average(per_task, paper_tasks, cells, groups, level),
        },
        "per_task": per_task,
        "per_format": per_format,
        "task_x_format": task_x_format,
    }


__all__ = ["PAPER_COLUMNS", "model_tables", "task_order"]
