"""Build a `spatial_qa_clips` TFDS dataset from Python (what `tfds build` does, for any config).

    path = build_clip_dataset("~/tensorflow_datasets", "walks_8f", num_scenes=50, num_frames=8,
                              split_fractions=(("train", 0.9), ("test", 0.1)))
    tfds.data_source("spatial_qa_clips/walks_8f", split="train", data_dir=...)

The config need not be one of the builder's named configs: its name, options and split
fractions are stored with the data, and readers open it by name or by folder.
"""

from __future__ import annotations

import pathlib

from jax_spatial.datasets.build import prepare
from jax_spatial.datasets.clip_examples import DEFAULT_QUESTIONS


def build_clip_dataset(
    data_dir: str | pathlib.Path,
    name: str,
    *,
    source: str = "procedural_clips",
    root: str | None = None,
    num_frames: int = 16,
    mode: str = "uniform",
    clip_seed: int = 0,
    split_fractions=(("train", 1.0),),
    scenes_per_shard: int = 8,
    questions: str = DEFAULT_QUESTIONS,
    file_format: str = "array_record",
    **options,
) -> pathlib.Path:
    """Builds `spatial_qa_clips/<name>` under `data_dir`; returns the version folder.

    `options` go to the source (procedural_clips: `num_scenes`, `seed`, `width`, `height`,
    ...); `questions` names the question generator (`"module:function"`, `clips ->
    list[list[ClipQA]]`). A dataset already built there is reused as it is.
    """
    from jax_spatial.datasets.spatial_qa_clips import spatial_qa_clips_dataset_builder as lib

    config = lib.SpatialQAClipsConfig(
        name=name,
        description=f"{source} clips of {num_frames} frames, options {sorted(options.items())}",
        source=source,
        root=root,
        options=tuple(sorted(options.items())),
        num_frames=num_frames,
        mode=mode,
        clip_seed=clip_seed,
        scenes_per_shard=scenes_per_shard,
        split_fractions=tuple(split_fractions),
        questions=questions,
    )
    return prepare(lib.Builder, config, data_dir, file_format)


__all__ = ["build_clip_dataset"]
