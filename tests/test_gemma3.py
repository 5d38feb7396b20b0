"""The `gemma3` backend on its tiny random preset: sizes and memory arithmetic, the
sentencepiece tokenizer, the attention masks against a plain-Python rule, cached decoding,
fine-tuning modes, LoRA merge and export, both checkpoint layouts and their errors, the
sharded step, and the `train` / `predict` commands.

Parity with Hugging Face's PyTorch implementation is in `test_gemma3_parity.py`.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

EXTRA = "needs the gemma extra: pip install 'jax-spatial[gemma]'"
pytest.importorskip("sentencepiece", reason=EXTRA)
pytest.importorskip("safetensors", reason=EXTRA)


from jax_spatial import cli  # noqa: E402
from jax_spatial.errors import UserError  # noqa: E402
from jax_spatial.train import batch as batch_lib  # noqa: E402
from jax_spatial.train import checkpoint as ckpt_lib  # noqa: E402
from jax_spatial.train import commands as cli_commands  # noqa: E402
from jax_spatial.train import decode, models, trainer  # noqa: E402
from jax_spatial.train.models import gemma3  # noqa: E402
from jax_spatial.train.models.gemma3 import config as config_lib  # noqa: E402
from jax_spatial.train.models.gemma3 import export, lora, memory  # noqa: E402
from jax_spatial.train.models.gemma3 import tokenizer as tok_lib  # noqa: E402

try:  # noqa: E402
    from decode_checks import assert_cached_decoding_matches_full
    from gemma3_checks import trained_lora
except ModuleNotFoundError:  # imported as tests.<module> by a subprocess test
    from tests.decode_checks import assert_cached_decoding_matches_full
    from tests.gemma3_checks import trained_lora

REPO = pathlib.Path(__file__).resolve().parents[1]
TEXTS = [
    "Is the red chair left of the table?", "yes", "no", "How many chairs are there? 3",
    "Which is closer, (A) the box or (B) the lamp?", "A", "B",
    "Is <ref>the cup</ref><box>[[12, 40, 300, 512]]</box> above the shelf?",
]


@pytest.fixture(scope="module")
def tok():
    return tok_lib.train_tiny(TEXTS * 4)


def tiny(tok, seed=0, **fields):
    return models.build("gemma3_tiny", vocab_size=tok.vocab_size, rngs=nnx.Rngs(seed), **fields)


def make_batch(tok, n=4, length=32, seed=0):
    """A batch of the contract: random images, real questions and answers, padding."""
    rng = np.random.default_rng(seed)
    pairs = [("Is the red chair left of the table?", "yes"), ("How many chairs are there?", "3"),
             ("Which is closer, (A) the box or (B) the lamp?", "B"), ("Is it above?", "no")]
    items = [batch_lib.encode(tok, *pairs[i % len(pairs)]) for i in range(n)]
    out = batch_lib.pad_tokens(items, length, tok.pad_id)
    out["image"] = rng.integers(0, 256, (n, 32, 32, 3)).astype(np.uint8)
    return {k: jnp.asarray(v) for k, v in out.items()}


@nnx.jit
def forward(model, b):
    return model(b["image"], b["text"], b["mask_ar"], b["mask_input"])


# -- sizes and memory -----------------------------------------------------------------------


def test_published_sizes_have_their_model_card_parameter_counts():
    """Totals of Google's Gemma 3 checkpoints (text decoder + SigLIP + projector, tied
    embedding once), as their Hugging Face model pages state them."""
    published = {"1b": 999_885_952, "4b": 4_300_079_472, "12b": 12_187_325_040,
                 "27b": 27_432_406_640}
    for size, total in published.items():
        assert config_lib.parameter_count(config_lib.preset_config(size, 262144))["total"] == total
    # SigLIP-So400m at 896 px: 27 blocks of width 1152, 4096 positions.
    assert config_lib.parameter_count(config_lib.preset_config("4b", 1))["vision"] == 416_866_032


# google/gemma-3-4b-it's config.json: transformers' defaults fill the rest.
PUBLISHED_4B_CONFIG = {
    "architectures": ["Gemma3ForConditionalGeneration"], "boi_token_index": 255999,
    "eoi_token_index": 256000, "eos_token_id": [1, 106], "image_token_index": 262144,
    "initializer_range": 0.02, "mm_tokens_per_image": 256, "model_type": "gemma3",
    "text_config": {
        "hidden_size": 2560, "intermediate_size": 10240, "model_type": "gemma3_text",
        "num_hidden_layers": 34, "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
        "sliding_window": 1024,
    },
    "torch_dtype": "bfloat16",
    "vision_config": {
        "hidden_size": 1152, "image_size": 896, "intermediate_size": 4304,
        "model_type": "siglip_vision_model", "num_attention_heads": 16,
        "num_hidden_layers": 27, "patch_size": 14, "vision_use_head": False,
    },
}


def test_the_published_4b_config_json_is_the_4b_preset():
    parsed = config_lib.from_hf_config(PUBLISHED_4B_CONFIG, 262144)
    assert parsed == config_lib.preset_config("4b", 262144)
    assert parsed.layer_types.count("full") == 5 and parsed.layer_types[5] == "full"
    assert config_lib.from_hf_config(config_lib.to_hf_config(parsed), 262144) == parsed


def test_counts_equal_the_built_model(tok):
    for finetune in ("full", "lora"):
        model = tiny(tok, finetune=finetune, lora_targets="q_proj,o_proj,vision.fc1,projector")
        counts = config_lib.parameter_count(model.config)
        assert counts["total"] == lora.count(model)
        assert counts["lora"] == lora.count(model, nnx.LoRAParam)
        base_vision = nnx.All(nnx.Param, nnx.Not(nnx.LoRAParam), nnx.PathContains("vision"))
        assert counts["vision"] == lora.count(model, base_vision)


def test_memory_per_device_arithmetic():
    """A hand-computed case: tiny in float32, LoRA r=2 on q_proj only, no remat, batch 4
    over fsdp=2 x model=2, text of 10 tokens (16 positions with the 6 image slots)."""
    c = config_lib.preset_config(
        "tiny", 500, finetune="lora", lora_rank=2, lora_targets=("q_proj",)
    )
    m = memory.memory_per_device(c, batch=4, text_len=10, fsdp=2, model=2)
    lora_n = 2 * 2 * (32 + 32)  # 2 layers x rank 2 x (din 32 + dout 32)
    base = 41264
    assert m["weights"] == (base * 4 + lora_n * 4) / 4
    assert m["grads"] == lora_n * 4 / 4 and m["optimizer"] == 2 * lora_n * 4 / 4
    b, seq = 4 / 2, 16
    per_token = 4 * (4 * 32 + (2 * 2 + 2 * 1) * 8 + 4 * 64 / 2) + 8 * 2 * seq
    vision = b * 16 * (4 * (4 * 16 + 4 * 16 / 2 + 2 * 32 / 2) + 8 * 1 * 16)  # frozen: one block
    assert m["activations"] == pytest.approx(2 * b * seq * per_token + vision)
    assert m["logits"] == b * 10 * 500 * 8 / 2
    assert m["total"] == pytest.approx(sum(v for k, v in m.items() if k != "total"))
    # Remat keeps each layer's input and one layer; sharding divides the parameter terms.
    r = memory.memory_per_device(dataclasses.replace(c, remat=True), batch=4, text_len=10,
                                 fsdp=2, model=2)
    assert r["activations"] == pytest.approx(2 * b * seq * 32 * 4 + b * seq * per_token + vision)
    one = memory.memory_per_device(c, batch=4, text_len=10)
    assert one["weights"] == 4 * m["weights"]


# -- tokenizer ------------------------------------------------------------------------------


def test_tiny_tokenizer_has_gemmas_specials(tok):
    assert (tok.pad_id, tok.eos_id, tok.bos_id) == (0, 1, 2)
    ids = [tok.piece_id(p) for p in ("<start_of_image>", "<end_of_image>", "<image_soft_token>")]
    assert ids == [4, 5, 6] and tok.sep_id == 7
    tok.check_model(config_lib.preset_config("tiny", tok.vocab_size), "gemma3_tiny")
    item = batch_lib.encode(tok, "Is it left?", "yes")
    assert item["text"][0] == 2 and 7 in item["text"].tolist() and item["text"][-1] == 1


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=60))
def test_tokenizer_round_trips_any_text(tok, text):
    """Byte fallback and identity normalization: every string survives encode + decode."""
    assert tok.decode(tok.encode(text)) == text


def test_tokenizer_json_keeps_the_model_and_refuses_a_changed_one(tok, tmp_path):
    from jax_spatial.train import tokenizer as project_tokenizer

    data = tok.to_json()
    again = project_tokenizer.from_json(json.loads(json.dumps(data)), "x")
    assert again.fingerprint() == tok.fingerprint() and again.encode("a b") == tok.encode("a b")
    other = tok_lib.train_tiny(["completely different words here"] * 8)
    with pytest.raises(UserError, match="fingerprint"):
        project_tokenizer.from_json({**other.to_json(), "fingerprint": tok.fingerprint()}, "x")
    tok.save(tmp_path)
    assert json.loads((tmp_path / "tokenizer.json").read_text())["kind"] == "sentencepiece"


# -- masks, causality, decoding --------------------------------------------------------------


def reference_mask(kinds, real, answer, mode, window, sliding):
    """The attention rule in plain Python: `kinds[i]` is text/boi/soft/eoi, `answer[i]` marks
    answer tokens; gemma: causal or both in the image; prefix_lm: the non-answer prefix is
    fully visible to all, answer tokens causal; sliding: also `q - k < window`."""
    s = len(kinds)
    out = np.zeros((s, s), bool)
    for q in range(s):
        for k in range(s):
            if not (real[q] and real[k]):
                continue
            if mode == "gemma":
                ok = k <= q or (kinds[q] == "soft" and kinds[k] == "soft")
            else:
                ok = (not answer[k]) or (answer[q] and k <= q)
            out[q, k] = ok and (not sliding or q - k < window)
    return out


@pytest.mark.parametrize("mode", ["gemma", "prefix_lm"])
def test_attention_masks_follow_the_rule(tok, mode):
    model = tiny(tok, attention=mode)
    b = make_batch(tok, n=2, length=16)
    x, ar, inp = model._sequence(b["image"], b["text"], b["mask_ar"], b["mask_input"])
    positions = jnp.broadcast_to(jnp.arange(x.shape[1]), x.shape[:2])
    full, sliding = (np.asarray(m)[:, 0] for m in model._masks(ar, inp, positions))
    m = model.config.mm_tokens
    for row in range(2):
        kinds = ["text", "boi", *["soft"] * m, "eoi"] + ["text"] * 15
        real = [bool(b["mask_input"][row, 0])] + [True] * (m + 2)
        real += [bool(v) for v in b["mask_input"][row, 1:]]
        answer = [False] * (m + 3) + [bool(v) for v in b["mask_ar"][row, 1:]]
        for got, is_sliding in ((full, False), (sliding, True)):
            want = reference_mask(kinds, real, answer, mode, 8, is_sliding)
            np.testing.assert_array_equal(got[row], want)


def test_gemma_attention_is_causal_and_prefix_lm_is_not(tok):
    b = make_batch(tok, n=2, length=16)
    later = dict(b, text=b["text"].at[:, 4].set(b["text"][:, 4] + 1))
    for mode in ("gemma", "prefix_lm"):
        model = tiny(tok, attention=mode)
        a, c = np.asarray(forward(model, b)), np.asarray(forward(model, later))
        assert np.abs(a[:, 4:] - c[:, 4:]).max() > 1e-4  # the changed token and after
        if mode == "gemma":  # causal: the positions before it cannot see it
            np.testing.assert_array_equal(a[:, :4], c[:, :4])
        else:  # prefix-LM: the question is one fully visible block
            assert np.abs(a[:, :4] - c[:, :4]).max() > 1e-4


def test_the_image_reaches_the_logits(tok):
    model = tiny(tok)
    b = make_batch(tok, n=2)
    other = dict(b, image=255 - b["image"])
    assert np.abs(np.asarray(forward(model, b)) - np.asarray(forward(model, other))).max() > 1e-4


@pytest.mark.parametrize("jit", [pytest.param(False, marks=pytest.mark.slow), True])
@pytest.mark.parametrize("mode", ["gemma", "prefix_lm"])
def test_kv_cache_decoding_equals_full_forward(tok, jit, mode):
    """Prefill + cached steps give the full pass's logits (float32, same sums: 1e-5), rows of
    different prefix lengths, through a sliding window (8) shorter than the sequence (~20)."""
    model = tiny(tok, seed=1, attention=mode)
    rng = np.random.default_rng(0)
    image = jnp.asarray(rng.integers(0, 256, (2, 32, 32, 3)), jnp.uint8)
    text = jnp.asarray(rng.integers(8, tok.vocab_size, (2, 12)), jnp.int32).at[:, 0].set(2)
    assert_cached_decoding_matches_full(model, image, text, [7, 4], prefix_len=7, steps=4, jit=jit)


def test_greedy_decoding_runs_and_stops_at_eos(tok):
    model = tiny(tok)
    b = make_batch(tok, n=2, length=16)
    out = np.asarray(decode.greedy(model, b["image"], b["text"], b["mask_input"], max_new=5,
                                   eos_id=tok.eos_id))
    assert out.shape == (2, 5)
    for row in out:
        hits = np.flatnonzero(row == tok.eos_id)
        assert not hits.size or (row[hits[0]:] == tok.eos_id).all()


# -- fine-tuning modes ----------------------------------------------------------------------


def _loss_and_grads(model, b):
    def loss(m):
        logits = m(b["image"], b["text"], b["mask_ar"], b["mask_input"])
        return batch_lib.next_token_loss(logits, b["text"], b["mask_loss"])[0]

    return nnx.jit(lambda m: nnx.value_and_grad(loss)(m))(model)


@pytest.mark.slow
def test_remat_and_vision_chunks_change_no_number(tok):
    """Recomputation and chunked image encoding are the same computation: loss and
    gradients equal (float32; XLA may fuse differently: 1e-6)."""
    b = make_batch(tok)
    ref_loss, ref_grads = _loss_and_grads(tiny(tok), b)
    for fields in ({"remat": True}, {"remat": True, "vision_chunk": 2}):
        got_loss, got_grads = _loss_and_grads(tiny(tok, **fields), b)
        np.testing.assert_allclose(got_loss, ref_loss, rtol=1e-6)
        for a, g in zip(jax.tree.leaves(ref_grads), jax.tree.leaves(got_grads), strict=True):
            np.testing.assert_allclose(g, a, atol=1e-6)


def _params(model, filter_=nnx.Param):
    flat = nnx.to_flat_state(nnx.state(model, filter_))
    return {path: np.array(v[...], copy=True) for path, v in flat}  # the step donates


@pytest.mark.parametrize("finetune", ["full", "frozen_vision", "lora"])
def test_finetune_modes_update_only_their_parameters(tok, finetune):
    config = trainer.default_config()
    config.optim.warmup_steps = 1
    model = tiny(tok, finetune=finetune)
    opt = trainer.make_optimizer(model, config, 4)
    step = trainer.make_train_step()
    step(model, opt, make_batch(tok))  # the warmup's first learning rate is 0
    before = _params(model)
    out = step(model, opt, make_batch(tok))
    assert np.isfinite(float(out["loss"]))
    after = _params(model)
    changed = {p for p in before if not np.array_equal(before[p], after[p])}
    adapters = set(_params(model, nnx.LoRAParam))
    vision = {p for p in before if "vision" in p}
    moments = jax.tree.leaves(nnx.state(opt, nnx.OptState))
    if finetune == "full":
        assert vision & changed and len(changed) > 0.9 * len(before)  # the tower trains too
    elif finetune == "frozen_vision":
        assert not vision & changed and {p for p in changed if "projector" in p}
    else:
        lora_b = {p for p in adapters if p[-1] == "lora_b"}
        assert changed <= adapters and lora_b <= changed  # B leaves zero: the adapter learns
        n = config_lib.lora_parameter_count(model.config)
        assert sum(x.size for x in moments if x.ndim) == 2 * n  # Adam's mu, nu: adapters only


def test_bfloat16_parameters_and_compute_train(tok):
    """bfloat16 storage and compute: a step runs, the loss is the float32 model's to bf16
    precision (8 mantissa bits over a few layers: 2 %)."""
    b = make_batch(tok)
    ref = float(batch_lib.next_token_loss(forward(tiny(tok), b), b["text"], b["mask_loss"])[0])
    model = tiny(tok, dtype="bfloat16", param_dtype="bfloat16", finetune="lora")
    assert model.embed[...].dtype == jnp.bfloat16
    assert model.layers[0].attn.q_proj.lora_a[...].dtype == jnp.float32  # adapters stay f32
    opt = trainer.make_optimizer(model, trainer.default_config(), 4)
    out = trainer.make_train_step()(model, opt, b)
    assert float(out["loss"]) == pytest.approx(ref, rel=0.02)


def test_a_fresh_adapter_is_the_base_model(tok):
    b = make_batch(tok)
    base = np.asarray(forward(tiny(tok), b))
    adapted = tiny(tok, finetune="lora", lora_targets=config_lib.LORA_TARGETS)
    # B = 0 adds exact zeros, but the program differs (XLA fuses the projections another
    # way): float32 rounding, 1e-6.
    np.testing.assert_allclose(np.asarray(forward(adapted, b)), base, atol=1e-6)


# -- checkpoint folders ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def hf_folder(tok, tmp_path_factory):
    """A tiny random model exported in Hugging Face's layout, with the tokenizer."""
    model = tiny(tok, seed=3)
    return export.export_model(model, tok, tmp_path_factory.mktemp("hf") / "tiny"), model


