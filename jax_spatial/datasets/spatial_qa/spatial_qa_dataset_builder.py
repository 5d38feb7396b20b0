r"""spatial_qa: spatial-reasoning questions with 3D-derived answers, one example per frame.

Build (procedural configs need no data)::

    tfds build jax_spatial/datasets/spatial_qa --config=procedural_small \
        --file_format=array_record
    tfds build jax_spatial/datasets/spatial_qa --config=kitti --manual_dir=/data/manual \
        --file_format=array_record
    # Beam (any runner; see docs/storage.md for Dataflow, Flink, Spark):
    tfds build jax_spatial/datasets/spatial_qa --config=procedural --file_format=array_record \
        --beam_pipeline_options="runner=DirectRunner,direct_num_workers=4,direct_running_mode=multi_processing"

Read without TensorFlow::

    ds = tfds.data_source("spatial_qa/procedural_small")   # random access, numpy
    ds[0]["qa"]["question"]

The example layout and the generation logic live in `jax_spatial.datasets.examples`.
"""

from __future__ import annotations

import dataclasses
import logging

import tensorflow_datasets as tfds
from etils import epath

from jax_spatial import validate
from jax_spatial.datasets import builder_common, examples

log = logging.getLogger(__name__)

# Where each config's data is expected under `--manual_dir`, and what it must hold.
_LAYOUTS = {
    "kitti": "kitti/training/{image_2,label_2,calib}/ (KITTI object benchmark; velodyne/ optional)",
    "scannet": "scannet/scannet_infos_*.pkl, scannet/points/<scene>.bin, "
    "scannet/posed_images/<scene>/*.jpg (mmdetection3d v1.0 infos)",
    "mmdet3d": "mmdet3d/<one>.pkl (mmdetection3d v1.x info file) with the images and points "
    "it names",
    "coco": "coco/annotations/instances_val2017.json, coco/val2017/*.jpg, "
    "coco/depth/<image stem>.png (16-bit millimetre depth maps)",
    "visual_genome": "visual_genome/{objects,image_data}.json (or the distributed zips), "
    "visual_genome/VG_100K/*.jpg, visual_genome/depth/<image id>.png",
}


@dataclasses.dataclass(eq=False)
class SpatialQAConfig(tfds.core.BuilderConfig):
    """One source and how to run it.

    Attributes:
      source: registry name (`jax_spatial.sources`).
      root: the source's data folder; None means `<manual_dir>/<source>` for data sources.
      options: source options as `(name, value)` pairs (e.g. `("num_scenes", 8)`).
      set_options: source options as `"key=value"` strings, read as `jax-spatial generate
        --set` reads them (typed after the source's defaults; an unknown key is an error
        naming the known ones). They win over `options`.
      options_path: a JSON file of `{"key": value}` source options, read before
        `set_options`. Any config can be given whole as JSON on the command line:
        `tfds build ... --config='{"name": "coco_dpt", "source": "coco", "lift": true,
        "set_options": ["depth_estimator=Intel/dpt-large", "hfov_deg=55"]}'`.
      lift: wrap the source with `scene_lift.lifted` (image-only sources).
      scenes_per_shard: scenes generated together, batched on one worker. Fixes the unit of
        work, so the output does not depend on how many workers ran.
      max_scenes: cap on the scenes read (sorted ids); None for all.
      seed: the engine's seed (question sampling and phrasing).
      split_fractions: `(split, fraction)` pairs: each scene goes to one split by a stable
        hash of its id (`examples.scene_split`), so no scene has frames in two splits.
      quotas: `(name, value)` pairs overriding the per-frame question quotas
        (`qa.select.QuotaConfig`, e.g. `(("position", 12),)`); () keeps the defaults.
    """

    source: str = "procedural"
    root: str | None = None
    options: tuple = ()
    set_options: tuple = ()
    options_path: str | None = None
    lift: bool = False
    scenes_per_shard: int = 8
    max_scenes: int | None = None
    seed: int = 0
    split_fractions: tuple = (("train", 1.0),)
    quotas: tuple = ()


