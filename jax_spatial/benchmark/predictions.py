"""Reading a model's answers: the project's predictions JSONL or lmms-eval sample logs.

    preds = read_predictions("out/run/predictions.jsonl", bench)
    preds.answers["<bench id>"] -> "Yes, the chair is ..."

Layouts, detected per record (a file's `layout` is its first record's, or "mixed"):

* `jsonl` (what `jax-spatial predict` writes, `train.decode.write_predictions`): one object
  per line with `id` and `prediction` (text; null reads as an empty answer, a number as its
  digits). `id` is the bench item id; a line that also names its format (`format_id` or
  `format`) is placed on the item `<id>@<format>` or the item whose `meta.qa_id` and format
  match, before `id` alone is tried (predict writes a question's qa_id for every format).
* `lmms-eval` (`--log_samples`): per-sample objects with `doc_id` and `filtered_resps` (else
  `resps`), one per line (newer versions: `*_samples_<task>.jsonl`) or in one JSON document
  (older versions: a JSON array of samples, or `{"args", ..., "logs": [samples]}`). The answer
  is the first string inside `filtered_resps` (lmms-eval nests a list per request). The item
  is `doc["id"]` when the sample kept its `doc` and the doc has an id (an lmms-eval task that
  reads `bench.jsonl` keeps its records as docs); otherwise `doc_id`, the 0-based position of
  the item among the lines of `bench.jsonl` (lmms-eval numbers docs in dataset order; newer
  versions drop `doc` from the log). A string `doc_id` that is a bench id is taken as one.

A record that carries the `choices` it was asked with (predict writes them; an lmms-eval doc
may) keeps them in `asked_choices`: `bench build` re-letters multiple-choice items, so a
model that answered the dataset's lettering is read against its own choices and its letter
moved to the bench's by choice text (`score.score_answers`).

Bad input: a missing, empty or unreadable file is an error (`UserError`, one line). A line
that is not UTF-8, not JSON, not an object or of neither layout is skipped, counted and
listed ("line N", "record N" inside a JSON document). An id the bench does not hold is
counted and listed (`unknown_ids`) and skipped. A second answer to an item already answered
is skipped, the first kept, and listed (`duplicates`: id and line): lmms-eval logs a doc once
per filter, and `predict --every-format` run twice into one file repeats lines, so refusing
the file would lose a usable run; the count is printed and in the report.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import pathlib

from jax_spatial.benchmark.bench_items import LOGGED_SKIPS, Bench
from jax_spatial.errors import UserError

log = logging.getLogger(__name__)

JSONL = "jsonl"
LMMS_EVAL = "lmms-eval"


@dataclasses.dataclass
class Predictions:
    """One file's answers keyed by bench item id, and what could not be used."""

    path: str
    layout: str
    answers: dict[str, str]
    records: int
    unknown_ids: list[str]
    duplicates: list[dict]
    skipped: list[dict]
    excluded: int = 0
    asked_choices: dict[str, list[str]] = dataclasses.field(default_factory=dict)


