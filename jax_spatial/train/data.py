"""Input pipeline: a built `spatial_qa` split -> shuffled questions -> token batches (grain).

    source = open_split(data_dir, "spatial_qa/procedural_small", "train")
    index = question_index(source, formats="all")          # [(frame, question), ...]
    ds = train_batches(source, index, tokenizer, config, batch_size=32)
    it = iter(ds); batch = next(it)                        # train.batch contract + meta lists
    it.get_state()                                         # checkpointable (train.checkpoint)

Stages: one element per question (not per frame: questions of a frame would otherwise sit in
the same batch), shuffled globally each epoch -> a format sampled per element per epoch
among the question's suitable ones (grain's per-element Generator, so a resumed run samples
the same) -> re-phrased and its overlays drawn (`formats.expand`, `formats.draw`, the
`jax_spatial.reading` path) -> letterboxed to the model's size -> tokenized -> batched with
the length padded to a bucket. With `ReadConfig.length_group` > 1 the questions of that many
batches are sorted by length and cut into batches first (`_LengthGroups`), so a batch pads to
its own questions' longest: the 19 formats' questions run from 10 to 130 tokens, and plain
batches of the mixture nearly all pad to 128.

Multi-host: each process takes every `process_count`-th frame (`process_index::count`),
`common_length` pads the processes' batches to one length, and `global_batch` assembles the
process-local arrays into global ones (`jax.make_array_from_process_local_data`).
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Iterator, Sequence

import grain
import numpy as np

from jax_spatial import reading
from jax_spatial.errors import UserError
from jax_spatial.formats.spec import FORMATS
from jax_spatial.train import batch as batch_lib
from jax_spatial.train import facts as facts_lib

META_FIELDS = ("qa_id", "task", "relation", "kind", "canonical", "format_id", "question")
TEXT_FIELDS = ("text", "mask_ar", "mask_loss", "mask_input")  # `[B, L]`, padded together
ARRAY_FIELDS = ("image", *TEXT_FIELDS)
# with `ReadConfig.ground` (`batch.ground_spans`)
GROUND_FIELDS = ("ground_span", "ground_box", "ground_facts", "pair_sign", "relation_id")


@dataclasses.dataclass(frozen=True)
class ReadConfig:
    """How questions become model inputs.

    Attributes:
      image_size: `(H, W)` the model sees (letterboxed).
      answer_style: "short" (the canonical answer: "yes", "B", "3") or "full" (the sentence).
      formats: "all" (sample among every suitable format) or a tuple of format ids.
      draw: draw the sampled format's overlays (off: every format sees the raw image).
      blind: zero every image (the language-only baseline).
      seed: shuffling and format sampling.
      worker_count: grain worker processes (`mp_prefetch`); 0 reads in the main process.
      buckets: padded text lengths.
      length_group: sort the questions of this many consecutive batches by token length
        and cut them into batches, given in a random order (1: batches as shuffled). A step
        costs by its padded length, so batches of like lengths cost less; the same
        questions are seen in the same epoch either way.
      ground: also give each element its grounding targets (`batch.ground_spans`: where
        the question names each object, that object's box and facts, the pair signs of the
        question's two objects and the relation it asks; `train.facts`).
    """

    image_size: tuple[int, int] = (96, 128)
    answer_style: str = "short"
    formats: str | tuple[str, ...] = "all"
    draw: bool = True
    blind: bool = False
    seed: int = 0
    worker_count: int = 0
    buckets: tuple[int, ...] = batch_lib.LENGTH_BUCKETS
    length_group: int = 1
    ground: bool = False


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def allowed_formats(formats) -> tuple[str, ...]:
    if formats in ("all", None):
        return FORMATS
    if isinstance(formats, str):
        formats = tuple(f for f in formats.split(",") if f)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise UserError(f"unknown formats {unknown}; known: {', '.join(FORMATS)}")
    return tuple(formats)


def open_split(data_dir: str | pathlib.Path | None, name: str, split: str):
    """`tfds.data_source` of a built split, with one-line errors for what is missing.

    `name` is a TFDS name (`spatial_qa/procedural_small`); without a name, `data_dir` is the
    dataset's version folder itself.
    """
    import tensorflow_datasets as tfds

    import jax_spatial.datasets.spatial_qa  # noqa: F401 - registers the builder

    where = f"{name} in {data_dir}" if name else str(data_dir)
    if name and data_dir and "/" in name:
        folder = pathlib.Path(data_dir).expanduser() / name.split(":")[0]
        if not folder.is_dir():
            raise UserError(
                f"dataset {name} not found in {data_dir} (no {folder}); build it with "
                "`jax-spatial build-data` or `tfds build jax_spatial/datasets/spatial_qa`"
            )
    try:
        if name:
            builder = tfds.builder(name, data_dir=str(data_dir) if data_dir else None)
            if not builder.is_prepared():
                raise UserError(
                    f"dataset {where} is not built; build it with `jax-spatial build-data` or "
                    f"`tfds build jax_spatial/datasets/spatial_qa --config=...`"
                )
        else:
            if not data_dir or not pathlib.Path(data_dir).is_dir():
                raise UserError(f"dataset folder {data_dir} not found")
            builder = tfds.builder_from_directory(str(data_dir))
    except UserError:
        raise
    except Exception as error:  # noqa: BLE001 - tfds raises many kinds for a bad name/dir
        raise UserError(f"cannot open dataset {where}: {error}".splitlines()[0]) from error
    splits = sorted(builder.info.splits.keys())
    if split not in builder.info.splits:
        raise UserError(f"dataset {where} has no split {split!r}; it has {', '.join(splits)}")
    if builder.info.splits[split].num_examples == 0:
        raise UserError(f"split {split!r} of {where} is empty")
    try:
        return builder.as_data_source(split=split)
    except Exception as error:  # noqa: BLE001
        message = f"cannot read split {split!r} of {where}: {error}".splitlines()[0]
        raise UserError(message) from error


def question_index(source, formats="all", tasks=None) -> np.ndarray:
    """`[M, 2]` int32 `(frame, question)` of every question with an allowed suitable format
    (and, when `tasks` names some, of those tasks only)."""
    allowed = set(allowed_formats(formats))
    wanted = set(tasks) if tasks else None
    rows = []
    for i in range(len(source)):
        qa = source[i]["qa"]
        for k, suitable in enumerate(qa["formats"]):
            names = {_text(f) for f in suitable} or {"caption/raw"}
            if names & allowed and (wanted is None or _text(qa["task"][k]) in wanted):
                rows.append((i, k))
    return np.asarray(rows, np.int32).reshape(-1, 2)


def format_choices(example: dict, k: int, formats) -> list[str]:
    suitable = [_text(f) for f in example["qa"]["formats"][k]] or ["caption/raw"]
    allowed = allowed_formats(formats)
    return [f for f in suitable if f in allowed]


def render_question(source, frame: int, k: int, format_id: str | None, seed: int, config):
    """One question in one format: `(image [H, W, 3] uint8, question, answer, meta)`.

    `format_id=None` samples one of the allowed suitable formats with `seed`.
    """
    from jax_spatial.formats import draw as draw_lib
    from jax_spatial.formats.expand import expand_formats

    example = source[int(frame)]
    obs = reading.example_observation(example)
    qa = reading.example_qa(example, int(k))
    qa_id = f"{_text(example['key'])}/{int(k)}"
    choices = format_choices(example, k, config.formats)
    rng = np.random.default_rng(seed)
    if format_id is None:
        format_id = choices[int(rng.integers(len(choices)))] if choices else "caption/raw"
    formatted = expand_formats(obs, qa, select=[format_id], seed=seed, qa_id=qa_id)
    if formatted:
        fqa = formatted[0]
        question, answer, format_id = fqa.question, fqa.answer, fqa.format_id
    else:  # a hand-written record without slots reads as stored
        fqa, question, answer, format_id = None, qa.question, qa.answer, "caption/raw"
    image = reading.decode_image(example["image"])
    if fqa is not None and config.draw and fqa.prompts:
        image = draw_lib.render_formatted(image, obs, fqa)
    image, scale = reading.letterbox(image, tuple(config.image_size))
    mentions, pair = [], np.full(facts_lib.NUM_FACTS, -1, np.int32)
    if getattr(config, "ground", False) and fqa is not None:
        from jax_spatial.formats.mentions import mention_spans

        out_h, out_w = config.image_size
        norm = np.asarray([scale / out_w, scale / out_h] * 2, np.float32)
        facts = facts_lib.object_facts(obs)
        mentions = [
            (start, end, tuple(float(v) for v in np.clip(np.asarray(obs.box2d[o]) * norm, 0, 1)),
             tuple(float(v) for v in facts[o]))
            for start, end, o in mention_spans(obs, qa, fqa)
        ]  # fmt: skip
        pair = facts_lib.pair_signs(facts, qa.objects)
    if config.blind:
        image = np.zeros_like(image)
    meta = {
        "qa_id": qa_id,
        "task": qa.task,
        "relation": qa.relation,
        "kind": qa.kind,
        "canonical": qa.canonical,
        "format_id": format_id,
        "question": question,
        "answer": answer,
        "choices": list(fqa.choices) if fqa is not None and fqa.choices else list(qa.choices),
        "source": _text(example["source"]),
        "scene_id": _text(example["scene_id"]),
    }
    if getattr(config, "ground", False):
        # [(char start, char end, box in 0..1, facts)] of `question`; `facts.pair_signs`
        meta["mentions"] = mentions
        meta["pair_sign"] = pair.tolist()
    return image, question, answer, meta


class _TrainElement(grain.transforms.RandomMap):
    """`(frame, question)` -> image + tokens + meta, a format sampled per element per epoch."""

    def __init__(self, source, tokenizer, config: ReadConfig):
        self.source, self.tokenizer, self.config = source, tokenizer, config

    def random_map(self, element, rng: np.random.Generator):
        frame, k = int(element[0]), int(element[1])
        image, question, _, meta = render_question(
            self.source, frame, k, None, int(rng.integers(2**31)), self.config
        )
        target = batch_lib.target_text(meta, self.config.answer_style)
        tokens = batch_lib.encode(self.tokenizer, question, target)
        if self.config.ground:
            tokens.update(
                batch_lib.ground_spans(
                    self.tokenizer, question, meta["mentions"], meta["pair_sign"],
                    meta["relation"],
                )  # fmt: skip
            )
        return {"image": image, **tokens, **{f: meta[f] for f in META_FIELDS}}


class _Collate:
    """Stacks elements; pads the text to the smallest bucket that fits the longest."""

    def __init__(self, pad_id: int, buckets: Sequence[int]):
        self.pad_id, self.buckets = pad_id, tuple(buckets)

    def __call__(self, items: Sequence[dict]) -> dict:
        length = batch_lib.bucket_length(max(len(it["text"]) for it in items), self.buckets)
        out = batch_lib.pad_tokens(items, length, self.pad_id)
        out["image"] = np.stack([it["image"] for it in items])
        for name in GROUND_FIELDS:
            if name in items[0]:
                out[name] = np.stack([it[name] for it in items])
        for name in META_FIELDS:
            out[name] = [it[name] for it in items]
        return out


class _LengthGroups(grain.transforms.RandomMap):
    """A window of elements -> its batches of like lengths, in a random order."""

    def __init__(self, collate: _Collate, batch_size: int):
        self.collate, self.batch_size = collate, batch_size

    def random_map(self, window, rng: np.random.Generator):
        # A stable sort keeps the shuffled order among equal lengths; a short last window
        # (finite epochs) gives its full batches only, as drop_remainder would.
        order = sorted(range(len(window)), key=lambda i: len(window[i]["text"]))
        n = len(window) // self.batch_size
        cuts = [order[i * self.batch_size : (i + 1) * self.batch_size] for i in range(n)]
        return [self.collate([window[i] for i in cuts[j]]) for j in rng.permutation(n)]


class _Unpack(grain.experimental.FlatMapTransform):
    """A list of batches -> the batches one by one (its iterator state is checkpointable)."""

    def __init__(self, max_fan_out: int):
        self.max_fan_out = max_fan_out

    def flat_map(self, batches):
        return batches


def _process_slice(index: np.ndarray, process_index: int, process_count: int) -> np.ndarray:
    # By frame, so a frame's questions stay on one process (its image is read once there).
    keep = (index[:, 0] % process_count) == process_index
    return index[keep]


def train_batches(
    source,
    index: np.ndarray,
    tokenizer,
    config: ReadConfig,
    batch_size: int,
    *,
    process_index: int = 0,
    process_count: int = 1,
    num_epochs: int | None = None,
) -> grain.IterDataset:
    """Endless (or `num_epochs`) shuffled batches of `batch_size` questions (this process's).

    The returned dataset's iterator has `get_state`/`set_state`; restoring the state resumes
    the same order and the same sampled formats.
    """
    index = _process_slice(index, process_index, process_count)
    if len(index) == 0:
        raise UserError("no questions to train on (empty split, or no allowed format)")
    ds = grain.MapDataset.source(index).seed(config.seed).shuffle().repeat(num_epochs)
    ds = ds.random_map(_TrainElement(source, tokenizer, config))
    collate = _Collate(tokenizer.pad_id, config.buckets)
    threads = 0 if config.worker_count else 2
    group = int(config.length_group)
    if group < 1:
        raise UserError(f"length_group must be 1 or more, not {group}")
    if group == 1:
        ds = ds.batch(batch_size, drop_remainder=True, batch_fn=collate)
        it = ds.to_iter_dataset(grain.ReadOptions(num_threads=threads))
    else:
        ds = ds.batch(batch_size * group, drop_remainder=False, batch_fn=list)
        ds = ds.random_map(_LengthGroups(collate, batch_size))
        # A window holds `group` batches: prefetch as many batches as grain's default would.
        it = ds.to_iter_dataset(
            grain.ReadOptions(num_threads=threads, prefetch_buffer_size=max(2, 500 // group))
        )
        it = grain.experimental.FlatMapIterDataset(it, _Unpack(group))
    if config.worker_count:
        from absl import flags

        # grain's worker processes read absl flags; a program without absl.app (the CLI, a
        # notebook) has not parsed them, and the defaults are what it wants.
        if not flags.FLAGS.is_parsed():
            flags.FLAGS.mark_as_parsed()
        it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=config.worker_count))
    return it


def eval_items(
    source,
    index: np.ndarray,
    formats="all",
    every_format: bool = False,
    seed: int = 0,
    max_items: int | None = None,
) -> list[tuple[int, int, str | None]]:
    """Held-out `(frame, question, format)`: one sampled format each, or every allowed one."""
    items: list[tuple[int, int, str | None]] = []
    for frame, k in index:
        if every_format:
            example = source[int(frame)]
            items += [(int(frame), int(k), f) for f in format_choices(example, k, formats)]
        else:
            items.append((int(frame), int(k), None))
    if max_items is not None and len(items) > max_items:
        pick = np.random.default_rng(seed).choice(len(items), max_items, replace=False)
        items = [items[i] for i in sorted(pick)]
    return items


def prefix_batches(
    source, items, tokenizer, config: ReadConfig, batch_size: int, seed: int = 0
) -> Iterator[dict]:
    """Decoding inputs: image + `<bos> question <sep>` only, padded; the last batch is padded
    with copies of its first row (`valid` marks the real rows)."""
    collate = _Collate(tokenizer.pad_id, config.buckets)
    config = dataclasses.replace(config, ground=False)  # decoding has no use for the targets

    def element(item):
        frame, k, fmt = item
        # The format (when sampled) and its colours are fixed per question by `seed`.
        image, question, answer, meta = render_question(
            source, frame, k, fmt, seed + 7919 * frame + k, config
        )
        tokens = batch_lib.encode(tokenizer, question, None)
        return {
            "image": image,
            **tokens,
            **{f: meta[f] for f in META_FIELDS},
            "meta": meta,
            "target": batch_lib.target_text(meta, config.answer_style),
        }

    ds = grain.MapDataset.source(list(items)).map(element)
    for start in range(0, len(items), batch_size):
        rows = [ds[i] for i in range(start, min(start + batch_size, len(items)))]
        yield collate_padded(collate, rows, batch_size)


def collate_padded(collate, rows: list[dict], batch_size: int) -> dict:
    """`rows` (1 to `batch_size` decoding rows) as one batch of static size `batch_size`.

    The missing rows are copies of the first (shapes stay fixed for jit); `meta` and `target`
    list the real rows only and `valid` counts them.
    """
    valid = len(rows)
    out = collate(rows + [rows[0]] * (batch_size - valid))
    out["meta"] = [r["meta"] for r in rows]
    out["target"] = [r["target"] for r in rows]
    out["valid"] = valid
    return out


def tokenizer_texts(source, formats="all", max_frames: int = 64, seed: int = 0) -> Iterator[str]:
    """Text to train a tokenizer on: every question of up to `max_frames` frames in every
    allowed suitable format (questions and answers), plus every canonical answer."""
    from jax_spatial.formats.expand import expand_formats

    n = len(source)
    frames = np.random.default_rng(seed).permutation(n)[:max_frames]
    allowed = allowed_formats(formats)
    for i in sorted(int(f) for f in frames):
        example = source[i]
        obs = reading.example_observation(example)
        for k in range(len(example["qa"]["kind"])):
            qa = reading.example_qa(example, k)
            yield batch_lib.question_text(qa.question)
            yield qa.answer
            for fqa in expand_formats(obs, qa, select=list(allowed), seed=seed, qa_id=f"{i}/{k}"):
                yield batch_lib.question_text(fqa.question)
                yield fqa.answer
    for i in range(n):
        yield from (_text(c) for c in source[i]["qa"]["canonical"])
    yield " ".join("0123456789") + " yes no A B C D"


def pad_text(batch: dict, length: int, pad_id: int) -> dict:
    """`batch` with its `[B, L]` token arrays padded on the right to `[B, length]`."""
    extra = length - batch["text"].shape[1]
    if extra < 0:
        raise ValueError(f"batch of length {batch['text'].shape[1]} does not fit {length}")
    if not extra:
        return batch
    out = dict(batch)
    for name in TEXT_FIELDS:
        fill = pad_id if name == "text" else 0
        out[name] = np.pad(batch[name], ((0, 0), (0, extra)), constant_values=fill)
    return out


def common_length(batch: dict, pad_id: int) -> dict:
    """Pads this process's batch to the longest any process has this step.

    Each process pads its batch to its own bucket (more so with length groups), and one
    global array needs one shape: one all-gather of a scalar per step agrees on it.
    """
    import jax
    from jax.experimental import multihost_utils

    if jax.process_count() == 1:
        return batch
    mine = np.int32(batch["text"].shape[1])
    return pad_text(batch, int(np.max(multihost_utils.process_allgather(mine))), pad_id)


def global_batch(batch: dict, sharding) -> dict:
    """Process-local numpy arrays -> global `jax.Array`s laid out by `sharding`."""
    import jax

    return {
        name: jax.make_array_from_process_local_data(sharding, np.asarray(batch[name]))
        for name in ARRAY_FIELDS + GROUND_FIELDS
        if name in batch
    }


__all__ = [
    "ReadConfig",
    "allowed_formats",
    "collate_padded",
    "common_length",
    "eval_items",
    "global_batch",
    "open_split",
    "pad_text",
    "prefix_batches",
    "question_index",
    "render_question",
    "tokenizer_texts",
    "train_batches",
]
