"""Writing a score report: `report.json`, `report.md` and two pictures.

    files = write_report(report, "out/bench/scores")
    print(paper_row_text(report))

* `report.json`: the report as `score.score_bench` returns it (scores 0..100, intervals,
  counts, listed ids), one entry per model under `models`, in the order given.
* `report.md`: the paper-style row, per task, per format and task x format tables with the
  models side by side, counts and numeric details, and what could not be scored.
* `task_x_format.png`: a heatmap per model (formats down, tasks across).
* `per_task.png`: per-task bars, one per model, with 95% interval error bars.
"""

from __future__ import annotations

import json
import os
import pathlib

DASH = "—"


def _fmt(cell: dict | None, ci: bool = False) -> str:
    if cell is None:
        return DASH
    text = f"{cell['score']:.1f}"
    if ci and cell.get("ci"):
        lo, hi = cell["ci"]
        text += f" [{lo:.1f}, {hi:.1f}]"
    return text


def _extra_tasks(report: dict) -> bool:
    from jax_spatial.benchmark.tables import PAPER_COLUMNS

    paper = {task for _, task in PAPER_COLUMNS}
    return any(t not in paper for t in report["bench"]["tasks"])


def paper_row_text(report: dict) -> str:
    """The paper-style table, one line per model, for the terminal."""
    from jax_spatial.benchmark.tables import PAPER_COLUMNS

    columns = [name for name, _ in PAPER_COLUMNS] + ["Average"]
    extra = _extra_tasks(report)
    if extra:
        columns.append("All tasks")
    width = max(12, *(len(name) + 2 for name in report["models"]))
    lines = [f"{'model':<{width}}" + "".join(f"{c:>11}" for c in columns)]
    for name, model in report["models"].items():
        row = model["paper_row"]
        cells = [row["columns"][c] for c, _ in PAPER_COLUMNS] + [row["average"]]
        if extra:
            cells.append(model["overall"])
        lines.append(f"{name:<{width}}" + "".join(f"{_fmt(c):>11}" for c in cells))
    items = report["bench"]["items"]
    lines.append(
        f"({items} items; {DASH}: task not in the bench, left out of the Average"
        + ("; All tasks: mean over every task of the bench" if extra else "")
        + ")"
    )
    return "\n".join(lines)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out + [""]


