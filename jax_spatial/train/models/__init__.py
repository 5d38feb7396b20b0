"""Models by name, so configs can name them (`config.model.name = "tiny_vlm"`).

Every model follows one interface (`train.batch` has the batch contract):

    model = registry.build(name, vocab_size=..., preset=..., **fields)
    logits = model(image, text, mask_ar, mask_input)             # [B, L, V]
    logits, cache = model.prefill(image, prefix, mask_input, max_new)
    logits, cache = model.decode_step(token, step, cache, prefix_slots)
    model.config.image_size                                      # (H, W) it expects

A pretrained backend registers itself here the same way and brings its own tokenizer
(`register(name, tokenizer=factory)`; `make_tokenizer` is what the trainer calls). A model
may also name what trains and what a checkpoint keeps (`model.trainable`,
`model.checkpoint_filter`: NNX filters; default every `nnx.Param`).

    tokenizer = make_tokenizer(name, texts, preset=..., **fields)   # default: WordTokenizer
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

_REGISTRY: dict[str, Callable] = {}
_TOKENIZERS: dict[str, Callable] = {}


def register(name: str, tokenizer: Callable | None = None):
    """Registers a model factory; `tokenizer(texts, **fields)` builds its own tokenizer."""

    def wrap(factory):
        _REGISTRY[name] = factory
        if tokenizer is not None:
            _TOKENIZERS[name] = tokenizer
        return factory

    return wrap


def make_tokenizer(name: str, texts: Iterable[str], **fields):
    """The tokenizer a fresh run of model `name` starts with: the model's own (a pretrained
    backend reads its checkpoint's) or a `WordTokenizer` trained on `texts`."""
    if name in _TOKENIZERS:
        return _TOKENIZERS[name](texts, **fields)
    from jax_spatial.train.tokenizer import WordTokenizer

    return WordTokenizer.train(texts)


def build(name: str, **kwargs):
    if name not in _REGISTRY:
        from jax_spatial.errors import UserError

        raise UserError(f"unknown model {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name](**kwargs)


def names() -> list[str]:
    return sorted(_REGISTRY)


@register("tiny_vlm")
def _tiny_vlm(**kwargs):
    from jax_spatial.train.models import tiny_vlm

    return tiny_vlm.build(**kwargs)


def _gemma3_tokenizer(texts, **fields):
    from jax_spatial.train.models import gemma3

    return gemma3.make_tokenizer(texts, **fields)


def _gemma3_tiny_tokenizer(texts, **fields):
    from jax_spatial.train.models import gemma3

    return gemma3.make_tiny_tokenizer(texts, **fields)


@register("gemma3", tokenizer=_gemma3_tokenizer)
def _gemma3(**kwargs):
    from jax_spatial.train.models import gemma3

    return gemma3.build(**kwargs)


@register("gemma3_tiny", tokenizer=_gemma3_tiny_tokenizer)
def _gemma3_tiny(**kwargs):
    from jax_spatial.train.models import gemma3

    return gemma3.build_tiny(**kwargs)
