"""Multi-view tasks: every written answer re-derived from `ground_truth_clips.jsonl` alone.

The run: three procedural walks (8 frames, 160 x 120) and two rotation pairs, seed 4, which
between them ask every task (checked). The re-derivations read only the written ground truth
and the question records, in plain numpy: closest-point distances by bounded least squares
(`reference.reference_box_distance`), sides from box corners, direction angles and sectors
from the centres (`reference.direction_classes`), first appearances from the frames'
visibility lists, room areas by a shoelace written here, routes by `route.replay` on the
written footprints, rotations from the written camera poses. None of it calls
`relations.py`.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import json
import math
import re

import numpy as np
import pytest

from jax_spatial import cli
from jax_spatial.multiview import generate as G
from jax_spatial.multiview import route as route_lib
from jax_spatial.multiview import tasks as tasks_lib
from jax_spatial.multiview import templates as MT
from jax_spatial.multiview.qa_types import MULTI_VIEW_TASKS
from jax_spatial.multiview.reference import (
    direction_classes,
    footprint_radius,
    longest_side,
    reference_box_distance,
)
from jax_spatial.qa import templates as T
from jax_spatial.sources import get_source
from jax_spatial.writers import clip_jsonl
from jax_spatial.writers.ground_truth_clips import read_ground_truth_clips

SEED = 4
# Float32 relations against the float64 references: angles agree to 1e-3 degrees (the
# relations' own test tolerance), so a triple may sit that far inside its margin.
ANGLE_TOL_DEG = 1e-3
# Box distances: float32 within 1 mm of the float64 least-squares solve.
DISTANCE_TOL_M = 1e-3


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("clips")
    sources = [
        (get_source("procedural_clips", None, num_scenes=3, seed=SEED, num_frames=8), None),
        (get_source("rotation_pairs", None, num_pairs=2, seed=SEED), None),
    ]
    config = G.ClipRunConfig(seed=SEED)
    skipped: list = []
    clips, _ = G.load_clip_set(sources, config, skipped)
    summary = G.generate_clips(None, out, config, clips=clips)
    records = G.read_records(out / G.QA_FILE)
    truth = {t.clip_id: t for t in read_ground_truth_clips(out)}
    return {"out": out, "clips": clips, "summary": summary, "records": records, "truth": truth}


# -- independent re-derivations -----------------------------------------------------------------


def _box(gt, p):
    return gt.centre[p], gt.extent[p], gt.rotation[p]


def _letter(record) -> int:
    return "ABCDEFGH".index(record["meta"]["canonical"])


def _seen(gt) -> np.ndarray:
    return gt.visible.any(axis=0)


def _shoelace(polygon) -> float:
    x, y = np.asarray(polygon, float).T
    return 0.5 * abs(float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)))


def _first_times(gt) -> dict[str, float]:
    first: dict[str, float] = {}
    for t in np.argsort(gt.time, kind="stable"):
        for p in np.flatnonzero(gt.visible[t]):
            first.setdefault(gt.category[p], float(gt.time[t]))
    return first


def _yaw(world_from_cam) -> float:
    forward = np.asarray(world_from_cam)[:3, 2]
    return math.degrees(math.atan2(forward[1], forward[0]))


def derive(record, gt) -> bool:
    """Whether the record's canonical answer is what the ground truth says (and its filters
    hold). Raises AssertionError with the reason otherwise."""
    meta, details = record["meta"], record["meta"]["qa_meta"]
    task, pos = meta["task"], [o["position"] for o in meta["objects"]]
    if task == "mv_counting":
        members = [p for p, c in enumerate(gt.category) if c == details["category"]]
        seen = _seen(gt)
        assert all(seen[p] for p in members), "a member is unseen: not the room's count"
        assert len(members) >= 2 and meta["canonical"] == str(len(members))
    elif task == "abs_distance":
        d = reference_box_distance(*_box(gt, pos[0]), *_box(gt, pos[1]))
        assert d >= 0.2 and f"{d:.1f}" == meta["canonical"], (d, meta["canonical"])
        assert abs(d - meta["value"]) < DISTANCE_TOL_M and meta["unit"] == "m"
    elif task == "object_size":
        cm = 100.0 * longest_side(*_box(gt, pos[0]))
        assert str(math.floor(cm + 0.5)) == meta["canonical"] and meta["unit"] == "cm"
    elif task == "room_size":
        assert f"{_shoelace(gt.room_polygon):.1f}" == meta["canonical"]
        assert meta["relation"] == "polygon" and meta["unit"] == "m2"
    elif task == "rel_distance":
        target, cands = pos[0], pos[1:]
        d = [reference_box_distance(*_box(gt, target), *_box(gt, c)) for c in cands]
        order = np.argsort(d)
        d1, d2 = d[order[0]], d[order[1]]
        assert order[0] == _letter(record), d
        assert d2 - d1 > max(0.15, 0.1 * d2) - DISTANCE_TOL_M, d
    elif task == "rel_direction":
        s, f, q = (gt.centre[p][:2] for p in pos)
        a, v = f - s, q - s
        angle = math.degrees(math.atan2(a[0] * v[1] - a[1] * v[0], a @ v))
        cls, gap = direction_classes(angle, 135.0)[meta["relation"]]
        word = MT.DIRECTION_OPTIONS[meta["relation"]][cls]
        assert meta["choices"][_letter(record)] == word, (angle, meta["choices"])
        dist_q = float(np.linalg.norm(v))
        margin = 10.0 + math.degrees(
            math.asin(min(1.0, footprint_radius(*_box(gt, pos[2])) / dist_q))
        )
        assert gap >= margin - ANGLE_TOL_DEG and min(np.linalg.norm(a), dist_q) >= 0.5
    elif task == "appearance_order":
        first = _first_times(gt)
        order = sorted(details["order"], key=lambda c: first[c])
        assert meta["choices"][_letter(record)] == ", ".join(order)
        assert all(first[b] - first[a] > 1.0 for a, b in itertools.pairwise(order))
    elif task == "route":
        scene = route_lib.RouteScene.from_footprints(gt.room_polygon, gt.footprints)
        steps = [route_lib.Instruction(i["action"], i["landmark"]) for i in details["instructions"]]
        blanks = [k for k, s in enumerate(steps) if s.action != route_lib.FORWARD]
        a, b, c = details["start"], details["facing"], details["goal"]
        question = record["conversations"][0]["value"]
        numbered = re.findall(r"(\d+)\. \[please fill in\]", question)
        assert [int(n) - 1 for n in numbered] == blanks and blanks
        for k, option in enumerate(meta["choices"]):
            turns = [t.strip().replace(" ", "_").lower() for t in option.split(",")]
            filled = list(steps)
            for blank, turn in zip(blanks, turns, strict=True):
                filled[blank] = route_lib.Instruction(turn)
            ok = route_lib.replay(scene, a, b, c, filled).success
            assert ok == (k == _letter(record)), (k, option, ok)
    elif task == "rotation":
        rot = gt.rotation_pair
        assert not rot["symmetry"]["ambiguous"]
        camera_turn = _yaw(gt.world_from_cam[1]) - _yaw(gt.world_from_cam[0])
        # In the object's world an object turn shows as the camera turning the other way.
        turn = camera_turn if rot["kind"] == "camera" else -camera_turn
        assert meta["relation"].startswith("camera") == (rot["kind"] == "camera")
        clockwise = details["direction"] == "clockwise"
        value = round((-turn if clockwise else turn) % 360.0) % 360
        assert value == meta["value"] and meta["unit"] == "deg"
        if meta["kind"] == "number":
            assert meta["canonical"] == str(value)
        else:
            bin_deg = (45 * round(value / 45)) % 360
            assert meta["choices"][_letter(record)] == f"about {bin_deg} degrees"
            others = [int(re.search(r"\d+", c).group()) for c in meta["choices"]]
            gaps = [min(abs(o - value) % 360, 360 - abs(o - value) % 360) for o in others]
            assert sorted(gaps)[1] >= 67.5 and min(gaps) <= 22.5, gaps
        words = question_words(record)
        assert details["direction"] in words or (not clockwise and "counterclockwise" in words)
    else:
        raise AssertionError(f"unknown task {task}")
    return True


def question_words(record) -> str:
    return record["conversations"][0]["value"].rsplit("\n", 1)[-1]


# -- the tests ----------------------------------------------------------------------------------


def test_every_task_asked(run):
    tasks = collections.Counter(r["meta"]["task"] for r in run["records"])
    assert set(tasks) == set(MULTI_VIEW_TASKS), tasks
    kinds = {r["meta"]["qa_meta"]["rotation_kind"] for r in run["records"]
             if r["meta"]["task"] == "rotation"}  # fmt: skip
    assert kinds == {"object", "camera"}
    levels = {r["meta"]["relation"] for r in run["records"] if r["meta"]["task"] == "rel_direction"}
    assert levels == {"easy", "medium", "hard"}


def test_every_answer_rederived_from_ground_truth(run):
    checked = collections.Counter()
    for record in run["records"]:
        gt = run["truth"][record["meta"]["clip_id"]]
        assert derive(record, gt), record
        checked[record["meta"]["task"]] += 1
    assert sum(checked.values()) == len(run["records"]) > 40, checked


def _corrupted(record) -> dict:
    """The record with a wrong answer: the next letter, or the number one printed unit off."""
    bad = json.loads(json.dumps(record))
    meta = bad["meta"]
    if meta["kind"] == "multiple_choice":
        meta["canonical"] = "ABCDEFGH"[(_letter(record) + 1) % len(meta["choices"])]
    elif meta["task"] in ("abs_distance", "room_size"):
        meta["canonical"] = f"{float(meta['canonical']) + 0.1:.1f}"
    else:
        meta["canonical"] = str(int(meta["canonical"]) + 1)
        meta["value"] = (meta["value"] or 0) + 1
    return bad


def test_the_rederivation_rejects_wrong_answers(run):
    for record in run["records"]:
        gt = run["truth"][record["meta"]["clip_id"]]
        with pytest.raises(AssertionError):
            derive(_corrupted(record), gt)


def test_room_size_is_the_polygon_area_to_the_printed_decimal(run):
    rooms = [r for r in run["records"] if r["meta"]["task"] == "room_size"]
    assert len(rooms) == 3
    for record in rooms:
        gt = run["truth"][record["meta"]["clip_id"]]
        assert record["meta"]["canonical"] == f"{_shoelace(gt.room_polygon):.1f}"
        assert abs(record["meta"]["value"] - _shoelace(gt.room_polygon)) < 1e-4
        assert record["meta"]["canonical"] in record["conversations"][1]["value"]


def test_route_distractors_all_fail_and_answer_replays(run):
    routes = [r for r in run["records"] if r["meta"]["task"] == "route"]
    assert routes
    for record in routes:
        assert len(record["meta"]["choices"]) in (3, 4)
        assert len(set(record["meta"]["choices"])) == len(record["meta"]["choices"])
        derive(record, run["truth"][record["meta"]["clip_id"]])


def test_no_symmetric_object_is_asked(run):
    pairs = [c for c in run["clips"] if "rotation" in c.meta]
    assert pairs
    for clip in pairs:
        assert not clip.meta["rotation"]["symmetry"]["ambiguous"]
    clip = pairs[0]
    symmetric = dataclasses.replace(
        clip, meta={**clip.meta, "rotation": {**clip.meta["rotation"],
                                              "symmetry": {"ambiguous": True}}}
    )  # fmt: skip
    with pytest.raises(ValueError, match="symmetric"):
        tasks_lib.clip_questions([symmetric], ("rotation",))


def test_letters_are_balanced(run):
    by_group = collections.defaultdict(collections.Counter)
    for r in run["records"]:
        if r["meta"]["kind"] == "multiple_choice":
            n = len(r["meta"]["choices"])
            by_group[(r["meta"]["task"], r["meta"]["relation"], n)][r["meta"]["canonical"]] += 1
    assert by_group
    for (task, relation, n), counts in by_group.items():
        full = [counts.get(L, 0) for L in "ABCDEFGH"[:n]]
        # Dealt in turn from a seeded start: no letter is ahead by more than one.
        assert max(full) - min(full) <= 1, (task, relation, counts)


def test_letter_dealer_and_class_balancer():
    dealer = tasks_lib.LetterDealer(seed=3)
    letters = collections.Counter(dealer.deal("x", 4) for _ in range(100))
    assert letters == {0: 25, 1: 25, 2: 25, 3: 25}
    balancer, rng = tasks_lib.ClassBalancer(), np.random.default_rng(0)
    picks = collections.Counter(balancer.pick("g", [0, 1, 2], rng) for _ in range(30))
    assert picks == {0: 10, 1: 10, 2: 10}
    # A class offered rarely is taken whenever offered, until it catches up.
    assert balancer.pick("g", [2], rng) == 2
    assert balancer.pick("g", [0, 1, 2], rng) in (0, 1)


_BAD_ARTICLE = re.compile(r"\b[Aa] [aeiouAEIOU]|\b[Aa]n [b-df-hj-np-tv-zB-DF-HJ-NP-TV-Z]")


def _check_text(text: str, question: bool) -> None:
    assert "  " not in text and text == text.strip(), text
    assert "{" not in text and "}" not in text, text
    assert not _BAD_ARTICLE.search(text), text
    assert not re.search(r"\bthe the\b", text, re.I), text
    if question:
        stem = text.split(" (A) ")[0]
        assert stem.endswith("?"), text
        assert stem[0].isupper(), text
    else:
        assert text.endswith("."), text


def test_generated_text_is_grammatical(run):
    for r in run["records"]:
        _check_text(question_words(r), question=True)
        _check_text(r["conversations"][1]["value"], question=False)


def test_every_template_renders_grammatically():
    slots = {
        "a": "the apple", "b": "the red chair", "t": "the umbrella", "winner": "the orange box",
        "s": "the sofa", "f": "the tv", "q": "the lamp", "c": "the shelf",
        "cats": "chairs", "count": "three chairs", "be_n": "are", "value": "2.3",
        "where": "to my left", "listed": MT.listing(["apple", "box", "umbrella"]),
        "order": MT.order_text(["apple", "box", "umbrella", "clothes"]),
        "steps": f"1. Go forward until the table. 2. {MT.BLANK} 3. Go forward until the shelf.",
        "turns": MT.turns_text(["turn_left", "turn_back"]), "direction": "anticlockwise",
        "letter": "B",
    }  # fmt: skip
    groups = [g for g in T.groups() if g.startswith(MT.PREFIX + "/")]
    questions = [g for g in groups if "/answer/" not in g]
    assert len(questions) == 14
    for group in groups:
        phrasings = T.templates(group)
        assert len(phrasings) >= (3 if group in questions else 2), group
        assert len({t.text for t in phrasings}) == len(phrasings)
        for template in phrasings:
            _check_text(template.render(**slots), question=group in questions)
    assert MT.order_text(["apple", "clothes"]) == "first an apple and last some clothes"


def test_jsonl_layout_frames_and_sheet(run):
    out = run["out"]
    for r in run["records"]:
        human = r["conversations"][0]["value"]
        assert human.count("<image>") == len(r["image"]) == len(r["meta"]["frames"])
        assert human.startswith("Frame-1: <image>\n")
        assert len(r["width_list"]) == len(r["image"])
        for path in r["image"]:
            assert (out / path).is_file() and path.startswith("frames/")
        for key in ("task", "relation", "kind", "canonical", "value", "unit", "clip_id", "frames"):
            assert key in r["meta"]
        if r["meta"]["task"] == "rotation":
            assert len(r["image"]) == 2
    assert len({r["id"] for r in run["records"]}) == len(run["records"])
    for clip in run["clips"]:
        folder = out / "frames" / clip_jsonl.clip_folder(clip.clip_id)
        assert len(list(folder.glob("*.png"))) == clip.num_frames
        assert (folder / "clip.gif").is_file()
    sheet = out / G.SHEET_FILE
    assert sheet.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / G.SUMMARY_FILE).read_text())
    assert summary["qa_total"] == len(run["records"])
    assert summary["clips"]["done"] == len(run["clips"]) == 5


def test_questions_pass_the_storage_checks(run):
    """Every question meets the record contract the TFDS and JSONL writers check."""
    from jax_spatial.datasets.clip_examples import clip_qa_problems

    questions = tasks_lib.clip_questions(run["clips"], seed=SEED)
    assert sum(map(len, questions)) == len(run["records"])
    for clip, qas in zip(run["clips"], questions, strict=True):
        for qa in qas:
            assert clip_qa_problems(clip, qa) == [], qa


def test_questions_do_not_depend_on_batching(run):
    clips = run["clips"]
    a = tasks_lib.clip_questions(clips, seed=SEED)
    b = tasks_lib.clip_questions(clips, config=tasks_lib.TaskConfig(batch_size=2), seed=SEED)
    assert a == b
    c = tasks_lib.clip_questions(clips, seed=SEED + 1)
    assert a != c


def test_category_naming_names_only_unique_categories(run):
    for clip in run["clips"]:
        if "rotation" in clip.meta:
            continue
        facts = tasks_lib.clip_facts([clip], tasks_lib.TaskConfig(naming="category"))[0]
        cats = [o.category for o in clip.objects]
        for k, name in enumerate(facts.names):
            unique = cats.count(cats[k]) == 1 and facts.seen[k]
            assert (name is not None) == unique
            assert name is None or name == f"the {cats[k]}"


@pytest.mark.parametrize(
    "text, source, single, multi",
    [
        (None, "procedural", G.SINGLE_VIEW_TASKS, MULTI_VIEW_TASKS),
        (None, "procedural_clips", (), MULTI_VIEW_TASKS),
        (None, "kitti", G.SINGLE_VIEW_TASKS, ()),
        ("multi_view", "procedural", (), MULTI_VIEW_TASKS),
        ("single_view", "procedural_clips", G.SINGLE_VIEW_TASKS, ()),
        ("all", "scannet", G.SINGLE_VIEW_TASKS, MULTI_VIEW_TASKS),
        ("route, position,route", "procedural", ("position",), ("route",)),
    ],
)
def test_parse_tasks(text, source, single, multi):
    assert G.parse_tasks(text, source) == G.TaskPlan(tuple(single), tuple(multi))


@pytest.mark.parametrize("value", ["bogus", "multi-view", ",", "route,nope"])
def test_bad_tasks_is_a_one_line_usage_error(capsys, tmp_path, value):
    code = cli.main(["generate", "--tasks", value, "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "--tasks" in err and "known:" in err
    assert not (tmp_path / "o").exists()


def test_cli_tasks_selects_families(tmp_path, capsys):
    out = tmp_path / "o"
    code = cli.main(
        ["generate", "--source", "procedural_clips", "--set", "num_scenes=1", "--set",
         "num_frames=8", "--seed", str(SEED), "--tasks", "room_size,rotation,mv_counting",
         "--rotation-pairs", "1", "--out", str(out), "--quiet", "--no-sheet"]
    )  # fmt: skip
    assert code == 0
    records = G.read_records(out / G.QA_FILE)
    assert {r["meta"]["task"] for r in records} == {"room_size", "rotation", "mv_counting"}
    assert not (out / "qa.jsonl").exists()  # no single-view run
    assert not (out / G.SHEET_FILE).exists()
    truth = read_ground_truth_clips(out)
    assert [t.source for t in truth] == ["procedural_clips", "rotation_pairs"]
    assert "multi-view QA" in capsys.readouterr().out


def test_companion_clips_follow_the_split(tmp_path, capsys):
    """The default's companion walks and pairs are split by the scene-id hash like its rooms:
    room_000000-2 and pair_000000 are all train, so a test-split run asks nothing of them
    (and is not an error: the single-view rooms decide whether a split is empty)."""
    out = tmp_path / "o"
    code = cli.main(
        ["generate", "--tasks", "multi_view", "--clips", "3", "--rotation-pairs", "1",
         "--split", "test", "--out", str(out), "--quiet", "--no-sheet"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert read_ground_truth_clips(out) == []
    assert json.loads((out / G.SUMMARY_FILE).read_text())["qa_total"] == 0
