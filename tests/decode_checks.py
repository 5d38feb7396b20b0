"""Shared check for the decoding models: prefill + cached steps equal the full forward pass."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from flax import nnx


def assert_cached_decoding_matches_full(
    model, image, text, lengths, prefix_len: int, steps: int, jit: bool
) -> None:
    """Prefill of each row's prefix (`lengths[r]` tokens, padded to `prefix_len`) and `steps`
    cached decode steps give the logits of the full prefix-LM pass over `text`.

    `image [B, H, W, 3]`, `text [B, L]` with `max(lengths) + steps <= L`. Float32 and the same
    sums in both paths, so the tolerance is 1e-5; `jit` runs both through `nnx.jit`.
    """
    width = text.shape[1]
    mask_ar = jnp.array([[0] * n + [1] * (width - n) for n in lengths])
    full = model(image, text, mask_ar, jnp.ones_like(text))
    pin = (jnp.arange(prefix_len)[None] < jnp.array(lengths)[:, None]).astype(jnp.int32)
    prefix = jnp.where(pin == 1, text[:, :prefix_len], 0)
    cls = type(model)
    prefill = nnx.jit(cls.prefill, static_argnums=4) if jit else cls.prefill
    step_fn = nnx.jit(cls.decode_step, static_argnums=4) if jit else cls.decode_step
    logits, cache = prefill(model, image, prefix, pin, steps)
    slots = model.config.num_image_tokens + prefix_len
    for row, n in enumerate(lengths):
        np.testing.assert_allclose(logits[row], full[row, n - 1], atol=1e-5)
    for t in range(steps):
        token = jnp.array([text[r, n + t] for r, n in enumerate(lengths)])
        logits, cache = step_fn(model, token, t, cache, slots)
        for row, n in enumerate(lengths):
            np.testing.assert_allclose(logits[row], full[row, n + t], atol=1e-5)
