"""`jax-spatial bench build`: the contract of bench.jsonl, balance, determinism, splits, images.

The references are independent of the benchmark code: the lines `jax-spatial generate --formats
all` writes for the same scenes (what every cell could hold, and the text of every item), a
SHA-256 computed here for the split, the rendered frames `generate` saves (raw images must be
those bytes; drawn ones must differ from them where, and only where, the prompts are), and a
brute-force search for the largest balanced cell.

One small procedural benchmark (the first 4 test-split rooms of 40, 160 x 120 px, 6 items per
cell) serves most tests: large enough that balance is meaningful (over 150 yes/no and over 50
multiple-choice items), small enough to build in seconds.
"""

from __future__ import annotations

import collections
import hashlib
import json
import pathlib
import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from jax_spatial import cli, engine
from jax_spatial.benchmark import build, splits, verdicts
from jax_spatial.formats.expand import expand_formats
from jax_spatial.formats.spec import PALETTE
from jax_spatial.lift.scene_lift import LiftingSource
from jax_spatial.sources import get_source

PER_CELL = 6
SOURCE_FLAGS = (
    "--source", "procedural", "--set", "num_scenes=40", "--set", "width=160",
    "--set", "height=120", "--max-scenes", "4", "--quiet",
)  # fmt: skip
# The keys of a bench.jsonl line, as the scorer's contract lists them.
ITEM_KEYS = [
    "id", "images", "question", "answer", "canonical", "choices", "task", "relation",
    "format", "answer_type", "source", "scene", "meta",
]  # fmt: skip


def run(capsys, *argv) -> tuple[int, str]:
    code = cli.main([str(a) for a in argv])
    return code, capsys.readouterr().err


def one_line(err: str) -> str:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def read_lines(path) -> list[dict]:
    return [json.loads(line) for line in pathlib.Path(path).read_text().splitlines()]


