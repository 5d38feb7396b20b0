"""Export a built `spatial_qa` TFDS dataset to chat JSONL (InternVL or LLaVA) with image files.

    jax-spatial export --data-dir D --name spatial_qa/procedural_small --out DIR \
        --style internvl|llava --formats 1|all|K|fmt,fmt

    export_dataset("D/spatial_qa/procedural_small/1.0.0", "out/sqa", style="llava")

The TFDS example stores each question once, with its template slots and its suitable formats
(`datasets.examples`); this writes it out in the selected formats (`formats.expand`, the same
expansion and seeding the engine's `--formats` uses), one line per (question, format), to
`DIR/<style>.jsonl`, and the images next to it, with `image` fields relative to `DIR`:

* raw formats point at `images/<key>.<ext>`, the stored encoded bytes written as they are (no
  decode and re-encode), one file per frame;
* drawn formats point at `images/<qa id>__<boxes|masks|marks>.jpg`, drawn by
  `writers.overlay_images` (jitted `formats.draw`); formats of one question that draw the same
  prompts share a file.

Styles:

* `internvl`: `writers.jsonl.chat_record` lines, with width, height and `meta` (the facts behind
  the answer, the format, the overlay spec).
* `llava`: `{"id", "image", "conversations"}` only, as LLaVA's `LazySupervisedDataset` reads
  them: `image` relative to `--image_folder` (pass DIR), the `<image>` token once, at the start
  of the first human turn followed by a newline, turns alternating `human`/`gpt`. LLaVA-NeXT
  reads `.jsonl`; LLaVA-1.5's `train.py` `json.load`s one JSON array, which `json_array=True`
  (`--json-array`) writes beside it as `DIR/<style>.json`.

Line order is the dataset's example order, then question order, then `FORMATS` order, so a
re-export of the same dataset with the same seed is byte-identical.

Every image is decoded before a line is written about it: an example whose image does not
decode (a truncated file) or that lacks a field is skipped and listed in the summary's
`skipped`, and the rest are written.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from collections.abc import Iterable, Sequence

from jax_spatial import reading
from jax_spatial.datasets.examples import image_format
from jax_spatial.errors import UserError
from jax_spatial.formats.expand import expand_formats, parse_select
from jax_spatial.writers import overlay_images
from jax_spatial.writers.jsonl import JsonlWriter, chat_record

STYLES = ("internvl", "llava")
_SUFFIX = {"png": ".png", "jpeg": ".jpg", "webp": ".webp", "bmp": ".bmp", "gif": ".gif"}


@dataclasses.dataclass
class ExportSummary:
    """What an export wrote.

    Attributes:
      path: the JSONL file.
      frames: examples read.
      qa: questions read.
      lines: JSONL lines written (questions x selected suitable formats).
      images: image files written (raw frames + drawn overlays).
      per_format: lines per format id.
      array_path: the JSON-array copy of the lines (`json_array=True`), else None.
      skipped: `{"key", "field", "reason"}` of examples not written: an image that does not
        decode (a truncated file), an example missing a field.
    """

    path: str
    frames: int = 0
    qa: int = 0
    lines: int = 0
    images: int = 0
    per_format: dict = dataclasses.field(default_factory=dict)
    array_path: str | None = None
    skipped: list = dataclasses.field(default_factory=list)


def llava_record(record: dict) -> dict:
    """An InternVL `chat_record` line -> LLaVA's `{"id", "image", "conversations"}`."""
    return {
        "id": record["id"],
        "image": record["image"],
        "conversations": [dict(turn) for turn in record["conversations"]],
    }


def open_source(data_dir: str | os.PathLike, name: str | None = None, split: str = "train"):
    """Random-access examples of a built dataset (no TensorFlow import).

    Args:
      data_dir: with `name`, the TFDS data dir holding `<name>/<version>/`; without it, the
        dataset folder itself (`.../spatial_qa/procedural_small/1.0.0`).
      name: "spatial_qa/procedural_small" (optionally with ":1.0.0").
      split: the split to read.

    Raises:
      UserError: no built dataset there, or no such split (the message says where it looked).
    """
    import tensorflow_datasets as tfds

    root = pathlib.Path(data_dir)
    if name:
        folder = root / name.split(":", 1)[0]
        if not any(folder.glob("*/dataset_info.json")):
            raise UserError(
                f"no built dataset {name} under {data_dir} (expected "
                f"{folder}/<version>/dataset_info.json; build it with `tfds build`)"
            )
    elif not (root / "dataset_info.json").is_file():
        raise UserError(
            f"{data_dir} is not a built dataset folder (no dataset_info.json); pass the TFDS "
            "data dir with --name, or the <name>/<config>/<version> folder"
        )
    try:
        if name:
            return tfds.data_source(name, split=split, data_dir=str(data_dir))
        return tfds.builder_from_directory(str(data_dir)).as_data_source(split=split)
    except Exception as error:  # noqa: BLE001 - tfds raises many kinds for a bad dataset
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise UserError(
            f"cannot read dataset {name or data_dir} split {split!r}: "
            f"{type(error).__name__}: {first}"
        ) from None


def raw_image_name(key: str, data: bytes) -> str:
    """ "images/procedural/room_00000/view_0.png": where a frame's stored bytes go."""
    return f"images/{key}{_SUFFIX.get(image_format(data), '.bin')}"


