"""Every emitted answer, re-derived from the 3D boxes by the slow reference: 100% agreement.

The engine runs end to end (source -> observe -> jitted relations -> jitted selection ->
phrasing -> JSONL). Each written record is then checked against `relations.reference`, which
recomputes the facts pair by pair from the box corners of the same frame's observation and
shares no code with the jitted pass.
"""

from __future__ import annotations

import collections
import io

import numpy as np
import pytest
from PIL import Image

from jax_spatial import engine
from jax_spatial.geometry import frames
from jax_spatial.observe import observe_scene
from jax_spatial.qa import grammar
from jax_spatial.qa.phrase import relative_text
from jax_spatial.relations.reference import reference_relations_for
from jax_spatial.relations.types import FAMILIES, RELATIONS, RELATIVE_KINDS
from jax_spatial.scene import Box3D, Frame, Scene, SceneObject
from jax_spatial.sources import Source, get_source
from jax_spatial.writers.jsonl import read_jsonl

SIGN_OF = {
    name: (f, 1 if d == 0 else -1)
    for f, fam in enumerate(FAMILIES)
    for d, name in enumerate(RELATIONS[fam])
}
VOCAB = ("chair", "table", "lamp", "sofa", "box", "plant", "umbrella", "bookshelf")
COLOURS = ("red", "blue", "green", None)


def _blank_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (128, 128, 128)).save(buffer, format="PNG")
    return buffer.getvalue()


# Records must carry an image (the validator rejects frames without one); the pixels do not
# matter to the answers checked here.
_BLANK_PNG = _blank_png()


class RandomRooms(Source):
    """Random furnished rooms seen by tilted cameras: broad coverage of the relation rules."""

    name = "random_rooms"

    def __init__(self, count: int = 40, seed: int = 0):
        super().__init__(root=None)
        self.count, self.seed = count, seed

    def scene_ids(self):
        return [f"room_{i:03d}" for i in range(self.count)]

    def load(self, scene_id):
        rng = np.random.default_rng([self.seed, int(scene_id.split("_")[1])])
        objects = []
        for k in range(int(rng.integers(3, 14))):
            category = VOCAB[int(rng.integers(len(VOCAB)))]
            colour = COLOURS[int(rng.integers(len(COLOURS)))]
            extent = rng.uniform([0.2, 0.2, 0.1], [2.0, 1.2, 2.0])
            centre = np.array(
                [rng.uniform(-3, 3), rng.uniform(-3, 3), extent[2] / 2 + rng.choice([0, 0, 0.8])]
            )
            objects.append(
                SceneObject(
                    index=k,
                    category=category,
                    caption=f"{colour} {category}" if colour else None,
                    box3d=Box3D(
                        centre, extent, np.asarray(frames.rotation_z(rng.uniform(-np.pi, np.pi)))
                    ),
                )
            )
        K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
        frames_ = []
        for v in range(3):
            yaw = rng.uniform(-np.pi, np.pi)
            rot = frames.rotation_z(yaw) @ frames.view_from_cam_rotation(
                rng.uniform(-0.5, 0.2), rng.uniform(-0.2, 0.2)
            )
            back = -6.0 * np.array([-np.sin(yaw), np.cos(yaw), 0.0])  # stand back from the room
            pose = np.asarray(
                frames.make_transform(rot, back + np.array([0, 0, rng.uniform(1.2, 1.8)]))
            )
            frames_.append(
                Frame(
                    f"view_{v}",
                    640,
                    480,
                    K,
                    pose,
                    image_bytes=_BLANK_PNG,
                    exhaustive=bool(rng.integers(2)),
                )
            )
        return Scene(scene_id, self.name, frames_, objects)


def check_reference(record, obs, ref, p, words):
    """The words naming object p in a line single it out, by the reference's facts."""
    if words == grammar.definite(obs.reference_phrases[p]) and ref.unique_ref[p]:
        return "caption"
    relative = {
        relative_text(k, obs.categories[p])
        for k, kind in enumerate(RELATIVE_KINDS)
        if kind[0] in ref.relative_names(p)
    }
    assert words in relative, (words, relative, record)
    return "relative"


