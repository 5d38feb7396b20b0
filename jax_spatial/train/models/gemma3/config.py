"""Gemma 3 sizes: the published ones (1b, 4b, 12b, 27b), a tiny random one, and the
Hugging Face `config.json` that describes a checkpoint folder.

    config = preset_config("4b", vocab_size=262144)        # the published 4B VLM
    config = from_hf_config(json.load(open(".../config.json")), vocab_size=...)
    hf = to_hf_config(config)                               # the inverse, for export
    parameter_count(config)                                 # 4_300_079_472 for 4b

The numbers of the published sizes are those of Google's `config.json` files (text decoder
and SigLIP-So400m vision tower, 896 x 896 images, 256 image tokens); 1b is text only (it has
no vision tower: the model reads the question and ignores the image).
"""

from __future__ import annotations

import dataclasses

from jax_spatial.errors import UserError

SLIDING, FULL = "sliding", "full"
FINETUNE_MODES = ("full", "frozen_vision", "lora")
ATTENTION_MODES = ("gemma", "prefix_lm")
# LoRA targets: decoder projections by their Hugging Face names, vision ones with `vision.`.
DECODER_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
VISION_TARGETS = tuple(
    f"vision.{n}" for n in ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")
)
LORA_TARGETS = (*DECODER_TARGETS, *VISION_TARGETS, "projector")


@dataclasses.dataclass(frozen=True)
class VisionConfig:
    """SigLIP vision tower: `image_size`^2 pixels in `patch`^2 patches, a ViT of `depth`."""

    image_size: int = 896
    patch: int = 14
    width: int = 1152
    depth: int = 27
    mlp_dim: int = 4304
    heads: int = 16
    eps: float = 1e-6

    @property
    def grid(self) -> int:
        return self.image_size // self.patch


