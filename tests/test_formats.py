"""Instruction formats: suitability, re-rendered text, box coordinates, sampling, export."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_templates import make_obs, make_row

from jax_spatial import masks as mask_lib
from jax_spatial.formats import FORMATS, spec
from jax_spatial.formats.expand import expand_formats, parse_select, suitable_formats
from jax_spatial.qa.phrase import phrase_frame
from jax_spatial.qa.select import KIND_MULTIPLE_CHOICE, KIND_YES_NO
from jax_spatial.relations.types import FAMILIES
from jax_spatial.writers.jsonl import box_to_1000, chat_record

LR = FAMILIES.index("left_right")
BIG = FAMILIES.index("bigger_smaller")
FB = FAMILIES.index("front_behind")
BOXES = np.array(
    [[40, 60, 200, 300], [330, 50, 600, 260], [250, 300, 420, 470], [20, 320, 140, 460]], float
)


def _obs(with_masks=True, boxes=BOXES):
    obs = make_obs(["chair", "table", "clothes", "chair"], captions=["red chair", None, None, None])
    obs.captions[3] = "small chair"
    obs.box2d = boxes.copy()
    if with_masks:
        specs = []
        for x1, y1, x2, y2 in boxes.astype(int):
            m = np.zeros((obs.height, obs.width), bool)
            m[y1:y2, x1:x2] = True
            specs.append(mask_lib.encode_rle(m))
        obs.masks = specs
    return obs


def _records(obs, seed=0):
    row = make_row(
        pairs=[
            (0, 1, LR, 0, KIND_YES_NO, 1),
            (2, 1, FB, 1, KIND_YES_NO, 0),
            (0, 2, BIG, 0, KIND_MULTIPLE_CHOICE, 1),
        ],
        exists=[(1, 0, 0, LR, 1, 1), (2, 0, 3, LR, 0, 0)],
        counts=[(0, 0, 2)],
        key=(seed, 11),
    )
    return phrase_frame(obs, row)


def _tags_balanced(text):
    for tag in ("ref", "box"):
        assert text.count(f"<{tag}>") == text.count(f"</{tag}>"), text


def test_every_qa_expands_to_exactly_its_suitable_formats_and_19_when_all_are():
    obs = _obs()
    records = _records(obs)
    assert [r.task for r in records] == ["position"] * 2 + ["size", "existence", "existence"] + [
        "counting"
    ]
    for qa in records:
        suitable = suitable_formats(obs, qa)
        got = [f.format_id for f in expand_formats(obs, qa, "all", qa_id="x")]
        assert got == list(suitable)
        if qa.task == "counting":
            assert got == ["caption/raw"]
        else:
            assert len(got) == 19 and set(got) == set(FORMATS)


def test_formats_drop_where_they_cannot_be_answered():
    records = _records(_obs())
    no_masks = _obs(with_masks=False)
    for qa in records[:-1]:
        got = suitable_formats(no_masks, qa)
        assert len(got) == 14 and not any(f.endswith("/masks") for f in got)
    # A box too small to draw or to carry a mark: neither boxes nor marks for its questions.
    tiny = BOXES.copy()
    tiny[0] = [40, 60, 47, 300]
    small = _obs(boxes=tiny)
    got = suitable_formats(small, records[0])  # mentions object 0
    assert not any(f.endswith(("/boxes", "/marks")) for f in got)
    assert "image_text/masks" in got
    assert len(suitable_formats(small, records[1])) == 19  # does not mention object 0
    # A phrase another object shares is no caption reference; pointing by box still works,
    # also with the phrase beside the box (`<ref>the red chair</ref><box>...`: the box says
    # which red chair).
    dup = _obs()
    dup.captions[3] = "red chair"
    got = suitable_formats(dup, records[0])
    assert {f.split("/")[0] for f in got} == {"ref_region_box", "ref_caption_box", "image_text"}
    # Words that single the object out (here, as if relative) make caption formats suitable.
    named = dup.with_referring(["the leftmost red chair", *dup.reference_phrases[1:]])
    assert "caption/raw" in suitable_formats(named, records[0])
    assert "ref/raw" not in suitable_formats(
        dup.with_referring([None, *dup.reference_phrases[1:]]), records[0]
    )
    # Never image text on the raw image.
    assert all(f != "image_text/raw" for f in FORMATS)


def test_text_is_rephrased_per_format_with_consistent_references():
    obs = _obs()
    for seed in range(6):
        for qa in _records(obs, seed):
            for fqa in expand_formats(obs, qa, "all", qa_id=f"q{seed}"):
                for text in (fqa.question, fqa.answer):
                    assert "{" not in text and "  " not in text, text
                    _tags_balanced(text)
                    assert text.endswith(("?", ".")) or qa.kind == "multiple_choice", text
                if qa.kind == "multiple_choice":
                    a, b = fqa.choices
                    assert fqa.question.endswith(f"? (A) {a} (B) {b}"), fqa.question
                # Answers name objects the way the question does.
                if fqa.text_ref in ("ref", "ref_caption_box", "ref_region_box"):
                    if qa.task != "counting":
                        assert "<ref>" in fqa.question and "<ref>" in fqa.answer, fqa
                if fqa.text_ref == "image_text":
                    for p in fqa.prompts:
                        word = {
                            "box": f"the {p.colour} box",
                            "mask": f"the {p.colour} mask",
                            "mark": f"egion {p.label}",
                        }[p.kind]
                        assert word in fqa.question, fqa
                    assert "<" not in fqa.question and "the red chair" not in fqa.question
                if fqa.text_ref == "ref_region_box" and qa.task != "existence":
                    assert "chair" not in fqa.question.split("?")[0].replace("another chair", "")
                assert fqa.prompts == () if fqa.image_prompt == "raw" else len(fqa.prompts) > 0
                kinds = {p.kind for p in fqa.prompts}
                assert kinds <= {spec.KIND_OF_IMAGE.get(fqa.image_prompt)}


def test_capitalisation_and_agreement():
    obs = _obs()
    seen = set()
    for seed in range(40):
        for qa in _records(obs, seed):
            if qa.task != "position" or 2 not in qa.objects[:1]:
                continue
            by = {f.format_id: f for f in expand_formats(obs, qa, "all", qa_id=str(seed))}
            # "the clothes" is plural; "the object in the red box" and "region 3" are not.
            tagged = by["ref_caption_box/raw"].answer
            assert re.search(r"\bthe clothes</ref><box>\[\[[\d, ]+\]\]</box> are\b", tagged), tagged
            assert " is " in by["image_text/boxes"].answer
            assert " is " in by["image_text/marks"].answer
            for f in by.values():
                first = f.answer.split(". ", 1)[-1] if f.answer.startswith(("Yes.", "No.")) else ""
                if first.startswith("<ref>"):
                    assert first[5].islower(), first  # tag content is never capitalised
                    seen.add("tag")
                elif first:
                    assert first[0].isupper(), first
                    seen.add("plain")
    assert seen == {"tag", "plain"}


def test_no_format_leaks_the_answer():
    obs = _obs()
    for seed in range(20):
        for qa in _records(obs, seed):
            if qa.task == "counting":
                continue
            for fqa in expand_formats(obs, qa, "all", qa_id=str(seed)):
                q = fqa.question
                assert not re.search(r"\b(yes|no)\b", q, re.IGNORECASE), q
                if qa.kind == "yes_no" and qa.canonical == "no":
                    # The relation that holds is said only in the answer. (A "yes" question
                    # states the proposition it asks about; the opposite question reads the
                    # same, so that is no leak.)
                    statement = re.sub(r"^(Yes|No)[,.] ", "", fqa.answer)
                    assert statement.lower().rstrip(".") not in q.lower(), fqa
                    assert qa.slots["true_pred"] not in q, fqa
                elif qa.kind == "multiple_choice":
                    assert f"({qa.canonical})" not in q.split("?")[0], fqa
                    assert qa.slots["cmp"] in q
                # Box coordinates are the only geometry in the question: no other numbers.
                rest = re.sub(r"<box>\[\[\d+, \d+, \d+, \d+\]\]</box>", "", q)
                rest = re.sub(r"\bregion \d\b", "", rest)
                assert not re.search(r"\d", rest), q
                if fqa.text_ref in ("ref_region_box", "ref_caption_box"):
                    for o in qa.objects:
                        coords = box_to_1000(obs.box2d[o], obs.width, obs.height)
                        assert f"[[{', '.join(map(str, coords))}]]" in q


def test_sampling_is_deterministic_uniform_subset():
    obs = _obs()
    qa = _records(obs)[0]
    all_ = [f.format_id for f in expand_formats(obs, qa, "all", qa_id="a")]
    counts = dict.fromkeys(all_, 0)
    for k in range(400):
        got = expand_formats(obs, qa, 2, seed=5, qa_id=f"id{k}")
        ids = [f.format_id for f in got]
        assert len(ids) == 2 and set(ids) <= set(all_) and ids == sorted(ids, key=all_.index)
        assert got == expand_formats(obs, qa, 2, seed=5, qa_id=f"id{k}")
        for i in ids:
            counts[i] += 1
    # 800 draws over 19 formats: ~42 each; uniform within a loose band.
    assert min(counts.values()) > 20 and max(counts.values()) < 70, counts
    assert expand_formats(obs, qa, 50, qa_id="a") == expand_formats(obs, qa, "all", qa_id="a")
    only = expand_formats(obs, qa, ("ref/raw", "image_text/marks"), qa_id="a")
    assert [f.format_id for f in only] == ["ref/raw", "image_text/marks"]
    assert parse_select("3") == 3 and parse_select("all") == "all"
    with pytest.raises(ValueError):
        parse_select("caption/nothing")


def test_colours_distinct_and_never_red_with_green():
    obs = _obs()
    qa = _records(obs)[0]
    for k in range(100):
        (boxes,) = expand_formats(obs, qa, ("image_text/boxes",), qa_id=str(k))
        colours = [p.colour for p in boxes.prompts]
        assert len(set(colours)) == 2 and set(colours) != {"red", "green"}


def test_chat_record_carries_format_and_prompts():
    obs = _obs()
    qa = _records(obs)[0]
    fqa = expand_formats(obs, qa, ("image_text/marks",), qa_id="t")[0]
    rec = chat_record(obs, qa, 0, None, fqa=fqa, image="images/x__marks.jpg")
    assert rec["meta"]["format"] == "image_text/marks" and rec["image"] == "images/x__marks.jpg"
    assert rec["id"].endswith("@image_text/marks") and rec["meta"]["qa_id"] == "test/scene/0/0"
    assert [p["object"] for p in rec["meta"]["prompts"]] == [0, 1]
    assert rec["meta"]["objects"][0]["box"] == [40.0, 60.0, 200.0, 300.0]
    assert fqa.question in rec["conversations"][0]["value"]
    json.dumps(rec)
    plain = chat_record(obs, qa, 0, None)
    assert plain["id"] == "test/scene/0/0" and plain["meta"]["format"] == "caption/raw"


def test_prompt_contract():
    assert len(FORMATS) == 19 and FORMATS[0] == "caption/raw"
    assert {f.split("/")[0] for f in FORMATS} == set(spec.TEXT_REFS)
    with pytest.raises(ValueError):
        spec.Prompt(0, "mark", "red")  # a mark needs its label
    with pytest.raises(ValueError):
        spec.Prompt(0, "box", "mauve")
    p = spec.Prompt(1, "mark", "blue", 3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.colour = "red"
    assert p.as_dict() == {"object": 1, "kind": "mark", "colour": "blue", "label": 3}


# ------------------------------------------------------------------------------------------
# InternVL 0..1000 boxes.


@settings(max_examples=200, deadline=None)
@given(
    size=st.integers(1, 4000),
    frac=st.lists(st.floats(0.0, 1.0), min_size=4, max_size=4),
)
def test_box_1000_round_trip_within_one_unit(size, frac):
    width, height = size, max(1, size // 2 + 1)
    box = np.array([frac[0] * width, frac[1] * height, frac[2] * width, frac[3] * height])
    b = np.array(box_to_1000(box, width, height))
    assert np.all((b >= 0) & (b <= 1000)) and b.dtype.kind == "i"
    back = b / 1000.0 * np.array([width, height, width, height])
    unit = np.array([width, height, width, height]) / 1000.0
    assert np.all(np.abs(back - box) <= unit * 0.5 + 1e-9)


@settings(max_examples=100, deadline=None)
@given(
    width=st.integers(1, 3000),
    height=st.integers(1, 3000),
    over=st.floats(0.0, 1e4),
)
def test_box_1000_clips_at_the_edges(width, height, over):
    b = box_to_1000([-over - 1e-6, -over, width + over, height + over + 1e-6], width, height)
    assert b == [0, 0, 1000, 1000]
    assert box_to_1000([0, 0, width, height], width, height) == [0, 0, 1000, 1000]


@settings(max_examples=200, deadline=None)
@given(
    width=st.integers(1, 4000),
    height=st.integers(1, 4000),
    box=st.lists(st.floats(-1e5, 1e5, allow_nan=False), min_size=4, max_size=4),
)
def test_box_1000_equals_the_numpy_formula(width, height, box):
    # The definition: round half to even of v / size * 1000, clipped to 0..1000.
    scale = np.array([width, height, width, height], np.float64)
    expected = np.clip(np.round(np.asarray(box, np.float64) / scale * 1000), 0, 1000)
    assert box_to_1000(box, width, height) == [int(v) for v in expected]


def test_box_1000_rejects_nan_and_clips_infinity():
    with pytest.raises(ValueError, match="NaN"):
        box_to_1000([np.nan, 0, 10, 10], 100, 100)
    assert box_to_1000([-np.inf, 0, np.inf, 50], 100, 100) == [0, 0, 1000, 500]


@settings(max_examples=60, deadline=None)
@given(subset=st.sets(st.sampled_from(FORMATS), min_size=1), seed=st.integers(0, 2**31 - 1))
def test_selecting_format_ids_equals_filtering_the_full_expansion(subset, seed):
    # Selecting ids checks only what those formats need and skips the Generator when no
    # prompt is drawn; neither may change a single format, text, colour or label.
    tiny = BOXES.copy()
    tiny[0] = [40, 60, 47, 300]
    for obs in (_obs(), _obs(with_masks=False), _obs(boxes=tiny)):
        for number, qa in enumerate(_records(obs, seed=seed % 7)):
            qa_id = f"s/scene/f/{number}"
            full = expand_formats(obs, qa, "all", seed, qa_id)
            picked = expand_formats(obs, qa, tuple(sorted(subset)), seed, qa_id)
            assert picked == [f for f in full if f.format_id in subset]
            order = tuple(f for f in FORMATS if f in subset)
            assert suitable_formats(obs, qa, candidates=order) == tuple(
                f for f in suitable_formats(obs, qa) if f in subset
            )


@pytest.mark.slow
def test_generate_writes_every_format_and_its_images(tmp_path):
    from jax_spatial import engine
    from jax_spatial.sources import get_source

    source = get_source("procedural", "", num_scenes=1, views_per_scene=1)
    config = engine.GenerateConfig(formats="all", write_images=True)
    summary = engine.generate(source, tmp_path, config)
    lines = [json.loads(x) for x in (tmp_path / "qa.jsonl").read_text().splitlines()]
    assert summary["lines"] == len(lines) > summary["qa_total"] > 0
    by_qa: dict[str, list[dict]] = {}
    for rec in lines:
        by_qa.setdefault(rec["meta"]["qa_id"], []).append(rec)
        assert (tmp_path / rec["image"]).is_file(), rec["image"]
        drawn = rec["meta"]["format"].split("/")[1] != "raw"
        assert rec["image"].endswith(f"__{rec['meta']['format'].split('/')[1]}.jpg") == drawn
        assert len(rec["meta"]["prompts"]) == (len(rec["meta"]["objects"]) if drawn else 0)
    assert len(by_qa) == summary["qa_total"]
    assert max(len(v) for v in by_qa.values()) == 19
    # The default writes each QA once, in its own words.
    plain = engine.generate(source, tmp_path / "plain", engine.GenerateConfig())
    assert plain["lines"] == plain["qa_total"] and plain["per_format"] == {
        "caption/raw": plain["qa_total"]
    }
