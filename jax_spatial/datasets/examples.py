"""The `spatial_qa` TFDS example: its features, how a frame becomes one, and shard generation.

Kept out of the builder folder so Beam workers (which import by module path) and notebooks can
use it without the `tfds build` loader; the builder file is a thin shell over this module.

**One example per frame**, key `"<source>/<scene_id>/<frame_id>"`. The frame is the unit every
current question refers to (single-view tasks), the image a model sees, and what random access
should return; a multi-view frame set would repeat or merge these. Fields::

    key, source, scene_id, frame_id     Text
    image                               bytes scalar: the source's encoded file, untouched
    image_format                        Text: "png" | "jpeg" | "webp" | "bmp" | "gif" | ""
    width, height                       int32
    K                                   [3, 3] float32 intrinsics
    view_from_cam                       [4, 4] float32 (cam -> gravity-aligned view frame)
    exhaustive                          bool: counting questions allowed
    objects  (Sequence, n per frame; positions are what `qa.objects` indexes)
      index                             int32 annotation index in the source
      category, caption                 Text ("" when the source has no caption)
      box2d                             [4] float32 pixels (x1, y1, x2, y2)
      box2d_source                      Text: "annotated" | "points" | "projected" | "mask"
      mask_rle                          Text: COCO compressed RLE counts at (height, width),
                                        "" when the object has no mask
      centre, extent                    [3] float32 view frame, metres
      rotation                          [3, 3] float32 view_from_box
      visibility                        float32 visible fraction 0..1
      referring                         Text: the words that single the object out ("the
                                        red chair", "the leftmost car"); "" when only its
                                        box, mask or mark does (readers of examples without
                                        the field judge caption uniqueness from the objects)
    qa  (Sequence, one per question)
      question, answer, kind, canonical, task, relation, category, template_id,
      answer_template_id                Text
      choices                           Sequence(Text), empty unless multiple choice
      objects                           Sequence(int32) positions into `objects`, mention order
      slots, object_slots               Text: sorted JSON of the template slots (`QARecord`),
                                        so a reader can re-phrase the question in any format
      formats                           Sequence(Text): the suitable instruction format ids

Nothing is padded: TFDS stores each sequence ragged. The image is a plain bytes tensor rather
than `tfds.features.Image`, which would decode and re-encode it (changing JPEG bytes and costing
a codec round trip per example); readers decode it (`jax_spatial.reading`). Instruction formats
(text reference x visual prompt) are not expanded on disk: each question keeps its referenced
object ids, its template slots and its list of suitable formats, and a format is sampled, its
text rendered and its overlay drawn when the example is read (`jax_spatial.reading`), so one
stored question serves all 19 formats and formats can be re-sampled each epoch.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import pathlib
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from jax_spatial import masks as mask_lib
from jax_spatial import validate
from jax_spatial.observe import FrameObservation
from jax_spatial.qa.types import QARecord

log = logging.getLogger(__name__)

OBJECT_FIELDS = (
    "index",
    "category",
    "caption",
    "box2d",
    "box2d_source",
    "mask_rle",
    "centre",
    "extent",
    "rotation",
    "visibility",
    "referring",
)
QA_FIELDS = (
    "question",
    "answer",
    "kind",
    "canonical",
    "choices",
    "objects",
    "task",
    "relation",
    "category",
    "template_id",
    "answer_template_id",
    "slots",
    "object_slots",
    "formats",
)


def features():
    """The `tfds.features.FeaturesDict` of one example (see the module docstring)."""
    import tensorflow_datasets as tfds

    text = tfds.features.Text
    f32 = np.float32
    return tfds.features.FeaturesDict(
        {
            "key": text(),
            "source": text(),
            "scene_id": text(),
            "frame_id": text(),
            "image": tfds.features.Tensor(shape=(), dtype=np.object_),
            "image_format": text(),
            "width": tfds.features.Scalar(dtype=np.int32),
            "height": tfds.features.Scalar(dtype=np.int32),
            "K": tfds.features.Tensor(shape=(3, 3), dtype=f32),
            "view_from_cam": tfds.features.Tensor(shape=(4, 4), dtype=f32),
            "exhaustive": tfds.features.Scalar(dtype=np.bool_),
            "objects": tfds.features.Sequence(
                {
                    "index": tfds.features.Scalar(dtype=np.int32),
                    "category": text(),
                    "caption": text(),
                    "box2d": tfds.features.Tensor(shape=(4,), dtype=f32),
                    "box2d_source": text(),
                    "mask_rle": text(),
                    "centre": tfds.features.Tensor(shape=(3,), dtype=f32),
                    "extent": tfds.features.Tensor(shape=(3,), dtype=f32),
                    "rotation": tfds.features.Tensor(shape=(3, 3), dtype=f32),
                    "visibility": tfds.features.Scalar(dtype=f32),
                    "referring": text(),
                }
            ),
            "qa": tfds.features.Sequence(
                {
                    "question": text(),
                    "answer": text(),
                    "kind": text(),
                    "canonical": text(),
                    "choices": tfds.features.Sequence(text()),
                    "objects": tfds.features.Sequence(tfds.features.Scalar(dtype=np.int32)),
                    "task": text(),
                    "relation": text(),
                    "category": text(),
                    "template_id": text(),
                    "answer_template_id": text(),
                    "slots": text(),
                    "object_slots": text(),
                    "formats": tfds.features.Sequence(text()),
                }
            ),
        }
    )


_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF8", "gif"),
    (b"BM", "bmp"),
)


def image_format(data: bytes) -> str:
    """The container format of encoded image bytes, from their magic number ("" if unknown)."""
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return ""


def encoded_image(obs: FrameObservation, root: str | None = None) -> bytes:
    """The frame's encoded image exactly as the source holds it (bytes, else the file's)."""
    if obs.image_bytes is not None:
        return bytes(obs.image_bytes)
    if not obs.image_path:
        raise ValueError(f"{obs.scene_id}/{obs.frame_id}: the frame has no image")
    path = pathlib.Path(obs.image_path)
    if not path.is_absolute() and root:
        path = pathlib.Path(root) / path
    return path.read_bytes()


def mask_rle_string(spec, height: int, width: int) -> str:
    """A source mask (COCO RLE dict with string or list counts, or polygons) -> RLE string."""
    if spec is None:
        return ""
    if isinstance(spec, Mapping):
        size = [int(v) for v in spec["size"]]
        if size != [height, width]:
            raise ValueError(f"mask size {size} does not match the frame {[height, width]}")
        counts = spec["counts"]
        if isinstance(counts, bytes):
            return counts.decode("ascii")
        if isinstance(counts, str):
            return counts
        return mask_lib.rle_to_string(counts)
    return mask_lib.encode_rle(mask_lib.decode(spec, height, width))["counts"]


def _json(mapping) -> str:
    """Sorted, compact JSON: the same dict always gives the same bytes."""
    return json.dumps(
        {str(k): v for k, v in mapping.items()}, sort_keys=True, separators=(",", ":")
    )


def _suitable_formats(obs: FrameObservation, qa: QARecord) -> tuple[str, ...]:
    """The instruction formats `qa` may be asked in (empty without `jax_spatial.formats`)."""
    try:
        from jax_spatial.formats.expand import suitable_formats
    except ImportError:  # the formats package is optional for writing
        return ()
    return suitable_formats(obs, qa)


def _referring(obs: FrameObservation) -> list[str | None]:
    """Per object, the words that single it out (`FrameObservation.referring`, else its
    caption where no other object that may be seen shares it)."""
    if obs.referring is not None:
        return list(obs.referring)
    from jax_spatial.qa import grammar

    return [
        grammar.definite(p) if unique else None
        for p, unique in zip(obs.reference_phrases, obs.caption_unique, strict=True)
    ]


def frame_key(obs: FrameObservation) -> str:
    return f"{obs.source}/{obs.scene_id}/{obs.frame_id}"


def frame_example(obs: FrameObservation, qas: Sequence[QARecord], image: bytes) -> dict:
    """One frame and its questions -> an example dict (columnar, ready for `encode_example`).

    Args:
      obs: the observation the questions refer to (positions in `qa.objects` index it).
      qas: the frame's questions.
      image: the encoded image bytes (`encoded_image(obs)`).
    """
    f32 = np.float32
    n = obs.num_objects
    objects = {
        "index": np.asarray(obs.object_index, np.int32).reshape(n),
        "category": list(obs.categories),
        "caption": [c or "" for c in obs.captions],
        "box2d": np.asarray(obs.box2d, f32).reshape(n, 4),
        "box2d_source": list(obs.box2d_source),
        "mask_rle": [
            mask_rle_string(m, obs.height, obs.width)
            for m in (obs.masks if obs.masks is not None else [None] * n)
        ],
        "centre": np.asarray(obs.centre, f32).reshape(n, 3),
        "extent": np.asarray(obs.extent, f32).reshape(n, 3),
        "rotation": np.asarray(obs.rotation, f32).reshape(n, 3, 3),
        "visibility": np.asarray(obs.visibility, f32).reshape(n),
        "referring": [w or "" for w in _referring(obs)],
    }
    qa = {
        "question": [q.question for q in qas],
        "answer": [q.answer for q in qas],
        "kind": [q.kind for q in qas],
        "canonical": [q.canonical for q in qas],
        "choices": [list(q.choices) for q in qas],
        "objects": [np.asarray(q.objects, np.int32) for q in qas],
        "task": [q.task for q in qas],
        "relation": [q.relation for q in qas],
        "category": [q.category or "" for q in qas],
        "template_id": [q.template_id for q in qas],
        "answer_template_id": [getattr(q, "answer_template_id", "") for q in qas],
        "slots": [_json(getattr(q, "slots", {})) for q in qas],
        "object_slots": [_json(getattr(q, "object_slots", {})) for q in qas],
        "formats": [list(_suitable_formats(obs, q)) for q in qas],
    }
    return {
        "key": frame_key(obs),
        "source": obs.source,
        "scene_id": obs.scene_id,
        "frame_id": obs.frame_id,
        "image": image,
        "image_format": image_format(image),
        "width": int(obs.width),
        "height": int(obs.height),
        "K": np.asarray(obs.K, f32),
        "view_from_cam": np.asarray(obs.view_from_cam, f32),
        "exhaustive": bool(obs.exhaustive),
        "objects": objects,
        "qa": qa,
    }


# ------------------------------------------------------------------------------------------
# Sources, described by value so Beam can ship them to workers.


@dataclasses.dataclass(frozen=True)
class SourceSpec:
    """How to build a source: registry name, root folder, options (as sorted pairs).

    A frozen value rather than a `Source` object: Beam pickles it to every worker, and each
    worker builds (and caches) its own source, which may hold open files or parsed indexes.

    `lift` wraps an image-only source (COCO, Visual Genome) in `scene_lift.lifted` so its
    scenes come out with 3D boxes.
    """

    name: str
    root: str | None = None
    options: tuple[tuple[str, object], ...] = ()
    lift: bool = False

    @classmethod
    def create(cls, name: str, root: str | None = None, lift: bool = False, **options):
        return cls(name, root, tuple(sorted(options.items())), lift)

    def build(self):
        return _build_source(self)


@functools.lru_cache(maxsize=8)
def _build_source(spec: SourceSpec):
    from jax_spatial.sources import get_source

    if spec.name in ("coco", "visual_genome"):
        # Registered by modules that `get_source` may not know how to import yet.
        import importlib

        importlib.import_module(f"jax_spatial.sources.{spec.name}")
    source = get_source(spec.name, spec.root, **dict(spec.options))
    if spec.lift:
        from jax_spatial.lift import scene_lift

        source = scene_lift.lifted(source)
    return source


def partition(scene_ids: Sequence[str], scenes_per_shard: int) -> list[tuple[str, ...]]:
    """Fixed groups of consecutive scene ids: the unit of work, whatever the worker count.

    The groups depend only on the sorted ids and `scenes_per_shard`, and each group is batched
    on its own, so the examples (and their bytes) are the same however many workers ran.
    """
    ids = sorted(scene_ids)
    return [tuple(ids[i : i + scenes_per_shard]) for i in range(0, len(ids), scenes_per_shard)]


def scene_split(scene_id: str, fractions: Sequence[tuple[str, float]]) -> str:
    """The split a scene belongs to: a stable hash of its id placed on the cumulative fractions.

    The hash (SHA-256, not Python's salted `hash`) is the same on every machine and run, and a
    scene's split depends on its id alone, so frames of one scene never land in two splits and
    adding scenes never moves old ones.
    """
    total = sum(float(f) for _, f in fractions)
    if not fractions or total <= 0:
        raise ValueError(f"split fractions {fractions!r} must be positive")
    u = int.from_bytes(hashlib.sha256(scene_id.encode()).digest()[:8], "big") / 2.0**64
    edge = 0.0
    for name, fraction in fractions:
        edge += float(fraction) / total
        if u < edge:
            return name
    return fractions[-1][0]


def generate_shard(
    spec: SourceSpec,
    scene_ids: Sequence[str],
    config=None,
    report: validate.ValidationReport | None = None,
    skipped: list | None = None,
) -> Iterator[tuple[str, dict]]:
    """Runs the engine's stages over one group of scenes; yields valid `(key, example)`s.

    observe -> pad into buckets -> relations (jit) -> selection (jit) -> phrase, batched over
    every frame of the group, then one example per frame, validated before it is yielded.

    Args:
      spec: the source.
      scene_ids: the group (`partition`).
      config: `engine.GenerateConfig` (default settings when None).
      report: collects validation counts; rejected frames and questions are not yielded.
      skipped: collects `{"scene_id", "file", "field", "reason"}` of scenes that failed to load
        or observe, or whose images do not decode (dropped frames also carry `frame_id`).
    """
    from jax_spatial import engine

    config = config if config is not None else engine.GenerateConfig()
    report = report if report is not None else validate.ValidationReport()
    source = spec.build()
    summary = engine.Summary()
    observations = engine.load_observations(source, scene_ids, config, summary)
    if skipped is not None:
        skipped.extend(summary.skipped)
    for frame_qa in engine.questions_for_observations(observations, config):
        obs = frame_qa.observation
        try:
            image = encoded_image(obs, getattr(source, "root", None))
            example = frame_example(obs, frame_qa.qas, image)
        except (OSError, ValueError) as error:
            report.frames_checked += 1
            report.frames_rejected += 1
            report.qa_checked += len(frame_qa.qas)
            report.qa_rejected += len(frame_qa.qas)
            report.reject(frame_key(obs), [f"example_build: {type(error).__name__}: {error}"])
            continue
        example, ok = validate.check_example(example, report)
        if ok:
            yield example["key"], example


def example_digest(serialized: bytes) -> str:
    return hashlib.sha256(serialized).hexdigest()


def canonical_bytes(serialized: bytes) -> bytes:
    """A serialized `tf.train.Example` re-written with its feature map sorted by name.

    `Example.features.feature` is a protobuf map, and a map's wire order follows the process's
    string hashing: the same example serialized in two Beam worker processes comes out in two
    byte orders. Deterministic serialization sorts the map, so equal examples are equal bytes.
    """
    from tensorflow_datasets.proto import tf_example_pb2

    return tf_example_pb2.Example.FromString(serialized).SerializeToString(deterministic=True)


def deterministic_example_writer(file_format):
    """A TFDS `ExampleWriter` that writes `canonical_bytes` of every record (any file format)."""
    from tensorflow_datasets.core import writer as writer_lib

    class DeterministicExampleWriter(writer_lib.ExampleWriter):
        def write(self, path, examples):
            return super().write(path, ((key, canonical_bytes(ex)) for key, ex in examples))

        def __reduce__(self):
            # Pickled by value for Beam workers: rebuilt from the module-level factory.
            return deterministic_example_writer, (self.file_format,)

    return DeterministicExampleWriter(file_format)


__all__ = [
    "OBJECT_FIELDS",
    "QA_FIELDS",
    "SourceSpec",
    "canonical_bytes",
    "deterministic_example_writer",
    "encoded_image",
    "example_digest",
    "features",
    "frame_example",
    "frame_key",
    "generate_shard",
    "image_format",
    "mask_rle_string",
    "partition",
    "scene_split",
]