def is_test_scene(scene_id: str) -> bool:
    """The default fractions train=0.8,test=0.2: test is the top fifth of the hash range."""
    u = int.from_bytes(hashlib.sha256(scene_id.encode()).digest()[:8], "big") / 2.0**64
    return u >= 0.8


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The benchmark, and `generate --formats all` over the same scenes as the reference."""
    root = tmp_path_factory.mktemp("bench")
    bench, gen = root / "bench", root / "gen"
    assert cli.main(["bench", "build", *SOURCE_FLAGS, "--out", str(bench),
                     "--per-cell", str(PER_CELL)]) == 0  # fmt: skip
    assert cli.main(["generate", *SOURCE_FLAGS, "--out", str(gen), "--formats", "all",
                     "--split", "test", "--no-sheet"]) == 0  # fmt: skip
    return {
        "dir": bench,
        "items": read_lines(bench / "bench.jsonl"),
        "manifest": json.loads((bench / "manifest.json").read_text()),
        "gen_dir": gen,
        "gen": {line["id"]: line for line in read_lines(gen / "qa.jsonl")},
    }


def files_of(folder: pathlib.Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


@pytest.mark.slow
def test_same_command_twice_writes_identical_files(built, capsys):
    """The same command again (into the same folder) writes the same bytes, images included;
    a verdicts.json there survives the rebuild."""
    folder = built["dir"]
    before = files_of(folder)
    (folder / "verdicts.json").write_text('{"version": 1, "verdicts": {}}\n')
    (folder / "images" / "stale.jpg").write_bytes(b"left over")
    assert cli.main(["bench", "build", *SOURCE_FLAGS, "--out", str(folder),
                     "--per-cell", str(PER_CELL)]) == 0  # fmt: skip
    after = files_of(folder)
    assert after.pop("verdicts.json")
    assert after == before
    assert "timestamp" not in (folder / "manifest.json").read_text()
    (folder / "verdicts.json").unlink()


def test_items_follow_the_contract(built):
    items = built["items"]
    assert items
    assert len({i["id"] for i in items}) == len(items)
    for item in items:
        assert list(item) == ITEM_KEYS
        assert item["answer_type"] in ("yes_no", "multiple_choice", "count", "number")
        assert item["images"] and all(isinstance(p, str) for p in item["images"])
        assert item["format"] == item["id"].partition("@")[2] or (
            item["format"] == "caption/raw" and "@" not in item["id"]
        )
        meta = item["meta"]
        assert meta["frame_id"] and meta["template_id"] and "category" in meta
        assert item["id"].startswith(f"{item['source']}/{item['scene']}/{meta['frame_id']}/")
        if item["answer_type"] == "yes_no":
            assert item["canonical"] in ("yes", "no") and item["choices"] == []
            assert item["answer"].lower().startswith(item["canonical"])
        elif item["answer_type"] == "multiple_choice":
            choices, k = item["choices"], "ABCD".index(item["canonical"])
            assert len(choices) == 2 and k < len(choices)
            assert item["question"].endswith(f"(A) {choices[0]} (B) {choices[1]}")
            answer = item["answer"]
            assert f"({item['canonical']})" in answer
            # "(B) The chair is further left than the table.": the winner is named first.
            winner, loser = choices[k], choices[1 - k]
            assert answer.lower().index(winner.lower()) < answer.lower().rindex(loser.lower())
        else:
            assert item["canonical"].isdigit() and item["choices"] == []
            assert meta["value"] == int(item["canonical"]) and meta["unit"] is None


def test_items_are_the_lines_of_generate(built):
    """Each item is the `generate --formats all` line of its id: same text, or (re-lettered)
    the same choices swapped with the canonical letter on the same answer text."""
    gen = built["gen"]
    relettered = 0
    for item in built["items"]:
        line = gen[item["id"]]
        meta = line["meta"]
        question = line["conversations"][0]["value"].removeprefix("<image>\n")
        answer = line["conversations"][1]["value"]
        assert (item["task"], item["relation"], item["format"]) == (
            meta["task"], meta["relation"], meta["format"],
        )  # fmt: skip
        assert (item["scene"], item["meta"]["frame_id"]) == (meta["scene_id"], meta["frame_id"])
        if "relettered" not in item["meta"]:
            assert (item["question"], item["answer"], item["canonical"]) == (
                question, answer, meta["canonical"],
            )  # fmt: skip
            assert item["choices"] == meta["choices"]
            assert item["meta"]["prompts"] == meta["prompts"]
            continue
        relettered += 1
        assert item["meta"]["relettered"] == {"from": meta["canonical"], "to": item["canonical"]}
        assert item["canonical"] != meta["canonical"]
        assert item["choices"] == meta["choices"][::-1]
        correct = meta["choices"]["AB".index(meta["canonical"])]
        assert item["choices"]["AB".index(item["canonical"])] == correct
        assert item["question"] != question
        # Each object keeps its prompt: the picture is the one `generate` draws.
        assert _prompted(item["meta"]) == _prompted(meta)
    assert relettered == built["manifest"]["relettered"] > 0


def _prompted(meta: dict) -> set:
    """(annotation index, kind, colour, label) of every prompt of a line's meta."""
    objects = meta["objects"]
    return {
        (objects[p["object"]]["index"], p["kind"], p["colour"], p["label"]) for p in meta["prompts"]
    }


def largest_balanced(per_cell: int, yes: int, no: int, other: int) -> int:
    """Brute force: the most items a cell can take with its yes share within 2 points of 1/2."""
    best = 0
    for y in range(yes + 1):
        for z in range(no + 1):
            if y + z and abs(y / (y + z) - 0.5) > 0.02 + 1e-12:
                continue
            best = max(best, min(per_cell, y + z + other) if y + z <= per_cell else 0)
    return best


def test_cells_hold_what_the_data_allows(built):
    """Cell count = the most a balanced cell of the available lines holds, capped at N; the
    short cells are listed in the manifest with what they had."""
    available = collections.defaultdict(collections.Counter)
    for line in built["gen"].values():
        meta = line["meta"]
        klass = meta["canonical"] if meta["kind"] == "yes_no" else "other"
        available[(meta["task"], meta["format"])][klass] += 1
    got = collections.Counter((i["task"], i["format"]) for i in built["items"])
    manifest = built["manifest"]
    assert set(got) <= set(available)
    short_seen = 0
    for cell, counts in available.items():
        want = largest_balanced(PER_CELL, counts["yes"], counts["no"], counts["other"])
        assert got[cell] == want, (cell, dict(counts))
        assert manifest["cells"].get(cell[0], {}).get(cell[1], 0) == want
        if want < PER_CELL:
            short = manifest["short_cells"][cell[0]][cell[1]]
            assert short == {"items": want, "available": {k: v for k, v in counts.items() if v}}
            short_seen += 1
    assert short_seen == sum(len(v) for v in manifest["short_cells"].values())
    assert any(n == PER_CELL for n in got.values()) and short_seen  # both kinds occur here
    assert manifest["per_task"] == dict(collections.Counter(i["task"] for i in built["items"]))


