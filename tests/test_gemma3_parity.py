"""`gemma3` against Hugging Face's PyTorch Gemma 3: the same tiny random checkpoint, saved by
`transformers`' own `save_pretrained`, gives the same logits for the same image and text.

Needs torch and transformers (the `depth` extra) besides the `gemma` extra; skipped without
them. Tolerance: float32 on both sides, logits of order 1; the implementations add the same
products in different orders (einsum groupings, fused softmax), which moves the last bits:
1e-5 absolute (observed about 1e-6).
"""

from __future__ import annotations

import numpy as np
import pytest

EXTRA = "needs the gemma extra: pip install 'jax-spatial[gemma]'"
pytest.importorskip("sentencepiece", reason=EXTRA)
torch = pytest.importorskip("torch", reason="needs torch (the depth extra)")
transformers = pytest.importorskip("transformers", reason="needs transformers (the depth extra)")

import jax.numpy as jnp  # noqa: E402

from jax_spatial.train.models import gemma3  # noqa: E402
from jax_spatial.train.models.gemma3 import config as config_lib  # noqa: E402
from jax_spatial.train.models.gemma3 import export  # noqa: E402
from jax_spatial.train.models.gemma3 import tokenizer as tok_lib  # noqa: E402

try:  # noqa: E402
    from gemma3_checks import trained_lora
except ModuleNotFoundError:  # imported as tests.<module> by a subprocess test
    from tests.gemma3_checks import trained_lora

ATOL = 1e-5
TEXTS = ["Is the red chair left of the table?", "yes", "no", "How many chairs are there? 3"]


def _text_config(**changes):
    fields = dict(
        vocab_size=512, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8, query_pre_attn_scalar=8,
        sliding_window=8, layer_types=["sliding_attention", "full_attention"],
        rope_scaling={"rope_type": "linear", "factor": 8.0}, max_position_embeddings=512,
    )
    return transformers.Gemma3TextConfig(**{**fields, **changes})


