"""Contact sheet of procedural views and of the shared sample meshes.

    python bench/render_sheet.py --out /tmp/render_sheet.png \
        --meshes ../shared/data/real/meshes

Top: procedural views, one per row (RGB | depth | instance ids). Bottom: every mesh file found
under `--meshes` rendered alone. Also prints render timings.
"""

from __future__ import annotations

import argparse
import pathlib
import time

import numpy as np
from PIL import Image

from jax_spatial.render import meshes, sheet


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/render_sheet.png")
    parser.add_argument("--scenes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--meshes",
        default=str(
            pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "meshes"
        ),
    )
    args = parser.parse_args()

    start = time.perf_counter()
    rows = sheet.procedural_rows(args.scenes, args.seed)
    print(f"procedural: {len(rows)} views in {time.perf_counter() - start:.1f} s (with compile)")
    parts = [np.concatenate(rows, 0)]
    mesh_dir = pathlib.Path(args.meshes)
    if mesh_dir.exists():
        start = time.perf_counter()
        tiles = sheet.mesh_tiles(meshes.find_meshes(mesh_dir))
        print(f"meshes: {len(tiles)} in {time.perf_counter() - start:.1f} s (with compile)")
        mesh_grid = sheet.grid(tiles, parts[0].shape[1] // tiles[0].shape[1])
        width = parts[0].shape[1]
        pad = np.zeros((mesh_grid.shape[0], width - mesh_grid.shape[1], 3), np.uint8)
        parts.append(np.concatenate([mesh_grid, pad], 1))
    Image.fromarray(np.concatenate(parts, 0)).save(args.out)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
