"""The scorer: metrics against independent references, baselines, prediction layouts, bad
input through the command line, and the report files.

Bench folders are written by hand here (a `bench.jsonl` in a tmp dir, the layout
`jax-spatial bench build` writes), so these tests do not depend on the builder.
"""

from __future__ import annotations

import json
import math
import pathlib
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jax_spatial import cli
from jax_spatial.benchmark import baselines, metrics
from jax_spatial.benchmark.bench_items import load_bench
from jax_spatial.benchmark.predictions import read_predictions
from jax_spatial.benchmark.score import score_bench

FORMATS = ("caption/raw", "ref/raw", "image_text/boxes")


def make_item(task, fmt, k, kind, canonical, choices=(), **meta):
    qa_id = f"synthetic/s{k % 5}/view_0/{task}{k}"
    return {
        "id": f"{qa_id}@{fmt}",
        "images": [f"images/{k}.jpg"],
        "question": f"question {k} about {task}?",
        "answer": f"answer {canonical}",
        "canonical": canonical,
        "choices": list(choices),
        "task": task,
        "relation": "r",
        "format": fmt,
        "answer_type": kind,
        "source": "synthetic",
        "scene": f"s{k % 5}",
        "meta": {"qa_id": qa_id, **meta},
    }


def synthetic_items(n=20, seed=0, tasks=("position", "size", "existence", "counting")):
    """`n` items per (task, format): yes/no, two-choice, counts 1..6, distances in metres."""
    rng = random.Random(seed)
    items = []
    for task in tasks:
        for fmt in FORMATS:
            for k in range(n):
                if task in ("position", "existence"):
                    items.append(make_item(task, fmt, k, "yes_no", rng.choice(["yes", "no"])))
                elif task == "size":
                    items.append(
                        make_item(
                            task,
                            fmt,
                            k,
                            "multiple_choice",
                            rng.choice("AB"),
                            [f"the chair {k}", f"the table {k}"],
                        )
                    )
                elif task == "counting":
                    c = rng.randint(1, 6)
                    items.append(make_item(task, fmt, k, "count", str(c), value=c))
                else:
                    v = round(rng.uniform(0.3, 6.0), 2)
                    items.append(make_item(task, fmt, k, "number", str(v), value=v, unit="m"))
    return items


def write_bench(root: pathlib.Path, items) -> pathlib.Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "bench.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items))
    return root


