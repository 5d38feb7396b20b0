"""Gemma 3 with its SigLIP vision tower in Flax NNX, behind the project's model interface.

    image [B, H, W, 3] uint8 -> SigLIP ViT -> avg-pool to M tokens -> RMSNorm -> project
    [<bos>, <start_of_image>, M image tokens, <end_of_image>, text[1:]] -> Gemma 3 decoder
    -> logits [B, L, V] at the L text positions (tied embedding, V = the tokenizer's ids)

The sequence is the one Google's processor builds (`<bos>` first, then the framed image, then
the question), so a pretrained checkpoint sees what it was trained on. Attention follows
`config.attention`:

- "gemma" (default): causal, with the image's soft tokens attending to each other in both
  directions, exactly as Gemma 3 was pretrained (Hugging Face's `token_type_ids` mask). The
  answer-only loss does not need a bidirectional prefix; `mask_ar` is not read.
- "prefix_lm": the project's big_vision rule (`batch.attention_mask`): image and question
  are one fully visible prefix, the answer is causal. The cumulative-sum form covers both:
  in "gemma" mode every token opens its own block except the soft tokens after the first.

Sliding layers additionally drop keys `sliding_window` or more positions back (positions,
not cache slots, so padding between a prefix and its generated tokens never shortens the
window). Decoding: `prefill` runs the prefix once and returns a key/value cache with a fixed
number of slots; `decode_step` adds one token per row (the `tiny_vlm` contract).

Parameters carry NNX partitioning metadata over two mesh axes: `fsdp` on the model width and
`model` (tensor parallelism) on heads, MLP width and vocabulary, Megatron style
(column-parallel q/k/v/gate/up, row-parallel o/down), so `train.sharding` places them from
the metadata. Layouts are `[in, out]` kernels with Hugging Face's names (`q_proj`, ...);
`weights` maps both Hugging Face and Kaggle checkpoints onto them.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from jax_spatial.train.batch import attention_mask
from jax_spatial.train.models.gemma3 import lora as lora_lib
from jax_spatial.train.models.gemma3.config import SLIDING, Gemma3Config

FSDP, MODEL = "fsdp", "model"
_NEG = jnp.finfo(jnp.float32).min


def _normal(rngs, shape, dtype, std=0.02):
    return nnx.initializers.normal(std)(rngs.params(), shape, dtype)


class RMSNorm(nnx.Module):
    """Gemma's RMSNorm: `x / rms(x) * (1 + scale)`, computed in float32."""

    def __init__(self, dim: int, eps: float, param_dtype):
        self.scale = nnx.Param(jnp.zeros((dim,), param_dtype))
        self.eps = eps

    def __call__(self, x):
        x32 = x.astype(jnp.float32)
        y = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
        return (y * (1.0 + self.scale[...].astype(jnp.float32))).astype(x.dtype)


class Dense(nnx.Module):
    """`y = x @ kernel (+ bias) (+ scale * (x @ lora_a) @ lora_b)`; kernel `[din, dout]`.

    `spec` names the mesh axes of `(din, dout)`. With `lora`, `lora_a [din, r]` (random) and
    `lora_b [r, dout]` (zero, so a fresh adapter changes nothing) are `nnx.LoRAParam`s, kept in
    float32 whatever the kernel's dtype; `scale = alpha / r`. `Gemma3` draws the adapters'
    values after every base parameter (`lora.init_adapters`), so a seed gives the same base
    weights with or without adapters.
    """

    def __init__(self, din, dout, *, spec, config: Gemma3Config, rngs, bias=False, lora=False):
        pdtype = jnp.dtype(config.param_dtype)
        self.dtype = jnp.dtype(config.dtype)
        self.kernel = nnx.Param(_normal(rngs, (din, dout), pdtype), out_sharding=spec)
        self.bias = (
            nnx.Param(jnp.zeros((dout,), pdtype), out_sharding=(spec[1],)) if bias else None
        )
        if lora:
            r = config.lora_rank
            self.lora_a = nnx.LoRAParam(
                jnp.zeros((din, r), jnp.float32), out_sharding=(spec[0], None)
            )
            self.lora_b = nnx.LoRAParam(
                jnp.zeros((r, dout), jnp.float32), out_sharding=(None, spec[1])
            )
            self.lora_scale = float(config.lora_alpha) / r
        else:
            self.lora_a = self.lora_b = None
            self.lora_scale = 0.0

    def __call__(self, x):
        x = x.astype(self.dtype)
        y = x @ self.kernel[...].astype(self.dtype)
        if self.bias is not None:
            y = y + self.bias[...].astype(self.dtype)
        if self.lora_a is not None:
            low = x @ self.lora_a[...].astype(self.dtype)
            y = y + (low @ self.lora_b[...].astype(self.dtype)) * jnp.asarray(
                self.lora_scale, self.dtype
            )
        return y


