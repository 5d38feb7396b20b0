"""Scene-disjoint splits for `generate --split` and `bench build`: the TFDS builder's hash.

A scene's split is `datasets.examples.scene_split(scene_id, fractions)`: SHA-256 of the id placed
on the cumulative fractions, the function the `spatial_qa` builder uses. With the same
fractions, the scenes of `bench build --split test` are exactly the scenes of a dataset's test
split, so a model trained on `train` never saw a benchmark scene.

`DEFAULT_SPLITS` is `jax-spatial build-data`'s default (`train=0.8,test=0.2`; a test checks they
agree). A validation split exists only when the fractions name one
(`--splits train=0.8,validation=0.1,test=0.1`): adding it moves scenes between splits, so it
must be given the same way to the dataset build and to the benchmark.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence

from jax_spatial.datasets.build import parse_splits
from jax_spatial.datasets.examples import scene_split
from jax_spatial.errors import UsageError, UserError

DEFAULT_SPLITS = "train=0.8,test=0.2"
# The split names the help text offers; any name the fractions give is accepted.
SPLIT_NAMES = ("train", "validation", "test", "all")


def add_split_flags(parser: argparse.ArgumentParser, default: str) -> None:
    """Adds `--split` (default `default`) and `--splits` to a subcommand's parser."""
    parser.add_argument(
        "--split",
        default=default,
        help=f"scenes of one scene-disjoint split: {', '.join(SPLIT_NAMES)} (default {default}); "
        "a scene's split is the SHA-256 hash of its id on the --splits fractions, as in the "
        "TFDS builder",
    )
    parser.add_argument(
        "--splits",
        default=DEFAULT_SPLITS,
        help=f"split fractions (default {DEFAULT_SPLITS}, the default of build-data); "
        "validation exists only when named here",
    )


def parse_fractions(text: str | None) -> tuple[tuple[str, float], ...]:
    """`"train=0.8,test=0.2"` -> `(("train", 0.8), ("test", 0.2))`; a bad one is a usage error."""
    try:
        return parse_splits(DEFAULT_SPLITS if text is None else text)
    except UserError as error:
        raise UsageError(str(error)) from None


def check_split(split: str, fractions: Sequence[tuple[str, float]]) -> None:
    """Raises `UsageError` unless `split` is "all" or one of the fractions' names."""
    names = [name for name, _ in fractions]
    if split != "all" and split not in names:
        given = ",".join(f"{n}={f:g}" for n, f in fractions)
        raise UsageError(
            f"--split {split!r} is not among the --splits {given}; use one of "
            f"{', '.join([*names, 'all'])} (a validation split needs e.g. "
            "--splits train=0.8,validation=0.1,test=0.1)"
        )


def scenes_of_split(
    scene_ids: Iterable[str], split: str, fractions: Sequence[tuple[str, float]]
) -> list[str]:
    """The ids (in the source's order) whose hash falls in `split`; all of them for "all".

    Raises:
      UserError: no listed scene falls in the split.
    """
    scene_ids = list(scene_ids)
    if split == "all":
        return scene_ids
    kept = [s for s in scene_ids if scene_split(s, fractions) == split]
    if scene_ids and not kept:
        given = ",".join(f"{n}={f:g}" for n, f in fractions)
        raise UserError(
            f"none of the {len(scene_ids)} scenes the source lists falls in split {split!r} "
            f"(fractions {given}); list more scenes or choose another --split"
        )
    return kept


def fractions_dict(fractions: Sequence[tuple[str, float]]) -> dict[str, float]:
    """The fractions as a JSON object, normalised to sum to 1 (what `scene_split` uses)."""
    total = sum(float(f) for _, f in fractions)
    return {name: round(float(f) / total, 6) for name, f in fractions}


__all__ = [
    "DEFAULT_SPLITS",
    "SPLIT_NAMES",
    "add_split_flags",
    "check_split",
    "fractions_dict",
    "parse_fractions",
    "scenes_of_split",
]