def write_jsonl(path: pathlib.Path, records) -> pathlib.Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def run_cli(capsys, *argv):
    code = cli.main(["score", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, expected_code, *words):
    assert code == expected_code, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for word in words:
        assert word in lines[0], lines[0]


# ------------------------------------------------------------------------------------ metrics


def mra_published(pred: float, gt: float) -> float:
    """VSI-Bench's formula as printed: 1/10 sum over t in {.50, .55, ..., .95} of
    1[|pred - gt| / gt < 1 - t], in plain Python."""
    total = 0
    for k in range(10):
        t = 0.50 + 0.05 * k
        if abs(pred - gt) / gt < 1 - t:
            total += 1
    return total / 10


def test_mra_agrees_with_the_published_formula_on_random_pairs():
    rng = np.random.default_rng(0)
    gt = rng.uniform(0.1, 10.0, 1000)
    pred = gt * (1 + rng.uniform(-1.2, 1.2, 1000))
    ours = metrics.mean_relative_accuracy(pred, gt)
    reference = np.array([mra_published(p, g) for p, g in zip(pred, gt, strict=True)])
    # Continuous draws never land on a threshold (where "<" and "<=" differ), so the two
    # must agree exactly; both are multiples of 0.1.
    assert np.max(np.abs(ours - reference)) == 0.0
    # The draws span every threshold: scores from 0 to 1 all occur.
    assert set(np.round(ours, 1)) == {round(0.1 * k, 1) for k in range(11)}


@pytest.mark.parametrize(
    "pred, gt, expected",
    [
        (4.0, 4.0, 1.0),
        (6.0, 4.0, 0.1),  # exactly 50% off: VSI-Bench's scorer counts it at t = 0.50 ("<=")
        (2.0, 4.0, 0.1),
        (8.0, 4.0, 0.0),
        (0.0, 4.0, 0.0),
        (10.0, 8.0, 0.6),  # exactly 25% off: t = 0.50 .. 0.75 ("<" would give 0.5)
        (9.0, 8.0, 0.8),  # 12.5% off: 1 - t >= 0.125 for t = 0.50 .. 0.85
        (4.3, 4.0, 0.9),  # 7.5% off: every threshold but t = 0.95 (5% allowed)
        (4.1, 4.0, 1.0),  # 2.5% off
        (0.0, 0.0, 1.0),
        (1.0, 0.0, 0.0),
    ],
)
def test_mra_hand_checked(pred, gt, expected):
    assert metrics.mean_relative_accuracy(pred, gt) == pytest.approx(expected, abs=1e-12)


def test_mra_thresholds_are_vsibench_linspace():
    assert np.array_equal(metrics.MRA_THRESHOLDS, np.linspace(0.5, 0.95, 10))


def test_bootstrap_interval_matches_the_binomial_interval_on_a_large_cell():
    # n = 2000 binary scores at p = 0.6: the 95% interval is p +- 1.96 sqrt(p(1-p)/n) =
    # +-2.15 points. With 2000 resamples the percentile ends wobble by ~0.15 points; 0.5 is
    # a bound that a wrong resampling (n too small or large, no replacement) would break.
    scores = np.array([1.0] * 1200 + [0.0] * 800)
    means = metrics.bootstrap_means(scores, 2000, 0, "cell")
    lo, hi = metrics.percentile_interval(means * 100)
    half = 1.96 * math.sqrt(0.6 * 0.4 / 2000) * 100
    assert lo == pytest.approx(60 - half, abs=0.5)
    assert hi == pytest.approx(60 + half, abs=0.5)
    again = metrics.bootstrap_means(scores, 2000, 0, "cell")
    assert np.array_equal(means, again)  # seeded by (seed, cell)
    assert not np.array_equal(means, metrics.bootstrap_means(scores, 2000, 1, "cell"))


def test_count_and_number_scores():
    count = make_item("counting", "caption/raw", 0, "count", "4", value=4)
    from jax_spatial.benchmark.extract import extract_answer

    s = metrics.score_item(count, extract_answer("There are 5 chairs.", count))
    # 25% off: MRA counts t = 0.50 .. 0.75 (VSI-Bench's "<=" at the 0.75 threshold).
    assert (s.score, s.exact, s.rel_error, s.mra) == (0.0, False, 0.25, pytest.approx(0.6))
    dist = make_item("abs_distance", "caption/raw", 0, "number", "150", value=150, unit="cm")
    s = metrics.score_item(dist, extract_answer("1.5 m", dist))
    assert s.score == 1.0 and s.rel_error == 0.0


# ---------------------------------------------------------------------------------- baselines


def test_oracle_scores_100_everywhere(tmp_path):
    items = synthetic_items(8, tasks=("position", "size", "existence", "counting", "rotation"))
    items += [
        make_item("abs_distance", f, k, "number", str(0.5 + k / 7), value=0.5 + k / 7, unit="m")
        for f in FORMATS
        for k in range(6)
    ]
    items += [
        make_item("room_size", "caption/raw", k, "number", str(10 + k * 1.25), unit="m2")
        for k in range(5)
    ]
    bench = write_bench(tmp_path / "b", items)
    report = score_bench(bench, baselines=["oracle"], resamples=50)
    oracle = report["models"]["oracle"]
    cells = list(oracle["per_task"].values()) + list(oracle["per_format"].values())
    cells += [c for row in oracle["task_x_format"].values() for c in row.values()]
    cells += [c for c in oracle["paper_row"]["columns"].values() if c is not None]
    cells += [oracle["paper_row"]["average"], oracle["overall"], oracle["overall_micro"]]
    assert len(cells) > 20
    for cell in cells:
        assert cell["score"] == 100.0 and cell["ci"] == [100.0, 100.0]
    assert oracle["counts"]["missing"] == oracle["counts"]["unparsed"] == 0


def test_random_lands_on_chance_in_every_cell(tmp_path):
    # Per cell n = 1600; chance p: yes/no 1/2, two choices 1/2, four choices 1/4, a count
    # out of 1..10 (the engine's largest count) 1/10. Tolerance: 4 binomial standard errors,
    # 100 * 4 sqrt(p(1-p)/n) (5.0 points at p = 1/2, 3.0 at 1/10): a correct uniform draw
    # stays inside with probability 0.99994 per cell, a draw biased by 5 points falls outside
    # most of the time.
    n = 1600
    rng = random.Random(1)
    items, chance = [], {}
    for k in range(n):
        items.append(make_item("position", "caption/raw", k, "yes_no", rng.choice(["yes", "no"])))
        items.append(
            make_item("size", "caption/raw", k, "multiple_choice", rng.choice("AB"), ["x", "y"])
        )
        items.append(
            make_item(
                "size", "ref/raw", k, "multiple_choice", rng.choice("ABCD"), ["w", "x", "y", "z"]
            )
        )
        items.append(make_item("counting", "caption/raw", k, "count", str(rng.randint(2, 6))))
    chance = {
        ("position", "caption/raw"): 0.5,
        ("size", "caption/raw"): 0.5,
        ("size", "ref/raw"): 0.25,
        ("counting", "caption/raw"): 0.1,
    }
    bench = write_bench(tmp_path / "b", items)
    report = score_bench(bench, baselines=["random"], resamples=0, seed=3)
    grid = report["models"]["random"]["task_x_format"]
    for (task, fmt), p in chance.items():
        cell = grid[task][fmt]
        tolerance = 100 * 4 * math.sqrt(p * (1 - p) / n)
        assert abs(cell["score"] - 100 * p) < tolerance, (task, fmt, cell["score"])


def test_random_is_seeded():
    items = synthetic_items(10)
    assert baselines.random_answers(items, 5) == baselines.random_answers(items, 5)
    assert baselines.random_answers(items, 5) != baselines.random_answers(items, 6)


def test_majority_from_a_train_split(tmp_path, capsys):
    items = [make_item("position", "caption/raw", k, "yes_no", "yes") for k in range(4)]
    items += [make_item("position", "ref/raw", k, "yes_no", "no") for k in range(4)]
    items += [make_item("counting", "caption/raw", k, "count", str(k + 1)) for k in range(4)]
    bench = write_bench(tmp_path / "b", items)
    # A qa.jsonl as `jax-spatial generate` writes it: task, kind, canonical, format in meta.
    train = [
        {
            "id": f"t{k}",
            "meta": {"task": "position", "kind": "yes_no", "canonical": c, "format": "caption/raw"},
        }
        for k, c in enumerate(["no", "no", "yes"])
    ] + [
        {"id": f"c{k}", "meta": {"task": "counting", "kind": "count", "canonical": c}}
        for k, c in enumerate(["2", "2", "3"])
    ]
    train_path = write_jsonl(tmp_path / "qa.jsonl", train)
    report = score_bench(bench, baselines=["majority"], train_split=train_path, resamples=0)
    majority = report["models"]["majority"]
    # caption/raw position: train says "no" (bench has "yes") -> 0; ref/raw is not in the
    # train split, the (task, answer type) fallback is "no" -> all 4 right.
    assert majority["task_x_format"]["position"]["caption/raw"]["score"] == 0.0
    assert majority["task_x_format"]["position"]["ref/raw"]["score"] == 100.0
    # counting: "2" (the qa.jsonl default format is caption/raw) -> one of 1, 2, 3, 4.
    assert majority["per_task"]["counting"]["score"] == 25.0
    in_bench = score_bench(bench, baselines=["majority"], resamples=0)
    assert list(in_bench["models"]) == ["majority (in-bench)"]
    assert "no --train-split" in in_bench["models"]["majority (in-bench)"]["note"]
    code, out, err = run_cli(capsys, "--bench", bench, "--baseline", "majority")
    assert code == 0 and "majority (in-bench)" in out and "no --train-split" in err


def test_majority_ties_and_numbers_do_not_depend_on_order():
    records = [
        {"task": "t", "format": "f", "answer_type": "yes_no", "canonical": c} for c in ["yes", "no"]
    ] + [
        {"task": "d", "format": "f", "answer_type": "number", "canonical": c}
        for c in ["1", "2", "10"]
    ]
    items = [
        {"id": "a", "task": "t", "format": "f", "answer_type": "yes_no", "canonical": "no"},
        {"id": "b", "task": "d", "format": "f", "answer_type": "number", "canonical": "2"},
    ]
    forward, _ = baselines.majority_answers(items, records)
    backward, _ = baselines.majority_answers(items, records[::-1])
    assert forward == backward == {"a": "no", "b": "2"}  # tie -> smaller string; median


# -------------------------------------------------------------------------- prediction files


def test_predict_lines_are_placed_by_qa_id_and_format(tmp_path):
    items = synthetic_items(3, tasks=("position",))
    bench = load_bench(write_bench(tmp_path / "b", items))
    # `jax-spatial predict --every-format`: id = qa_id, the format beside it.
    records = [
        {"id": i["meta"]["qa_id"], "format_id": i["format"], "prediction": i["canonical"]}
        for i in items
    ]
    preds = read_predictions(write_jsonl(tmp_path / "p.jsonl", records), bench)
    assert preds.layout == "jsonl" and not preds.unknown_ids and not preds.duplicates
    assert preds.answers == {i["id"]: i["canonical"] for i in items}


def test_relettered_choices_are_read_against_what_the_model_was_asked(tmp_path):
    item = make_item("size", "caption/raw", 0, "multiple_choice", "B", ["the table", "the chair"])
    item["meta"]["relettered"] = {"from": "A", "to": "B"}
    bench = write_bench(tmp_path / "b", [item])
    # The dataset asked with the chair as A; the model said A, meaning the chair.
    record = {
        "id": item["meta"]["qa_id"],
        "format_id": "caption/raw",
        "prediction": "(A)",
        "choices": ["the chair", "the table"],
    }
    p = write_jsonl(tmp_path / "p.jsonl", [record])
    report = score_bench(bench, [p], resamples=0)
    assert report["models"]["p"]["overall_micro"]["score"] == 100.0
    # A model asked the bench's own question (choices as in the bench) is not moved.
    record["choices"] = ["the table", "the chair"]
    write_jsonl(p, [record])
    assert score_bench(bench, [p], resamples=0)["models"]["p"]["overall_micro"]["score"] == 0.0


def test_lmms_eval_layouts(tmp_path):
    items = synthetic_items(2, tasks=("position", "size"))
    bench_dir = write_bench(tmp_path / "b", items)
    bench = load_bench(bench_dir)
    answers = {i["id"]: i["canonical"] for i in items}
    # Newer lmms-eval: JSONL, doc dropped, doc_id = position in bench.jsonl, responses nested.
    newer = [
        {
            "doc_id": k,
            "target": i["canonical"],
            "filtered_resps": [i["canonical"]],
            "exact_match": 1.0,
        }
        for k, i in enumerate(items)
    ]
    preds = read_predictions(write_jsonl(tmp_path / "samples_x.jsonl", newer), bench)
    assert preds.layout == "lmms-eval" and preds.answers == answers
    # Older lmms-eval: one JSON document {"args", "logs": [...]}, doc kept (with our id),
    # doc_id not the line index; resps nested twice.
    older = {
        "args": {"model": "m"},
        "logs": [
            {
                "doc_id": 100 + k,
                "doc": i,
                "target": i["canonical"],
                "resps": [[f"The answer is {i['canonical']}."]],
            }
            for k, i in enumerate(items)
        ],
    }
    path = tmp_path / "older.json"
    path.write_text(json.dumps(older, indent=4))
    preds = read_predictions(path, bench)
    assert preds.answers == {k: f"The answer is {v}." for k, v in answers.items()}
    # A bare JSON array of samples, and a doc_id past the bench: counted as unknown.
    array = [{"doc_id": 0, "filtered_resps": ["yes"]}, {"doc_id": 999, "filtered_resps": ["no"]}]
    path.write_text(json.dumps(array, indent=2))
    preds = read_predictions(path, bench)
    assert preds.answers == {items[0]["id"]: "yes"} and preds.unknown_ids == ["doc_id=999"]


# ------------------------------------------------------------------ bad input, through main()


@pytest.fixture
def bench_dir(tmp_path):
    return write_bench(tmp_path / "bench", synthetic_items(4))


def test_bench_folder_errors(tmp_path, capsys):
    code, _, err = run_cli(capsys, "--bench", tmp_path / "nope", "--baseline", "oracle")
    assert_one_line_error(code, err, 1, "does not exist")
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(capsys, "--bench", tmp_path / "empty", "--baseline", "oracle")
    assert_one_line_error(code, err, 1, "no bench.jsonl")
    (tmp_path / "afile").write_text("x")
    code, _, err = run_cli(capsys, "--bench", tmp_path / "afile", "--baseline", "oracle")
    assert_one_line_error(code, err, 1, "is a file")
    dup = [make_item("position", "caption/raw", 0, "yes_no", "yes")] * 2
    write_bench(tmp_path / "dup", dup)
    code, _, err = run_cli(capsys, "--bench", tmp_path / "dup", "--baseline", "oracle")
    assert_one_line_error(code, err, 1, "duplicate item id", ":2:", "line 1")


def test_bad_bench_lines_are_skipped_and_counted(tmp_path, capsys):
    root = write_bench(tmp_path / "b", synthetic_items(2, tasks=("position",)))
    with open(root / "bench.jsonl", "ab") as f:
        f.write(b"{not json\n\xff\xfe\n" + json.dumps({"id": "x", "task": "t"}).encode() + b"\n")
    code, out, err = run_cli(
        capsys, "--bench", root, "--baseline", "oracle", "--report", tmp_path / "r"
    )
    assert code == 0 and "Traceback" not in err
    assert "3 bad lines skipped" in err
    skipped = json.loads((tmp_path / "r" / "report.json").read_text())["bench"]["skipped_lines"]
    assert [s["line"] for s in skipped] == [7, 8, 9]
    assert "not JSON" in skipped[0]["reason"] and "UTF-8" in skipped[1]["reason"]
    assert "answer_type" in skipped[2]["reason"]


@pytest.mark.parametrize(
    "content, words",
    [
        (b"", ("is empty",)),
        (b"\n  \n", ("is empty",)),
        (b"{broken\n[1, 2\n", ("no prediction records", "line 1", "not JSON")),
        (b"\xff\xfe\xfa\n", ("no prediction records", "UTF-8")),
        (b'{"foo": 1}\n', ("no prediction records", "neither")),
    ],
)
def test_unusable_prediction_files(tmp_path, capsys, bench_dir, content, words):
    path = tmp_path / "p.jsonl"
    path.write_bytes(content)
    code, _, err = run_cli(capsys, "--bench", bench_dir, "--predictions", path)
    assert_one_line_error(code, err, 1, str(path), *words)


def test_prediction_file_missing_or_a_folder(tmp_path, capsys, bench_dir):
    code, _, err = run_cli(capsys, "--bench", bench_dir, "--predictions", tmp_path / "x.jsonl")
    assert_one_line_error(code, err, 1, "does not exist")
    code, _, err = run_cli(capsys, "--bench", bench_dir, "--predictions", tmp_path)
    assert_one_line_error(code, err, 1, "is a folder")


def test_bad_lines_unknown_duplicate_and_missing_ids(tmp_path, capsys, bench_dir):
    items = [json.loads(line) for line in (bench_dir / "bench.jsonl").read_text().splitlines()]
    good = [{"id": i["id"], "prediction": i["canonical"]} for i in items[:-3]]
    lines = [json.dumps(r).encode() for r in good[:5]]
    lines.append(b'{"id": "a", "prediction": ')  # line 6: cut short
    lines.append(b'{"id": "\xff\xfe", "prediction": "yes"}')  # line 7: not UTF-8
    lines.append(json.dumps({"id": "not-in-bench", "prediction": "yes"}).encode())  # line 8
    lines.append(json.dumps({"id": items[0]["id"], "prediction": "wrong"}).encode())  # line 9
    lines += [json.dumps(r).encode() for r in good[5:]]
    path = tmp_path / "p.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    code, out, err = run_cli(
        capsys,
        "--bench",
        bench_dir,
        "--predictions",
        path,
        "--report",
        tmp_path / "r",
        "--bootstrap",
        "20",
    )
    assert code == 0 and "Traceback" not in err
    assert "3 items without a prediction" in err and "1 ids not in the bench" in err
    assert "1 repeated ids (first kept)" in err and "2 unreadable lines" in err
    model = json.loads((tmp_path / "r" / "report.json").read_text())["models"]["p"]
    assert model["missing_ids"] == [i["id"] for i in items[-3:]]
    assert model["unknown_ids"] == ["not-in-bench"]
    assert model["duplicates"] == [{"id": items[0]["id"], "where": "line 9", "first": "line 1"}]
    assert [s["where"] for s in model["skipped_lines"]] == ["line 6", "line 7"]
    # The first answer counts (it is right); the three missing items score wrong.
    n = len(items)
    assert model["overall_micro"]["score"] == pytest.approx(100 * (n - 3) / n, abs=0.01)


