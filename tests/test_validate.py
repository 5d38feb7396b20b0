"""Record validation: each rule rejects what it should and passes the engine's own output."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from jax_spatial import validate
from jax_spatial.observe import FrameObservation
from jax_spatial.qa.types import QARecord


def _obs(n=3, width=100, height=80) -> FrameObservation:
    box = np.array([[10, 10, 30, 40], [40, 5, 70, 60], [75, 20, 99, 79]], np.float64)[:n]
    return FrameObservation(
        scene_id="s",
        frame_id="f",
        source="test",
        width=width,
        height=height,
        K=np.eye(3),
        view_from_cam=np.eye(4),
        image_path=None,
        image_bytes=b"\x89PNG\r\n\x1a\n",
        object_index=np.arange(n),
        categories=["chair", "table", "lamp"][:n],
        captions=[None] * n,
        centre=np.ones((n, 3)),
        extent=np.ones((n, 3)),
        rotation=np.tile(np.eye(3), (n, 1, 1)),
        box2d=box,
        box2d_source=["annotated"] * n,
        visibility=np.ones(n),
        exhaustive=True,
    )


def _qa(**kw) -> QARecord:
    base = dict(
        task="position",
        relation="left_of",
        kind="yes_no",
        question="Is the chair left of the table?",
        answer="Yes.",
        canonical="yes",
        objects=[0, 1],
    )
    base.update(kw)
    return QARecord(**base)


def test_valid_records_pass():
    obs = _obs()
    assert validate.check_frame(obs) == []
    assert validate.check_qa(obs, _qa()) == []
    mc = _qa(kind="multiple_choice", canonical="B", choices=["the chair", "the table"])
    assert validate.check_qa(obs, mc) == []
    count = _qa(task="counting", relation="count", kind="count", canonical="3", objects=[])
    assert validate.check_qa(obs, count) == []


@pytest.mark.parametrize(
    "change, rule",
    [
        (dict(canonical="maybe"), "yes_no_canonical"),
        (dict(question="  "), "question_empty"),
        (dict(answer=""), "answer_empty"),
        (dict(objects=[0, 3]), "object_ids_range"),
        (dict(objects=[1, 1]), "object_ids_repeat"),
        (dict(kind="essay"), "kind_unknown"),
        (dict(task="poetry"), "task_unknown"),
        (dict(kind="multiple_choice", canonical="C", choices=["a", "b"]), "choice_canonical"),
        (dict(kind="multiple_choice", canonical="A", choices=["a"]), "choices_count"),
        (dict(kind="count", canonical="-1", objects=[]), "count_canonical"),
        (dict(kind="count", canonical="2.5", objects=[]), "count_canonical"),
    ],
)
def test_bad_questions_are_caught(change, rule):
    problems = validate.check_qa(_obs(), _qa(**change))
    assert any(p.startswith(rule) for p in problems), problems


@pytest.mark.parametrize(
    "field, value, rule",
    [
        ("box2d", np.array([[10, 10, 30, 40], [40, 5, 70, 60], [75, 20, 130, 79]]), "box2d_range"),
        ("box2d", np.array([[30, 10, 10, 40], [40, 5, 70, 60], [75, 20, 99, 79]]), "box2d_range"),
        ("centre", np.full((3, 3), np.nan), "centre_finite"),
        ("extent", np.zeros((3, 3)), "extent_range"),
        ("visibility", np.array([1.0, 1.5, 0.2]), "visibility_range"),
        ("width", 0, "image_size"),
        ("K", np.full((3, 3), np.inf), "K_finite"),
    ],
)
def test_bad_frames_are_caught(field, value, rule):
    problems = validate.check_frame(dataclasses.replace(_obs(), **{field: value}))
    assert any(p.startswith(rule) for p in problems), problems


def test_box_tolerance_allows_one_pixel():
    obs = dataclasses.replace(_obs(), box2d=_obs().box2d + np.array([0, 0, 0, 0.9]))
    assert validate.check_frame(obs) == []


def test_filter_counts_and_drops():
    from jax_spatial.engine import FrameQA

    report = validate.ValidationReport()
    kept = validate.filter_frame_qa(FrameQA(_obs(), [_qa(), _qa(canonical="maybe")]), report)
    assert len(kept.qas) == 1
    bad = dataclasses.replace(_obs(), K=np.full((3, 3), np.nan))
    assert validate.filter_frame_qa(FrameQA(bad, [_qa()]), report) is None
    summary = report.as_dict()
    assert summary["frames_checked"] == 2 and summary["frames_rejected"] == 1
    assert summary["qa_checked"] == 3 and summary["qa_rejected"] == 2
    assert summary["reasons"] == {"K_finite": 1, "yes_no_canonical": 1}


def test_check_example_drops_bad_questions_only():
    from jax_spatial.datasets import examples

    obs = _obs()
    example = examples.frame_example(obs, [_qa(), _qa(objects=[0, 7])], obs.image_bytes)
    report = validate.ValidationReport()
    kept, ok = validate.check_example(example, report)
    assert ok and kept["qa"]["question"] == [example["qa"]["question"][0]]
    assert report.qa_rejected == 1 and report.reasons["object_ids_range"] == 1
    example["image"] = b""
    _, ok = validate.check_example(example, report)
    assert not ok and report.reasons["image_missing"] == 1
