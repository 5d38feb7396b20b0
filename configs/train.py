r"""Fine-tune a VLM on spatial_qa shards (big_vision-style config).

Run (flags given on the command line override the config):

  jax-spatial build-data --data-dir out/tfds --name learn --num-scenes 64
  jax-spatial train --config configs/train.py:model=tiny_vlm,steps=300 --workdir out/train \
      --data-dir out/tfds --name spatial_qa/learn

`arg` keys: model (registry name), preset (cpu | gpu | test), steps, batch_size, lr,
formats ("all" or format ids joined by "+", e.g. caption/raw+ref/boxes), answer
(short | full), blind (1: images zeroed, the language-only baseline), dtype
(float32 | bfloat16), accum (gradient accumulation), fsdp (fsdp mesh size), workers, tasks
(train and evaluate on these only, joined by "+", e.g. position+size), ground (weight of the
grounding loss: each object name of a question is taught to look at its object and read off
its box, place and size, and the question's end how its two objects compare; 0: off;
default 1 for tiny_vlm, 0 for models without a grounding head), first_formats and first_steps
(a curriculum: the first first_steps steps on first_formats only, joined by "+", e.g.
image_text/boxes; then formats), stages (a curriculum of several stages in order,
FORMATS:STEPS joined by ";", formats by "+", e.g.
"image_text/boxes:700;caption/boxes+ref/boxes:500"; then formats).
Every other field keeps the default of `jax_spatial.train.trainer.default_config`; edit
them here or in a copy of this file.
"""

from jax_spatial.config import parse_arg
from jax_spatial.train.trainer import default_config


def get_config(arg=None):
    arg = parse_arg(
        arg,
        model="tiny_vlm",
        preset="cpu",
        steps=300,
        batch_size=32,
        lr=1e-3,
        formats="all",
        answer="short",
        blind=False,
        dtype="float32",
        accum=1,
        fsdp=1,
        workers=0,
        tasks="",
        ground=-1.0,
        first_formats="",
        first_steps=0,
        stages="",
        name="spatial_qa/procedural_small",
        data_dir="",
    )
    config = default_config()
    config.model.name = arg.model
    config.model.preset = arg.preset
    config.model.dtype = arg.dtype
    config.steps = arg.steps
    config.batch_size = arg.batch_size
    config.grad_accum = arg.accum
    config.optim.lr = arg.lr
    config.data.name = arg.name
    config.data.data_dir = arg.data_dir
    config.data.formats = arg.formats.replace("+", ",")
    config.data.answer_style = arg.answer
    config.data.blind = arg.blind
    config.data.worker_count = arg.workers
    config.data.tasks = arg.tasks.replace("+", ",")
    config.data.first_formats = arg.first_formats.replace("+", ",")
    config.data.first_steps = arg.first_steps
    config.data.stages = arg.stages.replace("+", ",")
    config.mesh.fsdp = arg.fsdp
    # -1: 1 for models with a grounding head (tiny_vlm learns the spatial questions only
    # with it, docs/learning.md), else 0; resolved by the trainer once the model is built.
    config.ground_weight = float(arg.ground)
    return config