def test_yes_no_and_letters_are_balanced(built):
    items, manifest = built["items"], built["manifest"]
    per_cell_yes = collections.defaultdict(collections.Counter)
    letters = collections.Counter()
    per_cell_letters = collections.defaultdict(collections.Counter)
    for item in items:
        cell = (item["task"], item["format"])
        if item["answer_type"] == "yes_no":
            per_cell_yes[cell][item["canonical"]] += 1
        elif item["answer_type"] == "multiple_choice":
            letters[item["canonical"]] += 1
            per_cell_letters[cell][item["canonical"]] += 1
    total_yes = sum(c["yes"] for c in per_cell_yes.values())
    total = sum(sum(c.values()) for c in per_cell_yes.values())
    assert total >= 150 and sum(letters.values()) >= 50  # enough for 2 points to mean much
    for cell, c in per_cell_yes.items():
        assert abs(c["yes"] / (c["yes"] + c["no"]) - 0.5) <= 0.02, cell
    assert abs(total_yes / total - 0.5) <= 0.02
    assert abs(letters["A"] / sum(letters.values()) - 0.5) <= 0.02
    assert abs(letters["A"] - letters["B"]) <= 1
    assert all(abs(c["A"] - c["B"]) <= 1 for c in per_cell_letters.values())
    assert manifest["yes_no"]["counts"] == {"yes": total_yes, "no": total - total_yes}
    assert manifest["letters"]["counts"] == {"A": letters["A"], "B": letters["B"]}


def test_only_scenes_of_the_test_split(built):
    scenes = {i["scene"] for i in built["items"]}
    listed = [f"proc_{k:06d}" for k in range(40)]
    first_four_test = [s for s in listed if is_test_scene(s)][:4]
    assert scenes and scenes <= set(first_four_test)
    assert all(is_test_scene(s) for s in scenes)
    assert {line["meta"]["scene_id"] for line in built["gen"].values()} <= set(first_four_test)
    split = built["manifest"]["split"]
    assert split["name"] == "test" and split["fractions"] == {"train": 0.8, "test": 0.2}
    assert built["manifest"]["scenes"]["listed"] == 4
    # `generate --split` says which split its output is, in both summaries.
    for name in ("summary.json", "summary_clips.json"):
        path = built["gen_dir"] / name
        recorded = json.loads(path.read_text())["split"]
        assert recorded == {"name": "test", "fractions": split["fractions"]}, name


def _frames(gen_dir: pathlib.Path) -> dict[tuple[str, str], np.ndarray]:
    out = {}
    for path in (gen_dir / "images").glob("procedural__*.png"):
        _, scene, frame = path.stem.split("__")
        out[(scene, frame)] = path
    return out


def _ring(box, shape) -> np.ndarray:
    """Mask of the box's outermost pixel ring (the border is drawn inside the box)."""
    h, w = shape
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, w) - 1, min(y2, h) - 1
    ring = np.zeros((h, w), bool)
    ring[y1 : y2 + 1, [x1, x2]] = True
    ring[[y1, y2], x1 : x2 + 1] = True
    return ring


def _nearest_colour(rgb) -> str:
    """The nearest of the four colours prompts are drawn in (the palette's first four)."""
    return min(list(PALETTE)[:4], key=lambda name: np.abs(np.array(PALETTE[name]) - rgb).sum())


