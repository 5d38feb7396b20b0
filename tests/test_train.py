"""The fine-tuning loop on a tiny procedural dataset: batch contract, tokenizer, decoding,
one step, accumulation, kill-and-resume, predictions, and the errors a user can cause.

One module-scoped dataset (6 two-view rooms at 96 x 72, split 0.7 : 0.3 by scene hash) and the
`test` model preset (32 x 32 images, one layer) keep the whole module to about a minute.
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

from jax_spatial import cli
from jax_spatial.errors import UserError
from jax_spatial.train import batch as batch_lib
from jax_spatial.train import data as data_lib
from jax_spatial.train import decode, models, trainer
from jax_spatial.train.tokenizer import WordTokenizer

try:
    from decode_checks import assert_cached_decoding_matches_full
except ModuleNotFoundError:  # imported as tests.<module> by a subprocess test
    from tests.decode_checks import assert_cached_decoding_matches_full

REPO = pathlib.Path(__file__).resolve().parents[1]
NAME = "spatial_qa/train_tiny"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from jax_spatial.datasets.build import build_dataset

    root = tmp_path_factory.mktemp("tfds")
    build_dataset(
        root,
        "train_tiny",
        num_scenes=6,
        seed=5,
        views_per_scene=2,
        width=96,
        height=72,
        scenes_per_shard=2,
        split_fractions=(("train", 0.7), ("test", 0.3)),
    )
    return root


def tiny_config(data_dir, **changes):
    config = trainer.default_config()
    config.data.data_dir = str(data_dir)
    config.data.name = NAME
    config.model.preset = "test"
    config.steps = 4
    config.batch_size = 4
    config.log_every = 1
    config.eval_every = 0
    config.ckpt_every = 2
    config.eval.max_items = 8
    config.eval.batch_size = 8
    config.optim.warmup_steps = 1
    config.data.length_buckets = (256,)  # one compilation of each step per test
    for key, value in changes.items():
        node = config
        *path, last = key.split(".")
        for part in path:
            node = node[part]
        node[last] = value
    return config


# -- tokenizer and batch contract -----------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=60))
def test_tokenizer_round_trips_any_text(text):
    tok = WordTokenizer.train(["Is the <ref>region</ref><box>[[1, 20, 300, 4]]</box> left?"])
    assert tok.decode(tok.encode(text)) == text


def test_tokenizer_covers_templates_with_words_and_digits(tmp_path):
    tok = WordTokenizer.train(["How many chairs are there?", "(A) the box"])
    ids = tok.encode("How many chairs are there? 1000")
    assert all(tok.vocab[i].strip() and not tok.vocab[i].startswith("<0x") for i in ids)
    tok.save(tmp_path)
    again = WordTokenizer.load(tmp_path)
    assert again.vocab == tok.vocab and again.fingerprint() == tok.fingerprint()


def test_encode_masks_follow_the_contract():
    tok = WordTokenizer.train(["Is it left? yes"])
    item = batch_lib.encode(tok, "<image>\nIs it left?", "yes")
    n_answer = len(tok.encode("yes")) + 1  # + <eos>
    assert item["text"][0] == tok.bos_id and item["text"][-1] == tok.eos_id
    assert item["mask_ar"].tolist() == [0] * (len(item["text"]) - n_answer) + [1] * n_answer
    assert (item["mask_loss"] == item["mask_ar"]).all()
    padded = batch_lib.pad_tokens([item], 16, tok.pad_id)
    assert padded["mask_input"].sum() == len(item["text"]) and padded["text"].shape == (1, 16)


def test_attention_mask_is_prefix_lm():
    mask_ar = jnp.array([[0, 0, 1, 1, 0]])
    mask_input = jnp.array([[1, 1, 1, 1, 0]])
    m = np.asarray(batch_lib.attention_mask(mask_ar, mask_input))[0, 0]
    expected = np.array(
        [[1, 1, 0, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [1, 1, 1, 1, 0], [0, 0, 0, 0, 0]],
        bool,
    )
    np.testing.assert_array_equal(m, expected)


def test_loss_is_shifted_and_answer_only():
    # Logits that put all mass on token 3 everywhere: only targets equal to 3 cost nothing.
    logits = jnp.full((1, 4, 5), -30.0).at[..., 3].set(30.0)
    text = jnp.array([[1, 2, 3, 4]])
    loss, count = batch_lib.next_token_loss(logits, text, jnp.array([[0, 0, 1, 0]]))
    assert float(count) == 1 and float(loss) < 1e-6  # position 1 predicts text[2] = 3
    loss, _ = batch_lib.next_token_loss(logits, text, jnp.array([[0, 0, 0, 1]]))
    assert float(loss) == pytest.approx(60.0, rel=1e-4)  # text[3] = 4 is 60 nats off


# -- model ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "jit,alibi,mlp,look",
    # Eager only for the presets' model (ALiBi, GeGLU): eager NNX decoding takes half a minute.
    [
        (False, True, "geglu", False),
        (True, True, "geglu", False),
        (True, False, "gelu", False),
        (True, True, "geglu", True),
    ],
)
def test_kv_cache_decoding_equals_full_forward(jit, alibi, mlp, look):
    """Prefill + cached steps give the logits of the full prefix-LM pass (float32: 1e-5),
    with and without the text distance penalty (whose cached positions must line up), the
    gated MLP and the text-to-image `Look` (whose image keys the cache carries)."""
    model = models.build(
        "tiny_vlm", vocab_size=50, preset="test", rngs=nnx.Rngs(1), alibi=alibi, mlp=mlp,
        look=look,
    )  # fmt: skip
    rng = np.random.default_rng(0)
    image = jnp.asarray(rng.integers(0, 255, (2, 32, 32, 3)), jnp.uint8)
    text = jnp.asarray(rng.integers(4, 50, (2, 9)), jnp.int32)
    # Prefix lengths 5 and 3; the rows' answers follow them.
    assert_cached_decoding_matches_full(model, image, text, [5, 3], prefix_len=5, steps=3, jit=jit)
    if alibi:  # the penalty is really there: the same weights without it score otherwise
        plain = models.build("tiny_vlm", vocab_size=50, preset="test", rngs=nnx.Rngs(1), mlp=mlp)
        ones = jnp.ones_like(text)
        zeros = jnp.zeros_like(text)
        assert not np.allclose(model(image, text, zeros, ones), plain(image, text, zeros, ones))


def test_look_carries_each_image_tokens_place_and_adds_a_score_map():
    """`Look`'s values differ per image token even where the tokens' states are identical
    (their fixed places are added), a run with it returns one more grounding score map
    (its first head), and asking for the maps leaves the logits alone."""
    model = models.build("tiny_vlm", vocab_size=50, preset="test", rngs=nnx.Rngs(1), look=True)
    n, width = model.config.num_image_tokens, model.config.width
    _, v = model.look.keys_values(jnp.ones((1, n, width)))
    v = np.asarray(v).reshape(n, -1)
    assert np.min(np.abs(v[:, None] - v[None]).sum(-1) + np.eye(n)) > 1e-3  # all rows differ
    rng = np.random.default_rng(0)
    image = jnp.asarray(rng.integers(0, 255, (2, 32, 32, 3)), jnp.uint8)
    text = jnp.asarray(rng.integers(4, 50, (2, 9)), jnp.int32)
    ones, zeros = jnp.ones_like(text), jnp.zeros_like(text)
    span = jnp.zeros((2, batch_lib.MAX_MENTIONS, 2), jnp.int32).at[:, 0].set(jnp.array([2, 4]))
    logits, named = model(image, text, zeros, ones, ground_span=span)
    layers = [i for i in model.config.ground_layers if i < model.config.depth]
    assert named["scores"].shape == (2, len(layers) + 1, batch_lib.MAX_MENTIONS, n)
    np.testing.assert_array_equal(np.asarray(logits), np.asarray(model(image, text, zeros, ones)))
    plain = models.build("tiny_vlm", vocab_size=50, preset="test", rngs=nnx.Rngs(1))
    assert not np.allclose(np.asarray(logits), np.asarray(plain(image, text, zeros, ones)))


def test_pair_layer_counts_from_the_end_and_a_layer_past_the_last_is_an_error():
    from jax_spatial.train.models.tiny_vlm import TinyVLMConfig

    assert TinyVLMConfig(vocab_size=10, depth=4).pair_index == 2
    assert TinyVLMConfig(vocab_size=10, depth=1).pair_index == 0  # the only layer
    assert TinyVLMConfig(vocab_size=10, depth=4, pair_layer=1).pair_index == 1
    with pytest.raises(ValueError, match="pair_layer 3 is not a layer of 3"):
        models.build("tiny_vlm", vocab_size=50, preset="test", depth=3, pair_layer=3)


def test_greedy_decoding_stops_at_eos():
    model = models.build("tiny_vlm", vocab_size=40, preset="test")
    image = jnp.zeros((2, 32, 32, 3), jnp.uint8)
    out = decode.greedy(
        model, image, jnp.ones((2, 4), jnp.int32), jnp.ones((2, 4), jnp.int32), max_new=5, eos_id=2
    )
    assert out.shape == (2, 5)
    for row in np.asarray(out):
        hits = np.flatnonzero(row == 2)
        if hits.size:
            assert (row[hits[0] :] == 2).all()


# -- the step -------------------------------------------------------------------------------


def _batch(data_dir, tok, n=4):
    source = data_lib.open_split(data_dir, NAME, "train")
    index = data_lib.question_index(source)
    read = data_lib.ReadConfig(image_size=(32, 32))
    it = iter(data_lib.train_batches(source, index, tok, read, n))
    return next(it)


def _fresh(data_dir, config):
    source = data_lib.open_split(data_dir, NAME, "train")
    tok = WordTokenizer.train(data_lib.tokenizer_texts(source, max_frames=4))
    model = trainer.build_model(trainer._model_args(config, tok))
    return tok, model, trainer.make_optimizer(model, config, config.steps)


def test_one_step_decreases_the_loss_on_a_repeated_batch(data_dir):
    config = tiny_config(data_dir)
    tok, model, opt = _fresh(data_dir, config)
    host = _batch(data_dir, tok)
    batch = {k: jnp.asarray(host[k]) for k in data_lib.ARRAY_FIELDS}
    step = trainer.make_train_step()
    losses = [float(step(model, opt, batch)["loss"]) for _ in range(4)]
    assert losses[-1] < losses[0], losses


def test_padding_a_batch_further_leaves_its_loss_alone(data_dir):
    """`data.pad_text` (what processes with shorter batches do to agree on one length):
    padded keys are masked and the answer is where it was, so the loss is the same (float32
    softmaxes over more masked keys: 1e-5)."""
    config = tiny_config(data_dir)
    tok, model, _ = _fresh(data_dir, config)
    host = _batch(data_dir, tok)
    longer = data_lib.pad_text(host, host["text"].shape[1] + 24, tok.pad_id)
    assert longer["text"].shape[1] == host["text"].shape[1] + 24
    assert (longer["text"][:, -24:] == tok.pad_id).all() and not longer["mask_input"][:, -24:].any()
    assert data_lib.common_length(host, tok.pad_id) is host  # one process: as it is

    def loss(b):
        arrays = {k: jnp.asarray(b[k]) for k in data_lib.ARRAY_FIELDS}
        return float(trainer._loss_sum(model, arrays)[1][0])

    np.testing.assert_allclose(loss(longer), loss(host), rtol=1e-5)
    with pytest.raises(ValueError, match="does not fit"):
        data_lib.pad_text(host, host["text"].shape[1] - 1, tok.pad_id)


def test_gradient_accumulation_equals_the_whole_batch(data_dir):
    """Two micro-batches: the same update as one batch (float32 sums in another order: 1e-5)."""
    config = tiny_config(data_dir)
    tok, model_a, opt_a = _fresh(data_dir, config)
    _, model_b, opt_b = _fresh(data_dir, config)
    host = _batch(data_dir, tok)
    batch = {k: jnp.asarray(host[k]) for k in data_lib.ARRAY_FIELDS}
    out_a = trainer.make_train_step(1)(model_a, opt_a, batch)
    out_b = trainer.make_train_step(2)(model_b, opt_b, batch)
    np.testing.assert_allclose(float(out_a["loss"]), float(out_b["loss"]), rtol=1e-5)
    for a, b in zip(
        jax.tree.leaves(nnx.state(model_a, nnx.Param)),
        jax.tree.leaves(nnx.state(model_b, nnx.Param)),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_sharded_step_equals_unsharded_on_four_devices(data_dir, tmp_path):
    """A (data=2, fsdp=2) mesh of 4 simulated CPU devices against one device, same batch.

    Tolerance 1e-5 relative: the sharded reduction sums the same float32 terms in another
    order."""
    script = textwrap.dedent(f"""
        import os
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
        import jax, jax.numpy as jnp, numpy as np, json
        from flax import nnx
        from jax_spatial.train import data as data_lib, sharding, trainer
        from tests.test_train import _batch, _fresh, tiny_config
        assert len(jax.devices()) == 4
        config = tiny_config({str(data_dir)!r})
        out = {{}}
        for name, devices, (d, f) in [("one", jax.devices()[:1], (1, 1)),
                                      ("four", jax.devices(), (2, 2))]:
            tok, model, opt = _fresh({str(data_dir)!r}, config)
            mesh = sharding.make_mesh(d, f, devices=devices)
            sharding.shard_tree(model, mesh); sharding.shard_tree(opt, mesh)
            host = _batch({str(data_dir)!r}, tok)
            batch = data_lib.global_batch(host, sharding.batch_sharding(mesh))
            m = trainer.make_train_step()(model, opt, batch)
            specs = {{str(l.sharding.spec) for l in jax.tree.leaves(nnx.state(model))}}
            out[name] = {{"loss": float(m["loss"]), "grad_norm": float(m["grad_norm"]),
                         "specs": sorted(specs),
                         "param0": np.asarray(jax.tree.leaves(nnx.state(model))[3]).tolist()}}
        print(json.dumps(out))
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert any("fsdp" in s for s in out["four"]["specs"])  # parameters really are sharded
    np.testing.assert_allclose(out["four"]["loss"], out["one"]["loss"], rtol=1e-5)
    np.testing.assert_allclose(out["four"]["grad_norm"], out["one"]["grad_norm"], rtol=1e-5)
    np.testing.assert_allclose(out["four"]["param0"], out["one"]["param0"], atol=1e-6)