@pytest.mark.parametrize(
    "argv, words",
    [
        ((), ("nothing to score",)),
        (("--baseline", "median"), ("median", "majority, random, oracle")),
        (("--baseline", "oracle", "--bootstrap", "-1"), ("--bootstrap",)),
        (("--predictions", "a.jsonl", "--names", "x,y"), ("--names", "2 names for 1")),
        (("--baseline", "oracle", "--train-split", "t.jsonl"), ("--train-split",)),
    ],
)
def test_usage_errors(capsys, bench_dir, argv, words):
    code, _, err = run_cli(capsys, "--bench", bench_dir, *argv)
    assert_one_line_error(code, err, 2, *words)


def test_train_split_errors(tmp_path, capsys, bench_dir):
    code, _, err = run_cli(
        capsys,
        "--bench",
        bench_dir,
        "--baseline",
        "majority",
        "--train-split",
        tmp_path / "none.jsonl",
    )
    assert_one_line_error(code, err, 1, "--train-split", "does not exist")
    (tmp_path / "junk.jsonl").write_text('{"a": 1}\nnot json\n')
    code, _, err = run_cli(
        capsys,
        "--bench",
        bench_dir,
        "--baseline",
        "majority",
        "--train-split",
        tmp_path / "junk.jsonl",
    )
    assert_one_line_error(code, err, 1, "holds no QA lines")


