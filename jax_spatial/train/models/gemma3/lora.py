"""Fine-tuning modes and LoRA adapters of the `gemma3` backend.

    trainable_filter("lora")             # nnx.LoRAParam: only the adapters train
    init_adapters(model, rngs)           # fresh adapters (after base weights were loaded)
    merged_kernels(model)                # {path: kernel + alpha/r * A @ B} for export

LoRA (Hu et al., 2021): a frozen projection `W [din, dout]` gains `A [din, r] @ B [r, dout]`
scaled by `alpha / r`; B starts at zero so the adapted model starts as the pretrained one.
The adapters are `nnx.LoRAParam` variables (a kind of `nnx.Param`), so one type filter
selects them for the gradient, the optimizer and the checkpoint, and merging is a plain sum.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


def trainable_filter(finetune: str):
    """The NNX filter of the parameters that train under `finetune`.

    full: every parameter; frozen_vision: all but the SigLIP tower (the projector trains);
    lora: the adapters only.
    """
    if finetune == "full":
        return nnx.Param
    if finetune == "frozen_vision":
        return nnx.All(nnx.Param, nnx.Not(nnx.PathContains("vision")))
    if finetune == "lora":
        return nnx.LoRAParam
    raise ValueError(f"unknown finetune mode {finetune!r}")


def init_a(key, shape) -> jax.Array:
    """A LoRA `A` matrix: Kaiming-uniform over its input (as in PEFT), float32."""
    return nnx.initializers.he_uniform()(key, shape, jnp.float32)


def init_adapters(model, rngs: nnx.Rngs) -> int:
    """Gives every LoRA `A` a fresh random value and every `B` zeros, in path order (so a
    seed gives the same adapters however the base weights were filled); returns the count."""
    count = 0
    modules = sorted(nnx.iter_modules(model), key=lambda item: tuple(map(str, item[0])))
    for _, module in modules:
        a = getattr(module, "lora_a", None)
        if a is None or not isinstance(a, nnx.LoRAParam):
            continue
        a.set_value(init_a(rngs.params(), tuple(a.shape)))
        module.lora_b.set_value(jnp.zeros(tuple(module.lora_b.shape), jnp.float32))
        count += 1
    return count


def merged_kernels(model) -> dict[tuple, np.ndarray]:
    """`{module path: kernel + scale * A @ B}` of every adapted projection (float32 sums,
    cast back to the kernel's dtype)."""
    out = {}
    for path, module in nnx.iter_modules(model):
        a = getattr(module, "lora_a", None)
        if a is None or not isinstance(a, nnx.LoRAParam):
            continue
        kernel = np.asarray(module.kernel[...])
        delta = np.asarray(a[...], np.float32) @ np.asarray(module.lora_b[...], np.float32)
        merged = kernel.astype(np.float32) + np.float32(module.lora_scale) * delta
        out[tuple(path)] = merged.astype(kernel.dtype)
    return out


def count(model, filter_=nnx.Param) -> int:
    """Number of parameter values `filter_` selects."""
    return int(sum(np.size(x) for x in jax.tree.leaves(nnx.state(model, filter_))))


__all__ = ["count", "init_adapters", "merged_kernels", "trainable_filter"]