def test_images_exist_and_show_their_overlays(built):
    """Raw items carry the rendered frame's bytes; a drawn item differs from the frame in the
    prompt's colour at each prompted object, and hardly anywhere else (JPEG noise)."""
    folder, frames = built["dir"], _frames(built["gen_dir"])
    checked = collections.Counter()
    for item in built["items"]:
        (image,) = item["images"]
        path = folder / image
        assert path.is_file() and path.resolve().is_relative_to(folder.resolve())
        frame_path = frames[(item["scene"], item["meta"]["frame_id"])]
        prompts = item["meta"]["prompts"]
        if not prompts:
            assert path.read_bytes() == frame_path.read_bytes()
            checked["raw"] += 1
            continue
        drawn = np.asarray(Image.open(path).convert("RGB"), np.float64)
        raw = np.asarray(Image.open(frame_path).convert("RGB"), np.float64)
        changed = np.abs(drawn - raw).max(-1) > 40
        near = np.zeros(changed.shape, bool)
        for prompt in prompts:
            x1, y1, x2, y2 = item["meta"]["objects"][prompt["object"]]["box"]
            inside = np.zeros(changed.shape, bool)
            inside[int(y1) : int(np.ceil(y2)), int(x1) : int(np.ceil(x2))] = True
            if prompt["kind"] == "box":
                # A border 1-2 px wide, its colour smeared by JPEG's chroma subsampling: the
                # ring changed, towards the named colour and no other of the palette.
                ring = _ring((x1, y1, x2, y2), changed.shape)
                assert np.median(np.abs(drawn[ring] - raw[ring]).max(-1)) > 30, item["id"]
                assert _nearest_colour(np.median(drawn[ring], axis=0)) == prompt["colour"]
            elif prompt["kind"] == "mask":
                # alpha 0.5: drawn = (raw + colour) / 2 inside the mask, so 2 drawn - raw
                # estimates the colour, with twice the JPEG error (its chroma is subsampled:
                # up to ~90 per channel on a small mask at this size), so the estimate is
                # only asked to be nearest the named one of the four prompt colours.
                tinted = inside & (np.abs(drawn - raw).max(-1) > 12)
                assert tinted.sum() >= 8, item["id"]
                estimate = np.median(2 * drawn[tinted] - raw[tinted], axis=0)
                assert _nearest_colour(estimate) == prompt["colour"], item["id"]
            else:
                # A filled disc in the colour (with a dark rim and a white or black digit):
                # changed pixels close to the colour, more than close to any other of the four.
                def close_to(name, inside=inside, changed=changed, drawn=drawn):
                    close = np.abs(drawn - np.array(PALETTE[name])).max(-1) < 60
                    return int((inside & changed & close).sum())

                counts = {name: close_to(name) for name in list(PALETTE)[:4]}
                assert counts[prompt["colour"]] >= 6, item["id"]
                assert max(counts, key=counts.get) == prompt["colour"], item["id"]
            cy, cx = (y1 + y2) / 2, (x1 + x2) / 2
            yy, xx = np.mgrid[: changed.shape[0], : changed.shape[1]]
            near |= inside | ((yy - cy) ** 2 + (xx - cx) ** 2 <= 14**2)
            checked[prompt["kind"]] += 1
        grown = near.copy()
        for axis in (0, 1):
            for shift in (-3, 3):
                grown |= np.roll(near, shift, axis=axis)
        far = ~grown
        assert np.abs(drawn - raw)[far].mean() < 4, item["id"]
    assert min(checked.values()) >= 10 and set(checked) == {"raw", "box", "mask", "mark"}


def _write_verdicts(folder: pathlib.Path, entries: dict) -> None:
    (folder / "verdicts.json").write_text(json.dumps({"version": 1, "verdicts": entries}))


def test_verified_only_keeps_the_accepted_items(built, capsys):
    folder = built["dir"]
    items = built["items"]
    lines = (folder / "bench.jsonl").read_text().splitlines()
    marks = ["accept", "reject", "accept", "unsure", "accept", "reject"]
    entries = {
        item["id"]: {"verdict": v, "time": "2026-01-01T00:00:00+00:00"}
        for item, v in zip(items, marks, strict=False)
    }
    # A verdict on an item whose content has changed since it was judged does not count.
    entries[items[10]["id"]] = {"verdict": "accept", "time": "2026-01-01T00:00:00+00:00",
                                "digest": "0" * 64}  # fmt: skip
    entries[items[11]["id"]] = {"verdict": "accept", "time": "2026-01-01T00:00:00+00:00",
                                "digest": verdicts.item_digest(folder, items[11])}  # fmt: skip
    entries["no/such/item"] = {"verdict": "accept", "time": "2026-01-01T00:00:00+00:00"}
    _write_verdicts(folder, entries)
    try:
        code, err = run(capsys, "bench", "build", "--out", folder, "--verified-only")
        assert code == 0, err
        kept = (folder / "bench_verified.jsonl").read_text().splitlines()
        assert kept == [lines[0], lines[2], lines[4], lines[11]]
        summary = json.loads((folder / "manifest_verified.json").read_text())
        assert summary["items_in_bench"] == len(items) and summary["items"] == 4
        assert summary["verdicts"]["accept"] == 4
        assert summary["verdicts"]["reject"] == 2 and summary["verdicts"]["unsure"] == 1
        assert sum(summary["per_task"].values()) == 4
    finally:
        for name in ("verdicts.json", "bench_verified.jsonl", "manifest_verified.json"):
            (folder / name).unlink(missing_ok=True)


