r"""Generates spatial QA for one source: a thin entry point over `jax_spatial.engine`.

  python pipelines/generate.py --source scannet \
      --root ../shared/data/real/scannet_scene0000_00 --out out/scannet

All logic lives in the library so it can be imported from a notebook:
`jax_spatial.engine.generate(jax_spatial.sources.get_source(name, root), out_dir)`.
"""

import sys

from jax_spatial.cli import main

if __name__ == "__main__":
    sys.exit(main(["generate", *sys.argv[1:]]))
