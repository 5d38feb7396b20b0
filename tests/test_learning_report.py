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


def _probe_module():
    spec = importlib.util.spec_from_file_location("probe", REPO / "bench" / "grounding_probe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_grounding_probe_scores_looks_and_orderings_by_naming():
    """The probe's top-cell test against hand-placed boxes, its naming groups, and one pass
    of a fresh model over two hand-made questions: every measure counts the names and pairs
    it should (a random model's values are whatever they are; the counts are exact)."""
    import numpy as np
    from flax import nnx

    from jax_spatial.train import batch as batch_lib
    from jax_spatial.train import models
    from jax_spatial.train.tokenizer import WordTokenizer

    probe = _probe_module()
    scores = np.zeros(6 * 8)
    scores[2 * 8 + 5] = 1.0  # row 2, column 5 of a 6 x 8 grid
    assert probe.look_hit(scores, (5 / 8, 2 / 6, 6 / 8, 3 / 6), (6, 8))
    assert probe.look_hit(scores, (0.6, 0.3, 0.9, 0.9), (6, 8))  # overlaps the cell
    assert not probe.look_hit(scores, (0.0, 0.0, 5 / 8, 1.0), (6, 8))  # ends at its edge
    assert [probe.naming(f) for f in ("caption/raw", "ref_region_box/masks", "image_text/boxes")] \
        == ["words", "coordinates", "drawn"]  # fmt: skip

    question = "Is the red chair left of the table?"
    tok = WordTokenizer.train([question, "yes no"])
    model = models.build("tiny_vlm", vocab_size=tok.vocab_size, preset="test", rngs=nnx.Rngs(0))
    facts_a, facts_b = [0.5, 0, 0, 0, 0, 0], [-0.5, 0, 0, 0.01, 0, 0]  # volume: too close
    mentions = [(3, 16, (0.1, 0.1, 0.4, 0.6), facts_a), (29, 34, (0.5, 0.2, 0.9, 0.7), facts_b)]
    assert question[3:16] == "the red chair" and question[29:34] == "table"
    targets = batch_lib.ground_spans(tok, question, mentions, [1, -1, -1, 1, -1, -1], "left_of")
    tokens = batch_lib.encode(tok, question, "yes")
    image = np.zeros((32, 32, 3), np.uint8)
    rows = [(image, tokens, targets, {"task": "position", "format_id": f})
            for f in ("caption/raw", "image_text/boxes")]  # fmt: skip
    table = probe.probe(model, tok, rows)
    for key in (("position", "words"), ("position", "drawn")):
        cell = table[key]
        assert len(cell["look"]) == 2  # both names
        assert len(cell["facts/right"]) == 1 and "facts/volume" not in cell  # one clear pair
        assert len(cell["pair/right"]) == 1 and len(cell["pair/volume"]) == 1  # the given signs