def _quotas(pairs: tuple):
    """`QuotaConfig` with the builder config's overrides; an unknown name is a one-line error."""
    import dataclasses

    from jax_spatial.errors import UserError
    from jax_spatial.qa.select import QuotaConfig

    known = {f.name for f in dataclasses.fields(QuotaConfig)}
    unknown = sorted(name for name, _ in pairs if name not in known)
    if unknown:
        raise UserError(f"unknown quota {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return QuotaConfig(**dict(pairs))


def _options_from(config: SpatialQAConfig) -> dict:
    """The options of `options_path` and `set_options` (see `SpatialQAConfig`)."""
    import json

    from jax_spatial.config import parse_options
    from jax_spatial.errors import UserError
    from jax_spatial.sources import source_options

    out = {}
    if config.options_path:
        path = epath.Path(config.options_path)
        try:
            loaded = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise UserError(f"options_path {path}: {error}") from None
        if not isinstance(loaded, dict):
            raise UserError(f"options_path {path}: expected a JSON object of options")
        known = source_options(config.source)
        unknown = sorted(set(loaded) - set(known))
        if unknown:
            raise UserError(
                f"options_path {path}: unknown {config.source} option(s) {unknown}; "
                f"known: {', '.join(sorted(known))}"
            )
        out.update(loaded)
    if config.set_options:
        known = source_options(config.source)
        out.update(parse_options(config.set_options, known, what=f"{config.source} option"))
    return out


def _config(name, description, source, **kwargs) -> SpatialQAConfig:
    return SpatialQAConfig(name=name, description=description, source=source, **kwargs)


class Builder(builder_common.SceneGroupBuilderMixin, tfds.core.GeneratorBasedBuilder):
    """Spatial QA over one source; a config per source."""

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {
        "1.0.0": "One example per frame: encoded image bytes, view-space objects, QA records.",
        "1.1.0": "objects/referring: the words naming each object (unique caption or relative "
        "expression, '' when only pointing singles it out); questions about objects that share "
        "a category, asked in pointing formats.",
    }
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Procedural configs need no data. The others read their source from `--manual_dir` "
        "(`dl_manager.manual_dir`), one folder per source:\n"
        + "\n".join(f"  {name}: <manual_dir>/{layout}" for name, layout in _LAYOUTS.items())
    )
    BUILDER_CONFIGS = [
        _config(
            "procedural_small",
            "8 procedural rooms, 3 views each at 320x240: a quick check, no data needed.",
            "procedural",
            options=(("num_scenes", 8), ("seed", 0)),
            scenes_per_shard=4,
        ),
        _config(
            "procedural",
            "2,000 procedural rooms, 3 views each at 320x240, exact ground truth.",
            "procedural",
            options=(("num_scenes", 2000), ("seed", 0)),
            scenes_per_shard=16,
        ),
        _config("kitti", "KITTI object training split from the manual dir.", "kitti"),
        _config("scannet", "ScanNet posed frames (mmdetection3d infos).", "scannet"),
        _config("mmdet3d", "Any mmdetection3d v1.x info file.", "mmdet3d"),
        _config(
            "coco",
            "COCO val2017 lifted with precomputed depth.",
            "coco",
            options=(("depth_dir", "depth"),),
            lift=True,
        ),
        _config(
            "visual_genome",
            "Visual Genome lifted with precomputed depth.",
            "visual_genome",
            options=(("depth_dir", "depth"),),
            lift=True,
        ),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "procedural_small"

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=examples.features(),
            supervised_keys=None,
            homepage="https://github.com/jax-spatial/jax_spatial",
        )

    def _source_spec(self, dl_manager) -> examples.SourceSpec:
        config: SpatialQAConfig = self.builder_config
        options = dict(config.options)
        options.update(_options_from(config))
        root = builder_common.source_root(
            config, dl_manager, _LAYOUTS, needs_data=config.source != "procedural"
        )
        for name in ("depth_dir",):  # relative option paths live under the source root
            if root and name in options and not epath.Path(options[name]).is_absolute():
                options[name] = str(epath.Path(root) / options[name])
        if config.source in ("coco", "visual_genome"):
            import importlib.util

            if importlib.util.find_spec(f"jax_spatial.sources.{config.source}") is None:
                raise ImportError(
                    f"config {config.name!r} needs jax_spatial.sources.{config.source}, "
                    "which this installation does not have"
                )
        return examples.SourceSpec.create(config.source, root, lift=config.lift, **options)

    def _split_generators(self, dl_manager):
        spec = self._source_spec(dl_manager)
        config: SpatialQAConfig = self.builder_config
        by_split = builder_common.split_scene_ids("spatial_qa", config, spec, _LAYOUTS, log)
        return {
            name: self._generate_examples(spec, examples.partition(ids, config.scenes_per_shard))
            for name, ids in by_split.items()
        }

    def _generate_examples(self, spec: examples.SourceSpec, shards):
        from jax_spatial.engine import GenerateConfig

        gen_config = GenerateConfig(
            seed=self.builder_config.seed, quotas=_quotas(self.builder_config.quotas)
        )
        if getattr(self, "_use_beam", False):
            from jax_spatial.datasets import beam_generation

            return beam_generation.GenerateExamples(spec, shards, gen_config)
        return self._generate_local(spec, shards, gen_config)

    def _generate_local(self, spec, shards, gen_config):
        report = validate.ValidationReport()
        skipped: list = []
        for shard in shards:
            yield from examples.generate_shard(spec, shard, gen_config, report, skipped)
        log.info(
            "spatial_qa/%s: validation %s; %d scenes skipped %s",
            self.builder_config.name,
            report.as_dict(),
            len(skipped),
            skipped[:5],
        )
