"""Padding ragged clips (ordered frame sets of one scene) into static-shape `ClipBatch`es.

A clip is one scene's objects in its gravity-aligned world frame (z up) plus, per frame,
which objects it shows. Inside jit no shape depends on a clip: the object axis is padded to
the smallest object bucket of `batching.BUCKETS` (8, 16, 32, 64, 128) that holds every clip
of the batch, the frame axis to the smallest of `T_BUCKETS` (16, 32), and masks (`valid`,
`frame_valid`) mark the real entries. Ten shapes at most, so the multi-view relations compile
at most ten times per batch size.

Per-clip input (`make_clip_batch`) is a dict of numpy arrays, n objects and t frames:

| key              | shape         | meaning                                                    |
|------------------|---------------|------------------------------------------------------------|
| `centre`         | `[n, 3]`      | box centres, metres, world frame (z up)                    |
| `extent`         | `[n, 3]`      | full side lengths along each box's own axes               |
| `rotation`       | `[n, 3, 3]`   | world_from_box (optional: identity, or from `yaw`)         |
| `yaw`            | `[n]`         | radians about +z, used when `rotation` is absent (optional) |
| `category`       | `[n]`         | int ids, or names mapped to clip-local ids (`local_ids`)   |
| `visible`        | `[t, n]`      | bool, the frame shows the object                           |
| `frame_time`     | `[t]`         | seconds (optional: 0, 1, 2, ...)                           |
| `cam_from_world` | `[t, 4, 4]`   | camera poses (optional; all clips of a batch or none)      |
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import flax.struct
import jax.numpy as jnp
import numpy as np

from jax_spatial.batching import BUCKETS, bucket_for
from jax_spatial.errors import UserError

T_BUCKETS = (16, 32)


@flax.struct.dataclass
class ClipBatch:
    """B clips of one scene each, N object slots, T frame slots. A pytree; all shapes static.

    Attributes:
      centre: `[B, N, 3]` float32 box centres, metres, the scene's gravity-aligned world frame
        (z up).
      extent: `[B, N, 3]` float32 full side lengths along each box's own axes (ones on
        padding, which keeps padded quantities finite).
      rotation: `[B, N, 3, 3]` float32 world_from_box. Boxes of indoor datasets are yawed
        only, but every relation accepts a general rotation.
      category: `[B, N]` int32 category id (clip-local unless the caller passes its own ids),
        -1 on padding.
      valid: `[B, N]` bool real objects (every object of the scene, seen in the clip or not).
      visible: `[B, T, N]` bool frame t shows object n.
      frame_valid: `[B, T]` bool real frames.
      frame_time: `[B, T]` float32 seconds since the clip's start.
      cam_from_world: `[B, T, 4, 4]` float32 camera poses (identity on padding), or None.
    """

    centre: jnp.ndarray
    extent: jnp.ndarray
    rotation: jnp.ndarray
    category: jnp.ndarray
    valid: jnp.ndarray
    visible: jnp.ndarray
    frame_valid: jnp.ndarray
    frame_time: jnp.ndarray
    cam_from_world: jnp.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        """`(B, T, N)`."""
        B, T, N = self.visible.shape
        return B, T, N

    def seen(self) -> jnp.ndarray:
        """`[B, N]` bool: a real object shown by at least one real frame."""
        shown = jnp.any(self.visible & self.frame_valid[:, :, None], axis=1)
        return self.valid & shown


def local_ids(names: Sequence) -> tuple[np.ndarray, list]:
    """Maps names to ids in order of first appearance: `["cup", "mug", "cup"] -> [0, 1, 0]`.

    Returns the `[n]` int32 ids and the names in id order (`names[id]`).
    """
    table: dict = {}
    ids = np.array([table.setdefault(name, len(table)) for name in names], dtype=np.int32)
    return ids, list(table)


def _field(clip: Mapping, k: int, key: str, shape: tuple, dtype) -> np.ndarray:
    if key not in clip:
        raise UserError(f"clip {k}: missing field {key!r}")
    try:
        value = np.asarray(clip[key], dtype=dtype)
    except (TypeError, ValueError) as err:
        raise UserError(f"clip {k}: field {key!r} is not a {np.dtype(dtype).name} array") from err
    if value.shape != shape:
        raise UserError(f"clip {k}: field {key!r} has shape {value.shape}, expected {shape}")
    if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
        raise UserError(f"clip {k}: field {key!r} has a non-finite value")
    return value


def _categories(clip: Mapping, k: int, n: int) -> np.ndarray:
    if "category" not in clip:
        raise UserError(f"clip {k}: missing field 'category'")
    raw = list(clip["category"])
    if len(raw) != n:
        raise UserError(f"clip {k}: field 'category' has {len(raw)} entries, expected {n}")
    if all(isinstance(c, (int, np.integer)) for c in raw):
        ids = np.asarray(raw, np.int32).reshape(n)
        if np.any(ids < 0):
            raise UserError(f"clip {k}: field 'category' has a negative id")
        return ids
    if all(isinstance(c, str) for c in raw):
        return local_ids(raw)[0]
    raise UserError(f"clip {k}: field 'category' mixes names and ids")


def _clip_size(clip: Mapping, k: int) -> tuple[int, int]:
    """`(n objects, t frames)` of a clip, from `centre [n, 3]` and `visible [t, n]`."""
    for key in ("centre", "visible"):
        if key not in clip:
            raise UserError(f"clip {k}: missing field {key!r}")
    centre, visible = np.shape(clip["centre"]), np.shape(clip["visible"])
    if len(centre) != 2:
        raise UserError(f"clip {k}: field 'centre' has shape {centre}, expected (n, 3)")
    if len(visible) != 2 or visible[0] < 1:
        raise UserError(f"clip {k}: field 'visible' has shape {visible}, expected (t, n), t >= 1")
    return centre[0], visible[0]


def _pick_bucket(size: int, given: int | None, buckets: Sequence[int], what: str) -> int:
    if given is None:
        if size > buckets[-1]:
            raise UserError(f"a clip has {size} {what}, more than the largest bucket {buckets[-1]}")
        return bucket_for(size, buckets)
    if given < size:
        raise UserError(f"a clip has {size} {what}, more than the requested {given}")
    return given


def make_clip_batch(
    clips: Sequence[Mapping],
    n_bucket: int | None = None,
    t_bucket: int | None = None,
    batch_size: int | None = None,
) -> ClipBatch:
    """Packs per-clip numpy dicts (module doc) into one `[B, T, N]` `ClipBatch` (host helper).

    Args:
      clips: one dict per clip.
      n_bucket: object slots N; default the smallest of `batching.BUCKETS` holding every clip.
      t_bucket: frame slots T; default the smallest of `T_BUCKETS` holding every clip.
      batch_size: B; default `len(clips)`. Extra slots are empty clips (nothing valid).

    Raises:
      UserError: a missing or malformed field (naming the clip index and the field), a clip
        larger than the buckets, or camera poses on some clips only.
    """
    if not clips:
        raise UserError("no clips to batch")
    B = len(clips) if batch_size is None else batch_size
    if B < len(clips):
        raise UserError(f"{len(clips)} clips do not fit a batch of {B}")
    sizes = [_clip_size(clip, k) for k, clip in enumerate(clips)]
    N = _pick_bucket(max(n for n, _ in sizes), n_bucket, BUCKETS, "objects")
    T = _pick_bucket(max(t for _, t in sizes), t_bucket, T_BUCKETS, "frames")
    with_cams = ["cam_from_world" in clip for clip in clips]
    if any(with_cams) and not all(with_cams):
        raise UserError(
            f"clip {with_cams.index(False)}: field 'cam_from_world' missing (other clips have it)"
        )

    centre = np.zeros((B, N, 3), np.float32)
    extent = np.ones((B, N, 3), np.float32)
    rotation = np.broadcast_to(np.eye(3, dtype=np.float32), (B, N, 3, 3)).copy()
    category = np.full((B, N), -1, np.int32)
    valid = np.zeros((B, N), bool)
    visible = np.zeros((B, T, N), bool)
    frame_valid = np.zeros((B, T), bool)
    frame_time = np.zeros((B, T), np.float32)
    cams = (
        np.broadcast_to(np.eye(4, dtype=np.float32), (B, T, 4, 4)).copy()
        if any(with_cams)
        else None
    )

    for k, (clip, (n, t)) in enumerate(zip(clips, sizes, strict=True)):
        centre[k, :n] = _field(clip, k, "centre", (n, 3), np.float64)
        ext = _field(clip, k, "extent", (n, 3), np.float64)
        if np.any(ext < 0):
            raise UserError(f"clip {k}: field 'extent' has a negative side")
        extent[k, :n] = ext
        if "rotation" in clip:
            rotation[k, :n] = _field(clip, k, "rotation", (n, 3, 3), np.float64)
        elif "yaw" in clip:
            yaw = _field(clip, k, "yaw", (n,), np.float64)
            c, s = np.cos(yaw), np.sin(yaw)
            rotation[k, :n] = 0.0
            rotation[k, :n, 0, 0], rotation[k, :n, 0, 1] = c, -s
            rotation[k, :n, 1, 0], rotation[k, :n, 1, 1] = s, c
            rotation[k, :n, 2, 2] = 1.0
        category[k, :n] = _categories(clip, k, n)
        valid[k, :n] = True
        visible[k, :t, :n] = _field(clip, k, "visible", (t, n), bool)
        frame_valid[k, :t] = True
        if "frame_time" in clip:
            frame_time[k, :t] = _field(clip, k, "frame_time", (t,), np.float64)
        else:
            frame_time[k, :t] = np.arange(t, dtype=np.float32)
        if cams is not None:
            cams[k, :t] = _field(clip, k, "cam_from_world", (t, 4, 4), np.float64)

    return ClipBatch(
        centre=jnp.asarray(centre),
        extent=jnp.asarray(extent),
        rotation=jnp.asarray(rotation),
        category=jnp.asarray(category),
        valid=jnp.asarray(valid),
        visible=jnp.asarray(visible),
        frame_valid=jnp.asarray(frame_valid),
        frame_time=jnp.asarray(frame_time),
        cam_from_world=None if cams is None else jnp.asarray(cams),
    )


__all__ = ["T_BUCKETS", "ClipBatch", "local_ids", "make_clip_batch"]