def check_records(records, observations):
    """Asserts every record against the reference; returns the count per task checked.

    Every object named by words alone (`caption`, `ref` formats) must be singled out by them:
    its caption unique among all objects that may be seen, or a relative expression the
    reference confirms. Pointing formats may name any object.
    """
    by_frame = {(o.scene_id, o.frame_id): o for o in observations}
    facts = {}
    checked = collections.Counter()
    for record in records:
        meta = record["meta"]
        obs = by_frame[(meta["scene_id"], meta["frame_id"])]
        key = (obs.scene_id, obs.frame_id)
        if key not in facts:
            facts[key] = reference_relations_for(obs)
        ref = facts[key]
        position = {int(i): p for p, i in enumerate(obs.object_index)}
        objs = [position[o["index"]] for o in meta["objects"]]
        text_ref = meta["format"].split("/")[0]
        for o, p in zip(meta["objects"], objs, strict=True):
            assert obs.categories[p] == o["category"]
            if text_ref in ("caption", "ref"):
                assert o["referring"] is not None, record
                checked[check_reference(record, obs, ref, p, o["referring"])] += 1
            else:
                checked["pointing"] += 1
        if meta["task"] in ("position", "size"):
            f, sign = SIGN_OF[meta["relation"]]
            if meta["kind"] == "yes_no":
                truth = ref.pair[objs[0], objs[1], f]
                assert truth != 0, record
                assert meta["canonical"] == ("yes" if truth == sign else "no"), record
            else:
                winner = objs["AB".index(meta["canonical"])]
                loser = objs[1 - "AB".index(meta["canonical"])]
                assert ref.pair[winner, loser, f] == sign, record
        elif meta["task"] == "existence":
            f, sign = SIGN_OF[meta["relation"]]
            d = 0 if sign == 1 else 1
            k = ref.categories.index(meta["category"])
            truth = ref.exists[objs[0], k, f, d]
            assert truth != 0, record
            assert meta["canonical"] == ("yes" if truth == 1 else "no"), record
        elif meta["task"] == "counting":
            k = ref.categories.index(meta["category"])
            assert ref.count_ok[k], record
            assert int(meta["canonical"]) == ref.counts[k], record
        else:
            raise AssertionError(f"unknown task {meta['task']}")
        checked[meta["task"]] += 1
    return checked


TASKS = ("position", "size", "existence", "counting")


def _run(source, tmp_path, **config):
    summary = engine.generate(source, tmp_path, engine.GenerateConfig(**config))
    records = read_jsonl(tmp_path / "qa.jsonl")
    observations = [o for sid in source.scene_ids() for o in observe_scene(source.load(sid))]
    return summary, records, observations


def test_random_rooms_every_answer_matches_reference(tmp_path):
    summary, records, observations = _run(RandomRooms(40), tmp_path, batch_size=8)
    checked = check_records(records, observations)
    assert sum(checked[t] for t in TASKS) == len(records) == summary["qa_total"]
    # Coverage: every task and both question kinds appear, so the check above means something.
    assert set(TASKS) <= set(checked), checked
    assert checked["position"] > 100 and checked["existence"] > 10, checked
    kinds = collections.Counter(r["meta"]["kind"] for r in records)
    assert kinds["yes_no"] > 100 and kinds["multiple_choice"] > 50, kinds


def test_output_does_not_depend_on_batch_size(tmp_path):
    source = RandomRooms(12, seed=3)
    _, small, _ = _run(source, tmp_path / "a", batch_size=3)
    _, large, _ = _run(source, tmp_path / "b", batch_size=32)
    assert small == large


@pytest.mark.parametrize(
    "name, parts",
    [
        ("kitti", ("kitti_object",)),
        ("scannet", ("scannet_scene0000_00",)),
        ("mmdet3d", ("mmdet3d_infos", "sunrgbd_000017")),
        ("mmdet3d", ("mmdet3d_infos", "kitti_000008")),
    ],
)
def test_real_samples_every_answer_matches_reference(tmp_path, real_data, name, parts):
    source = get_source(name, str(real_data(*parts)))
    summary, records, observations = _run(source, tmp_path, formats="all")
    assert summary["scenes"]["skipped"] == 0, summary["scenes"]
    checked = check_records(records, observations)
    assert sum(checked[t] for t in TASKS) == len(records)
    if "kitti" in parts[-1]:
        # Street frames hold several cars: they are asked about, pointed at by their boxes.
        assert checked["pointing"] > 0 and checked["position"] > 0, checked
