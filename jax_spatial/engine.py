"""The generation loop: scenes -> view-space observations -> relations -> QA -> JSONL.

Stages run in one direction and each is a plain function of the previous one's output:

    source.load(id) -> observe_scene -> batches_by_bucket -> pad_observations
      -> single_view_relations (jit) -> select_questions (jit) -> phrase_batch (host)
      -> expand_formats (host) -> chat_record -> qa.jsonl, summary.json
                               -> write_frame_images (jit drawing, with write_images)

A scene that fails anywhere before the jitted stages is skipped, counted and logged with its
reason; the run goes on. Scenes are processed in chunks, each written as a shard under
`shards/` that is finalised atomically (its state file last); a restart of the same run skips
finished shards, so an interrupted run resumes and loses or repeats nothing. `qa.jsonl` is the
shards joined in order. Records are written in scene-id order and frame order, whatever the
batching, and every random choice is keyed on (seed, scene id, frame id), so the output does not
depend on batch size or on how the scene ids were split across workers.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import logging
import os
import pathlib
import shutil
import time
from collections.abc import Callable, Iterable, Sequence

import jax
import numpy as np

from jax_spatial import batching, validate
from jax_spatial.formats.expand import expand_formats, parse_select
from jax_spatial.observe import FrameObservation, ObserveConfig, observe_scene
from jax_spatial.qa.phrase import phrase_batch
from jax_spatial.qa.select import QuotaConfig, select_questions
from jax_spatial.qa.types import QARecord
from jax_spatial.relations.single_view import RelationConfig, single_view_relations
from jax_spatial.sources import Source
from jax_spatial.writers import overlay_images
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
    # per QA), or comma-separated format ids. The default writes each QA once, in its own
    # caption text on the raw image, exactly as before formats existed: a run that draws
    # nothing must not emit lines that talk about a "red box" the image does not show.
    formats: str = "caption/raw"
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
    the largest bucket.
    """
    # Keyed by ids, not identity: `trim_to_bucket` hands back a copy for crowded frames.
    position = {(obs.scene_id, obs.frame_id): i for i, obs in enumerate(observations)}
    results = [FrameQA(obs, []) for obs in observations]
    for bucket, group in batching.batches_by_bucket(observations, config.batch_size):
        batch = batching.pad_observations(group, bucket, config.batch_size, config.seed)
        relations = single_view_relations(batch, config.relations)
        selection = jax.device_get(select_questions(batch, relations, config.quotas))
        for obs, qas in zip(group, phrase_batch(group, selection), strict=False):
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

    def skip(self, scene_id: str, reason: str) -> None:
        self.skipped.append({"scene_id": scene_id, "reason": reason})

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
        reasons = collections.Counter(s["reason"].split(":")[0] for s in self.skipped)
        return {
            "scenes": {
                "total": self.scenes_total,
                "done": self.scenes_done,
                "skipped": len(self.skipped),
                "skipped_by_reason": dict(reasons),
                "skipped_scenes": self.skipped,
            },
            "frames": self.frames,
            "frames_without_qa": self.frames_without_qa,
            "objects_visible": self.objects_visible,
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
) -> list[FrameObservation]:
    """Loads and observes scenes, skipping (and recording) the ones that fail.

    `bar` (a tqdm-like object) advances by one per scene: loading is the slow part.
    """
    observations = []
    for scene_id in scene_ids:
        if bar is not None:
            bar.update(1)
        try:
            scene = source.load(scene_id)
            observations.extend(observe_scene(scene, config.observe))
        except Exception as error:  # noqa: BLE001 - one bad scene must not end the run
            reason = f"{type(error).__name__}: {error}"
            log.warning("skipping scene %s: %s", scene_id, reason)
            summary.skip(scene_id, reason)
            continue
        summary.scenes_done += 1
    return observations


def generate(
    source: Source,
    out_dir: str | os.PathLike,
    config: GenerateConfig = GenerateConfig(),
    scene_ids: Sequence[str] | None = None,
    progress: Callable[[Iterable], Iterable] | None = None,
) -> dict:
    """Writes `qa.jsonl` and `summary.json` for a source into `out_dir`; returns the summary.

    Args:
      source: a built `Source`.
      out_dir: output folder (created).
      config: run settings.
      scene_ids: the ids to process (default: all of the source's, capped by `max_scenes`).
      progress: makes a progress bar (e.g. `tqdm`) from the number of scenes; it advances per
        scene loaded.
    """
    start = time.perf_counter()
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if scene_ids is None:
        scene_ids = source.scene_ids()
    scene_ids = list(scene_ids)[: config.max_scenes] if config.max_scenes else list(scene_ids)
    summary = Summary()
    summary.scenes_total = len(scene_ids)
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
        if shard.exists() and state_file.exists():
            # Finished by an earlier, interrupted run: its lines and counts are final.
            done = json.loads(state_file.read_text())
            summary.merge_state(done["summary"])
            report.merge(validate.ValidationReport(**_report_fields(done["validation"])))
            resumed += 1
            if bar is not None:
                bar.update(len(chunk))
            continue
        part_summary, part_report = Summary(), validate.ValidationReport()
        with JsonlWriter(shard) as writer:
            observations = load_observations(source, chunk, config, part_summary, bar)
            for frame_qa in questions_for_observations(observations, config):
                # Nothing leaves unchecked: bad records are counted in the summary, not written.
                frame_qa = validate.filter_frame_qa(frame_qa, part_report)
                if frame_qa is None:
                    continue
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
            json.dumps({"summary": part_summary.state(), "validation": part_report.as_dict()}),
        )
        summary.merge_state(part_summary.state())
        report.merge(part_report)
    if bar is not None:
        bar.close()
    _concatenate(
        [shards / f"part-{k:05d}-of-{len(chunks):05d}.jsonl" for k in range(len(chunks))],
        out / "qa.jsonl",
    )
    result = summary.as_dict(
        validation=report.as_dict(),
        source=source.name,
        root=str(source.root),
        seed=config.seed,
        seconds=round(time.perf_counter() - start, 2),
        shards={"total": len(chunks), "resumed": resumed},
        config=_plain(dataclasses.asdict(config)),
    )
    tmp = out / "summary.json.tmp"
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, out / "summary.json")
    return result


def _write_atomic(path: pathlib.Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _report_fields(report: dict) -> dict:
    fields = dict(report)
    fields["reasons"] = collections.Counter(fields.get("reasons", {}))
    return fields


def _prepare_shards(
    shards: pathlib.Path, source: Source, scene_ids: Sequence[str], config: GenerateConfig
) -> pathlib.Path:
    """The shard folder of this run; shards of a run with other inputs are cleared first.

    Finished shards are reused only when the source, scene ids and settings are the same, so
    a restart continues exactly the run it interrupted.
    """
    identity = json.dumps(
        {
            "source": source.name,
            "root": str(source.root),
            "options": {k: str(v) for k, v in sorted(source.options.items())},
            "scene_ids": list(scene_ids),
            "config": _plain(dataclasses.asdict(config)),
        },
        sort_keys=True,
    )
    digest = hashlib.sha256(identity.encode()).hexdigest()
    manifest = shards / "manifest.json"
    if shards.exists():
        previous = json.loads(manifest.read_text()).get("run") if manifest.exists() else None
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
