"""Per-item scores and the bootstrap behind every interval.

Each bench item gets one primary score in [0, 1], by its answer type:

* yes_no, multiple_choice: accuracy (1 when the extracted answer equals `canonical`).
* count: exact accuracy, the InternSpatial counting rule (the last number in the answer must
  equal the count). The relative error |pred - gt| / gt and the Mean Relative Accuracy are
  kept beside it, so a count task can be read the VSI-Bench way too.
* number: VSI-Bench Mean Relative Accuracy,

      MRA = 1/10 * sum over t in {0.50, 0.55, ..., 0.95} of 1[|pred - gt| / gt <= 1 - t].

  VSI-Bench's published formula writes a strict "<", but its scorer
  (`lmms_eval/tasks/vsibench/utils.py`, `mean_relative_accuracy`) compares with "<=" against
  `1 - np.linspace(0.5, 0.95, 10)`; this follows the scorer, thresholds computed the same way,
  so an answer exactly 50% off still earns 0.1 and the rounding of `1 - t` is the same. Two
  cases VSI-Bench's code does not define: gt = 0 scores 1 only for pred = 0 (its division
  fails there), and the denominator is |gt| (a negative gt would otherwise count everything).

A missing prediction, or one with no answer of the asked kind ("none"/"ambiguous"), scores 0.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from jax_spatial.benchmark.extract import COUNT, NUMBER, Extraction

# VSI-Bench: start .5, end .95, interval .05 -> int((.95 - .5) / .05 + 2) = 10 points.
MRA_THRESHOLDS = np.linspace(0.5, 0.95, int((0.95 - 0.5) / 0.05 + 2))
assert MRA_THRESHOLDS.shape == (10,)


def relative_error(pred, gt) -> np.ndarray:
    """|pred - gt| / |gt|, elementwise ([...] -> [...]); 0 where both are 0, inf where only gt
    is."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    diff = np.abs(pred - gt)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = diff / np.abs(gt)
    return np.where(gt == 0, np.where(diff == 0, 0.0, np.inf), rel)


def mean_relative_accuracy(pred, gt) -> np.ndarray:
    """VSI-Bench MRA of each (pred, gt) pair ([...] -> [...] in {0, 0.1, ..., 1})."""
    rel = relative_error(pred, gt)
    return (rel[..., None] <= 1 - MRA_THRESHOLDS).mean(axis=-1)


@dataclasses.dataclass(frozen=True)
class ItemScore:
    """`score` in [0, 1] (the primary metric); `status`: ok | none | ambiguous | missing."""

    score: float
    exact: bool
    status: str
    value: str | None = None
    mra: float | None = None
    rel_error: float | None = None


def gold_number(item: dict) -> float:
    """The numeric answer of a count/number item: `canonical`, else `meta.value`."""
    try:
        return float(item["canonical"])
    except (TypeError, ValueError, KeyError):
        return float((item.get("meta") or {})["value"])


def score_item(item: dict, extraction: Extraction | None) -> ItemScore:
    """The score of one extracted answer (None: no prediction for the item)."""
    kind = item["answer_type"]
    if extraction is None or extraction.value is None:
        status = "missing" if extraction is None else extraction.status
        numeric = kind in (COUNT, NUMBER)
        return ItemScore(0.0, False, status, mra=0.0 if numeric else None)
    if kind not in (COUNT, NUMBER):
        exact = extraction.value == str(item["canonical"]).strip()
        return ItemScore(float(exact), exact, "ok", extraction.value)
    gt = gold_number(item)
    pred = extraction.number
    mra = float(mean_relative_accuracy(pred, gt))
    rel = float(relative_error(pred, gt))
    exact = pred == gt
    primary = float(exact) if kind == COUNT else mra
    return ItemScore(primary, exact, "ok", extraction.value, mra=mra, rel_error=rel)


def stable_seed(seed: int, *key: str) -> list[int]:
    """A numpy seed sequence entropy from `seed` and a cell key, the same in every process."""
    digest = hashlib.sha256("\x1f".join(key).encode()).digest()
    return [int(seed), int.from_bytes(digest[:8], "little")]


def bootstrap_means(scores, resamples: int, seed: int, *key: str) -> np.ndarray:
    """Means of `resamples` resamples of the items, drawn with replacement: [n] -> [resamples].

    Seeded by (seed, key): the same cell gets the same resampled item indices for every model,
    so two models' intervals come from the same resamples (paired).
    """
    scores = np.asarray(scores, dtype=np.float64)
    n = scores.shape[0]
    rng = np.random.default_rng(stable_seed(seed, *key))
    out = np.empty(resamples)
    # Chunks keep memory at ~8 MB whatever the cell size.
    chunk = max(1, 1_000_000 // max(n, 1))
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = scores[idx].mean(axis=1)
    return out


def percentile_interval(means: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The central `level` percentile interval of bootstrap means."""
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return float(lo), float(hi)


__all__ = [
    "MRA_THRESHOLDS",
    "ItemScore",
    "bootstrap_means",
    "gold_number",
    "mean_relative_accuracy",
    "percentile_interval",
    "relative_error",
    "score_item",
    "stable_seed",
]
