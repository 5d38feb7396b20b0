"""Reference answerers scored like any model: majority, random, oracle.

    answers, note = majority_answers(bench.items, train_records)   # {id: "yes", ...}
    answers = random_answers(bench.items, seed=0, pool=train_records)
    answers = oracle_answers(bench.items)

* `majority`: the most frequent canonical answer per (task, format, answer type) in a train
  split (`--train-split`: a bench.jsonl, a `jax-spatial generate` qa.jsonl, or a predictions
  JSONL, which carry task, format and canonical at the top or under `meta`), falling back to
  (task, answer type), then answer type, when the split lacks the cell. Ties go to the
  smallest answer string, so the result does not depend on line order. For `number` items
  the median of the cell's values (a mode of continuous values is arbitrary; the median is
  the constant that a blind answerer minimises absolute error with). Without a train split
  the bench itself is the pool, named "majority (in-bench)": an upper bound on what a
  blind answerer could learn, as it has seen the test answers.
* `random`: uniform over the item's choices: yes/no 1/2, multiple choice 1/len(choices)
  (A..D when none are listed), counts uniform over the integers 1..M, M the largest count
  the engine asks (`QuotaConfig.max_count`, 10) or the largest seen if larger (uniform over
  the counts *seen* would be the oracle on a bench whose counting items share one answer),
  numbers one draw of the task's observed values (from the train split when given and it
  has the task, else the bench). One numpy Generator seeded by `--seed`, items in bench order.
* `oracle`: the canonical answers, as text. It must score 100 everywhere (a test): a check
  that extraction reads the benchmark's own answers.
"""

from __future__ import annotations

import collections
import json
import pathlib

import numpy as np

from jax_spatial.benchmark.extract import (
    ANSWER_TYPES,
    COUNT,
    LETTERS,
    MULTIPLE_CHOICE,
    NUMBER,
    YES_NO,
    format_number,
)
from jax_spatial.errors import UserError

BASELINES = ("majority", "random", "oracle")

# qa.jsonl and predictions name the answer type `kind`; the bench names it `answer_type`.
_KIND = {"yes_no": YES_NO, "multiple_choice": MULTIPLE_CHOICE, "count": COUNT, "number": NUMBER}


def _field(record: dict, *names):
    meta = record.get("meta") if isinstance(record.get("meta"), dict) else {}
    for name in names:
        for where in (record, meta):
            if where.get(name) is not None:
                return where[name]
    return None


def answer_record(record) -> dict | None:
    """{task, format, answer_type, canonical} of a bench / qa / predictions line, or None."""
    if not isinstance(record, dict):
        return None
    task = _field(record, "task")
    canonical = _field(record, "canonical")
    kind = _KIND.get(_field(record, "answer_type", "kind"))
    if not isinstance(task, str) or canonical is None or kind not in ANSWER_TYPES:
        return None
    fmt = _field(record, "format", "format_id") or "caption/raw"
    return {"task": task, "format": str(fmt), "answer_type": kind, "canonical": str(canonical)}


def read_train_split(path) -> list[dict]:
    """Answer records of a train-split JSONL (or a bench folder); lines without task,
    canonical and answer type are passed over (none at all is an error)."""
    file = pathlib.Path(path)
    if file.is_dir() and (file / "bench.jsonl").is_file():
        file = file / "bench.jsonl"  # a bench folder built from the train split
    if not file.is_file():
        what = "is a folder without bench.jsonl" if file.is_dir() else "does not exist"
        raise UserError(f"--train-split {path} {what}")
    out = []
    try:
        raw = file.read_bytes()
    except OSError as error:
        raise UserError(f"--train-split {path} cannot be read: {error.strerror}") from None
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        try:
            record = answer_record(json.loads(line.decode("utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
        if record is not None:
            out.append(record)
    if not out:
        raise UserError(
            f"--train-split {path} holds no QA lines with task, canonical and answer type"
        )
    return out


def _mode(values: list[str]) -> str:
    counts = collections.Counter(values)
    top = max(counts.values())
    return min(v for v, c in counts.items() if c == top)


def _constant(values: list[str], kind: str) -> str:
    if kind == NUMBER:
        numbers = [float(v) for v in values if _is_number(v)]
        return format_number(float(np.median(numbers))) if numbers else ""
    return _mode(values)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def majority_answers(items: list[dict], train: list[dict] | None = None) -> tuple[dict, str]:
    """(id -> answer, the baseline's name) for the bench `items`."""
    pool = train if train is not None else [answer_record(i) for i in items]
    pool = [r for r in pool if r is not None]
    cells: dict[tuple, list[str]] = collections.defaultdict(list)
    for r in pool:
        cells[(r["task"], r["format"], r["answer_type"])].append(r["canonical"])
        cells[(r["task"], r["answer_type"])].append(r["canonical"])
        cells[(r["answer_type"],)].append(r["canonical"])
    constants = {key: _constant(values, key[-1]) for key, values in cells.items()}
    answers = {}
    for item in items:
        kind = item["answer_type"]
        for key in ((item["task"], item["format"], kind), (item["task"], kind), (kind,)):
            if key in constants:
                answers[item["id"]] = constants[key]
                break
        else:
            answers[item["id"]] = ""
    return answers, "majority" if train is not None else "majority (in-bench)"


def random_answers(items: list[dict], seed: int = 0, pool: list[dict] | None = None) -> dict:
    """id -> a uniformly random answer (see the module docstring)."""
    observed: dict[tuple[str, str], list[str]] = collections.defaultdict(list)
    for source in (pool or [], [answer_record(i) for i in items]):
        seen: dict[tuple[str, str], list[str]] = collections.defaultdict(list)
        for r in source:
            if r is not None and r["answer_type"] in (COUNT, NUMBER) and _is_number(r["canonical"]):
                seen[(r["task"], r["answer_type"])].append(r["canonical"])
        for key, values in seen.items():
            observed.setdefault(key, values)  # the train split wins where it has the task
    from jax_spatial.qa.select import QuotaConfig

    support = {
        key: (
            [str(n) for n in range(1, max(QuotaConfig().max_count, *map(_as_int, values)) + 1)]
            if key[1] == COUNT
            else values
        )
        for key, values in observed.items()
    }
    rng = np.random.default_rng(seed)
    answers = {}
    for item in items:
        kind = item["answer_type"]
        if kind == YES_NO:
            answers[item["id"]] = ("yes", "no")[rng.integers(2)]
        elif kind == MULTIPLE_CHOICE:
            k = len(item.get("choices") or ()) or 4
            answers[item["id"]] = LETTERS[rng.integers(k)]
        else:
            values = support[(item["task"], kind)]
            answers[item["id"]] = values[rng.integers(len(values))]
    return answers


def _as_int(text: str) -> int:
    return int(round(float(text)))


def oracle_answers(items: list[dict]) -> dict:
    return {item["id"]: str(item["canonical"]) for item in items}


__all__ = [
    "BASELINES",
    "answer_record",
    "majority_answers",
    "oracle_answers",
    "random_answers",
    "read_train_split",
]
