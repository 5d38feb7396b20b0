"""How objects are named: glimpses, relative referring expressions, pointing formats.

* Objects that may be seen but are not asked about (too small, too hidden) count for caption
  uniqueness, for relative expressions and for counting (`observe.Glimpses`).
* The jitted relative expressions agree with the slow reference (jit and eager, chex).
* On dense street frames and on every source sample, questions about objects that share a
  category appear in pointing formats, every answer agrees with the reference, and no words-only
  reference (`caption`, `ref` formats) names an object another object that may be seen shares.
"""

from __future__ import annotations

import collections
import dataclasses

import chex
import jax
import numpy as np
import pytest
from test_truth import TASKS, check_records

from jax_spatial import batching, engine
from jax_spatial.batching import pad_observations
from jax_spatial.geometry import frames
from jax_spatial.observe import FrameObservation, Glimpses, observe_frame, observe_scene
from jax_spatial.qa.phrase import referring_names, relative_text
from jax_spatial.qa.select import REF_CAPTION, REF_POINTING, REF_RELATIVE, select_questions
from jax_spatial.relations import compute_single_view_relations, single_view_relations
from jax_spatial.relations.reference import reference_relations_for
from jax_spatial.relations.types import RELATIVE_KINDS
from jax_spatial.scene import Box3D, Frame, Scene, SceneObject
from jax_spatial.sources import get_source
from jax_spatial.sources.street import FOCAL, HEIGHT, WIDTH, StreetSource
from jax_spatial.writers.jsonl import read_jsonl

KIND = {k[0]: i for i, k in enumerate(RELATIVE_KINDS)}


def _view_obs(centre, extent, categories, glimpse_centre=(), glimpse_categories=()):
    """An observation of axis-aligned view-frame boxes, with glimpses of 1 m cubes."""
    obs = FrameObservation.from_view_boxes(
        categories, centre, extent, box2d=np.tile([10.0, 10.0, 60.0, 60.0], (len(centre), 1))
    )
    g = len(glimpse_categories)
    obs.glimpses = Glimpses(
        object_index=np.arange(len(centre), len(centre) + g),
        categories=list(glimpse_categories),
        captions=[None] * g,
        centre=np.asarray(glimpse_centre, np.float64).reshape(g, 3),
        extent=np.ones((g, 3)),
        rotation=np.broadcast_to(np.eye(3), (g, 3, 3)).copy(),
        box2d=np.tile([1.0, 1.0, 3.0, 3.0], (g, 1)),
    )
    return obs


def _bits(names):
    return sum(1 << KIND[n] for n in names)


def test_relative_expressions_by_hand():
    # Three cars in a row 10 m ahead, 4 m apart, the middle one nearest; one pedestrian.
    obs = _view_obs(
        [[-4, 12, 0], [0, 10, 0], [4, 12, 0], [1, 14, 0]],
        [[1.8, 4.2, 1.5], [1.8, 4.2, 1.5], [1.8, 4.2, 1.5], [0.6, 0.6, 1.8]],
        ["car", "car", "car", "pedestrian"],
    )
    rel = jax.device_get(single_view_relations(pad_observations([obs], 8, 1)))
    assert int(rel.relative[0, 0]) == _bits(["leftmost"])
    # The middle car is second from both sides; nearer than the others, but only by 2 m
    # against 4.2 m long boxes: inside the margins, so not "nearest".
    assert int(rel.relative[0, 1]) == _bits(["second_from_left", "second_from_right"])
    assert int(rel.relative[0, 2]) == _bits(["rightmost"])
    assert int(rel.relative[0, 3]) == 0  # alone in its category: its category names it
    ref = reference_relations_for(obs)
    np.testing.assert_array_equal(rel.relative[0, :4], ref.relative)
    assert relative_text(KIND["second_from_left"], "car") == "the second car from the left"
    assert relative_text(KIND["nearest"], "car") == "the car nearest the camera"
    assert relative_text(KIND["leftmost"], "clothes") is None  # no single thing to name

    # A glimpsed car far to the left takes "leftmost" away and makes the row's ranks shift.
    glimpsed = _view_obs(obs.centre, obs.extent, obs.categories, [[-30, 60, 0]], ["car"])
    rel = jax.device_get(single_view_relations(pad_observations([glimpsed], 8, 1)))
    assert int(rel.relative[0, 0]) == _bits(["second_from_left"])
    assert int(rel.relative[0, 4]) == 0  # a glimpse is never named
    ref = reference_relations_for(glimpsed)
    np.testing.assert_array_equal(rel.relative[0, :5], ref.relative)


