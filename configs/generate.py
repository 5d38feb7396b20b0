r"""Single-view spatial QA from a 3D-annotated source.

Run (flags given on the command line override the config):

  jax-spatial generate --config configs/generate.py:source=kitti,root=DATA/kitti_object \
      --out out/kitti

`arg` keys: source, root, seed, max_scenes, batch_size. Margins, quotas and visibility
thresholds live in the nested `relations`, `quotas` and `observe` dicts; every field left out
keeps the documented default of its dataclass (jax_spatial.relations.single_view.RelationConfig,
jax_spatial.qa.select.QuotaConfig, jax_spatial.observe.ObserveConfig).
"""

import ml_collections

from jax_spatial.config import parse_arg


def get_config(arg=None):
    arg = parse_arg(arg, source="scannet", root="", seed=0, max_scenes=0, batch_size=32)
    config = ml_collections.ConfigDict()
    config.source = arg.source
    config.root = arg.root
    config.seed = arg.seed
    config.max_scenes = arg.max_scenes or None
    config.batch_size = arg.batch_size
    config.relations = ml_collections.ConfigDict()  # e.g. config.relations.abs_margin_m = 0.2
    config.quotas = ml_collections.ConfigDict()
    config.observe = ml_collections.ConfigDict()
    return config
