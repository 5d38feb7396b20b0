"""The generation loop: scenes -> view-space observations -> relations -> QA -> JSONL.

Stages run in one direction and each is a plain function of the previous one's output:

    source.load(id) -> observe_scene -> batches_by_bucket -> pad_observations
      -> single_view_relations (jit) -> select_questions (jit) -> phrase_batch (host)
      -> expand_formats (host) -> chat_record -> qa.jsonl, summary.json
                               -> write_frame_images (jit drawing, with write_images)

A scene that fails anywhere before the jitted stages is skipped, counted and logged with its
reason, and with the file and field at fault where the source names them; the run goes on.
Every frame's image is decoded in full before a question is asked about it: a truncated or
undecodable image drops that frame (a scene left with none is skipped), counted the same way.
Scenes are processed in chunks, each written as a shard under `shards/` that is finalised
atomically (its state file last); a restart of the same run skips finished shards, so an
interrupted run resumes and loses or repeats nothing. A finished shard also records the size
and modification time of every input file its scenes read (images, labels, info files, and
files named by its skips): a shard whose inputs changed since is redone, and a change of the
source's index files (`*_path` attributes such as an info pickle) starts the run over.
`qa.jsonl` is the shards joined in order; scenes with exact ground truth (procedural rooms)
also write one line per view to `ground_truth.jsonl` (`writers.ground_truth`), joined the same
way. Objects a source left out for a bad annotation (an invalid 3D box) and frames it dropped
are counted in the summary (`objects_dropped`, `skipped_scenes`). One run at a time may
write into an output folder: a second one fails at once with `OutputLocked` (a lock on
`<out>/.lock`, released when the first ends, however it ends). Records are written in
scene-id order and frame order, whatever the batching, and every random choice is keyed on
(seed, scene id, frame id), so the output does not depend on batch size or on how the scene
ids were split across workers.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import hashlib
import io
import json
import logging
import os
import pathlib
import re
import shutil
import time
from collections.abc import Callable, Iterable, Sequence

import jax
import numpy as np

from jax_spatial import batching, validate
from jax_spatial.errors import UserError
from jax_spatial.formats.expand import expand_formats, has_format, parse_select, reference_kinds
from jax_spatial.observe import FrameObservation, ObserveConfig, observe_scene
from jax_spatial.qa.phrase import phrase_batch, referring_batch
from jax_spatial.qa.select import QuotaConfig, select_questions
from jax_spatial.qa.types import QARecord
from jax_spatial.relations.single_view import RelationConfig, single_view_relations
from jax_spatial.scene import Scene, SceneSkip
from jax_spatial.sources import Source
from jax_spatial.writers import ground_truth, overlay_images
from jax_spatial.writers.jsonl import JsonlWriter, chat_record, image_field, qa_id_of

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class GenerateConfig:
    """Everything a run needs besides the source. Defaults are documented where they live."""

    seed: int = 0
    # 32 frames per device call: big enough to amortise dispatch on CPU, small enough that a
    # 128-object bucket's [B, N, N, ...] tensors stay well under a gigabyte.
    batch_size: int = 32
    # Scenes held in memory between writes; bounds host memory on large sources.
    chunk_scenes: int = 64
    max_scenes: int | None = None
    observe: ObserveConfig = ObserveConfig()
    relations: RelationConfig = RelationConfig()
    quotas: QuotaConfig = QuotaConfig()
    # Instruction formats per QA (docs/formats.md): "all", "K" (K suitable formats sampled
    # per QA), "auto", or comma-separated format ids. The default, "auto", writes each QA
    # once on the raw image: in its own words (caption or "the leftmost car") where words
    # single out its objects, else with their boxes as InternVL grounding text
    # (`<ref>the car</ref><box>[[...]]</box>`), so frames full of cars are asked about too. It
    # draws nothing: a run that draws nothing must not emit lines that talk about a "red box"
    # the image does not show. "caption/raw" keeps the words-only output.
    formats: str = "auto"
    # Draw the overlays of drawn formats to `images/` (and bytes-only raw frames).
    write_images: bool = False


@dataclasses.dataclass
class FrameQA:
    """The questions of one frame with the observation they refer to."""

    observation: FrameObservation
    qas: list[QARecord]


def questions_for_observations(
    observations: Sequence[FrameObservation], config: GenerateConfig
) -> list[FrameQA]:
    """Runs the jitted stages over observations; returns each frame's QA, in input order.

    The returned observation is the one the QA refer to: a crowded frame comes back trimmed to
    the largest bucket, and it says how each object is named (`FrameObservation.referring`).
    Objects are named only in the ways both the run's formats (`reference_kinds`) and
    `config.quotas.references` allow.
    """
    usable = reference_kinds(parse_select(config.formats))
    quotas = dataclasses.replace(
        config.quotas, references=tuple(k for k in config.quotas.references if k in usable)
    )
    # Keyed by ids, not identity: `trim_to_bucket` hands back a copy for crowded frames.
    position = {(obs.scene_id, obs.frame_id): i for i, obs in enumerate(observations)}
    results = [FrameQA(obs, []) for obs in observations]
    for bucket, group in batching.batches_by_bucket(observations, config.batch_size):
        batch = batching.pad_observations(group, bucket, config.batch_size, config.seed)
        relations = single_view_relations(batch, config.relations)
        selection = jax.device_get(select_questions(batch, relations, quotas))
        # The observation carries how each object is named, for the formats and writers.
        named = [
            obs.with_referring(words)
            for obs, words in zip(group, referring_batch(group, selection), strict=False)
        ]
        for obs, qas in zip(named, phrase_batch(named, selection), strict=False):
            results[position[(obs.scene_id, obs.frame_id)]] = FrameQA(obs, qas)
    return results


class Summary:
    """Counts kept while a run goes: tasks, relations, answer balance, skips."""

    def __init__(self):
        self.scenes_total = 0
        self.scenes_done = 0
        self.frames = 0
        self.frames_without_qa = 0
        self.objects_visible = 0
        self.qa = 0
        self.per_task: collections.Counter = collections.Counter()
        self.per_relation: collections.Counter = collections.Counter()
        self.per_template: collections.Counter = collections.Counter()
        self.per_format: collections.Counter = collections.Counter()
        self.images_written = 0
        self.answers: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        self.skipped: list[dict] = []
        # Annotated objects left out for a bad annotation (an invalid 3D box): each makes the
        # frames that may show it non-exhaustive (`observe.unboxed_objects`).
        self.dropped_objects: list[dict] = []

    def add_frame(self, frame_qa: FrameQA) -> None:
        self.frames += 1
        self.objects_visible += frame_qa.observation.num_objects
        if not frame_qa.qas:
            self.frames_without_qa += 1
        for qa in frame_qa.qas:
            self.qa += 1
            self.per_task[qa.task] += 1
            self.per_relation[qa.relation] += 1
            self.per_template[qa.template_id] += 1
            self.answers[f"{qa.task}/{qa.kind}"][qa.canonical] += 1

    def skip(
        self,
        scene_id: str | None,
        reason: str,
        file: str | None = None,
        field: str | None = None,
        frame_id: str | None = None,
    ) -> None:
        """Records a skipped scene (or, with `frame_id`, one dropped frame of a scene)."""
        entry = {"scene_id": scene_id, "file": file, "field": field, "reason": reason}
        if frame_id is not None:
            entry["frame_id"] = frame_id
        self.skipped.append(entry)

    _COUNTS = (
        "scenes_done",
        "frames",
        "frames_without_qa",
        "objects_visible",
        "qa",
        "images_written",
    )
    _COUNTERS = ("per_task", "per_relation", "per_template", "per_format")

    def state(self) -> dict:
        """Everything counted so far, as JSON-safe data (a finished shard keeps its own)."""
        return {
            **{k: getattr(self, k) for k in self._COUNTS},
            **{k: dict(getattr(self, k)) for k in self._COUNTERS},
            "answers": {k: dict(v) for k, v in self.answers.items()},
            "skipped": list(self.skipped),
            "dropped_objects": list(self.dropped_objects),
        }

    def merge_state(self, state: dict) -> None:
        """Adds a `state()` of another part of the run (a shard finished earlier)."""
        for k in self._COUNTS:
            setattr(self, k, getattr(self, k) + state[k])
        for k in self._COUNTERS:
            getattr(self, k).update(state[k])
        for k, v in state["answers"].items():
            self.answers[k].update(v)
        self.skipped.extend(state["skipped"])
        self.dropped_objects.extend(state.get("dropped_objects", []))

    def balance(self) -> dict:
        """Share of each canonical answer per task and kind (counts are left as histograms)."""
        out = {}
        for key, counter in sorted(self.answers.items()):
            total = sum(counter.values())
            out[key] = {
                "total": total,
                "counts": dict(sorted(counter.items())),
                "share": {k: round(v / total, 4) for k, v in sorted(counter.items())},
            }
        return out

    def as_dict(self, **extra) -> dict:
        scenes = [s for s in self.skipped if "frame_id" not in s]
        reasons = collections.Counter(s["reason"].split(":")[0] for s in scenes)
        return {
            "scenes": {
                "total": self.scenes_total,
                "done": self.scenes_done,
                "skipped": len(scenes),
                "frames_skipped": len(self.skipped) - len(scenes),
                "skipped_by_reason": dict(reasons),
                "skipped_scenes": self.skipped,
            },
            "frames": self.frames,
            "frames_without_qa": self.frames_without_qa,
            "objects_visible": self.objects_visible,
            "objects_dropped": {
                "total": len(self.dropped_objects),
                "by_reason": dict(collections.Counter(d["kind"] for d in self.dropped_objects)),
                "objects": self.dropped_objects,
            },
            "qa_total": self.qa,
            "per_task": dict(sorted(self.per_task.items())),
            "per_relation": dict(sorted(self.per_relation.items())),
            "answer_balance": self.balance(),
            "templates_used": len(self.per_template),
            "lines": sum(self.per_format.values()),
            "per_format": dict(sorted(self.per_format.items())),
            "images_written": self.images_written,
            **extra,
        }


def load_observations(
    source: Source,
    scene_ids: Iterable[str],
    config: GenerateConfig,
    summary: Summary,
    bar=None,
    inputs: set[str] | None = None,
    truth: dict | None = None,
) -> list[FrameObservation]:
    """Loads and observes scenes, skipping (and recording) the ones that fail.

    `bar` (a tqdm-like object) advances by one per scene: loading is the slow part.
    `inputs`, when given, collects the files the scenes read or their skips name (see
    `scene_files`), for the resume check. `truth`, when given, receives
    `writers.ground_truth.scene_truth` per `(scene_id, frame_id)` of scenes that carry exact
    ground truth.
    """
    observations = []
    for scene_id in scene_ids:
        if bar is not None:
            bar.update(1)
        try:
            scene = source.load(scene_id)
            if inputs is not None:
                inputs.update(scene_files(scene, source))
            scene_obs = observe_scene(scene, config.observe)
            kept, dropped = _decodable(scene_obs, scene, source)
            if dropped and not kept:
                obs, file, reason = dropped[0]
                more = f" (and {len(dropped) - 1} more frames)" if len(dropped) > 1 else ""
                raise SceneSkip(reason + more, file=file, field="image")
            for obs, file, reason in dropped:
                log.warning("dropping frame %s/%s: %s", obs.scene_id, obs.frame_id, reason)
                summary.skip(obs.scene_id, reason, file=file, field="image", frame_id=obs.frame_id)
                if inputs is not None and file:
                    inputs.add(file)
            record_source_drops(scene, summary)
            if truth is not None and ground_truth.has_ground_truth(scene):
                for frame_id, entry in ground_truth.scene_truth(scene).items():
                    truth[(scene.scene_id, frame_id)] = entry
            observations.extend(kept)
        except Exception as error:  # noqa: BLE001 - one bad scene must not end the run
            reason = f"{type(error).__name__}: {error}"
            file, field = getattr(error, "file", None), getattr(error, "field", None)
            if isinstance(error, KeyError) and field is None and error.args:
                field = str(error.args[0])
            log.warning("skipping scene %s: %s", scene_id, reason)
            summary.skip(scene_id, reason, file=file, field=field)
            if inputs is not None:
                inputs.update(_named_files(reason, file))
            continue
        summary.scenes_done += 1
    return observations


def record_source_drops(scene: Scene, summary: Summary) -> None:
    """Counts what a source left out of a scene it loaded: objects with an invalid 3D box
    (`extra["invalid_box3d"]` names the file and field) and frames it dropped
    (`meta["dropped_frames"]`, `"frame: reason"` strings, or `meta["skipped_frames"]`)."""
    for o in scene.objects:
        reason = o.extra.get("invalid_box3d") if o.box3d is None else None
        if reason:
            summary.dropped_objects.append({
                "scene_id": scene.scene_id, "index": int(o.index), "category": o.category,
                "kind": "invalid_box3d", "reason": str(reason),
            })  # fmt: skip
    meta = scene.meta or {}
    for entry in meta.get("dropped_frames") or []:
        frame_id, _, reason = str(entry).partition(": ")
        summary.skip(scene.scene_id, reason or str(entry), frame_id=frame_id)
    for entry in meta.get("skipped_frames") or []:
        if isinstance(entry, dict):
            reason = str(entry.get("detail") or entry.get("reason", ""))
            field = entry.get("field")
            if field is None and "image" in reason:
                field = "image"  # "image not found", "unreadable image ..."
            summary.skip(
                scene.scene_id, reason, file=entry.get("file"), field=field,
                frame_id=str(entry.get("frame_id")),
            )  # fmt: skip


def verify_image(obs: FrameObservation, root: str | None) -> str | None:
    """Decodes a frame's image in full; returns why it cannot be used, or None when it can.

    A header-only read (what sizes come from) passes a truncated file, and a question about an
    image a trainer cannot open is a lost sample at best, a crash at worst.
    """
    from PIL import Image

    if obs.image_bytes is not None:
        opened = io.BytesIO(bytes(obs.image_bytes))
    elif obs.image_path:
        opened = _resolve(obs.image_path, root)
    else:
        return None  # nothing to decode: the record carries no image either
    try:
        with Image.open(opened) as image:
            image.load()
            size = image.size
    except FileNotFoundError:
        return "image not found"
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        return f"undecodable image: {error}"
    if size != (obs.width, obs.height):
        return f"image is {size[0]}x{size[1]}, the frame says {obs.width}x{obs.height}"
    return None


def _decodable(observations: Sequence[FrameObservation], scene: Scene, source: Source):
    """Splits observations into those whose image decodes and `(obs, file, reason)` of the rest."""
    kept, dropped = [], []
    root = getattr(scene, "root", None) or getattr(source, "root", None)
    for obs in observations:
        problem = verify_image(obs, root)
        if problem is None:
            kept.append(obs)
            continue
        file = str(_resolve(obs.image_path, root)) if obs.image_path else None
        where = file or f"frame {obs.scene_id}/{obs.frame_id}"
        dropped.append((obs, file, f"{where}: {problem}"))
    return kept, dropped


def _resolve(path, root) -> pathlib.Path:
    path = pathlib.Path(path)
    return path if path.is_absolute() or not root else pathlib.Path(root) / path


def scene_files(scene: Scene, source: Source) -> set[str]:
    """The input files a loaded scene was read from, as far as the scene says.

    Frame images, and string entries of `scene.meta` that name existing files (KITTI's label
    and calibration files, an info file, a depth map); relative ones are taken under the
    scene's root.
    """
    root = getattr(scene, "root", None) or getattr(source, "root", None)
    names = [f.image_path for f in scene.frames if f.image_path]
    names += [v for v in (scene.meta or {}).values() if isinstance(v, str | os.PathLike)]
    out = set()
    for name in names:
        # Sources write meta paths relative to the working folder or to their root.
        for path in (pathlib.Path(name), _resolve(name, root)):
            with contextlib.suppress(OSError, ValueError):
                if path.is_file():
                    out.add(str(path.resolve()))
                    break
    return out


# Absolute paths inside a skip reason ("missing label file /data/kitti/label_2/7.txt: ...").
_PATH_IN_TEXT = re.compile(r"(/[^\s:'\",;()\[\]]+)")


def _named_files(reason: str, file: str | None) -> set[str]:
    """Files a skip names: when one appears or changes, the skip may no longer hold."""
    found = {m.rstrip(".") for m in _PATH_IN_TEXT.findall(reason)}
    if file:
        found.add(str(file))
    return {f for f in found if pathlib.PurePath(f).suffix}


def file_stats(paths: Iterable[str]) -> dict[str, list[int] | None]:
    """path -> `[size, mtime_ns]`, None for a file that does not exist."""
    out = {}
    for path in sorted(paths):
        try:
            st = os.stat(path)
            out[path] = [st.st_size, st.st_mtime_ns]
        except OSError:
            out[path] = None
    return out


def _changed_inputs(recorded: dict) -> list[str]:
    now = file_stats(recorded)
    return [path for path, stat in recorded.items() if now[path] != stat]


def _sources_within(source: Source) -> list:
    """The source and the sources it wraps (`LiftingSource.inner`, `sunrgbd_lifted.inner`)."""
    out, todo = [], [source]
    while todo:
        obj = todo.pop()
        if any(obj is seen for seen in out):
            continue
        out.append(obj)
        todo += [v for v in vars(obj).values() if hasattr(v, "load") and hasattr(v, "scene_ids")]
    return out


def _index_files(source: Source) -> list[str]:
    """Files the whole source depends on: its `*_path` attributes that are files (info files,
    an instances JSON), wrapped sources included."""
    found = set()
    for obj in _sources_within(source):
        for name, value in vars(obj).items():
            if name.endswith("_path") and isinstance(value, str | os.PathLike):
                with contextlib.suppress(OSError, ValueError):
                    if pathlib.Path(value).is_file():
                        found.add(str(pathlib.Path(value).resolve()))
    return sorted(found)


def source_skips(source: Source) -> list[dict]:
    """Index entries the source could not turn into a scene (`Source.skipped_entries`)."""
    out = []
    for obj in _sources_within(source):
        for entry in getattr(obj, "skipped_entries", None) or []:
            out.append({"scene_id": None, "file": None, "field": None, **entry})
    return out


class OutputLocked(UserError):
    """Another run is writing into the same output folder."""


@contextlib.contextmanager
def output_lock(out: pathlib.Path):
    """Holds `<out>/.lock` for the duration of a run (an OS lock: a crashed run holds none).

    Raises:
      OutputLocked: another process (or another run in this one) holds it.
    """
    try:
        import fcntl
    except ImportError:  # no flock on this platform: runs are not guarded
        yield
        return
    path = out / ".lock"
    handle = open(path, "a+")  # noqa: SIM115 - held open for the whole run
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise OutputLocked(
                f"{out} is being written by another run ({holder}); wait for it to finish "
                "or choose another --out"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        yield
    finally:
        handle.close()


def generate(
    source: Source,
    out_dir: str | os.PathLike,
    config: GenerateConfig = GenerateConfig(),
    scene_ids: Sequence[str] | None = None,
    progress: Callable[[Iterable], Iterable] | None = None,
    split: dict | None = None,
) -> dict:
    """Writes `qa.jsonl` and `summary.json` for a source into `out_dir`; returns the summary.

    Args:
      source: a built `Source`.
      out_dir: output folder (created).
      config: run settings.
      scene_ids: the ids to process (default: all of the source's, capped by `max_scenes`).
      progress: makes a progress bar (e.g. `tqdm`) from the number of scenes; it advances per
        scene loaded.
      split: how `scene_ids` were chosen (`{"name": "test", "fractions": {...}}`), recorded
        in the summary so a split's output says which split it is.
    """
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with output_lock(out):
        return _generate(source, out, config, scene_ids, progress, split)


def _generate(source, out, config, scene_ids, progress, split=None) -> dict:
    start = time.perf_counter()
    if scene_ids is None:
        scene_ids = source.scene_ids()
    scene_ids = list(scene_ids)[: config.max_scenes] if config.max_scenes else list(scene_ids)
    summary = Summary()
    summary.scenes_total = len(scene_ids)
    # Entries the source could not even index are not part of any shard: a resumed run
    # rebuilds the source and finds them again.
    summary.skipped.extend(source_skips(source))
    chunks = [
        scene_ids[i : i + config.chunk_scenes]
        for i in range(0, len(scene_ids), config.chunk_scenes)
    ]
    bar = progress(len(scene_ids)) if progress else None
    select = parse_select(config.formats)
    report = validate.ValidationReport()
    shards = _prepare_shards(out / "shards", source, scene_ids, config)
    resumed = 0
    for number, chunk in enumerate(chunks):
        shard = shards / f"part-{number:05d}-of-{len(chunks):05d}.jsonl"
        state_file = shard.with_suffix(".state.json")
        done = _finished_shard(shard, state_file)
        if done is not None:
            # Finished by an earlier, interrupted run, on the same inputs: its lines and
            # counts are final.
            summary.merge_state(done["summary"])
            report.merge(validate.ValidationReport(**_report_fields(done["validation"])))
            resumed += 1
            if bar is not None:
                bar.update(len(chunk))
            continue
        part_summary, part_report = Summary(), validate.ValidationReport()
        inputs: set[str] = set()
        truth: dict = {}
        with JsonlWriter(shard) as writer:
            observations = load_observations(
                source, chunk, config, part_summary, bar, inputs, truth
            )
            frames = questions_for_observations(observations, config)
            write_ground_truth(shard.with_suffix(".truth.jsonl"), truth, frames, config)
            for frame_qa in frames:
                # Nothing leaves unchecked: bad records are counted in the summary, not written.
                frame_qa = validate.filter_frame_qa(frame_qa, part_report)
                if frame_qa is None:
                    continue
                # A QA none of the run's formats can ask (its box too thin for box text) is
                # not written and not counted.
                frame_qa = FrameQA(
                    frame_qa.observation,
                    [q for q in frame_qa.qas if has_format(frame_qa.observation, q, select)],
                )
                part_summary.add_frame(frame_qa)
                obs, image_root = frame_qa.observation, source.root
                if frame_qa.qas and obs.image_path is None and obs.image_bytes is not None:
                    obs, image_root = write_image_file(obs, out), out
                    part_summary.images_written += 1
                frame_qa = FrameQA(obs, frame_qa.qas)
                for record in format_records(
                    frame_qa, select, config, image_root, out, part_summary
                ):
                    writer.write(record)
        # The state file is written last: a shard without one is redone on restart.
        _write_atomic(
            state_file,
            json.dumps(
                {
                    "summary": part_summary.state(),
                    "validation": part_report.as_dict(),
                    "inputs": file_stats(inputs),
                }
            ),
        )
        summary.merge_state(part_summary.state())
        report.merge(part_report)
    if bar is not None:
        bar.close()
    _concatenate(
        [shards / f"part-{k:05d}-of-{len(chunks):05d}.jsonl" for k in range(len(chunks))],
        out / "qa.jsonl",
    )
    truth_parts = [
        shards / f"part-{k:05d}-of-{len(chunks):05d}.truth.jsonl" for k in range(len(chunks))
    ]
    if any(part.exists() for part in truth_parts):
        _concatenate([part for part in truth_parts if part.exists()], out / "ground_truth.jsonl")
    else:
        (out / "ground_truth.jsonl").unlink(missing_ok=True)  # a previous run's
    result = summary.as_dict(
        validation=report.as_dict(),
        source=source.name,
        root=str(source.root),
        seed=config.seed,
        seconds=round(time.perf_counter() - start, 2),
        shards={"total": len(chunks), "resumed": resumed},
        config=_plain(dataclasses.asdict(config)),
        split=split or {"name": "all"},
    )
    tmp = out / "summary.json.tmp"
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, out / "summary.json")
    return result


def write_ground_truth(
    path: pathlib.Path, truth: dict, frames: Sequence[FrameQA], config: GenerateConfig
) -> None:
    """Writes the views of `frames` that have exact ground truth to `path` (nothing if none).

    One line per view, in frame order (`writers.ground_truth.view_record`), whether or not
    the view got questions, so the file lists every view the QA can refer to.
    """
    views = [f for f in frames if (f.observation.scene_id, f.observation.frame_id) in truth]
    if not views:
        return
    with JsonlWriter(path) as writer:
        for frame_qa in views:
            obs = frame_qa.observation
            entry = truth[(obs.scene_id, obs.frame_id)]
            writer.write(ground_truth.view_record(entry, obs, config.relations))


def _write_atomic(path: pathlib.Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _finished_shard(shard: pathlib.Path, state_file: pathlib.Path) -> dict | None:
    """A finished shard's state, or None when it must be (re)done: unfinished, unreadable, or
    its input files changed (size or modification time) since it was written."""
    if not (shard.exists() and state_file.exists()):
        return None
    try:
        done = json.loads(state_file.read_text())
        keys = (*Summary._COUNTS, *Summary._COUNTERS, "answers", "skipped")
        if not isinstance(done["validation"], dict) or any(k not in done["summary"] for k in keys):
            raise KeyError("summary")  # written by another version, or torn
    except (OSError, ValueError, KeyError, TypeError):
        log.warning("%s is unreadable; redoing its shard", state_file)
        return None
    changed = _changed_inputs(done.get("inputs") or {})
    if changed:
        log.warning(
            "inputs of %s changed since it was written (%s%s); redoing it",
            shard.name,
            ", ".join(changed[:3]),
            ", ..." if len(changed) > 3 else "",
        )
        return None
    return done


def _report_fields(report: dict) -> dict:
    fields = dict(report)
    fields["reasons"] = collections.Counter(fields.get("reasons", {}))
    return fields


def _prepare_shards(
    shards: pathlib.Path, source: Source, scene_ids: Sequence[str], config: GenerateConfig
) -> pathlib.Path:
    """The shard folder of this run; shards of a run with other inputs are cleared first.

    Finished shards are reused only when the source, its index files (size and modification
    time), scene ids and settings are the same, so a restart continues exactly the run it
    interrupted; `_finished_shard` then checks each shard's own input files.
    """
    identity = json.dumps(
        {
            "source": source.name,
            "root": str(source.root),
            "options": {k: str(v) for k, v in sorted(source.options.items())},
            "scene_ids": list(scene_ids),
            "config": _plain(dataclasses.asdict(config)),
            # An info file or annotation JSON that changed may change every scene.
            "index_files": file_stats(_index_files(source)),
        },
        sort_keys=True,
    )
    digest = hashlib.sha256(identity.encode()).hexdigest()
    manifest = shards / "manifest.json"
    if shards.exists() and not shards.is_dir():
        raise UserError(f"{shards} is a file; the run keeps its shards there (remove it)")
    if shards.exists():
        try:
            previous = json.loads(manifest.read_text()).get("run")
        except (OSError, ValueError, AttributeError):
            previous = None  # missing or torn: nothing there can be trusted
        if previous != digest:
            log.warning("%s holds shards of another run; starting over", shards)
            shutil.rmtree(shards)
    shards.mkdir(parents=True, exist_ok=True)
    if not manifest.exists():
        _write_atomic(manifest, json.dumps({"run": digest}) + "\n")
    return shards


def _concatenate(parts: Sequence[pathlib.Path], path: pathlib.Path) -> None:
    """Joins finished shards into one file, atomically."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out)
    os.replace(tmp, path)


def write_image_file(obs: FrameObservation, out: pathlib.Path) -> FrameObservation:
    """Saves an in-memory image (rendered sources) under `out/images/`; returns the observation
    pointing at it, so JSONL trainers find a file, relative to `out`."""
    suffix = ".png" if obs.image_bytes[:8] == b"\x89PNG\r\n\x1a\n" else ".jpg"
    path = out / "images" / f"{obs.source}__{obs.scene_id}__{obs.frame_id}{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(obs.image_bytes)
    return dataclasses.replace(obs, image_path=str(path))


def format_records(
    frame_qa: FrameQA,
    select,
    config: GenerateConfig,
    image_root: str | None,
    out_dir: pathlib.Path,
    summary: Summary | None = None,
) -> list[dict]:
    """One frame's JSONL lines: each QA in its selected formats, images drawn if asked.

    Args:
      frame_qa: the frame and its QA.
      select: `formats.expand.parse_select` output ("all", K or format ids).
      config: the run config (`seed`, `write_images`).
      image_root: the folder `image` fields of raw formats are relative to (the source
        root, or `out_dir` for frames `write_image_file` saved).
      out_dir: where `images/` goes; drawn `image` fields are relative to it.
      summary: counts formats and written images when given.
    """
    obs = frame_qa.observation
    items = []
    for number, qa in enumerate(frame_qa.qas):
        qa_id = qa_id_of(obs, number)
        for fqa in expand_formats(obs, qa, select, config.seed, qa_id):
            items.append((number, qa, qa_id, fqa))
    drawn: dict[tuple[str, str], str] = {}
    raw_image = image_field(obs, image_root)
    if config.write_images and any(fqa.prompts for *_, fqa in items):
        pixels = overlay_images.frame_image(obs, image_root)
        drawn = overlay_images.write_frame_images(
            out_dir, obs, [(qa_id, fqa) for _, _, qa_id, fqa in items], pixels
        )
    if summary is not None:
        summary.images_written += len(drawn)
    records = []
    for number, qa, qa_id, fqa in items:
        image = drawn.get((qa_id, fqa.image_prompt), raw_image)
        records.append(chat_record(obs, qa, number, image_root, fqa=fqa, image=image))
        if summary is not None:
            summary.per_format[fqa.format_id] += 1
    return records


def _plain(value):
    """Makes a config dict JSON-safe (tuples to lists, numpy scalars to Python)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