@dataclasses.dataclass(frozen=True)
class Gemma3Config:
    """Everything `model.Gemma3` is built from.

    Attributes:
      vocab_size: the tokenizer's vocabulary; logits are returned over these ids only.
      num_embed: rows of the (tied) embedding table, >= vocab_size (262208 in the published
        VLMs: 262144 text pieces, the image placeholder and padding).
      width, depth, mlp_dim, heads, kv_heads, head_dim: the decoder.
      query_scale: attention logits are scaled by `query_scale ** -0.5`.
      sliding_window: keys at most this many positions back, in `sliding` layers.
      layer_types: `sliding` or `full` per layer (the published models: 5 sliding, 1 full).
      local_base, global_base: RoPE base frequencies of sliding and full layers.
      global_scale: linear RoPE scaling of full layers (8 for 4b and larger).
      eps: RMSNorm epsilon.
      vision: the SigLIP tower, or None (text only: 1b).
      mm_tokens: image tokens after average pooling (a square number).
      pad_id, eos_id, bos_id, boi_id, eoi_id, image_token_id: token ids (boi/eoi:
        `<start_of_image>`, `<end_of_image>`, which frame the image tokens; image_token_id:
        the placeholder a Hugging Face model replaces by them; this model places the image
        tokens by position and never reads it).
      attention: "gemma" (causal, bidirectional among the image tokens: how Gemma 3 was
        trained) or "prefix_lm" (the project's rule: image and question fully visible).
      dtype: compute dtype; param_dtype: parameter storage ("float32" or "bfloat16").
      remat: recompute each block in the backward pass (activation memory of one layer).
      vision_chunk: images the SigLIP tower encodes at once (0: the whole batch); 1 bounds
        its attention buffers to one image's (about 2 GiB at 896 x 896 in float32).
      finetune: "full", "frozen_vision" (SigLIP fixed, projector and decoder trained) or
        "lora" (only the adapters train; the rest is fixed).
      lora_rank, lora_alpha, lora_targets: the adapters (`LORA_TARGETS` names).
    """

    vocab_size: int
    num_embed: int = 262208
    width: int = 2560
    depth: int = 34
    mlp_dim: int = 10240
    heads: int = 8
    kv_heads: int = 4
    head_dim: int = 256
    query_scale: float = 256.0
    sliding_window: int = 1024
    layer_types: tuple[str, ...] = ()
    local_base: float = 10_000.0
    global_base: float = 1_000_000.0
    global_scale: float = 8.0
    eps: float = 1e-6
    vision: VisionConfig | None = dataclasses.field(default_factory=VisionConfig)
    mm_tokens: int = 256
    pad_id: int = 0
    eos_id: int = 1
    bos_id: int = 2
    boi_id: int = 255_999
    eoi_id: int = 256_000
    image_token_id: int = 262_144
    attention: str = "gemma"
    dtype: str = "float32"
    param_dtype: str = "float32"
    remat: bool = False
    vision_chunk: int = 0
    finetune: str = "full"
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_targets: tuple[str, ...] = DECODER_TARGETS

    def __post_init__(self):
        if not self.layer_types:
            # The published pattern: every sixth layer attends globally.
            pattern = tuple(FULL if (i + 1) % 6 == 0 else SLIDING for i in range(self.depth))
            object.__setattr__(self, "layer_types", pattern)
        checks = [
            (len(self.layer_types) == self.depth, f"{len(self.layer_types)} layer_types for "
             f"{self.depth} layers"),
            (set(self.layer_types) <= {SLIDING, FULL}, f"layer_types {self.layer_types} are "
             f"not {SLIDING!r} or {FULL!r}"),
            (self.vocab_size <= self.num_embed, f"the tokenizer has {self.vocab_size} ids, the "
             f"embedding {self.num_embed} rows (a tokenizer of another model?)"),
            (self.heads % self.kv_heads == 0, f"heads {self.heads} is not a multiple of "
             f"kv_heads {self.kv_heads}"),
            (self.head_dim % 2 == 0, f"head_dim {self.head_dim} is odd (RoPE needs pairs)"),
            (self.attention in ATTENTION_MODES, f"attention {self.attention!r} is not one of "
             f"{', '.join(ATTENTION_MODES)}"),
            (self.finetune in FINETUNE_MODES, f"finetune {self.finetune!r} is not one of "
             f"{', '.join(FINETUNE_MODES)}"),
            (self.dtype in ("float32", "bfloat16"), f"dtype {self.dtype!r} is not float32 or "
             "bfloat16"),
            (self.param_dtype in ("float32", "bfloat16"), f"param_dtype {self.param_dtype!r} "
             "is not float32 or bfloat16"),
            (self.lora_rank >= 1, f"lora_rank {self.lora_rank} is below 1"),
            (self.vision_chunk >= 0, f"vision_chunk {self.vision_chunk} is negative"),
        ]
        for ok, what in checks:
            if not ok:
                raise UserError(f"gemma3 config: {what}")
        unknown = [t for t in self.lora_targets if t not in LORA_TARGETS]
        if unknown:
            raise UserError(
                f"gemma3 lora_targets {unknown} unknown; known: {', '.join(LORA_TARGETS)}"
            )
        if self.vision is not None:
            side = int(round(self.mm_tokens**0.5))
            if side * side != self.mm_tokens or self.vision.grid % side:
                raise UserError(
                    f"gemma3 config: {self.mm_tokens} image tokens do not pool a "
                    f"{self.vision.grid} x {self.vision.grid} patch grid"
                )

    @property
    def image_size(self) -> tuple[int, int]:
        """`(H, W)` the data pipeline letterboxes to (text-only models: a small dummy)."""
        side = self.vision.image_size if self.vision is not None else 16
        return (side, side)

    @property
    def num_image_tokens(self) -> int:
        """Sequence slots the image adds to the text: `<start_of_image>`, the soft tokens,
        `<end_of_image>` (0 for a text-only model). `decode.greedy` counts cache slots by it."""
        return self.mm_tokens + 2 if self.vision is not None else 0


_BIG_VISION = VisionConfig()

