"""Pretrained Gemma 3 weights from a local folder: Hugging Face safetensors or Kaggle's orbax.

    folder = open_folder("/ckpt/gemma-3-4b-it")     # layout, files, config.json
    config = folder_config(folder, "auto", vocab_size=262144)
    load(model, folder)                             # every base parameter, shapes checked

Layouts (nothing is downloaded; the user passes the folder):

- Hugging Face: `config.json`, `model.safetensors` or shards (`model-0000x-of-0000n`, with
  or without `model.safetensors.index.json`), `tokenizer.model`. Key prefixes of every
  transformers version are read (`language_model.model.`, `model.language_model.`,
  `vision_tower.vision_model.`, the text-only `model.`); Linear weights `[out, in]` are
  transposed into this model's `[in, out]` kernels.
- Kaggle / the `gemma` library: an orbax checkpoint (the folder itself or its one
  subfolder holding `_METADATA`) with `transformer/layer_N/attn/q_einsum` style names, and
  `tokenizer.model` beside it. It has no `config.json`, so the size comes from the preset.

Every problem is one `UserError` line naming the folder or file and what is wrong: no
weights, a missing or unexpected tensor, a shape that is not this model's.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import re

import numpy as np
from flax import nnx

from jax_spatial.errors import UserError
from jax_spatial.train.models.gemma3 import config as config_lib

_ORBAX_MARKERS = ("_METADATA", "manifest.ocdbt", "_CHECKPOINT_METADATA")
# Structural fields a preset and a config.json must agree on.
_STRUCTURE = ("width", "depth", "mlp_dim", "heads", "kv_heads", "head_dim")


@dataclasses.dataclass(frozen=True)
class Folder:
    path: pathlib.Path
    layout: str  # "hf" or "orbax"
    files: tuple[pathlib.Path, ...]  # safetensors files, or the orbax checkpoint folder
    hf_config: dict | None


def open_folder(path) -> Folder:
    """The layout of a checkpoint folder; `UserError` if it holds no Gemma 3 weights."""
    folder = pathlib.Path(path).expanduser()
    if not folder.is_dir():
        raise UserError(f"checkpoint folder {folder} not found")
    shards = tuple(sorted(folder.glob("*.safetensors")))
    if shards:
        config_path = folder / "config.json"
        try:
            hf = json.loads(config_path.read_text())
        except FileNotFoundError:
            raise UserError(f"checkpoint folder {folder} has safetensors, no config.json") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise UserError(f"{config_path}: not JSON ({error})") from error
        _check_index(folder, shards)
        return Folder(folder, "hf", shards, hf)
    for candidate in (folder, *sorted(p for p in folder.iterdir() if p.is_dir())):
        if any((candidate / m).exists() for m in _ORBAX_MARKERS):
            return Folder(folder, "orbax", (candidate,), None)
    raise UserError(
        f"checkpoint folder {folder} holds no Gemma 3 weights (expected *.safetensors with "
        "config.json, or a Kaggle orbax checkpoint)"
    )


def _check_index(folder: pathlib.Path, shards) -> None:
    index = folder / "model.safetensors.index.json"
    if not index.exists():
        return
    try:
        wanted = set(json.loads(index.read_text())["weight_map"].values())
    except (json.JSONDecodeError, KeyError, AttributeError, TypeError) as error:
        raise UserError(f"{index}: not a safetensors index ({error})") from error
    missing = sorted(wanted - {p.name for p in shards})
    if missing:
        raise UserError(f"checkpoint folder {folder} lacks {missing[0]} (named in {index.name})")


def folder_config(folder: Folder, preset: str, vocab_size: int, **fields):
    """The `Gemma3Config` of the folder's weights (its config.json, checked against `preset`
    unless that is "auto"; Kaggle's layout: the preset)."""
    if folder.layout == "hf":
        where = str(folder.path / "config.json")
        config = config_lib.from_hf_config(folder.hf_config, vocab_size, where, **fields)
        if preset not in ("auto", "") and preset in config_lib.PRESETS:
            expect = config_lib.preset_config(preset, vocab_size, **fields)
            for name in _STRUCTURE:
                if getattr(config, name) != getattr(expect, name):
                    raise UserError(
                        f"{where}: {name} is {getattr(config, name)}, the {preset} preset has "
                        f"{getattr(expect, name)} (use preset=auto or the folder's size)"
                    )
            if (config.vision is None) != (expect.vision is None):
                raise UserError(f"{where}: vision tower presence differs from the {preset} preset")
        elif preset not in ("auto", ""):
            config_lib.preset_config(preset, vocab_size)  # raises: names the known presets
        return config
    if preset in ("auto", ""):
        raise UserError(
            f"checkpoint folder {folder.path} is a Kaggle orbax checkpoint without config.json: "
            f"name its size (preset={'|'.join(config_lib.SIZES)})"
        )
    return config_lib.preset_config(preset, vocab_size, **fields)