def test_verified_only(tmp_path, capsys, bench_dir):
    code, _, err = run_cli(capsys, "--bench", bench_dir, "--baseline", "oracle", "--verified-only")
    assert_one_line_error(code, err, 1, "verdicts.json", "does not exist")
    items = [json.loads(line) for line in (bench_dir / "bench.jsonl").read_text().splitlines()]
    verdicts = {
        i["id"]: {"verdict": v}
        for i, v in zip(items, ["accept", "reject", "unsure", "accept"], strict=False)
    }
    (bench_dir / "verdicts.json").write_text(json.dumps({"version": 1, "verdicts": verdicts}))
    preds = write_jsonl(
        tmp_path / "p.jsonl", [{"id": i["id"], "prediction": i["canonical"]} for i in items]
    )
    report = score_bench(bench_dir, [preds], verified_only=True, resamples=0)
    assert report["bench"]["items"] == 2
    assert report["bench"]["excluded_unverified"] == len(items) - 2
    model = report["models"]["p"]
    assert model["counts"]["excluded"] == len(items) - 2 and not model["unknown_ids"]
    assert model["overall_micro"]["score"] == 100.0
    (bench_dir / "verdicts.json").write_text(json.dumps({"version": 1, "verdicts": {}}))
    code, _, err = run_cli(capsys, "--bench", bench_dir, "--baseline", "oracle", "--verified-only")
    assert_one_line_error(code, err, 1, "no item", "accept")
    (bench_dir / "verdicts.json").write_text("{oops")
    code, _, err = run_cli(capsys, "--bench", bench_dir, "--baseline", "oracle", "--verified-only")
    assert_one_line_error(code, err, 1, "verdicts.json", "not JSON")


