"""Padding ragged frame observations into static-shape `ObjectBatch`es for the jitted stages.

Shapes inside jit never depend on a scene: the object axis is padded to the smallest bucket
(8, 16, 32, 64, 128) that holds the frame, the batch axis to a fixed `batch_size`, and a
`valid` mask marks real entries. With five buckets and one batch size the relation and
selection kernels compile at most five times per run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Iterable, Iterator, Sequence

import flax.struct
import jax.numpy as jnp
import numpy as np

from jax_spatial import observe
from jax_spatial.observe import FrameObservation

log = logging.getLogger(__name__)

BUCKETS = (8, 16, 32, 64, 128)


@flax.struct.dataclass
class ObjectBatch:
    """Objects of B frames in view space, padded to N. A pytree.

    Attributes:
      centre: `[B, N, 3]` float32 box centres, metres, view frame (x right, y forward, z up).
      extent: `[B, N, 3]` float32 full side lengths along each box's own axes.
      rotation: `[B, N, 3, 3]` float32 view_from_box.
      box2d: `[B, N, 4]` float32 pixel boxes `(x1, y1, x2, y2)`.
      category: `[B, N]` int32 frame-local category id (0..N-1, objects of one category share
        it), -1 on padding.
      reference: `[B, N]` int32 frame-local id of the phrase that names the object (its caption,
        else its category); a phrase is a unique reference when one valid object has it. -1
        marks a bare category shared with other objects (`ambiguous_reference`).
      visibility: `[B, N]` float32 visible fraction in 0..1 (1 when it cannot be measured).
      valid: `[B, N]` bool real objects.
      exhaustive: `[B]` bool every object of the annotated categories is labelled (counting ok).
      image_size: `[B, 2]` float32 (width, height).
      key: `[B, 2]` uint32 per-frame random key data, derived from (scene id, frame id) so that
        sampling does not depend on which batch a frame landed in.
      complete: `[B, N]` bool the box covers the whole object (size relations need it); None
        means every box does.
      hidden_depth: `[B, N]` float32 metres a box lifted from depth may reach behind what the
        camera saw (0 for annotated boxes); None means 0 everywhere.
      askable: `[B, N]` bool the object may be asked about and pointed at. The valid objects
        that are not askable are the frame's glimpses (`observe.Glimpses`), padded after the
        askable ones: they count for uniqueness, relative expressions and counts. None means
        every valid object is askable.
      relative_allowed: `[B, N]` int32 bit mask over `RELATIVE_KINDS` of the relative
        expressions the frame's data can support for the object (`relative_allowed_for`): none
        when an object of its category that may be seen is not in the batch (no 3D box, or
        dropped by `trim_to_bucket`); near an unlabelled region (KITTI DontCare) only the
        left/right kinds whose side the region is not on. None means all.
    """

    centre: jnp.ndarray
    extent: jnp.ndarray
    rotation: jnp.ndarray
    box2d: jnp.ndarray
    category: jnp.ndarray
    reference: jnp.ndarray
    visibility: jnp.ndarray
    valid: jnp.ndarray
    exhaustive: jnp.ndarray
    image_size: jnp.ndarray
    key: jnp.ndarray
    complete: jnp.ndarray | None = None
    hidden_depth: jnp.ndarray | None = None
    askable: jnp.ndarray | None = None
    relative_allowed: jnp.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.valid.shape


def bucket_for(num_objects: int, buckets: Sequence[int] = BUCKETS) -> int:
    """Smallest bucket that holds `num_objects` (the largest bucket when none does)."""
    for bucket in buckets:
        if num_objects <= bucket:
            return bucket
    return buckets[-1]


def frame_key(seed: int, scene_id: str, frame_id: str) -> np.ndarray:
    """`[2]` uint32 key data for a frame: a stable hash, independent of batching and workers."""
    digest = hashlib.blake2b(f"{seed}\x00{scene_id}\x00{frame_id}".encode(), digest_size=8).digest()
    return np.frombuffer(digest, dtype=np.uint32).copy()


def _local_ids(names: Sequence[str]) -> np.ndarray:
    """Maps names to ids in order of first appearance: ["cup", "mug", "cup"] -> [0, 1, 0]."""
    table: dict[str, int] = {}
    return np.array([table.setdefault(name, len(table)) for name in names], dtype=np.int32)


def pad_observations(
    observations: Sequence[FrameObservation], num_objects: int, batch_size: int, seed: int = 0
) -> ObjectBatch:
    """Packs up to `batch_size` observations into one `[batch_size, num_objects]` batch.

    Observations with more than `num_objects` objects and glimpses must have been trimmed
    first (`trim_to_bucket`). A frame's `n` objects take slots `0..n-1` (askable), its glimpses
    the slots after them (valid, not askable).
    """
    if len(observations) > batch_size:
        raise ValueError(f"{len(observations)} observations do not fit a batch of {batch_size}")
    B, N = batch_size, num_objects
    centre = np.zeros((B, N, 3), np.float32)
    extent = np.ones((B, N, 3), np.float32)  # ones keep padded volumes and ratios finite
    rotation = np.broadcast_to(np.eye(3, dtype=np.float32), (B, N, 3, 3)).copy()
    box2d = np.zeros((B, N, 4), np.float32)
    category = np.full((B, N), -1, np.int32)
    reference = np.full((B, N), -1, np.int32)
    visibility = np.zeros((B, N), np.float32)
    valid = np.zeros((B, N), bool)
    exhaustive = np.zeros((B,), bool)
    image_size = np.ones((B, 2), np.float32)
    key = np.zeros((B, 2), np.uint32)
    complete = np.zeros((B, N), bool)
    hidden_depth = np.zeros((B, N), np.float32)
    askable = np.zeros((B, N), bool)
    relative_allowed = np.zeros((B, N), np.int32)
    for b, obs in enumerate(observations):
        n = obs.num_objects
        glimpses = obs.glimpses
        g = obs.num_glimpses
        if n + g > N:
            raise ValueError(
                f"{obs.scene_id}/{obs.frame_id}: {n} objects and {g} glimpses exceed bucket {N}"
            )
        centre[b, :n] = obs.centre
        extent[b, :n] = obs.extent
        rotation[b, :n] = obs.rotation
        box2d[b, :n] = obs.box2d
        categories = list(obs.categories)
        phrases = list(obs.reference_phrases)
        if g:
            centre[b, n : n + g] = glimpses.centre
            extent[b, n : n + g] = glimpses.extent
            rotation[b, n : n + g] = glimpses.rotation
            box2d[b, n : n + g] = glimpses.box2d
            categories += glimpses.categories
            phrases += glimpses.reference_phrases
        category[b, : n + g] = _local_ids(categories)
        # An ambiguous bare-category name gets -1, which never counts as a unique reference;
        # so does a phrase shared with an object that did not fit the batch.
        dropped_phrases = set(glimpses.dropped_phrases) if glimpses is not None else set()
        blocked = [
            a or p in dropped_phrases
            for a, p in zip(obs.ambiguous_reference, obs.reference_phrases, strict=True)
        ] + [False] * g
        reference[b, : n + g] = np.where(blocked, -1, _local_ids(phrases))
        relative_allowed[b, :n] = relative_allowed_for(obs)
        visibility[b, :n] = obs.visibility
        valid[b, : n + g] = True
        askable[b, :n] = True
        exhaustive[b] = obs.exhaustive
        image_size[b] = (obs.width, obs.height)
        key[b] = frame_key(seed, obs.scene_id, obs.frame_id)
        complete[b, :n] = obs.box_complete
        hidden_depth[b, :n] = obs.hidden_depth
        if g:
            complete[b, n : n + g] = glimpses.box_complete
            hidden_depth[b, n : n + g] = glimpses.hidden_depth
    return ObjectBatch(
        centre=jnp.asarray(centre),
        extent=jnp.asarray(extent),
        rotation=jnp.asarray(rotation),
        box2d=jnp.asarray(box2d),
        category=jnp.asarray(category),
        reference=jnp.asarray(reference),
        visibility=jnp.asarray(visibility),
        valid=jnp.asarray(valid),
        exhaustive=jnp.asarray(exhaustive),
        image_size=jnp.asarray(image_size),
        key=jnp.asarray(key),
        complete=jnp.asarray(complete),
        hidden_depth=jnp.asarray(hidden_depth),
        askable=jnp.asarray(askable),
        relative_allowed=jnp.asarray(relative_allowed),
    )


def relative_allowed_for(obs: FrameObservation) -> np.ndarray:
    """`[n]` int32 bit mask over `RELATIVE_KINDS`: the relative expressions the frame's data
    can support for each object, whatever the geometry says.

    * None (0) when its category has an object that may be seen but is not compared (no 3D box,
      or dropped by `trim_to_bucket`: `Glimpses.dropped_categories`).
    * Unlabelled regions (`Glimpses.unlabelled_boxes`, KITTI DontCare) may hide objects of any
      category at any depth: "nearest", "farthest", "tallest", "biggest" and their opposites
      are off; "leftmost" and "second from the left" stay when every region lies wholly right
      of the object's pixel box, "rightmost" and "second from the right" when every region lies
      wholly left of it.
    """
    # Imported here: the relations package imports this module.
    from jax_spatial.relations.types import RELATIVE_KINDS

    n = obs.num_objects
    everything = (1 << len(RELATIVE_KINDS)) - 1
    out = np.full(n, everything, np.int32)
    glimpses = obs.glimpses
    if glimpses is None:
        return out
    dropped = set(glimpses.dropped_categories)
    regions = glimpses.regions
    for o in range(n):
        if obs.categories[o] in dropped:
            out[o] = 0
            continue
        if not len(regions):
            continue
        x1, _, x2, _ = obs.box2d[o]
        mask = 0
        for k, (_, family, sign, _) in enumerate(RELATIVE_KINDS):
            if family != "left_right":
                continue
            if sign > 0 and np.all(regions[:, 0] >= x2) or sign < 0 and np.all(regions[:, 2] <= x1):
                mask |= 1 << k
        out[o] = mask
    return out


def slots_needed(obs: FrameObservation) -> int:
    """Object slots a frame takes in a batch: its objects and its glimpses."""
    return obs.num_objects + obs.num_glimpses


def trim_to_bucket(obs: FrameObservation, buckets: Sequence[int] = BUCKETS) -> FrameObservation:
    """Keeps the largest-bucket's worth of objects and glimpses, glimpses dropped first, then
    the objects with the smallest pixel boxes.

    A frame with more objects than the largest bucket is rare (crowded LiDAR frames); dropping
    the smallest ones loses the least, and the drop is logged. What is dropped is remembered
    (`Glimpses.dropped_phrases`, `dropped_categories`): objects sharing its phrase or category
    are then not named by caption or by a relative expression.
    """
    limit = buckets[-1]
    if slots_needed(obs) <= limit:
        return obs
    glimpses = obs.glimpses if obs.glimpses is not None else observe.Glimpses.empty()
    if obs.num_objects <= limit:
        g_area = (glimpses.box2d[:, 2] - glimpses.box2d[:, 0]) * (
            glimpses.box2d[:, 3] - glimpses.box2d[:, 1]
        )
        keep_g = np.sort(np.argsort(-g_area, kind="stable")[: limit - obs.num_objects])
        return dataclasses.replace(obs, glimpses=glimpses.select(keep_g))
    area = (obs.box2d[:, 2] - obs.box2d[:, 0]) * (obs.box2d[:, 3] - obs.box2d[:, 1])
    keep = np.sort(np.argsort(-area, kind="stable")[:limit])
    log.warning(
        "%s/%s: %d visible objects, keeping the %d largest",
        obs.scene_id,
        obs.frame_id,
        obs.num_objects,
        limit,
    )
    gone = sorted(set(range(obs.num_objects)) - set(keep.tolist()))
    glimpses = glimpses.select(np.zeros(0, int))
    glimpses = dataclasses.replace(
        glimpses,
        dropped_phrases=glimpses.dropped_phrases + tuple(obs.reference_phrases[i] for i in gone),
        dropped_categories=glimpses.dropped_categories + tuple(obs.categories[i] for i in gone),
    )
    return dataclasses.replace(obs.select(keep), glimpses=glimpses)


def batches_by_bucket(
    observations: Iterable[FrameObservation],
    batch_size: int,
    buckets: Sequence[int] = BUCKETS,
) -> Iterator[tuple[int, list[FrameObservation]]]:
    """Groups observations by bucket, yielding `(N, observations)` groups of at most `batch_size`.

    Frames are buffered per bucket and a group leaves when full; the rest leave at the end.
    Order inside a group follows the input.
    """
    queues: dict[int, list[FrameObservation]] = {b: [] for b in buckets}
    for obs in observations:
        obs = trim_to_bucket(obs, buckets)
        bucket = bucket_for(slots_needed(obs), buckets)
        queues[bucket].append(obs)
        if len(queues[bucket]) == batch_size:
            yield bucket, queues[bucket]
            queues[bucket] = []
    for bucket in buckets:
        if queues[bucket]:
            yield bucket, queues[bucket]
