"""Reading a bench folder for scoring: `B/bench.jsonl` items and, for `--verified-only`,
the human verdicts in `B/verdicts.json`.

    bench = load_bench("out/bench", verified_only=False)
    bench.items[0]["id"], bench.index["<id>"], bench.order   # file order, for lmms-eval doc_id

An item needs `id` (unique), `task`, `answer_type` (yes_no | multiple_choice | count | number)
and `canonical` (numeric for count/number, else `meta.value`); `format` defaults to "-" and
`choices` to []. A line that is not a JSON object or lacks one of those is skipped, counted
and listed (file and line); a duplicate id is an error naming both lines, since predictions
could not say which item they answer.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import pathlib

from jax_spatial.benchmark.extract import ANSWER_TYPES, COUNT, NUMBER
from jax_spatial.benchmark.metrics import gold_number
from jax_spatial.errors import UserError

log = logging.getLogger(__name__)

# Bad lines logged one by one (with -v, all of them); the rest are counted and listed.
LOGGED_SKIPS = 5


@dataclasses.dataclass
class Bench:
    """Items to score, in `bench.jsonl` order.

    `order`: every item id of the file in line order (verified or not), which is what an
    lmms-eval `doc_id` indexes; `excluded`: ids left out by `--verified-only`;
    `by_qa_format`: (meta.qa_id, format) -> id, to place a `jax-spatial predict` line that
    names its question by qa_id and format; `skipped`: bad lines as {"line", "reason"}.
    """

    root: pathlib.Path
    items: list[dict]
    index: dict[str, int]
    order: list[str]
    excluded: set[str]
    by_qa_format: dict[tuple[str, str], str]
    skipped: list[dict]
    manifest: dict
    verified_only: bool = False

    def resolve(self, item_id: str, fmt: str | None = None) -> str | None:
        """The bench id a prediction's id (and format) names, or None.

        With a format, the (qa id, format) item comes first: `jax-spatial predict` writes a
        question's qa_id for every format it asks it in, and the qa_id alone is the id of the
        question's `caption/raw` item (`writers.jsonl`: `<qa id>@<format>` otherwise).
        """

        def known(candidate):
            return candidate in self.index or candidate in self.excluded

        if fmt:
            for candidate in (f"{item_id}@{fmt}", self.by_qa_format.get((item_id, fmt))):
                if candidate is not None and known(candidate):
                    return candidate
        return item_id if known(item_id) else None


def _check_item(record) -> str | None:
    """Why `record` cannot be scored, or None."""
    if not isinstance(record, dict):
        return "not a JSON object"
    for key in ("id", "task", "answer_type", "canonical"):
        if key not in record:
            return f"no {key!r}"
    if not isinstance(record["id"], str) or not record["id"]:
        return "'id' is not a non-empty string"
    if record["answer_type"] not in ANSWER_TYPES:
        return f"answer_type {record['answer_type']!r} is not one of {', '.join(ANSWER_TYPES)}"
    if record["answer_type"] in (COUNT, NUMBER):
        try:
            gold_number(record)
        except (TypeError, ValueError, KeyError):
            return f"canonical {record['canonical']!r} is not a number"
    choices = record.get("choices", [])
    if not isinstance(choices, list):
        return "'choices' is not a list"
    return None


def read_bench_lines(
    path: pathlib.Path,
    check=_check_item,
    *,
    strict: bool = False,
    limit: int | None = None,
) -> tuple[list[tuple[int, dict]], list[dict]]:
    """(line number, item) of each good line of a bench-like JSONL, and the skipped lines.

    The one reader of `bench.jsonl`: scoring, review and bench prediction differ only in
    `check` (`record -> why it is unusable, or None`; the default asks for what scoring
    needs) and in `strict`.

    Args:
      path: the JSONL file.
      check: the per-record test, run on each decoded line.
      strict: a bad line is a `UserError` naming file and line instead of a logged skip.
      limit: stop after this many good items; None reads them all.

    Returns:
      `(items, skipped)`: `[(line number, record)]` in file order and `[{"line", "reason"}]`.

    Raises:
      UserError: the file cannot be read, two items share an id (naming both lines), or
        (with `strict`) a line is bad.
    """
    items, skipped, seen = [], [], {}
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise UserError(f"{path} cannot be read: {error.strerror or error}") from None
    for number, line in enumerate(raw.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            reason = "not UTF-8 text"
        except json.JSONDecodeError as error:
            reason = f"not JSON ({error.msg})"
        else:
            reason = check(record)
        if reason is not None:
            if strict:
                raise UserError(f"{path}:{number}: {reason}")
            skipped.append({"line": number, "reason": reason})
            # The first few are logged; all are counted and listed in the report.
            level = logging.WARNING if len(skipped) <= LOGGED_SKIPS else logging.DEBUG
            log.log(level, "%s:%d: skipped: %s", path, number, reason)
            continue
        if record["id"] in seen:
            raise UserError(
                f"{path}:{number}: duplicate item id {record['id']!r} (first on line "
                f"{seen[record['id']]})"
            )
        seen[record["id"]] = number
        items.append((number, record))
        if limit is not None and len(items) >= limit:
            break
    return items, skipped


def load_verdicts(root: pathlib.Path) -> dict[str, str]:
    """id -> "accept" | "reject" | "unsure" from `root/verdicts.json`.

    The review module's reader when it is installed (it owns the format); otherwise this
    reads the format it writes: `{"version": 1, "verdicts": {id: {"verdict": ...}}}`.
    """
    path = root / "verdicts.json"
    if not path.is_file():
        raise UserError(
            f"--verified-only: {path} does not exist; review the bench first "
            "(jax-spatial bench review)"
        )
    try:
        from jax_spatial.benchmark.verdicts import load_verdicts as reviewed
    except ImportError:
        reviewed = None
    if reviewed is not None:
        try:
            return dict(reviewed(root))
        except UserError:
            raise
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise UserError(f"{path}: {' '.join(str(error).split())}") from None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise UserError(f"{path}: not JSON ({error.msg}, line {error.lineno})") from None
    verdicts = data.get("verdicts") if isinstance(data, dict) else None
    if not isinstance(verdicts, dict):
        raise UserError(f"{path}: expected {{'version': 1, 'verdicts': {{id: {{...}}}}}}")
    out = {}
    for item_id, entry in verdicts.items():
        verdict = entry.get("verdict") if isinstance(entry, dict) else entry
        if isinstance(verdict, str):
            out[str(item_id)] = verdict
    return out


def load_bench(root, *, verified_only: bool = False) -> Bench:
    """The bench folder `root` (its `bench.jsonl`, `manifest.json` if any)."""
    root = pathlib.Path(root)
    if not root.exists():
        raise UserError(f"--bench {root} does not exist")
    if not root.is_dir():
        raise UserError(f"--bench {root} is a file; expected a bench folder (with bench.jsonl)")
    path = root / "bench.jsonl"
    if not path.is_file():
        raise UserError(
            f"--bench {root} has no bench.jsonl; write one with jax-spatial bench build --out "
            f"{root}"
        )
    lines, skipped = read_bench_lines(path)
    if not lines:
        why = f" ({len(skipped)} bad lines; line {skipped[0]['line']}: {skipped[0]['reason']})"
        raise UserError(f"{path} holds no benchmark items{why if skipped else ''}")
    order = [record["id"] for _, record in lines]
    keep = None
    if verified_only:
        verdicts = load_verdicts(root)
        keep = {i for i in order if verdicts.get(i) == "accept"}
        if not keep:
            raise UserError(f"--verified-only: no item of {path} has the verdict accept")
    items, excluded, by_qa_format = [], set(), {}
    for _, record in lines:
        record.setdefault("format", "-")
        record.setdefault("choices", [])
        if keep is not None and record["id"] not in keep:
            excluded.add(record["id"])
            continue
        items.append(record)
        meta = record.get("meta")
        if isinstance(meta, dict) and meta.get("qa_id"):
            by_qa_format[(str(meta["qa_id"]), str(record["format"]))] = record["id"]
    manifest = {}
    if (root / "manifest.json").is_file():
        try:
            manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            log.warning("%s: not JSON; ignored", root / "manifest.json")
    return Bench(
        root=root,
        items=items,
        index={record["id"]: k for k, record in enumerate(items)},
        order=order,
        excluded=excluded,
        by_qa_format=by_qa_format,
        skipped=skipped,
        manifest=manifest if isinstance(manifest, dict) else {},
        verified_only=verified_only,
    )


__all__ = ["Bench", "load_bench", "load_verdicts", "read_bench_lines"]