# ------------------------------------------------------------------------------------ reports


def test_paper_row_leaves_absent_tasks_out_of_the_average(tmp_path):
    items = [make_item("position", "caption/raw", k, "yes_no", "yes") for k in range(4)]
    items += [make_item("counting", "caption/raw", k, "count", "2") for k in range(4)]
    items += [
        make_item("abs_distance", "caption/raw", k, "number", "1.0", unit="m") for k in range(2)
    ]
    bench = write_bench(tmp_path / "b", items)
    # Right on 3 of 4 positions, 1 of 4 counts, both distances: Average = (75 + 25) / 2.
    answers = ["yes", "yes", "yes", "no", "2", "3", "3", "3", "1", "100 cm"]
    preds = write_jsonl(
        tmp_path / "m.jsonl",
        [{"id": i["id"], "prediction": a} for i, a in zip(items, answers, strict=True)],
    )
    report = score_bench(bench, [preds], resamples=0)
    row = report["models"]["m"]["paper_row"]
    assert row["columns"]["Size"] is None and row["columns"]["Rotation"] is None
    assert row["columns"]["Position"]["score"] == 75.0
    assert row["average"]["score"] == 50.0 and row["average"]["tasks"] == ["position", "counting"]
    # `overall` averages every task of the bench: (75 + 25 + 100) / 3.
    assert report["models"]["m"]["overall"]["score"] == pytest.approx(200 / 3, abs=0.01)
    from jax_spatial.benchmark.report import paper_row_text

    text = paper_row_text(report)
    assert "—" in text and "All tasks" in text


