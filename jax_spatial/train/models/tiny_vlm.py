"""`tiny_vlm`: a small vision-language model in Flax NNX that trains from scratch on a CPU.

    image [B, H, W, 3] uint8 -> patches -> ViT encoder -> project -> N image tokens
    [image tokens ; embed(text)] -> prefix-LM decoder -> logits over the text positions

The decoder sees the image tokens as a full-attention prefix (PaliGemma's layout), then the
question (also prefix), then the answer causally (`batch.attention_mask`). Greedy decoding
runs the prefix once (`prefill`) and then one token at a time against a key/value cache
(`decode_step`); the cache has a fixed number of slots, so decoding compiles once. With
`look`, one more cross-attention (`Look`) from the text to the image tokens follows the last
grounding layer; the cache then also keeps the image's keys and values for it.

Every kernel carries NNX partitioning metadata naming the `fsdp` mesh axis on its width
dimension (widths are multiples of the fsdp size; the vocabulary is padded to a multiple of
128 so the tied embedding shards the same way), so `train.sharding` can shard parameters and
optimizer state from the metadata alone.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from jax_spatial.train.batch import attention_mask
from jax_spatial.train.facts import NUM_FACTS, RELATIONS

FSDP = "fsdp"


@dataclasses.dataclass(frozen=True)
class TinyVLMConfig:
    """Sizes of `TinyVLM` (see the presets in `PRESETS`).

    Attributes:
      vocab_size: the tokenizer's vocabulary (padded up to a multiple of 128 here).
      image_size: `(H, W)` of the input images.
      patch: patch side in pixels; the encoder sees `(H / patch) * (W / patch)` tokens.
      stem: channels of a convolutional stem (3x3, stride 2, GELU each) run before the
        patches are cut: () embeds raw pixel patches linearly (a plain ViT); (32, 64) halves
        the resolution twice, so each patch token sees a learned local feature map.
      pool: average-pool the encoder's token grid by this factor before the decoder.
      enc_width, enc_depth, enc_heads: the ViT encoder.
      width, depth, heads: the decoder.
      mlp_ratio: hidden size of every MLP over its width.
      max_text_len: the longest text (positions of the learned text embedding).
      image_position: "learned" (a learned embedding per patch) or "sincos" (fixed 2D
        sine-cosine features of the patch's row and column, as in MAE): with sincos a
        patch's place is readable from the first step instead of being learned from data,
        which is what left/right and above/below questions compare.
      ground_layers: decoder layers whose first attention head is taught, when the run asks
        for grounding (`batch.ground_loss`), to look from each object name at that object's
        image tokens (those past `depth` are left out).
      pair_layer: decoder layer (an index into the blocks, negative from the end, see
        `pair_index`) after which the end of the question is taught, in grounding runs,
        which of the question's first two objects is further right, away, up, bigger,
        taller and wider (`facts.pair_signs`) and which relation it asks
        (`facts.RELATIONS`); the layers after it turn that into the answer.
      alibi: add ALiBi's distance penalty (Press et al. 2022; slope 2^(-8 (h + 1) / H) for
        head h) to the decoder's text-to-text attention scores, in both directions (image
        tokens are left alone). A token then weighs near words over far ones from the first
        step, so the end of a question tells its first object from its second by how far back
        each is named: the comparison every relation asks for.
      mlp: the decoder's MLPs, "gelu" or "geglu" (gated, `MLP`).
      look: (on in the `cpu` preset) after the last grounding layer, every text token also
        attends to the image tokens alone through a `Look` cross-attention whose values
        carry each token's fixed place in the grid; in grounding runs its first head is the
        one taught to look at a name's object (beside the `ground_layers`' heads), so what a
        name finds arrives in its state with the finding's place already in it.
      dtype: compute dtype, "float32" or "bfloat16" (parameters stay float32).
    """

    vocab_size: int
    image_size: tuple[int, int] = (96, 128)
    patch: int = 8
    stem: tuple[int, ...] = ()
    pool: int = 1
    enc_width: int = 128
    enc_depth: int = 2
    enc_heads: int = 4
    width: int = 192
    depth: int = 3
    heads: int = 4
    mlp_ratio: int = 4
    max_text_len: int = 512
    image_position: str = "learned"
    ground_layers: tuple[int, ...] = (0, 1)
    pair_layer: int = -2
    alibi: bool = False
    mlp: str = "gelu"
    look: bool = False
    dtype: str = "float32"

    @property
    def padded_vocab(self) -> int:
        return -(-self.vocab_size // 128) * 128

    @property
    def grid(self) -> tuple[int, int]:
        h, w = self.image_size
        if h % self.patch or w % self.patch:
            raise ValueError(
                f"image_size {self.image_size} is not a multiple of patch {self.patch}"
            )
        gh, gw = h // self.patch, w // self.patch
        if gh % self.pool or gw % self.pool:
            raise ValueError(f"patch grid {(gh, gw)} is not a multiple of pool {self.pool}")
        return gh, gw

    @property
    def pair_index(self) -> int:
        """`pair_layer` as an index into the decoder blocks (negative counts from the end and
        stops at the first block, so -2 is the only block of a 1-layer decoder)."""
        return self.pair_layer if self.pair_layer >= 0 else max(self.depth + self.pair_layer, 0)

    @property
    def decoder_ground_layers(self) -> list[int]:
        """`ground_layers` that are blocks of this decoder."""
        return [i for i in self.ground_layers if i < self.depth]

    @property
    def look_index(self) -> int:
        """The decoder block after which `Look` runs: the last of `ground_layers` in the
        decoder (the first block when none is)."""
        return max(self.decoder_ground_layers or [0])

    @property
    def token_grid(self) -> tuple[int, int]:
        """`(rows, cols)` of the image tokens the decoder sees (after pooling)."""
        gh, gw = self.grid
        return gh // self.pool, gw // self.pool

    @property
    def num_image_tokens(self) -> int:
        rows, cols = self.token_grid
        return rows * cols


PRESETS = {
    # Two CPU cores: 96 x 128 images, a two-layer conv stem, 16-px patches (48 image
    # tokens), a 4-layer decoder with ALiBi text attention and GeGLU MLPs (layers 0-1 ground
    # the names, `Look` after layer 1 brings each name what it finds with its place, 2
    # compares the question's two objects, 3 answers), ~1.6M parameters, a step of 32
    # questions in 0.4-0.85 s by its padded length. docs/learning.md measures what these
    # choices change (`look` costs ~10% per step and gains on word-named questions).
    "cpu": dict(
        image_size=(96, 128),
        patch=16,
        stem=(32, 64),
        enc_width=128,
        enc_depth=2,
        enc_heads=4,
        width=128,
        depth=4,
        heads=4,
        alibi=True,
        mlp="geglu",
        look=True,
    ),
    # An accelerator: 224 px, a ViT-S-like encoder, a 12-layer 512-wide decoder.
    "gpu": dict(
        image_size=(224, 224),
        patch=16,
        enc_width=384,
        enc_depth=6,
        enc_heads=6,
        width=512,
        depth=12,
        heads=8,
        dtype="bfloat16",
    ),
    # Tests: as small as it gets while keeping every code path.
    "test": dict(
        image_size=(32, 32),
        patch=8,
        enc_width=32,
        enc_depth=1,
        enc_heads=2,
        width=32,
        depth=1,
        heads=2,
        mlp_ratio=2,
        max_text_len=256,
    ),
}


def _dense(din, dout, rngs, dtype, shard_in: bool) -> nnx.Linear:
    spec = (FSDP, None) if shard_in else (None, FSDP)
    return nnx.Linear(
        din,
        dout,
        kernel_init=nnx.with_partitioning(nnx.initializers.xavier_uniform(), spec),
        bias_init=nnx.with_partitioning(
            nnx.initializers.zeros_init(), (None if shard_in else FSDP,)
        ),
        dtype=dtype,
        rngs=rngs,
    )


def _norm(width, rngs, dtype) -> nnx.LayerNorm:
    return nnx.LayerNorm(width, dtype=dtype, rngs=rngs)


class Attention(nnx.Module):
    """Multi-head attention with an explicit mask and an optional key/value cache."""

    def __init__(self, width: int, heads: int, rngs: nnx.Rngs, dtype):
        if width % heads:
            raise ValueError(f"width {width} is not a multiple of heads {heads}")
        self.heads, self.head_dim = heads, width // heads
        self.qkv = _dense(width, 3 * width, rngs, dtype, shard_in=True)
        self.out = _dense(width, width, rngs, dtype, shard_in=False)

    def _split(self, x):
        b, s, _ = x.shape
        q, k, v = jnp.split(self.qkv(x), 3, axis=-1)
        shape = (b, s, self.heads, self.head_dim)
        return q.reshape(shape), k.reshape(shape), v.reshape(shape)

    def _attend(self, q, k, v, mask, bias=None):
        # q [B, Sq, H, D], k/v [B, Sk, H, D], mask [B, 1, Sq, Sk] bool, bias broadcasting to
        # [B, H, Sq, Sk] (added to the scores) or None.
        scores = jnp.einsum("bqhd,bkhd->bhqk", q, k).astype(jnp.float32)
        scores = scores / jnp.sqrt(jnp.float32(self.head_dim))
        if bias is not None:
            scores = scores + bias
        scores = jnp.where(mask, scores, jnp.finfo(jnp.float32).min)
        weights = jax.nn.softmax(scores, axis=-1).astype(v.dtype)
        mixed = jnp.einsum("bhqk,bkhd->bqhd", weights, v)
        return self.out(mixed.reshape(*mixed.shape[:2], -1))

    def __call__(self, x, mask, bias=None):
        q, k, v = self._split(x)
        return self._attend(q, k, v, mask, bias), (q, k, v)

    def step(self, x, cache_k, cache_v, slot, key_valid, bias=None):
        """One new token per row: writes its k/v at `slot`, attends over the valid slots."""
        q, k, v = self._split(x)
        cache_k = jax.lax.dynamic_update_slice_in_dim(cache_k, k.astype(cache_k.dtype), slot, 1)
        cache_v = jax.lax.dynamic_update_slice_in_dim(cache_v, v.astype(cache_v.dtype), slot, 1)
        mask = key_valid[:, None, None, :]
        return self._attend(q, cache_k, cache_v, mask, bias), cache_k, cache_v


class MLP(nnx.Module):
    """`down(gelu(up(x)))`, or with `gated` GeGLU's `down(gelu(gate(x)) * up(x))` at 2/3 of the
    hidden size (the same parameter count; Shazeer 2020, as in Gemma)."""

    def __init__(self, width: int, ratio: int, rngs: nnx.Rngs, dtype, gated: bool = False):
        hidden = ratio * width
        if gated:
            hidden = max(8, (2 * hidden // 3) // 8 * 8)
            self.gate = _dense(width, hidden, rngs, dtype, shard_in=True)
        self.gated = gated
        self.up = _dense(width, hidden, rngs, dtype, shard_in=True)
        self.down = _dense(hidden, width, rngs, dtype, shard_in=False)

    def __call__(self, x):
        if self.gated:
            # The product lets a unit fire on "this relation AND this sign" from the first
            # step, where a plain GELU unit must first learn to carve such a conjunction.
            return self.down(jax.nn.gelu(self.gate(x)) * self.up(x))
        return self.down(jax.nn.gelu(self.up(x)))


class Block(nnx.Module):
    """Pre-norm transformer block."""

    def __init__(self, width, heads, ratio, rngs, dtype, gated: bool = False):
        self.norm1 = _norm(width, rngs, dtype)
        self.attn = Attention(width, heads, rngs, dtype)
        self.norm2 = _norm(width, rngs, dtype)
        self.mlp = MLP(width, ratio, rngs, dtype, gated)

    def __call__(self, x, mask, bias=None):
        """`(output, (q, k, v))`: the block's own projections (`[B, S, H, D]` each), for the
        key/value cache and the grounding scores."""
        y, qkv = self.attn(self.norm1(x), mask, bias)
        x = x + y
        return x + self.mlp(self.norm2(x)), qkv

    def step(self, x, cache_k, cache_v, slot, key_valid, bias=None):
        y, cache_k, cache_v = self.attn.step(
            self.norm1(x), cache_k, cache_v, slot, key_valid, bias
        )
        x = x + y
        return x + self.mlp(self.norm2(x)), cache_k, cache_v


def sincos_2d(rows: int, cols: int, width: int):
    """`[rows * cols, width]` fixed features of each patch's (row, column): half the channels
    encode the row, half the column, each as sines and cosines of geometric frequencies."""
    import numpy as np

    if width % 4:
        raise ValueError(f"sincos position needs a width divisible by 4, not {width}")
    quarter = width // 4
    freq = 1.0 / 10_000 ** (np.arange(quarter) / quarter)
    r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    parts = []
    for coord in (r.reshape(-1), c.reshape(-1)):
        angle = coord[:, None] * freq[None, :]
        parts += [np.sin(angle), np.cos(angle)]
    return np.concatenate(parts, axis=1).astype(np.float32)


class Look(nnx.Module):
    """Cross-attention from text tokens to the image tokens only, `heads` heads.

    Keys come from the image tokens' state; values add to it a projection of each token's
    fixed (row, column) features (`sincos_2d`), so a query that finds an object carries
    where it found it into the text state, whatever the image tokens' own features hold.
    Self-attention mixes image and text keys in one softmax and leaves place to be learned;
    this is the shortcut from "where the name looks" to "where the object is".
    """

    def __init__(self, width: int, heads: int, grid: tuple[int, int], rngs: nnx.Rngs, dtype):
        if width % heads:
            raise ValueError(f"width {width} is not a multiple of heads {heads}")
        self.heads, self.head_dim, self.grid = heads, width // heads, tuple(grid)
        self.norm_text = _norm(width, rngs, dtype)
        self.norm_image = _norm(width, rngs, dtype)
        self.query = _dense(width, width, rngs, dtype, shard_in=True)
        self.key = _dense(width, width, rngs, dtype, shard_in=True)
        self.value = _dense(width, width, rngs, dtype, shard_in=True)
        self.place = _dense(width, width, rngs, dtype, shard_in=True)
        self.out = _dense(width, width, rngs, dtype, shard_in=False)

    def _heads(self, x):
        return x.reshape(*x.shape[:2], self.heads, self.head_dim)

    def keys_values(self, image_tokens):
        """`(k, v)`, each `[B, N, H, D]`, from the image tokens' state `[B, N, W]`."""
        y = self.norm_image(image_tokens)
        places = jnp.asarray(sincos_2d(*self.grid, y.shape[-1]), y.dtype)
        return self._heads(self.key(y)), self._heads(self.value(y) + self.place(places)[None])

    def __call__(self, text_tokens, k, v):
        """`(update [B, L, W] to add to the text state, queries [B, L, H, D])`."""
        q = self._heads(self.query(self.norm_text(text_tokens)))
        scores = jnp.einsum("bqhd,bkhd->bhqk", q, k).astype(jnp.float32)
        weights = jax.nn.softmax(scores / jnp.sqrt(jnp.float32(self.head_dim)), axis=-1)
        mixed = jnp.einsum("bhqk,bkhd->bqhd", weights.astype(v.dtype), v)
        return self.out(mixed.reshape(*mixed.shape[:2], -1)), q


