"""`bench build`: a balanced benchmark of one split, per task x instruction format.

    source.load -> observe -> relations, selection (jit) -> phrase -> every suitable format
      -> candidates, kept per (task, format) cell and answer class -> balanced pick per cell
      -> letters re-balanced -> images drawn -> bench.jsonl + manifest.json + images/

The questions are the engine's (`engine.load_observations`, `engine.questions_for_observations`,
validation and `formats.expand_formats`, exactly the path of `generate --formats all`), so a
benchmark item's id is the id of its `generate` line (`<qa id>@<format>`, the qa id alone for
`caption/raw`), and its text is that line's, apart from letters moved by the re-lettering below.

Cells are keyed by the QA's task string and format id, so a new task gets its own cells with no
change here. Per cell at most `per_cell` items are picked:

* **Order**: each item gets a priority, the SHA-256 of `"<seed>|<item id>"`; a cell takes its
  candidates in that order. The priority is per item, not per question, so each cell is an
  independent draw and a task's cells hold as many different questions as the data has (one
  priority per question would put the same few questions in all 19 formats: 46 distinct
  questions in 580 items on 8 procedural rooms, against 159 this way). The scorer's intervals
  resample items as independent, which this keeps closer to true.
* **Yes/no balance**: the yes share of a cell's yes/no items is within `tolerance` (2 points)
  of one half. With fewer than 25 such items that means equal numbers; an odd leftover is
  dropped, or the slot goes to another kind of question of the same cell. Every cell balanced
  makes the whole benchmark balanced (a weighted mean of shares in [0.48, 0.52] stays there).
* **Size**: the largest count up to `per_cell` that the cell's candidates allow under that
  balance; cells with fewer are listed in the manifest (`short_cells`) with what they had.
* **Letters**: multiple-choice items are re-lettered round-robin (A, B, A, ... over the
  benchmark in cell order), so each letter's count differs by at most one per cell and
  overall. Re-lettering swaps which object is choice A and which B in the question, the
  choices and the answer ("(B) The chair is further left than the table."), re-rendered from
  the templates, so text and canonical letter agree; each object keeps its drawn prompt and
  the name that goes with it ("the object in the red box"). A record whose choices are not
  object slots keeps its letter (`meta.relettered` is absent).

Memory stays bounded by the cells, not by the source: per cell and answer class only the
`per_cell` best candidates (and the frames they refer to) are held while scenes stream by.

Output, all relative to the benchmark folder `B`: `bench.jsonl` (one item per line, keys in
`ITEM_KEYS`), `images/` (each item's image: the frame as the source encoded it for raw formats,
the overlays drawn for drawn ones, JPEG), `manifest.json` (counts, balance, settings; no
timestamps, so one command run twice writes identical files).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import heapq
import json
import logging
import math
import os
import pathlib
import re
import shutil
import time
from collections.abc import Callable, Iterable, Sequence

from jax_spatial import __version__, validate
from jax_spatial.errors import UserError
from jax_spatial.formats.expand import expand_formats, has_format, object_reference
from jax_spatial.formats.spec import FORMATS, FormattedQA
from jax_spatial.observe import FrameObservation
from jax_spatial.qa.phrase import render_text
from jax_spatial.qa.types import QARecord
from jax_spatial.writers import overlay_images
from jax_spatial.writers.jsonl import box_to_1000, qa_id_of

log = logging.getLogger(__name__)

ITEM_KEYS = (
    "id",
    "images",
    "question",
    "answer",
    "canonical",
    "choices",
    "task",
    "relation",
    "format",
    "answer_type",
    "source",
    "scene",
    "meta",
)
LETTERS = "ABCD"
# The template slots that hold the choices, in letter order (`qa.phrase`: "(A) {a} (B) {b}").
CHOICE_SLOTS = ("a", "b", "c", "d")
# Within 2 points of one half: at 25 or more yes/no items an odd count is allowed.
BALANCE_TOLERANCE = 0.02
MANIFEST_VERSION = 1
# Task order of the manifest and of bench.jsonl; tasks not listed follow, sorted by name.
TASK_ORDER = ("position", "size", "existence", "counting")


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """How items are picked (the engine's settings come in a `GenerateConfig`).

    Attributes:
      per_cell: items per (task, format) cell where the data allows.
      tolerance: largest distance of a cell's yes share from one half.
    """

    per_cell: int = 10
    tolerance: float = BALANCE_TOLERANCE

    def __post_init__(self):
        if not isinstance(self.per_cell, int) or self.per_cell < 1:
            raise ValueError(f"per_cell must be a positive integer, got {self.per_cell!r}")
        if not 0.0 <= self.tolerance < 0.5:
            raise ValueError(f"tolerance must be in [0, 0.5), got {self.tolerance}")


@dataclasses.dataclass
class Candidate:
    """One QA in one format: a possible benchmark item."""

    obs: FrameObservation
    qa: QARecord
    qa_id: str
    fqa: FormattedQA
    priority: int
    # The canonical letter before `balance_letters` moved it; None when it did not.
    original_letter: str | None = None

    @property
    def item_id(self) -> str:
        """The id of this line in `generate`'s qa.jsonl (`writers.jsonl.chat_record`)."""
        fmt = self.fqa.format_id
        return self.qa_id if fmt == "caption/raw" else f"{self.qa_id}@{fmt}"

    @property
    def cell(self) -> tuple[str, str]:
        return self.qa.task, self.fqa.format_id

    @property
    def answer_class(self) -> str:
        """ "yes" / "no" for yes/no questions (balanced per cell), "other" for the rest."""
        return self.qa.canonical if self.qa.kind == "yes_no" else "other"


def item_priority(seed: int, item_id: str) -> int:
    """The order a cell takes its candidates in: the first 8 bytes of SHA-256 of
    `"<seed>|<item id>"` (lowest first)."""
    return int.from_bytes(hashlib.sha256(f"{int(seed)}|{item_id}".encode()).digest()[:8], "big")


def is_balanced(yes: int, no: int, tolerance: float = BALANCE_TOLERANCE) -> bool:
    """Whether a yes share of `yes / (yes + no)` is within `tolerance` of one half."""
    total = yes + no
    return total == 0 or abs(yes / total - 0.5) <= tolerance + 1e-12


def plan_cell(
    per_cell: int, yes: int, no: int, other: int, prefer_yes_no: int, tolerance: float
) -> tuple[int, int, int]:
    """How many yes, no and other items a cell takes: `(y, z, o)`.

    The largest total up to `per_cell` with `y <= yes`, `z <= no`, `o <= other` and `y, z`
    balanced (`is_balanced`); among the splits of that total, the one whose yes/no count is
    nearest `prefer_yes_no` (the count among the cell's first questions by priority, so the
    cell keeps the mix of kinds its data has), then the larger one.
    """
    for total in range(min(per_cell, yes + no + other), -1, -1):
        best = None
        for t in range(max(0, total - other), min(total, yes + no) + 1):
            # Yes counts within the tolerance of t / 2 that the candidates allow.
            low = max(t - no, math.ceil(t * (0.5 - tolerance) - 1e-9))
            high = min(yes, math.floor(t * (0.5 + tolerance) + 1e-9))
            ys = [y for y in range(max(low, 0), high + 1) if is_balanced(y, t - y, tolerance)]
            if not ys:
                continue
            y = min(ys, key=lambda v: (abs(2 * v - t), -v))
            key = (abs(t - prefer_yes_no), -t)
            if best is None or key < best[0]:
                best = (key, (y, t - y, total - t))
        if best is not None:
            return best[1]
    return 0, 0, 0


class CellPool:
    """A cell's candidates: the `keep` best (lowest priority) per answer class, and counts.

    Only the kept candidates (and the frames they refer to) stay in memory; `available`
    counts every candidate seen.
    """

    def __init__(self, keep: int):
        self.keep = keep
        self._heaps: dict[str, list] = collections.defaultdict(list)
        self.available: collections.Counter = collections.Counter()

    def add(self, candidate: Candidate) -> None:
        klass = candidate.answer_class
        self.available[klass] += 1
        # Max-heap on priority (negated) so the worst kept one is evicted; the item id breaks
        # ties without comparing candidates.
        entry = (-candidate.priority, candidate.item_id, candidate)
        heap = self._heaps[klass]
        if len(heap) < self.keep:
            heapq.heappush(heap, entry)
        elif entry > heap[0]:
            heapq.heapreplace(heap, entry)

    def best(self, klass: str) -> list[Candidate]:
        """The kept candidates of a class, best first."""
        return [c for _, _, c in sorted(self._heaps.get(klass, []), key=lambda e: (-e[0], e[1]))]

    def pick(self, per_cell: int, tolerance: float) -> list[Candidate]:
        """The cell's items (`plan_cell`), best priority first within each class."""
        yes, no, other = self.best("yes"), self.best("no"), self.best("other")
        merged = sorted(yes + no + other, key=lambda c: (c.priority, c.item_id))
        top = merged[: min(per_cell, len(merged))]
        prefer = sum(c.answer_class != "other" for c in top)
        y, z, o = plan_cell(
            per_cell,
            self.available["yes"],
            self.available["no"],
            self.available["other"],
            prefer,
            tolerance,
        )
        picked = yes[:y] + no[:z] + other[:o]
        return sorted(picked, key=lambda c: (c.priority, c.item_id))


# ---------------------------------------------------------------------------------- letters


def relettered(obs: FrameObservation, qa: QARecord, letter: int) -> QARecord | None:
    """A multiple-choice record with its correct choice moved to position `letter`.

    The correct choice swaps places with the one at `letter`; objects, object slots, the
    `letter` slot and the canonical answer follow, and the record's own text (caption names)
    is rendered again. None when the record's choices are not object slots (nothing to move
    consistently). The record itself when the letter is already `letter`.
    """
    k = len(qa.choices)
    slots = CHOICE_SLOTS[:k]
    if qa.kind != "multiple_choice" or not 0 < k <= len(CHOICE_SLOTS) or letter >= k:
        return None
    if qa.canonical not in LETTERS[:k] or any(s not in qa.object_slots for s in slots):
        return None
    old = LETTERS.index(qa.canonical)
    if old == letter:
        return qa
    positions = [qa.object_slots[s] for s in slots]
    moved = list(positions)
    moved[old], moved[letter] = positions[letter], positions[old]
    object_slots = {**qa.object_slots, **dict(zip(slots, moved, strict=True))}
    rest = [o for o in qa.objects if o not in positions]
    values = dict(qa.slots)
    if "letter" in values:
        values["letter"] = LETTERS[letter]
    record = dataclasses.replace(
        qa,
        objects=moved + rest,
        object_slots=object_slots,
        slots=values,
        canonical=LETTERS[letter],
    )
    names = {o: object_reference(obs, o, "caption") for o in set(object_slots.values())}
    question, answer, choices = render_text(record, lambda o: names[o][0], lambda o: names[o][1])
    return dataclasses.replace(record, question=question, answer=answer, choices=choices)


def balance_letters(candidates: Sequence[Candidate]) -> tuple[list[Candidate], int]:
    """Re-letters multiple-choice candidates round-robin; returns them (same order) and how
    many changed.

    Candidates are taken in their given order (cell order, then priority) per number of
    choices, and the i-th gets letter `i mod k`: each letter's count differs by at most one
    in every cell and over the whole list. A candidate that cannot be re-lettered keeps its
    letter.
    """
    counters: collections.Counter = collections.Counter()
    out, changed = [], 0
    for cand in candidates:
        if cand.qa.kind != "multiple_choice" or not cand.qa.choices:
            out.append(cand)
            continue
        k = len(cand.qa.choices)
        target = counters[k] % k
        counters[k] += 1
        record = relettered(cand.obs, cand.qa, target)
        if record is None or record is cand.qa:
            out.append(cand)
            continue
        fqa = reformatted(cand.obs, record, cand.fqa)
        out.append(dataclasses.replace(cand, qa=record, fqa=fqa, original_letter=cand.qa.canonical))
        changed += 1
    return out, changed


def reformatted(obs: FrameObservation, record: QARecord, fqa: FormattedQA) -> FormattedQA:
    """`fqa` (a format of a record) re-rendered for `record`, the record re-lettered.

    Each object keeps its prompt (colour, mark label) and so its name ("the object in the red
    box", "region 3"): the picture is the one drawn for the original, and re-lettering only
    swaps the order the choices are listed in. Prompts follow the new mention order.
    """
    prompts = {p.object: p for p in fqa.prompts}
    objects = list(dict.fromkeys(record.objects))
    if fqa.format_id == "caption/raw":
        question, answer, choices = record.question, record.answer, list(record.choices)
    else:
        refs = {o: object_reference(obs, o, fqa.text_ref, prompts.get(o)) for o in objects}
        question, answer, choices = render_text(record, lambda o: refs[o][0], lambda o: refs[o][1])
    return dataclasses.replace(
        fqa,
        question=question,
        answer=answer,
        choices=tuple(choices),
        prompts=tuple(prompts[o] for o in objects if o in prompts),
    )


# ---------------------------------------------------------------------------------- items


def answer_type(kind: str) -> str:
    """The item's `answer_type` for a QA kind: yes_no, multiple_choice, count, else number."""
    return kind if kind in ("yes_no", "multiple_choice", "count") else "number"


def item_record(cand: Candidate, images: list[str]) -> dict:
    """The `bench.jsonl` line of a picked candidate (keys in `ITEM_KEYS` order)."""
    obs, qa, fqa = cand.obs, cand.qa, cand.fqa
    slot = {pos: k for k, pos in reversed(list(enumerate(qa.objects)))}
    meta = {
        "frame_id": obs.frame_id,
        "qa_id": cand.qa_id,
        "template_id": qa.template_id,
        "answer_template_id": qa.answer_template_id,
        "category": qa.category,
        "kind": qa.kind,
        "width": obs.width,
        "height": obs.height,
        "objects": [
            {
                "index": int(obs.object_index[pos]),
                "category": obs.categories[pos],
                "box": [round(float(v), 2) for v in obs.box2d[pos]],
                "box_1000": box_to_1000(obs.box2d[pos], obs.width, obs.height),
            }
            for pos in qa.objects
        ],
        "prompts": [
            {"object": slot[p.object], "kind": p.kind, "colour": p.colour, "label": p.label}
            for p in fqa.prompts
        ],
        "geometry": obs.geometry or {"boxes": "annotated"},
    }
    kind = answer_type(qa.kind)
    if kind in ("count", "number"):
        meta["value"] = int(qa.canonical) if kind == "count" else float(qa.canonical)
        meta["unit"] = qa.slots.get("unit") if kind == "number" else None
    if cand.original_letter is not None:
        meta["relettered"] = {"from": cand.original_letter, "to": qa.canonical}
    return {
        "id": cand.item_id,
        "images": images,
        "question": fqa.question,
        "answer": fqa.answer,
        "canonical": qa.canonical,
        "choices": list(fqa.choices),
        "task": qa.task,
        "relation": qa.relation,
        "format": fqa.format_id,
        "answer_type": kind,
        "source": obs.source,
        "scene": obs.scene_id,
        "meta": meta,
    }


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_part(text: str) -> str:
    """A path component for an id part: unsafe characters to `_`, plus a short hash of the
    original when anything changed (so two ids never share a file)."""
    clean = _UNSAFE.sub("_", str(text))
    if clean in ("", ".", "..") or clean != text:
        clean = f"{clean.strip('.') or '_'}-{hashlib.sha256(str(text).encode()).hexdigest()[:8]}"
    return clean


def frame_stem(obs: FrameObservation) -> str:
    """ "procedural/proc_000008/view_0": the frame's image path under `images/`, no suffix."""
    return "/".join(safe_part(p) for p in (obs.source, obs.scene_id, obs.frame_id))


def _frame_bytes(obs: FrameObservation, image_root: str | None) -> tuple[bytes, str]:
    """The frame's encoded bytes as the source gave them, and a file suffix for them."""
    if obs.image_bytes is not None:
        data = obs.image_bytes
    else:
        path = pathlib.Path(obs.image_path)
        if image_root and not path.is_absolute():
            path = pathlib.Path(image_root) / path
        data = path.read_bytes()
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return data, ".png"
    if data[:3] == b"\xff\xd8\xff":
        return data, ".jpg"
    suffix = pathlib.Path(obs.image_path).suffix.lower() if obs.image_path else ""
    return data, suffix or ".img"


def write_images(
    picked: Sequence[Candidate], folder: pathlib.Path, image_root: str | None
) -> dict[str, str]:
    """Writes every picked item's image under `folder/images/`; returns item id -> path
    relative to `folder`.

    Raw formats get the frame's own bytes (one file per frame); drawn formats get the
    overlays drawn by the JSONL exporter's jitted path (`writers.overlay_images`), one JPEG
    per (question, image prompt, letter order), shared by the formats that draw the same.
    """
    by_frame: dict[tuple[str, str, str], list[Candidate]] = collections.defaultdict(list)
    for cand in picked:
        by_frame[(cand.obs.source, cand.obs.scene_id, cand.obs.frame_id)].append(cand)
    paths: dict[str, str] = {}
    for key in sorted(by_frame):
        group = by_frame[key]
        obs = group[0].obs
        raw = [c for c in group if not c.fqa.prompts]
        drawn = [c for c in group if c.fqa.prompts]
        if raw:
            data, suffix = _frame_bytes(obs, image_root)
            name = f"images/{frame_stem(obs)}{suffix}"
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
            for cand in raw:
                paths[cand.item_id] = name
        if drawn:
            pixels = overlay_images.frame_image(obs, image_root)
            jobs = [(_image_key(c), c.fqa) for c in drawn]
            written = overlay_images.write_frame_images(folder, obs, jobs, pixels)
            for (image_key, fqa), cand in zip(jobs, drawn, strict=True):
                paths[cand.item_id] = written[(image_key, fqa.image_prompt)]
    return paths


def _image_key(cand: Candidate) -> str:
    number = cand.qa_id.rsplit("/", 1)[1]
    key = f"{frame_stem(cand.obs)}/{safe_part(number)}"
    # A re-lettered record lists its prompts in another order, and overlapping masks blend in
    # prompt order: its own file.
    return key + (f"~{cand.qa.canonical}" if cand.original_letter is not None else "")


# ---------------------------------------------------------------------------------- build


def task_key(task: str) -> tuple:
    return (TASK_ORDER.index(task), "") if task in TASK_ORDER else (len(TASK_ORDER), task)


def cell_key(cell: tuple[str, str]) -> tuple:
    task, fmt = cell
    return (*task_key(task), FORMATS.index(fmt) if fmt in FORMATS else len(FORMATS), fmt)


def collect_candidates(
    source,
    scene_ids: Sequence[str],
    run,
    config: BenchConfig,
    summary,
    progress: Callable[[int], object] | None = None,
) -> tuple[dict[tuple[str, str], CellPool], dict]:
    """Streams the scenes through the engine and pools every (QA, format) per cell.

    Args:
      source: a built source.
      scene_ids: the scenes to read, in order.
      run: `engine.GenerateConfig` (its `formats` is used as given; the benchmark passes
        "all").
      config: the benchmark settings.
      summary: an `engine.Summary` that counts scenes, frames and skips.
      progress: makes a tqdm-like bar from the number of scenes.

    Returns:
      (pools by cell, counts: frames, questions, candidates, validation).
    """
    from jax_spatial import engine
    from jax_spatial.formats.expand import parse_select

    select = parse_select(run.formats)
    pools: dict[tuple[str, str], CellPool] = {}
    report = validate.ValidationReport()
    counts = collections.Counter()
    bar = progress(len(scene_ids)) if progress else None
    for start in range(0, len(scene_ids), run.chunk_scenes):
        chunk = scene_ids[start : start + run.chunk_scenes]
        observations = engine.load_observations(source, chunk, run, summary, bar)
        for frame_qa in engine.questions_for_observations(observations, run):
            # The same checks and filters as `engine.generate`, so question numbers (and ids)
            # are those of `generate --formats all`.
            frame_qa = validate.filter_frame_qa(frame_qa, report)
            if frame_qa is None:
                continue
            obs = frame_qa.observation
            qas = [q for q in frame_qa.qas if has_format(obs, q, select)]
            summary.add_frame(engine.FrameQA(obs, qas))
            for number, qa in enumerate(qas):
                qa_id = qa_id_of(obs, number)
                counts["questions"] += 1
                for fqa in expand_formats(obs, qa, select, run.seed, qa_id):
                    cand = Candidate(obs, qa, qa_id, fqa, 0)
                    cand.priority = item_priority(run.seed, cand.item_id)
                    pool = pools.setdefault(cand.cell, CellPool(config.per_cell))
                    pool.add(cand)
                    counts["candidates"] += 1
    if bar is not None:
        bar.close()
    return pools, {
        "questions": counts["questions"],
        "candidates": counts["candidates"],
        "validation": report.as_dict(),
    }


def pick_items(
    pools: dict[tuple[str, str], CellPool], config: BenchConfig
) -> tuple[list[Candidate], int]:
    """Balanced picks of every cell, in cell order, letters re-balanced.

    Returns:
      (candidates, how many were re-lettered).
    """
    picked: list[Candidate] = []
    for cell in sorted(pools, key=cell_key):
        picked += pools[cell].pick(config.per_cell, config.tolerance)
    return balance_letters(picked)


def bench_counts(items: Sequence[dict]) -> dict:
    """Counts of a list of `bench.jsonl` items: per cell, task, format, answer type; the yes
    and letter rates, overall and per cell."""
    cells: dict = collections.defaultdict(collections.Counter)
    per_task, per_format, per_type = (collections.Counter() for _ in range(3))
    yes_no = collections.Counter()
    letters = collections.Counter()
    cell_yes: dict = collections.defaultdict(collections.Counter)
    cell_letters: dict = collections.defaultdict(collections.Counter)
    for item in items:
        task, fmt = item["task"], item["format"]
        cells[task][fmt] += 1
        per_task[task] += 1
        per_format[fmt] += 1
        per_type[item["answer_type"]] += 1
        if item["answer_type"] == "yes_no":
            yes_no[item["canonical"]] += 1
            cell_yes[(task, fmt)][item["canonical"]] += 1
        elif item["answer_type"] == "multiple_choice":
            letters[item["canonical"]] += 1
            cell_letters[(task, fmt)][item["canonical"]] += 1

    def rates(counter: collections.Counter, keys: Iterable[str]) -> dict:
        total = sum(counter.values())
        return {
            "n": total,
            "counts": {k: counter[k] for k in keys},
            "rates": {k: round(counter[k] / total, 4) if total else None for k in keys},
        }

    letter_keys = sorted(set(letters) | {"A", "B"})
    worst_yes = (
        max(
            (abs(c["yes"] / (c["yes"] + c["no"]) - 0.5), f"{t}|{f}")
            for (t, f), c in cell_yes.items()
        )
        if cell_yes
        else (0.0, None)
    )
    return {
        "items": len(items),
        "cells": {
            t: {f: cells[t][f] for f in sorted(cells[t], key=lambda f: cell_key((t, f)))}
            for t in sorted(cells, key=task_key)
        },
        "per_task": {t: per_task[t] for t in sorted(per_task, key=task_key)},
        "per_format": {
            f: per_format[f] for f in sorted(per_format, key=lambda f: cell_key(("", f)))
        },
        "per_answer_type": dict(sorted(per_type.items())),
        "yes_no": {
            **rates(yes_no, ("yes", "no")),
            "worst_cell": {"cell": worst_yes[1], "distance_from_half": round(worst_yes[0], 4)},
            "per_cell": {
                f"{t}|{f}": rates(c, ("yes", "no"))["rates"]["yes"]
                for (t, f), c in sorted(cell_yes.items(), key=lambda kv: cell_key(kv[0]))
            },
        },
        "letters": {
            **rates(letters, letter_keys),
            "per_cell": {
                f"{t}|{f}": dict(sorted(c.items()))
                for (t, f), c in sorted(cell_letters.items(), key=lambda kv: cell_key(kv[0]))
            },
        },
    }


def build_bench(
    source,
    out_dir: str | os.PathLike,
    run,
    config: BenchConfig = BenchConfig(),
    scene_ids: Sequence[str] | None = None,
    *,
    about: dict | None = None,
    progress: Callable[[int], object] | None = None,
) -> dict:
    """Builds a benchmark into `out_dir`; returns its manifest.

    Args:
      source: a built source (`cli.prepare_run` builds it from flags).
      out_dir: the benchmark folder (created; a previous benchmark there is replaced, its
        `verdicts.json` kept).
      run: `engine.GenerateConfig`; `formats` should be "all" (every suitable format).
      config: per-cell count and balance tolerance.
      scene_ids: the scenes (default: all the source lists), capped by `run.max_scenes`.
      about: what the manifest records of how it was made: `command`, `source` (name, root,
        options, lift), `split` (name, fractions). JSON-safe.
      progress: makes a progress bar from the number of scenes.
    """
    from jax_spatial import engine

    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images = out / "images"
    if images.exists() and not (out / "manifest.json").is_file():
        raise UserError(
            f"{out} holds images/ but no manifest.json: not a benchmark folder; "
            "choose an empty or a benchmark --out"
        )
    with engine.output_lock(out):
        start = time.perf_counter()
        ids = list(source.scene_ids() if scene_ids is None else scene_ids)
        if run.max_scenes:
            ids = ids[: run.max_scenes]
        summary = engine.Summary()
        summary.scenes_total = len(ids)
        summary.skipped.extend(engine.source_skips(source))
        pools, counts = collect_candidates(source, ids, run, config, summary, progress)
        picked, changed = pick_items(pools, config)
        partial = out / ".images.partial"
        if partial.exists():
            shutil.rmtree(partial)
        partial.mkdir()
        # Drawn into a side folder and swapped in at the end: a crash leaves the previous
        # benchmark whole.
        paths = write_images(picked, partial, source.root)
        items = [item_record(c, [paths[c.item_id]]) for c in picked]
        manifest = _manifest(items, pools, counts, summary, run, config, about or {}, changed)
        if images.exists():
            shutil.rmtree(images)
        if (partial / "images").exists():
            os.replace(partial / "images", images)
        else:
            images.mkdir()
        shutil.rmtree(partial)
        _write_lines(out / "bench.jsonl", items)
        _write_json(out / "manifest.json", manifest)
        manifest_seconds = round(time.perf_counter() - start, 2)
    return {**manifest, "seconds": manifest_seconds}


def _manifest(items, pools, counts, summary, run, config, about, changed) -> dict:
    short = {}
    for cell in sorted(pools, key=cell_key):
        got = sum(1 for i in items if (i["task"], i["format"]) == cell)
        if got < config.per_cell:
            available = pools[cell].available
            short.setdefault(cell[0], {})[cell[1]] = {
                "items": got,
                "available": {k: available[k] for k in ("yes", "no", "other") if available[k]},
            }
    scenes = summary.as_dict()["scenes"]
    return {
        "version": MANIFEST_VERSION,
        "engine_version": __version__,
        "command": about.get("command"),
        "seed": run.seed,
        "per_cell": config.per_cell,
        "tolerance": config.tolerance,
        "source": about.get("source"),
        "split": about.get("split"),
        "scenes": {
            "listed": scenes["total"],
            "done": scenes["done"],
            "skipped": scenes["skipped"],
            "skipped_scenes": scenes["skipped_scenes"],
            "used": len({i["scene"] for i in items}),
        },
        "frames": summary.frames,
        "questions": counts["questions"],
        "distinct_questions": len({i["meta"]["qa_id"] for i in items}),
        "candidates": counts["candidates"],
        "relettered": changed,
        **bench_counts(items),
        "short_cells": short,
        "validation": counts["validation"],
        "generate_config": _plain(dataclasses.asdict(run)),
    }


def _plain(value):
    from jax_spatial.engine import _plain as engine_plain

    return engine_plain(value)


def _write_lines(path: pathlib.Path, items: Sequence[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for item in items:
            f.write(json.dumps(item, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def _write_json(path: pathlib.Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


__all__ = [
    "BALANCE_TOLERANCE",
    "ITEM_KEYS",
    "BenchConfig",
    "CellPool",
    "balance_letters",
    "bench_counts",
    "build_bench",
    "is_balanced",
    "item_record",
    "plan_cell",
    "item_priority",
    "relettered",
]