def test_reletter_round_trip_restores_every_format():
    """Moving the correct choice to the other letter and back gives the original text in
    every format; in between, the same answer text sits under the new letter."""
    source = LiftingSource(
        get_source("procedural", None, num_scenes=1, width=160, height=120),
        discard_boxes=True,
    )
    config = engine.GenerateConfig(formats="all")
    summary = engine.Summary()
    observations = engine.load_observations(source, source.scene_ids(), config, summary)
    checked = 0
    for frame_qa in engine.questions_for_observations(observations, config):
        obs = frame_qa.observation
        for number, qa in enumerate(frame_qa.qas):
            if qa.kind != "multiple_choice":
                continue
            qa_id = f"x/{obs.frame_id}/{number}"
            k = "AB".index(qa.canonical)
            moved = build.relettered(obs, qa, 1 - k)
            assert moved.canonical == "AB"[1 - k]
            assert moved.choices == qa.choices[::-1]
            assert moved.answer.replace(f"({moved.canonical})", f"({qa.canonical})") == qa.answer
            back = build.relettered(obs, moved, k)
            assert (back.question, back.answer, back.choices) == (
                qa.question, qa.answer, qa.choices,
            )  # fmt: skip
            assert build.relettered(obs, qa, k) is qa
            for a, b in zip(
                expand_formats(obs, qa, "all", 0, qa_id),
                expand_formats(obs, back, "all", 0, qa_id),
                strict=True,
            ):
                assert a == b
            checked += 1
    assert checked >= 3


@settings(max_examples=300, deadline=None)
@given(
    per_cell=st.integers(1, 40),
    yes=st.integers(0, 40),
    no=st.integers(0, 40),
    other=st.integers(0, 40),
    prefer=st.integers(0, 40),
)
def test_plan_cell_is_the_largest_balanced_cell(per_cell, yes, no, other, prefer):
    y, z, o = build.plan_cell(per_cell, yes, no, other, prefer, 0.02)
    assert 0 <= y <= yes and 0 <= z <= no and 0 <= o <= other
    assert y + z + o == largest_balanced(per_cell, yes, no, other)
    assert y + z == 0 or abs(y / (y + z) - 0.5) <= 0.02 + 1e-9  # 12 of 25 is 2 points off


def test_split_of_a_scene_is_the_sha256_rule():
    ids = [f"scene{k:04d}" for k in range(300)]
    fractions = splits.parse_fractions("train=0.8,test=0.2")
    test = splits.scenes_of_split(ids, "test", fractions)
    assert test == [s for s in ids if is_test_scene(s)]
    assert 30 < len(test) < 90  # a fifth of 300, give or take the hash
    assert splits.scenes_of_split(ids, "all", fractions) == ids
    three = splits.parse_fractions("train=0.8,validation=0.1,test=0.1")
    parts = {n: set(splits.scenes_of_split(ids, n, three)) for n in ("train", "validation", "test")}
    assert sum(map(len, parts.values())) == len(ids) and set().union(*parts.values()) == set(ids)


def test_default_splits_are_those_of_build_data():
    parser = cli.build_parser()
    (sub,) = [a for a in parser._actions if a.dest == "command"]
    build_data = sub.choices["build-data"]
    (flag,) = [a for a in build_data._actions if a.dest == "splits"]
    assert flag.default == splits.DEFAULT_SPLITS