def markdown(report: dict) -> str:
    from jax_spatial.benchmark.tables import PAPER_COLUMNS

    bench, settings, models = report["bench"], report["settings"], report["models"]
    names = list(models)
    lines = ["# Benchmark scores", ""]
    lines.append(
        f"Bench `{bench['path']}`: {bench['items']} items, {len(bench['tasks'])} tasks, "
        f"{len(bench['formats'])} formats"
        + (
            f", verified items only ({bench['excluded_unverified']} unverified left out)"
            if bench["verified_only"]
            else ""
        )
        + ". Scores are 0-100: accuracy for yes/no and multiple choice, exact accuracy for "
        "counts, Mean Relative Accuracy for numbers. "
        + (
            f"Brackets: 95% bootstrap intervals ({settings['bootstrap']} resamples of the "
            f"items, seed {settings['seed']})."
            if settings["bootstrap"]
            else "No intervals (--bootstrap 0)."
        )
    )
    lines.append("")
    lines.append("## Paper-style row")
    lines.append("")
    header = ["model"] + [n for n, _ in PAPER_COLUMNS] + ["Average"]
    extra = _extra_tasks(report)
    if extra:
        header.append("All tasks")
    rows = []
    for name in names:
        row = models[name]["paper_row"]
        cells = [row["columns"][c] for c, _ in PAPER_COLUMNS] + [row["average"]]
        if extra:
            cells.append(models[name]["overall"])
        rows.append([name] + [_fmt(c, ci=True) for c in cells])
    lines += _table(header, rows)
    lines.append(
        f"{DASH}: the bench has no item of that task; the Average is the mean of the present "
        "columns" + ("; All tasks: the mean over every task of the bench." if extra else ".")
    )
    lines.append("")

    first = models[names[0]]
    lines += ["## Per task", ""]
    rows = [
        [task, str(cell["n"]), cell["metric"]]
        + [_fmt(models[m]["per_task"].get(task), ci=True) for m in names]
        for task, cell in first["per_task"].items()
    ]
    rows.append(
        ["all items", str(bench["items"]), "mean"]
        + [_fmt(models[m]["overall_micro"], ci=True) for m in names]
    )
    lines += _table(["task", "n", "metric"] + names, rows)

    lines += ["## Per format", ""]
    rows = [
        [fmt, str(cell["n"])] + [_fmt(models[m]["per_format"].get(fmt), ci=True) for m in names]
        for fmt, cell in first["per_format"].items()
    ]
    lines += _table(["format", "n"] + names, rows)

    tasks = list(first["per_task"])
    formats = list(first["per_format"])
    lines += ["## Task x format", ""]
    for name in names:
        grid = models[name]["task_x_format"]
        lines += [f"**{name}**", ""]
        rows = [[fmt] + [_fmt(grid.get(t, {}).get(fmt)) for t in tasks] for fmt in formats]
        lines += _table(["format"] + tasks, rows)

    numeric = [t for t, c in first["per_task"].items() if "exact" in c]
    if numeric:
        lines += ["## Counts and numbers", ""]
        rows = []
        for task in numeric:
            for name in names:
                c = models[name]["per_task"][task]
                rel = DASH if c["rel_error"] is None else f"{c['rel_error']:.3f}"
                rows.append(
                    [task, name, f"{c['exact']:.1f}", f"{c['mra']:.1f}", rel, str(c["rel_error_n"])]
                )
        lines += _table(
            ["task", "model", "exact", "MRA", "mean rel. error", "answered (rel. error)"], rows
        )
        lines.append(
            "Relative error |pred - gt| / gt over the answered items with gt > 0; exact and "
            "MRA over all items (an unanswered one scores 0)."
        )
        lines.append("")

    lines += ["## Coverage", ""]
    rows = []
    for name in names:
        c = models[name]["counts"]
        rows.append(
            [
                name,
                models[name]["source"],
                str(c["answered"]),
                str(c["missing"]),
                str(c["unparsed"]),
            ]
            + [str(c.get(k, DASH)) for k in ("unknown_ids", "duplicates", "skipped_lines")]
        )
    lines += _table(
        [
            "model",
            "source",
            "answered",
            "missing",
            "no answer found",
            "unknown ids",
            "duplicates",
            "skipped lines",
        ],
        rows,
    )
    for name in names:
        m = models[name]
        if m["missing_ids"]:
            shown = ", ".join(f"`{i}`" for i in m["missing_ids"][:10])
            more = m["counts"]["missing"] - 10
            lines.append(
                f"- {name}: missing {shown}"
                + (f" and {more} more" if more > 0 else "")
                + " (all in report.json)"
            )
        if m.get("unknown_ids"):
            shown = ", ".join(f"`{i}`" for i in m["unknown_ids"][:10])
            lines.append(f"- {name}: ids not in the bench (skipped): {shown}")
        if m.get("note"):
            lines.append(f"- {name}: {m['note']}")
    if bench["skipped_lines"]:
        lines.append(f"- bench.jsonl lines skipped: {len(bench['skipped_lines'])}")
    lines.append("")
    return "\n".join(lines)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_task_x_format(report: dict, path) -> pathlib.Path:
    """One heatmap per model, side by side: formats down, tasks across, scores written in."""
    import numpy as np

    plt = _pyplot()
    models = report["models"]
    first = next(iter(models.values()))
    tasks, formats = list(first["per_task"]), list(first["per_format"])
    cell_w, cell_h = 0.85, 0.36
    # Panels side by side while the figure stays under ~15 inches (at most 3, and 2 x 2
    # for four models); many tasks stack them.
    panel_w = len(tasks) * cell_w + 1.2
    cols = max(1, min(len(models), 3, int(15 // panel_w)))
    if len(models) == 4 and cols == 3:
        cols = 2
    rows = -(-len(models) // cols)
    fig_w = cols * (len(tasks) * cell_w + 1.2) + 2.6
    fig_h = rows * (len(formats) * cell_h + 1.6) + 0.6
    fig, axes = plt.subplots(
        rows, cols, figsize=(fig_w, fig_h), squeeze=False, layout="constrained"
    )
    cmap = plt.get_cmap("viridis").with_extremes(bad="#e6e6e6")
    image = None
    for k, (name, model) in enumerate(models.items()):
        ax = axes[k // cols][k % cols]
        grid = np.full((len(formats), len(tasks)), np.nan)
        for j, task in enumerate(tasks):
            for i, fmt in enumerate(formats):
                cell = model["task_x_format"].get(task, {}).get(fmt)
                if cell is not None:
                    grid[i, j] = cell["score"]
        image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0, vmax=100, aspect="auto")
        for i in range(len(formats)):
            for j in range(len(tasks)):
                if np.isfinite(grid[i, j]):
                    dark = grid[i, j] > 60
                    ax.text(
                        j,
                        i,
                        f"{grid[i, j]:.0f}",
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="black" if dark else "white",
                    )
        ax.set_xticks(range(len(tasks)), tasks, rotation=35, ha="right", fontsize=9)
        ax.set_yticks(range(len(formats)), formats if k % cols == 0 else [], fontsize=8)
        ax.set_title(f"{name}: {model['overall']['score']:.1f} overall", fontsize=10)
    for k in range(len(models), rows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="score (0-100)")
    fig.suptitle("score per task x instruction format (grey: no items)", fontsize=11)
    path = pathlib.Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_per_task(report: dict, path) -> pathlib.Path:
    """Grouped bars per task (and the overall average), one bar per model, with intervals."""
    import numpy as np

    plt = _pyplot()
    models = report["models"]
    first = next(iter(models.values()))
    groups = list(first["per_task"]) + ["overall"]
    width = 0.8 / len(models)
    fig, ax = plt.subplots(
        figsize=(max(6.0, 1.1 * len(groups) * max(1, len(models)) ** 0.5 + 2), 4.2)
    )
    x = np.arange(len(groups))
    for k, (name, model) in enumerate(models.items()):
        cells = [model["per_task"].get(g) for g in groups[:-1]] + [model["overall"]]
        scores = np.array([c["score"] if c else np.nan for c in cells])
        err = np.zeros((2, len(cells)))
        for j, c in enumerate(cells):
            if c and c.get("ci"):
                err[:, j] = [c["score"] - c["ci"][0], c["ci"][1] - c["score"]]
        pos = x - 0.4 + width * (k + 0.5)
        ax.bar(pos, scores, width, yerr=err, capsize=3, label=name, error_kw={"lw": 1})
        if len(models) * len(groups) <= 40:
            for p, s, e in zip(pos, scores, err[1], strict=True):
                if np.isfinite(s):
                    ax.text(p, s + e + 1.5, f"{s:.0f}", ha="center", va="bottom", fontsize=7)
    labels = [f"{g}\n(n={first['per_task'][g]['n']})" for g in groups[:-1]]
    labels.append("overall\n(mean of tasks)")
    tilt = len(groups) > 6
    ax.set_xticks(x, labels, rotation=20 if tilt else 0, ha="right" if tilt else "center")
    ax.set_ylim(0, 112)
    ax.set_ylabel("score (0-100)")
    ax.axvline(len(groups) - 1.5, color="grey", lw=0.6, ls=":")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.005, 1.0), frameon=False)
    intervals = report["settings"]["bootstrap"]
    ax.set_title(
        "score per task" + (" (95% bootstrap intervals)" if intervals else ""), fontsize=11
    )
    fig.tight_layout()
    path = pathlib.Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _write_atomic(path: pathlib.Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_report(report: dict, out_dir) -> dict:
    """Writes the four files into `out_dir`; returns their paths by kind."""
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "json": str(out / "report.json"),
        "markdown": str(out / "report.md"),
        "heatmap": str(plot_task_x_format(report, out / "task_x_format.png")),
        "bars": str(plot_per_task(report, out / "per_task.png")),
    }
    _write_atomic(out / "report.md", markdown(report))
    _write_atomic(
        out / "report.json",
        json.dumps({**report, "files": files}, indent=1, ensure_ascii=False) + "\n",
    )
    return files


__all__ = ["markdown", "paper_row_text", "plot_per_task", "plot_task_x_format", "write_report"]