# -- Hugging Face names ----------------------------------------------------------------------

_PREFIXES = (
    (re.compile(r"^(?:model\.)?language_model\.(?:model\.)?"), "text."),
    (re.compile(r"^(?:model\.)?vision_tower\.(?:vision_model\.)?"), "vision."),
    (re.compile(r"^(?:model\.)?multi_modal_projector\."), "projector."),
    (re.compile(r"^lm_head\."), "lm_head."),
    (re.compile(r"^model\."), "text."),
    (re.compile(r"^(?=(?:embed_tokens|layers|norm)\.)"), "text."),
)
_IGNORED = re.compile(r"^lm_head\.|^vision\.head\.|rotary_emb")


def canonical(key: str) -> str:
    """A safetensors key of any transformers version -> `text.`/`vision.`/`projector.` name."""
    for pattern, part in _PREFIXES:
        if pattern.match(key):
            return pattern.sub(part, key, count=1)
    return key


def hf_prefix(part: str, text_only: bool) -> str:
    """The prefix `export` writes for a canonical part (the published checkpoints' layout)."""
    if part == "text":
        return "model." if text_only else "language_model.model."
    return {"vision": "vision_tower.vision_model.", "projector": "multi_modal_projector."}[part]


def hf_entries(config) -> list[tuple[str, tuple, str]]:
    """`(canonical key, model path, transform)` of every base parameter. Transforms: `id`;
    `T` (Linear `[out, in]` <-> kernel `[in, out]`); `conv` (`[o, c, p, p]` <-> `[p, p, c, o]`);
    `embed` (rows may be fewer than the model's: zero-padded)."""
    out = [
        ("text.embed_tokens.weight", ("embed",), "embed"),
        ("text.norm.weight", ("final_norm", "scale"), "id"),
    ]
    norms = {
        "input_layernorm": "pre_attention_norm",
        "post_attention_layernorm": "post_attention_norm",
        "pre_feedforward_layernorm": "pre_ffw_norm",
        "post_feedforward_layernorm": "post_ffw_norm",
    }
    for i in range(config.depth):
        pre, at = f"text.layers.{i}.", ("layers", i)
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            out.append((f"{pre}self_attn.{name}.weight", (*at, "attn", name, "kernel"), "T"))
        for name in ("q_norm", "k_norm"):
            out.append((f"{pre}self_attn.{name}.weight", (*at, "attn", name, "scale"), "id"))
        for name in ("gate_proj", "up_proj", "down_proj"):
            out.append((f"{pre}mlp.{name}.weight", (*at, "mlp", name, "kernel"), "T"))
        for hf, mine in norms.items():
            out.append((f"{pre}{hf}.weight", (*at, mine, "scale"), "id"))
    if config.vision is None:
        return out
    out += [
        ("vision.embeddings.patch_embedding.weight", ("vision", "patch_kernel"), "conv"),
        ("vision.embeddings.patch_embedding.bias", ("vision", "patch_bias"), "id"),
        ("vision.embeddings.position_embedding.weight", ("vision", "pos_embed"), "id"),
        ("vision.post_layernorm.weight", ("vision", "post_norm", "scale"), "id"),
        ("vision.post_layernorm.bias", ("vision", "post_norm", "bias"), "id"),
        ("projector.mm_input_projection_weight", ("projector", "proj", "kernel"), "id"),
        ("projector.mm_soft_emb_norm.weight", ("projector", "norm", "scale"), "id"),
    ]
    for i in range(config.vision.depth):
        pre, at = f"vision.encoder.layers.{i}.", ("vision", "blocks", i)
        for hf, mine in (("layer_norm1", "ln1"), ("layer_norm2", "ln2")):
            out.append((f"{pre}{hf}.weight", (*at, mine, "scale"), "id"))
            out.append((f"{pre}{hf}.bias", (*at, mine, "bias"), "id"))
        for hf, mine in (
            ("self_attn.q_proj", "q_proj"), ("self_attn.k_proj", "k_proj"),
            ("self_attn.v_proj", "v_proj"), ("self_attn.out_proj", "out_proj"),
            ("mlp.fc1", "fc1"), ("mlp.fc2", "fc2"),
        ):
            out.append((f"{pre}{hf}.weight", (*at, mine, "kernel"), "T"))
            out.append((f"{pre}{hf}.bias", (*at, mine, "bias"), "id"))
    return out


