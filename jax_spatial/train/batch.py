"""The batch contract every model and the trainer share (big_vision's PaliGemma convention).

    image       uint8 [B, H, W, 3]   (frame sets later: [B, T, H, W, 3])
    text        int32 [B, L]         <bos> question <sep> answer <eos> <pad>...
    mask_ar     int32 [B, L]         0 on the prefix (image + question), 1 on the answer
    mask_loss   int32 [B, L]         1 on the answer tokens (and <eos>) only
    mask_input  int32 [B, L]         1 on real tokens, 0 on padding

Optional grounding targets (`ground_spans`), when the run asks for them:

    ground_span int32   [B, M, 2]    token range [start, end) of each of up to M object names
    ground_box  float32 [B, M, 4]    that object's box (x1, y1, x2, y2) in 0..1 of the image;
                                     a row with start == end is padding
    ground_facts float32 [B, M, F]   that object's place and size (`facts.object_facts`)
    pair_sign   int32   [B, F]       of the question's first two objects, per fact: 1 the
                                     first's is larger, 0 smaller, -1 no target
    relation_id int32   [B]          the relation asked (`facts.RELATIONS`), -1 none

The image is always a full-attention prefix in front of `text`; the model adds its tokens.
Attention is prefix-LM: every token sees the whole prefix, answer tokens see earlier answer
tokens (`attention_mask`). The loss is next-token cross-entropy, shifted by one: the logit at
position t predicts `text[t + 1]`, weighted by `mask_loss[t + 1]`.

Lengths are padded up to a few buckets (`LENGTH_BUCKETS`) so the jitted step compiles once
per bucket, not once per batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jax_spatial.train.facts import NUM_FACTS, relation_id
from jax_spatial.train.tokenizer import Tokenizer

LENGTH_BUCKETS = (32, 48, 64, 96, 128, 192, 256, 384, 512)
MAX_MENTIONS = 8  # object names per question with a grounding target (more are dropped)
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


def ground_spans(
    tokenizer: Tokenizer,
    question: str,
    mentions,
    pair_sign=None,
    relation: str | None = None,
    max_mentions: int = MAX_MENTIONS,
) -> dict[str, np.ndarray]:
    """Grounding targets of one element: `ground_span [M, 2]`, `ground_box [M, 4]`,
    `ground_facts [M, F]`, `pair_sign [F]` and `relation_id []`.

    Args:
      tokenizer: one with `encode_with_offsets` (the word tokenizer); any other gives no
        targets (every row padding).
      question: the question as given to `encode` (positions count its `<bos>`).
      mentions: `[(char start, char end, (x1, y1, x2, y2) in 0..1[, facts [F]])]` of
        `question` (without facts, the row's facts are zero, and scored as such: the
        pipeline always gives them).
      pair_sign: `[F]` (`facts.pair_signs`); None: no target (-1).
      relation: the relation the question asks (`facts.relation_id`); None: none (-1).
    """
    span = np.zeros((max_mentions, 2), np.int32)
    box = np.zeros((max_mentions, 4), np.float32)
    facts = np.zeros((max_mentions, NUM_FACTS), np.float32)
    none = np.full(NUM_FACTS, -1, np.int32)
    pair = none if pair_sign is None else np.asarray(pair_sign, np.int32)
    out = {
        "ground_span": span,
        "ground_box": box,
        "ground_facts": facts,
        "pair_sign": pair,
        "relation_id": np.int32(relation_id(relation) if relation else -1),
    }
    offsets = getattr(tokenizer, "encode_with_offsets", None)
    text = question_text(question)
    shift = question.find(text) if text else 0
    if offsets is None or shift < 0:  # no positions to teach: no targets at all
        out["pair_sign"] = none
        return out
    if not mentions:
        return out
    _, char_spans = offsets(text)
    row = 0
    for start, end, xyxy, *rest in mentions:
        start, end = start - shift, end - shift
        # Tokens whose characters overlap the name (a token's leading space is not the name).
        hits = [t for t, (a, b) in enumerate(char_spans) if a < end and b > start]
        if not hits or row == max_mentions:
            continue
        span[row] = (1 + hits[0], 1 + hits[-1] + 1)  # +1: the <bos> in front
        box[row] = xyxy
        if rest:
            facts[row] = rest[0]
        row += 1
    return out


def ground_loss(logits: jnp.ndarray, span: jnp.ndarray, box: jnp.ndarray, grid):
    """Cross-entropy of where each object name looks against where that object is.

    Args:
      logits: `[B, M, N]` a name's score for each of the `N = gh * gw` image tokens.
      span, box: `ground_span [B, M, 2]`, `ground_box [B, M, 4]`.
      grid: `(gh, gw)`, the image tokens' layout (row-major).

    Returns:
      `(sum of the valid names' cross-entropies, number of valid names)`. The target of a
      name is its object's box as a distribution over the token cells, each cell weighted by
      the fraction of it the box covers.
    """
    gh, gw = grid
    rows = jnp.arange(gh, dtype=jnp.float32)
    cols = jnp.arange(gw, dtype=jnp.float32)
    x1, y1, x2, y2 = (box[..., i] * s for i, s in ((0, gw), (1, gh), (2, gw), (3, gh)))
    ox = jnp.clip(jnp.minimum(x2[..., None], cols + 1) - jnp.maximum(x1[..., None], cols), 0, 1)
    oy = jnp.clip(jnp.minimum(y2[..., None], rows + 1) - jnp.maximum(y1[..., None], rows), 0, 1)
    cover = (oy[..., :, None] * ox[..., None, :]).reshape(*box.shape[:-1], gh * gw)
    total = jnp.sum(cover, axis=-1, keepdims=True)
    valid = (span[..., 1] > span[..., 0]) & (total[..., 0] > 0)
    target = cover / jnp.maximum(total, 1e-9)
    ce = -jnp.sum(target * jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1), axis=-1)
    return jnp.sum(jnp.where(valid, ce, 0.0)), jnp.sum(valid).astype(jnp.float32)


def grounding_objective(
    named: dict, span, box, grid, facts=None, pair=None, relation=None
) -> jnp.ndarray:
    """The mean grounding loss of a batch: where each name looks (`ground_loss`, averaged
    over the layers' score maps), plus the L1 error of the box it reads off (corners in
    0..1, averaged over the valid names); with `facts`, plus the L1 error of the facts it
    reads off (averaged over names and facts); with `pair`, plus the binary cross-entropy
    of the pair signs read at the end of the question (averaged over the targets); with
    `relation`, plus the cross-entropy of the relation read there (over the questions with
    one).

    Args:
      named: a grounding model's `{"scores": [B, G, M, N], "boxes": [B, M, 4]}` (and
        `"facts": [B, M, F]`, `"pair": [B, F]` and `"relation": [B, R]` logits, for models
        that read them).
      span, box: `ground_span [B, M, 2]`, `ground_box [B, M, 4]`.
      grid: `(gh, gw)` of the N image tokens.
      facts, pair, relation: `ground_facts [B, M, F]`, `pair_sign [B, F]`,
        `relation_id [B]`, or None.
    """
    scores = named["scores"]
    look, n = 0.0, 0.0
    for layer in range(scores.shape[1]):
        t, c = ground_loss(scores[:, layer], span, box, grid)
        look, n = look + t, n + c
    valid = (span[..., 1] > span[..., 0]).astype(jnp.float32)
    names = jnp.maximum(jnp.sum(valid), 1.0)
    l1 = jnp.sum(jnp.abs(named["boxes"] - box), axis=-1)
    total = look / jnp.maximum(n, 1.0) + jnp.sum(l1 * valid) / names
    if facts is not None and "facts" in named:
        err = jnp.mean(jnp.abs(named["facts"] - facts), axis=-1)
        total = total + jnp.sum(err * valid) / names
    if pair is not None and "pair" in named:
        target = (pair == 1).astype(jnp.float32)
        has = (pair >= 0).astype(jnp.float32)
        bce = optax.sigmoid_binary_cross_entropy(named["pair"].astype(jnp.float32), target)
        total = total + jnp.sum(bce * has) / jnp.maximum(jnp.sum(has), 1.0)
    if relation is not None and "relation" in named:
        has = (relation >= 0).astype(jnp.float32)
        ce = optax.softmax_cross_entropy_with_integer_labels(
            named["relation"].astype(jnp.float32), jnp.maximum(relation, 0)
        )
        total = total + jnp.sum(ce * has) / jnp.maximum(jnp.sum(has), 1.0)
    return total


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
    "ground_loss",
    "grounding_objective",
    "ground_spans",
    "next_token_loss",
    "pad_tokens",
    "question_text",
    "target_text",
]