def test_export_then_load_gives_the_same_model(tok, hf_folder):
    folder, model = hf_folder
    loaded, loaded_tok = gemma3.load(str(folder))
    assert loaded_tok.fingerprint() == tok.fingerprint()
    b = make_batch(tok)
    np.testing.assert_array_equal(np.asarray(forward(loaded, b)), np.asarray(forward(model, b)))


@pytest.mark.slow
def test_merged_lora_export_equals_the_lora_model(tok, hf_folder, tmp_path):
    """Train a LoRA model a few steps (B != 0), export it merged, load the folder as a plain
    model: the logits agree (float32; the merged kernel sums the same terms in another
    order: 1e-5)."""
    folder, _ = hf_folder
    b = make_batch(tok)
    model = trained_lora(tok.vocab_size, folder, b, seed=1)
    learned = _params(model, nnx.LoRAParam)[("layers", 0, "attn", "q_proj", "lora_b")]
    assert np.abs(learned).max() > 0
    want = np.asarray(forward(model, b))
    merged_dir = export.export_model(model, tok, tmp_path / "merged")
    merged, _ = gemma3.load(str(merged_dir))
    assert lora.count(merged, nnx.LoRAParam) == 0
    np.testing.assert_allclose(np.asarray(forward(merged, b)), want, atol=1e-5)
    base, _ = gemma3.load(str(folder))
    assert np.abs(np.asarray(forward(base, b)) - want).max() > 1e-3  # the adapters did learn