PRESETS: dict[str, dict] = {
    "1b": dict(
        num_embed=262144, width=1152, depth=26, mlp_dim=6912, heads=4, kv_heads=1,
        head_dim=256, query_scale=256.0, sliding_window=512, global_scale=1.0, vision=None,
    ),
    "4b": dict(
        num_embed=262208, width=2560, depth=34, mlp_dim=10240, heads=8, kv_heads=4,
        head_dim=256, query_scale=256.0, sliding_window=1024, global_scale=8.0,
        vision=_BIG_VISION,
    ),
    "12b": dict(
        num_embed=262208, width=3840, depth=48, mlp_dim=15360, heads=16, kv_heads=8,
        head_dim=256, query_scale=256.0, sliding_window=1024, global_scale=8.0,
        vision=_BIG_VISION,
    ),
    "27b": dict(
        num_embed=262208, width=5376, depth=62, mlp_dim=21504, heads=32, kv_heads=16,
        head_dim=128, query_scale=168.0, sliding_window=1024, global_scale=8.0,
        vision=_BIG_VISION,
    ),
    # Tests and CPU runs: every code path (GQA, a sliding and a full layer, a window shorter
    # than the sequence, pooled image tokens) at a size that compiles in seconds. Its token
    # ids are those of `tokenizer.train_tiny` (the specials right after <unk>).
    "tiny": dict(
        num_embed=512, width=32, depth=2, mlp_dim=64, heads=4, kv_heads=2, head_dim=8,
        query_scale=8.0, sliding_window=8, layer_types=(SLIDING, FULL), global_scale=8.0,
        vision=VisionConfig(image_size=32, patch=8, width=16, depth=1, mlp_dim=32, heads=2),
        mm_tokens=4, boi_id=4, eoi_id=5, image_token_id=6,
    ),
}
SIZES = ("1b", "4b", "12b", "27b")


def preset_config(preset: str, vocab_size: int, **fields) -> Gemma3Config:
    if preset not in PRESETS:
        raise UserError(
            f"gemma3 preset {preset!r} is not a Gemma 3 size; known: auto, {', '.join(PRESETS)}"
        )
    return Gemma3Config(vocab_size=vocab_size, **{**PRESETS[preset], **fields})


# transformers' defaults (`Gemma3TextConfig`, `SiglipVisionConfig`): the published files list
# only what differs from them (google/gemma-3-4b-it's text_config names 6 fields).
HF_TEXT_DEFAULTS = {
    "vocab_size": 262_208, "hidden_size": 2304, "intermediate_size": 9216,
    "num_hidden_layers": 26, "num_attention_heads": 8, "num_key_value_heads": 4,
    "head_dim": 256, "query_pre_attn_scalar": 256, "sliding_window": 4096,
    "rms_norm_eps": 1e-6, "pad_token_id": 0, "eos_token_id": 1, "bos_token_id": 2,
}
HF_VISION_DEFAULTS = {
    "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
    "num_attention_heads": 12, "image_size": 224, "patch_size": 16, "layer_norm_eps": 1e-6,
}