def _random_frame(rng, n, g):
    cats = ("car", "pedestrian", "cyclist")
    centre = np.stack([rng.uniform(-8, 8, n), rng.uniform(4, 40, n), rng.uniform(0, 1, n)], -1)
    extent = rng.uniform(0.4, 4.5, (n, 3))
    obs = _view_obs(
        centre,
        extent,
        [str(c) for c in rng.choice(cats, n)],
        np.stack([rng.uniform(-20, 20, g), rng.uniform(30, 120, g), np.zeros(g)], -1),
        [str(c) for c in rng.choice(cats, g)],
    )
    obs.rotation = np.asarray(frames.rotation_z(rng.uniform(-np.pi, np.pi, n)), np.float64)
    obs.captions = [
        f"the {c} {i}" if rng.random() < 0.2 else None for i, c in enumerate(obs.categories)
    ]
    return obs


class RelativeVariantsTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_relative_and_glimpses_match_reference(self):
        """Exact agreement (integer facts) of the jitted pass with glimpses and the reference."""
        rng = np.random.default_rng(11)
        observations = [
            _random_frame(rng, int(rng.integers(2, 12)), int(rng.integers(0, 4))) for _ in range(12)
        ]
        batch = pad_observations(observations, 16, len(observations))
        out = jax.device_get(self.variant(compute_single_view_relations)(batch))
        named = 0
        for b, obs in enumerate(observations):
            ref = reference_relations_for(obs)
            m = obs.num_objects + obs.num_glimpses
            np.testing.assert_array_equal(out.pair[b, :m, :m], ref.pair)
            np.testing.assert_array_equal(out.unique_ref[b, :m], ref.unique_ref)
            np.testing.assert_array_equal(out.relative[b, :m], ref.relative)
            np.testing.assert_array_equal(out.exists[b, :m, : len(ref.categories)], ref.exists)
            np.testing.assert_array_equal(out.counts[b, : len(ref.categories)], ref.counts)
            assert not out.relative[b, obs.num_objects :].any()  # glimpses and padding
            named += int((out.relative[b] != 0).sum())
        assert named > 10, named  # the check above covered real expressions


def _street_scene(categories_boxes):
    """One street frame (KITTI-like camera) with the given (category, x, y) objects."""
    objects = []
    for k, (category, x, y) in enumerate(categories_boxes):
        extent = np.array([4.2, 1.8, 1.5]) if category == "car" else np.array([0.6, 0.6, 1.75])
        objects.append(
            SceneObject(k, category, Box3D(np.array([x, y, extent[2] / 2]), extent, np.eye(3)))
        )
    K = np.array([[FOCAL, 0, WIDTH / 2], [0, FOCAL, HEIGHT / 2], [0, 0, 1.0]])
    pose = np.eye(4)
    pose[:3, :3] = [[1, 0, 0], [0, 0, 1], [0, -1, 0]]
    pose[:3, 3] = [0.0, 0.0, 1.65]
    frame = Frame("cam", WIDTH, HEIGHT, K, pose, image_bytes=b"\x89PNG\r\n\x1a\n")
    return Scene("s", "test", [frame], objects)


