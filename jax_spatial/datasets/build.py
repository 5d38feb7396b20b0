"""Build a `spatial_qa` TFDS dataset from Python (what `tfds build` does, for any config).

    path = build_dataset("~/tensorflow_datasets", "learn_train", num_scenes=200, seed=1,
                         width=128, height=96, split_fractions=(("train", 0.9), ("test", 0.1)))
    tfds.data_source("spatial_qa/learn_train", split="train", data_dir=...)

The config need not be one of the builder's named configs: its name, source options and
split fractions are stored with the data, and readers open it by name or by folder.
"""

from __future__ import annotations

import pathlib

from jax_spatial.errors import UserError


def parse_splits(text: str) -> tuple[tuple[str, float], ...]:
    """`"train=0.8,validation=0.1,test=0.1"` -> pairs; a bad item is a `UserError`."""
    pairs = []
    for item in (text or "").split(","):
        if not item:
            continue
        name, sep, value = item.partition("=")
        try:
            fraction = float(value)
        except ValueError:
            fraction = -1.0
        if not sep or not name or fraction <= 0:
            raise UserError(f"--splits item {item!r} is not name=fraction with fraction > 0")
        pairs.append((name, fraction))
    if not pairs:
        raise UserError("--splits needs at least one name=fraction")
    return tuple(pairs)


def build_dataset(
    data_dir: str | pathlib.Path,
    name: str,
    *,
    source: str = "procedural",
    root: str | None = None,
    split_fractions=(("train", 1.0),),
    scenes_per_shard: int = 8,
    seed: int = 0,
    lift: bool = False,
    file_format: str = "array_record",
    quotas: dict | None = None,
    **options,
) -> pathlib.Path:
    """Builds `spatial_qa/<name>` under `data_dir`; returns the version folder.

    `options` go to the source (procedural: `num_scenes`, `seed`, `views_per_scene`, `width`,
    `height`); `quotas` overrides per-frame question quotas (`qa.select.QuotaConfig` fields,
    e.g. `{"position": 12}`). A dataset already built there is reused as it is.
    """
    from jax_spatial.datasets.spatial_qa import spatial_qa_dataset_builder as builder_lib

    builder_lib._quotas(tuple((quotas or {}).items()))  # an unknown quota fails before any work
    config = builder_lib.SpatialQAConfig(
        name=name,
        description=f"{source} with options {sorted(options.items())}",
        source=source,
        root=root,
        options=tuple(sorted(options.items())),
        lift=lift,
        scenes_per_shard=scenes_per_shard,
        seed=seed,
        split_fractions=tuple(split_fractions),
        quotas=tuple(sorted((quotas or {}).items())),
    )
    return prepare(builder_lib.Builder, config, data_dir, file_format)


def prepare(builder_cls, config, data_dir: str | pathlib.Path, file_format: str) -> pathlib.Path:
    """Builds one config of a TFDS builder class under `data_dir`; returns the version folder.

    A data dir that cannot be created is a `UserError`; a dataset already built there is
    reused as it is.
    """
    import tensorflow_datasets as tfds

    data_dir = pathlib.Path(data_dir).expanduser()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create data dir {data_dir}: {error.strerror}") from error
    builder = builder_cls(config=config, data_dir=str(data_dir))
    builder.download_and_prepare(
        file_format=file_format,
        download_config=tfds.download.DownloadConfig(verify_ssl=False),
    )
    return pathlib.Path(builder.data_dir)


__all__ = ["build_dataset", "parse_splits", "prepare"]
