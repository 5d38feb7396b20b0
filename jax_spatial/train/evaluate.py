"""Exact-answer accuracy of predictions, per task and per instruction format.

A prediction is reduced to a canonical answer the way the question's kind asks: yes/no from
its first yes/no word, a choice letter from "(B)", "B." or a bare "B", a count as the last
number in the text (the InternSpatial counting rule). It is correct when that equals the
question's canonical answer. The full scorer (intervals, Mean Relative Accuracy) lives in the
benchmark package; this is what the training loop logs.
"""

from __future__ import annotations

import collections
import re

_WORD_NUMBERS = {
    w: str(i)
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve".split()
    )
}


def extract_canonical(prediction: str, kind: str) -> str:
    text = prediction.strip()
    lower = text.lower()
    if kind == "yes_no":
        match = re.search(r"\b(yes|no)\b", lower)
        return match.group(1) if match else ""
    if kind == "multiple_choice":
        match = re.search(r"\(([A-D])\)", text) or re.match(r"\s*([A-D])\b", text)
        return match.group(1) if match else ""
    if kind == "count":
        numbers = re.findall(r"\d+|\b(?:" + "|".join(_WORD_NUMBERS) + r")\b", lower)
        return _WORD_NUMBERS.get(numbers[-1], numbers[-1]) if numbers else ""
    return lower


def is_correct(prediction: str, meta: dict) -> bool:
    return extract_canonical(prediction, meta["kind"]) == str(meta["canonical"]).strip()


def family(format_id: str) -> str:
    """The format's text-reference family ("caption/raw" -> "caption")."""
    return format_id.split("/", 1)[0]


# Families whose questions write each object's box into the text as coordinates.
COORDINATE_FAMILIES = ("ref_region_box", "ref_caption_box")


def naming(format_id: str) -> str:
    """How a format's questions name their objects: "coordinates" (boxes written in the
    text), "drawn" (`image_text`: prompts drawn on the image, named by colour) or "words"."""
    fam = family(format_id)
    if fam in COORDINATE_FAMILIES:
        return "coordinates"
    return "drawn" if fam == "image_text" else "words"


def accuracy_table(rows) -> dict:
    """`rows` of `(meta, prediction, ...)` -> accuracies (0..100) overall, per task/format."""
    groups: dict[str, dict[str, list[int]]] = collections.defaultdict(
        lambda: collections.defaultdict(lambda: [0, 0])
    )
    for row in rows:
        meta, prediction = row[0], row[1]
        ok = int(is_correct(prediction, meta))
        keys = {
            "overall": "all",
            "task": meta["task"],
            "format": meta["format_id"],
            "family": family(meta["format_id"]),
            "prompt": meta["format_id"].split("/", 1)[-1],
            "task_family": f"{meta['task']}|{family(meta['format_id'])}",
        }
        for group, key in keys.items():
            groups[group][key][0] += ok
            groups[group][key][1] += 1
    return {
        group: {k: {"accuracy": 100.0 * c / n, "n": n} for k, (c, n) in sorted(values.items())}
        for group, values in groups.items()
    }


def majority_table(train_rows, eval_rows) -> dict:
    """Accuracy of always answering the training set's most common canonical answer per
    (task, kind): the baseline a model that ignores image and wording would reach."""
    counts: dict[tuple, collections.Counter] = collections.defaultdict(collections.Counter)
    for meta in train_rows:
        counts[(meta["task"], meta["kind"])][str(meta["canonical"])] += 1
    rows = []
    for meta in eval_rows:
        common = counts.get((meta["task"], meta["kind"]))
        rows.append((meta, common.most_common(1)[0][0] if common else ""))
    return accuracy_table(rows)


__all__ = ["accuracy_table", "extract_canonical", "family", "is_correct", "majority_table"]
