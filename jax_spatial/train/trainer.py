"""The training loop: spatial_qa shards -> a Flax NNX VLM, with exact resume and evaluation.

    summary = train(get_config("model=tiny_vlm"), workdir="out/train")
    predict(workdir, data_dir, name, split, out="preds.jsonl")

Sections, in the order they run: data and tokenizer, model and mesh, optimizer, checkpoint
(resume), the jitted step, the loop (metrics, periodic evaluation, checkpoints), the end
(final evaluation, picture). Everything is importable from a notebook; `jax-spatial train`
is a thin shell over `train`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import pathlib
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from jax_spatial.errors import UserError
from jax_spatial.train import batch as batch_lib
from jax_spatial.train import checkpoint as ckpt_lib
from jax_spatial.train import curriculum, models, sharding
from jax_spatial.train import data as data_lib
from jax_spatial.train import decode as decode_lib
from jax_spatial.train import evaluate as eval_lib
from jax_spatial.train import metrics as metrics_lib
from jax_spatial.train.tokenizer import WordTokenizer

log = logging.getLogger(__name__)


def default_config() -> ml_collections.ConfigDict:
    """Every setting of a run with its default; `configs/train.py` edits a copy of this."""
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.steps = 300
    c.batch_size = 32  # global, over all processes and devices
    c.grad_accum = 1  # micro-batches per step (the batch is split, gradients summed)
    c.log_every = 10
    c.eval_every = 100  # 0: only at the end
    c.ckpt_every = 100
    c.keep_checkpoints = 3
    # > 0: also teach the model where each object name looks, which box and facts it names,
    # and how the question's two objects compare (models with a grounding head only,
    # `batch.grounding_objective`); -1: 1 for such models, 0 for the others
    c.ground_weight = 0.0
    c.model = ml_collections.ConfigDict(
        {"name": "tiny_vlm", "preset": "cpu", "dtype": "float32", "overrides": {}}
    )
    c.data = ml_collections.ConfigDict(
        {
            "data_dir": "",
            "name": "spatial_qa/procedural_small",
            "split": "train",
            "eval_split": "test",  # "" for none; a split the dataset lacks is skipped
            "eval_name": "",  # another dataset to evaluate on ("": the training one)
            "answer_style": "short",
            "formats": "all",
            "draw": True,
            "blind": False,
            "worker_count": 0,
            "tokenizer_frames": 64,
            "tasks": "",  # "" for all, else e.g. "position,size": train and evaluate on those
            # Curriculum: the first `first_steps` steps train on `first_formats` only (e.g.
            # image_text/boxes, objects named by the colour of a drawn box, whose wording
            # gives nothing away), the rest on `formats` (`train.curriculum`); 0: none.
            "first_formats": "",
            "first_steps": 0,
            # Several stages before the mixture, in order: "FORMATS:STEPS;FORMATS:STEPS"
            # (e.g. "image_text/boxes:700;caption/boxes,ref/boxes:500"); "": none. The
            # first_* pair is its one-stage form; set one or the other.
            "stages": "",
            # Padded text lengths: one compilation of the step per bucket that occurs.
            "length_buckets": batch_lib.LENGTH_BUCKETS,
            # Batches of like lengths: the questions of this many batches are sorted by
            # length and cut into batches (`data.ReadConfig.length_group`; 1: off). On the
            # 19-format mixture a step then costs about 0.7 of a plain one, which pads to
            # the longest format's bucket (`bench/length_groups.py`).
            "length_group": 8,
        }
    )
    c.eval = ml_collections.ConfigDict(
        {"max_items": 256, "every_format": False, "batch_size": 64, "max_new": 0}
    )
    c.optim = ml_collections.ConfigDict(
        {
            "lr": 1e-3,
            "warmup_steps": 50,
            "end_lr_fraction": 0.05,
            "weight_decay": 0.05,
            "b1": 0.9,
            "b2": 0.98,
            "clip": 1.0,
        }
    )
    # model: tensor-parallel axis (models whose metadata names it, e.g. gemma3; 1: none)
    c.mesh = ml_collections.ConfigDict({"data": -1, "fsdp": 1, "model": 1})
    return c


def _model_args(config, tokenizer) -> dict:
    m = config.model
    return {
        "name": m.name,
        "vocab_size": tokenizer.vocab_size,
        "preset": m.preset,
        "dtype": m.dtype,
        **dict(m.overrides),
    }


def build_model(model_args: dict, seed: int = 0):
    args = dict(model_args)
    return models.build(args.pop("name"), rngs=nnx.Rngs(seed), **args)


def make_optimizer(model, config, steps: int) -> nnx.Optimizer:
    o = config.optim
    tx = _transform(
        float(o.lr),
        int(o.warmup_steps),
        int(steps),
        float(o.end_lr_fraction),
        float(o.weight_decay),
        float(o.b1),
        float(o.b2),
        float(o.clip),
    )
    return nnx.Optimizer(model, tx, wrt=trainable(model))


def trainable(model):
    """The parameters that train: the model's own filter (LoRA adapters, all but a frozen
    tower), else every `nnx.Param`."""
    return getattr(model, "trainable", nnx.Param)


@functools.lru_cache(maxsize=16)
def _transform(lr, warmup, steps, end_fraction, weight_decay, b1, b2, clip):
    # Cached: the transformation is static structure of the optimizer's graph, so an equal
    # but new one would make the jitted step compile again in every run of a process.
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, lr, min(warmup, max(steps - 1, 1)), max(steps, 2), end_value=lr * end_fraction
    )
    return optax.chain(
        optax.clip_by_global_norm(clip),
        optax.adamw(schedule, b1=b1, b2=b2, weight_decay=weight_decay, mask=_decay_mask),
    )


def _decay_mask(params):
    # No weight decay on norms, biases and the type vector (1-D parameters).
    return jax.tree.map(lambda p: jnp.ndim(p) > 1, params)


def _loss_sum(model, mb, ground_weight: float = 0.0):
    """`(objective summed over answer tokens, (answer loss sum, answer tokens, grounding))`.

    With `ground_weight` and grounding targets in `mb`, the objective adds the weighted mean
    grounding loss (`batch.grounding_objective`) once per answer token, so micro-batches
    still add up by their answer-token counts.
    """
    args = (mb["image"], mb["text"], mb["mask_ar"], mb["mask_input"])
    if not ground_weight:
        logits = model(*args)
        loss, count = batch_lib.next_token_loss(logits, mb["text"], mb["mask_loss"])
        return loss * count, (loss * count, count, jnp.float32(0.0))
    logits, named = model(*args, ground_span=mb["ground_span"])
    loss, count = batch_lib.next_token_loss(logits, mb["text"], mb["mask_loss"])
    ground = batch_lib.grounding_objective(
        named, mb["ground_span"], mb["ground_box"], model.config.token_grid,
        facts=mb.get("ground_facts"), pair=mb.get("pair_sign"), relation=mb.get("relation_id"),
    )  # fmt: skip
    return (loss + ground_weight * ground) * count, (loss * count, count, ground)


@functools.lru_cache(maxsize=8)
def make_train_step(grad_accum: int = 1, ground_weight: float = 0.0):
    """The jitted step: `metrics = step(model, optimizer, batch)`, model and optimizer donated.

    With `grad_accum > 1` the batch is split into that many micro-batches whose summed
    gradients (divided by the total answer-token count) equal the whole batch's. With
    `ground_weight > 0` the batch carries grounding targets and the model is also taught
    where each object name should look (`_loss_sum`); `loss` stays the answer loss and
    `ground_loss` is reported beside it.
    """

    @nnx.jit(donate_argnums=(0, 1))
    def step(model, optimizer, batch):
        grad_fn = nnx.value_and_grad(
            functools.partial(_loss_sum, ground_weight=ground_weight),
            argnums=nnx.DiffState(0, trainable(model)),
            has_aux=True,
        )
        if grad_accum == 1:
            (_, (answer, count, ground)), grads = grad_fn(model, batch)
        else:
            split = {
                k: v.reshape(grad_accum, v.shape[0] // grad_accum, *v.shape[1:])
                for k, v in batch.items()
            }
            answer, count, ground, grads = 0.0, 0.0, 0.0, None
            for i in range(grad_accum):
                (_, (a, c, g_loss)), g = grad_fn(model, {k: v[i] for k, v in split.items()})
                answer, count, ground = answer + a, count + c, ground + g_loss / grad_accum
                grads = g if grads is None else jax.tree.map(jnp.add, grads, g)
        scale = 1.0 / jnp.maximum(count, 1.0)
        grads = jax.tree.map(lambda g: g * scale, grads)
        optimizer.update(model, grads)
        out = {"loss": answer * scale, "grad_norm": optax.global_norm(grads), "tokens": count}
        if ground_weight:
            out["ground_loss"] = ground
        return out

    return step


@dataclasses.dataclass
class Run:
    """What a run holds between its sections (handy in a notebook)."""

    config: ml_collections.ConfigDict
    workdir: pathlib.Path
    tokenizer: WordTokenizer
    model: nnx.Module
    optimizer: nnx.Optimizer
    mesh: jax.sharding.Mesh
    read: data_lib.ReadConfig
    train_source: object
    train_index: np.ndarray
    iterator: object
    manager: object
    step: int
    model_args: dict
    eval_source: object = None
    eval_items: list | None = None


def _read_config(config, model) -> data_lib.ReadConfig:
    d = config.data
    return data_lib.ReadConfig(
        image_size=tuple(model.config.image_size),
        answer_style=d.answer_style,
        formats=d.formats if d.formats == "all" else tuple(data_lib.allowed_formats(d.formats)),
        draw=bool(d.draw),
        blind=bool(d.blind),
        seed=int(config.seed),
        worker_count=int(d.worker_count),
        buckets=tuple(int(b) for b in d.length_buckets),
        # A checkpoint written before length groups (read back by `predict`) has none.
        length_group=int(d.get("length_group", 1)),
        ground=_ground_weight(config, model) > 0,
    )


def _ground_weight(config, model=None) -> float:
    """The run's grounding weight; -1 ("the model's default") is 1 for a model with a
    grounding head and 0 for one without (None: not known yet, 0)."""
    weight = float(config.get("ground_weight", 0.0) or 0.0)
    if weight == -1:
        return 1.0 if getattr(model, "supports_grounding", False) else 0.0
    return weight


def _tasks(config) -> tuple[str, ...]:
    return tuple(t for t in str(config.data.get("tasks", "") or "").split(",") if t)


def _check_config(config) -> None:
    if config.steps < 1:
        raise UserError(f"steps must be at least 1, not {config.steps}")
    if config.batch_size < 1:
        raise UserError(f"batch size must be at least 1, not {config.batch_size}")
    if config.grad_accum < 1 or config.batch_size % config.grad_accum:
        raise UserError(
            f"batch size {config.batch_size} does not split into {config.grad_accum} micro-batches"
        )
    if config.data.answer_style not in ("short", "full"):
        raise UserError(f"answer_style must be short or full, not {config.data.answer_style!r}")
    if config.model.dtype not in ("float32", "bfloat16"):
        raise UserError(f"model dtype must be float32 or bfloat16, not {config.model.dtype!r}")
    curriculum_stages(config)
    if _ground_weight(config) < 0 and _ground_weight(config) != -1:
        raise UserError(
            f"ground_weight must be at least 0 (or -1: the model's default), "
            f"not {_ground_weight(config)}"
        )


def curriculum_stages(config) -> list[tuple[tuple[str, ...], int]]:
    """The curriculum's stages before the mixture, `[(format ids, steps), ...]` ([] for
    none), from `data.stages` or its one-stage form `data.first_formats/first_steps`."""
    d = config.data
    first_steps = int(d.get("first_steps", 0) or 0)
    first_formats = str(d.get("first_formats", "") or "")
    spec = str(d.get("stages", "") or "")
    if first_steps < 0:
        raise UserError(f"first_steps must be at least 0, not {first_steps}")
    if first_steps and not first_formats:
        raise UserError("first_steps needs first_formats (the formats of the first stage)")
    if first_steps and spec:
        raise UserError("set either stages or first_formats/first_steps, not both")
    stages = curriculum.parse_stages(spec) if spec else []
    if first_steps:
        stages = [(first_formats, first_steps)]
    return [(data_lib.allowed_formats(formats), steps) for formats, steps in stages]


def setup(config: ml_collections.ConfigDict, workdir) -> Run:
    """Opens the data, builds or restores tokenizer, model, optimizer and data position."""
    _check_config(config)
    workdir = pathlib.Path(workdir)
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create workdir {workdir}: {error.strerror}") from error
    # -- data
    d = config.data
    source = data_lib.open_split(d.data_dir or None, d.name, d.split)
    formats = d.formats if d.formats == "all" else data_lib.allowed_formats(d.formats)
    index = data_lib.question_index(source, formats, _tasks(config))
    if len(index) == 0:
        raise UserError(f"split {d.split!r} of {d.name} has no question in formats {d.formats}")
    # -- tokenizer and model: from the checkpoint when resuming
    mngr = ckpt_lib.manager(workdir, keep=config.keep_checkpoints)
    step = 0
    resume = mngr.latest_step()
    if resume is not None:
        step, meta, tokenizer = ckpt_lib.read_meta(mngr, resume)
        ckpt_lib.check_tokenizer_copy(workdir, tokenizer)
        model_args = meta["model"]
        wanted = json.loads(json.dumps(_model_args(config, tokenizer)))
        if {k: v for k, v in wanted.items() if k != "vocab_size"} != {
            k: v for k, v in model_args.items() if k != "vocab_size"
        }:
            raise UserError(
                f"{workdir} holds a run of another model ({model_args}); use a new --workdir"
            )
    else:
        texts = data_lib.tokenizer_texts(
            source, formats, max_frames=d.tokenizer_frames, seed=config.seed
        )
        # A pretrained model brings its own tokenizer; others train a WordTokenizer on texts.
        tokenizer = models.make_tokenizer(
            config.model.name,
            texts,
            preset=config.model.preset,
            dtype=config.model.dtype,
            **dict(config.model.overrides),
        )
        ckpt_lib.write_tokenizer_copy(workdir, tokenizer)
        model_args = _model_args(config, tokenizer)
    m = config.mesh
    mesh = sharding.make_mesh(m.data, m.fsdp, model=m.get("model", 1))
    model = build_model(model_args, seed=config.seed)
    if _ground_weight(config, model) and not getattr(model, "supports_grounding", False):
        raise UserError(f"model {config.model.name} has no grounding head; set ground_weight=0")
    sharding.shard_tree(model, mesh)
    optimizer = make_optimizer(model, config, config.steps)
    sharding.shard_tree(optimizer, mesh)
    # -- input pipeline (this process's share of the global batch)
    n_proc = jax.process_count()
    if config.batch_size % n_proc or config.batch_size % mesh.size:
        raise UserError(f"batch size {config.batch_size} does not split over {mesh.size} devices")
    read = _read_config(config, model)
    local = config.batch_size // n_proc
    iterator = _train_iterator(config, source, index, tokenizer, read, local)
    if resume is not None:
        ckpt_lib.restore(mngr, resume, model, optimizer, iterator)
    (workdir / "config.json").write_text(config.to_json_best_effort(indent=2))
    run = Run(
        config,
        workdir,
        tokenizer,
        model,
        optimizer,
        mesh,
        read,
        source,
        index,
        iterator,
        mngr,
        step,
        model_args,
    )
    _setup_eval(run)
    return run


def _train_iterator(config, source, index, tokenizer, read, local: int):
    """This process's batches: one grain iterator, or the curriculum's stages in turn."""
    d = config.data

    def batches(stage_index, stage_read):
        return lambda: iter(
            data_lib.train_batches(
                source,
                stage_index,
                tokenizer,
                stage_read,
                local,
                process_index=jax.process_index(),
                process_count=jax.process_count(),
            )
        )

    main = batches(index, read)
    stages = curriculum_stages(config)
    if not stages:
        return main()
    plan = []
    for formats, steps in stages:
        stage_index = data_lib.question_index(source, formats, _tasks(config))
        if len(stage_index) == 0:
            raise UserError(
                f"split {d.split!r} of {d.name} has no question in the curriculum's formats "
                f"{','.join(formats)}"
            )
        stage_read = dataclasses.replace(read, formats=formats)
        plan.append(curriculum.Stage(steps, batches(stage_index, stage_read), ",".join(formats)))
    mixture = read.formats if isinstance(read.formats, str) else ",".join(read.formats)
    return curriculum.StagedBatches([*plan, curriculum.Stage(None, main, mixture)])


def _setup_eval(run: Run) -> None:
    d, e = run.config.data, run.config.eval
    if not d.eval_split:
        return
    try:
        source = data_lib.open_split(d.data_dir or None, d.eval_name or d.name, d.eval_split)
    except UserError as error:
        log.warning("no periodic evaluation: %s", error)
        return
    formats = d.formats if d.formats == "all" else data_lib.allowed_formats(d.formats)
    if e.every_format:
        formats = "all"  # evaluate every format whatever the training mix
    index = data_lib.question_index(source, formats, _tasks(run.config))
    run.eval_source = source
    run.eval_items = data_lib.eval_items(
        source, index, formats, e.every_format, seed=run.config.seed, max_items=e.max_items or None
    )


def max_new_tokens(config) -> int:
    """Decoding length: a canonical answer is a few tokens, a sentence up to ~96."""
    if config.eval.max_new:
        return int(config.eval.max_new)
    return 4 if config.data.answer_style == "short" else 96


def evaluate(run: Run, items=None, source=None, progress=None) -> tuple[dict, list]:
    """Greedy predictions for `items` (default: the held-out set) and their accuracy table."""
    source = source if source is not None else run.eval_source
    items = items if items is not None else run.eval_items
    if not items:
        return {}, []
    bs = int(run.config.eval.batch_size)
    bs = max(run.mesh.size, bs - bs % run.mesh.size)
    read = (
        dataclasses.replace(run.read, formats="all") if run.config.eval.every_format else run.read
    )
    rows = list(
        decode_lib.predict_items(
            run.model,
            run.tokenizer,
            source,
            items,
            read,
            batch_size=bs,
            max_new=max_new_tokens(run.config),
            sharding=sharding.batch_sharding(run.mesh),
            seed=run.config.seed,
            progress=progress,
        )
    )
    return eval_lib.accuracy_table(rows), rows


def _eval_scalars(table: dict) -> dict:
    out = {"eval/overall": table["overall"]["all"]["accuracy"]}
    out.update({f"eval/task/{k}": v["accuracy"] for k, v in table["task"].items()})
    out.update({f"eval/format/{k}": v["accuracy"] for k, v in table["format"].items()})
    return out


def _save(run: Run, step: int, force=False) -> None:
    meta = {
        "model": run.model_args,
        "tokenizer_fingerprint": run.tokenizer.fingerprint(),
        "config": json.loads(run.config.to_json_best_effort()),
    }
    ckpt_lib.save(
        run.manager, step, run.model, run.optimizer, run.tokenizer, run.iterator, meta, force=force
    )


def train(
    config: ml_collections.ConfigDict,
    workdir,
    *,
    show_progress: bool = True,
    stop_after: int | None = None,
) -> dict:
    """Runs (or resumes) training to `config.steps`; returns a summary dict.

    `stop_after`: stop once this step is reached (after its checkpoint), as a kill would;
    the tests use it to compare an interrupted-and-resumed run with an uninterrupted one.
    """
    from tqdm import tqdm

    run = setup(config, workdir)
    writer = metrics_lib.MetricWriter(run.workdir)
    writer.truncate_after(run.step)
    step_fn = make_train_step(config.grad_accum, _ground_weight(config, run.model))
    batch_sharding = sharding.batch_sharding(run.mesh)
    losses: list[tuple[int, float]] = []
    waits, walls = 0.0, 0.0
    wait_total, wall_total = 0.0, 0.0
    last_eval: dict = {}
    bar = tqdm(
        total=config.steps, initial=run.step, unit="step", desc="train", disable=not show_progress
    )
    tic = time.perf_counter()
    step = run.step
    try:
        while step < config.steps:
            t0 = time.perf_counter()
            host = data_lib.common_length(next(run.iterator), run.tokenizer.pad_id)
            t1 = time.perf_counter()
            batch = data_lib.global_batch(host, batch_sharding)
            out = step_fn(run.model, run.optimizer, batch)
            step += 1
            loss = float(out["loss"])  # syncs: the step time below is the real one
            t2 = time.perf_counter()
            losses.append((step, loss))
            waits += t1 - t0
            walls += t2 - t0
            if not np.isfinite(loss):
                raise UserError(f"loss is {loss} at step {step}; lower optim.lr or check the data")
            if step % config.log_every == 0 or step == config.steps:
                scalars = {
                    "loss": float(np.mean([v for _, v in losses[-config.log_every :]])),
                    "grad_norm": float(out["grad_norm"]),
                    "steps_per_s": config.log_every / max(walls, 1e-9)
                    if step % config.log_every == 0
                    else 0.0,
                    "data_wait_fraction": waits / max(walls, 1e-9),
                }
                if "ground_loss" in out:
                    scalars["ground_loss"] = float(out["ground_loss"])
                writer.write(step, scalars)
                bar.set_postfix(
                    loss=f"{scalars['loss']:.3f}", wait=f"{scalars['data_wait_fraction']:.0%}"
                )
                wait_total += waits
                wall_total += walls
                waits, walls = 0.0, 0.0
            bar.update(1)
            if config.eval_every and step % config.eval_every == 0 and step < config.steps:
                table, _ = evaluate(run)
                if table:
                    last_eval = table
                    writer.write(step, _eval_scalars(table))
            stopping = stop_after is not None and step >= stop_after
            if step % config.ckpt_every == 0 or step == config.steps or stopping:
                _save(run, step, force=step == config.steps or stopping)
            if stopping:
                break
    finally:
        run.manager.wait_until_finished()
        bar.close()
    wait_total += waits
    wall_total += walls
    summary = {
        "workdir": str(run.workdir),
        "step": step,
        "seconds": round(time.perf_counter() - tic, 1),
        "final_loss": losses[-1][1] if losses else None,
        "data_wait_fraction": wait_total / max(wall_total, 1e-9),
        "step_seconds": round(wall_total, 1),  # reading + stepping, evaluation left out
        "parameters": int(sum(x.size for x in jax.tree.leaves(nnx.state(run.model, nnx.Param)))),
        "trainable_parameters": int(
            sum(x.size for x in jax.tree.leaves(nnx.state(run.model, trainable(run.model))))
        ),
        "losses": losses,
    }
    if step >= config.steps:
        table, rows = evaluate(run)
        if table:
            last_eval = table
            writer.write(step, _eval_scalars(table))
            decode_lib.write_predictions(run.workdir / "eval_predictions.jsonl", rows)
            (run.workdir / "eval.json").write_text(json.dumps(table, indent=2))
        summary["eval"] = last_eval
        writer.close()
        summary["plot"] = str(
            metrics_lib.plot_run(
                run.workdir / "metrics.jsonl",
                run.workdir / "training.png",
                title=f"{config.model.name} on {config.data.name}",
            )
        )
    else:
        writer.close()
    return summary


def load_for_inference(workdir, step: int | None = None):
    """`(model, tokenizer, meta)` from a workdir's checkpoint, on a 1-axis data mesh."""
    workdir = pathlib.Path(workdir)
    if not (workdir / "checkpoints").is_dir():
        raise UserError(f"no checkpoints in {workdir} (train first: jax-spatial train)")
    mngr = ckpt_lib.manager(workdir)
    step, meta, tokenizer = ckpt_lib.read_meta(mngr, step)
    ckpt_lib.check_tokenizer_copy(workdir, tokenizer)
    if meta["model"].get("vocab_size") != tokenizer.vocab_size:
        raise UserError(
            f"checkpoint {step}: the model was built for {meta['model'].get('vocab_size')} "
            f"tokens, its tokenizer has {tokenizer.vocab_size}"
        )
    mesh = sharding.make_mesh()
    model = build_model(meta["model"])
    sharding.shard_tree(model, mesh)
    ckpt_lib.restore(mngr, step, model, None)
    return model, tokenizer, meta, mesh