def test_glimpses_count_for_uniqueness_and_counting():
    # One car 10 m ahead, one 400 m ahead (a box under 4 px: may be seen, not asked about),
    # and one behind the camera (not in view: does not count).
    scene = _street_scene([("car", 0.0, 10.0), ("car", 2.0, 400.0), ("car", 0.0, -20.0)])
    obs = observe_frame(scene, scene.frames[0])
    assert obs.num_objects == 1 and obs.num_glimpses == 1
    assert obs.glimpses.object_index.tolist() == [1]
    assert not obs.exhaustive  # "how many cars" would miss the far one
    assert obs.caption_unique == [False] and obs.ambiguous_reference == [True]
    batch = pad_observations([obs], 8, 1)
    rel = jax.device_get(single_view_relations(batch))
    assert not rel.unique_ref[0].any()
    assert not rel.count_ok[0].any() and int(rel.counts[0, 0]) == 2
    # The near car is still named, relative to the far one it is compared with.
    names = {
        RELATIVE_KINDS[k][0] for k in range(len(RELATIVE_KINDS)) if rel.relative[0, 0] >> k & 1
    }
    assert "nearest" in names and "leftmost" not in names, names
    sel = jax.device_get(select_questions(batch, rel))
    assert int(sel.object_ref[0, 0]) >= REF_RELATIVE
    assert int(sel.object_ref[0, 1]) < REF_POINTING  # the glimpse is never asked about
    words = referring_names(obs, jax.tree.map(lambda x: x[0], sel))
    assert words[0] in {relative_text(KIND[n], "car") for n in names}

    # Without the far car the near one is the frame's only car: its caption names it.
    alone = observe_frame(_street_scene([("car", 0.0, 10.0)]), scene.frames[0])
    assert alone.num_glimpses == 0 and alone.exhaustive and alone.caption_unique == [True]


def test_trim_keeps_objects_before_glimpses_and_remembers_the_dropped():
    rng = np.random.default_rng(3)
    obs = _random_frame(rng, 120, 20)
    trimmed = batching.trim_to_bucket(obs)
    assert trimmed.num_objects == 120 and trimmed.num_glimpses == 8
    assert len(trimmed.glimpses.dropped_categories) == 12
    batch = pad_observations([trimmed], 128, 1)
    complete = np.asarray(batch.relative_allowed)[0, :120] != 0
    dropped = set(trimmed.glimpses.dropped_categories)
    assert complete.tolist() == [c not in dropped for c in trimmed.categories]
    rel = jax.device_get(single_view_relations(batch))
    assert not rel.relative[0, :120][~complete].any()
    np.testing.assert_array_equal(rel.relative[0, :128], reference_relations_for(trimmed).relative)


def _run(source, tmp_path, **config):
    summary = engine.generate(source, tmp_path, engine.GenerateConfig(**config))
    records = read_jsonl(tmp_path / "qa.jsonl")
    observations = [o for sid in source.scene_ids() for o in observe_scene(source.load(sid))]
    return summary, records, observations


def _assert_words_name_one_object(records, observations):
    """Independent of the reference: a caption used as words is shared by no other object
    that may be seen in the frame (objects and glimpses)."""
    by_frame = {(o.scene_id, o.frame_id): o for o in observations}
    words_only = 0
    for record in records:
        meta = record["meta"]
        if meta["format"].split("/")[0] not in ("caption", "ref"):
            continue
        obs = by_frame[(meta["scene_id"], meta["frame_id"])]
        phrases = collections.Counter(obs.reference_phrases)
        if obs.glimpses is not None:
            phrases.update(obs.glimpses.reference_phrases)
        for o in meta["objects"]:
            phrase = o["caption"] or o["category"]
            if o["referring"].endswith(phrase) and o["referring"] == f"the {phrase}":
                assert phrases[phrase] == 1, (record, phrases)
                if not o["caption"]:
                    categories = collections.Counter(obs.categories)
                    if obs.glimpses is not None:
                        categories.update(obs.glimpses.categories)
                    assert categories[o["category"]] == 1, record
            words_only += 1
    return words_only


def test_dense_street_asks_about_shared_categories(tmp_path):
    source = StreetSource(count=4)
    summary, records, observations = _run(source, tmp_path, formats="all")
    checked = check_records(records, observations)
    assert sum(checked[t] for t in TASKS) == len(records)
    assert checked["pointing"] > 0 and checked["relative"] > 0, checked
    assert summary["qa_total"] / summary["frames"] > 8, summary["qa_total"]
    # Far pedestrians are glimpses: a frame with one is not exhaustive, so it is not counted.
    by_frame = {(o.scene_id, o.frame_id): o for o in observations}
    assert any(o.num_glimpses for o in observations)
    for record in records:
        if record["meta"]["task"] == "counting":
            assert not by_frame[(record["meta"]["scene_id"], "cam")].num_glimpses
    assert _assert_words_name_one_object(records, observations) > 0
    # A words-only run asks only what words can say.
    summary, records, _ = _run(source, tmp_path / "words", formats="caption/raw")
    assert records and all(o["referring"] for r in records for o in r["meta"]["objects"])