# -- runs -----------------------------------------------------------------------------------


def test_killed_and_resumed_run_equals_an_uninterrupted_one(data_dir, tmp_path):
    """SIGKILL a training process once it has checkpointed, resume in this process: every
    later loss equals the uninterrupted run's, bit for bit (one CPU device, same data order)."""
    import signal
    import time

    config = tiny_config(data_dir, steps=12, ckpt_every=2, log_every=1)
    whole = trainer.train(config, tmp_path / "whole", show_progress=False)
    work = tmp_path / "killed"
    script = textwrap.dedent(f"""
        from jax_spatial.train import trainer
        from tests.test_train import tiny_config
        config = tiny_config({str(data_dir)!r}, steps=12, ckpt_every=2, log_every=1)
        trainer.train(config, {str(work)!r}, show_progress=False)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
    try:
        deadline = time.monotonic() + 300
        while not (work / "checkpoints" / "2").is_dir():
            assert proc.poll() is None, "the training process ended before its first checkpoint"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    rest = trainer.train(config, work, show_progress=False)
    resumed_from = rest["losses"][0][0] - 1
    assert 2 <= resumed_from < 12
    assert rest["losses"] == whole["losses"][resumed_from:]
    lines = [json.loads(x) for x in (work / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if "loss" in x] == list(range(1, 13))


def test_stop_after_then_resume_continues_the_schedule(data_dir, tmp_path):
    config = tiny_config(data_dir, steps=4)
    whole = trainer.train(config, tmp_path / "whole", show_progress=False)
    first = trainer.train(config, tmp_path / "split", show_progress=False, stop_after=2)
    assert first["step"] == 2 and "eval" not in first
    rest = trainer.train(config, tmp_path / "split", show_progress=False)
    assert [s for s, _ in rest["losses"]] == [3, 4]
    assert rest["losses"] == whole["losses"][2:]


def test_curriculum_trains_its_first_formats_then_the_mixture_and_resumes_exactly(
    data_dir, tmp_path
):
    """Stopped inside the first stage, at its last step or after it, a resumed run reads the
    batches (and gives the losses) of the uninterrupted one."""
    first = "image_text/boxes,image_text/masks,image_text/marks"
    config = tiny_config(data_dir, steps=4, **{"data.first_formats": first,
                                               "data.first_steps": 2})  # fmt: skip
    run = trainer.setup(config, tmp_path / "look")
    formats = [next(run.iterator)["format_id"] for _ in range(4)]
    assert all(f.startswith("image_text/") for batch in formats[:2] for f in batch)
    assert not all(f.startswith("image_text/") for batch in formats[2:] for f in batch)
    # Two stages in order (`data.stages`), then the mixture.
    staged = tiny_config(data_dir, steps=4, **{"data.stages": "image_text/boxes:1;caption/raw:2"})
    run = trainer.setup(staged, tmp_path / "stages")
    formats = [set(next(run.iterator)["format_id"]) for _ in range(4)]
    assert formats[0] == {"image_text/boxes"} and formats[1] == formats[2] == {"caption/raw"}
    assert formats[3] - {"image_text/boxes", "caption/raw"}
    whole = trainer.train(config, tmp_path / "whole", show_progress=False)
    for stop in (1, 2, 3):
        work = tmp_path / f"split_{stop}"
        trainer.train(config, work, show_progress=False, stop_after=stop)
        rest = trainer.train(config, work, show_progress=False)
        assert [s for s, _ in rest["losses"]] == list(range(stop + 1, 5)), stop
        assert rest["losses"] == whole["losses"][stop:], stop


def test_curriculum_state_of_another_shape_and_bad_settings_are_one_line(data_dir, tmp_path):
    from jax_spatial.train import curriculum

    staged = curriculum.StagedBatches([curriculum.Stage(None, lambda: iter([{}]))])
    with pytest.raises(UserError, match="curriculum stage 2"):
        staged.set_state(b'{"stage": 1, "drawn": 0, "inner": null}')
    with pytest.raises(UserError, match="without a curriculum"):
        staged.set_state(b'{"next_index": 3}')  # a plain grain iterator's state
    saved = curriculum.StagedBatches(
        [curriculum.Stage(3, lambda: iter([{}]), "image_text/boxes"),
         curriculum.Stage(None, lambda: iter([{}]), "all")]
    ).get_state()  # fmt: skip
    moved = curriculum.StagedBatches(
        [curriculum.Stage(5, lambda: iter([{}]), "image_text/boxes"),
         curriculum.Stage(None, lambda: iter([{}]), "all")]
    )  # fmt: skip
    with pytest.raises(UserError, match=r"image_text/boxes \(3 steps\) then all"):
        moved.set_state(saved)  # another boundary would change the data order silently
    for bad in ("image_text/boxes", "image_text/boxes:0", ":5", "image_text/boxes:x"):
        with pytest.raises(UserError, match="FORMATS:STEPS"):
            curriculum.parse_stages(bad)
    assert curriculum.parse_stages("a/b,c/d:7; e/f:2;") == [("a/b,c/d", 7), ("e/f", 2)]
    with pytest.raises(UserError, match="not both"):
        trainer.setup(
            tiny_config(data_dir, **{"data.first_steps": 3, "data.first_formats": "caption/raw",
                                     "data.stages": "caption/raw:2"}),
            tmp_path / "c",
        )  # fmt: skip
    with pytest.raises(UserError, match="first_formats"):
        trainer.setup(tiny_config(data_dir, **{"data.first_steps": 3}), tmp_path / "a")
    with pytest.raises(UserError, match="unknown formats"):
        trainer.setup(
            tiny_config(data_dir, **{"data.first_steps": 3, "data.first_formats": "image/x"}),
            tmp_path / "b",
        )


def test_train_writes_checkpoints_metrics_plot_and_predictions(data_dir, tmp_path, capsys):
    work = tmp_path / "w"
    rc = cli.main(
        [
            "train",
            "--workdir",
            str(work),
            "--data-dir",
            str(data_dir),
            "--name",
            NAME,
            "--steps",
            "3",
            "--batch-size",
            "4",
            "--quiet",
            "--config",
            str(REPO / "configs/train.py") + ":preset=test",
        ]
    )
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["step"] == 3
    for name in ("metrics.jsonl", "training.png", "tokenizer.json", "config.json"):
        assert (work / name).exists(), name
    assert (work / "tb").is_dir() and any((work / "tb").iterdir())
    assert (work / "checkpoints" / "3").is_dir()
    out = tmp_path / "preds.jsonl"
    rc = cli.main(
        [
            "predict",
            "--workdir",
            str(work),
            "--data-dir",
            str(data_dir),
            "--name",
            NAME,
            "--split",
            "test",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert rc == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    source = data_lib.open_split(data_dir, NAME, "test")
    expected = {
        f"{source[i]['key'].decode()}/{k}"
        for i in range(len(source))
        for k in range(len(source[i]["qa"]["kind"]))
    }
    assert [x["id"] for x in lines] and {x["id"] for x in lines} == expected
    assert len(lines) == len(expected)
    assert all(isinstance(x["prediction"], str) and x["task"] for x in lines)


# -- errors a user can cause ----------------------------------------------------------------


def _run(argv, capsys):
    rc = cli.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    return rc, err[-1] if err else ""


def _train(tmp_path, data_dir, name, capsys, *flags):
    argv = ["train", "--workdir", str(tmp_path / "w"), "--data-dir", str(data_dir)]
    return _run([*argv, "--name", name, *flags, "--quiet"], capsys)


def test_missing_dataset_is_one_line(tmp_path, capsys):
    rc, err = _train(tmp_path, tmp_path, "spatial_qa/nothing_here", capsys)
    assert rc == 1 and "spatial_qa/nothing_here not found" in err


def test_missing_split_names_the_splits(data_dir, tmp_path, capsys):
    rc, err = _train(tmp_path, data_dir, NAME, capsys, "--split", "validation")
    assert rc == 1 and "no split 'validation'" in err and "test, train" in err


def test_split_without_scenes_is_left_out_and_named(tmp_path, capsys):
    from jax_spatial.datasets.build import build_dataset

    # One scene over two splits: it hashes into train, so test gets nothing and is left out.
    build_dataset(
        tmp_path,
        "one_scene",
        num_scenes=1,
        seed=0,
        views_per_scene=1,
        width=64,
        height=48,
        split_fractions=(("train", 0.5), ("test", 0.5)),
    )
    rc, err = _train(tmp_path, tmp_path, "spatial_qa/one_scene", capsys, "--split", "test")
    assert rc == 1 and "no split 'test'" in err and "it has train" in err


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("trained")
    trainer.train(tiny_config(data_dir, steps=2), work, show_progress=False)
    return work


def _predict(work, data_dir, tmp_path, capsys):
    argv = ["predict", "--workdir", str(work), "--data-dir", str(data_dir), "--name", NAME]
    return _run([*argv, "--out", str(tmp_path / "p.jsonl"), "--quiet"], capsys)


def test_corrupt_checkpoint_is_one_line(trained, data_dir, tmp_path, capsys):
    import shutil

    work = tmp_path / "w"
    shutil.copytree(trained, work)
    for path in (work / "checkpoints" / "2" / "meta").rglob("*"):
        if path.is_file():
            path.write_bytes(b"\x00garbage")
    rc, err = _predict(work, data_dir, tmp_path, capsys)
    assert rc == 1 and "checkpoint" in err and "unreadable" in err


def test_missing_checkpoint_is_one_line(data_dir, tmp_path, capsys):
    rc, err = _predict(tmp_path, data_dir, tmp_path, capsys)
    assert rc == 1 and "no checkpoints" in err


def test_tokenizer_of_another_run_is_refused(trained, data_dir, tmp_path, capsys):
    import shutil

    work = tmp_path / "w"
    shutil.copytree(trained, work)
    WordTokenizer.train(["a different vocabulary"]).save(work)
    rc, err = _predict(work, data_dir, tmp_path, capsys)
    assert rc == 1 and "does not match the checkpoint's tokenizer" in err


def _bench_from_split(data_dir, folder, max_items=6, seed=0):
    """A bench folder written by hand from the test split, each item rendered exactly as
    `predict` renders that question from the dataset (same format and colours seed)."""
    from PIL import Image

    source = data_lib.open_split(data_dir, NAME, "test")
    items = data_lib.eval_items(
        source, data_lib.question_index(source), seed=seed, max_items=max_items
    )
    read = data_lib.ReadConfig(image_size=(32, 32))
    (folder / "images").mkdir(parents=True)
    lines = []
    for n, (frame, k, fmt) in enumerate(items):
        image, question, answer, meta = data_lib.render_question(
            source, frame, k, fmt, seed + 7919 * frame + k, read
        )
        Image.fromarray(image).save(folder / "images" / f"{n}.png")  # lossless
        lines.append(
            {"id": f"item-{n}", "images": [f"images/{n}.png"], "question": question,
             "answer": answer, "canonical": meta["canonical"], "choices": meta["choices"],
             "task": meta["task"], "relation": meta["relation"], "format": meta["format_id"],
             "answer_type": meta["kind"], "source": meta["source"], "scene": meta["scene_id"],
             "meta": {}}
        )
    (folder / "bench.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return lines


def test_predict_on_a_bench_folder_answers_each_item_by_its_id(trained, data_dir, tmp_path, capsys):
    lines = _bench_from_split(data_dir, tmp_path / "bench")
    rc, err = _run(
        ["predict", "--workdir", str(trained), "--bench", str(tmp_path / "bench"),
         "--out", str(tmp_path / "b.jsonl"), "--quiet"], capsys,
    )
    assert rc == 0, err
    on_bench = [json.loads(x) for x in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert [r["id"] for r in on_bench] == [x["id"] for x in lines]
    assert [r["format_id"] for r in on_bench] == [x["format"] for x in lines]
    # The same questions read from the dataset: the same pixels and tokens reach the model,
    # so greedy decoding gives the same answers.
    rc, err = _predict(trained, data_dir, tmp_path, capsys)
    assert rc == 0, err
    on_split = [json.loads(x) for x in (tmp_path / "p.jsonl").read_text().splitlines()]
    picked = {r["question"]: r["prediction"] for r in on_split}
    assert [picked[x["question"]] for x in lines] == [r["prediction"] for r in on_bench]


def test_predict_on_a_broken_bench_is_one_line(trained, data_dir, tmp_path, capsys):
    argv = ["predict", "--workdir", str(trained), "--out", str(tmp_path / "p.jsonl"), "--quiet"]
    rc, err = _run([*argv, "--bench", str(tmp_path / "nowhere")], capsys)
    assert rc == 1 and "bench folder" in err and "not found" in err
    _bench_from_split(data_dir, tmp_path / "b", max_items=2)
    (tmp_path / "b" / "images" / "1.png").unlink()
    rc, err = _run([*argv, "--bench", str(tmp_path / "b")], capsys)
    assert rc == 1 and "1.png not found" in err
    with (tmp_path / "b" / "bench.jsonl").open("a") as f:
        f.write("{not json\n")
    rc, err = _run([*argv, "--bench", str(tmp_path / "b")], capsys)
    assert rc == 1 and "bench.jsonl:3: not JSON" in err
    rc, err = _run([*argv, "--bench", str(tmp_path / "b"), "--name", NAME], capsys)
    assert rc == 2 and "either --bench" in err


def test_bad_flags_are_usage_errors(tmp_path, capsys):
    rc = cli.main(["train", "--workdir", str(tmp_path), "--steps", "0"])
    assert rc == 2 and "--steps must be at least 1" in capsys.readouterr().err
    rc, err = _run(["train", "--workdir", str(tmp_path), "--model", "no_such_model"], capsys)
    assert rc == 2 and "unknown --model 'no_such_model'" in err


# -- input pipeline -------------------------------------------------------------------------


def test_processes_read_disjoint_slices_that_cover_the_split(data_dir):
    source = data_lib.open_split(data_dir, NAME, "train")
    index = data_lib.question_index(source)
    tok = WordTokenizer.train(["x"])
    read = data_lib.ReadConfig(image_size=(32, 32))
    seen = []
    for rank in range(2):
        ds = data_lib.train_batches(
            source, index, tok, read, 1, process_index=rank, process_count=2, num_epochs=1
        )
        seen.append([b["qa_id"][0] for b in ds])
    assert not set(seen[0]) & set(seen[1])
    everything = {f"{source[int(i)]['key'].decode()}/{int(k)}" for i, k in index}
    assert set(seen[0]) | set(seen[1]) == everything
    # A frame's questions stay on one process (its image is read once there).
    frames = [{q.rsplit("/", 1)[0] for q in ids} for ids in seen]
    assert not frames[0] & frames[1]


@pytest.mark.parametrize("length_group", [1, 3])
def test_iterator_state_restores_the_same_batches_and_formats(data_dir, length_group):
    source = data_lib.open_split(data_dir, NAME, "train")
    index = data_lib.question_index(source)
    tok = WordTokenizer.train(data_lib.tokenizer_texts(source, max_frames=2))
    # With length groups, state taken inside a window restores the rest of that window.
    read = data_lib.ReadConfig(image_size=(32, 32), seed=3, length_group=length_group)
    it = iter(data_lib.train_batches(source, index, tok, read, 3))
    next(it)
    state = it.get_state()
    expected = [next(it) for _ in range(3)]
    again = iter(data_lib.train_batches(source, index, tok, read, 3))
    again.set_state(state)
    for want in expected:
        got = next(again)
        assert got["qa_id"] == want["qa_id"] and got["format_id"] == want["format_id"]
        np.testing.assert_array_equal(got["text"], want["text"])
        np.testing.assert_array_equal(got["image"], want["image"])


def test_length_groups_batch_the_same_questions_by_like_lengths(data_dir):
    source = data_lib.open_split(data_dir, NAME, "train")
    index = data_lib.question_index(source)
    tok = WordTokenizer.train(data_lib.tokenizer_texts(source, max_frames=4))
    read = data_lib.ReadConfig(image_size=(32, 32), draw=False, seed=2)
    group, size = 4, 4

    def epoch(config):
        return list(data_lib.train_batches(source, index, tok, config, size, num_epochs=1))

    plain = epoch(read)
    grouped = epoch(dataclasses.replace(read, length_group=group))
    every = {f"{source[int(i)]['key'].decode()}/{int(k)}" for i, k in index}
    ids = [q for b in grouped for q in b["qa_id"]]
    # One epoch: as many questions as ungrouped batches hold, each once (the last window's
    # remainder is left out, as drop_remainder leaves out the last partial batch).
    assert len(ids) == len(set(ids)) == sum(len(b["qa_id"]) for b in plain)
    assert set(ids) <= every
    lengths = [b["mask_input"].sum(1) for b in grouped]
    for b, n in zip(grouped, lengths, strict=True):
        assert b["text"].shape[1] == batch_lib.bucket_length(int(n.max()), read.buckets)
    windows = [lengths[i : i + group] for i in range(0, len(lengths) - group + 1, group)]
    assert len(windows) >= 3
    for window in windows:
        # A window's batches cut its sorted lengths: their ranges do not overlap.
        spans = sorted((int(n.min()), int(n.max())) for n in window)
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))
    # ... and come in a random order, not always shortest first.
    assert any([int(n.max()) for n in w] != sorted(int(n.max()) for n in w) for w in windows)
    padded = lambda batches: sum(b["text"].shape[1] for b in batches)
    assert padded(grouped) < padded(plain)
    with pytest.raises(UserError, match="length_group"):
        data_lib.train_batches(source, index, tok, dataclasses.replace(read, length_group=0), 4)


def test_each_epoch_reshuffles_and_resamples_formats(data_dir):
    source = data_lib.open_split(data_dir, NAME, "train")
    index = data_lib.question_index(source)
    tok = WordTokenizer.train(["x"])
    read = data_lib.ReadConfig(image_size=(32, 32), draw=False)
    n = len(index)
    items = [b for b in data_lib.train_batches(source, index, tok, read, 1, num_epochs=2)]
    first, second = items[:n], items[n:]
    assert sorted(b["qa_id"][0] for b in first) == sorted(b["qa_id"][0] for b in second)
    assert [b["qa_id"][0] for b in first] != [b["qa_id"][0] for b in second]
    fmt = lambda part: {b["qa_id"][0]: b["format_id"][0] for b in part}
    assert fmt(first) != fmt(second)


@pytest.mark.slow
def test_worker_processes_give_the_same_batches(data_dir):
    source = data_lib.open_split(data_dir, NAME, "train")
    index = data_lib.question_index(source)
    tok = WordTokenizer.train(["x"])
    read = data_lib.ReadConfig(image_size=(32, 32))
    inline = iter(data_lib.train_batches(source, index, tok, read, 2))
    workers = iter(data_lib.train_batches(source, index, tok,
                                          dataclasses.replace(read, worker_count=2), 2))
    for _ in range(3):
        a, b = next(inline), next(workers)
        assert a["qa_id"] == b["qa_id"]
        np.testing.assert_array_equal(a["image"], b["image"])


@pytest.mark.slow
def test_the_loop_learns_a_visual_relation_from_pixels():
    """A red and a blue square at random places, "is the red one left of the blue one?": the
    answer is in the pixels only (the question never changes), so a model that beats chance on
    new images reads the image through the loop's own step, model and batch contract."""
    tok = WordTokenizer.train(["Is the red square left of the blue square? yes no"])
    config = trainer.default_config()
    model = trainer.build_model(
        {"name": "tiny_vlm", "vocab_size": tok.vocab_size, "preset": "test",
         "image_size": (32, 48), "width": 64, "enc_width": 64, "depth": 2}
    )
    opt = trainer.make_optimizer(model, config, 200)
    step = trainer.make_train_step()
    rng = np.random.default_rng(0)
    question = "Is the red square left of the blue square?"

    def make(n):
        images = np.full((n, 32, 48, 3), 128, np.uint8)
        items = []
        for i in range(n):
            xr, xb = rng.choice(np.arange(0, 44, 4), 2, replace=False)
            yr, yb = rng.integers(0, 28, 2)
            images[i, yr : yr + 4, xr : xr + 4] = (230, 30, 30)
            images[i, yb : yb + 4, xb : xb + 4] = (30, 30, 230)
            answer = "yes" if xr < xb else "no"
            items.append(batch_lib.encode(tok, question, answer))
        out = batch_lib.pad_tokens(items, 32, tok.pad_id)
        out["image"] = images
        return {k: jnp.asarray(v) for k, v in out.items()}

    for _ in range(200):
        step(model, opt, make(32))
    test = make(200)
    answer_at = int(test["mask_input"][0].sum()) - 2  # <bos> question <sep> ANSWER <eos>
    logits = model(test["image"], test["text"], test["mask_ar"], test["mask_input"])
    predicted = np.asarray(jnp.argmax(logits[:, answer_at - 1], -1))
    accuracy = (predicted == np.asarray(test["text"][:, answer_at])).mean()
    assert accuracy > 0.85, accuracy  # chance is 0.5


def test_unknown_quota_is_one_line(tmp_path):
    from jax_spatial.datasets.build import build_dataset
    from jax_spatial.errors import UserError

    with pytest.raises(UserError, match="unknown quota positon; known: .*position"):
        build_dataset(tmp_path, "q", quotas={"positon": 12}, num_scenes=1)
    assert not (tmp_path / "spatial_qa").exists()


def test_sincos_image_position_tells_every_patch_apart():
    from jax_spatial.train.models.tiny_vlm import sincos_2d

    table = sincos_2d(6, 8, 128)
    assert table.shape == (48, 128) and np.abs(table).max() <= 1.0
    distances = np.linalg.norm(table[:, None] - table[None], axis=-1)
    assert distances[~np.eye(48, dtype=bool)].min() > 0.1
    # Rows and columns live in separate halves: moving along a row changes only the column half.
    assert np.allclose(table[0, :64], table[7, :64])
    assert not np.allclose(table[0, 64:], table[7, 64:])
    tok = WordTokenizer.train(["a"])
    model = trainer.build_model({"name": "tiny_vlm", "vocab_size": tok.vocab_size,
                                 "preset": "test", "image_position": "sincos"})
    image = jnp.zeros((1, 32, 32, 3), jnp.uint8)
    text = jnp.asarray([[tok.bos_id, tok.eos_id]])
    ones = jnp.ones_like(text)
    assert np.isfinite(np.asarray(model(image, text, ones * 0, ones))).all()


def test_question_index_filters_tasks(data_dir):
    source = data_lib.open_split(data_dir, NAME, "train")
    every = data_lib.question_index(source)
    position = data_lib.question_index(source, tasks=("position",))
    assert 0 < len(position) < len(every)
    assert all(source[int(i)]["qa"]["task"][int(k)] == b"position" for i, k in position)


# -- grounding: where a question names each object, and the loss that looks there ----------


def _formatted(data_dir, frames=4):
    """Every (observation, record, formatted question) of the first frames, in every format."""
    from jax_spatial import reading
    from jax_spatial.formats.expand import expand_formats

    source = data_lib.open_split(data_dir, NAME, "train")
    for i in range(min(frames, len(source))):
        obs = reading.example_observation(source[i])
        for k in range(len(source[i]["qa"]["kind"])):
            qa = reading.example_qa(source[i], k)
            for fqa in expand_formats(obs, qa, select="all", seed=0, qa_id=f"{i}/{k}"):
                yield obs, qa, fqa


def test_mention_spans_name_each_object_in_every_format(data_dir):
    """Each span is exactly the format's name of its object (`object_reference`), every
    object of the record is named, and the names in multiple-choice options count too."""
    from jax_spatial.formats.expand import object_reference
    from jax_spatial.formats.mentions import mention_spans

    seen_formats, multiple_choice = set(), 0
    for obs, qa, fqa in _formatted(data_dir):
        spans = mention_spans(obs, qa, fqa)
        assert {o for _, _, o in spans} == set(qa.objects), (fqa.format_id, fqa.question)
        prompts = {p.object: p for p in fqa.prompts}
        for start, end, o in spans:
            name, _ = object_reference(obs, o, fqa.text_ref, prompts.get(o))
            assert fqa.question[start:end].casefold() == name.casefold()
        if qa.kind == "multiple_choice" and qa.objects:
            multiple_choice += 1
            assert len(spans) >= 2 * len(set(qa.objects))  # question + options
        seen_formats.add(fqa.format_id)
    assert len(seen_formats) >= 10 and multiple_choice


def test_encode_with_offsets_points_at_the_characters():
    tok = WordTokenizer.train(["Is the chair left of <ref>the table</ref>?"])
    text = "Is the zebra left of <ref>the table</ref>?"  # "zebra": never seen
    ids, spans = tok.encode_with_offsets(text)
    assert ids == tok.encode(text) and len(spans) == len(ids)
    assert [text[a:b] for a, b in spans[:2]] == ["Is", " the"]
    zebra = [text[a:b] for a, b in spans if "zebra" in text[a:b]]
    assert zebra and set(zebra) == {" zebra"}  # its character tokens share the word's span


def test_ground_spans_cover_the_names_tokens(data_dir):
    from jax_spatial.formats.mentions import mention_spans

    source = data_lib.open_split(data_dir, NAME, "train")
    tok = WordTokenizer.train(data_lib.tokenizer_texts(source, max_frames=4))
    checked = 0
    for obs, qa, fqa in _formatted(data_dir, frames=2):
        spans = mention_spans(obs, qa, fqa)
        mentions = [(s, e, (0.1, 0.2, 0.3, 0.4 + o / 100)) for s, e, o in spans]
        g = batch_lib.ground_spans(tok, fqa.question, mentions)
        text = batch_lib.encode(tok, fqa.question, "yes")["text"]
        rows = [r for r in range(batch_lib.MAX_MENTIONS) if g["ground_span"][r, 1] > 0]
        assert len(rows) == min(len(spans), batch_lib.MAX_MENTIONS)
        for r, (s, e, o) in zip(rows, spans, strict=False):
            a, b = g["ground_span"][r]
            assert tok.decode(text[a:b]).strip() == fqa.question[s:e]
            np.testing.assert_allclose(g["ground_box"][r], (0.1, 0.2, 0.3, 0.4 + o / 100))
        checked += len(rows)
    assert checked
    # A tokenizer that cannot give offsets gives no targets: every row is padding.
    class NoOffsets:
        pad_id, bos_id, eos_id = 0, 1, 2

        def encode(self, text):
            return [5] * len(text.split())

    g = batch_lib.ground_spans(NoOffsets(), "Is the chair left?", [(3, 12, (0, 0, 1, 1))])
    assert not g["ground_span"].any()


_PAIR_FACT = {  # relation -> (fact, the first object's sign when the answer is yes)
    "left_of": (0, 0), "right_of": (0, 1), "in_front_of": (1, 0), "behind": (1, 1),
    "above": (2, 1), "below": (2, 0), "bigger_than": (3, 1), "smaller_than": (3, 0),
    "taller_than": (4, 1), "shorter_than": (4, 0), "wider_than": (5, 1), "thinner_than": (5, 0),
}  # fmt: skip


def test_pair_signs_agree_with_the_engines_yes_no_answers(data_dir):
    """The pair sign of a relation's fact says what the engine's relation decided: for every
    yes/no position and size question of the tiny set, the first object is further right /
    away / up, bigger, taller or wider exactly when the answer says so (the engine decides with
    margins, so a sign is never against it; it may only be missing for a near tie)."""
    from jax_spatial import reading
    from jax_spatial.train import facts as facts_lib

    source = data_lib.open_split(data_dir, NAME, "train")
    checked = 0
    for i in range(len(source)):
        obs = reading.example_observation(source[i])
        facts = facts_lib.object_facts(obs)
        assert facts.shape == (len(obs.categories), facts_lib.NUM_FACTS)
        assert np.isfinite(facts).all() and np.abs(facts).max() < 10
        for k in range(len(source[i]["qa"]["kind"])):
            qa = reading.example_qa(source[i], k)
            if qa.kind != "yes_no" or qa.relation not in _PAIR_FACT or len(qa.objects) < 2:
                continue  # ("is there a table right of the box?" names one object)
            fact, when_yes = _PAIR_FACT[qa.relation]
            sign = facts_lib.pair_signs(facts, qa.objects)[fact]
            assert sign != -1, (qa.question, facts[qa.objects[:2]])
            assert (sign == when_yes) == (qa.canonical == "yes"), qa.question
            checked += 1
    assert checked >= 20
    assert (facts_lib.pair_signs(facts, [0]) == -1).all()  # one object: no target
    assert (facts_lib.pair_signs(facts, [0, 0]) == -1).all()


@pytest.mark.parametrize("jit", [False, True])
def test_grounding_objective_adds_facts_and_pair_terms_by_hand(jit):
    """Facts: mean |error| over the facts of the valid names; pair: mean sigmoid cross-entropy
    over the targets (-1 is none). Float32: 1e-6."""
    f = batch_lib.NUM_FACTS
    named = {
        "scores": jnp.zeros((1, 1, 2, 4)),
        "boxes": jnp.asarray([[[0.0, 0.0, 1.0, 1.0], [0.5, 0.5, 0.5, 0.5]]]),
        "facts": jnp.asarray([[[1.0] * f, [9.0] * f]]),
        "pair": jnp.asarray([[2.0, -1.0] + [5.0] * (f - 2)]),
    }
    span = jnp.asarray([[[1, 3], [0, 0]]])  # the second name is padding
    box = jnp.asarray([[[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]]])
    facts = jnp.asarray([[[0.5] * f, [0.0] * f]])
    pair = jnp.asarray([[1, 0] + [-1] * (f - 2)])

    def fn(named, span, box, facts, pair):
        return batch_lib.grounding_objective(named, span, box, (2, 2), facts, pair)

    fn = jax.jit(fn) if jit else fn
    base = float(batch_lib.grounding_objective(named, span, box, (2, 2)))
    look = np.log(4.0)  # uniform scores over 4 cells, box l1 0
    np.testing.assert_allclose(base, look, atol=1e-6)
    bce = (np.log1p(np.exp(-2.0)) + np.log1p(np.exp(-1.0))) / 2
    np.testing.assert_allclose(float(fn(named, span, box, facts, pair)), look + 0.5 + bce,
                               atol=1e-6)  # fmt: skip


@pytest.mark.parametrize("jit", [False, True])
def test_ground_loss_against_a_hand_computed_target(jit):
    """A box covering cell (0, 0) fully and half of cell (0, 1): target (2/3, 1/3, 0, 0) on a
    2 x 2 grid; padding rows and empty boxes add nothing. Float32: 1e-6."""
    logits = jnp.asarray([[[1.0, 2.0, 0.5, -1.0], [3.0, 0.0, 0.0, 0.0], [0.0, 9.0, 0.0, 0.0]]])
    span = jnp.asarray([[[3, 5], [0, 0], [2, 4]]])  # the second row is padding
    box = jnp.asarray([[[0.0, 0.0, 0.75, 0.5], [0.0, 0.0, 1.0, 1.0], [0.2, 0.2, 0.2, 0.2]]])
    fn = jax.jit(batch_lib.ground_loss, static_argnums=3) if jit else batch_lib.ground_loss
    total, n = fn(logits, span, box, (2, 2))
    log_p = jax.nn.log_softmax(logits[0, 0])
    expected = -(2 / 3 * log_p[0] + 1 / 3 * log_p[1])
    assert float(n) == 1.0
    np.testing.assert_allclose(float(total), float(expected), atol=1e-6)


def test_grounding_scores_leave_the_logits_alone_and_the_loss_teaches_looking(data_dir):
    """With grounding targets the model returns the same logits plus `[B, G, M, N]` scores;
    steps with `ground_weight` lower the grounding loss on a repeated batch, and the first
    step reports the same answer loss as a step without it."""
    config = tiny_config(data_dir)
    tok, model, opt = _fresh(data_dir, config)
    source = data_lib.open_split(data_dir, NAME, "train")
    read = data_lib.ReadConfig(image_size=(32, 32), ground=True)
    host = next(iter(data_lib.train_batches(source, data_lib.question_index(source), tok,
                                            read, 4)))  # fmt: skip
    batch = {k: jnp.asarray(host[k]) for k in data_lib.ARRAY_FIELDS + data_lib.GROUND_FIELDS}
    assert int(jnp.sum(batch["ground_span"][..., 1] > batch["ground_span"][..., 0])) > 0
    args = (batch["image"], batch["text"], batch["mask_ar"], batch["mask_input"])
    logits, named = model(*args, ground_span=batch["ground_span"])
    np.testing.assert_array_equal(np.asarray(logits), np.asarray(model(*args)))
    n = model.config.num_image_tokens
    layers = [i for i in model.config.ground_layers if i < model.config.depth]  # the test preset: 1
    assert named["scores"].shape == (4, len(layers), batch_lib.MAX_MENTIONS, n)
    boxes = np.asarray(named["boxes"])
    assert boxes.shape == (4, batch_lib.MAX_MENTIONS, 4) and ((boxes > 0) & (boxes < 1)).all()
    assert named["facts"].shape == (4, batch_lib.MAX_MENTIONS, batch_lib.NUM_FACTS)
    assert named["pair"].shape == (4, batch_lib.NUM_FACTS)
    assert batch["pair_sign"].shape == (4, batch_lib.NUM_FACTS)
    _, plain_model, plain_opt = _fresh(data_dir, config)
    plain = trainer.make_train_step()(plain_model, plain_opt, batch)
    step = trainer.make_train_step(1, 1.0)
    outs = [step(model, opt, batch) for _ in range(6)]
    np.testing.assert_allclose(float(outs[0]["loss"]), float(plain["loss"]), rtol=1e-6)
    assert float(outs[-1]["ground_loss"]) < float(outs[0]["ground_loss"])


def test_a_run_with_grounding_logs_its_loss_and_a_bad_weight_is_one_line(data_dir, tmp_path):
    """-1 (the model's default) is 1 for tiny_vlm: its run logs a grounding loss."""
    summary = trainer.train(tiny_config(data_dir, ground_weight=-1.0, steps=2), tmp_path / "g",
                            show_progress=False)  # fmt: skip
    rows = [json.loads(x) for x in (tmp_path / "g" / "metrics.jsonl").read_text().splitlines()]
    assert summary["step"] == 2 and any("ground_loss" in r for r in rows)
    with pytest.raises(trainer.UserError, match="ground_weight must be at least 0"):
        trainer.train(tiny_config(data_dir, ground_weight=-0.5), tmp_path / "bad")
