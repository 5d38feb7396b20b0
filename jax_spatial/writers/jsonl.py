"""InternVL-style chat JSONL: one question/answer per line, with the facts behind it in `meta`.

A line looks like::

    {"id": "kitti/000008/image_2/3",
     "image": "training/image_2/000008.png",      # relative to the source root
     "width": 1242, "height": 375,
     "conversations": [{"from": "human", "value": "<image>\\nIs the car ...?"},
                       {"from": "gpt", "value": "Yes, ..."}],
     "meta": {"task": "position", "relation": "left_of", "kind": "yes_no",
              "canonical": "yes", "choices": [], "template": "...",
              "objects": [{"index": 2, "category": "car", "box": [x1, y1, x2, y2],
                           "box_1000": [..], "box_source": "annotated",
                           "referring": "the leftmost car"}, ...],
              "source": "kitti", "scene_id": "000008", "frame_id": "image_2"}}

`box` is in pixels of the original image; `box_1000` is the InternVL convention, integers in
0..1000 (`round(x / W * 1000)`), ready for `<box>[[...]]</box>` prompts.

Instruction formats (docs/formats.md): each line is one (QA, format). `meta.format` names the
format ("ref_caption_box/masks"), `meta.qa_id` the QA it re-asks, and `meta.prompts` the
overlay spec, one entry per drawn object: `{"object": k, "kind": "box"|"mask"|"mark",
"colour": "red", "label": 2 | null}` where `k` indexes `meta.objects` (whose `box` is where the
prompt goes). The line's `id` is the QA id for `caption/raw` (the only format a run without
`--formats` writes, so its ids stay as they were) and `<qa id>@<format>` otherwise. `image` is the
source image for `raw` formats and, with `--write-images`, the drawn file
`images/<qa id>__<image prompt>.jpg` for drawn ones (formats of one QA that draw the same
prompts share the file); without it, drawn formats point at the source image and a loader draws
`meta.prompts` when it reads the line.
"""

from __future__ import annotations

import json
import math
import os
import pathlib

from jax_spatial.observe import FrameObservation
from jax_spatial.qa.types import QARecord


def box_to_1000(box, width: int, height: int) -> list[int]:
    """Pixel box `(x1, y1, x2, y2)` -> InternVL integers in 0..1000 inclusive.

    `round(v / size * 1000)`, halves to even (Python's `round`, as `np.round`), clipped.
    Plain Python floats: this runs for every object of every record, and numpy's per-call
    overhead on four numbers was most of its cost.
    """
    x1, y1, x2, y2 = coords = [float(v) for v in box]
    if any(map(math.isnan, coords)):
        raise ValueError(f"box {box!r} has NaN coordinates")
    w, h = float(width), float(height)
    # Clipped before rounding (the same integers: rounding is monotone and 0, 1000 are
    # integers), so an infinite coordinate clips instead of overflowing `round`.
    pairs = ((x1, w), (y1, h), (x2, w), (y2, h))
    return [round(min(1000.0, max(0.0, v / s * 1000))) for v, s in pairs]


def image_field(obs: FrameObservation, image_root: str | None) -> str | None:
    """The record's `image`: the path relative to `image_root` when it lies under it."""
    if obs.image_path is None:
        return None
    path = pathlib.Path(obs.image_path)
    if image_root is not None:
        try:
            return path.resolve().relative_to(pathlib.Path(image_root).resolve()).as_posix()
        except ValueError:
            pass
    return path.as_posix()


def qa_id_of(obs: FrameObservation, number: int) -> str:
    """ "scannet/scene0000_00/00000/3": question `number` of a frame."""
    return f"{obs.source}/{obs.scene_id}/{obs.frame_id}/{number}"


def chat_record(
    obs: FrameObservation,
    qa: QARecord,
    number: int,
    image_root: str | None,
    fqa=None,
    image: str | None = None,
) -> dict:
    """One JSONL line (as a dict) for question `number` of a frame.

    Args:
      obs, qa, number: the frame, the QA and its number within the frame.
      image_root: the source root (`image` is written relative to it).
      fqa: the `formats.FormattedQA` to write (default: the QA's own text, `caption/raw`).
      image: overrides the `image` field (a drawn overlay file).
    """
    objects = []
    for pos in qa.objects:
        box = [round(float(v), 2) for v in obs.box2d[pos]]
        objects.append(
            {
                "index": int(obs.object_index[pos]),
                "category": obs.categories[pos],
                "caption": obs.captions[pos],
                "box": box,
                "box_1000": box_to_1000(obs.box2d[pos], obs.width, obs.height),
                "box_source": obs.box2d_source[pos],
                # The words that single it out ("the leftmost car"); null: only its box,
                # mask or mark does (`FrameObservation.referring`).
                "referring": None if obs.referring is None else obs.referring[pos],
            }
        )
    qa_id = qa_id_of(obs, number)
    fmt = "caption/raw" if fqa is None else fqa.format_id
    question, answer, choices = (
        (qa.question, qa.answer, list(qa.choices))
        if fqa is None
        else (fqa.question, fqa.answer, list(fqa.choices))
    )
    slot = {pos: k for k, pos in reversed(list(enumerate(qa.objects)))}
    prompts = [
        {"object": slot[p.object], "kind": p.kind, "colour": p.colour, "label": p.label}
        for p in (() if fqa is None else fqa.prompts)
    ]
    return {
        "id": qa_id if fmt == "caption/raw" else f"{qa_id}@{fmt}",
        "image": image if image is not None else image_field(obs, image_root),
        "width": obs.width,
        "height": obs.height,
        "conversations": [
            {"from": "human", "value": "<image>\n" + question},
            {"from": "gpt", "value": answer},
        ],
        "meta": {
            "qa_id": qa_id,
            "format": fmt,
            "prompts": prompts,
            "task": qa.task,
            "relation": qa.relation,
            "kind": qa.kind,
            "canonical": qa.canonical,
            "choices": choices,
            "category": qa.category,
            "template": qa.template_id,
            "objects": objects,
            "source": obs.source,
            "scene_id": obs.scene_id,
            "frame_id": obs.frame_id,
            "geometry": obs.geometry or {"boxes": "annotated"},
        },
    }


class JsonlWriter:
    """Writes records to `path` through a temporary file that is renamed into place on close.

    A crash leaves no half-written `qa.jsonl` behind, only the `.tmp` file.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = pathlib.Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(self.path.name + ".tmp")
        self._file = open(self._tmp, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self.count = 0

    def write(self, record: dict) -> None:
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.count += 1

    def close(self) -> None:
        if self._file.closed:
            return
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._tmp, self.path)

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self._file.close()


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
