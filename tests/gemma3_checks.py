"""Shared set-up for the Gemma 3 tests: a LoRA model that has taken a few training steps."""

from __future__ import annotations

from flax import nnx

from jax_spatial.train import trainer
from jax_spatial.train.models import gemma3
from jax_spatial.train.models.gemma3 import config as config_lib


def trained_lora(vocab_size: int, folder, batch: dict, seed: int, steps: int = 3):
    """LoRA on every target over the checkpoint in `folder`, after `steps` optimizer steps on
    `batch` (warm-up 1, lr 1e-2: enough that the zero-initialised B matrices move)."""
    model = gemma3.build(vocab_size, checkpoint=str(folder), finetune="lora",
                         lora_targets=config_lib.LORA_TARGETS, rngs=nnx.Rngs(seed))  # fmt: skip
    config = trainer.default_config()
    config.optim.warmup_steps, config.optim.lr = 1, 1e-2
    opt = trainer.make_optimizer(model, config, steps)
    step = trainer.make_train_step()
    for _ in range(steps):
        step(model, opt, batch)
    return model
