"""Training metrics: `metrics.jsonl`, TensorBoard event files, and the end-of-run picture.

writer = MetricWriter(workdir)
writer.write(step, {"loss": 0.7, "steps_per_s": 3.1})
writer.write(step, {"eval/accuracy/position": 61.0})
plot_run(workdir / "metrics.jsonl", workdir / "training.png")
"""

from __future__ import annotations

import json
import pathlib


class MetricWriter:
    """Appends scalars to `<workdir>/metrics.jsonl` and TensorBoard events under `tb/`."""

    def __init__(self, workdir, tensorboard: bool = True):
        self.path = pathlib.Path(workdir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tb = None
        if tensorboard:
            try:
                from tensorboardX import SummaryWriter

                self._tb = SummaryWriter(str(pathlib.Path(workdir) / "tb"))
            except ImportError:  # TensorBoard output is optional; metrics.jsonl always exists
                self._tb = None

    def truncate_after(self, step: int) -> None:
        """A resumed run drops lines the interrupted run wrote past its last checkpoint."""
        if not self.path.exists():
            return
        keep = [
            line
            for line in self.path.read_text().splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step
        ]
        self.path.write_text("".join(line + "\n" for line in keep))

    def write(self, step: int, scalars: dict) -> None:
        clean = {k: float(v) for k, v in scalars.items()}
        with self.path.open("a") as f:
            f.write(json.dumps({"step": int(step), **clean}) + "\n")
        if self._tb is not None:
            for name, value in clean.items():
                self._tb.add_scalar(name, value, int(step))

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def read_metrics(path) -> list[dict]:
    path = pathlib.Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_run(metrics_path, png_path, title: str = "") -> pathlib.Path:
    """Loss over steps (left) and held-out accuracy per task over steps (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(metrics_path)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    steps = [r["step"] for r in rows if "loss" in r]
    ax_loss.plot(steps, [r["loss"] for r in rows if "loss" in r], lw=1)
    ax_loss.set(xlabel="step", ylabel="train loss (answer tokens)", title="loss")
    ax_loss.grid(alpha=0.3)
    tasks = sorted({k.split("/", 2)[2] for r in rows for k in r if k.startswith("eval/task/")})
    for task in tasks:
        key = f"eval/task/{task}"
        pts = [(r["step"], r[key]) for r in rows if key in r]
        ax_acc.plot(*zip(*pts, strict=True), marker="o", label=task)
    pts = [(r["step"], r["eval/overall"]) for r in rows if "eval/overall" in r]
    if pts:
        ax_acc.plot(*zip(*pts, strict=True), "k--", marker=".", label="all")
    ax_acc.set(
        xlabel="step",
        ylabel="held-out exact accuracy (%)",
        ylim=(0, 100),
        title="held-out accuracy per task",
    )
    ax_acc.grid(alpha=0.3)
    if tasks or pts:
        ax_acc.legend(loc="lower right", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    png_path = pathlib.Path(png_path)
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return png_path


__all__ = ["MetricWriter", "plot_run", "read_metrics"]