def rope(x, positions, base: float, scale: float):
    """Rotary embedding of `x [B, T, N, H]` at `positions [B, T]` (halves, as Hugging Face's
    `rotate_half`); `scale` > 1 is linear position interpolation."""
    h = x.shape[-1]
    inv = 1.0 / (base ** (jnp.arange(0, h, 2, dtype=jnp.float32) / h))
    angle = positions.astype(jnp.float32)[..., None] * (inv / scale)
    sin, cos = jnp.sin(angle)[:, :, None, :], jnp.cos(angle)[:, :, None, :]
    x1, x2 = jnp.split(x.astype(jnp.float32), 2, axis=-1)
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1).astype(x.dtype)


class Attention(nnx.Module):
    """Grouped-query attention with q/k RMSNorm and RoPE; `heads // kv_heads` queries per key."""

    def __init__(self, config: Gemma3Config, layer_type: str, rngs: nnx.Rngs):
        c = config
        d, h = c.width, c.head_dim
        targets = c.lora_targets if c.finetune == "lora" else ()

        def dense(name, din, dout, spec):
            return Dense(din, dout, spec=spec, config=c, rngs=rngs, lora=name in targets)

        self.q_proj = dense("q_proj", d, c.heads * h, (FSDP, MODEL))
        self.k_proj = dense("k_proj", d, c.kv_heads * h, (FSDP, MODEL))
        self.v_proj = dense("v_proj", d, c.kv_heads * h, (FSDP, MODEL))
        self.o_proj = dense("o_proj", c.heads * h, d, (MODEL, FSDP))
        pdtype = jnp.dtype(c.param_dtype)
        self.q_norm = RMSNorm(h, c.eps, pdtype)
        self.k_norm = RMSNorm(h, c.eps, pdtype)
        self.heads, self.kv_heads, self.head_dim = c.heads, c.kv_heads, h
        self.scale = float(c.query_scale) ** -0.5
        sliding = layer_type == SLIDING
        self.base = c.local_base if sliding else c.global_base
        self.rope_scale = 1.0 if sliding else c.global_scale

    def project(self, x, positions):
        """`x [B, T, D]` -> q `[B, T, N, H]`, k and v `[B, T, K, H]` (q, k normed and rotated)."""
        b, t, _ = x.shape
        q = self.q_proj(x).reshape(b, t, self.heads, self.head_dim)
        k = self.k_proj(x).reshape(b, t, self.kv_heads, self.head_dim)
        v = self.v_proj(x).reshape(b, t, self.kv_heads, self.head_dim)
        q = rope(self.q_norm(q), positions, self.base, self.rope_scale)
        k = rope(self.k_norm(k), positions, self.base, self.rope_scale)
        return q, k, v

    def attend(self, q, k, v, mask):
        """q `[B, T, N, H]`, k/v `[B, S, K, H]`, mask `[B, 1, T, S]` bool -> `[B, T, D]`."""
        b, t, n, h = q.shape
        groups = n // self.kv_heads
        q = q.reshape(b, t, self.kv_heads, groups, h)
        scores = jnp.einsum("btkgh,bskh->bkgts", q, k).astype(jnp.float32) * self.scale
        scores = jnp.where(mask[:, :, None], scores, _NEG)
        weights = jax.nn.softmax(scores, axis=-1).astype(v.dtype)
        mixed = jnp.einsum("bkgts,bskh->btkgh", weights, v)
        return self.o_proj(mixed.reshape(b, t, n * h))


