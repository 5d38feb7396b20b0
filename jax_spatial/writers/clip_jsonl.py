r"""Multi-view (clip) questions as chat JSONL for InternVL or LLaVA-Video, with frame files.

    write_clip_jsonl([(clip, qas), ...], "out/clips", style="internvl")

writes `out/clips/<style>.jsonl` and each clip's frames once, as the source's encoded bytes
unchanged, to `frames/<clip folder>/000.png, 001.png, ...` (zero-padded, so a sorted listing
is time order; `<clip folder>` is the clip id with characters other than letters, digits,
`.`, `_`, `-` replaced by `_`: `room_000003:uniform16` -> `room_000003_uniform16`). Paths in
the lines are relative to the output folder.

Styles:

* `internvl`: InternVL's multi-image layout. `image` lists the question's frames in order,
  and the first human turn starts with one `Frame-k: <image>` line per frame, then the
  question: the text InternVL's fine-tuning code (`video_get_item`) builds from a `<video>`
  placeholder, so a model sees the same prompt whether it was trained on videos or on these
  frame lists. `width_list` / `height_list` as in its multi-image examples, and `meta`: the
  facts behind the answer (task, relation, kind, canonical, choices, exact `value` and
  `unit`, frame positions, ids and times, the referenced objects).

      {"id": "room_000003:uniform16/4",
       "image": ["frames/room_000003_uniform16/000.png", ...],
       "width_list": [160, ...], "height_list": [120, ...],
       "conversations": [{"from": "human",
                          "value": "Frame-1: <image>\nFrame-2: <image>\n...\nHow many ..."},
                         {"from": "gpt", "value": "3"}],
       "meta": {...}}

* `llava_video`: LLaVA-NeXT / LLaVA-Video's `{"id", "video", "conversations"}` with the
  `<image>` token once, at the start of the first human turn (LLaVA puts every sampled frame
  where that token is). `video` is the clip's **frame folder**, not an MP4: the project has
  no video encoder (no ffmpeg, PyAV or OpenCV), and a re-encoded video would not be the
  stored frames. LLaVA-NeXT's stock `train.py` reads a folder only when its path contains
  `shareVideoGPTV` (it then assumes 2 fps and samples 10 frames unless `--force_sample True
  --frames_upbound T`); loaders derived from it (LLaVA-Video's later branches, Cambrian-S)
  read any folder. Pass the output folder as `--video_folder`. A question shown on a subset
  of its clip's frames (a rotation pair's two views) gets its own folder,
  `frames/<clip folder>__f<i>_<j>/`, holding just those frames.

Line order is clip order, then question order; re-writing the same clips gives the same
bytes. A clip whose frames cannot be read or do not decode is skipped and listed in the
summary's `skipped`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import re
from collections.abc import Iterable, Sequence

from jax_spatial.datasets.clip_examples import frame_bytes, sorted_json, verify_frames
from jax_spatial.datasets.examples import image_format
from jax_spatial.multiview.clip import Clip
from jax_spatial.multiview.qa_types import ClipQA
from jax_spatial.writers.jsonl import JsonlWriter

STYLES = ("internvl", "llava_video")
_SUFFIX = {"png": ".png", "jpeg": ".jpg", "webp": ".webp", "bmp": ".bmp", "gif": ".gif"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclasses.dataclass
class ClipJsonlSummary:
    """What a clip JSONL write produced.

    Attributes:
      path: the JSONL file.
      clips: clips read; qa: their questions; lines: lines written (one per question).
      images: frame files written.
      array_path: the JSON-array copy (`json_array=True`), else None.
      skipped: `{"clip_id", "field", "reason"}` of clips not written.
    """

    path: str
    clips: int = 0
    qa: int = 0
    lines: int = 0
    images: int = 0
    array_path: str | None = None
    skipped: list = dataclasses.field(default_factory=list)


def clip_folder(clip_id: str) -> str:
    """A clip id as a folder name: `room_000003:uniform16` -> `room_000003_uniform16`."""
    return _UNSAFE.sub("_", clip_id).strip("._") or "clip"


def frame_paths(folder: str, images: Sequence[bytes]) -> list[str]:
    """`frames/<folder>/000.png, ...`: where each frame's bytes go (relative paths)."""
    width = max(3, len(str(len(images) - 1)))
    return [
        f"frames/{folder}/{t:0{width}d}{_SUFFIX.get(image_format(data), '.bin')}"
        for t, data in enumerate(images)
    ]


