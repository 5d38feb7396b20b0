"""The `jax-spatial` command.

jax-spatial generate --source kitti --root DATA/kitti_object --out out/kitti [--seed 0]
    [--max-scenes N] [--batch-size 32] [--config configs/generate.py:arg] [--set KEY=VALUE]
    [--formats auto|caption/raw|all|K|fmt,fmt] [--write-images] [--split all|train|test]
    [--tasks auto|single_view|multi_view|all|family,family] [--clips 4] [--rotation-pairs 4]
jax-spatial sources
jax-spatial draw --qa out/kitti/qa.jsonl --root DATA/kitti_object --out out/kitti/sheet.png
jax-spatial export --data-dir D --name spatial_qa/procedural_small --out DIR
    [--style internvl|llava] [--formats 1|all|K|fmt,fmt] [--seed 0] [--split train]
    [--json-array]
jax-spatial bench build --out B [source flags as generate] [--per-cell 10] [--split test]
jax-spatial bench review B [--port 8765] [--no-browser]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import pathlib
import sys
import tempfile

import ml_collections

from jax_spatial.errors import UsageError, UserError

# Sources that make their own data and need no --root.
ROOTLESS_SOURCES = ("procedural", "street", "procedural_clips", "rotation_pairs")


@dataclasses.dataclass
class PreparedRun:
    """What `generate` builds from its flags before any scene is read (shared with `bench`).

    Attributes:
      source: the built source (wrapped in `LiftingSource` when lifting).
      run: the engine's `GenerateConfig`.
      source_name, root, options, lift: how the source was built, for manifests.
      out: the output folder, checked writable.
      scene_ids: the ids of the `--split` (None: all of the source's); `run.max_scenes`
        caps them.
      split, fractions: the `--split` name and the `--splits` fractions it was taken from.
    """

    source: object
    run: object
    source_name: str
    root: str
    options: dict
    lift: bool
    out: str
    scene_ids: list[str] | None
    split: str
    fractions: tuple

    def split_record(self) -> dict:
        """The split as summaries record it: `{"name": "all"}` or its name and fractions."""
        if self.split == "all":
            return {"name": "all"}
        return {"name": self.split, "fractions": dict(self.fractions)}


def prepare_run(args: argparse.Namespace) -> PreparedRun:
    """The source, run settings, output folder and split of `generate`-style flags.

    Reads `args.config`, `source`, `root`, `out`, `seed`, `max_scenes`, `batch_size`,
    `formats`, `write_images`, `set`, `lift`, `split` and `splits`; every check of a flag
    happens here, before anything is generated.
    """
    from jax_spatial import config as config_lib
    from jax_spatial.benchmark import splits
    from jax_spatial.sources import source_class, source_options

    _check_at_least("--batch-size", args.batch_size, 1)
    _check_at_least("--max-scenes", args.max_scenes, 1)
    fractions = splits.parse_fractions(args.splits)
    splits.check_split(args.split, fractions)
    cfg = (
        config_lib.load_config(args.config)
        if args.config
        else ml_collections.ConfigDict({"source": None, "root": None})
    )
    # With no source at all the embedded default runs: procedural rooms, which need no files.
    source_name = args.source or cfg.get("source") or "procedural"
    source_class(source_name)  # an unknown name is a usage error before anything is read
    root = args.root or cfg.get("root") or ""
    if not root and source_name not in ROOTLESS_SOURCES:
        raise UsageError(f"--source {source_name} needs --root (the dataset folder)")
    if root:
        _check_root(root, source_name)
    out = args.out or f"out/{source_name}"
    _check_out_dir(out, "--out")
    run = config_lib.generate_config_from(cfg)
    overrides = {
        "seed": args.seed,
        "max_scenes": args.max_scenes,
        "batch_size": args.batch_size,
        "formats": args.formats,
        "write_images": True if args.write_images else None,
    }
    run = dataclasses.replace(run, **{k: v for k, v in overrides.items() if v is not None})
    _check_run(run)
    options = dict(cfg.get("options") or {})
    if source_name in ROOTLESS_SOURCES and args.seed:
        options["seed"] = args.seed
    options.update(
        config_lib.parse_options(
            args.set or (), source_options(source_name), what=f"{source_name} option"
        )
    )
    source = build_source(source_name, root, options)
    lift = args.lift if args.lift is not None else source_name == "procedural"
    if lift:
        from jax_spatial.lift.scene_lift import LiftingSource

        # The embedded default asks of boxes lifted from its rendered depth, not of its exact
        # boxes: the path every image-only source takes.
        source = LiftingSource(source, discard_boxes=source_name in ROOTLESS_SOURCES)
    scene_ids = None
    if args.split != "all":
        scene_ids = splits.scenes_of_split(source.scene_ids(), args.split, fractions)
    return PreparedRun(
        source, run, source_name, root, options, bool(lift), out, scene_ids, args.split, fractions
    )


def _generate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from jax_spatial import engine
    from jax_spatial.multiview import generate as multi_view

    _check_at_least("--clips", getattr(args, "clips", None), 0)
    _check_at_least("--rotation-pairs", getattr(args, "rotation_pairs", None), 0)
    multi_view.parse_tasks(args.tasks)  # a bad --tasks fails before anything is built
    prepared = prepare_run(args)
    out, root = prepared.out, prepared.root
    plan = multi_view.parse_tasks(args.tasks, prepared.source_name)

    def progress(total):
        return tqdm(total=total, unit="scene", desc=prepared.source_name, disable=args.quiet)

    if plan.single_view:
        run = dataclasses.replace(
            prepared.run,
            quotas=multi_view.single_view_quotas(prepared.run.quotas, plan.single_view),
        )
        summary = engine.generate(
            prepared.source, out, run, scene_ids=prepared.scene_ids, progress=progress,
            split=prepared.split_record(),
        )
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
    if plan.multi_view:
        clip_summary = multi_view.run_for_cli(prepared, plan, args)
        print(multi_view.summary_text(clip_summary, out))
    return 0


def _check_at_least(flag: str, value, low: int) -> None:
    if value is not None and value < low:
        raise UsageError(f"{flag} must be at least {low}, got {value}")


def _check_run(run) -> None:
    """The run settings a config file may also set: positive sizes and known formats."""
    from jax_spatial.formats.expand import parse_select

    for name in ("batch_size", "chunk_scenes", "max_scenes", "seed"):
        value = getattr(run, name)
        if value is None and name == "max_scenes":
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise UsageError(f"{name} must be an integer, got {value!r}")
        if name != "seed" and value < 1:
            raise UsageError(f"{name} must be at least 1, got {value}")
    try:
        parse_select(run.formats)
    except ValueError as error:
        raise UsageError(f"--formats {run.formats!r}: {error}") from None


def _check_root(root: str, source_name: str) -> None:
    path = pathlib.Path(root)
    if not path.exists():
        raise UserError(f"--root {root} does not exist")
    if not path.is_dir():
        raise UserError(f"--root {root} is a file; expected the {source_name} dataset folder")
    try:
        empty = next(path.iterdir(), None) is None
    except OSError as error:
        raise UserError(f"--root {root} cannot be read: {error.strerror}") from None
    if empty:
        raise UserError(f"--root {root} is empty; expected the {source_name} dataset folder")


def _check_out_dir(out: str, flag: str) -> None:
    """Creates the output folder and proves it writable before any work is done."""
    path = pathlib.Path(out)
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {out} is a file; expected a folder to write into")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise UserError(f"{flag} {out} is not writable: {error.strerror or error}") from None


def _check_out_file(out: str, flag: str) -> None:
    path = pathlib.Path(out)
    if path.is_dir():
        raise UserError(f"{flag} {out} is a folder; expected a file name")
    _check_out_dir(str(path.parent), f"{flag} folder")


# What a source's constructor raises when the folder is not its dataset or an option is wrong.
_SOURCE_ERRORS = (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError)


def build_source(name: str, root: str, options: dict):
    """`get_source` with a source's own complaints about its folder turned into `UserError`.

    Also fails when the source lists no scene: a folder of another dataset usually reads as an
    empty one, and a run that writes nothing should say why rather than succeed.
    """
    from jax_spatial.scene import SceneSkip
    from jax_spatial.sources import get_source

    try:
        source = get_source(name, root, **options)
        scene_ids = source.scene_ids()
    except UserError:
        raise
    except (SceneSkip, *_SOURCE_ERRORS) as error:
        where = f"{root} as a {name} dataset" if root else f"source {name}"
        raise UserError(f"cannot read {where}: {_one_line(error)}") from None
    if not scene_ids and not getattr(source, "skipped_entries", None):
        raise UserError(
            f"no {name} scenes found under {root or '(no root)'}; is it the right --source "
            "and the dataset folder in its native layout (see README, Sources)?"
        )
    return source


def _one_line(error: BaseException) -> str:
    text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    text = " ".join(text.split())
    # OSError and ValueError messages name the file already; others need their kind said.
    plain = isinstance(error, OSError | ValueError)
    return text if plain else f"{type(error).__name__}: {text}"


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
    if summary["scenes"]["skipped_scenes"]:
        frames = summary["scenes"].get("frames_skipped", 0)
        also = f" and {frames} frames" if frames else ""
        lines.append(f"skipped {summary['scenes']['skipped']} scenes{also}:")
        lines += [
            f"  {'/'.join(filter(None, (s.get('scene_id'), s.get('frame_id')))) or s.get('file')}"
            f": {s['reason']}"
            for s in summary["scenes"]["skipped_scenes"]
        ]
    return "\n".join(lines)


def _sources(args: argparse.Namespace) -> int:
    from jax_spatial.sources import available_sources

    print("\n".join(available_sources()))
    return 0


def _draw(args: argparse.Namespace) -> int:
    from jax_spatial.viz import qa_sheet

    _check_at_least("--count", args.count, 1)
    records = _read_qa_file(args.qa)
    if not pathlib.Path(args.root).is_dir():
        raise UserError(f"--root {args.root} is not a folder")
    _check_out_file(args.out, "--out")
    try:
        path = qa_sheet.save_contact_sheet(
            records, args.root, args.out, count=args.count, seed=args.seed
        )
    except (OSError, ValueError) as error:
        raise UserError(f"cannot draw {args.qa}: {_one_line(error)}") from None
    print(json.dumps({"sheet": str(path), "records": min(args.count, len(records))}))
    return 0


def _read_qa_file(path: str) -> list[dict]:
    """The records of a qa.jsonl, each checked to be a QA line (the line number names a bad one)."""
    file = pathlib.Path(path)
    if not file.is_file():
        raise UserError(f"--qa {path} {'is a folder' if file.is_dir() else 'does not exist'}")
    records = []
    try:
        with open(file, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    raise UserError(f"{path}:{number}: not JSON ({error.msg})") from None
                meta = record.get("meta") if isinstance(record, dict) else None
                if not isinstance(meta, dict) or "task" not in meta or "image" not in record:
                    raise UserError(f"{path}:{number}: not a QA record (needs image and meta.task)")
                records.append(record)
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a UTF-8 text file") from None
    if not records:
        raise UserError(f"--qa {path} holds no QA records")
    return records


def _export(args: argparse.Namespace) -> int:
    from jax_spatial.formats.expand import parse_select
    from jax_spatial.writers import export

    try:
        parse_select(args.formats)
    except ValueError as error:
        raise UsageError(f"--formats {args.formats!r}: {error}") from None
    if not pathlib.Path(args.data_dir).is_dir():
        raise UserError(f"--data-dir {args.data_dir} does not exist or is not a folder")
    _check_out_dir(args.out, "--out")
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
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="a source option, repeatable: --set depth_dir=depth --set hfov_deg=55 "
        "(an unknown KEY is an error listing the source's options)",
    )
    gen.add_argument(
        "--formats",
        default=None,
        help="instruction formats per QA: 'all', K (sampled per QA), or format ids "
        "'ref/raw,image_text/marks', 'caption/raw' (words only), or 'auto' (the default: each "
        "QA once on the raw image, in words where words single out its objects, else with "
        "their boxes as <ref>..</ref><box>[[..]]</box> text)",
    )
    gen.add_argument(
        "--write-images",
        action="store_true",
        help="draw the overlays of drawn formats to <out>/images/ and point `image` at them",
    )
    gen.add_argument("--quiet", action="store_true", help="no progress bar")
    from jax_spatial.benchmark import splits as bench_splits

    bench_splits.add_split_flags(gen, default="all")
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
    gen.add_argument(
        "--tasks",
        default=None,
        help="task families: single_view, multi_view, all, or a comma list "
        "(position,size,existence,counting,mv_counting,abs_distance,object_size,room_size,"
        "rel_distance,rel_direction,appearance_order,route,rotation); default auto: all for "
        "the procedural default, multi_view for procedural_clips and rotation_pairs, "
        "single_view otherwise. Multi-view questions go to qa_clips.jsonl",
    )
    gen.add_argument(
        "--clips",
        type=int,
        default=4,
        help="procedural_clips walks asked multi-view questions beside the single-view "
        "procedural default (default 4; 0: none)",
    )
    gen.add_argument(
        "--rotation-pairs",
        type=int,
        default=4,
        help="rotation_pairs asked rotation questions beside procedural clips (default 4; 0: none)",
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

    from jax_spatial.train import commands as train_commands

    train_commands.add_parsers(sub)
    from jax_spatial.benchmark import commands as bench_commands

    bench_commands.add_parsers(sub)
    from jax_spatial.benchmark import score_commands

    score_commands.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:
        # argparse has printed its usage line; hand back its code rather than exiting, so an
        # in-process caller (a notebook, the tests) gets a return value like every other error.
        return exit_.code if isinstance(exit_.code, int) else 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.func(args)
    except UserError as error:
        print(f"jax-spatial {args.command}: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"jax-spatial {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
