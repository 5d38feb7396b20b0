"""QA per frame by how objects may be named: caption only, words, words and pointing.

    .venv/bin/python bench/references.py [--real ../shared/data/real] [--street 8]

Runs the engine on the shared real samples (KITTI, mmdetection3d KITTI and SUN RGB-D, ScanNet)
and on dense synthetic street frames (`sources.street`), each in four settings:

* `caption`: `--formats caption/raw`, objects named by a unique caption only (the old rule,
  but counting glimpses for uniqueness);
* `words`: `--formats caption/raw`: unique caption or relative expression ("the leftmost car");
* `auto`: the default, one line per QA, pointing by box text where words cannot single an
  object out;
* `all`: every suitable format (lines per QA rise with them).

It prints one table row per (source, setting): frames, QA per frame, lines per frame, and the
share of referenced objects named by caption, relative expression and box. The numbers are
documented in docs/relations.md ("References").
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import pathlib
import tempfile

from jax_spatial import engine
from jax_spatial.qa.select import QuotaConfig
from jax_spatial.sources import get_source
from jax_spatial.sources.street import StreetSource
from jax_spatial.writers.jsonl import read_jsonl

REAL = (
    ("kitti", "kitti_object"),
    ("mmdet3d", "mmdet3d_infos/kitti_000008"),
    ("mmdet3d", "mmdet3d_infos/sunrgbd_000017"),
    ("scannet", "scannet_scene0000_00"),
)
SETTINGS = {
    "caption": ("caption/raw", ("caption",)),
    "words": ("caption/raw", ("caption", "relative")),
    "auto": ("auto", ("caption", "relative", "pointing")),
    "all": ("all", ("caption", "relative", "pointing")),
}


def measure(source, formats: str, references) -> dict:
    config = engine.GenerateConfig(
        formats=formats, quotas=dataclasses.replace(QuotaConfig(), references=tuple(references))
    )
    with tempfile.TemporaryDirectory() as out:
        summary = engine.generate(source, out, config)
        records = read_jsonl(pathlib.Path(out) / "qa.jsonl")
    named = collections.Counter()
    seen = set()
    for record in records:
        if record["meta"]["qa_id"] in seen:
            continue  # each QA once, whatever its number of formats
        seen.add(record["meta"]["qa_id"])
        for obj in record["meta"]["objects"]:
            words = obj.get("referring")
            if words is None:
                named["box"] += 1
            elif words == _caption(obj):
                named["caption"] += 1
            else:
                named["relative"] += 1
    frames = max(summary["frames"], 1)
    return {
        "frames": summary["frames"],
        "qa_per_frame": summary["qa_total"] / frames,
        "lines_per_frame": summary["lines"] / frames,
        "per_task": summary["per_task"],
        "named": dict(named),
    }


def _caption(obj) -> str:
    from jax_spatial.qa import grammar

    return grammar.definite(obj["caption"] or obj["category"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--real", default=str(pathlib.Path(__file__).parents[2] / "shared/data/real")
    )
    parser.add_argument("--street", type=int, default=8, help="synthetic street scenes")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    sources = []
    for name, rel in REAL:
        root = pathlib.Path(args.real) / rel
        if root.exists():
            sources.append((f"{name}:{rel.split('/')[-1]}", get_source(name, str(root))))
        else:
            print(f"(skipping {name} {rel}: {root} not found)")
    sources.append((f"street x{args.street}", StreetSource(count=args.street)))
    rows = []
    header = (
        f"{'source':32s} {'setting':8s} {'frames':>6s} {'QA/frame':>9s} {'lines/frame':>12s}  named"
    )
    print(header)
    print("-" * len(header))
    for label, source in sources:
        for setting, (formats, references) in SETTINGS.items():
            row = measure(source, formats, references)
            rows.append({"source": label, "setting": setting, **row})
            named = ", ".join(f"{k} {v}" for k, v in sorted(row["named"].items()))
            print(
                f"{label:32s} {setting:8s} {row['frames']:6d} {row['qa_per_frame']:9.2f} "
                f"{row['lines_per_frame']:12.2f}  {named}"
            )
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
