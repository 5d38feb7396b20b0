"""Where a trained grounding model goes wrong: finding the named object, or reading it off.

For held-out position and size questions of a built dataset, runs a `tiny_vlm` workdir's
checkpoint with the question's grounding targets and reports, per way of naming the objects
(words, written coordinates, drawn prompts named by colour):

* look: how often the cell a name's last score map ranks first lies in its object's box;
* facts: how often the facts read off the question's first two names order those two
  objects the right way (right, forward, up, volume), from the names' states alone;
* pair: the same from the question's end (`pair_sign` head).

    python bench/grounding_probe.py --workdir out/learning/runs/trained \
        --data-dir out/learning/tfds --name spatial_qa/learn_test --items 600

A name that finds its object but whose facts still order the pair at chance points at the
read-out; a name that does not find it, at recognition.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys

import numpy as np

from jax_spatial.errors import UserError
from jax_spatial.train.evaluate import naming

ORDERED = ("right", "forward", "up", "volume")
TIE = 0.05  # scaled fact units (`facts._SCALE`): closer pairs are left out as too close to call


def look_hit(scores: np.ndarray, box: np.ndarray, grid) -> bool:
    """Whether the top cell of `scores [N]` (row-major over `grid`) overlaps `box` (0..1)."""
    gh, gw = grid
    r, c = divmod(int(np.argmax(scores)), gw)
    x1, y1, x2, y2 = box
    return bool(c + 1 > x1 * gw and c < x2 * gw and r + 1 > y1 * gh and r < y2 * gh)


def probe(model, tokenizer, rows, batch_size: int = 32) -> dict:
    """`{(task, naming): {measure: [0/1, ...]}}` over `rows` of `(image, tokens, targets,
    meta)` (`data.render_question` with `ground=True`, `batch.encode`, `batch.ground_spans`)."""
    import jax

    from jax_spatial.train import batch as batch_lib
    from jax_spatial.train.facts import FACT_NAMES

    forward = jax.jit(lambda *a: model(*a[:4], ground_span=a[4]))
    grid = model.config.token_grid
    out: dict = collections.defaultdict(lambda: collections.defaultdict(list))
    for s in range(0, len(rows), batch_size):
        chunk = rows[s : s + batch_size]
        length = batch_lib.bucket_length(max(len(r[1]["text"]) for r in chunk))
        padded = batch_lib.pad_tokens([r[1] for r in chunk], length, tokenizer.pad_id)
        span = np.stack([r[2]["ground_span"] for r in chunk])
        image = np.stack([r[0] for r in chunk])
        _, named = forward(image, padded["text"], padded["mask_ar"], padded["mask_input"], span)
        scores, facts, pair = (np.asarray(named[k]) for k in ("scores", "facts", "pair"))
        for i, (_, _, g, meta) in enumerate(chunk):
            cell = out[(meta["task"], naming(meta["format_id"]))]
            valid = np.flatnonzero(g["ground_span"][:, 1] > g["ground_span"][:, 0])
            for j in valid:
                cell["look"].append(look_hit(scores[i, -1, j], g["ground_box"][j], grid))
            for name in ORDERED:
                f = FACT_NAMES.index(name)
                if len(valid) >= 2:  # the first two names, in the order the question gives them
                    a, b = valid[:2]
                    truth = g["ground_facts"][a, f] - g["ground_facts"][b, f]
                    if abs(truth) > TIE:
                        read = facts[i, a, f] - facts[i, b, f]
                        cell[f"facts/{name}"].append(bool((read > 0) == (truth > 0)))
                sign = int(g["pair_sign"][f])
                if sign >= 0:
                    cell[f"pair/{name}"].append((pair[i, f] > 0) == bool(sign))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", required=True, help="a tiny_vlm run's workdir")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--name", required=True, help="TFDS name, e.g. spatial_qa/learn_test")
    parser.add_argument("--split", default="test")
    parser.add_argument("--items", type=int, default=600, help="(question, format) items")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="also write the table here")
    args = parser.parse_args(argv)
    try:
        return run(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


def run(args) -> int:
    from jax_spatial.train import batch as batch_lib
    from jax_spatial.train import data as data_lib
    from jax_spatial.train import trainer

    model, tokenizer, _, _ = trainer.load_for_inference(args.workdir)
    if not getattr(model, "supports_grounding", False):
        raise UserError(f"{args.workdir}: model {type(model).__name__} has no grounding head")
    source = data_lib.open_split(args.data_dir, args.name, args.split)
    index = data_lib.question_index(source, "all", ("position", "size"))
    items = data_lib.eval_items(
        source, index, "all", every_format=True, seed=args.seed, max_items=args.items
    )
    read = data_lib.ReadConfig(image_size=tuple(model.config.image_size), ground=True)
    rows = []
    for frame, k, format_id in items:
        image, question, _, meta = data_lib.render_question(source, frame, k, format_id, 0, read)
        tokens = batch_lib.encode(tokenizer, question, batch_lib.target_text(meta, "short"))
        targets = batch_lib.ground_spans(
            tokenizer, question, meta["mentions"], meta["pair_sign"], meta["relation"]
        )
        rows.append((image, tokens, targets, meta))
    table = probe(model, tokenizer, rows)
    measures = ["look", *(f"facts/{n}" for n in ORDERED), *(f"pair/{n}" for n in ORDERED)]
    print("| task | objects named by | questions | " + " | ".join(measures) + " |")
    print("|---" * (len(measures) + 3) + "|")
    counts = collections.Counter((r[3]["task"], naming(r[3]["format_id"])) for r in rows)
    report = {}
    for key in sorted(table):
        cell = table[key]
        accs = {m: 100 * float(np.mean(cell[m])) for m in measures if cell.get(m)}
        count = counts[key]
        report["/".join(key)] = {"questions": count, **{m: round(v, 1) for m, v in accs.items()}}
        shown = [f"{accs[m]:.1f}" if m in accs else "-" for m in measures]
        print(f"| {key[0]} | {key[1]} | {count} | " + " | ".join(shown) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
