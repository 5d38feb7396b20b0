"""Models by name, so configs can name them (`config.model.name = "tiny_vlm"`).

Every model follows one interface (`train.batch` has the batch contract):

    model = registry.build(name, vocab_size=..., preset=..., **fields)
    logits = model(image, text, mask_ar, mask_input)             # [B, L, V]
    logits, cache = model.prefill(image, prefix, mask_input, max_new)
    logits, cache = model.decode_step(token, step, cache, prefix_slots)
    model.config.image_size                                      # (H, W) it expects

A pretrained backend registers itself here the same way and brings its own tokenizer.
"""

from __future__ import annotations

from collections.abc import Callable

_REGISTRY: dict[str, Callable] = {}


def register(name: str):
    def wrap(factory):
        _REGISTRY[name] = factory
        return factory

    return wrap


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
