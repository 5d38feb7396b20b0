r"""Does the data teach? `tiny_vlm` trained on procedural spatial QA, scored on held-out rooms.

    python bench/learning.py [--steps 1500] [--train-scenes 400] [--test-scenes 80]
        [--views 3] [--quotas position=18,size=6] [--ground 1.0] [--reuse]
        [--eval-items 3000] [--out docs/learning] [--runs trained,blind,caption_raw]
        [--overrides '{"depth": 3}'] [--keep-runs] [--length-group 8]
        [--first-formats image_text/boxes --first-steps 800]
        [--stages "image_text/boxes:700;caption/boxes+ref/boxes:500"]

Builds a training set and a held-out test set from disjoint procedural scene seeds (timed
separately; `--reuse` keeps sets already built with the same settings), then trains the same
model in several ways for the same number of steps:

* trained: images and every instruction format (formats sampled per question per epoch);
* blind: the same, every image zeroed: what the wording alone teaches;
* caption_raw: images, but only the plain caption/raw format (the paper's ablation in small);
* no_ground: trained without the grounding loss (`--ground` is its weight for the others:
  each object name of a question is taught to look at its object and read off its box and
  facts, and the question's end which object of the two is further right, away, up, bigger,
  taller and wider, and which relation it asks; `train.facts`).

`--first-formats F --first-steps N` puts a curriculum in front of every run but caption_raw
(the same for trained and blind): the first N steps train on the formats F only. `--stages`
puts several in front, in order (FORMATS:STEPS joined by ";", formats by "+").
`--size-spread S` builds both sets from rooms whose objects are scaled log-uniformly in
`[1/S, S]`, so that the names no longer decide the size questions (name the sets apart with
`--train-name` and `--test-name`).

Scores each, plus the majority answer of the training set per (task, kind), on every
suitable format of every held-out question (up to `--eval-items`, sampled). Prints and writes
`<out>/learning.json`, `<out>/learning.md` (tables per task and per format family) and
`<out>/learning.png` (loss and held-out accuracy curves).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TASKS = ("position", "size", "existence", "counting")
FAMILIES = ("caption", "ref", "ref_region_box", "ref_caption_box", "image_text")


def _quotas(text: str) -> dict:
    out = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        key, _, value = item.partition("=")
        out[key] = int(value)
    return out


def build(data_dir, args) -> dict:
    from jax_spatial.datasets.build import build_dataset

    timings = {}
    for name, scenes, seed, split in (
        (args.train_name, args.train_scenes, args.train_seed, "train"),
        (args.test_name, args.test_scenes, 2000, "test"),
    ):
        # Held-out rooms keep 3 views and the default quotas whatever the training set has.
        views, quotas = (args.views, args.quotas) if split == "train" else (3, "")
        stamp = pathlib.Path(data_dir) / "spatial_qa" / f"{name}.settings.json"
        wanted = {"scenes": scenes, "seed": seed, "views": views, "quotas": quotas}
        spread = {"size_spread": args.size_spread} if args.size_spread != 1.0 else {}
        wanted.update(spread)
        if args.reuse and stamp.exists() and json.loads(stamp.read_text()) == wanted:
            timings[name] = "reused"
            continue
        t = time.perf_counter()
        build_dataset(
            data_dir,
            name,
            num_scenes=scenes,
            seed=seed,
            views_per_scene=views,
            width=128,
            height=96,
            scenes_per_shard=16,
            split_fractions=((split, 1.0),),
            quotas=_quotas(quotas) or None,
            **spread,
        )
        timings[name] = round(time.perf_counter() - t, 1)
        stamp.write_text(json.dumps(wanted))
    return timings


def run_config(args, data_dir, kind: str):
    from jax_spatial.train import trainer

    c = trainer.default_config()
    c.seed = args.seed
    c.steps = args.steps
    c.batch_size = args.batch_size
    c.log_every = 25
    c.eval_every = args.eval_every
    c.ckpt_every = args.steps
    c.keep_checkpoints = 1
    c.data.data_dir = str(data_dir)
    c.data.name = f"spatial_qa/{args.train_name}"
    c.data.eval_name = f"spatial_qa/{args.test_name}"
    c.data.eval_split = "test"
    c.eval.max_items = args.eval_items
    c.eval.every_format = True
    c.data.blind = kind == "blind"
    c.data.length_group = args.length_group
    c.ground_weight = 0.0 if kind == "no_ground" else args.ground
    c.model.overrides = json.loads(args.overrides)
    if kind == "caption_raw":
        c.data.formats = "caption/raw"
    elif args.stages:
        c.data.stages = args.stages.replace("+", ",")
    elif args.first_steps:
        c.data.first_formats = args.first_formats.replace("+", ",")
        c.data.first_steps = args.first_steps
    return c


def curriculum_stages(args) -> list[dict]:
    """The curriculum in front of the runs (not caption_raw), `[{"formats", "steps"}, ...]`."""
    from jax_spatial.train import curriculum

    if args.stages:
        return [
            {"formats": f.replace(",", "+"), "steps": n}
            for f, n in curriculum.parse_stages(args.stages.replace("+", ","))
        ]
    if args.first_steps:
        return [{"formats": args.first_formats, "steps": args.first_steps}]
    return []


def run_settings(config, args) -> dict:
    """What a run's result depends on, for `--keep-runs`: its config, the model's resolved
    fields (a preset may change) and how both datasets were built (their stamps)."""
    from jax_spatial.train.models import tiny_vlm

    model = dict(config.model.overrides)
    if config.model.name == "tiny_vlm":
        model = {**tiny_vlm.PRESETS[config.model.preset], **model}
    stamps = {}
    for name in (args.train_name, args.test_name):
        stamp = pathlib.Path(args.data_dir) / "spatial_qa" / f"{name}.settings.json"
        stamps[name] = json.loads(stamp.read_text()) if stamp.exists() else None
    return json.loads(json.dumps({
        "config": json.loads(config.to_json_best_effort()),
        "model": model,
        "datasets": stamps,
    }))  # fmt: skip


AXES = {
    "left_of": "left/right",
    "right_of": "left/right",
    "above": "above/below",
    "below": "above/below",
    "in_front_of": "front/behind",
    "behind": "front/behind",
}


def axis_rows(work, names) -> list[str]:
    """Held-out position accuracy per run by how the question names its objects (words or
    written coordinates) and by the axis it asks about, from each run's predictions."""
    from jax_spatial.train import evaluate as eval_lib

    cells: dict[tuple[str, str], dict[str, list[int]]] = {}
    for name in names:
        path = pathlib.Path(work) / name / "eval_predictions.jsonl"
        if not path.exists():
            continue
        for row in map(json.loads, path.open()):
            if row["task"] != "position" or row["relation"] not in AXES:
                continue
            coords = eval_lib.naming(row["format_id"]) == "coordinates"
            key = ("coordinates" if coords else "words", AXES[row["relation"]])
            count = cells.setdefault(key, {}).setdefault(name, [0, 0])
            count[0] += eval_lib.is_correct(row["prediction"], row)
            count[1] += 1
    if not cells:
        return []
    shown = [n for n in names if any(n in c for c in cells.values())]
    lines = ["| objects named by | axis | " + " | ".join(shown) + " | n |",
             "|---" * (len(shown) + 3) + "|"]  # fmt: skip
    for key in sorted(cells):
        row = cells[key]
        accs = [f"{100 * row[n][0] / row[n][1]:.1f}" if n in row else "-" for n in shown]
        lines.append(f"| {key[0]} | {key[1]} | " + " | ".join(accs) + f" | {row[shown[0]][1]} |")
    return lines


