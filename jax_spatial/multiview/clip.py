"""Clips: a scene's ordered frames sampled into a fixed-length frame set, VSI-Bench style.

A `Clip` is what a multi-view question is asked of: `T` ordered frames of one scene (each an
existing `Frame`: encoded image, size, K, world_from_cam, optional depth), the time of each
frame, the scene's objects with their world-frame boxes (z up), which frames see which object
(`visible [T, N]`), and where the source knows it, the room's floor polygon and the objects'
floor footprints (what a free-space grid for route questions is built from).

**Sampling** (`sample_clip`). `mode="uniform"` takes `num_frames` frames spread evenly over
the scene's frames, `np.linspace(0, F - 1, num_frames, dtype=int)`, the rule VSI-Bench's
evaluation (lmms-eval) uses to turn a video into 8/16/32 frames; a scene with fewer frames
gives them all. `"random"` takes a sorted random subset (`seed`), `"all"` every frame.

**Frame times** (`frame_times`), in this order: the source's own per-frame times
(`scene.meta["frame_time"]`, frame id -> seconds); else a frame rate (`scene.meta["fps"]`,
or `FRAME_RATE_BY_SOURCE` for sources whose frame ids are sensor frame numbers, ScanNet's
30 Hz stream) applied to numeric frame ids, or to the frames' positions when the ids are not
numbers; else one frame per `DEFAULT_SPACING_S` seconds (`Clip.meta["frame_time_from"]` says
which). Times are shifted so the scene's first frame is at 0.

**Visibility** (`frame_visibility`), per frame and object, from what the source provides:

1. `"instance_map"`: sources that render an exact instance map (`scene.meta["instance_masks"]`
   true: the procedural sources) store each object's unoccluded pixels per frame as its mask,
   and no mask means no pixel. The object is visible when it has at least `min_pixels`
   pixels (`default_min_pixels`: 0.25% of the image, at least 16 px: 48 px, a 7 x 7 patch,
   at 160 x 120; 192 px at 320 x 240). A few pixels of an object's edge peeking past another
   are not an object a person would count or name.
2. Otherwise the object needs a 3D box whose near-clipped projection overlaps the image by
   at least `ObserveConfig.min_box_px` (4 px) on each side, and then:
   * `"depth"` (the frame has a depth map): `visibility.visible_fraction`'s depth rule, at
     least `min_pixels` pixels of its box seen by the depth and a seen fraction of at least
     `ObserveConfig.min_visible_fraction` (0.2);
   * `"scan_points"` (the scene has scan points, e.g. ScanNet): the z-buffered scan-point
     rule, at least `ObserveConfig.min_visible_samples` (10) visible points and the same
     fraction: the rule `observe.observe_frame` asks single-view questions by;
   * `"projection"` (neither): in front of the camera and inside the image is all that can
     be known; occluded objects count as visible.

`visible_score [T, N]` holds the measurement (pixels, visible samples, or for projection the
clipped projected box area in pixels). `Clip.unseen` lists objects no frame of the clip shows:
they are in the room but not in the clip, so questions about the clip (counting, appearance
order) must leave them out or count them as not seen.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import math
import os
from collections.abc import Iterable, Iterator

import numpy as np

from jax_spatial import masks as mask_lib
from jax_spatial.multiview import room as room_lib
from jax_spatial.observe import ObserveConfig
from jax_spatial.scene import Frame, Scene, SceneObject, SceneSkip

log = logging.getLogger(__name__)

# Instance-map visibility threshold, as a fraction of the image's pixels (see module docstring).
VISIBLE_MIN_FRACTION = 0.0025
VISIBLE_MIN_PIXELS_FLOOR = 16
# Sources whose frame ids are frame numbers of a fixed-rate sensor stream.
FRAME_RATE_BY_SOURCE = {"scannet": 30.0}
# Spacing assumed when a source says nothing about time.
DEFAULT_SPACING_S = 1.0
SAMPLING_MODES = ("uniform", "random", "all")
VISIBILITY_RULES = ("instance_map", "depth", "scan_points", "projection")
# Scene facts a clip keeps in its `meta`.
_PASSED_THROUGH = ("seed", "index", "room_shape", "room_construction", "trajectory", "rotation")
# Weakest first: what a clip mixing rules reports.
_RULE_STRENGTH = ("projection", "scan_points", "depth", "instance_map")


# ----------------------------------------------------------------------------- the clip


@dataclasses.dataclass
class Clip:
    """An ordered frame set of one scene.

    Attributes:
      clip_id: unique within the source: `"{scene_id}:{mode}{num_frames}"` from `sample_clip`.
      scene_id, source: the scene the frames come from.
      frames: `T` frames in time order.
      frame_time: `[T]` float64 seconds since the scene's first frame.
      objects: the scene's `N` objects (world-frame `box3d`, z up), in annotation order.
      visible: `[T, N]` bool, frame `t` shows object `n` (`objects[n]`, by position).
      visible_score: `[T, N]` int, the measurement `visible` thresholds (module docstring).
      visibility_rule: one of `VISIBILITY_RULES`.
      min_pixels: the pixel threshold of the instance-map and depth rules.
      room_polygon: `[P, 2]` floor polygon, world metres, counter-clockwise; None if unknown.
      room_area: its area, m^2; None if unknown.
      room_height: floor-to-ceiling metres; None if unknown.
      footprints: `[N, 4, 2]` world xy corners of each object's floor footprint (its box seen
        from above), None where the source does not know the floor plan.
      root: folder that relative `Frame.image_path`s are resolved against.
      meta: `frame_indices` (positions in the scene's frame list), `frame_time_from`, and
        the scene's `seed`, `index`, `room_shape`, `room_construction`, `trajectory` (the
        whole walk of a procedural clip: `time`, `position`, `yaw`, `path`) and `rotation`
        (a rotation pair's answer) where it has them.
    """

    clip_id: str
    scene_id: str
    source: str
    frames: list[Frame]
    frame_time: np.ndarray
    objects: list[SceneObject]
    visible: np.ndarray
    visible_score: np.ndarray
    visibility_rule: str
    min_pixels: int
    room_polygon: np.ndarray | None = None
    room_area: float | None = None
    room_height: float | None = None
    footprints: np.ndarray | None = None
    root: str | None = None
    meta: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        t, n = len(self.frames), len(self.objects)
        self.frame_time = np.asarray(self.frame_time, np.float64).reshape(-1)
        self.visible = np.asarray(self.visible, bool).reshape(t, n)
        self.visible_score = np.asarray(self.visible_score, np.int64).reshape(t, n)
        if self.frame_time.shape != (t,):
            raise ValueError(f"clip {self.clip_id}: {len(self.frame_time)} times for {t} frames")
        if np.any(np.diff(self.frame_time) < 0):
            raise ValueError(f"clip {self.clip_id}: frame times are not in order")
        if self.visibility_rule not in VISIBILITY_RULES:
            raise ValueError(f"clip {self.clip_id}: unknown rule {self.visibility_rule!r}")
        if self.room_polygon is not None:
            self.room_polygon = np.asarray(self.room_polygon, np.float64).reshape(-1, 2)
        if self.footprints is not None:
            self.footprints = np.asarray(self.footprints, np.float64).reshape(n, 4, 2)

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    @property
    def num_objects(self) -> int:
        return len(self.objects)

    @property
    def frame_ids(self) -> list[str]:
        return [f.frame_id for f in self.frames]

    @property
    def K(self) -> np.ndarray:
        """`[T, 3, 3]` intrinsics."""
        return np.stack([f.K for f in self.frames]) if self.frames else np.zeros((0, 3, 3))

    @property
    def world_from_cam(self) -> np.ndarray:
        """`[T, 4, 4]` camera-to-world poses."""
        if not self.frames:
            return np.zeros((0, 4, 4))
        return np.stack([f.world_from_cam for f in self.frames])

    @property
    def seen(self) -> np.ndarray:
        """`[N]` bool, some frame of the clip shows the object."""
        return self.visible.any(axis=0)

    @property
    def unseen(self) -> list[int]:
        """Positions of the objects no frame of the clip shows (flagged, not dropped)."""
        return np.flatnonzero(~self.seen).tolist()

    @property
    def first_seen(self) -> np.ndarray:
        """`[N]` int, the first frame showing each object, -1 for unseen ones."""
        first = np.argmax(self.visible, axis=0)
        return np.where(self.seen, first, -1)

    def arrays(self) -> dict[str, np.ndarray | list]:
        """The clip as the per-clip numpy dict `multiview.batch.make_clip_batch` packs.

        Objects without a 3D box (a broken annotation) are left out; `index` gives each
        remaining object's annotation index and `position` its place in `objects`.

        Returns:
          `centre [n, 3]`, `extent [n, 3]`, `rotation [n, 3, 3]` (world_from_box),
          `category` (n names), `visible [T, n]`, `frame_time [T]`, `cam_from_world
          [T, 4, 4]`, `index [n]`, `position [n]`.
        """
        keep = [k for k, o in enumerate(self.objects) if o.box3d is not None]
        boxes = [self.objects[k].box3d for k in keep]
        return {
            "centre": np.array([b.centre for b in boxes]).reshape(-1, 3),
            "extent": np.array([b.extent for b in boxes]).reshape(-1, 3),
            "rotation": np.array([b.rotation for b in boxes]).reshape(-1, 3, 3),
            "category": [self.objects[k].category for k in keep],
            "visible": self.visible[:, keep],
            "frame_time": self.frame_time.copy(),
            "cam_from_world": np.linalg.inv(self.world_from_cam),
            "index": np.array([self.objects[k].index for k in keep], np.int64),
            "position": np.array(keep, np.int64),
        }

    def image(self, t: int) -> np.ndarray:
        """Frame `t`'s decoded image, `[H, W, 3]` uint8."""
        from PIL import Image

        frame = self.frames[t]
        if frame.image_bytes is not None:
            source = io.BytesIO(frame.image_bytes)
        else:
            path = frame.image_path
            if path is None:
                raise ValueError(f"clip {self.clip_id}: frame {frame.frame_id} has no image")
            source = path if os.path.isabs(path) or not self.root else os.path.join(self.root, path)
        with Image.open(source) as image:
            return np.asarray(image.convert("RGB"))


def default_min_pixels(width: int, height: int) -> int:
    """Pixels an object needs in a frame to count as visible (module docstring)."""
    return max(VISIBLE_MIN_PIXELS_FLOOR, int(math.ceil(VISIBLE_MIN_FRACTION * width * height)))


def frame_visibility(
    scene: Scene,
    frame: Frame,
    objects: list[SceneObject] | None = None,
    *,
    min_pixels: int | None = None,
    config: ObserveConfig | None = None,
) -> tuple[np.ndarray, np.ndarray, str]:
    """Which objects `frame` shows, by the first rule its scene supports (module docstring).

    Args:
      scene: the frame's scene (its meta, scan points).
      frame: the frame.
      objects: default `scene.objects`.
      min_pixels: threshold of the instance-map and depth rules; default
        `default_min_pixels(frame.width, frame.height)`.
      config: the box, fraction and sample thresholds; default `ObserveConfig()`.

    Returns:
      `(visible [N] bool, score [N] int, rule)`.
    """
    from jax_spatial import visibility
    from jax_spatial.geometry import boxes

    objects = scene.objects if objects is None else objects
    config = config or ObserveConfig()
    n = len(objects)
    if min_pixels is None:
        min_pixels = default_min_pixels(frame.width, frame.height)
    if (scene.meta or {}).get("instance_masks"):
        score = np.array(
            [
                mask_lib.rle_area(o.masks[frame.frame_id]) if o.masks.get(frame.frame_id) else 0
                for o in objects
            ],
            np.int64,
        )
        return score >= min_pixels, score, "instance_map"

    if frame.depth is not None:
        rule, needed = "depth", min_pixels
    elif scene.points is not None and len(scene.points):
        rule, needed = "scan_points", config.min_visible_samples
    else:
        rule, needed = "projection", 0
    boxed = np.array([o.box3d is not None for o in objects], bool)
    score = np.zeros(n, np.int64)
    if not boxed.any():
        return np.zeros(n, bool), score, rule
    centre = np.stack([o.box3d.centre if o.box3d else np.zeros(3) for o in objects])
    extent = np.stack([o.box3d.extent if o.box3d else np.ones(3) for o in objects])
    rot = np.stack([o.box3d.rotation if o.box3d else np.eye(3) for o in objects])
    cam_from_world = np.linalg.inv(frame.world_from_cam)
    corners = np.asarray(boxes.box_corners(centre, extent, rot), np.float64)
    corners_cam = corners @ cam_from_world[:3, :3].T + cam_from_world[:3, 3]
    box2d, _, _ = boxes.projected_box2d(
        corners_cam.astype(np.float32), frame.K.astype(np.float32), frame.width, frame.height
    )
    box2d = np.asarray(box2d, np.float64)
    w, h = box2d[:, 2] - box2d[:, 0], box2d[:, 3] - box2d[:, 1]
    in_view = boxed & (w >= config.min_box_px) & (h >= config.min_box_px)
    if rule == "projection":
        score[in_view] = np.round(w * h)[in_view].astype(np.int64)
        return in_view, score, rule
    fraction, count, _ = visibility.visible_fraction(scene, frame, centre, extent, rot, in_view)
    score = np.asarray(count, np.int64)
    visible = in_view & (fraction >= config.min_visible_fraction) & (score >= needed)
    return visible, score, rule


def frame_times(scene: Scene) -> tuple[np.ndarray, str]:
    """`([F] seconds of each of the scene's frames, where they came from)` (module docstring)."""
    meta = scene.meta or {}
    ids = [f.frame_id for f in scene.frames]
    given = meta.get("frame_time")
    if isinstance(given, dict) and all(i in given for i in ids):
        times, origin = np.array([float(given[i]) for i in ids]), "source"
    else:
        rate = meta.get("fps") or FRAME_RATE_BY_SOURCE.get(scene.source)
        numeric = all(i.isdigit() for i in ids)
        if rate and numeric:
            times, origin = np.array([int(i) for i in ids]) / float(rate), "frame_number"
        elif rate:
            times, origin = np.arange(len(ids)) / float(rate), "frame_rate"
        else:
            times, origin = np.arange(len(ids)) * DEFAULT_SPACING_S, "assumed"
    return times - (times.min() if len(times) else 0.0), origin


def sample_frame_indices(available: int, num_frames: int, mode: str = "uniform", seed=0):
    """Positions (sorted, distinct) of the frames a clip takes from `available` frames."""
    if mode not in SAMPLING_MODES:
        raise ValueError(f"mode must be one of {SAMPLING_MODES}, got {mode!r}")
    if mode == "all" or available <= num_frames:
        return np.arange(available)
    if mode == "uniform":
        return np.unique(np.linspace(0, available - 1, num_frames, dtype=int))
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(available, size=num_frames, replace=False))