class MLP(nnx.Module):
    """Gated GELU (tanh approximation): `down(gelu(gate(x)) * up(x))`."""

    def __init__(self, config: Gemma3Config, rngs: nnx.Rngs):
        c = config
        targets = c.lora_targets if c.finetune == "lora" else ()

        def dense(name, din, dout, spec):
            return Dense(din, dout, spec=spec, config=c, rngs=rngs, lora=name in targets)

        self.gate_proj = dense("gate_proj", c.width, c.mlp_dim, (FSDP, MODEL))
        self.up_proj = dense("up_proj", c.width, c.mlp_dim, (FSDP, MODEL))
        self.down_proj = dense("down_proj", c.mlp_dim, c.width, (MODEL, FSDP))

    def __call__(self, x):
        return self.down_proj(jax.nn.gelu(self.gate_proj(x), approximate=True) * self.up_proj(x))


class DecoderLayer(nnx.Module):
    """Gemma 3 block: norms before and after both attention and MLP, residuals around them."""

    def __init__(self, config: Gemma3Config, layer_type: str, rngs: nnx.Rngs):
        pdtype = jnp.dtype(config.param_dtype)
        d, eps = config.width, config.eps
        self.sliding = layer_type == SLIDING
        self.pre_attention_norm = RMSNorm(d, eps, pdtype)
        self.attn = Attention(config, layer_type, rngs)
        self.post_attention_norm = RMSNorm(d, eps, pdtype)
        self.pre_ffw_norm = RMSNorm(d, eps, pdtype)
        self.mlp = MLP(config, rngs)
        self.post_ffw_norm = RMSNorm(d, eps, pdtype)

    def _finish(self, x, attended):
        x = x + self.post_attention_norm(attended)
        return x + self.post_ffw_norm(self.mlp(self.pre_ffw_norm(x)))

    def __call__(self, x, positions, mask):
        q, k, v = self.attn.project(self.pre_attention_norm(x), positions)
        return self._finish(x, self.attn.attend(q, k, v, mask)), (k, v)

    def step(self, x, positions, cache_k, cache_v, slot, mask):
        """One token per row: writes its k/v at cache `slot`, attends over `mask`'s keys."""
        q, k, v = self.attn.project(self.pre_attention_norm(x), positions)
        cache_k = jax.lax.dynamic_update_slice_in_dim(cache_k, k.astype(cache_k.dtype), slot, 1)
        cache_v = jax.lax.dynamic_update_slice_in_dim(cache_v, v.astype(cache_v.dtype), slot, 1)
        return self._finish(x, self.attn.attend(q, cache_k, cache_v, mask)), cache_k, cache_v


class VisionBlock(nnx.Module):
    """SigLIP encoder block: pre-LayerNorm attention (with biases) and a GELU MLP."""

    def __init__(self, config: Gemma3Config, rngs: nnx.Rngs):
        v = config.vision
        pdtype, dtype = jnp.dtype(config.param_dtype), jnp.dtype(config.dtype)
        targets = config.lora_targets if config.finetune == "lora" else ()

        def dense(name, din, dout, spec):
            return Dense(
                din, dout, spec=spec, config=config, rngs=rngs, bias=True,
                lora=f"vision.{name}" in targets,
            )

        def norm():
            return nnx.LayerNorm(
                v.width, epsilon=v.eps, use_fast_variance=False, dtype=dtype,
                param_dtype=pdtype, rngs=rngs,
            )

        self.ln1 = norm()
        self.q_proj = dense("q_proj", v.width, v.width, (FSDP, MODEL))
        self.k_proj = dense("k_proj", v.width, v.width, (FSDP, MODEL))
        self.v_proj = dense("v_proj", v.width, v.width, (FSDP, MODEL))
        self.out_proj = dense("out_proj", v.width, v.width, (MODEL, FSDP))
        self.ln2 = norm()
        self.fc1 = dense("fc1", v.width, v.mlp_dim, (FSDP, MODEL))
        self.fc2 = dense("fc2", v.mlp_dim, v.width, (MODEL, FSDP))
        self.heads, self.head_dim = v.heads, v.width // v.heads

    def __call__(self, x):
        b, t, w = x.shape
        y = self.ln1(x)
        shape = (b, t, self.heads, self.head_dim)
        q = self.q_proj(y).reshape(shape)
        k = self.k_proj(y).reshape(shape)
        v = self.v_proj(y).reshape(shape)
        scores = jnp.einsum("bqhd,bkhd->bhqk", q, k).astype(jnp.float32)
        weights = jax.nn.softmax(scores * self.head_dim**-0.5, axis=-1).astype(v.dtype)
        x = x + self.out_proj(jnp.einsum("bhqk,bkhd->bqhd", weights, v).reshape(b, t, w))
        return x + self.fc2(jax.nn.gelu(self.fc1(self.ln2(x)), approximate=True))