def question_frames(qa: ClipQA, num_frames: int) -> list[int]:
    """Positions of the frames a question shows: its `frames`, or all when empty."""
    return list(qa.frames) if qa.frames else list(range(num_frames))


def frame_prefix(count: int) -> str:
    """`"Frame-1: <image>\\nFrame-2: <image>\\n..."`: InternVL's per-frame placeholders."""
    return "".join(f"Frame-{k + 1}: <image>\n" for k in range(count))


def clip_meta(clip: Clip, qa: ClipQA, picks: Sequence[int]) -> dict:
    """The `meta` of an InternVL line: what the answer rests on, by value."""
    return {
        "clip_id": clip.clip_id,
        "source": clip.source,
        "scene_id": clip.scene_id,
        "task": qa.task,
        "relation": qa.relation,
        "kind": qa.kind,
        "canonical": qa.canonical,
        "choices": list(qa.choices),
        "value": qa.value,
        "unit": qa.unit,
        "template": qa.template_id,
        "frames": list(picks),
        "frame_ids": [clip.frames[t].frame_id for t in picks],
        "frame_time": [float(clip.frame_time[t]) for t in picks],
        "objects": [
            {
                "position": int(k),
                "index": int(clip.objects[k].index),
                "category": clip.objects[k].category,
                "caption": clip.objects[k].caption,
            }
            for k in qa.objects
        ],
        # Keys sorted, as the TFDS example stores them: a line is the same bytes whether it
        # was written from a clip in memory or from its stored example.
        "qa_meta": json.loads(sorted_json(qa.meta)),
    }


def internvl_record(clip: Clip, qa: ClipQA, number: int, paths: Sequence[str]) -> dict:
    """InternVL multi-image line for question `number` of a clip; `paths` of all its frames."""
    picks = question_frames(qa, clip.num_frames)
    return {
        "id": f"{clip.clip_id}/{number}",
        "image": [paths[t] for t in picks],
        "width_list": [int(clip.frames[t].width) for t in picks],
        "height_list": [int(clip.frames[t].height) for t in picks],
        "conversations": [
            {"from": "human", "value": frame_prefix(len(picks)) + qa.question},
            {"from": "gpt", "value": qa.answer},
        ],
        "meta": clip_meta(clip, qa, picks),
    }


def llava_video_record(clip: Clip, qa: ClipQA, number: int, video: str) -> dict:
    """LLaVA-Video line: the frame folder as `video`, `<image>` once before the question."""
    return {
        "id": f"{clip.clip_id}/{number}",
        "video": video,
        "conversations": [
            {"from": "human", "value": "<image>\n" + qa.question},
            {"from": "gpt", "value": qa.answer},
        ],
    }


class _FrameFiles:
    """Writes frame files once per folder and hands out folder names (collisions resolved)."""

    def __init__(self, out: pathlib.Path, write: bool):
        self.out, self.write = out, write
        self.owner: dict[str, str] = {}  # folder -> clip id
        self.written: set[str] = set()
        self.count = 0

    def folder(self, clip_id: str) -> str:
        name = clip_folder(clip_id)
        if self.owner.setdefault(name, clip_id) != clip_id:
            # Two ids that differ only in unsafe characters: a stable suffix tells them apart.
            name = f"{name}-{hashlib.sha256(clip_id.encode()).hexdigest()[:8]}"
            self.owner[name] = clip_id
        return name

    def put(self, paths: Sequence[str], images: Sequence[bytes]) -> None:
        for path, data in zip(paths, images, strict=True):
            if path in self.written:
                continue
            self.written.add(path)
            if self.write:
                target = self.out / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                self.count += 1