def to_gemma_library_layout(tensors: dict, config) -> dict:
    """Hugging Face tensors -> the `gemma` library's parameter tree (Kaggle's orbax layout),
    written from that library's documented shapes, independently of `weights`."""
    d, n, k, h = config.width, config.heads, config.kv_heads, config.head_dim
    out = {}

    def t(key):
        return np.asarray(tensors[key])

    out["transformer/embedder"] = {"input_embedding": t("language_model.model.embed_tokens.weight")}
    out["transformer/final_norm"] = {"scale": t("language_model.model.norm.weight")}
    out["transformer/embedder/mm_input_projection"] = {
        "w": t("multi_modal_projector.mm_input_projection_weight")}
    out["transformer/embedder/mm_soft_embedding_norm"] = {
        "scale": t("multi_modal_projector.mm_soft_emb_norm.weight")}
    for i in range(config.depth):
        p, g = f"language_model.model.layers.{i}.", f"transformer/layer_{i}/"
        q = t(p + "self_attn.q_proj.weight").reshape(n, h, d).transpose(0, 2, 1)  # [N, D, H]
        kk = t(p + "self_attn.k_proj.weight").reshape(k, h, d).transpose(0, 2, 1)
        vv = t(p + "self_attn.v_proj.weight").reshape(k, h, d).transpose(0, 2, 1)
        out[g + "attn/q_einsum"] = {"w": q}
        out[g + "attn/kv_einsum"] = {"w": np.stack([kk, vv])}
        out[g + "attn/attn_vec_einsum"] = {
            "w": t(p + "self_attn.o_proj.weight").T.reshape(n, h, d)}
        out[g + "attn/_query_norm"] = {"scale": t(p + "self_attn.q_norm.weight")}
        out[g + "attn/_key_norm"] = {"scale": t(p + "self_attn.k_norm.weight")}
        out[g + "mlp/gating_einsum"] = {
            "w": np.stack([t(p + "mlp.gate_proj.weight"), t(p + "mlp.up_proj.weight")])}
        out[g + "mlp/linear"] = {"w": t(p + "mlp.down_proj.weight").T}
        for hf, lib in (("input_layernorm", "pre_attention_norm"),
                        ("post_attention_layernorm", "post_attention_norm"),
                        ("pre_feedforward_layernorm", "pre_ffw_norm"),
                        ("post_feedforward_layernorm", "post_ffw_norm")):
            out[g + lib] = {"scale": t(p + hf + ".weight")}
    v = config.vision
    vp, sg = "vision_tower.vision_model.", "SigLiPFromPatches_0/siglip_encoder"
    out[sg + "/embedding"] = {
        "kernel": t(vp + "embeddings.patch_embedding.weight").transpose(2, 3, 1, 0),
        "bias": t(vp + "embeddings.patch_embedding.bias")}
    out[sg] = {"pos_embedding": t(vp + "embeddings.position_embedding.weight")[None]}
    out[sg + "/Transformer/encoder_norm"] = {
        "scale": t(vp + "post_layernorm.weight"), "bias": t(vp + "post_layernorm.bias")}
    hd = v.width // v.heads
    for i in range(v.depth):
        p, g = f"{vp}encoder.layers.{i}.", f"{sg}/Transformer/encoderblock_{i}/"
        for j in (1, 2):
            out[g + f"LayerNorm_{j - 1}"] = {"scale": t(p + f"layer_norm{j}.weight"),
                                             "bias": t(p + f"layer_norm{j}.bias")}
        for j in (1, 2):
            out[g + f"MlpBlock_0/Dense_{j - 1}"] = {"kernel": t(p + f"mlp.fc{j}.weight").T,
                                                    "bias": t(p + f"mlp.fc{j}.bias")}
        for lib, hf in (("query", "q_proj"), ("key", "k_proj"), ("value", "v_proj")):
            out[g + f"MultiHeadDotProductAttention_0/{lib}"] = {
                "kernel": t(p + f"self_attn.{hf}.weight").T.reshape(v.width, v.heads, hd),
                "bias": t(p + f"self_attn.{hf}.bias").reshape(v.heads, hd)}
        out[g + "MultiHeadDotProductAttention_0/out"] = {
            "kernel": t(p + "self_attn.out_proj.weight").T.reshape(v.heads, hd, v.width),
            "bias": t(p + "self_attn.out_proj.bias")}
    return out