def to_model_layout(array: np.ndarray, transform: str) -> np.ndarray:
    if transform == "T":
        return array.T
    if transform == "conv":
        return array.transpose(2, 3, 1, 0)
    return array


def to_hf_layout(array: np.ndarray, transform: str) -> np.ndarray:
    if transform == "T":
        return array.T
    if transform == "conv":
        return array.transpose(3, 2, 0, 1)
    return array


Found = dict[tuple, tuple[np.ndarray, str, str]]  # model path -> (array, where, transform)


def _read_hf(folder: Folder, config) -> Found:
    from safetensors import SafetensorError, safe_open

    table = {key: (path, transform) for key, path, transform in hf_entries(config)}
    found: Found = {}
    unexpected = []
    for file in folder.files:
        try:
            handle = safe_open(str(file), framework="np")
        except (SafetensorError, OSError) as error:
            raise UserError(f"{file}: not a safetensors file ({error})") from error
        with handle as f:
            for key in f.keys():  # noqa: SIM118 - safe_open is not a mapping
                name = canonical(key)
                if _IGNORED.search(name):
                    continue
                if name not in table:
                    unexpected.append(key)
                    continue
                path, transform = table.pop(name)
                try:
                    array = f.get_tensor(key)
                except (SafetensorError, OSError, ValueError) as error:
                    raise UserError(f"{file}: cannot read {key} ({error})") from error
                found[path] = (to_model_layout(array, transform), f"{file.name}: {key}", transform)
    if unexpected:
        raise UserError(
            f"checkpoint folder {folder.path} has {len(unexpected)} tensor(s) this Gemma 3 "
            f"model does not have, e.g. {unexpected[0]} (another architecture?)"
        )
    if table:
        missing = sorted(table)
        raise UserError(
            f"checkpoint folder {folder.path} lacks {len(missing)} tensor(s), e.g. "
            f"{missing[0]} (a partial download?)"
        )
    return found


# -- Kaggle / gemma library (orbax) names ----------------------------------------------------

_LAYER = re.compile(r"layer_(\d+)/(.+)$")
_BLOCK = re.compile(r"siglip_encoder/Transformer/encoderblock_(\d+)/(.+)$")
_MHA = {"query": "q_proj", "key": "k_proj", "value": "v_proj", "out": "out_proj"}
_FIXED = {
    "embedder/input_embedding": [(("embed",), "embed")],
    "embedder/mm_input_projection/w": [(("projector", "proj", "kernel"), "id")],
    "embedder/mm_soft_embedding_norm/scale": [(("projector", "norm", "scale"), "id")],
    "final_norm/scale": [(("final_norm", "scale"), "id")],
    "siglip_encoder/embedding/kernel": [(("vision", "patch_kernel"), "id")],
    "siglip_encoder/embedding/bias": [(("vision", "patch_bias"), "id")],
    "siglip_encoder/pos_embedding": [(("vision", "pos_embed"), "squeeze0")],
    "siglip_encoder/Transformer/encoder_norm/scale": [(("vision", "post_norm", "scale"), "id")],
    "siglip_encoder/Transformer/encoder_norm/bias": [(("vision", "post_norm", "bias"), "id")],
}
_LAYER_NORMS = ("pre_attention_norm", "post_attention_norm", "pre_ffw_norm", "post_ffw_norm")