def test_default_formats_one_line_per_question(tmp_path):
    summary, records, observations = _run(StreetSource(count=2), tmp_path)
    assert summary["lines"] == summary["qa_total"] == len(records)
    formats = collections.Counter(r["meta"]["format"] for r in records)
    assert set(formats) <= {"caption/raw", "ref_caption_box/raw", "ref_region_box/raw"}
    assert formats["ref_caption_box/raw"] > 0, formats
    for record in records:
        question = record["conversations"][0]["value"]
        if record["meta"]["format"] == "ref_caption_box/raw":
            assert "<box>[[" in question
        else:
            assert all(o["referring"] for o in record["meta"]["objects"])
    check_records(records, observations)


SOURCES = [
    ("kitti", ("kitti_object",)),
    ("scannet", ("scannet_scene0000_00",)),
    ("mmdet3d", ("mmdet3d_infos", "sunrgbd_000017")),
    ("mmdet3d", ("mmdet3d_infos", "kitti_000008")),
]


@pytest.mark.parametrize("name, parts", SOURCES + [("procedural", None)])
def test_words_never_name_a_shared_phrase(tmp_path, real_data, name, parts):
    """Over every source sample: words-only references name one object, answers agree."""
    if parts is None:
        source = get_source("procedural", None)
        config = {"max_scenes": 3}
    else:
        source = get_source(name, str(real_data(*parts)))
        config = {}
    summary = engine.generate(source, tmp_path, engine.GenerateConfig(formats="all", **config))
    records = read_jsonl(tmp_path / "qa.jsonl")
    ids = source.scene_ids()[: config.get("max_scenes")]
    observations = [o for sid in ids for o in observe_scene(source.load(sid))]
    assert summary["qa_total"] > 0
    check_records(records, observations)
    _assert_words_name_one_object(records, observations)


def test_object_ref_codes():
    """Caption before relative before pointing; a run without pointing skips the rest."""
    obs = _view_obs(
        [[-4, 12, 0], [0, 12.1, 0], [4, 12, 0], [0.5, 30, 0]],
        [[1.8, 4.2, 1.5]] * 3 + [[0.6, 0.6, 1.8]],
        ["car", "car", "car", "pedestrian"],
    )
    obs.centre[1, 0] = 0.1  # middle car: still clear of both neighbours
    batch = pad_observations([obs], 8, 1)
    rel = single_view_relations(batch)
    sel = jax.device_get(select_questions(batch, rel))
    refs = sel.object_ref[0].tolist()
    assert refs[3] == REF_CAPTION and all(r >= REF_RELATIVE for r in refs[:3]), refs
    from jax_spatial.qa.select import QuotaConfig

    caption_only = dataclasses.replace(QuotaConfig(), references=("caption",))
    sel = jax.device_get(select_questions(batch, rel, caption_only))
    assert sel.object_ref[0].tolist()[:4] == [-2, -2, -2, REF_CAPTION]


def test_referring_words_survive_the_tfds_example(tmp_path):
    """Readers of the TFDS example name objects as the engine did (`objects/referring`)."""
    from jax_spatial import reading
    from jax_spatial.datasets import examples
    from jax_spatial.formats.expand import expand_formats

    source = StreetSource(count=1)
    config = engine.GenerateConfig()
    observations = observe_scene(source.load(source.scene_ids()[0]))
    (frame_qa,) = engine.questions_for_observations(observations, config)
    obs = frame_qa.observation
    assert obs.referring is not None and None in obs.referring  # some only pointing names
    example = examples.frame_example(obs, frame_qa.qas, obs.image_bytes)
    back = reading.example_observation(example)
    assert back.referring == obs.referring
    for qa in frame_qa.qas:
        assert expand_formats(back, qa, "all") == expand_formats(obs, qa, "all")
    # An example written before the field: caption uniqueness from its objects alone.
    del example["objects"]["referring"]
    assert reading.example_observation(example).referring is None