def test_kaggle_orbax_layout_loads_the_same_model(tok, hf_folder, tmp_path):
    import orbax.checkpoint as ocp
    from safetensors.numpy import load_file

    folder, model = hf_folder
    tree = to_gemma_library_layout(load_file(str(folder / "model.safetensors")), model.config)
    kaggle = tmp_path / "kaggle"
    ocp.PyTreeCheckpointer().save(kaggle / "gemma3-tiny", tree)
    (kaggle / "tokenizer.model").write_bytes(tok.proto)
    with pytest.raises(UserError, match="name its size"):
        gemma3.load(str(kaggle))
    loaded, _ = gemma3.load(str(kaggle), preset="tiny")
    b = make_batch(tok)
    np.testing.assert_array_equal(np.asarray(forward(loaded, b)), np.asarray(forward(model, b)))


def _break(folder: pathlib.Path, tmp_path, how: str, tok) -> pathlib.Path:
    """A copy of the folder with one thing wrong."""
    import shutil

    from safetensors.numpy import load_file, save_file

    bad = tmp_path / how
    shutil.copytree(folder, bad)
    tensors = load_file(str(bad / "model.safetensors"))
    key = "language_model.model.layers.1.mlp.up_proj.weight"
    if how == "missing_tensor":
        del tensors[key]
    elif how == "wrong_shape":
        tensors[key] = np.zeros((48, 32), np.float32)
    elif how == "extra_tensor":
        tensors["language_model.model.layers.9.mlp.up_proj.weight"] = tensors[key]
    elif how == "not_safetensors":
        (bad / "model.safetensors").write_bytes(b"\x00garbage")
    elif how == "no_tokenizer":
        (bad / "tokenizer.model").unlink()
    elif how == "other_tokenizer":  # a sentencepiece model with other ids for the specials
        import io

        import sentencepiece as spm

        buf = io.BytesIO()
        spm.SentencePieceTrainer.train(sentence_iterator=iter(TEXTS * 4), model_writer=buf,
                                       vocab_size=60, hard_vocab_limit=False, minloglevel=2,
                                       pad_id=0, eos_id=1, bos_id=2, unk_id=3)
        (bad / "tokenizer.model").write_bytes(buf.getvalue())
    elif how == "no_config":
        (bad / "config.json").unlink()
    elif how == "missing_shard":
        index = {"weight_map": {"a": "model.safetensors", "b": "model-00002-of-00002.safetensors"}}
        (bad / "model.safetensors.index.json").write_text(json.dumps(index))
    if how in ("missing_tensor", "wrong_shape", "extra_tensor"):
        save_file(tensors, str(bad / "model.safetensors"))
    return bad


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("missing_tensor", "lacks 1 tensor"),
        ("wrong_shape", "has shape (48, 32), this model expects (64, 32)"),
        ("extra_tensor", "does not have, e.g. language_model.model.layers.9"),
        ("not_safetensors", "not a safetensors file"),
        ("no_tokenizer", "has no tokenizer.model"),
        ("other_tokenizer", "not the tokenizer of checkpoint"),
        ("no_config", "no config.json"),
        ("missing_shard", "lacks model-00002-of-00002.safetensors"),
    ],
)
def test_a_broken_checkpoint_folder_is_one_line(tok, hf_folder, tmp_path, how, message):
    bad = _break(hf_folder[0], tmp_path, how, tok)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        gemma3.load(str(bad))
    assert "\n" not in str(info.value) and str(bad) in str(info.value)