def export_examples(
    examples: Iterable[dict],
    out_dir: str | os.PathLike,
    style: str = "internvl",
    formats: str | int = "1",
    seed: int = 0,
    json_array: bool = False,
) -> ExportSummary:
    """Writes `<out_dir>/<style>.jsonl` and `<out_dir>/images/` from `spatial_qa` examples.

    Args:
      examples: example dicts as `tfds.data_source` returns them.
      out_dir: output folder (created).
      style: "internvl" or "llava".
      formats: "all", K (K suitable formats sampled per question) or format ids, as
        `formats.expand.parse_select` reads them.
      seed: the format-sampling seed (colours, labels and sampled formats per question).
      json_array: also write the lines as one JSON array to `<out_dir>/<style>.json`.

    Returns:
      An `ExportSummary`.
    """
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    select = parse_select(formats)
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{style}.jsonl"
    summary = ExportSummary(path=str(path))
    per_format: dict[str, int] = {}
    with JsonlWriter(path) as writer:
        for example in examples:
            summary.frames += 1
            try:
                records = reading.frame_records(example)
                if records:
                    verify_image(records[0][0].image_bytes)
            except (KeyError, ValueError, TypeError, OSError) as error:
                # One bad example must not cost the others; it is listed, not written.
                key = example.get("key", b"?") if isinstance(example, dict) else "?"
                key = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
                field = "image" if isinstance(error, OSError) else _field_of(error)
                summary.skipped.append(
                    {"key": key, "field": field, "reason": f"{type(error).__name__}: {error}"}
                )
                continue
            summary.qa += len(records)
            if not records:
                continue
            obs = records[0][0]
            items = []  # (number, qa, qa_id, FormattedQA)
            for number, (_, qa, qa_id) in enumerate(records):
                for fqa in expand_formats(obs, qa, select, seed, qa_id):
                    items.append((number, qa, qa_id, fqa))
            raw_image = None
            if any(not fqa.prompts for *_, fqa in items):
                raw_image = raw_image_name(records[0][2].rsplit("/", 1)[0], obs.image_bytes)
                target = out / raw_image
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(obs.image_bytes)
                summary.images += 1
            drawn: dict[tuple[str, str], str] = {}
            if any(fqa.prompts for *_, fqa in items):
                # One decode per frame, shared by every drawn prompt set of its questions.
                pixels = overlay_images.frame_image(obs)
                drawn = overlay_images.write_frame_images(
                    out, obs, [(qa_id, fqa) for _, _, qa_id, fqa in items], pixels
                )
                summary.images += len(drawn)
            for number, qa, qa_id, fqa in items:
                image = drawn.get((qa_id, fqa.image_prompt), raw_image)
                record = chat_record(obs, qa, number, None, fqa=fqa, image=image)
                writer.write(record if style == "internvl" else llava_record(record))
                per_format[fqa.format_id] = per_format.get(fqa.format_id, 0) + 1
    summary.lines = writer.count
    summary.per_format = dict(sorted(per_format.items()))
    if json_array:
        summary.array_path = str(write_json_array(path, out / f"{style}.json"))
    return summary


def verify_image(data) -> None:
    """Decodes encoded image bytes fully (a truncated file fails here, not in a trainer).

    Raises:
      OSError: the bytes are missing, truncated or not an image.
    """
    import io

    from PIL import Image

    if not data:
        raise OSError("no image bytes")
    try:
        with Image.open(io.BytesIO(bytes(data))) as image:
            image.load()
    except (OSError, ValueError, SyntaxError) as error:
        raise OSError(f"undecodable image: {error}") from error


def _field_of(error: BaseException) -> str:
    return str(error.args[0]) if isinstance(error, KeyError) and error.args else ""


def write_json_array(jsonl_path: str | os.PathLike, json_path: str | os.PathLike) -> pathlib.Path:
    """Copies a JSONL file into one JSON array (streamed: one record in memory at a time).

    Written to a temporary name and renamed, so a reader never sees half an array.
    """
    target = pathlib.Path(json_path)
    tmp = target.with_name(target.name + ".tmp")
    with open(jsonl_path, encoding="utf-8") as src, open(tmp, "w", encoding="utf-8") as dst:
        dst.write("[")
        first = True
        for line in src:
            line = line.strip()
            if not line:
                continue
            dst.write(("\n" if first else ",\n") + line)
            first = False
        dst.write("\n]\n")
    os.replace(tmp, target)
    return target


def export_dataset(
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    name: str | None = None,
    style: str = "internvl",
    formats: str | int = "1",
    seed: int = 0,
    split: str = "train",
    json_array: bool = False,
) -> ExportSummary:
    """`export_examples` over a built dataset (`open_source(data_dir, name, split)`).

    A `spatial_qa_clips` dataset (multi-view clips) goes to `writers.clip_jsonl` instead:
    `internvl` writes multi-image lines, `llava` LLaVA-Video lines over frame folders, and
    `formats`/`seed` do not apply (a clip question has one form: words over its frames).
    """
    source = open_source(data_dir, name, split)
    if len(source):
        from jax_spatial.writers import clip_jsonl

        if clip_jsonl.is_clip_example(source[0]):
            return clip_jsonl.export_clip_examples(
                (source[i] for i in range(len(source))), out_dir, style, json_array
            )
    return export_examples(
        (source[i] for i in range(len(source))),
        out_dir,
        style=style,
        formats=formats,
        seed=seed,
        json_array=json_array,
    )


def summary_json(summary: ExportSummary) -> str:
    return json.dumps(dataclasses.asdict(summary))


__all__: Sequence[str] = [
    "STYLES",
    "ExportSummary",
    "export_dataset",
    "export_examples",
    "llava_record",
    "open_source",
    "raw_image_name",
    "verify_image",
    "write_json_array",
]