def _grid(x, y, z):
    """Points on a grid: `[P, 3]` from three 1-D coordinate arrays."""
    return np.stack(np.meshgrid(x, y, z, indexing="ij"), -1).reshape(-1, 3)


def test_scan_points_prove_hidden_but_a_scan_hole_may_be_seen():
    # A 640 x 480 camera at the origin looking along world y. Chair 0 in the open; chair 1
    # behind a wall (its points all hidden: not seen, does not count); chair 2 off to the
    # side with no scan points at all (a hole in the scan: nothing proves it hidden).
    K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
    pose = np.eye(4)
    pose[:3, :3] = [[1, 0, 0], [0, 0, 1], [0, -1, 0]]
    size = np.array([0.6, 0.6, 0.9])
    places = ([-0.8, 3.0, 0.0], [0.8, 6.0, 0.0], [1.2, 3.0, 0.0])
    objects = [
        SceneObject(k, "chair", Box3D(np.array(c), size, np.eye(3))) for k, c in enumerate(places)
    ]
    step = 0.02
    front = lambda c: _grid(  # noqa: E731 - the face of a box towards the camera
        np.arange(c[0] - 0.3, c[0] + 0.3, step), [c[1] - 0.3], np.arange(-0.45, 0.45, step)
    )
    wall = _grid(np.arange(0.2, 1.6, step), [4.5], np.arange(-0.8, 0.8, step))
    points = np.concatenate([front(places[0]), front(places[1]), wall])
    frame = Frame("f", 640, 480, K, pose, image_bytes=b"\x89PNG\r\n\x1a\n")
    scene = Scene("s", "test", [frame], objects, points=points, meta={"point_spacing": step})
    obs = observe_frame(scene, frame)
    assert obs.object_index.tolist() == [0]
    assert obs.glimpses.object_index.tolist() == [2]  # the hole counts, the hidden one not
    assert obs.caption_unique == [False] and not obs.exhaustive


def test_an_object_without_a_box_blocks_words_for_its_category():
    # Two boxed cars and one annotated car without a usable 3D box (a broken annotation): it
    # may be in the picture, so neither "the car" nor "the leftmost car" is safe.
    scene = _street_scene([("car", -3.0, 12.0), ("car", 3.0, 12.0), ("pedestrian", 0.0, 15.0)])
    scene.objects.append(SceneObject(3, "car"))
    obs = observe_frame(scene, scene.frames[0])
    assert obs.num_objects == 3 and obs.glimpses.dropped_categories == ("car",)
    assert obs.caption_unique == [False, False, True]
    batch = pad_observations([obs], 8, 1)
    rel = jax.device_get(single_view_relations(batch))
    assert not rel.relative[0].any()
    np.testing.assert_array_equal(rel.relative[0, :3], reference_relations_for(obs).relative)
    sel = jax.device_get(select_questions(batch, rel))
    assert sel.object_ref[0, :3].tolist() == [REF_POINTING, REF_POINTING, REF_CAPTION]


def test_unlabelled_regions_limit_relative_words():
    # Three cars in a row and a DontCare region right of all of them, where an unlabelled
    # car may stand at any depth: "the leftmost car" holds, "the farthest car" may not.
    scene = _street_scene([("car", -4.0, 14.0), ("car", 0.0, 20.0), ("car", 4.0, 30.0)])
    frame = scene.frames[0]
    obs = observe_frame(scene, frame)
    rel = jax.device_get(single_view_relations(pad_observations([obs], 8, 1)))
    assert rel.relative[0, 2] >> KIND["farthest"] & 1  # without the region
    frame.ignore_boxes = np.array([[1100.0, 150.0, 1200.0, 200.0]])
    obs = observe_frame(scene, frame)
    rel = jax.device_get(single_view_relations(pad_observations([obs], 8, 1)))
    bits = [int(b) for b in rel.relative[0, :3]]
    assert bits[0] >> KIND["leftmost"] & 1 and not bits[0] >> KIND["nearest"] & 1
    assert not any(b >> KIND["farthest"] & 1 for b in bits)
    assert not any(b >> KIND["rightmost"] & 1 for b in bits)  # the region is right of all
    np.testing.assert_array_equal(rel.relative[0, :3], reference_relations_for(obs).relative)