def sample_clip(
    scene: Scene,
    num_frames: int = 16,
    mode: str = "uniform",
    *,
    seed: int = 0,
    clip_id: str | None = None,
    min_pixels: int | None = None,
    config: ObserveConfig | None = None,
) -> Clip:
    """A clip of `num_frames` of the scene's frames, with per-frame visibility.

    Args:
      scene: any source's scene; its frames are put in time order first (`frame_times`).
      num_frames: clip length (VSI-Bench uses 8, 16 or 32); fewer when the scene has fewer.
      mode: "uniform" (default), "random" (sorted, `seed`) or "all".
      clip_id: default `"{scene_id}:{mode}{num_frames}"`.
      min_pixels, config: visibility thresholds (`frame_visibility`).

    Returns:
      A `Clip`; the room polygon, area, height and footprints come from
      `scene.meta["room_polygon"]`, `["room_height"]` and `["footprints"]` when present.
    """
    if not scene.frames:
        raise SceneSkip(f"scene {scene.scene_id}: no frames to make a clip of")
    times, origin = frame_times(scene)
    order = np.argsort(times, kind="stable")
    pick = order[sample_frame_indices(len(order), int(num_frames), mode, seed)]
    frames = [scene.frames[i] for i in pick]
    visible, score, rules = [], [], set()
    for frame in frames:
        v, s, rule = frame_visibility(scene, frame, min_pixels=min_pixels, config=config)
        visible.append(v)
        score.append(s)
        rules.add(rule)
    # Frames with and without depth in one scene: the clip reports the weakest rule it used.
    rule = min(rules, key=_RULE_STRENGTH.index)
    meta = dict(scene.meta or {})
    polygon = meta.get("room_polygon")
    footprints = meta.get("footprints")
    threshold = (
        min_pixels
        if min_pixels is not None
        else default_min_pixels(frames[0].width, frames[0].height)
    )
    n = len(scene.objects)
    clip = Clip(
        clip_id=clip_id or f"{scene.scene_id}:{mode}{num_frames}",
        scene_id=scene.scene_id,
        source=scene.source,
        frames=frames,
        frame_time=times[pick],
        objects=scene.objects,
        visible=np.stack(visible) if visible else np.zeros((0, n), bool),
        visible_score=np.stack(score) if score else np.zeros((0, n), np.int64),
        visibility_rule=rule,
        min_pixels=int(threshold),
        room_polygon=None if polygon is None else np.asarray(polygon, np.float64),
        room_area=None if polygon is None else room_lib.polygon_area(polygon),
        room_height=meta.get("room_height"),
        footprints=None if footprints is None else np.asarray(footprints, np.float64),
        root=scene.root,
        meta={
            "frame_indices": pick.tolist(),
            "frame_time_from": origin,
            **{k: meta[k] for k in _PASSED_THROUGH if k in meta},
        },
    )
    if clip.unseen:
        log.info(
            "clip %s: objects %s are seen by no frame", clip.clip_id,
            [clip.objects[i].index for i in clip.unseen],
        )  # fmt: skip
    return clip


