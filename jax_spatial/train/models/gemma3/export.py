"""Merged export: a (LoRA-)fine-tuned `gemma3` -> a full Hugging Face checkpoint folder.

    export_model(model, tokenizer, "out/merged")                  # from Python
    python -m jax_spatial.train.models.gemma3.export --workdir out/run --out out/merged

Every adapter is folded into its projection (`W + alpha/r * A @ B`), every kernel written in
Hugging Face's layout (`[out, in]` Linear weights, the published checkpoints' key prefixes:
`language_model.model.`, `vision_tower.vision_model.`, `multi_modal_projector.`; `model.`
for text-only 1b) as `model.safetensors`, beside `config.json` and the run's
`tokenizer.model`. `transformers`' `Gemma3ForConditionalGeneration.from_pretrained` and this
backend's own loader (`checkpoint=out/merged`) both read the folder.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np
from flax import nnx

from jax_spatial.errors import UserError
from jax_spatial.train.models.gemma3 import config as config_lib
from jax_spatial.train.models.gemma3 import lora as lora_lib
from jax_spatial.train.models.gemma3 import weights


def merged_tensors(model, dtype: str | None = None) -> dict[str, np.ndarray]:
    """`{Hugging Face key: array}` of the merged model (`dtype`: default the parameters')."""
    config = model.config
    merged = lora_lib.merged_kernels(model)
    pure = nnx.to_pure_dict(nnx.state(model, nnx.All(nnx.Param, nnx.Not(nnx.LoRAParam))))
    text_only = config.vision is None
    out = {}
    for key, path, transform in weights.hf_entries(config):
        node = pure
        for part in path:
            node = node[part]
        array = merged.get(tuple(path[:-1]), np.asarray(node)) if path[-1] == "kernel" else node
        array = np.asarray(array)
        if dtype is not None:
            array = array.astype(np.dtype(_np_dtype(dtype)))
        part, rest = key.split(".", 1)
        out[weights.hf_prefix(part, text_only) + rest] = np.ascontiguousarray(
            weights.to_hf_layout(array, transform)
        )
    return out


def _np_dtype(name: str):
    import ml_dtypes

    return ml_dtypes.bfloat16 if name == "bfloat16" else np.dtype(name)


def export_model(model, tokenizer, out_dir, dtype: str | None = None) -> pathlib.Path:
    """Writes `model.safetensors`, `config.json` and `tokenizer.model` into `out_dir`."""
    from safetensors.numpy import save_file

    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = merged_tensors(model, dtype)
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    hf = config_lib.to_hf_config(model.config)
    if dtype is not None:
        hf["torch_dtype"] = dtype
    (out / "config.json").write_text(json.dumps(hf, indent=2))
    proto = getattr(tokenizer, "proto", None)
    if proto is None:
        raise UserError("export needs the run's sentencepiece tokenizer (a gemma3 run)")
    (out / "tokenizer.model").write_bytes(proto)
    return out


def export_run(workdir, out_dir, step: int | None = None, dtype: str | None = None):
    """The merged export of a `jax-spatial train` workdir's checkpoint (latest or `step`)."""
    from jax_spatial.train import checkpoint as ckpt_lib
    from jax_spatial.train import trainer

    workdir = pathlib.Path(workdir)
    if not (workdir / "checkpoints").is_dir():
        raise UserError(f"no checkpoints in {workdir} (train first: jax-spatial train)")
    _, meta, _ = ckpt_lib.read_meta(ckpt_lib.manager(workdir), step)
    if not str(meta["model"].get("name", "")).startswith("gemma3"):
        raise UserError(f"{workdir} holds a {meta['model'].get('name')} run, not gemma3")
    model, tokenizer, _, _ = trainer.load_for_inference(workdir, step)
    return export_model(model, tokenizer, out_dir, dtype)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True, help="a gemma3 train --workdir")
    parser.add_argument("--out", required=True, help="folder to write the merged checkpoint to")
    parser.add_argument("--step", type=int, help="checkpoint step (default: the latest)")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), help="default: as trained")
    args = parser.parse_args(argv)
    try:
        path = export_run(args.workdir, args.out, args.step, args.dtype)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    print(json.dumps({"exported": str(path)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["export_model", "export_run", "main", "merged_tensors"]
