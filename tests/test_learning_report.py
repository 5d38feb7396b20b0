"""The learning benchmark's position table by naming and axis, on hand-made predictions."""

from __future__ import annotations

import importlib.util
import json
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]


def _learning():
    spec = importlib.util.spec_from_file_location("learning", REPO / "bench" / "learning.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(relation, format_id, right, task="position"):
    return {"task": task, "relation": relation, "format_id": format_id, "kind": "yes_no",
            "canonical": "yes", "target": "yes",
            "prediction": "yes" if right else "no"}  # fmt: skip


def test_axis_rows_split_words_from_coordinates_and_count_each_run(tmp_path):
    runs = {
        "trained": [_row("left_of", "caption/raw", True), _row("right_of", "ref/boxes", False),
                    _row("behind", "ref_region_box/raw", True),
                    _row("bigger_than", "caption/raw", True, task="size")],
        "blind": [_row("left_of", "caption/raw", False), _row("right_of", "ref/boxes", False),
                  _row("behind", "ref_region_box/raw", False),
                  _row("bigger_than", "caption/raw", False, task="size")],
    }  # fmt: skip
    for name, rows in runs.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "eval_predictions.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in rows)
        )
    lines = _learning().axis_rows(tmp_path, ["trained", "blind", "caption_raw"])
    assert lines[0] == "| objects named by | axis | trained | blind | n |"
    assert "| coordinates | front/behind | 100.0 | 0.0 | 1 |" in lines
    assert "| words | left/right | 50.0 | 0.0 | 2 |" in lines
    assert len(lines) == 4  # size questions and the run without predictions are left out
    assert _learning().axis_rows(tmp_path, ["caption_raw"]) == []