def _orbax_targets(name: str) -> list[tuple[tuple, str]] | None:
    """`[(model path, transform)]` of a gemma-library parameter name (None: not Gemma 3's).

    The library's layouts: q_einsum `[N, D, H]`, kv_einsum `[2, K, D, H]` (qkv_einsum
    `[3, N, D, H]` when N == K), attn_vec_einsum `[N, H, D]`, gating_einsum `[2, F, D]`
    (gate, up), linear `[F, D]`; SigLIP's attention kernels `[D, N, H]` / `[N, H, D]`."""
    if name in _FIXED:
        return _FIXED[name]
    if m := _LAYER.match(name):
        at, rest = ("layers", int(m[1])), m[2]
        attn = (*at, "attn")
        if rest == "attn/q_einsum/w":
            return [((*attn, "q_proj", "kernel"), "ndh")]
        if rest == "attn/kv_einsum/w":
            return [((*attn, "k_proj", "kernel"), "ndh0"), ((*attn, "v_proj", "kernel"), "ndh1")]
        if rest == "attn/qkv_einsum/w":
            names = ("q_proj", "k_proj", "v_proj")
            return [((*attn, n, "kernel"), f"ndh{j}") for j, n in enumerate(names)]
        if rest == "attn/attn_vec_einsum/w":
            return [((*attn, "o_proj", "kernel"), "flat_in")]
        if rest in ("attn/_query_norm/scale", "attn/_key_norm/scale"):
            return [((*attn, "q_norm" if "query" in rest else "k_norm", "scale"), "id")]
        if rest == "mlp/gating_einsum/w":
            mlp = (*at, "mlp")
            return [((*mlp, "gate_proj", "kernel"), "T0"), ((*mlp, "up_proj", "kernel"), "T1")]
        if rest == "mlp/linear/w":
            return [((*at, "mlp", "down_proj", "kernel"), "id")]
        norm, _, param = rest.partition("/")
        if norm in _LAYER_NORMS and param == "scale":
            return [((*at, norm, "scale"), "id")]
        return None
    if m := _BLOCK.match(name):
        at, rest = ("vision", "blocks", int(m[1])), m[2].split("/")
        if len(rest) == 2 and rest[0] in ("LayerNorm_0", "LayerNorm_1"):
            return [((*at, f"ln{int(rest[0][-1]) + 1}", rest[1]), "id")]
        if len(rest) == 3 and rest[:2] in (["MlpBlock_0", "Dense_0"], ["MlpBlock_0", "Dense_1"]):
            return [((*at, f"fc{int(rest[1][-1]) + 1}", rest[2]), "id")]
        if len(rest) == 3 and rest[0] == "MultiHeadDotProductAttention_0" and rest[1] in _MHA:
            kind = "flat_out" if rest[1] == "out" else "flat"
            if rest[1] == "out" and rest[2] == "bias":
                kind = "id"
            return [((*at, _MHA[rest[1]], rest[2]), kind)]
    return None


def _orbax_transform(array: np.ndarray, transform: str) -> np.ndarray:
    if transform.startswith("ndh"):  # [(C,) N, D, H] -> [D, N * H]
        if len(transform) > 3:
            array = array[int(transform[3])]
        n, d, h = array.shape
        return array.transpose(1, 0, 2).reshape(d, n * h)
    if transform == "flat_in":  # [N, H, D] -> [N * H, D]
        return array.reshape(-1, array.shape[-1])
    if transform == "flat":  # MHA q/k/v kernel [D, N, H] -> [D, N * H], bias [N, H] -> [N * H]
        return array.reshape(array.shape[0], -1) if array.ndim == 3 else array.reshape(-1)
    if transform == "flat_out":  # MHA out kernel [N, H, D] -> [N * H, D]
        return array.reshape(-1, array.shape[-1])
    if transform in ("T0", "T1"):  # gating [2, F, D] -> [D, F]
        return array[int(transform[1])].T
    if transform == "squeeze0":
        return array.reshape(array.shape[-2:])
    return array


