r"""Fine-tune pretrained Gemma 3 on spatial_qa shards (the `gemma3` backend, docs/gemma3.md).

  pip install -e '.[gemma]'
  jax-spatial train --config configs/gemma3.py:checkpoint=/ckpt/gemma-3-4b-it,steps=2000 \
      --workdir out/gemma3 --data-dir out/tfds --name spatial_qa/learn
  python -m jax_spatial.train.models.gemma3.export --workdir out/gemma3 --out out/merged

`arg` keys (defaults: LoRA on a 4B-class checkpoint, one accelerator):
  checkpoint   a local folder: Hugging Face safetensors + config.json + tokenizer.model, or a
               Kaggle orbax checkpoint + tokenizer.model ("" with size=tiny: random weights)
  size         auto (from config.json) | 1b | 4b | 12b | 27b | tiny
  finetune     lora | frozen_vision | full
  lora_rank, lora_alpha, lora_targets ("+"-joined: q_proj+k_proj+v_proj+o_proj+gate_proj+
               up_proj+down_proj, vision.q_proj ... vision.fc2, projector)
  attention    gemma (causal, image bidirectional: as pretrained) | prefix_lm
  param_dtype, dtype   bfloat16 | float32 (parameters; compute)
  remat        recompute each block in the backward pass
  vision_chunk images SigLIP encodes at once (0: the whole batch)
  fsdp, model_axis     mesh sizes (data takes the remaining devices)
  steps, batch_size, accum, lr, warmup, formats, answer, tasks, workers, name, data_dir,
  eval_batch, max_eval
"""

from jax_spatial.config import parse_arg
from jax_spatial.train.trainer import default_config


def get_config(arg=None):
    arg = parse_arg(
        arg,
        checkpoint="",
        size="auto",
        finetune="lora",
        lora_rank=16,
        lora_alpha=32.0,
        lora_targets="q_proj+k_proj+v_proj+o_proj+gate_proj+up_proj+down_proj",
        attention="gemma",
        param_dtype="bfloat16",
        dtype="bfloat16",
        remat=True,
        vision_chunk=1,
        fsdp=1,
        model_axis=1,
        steps=1000,
        batch_size=16,
        accum=1,
        lr=1e-4,
        warmup=50,
        formats="all",
        answer="short",
        tasks="",
        workers=0,
        name="spatial_qa/procedural_small",
        data_dir="",
        eval_batch=16,
        max_eval=256,
    )
    config = default_config()
    config.model.name = "gemma3"
    config.model.preset = arg.size
    config.model.dtype = arg.dtype
    config.model.overrides = {
        "checkpoint": arg.checkpoint,
        "finetune": arg.finetune,
        "lora_rank": arg.lora_rank,
        "lora_alpha": arg.lora_alpha,
        "lora_targets": arg.lora_targets.replace("+", ","),
        "attention": arg.attention,
        "param_dtype": arg.param_dtype,
        "remat": arg.remat,
        "vision_chunk": arg.vision_chunk,
    }
    config.steps = arg.steps
    config.batch_size = arg.batch_size
    config.grad_accum = arg.accum
    config.optim.lr = arg.lr
    config.optim.warmup_steps = arg.warmup
    config.data.name = arg.name
    config.data.data_dir = arg.data_dir
    config.data.formats = arg.formats.replace("+", ",")
    config.data.answer_style = arg.answer
    config.data.tasks = arg.tasks.replace("+", ",")
    config.data.worker_count = arg.workers
    config.eval.batch_size = arg.eval_batch
    config.eval.max_items = arg.max_eval
    config.mesh.fsdp = arg.fsdp
    config.mesh.model = arg.model_axis
    return config
