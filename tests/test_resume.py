"""An interrupted generation run resumes from its finished shards: same final dataset."""

from __future__ import annotations

import json

import pytest
from test_truth import RandomRooms

from jax_spatial import engine


class DiesAfter(RandomRooms):
    """RandomRooms that is killed (KeyboardInterrupt, as Ctrl-C or SIGINT) at one scene."""

    def __init__(self, count, die_at):
        super().__init__(count)
        self.die_at = die_at

    def load(self, scene_id):
        if scene_id == self.die_at:
            raise KeyboardInterrupt
        return super().load(scene_id)


def test_killed_run_resumes_to_the_same_dataset(tmp_path):
    config = engine.GenerateConfig(chunk_scenes=2, batch_size=4)
    whole = engine.generate(RandomRooms(7), tmp_path / "whole", config)

    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        engine.generate(DiesAfter(7, die_at="room_005"), out, config)
    finished = sorted(p.name for p in (out / "shards").glob("*.state.json"))
    assert len(finished) == 2  # chunks (0, 1), (2, 3) done; (4, 5) died half way
    assert not (out / "qa.jsonl").exists()

    resumed = engine.generate(RandomRooms(7), out, config)
    assert resumed["shards"] == {"total": 4, "resumed": 2}
    assert (out / "qa.jsonl").read_bytes() == (tmp_path / "whole" / "qa.jsonl").read_bytes()
    for key in ("qa_total", "frames", "per_task", "per_relation", "answer_balance", "validation"):
        assert resumed[key] == whole[key], key
    assert resumed["scenes"]["done"] == whole["scenes"]["done"] == 7


def test_shards_of_another_run_are_not_reused(tmp_path):
    config = engine.GenerateConfig(chunk_scenes=1)
    engine.generate(RandomRooms(3), tmp_path, config)
    again = engine.generate(RandomRooms(3), tmp_path, config)
    assert again["shards"] == {"total": 3, "resumed": 3}
    changed = engine.generate(
        RandomRooms(3), tmp_path, engine.GenerateConfig(chunk_scenes=1, seed=1)
    )
    assert changed["shards"]["resumed"] == 0
    fresh = engine.generate(
        RandomRooms(3), tmp_path / "fresh", engine.GenerateConfig(chunk_scenes=1, seed=1)
    )
    assert (tmp_path / "qa.jsonl").read_bytes() == (tmp_path / "fresh" / "qa.jsonl").read_bytes()
    lines = (tmp_path / "qa.jsonl").read_text().splitlines()
    assert len(lines) == changed["qa_total"] == fresh["qa_total"]
    assert all(json.loads(line)["meta"]["scene_id"].startswith("room_") for line in lines)
