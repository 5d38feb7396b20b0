r"""How long until `tiny_vlm` learns one slice of the questions? A fast learning diagnostic.

    python bench/learning_slice.py --data-dir D --train spatial_qa/learn_big \
        --test spatial_qa/learn_test [--formats image_text/boxes] [--tasks position] \
        [--relations left_of] [--kinds yes_no] [--steps 1200] [--fixed-colours] [--blind] \
        [--ground 1.0]

Renders a fixed set of training and held-out questions once (the slice: formats, tasks,
relations, answer kinds), then trains `tiny_vlm` on them with the loop's own jitted step and
prints, every `--eval-every` steps, the loss and the accuracy of the first answer token
(yes/no or the letter: the whole answer for these questions) on training and held-out
questions, per relation and per format. Rendering happens before the clock starts, so the
steps measure learning only. `bench/learning.py` is the full benchmark; this script finds
out, cheaply, whether and when a slice is learnable at all.

`--ground W` adds the grounding loss with weight W (`train.batch.grounding_objective`: each
object name of the question is taught to look at its object and to read off its box) and
prints how often a name's attention puts more mass on its own object than on the other one
(`own_box`), the mean error of the box it reads off (`box_l1`, in image fractions) and how
often the end of the question has the pair signs and the relation right (`pair_sign`,
`relation`; `train.facts`).

`--fixed-colours` draws the first object a question names always in red and the second in
blue (the formats normally sample the colours per question): it separates "find the red box
and compare positions" from "bind the colour word of the question to a box".
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def render(source, args, n: int, seed: int):
    import numpy as np

    from jax_spatial.train import data as data_lib

    index = data_lib.question_index(
        source, args.formats, tasks=args.tasks.split(",") if args.tasks else None
    )
    read = data_lib.ReadConfig(formats=data_lib.allowed_formats(args.formats), ground=True)
    relations = set(args.relations.split(",")) if args.relations else None
    kinds = set(args.kinds.split(",")) if args.kinds else None
    rng = np.random.default_rng(seed)
    rows = []
    for j in rng.permutation(len(index)):
        frame, k = index[j]
        image, question, _, meta = data_lib.render_question(
            source, frame, k, None, int(rng.integers(2**31)), read
        )
        if (relations and meta["relation"] not in relations) or (
            kinds and meta["kind"] not in kinds
        ):
            continue
        rows.append((image, question, meta["canonical"], meta["relation"], meta["format_id"],
                     meta["mentions"], meta["task"], meta["pair_sign"]))  # fmt: skip
        if len(rows) >= n:
            break
    return rows


def encode(rows, tokenizer, length: int, blind: bool):
    import numpy as np

    from jax_spatial.train import batch as batch_lib
    from jax_spatial.train import data as data_lib

    tokens = [batch_lib.encode(tokenizer, q, c) for _, q, c, *_ in rows]
    out = batch_lib.pad_tokens(tokens, length, tokenizer.pad_id)
    out["image"] = np.stack([r[0] for r in rows])
    if blind:
        out["image"] = np.zeros_like(out["image"])
    targets = [batch_lib.ground_spans(tokenizer, r[1], r[5], r[7], r[3]) for r in rows]
    for name in data_lib.GROUND_FIELDS:
        out[name] = np.stack([t[name] for t in targets])
    return out


def own_box_share(scores, span, box, grid):
    """Of the names with another object named beside them: the fraction whose attention
    (`scores [B, G, M, N]`, first layer) puts more mass on their own object's cells than
    on the other's."""
    import numpy as np

    gh, gw = grid
    cy, cx = (np.arange(gh) + 0.5) / gh, (np.arange(gw) + 0.5) / gw

    def cells(b):
        return ((cy[:, None] >= b[1]) & (cy[:, None] <= b[3])
                & (cx[None] >= b[0]) & (cx[None] <= b[2])).reshape(-1)  # fmt: skip

    hits = []
    for j in range(len(span)):
        valid = [m for m in range(span.shape[1]) if span[j, m, 1] > span[j, m, 0]]
        for m in valid:
            other = next((o for o in valid if not np.allclose(box[j, o], box[j, m])), None)
            if other is None:
                continue
            p = np.exp(scores[j, 0, m] - scores[j, 0, m].max())
            hits.append(p[cells(box[j, m])].sum() > p[cells(box[j, other])].sum())
    return float(np.mean(hits)) if hits else float("nan")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--train", required=True, help="TFDS name of the training set")
    parser.add_argument("--test", required=True, help="TFDS name of the held-out set")
    parser.add_argument("--formats", default="image_text/boxes")
    parser.add_argument("--tasks", default="position")
    parser.add_argument("--relations", default="")
    parser.add_argument("--kinds", default="")
    parser.add_argument("--n-train", type=int, default=6000)
    parser.add_argument("--n-test", type=int, default=600)
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eval-every", type=int, default=200)
    parser.add_argument("--overrides", default="{}", help='model fields as JSON, e.g. '
                        '\'{"image_position": "sincos"}\'')
    parser.add_argument("--fixed-colours", action="store_true")
    parser.add_argument("--blind", action="store_true")
    parser.add_argument("--ground", type=float, default=0.0, help="grounding loss weight")
    parser.add_argument("--out", help="write the curve as JSON here")
    args = parser.parse_args(argv)

    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    from jax_spatial.train import batch as batch_lib
    from jax_spatial.train import data as data_lib
    from jax_spatial.train import trainer
    from jax_spatial.train.tokenizer import WordTokenizer

    if args.fixed_colours:
        from jax_spatial.formats import expand

        # The formats' colour sampler, replaced for this diagnostic only.
        expand._colours = lambda n, rng: ["red", "blue", "yellow", "green"][:n]

    t = time.perf_counter()
    train = render(data_lib.open_split(args.data_dir, args.train, "train"), args, args.n_train, 0)
    test = render(data_lib.open_split(args.data_dir, args.test, "test"), args, args.n_test, 1)
    if not train or not test:
        print("no question of the training or held-out set is in the slice", file=sys.stderr)
        return 1
    print(f"rendered {len(train)} training and {len(test)} held-out questions "
          f"in {time.perf_counter() - t:.0f} s", flush=True)
    tokenizer = WordTokenizer.train([r[1] for r in train + test] + [r[2] for r in train + test])
    length = batch_lib.bucket_length(
        max(len(batch_lib.encode(tokenizer, r[1], r[2])["text"]) for r in train + test)
    )
    tr, te = (encode(rows, tokenizer, length, args.blind) for rows in (train, test))

    overrides = {k: tuple(v) if isinstance(v, list) else v
                 for k, v in json.loads(args.overrides).items()}
    model = trainer.build_model(
        {"name": "tiny_vlm", "vocab_size": tokenizer.vocab_size, "preset": "cpu",
         "dtype": "float32", **overrides}
    )
    config = trainer.default_config()
    config.optim.lr = args.lr
    optimizer = trainer.make_optimizer(model, config, args.steps)
    step = trainer.make_train_step(1, args.ground)
    # Without grounding the step takes only the batch contract's arrays.
    fed = [k for k in tr if args.ground or k not in data_lib.GROUND_FIELDS]

    @nnx.jit
    def first_token_right(model, b):
        logits, named = model(b["image"], b["text"], b["mask_ar"], b["mask_input"],
                              ground_span=b["ground_span"])  # fmt: skip
        first = jnp.argmax(b["mask_loss"], axis=1)  # the first answer token
        predicted = jnp.take_along_axis(jnp.argmax(logits, -1), (first - 1)[:, None], 1)[:, 0]
        right = predicted == jnp.take_along_axis(b["text"], first[:, None], 1)[:, 0]
        return right, named["scores"], named["boxes"], named.get("pair"), named.get("relation")

    def accuracy(d, n, grounding=None):
        n = min(n, len(d["text"]))
        right, share, l1, pair_right, relation_right = [], [], [], [], []
        for i in range(0, n, 100):
            b = {k: v[i:i + 100] for k, v in d.items()}
            r, scores, boxes, pair, relation = first_token_right(
                model, {k: jnp.asarray(v) for k, v in b.items()}
            )
            right.append(np.asarray(r))
            if grounding is not None and pair is not None:
                has = b["pair_sign"] >= 0
                pair_right.append(((np.asarray(pair) > 0) == (b["pair_sign"] == 1))[has])
                has = b["relation_id"] >= 0
                relation_right.append((np.argmax(relation, -1) == b["relation_id"])[has])
            if grounding is not None:
                valid = b["ground_span"][..., 1] > b["ground_span"][..., 0]
                share.append(own_box_share(np.asarray(scores), b["ground_span"],
                                           b["ground_box"], model.config.token_grid))  # fmt: skip
                l1.append(np.abs(np.asarray(boxes) - b["ground_box"]).mean(-1)[valid])
        if grounding is not None:
            grounding["own_box"] = round(100 * float(np.nanmean(share)), 1)
            grounding["box_l1"] = round(float(np.concatenate(l1).mean()), 3)
            if pair_right:
                grounding["pair_sign"] = round(100 * float(np.concatenate(pair_right).mean()), 1)
                grounding["relation"] = round(
                    100 * float(np.concatenate(relation_right).mean()), 1
                )
        return np.concatenate(right)

    def by(rows, right, field):
        keys = sorted({r[field] for r in rows})
        return {k: round(100 * float(right[[r[field] == k for r in rows]].mean()), 1)
                for k in keys}

    rng = np.random.default_rng(0)
    curve, losses, t = [], [], time.perf_counter()
    for s in range(1, args.steps + 1):
        pick = rng.choice(len(tr["text"]), args.batch_size, replace=False)
        metrics = step(model, optimizer, {k: jnp.asarray(tr[k][pick]) for k in fed})
        losses.append(float(metrics["loss"]))
        if s % args.eval_every == 0 or s == args.steps:
            grounding = {}
            right = accuracy(te, len(test), grounding)
            row = {
                "step": s,
                "loss": round(float(np.mean(losses[-args.eval_every:])), 4),
                "train": round(100 * float(accuracy(tr, 600).mean()), 1),
                "held_out": round(100 * float(right.mean()), 1),
                "per_task": by(test, right, 6),
                "per_relation": by(test, right, 3),
                "per_format": by(test, right, 4),
                **grounding,
                "seconds": round(time.perf_counter() - t, 1),
            }
            curve.append(row)
            print(json.dumps(row), flush=True)
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps({"args": vars(args), "curve": curve}))
    print(f"{jax.device_count()} device(s); {args.steps} steps in {time.perf_counter() - t:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