def _records(raw: bytes):
    """(where, record or None, reason) for each record of the file."""
    head = raw.lstrip()[:1]
    if head in (b"[", b"{"):
        try:
            whole = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            whole = None  # JSONL (several documents) or broken: read line by line
        if isinstance(whole, dict) and isinstance(whole.get("logs"), list):
            whole = whole["logs"]
        if isinstance(whole, list):
            for k, record in enumerate(whole, 1):
                yield f"record {k}", record, None
            return
        if isinstance(whole, dict):
            yield "line 1", whole, None
            return
    for number, line in enumerate(raw.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            yield f"line {number}", json.loads(line.decode("utf-8")), None
        except UnicodeDecodeError:
            yield f"line {number}", None, "not UTF-8 text"
        except json.JSONDecodeError as error:
            yield f"line {number}", None, f"not JSON ({error.msg})"


def _first_text(value):
    """The answer inside lmms-eval's nested response lists (["text"], [["text"]])."""
    while isinstance(value, list | tuple):
        if not value:
            return ""
        value = value[0]
    return _as_text(value)


def _as_text(value):
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _choices(record) -> list[str] | None:
    choices = record.get("choices") if isinstance(record, dict) else None
    if isinstance(choices, list) and choices and all(isinstance(c, str) for c in choices):
        return choices
    return None


def _parse(record, bench: Bench) -> tuple[str, str | None, str | None, str]:
    """(layout, bench id or None, answer text or None, label of the id) of one record."""
    if "doc_id" in record and ("filtered_resps" in record or "resps" in record):
        text = _first_text(record.get("filtered_resps", record.get("resps")))
        doc, doc_id = record.get("doc"), record["doc_id"]
        if isinstance(doc, dict) and doc.get("id") is not None:
            label = str(doc["id"])
            return LMMS_EVAL, bench.resolve(label, doc.get("format")), text, label
        label = f"doc_id={doc_id}"
        if isinstance(doc_id, str) and bench.resolve(doc_id):
            return LMMS_EVAL, doc_id, text, doc_id
        position = doc_id if isinstance(doc_id, int) and not isinstance(doc_id, bool) else None
        if isinstance(doc_id, str) and doc_id.isdigit():
            position = int(doc_id)
        if position is not None and 0 <= position < len(bench.order):
            return LMMS_EVAL, bench.order[position], text, label
        return LMMS_EVAL, None, text, label
    label = str(record["id"])
    fmt = record.get("format_id") or record.get("format")
    item_id = bench.resolve(label, fmt if isinstance(fmt, str) else None)
    return JSONL, item_id, _as_text(record["prediction"]), label


def read_predictions(path, bench: Bench) -> Predictions:
    """Answers of one predictions file, placed on `bench` items (see the module docstring)."""
    file = pathlib.Path(path)
    if not file.exists():
        raise UserError(f"--predictions {path} does not exist")
    if file.is_dir():
        raise UserError(f"--predictions {path} is a folder; expected a JSONL file")
    try:
        raw = file.read_bytes()
    except OSError as error:
        raise UserError(f"--predictions {path} cannot be read: {error.strerror}") from None
    if not raw.strip():
        raise UserError(f"--predictions {path} is empty")
    answers: dict[str, str] = {}
    first_line: dict[str, str] = {}
    layouts: list[str] = []
    asked: dict[str, list[str]] = {}
    unknown, duplicates, skipped = [], [], []
    records = excluded = 0
    for where, record, reason in _records(raw):
        if reason is None and not isinstance(record, dict):
            reason = "not a JSON object"
        elif reason is None and not (
            ("id" in record and "prediction" in record)
            or ("doc_id" in record and ("filtered_resps" in record or "resps" in record))
        ):
            reason = "neither {id, prediction} nor an lmms-eval sample {doc_id, filtered_resps}"
        if reason is None:
            layout, item_id, text, label = _parse(record, bench)
            if text is None:
                reason = "the answer is not text"
        if reason is not None:
            skipped.append({"where": where, "reason": reason})
            # The first few are logged; all are counted and listed in the report.
            level = logging.WARNING if len(skipped) <= LOGGED_SKIPS else logging.DEBUG
            log.log(level, "%s: %s: skipped: %s", path, where, reason)
            continue
        records += 1
        if layout not in layouts:
            layouts.append(layout)
        if item_id is None:
            unknown.append(label)
        elif item_id in bench.excluded:
            excluded += 1
        elif item_id in answers:
            duplicates.append({"id": item_id, "where": where, "first": first_line[item_id]})
        else:
            answers[item_id] = text
            first_line[item_id] = where
            choices = _choices(record.get("doc") if layout == LMMS_EVAL else record)
            if choices is not None:
                asked[item_id] = choices
    if not records:
        first = skipped[0]
        raise UserError(
            f"--predictions {path} holds no prediction records ({len(skipped)} skipped; "
            f"{first['where']}: {first['reason']})"
        )
    return Predictions(
        path=str(path),
        layout=layouts[0] if len(layouts) == 1 else "mixed",
        answers=answers,
        records=records,
        unknown_ids=unknown,
        duplicates=duplicates,
        skipped=skipped,
        excluded=excluded,
        asked_choices=asked,
    )


__all__ = ["JSONL", "LMMS_EVAL", "Predictions", "read_predictions"]
