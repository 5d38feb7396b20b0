"""The `jax-spatial` command.

jax-spatial generate --source kitti --root DATA/kitti_object --out out/kitti [--seed 0]
    [--max-scenes N] [--batch-size 32] [--config configs/generate.py:arg]
    [--formats caption/raw|all|K|fmt,fmt] [--write-images]
jax-spatial sources
jax-spatial draw --qa out/kitti/qa.jsonl --root DATA/kitti_object --out out/kitti/sheet.png
jax-spatial export --data-dir D --name spatial_qa/procedural_small --out DIR
    [--style internvl|llava] [--formats 1|all|K|fmt,fmt] [--seed 0] [--split train]
    [--json-array]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys

import ml_collections

# Sources that make their own data and need no --root.
ROOTLESS_SOURCES = ("procedural",)


def _generate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from jax_spatial import config as config_lib
    from jax_spatial import engine
    from jax_spatial.sources import get_source

    cfg = (
        config_lib.load_config(args.config)
        if args.config
        else ml_collections.ConfigDict({"source": None, "root": None})
    )
    # With no source at all the embedded default runs: procedural rooms, which need no files.
    source_name = args.source or cfg.get("source") or "procedural"
    root = args.root or cfg.get("root") or ""
    if not root and source_name not in ROOTLESS_SOURCES:
        print(f"generate --source {source_name} needs --root (the dataset folder)", file=sys.stderr)
        return 2
    out = args.out or f"out/{source_name}"
    run = config_lib.generate_config_from(cfg)
    overrides = {
        "seed": args.seed,
        "max_scenes": args.max_scenes,
        "batch_size": args.batch_size,
        "formats": args.formats,
        "write_images": True if args.write_images else None,
    }
    run = dataclasses.replace(run, **{k: v for k, v in overrides.items() if v is not None})
    options = {"seed": args.seed} if source_name in ROOTLESS_SOURCES and args.seed else {}
    source = get_source(source_name, root, **options)
    lift = args.lift if args.lift is not None else source_name in ROOTLESS_SOURCES
    if lift:
        from jax_spatial.lift.scene_lift import LiftingSource

        # The embedded default asks of boxes lifted from its rendered depth, not of its exact
        # boxes: the path every image-only source takes.
        source = LiftingSource(source, discard_boxes=source_name in ROOTLESS_SOURCES)

    def progress(total):
        return tqdm(total=total, unit="scene", desc=f"{source_name}", disable=args.quiet)

    summary = engine.generate(source, out, run, progress=progress)
    print(_summary_text(summary, out))
    if args.sheet and summary["qa_total"]:
        from jax_spatial.viz import qa_sheet
        from jax_spatial.writers.jsonl import read_jsonl

        # Rendered frames were saved under `out`; dataset images stay under their root.
        image_root = out if not root else root
        sheet = qa_sheet.save_contact_sheet(
            read_jsonl(f"{out}/qa.jsonl"), image_root, f"{out}/contact_sheet.png"
        )
        print(f"contact sheet of sample questions: {sheet}")
    return 0


def _summary_text(summary: dict, out: str) -> str:
    lines = [
        f"wrote {summary['qa_total']} QA from {summary['frames']} frames of "
        f"{summary['scenes']['done']}/{summary['scenes']['total']} scenes "
        f"in {summary['seconds']} s -> {out}/qa.jsonl "
        f"({summary['lines']} lines in {len(summary['per_format'])} formats, "
        f"{summary['images_written']} images)",
        "per task: " + ", ".join(f"{k} {v}" for k, v in summary["per_task"].items()),
    ]
    for key, bal in summary["answer_balance"].items():
        if key.endswith("count"):
            continue
        shares = ", ".join(f"{k} {v:.0%}" for k, v in bal["share"].items())
        lines.append(f"balance {key}: {shares} (n={bal['total']})")
    if summary["scenes"]["skipped"]:
        lines.append(f"skipped {summary['scenes']['skipped']} scenes:")
        lines += [f"  {s['scene_id']}: {s['reason']}" for s in summary["scenes"]["skipped_scenes"]]
    return "\n".join(lines)


def _sources(args: argparse.Namespace) -> int:
    from jax_spatial.sources import available_sources

    print("\n".join(available_sources()))
    return 0


def _draw(args: argparse.Namespace) -> int:
    from jax_spatial.viz import qa_sheet
    from jax_spatial.writers.jsonl import read_jsonl

    records = read_jsonl(args.qa)
    path = qa_sheet.save_contact_sheet(
        records, args.root, args.out, count=args.count, seed=args.seed
    )
    print(json.dumps({"sheet": str(path), "records": min(args.count, len(records))}))
    return 0


def _export(args: argparse.Namespace) -> int:
    from jax_spatial.writers import export

    summary = export.export_dataset(
        args.data_dir,
        args.out,
        name=args.name,
        style=args.style,
        formats=args.formats,
        seed=args.seed,
        split=args.split,
        json_array=args.json_array,
    )
    print(export.summary_json(summary))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jax-spatial", description="Spatial-reasoning QA from 3D-annotated scenes."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write qa.jsonl and summary.json for a source")
    gen.add_argument(
        "--source", help="source name (see `jax-spatial sources`; default: procedural)"
    )
    gen.add_argument("--root", help="the dataset folder in its native layout")
    gen.add_argument("--out", help="output folder (default: out/<source>)")
    gen.add_argument("--seed", type=int, default=None)
    gen.add_argument("--max-scenes", type=int, default=None)
    gen.add_argument("--batch-size", type=int, default=None)
    gen.add_argument("--config", help="config file, e.g. configs/generate.py:source=kitti")
    gen.add_argument(
        "--formats",
        default=None,
        help="instruction formats per QA: 'all', K (sampled per QA), or format ids "
        "'ref/raw,image_text/marks' (default caption/raw: each QA once, as plain text)",
    )
    gen.add_argument(
        "--write-images",
        action="store_true",
        help="draw the overlays of drawn formats to <out>/images/ and point `image` at them",
    )
    gen.add_argument("--quiet", action="store_true", help="no progress bar")
    gen.add_argument(
        "--sheet",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write contact_sheet.png of sample questions with their boxes (default: on)",
    )
    gen.add_argument(
        "--lift",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="lift objects from depth and masks (default: on for procedural, which then "
        "discards its exact boxes; image-only sources lift on their own)",
    )
    gen.set_defaults(func=_generate)

    src = sub.add_parser("sources", help="list the registered sources")
    src.set_defaults(func=_sources)

    draw = sub.add_parser("draw", help="contact sheet PNG of sample QA with their boxes")
    draw.add_argument("--qa", required=True, help="a qa.jsonl")
    draw.add_argument("--root", required=True, help="folder the records' image paths are under")
    draw.add_argument("--out", required=True, help="PNG to write")
    draw.add_argument("--count", type=int, default=12)
    draw.add_argument("--seed", type=int, default=0)
    draw.set_defaults(func=_draw)

    exp = sub.add_parser("export", help="a built TFDS dataset -> InternVL or LLaVA JSONL + images")
    exp.add_argument(
        "--data-dir",
        required=True,
        help="TFDS data dir (or, without --name, the dataset folder itself)",
    )
    exp.add_argument("--name", help="dataset name, e.g. spatial_qa/procedural_small")
    exp.add_argument("--out", required=True, help="output folder")
    exp.add_argument("--style", choices=("internvl", "llava"), default="internvl")
    exp.add_argument("--formats", default="1", help="'all', K per QA, or format ids")
    exp.add_argument("--seed", type=int, default=0)
    exp.add_argument("--split", default="train")
    exp.add_argument(
        "--json-array",
        action="store_true",
        help="also write <style>.json, one JSON array (what LLaVA-1.5's train.py json.loads)",
    )
    exp.set_defaults(func=_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
