"""Expected accelerator memory per device of a `gemma3` fine-tuning run, from parameter counts.

    memory_per_device(preset_config("4b", 262144, finetune="lora", param_dtype="bfloat16",
                                    dtype="bfloat16", remat=True),
                      batch=16, text_len=64, fsdp=1, model=1)
    python -m jax_spatial.train.models.gemma3.memory --size 4b --finetune lora --batch 16

Terms, in bytes on one device (`shards = fsdp * model`: parameters and optimizer state are
split over both axes, the `data` axis replicates them; the batch is split over data x fsdp):

- weights: every parameter at the parameter dtype (LoRA adapters float32) / shards;
- grads: every trainable parameter at its dtype / shards;
- optimizer: AdamW's two moments per trainable parameter, at its dtype / shards;
- activations: what the backward pass keeps, per decoder layer and token, in the compute
  dtype: 4 D (the block's norm inputs) + (2 N + 2 K) H / m (q, k, v, attention output) +
  4 F / m (gate, up, GELU, product), plus float32 attention scores and weights
  (8 N / m bytes per key); `m` is the model-axis size. With `remat` only each layer's input
  (D per token) is kept, plus one layer's working set while it is recomputed. The SigLIP
  tower keeps the same kind of terms per patch when it trains (`full`), one block's
  forward working set when it is frozen (for `vision_chunk` images at a time);
- logits: float32 logits and their gradient over the text positions, 8 V bytes a token.

It is an estimate of what XLA must hold (fusion usually saves some of the activations, and
the allocator adds headroom), to choose a mesh and a batch before renting one.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math

from jax_spatial.train.models.gemma3 import config as config_lib

GIB = 1024**3


def _bytes(dtype: str) -> int:
    return 2 if dtype == "bfloat16" else 4


def memory_per_device(
    config: config_lib.Gemma3Config,
    *,
    batch: int,
    text_len: int,
    data: int = 1,
    fsdp: int = 1,
    model: int = 1,
) -> dict[str, float]:
    """Bytes per device by term (see the module docstring) and their `total`.

    Args:
      config: the model (its finetune mode, dtypes and remat decide the terms).
      batch: global batch (per step, before gradient accumulation's split: pass the
        micro-batch if accumulating).
      text_len: padded text length (the length bucket).
      data, fsdp, model: mesh axis sizes.
    """
    counts = config_lib.parameter_count(config)
    shards = fsdp * model
    pbytes, cbytes = _bytes(config.param_dtype), _bytes(config.dtype)
    base = counts["total"] - counts["lora"]
    if config.finetune == "lora":
        trainable, tbytes = counts["lora"], 4
    elif config.finetune == "frozen_vision":
        trainable, tbytes = base - counts["vision"], pbytes
    else:
        trainable, tbytes = base, pbytes
    out = {
        "weights": (base * pbytes + counts["lora"] * 4) / shards,
        "grads": trainable * tbytes / shards,
        "optimizer": 2 * trainable * tbytes / shards,
    }
    b = batch / (data * fsdp)  # examples per device
    seq = text_len + config.num_image_tokens
    d, h, f = config.width, config.head_dim, config.mlp_dim
    n, k = config.heads / model, config.kv_heads / model
    per_token = cbytes * (4 * d + (2 * n + 2 * k) * h + 4 * f / model) + 8 * n * seq
    layer = b * seq * per_token
    if config.remat:
        decoder = config.depth * b * seq * d * cbytes + layer
    else:
        decoder = config.depth * layer
    vision = 0.0
    if config.vision is not None:
        v = config.vision
        patches = v.grid**2
        w, heads = v.width, v.heads / model
        per_patch = cbytes * (4 * w + 4 * w / model + 2 * v.mlp_dim / model) + 8 * heads * patches
        at_once = math.gcd(int(b), config.vision_chunk) if config.vision_chunk else b
        working = at_once * patches * per_patch  # one block's buffers, for one chunk
        if config.finetune != "full":
            vision = working  # frozen: a forward pass keeps nothing for the backward
        elif config.remat:
            vision = v.depth * b * patches * w * cbytes + working
        else:
            vision = v.depth * b * patches * per_patch
    out["activations"] = decoder + vision
    out["logits"] = b * text_len * config.vocab_size * 8 / model
    out["total"] = sum(out.values())
    return out


def table(config, **mesh_and_batch) -> dict[str, float]:
    """`memory_per_device` in GiB, rounded to 0.01."""
    return {k: round(v / GIB, 2) for k, v in memory_per_device(config, **mesh_and_batch).items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="gemma3 memory per device (GiB)")
    parser.add_argument("--size", default="4b", choices=(*config_lib.SIZES, "tiny"))
    parser.add_argument("--finetune", default="lora", choices=config_lib.FINETUNE_MODES)
    parser.add_argument("--param-dtype", default="bfloat16", choices=("float32", "bfloat16"))
    parser.add_argument("--dtype", default="bfloat16", choices=("float32", "bfloat16"))
    parser.add_argument("--remat", action="store_true")
    parser.add_argument("--vision-chunk", type=int, default=0)
    parser.add_argument("--lora-rank", type=int, default=16)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--text-len", type=int, default=64)
    parser.add_argument("--data", type=int, default=1)
    parser.add_argument("--fsdp", type=int, default=1)
    parser.add_argument("--model", type=int, default=1)
    args = parser.parse_args(argv)
    config = config_lib.preset_config(
        args.size, 262144 if args.size != "tiny" else 512, finetune=args.finetune,
        param_dtype=args.param_dtype, dtype=args.dtype, remat=args.remat,
        lora_rank=args.lora_rank, vision_chunk=args.vision_chunk,
    )
    counts = config_lib.parameter_count(config)
    gib = table(config, batch=args.batch, text_len=args.text_len, data=args.data,
                fsdp=args.fsdp, model=args.model)
    shown = ("finetune", "param_dtype", "dtype", "remat", "vision_chunk")
    settings = {k: v for k, v in dataclasses.asdict(config).items() if k in shown}
    print(json.dumps({"parameters": counts, "gib_per_device": gib, "config": settings}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["GIB", "memory_per_device", "table"]