def predict(
    workdir,
    data_dir,
    name,
    split,
    out,
    *,
    batch_size: int = 64,
    formats: str = "all",
    every_format: bool = False,
    max_items: int | None = None,
    seed: int = 0,
    show_progress: bool = True,
    bench: str | pathlib.Path | None = None,
) -> dict:
    """Writes `out` (predictions JSONL, one line per question) and returns a summary.

    With `bench` (a `jax-spatial bench build` folder) the questions are the bench's items as
    written (image with overlays, question in its format) and `id` is the item's id; else they
    come from split `split` of the TFDS dataset `name`.
    """
    from tqdm import tqdm

    from jax_spatial.train import bench_input

    if bench is None and not name:
        raise UserError("predict needs a dataset (--name, --data-dir) or a bench folder (--bench)")
    if bench is not None:
        items = bench_input.read_bench(bench, limit=max_items)  # before loading the model
    model, tokenizer, meta, mesh = load_for_inference(workdir)
    config = ml_collections.ConfigDict(meta["config"])
    # The run's own reading (image size, answer style, overlays, blind), with this call's
    # formats and seed.
    read = dataclasses.replace(
        _read_config(config, model),
        formats=formats if formats == "all" else data_lib.allowed_formats(formats),
        seed=seed,
        worker_count=0,
    )
    batch_size = max(mesh.size, batch_size - batch_size % mesh.size)
    if bench is not None:
        batches = bench_input.bench_prefix_batches(bench, items, tokenizer, read, batch_size)
        total = len(items)
    else:
        source = data_lib.open_split(data_dir or None, name, split)
        index = data_lib.question_index(source, formats)
        questions = data_lib.eval_items(
            source, index, formats, every_format, seed=seed, max_items=max_items
        )
        if not questions:
            raise UserError(f"split {split!r} of {name} has no question in formats {formats}")
        batches = data_lib.prefix_batches(source, questions, tokenizer, read, batch_size, seed)
        total = len(questions)
    max_new = max_new_tokens(config)
    with tqdm(total=total, unit="q", desc="predict", disable=not show_progress) as bar:
        rows = list(
            decode_lib.predict_batches(
                model,
                tokenizer,
                batches,
                max_new=max_new,
                sharding=sharding.batch_sharding(mesh),
                progress=bar,
            )
        )
    path = decode_lib.write_predictions(out, rows)
    table = eval_lib.accuracy_table(rows)
    return {
        "predictions": str(path),
        "questions": len(rows),
        "accuracy": table["overall"]["all"]["accuracy"],
        "per_task": {k: round(v["accuracy"], 1) for k, v in table["task"].items()},
    }


__all__ = [
    "Run",
    "default_config",
    "evaluate",
    "load_for_inference",
    "make_optimizer",
    "make_train_step",
    "predict",
    "setup",
    "train",
]