def load_clips(
    source,
    num_frames: int = 16,
    mode: str = "uniform",
    *,
    ids: Iterable[str] | None = None,
    seed: int = 0,
    skipped: list | None = None,
) -> Iterator[Clip]:
    """Clips of a source's scenes, one per scene id (`sample_clip` on each loaded scene).

    A scene that cannot be loaded (`SceneSkip`) is logged and appended to `skipped` as
    `{"scene_id", "reason", "file", "field"}`; the rest go on.
    """
    for scene_id in source.scene_ids() if ids is None else ids:
        try:
            scene = source.load(scene_id)
            clip = sample_clip(scene, num_frames, mode, seed=seed)
        except SceneSkip as err:
            log.warning("skipping scene %s: %s", scene_id, err)
            if skipped is not None:
                skipped.append(
                    {"scene_id": scene_id, "reason": str(err), "file": err.file, "field": err.field}
                )
            continue
        yield clip


def save_gif(clip: Clip, path, duration_ms: float | None = None) -> str:
    """Writes the clip's frames as an animated GIF (PIL).

    Args:
      duration_ms: per-frame display time; default the clip's own frame spacing (its last
        frame shown as long as the one before), so the animation plays in real time.
    """
    from PIL import Image

    images = [Image.fromarray(clip.image(t)) for t in range(clip.num_frames)]
    if not images:
        raise ValueError(f"clip {clip.clip_id} has no frames")
    if duration_ms is None:
        gaps = np.diff(clip.frame_time) * 1000.0
        gaps = np.append(gaps, gaps[-1] if len(gaps) else 500.0)
        durations = [max(20, int(round(g))) for g in gaps]
    else:
        durations = [int(round(duration_ms))] * len(images)
    images[0].save(str(path), save_all=True, append_images=images[1:], duration=durations, loop=0)
    return str(path)


__all__ = [
    "Clip",
    "default_min_pixels",
    "frame_times",
    "frame_visibility",
    "load_clips",
    "sample_clip",
    "sample_frame_indices",
    "save_gif",
]
