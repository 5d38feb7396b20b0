"""Human verdicts on benchmark items: `B/verdicts.json`, written by the review page.

    {"version": 1,
     "verdicts": {"<item id>": {"verdict": "accept" | "reject" | "unsure",
                                "time": "2026-01-31T12:00:00+00:00",
                                "reviewer": "ana",              # optional
                                "digest": "<sha256 of what was judged>"}}}

`digest` (`item_digest`) covers what the reviewer saw: question, answer, canonical answer,
choices, task, relation, format and the bytes of the item's images. A benchmark rebuilt into
the same folder keeps `verdicts.json`; a verdict whose item changed since (another seed moved
its letters or colours) no longer applies and `load_verdicts` leaves it out, so a verdict
never vouches for a question nobody looked at. Entries without a digest apply by id.

Every change is written atomically (a temporary file, fsync, `os.replace`) under an exclusive
lock on `B/verdicts.json.lock`, re-reading the file first, so two review pages on one
benchmark do not lose each other's verdicts and a crash never leaves a torn file.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import logging
import os
import pathlib
from collections.abc import Iterator, Mapping

from jax_spatial.benchmark.bench_items import read_bench_lines
from jax_spatial.errors import UserError

log = logging.getLogger(__name__)

VERDICTS = ("accept", "reject", "unsure")
VERSION = 1
FILE_NAME = "verdicts.json"
BENCH_FILE = "bench.jsonl"


def bench_folder(bench_dir: str | os.PathLike, flag: str = "bench folder") -> pathlib.Path:
    """`bench_dir` as a path, checked to be a folder holding `bench.jsonl`."""
    path = pathlib.Path(bench_dir)
    if not path.exists():
        raise UserError(f"{flag} {path} does not exist")
    if not path.is_dir():
        raise UserError(f"{flag} {path} is a file; expected a folder written by bench build")
    if not (path / BENCH_FILE).is_file():
        raise UserError(
            f"{flag} {path} has no {BENCH_FILE}; write one with "
            f"jax-spatial bench build --out {path}"
        )
    return path


def _has_string_id(item) -> str | None:
    """Why `item` cannot be reviewed, or None."""
    if not isinstance(item, dict):
        return "not a JSON object"
    return None if isinstance(item.get("id"), str) else "no string id"


def read_items(bench_dir: str | os.PathLike) -> list[dict]:
    """The items of `B/bench.jsonl` in file order.

    A line that is not a JSON object with a string `id` is skipped and logged with its file
    and line; a duplicate id is a `UserError` naming both lines (a verdict could not say which
    item it judges).
    """
    path = pathlib.Path(bench_dir) / BENCH_FILE
    lines, skipped = read_bench_lines(path, _has_string_id)
    if skipped:
        log.warning("%s: %d bad lines skipped", path, len(skipped))
    return [item for _, item in lines]


def item_digest(bench_dir: str | os.PathLike, item: Mapping) -> str:
    """SHA-256 of what a reviewer judges in an item: its text fields and its images' bytes."""
    root = pathlib.Path(bench_dir)
    images = []
    for name in item.get("images") or []:
        try:
            images.append(hashlib.sha256((root / str(name)).read_bytes()).hexdigest())
        except OSError:
            images.append(None)
    judged = {
        key: item.get(key)
        for key in ("question", "answer", "canonical", "choices", "task", "relation", "format")
    }
    judged["images"] = images
    text = json.dumps(judged, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_entries(bench_dir: str | os.PathLike) -> dict[str, dict]:
    """Every entry of `B/verdicts.json` (id -> {"verdict", "time", ...}); {} when none yet.

    Raises:
      UserError: the file is not JSON, not the version-1 layout, or an entry's verdict is not
        one of `VERDICTS` (the message names the file and the entry).
    """
    path = pathlib.Path(bench_dir) / FILE_NAME
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text; fix or remove it") from None
    except json.JSONDecodeError as error:
        raise UserError(
            f"{path}: not JSON ({error.msg}, line {error.lineno}); fix or remove it"
        ) from None
    except OSError as error:
        raise UserError(f"{path}: cannot be read: {error.strerror or error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("verdicts"), dict):
        raise UserError(f'{path}: expected {{"version": 1, "verdicts": {{id: {{...}}}}}}')
    if data.get("version") != VERSION:
        raise UserError(f"{path}: version {data.get('version')!r}; this reader knows {VERSION}")
    entries = {}
    for item_id, entry in data["verdicts"].items():
        verdict = entry.get("verdict") if isinstance(entry, dict) else None
        if verdict not in VERDICTS:
            raise UserError(
                f"{path}: verdicts[{item_id!r}].verdict is {verdict!r}; expected one of "
                f"{', '.join(VERDICTS)}"
            )
        entries[item_id] = dict(entry)
    return entries


def load_verdicts(bench_dir: str | os.PathLike) -> dict[str, str]:
    """id -> "accept" | "reject" | "unsure" for the items of the benchmark now in `bench_dir`.

    Verdicts on ids the benchmark no longer has, or on items whose content changed since they
    were judged (their `digest` differs), are left out and counted in a logged warning. No
    `verdicts.json` yet: {}.

    Raises:
      UserError: `bench_dir` is not a benchmark folder, or `verdicts.json` is corrupt.
    """
    root = bench_folder(bench_dir)
    entries = read_entries(root)
    if not entries:
        return {}
    items = {item["id"]: item for item in read_items(root)}
    out, unknown, stale = {}, 0, 0
    for item_id, entry in entries.items():
        item = items.get(item_id)
        if item is None:
            unknown += 1
        elif entry.get("digest") and entry["digest"] != item_digest(root, item):
            stale += 1
        else:
            out[item_id] = entry["verdict"]
    if unknown or stale:
        log.warning(
            "%s: left out %d verdicts on ids no longer in the benchmark and %d on items that "
            "changed since they were judged",
            root / FILE_NAME,
            unknown,
            stale,
        )
    return out


@contextlib.contextmanager
def _locked(root: pathlib.Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # no flock on this platform: one writer is assumed
        yield
        return
    with open(root / (FILE_NAME + ".lock"), "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_entries(root: pathlib.Path, entries: Mapping[str, dict]) -> None:
    """Writes `verdicts.json` atomically: a temporary file, fsync, then `os.replace`."""
    path = root / FILE_NAME
    tmp = path.with_name(f".{FILE_NAME}.{os.getpid()}.tmp")
    data = {"version": VERSION, "verdicts": dict(sorted(entries.items()))}
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def set_verdict(
    bench_dir: str | os.PathLike,
    item_id: str,
    verdict: str | None,
    digest: str | None = None,
    reviewer: str | None = None,
    now: datetime.datetime | None = None,
) -> dict[str, dict]:
    """Records (or, with `verdict=None`, removes) one verdict; returns all entries after it.

    The file is re-read under the lock, so concurrent writers each keep the other's changes.
    """
    if verdict is not None and verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS} or None, got {verdict!r}")
    root = pathlib.Path(bench_dir)
    with _locked(root):
        entries = read_entries(root)
        if verdict is None:
            entries.pop(item_id, None)
        else:
            moment = now or datetime.datetime.now(datetime.UTC)
            entry = {"verdict": verdict, "time": moment.isoformat(timespec="seconds")}
            if reviewer:
                entry["reviewer"] = reviewer
            if digest:
                entry["digest"] = digest
            entries[item_id] = entry
        write_entries(root, entries)
    return entries


def progress(verdicts: Mapping[str, str], total: int) -> dict:
    """ "n reviewed of total" and the count of each verdict."""
    counts = {v: sum(1 for x in verdicts.values() if x == v) for v in VERDICTS}
    return {"reviewed": sum(counts.values()), "total": total, **counts}


__all__ = [
    "VERDICTS",
    "bench_folder",
    "item_digest",
    "load_verdicts",
    "progress",
    "read_entries",
    "read_items",
    "set_verdict",
    "write_entries",
]