def write_clip_jsonl(
    clips_and_qas: Iterable[tuple[Clip, Sequence[ClipQA]]],
    out_dir: str | os.PathLike,
    style: str = "internvl",
    write_frames: bool = True,
    json_array: bool = False,
) -> ClipJsonlSummary:
    """Writes `<out_dir>/<style>.jsonl` (one line per question) and the clips' frame files.

    Args:
      clips_and_qas: `(clip, questions)` pairs; a clip without questions writes nothing.
      out_dir: output folder (created).
      style: "internvl" or "llava_video" (module docstring).
      write_frames: write the frame files; False writes only the lines, pointing where the
        frames of an earlier write with the same clips are (e.g. one frame folder shared by
        an `internvl` and a `llava_video` file).
      json_array: also write the lines as one JSON array, `<out_dir>/<style>.json`.

    Returns:
      A `ClipJsonlSummary`.
    """
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{style}.jsonl"
    summary = ClipJsonlSummary(path=str(path))
    files = _FrameFiles(out, write_frames)
    with JsonlWriter(path) as writer:
        for clip, qas in clips_and_qas:
            summary.clips += 1
            summary.qa += len(qas)
            if not qas:
                continue
            try:
                images = [frame_bytes(clip, t) for t in range(clip.num_frames)]
                verify_frames(images)
            except (OSError, ValueError) as error:
                summary.skipped.append(
                    {
                        "clip_id": clip.clip_id,
                        "field": "image",
                        "reason": f"{type(error).__name__}: {error}",
                    }
                )
                continue
            folder = files.folder(clip.clip_id)
            paths = frame_paths(folder, images)
            if style == "internvl":
                files.put(paths, images)
            for number, qa in enumerate(qas):
                if style == "internvl":
                    writer.write(internvl_record(clip, qa, number, paths))
                    continue
                picks = question_frames(qa, clip.num_frames)
                if picks == list(range(clip.num_frames)):
                    video = f"frames/{folder}"
                    files.put(paths, images)
                else:
                    video = f"frames/{folder}__f{'_'.join(map(str, picks))}"
                    chosen = [images[t] for t in picks]
                    files.put(frame_paths(video.split("/", 1)[1], chosen), chosen)
                writer.write(llava_video_record(clip, qa, number, video))
    summary.lines = writer.count
    summary.images = files.count
    if json_array:
        from jax_spatial.writers.export import write_json_array

        summary.array_path = str(write_json_array(path, out / f"{style}.json"))
    return summary


def export_clip_examples(
    examples: Iterable[dict],
    out_dir: str | os.PathLike,
    style: str = "internvl",
    json_array: bool = False,
):
    """`write_clip_jsonl` over `spatial_qa_clips` examples (what `jax-spatial export` runs).

    Args:
      examples: example dicts as `tfds.data_source` returns them.
      style: "internvl", or "llava_video" (also accepted as "llava", the export's name).

    Returns:
      An `export.ExportSummary` (`frames` counts clip examples read); an example that lacks
      a field or whose frames do not decode is listed in `skipped`, the rest are written.
    """
    from jax_spatial.multiview.reading import clip_records
    from jax_spatial.writers.export import ExportSummary

    style = "llava_video" if style == "llava" else style
    skipped: list[dict] = []
    read = 0

    def records():
        nonlocal read
        for example in examples:
            read += 1
            try:
                yield clip_records(example)
            except (KeyError, ValueError, TypeError) as error:
                key = example.get("key", b"?") if isinstance(example, dict) else "?"
                key = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
                field = str(error.args[0]) if isinstance(error, KeyError) and error.args else ""
                skipped.append(
                    {"key": key, "field": field, "reason": f"{type(error).__name__}: {error}"}
                )

    written = write_clip_jsonl(records(), out_dir, style=style, json_array=json_array)
    skipped.extend(
        {"key": s["clip_id"], "field": s["field"], "reason": s["reason"]} for s in written.skipped
    )
    return ExportSummary(
        path=written.path,
        frames=read,
        qa=written.qa,
        lines=written.lines,
        images=written.images,
        per_format={f"clip/{style}": written.lines} if written.lines else {},
        array_path=written.array_path,
        skipped=skipped,
    )


def is_clip_example(example) -> bool:
    """A `spatial_qa_clips` example (frames of a clip), not a single-frame `spatial_qa` one."""
    return isinstance(example, dict) and "clip_id" in example and "frames" in example


__all__ = [
    "STYLES",
    "ClipJsonlSummary",
    "clip_folder",
    "clip_meta",
    "export_clip_examples",
    "frame_paths",
    "frame_prefix",
    "is_clip_example",
    "internvl_record",
    "llava_video_record",
    "question_frames",
    "write_clip_jsonl",
]
