"""Orbax checkpoints that hold a whole run: model, optimizer, step, tokenizer, data position.

    <workdir>/checkpoints/<step>/{state, data, tokenizer, meta}

`state` is `{"model": nnx.State, "opt": nnx.State}` (restored straight onto the mesh's
shardings); `data` is the grain iterator's state (grain.checkpoint), so a resumed run reads
the same batches it would have read; `tokenizer` is the vocabulary; `meta` the step, the
model's construction arguments and the tokenizer's fingerprint. The manager keeps the last K.
A model that names `checkpoint_filter` (a LoRA run: its adapters) has only that part saved
and restored; the rest is rebuilt by the model's factory (pretrained folder or seed).
"""

from __future__ import annotations

import json
import pathlib

import grain
import jax
import orbax.checkpoint as ocp
from flax import nnx

from jax_spatial.errors import UserError
from jax_spatial.train import tokenizer as tokenizer_lib


def manager(workdir: str | pathlib.Path, keep: int = 3, save_every: int = 1):
    directory = pathlib.Path(workdir).absolute() / "checkpoints"
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, save_interval_steps=save_every, create=True
    )
    try:
        return ocp.CheckpointManager(
            directory, options=options, item_names=("state", "data", "tokenizer", "meta")
        )
    except OSError as error:
        raise UserError(f"cannot use checkpoint folder {directory}: {error}") from error


def model_state(model):
    """What a checkpoint holds of `model`: all of it, or `model.checkpoint_filter`'s part."""
    keep = getattr(model, "checkpoint_filter", None)
    return nnx.state(model) if keep is None else nnx.state(model, keep)


def save(mngr, step: int, model, optimizer, tokenizer, iterator, meta: dict, force=False):
    args = {
        "state": ocp.args.StandardSave({"model": model_state(model), "opt": nnx.state(optimizer)}),
        "tokenizer": ocp.args.JsonSave(tokenizer.to_json()),
        "meta": ocp.args.JsonSave({**meta, "step": int(step)}),
    }
    if iterator is not None:
        args["data"] = grain.checkpoint.CheckpointSave(iterator)
    return mngr.save(step, args=ocp.args.Composite(**args), force=force)


def _where(mngr, step) -> str:
    return str(pathlib.Path(mngr.directory) / str(step))


def read_meta(mngr, step: int | None = None) -> tuple[int, dict, tokenizer_lib.Tokenizer]:
    """`(step, meta, tokenizer)` of the latest (or given) checkpoint; `UserError` if unreadable."""
    step = mngr.latest_step() if step is None else step
    if step is None:
        raise UserError(f"no checkpoint in {mngr.directory}")
    try:
        restored = mngr.restore(
            step,
            args=ocp.args.Composite(meta=ocp.args.JsonRestore(), tokenizer=ocp.args.JsonRestore()),
        )
    except Exception as error:  # noqa: BLE001 - orbax raises many kinds for a broken folder
        raise UserError(
            f"checkpoint {_where(mngr, step)} is unreadable ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''})"
        ) from error
    meta, tok_json = restored["meta"], restored["tokenizer"]
    if not isinstance(meta, dict) or "model" not in meta:
        raise UserError(f"checkpoint {_where(mngr, step)}: meta lacks the model description")
    tokenizer = tokenizer_lib.from_json(tok_json, f"checkpoint {_where(mngr, step)} tokenizer")
    if meta.get("tokenizer_fingerprint") != tokenizer.fingerprint():
        raise UserError(
            f"checkpoint {_where(mngr, step)}: its tokenizer does not match the one the model "
            "was trained with"
        )
    return step, meta, tokenizer


def restore(mngr, step: int, model, optimizer, iterator=None) -> None:
    """Restores model and optimizer state (and the data iterator) in place, on their shardings."""
    abstract = {"model": model_state(model)}
    if optimizer is not None:
        abstract["opt"] = nnx.state(optimizer)
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, abstract)
    args = {"state": ocp.args.StandardRestore(abstract)}
    if iterator is not None:
        args["data"] = grain.checkpoint.CheckpointRestore(iterator)
    try:
        if optimizer is None:
            # Model only (predict): read the model's subtree, not the optimizer's moments.
            args["state"] = ocp.args.PyTreeRestore(
                abstract,
                restore_args=ocp.checkpoint_utils.construct_restore_args(abstract),
                partial_restore=True,
            )
        restored = mngr.restore(step, args=ocp.args.Composite(**args))
    except Exception as error:  # noqa: BLE001
        text = str(error).splitlines()[0] if str(error) else ""
        raise UserError(
            f"checkpoint {_where(mngr, step)} does not fit this model "
            f"({type(error).__name__}: {text[:300]})"
        ) from error
    nnx.update(model, restored["state"]["model"])
    if optimizer is not None:
        nnx.update(optimizer, restored["state"]["opt"])


def write_tokenizer_copy(workdir, tokenizer) -> None:
    """A readable copy beside the checkpoints (the checkpoint's own copy is authoritative)."""
    tokenizer.save(workdir)


def check_tokenizer_copy(workdir, tokenizer) -> None:
    path = pathlib.Path(workdir) / "tokenizer.json"
    if not path.exists():
        return
    try:
        fingerprint = json.loads(path.read_text()).get("fingerprint")
    except (json.JSONDecodeError, AttributeError) as error:
        raise UserError(f"{path}: not a tokenizer file") from error
    if fingerprint != tokenizer.fingerprint():
        raise UserError(
            f"{path} does not match the checkpoint's tokenizer (fingerprint {fingerprint} vs "
            f"{tokenizer.fingerprint()}); it belongs to another run"
        )


__all__ = [
    "check_tokenizer_copy",
    "manager",
    "model_state",
    "read_meta",
    "restore",
    "save",
    "write_tokenizer_copy",
]