class VisionTower(nnx.Module):
    """SigLIP ViT: `[B, H, W, 3]` in [-1, 1] -> patch tokens `[B, (H/p) (W/p), width]`."""

    def __init__(self, config: Gemma3Config, rngs: nnx.Rngs):
        v = config.vision
        pdtype = jnp.dtype(config.param_dtype)
        self.patch, self.grid, self.dtype = v.patch, v.grid, jnp.dtype(config.dtype)
        self.patch_kernel = nnx.Param(
            _normal(rngs, (v.patch, v.patch, 3, v.width), pdtype),
            out_sharding=(None, None, None, FSDP),
        )
        self.patch_bias = nnx.Param(jnp.zeros((v.width,), pdtype), out_sharding=(FSDP,))
        self.pos_embed = nnx.Param(
            _normal(rngs, (v.grid * v.grid, v.width), pdtype), out_sharding=(None, FSDP)
        )
        self.blocks = nnx.List([VisionBlock(config, rngs) for _ in range(v.depth)])
        self.post_norm = nnx.LayerNorm(
            v.width, epsilon=v.eps, use_fast_variance=False, dtype=self.dtype,
            param_dtype=pdtype, rngs=rngs,
        )

    def __call__(self, pixels, remat: bool = False):
        b, p, g = pixels.shape[0], self.patch, self.grid
        x = pixels.astype(self.dtype).reshape(b, g, p, g, p, 3)
        x = jnp.einsum("bhpwqc,pqco->bhwo", x, self.patch_kernel[...].astype(self.dtype))
        x = x.reshape(b, g * g, -1) + self.patch_bias[...].astype(self.dtype)
        x = x + self.pos_embed[...].astype(self.dtype)
        for block in self.blocks:
            x = nnx.remat(VisionBlock.__call__)(block, x) if remat else block(x)
        return self.post_norm(x)


class Projector(nnx.Module):
    """Patch tokens -> average-pooled to `mm_tokens` -> RMSNorm -> linear to the decoder width."""

    def __init__(self, config: Gemma3Config, rngs: nnx.Rngs):
        v = config.vision
        self.norm = RMSNorm(v.width, v.eps, jnp.dtype(config.param_dtype))
        self.proj = Dense(
            v.width, config.width, spec=(FSDP, MODEL), config=config, rngs=rngs,
            lora=config.finetune == "lora" and "projector" in config.lora_targets,
        )
        self.grid, self.side = v.grid, int(round(config.mm_tokens**0.5))

    def __call__(self, tokens):
        b, _, w = tokens.shape
        k = self.grid // self.side
        x = tokens.reshape(b, self.side, k, self.side, k, w).mean(axis=(2, 4))
        return self.proj(self.norm(x.reshape(b, self.side * self.side, w)))