def _randomize(model, seed=0):
    """Random values everywhere (the initial norms and projector are zero, which would let
    a wrong vision path or norm go unseen)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.normal_(0, 0.3 if "norm" in name else 0.05)
    return model.eval()


@pytest.fixture(scope="module")
def tok():
    return tok_lib.train_tiny(TEXTS * 5)


@pytest.fixture(scope="module")
def hf_vlm(tok, tmp_path_factory):
    vision = transformers.SiglipVisionConfig(
        hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        image_size=32, patch_size=8, vision_use_head=False,
    )
    config = transformers.Gemma3Config(
        text_config=_text_config().to_dict(), vision_config=vision.to_dict(),
        mm_tokens_per_image=4, boi_token_index=4, eoi_token_index=5, image_token_index=6,
    )
    model = _randomize(transformers.Gemma3ForConditionalGeneration(config))
    folder = tmp_path_factory.mktemp("hf") / "gemma3_tiny"
    model.save_pretrained(folder)
    (folder / "tokenizer.model").write_bytes(tok.proto)
    return model, folder


def _inputs(tok, seed=0, b=3, length=14):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (b, 32, 32, 3)).astype(np.uint8)
    text = rng.integers(8, tok.vocab_size, (b, length)).astype(np.int32)
    text[:, 0] = tok.bos_id
    mask_input = np.ones((b, length), np.int32)
    mask_input[1, 9:] = 0  # a padded row
    text[mask_input == 0] = tok.pad_id
    return image, text, mask_input


def hf_vlm_logits(model, image, text, mask_input, mm=4):
    """Hugging Face's input: `<bos> <start_of_image> <image_soft_token> x mm <end_of_image>
    text[1:]`, pixels in [-1, 1], token_type_ids marking the image (its bidirectional mask);
    the logits at the text positions."""
    b = text.shape[0]
    image_ids = np.array([[4] + [6] * mm + [5]] * b)
    ids = np.concatenate([text[:, :1], image_ids, text[:, 1:]], 1)
    attention = np.concatenate([mask_input[:, :1], np.ones_like(image_ids), mask_input[:, 1:]], 1)
    pixels = torch.tensor(image.astype(np.float32) / 127.5 - 1.0).permute(0, 3, 1, 2)
    with torch.no_grad():
        out = model(
            input_ids=torch.tensor(ids, dtype=torch.long), pixel_values=pixels,
            attention_mask=torch.tensor(attention), token_type_ids=torch.tensor((ids == 6) * 1),
        ).logits.numpy()
    return np.concatenate([out[:, :1], out[:, mm + 3 :]], 1)


def _ours(model, image, text, mask_input):
    text = jnp.asarray(text)
    return np.asarray(
        model(jnp.asarray(image), text, jnp.zeros_like(text), jnp.asarray(mask_input))
    )


def test_vlm_logits_equal_transformers(tok, hf_vlm):
    """Image + text, a sliding layer (window 8 over ~20 positions) and a full one, GQA, a
    padded row: every real position's logits within 1e-5."""
    hf_model, folder = hf_vlm
    model, loaded_tok = gemma3.load(str(folder))
    assert loaded_tok.fingerprint() == tok.fingerprint()
    image, text, mask_input = _inputs(tok)
    ours = _ours(model, image, text, mask_input)
    theirs = hf_vlm_logits(hf_model, image, text, mask_input)[..., : ours.shape[-1]]
    real = mask_input.astype(bool)
    diff = np.abs(ours - theirs)[real].max()
    print(f"gemma3 vs transformers: max abs logit difference {diff:.3g}")
    assert diff < ATOL
    # The comparison can fail: another image moves the logits far more than the tolerance.
    other = hf_vlm_logits(hf_model, 255 - image, text, mask_input)[..., : ours.shape[-1]]
    assert np.abs(other - theirs)[real].max() > 100 * ATOL


def test_config_json_reads_as_transformers_reads_it():
    """The published 4B file, completed by transformers' defaults, and the minimal file read
    here give one config; and what `to_hf_config` writes, transformers reads back."""
    from tests.test_gemma3 import PUBLISHED_4B_CONFIG

    full = transformers.Gemma3Config.from_dict(PUBLISHED_4B_CONFIG).to_dict()
    ours = config_lib.from_hf_config(PUBLISHED_4B_CONFIG, 262144)
    assert config_lib.from_hf_config(full, 262144) == ours
    again = transformers.Gemma3Config.from_dict(config_lib.to_hf_config(ours)).to_dict()
    assert config_lib.from_hf_config(again, 262144) == ours


def test_text_only_logits_equal_transformers(tmp_path):
    """The text-only layout of 1b (`Gemma3ForCausalLM`, `model.` keys, one key/value head)."""
    tok = tok_lib.train_tiny(TEXTS * 5)
    config = _text_config(num_key_value_heads=1, rope_scaling=None)
    hf_model = _randomize(transformers.Gemma3ForCausalLM(config), seed=1)
    hf_model.save_pretrained(tmp_path / "text")
    (tmp_path / "text" / "tokenizer.model").write_bytes(tok.proto)
    model, _ = gemma3.load(str(tmp_path / "text"))
    assert model.config.vision is None and model.config.num_image_tokens == 0
    image, text, mask_input = _inputs(tok, seed=2)
    ours = _ours(model, image, text, mask_input)
    with torch.no_grad():
        theirs = hf_model(input_ids=torch.tensor(text, dtype=torch.long),
                          attention_mask=torch.tensor(mask_input)).logits.numpy()
    diff = np.abs(ours - theirs[..., : ours.shape[-1]])[mask_input.astype(bool)].max()
    print(f"gemma3 text-only vs transformers: max abs logit difference {diff:.3g}")
    assert diff < ATOL


@pytest.mark.slow
def test_merged_lora_export_loads_in_transformers(tok, hf_vlm, tmp_path):
    """LoRA on every target, a few steps, merged export: transformers reads the folder and
    its logits equal the LoRA model's (1e-5)."""
    _, folder = hf_vlm
    image, text, mask_input = _inputs(tok, seed=3, b=4)
    mask_ar = np.zeros_like(text)
    mask_ar[:, 8:] = 1
    batch = {
        "image": image, "text": text, "mask_ar": mask_ar, "mask_loss": mask_ar * mask_input,
        "mask_input": mask_input,
    }
    batch = {k: jnp.asarray(v) for k, v in batch.items()}
    model = trained_lora(tok.vocab_size, folder, batch, seed=0)
    ours = np.asarray(model(batch["image"], batch["text"], batch["mask_ar"], batch["mask_input"]))
    out = export.export_model(model, tok, tmp_path / "merged")
    merged = transformers.Gemma3ForConditionalGeneration.from_pretrained(out).eval()
    theirs = hf_vlm_logits(merged, image, text, mask_input)[..., : ours.shape[-1]]
    diff = np.abs(ours - theirs)[mask_input.astype(bool)].max()
    print(f"merged LoRA export in transformers vs the LoRA model: max abs difference {diff:.3g}")
    assert diff < ATOL