def from_hf_config(hf: dict, vocab_size: int, where: str = "config.json", **fields) -> Gemma3Config:
    """A `Gemma3Config` from a Hugging Face `config.json` (`Gemma3ForConditionalGeneration`
    or the text-only `Gemma3ForCausalLM`), transformers' defaults for what it leaves out;
    `UserError` naming the field that does not fit."""
    if not isinstance(hf, dict) or not isinstance(hf.get("text_config", hf), dict):
        raise UserError(f"{where}: not a Gemma 3 config")
    model_type = hf.get("model_type", "")
    text = {**HF_TEXT_DEFAULTS, **hf.get("text_config", hf)}
    if model_type not in ("gemma3", "gemma3_text"):
        raise UserError(f"{where}: model_type is {model_type!r}, not gemma3 or gemma3_text")
    for name in ("final_logit_softcapping", "attn_logit_softcapping"):
        if text.get(name) is not None:
            raise UserError(f"{where}: {name}={text[name]} is not supported (Gemma 3 has none)")
    if text.get("use_bidirectional_attention"):
        raise UserError(f"{where}: use_bidirectional_attention is not supported")
    try:
        rope = _rope(text)
        types = text.get("layer_types")
        depth = int(text["num_hidden_layers"])
        if types:
            layer_types = tuple(SLIDING if t == "sliding_attention" else FULL for t in types)
        else:  # 4.x files: every `sliding_window_pattern`-th layer is global
            every = int(text.get("sliding_window_pattern", 6))
            layer_types = tuple(FULL if (i + 1) % every == 0 else SLIDING for i in range(depth))
        vision = None
        if hf.get("vision_config") is not None:
            v = {**HF_VISION_DEFAULTS, **hf["vision_config"]}
            vision = VisionConfig(
                image_size=int(v["image_size"]),
                patch=int(v["patch_size"]),
                width=int(v["hidden_size"]),
                depth=int(v["num_hidden_layers"]),
                mlp_dim=int(v["intermediate_size"]),
                heads=int(v["num_attention_heads"]),
                eps=float(v.get("layer_norm_eps", 1e-6)),
            )
        out = dict(
            num_embed=int(text["vocab_size"]),
            width=int(text["hidden_size"]),
            depth=depth,
            mlp_dim=int(text["intermediate_size"]),
            heads=int(text["num_attention_heads"]),
            kv_heads=int(text["num_key_value_heads"]),
            head_dim=int(text["head_dim"]),
            query_scale=float(text["query_pre_attn_scalar"]),
            sliding_window=int(text["sliding_window"]),
            layer_types=layer_types,
            eps=float(text.get("rms_norm_eps", 1e-6)),
            vision=vision,
            mm_tokens=int(hf.get("mm_tokens_per_image", 256)),
            pad_id=int(text.get("pad_token_id", 0)),
            eos_id=_first(text.get("eos_token_id", hf.get("eos_token_id", 1))),
            bos_id=int(text.get("bos_token_id", 2)),
            boi_id=int(hf.get("boi_token_index", 255_999)),
            eoi_id=int(hf.get("eoi_token_index", 256_000)),
            image_token_id=int(hf.get("image_token_index", 262_144)),
            **rope,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise UserError(f"{where}: missing or bad field {error}") from error
    return Gemma3Config(vocab_size=vocab_size, **{**out, **fields})


def _first(value) -> int:
    return int(value[0] if isinstance(value, list | tuple) else value)


def _rope(text: dict) -> dict:
    """RoPE bases and the linear scaling, from either `rope_parameters` (transformers 5) or
    `rope_theta` / `rope_local_base_freq` / `rope_scaling` (the published 4.x files)."""
    params = text.get("rope_parameters")
    if params and "full_attention" in params:
        full, local = params["full_attention"], params.get("sliding_attention", {})
        scaling = full
    else:
        full = {"rope_theta": text.get("rope_theta", 1_000_000.0)}
        local = {"rope_theta": text.get("rope_local_base_freq", 10_000.0)}
        scaling = text.get("rope_scaling") or {}
    kind = scaling.get("rope_type", scaling.get("type", "default"))
    if kind not in ("default", "linear"):
        raise ValueError(f"rope_type {kind!r} (only default and linear)")
    if local.get("rope_type", "default") != "default":
        raise ValueError(f"sliding rope_type {local['rope_type']!r}")
    return dict(
        global_base=float(full.get("rope_theta", 1_000_000.0)),
        local_base=float(local.get("rope_theta", 10_000.0)),
        global_scale=float(scaling.get("factor", 1.0)) if kind == "linear" else 1.0,
    )


def to_hf_config(config: Gemma3Config) -> dict:
    """The Hugging Face `config.json` of `config` (what `export` writes beside the weights)."""
    text = {
        "model_type": "gemma3_text",
        "vocab_size": config.num_embed,
        "hidden_size": config.width,
        "intermediate_size": config.mlp_dim,
        "num_hidden_layers": config.depth,
        "num_attention_heads": config.heads,
        "num_key_value_heads": config.kv_heads,
        "head_dim": config.head_dim,
        "query_pre_attn_scalar": (
            int(config.query_scale) if config.query_scale == int(config.query_scale)
            else config.query_scale
        ),
        "sliding_window": config.sliding_window,
        "layer_types": [
            "sliding_attention" if t == SLIDING else "full_attention" for t in config.layer_types
        ],
        "rms_norm_eps": config.eps,
        "hidden_activation": "gelu_pytorch_tanh",
        "rope_theta": config.global_base,
        "rope_local_base_freq": config.local_base,
        "rope_scaling": (
            {"rope_type": "linear", "factor": config.global_scale}
            if config.global_scale != 1.0
            else None
        ),
        "final_logit_softcapping": None,
        "attn_logit_softcapping": None,
        "pad_token_id": config.pad_id,
        "eos_token_id": config.eos_id,
        "bos_token_id": config.bos_id,
        "max_position_embeddings": 131072,
        "tie_word_embeddings": True,
    }
    if config.vision is None:
        return {**text, "architectures": ["Gemma3ForCausalLM"], "torch_dtype": config.param_dtype}
    v = config.vision
    return {
        "architectures": ["Gemma3ForConditionalGeneration"],
        "model_type": "gemma3",
        "text_config": text,
        "vision_config": {
            "model_type": "siglip_vision_model",
            "image_size": v.image_size,
            "patch_size": v.patch,
            "hidden_size": v.width,
            "num_hidden_layers": v.depth,
            "intermediate_size": v.mlp_dim,
            "num_attention_heads": v.heads,
            "layer_norm_eps": v.eps,
            "hidden_act": "gelu_pytorch_tanh",
            "vision_use_head": False,
        },
        "mm_tokens_per_image": config.mm_tokens,
        "boi_token_index": config.boi_id,
        "eoi_token_index": config.eoi_id,
        "image_token_index": config.image_token_id,
        "tie_word_embeddings": True,
        "torch_dtype": config.param_dtype,
    }


def parameter_count(config: Gemma3Config) -> dict[str, int]:
    """Parameters by part (`embed`, `decoder`, `vision`, `projector`, `lora`) and `total`,
    counted from the shapes `model.Gemma3` creates (the tied output embedding counted once)."""
    d, h = config.width, config.head_dim
    q, kv = config.heads * h, config.kv_heads * h
    per_layer = d * q + 2 * d * kv + q * d + 3 * d * config.mlp_dim + 4 * d + 2 * h
    out = {"embed": config.num_embed * d, "decoder": config.depth * per_layer + d}
    out["vision"] = out["projector"] = 0
    if config.vision is not None:
        v = config.vision
        w = v.width
        block = 4 * (w * w + w) + 2 * w * v.mlp_dim + v.mlp_dim + w + 4 * w
        out["vision"] = (
            v.patch * v.patch * 3 * w + w + v.grid**2 * w + v.depth * block + 2 * w
        )
        out["projector"] = w * d + w
    out["lora"] = lora_parameter_count(config) if config.finetune == "lora" else 0
    out["total"] = sum(out.values())
    return out


def lora_shapes(config: Gemma3Config) -> dict[str, tuple[int, int, int]]:
    """`target -> (din, dout, count)` of every projection a LoRA target names."""
    d, h = config.width, config.head_dim
    q, kv = config.heads * h, config.kv_heads * h
    n = config.depth
    shapes = {
        "q_proj": (d, q, n), "k_proj": (d, kv, n), "v_proj": (d, kv, n), "o_proj": (q, d, n),
        "gate_proj": (d, config.mlp_dim, n), "up_proj": (d, config.mlp_dim, n),
        "down_proj": (config.mlp_dim, d, n),
    }
    if config.vision is not None:
        v = config.vision
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            shapes[f"vision.{name}"] = (v.width, v.width, v.depth)
        shapes["vision.fc1"] = (v.width, v.mlp_dim, v.depth)
        shapes["vision.fc2"] = (v.mlp_dim, v.width, v.depth)
        shapes["projector"] = (v.width, d, 1)
    return shapes


def lora_parameter_count(config: Gemma3Config) -> int:
    shapes = lora_shapes(config)
    r = config.lora_rank
    return sum(
        (din + dout) * r * count
        for name, (din, dout, count) in shapes.items()
        if name in config.lora_targets
    )


__all__ = [
    "ATTENTION_MODES",
    "FINETUNE_MODES",
    "LORA_TARGETS",
    "PRESETS",
    "SIZES",
    "Gemma3Config",
    "VisionConfig",
    "from_hf_config",
    "lora_parameter_count",
    "parameter_count",
    "preset_config",
    "to_hf_config",
]