def test_priority_depends_on_seed_and_item():
    a = build.item_priority(0, "procedural/proc_000008/view_00/0")
    assert a == build.item_priority(0, "procedural/proc_000008/view_00/0")
    assert a != build.item_priority(1, "procedural/proc_000008/view_00/0")
    assert a != build.item_priority(0, "procedural/proc_000008/view_00/0@ref/raw")


# ------------------------------------------------------------------------------ bad input


def test_out_that_is_a_file(tmp_path, capsys):
    target = tmp_path / "bench.txt"
    target.write_text("x")
    code, err = run(capsys, "bench", "build", "--out", target, "--per-cell", "2")
    assert code == 1
    assert str(target) in one_line(err) and "is a file" in err


@pytest.mark.parametrize("value", ["0", "-3"])
def test_per_cell_below_one(tmp_path, capsys, value):
    code, err = run(capsys, "bench", "build", "--out", tmp_path / "b", "--per-cell", value)
    assert code == 2
    assert "--per-cell must be at least 1" in one_line(err)


def test_split_the_fractions_do_not_name(tmp_path, capsys):
    code, err = run(capsys, "bench", "build", "--out", tmp_path / "b", "--split", "validation")
    assert code == 2
    assert "--split 'validation'" in one_line(err)
    code, err = run(capsys, "generate", "--out", tmp_path / "g", "--split", "validation")
    assert code == 2 and "--splits" in one_line(err)


def test_bad_splits_fractions(tmp_path, capsys):
    code, err = run(capsys, "bench", "build", "--out", tmp_path / "b", "--splits", "train=x")
    assert code == 2 and "train=x" in one_line(err)


def test_review_of_a_folder_that_does_not_exist(tmp_path, capsys):
    missing = tmp_path / "nothing"
    code, err = run(capsys, "bench", "review", missing, "--no-browser")
    assert code == 1
    assert f"{missing} does not exist" in one_line(err)


def test_review_of_a_folder_without_bench(tmp_path, capsys):
    code, err = run(capsys, "bench", "review", tmp_path, "--no-browser")
    assert code == 1 and "has no bench.jsonl" in one_line(err)


def _tiny_bench(folder: pathlib.Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    item = {"id": "a/1", "images": [], "question": "q?", "answer": "yes", "canonical": "yes",
            "choices": [], "task": "position", "relation": "left_of", "format": "caption/raw",
            "answer_type": "yes_no", "source": "s", "scene": "a", "meta": {}}  # fmt: skip
    (folder / "bench.jsonl").write_text(json.dumps(item) + "\n")


@pytest.mark.parametrize(
    "content, names",
    [
        ("{not json", "not JSON"),
        ('{"version": 1, "verdicts": []}', "expected"),
        ('{"version": 2, "verdicts": {}}', "version 2"),
        ('{"version": 1, "verdicts": {"a/1": {"verdict": "maybe"}}}', "'maybe'"),
    ],
)
def test_corrupt_verdicts_file(tmp_path, capsys, content, names):
    folder = tmp_path / "b"
    _tiny_bench(folder)
    (folder / "verdicts.json").write_text(content)
    path = folder / "verdicts.json"
    with pytest.raises(verdicts.UserError, match=names) as error:
        verdicts.load_verdicts(folder)
    assert str(path) in str(error.value)
    for argv in (("bench", "review", folder, "--no-browser"),
                 ("bench", "build", "--out", folder, "--verified-only")):  # fmt: skip
        code, err = run(capsys, *argv)
        assert code == 1 and str(path) in one_line(err) and names in err


def test_verified_only_needs_verdicts_and_no_build_flags(tmp_path, capsys):
    folder = tmp_path / "b"
    _tiny_bench(folder)
    code, err = run(capsys, "bench", "build", "--out", folder, "--verified-only")
    assert code == 1 and "verdicts.json" in one_line(err)
    code, err = run(capsys, "bench", "build", "--out", folder, "--verified-only", "--seed", "3")
    assert code == 2 and "--seed" in one_line(err)


def test_out_holding_images_but_no_benchmark(tmp_path, capsys):
    folder = tmp_path / "b"
    (folder / "images").mkdir(parents=True)
    code, err = run(capsys, "bench", "build", "--out", folder, "--per-cell", "2")
    assert code == 1 and "not a benchmark folder" in one_line(err)
    assert (folder / "images").is_dir()
    shutil.rmtree(folder)
