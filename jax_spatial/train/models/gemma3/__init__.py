"""`gemma3`: pretrained Gemma 3 (SigLIP vision tower + decoder) in Flax NNX, fine-tuned by the
project's loop (`pip install 'jax-spatial[gemma]'`; docs/gemma3.md).

    model = build(vocab_size, preset="auto", checkpoint="/ckpt/gemma-3-4b-it",
                  finetune="lora", lora_rank=16)             # registry: models.build("gemma3")
    tok = make_tokenizer(texts, checkpoint="/ckpt/...")      # its sentencepiece model
    model, tok = load("/ckpt/gemma-3-4b-it", finetune="lora")   # both, for a notebook

config      sizes (1b, 4b, 12b, 27b, tiny), Hugging Face config.json in and out, counts
model       the NNX model: `model(image, text, mask_ar, mask_input)`, prefill, decode_step
weights     Hugging Face safetensors and Kaggle orbax folders -> parameters
tokenizer   sentencepiece behind the project's Tokenizer protocol
lora        fine-tuning modes, adapters, merging
export      merged weights -> a Hugging Face safetensors folder
memory      bytes per device of a run (parameters, optimizer, activations)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from flax import nnx

from jax_spatial.errors import UserError
from jax_spatial.train.models.gemma3 import config as config_lib

_TUPLE_FIELDS = ("layer_types", "lora_targets")
TINY_ALIASES = ("tiny", "cpu", "gpu", "test", "auto", "")  # the project's presets for gemma3_tiny


def _fields(fields: dict) -> dict:
    """Config fields from model arguments (JSON gives lists, configs give "a,b" strings)."""
    known = {f.name for f in dataclasses.fields(config_lib.Gemma3Config)} - {"vocab_size"}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise UserError(f"gemma3 has no setting {unknown[0]!r}; known: {', '.join(sorted(known))}")
    out = dict(fields)
    for name in _TUPLE_FIELDS:
        value = out.get(name)
        if isinstance(value, str):
            out[name] = tuple(v for v in value.replace("+", ",").split(",") if v)
        elif value is not None:
            out[name] = tuple(value)
    for name in ("remat",):
        if name in out:
            out[name] = bool(out[name])
    return out


def build(
    vocab_size: int,
    preset: str = "auto",
    rngs: nnx.Rngs | None = None,
    checkpoint: str = "",
    **fields,
):
    """A `Gemma3` model: pretrained from `checkpoint` (a local folder) or random (`tiny`).

    `fields` are `Gemma3Config` fields (finetune, lora_rank, lora_alpha, lora_targets, remat,
    attention, dtype, param_dtype). With a checkpoint the model is built abstractly, every base
    parameter read from the folder (host memory, shapes checked), the adapters initialized
    from `rngs`; `train.sharding.shard_tree` then places it on the mesh.
    """
    from jax_spatial.train.models.gemma3 import lora, weights
    from jax_spatial.train.models.gemma3.model import Gemma3

    fields = _fields(fields)
    rngs = rngs if rngs is not None else nnx.Rngs(0)
    with nnx.use_eager_sharding(False):
        if checkpoint:
            folder = weights.open_folder(checkpoint)
            config = weights.folder_config(folder, preset, vocab_size, **fields)
            model = nnx.eval_shape(lambda: Gemma3(config, rngs=nnx.Rngs(0)))
            weights.load(model, folder)
            lora.init_adapters(model, rngs)
            return model
        _need_checkpoint(preset)
        return Gemma3(config_lib.preset_config(preset, vocab_size, **fields), rngs=rngs)


def _need_checkpoint(preset: str) -> None:
    """Random weights exist for `tiny` only; every other preset reads a checkpoint folder."""
    if preset in ("auto", ""):
        raise UserError("gemma3 needs checkpoint=<folder> (or preset=tiny for a random model)")
    if preset in config_lib.SIZES:
        raise UserError(
            f"gemma3 preset {preset} needs its pretrained weights: checkpoint=<folder> "
            "(random initialization is for preset=tiny)"
        )
    if preset != "tiny":
        config_lib.preset_config(preset, 1)  # raises, naming the known presets


def build_tiny(vocab_size: int, preset: str = "tiny", **kwargs):
    """`gemma3_tiny`: the tiny preset whatever `preset` says (the project's cpu/gpu/test)."""
    if preset not in TINY_ALIASES:
        raise UserError(f"gemma3_tiny has one size; preset {preset!r} is not one of {TINY_ALIASES}")
    return build(vocab_size, preset="tiny", **kwargs)


def make_tokenizer(texts: Iterable[str], preset: str = "auto", checkpoint: str = "", **fields):
    """The tokenizer of a fresh run: the checkpoint folder's `tokenizer.model`, checked against
    the folder's model; without a folder (tiny), a sentencepiece model trained on `texts`."""
    from jax_spatial.train.models.gemma3 import tokenizer as tok_lib
    from jax_spatial.train.models.gemma3 import weights

    if checkpoint:
        folder = weights.open_folder(checkpoint)
        tok = tok_lib.GemmaTokenizer.from_folder(folder.path)
        config = weights.folder_config(folder, preset, tok.vocab_size, **_fields(fields))
        tok.check_model(config, f"checkpoint {folder.path}")
        return tok
    _need_checkpoint(preset)
    tok = tok_lib.train_tiny(texts)
    tiny = config_lib.preset_config("tiny", tok.vocab_size)
    tok.check_model(tiny, "gemma3_tiny")
    return tok


def make_tiny_tokenizer(texts: Iterable[str], preset: str = "tiny", **fields):
    return make_tokenizer(texts, preset="tiny", **fields)


def load(checkpoint: str, preset: str = "auto", seed: int = 0, **fields):
    """`(model, tokenizer)` of a checkpoint folder (a notebook's one call)."""
    tok = make_tokenizer((), preset=preset, checkpoint=checkpoint, **fields)
    model = build(tok.vocab_size, preset, nnx.Rngs(seed), checkpoint=checkpoint, **fields)
    return model, tok


__all__ = ["build", "build_tiny", "load", "make_tokenizer"]
