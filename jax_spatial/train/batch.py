"""The batch contract every model and the trainer share (big_vision's PaliGemma convention).

    image       uint8 [B, H, W, 3]   (frame sets later: [B, T, H, W, 3])
    text        int32 [B, L]         <bos> question <sep> answer <eos> <pad>...
    mask_ar     int32 [B, L]         0 on the prefix (image + question), 1 on the answer
    mask_loss   int32 [B, L]         1 on the answer tokens (and <eos>) only
    mask_input  int32 [B, L]         1 on real tokens, 0 on padding

The image is always a full-attention prefix in front of `text`; the model adds its tokens.
Attention is prefix-LM: every token sees the whole prefix, answer tokens see earlier answer
tokens (`attention_mask`). The loss is next-token cross-entropy, shifted by one: the logit at
position t predicts `text[t + 1]`, weighted by `mask_loss[t + 1]`.

Lengths are padded up to a few buckets (`LENGTH_BUCKETS`) so the jitted step compiles once
per bucket, not once per batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np

from jax_spatial.train.tokenizer import Tokenizer

LENGTH_BUCKETS = (32, 64, 128, 192, 256, 384, 512)
IMAGE_PLACEHOLDER = "<image>"


def question_text(question: str) -> str:
    """The question without InternVL's `<image>` placeholder (the image is its own input)."""
    text = question.strip()
    if text.startswith(IMAGE_PLACEHOLDER):
        text = text[len(IMAGE_PLACEHOLDER) :].lstrip("\n ")
    return text


def target_text(element: dict, answer_style: str) -> str:
    """What the model is taught to say: the canonical answer ("yes", "B", "3") or the sentence."""
    if answer_style == "short":
        return str(element["canonical"])
    if answer_style == "full":
        return str(element["answer"])
    raise ValueError(f"answer_style must be 'short' or 'full', not {answer_style!r}")


def encode(tokenizer: Tokenizer, question: str, answer: str | None) -> dict[str, np.ndarray]:
    """One element's unpadded token arrays (`answer=None`: the prefix only, for decoding)."""
    sep = getattr(tokenizer, "sep_id", None)
    prefix = [tokenizer.bos_id, *tokenizer.encode(question_text(question))]
    if sep is not None:
        prefix.append(sep)
    suffix = [] if answer is None else [*tokenizer.encode(answer), tokenizer.eos_id]
    text = np.asarray(prefix + suffix, np.int32)
    mask_ar = np.asarray([0] * len(prefix) + [1] * len(suffix), np.int32)
    return {"text": text, "mask_ar": mask_ar, "mask_loss": mask_ar.copy()}


def bucket_length(length: int, buckets: Sequence[int] = LENGTH_BUCKETS) -> int:
    for bucket in buckets:
        if length <= bucket:
            return bucket
    raise ValueError(f"sequence of {length} tokens is longer than the largest bucket {buckets[-1]}")


def pad_tokens(items: Sequence[dict], length: int, pad_id: int) -> dict[str, np.ndarray]:
    """Stacks `encode` outputs into `[B, length]` arrays with `mask_input`."""
    b = len(items)
    out = {
        "text": np.full((b, length), pad_id, np.int32),
        "mask_ar": np.zeros((b, length), np.int32),
        "mask_loss": np.zeros((b, length), np.int32),
        "mask_input": np.zeros((b, length), np.int32),
    }
    for row, item in enumerate(items):
        n = len(item["text"])
        if n > length:
            raise ValueError(f"sequence of {n} tokens does not fit length {length}")
        out["text"][row, :n] = item["text"]
        out["mask_ar"][row, :n] = item["mask_ar"]
        out["mask_loss"][row, :n] = item["mask_loss"]
        out["mask_input"][row, :n] = 1
    return out


def attention_mask(mask_ar: jnp.ndarray, mask_input: jnp.ndarray) -> jnp.ndarray:
    """Prefix-LM mask `[B, 1, S, S]`: query i sees key j iff j is real and in i's past or prefix.

    big_vision's rule: `cumsum(mask_ar)` numbers the causal blocks; j is visible from i iff
    its block number is not after i's.
    """
    blocks = jnp.cumsum(mask_ar, axis=1)
    visible = blocks[:, None, :] <= blocks[:, :, None]
    valid = mask_input[:, None, :].astype(bool) & mask_input[:, :, None].astype(bool)
    return (visible & valid)[:, None]


def next_token_loss(
    logits: jnp.ndarray, text: jnp.ndarray, mask_loss: jnp.ndarray
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Mean cross-entropy of answer tokens, shifted by one; returns `(loss, token count)`.

    Args:
      logits: `[B, L, V]` over the text positions.
      text, mask_loss: `[B, L]`.
    """
    import optax

    targets = text[:, 1:]
    weights = mask_loss[:, 1:].astype(jnp.float32)
    losses = optax.softmax_cross_entropy_with_integer_labels(
        logits[:, :-1].astype(jnp.float32), targets
    )
    count = jnp.sum(weights)
    return jnp.sum(losses * weights) / jnp.maximum(count, 1.0), count


__all__ = [
    "LENGTH_BUCKETS",
    "attention_mask",
    "bucket_length",
    "encode",
    "next_token_loss",
    "pad_tokens",
    "question_text",
    "target_text",
]