def table_rows(results: dict, group: str, keys) -> list[str]:
    names = list(results)
    lines = ["| " + group + " | " + " | ".join(names) + " | n |", "|---" * (len(names) + 2) + "|"]
    for key in keys:
        cells, n = [], 0
        for name in names:
            entry = results[name]["eval"].get(group, {}).get(key)
            cells.append(f"{entry['accuracy']:.1f}" if entry else "-")
            n = entry["n"] if entry else n
        lines.append(f"| {key} | " + " | ".join(cells) + f" | {n} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(REPO / "out" / "learning" / "tfds"))
    parser.add_argument("--work", default=str(REPO / "out" / "learning" / "runs"))
    parser.add_argument("--out", default=str(REPO / "docs" / "learning"))
    parser.add_argument("--train-scenes", type=int, default=400)
    parser.add_argument("--test-scenes", type=int, default=80)
    parser.add_argument("--train-name", default="learn_train")
    parser.add_argument("--test-name", default="learn_test", help="the held-out set's name")
    parser.add_argument(
        "--size-spread",
        type=float,
        default=1.0,
        help="procedural rooms' size spread for both sets (1: sizes by category; above 1 "
        "each object scaled log-uniformly in [1/s, s], so the image decides size questions)",
    )
    parser.add_argument("--train-seed", type=int, default=1000, help="first training room's seed")
    parser.add_argument("--views", type=int, default=3, help="training views per room")
    parser.add_argument(
        "--quotas",
        default="",
        help="training questions per frame, e.g. position=18,size=6 (qa.select.QuotaConfig fields)",
    )
    parser.add_argument(
        "--ground",
        type=float,
        default=1.0,
        help="grounding loss weight (0: off) for every run but no_ground",
    )
    parser.add_argument(
        "--reuse", action="store_true", help="keep datasets already built with the same settings"
    )
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--length-group",
        type=int,
        default=8,
        help="batches whose questions are sorted by length and cut again (data.length_group; "
        "1: batches as shuffled, padded to their longest question's bucket)",
    )
    parser.add_argument("--eval-items", type=int, default=3000)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--runs", default="trained,blind,caption_raw")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--overrides",
        default="{}",
        help="tiny_vlm fields as JSON, e.g. '{\"depth\": 3}' (default: the cpu preset)",
    )
    parser.add_argument(
        "--first-formats",
        default="image_text/boxes",
        help="the curriculum's first formats, joined by +",
    )
    parser.add_argument(
        "--first-steps",
        type=int,
        default=0,
        help="steps on --first-formats before the mixture (0: no curriculum)",
    )
    parser.add_argument(
        "--stages",
        default="",
        help="several curriculum stages in order, FORMATS:STEPS joined by ; (formats by +); "
        "replaces --first-formats/--first-steps",
    )
    parser.add_argument(
        "--keep-runs",
        action="store_true",
        help="read a run finished before with the same settings instead of "
        "training it again (so runs can go one at a time)",
    )
    args = parser.parse_args()

    from jax_spatial.train import data as data_lib
    from jax_spatial.train import evaluate as eval_lib
    from jax_spatial.train import trainer

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    build_seconds = build(args.data_dir, args)
    print(f"datasets built in {build_seconds} s")
    results: dict[str, dict] = {}
    eval_rows = None
    for kind in args.runs.split(","):
        work = pathlib.Path(args.work) / kind
        config = run_config(args, args.data_dir, kind)
        settings = run_settings(config, args)
        done = work / "bench_result.json"
        if args.keep_runs and done.exists() and (work / "eval_predictions.jsonl").exists():
            kept = json.loads(done.read_text())
            if kept.get("settings") == settings:
                results[kind] = kept["result"]
                print(kind, "finished before, read from", done)
                if eval_rows is None:
                    eval_rows = [json.loads(x) for x in (work / "eval_predictions.jsonl").open()]
                continue
        if work.exists():
            import shutil

            shutil.rmtree(work)
        t = time.perf_counter()
        summary = trainer.train(config, work, show_progress=True)
        results[kind] = {
            "eval": summary["eval"],
            "train_seconds": round(time.perf_counter() - t, 1),
            "step_seconds": summary.get("step_seconds"),
            "final_loss": summary["final_loss"],
            "data_wait_fraction": round(summary["data_wait_fraction"], 4),
            "parameters": summary["parameters"],
            # Relative to --work: the report names no machine's folders.
            "metrics": f"{kind}/metrics.jsonl",
        }
        done.write_text(json.dumps({"settings": settings, "result": results[kind]}))
        if eval_rows is None:
            eval_rows = [json.loads(x) for x in (work / "eval_predictions.jsonl").open()]
        print(
            kind,
            json.dumps({k: v for k, v in results[kind].items() if k != "eval"}),
            {t: round(v["accuracy"], 1) for t, v in summary["eval"]["task"].items()},
        )
    # Majority answer of the training set per (task, kind), on the same held-out items.
    train_source = data_lib.open_split(args.data_dir, f"spatial_qa/{args.train_name}", "train")
    train_meta = [
        {
            "task": ex["qa"]["task"][k].decode(),
            "kind": ex["qa"]["kind"][k].decode(),
            "canonical": ex["qa"]["canonical"][k].decode(),
        }
        for ex in (train_source[i] for i in range(len(train_source)))
        for k in range(len(ex["qa"]["kind"]))
    ]
    eval_meta = [{**r, "qa_id": r["id"]} for r in eval_rows]
    results = {"majority": {"eval": eval_lib.majority_table(train_meta, eval_meta)}, **results}
    stages = curriculum_stages(args)
    report = {
        "steps": args.steps,
        "ground_weight": args.ground,
        "overrides": json.loads(args.overrides),
        "curriculum": stages,
        "datasets": {"train": args.train_name, "test": args.test_name},
        "size_spread": args.size_spread,
        "views": args.views,
        "quotas": args.quotas,
        "batch_size": args.batch_size,
        "build_seconds": build_seconds,
        "train_scenes": args.train_scenes,
        "test_scenes": args.test_scenes,
        "eval_items": len(eval_rows),
        "results": results,
    }
    (out / "learning.json").write_text(json.dumps(report, indent=2))
    lines = [
        f"Held-out exact accuracy (%), {len(eval_rows)} (question, format) items from "
        f"{args.test_scenes} unseen rooms; {args.steps} steps of {args.batch_size}; "
        f"grounding weight {args.ground:g}"
        + (
            "; first "
            + ", then ".join(f"{c['steps']} steps on {c['formats']}" for c in stages)
            + " only (not caption_raw)."
            if stages
            else "."
        ),
        "",
    ]
    lines += table_rows(results, "task", TASKS) + [""]
    lines += table_rows(results, "family", FAMILIES) + [""]
    lines += table_rows(results, "prompt", ("raw", "boxes", "masks", "marks")) + [""]
    axes = axis_rows(args.work, [n for n in results if n != "majority"])
    if axes:
        lines += ["Position by how the question names its objects and the axis it asks:", ""]
        lines += axes + [""]
    lines.append("| run | train s (with evaluations) | steps s | final loss | data wait |")
    lines.append("|---|---|---|---|---|")
    for name, r in results.items():
        if "train_seconds" in r:
            lines.append(
                f"| {name} | {r['train_seconds']} | {r['step_seconds']} | {r['final_loss']:.3f} | "
                f"{100 * r['data_wait_fraction']:.1f}% |"
            )
    text = "\n".join(lines)
    (out / "learning.md").write_text(text + "\n")
    print(text)
    plot(results, out / "learning.png", args.work)
    return 0


def plot(results, path, work):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from jax_spatial.train.metrics import read_metrics

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for name, r in results.items():
        if "metrics" not in r:
            continue
        rows = read_metrics(pathlib.Path(work) / r["metrics"])
        axes[0].plot(
            [x["step"] for x in rows if "loss" in x],
            [x["loss"] for x in rows if "loss" in x],
            label=name,
            lw=1,
        )
        for ax, task in ((axes[1], "position"), (axes[2], "size")):
            pts = [(x["step"], x[f"eval/task/{task}"]) for x in rows if f"eval/task/{task}" in x]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", label=name)
    for ax, task in ((axes[1], "position"), (axes[2], "size")):
        maj = results["majority"]["eval"]["task"].get(task)
        if maj:
            ax.axhline(maj["accuracy"], color="grey", ls="--", label="majority")
        ax.set(title=f"held-out {task} accuracy", xlabel="step", ylabel="%", ylim=(0, 100))
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].set(title="train loss", xlabel="step")
    axes[0].legend(fontsize=8)
    axes[0].grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
