"""Plumbing shared by the `spatial_qa` and `spatial_qa_clips` TFDS builders.

Both read one source's scenes, cut them into fixed scene-id groups (the unit of work, so the
output does not depend on how many workers ran), assign each scene to one split by a hash of
its id, and run either in-process or as a Beam pipeline when one is asked for.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from etils import epath

from jax_spatial.datasets import examples

log = logging.getLogger(__name__)


class SceneGroupBuilderMixin:
    """Goes before `tfds.core.GeneratorBasedBuilder` in a builder's bases.

    Sets `self._use_beam` (read by the builder's `_generate_examples`) and writes examples
    with sorted feature maps.
    """

    def _example_writer(self):
        # Sorted feature maps: the bytes of an example must not depend on which process
        # serialized it (see `examples.canonical_bytes`).
        return examples.deterministic_example_writer(self.info.file_format)

    def _download_and_prepare(self, dl_manager, download_config=None):
        # Beam only when asked for (`--beam_pipeline_options` / a runner): a local build is
        # faster in-process than through a DirectRunner.
        self._use_beam = bool(
            download_config is not None
            and (download_config.beam_options is not None or download_config.beam_runner)
        )
        return super()._download_and_prepare(dl_manager, download_config)


def source_root(config, dl_manager, layouts: Mapping[str, str], needs_data: bool) -> str | None:
    """The config's source folder: `config.root`, else `<manual_dir>/<source>` for data sources.

    `layouts` says what each source's folder holds, for the error messages; a missing manual
    dir or folder is a `FileNotFoundError` naming the config.
    """
    root = config.root
    if needs_data and root is None:
        try:
            manual_dir = dl_manager.manual_dir
        except Exception as error:  # noqa: BLE001 - tfds raises AssertionError here
            raise FileNotFoundError(
                f"config {config.name!r} needs --manual_dir holding "
                f"{layouts.get(config.source, config.source + '/')}"
            ) from error
        root = str(epath.Path(manual_dir) / config.source)
    if root is not None and not epath.Path(root).is_dir():
        raise FileNotFoundError(
            f"config {config.name!r}: {root} not found; expected "
            f"<manual_dir>/{layouts.get(config.source, config.source + '/')}"
        )
    return root


def split_scene_ids(
    dataset: str,
    config,
    source: examples.SourceSpec,
    layouts: Mapping[str, str],
    logger: logging.Logger = log,
) -> dict[str, list[str]]:
    """`{split: scene ids}` for the config's `split_fractions`, empty splits left out.

    Reads the source's scene ids (capped by `config.max_scenes`, sorted ids); a source that
    cannot be read is a `FileNotFoundError` naming the config and the expected layout.
    """
    try:
        scene_ids = source.build().scene_ids()
    except (FileNotFoundError, ValueError, KeyError) as error:
        raise FileNotFoundError(
            f"config {config.name!r}: cannot read {source.name} at {source.root}: "
            f"{error}. Expected <manual_dir>/{layouts.get(source.name, '')}"
        ) from error
    scene_ids = sorted(scene_ids)[: config.max_scenes] if config.max_scenes else scene_ids
    by_split: dict[str, list[str]] = {name: [] for name, _ in config.split_fractions}
    for scene_id in scene_ids:
        by_split[examples.scene_split(scene_id, config.split_fractions)].append(scene_id)
    empty = [name for name, ids in by_split.items() if not ids]
    if empty:
        # TFDS cannot write a split without examples; with few scenes a small fraction may
        # get none. Say so rather than fail the whole build.
        logger.warning(
            "%s/%s: no scene of %d hashes into split(s) %s; they are left out",
            dataset, config.name, len(scene_ids), ", ".join(empty),
        )  # fmt: skip
    return {name: ids for name, ids in by_split.items() if ids}
