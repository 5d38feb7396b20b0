r"""spatial_qa_clips: multi-view questions about clips (ordered frame sets), one example per clip.

Build (procedural configs need no data)::

    tfds build jax_spatial/datasets/spatial_qa_clips --config=procedural_clips_small \
        --file_format=array_record
    tfds build jax_spatial/datasets/spatial_qa_clips --config=scannet --manual_dir=/data/manual \
        --file_format=array_record
    # Beam (any runner; see docs/storage.md):
    tfds build jax_spatial/datasets/spatial_qa_clips --config=procedural_clips \
        --file_format=array_record \
        --beam_pipeline_options="runner=DirectRunner,direct_num_workers=4,direct_running_mode=multi_processing"

Read without TensorFlow::

    ds = tfds.data_source("spatial_qa_clips/procedural_clips_small")   # random access, numpy
    clip, qas = jax_spatial.multiview.reading.clip_records(ds[0])

A second builder rather than more configs of `spatial_qa`: TFDS gives a builder one feature
dict for all its configs, and a clip (frames x objects x questions) is not a frame. The
example layout and the generation live in `jax_spatial.datasets.clip_examples`.

Questions come from the function the config's `questions` names (`"module:function"`,
default `jax_spatial.multiview.tasks:clip_questions`), called once per scene group with the
group's clips, `fn(clips) -> list[list[ClipQA]]`. Other question settings are another
function: a small module wrapping `clip_questions` with its config, named here.
"""

from __future__ import annotations

import dataclasses
import logging

import tensorflow_datasets as tfds

from jax_spatial import validate
from jax_spatial.datasets import builder_common, clip_examples, examples

log = logging.getLogger(__name__)

# Where each data config's source is expected under `--manual_dir`.
_LAYOUTS = {
    "scannet": "scannet/scannet_infos_*.pkl, scannet/points/<scene>.bin, "
    "scannet/posed_images/<scene>/*.jpg (mmdetection3d v1.0 infos)",
}
# Sources that need no files.
_PROCEDURAL = ("procedural_clips", "rotation_pairs")


@dataclasses.dataclass(eq=False)
class SpatialQAClipsConfig(tfds.core.BuilderConfig):
    """One source, how its clips are sampled, and where the questions come from.

    Attributes:
      source: registry name (`jax_spatial.sources`).
      root: the source's data folder; None means `<manual_dir>/<source>` for data sources.
      options: source options as `(name, value)` pairs. `procedural_clips` renders only the
        frames its clip takes, so its `num_frames` defaults to the config's.
      num_frames: frames per clip (VSI-Bench evaluates 8, 16 or 32).
      mode: frame sampling, "uniform" (VSI-Bench's rule), "random" or "all".
      clip_seed: the sampling seed of `mode="random"`.
      scenes_per_shard: scenes whose clips are made and asked about together (one batched
        call of the question generator). Fixes the unit of work, so the output does not
        depend on how many workers ran.
      max_scenes: cap on the scenes read (sorted ids); None for all.
      split_fractions: `(split, fraction)` pairs; each scene goes to one split by a stable
        hash of its id (`examples.scene_split`), so no scene is in two splits.
      questions: `"module:function"` of the question generator, `clips ->
        list[list[ClipQA]]`.
    """

    source: str = "procedural_clips"
    root: str | None = None
    options: tuple = ()
    num_frames: int = 16
    mode: str = "uniform"
    clip_seed: int = 0
    scenes_per_shard: int = 8
    max_scenes: int | None = None
    split_fractions: tuple = (("train", 1.0),)
    questions: str = clip_examples.DEFAULT_QUESTIONS


def _config(name, description, source, **kwargs) -> SpatialQAClipsConfig:
    return SpatialQAClipsConfig(name=name, description=description, source=source, **kwargs)


