"""Overlay drawing: the batched jit path (`formats.draw.draw_prompts`) vs a PIL loop.

    .venv/bin/python bench/overlays.py [--batch 64] [--height 480] [--width 640] [--prompts 4]

Both draw the same specs on the same images: per image `P` prompts cycling box, mask, mark
(box border via `ImageDraw.rectangle(width=t)`, mask via `Image.composite` of an
`Image.blend`, mark via `ImageDraw.ellipse` + `ImageDraw.text`). Decoding and encoding are
left out of both. Prints the median of `--repeats` timed runs after one warm-up (the jit
compile is reported apart) and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from jax_spatial.formats import draw
from jax_spatial.formats.spec import PALETTE

KINDS = (draw.KIND_BOX, draw.KIND_MASK, draw.KIND_MARK)


def make_inputs(batch: int, height: int, width: int, prompts: int, seed: int = 0):
    """Random images, boxes, elliptical masks and labels: `[B, H, W, 3]` and `[B, P, ...]`."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (batch, height, width, 3), dtype=np.uint8)
    x1 = rng.uniform(0, width * 0.6, (batch, prompts))
    y1 = rng.uniform(0, height * 0.6, (batch, prompts))
    w = rng.uniform(width * 0.15, width * 0.4, (batch, prompts))
    h = rng.uniform(height * 0.15, height * 0.4, (batch, prompts))
    box = np.stack([x1, y1, x1 + w, y1 + h], -1).astype(np.float32)
    yy, xx = np.mgrid[0:height, 0:width] + 0.5
    cx, cy = (box[..., 0] + box[..., 2]) / 2, (box[..., 1] + box[..., 3]) / 2
    masks = (
        ((xx - cx[..., None, None]) / (w[..., None, None] / 2)) ** 2
        + ((yy - cy[..., None, None]) / (h[..., None, None] / 2)) ** 2
    ) <= 1.0  # [B, P, H, W]
    names = list(PALETTE)
    colour_names = [[names[(b + p) % len(names)] for p in range(prompts)] for b in range(batch)]
    return dict(
        images=images,
        kind=np.array([[KINDS[p % 3] for p in range(prompts)]] * batch, np.int32),
        colour=np.array([[PALETTE[c] for c in row] for row in colour_names], np.uint8),
        box=box,
        label=rng.integers(1, 10, (batch, prompts)).astype(np.int32),
        mask_index=np.tile(np.arange(prompts, dtype=np.int32), (batch, 1)),
        masks=masks,
    )


def draw_pil(inputs, style: draw.DrawStyle) -> list[Image.Image]:
    """The same overlays with PIL, one image at a time."""
    font = ImageFont.load_default(size=7 * style.glyph_scale + 4)
    radius = draw.mark_radius(style)
    out = []
    for b in range(len(inputs["images"])):
        image = Image.fromarray(inputs["images"][b])
        order = sorted(range(inputs["kind"].shape[1]), key=lambda p: inputs["kind"][b, p] != 2)
        for p in order:  # masks first, like the jit path
            kind = inputs["kind"][b, p]
            colour = tuple(int(c) for c in inputs["colour"][b, p])
            x1, y1, x2, y2 = (float(v) for v in inputs["box"][b, p])
            if kind == draw.KIND_MASK:
                tint = Image.blend(image, Image.new("RGB", image.size, colour), style.alpha)
                mask = Image.fromarray(inputs["masks"][b, p].astype(np.uint8) * 255, "L")
                image = Image.composite(tint, image, mask)
            pen = ImageDraw.Draw(image)
            if kind == draw.KIND_BOX:
                pen.rectangle([x1, y1, x2 - 1, y2 - 1], outline=colour, width=style.thickness)
            elif kind == draw.KIND_MARK:
                cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
                pen.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=colour)
                pen.text((cx, cy), str(inputs["label"][b, p]), fill=(255, 255, 255), font=font,
                         anchor="mm")  # fmt: skip
        out.append(image)
    return out


def _median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    inputs = make_inputs(args.batch, args.height, args.width, args.prompts)
    style = draw.style_for(args.height, args.width)
    device = {k: jax.device_put(v) for k, v in inputs.items()}

    # PIL puts marks at box centres; the jit path gets the same centres (as a loader that
    # stores `mark_centres` would). The in-kernel pole search is timed apart.
    box = inputs["box"]
    centre = jax.device_put(
        np.stack([(box[..., 0] + box[..., 2]) / 2, (box[..., 1] + box[..., 3]) / 2], -1)
    )
    keys = ("images", "kind", "colour", "box", "label", "mask_index", "masks")
    args_ = [device[k] for k in keys]

    def run_jit():
        jax.block_until_ready(draw.draw_prompts(*args_, centre, style=style))

    def run_jit_pole():
        jax.block_until_ready(draw.draw_prompts(*args_, style=style))

    start = time.perf_counter()
    run_jit()
    compile_s = time.perf_counter() - start
    jit_s = _median_seconds(run_jit, args.repeats)
    run_jit_pole()
    pole_s = _median_seconds(run_jit_pole, args.repeats)
    draw_pil(inputs, style)
    pil_s = _median_seconds(lambda: draw_pil(inputs, style), args.repeats)
    result = {
        "backend": jax.default_backend(),
        "batch": args.batch,
        "size": [args.height, args.width],
        "prompts": args.prompts,
        "compile_s": round(compile_s, 3),
        "jit_median_s": round(jit_s, 4),
        "jit_with_pole_search_median_s": round(pole_s, 4),
        "pil_median_s": round(pil_s, 4),
        "jit_ms_per_image": round(1000 * jit_s / args.batch, 3),
        "pil_ms_per_image": round(1000 * pil_s / args.batch, 3),
        "speedup": round(pil_s / jit_s, 2),
    }
    for key, value in result.items():
        print(f"{key}: {value}")
    return result


if __name__ == "__main__":
    main()