def test_folder_and_preset_errors(tok, hf_folder, tmp_path):
    with pytest.raises(UserError, match="not found"):
        gemma3.load(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds no Gemma 3 weights"):
        gemma3.load(str(tmp_path / "empty"))
    with pytest.raises(UserError, match="width is 32, the 4b preset has 2560"):
        gemma3.load(str(hf_folder[0]), preset="4b")
    with pytest.raises(UserError, match="needs its pretrained weights"):
        models.build("gemma3", vocab_size=10, preset="4b")
    with pytest.raises(UserError, match="lora_targets"):
        tiny(tok, finetune="lora", lora_targets="q_proj,nope")
    with pytest.raises(UserError, match="no setting 'lora_rnk'"):
        tiny(tok, lora_rnk=4)


# -- scale ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_sharded_step_equals_unsharded_on_four_devices():
    """A (data=1, fsdp=2, model=2) mesh of 4 simulated CPU devices against one device, two
    full fine-tuning steps of the tiny preset (the second with a nonzero learning rate).
    Tolerance 1e-5 relative (1e-6 absolute on the updated parameters): the sharded matmuls
    and reductions add the same float32 terms in another order."""
    script = textwrap.dedent("""
        import os
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
        import json, jax, numpy as np
        from flax import nnx
        from jax_spatial.train import data as data_lib, sharding, trainer
        from tests.test_gemma3 import TEXTS, make_batch, tiny
        from jax_spatial.train.models.gemma3 import tokenizer as tok_lib
        assert len(jax.devices()) == 4
        tok = tok_lib.train_tiny(TEXTS * 4)
        config = trainer.default_config()
        config.optim.warmup_steps = 1
        out = {}
        for name, devices, shape in [("one", jax.devices()[:1], (1, 1, 1)),
                                     ("four", jax.devices(), (1, 2, 2))]:
            model = tiny(tok)
            opt = trainer.make_optimizer(model, config, 4)
            start = [np.array(x) for x in jax.tree.leaves(nnx.state(model, nnx.Param))]
            mesh = sharding.make_mesh(shape[0], shape[1], devices=devices, model=shape[2])
            sharding.shard_tree(model, mesh); sharding.shard_tree(opt, mesh)
            host = {k: np.asarray(v) for k, v in make_batch(tok, n=4).items()}
            batch = data_lib.global_batch(host, sharding.batch_sharding(mesh))
            step = trainer.make_train_step()
            step(model, opt, batch)  # the warmup's first learning rate is 0
            m = step(model, opt, batch)
            leaves = jax.tree.leaves(nnx.state(model, nnx.Param))
            moved = max(float(np.abs(np.asarray(a) - b).max()) for a, b in zip(leaves, start))
            specs = sorted({str(x.sharding.spec) for x in leaves})
            params = [np.asarray(x).ravel()[:64].tolist() for x in leaves]
            out[name] = {"loss": float(m["loss"]), "grad_norm": float(m["grad_norm"]),
                         "specs": specs, "moved": moved, "params": params}
        print(json.dumps(out))
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    specs = " ".join(out["four"]["specs"])
    assert "'model'" in specs and "'fsdp'" in specs  # both axes really split parameters
    np.testing.assert_allclose(out["four"]["loss"], out["one"]["loss"], rtol=1e-5)
    np.testing.assert_allclose(out["four"]["grad_norm"], out["one"]["grad_norm"], rtol=1e-5)
    for a, b in zip(out["four"]["params"], out["one"]["params"], strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert out["one"]["moved"] > 1e-4  # the compared parameters did change


# -- the commands ---------------------------------------------------------------------------

NAME = "spatial_qa/gemma_tiny"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from jax_spatial.datasets.build import build_dataset

    root = tmp_path_factory.mktemp("tfds")
    build_dataset(root, "gemma_tiny", num_scenes=6, seed=5, views_per_scene=1, width=96,
                  height=72, scenes_per_shard=3, split_fractions=(("train", 0.7), ("test", 0.3)))
    return root


def _train_argv(work, data_dir, arg):
    return ["train", "--config", f"{REPO / 'configs/train.py'}:{arg}", "--workdir", str(work),
            "--data-dir", str(data_dir), "--name", NAME, "--quiet"]


@pytest.mark.slow
def test_train_resume_and_predict_with_gemma3_tiny(data_dir, tmp_path, capsys):
    """A run of the tiny preset stopped after step 2 (as a kill would) and resumed by
    `jax-spatial train` gives the uninterrupted run's loss bit for bit (one CPU device, the
    same data order), and `predict` answers from the resumed run."""
    arg = "model=gemma3_tiny,steps=3,batch_size=4"
    # The config the command line builds from the same argument and flags.
    config = cli_commands.load_train_config(f"{REPO / 'configs/train.py'}:{arg}")
    config.data.data_dir, config.data.name = str(data_dir), NAME
    whole = trainer.train(config, tmp_path / "whole", show_progress=False)
    work = tmp_path / "split"
    trainer.train(config, work, show_progress=False, stop_after=2)
    assert cli.main(_train_argv(work, data_dir, arg)) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["step"] == 3
    assert (work / "checkpoints" / "3").is_dir()
    logged = [json.loads(x) for x in (work / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in logged if r["step"] == 3 and "loss" in r][-1]
    assert last["loss"] == whole["losses"][2][1]  # the resumed run logged its one step
    assert json.loads((work / "tokenizer.json").read_text())["kind"] == "sentencepiece"
    out = tmp_path / "p.jsonl"
    argv = ["predict", "--workdir", str(work), "--data-dir", str(data_dir), "--name", NAME,
            "--split", "test", "--out", str(out), "--quiet"]
    assert cli.main(argv) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert rows and all(isinstance(r["prediction"], str) and r["id"] for r in rows)


@pytest.mark.slow
def test_lora_run_checkpoints_only_the_adapters(tok, hf_folder, data_dir, tmp_path, capsys):
    """A LoRA run from a checkpoint folder: its checkpoints hold the adapters (and their
    optimizer moments) only, `predict` restores them onto the folder's base weights, and the
    merged export of the run loads with the same logits; a broken folder given to `train` is
    one line."""
    folder, _ = hf_folder
    config = cli_commands.load_train_config(
        f"{REPO / 'configs/gemma3.py'}:checkpoint={folder},lora_rank=4,steps=2,batch_size=4,"
        f"max_eval=8,param_dtype=float32,dtype=float32,data_dir={data_dir},name={NAME}"
    )
    assert config.model.overrides.finetune == "lora" and config.model.preset == "auto"
    config.eval_every, config.ckpt_every = 0, 2
    summary = trainer.train(config, tmp_path / "lora", show_progress=False)
    model, tokenizer, _, _ = trainer.load_for_inference(tmp_path / "lora")
    saved = ckpt_lib.model_state(model)
    assert {type(v) for _, v in nnx.to_flat_state(saved)} == {nnx.LoRAParam}
    assert summary["trainable_parameters"] == config_lib.lora_parameter_count(model.config)
    assert summary["parameters"] == config_lib.parameter_count(model.config)["total"]
    # The command line: a broken folder is one line and exit code 1.
    bad = _break(folder, tmp_path, "wrong_shape", tokenizer)
    argv = ["train", "--config", f"{REPO / 'configs/gemma3.py'}:checkpoint={bad}",
            "--workdir", str(tmp_path / "bad"), "--data-dir", str(data_dir), "--name", NAME,
            "--quiet"]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "up_proj.weight has shape (48, 32), this model expects (64, 32)" in err
    merged = export.export_run(tmp_path / "lora", tmp_path / "merged")
    plain, _ = gemma3.load(str(merged))
    b = make_batch(tokenizer)
    np.testing.assert_allclose(np.asarray(forward(plain, b)), np.asarray(forward(model, b)),
                               atol=1e-5)
