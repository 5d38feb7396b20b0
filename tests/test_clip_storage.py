"""Clip (frame-set) storage: TFDS examples, the `spatial_qa_clips` builder, clip JSONL, export.

Clips are real `procedural_clips` renders (three 8-frame walks at 160 x 120). Their questions
are written here (`hand_questions`: counts, distances, the room's area, an order question, a
two-frame question), computed from each clip's own geometry, and reach the builder through
its `questions` config field, the way the multi-view task module does. References: the
in-memory clips and questions themselves (a round trip must give them back exactly: bytes,
float64 values, geometry), the stored frame bytes for every file written, and
`examples.scene_split` for the splits.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import io
import json
import math

import numpy as np
import pytest
from PIL import Image

tfds = pytest.importorskip("tensorflow_datasets")
pytest.importorskip("array_record")

from jax_spatial import validate  # noqa: E402
from jax_spatial.datasets import clip_examples, examples  # noqa: E402
from jax_spatial.datasets.build_clips import build_clip_dataset  # noqa: E402
from jax_spatial.multiview import reading as clip_reading  # noqa: E402
from jax_spatial.multiview.qa_types import ClipQA  # noqa: E402
from jax_spatial.reading import letterbox  # noqa: E402
from jax_spatial.writers import clip_jsonl, export  # noqa: E402

NUM_FRAMES = 8
# Source options; the builder passes its `num_frames` on to `procedural_clips`.
OPTIONS = dict(num_scenes=3, seed=3, width=160, height=120)
# room_000000 and room_000002 hash below 0.5 (train), room_000001 above (test).
SPLITS = (("train", 0.5), ("test", 0.5))
QUESTIONS = f"{__name__}:hand_questions"


def hand_questions(clips) -> list[list[ClipQA]]:
    """Questions of every kind the storage must carry, computed from each clip's geometry.

    Not the multi-view tasks (those are tested with their own module): these exist to fill
    every `ClipQA` field with values whose round trip can be checked exactly.
    """
    out = []
    for clip in clips:
        seen = np.flatnonzero(clip.seen)
        cats = collections.Counter(clip.objects[k].category for k in seen)
        category, count = sorted(cats.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        a, b = (int(k) for k in seen[:2])
        centre = [clip.objects[k].box3d.centre for k in (a, b)]
        distance = float(np.linalg.norm(centre[0] - centre[1]))
        order = sorted(seen, key=lambda k: (clip.first_seen[k], k))[:3]
        names = [clip.objects[k].caption or clip.objects[k].category for k in order]
        shuffled = names[1:] + names[:1]
        qas = [
            ClipQA(
                clip_id=clip.clip_id,
                task="mv_counting",
                relation="count",
                kind="count",
                question=f"How many {category}(s) are in this room?",
                answer=str(count),
                canonical=str(count),
                template_id="count/0",
                meta={"category": category},
            ),
            ClipQA(
                clip_id=clip.clip_id,
                task="abs_distance",
                relation="centres",
                kind="number",
                question=f"How far apart are the {names[0]} and the other object, in metres?",
                answer=f"{distance:.1f}",
                canonical=f"{distance:.1f}",
                objects=[a, b],
                value=distance,
                unit="m",
                template_id="distance/0",
                meta={"pair": [a, b], "exact": distance, "nested": {"t": [0.5, None]}},
            ),
            ClipQA(
                clip_id=clip.clip_id,
                task="room_size",
                relation="area",
                kind="number",
                question="How large is this room, in square metres?",
                answer=f"{clip.room_area:.1f}",
                canonical=f"{clip.room_area:.1f}",
                value=clip.room_area,
                unit="m2",
                template_id="room/0",
            ),
            ClipQA(
                clip_id=clip.clip_id,
                task="appearance_order",
                relation="first_seen",
                kind="multiple_choice",
                question="Which object appears first?",
                answer=names[0],
                canonical="ABC"[shuffled.index(names[0])],
                choices=shuffled,
                objects=[int(k) for k in order],
                template_id="order/0",
            ),
            ClipQA(
                clip_id=clip.clip_id,
                task="rotation",
                relation="camera",
                kind="yes_no",
                question="Did the camera move between these two views?",
                answer="Yes.",
                canonical="yes",
                frames=[0, clip.num_frames - 1],
                template_id="turn/0",
            ),
        ]
        out.append(qas)
    return out


@pytest.fixture(scope="module")
def clips():
    source = examples.SourceSpec.create(
        "procedural_clips", None, num_frames=NUM_FRAMES, **OPTIONS
    ).build()
    from jax_spatial.multiview.clip import load_clips

    return list(load_clips(source, NUM_FRAMES, "uniform"))


@pytest.fixture(scope="module")
def clips_and_qas(clips):
    return list(zip(clips, hand_questions(clips), strict=True))


def _round_trip(clip, qas) -> dict:
    features = clip_examples.features()
    serialized = features.serialize_example(clip_examples.clip_example(clip, qas))
    return features.deserialize_example_np(serialized)


def _assert_same_clip(got, want):
    """Every stored field of two clips is equal, floats bit for bit."""
    assert got.clip_id == want.clip_id and got.scene_id == want.scene_id
    assert got.source == want.source and got.visibility_rule == want.visibility_rule
    assert got.min_pixels == want.min_pixels
    assert [f.image_bytes for f in got.frames] == [f.image_bytes for f in want.frames]
    assert [f.frame_id for f in got.frames] == [f.frame_id for f in want.frames]
    assert [(f.width, f.height) for f in got.frames] == [(f.width, f.height) for f in want.frames]
    for name in ("frame_time", "visible", "visible_score", "room_polygon", "footprints", "K"):
        g, w = getattr(got, name), getattr(want, name)
        assert g.dtype.kind == np.asarray(w).dtype.kind, name
        assert np.array_equal(g, w), name
    assert np.array_equal(got.world_from_cam, want.world_from_cam)
    assert got.room_area == want.room_area and got.room_height == want.room_height
    for g, w in zip(got.objects, want.objects, strict=True):
        assert (g.index, g.category, g.caption) == (w.index, w.category, w.caption)
        for name in ("centre", "extent", "rotation"):
            assert np.array_equal(getattr(g.box3d, name), getattr(w.box3d, name))
    assert got.meta == json.loads(clip_examples.sorted_json(want.meta))
    a, b = got.arrays(), want.arrays()
    for name in a:
        assert np.array_equal(np.asarray(a[name]), np.asarray(b[name])), name


# -- the example -------------------------------------------------------------------------


def test_clip_example_round_trip_is_exact(clips_and_qas):
    for clip, qas in clips_and_qas:
        decoded = _round_trip(clip, qas)
        got_clip, got_qas = clip_reading.clip_records(decoded)
        _assert_same_clip(got_clip, clip)
        assert [dataclasses.asdict(q) for q in got_qas] == [dataclasses.asdict(q) for q in qas]
        # float64 survives where a 32-bit float would not: the room area has ~16 digits.
        area = next(q for q in got_qas if q.task == "room_size")
        assert area.value == clip.room_area and area.value != float(np.float32(clip.room_area))
        assert math.isnan(float(decoded["qa"]["value"][0]))  # a count: no numeric value


def test_clip_example_fields_and_empty_clip(clips_and_qas):
    clip, qas = clips_and_qas[0]
    example = clip_examples.clip_example(clip, qas)
    assert example["key"] == f"procedural_clips/{clip.clip_id}"
    assert set(example["frames"]) == set(clip_examples.FRAME_FIELDS)
    assert set(example["objects"]) == set(clip_examples.OBJECT_FIELDS)
    assert set(example["qa"]) == set(clip_examples.QA_FIELDS)
    assert example["frames"]["image_format"] == ["png"] * NUM_FRAMES
    # No objects, no questions, no room: the reader gives back None and empty arrays.
    bare = dataclasses.replace(
        clip, objects=[], visible=np.zeros((clip.num_frames, 0), bool),
        visible_score=np.zeros((clip.num_frames, 0), np.int64), room_polygon=None,
        room_area=None, room_height=None, footprints=None, meta={},
    )  # fmt: skip
    got = clip_reading.example_clip(_round_trip(bare, []))
    assert got.objects == [] and got.visible.shape == (NUM_FRAMES, 0)
    assert got.room_polygon is None and got.room_area is None and got.footprints is None
    assert clip_reading.example_clip_qas(_round_trip(bare, [])) == []
    with pytest.raises(ValueError, match="question of clip"):
        clip_examples.clip_example(clip, [dataclasses.replace(qas[0], clip_id="other")])


def test_bad_questions_are_dropped_and_counted(clips_and_qas):
    clip, qas = clips_and_qas[0]
    count, number, choice, yes_no = qas[0], qas[1], qas[3], qas[4]
    bad = [
        dataclasses.replace(yes_no, frames=[0, clip.num_frames]),  # frame out of range
        dataclasses.replace(number, unit=None),  # a number without its unit
        dataclasses.replace(number, value=float("inf")),
        dataclasses.replace(choice, canonical="D"),  # three choices
        dataclasses.replace(count, canonical="-1"),
        dataclasses.replace(count, objects=[0, 0]),
        dataclasses.replace(count, task="position"),
        dataclasses.replace(count, meta={"x": object()}),
    ]
    report = validate.ValidationReport()
    kept = clip_examples.valid_clip_qas(clip, qas + bad, report)
    assert kept == qas
    assert (report.qa_checked, report.qa_rejected) == (len(qas) + len(bad), len(bad))
    assert set(report.reasons) == {
        "frame_ids_range", "number_unit", "number_value", "value_finite", "choice_canonical",
        "count_canonical", "object_ids_repeat", "task_unknown", "meta_json",
    }  # fmt: skip


# -- JSONL writers -------------------------------------------------------------------------


def _check_frame_file(path, clip, t):
    data = path.read_bytes()
    assert data == clip.frames[t].image_bytes
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (clip.frames[t].width, clip.frames[t].height)


def test_internvl_lines(clips_and_qas, tmp_path):
    summary = clip_jsonl.write_clip_jsonl(clips_and_qas, tmp_path, style="internvl")
    lines = [json.loads(x) for x in (tmp_path / "internvl.jsonl").read_text().splitlines()]
    assert summary.lines == len(lines) == sum(len(q) for _, q in clips_and_qas)
    # Frames written once per clip, nothing else.
    files = sorted(p for p in (tmp_path / "frames").rglob("*") if p.is_file())
    assert summary.images == len(files) == NUM_FRAMES * len(clips_and_qas)
    by_id = {(c.clip_id, k): (c, q) for c, qs in clips_and_qas for k, q in enumerate(qs)}
    for line in lines:
        clip_id, number = line["id"].rsplit("/", 1)
        clip, qa = by_id[(clip_id, int(number))]
        human, gpt = line["conversations"]
        picks = qa.frames or list(range(clip.num_frames))
        assert human["value"].count("<image>") == len(line["image"]) == len(picks)
        prefix = "".join(f"Frame-{k + 1}: <image>\n" for k in range(len(picks)))
        assert human["value"] == prefix + qa.question and gpt["value"] == qa.answer
        assert line["width_list"] == [160] * len(picks)
        for t, rel in zip(picks, line["image"], strict=True):
            assert rel.startswith(f"frames/{clip_jsonl.clip_folder(clip.clip_id)}/")
            _check_frame_file(tmp_path / rel, clip, t)
        meta = line["meta"]
        assert meta["value"] == qa.value and meta["unit"] == qa.unit  # exact through JSON
        assert meta["frames"] == picks and meta["frame_ids"] == [
            clip.frames[t].frame_id for t in picks
        ]
        assert [o["position"] for o in meta["objects"]] == qa.objects
    assert ":" not in "".join(str(p) for p in files)


def test_llava_video_lines(clips_and_qas, tmp_path):
    clip_jsonl.write_clip_jsonl(clips_and_qas, tmp_path, style="llava_video", json_array=True)
    lines = [json.loads(x) for x in (tmp_path / "llava_video.jsonl").read_text().splitlines()]
    assert json.loads((tmp_path / "llava_video.json").read_text()) == lines
    by_id = {(c.clip_id, k): (c, q) for c, qs in clips_and_qas for k, q in enumerate(qs)}
    for line in lines:
        assert set(line) == {"id", "video", "conversations"}
        clip_id, number = line["id"].rsplit("/", 1)
        clip, qa = by_id[(clip_id, int(number))]
        human = line["conversations"][0]["value"]
        assert human.count("<image>") == 1 and human == "<image>\n" + qa.question
        folder = tmp_path / line["video"]
        listing = sorted(p.name for p in folder.iterdir())  # what LLaVA's loader sorts
        picks = qa.frames or list(range(clip.num_frames))
        assert len(listing) == len(picks)
        for t, name in zip(picks, listing, strict=True):
            _check_frame_file(folder / name, clip, t)
    # One folder per clip plus one per distinct frame subset (the two-frame question).
    folders = {p.parent for p in (tmp_path / "frames").rglob("*.png")}
    assert len(folders) == 2 * len(clips_and_qas)


def test_jsonl_is_deterministic_and_frames_can_be_shared(clips_and_qas, tmp_path):
    first = clip_jsonl.write_clip_jsonl(clips_and_qas, tmp_path / "a")
    clip_jsonl.write_clip_jsonl(clips_and_qas, tmp_path / "b")
    assert (tmp_path / "a/internvl.jsonl").read_bytes() == (
        tmp_path / "b/internvl.jsonl"
    ).read_bytes()
    # A second style over the same frames: lines only, every path already there.
    none = clip_jsonl.write_clip_jsonl(
        clips_and_qas, tmp_path / "a", style="internvl", write_frames=False
    )
    assert none.images == 0 and first.images == NUM_FRAMES * len(clips_and_qas)
    for line in (tmp_path / "a/internvl.jsonl").read_text().splitlines():
        assert all((tmp_path / "a" / p).is_file() for p in json.loads(line)["image"])


def test_undecodable_frames_skip_the_clip(clips_and_qas, tmp_path):
    (clip, qas), (other, other_qas) = clips_and_qas[:2]
    frames = list(clip.frames)
    frames[2] = dataclasses.replace(frames[2], image_bytes=frames[2].image_bytes[:200])
    broken = dataclasses.replace(clip, frames=frames)
    summary = clip_jsonl.write_clip_jsonl([(broken, qas), (other, other_qas)], tmp_path)
    assert [s["clip_id"] for s in summary.skipped] == [clip.clip_id]
    assert "frame 2" in summary.skipped[0]["reason"]
    assert summary.lines == len(other_qas)


def test_clip_folder_names():
    assert clip_jsonl.clip_folder("room_000003:uniform16") == "room_000003_uniform16"
    files = clip_jsonl._FrameFiles(None, write=False)
    assert files.folder("a:b") == "a_b"
    assert files.folder("a b").startswith("a_b-")  # a different id, the same safe name
    assert files.folder("a:b") == "a_b"


# -- reading pipeline ----------------------------------------------------------------------


def test_clip_qa_batches(clips_and_qas):
    decoded = [_round_trip(c, q) for c, q in clips_and_qas]
    batches = list(
        clip_reading.clip_qa_batches(
            decoded, batch_size=5, max_frames=4, image_size=(64, 96), shuffle=False
        )
    )
    assert len(batches) == len(clips_and_qas)  # five questions per clip, in order
    clip, qas = clips_and_qas[0]
    batch = batches[0]
    assert batch["frames"].shape == (5, 4, 64, 96, 3) and batch["frames"].dtype == np.uint8
    # Eight frames shown as four, spread evenly (0, 2, 4, 7); the two-frame question pads.
    assert batch["frame_valid"].sum(1).tolist() == [4, 4, 4, 4, 2]
    want, scale = letterbox(clip.image(7), (64, 96))
    assert np.array_equal(batch["frames"][0, 3], want) and batch["scale"][0, 3] == np.float32(scale)
    assert np.array_equal(batch["frames"][4, 1], letterbox(clip.image(7), (64, 96))[0])
    assert not batch["frames"][4, 2:].any()
    assert batch["frame_time"][0].tolist() == [float(clip.frame_time[t]) for t in (0, 2, 4, 7)]
    assert batch["question"] == [q.question for q in qas]
    assert batch["value"][2] == np.float32(clip.room_area) and np.isnan(batch["value"][0])


# -- the builder ---------------------------------------------------------------------------


def _build(data_dir, name="test_clips"):
    return build_clip_dataset(
        data_dir, name, num_frames=NUM_FRAMES, split_fractions=SPLITS, scenes_per_shard=2,
        questions=QUESTIONS, **OPTIONS,
    )  # fmt: skip


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("clip_tfds")
    return data_dir, _build(data_dir)


def _read_split(data_dir, split):
    source = tfds.data_source("spatial_qa_clips/test_clips", split=split, data_dir=str(data_dir))
    return [source[i] for i in range(len(source))]


def _shard_digests(version_dir):
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(version_dir.iterdir())
        if "array_record" in p.name
    }


@pytest.mark.slow
def test_builder_round_trip_and_splits(built, clips_and_qas):
    data_dir, _ = built
    want = {c.clip_id: (c, q) for c, q in clips_and_qas}
    seen_scenes = {}
    for split in ("train", "test"):
        for example in _read_split(data_dir, split):
            clip, qas = clip_reading.clip_records(example)
            ref_clip, ref_qas = want.pop(clip.clip_id)
            _assert_same_clip(clip, ref_clip)
            assert [dataclasses.asdict(q) for q in qas] == [dataclasses.asdict(q) for q in ref_qas]
            assert seen_scenes.setdefault(clip.scene_id, split) == split
            assert examples.scene_split(clip.scene_id, SPLITS) == split
    assert not want  # every clip was written
    assert sorted(seen_scenes.items()) == [
        ("room_000000", "train"), ("room_000001", "test"), ("room_000002", "train"),
    ]  # fmt: skip


@pytest.mark.slow
def test_builder_is_deterministic(built, tmp_path):
    _, first = built
    second = _build(tmp_path)
    digests = _shard_digests(first)
    assert digests and digests == _shard_digests(second)


@pytest.mark.slow
def test_export_of_a_built_clip_dataset(built, clips_and_qas, tmp_path):
    from jax_spatial import cli

    data_dir, _ = built
    train = [
        (c, q) for c, q in clips_and_qas if examples.scene_split(c.scene_id, SPLITS) == "train"
    ]
    for style, file_style in (("internvl", "internvl"), ("llava", "llava_video")):
        out = tmp_path / style
        code = cli.main(
            ["export", "--data-dir", str(data_dir), "--name", "spatial_qa_clips/test_clips",
             "--out", str(out), "--style", style, "--split", "train"]
        )  # fmt: skip
        assert code == 0
        # The export of the stored clips is the direct write of the in-memory ones, byte for
        # byte (example order is TFDS's key-hash order: sort the references the same way).
        order = [clip_reading.example_clip(e).clip_id for e in _read_split(data_dir, "train")]
        ordered = sorted(train, key=lambda cq: order.index(cq[0].clip_id))
        direct = tmp_path / f"direct_{style}"
        clip_jsonl.write_clip_jsonl(ordered, direct, style=file_style)
        jsonl = f"{file_style}.jsonl"
        assert (out / jsonl).read_bytes() == (direct / jsonl).read_bytes()
        lines = (out / jsonl).read_text().splitlines()
        assert len(lines) == sum(len(q) for _, q in train)
        for line in map(json.loads, lines):
            paths = line["image"] if style == "internvl" else [line["video"]]
            assert all((out / p).exists() for p in paths)
    summary = export.export_dataset(
        data_dir, tmp_path / "api", name="spatial_qa_clips/test_clips", split="test"
    )
    assert (summary.frames, summary.lines, summary.skipped) == (1, 5, [])


def test_builder_needs_its_question_generator(tmp_path):
    with pytest.raises(ImportError, match="clips -> list"):
        build_clip_dataset(
            tmp_path, "no_questions", questions="jax_spatial.no_such_module:clip_questions",
            **OPTIONS,
        )  # fmt: skip


def _content_digest(version_dir) -> list[tuple[str, str]]:
    """`(key, sha256 of the record)` of every example of every split, sorted by key."""
    from array_record.python.array_record_module import ArrayRecordReader

    features = clip_examples.features()
    out = []
    for path in sorted(version_dir.glob("spatial_qa_clips-*.array_record-*")):
        reader = ArrayRecordReader(str(path))
        for record in reader.read_all():
            key = features.deserialize_example_np(record)["key"]
            out.append((key.decode(), examples.example_digest(record)))
        reader.close()
    return sorted(out)


@pytest.mark.slow
def test_beam_build_writes_the_same_examples(built, tmp_path):
    """The DirectRunner (in-process: the question function lives in this test module) writes
    the examples the local build wrote, byte for byte."""
    beam = pytest.importorskip("apache_beam")
    from jax_spatial.datasets.spatial_qa_clips import spatial_qa_clips_dataset_builder as lib

    _, local = built
    config = lib.SpatialQAClipsConfig(
        name="test_clips", options=tuple(sorted(OPTIONS.items())), num_frames=NUM_FRAMES,
        scenes_per_shard=2, split_fractions=SPLITS, questions=QUESTIONS,
    )  # fmt: skip
    builder = lib.Builder(config=config, data_dir=str(tmp_path))
    options = beam.options.pipeline_options.PipelineOptions(["--runner=DirectRunner"])
    builder.download_and_prepare(
        file_format="array_record",
        download_config=tfds.download.DownloadConfig(beam_options=options),
    )
    digests = _content_digest(local)
    assert len(digests) == 3 and digests == _content_digest(builder.data_path)


@pytest.mark.slow
def test_builder_with_the_multi_view_tasks(clips, tmp_path):
    """The default question generator (`multiview.tasks.clip_questions`): every question it
    asks of the in-memory clips is stored, none rejected, and reads back equal."""
    tasks = pytest.importorskip("jax_spatial.multiview.tasks")
    want = dict(zip([c.clip_id for c in clips], tasks.clip_questions(clips), strict=True))
    assert sum(map(len, want.values())) > 0
    build_clip_dataset(tmp_path, "with_tasks", num_frames=NUM_FRAMES, **OPTIONS)
    source = tfds.data_source("spatial_qa_clips/with_tasks", split="train", data_dir=tmp_path)
    got = {}
    for i in range(len(source)):
        clip, qas = clip_reading.clip_records(source[i])
        got[clip.clip_id] = [dataclasses.asdict(q) for q in qas]
    assert got == {k: [dataclasses.asdict(q) for q in v] for k, v in want.items()}
