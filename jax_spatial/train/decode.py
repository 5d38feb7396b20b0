"""Greedy decoding with a key/value cache, batched, and the predictions JSONL.

    tokens = greedy(model, image, prefix, mask_input, max_new=8, eos_id=tok.eos_id)

The prefix (image + `<bos> question <sep>`) runs once; then one token per step for every row
at once against the cache (`models` interface: `prefill`, `decode_step`). The whole loop is
one jitted call (`lax.fori_loop`), compiled once per (batch, prefix bucket, max_new).
"""

from __future__ import annotations

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jax_spatial.train import data as data_lib


@nnx.jit(static_argnames=("max_new", "eos_id"))
def greedy(model, image, text, mask_input, *, max_new: int, eos_id: int):
    """Generated ids `[B, max_new]` (after `<eos>`, every id is `eos_id`)."""
    prefix_slots = model.config.num_image_tokens + text.shape[1]
    logits, cache = model.prefill(image, text, mask_input, max_new)
    b = text.shape[0]
    first = jnp.argmax(logits, axis=-1).astype(jnp.int32)
    out = jnp.full((b, max_new), eos_id, jnp.int32).at[:, 0].set(first)

    def body(step, carry):
        out, cache, done = carry
        token = out[:, step - 1]
        logits, cache = model.decode_step(token, step - 1, cache, prefix_slots)
        done = done | (token == eos_id)
        nxt = jnp.where(done, eos_id, jnp.argmax(logits, axis=-1).astype(jnp.int32))
        return out.at[:, step].set(nxt), cache, done

    out, _, _ = jax.lax.fori_loop(1, max_new, body, (out, cache, jnp.zeros((b,), bool)))
    return out


def predict_items(
    model,
    tokenizer,
    source,
    items,
    config,
    *,
    batch_size: int,
    max_new: int,
    sharding=None,
    seed: int = 0,
    progress=None,
):
    """Yields `(meta, prediction text, target text)` for every `(frame, question, format)`."""
    batches = data_lib.prefix_batches(source, items, tokenizer, config, batch_size, seed)
    yield from predict_batches(
        model, tokenizer, batches, max_new=max_new, sharding=sharding, progress=progress
    )


def predict_batches(model, tokenizer, batches, *, max_new: int, sharding=None, progress=None):
    """Yields `(meta, prediction text, target text)` for every valid row of prefix batches
    (`data.prefix_batches` or `bench_input.bench_prefix_batches`)."""
    for batch in batches:
        arrays = {k: batch[k] for k in ("image", "text", "mask_input")}
        if sharding is not None:
            arrays = {k: jax.device_put(np.asarray(v), sharding) for k, v in arrays.items()}
        ids = greedy(
            model,
            arrays["image"],
            arrays["text"],
            arrays["mask_input"],
            max_new=max_new,
            eos_id=tokenizer.eos_id,
        )
        ids = np.asarray(ids)
        for row in range(batch["valid"]):
            yield batch["meta"][row], tokenizer.decode(ids[row]).strip(), batch["target"][row]
        if progress is not None:
            progress.update(batch["valid"])


def write_predictions(path, rows) -> pathlib.Path:
    """One line per question: `id` (the question's `qa_id`), `prediction`, then its meta."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w") as f:
        for meta, prediction, target in rows:
            record = {
                "id": meta["qa_id"],
                "prediction": prediction,
                "target": target,
                # Grounding targets are training input, not part of a prediction's record.
                **{k: v for k, v in meta.items() if k not in ("qa_id", "mentions", "pair_sign")},
            }
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path


__all__ = ["greedy", "predict_batches", "predict_items", "write_predictions"]