def _flatten(tree, prefix=()) -> dict[str, object]:
    out = {}
    for key, value in tree.items():
        parts = (*prefix, *str(key).split("/"))
        if isinstance(value, dict):
            out.update(_flatten(value, parts))
        else:
            out["/".join(parts)] = value
    return out


def _orbax_name(key: str) -> str:
    parts = key.split("/")
    # Drop the wrappers: `params/`, `transformer/`, `SigLiPFromPatches_0/`.
    while parts and (parts[0] in ("params", "transformer") or parts[0].startswith("SigLiP")):
        parts = parts[1:]
    return "/".join(parts)


def _read_orbax(folder: Folder, config) -> Found:
    import jax
    import orbax.checkpoint as ocp

    path = folder.files[0]
    checkpointer = ocp.PyTreeCheckpointer()
    try:
        meta = checkpointer.metadata(path)
        tree = getattr(getattr(meta, "item_metadata", meta), "tree", None)
        if tree is None:
            tree = meta.item_metadata
        restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), dict(tree))
        params = checkpointer.restore(path, restore_args=restore_args)
    except Exception as error:  # noqa: BLE001 - orbax raises many kinds for a broken folder
        first = str(error).splitlines()[0] if str(error) else ""
        raise UserError(
            f"{path}: not a readable orbax checkpoint ({type(error).__name__}: {first[:200]})"
        ) from error
    wanted = {path for _, path, _ in hf_entries(config)}
    found = {}
    for key, array in _flatten(params).items():
        targets = _orbax_targets(_orbax_name(key))
        if targets is None:
            raise UserError(f"{path}: tensor {key} is not a Gemma 3 parameter (another model?)")
        for target, transform in targets:
            if target not in wanted:
                raise UserError(f"{path}: tensor {key} does not fit this model's size")
            found[target] = (_orbax_transform(np.asarray(array), transform), key, transform)
    missing = sorted(wanted - set(found), key=str)
    if missing:
        raise UserError(
            f"{path} lacks {len(missing)} tensor(s), e.g. the one for "
            f"{'.'.join(map(str, missing[0]))}"
        )
    return found


# -- filling a model -------------------------------------------------------------------------


def load(model, folder: Folder) -> None:
    """Sets every base parameter of `model` (built abstractly, e.g. `nnx.eval_shape`) from
    `folder`, cast to the model's parameter dtype; LoRA adapters are left as they are."""
    config = model.config
    found = _read_hf(folder, config) if folder.layout == "hf" else _read_orbax(folder, config)
    state = nnx.state(model, nnx.All(nnx.Param, nnx.Not(nnx.LoRAParam)))
    pure = nnx.to_pure_dict(state)
    for path, (array, where, transform) in found.items():
        node = pure
        for part in path[:-1]:
            node = node[part]
        want = node[path[-1]]
        shape, dtype = tuple(want.shape), want.dtype
        if transform == "embed" and array.ndim == 2 and array.shape[1] == shape[1]:
            if array.shape[0] < shape[0]:  # rows past the tokenizer's ids are never read
                array = np.concatenate(
                    [array, np.zeros((shape[0] - array.shape[0], shape[1]), array.dtype)]
                )
        if tuple(array.shape) != shape:
            raise UserError(
                f"{folder.path}: {where} has shape {tuple(to_hf_layout(array, transform).shape)}"
                f", this model expects {tuple(to_hf_layout(np.empty(shape), transform).shape)}"
            )
        node[path[-1]] = np.asarray(array, dtype=dtype)
    nnx.replace_by_pure_dict(state, pure)
    nnx.update(model, state)


__all__ = ["Folder", "canonical", "folder_config", "hf_entries", "load", "open_folder"]