class Gemma3(nnx.Module):
    """`logits = model(image, text, mask_ar, mask_input)`, `prefill`, `decode_step`."""

    def __init__(self, config: Gemma3Config, *, rngs: nnx.Rngs):
        c = config
        self.config = c
        self.embed = nnx.Param(
            _normal(rngs, (c.num_embed, c.width), jnp.dtype(c.param_dtype)),
            out_sharding=(MODEL, FSDP),
        )
        if c.vision is not None:
            self.vision = VisionTower(c, rngs)
            self.projector = Projector(c, rngs)
        else:
            self.vision = self.projector = None
        self.layers = nnx.List([DecoderLayer(c, t, rngs) for t in c.layer_types])
        self.final_norm = RMSNorm(c.width, c.eps, jnp.dtype(c.param_dtype))
        lora_lib.init_adapters(self, rngs)  # last: the base weights do not depend on them

    # -- what the trainer reads

    @property
    def trainable(self):
        """The parameters the optimizer updates (`config.finetune`)."""
        return lora_lib.trainable_filter(self.config.finetune)

    @property
    def checkpoint_filter(self):
        """What a checkpoint keeps: all of a full fine-tune, else only what trains (the fixed
        rest is rebuilt from the pretrained folder or the seed)."""
        return None if self.config.finetune == "full" else self.trainable

    # -- pieces

    def _embed(self, ids):
        dtype = jnp.dtype(self.config.dtype)
        x = jnp.take(self.embed[...], ids, axis=0).astype(dtype)
        return x * jnp.asarray(self.config.width**0.5, dtype)

    def _logits(self, h):
        h = self.final_norm(h)
        logits = jnp.einsum("...d,vd->...v", h, self.embed[...].astype(h.dtype))
        return logits.astype(jnp.float32)[..., : self.config.vocab_size]

    def encode_image(self, image):
        """`[B, H, W, 3]` uint8 -> image tokens `[B, mm_tokens, width]` in the decoder's space."""
        c = self.config
        if image.ndim != 4:
            raise ValueError(f"gemma3 takes one image per question [B, H, W, 3], not {image.shape}")
        if tuple(image.shape[1:3]) != c.image_size:
            raise ValueError(f"image is {image.shape[1:3]}, the model expects {c.image_size}")
        pixels = image.astype(jnp.float32) / 127.5 - 1.0  # the processor's rescale + normalize
        b = pixels.shape[0]
        chunk = math.gcd(b, c.vision_chunk) if c.vision_chunk else b
        if chunk == b:
            return self.projector(self.vision(pixels, remat=c.remat))
        # A few images at a time (lax.map): SigLIP's attention scores over 4096 patches take
        # 2 GiB per image in float32, the tower's largest buffer by far.
        groups = pixels.reshape(b // chunk, chunk, *pixels.shape[1:])
        graph, state = nnx.split((self.vision, self.projector))

        def encode(x):  # a pure function of the towers' state (lax.map is a JAX transform)
            vision, projector = nnx.merge(graph, state)
            return projector(vision(x))

        out = jax.lax.map(jax.checkpoint(encode) if c.remat else encode, groups)
        return out.reshape(b, *out.shape[2:])

    def _sequence(self, image, text, mask_ar, mask_input):
        """Embedded sequence `[B, S, D]` with its cumulative-sum `ar` and `input` masks."""
        c = self.config
        tokens = self._embed(text)
        text_ar = jnp.ones_like(mask_ar) if c.attention == "gemma" else mask_ar
        if self.vision is None:
            return tokens, text_ar, mask_input
        b = text.shape[0]
        soft = self.encode_image(image).astype(tokens.dtype)
        boi = self._embed(jnp.full((b, 1), c.boi_id, jnp.int32))
        eoi = self._embed(jnp.full((b, 1), c.eoi_id, jnp.int32))
        x = jnp.concatenate([tokens[:, :1], boi, soft, eoi, tokens[:, 1:]], axis=1)
        n = c.num_image_tokens
        if c.attention == "gemma":  # soft tokens share one block: bidirectional among them
            img_ar = jnp.asarray([1, 1] + [0] * (c.mm_tokens - 1) + [1], mask_ar.dtype)
        else:
            img_ar = jnp.zeros((n,), mask_ar.dtype)
        img_ar = jnp.broadcast_to(img_ar, (b, n))
        ar = jnp.concatenate([text_ar[:, :1], img_ar, text_ar[:, 1:]], axis=1)
        img_in = jnp.ones((b, n), mask_input.dtype)
        inp = jnp.concatenate([mask_input[:, :1], img_in, mask_input[:, 1:]], axis=1)
        return x, ar, inp

    def _masks(self, ar, inp, positions):
        full = attention_mask(ar, inp)
        near = (positions[:, :, None] - positions[:, None, :]) < self.config.sliding_window
        return full, full & near[:, None]

    def _layers(self, x, positions, masks):
        kvs = []
        for layer in self.layers:
            mask = masks[1] if layer.sliding else masks[0]
            if self.config.remat:
                x, kv = nnx.remat(DecoderLayer.__call__)(layer, x, positions, mask)
            else:
                x, kv = layer(x, positions, mask)
            kvs.append(kv)
        return x, kvs

    def _text_positions(self, h):
        n = self.config.num_image_tokens
        return h if n == 0 else jnp.concatenate([h[:, :1], h[:, n + 1 :]], axis=1)

    # -- training

    def __call__(self, image, text, mask_ar, mask_input):
        """Logits `[B, L, V]` at every text position (V = the tokenizer's vocabulary)."""
        x, ar, inp = self._sequence(image, text, mask_ar, mask_input)
        positions = jnp.broadcast_to(jnp.arange(x.shape[1]), x.shape[:2])
        h, _ = self._layers(x, positions, self._masks(ar, inp, positions))
        return self._logits(self._text_positions(h))

    # -- decoding

    def prefill(self, image, text, mask_input, max_new: int):
        """Runs image + prefix once; returns `(logits [B, V] after the prefix, cache)`.

        `text` is the prefix only (`<bos> question <sep>`, padded at the end). The cache holds
        `num_image_tokens + P + max_new` slots per row: the prefix's, then one per new token.
        """
        b = text.shape[0]
        x, ar, inp = self._sequence(image, text, jnp.zeros_like(text), mask_input)
        positions = jnp.broadcast_to(jnp.arange(x.shape[1]), x.shape[:2])
        h, kvs = self._layers(x, positions, self._masks(ar, inp, positions))
        pad = [(0, 0), (0, max_new), (0, 0), (0, 0)]
        ks = jnp.stack([jnp.pad(k, pad) for k, _ in kvs])
        vs = jnp.stack([jnp.pad(v, pad) for _, v in kvs])
        lengths = jnp.sum(mask_input, axis=1).astype(jnp.int32)
        n = self.config.num_image_tokens
        last = jnp.where(lengths > 1, lengths - 1 + n, 0)  # text index -> sequence index
        logits = self._logits(jnp.take_along_axis(h, last[:, None, None], axis=1)[:, 0])
        cache = {
            "k": ks,
            "v": vs,
            "key_valid": jnp.concatenate([inp.astype(bool), jnp.zeros((b, max_new), bool)], 1),
            "key_pos": jnp.concatenate([positions, jnp.zeros((b, max_new), positions.dtype)], 1),
            "lengths": lengths,
        }
        return logits, cache

    def decode_step(self, token, step, cache, prefix_slots: int):
        """Feeds `token [B]` as generated token number `step`; returns `(logits [B, V], cache)`.

        `prefix_slots` is `num_image_tokens + P`, the cache slots `prefill` filled (static).
        """
        c = self.config
        slot = prefix_slots + step
        pos = (cache["lengths"] + c.num_image_tokens + step).astype(cache["key_pos"].dtype)
        key_valid = cache["key_valid"].at[:, slot].set(True)
        key_pos = cache["key_pos"].at[:, slot].set(pos)
        full = key_valid[:, None, None, :]
        near = ((pos[:, None] - key_pos) < c.sliding_window)[:, None, None, :]
        x = self._embed(token[:, None])
        ks, vs = [], []
        for i, layer in enumerate(self.layers):
            mask = full & near if layer.sliding else full
            x, k, v = layer.step(x, pos[:, None], cache["k"][i], cache["v"][i], slot, mask)
            ks.append(k)
            vs.append(v)
        new = dict(cache, k=jnp.stack(ks), v=jnp.stack(vs), key_valid=key_valid, key_pos=key_pos)
        return self._logits(x[:, 0]), new


__all__ = ["FSDP", "MODEL", "Gemma3"]
