"""Multi-view generation: clips -> frames on disk, questions, ground truth, contact sheet.

    generate_clips([(source, scene_ids), ...], out, ClipRunConfig())

writes into `out`:

* `qa_clips.jsonl`: one question per line in InternVL's multi-image layout, written by the
  project's clip writer (`writers.clip_jsonl.write_clip_jsonl`, style `internvl`), and the
  frames of every clip with questions, once, as the source's encoded bytes:
  `frames/<clip folder>/000.png, 001.png, ...` (`<clip folder>` is the clip id with unsafe
  characters as `_`: `room_000003_uniform16`), plus `frames/<clip folder>/clip.gif`;
* `ground_truth_clips.jsonl`: the exact geometry of every clip (`writers.ground_truth_clips`);
* `contact_sheet_clips.png` (`viz.clip_sheet`) and `summary_clips.json`.

A `qa_clips.jsonl` line (`clip_jsonl.internvl_record`)::

    {"id": "room_000003:uniform16/4",
     "image": ["frames/room_000003_uniform16/000.png", ...],   # relative to out
     "width_list": [160, ...], "height_list": [120, ...],
     "conversations": [
        {"from": "human", "value": "Frame-1: <image>\nFrame-2: <image>\n...How many ...?"},
        {"from": "gpt", "value": "There are three chairs in this room."}],
     "meta": {"clip_id", "source", "scene_id", "task", "relation", "kind", "canonical",
              "choices", "value", "unit", "template", "frames" (positions), "frame_ids",
              "frame_time", "objects": [{"position", "index", "category", "caption"}],
              "qa_meta": {...}}}          # the task's own facts (`ClipQA.meta`)

`image` lists only the frames the question shows (`ClipQA.frames`: all for room clips, the
two views for a rotation pair).

Clips of several sources go into one run: the CLI's `--tasks multi_view` on
`procedural_clips` adds `rotation_pairs`, and the single-view procedural default adds a few
`procedural_clips` rooms and rotation pairs (`companion_sources`). Scenes a source cannot
load (`SceneSkip`) are skipped, counted and listed in the summary with their reason.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import os
import pathlib
import time
from collections.abc import Sequence

from jax_spatial.errors import UsageError
from jax_spatial.multiview import clip as clip_lib
from jax_spatial.multiview.qa_types import MULTI_VIEW_TASKS
from jax_spatial.multiview.tasks import TaskConfig, clip_questions
from jax_spatial.scene import SceneSkip
from jax_spatial.writers import clip_jsonl, ground_truth_clips

log = logging.getLogger(__name__)

SINGLE_VIEW_TASKS = ("position", "size", "existence", "counting")
TASK_GROUPS = {
    "single_view": SINGLE_VIEW_TASKS,
    "multi_view": MULTI_VIEW_TASKS,
    "all": SINGLE_VIEW_TASKS + MULTI_VIEW_TASKS,
}
# Sources whose scenes are made for clips: their default is the multi-view tasks.
CLIP_SOURCES = ("procedural_clips", "rotation_pairs")
QA_FILE = "qa_clips.jsonl"
SHEET_FILE = "contact_sheet_clips.png"
SUMMARY_FILE = "summary_clips.json"


# --- which tasks ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TaskPlan:
    """The task families of a run: single-view (`QARecord.task`) and multi-view ones."""

    single_view: tuple[str, ...]
    multi_view: tuple[str, ...]


def parse_tasks(text: str | None, source_name: str | None = None) -> TaskPlan:
    """`--tasks`: "single_view", "multi_view", "all", "auto" or a comma list of families.

    "auto" (and no value): all tasks for the procedural default (its single-view rooms plus a
    few procedural clips), the multi-view tasks for clip sources (`CLIP_SOURCES`), the
    single-view ones for every other source. Group names may be mixed with families
    ("single_view,route").

    Raises:
      UsageError: an unknown name, or an empty list (one line naming the known ones).
    """
    text = "auto" if text is None else text
    names = [t.strip() for t in str(text).split(",") if t.strip()]
    if not names:
        raise UsageError(f"--tasks {text!r}: no task named; {_known_tasks()}")
    chosen: list[str] = []
    for name in names:
        if name == "auto":
            if source_name in CLIP_SOURCES:
                chosen += MULTI_VIEW_TASKS
            elif source_name in (None, "procedural"):
                chosen += TASK_GROUPS["all"]
            else:
                chosen += SINGLE_VIEW_TASKS
        elif name in TASK_GROUPS:
            chosen += TASK_GROUPS[name]
        elif name in TASK_GROUPS["all"]:
            chosen.append(name)
        else:
            raise UsageError(f"--tasks {text!r}: unknown task {name!r}; {_known_tasks()}")
    return TaskPlan(
        tuple(t for t in SINGLE_VIEW_TASKS if t in chosen),
        tuple(t for t in MULTI_VIEW_TASKS if t in chosen),
    )


def _known_tasks() -> str:
    return "known: " + ", ".join(["auto", *TASK_GROUPS, *TASK_GROUPS["all"]])


def single_view_quotas(quotas, families: Sequence[str]):
    """`QuotaConfig` with the families not asked set to 0 (`qa.select.QuotaConfig`)."""
    return dataclasses.replace(
        quotas, **{name: 0 for name in SINGLE_VIEW_TASKS if name not in families}
    )


# --- settings -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ClipRunConfig:
    """Settings of a multi-view run.

    Attributes:
      seed: every random choice (`multiview.tasks`) is keyed on it.
      num_frames: clip length; None: the source's own `num_frames` (procedural clips render
        just those) or 16, VSI-Bench's middle length.
      mode: frame sampling (`clip.sample_clip`): "uniform" as VSI-Bench's evaluation.
      tasks: the multi-view task families asked.
      task_config: quotas and filters (`TaskConfig`).
      gif: write `clip.gif` beside each clip's frames (for people; trainers read the PNGs).
      sheet: write `contact_sheet_clips.png` of `sheet_count` questions.
    """

    seed: int = 0
    num_frames: int | None = None
    mode: str = "uniform"
    tasks: tuple[str, ...] = MULTI_VIEW_TASKS
    task_config: TaskConfig = TaskConfig()
    gif: bool = True
    sheet: bool = True
    sheet_count: int = 12


def companion_sources(
    source_name: str, source, seed: int, clips: int, rotation_pairs: int, scene_ids=None
) -> list[tuple[object, list[str] | None]]:
    """The `(source, scene ids)` a CLI run asks multi-view questions of.

    * the procedural default (single-view rooms of three views): `clips` walks of
      `procedural_clips` and `rotation_pairs` rotation pairs, both seeded with `seed`;
    * `procedural_clips`: the run's own clips plus `rotation_pairs` rotation pairs (the
      rotation task needs them);
    * any other source (`rotation_pairs`, ScanNet, ...): its own scenes only.
    """
    from jax_spatial.sources import get_source

    out: list = []
    if source_name == "procedural":
        if clips > 0:
            out.append((get_source("procedural_clips", None, num_scenes=clips, seed=seed), None))
    else:
        out.append((source, scene_ids))
    if source_name in ("procedural", "procedural_clips") and rotation_pairs > 0:
        out.append((get_source("rotation_pairs", None, num_pairs=rotation_pairs, seed=seed), None))
    return out


# --- loading ------------------------------------------------------------------------------------


def load_clip_set(sources, config: ClipRunConfig, skipped: list):
    """Clips of every `(source, scene ids)` in order, and alpha-shape room areas of scans.

    Returns `(clips, room_areas)`: a scene with scan points and no floor polygon gets
    VSI-Bench's room size (`room.room_area_from_points`, seeded with the run's seed).
    """
    from jax_spatial.multiview import room

    clips, areas = [], {}
    for source, scene_ids in sources:
        ids = source.scene_ids() if scene_ids is None else scene_ids
        rotation = source.name == "rotation_pairs"
        frames = 2 if rotation else (config.num_frames or getattr(source, "num_frames", 16))
        for scene_id in ids:
            try:
                scene = source.load(scene_id)
                clip = clip_lib.sample_clip(scene, frames, config.mode, seed=config.seed)
            except SceneSkip as err:
                log.warning("skipping scene %s: %s", scene_id, err)
                skipped.append(
                    {"source": source.name, "scene_id": scene_id, "reason": str(err),
                     "file": err.file, "field": err.field}
                )  # fmt: skip
                continue
            if clip.room_polygon is None and scene.points is not None and len(scene.points):
                area = room.room_area_from_points(scene.points, seed=config.seed)
                areas[clip.clip_id] = (area, "alpha_shape")
            clips.append(clip)
    return clips, areas


# --- writing ------------------------------------------------------------------------------------


def write_gifs(clips, out: pathlib.Path) -> int:
    """`frames/<clip folder>/clip.gif` beside the frames `write_clip_jsonl` wrote; returns how
    many (clips without questions have no frame folder and get none)."""
    count = 0
    for clip in clips:
        folder = out / "frames" / clip_jsonl.clip_folder(clip.clip_id)
        if folder.is_dir() and clip.num_frames:
            clip_lib.save_gif(clip, folder / "clip.gif")
            count += 1
    return count


def _summary(clips, per_clip, skipped, seconds, config) -> dict:
    per_task, per_relation = collections.Counter(), collections.Counter()
    answers: dict = collections.defaultdict(collections.Counter)
    for questions in per_clip:
        for qa in questions:
            per_task[qa.task] += 1
            per_relation[f"{qa.task}/{qa.relation}"] += 1
            if qa.kind == "multiple_choice":
                answers[f"{qa.task}/{qa.relation}/{len(qa.choices)}"][qa.canonical] += 1
    balance = {
        key: {
            "total": sum(c.values()),
            "share": {k: round(v / sum(c.values()), 4) for k, v in sorted(c.items())},
        }
        for key, c in sorted(answers.items())
    }
    return {
        "clips": {
            "total": len(clips) + len(skipped),
            "done": len(clips),
            "with_questions": sum(1 for q in per_clip if q),
            "skipped": len(skipped),
            "skipped_scenes": skipped,
            "by_source": dict(collections.Counter(c.source for c in clips)),
        },
        "frames": sum(c.num_frames for c in clips),
        "qa_total": sum(per_task.values()),
        "per_task": {t: per_task[t] for t in MULTI_VIEW_TASKS if per_task[t]},
        "per_relation": dict(sorted(per_relation.items())),
        "letter_balance": balance,
        "tasks": list(config.tasks),
        "seed": config.seed,
        "seconds": round(seconds, 2),
        "config": json.loads(json.dumps(dataclasses.asdict(config), default=str)),
    }


def generate_clips(
    sources, out, config: ClipRunConfig = ClipRunConfig(), clips=None, split: dict | None = None
) -> dict:
    """Writes the multi-view outputs of a run into `out` (module docstring); returns the summary.

    Args:
      sources: `(source, scene ids or None)` pairs, read in order.
      out: output folder (created); held locked (`engine.output_lock`) while writing.
      config: settings.
      clips: already loaded clips to use instead of `sources` (notebooks, tests).
    """
    from jax_spatial.engine import output_lock

    start = time.perf_counter()
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with output_lock(out):
        skipped: list = []
        if clips is None:
            clips, areas = load_clip_set(sources, config, skipped)
        else:
            clips, areas = list(clips), {}
        per_clip = clip_questions(clips, config.tasks, config.task_config, config.seed, areas)
        ground_truth_clips.write_ground_truth_clips(clips, out / ground_truth_clips.FILE_NAME)
        # The project's InternVL clip writer, its `internvl.jsonl` named for this run.
        written = clip_jsonl.write_clip_jsonl(zip(clips, per_clip, strict=True), out, "internvl")
        os.replace(written.path, out / QA_FILE)
        skipped += written.skipped
        if config.gif:
            write_gifs(clips, out)
        summary = _summary(clips, per_clip, skipped, time.perf_counter() - start, config)
        if config.sheet and summary["qa_total"]:
            from jax_spatial.viz import clip_sheet

            clip_sheet.save_clip_sheet(
                read_records(out / QA_FILE), out, out / SHEET_FILE, count=config.sheet_count,
                seed=config.seed, truth=out / ground_truth_clips.FILE_NAME,
            )  # fmt: skip
        summary["seconds"] = round(time.perf_counter() - start, 2)
        summary["split"] = split or {"name": "all"}
        (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def read_records(path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def summary_text(summary: dict, out) -> str:
    """The lines the CLI prints after a multi-view run."""
    c = summary["clips"]
    lines = [
        f"wrote {summary['qa_total']} multi-view QA from {c['done']}/{c['total']} clips "
        f"({summary['frames']} frames) in {summary['seconds']} s -> {out}/{QA_FILE}",
        "per task: " + (", ".join(f"{k} {v}" for k, v in summary["per_task"].items()) or "none"),
    ]
    if c["skipped"]:
        lines.append(f"skipped {c['skipped']} scenes:")
        lines += [
            f"  {s.get('scene_id') or s.get('clip_id')}: {s['reason']}" for s in c["skipped_scenes"]
        ]
    return "\n".join(lines)


def run_for_cli(prepared, plan: TaskPlan, args) -> dict:
    """The multi-view part of `jax-spatial generate` (`cli._generate`)."""
    from jax_spatial.datasets.examples import scene_split

    seed = prepared.run.seed
    clips = getattr(args, "clips", 4)
    pairs = getattr(args, "rotation_pairs", 4)
    # Multi-view answers come from the exact boxes: a lifting wrapper is taken off.
    base = getattr(prepared.source, "inner", prepared.source)
    scene_ids = prepared.scene_ids
    if prepared.source_name != "procedural":
        scene_ids = base.scene_ids() if scene_ids is None else scene_ids
        if prepared.run.max_scenes:
            scene_ids = scene_ids[: prepared.run.max_scenes]
    sources = companion_sources(prepared.source_name, base, seed, clips, pairs, scene_ids)
    if prepared.split != "all":
        # The run's own scenes were split by `prepare_run`; companions by the same hash rule,
        # and a companion with none in the split simply adds nothing.
        sources = [
            (s, ids if ids is not None else [
                i for i in s.scene_ids()
                if scene_split(i, prepared.fractions) == prepared.split
            ])
            for s, ids in sources
        ]  # fmt: skip
    config = ClipRunConfig(seed=seed, tasks=plan.multi_view, sheet=bool(args.sheet))
    return generate_clips(sources, prepared.out, config, split=prepared.split_record())


__all__ = [
    "CLIP_SOURCES",
    "QA_FILE",
    "SHEET_FILE",
    "SINGLE_VIEW_TASKS",
    "SUMMARY_FILE",
    "TASK_GROUPS",
    "ClipRunConfig",
    "TaskPlan",
    "companion_sources",
    "generate_clips",
    "load_clip_set",
    "parse_tasks",
    "read_records",
    "run_for_cli",
    "single_view_quotas",
    "summary_text",
    "write_gifs",
]