class ImageEncoder(nnx.Module):
    """(Conv stem ->) patches -> linear embedding + learned 2D position -> ViT blocks -> tokens."""

    def __init__(self, config: TinyVLMConfig, rngs: nnx.Rngs):
        dtype = jnp.dtype(config.dtype)
        self.config = config
        gh, gw = config.grid
        scale = 2 ** len(config.stem)
        if config.patch % scale:
            raise ValueError(f"patch {config.patch} is not a multiple of the stem's stride {scale}")
        channels = (3, *config.stem)
        self.stem = nnx.List(
            [
                nnx.Conv(
                    cin, cout, (3, 3), strides=(2, 2), padding="SAME", dtype=dtype, rngs=rngs,
                    kernel_init=nnx.with_partitioning(
                        nnx.initializers.lecun_normal(), (None, None, None, FSDP)
                    ),
                    bias_init=nnx.with_partitioning(nnx.initializers.zeros_init(), (FSDP,)),
                )
                for cin, cout in zip(channels[:-1], channels[1:], strict=True)
            ]
        )
        self.cell = config.patch // scale  # patch side on the stem's feature map
        self.patch_embed = _dense(
            self.cell**2 * channels[-1], config.enc_width, rngs, dtype, False
        )
        if config.image_position not in ("learned", "sincos"):
            raise ValueError(
                f"image_position must be learned or sincos, not {config.image_position!r}"
            )
        init = (
            nnx.initializers.normal(0.02)
            if config.image_position == "learned"
            else nnx.initializers.zeros_init()  # sincos: a learned correction, zero at start
        )
        self.position = nnx.Param(
            nnx.with_partitioning(init, (None, FSDP))(rngs.params(), (gh * gw, config.enc_width))
        )
        self.blocks = nnx.List(
            [
                Block(config.enc_width, config.enc_heads, config.mlp_ratio, rngs, dtype)
                for _ in range(config.enc_depth)
            ]
        )
        self.norm = _norm(config.enc_width, rngs, dtype)
        self.project = _dense(config.enc_width, config.width, rngs, dtype, True)

    def __call__(self, image):
        c = self.config
        b, h, w, _ = image.shape
        if (h, w) != tuple(c.image_size):
            raise ValueError(f"image is {h}x{w}, the model expects {c.image_size}")
        gh, gw = c.grid
        x = (image.astype(jnp.float32) / 127.5 - 1.0).astype(jnp.dtype(c.dtype))
        for conv in self.stem:
            x = jax.nn.gelu(conv(x))
        p, ch = self.cell, x.shape[-1]
        x = x.reshape(b, gh, p, gw, p, ch).transpose(0, 1, 3, 2, 4, 5)
        x = x.reshape(b, gh * gw, p * p * ch)
        x = self.patch_embed(x) + self.position[...].astype(x.dtype)
        if c.image_position == "sincos":
            x = x + jnp.asarray(sincos_2d(gh, gw, c.enc_width), x.dtype)
        full = jnp.ones((b, 1, gh * gw, gh * gw), bool)
        for block in self.blocks:
            x, _ = block(x, full)
        x = self.norm(x)
        if c.pool > 1:
            x = x.reshape(b, gh // c.pool, c.pool, gw // c.pool, c.pool, -1).mean(axis=(2, 4))
            x = x.reshape(b, -1, x.shape[-1])
        return self.project(x)


class TinyVLM(nnx.Module):
    """`logits = model(image, text, mask_ar, mask_input)`; see the module docstring."""

    def __init__(self, config: TinyVLMConfig, *, rngs: nnx.Rngs):
        dtype = jnp.dtype(config.dtype)
        self.config = config
        if config.mlp not in ("gelu", "geglu"):
            raise ValueError(f"mlp must be gelu or geglu, not {config.mlp!r}")
        if config.pair_layer >= config.depth:
            raise ValueError(f"pair_layer {config.pair_layer} is not a layer of {config.depth}")
        self.encoder = ImageEncoder(config, rngs)
        self.embed = nnx.Embed(
            config.padded_vocab,
            config.width,
            embedding_init=nnx.with_partitioning(nnx.initializers.normal(0.02), (None, FSDP)),
            dtype=dtype,
            rngs=rngs,
        )
        self.text_position = nnx.Param(
            nnx.with_partitioning(nnx.initializers.normal(0.02), (None, FSDP))(
                rngs.params(), (config.max_text_len, config.width)
            )
        )
        self.image_type = nnx.Param(
            nnx.with_partitioning(nnx.initializers.normal(0.02), (FSDP,))(
                rngs.params(), (config.width,)
            )
        )
        self.blocks = nnx.List(
            [
                Block(config.width, config.heads, config.mlp_ratio, rngs, dtype,
                      gated=config.mlp == "geglu")  # fmt: skip
                for _ in range(config.depth)
            ]
        )
        self.norm = _norm(config.width, rngs, dtype)
        if config.look:
            self.look = Look(config.width, config.heads, config.token_grid, rngs, dtype)
        # Read an object name's box and facts off its tokens, and the question's pair signs
        # off its last token (grounding runs only; see `__call__`).
        self.ground_box = _dense(config.width, 4, rngs, dtype, shard_in=True)
        self.ground_facts = _dense(config.width, NUM_FACTS, rngs, dtype, shard_in=True)
        self.pair_head = _dense(config.width, NUM_FACTS, rngs, dtype, shard_in=True)
        self.relation_head = _dense(config.width, len(RELATIONS), rngs, dtype, shard_in=True)

    # -- shared pieces

    def _inputs(self, image, text, positions):
        img = self.encoder(image) + self.image_type[...].astype(jnp.dtype(self.config.dtype))
        tokens = self.embed(text) + self.text_position[...][positions].astype(img.dtype)
        return jnp.concatenate([img, tokens], axis=1)

    def _logits(self, x):
        return self.embed.attend(self.norm(x)).astype(jnp.float32)[..., : self.config.vocab_size]

    def _masks(self, mask_ar, mask_input):
        b = mask_ar.shape[0]
        n = self.config.num_image_tokens
        ar = jnp.concatenate([jnp.zeros((b, n), mask_ar.dtype), mask_ar], axis=1)
        inp = jnp.concatenate([jnp.ones((b, n), mask_input.dtype), mask_input], axis=1)
        return ar, inp

    # -- training

    supports_grounding = True

    def __call__(self, image, text, mask_ar, mask_input, ground_span=None):
        """Logits `[B, L, V]` at every text position (V = the tokenizer's vocabulary).

        With `ground_span [B, M, 2]` (`batch.ground_spans`) also returns what the model makes
        of each object name: `(logits, {"scores": [B, G, M, N], "boxes": [B, M, 4],
        "facts": [B, M, F], "pair": [B, F], "relation": [B, R]})`: where each name looks
        (one score map over the N image tokens per layer of `config.ground_layers`, then one
        for `Look` when `config.look`), the box and facts it reads off (0..1 corners and
        `facts.object_facts` units, from its tokens after the last of those layers and
        `Look`), and the pair-sign and relation logits read off the question's last token
        after `config.pair_layer`.
        """
        length = text.shape[1]
        if length > self.config.max_text_len:
            raise ValueError(f"text of {length} tokens is longer than {self.config.max_text_len}")
        positions = jnp.broadcast_to(jnp.arange(length), text.shape)
        x = self._inputs(image, text, positions)
        mask = attention_mask(*self._masks(mask_ar, mask_input))
        bias = self._prefix_bias(length)
        layers = self.config.decoder_ground_layers
        n = self.config.num_image_tokens
        named = {}
        scores = []
        if ground_span is not None:
            weights = self._name_weights(ground_span, length)
            # The question's last token: the one that predicts the first answer token.
            last = jnp.sum(mask_input * (1 - mask_ar), axis=1).astype(jnp.int32) - 1
            pair_layer = self.config.pair_index
        for i, block in enumerate(self.blocks):
            x, (q, k, _) = block(x, mask, bias)
            if ground_span is not None and i in layers:
                scores.append(
                    self._ground_scores(q[:, n:], k[:, :n], weights, block.attn.head_dim)
                )
            if self.config.look and i == self.config.look_index:
                x, look_q, look_k, _ = self._look(x)
                if ground_span is not None:
                    scores.append(
                        self._ground_scores(look_q, look_k, weights, self.look.head_dim)
                    )
            if ground_span is not None and i == layers[-1]:
                names = jnp.einsum("bml,bld->bmd", weights.astype(x.dtype), x[:, n:])
                named["boxes"] = jax.nn.sigmoid(self.ground_box(names).astype(jnp.float32))
                named["facts"] = self.ground_facts(names).astype(jnp.float32)
            if ground_span is not None and i == pair_layer:
                end = jnp.take_along_axis(x[:, n:], last[:, None, None], axis=1)[:, 0]
                named["pair"] = self.pair_head(end).astype(jnp.float32)
                named["relation"] = self.relation_head(end).astype(jnp.float32)
        logits = self._logits(x[:, n:])
        if ground_span is None:
            return logits
        return logits, {"scores": jnp.stack(scores, axis=1), **named}

    def _look(self, x):
        """`Look` over `x = [image tokens ; text]`: `(x with the text's update added,
        queries [B, L, H, D], image keys and values [B, N, H, D])`."""
        n = self.config.num_image_tokens
        k, v = self.look.keys_values(x[:, :n])
        update, q = self.look(x[:, n:], k, v)
        return jnp.concatenate([x[:, :n], x[:, n:] + update], axis=1), q, k, v

    def _distance_bias(self, query_pos, key_pos):
        """ALiBi scores `[B, H, Sq, Sk]` from text positions `[B, Sq]`, `[B, Sk]` (-1: an
        image token, no penalty), or None when `config.alibi` is off."""
        if not self.config.alibi:
            return None
        heads = self.config.heads
        slopes = 2.0 ** (-8.0 * jnp.arange(1, heads + 1, dtype=jnp.float32) / heads)
        dist = jnp.abs(query_pos[:, :, None] - key_pos[:, None, :]).astype(jnp.float32)
        text = (query_pos[:, :, None] >= 0) & (key_pos[:, None, :] >= 0)
        return jnp.where(text[:, None], -slopes[None, :, None, None] * dist[:, None], 0.0)

    def _prefix_bias(self, length: int):
        """`_distance_bias` over `[image tokens ; text of length L]` (the same for every row)."""
        n = self.config.num_image_tokens
        pos = jnp.concatenate([jnp.full((n,), -1), jnp.arange(length)])[None]
        return self._distance_bias(pos, pos)

    @staticmethod
    def _name_weights(span, length: int):
        """`[B, M, L]`: each name's tokens, weighted to average over them."""
        t = jnp.arange(length)
        inside = (t >= span[..., :1]) & (t < span[..., 1:])
        return inside / jnp.maximum(jnp.sum(inside, axis=-1, keepdims=True), 1)

    @staticmethod
    def _ground_scores(q, k, weights, head_dim: int):
        """`[B, M, N]` the attention scores of an attention's first head from each name (its
        tokens' queries averaged: the scores are linear in the query, so this is the mean of
        the tokens' own scores) to the image tokens; `q [B, L, H, D]` are the text tokens'
        queries and `k [B, N, H, D]` the image tokens' keys."""
        query = jnp.einsum("bml,bld->bmd", weights.astype(q.dtype), q[:, :, 0])
        scores = jnp.einsum("bmd,bnd->bmn", query, k[:, :, 0]).astype(jnp.float32)
        return scores / jnp.sqrt(jnp.float32(head_dim))

    # -- decoding

    def prefill(self, image, text, mask_input, max_new: int):
        """Runs image + prefix once; returns `(logits [B, V] after the prefix, cache)`.

        `text` is the prefix only (`<bos> question <sep>`, padded at the end). The cache holds
        `N + P + max_new` slots per row: the prefix's, then one per generated token.
        """
        b, p = text.shape
        positions = jnp.broadcast_to(jnp.arange(p), text.shape)
        x = self._inputs(image, text, positions)
        ar, inp = self._masks(jnp.zeros_like(text), mask_input)
        mask = attention_mask(ar, inp)
        bias = self._prefix_bias(p)
        ks, vs, look = [], [], {}
        for i, block in enumerate(self.blocks):
            x, (_, k, v) = block(x, mask, bias)
            pad = [(0, 0), (0, max_new), (0, 0), (0, 0)]
            ks.append(jnp.pad(k, pad))
            vs.append(jnp.pad(v, pad))
            if self.config.look and i == self.config.look_index:
                x, _, look["look_k"], look["look_v"] = self._look(x)
        lengths = jnp.sum(mask_input, axis=1).astype(jnp.int32)
        last = self.config.num_image_tokens + lengths - 1
        logits = self._logits(jnp.take_along_axis(x, last[:, None, None], axis=1)[:, 0])
        key_valid = jnp.concatenate([inp.astype(bool), jnp.zeros((b, max_new), bool)], axis=1)
        cache = {"k": jnp.stack(ks), "v": jnp.stack(vs), "key_valid": key_valid, "lengths": lengths}
        return logits, {**cache, **look}  # look_k/look_v: the image's keys and values for `Look`

    def decode_step(self, token, step, cache, prefix_slots: int):
        """Feeds `token [B]` as generated token number `step`; returns `(logits [B, V], cache)`.

        `prefix_slots` is `N + P`, the cache slots `prefill` filled (static).
        """
        slot = prefix_slots + step
        key_valid = cache["key_valid"].at[:, slot].set(True)
        positions = (cache["lengths"] + step)[:, None]
        x = self.embed(token[:, None]) + self.text_position[...][positions].astype(
            jnp.dtype(self.config.dtype)
        )
        bias = None
        if self.config.alibi:
            n = self.config.num_image_tokens
            lengths = cache["lengths"][:, None]
            j = jnp.arange(key_valid.shape[1])[None]
            # Cache slots: image, then the prefix's text positions, then the generated ones.
            key_pos = jnp.where(
                j < n, -1, jnp.where(j < prefix_slots, j - n, lengths + j - prefix_slots)
            )
            bias = self._distance_bias(positions, key_pos)
        ks, vs = [], []
        for i, block in enumerate(self.blocks):
            x, k, v = block.step(x, cache["k"][i], cache["v"][i], slot, key_valid, bias)
            ks.append(k)
            vs.append(v)
            if self.config.look and i == self.config.look_index:
                x = x + self.look(x, cache["look_k"], cache["look_v"])[0]
        new = dict(cache, k=jnp.stack(ks), v=jnp.stack(vs), key_valid=key_valid)
        return self._logits(x[:, 0]), new


def build(vocab_size: int, preset: str = "cpu", rngs: nnx.Rngs | None = None, **overrides):
    """A `TinyVLM` from a preset name and field overrides."""
    if preset not in PRESETS:
        raise ValueError(f"unknown tiny_vlm preset {preset!r}; known: {sorted(PRESETS)}")
    fields = {**PRESETS[preset], **overrides}
    # JSON (checkpoint meta, configs) gives lists
    for name in ("image_size", "stem", "ground_layers"):
        if name in fields:
            fields[name] = tuple(fields[name])
    config = TinyVLMConfig(vocab_size=vocab_size, **fields)
    # Built unsharded (metadata only); `train.sharding.shard_model` places it on a mesh.
    with nnx.use_eager_sharding(False):
        return TinyVLM(config, rngs=rngs or nnx.Rngs(0))


__all__ = ["PRESETS", "TinyVLM", "TinyVLMConfig", "build"]