def test_report_files_with_several_models(tmp_path, capsys):
    items = synthetic_items(6, tasks=("position", "size", "counting", "abs_distance"))
    bench = write_bench(tmp_path / "b", items)
    rng = random.Random(0)
    a = write_jsonl(
        tmp_path / "a.jsonl",
        [
            {"id": i["id"], "prediction": i["canonical"] if rng.random() < 0.7 else "no idea"}
            for i in items
        ],
    )
    b = write_jsonl(tmp_path / "b.jsonl", [{"id": i["id"], "prediction": "yes"} for i in items])
    code, out, err = run_cli(
        capsys,
        "--bench",
        bench,
        "--predictions",
        a,
        "--predictions",
        b,
        "--names",
        "model-a,model-b",
        "--baseline",
        "random,oracle",
        "--report",
        tmp_path / "r",
        "--bootstrap",
        "200",
        "--seed",
        "1",
    )
    assert code == 0, err
    header, *rows = out.splitlines()[:5]
    assert header.split()[:7] == [
        "model",
        "Position",
        "Size",
        "Rotation",
        "Counting",
        "Existence",
        "Average",
    ]
    assert [r.split()[0] for r in rows] == ["model-a", "model-b", "random", "oracle"]
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert list(report["models"]) == ["model-a", "model-b", "random", "oracle"]
    for model in report["models"].values():
        for key in (
            "overall",
            "per_task",
            "per_format",
            "task_x_format",
            "paper_row",
            "counts",
            "missing_ids",
        ):
            assert key in model
        for cell in model["per_task"].values():
            assert cell["ci"][0] <= cell["score"] <= cell["ci"][1]
    cell = report["models"]["model-a"]["per_task"]["counting"]
    assert {"exact", "mra", "rel_error"} <= set(cell)
    md = (tmp_path / "r" / "report.md").read_text()
    assert "| task | n | metric | model-a | model-b | random | oracle |" in md
    assert "## Task x format" in md and "**model-b**" in md
    for png in ("task_x_format.png", "per_task.png"):
        data = (tmp_path / "r" / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    # Same seed, same report; the intervals come from the seed.
    again = score_bench(
        bench,
        [a, b],
        names=["model-a", "model-b"],
        baselines=["random", "oracle"],
        resamples=200,
        seed=1,
    )
    assert again["models"] == report["models"]


@settings(max_examples=300, deadline=None)
@given(
    st.floats(0.01, 1000.0),
    st.floats(0.0, 2.0),
    st.floats(0.0, 2.0),
)
def test_mra_properties(gt, e1, e2):
    small, large = sorted((e1, e2))
    near, far = metrics.mean_relative_accuracy([gt * (1 + small), gt * (1 + large)], gt)
    assert far <= near  # never rewards a larger error
    assert near * 10 == pytest.approx(round(near * 10), abs=1e-9)  # a multiple of 0.1
    # Over and under by the same fraction score alike, up to one threshold where float
    # rounding of gt * (1 -+ e) puts the two relative errors either side of it.
    if small <= 1:
        under = metrics.mean_relative_accuracy(gt * (1 - small), gt)
        assert under == pytest.approx(near, abs=0.1 + 1e-12)


def test_count_cell_hand_checked(tmp_path):
    gts, preds = ["2", "4", "0", "5"], ["3 chairs", "four", "none", None]
    items = [make_item("counting", "caption/raw", k, "count", g) for k, g in enumerate(gts)]
    bench = write_bench(tmp_path / "b", items)
    p = write_jsonl(
        tmp_path / "p.jsonl",
        [{"id": i["id"], "prediction": t} for i, t in zip(items, preds, strict=True) if t],
    )
    cell = score_bench(bench, [p], resamples=0)["models"]["p"]["per_task"]["counting"]
    # exact: 4 and 0 right of 4 items; relative error over answered items with gt > 0:
    # (|3 - 2| / 2 + 0) / 2; MRA: 0.1 (50% off), 1, 1 (0 for 0), 0 (missing).
    assert (cell["score"], cell["exact"], cell["missing"]) == (50.0, 50.0, 1)
    assert (cell["rel_error"], cell["rel_error_n"]) == (0.25, 2)
    assert cell["mra"] == pytest.approx(52.5)