class Builder(builder_common.SceneGroupBuilderMixin, tfds.core.GeneratorBasedBuilder):
    """Multi-view spatial QA over one source's clips; a config per source."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "One example per clip: the frames' encoded bytes untouched, per-frame times, "
        "intrinsics and poses, world-frame objects with per-frame visibility, the room, and "
        "the clip's multi-view questions with exact float64 numeric answers.",
    }
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Procedural configs need no data. The others read their source from `--manual_dir`:\n"
        + "\n".join(f"  {name}: <manual_dir>/{layout}" for name, layout in _LAYOUTS.items())
    )
    BUILDER_CONFIGS = [
        _config(
            "procedural_clips_small",
            "8 procedural walks, 16 frames each at 160x120: a quick check, no data needed.",
            "procedural_clips",
            options=(("num_scenes", 8), ("seed", 0)),
            scenes_per_shard=4,
        ),
        _config(
            "procedural_clips",
            "2,000 procedural walks through polygon rooms, 16 frames at 320x240, exact ground "
            "truth; 5% of the rooms (by scene-id hash) in a test split.",
            "procedural_clips",
            options=(("num_scenes", 2000), ("seed", 0), ("width", 320), ("height", 240)),
            scenes_per_shard=16,
            split_fractions=(("train", 0.95), ("test", 0.05)),
        ),
        _config(
            "rotation_pairs",
            "2,000 rotation pairs (an asymmetric object in two views) at 320x240.",
            "rotation_pairs",
            options=(("num_pairs", 2000), ("seed", 0), ("width", 320), ("height", 240)),
            num_frames=2,
            mode="all",
            scenes_per_shard=32,
            split_fractions=(("train", 0.95), ("test", 0.05)),
        ),
        _config("scannet", "ScanNet scenes as 16-frame clips (mmdetection3d infos).", "scannet"),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "procedural_clips_small"

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=clip_examples.features(),
            supervised_keys=None,
            homepage="https://github.com/jax-spatial/jax_spatial",
        )

    def _clip_spec(self, dl_manager) -> clip_examples.ClipSpec:
        config: SpatialQAClipsConfig = self.builder_config
        options = dict(config.options)
        if config.source == "procedural_clips":
            options.setdefault("num_frames", config.num_frames)
        root = builder_common.source_root(
            config, dl_manager, _LAYOUTS, needs_data=config.source not in _PROCEDURAL
        )
        # Fail before any clip is rendered when the question generator is missing.
        clip_examples.resolve_questions(config.questions)
        return clip_examples.ClipSpec(
            source=examples.SourceSpec.create(config.source, root, **options),
            num_frames=config.num_frames,
            mode=config.mode,
            seed=config.clip_seed,
            questions=config.questions,
        )

    def _split_generators(self, dl_manager):
        spec = self._clip_spec(dl_manager)
        config: SpatialQAClipsConfig = self.builder_config
        by_split = builder_common.split_scene_ids(
            "spatial_qa_clips", config, spec.source, _LAYOUTS, log
        )
        return {
            name: self._generate_examples(spec, examples.partition(ids, config.scenes_per_shard))
            for name, ids in by_split.items()
        }

    def _generate_examples(self, spec: clip_examples.ClipSpec, shards):
        if getattr(self, "_use_beam", False):
            from jax_spatial.datasets import clip_beam_generation

            return clip_beam_generation.GenerateClipExamples(spec, shards)
        return self._generate_local(spec, shards)

    def _generate_local(self, spec, shards):
        report = validate.ValidationReport()
        skipped: list = []
        for shard in shards:
            yield from clip_examples.generate_clip_shard(spec, shard, report, skipped)
        counts = report.as_dict()
        log.info(
            "spatial_qa_clips/%s: clips checked %d, rejected %d; questions checked %d, "
            "rejected %d %s; %d scenes skipped %s",
            self.builder_config.name, counts["frames_checked"], counts["frames_rejected"],
            counts["qa_checked"], counts["qa_rejected"], counts["reasons"], len(skipped),
            skipped[:5],
        )  # fmt: skip
