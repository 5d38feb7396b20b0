"""Overlay drawing: the batched jit path (`formats.draw.draw_prompts`) vs a PIL loop.

    .venv/bin/python bench/overlays.py [--batch 64] [--height 480] [--width 640] [--prompts 4]

Both draw the same specs on the same images: per image `P` prompts cycling box, mask, mark
(box border via `ImageDraw.rectangle(width=t)`, mask via `Image.composite` of an
`Image.blend`, mark via `ImageDraw.ellipse` + `ImageDraw.text`). Decoding and encoding are
left out of both. Prints the median of `--repeats` timed runs after one warm-up (the jit
compile is reported apart) and the ratio `speedup` = PIL time / `draw_prompts` time, both
measured in this run.

Also printed, for reading the ratio:

* `jit_with_pole_search_*`: `draw_prompts` without precomputed centres (each mark's pole is
  searched in its mask on every draw).
* `jit_inplace_*` / `speedup_inplace`: `draw_prompts_inplace`, which draws into the caller's
  (donated) device batch; each timed call gets a fresh copy of the batch, made before the
  clock starts, as a loader's freshly decoded batch would be.
* `batch_copy_ms_per_image`: a jitted function that only returns a copy of the batch, the
  floor of any jit call that returns a new `[B, H, W, 3]` array. On CPU it is most of
  `draw_prompts`' time: a large fresh output is page-faulted in on every call.
* `--also-batch` (default 8): the same measurements at that batch size, prefixed
  `batch<N>_`.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
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


def _median_seconds(fn, repeats: int, setup=None) -> float:
    """Median wall time of `fn(setup())` (or `fn()`); `setup` runs outside the clock."""
    times = []
    for _ in range(repeats):
        arg = () if setup is None else (setup(),)
        start = time.perf_counter()
        fn(*arg)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(batch: int, height: int, width: int, prompts: int, repeats: int) -> dict:
    """Times of both paths on one batch configuration (seconds and ms per image)."""
    inputs = make_inputs(batch, height, width, prompts)
    style = draw.style_for(height, width)
    device = {k: jax.device_put(v) for k, v in inputs.items()}

    # PIL puts marks at box centres; the jit path gets the same centres (as a loader that
    # stores `mark_centres` would). The in-kernel pole search is timed apart.
    box = inputs["box"]
    centre = jax.device_put(
        np.stack([(box[..., 0] + box[..., 2]) / 2, (box[..., 1] + box[..., 3]) / 2], -1)
    )
    keys = ("kind", "colour", "box", "label", "mask_index", "masks")
    rest = [device[k] for k in keys]
    images = device["images"]

    def run_jit():
        jax.block_until_ready(draw.draw_prompts(images, *rest, centre, style=style))

    def run_jit_pole():
        jax.block_until_ready(draw.draw_prompts(images, *rest, style=style))

    def fresh_batch():
        return jax.block_until_ready(jnp.copy(images))

    def run_jit_inplace(batch_images):
        jax.block_until_ready(draw.draw_prompts_inplace(batch_images, *rest, centre, style=style))

    copy_batch = jax.jit(lambda x: x + jnp.uint8(0))

    start = time.perf_counter()
    run_jit()
    compile_s = time.perf_counter() - start
    jit_s = _median_seconds(run_jit, repeats)
    run_jit_pole()
    pole_s = _median_seconds(run_jit_pole, repeats)
    run_jit_inplace(fresh_batch())
    inplace_s = _median_seconds(run_jit_inplace, repeats, setup=fresh_batch)
    jax.block_until_ready(copy_batch(images))
    copy_s = _median_seconds(lambda: jax.block_until_ready(copy_batch(images)), repeats)
    draw_pil(inputs, style)
    pil_s = _median_seconds(lambda: draw_pil(inputs, style), repeats)

    def per_image(seconds):
        return round(1000 * seconds / batch, 3)

    return {
        "compile_s": round(compile_s, 3),
        "jit_median_s": round(jit_s, 4),
        "jit_with_pole_search_median_s": round(pole_s, 4),
        "jit_inplace_median_s": round(inplace_s, 4),
        "pil_median_s": round(pil_s, 4),
        "jit_ms_per_image": per_image(jit_s),
        "jit_with_pole_search_ms_per_image": per_image(pole_s),
        "jit_inplace_ms_per_image": per_image(inplace_s),
        "batch_copy_ms_per_image": per_image(copy_s),
        "pil_ms_per_image": per_image(pil_s),
        "speedup": round(pil_s / jit_s, 2),
        "speedup_inplace": round(pil_s / inplace_s, 2),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--also-batch", type=int, default=8, help="0: skip")
    args = parser.parse_args(argv)
    result = {
        "backend": jax.default_backend(),
        "batch": args.batch,
        "size": [args.height, args.width],
        "prompts": args.prompts,
        **measure(args.batch, args.height, args.width, args.prompts, args.repeats),
    }
    if args.also_batch:
        extra = measure(args.also_batch, args.height, args.width, args.prompts, args.repeats)
        keep = ("jit_ms_per_image", "jit_inplace_ms_per_image", "pil_ms_per_image")
        keep += ("speedup", "speedup_inplace")
        result.update({f"batch{args.also_batch}_{k}": extra[k] for k in keep})
    for key, value in result.items():
        print(f"{key}: {value}")
    return result


if __name__ == "__main__":
    main()
