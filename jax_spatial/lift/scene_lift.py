"""Scene-level lifting: give every mask- or box-only object of a scene a 3D box.

`lift_scene` takes a `Scene` whose frames carry depth (a sensor's, a precomputed map's or an
estimator's) and whose objects carry per-frame instance masks or only 2D boxes, and fits each
object a gravity-aligned `Box3D` with the jitted `image_only.lift_objects`. Objects that
already have a `box3d` are left alone, so the stage is safe to run on any source.

**Frames.** The lifting works in each frame's view frame (x right, y forward, z up);
`view_from_cam` is derived from the frame's pose with `frames.view_from_cam`, and the boxes are
moved back to the scene's world with `world_from_view`. For image-only scenes the world *is*
the view frame (`Frame.world_from_cam = make_transform(view_from_cam_rotation(pitch, roll),
0)`), so `world_from_view` is the identity; for posed RGB-D frames (Redwood, SUN RGB-D) the
boxes land in the dataset's own z-up world.

**Which frame.** An object seen in several frames is lifted in each of them and keeps the box
with the most kept depth samples: the closest, least occluded view pins its extent best.

**Masks and boxes.** A mask (`SceneObject.masks[frame_id]`, RLE or polygons) is used as is. An
object with only a 2D box uses the box as its mask, and the lifting's depth test has to reject
the background inside the box: samples further than `mad_k` robust sigmas from the *median*
depth of the box are dropped. That works while the object covers clearly more than half of its
box's pixels with valid depth, so that the median lies on the object: a bed, a cabinet, a car
seen from the side, a person standing upright. It fails for thin or hollow objects (a chair
seen through its legs, a lamp, a bicycle), whose box is mostly background: the median then
lies on the wall behind and the "box" is a slab of wall. On SUN RGB-D 000017 (tests) box-only
lifting puts the bed and the night stand within 0.2 m of their annotated centres. Box-lifted
objects are marked `extra["lift"]["from"] == "box"` so consumers can treat them with more
caution (e.g. skip metric-size questions).

**Static shapes.** The jitted lifting compiles once per `(N, H, W)`. Objects are padded to the
batching buckets (8, 16, 32, 64, 128; a frame with more objects is lifted in chunks of 128),
and the image to the next size in `SIZE_BUCKETS` per side (multiples of 128 up to 1024, then
of 256; padding is zero depth and empty masks, on the bottom and right so pixel coordinates
and K are unchanged). COCO's images (at most 640 px a side) fall into at most 9 shapes, so a
whole COCO split compiles at most 9 x 5 times. The lifting samples a fixed grid inside each
mask's box, so padding changes no result: the boxes equal those of `lift_objects` on the
unpadded frame. `static_size=(H, W)` pins one shape for everything (larger images are then
refused with a SceneSkip).

**Drops.** Objects the lifting marks not ok (empty mask, fewer than `min_points` samples with
valid depth, no mask or box, an undecodable mask) are removed from the scene and counted in
`scene.meta["lift_dropped"]`, with one `{"index", "category", "reason"}` entry each in
`scene.meta["lift_drop_reasons"]`.

**Provenance.** `scene.meta["estimators"]` says what made the depth, intrinsics and gravity
(`{"depth": "precomputed:png", "intrinsics": "exif:35mm", "gravity": "level_prior"}`);
sources fill it with `estimate_frame`, and `lift_scene` adds the depth estimator it ran itself.
Each lifted object's `extra["visible_fraction"]` is the fraction of its mask pixels with valid
depth and `extra["lift"]` says which frame and input (mask or box) made the box, and whether
that frame showed the whole object (`view_completeness`: not cut by the image border, not
partly hidden; and at least `MIN_VALID_DEPTH_FRACTION` of the mask with valid depth,
recorded as `valid_depth_fraction`). An incomplete box is too small and off-centre; `observe`
passes the flag on as `FrameObservation.box_complete`, and size relations are never asked of
incomplete boxes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os

import numpy as np
from PIL import Image

from jax_spatial import masks as masks_lib
from jax_spatial.batching import BUCKETS, bucket_for
from jax_spatial.geometry import frames as frames_lib
from jax_spatial.lift import estimators as est
from jax_spatial.lift.image_only import MIN_VALID_DEPTH_FRACTION, LiftConfig, lift_objects
from jax_spatial.scene import Box3D, Frame, Scene, SceneObject, SceneSkip
from jax_spatial.sources import Source

DEFAULT_CONFIG = LiftConfig()

# Per-side image sizes the lifting compiles for: 128 px steps keep the padding (wasted work)
# under a quarter of a side for images from 384 px up, and 256 px steps above 1024 px.
SIZE_BUCKETS = (128, 256, 384, 512, 640, 768, 896, 1024, 1280, 1536, 1792, 2048, 2560, 3072, 4096)


def padded_size(height: int, width: int, size_buckets=SIZE_BUCKETS) -> tuple[int, int]:
    """The `(H, W)` an image is padded to: the smallest bucket at least as large, per side."""

    def up(n: int) -> int:
        for b in size_buckets:
            if n <= b:
                return int(b)
        # Beyond the largest bucket: round up to a multiple of it, still a handful of shapes.
        step = int(size_buckets[-1])
        return int(math.ceil(n / step) * step)

    return up(int(height)), up(int(width))


# --------------------------------------------------------------------------------------------
# Estimators: what a plain image lacks


@dataclasses.dataclass
class GravityTable:
    """Known camera tilts from a JSON file, by image file name (or stem, or id).

    The file maps keys to `{"pitch": radians, "roll": radians}` (or `pitch_deg` / `roll_deg`);
    images not in it fall back to `fallback` (the level prior).
    """

    path: str
    fallback: est.GravityEstimator = dataclasses.field(default_factory=est.LevelGravity)
    name: str = "gravity_json"

    def __post_init__(self):
        with open(self.path) as f:
            table = json.load(f)
        if not isinstance(table, dict):
            raise ValueError(f"{self.path}: expected a JSON object of image -> tilt")
        self._table = {str(k): v for k, v in table.items()}

    def estimate_gravity(self, image, image_path: str | None = None) -> est.GravityEstimate:
        path = image if isinstance(image, str | os.PathLike) else image_path
        keys = []
        if path is not None:
            base = os.path.basename(os.fspath(path))
            keys = [base, os.path.splitext(base)[0]]
        for key in keys:
            entry = self._table.get(key)
            if entry is None:
                continue
            if "pitch_deg" in entry or "roll_deg" in entry:
                pitch = math.radians(float(entry.get("pitch_deg", 0.0)))
                roll = math.radians(float(entry.get("roll_deg", 0.0)))
            else:
                pitch, roll = float(entry.get("pitch", 0.0)), float(entry.get("roll", 0.0))
            return est.GravityEstimate(pitch=pitch, roll=roll, name=self.name)
        return self.fallback.estimate_gravity(image, image_path)


@dataclasses.dataclass
class Estimators:
    """The estimators an image-only source uses (None: that input must come from elsewhere).

    Attributes:
      depth: a `DepthEstimator` (`PrecomputedDepth`, `TransformersDepthEstimator`, ...).
      intrinsics: an `IntrinsicsEstimator`; EXIF with the 60 degree FOV prior by default.
      gravity: a `GravityEstimator`; the level prior by default.
    """

    depth: est.DepthEstimator | None = None
    intrinsics: est.IntrinsicsEstimator = dataclasses.field(default_factory=est.ExifIntrinsics)
    gravity: est.GravityEstimator = dataclasses.field(default_factory=est.LevelGravity)


def build_estimators(
    depth_dir: str | None = None,
    depth_suffix: str = ".png",
    depth_scale: float | None = None,
    depth_estimator=None,
    intrinsics: str | object = "exif",
    hfov_deg: float = 60.0,
    gravity: str | object | None = None,
) -> Estimators:
    """The shared depth / intrinsics / gravity options of the image-only sources.

    Args:
      depth_dir: folder of precomputed depth maps named after the images (`PrecomputedDepth`).
      depth_suffix, depth_scale: their file suffix and metres per stored unit.
      depth_estimator: a depth estimator object, or a Hugging Face model id / folder for
        `TransformersDepthEstimator` (needs torch + transformers). `depth_dir` wins when both.
      intrinsics: "exif" (EXIF focal length, else the FOV prior), "fov" (the prior only), or an
        estimator object.
      hfov_deg: the prior's horizontal field of view.
      gravity: None / "level" (the level prior), a path to a gravity JSON (`GravityTable`),
        or an estimator object.
    """
    depth = None
    if depth_dir is not None:
        depth = est.PrecomputedDepth(directory=os.fspath(depth_dir), suffix=depth_suffix,
                                     scale=depth_scale)  # fmt: skip
    elif isinstance(depth_estimator, str | os.PathLike):
        depth = est.TransformersDepthEstimator(os.fspath(depth_estimator))
    elif depth_estimator is not None:
        depth = depth_estimator
    fov = est.FovPrior(hfov_deg=hfov_deg)
    if intrinsics == "exif":
        intr = est.ExifIntrinsics(fallback=fov)
    elif intrinsics == "fov":
        intr = fov
    elif isinstance(intrinsics, str):
        raise ValueError(f"intrinsics must be 'exif', 'fov' or an estimator, got {intrinsics!r}")
    else:
        intr = intrinsics
    if gravity is None or gravity == "level":
        grav = est.LevelGravity()
    elif isinstance(gravity, str | os.PathLike):
        grav = GravityTable(os.fspath(gravity))
    else:
        grav = gravity
    return Estimators(depth=depth, intrinsics=intr, gravity=grav)


def open_image(path: str) -> tuple[int, int]:
    """`(width, height)` of an image, fully decoded so that a truncated file is caught here.

    Raises:
      SceneSkip: the file is missing or cannot be decoded.
    """
    if not os.path.isfile(path):
        raise SceneSkip(f"image not found: {path}", file=str(path), field="image")
    try:
        with Image.open(path) as im:
            im.load()
            return int(im.size[0]), int(im.size[1])
    except (OSError, ValueError, SyntaxError) as err:
        raise SceneSkip(
            f"corrupt or unreadable image {path}: {err}", file=str(path), field="image"
        ) from err


def estimate_frame(
    frame_id: str, image_path: str, estimators: Estimators, require_depth: bool = True
) -> tuple[Frame, dict[str, str]]:
    """An image-only `Frame` (depth, K, tilt pose) for one image, and the estimators' names.

    The frame's world is its view frame: `world_from_cam = [view_from_cam_rotation(pitch,
    roll) | 0]`.

    Raises:
      SceneSkip: the image is missing or corrupt; no depth is available (`require_depth`);
        the depth map is missing, has the wrong size, or holds no valid (finite, > 0) pixel.
    """
    width, height = open_image(image_path)
    names: dict[str, str] = {}
    depth = None
    if estimators.depth is not None:
        try:
            estimate = estimators.depth.estimate_depth(image_path, image_path=image_path)
        except FileNotFoundError as err:
            raise SceneSkip(f"{frame_id}: depth map not found ({err})") from err
        except (OSError, ValueError) as err:
            raise SceneSkip(f"{frame_id}: unreadable depth map ({err})") from err
        depth = np.asarray(estimate.depth, np.float32)
        if depth.shape != (height, width):
            raise SceneSkip(
                f"{frame_id}: depth map is {depth.shape[1]}x{depth.shape[0]}, "
                f"image is {width}x{height}"
            )
        depth = np.where(np.isfinite(depth) & (depth > 0), depth, 0.0).astype(np.float32)
        if not np.any(depth > 0):
            raise SceneSkip(f"{frame_id}: depth map has no valid pixel (all zero or NaN)")
        names["depth"] = estimate.name
    elif require_depth:
        raise SceneSkip(
            f"{frame_id}: no depth available for {image_path}; pass depth_dir=... "
            "(precomputed maps) or depth_estimator=... (a metric depth model)"
        )
    intr = estimators.intrinsics.estimate_intrinsics(image_path, image_path=image_path)
    grav = estimators.gravity.estimate_gravity(image_path, image_path=image_path)
    names["intrinsics"] = intr.name
    names["gravity"] = grav.name
    frame = Frame(
        frame_id=frame_id,
        width=width,
        height=height,
        K=intr.K,
        world_from_cam=tilt_pose(grav.pitch, grav.roll),
        image_path=image_path,
        depth=depth,
    )
    return frame, names


def tilt_pose(pitch: float, roll: float) -> np.ndarray:
    """`[4, 4]` world_from_cam of an image-only frame: the tilt alone, world = view frame."""
    rot = np.asarray(frames_lib.view_from_cam_rotation(pitch, roll), np.float64)
    out = np.eye(4)
    out[:3, :3] = rot
    return out


# --------------------------------------------------------------------------------------------
# Lifting


def object_mask(obj: SceneObject, frame: Frame) -> tuple[np.ndarray | None, str]:
    """The `[H, W]` bool region to lift `obj` from in `frame`, and what it came from.

    Returns `(mask, "mask")` from an instance mask, `(mask, "box")` from a 2D box, or
    `(None, reason)` when the frame has neither for this object.
    """
    h, w = frame.height, frame.width
    spec = obj.masks.get(frame.frame_id)
    if spec is not None:
        try:
            return masks_lib.decode(spec, h, w), "mask"
        except (ValueError, TypeError, KeyError) as err:
            return None, f"undecodable mask ({err})"
    box = obj.boxes2d.get(frame.frame_id)
    if box is not None:
        box = np.asarray(box, np.float64).reshape(-1)
        if box.size < 4 or not np.all(np.isfinite(box[:4])):
            return None, "non-finite 2D box"
        # Pixels whose centres lie inside the box (the mask convention of `masks.py`).
        x1, y1 = (int(np.clip(math.ceil(v - 0.5), 0, n)) for v, n in ((box[0], w), (box[1], h)))
        x2, y2 = (int(np.clip(math.ceil(v - 0.5), 0, n)) for v, n in ((box[2], w), (box[3], h)))
        mask = np.zeros((h, w), bool)
        mask[y1:y2, x1:x2] = True
        return mask, "box"
    return None, "no mask or 2D box in this frame"


# A neighbour at least this much nearer than a mask's edge pixel is something in front of it.
OCCLUDER_STEP_M, OCCLUDER_STEP_REL = 0.05, 0.05
# Above this share of occluded edge pixels the object is taken as partly hidden. A few edge
# pixels meet a nearer surface on any object resting on another (a cup's foot on a table).
MAX_OCCLUDED_EDGE = 0.1


def view_completeness(mask: np.ndarray, depth: np.ndarray) -> dict:
    """Whether a frame shows the whole object, judged from its mask and the depth around it.

    (`lift_scene` also requires `MIN_VALID_DEPTH_FRACTION` of the mask to have valid depth.)

    A box lifted from a cut-off or partly hidden object is too small and off-centre, so size
    comparisons with it are not trustworthy. Two signs:

    * truncated: the mask touches the image border;
    * occluded: more than `MAX_OCCLUDED_EDGE` of the mask's edge pixels have an outside
      neighbour whose depth is nearer by more than `max(5 cm, 5%)`: something stands in front.

    Args:
      mask: `[H, W]` bool; depth: `[H, W]` metres, 0 / NaN unknown.

    Returns:
      `{"truncated": bool, "occluded_edge": float, "complete": bool}`.
    """
    h, w = mask.shape
    truncated = bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())
    z = np.where(np.isfinite(depth) & (depth > 0), depth, np.inf)
    edge = np.zeros_like(mask)
    occluded = np.zeros_like(mask)
    padded_mask = np.pad(mask, 1, constant_values=False)
    padded_z = np.pad(z, 1, constant_values=np.inf)
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        other_mask = padded_mask[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
        other_z = padded_z[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
        outside = mask & ~other_mask
        edge |= outside
        step = np.maximum(OCCLUDER_STEP_M, OCCLUDER_STEP_REL * np.where(np.isfinite(z), z, 0))
        occluded |= outside & np.isfinite(z) & (other_z < z - step)
    share = float(occluded.sum() / max(edge.sum(), 1))
    return {
        "truncated": truncated,
        "occluded_edge": round(share, 4),
        "complete": not truncated and share <= MAX_OCCLUDED_EDGE,
    }


# Every lifted box gets at least this much: its centre then carries a 5 cm slack, which keeps
# relations off the knife edge of their margins where depth noise decides the answer. It also
# marks the box as lifted (annotated boxes have 0).
MIN_HIDDEN_DEPTH_M = 0.1


def hidden_depth(centre: np.ndarray, extent: np.ndarray, rotation: np.ndarray) -> float:
    """How far a lifted view-space box may reach behind what the camera saw, metres.

    Depth shows only an object's front: the box's depth along the line of sight is a lower
    bound. Most objects are not much deeper than wide, so the box's longer horizontal side
    bounds the true depth; the difference is the hidden slack (a ball seen as a cap: its
    width minus the cap's depth). The relations widen their margins by it.
    """
    r = math.hypot(centre[0], centre[1])
    q = np.array([centre[0], centre[1]]) / r if r > 1e-6 else np.array([0.0, 1.0])
    along = np.abs(q @ rotation[:2, :]) @ extent
    return round(float(max(MIN_HIDDEN_DEPTH_M, max(extent[0], extent[1]) - along)), 4)


def _view_from_world(world_from_cam: np.ndarray) -> np.ndarray:
    """`[4, 4]` float64 view_from_world of a posed frame (numpy twin of `frames.view_from_world`).

    Computed in float64 on the host so that an image-only frame, whose view frame is its world,
    gets the identity to the last bit rather than float32 round-off.
    """
    rot = world_from_cam[:3, :3]
    up = np.array([0.0, 0.0, 1.0])
    forward, right = rot[:, 2], rot[:, 0]
    forward_h = forward - forward[2] * up
    if np.linalg.norm(forward_h) > 1e-6:
        y_axis = forward_h / np.linalg.norm(forward_h)
    else:
        # Looking straight up or down: the flattened right axis fixes the yaw instead.
        right_h = right - right[2] * up
        y_axis = np.cross(up, right_h / max(np.linalg.norm(right_h), 1e-12))
    x_axis = np.cross(y_axis, up)
    out = np.eye(4)
    out[:3, :3] = np.stack([x_axis, y_axis, up])
    out[:3, 3] = -out[:3, :3] @ world_from_cam[:3, 3]
    return out


def _lift_frame(frame: Frame, region_list, config: LiftConfig, size_buckets, static_size):
    """Runs the jitted lifting on one frame. Returns a dict of `[n, ...]` numpy arrays."""
    depth = np.asarray(frame.depth, np.float32)
    h, w = depth.shape
    if (h, w) != (frame.height, frame.width):
        raise SceneSkip(
            f"frame {frame.frame_id}: depth is {w}x{h}, image is {frame.width}x{frame.height}"
        )
    if static_size is not None:
        ph, pw = (int(v) for v in static_size)
        if h > ph or w > pw:
            raise SceneSkip(f"frame {frame.frame_id}: {w}x{h} exceeds static size {pw}x{ph}")
    else:
        ph, pw = padded_size(h, w, size_buckets)
    padded_depth = np.zeros((ph, pw), np.float32)
    padded_depth[:h, :w] = np.where(np.isfinite(depth), depth, 0.0)
    view_from_world = _view_from_world(frame.world_from_cam)
    view_from_cam = (view_from_world @ frame.world_from_cam)[:3, :3]
    out = {k: [] for k in ("centre", "extent", "rotation", "ok", "num_points", "visible")}
    for start in range(0, len(region_list), BUCKETS[-1]):
        chunk = region_list[start : start + BUCKETS[-1]]
        n = bucket_for(len(chunk))
        stack = np.zeros((n, ph, pw), bool)
        for i, m in enumerate(chunk):
            stack[i, :h, :w] = m
        valid = np.arange(n) < len(chunk)
        lifted = lift_objects(padded_depth, stack, valid, frame.K, view_from_cam, config=config)
        k = len(chunk)
        out["centre"].append(np.asarray(lifted.centre, np.float64)[:k])
        out["extent"].append(np.asarray(lifted.extent, np.float64)[:k])
        out["rotation"].append(np.asarray(lifted.rotation, np.float64)[:k])
        out["ok"].append(np.asarray(lifted.ok)[:k])
        out["num_points"].append(np.asarray(lifted.num_points)[:k])
        out["visible"].append(np.asarray(lifted.visible_fraction, np.float64)[:k])
    result = {k: np.concatenate(v) if v else np.zeros((0,)) for k, v in out.items()}
    result["world_from_view"] = np.linalg.inv(view_from_world)
    return result


def lift_scene(
    scene: Scene,
    config: LiftConfig = DEFAULT_CONFIG,
    estimators: Estimators | None = None,
    *,
    size_buckets=SIZE_BUCKETS,
    static_size: tuple[int, int] | None = None,
) -> Scene:
    """Gives every object with a mask or 2D box and no `box3d` a lifted world-frame `Box3D`.

    Args:
      scene: a scene whose frames carry `depth` (`[H, W]` metres, 0 / NaN missing); frames
        without depth get it from `estimators.depth` when given.
      config: the static lifting thresholds.
      estimators: only `estimators.depth` is used here (intrinsics and gravity are the
        source's business, they are in the frame already).
      size_buckets: per-side image sizes to pad to (see the module docstring).
      static_size: `(H, W)` to pad every image to instead.

    Returns:
      A new `Scene`: lifted objects have `box3d`, `extra["visible_fraction"]` and
      `extra["lift"]`; objects that could not be lifted are removed and counted in
      `meta["lift_dropped"]` / `meta["lift_drop_reasons"]`; `meta["estimators"]` is kept
      (and gains `depth` when this stage estimated it).

    Raises:
      SceneSkip: an object needs lifting but no frame has depth (and no estimator can make it).
    """
    meta = dict(scene.meta)
    names = dict(meta.get("estimators") or {})
    todo = [o for o in scene.objects if o.box3d is None]
    if not todo:
        meta.setdefault("lift_dropped", 0)
        meta.setdefault("lift_drop_reasons", [])
        return dataclasses.replace(scene, meta=meta)

    new_frames = []
    for frame in scene.frames:
        if frame.depth is None and estimators is not None and estimators.depth is not None:
            path = frame.image_path
            if path is not None and scene.root and not os.path.isabs(path):
                path = os.path.join(scene.root, path)
            if path is None:
                raise SceneSkip(
                    f"{scene.scene_id}/{frame.frame_id}: no image path to estimate depth"
                )
            estimate = estimators.depth.estimate_depth(path, image_path=path)
            frame = dataclasses.replace(frame, depth=np.asarray(estimate.depth, np.float32))
            names["depth"] = estimate.name
        new_frames.append(frame)
    if not any(f.depth is not None for f in new_frames):
        raise SceneSkip(
            f"{scene.scene_id}: {len(todo)} objects need lifting but no frame has depth"
        )

    # Per object: the best lift over frames, or the reasons it failed.
    best: dict[int, tuple] = {}
    reasons: dict[int, list[str]] = {id(o): [] for o in todo}
    for frame in new_frames:
        if frame.depth is None:
            for o in todo:
                reasons[id(o)].append(f"{frame.frame_id}: frame has no depth")
            continue
        regions, owners, kinds = [], [], []
        for o in todo:
            mask, kind = object_mask(o, frame)
            if mask is None:
                reasons[id(o)].append(f"{frame.frame_id}: {kind}")
                continue
            if not mask.any():
                reasons[id(o)].append(f"{frame.frame_id}: empty {kind}")
                continue
            regions.append(mask)
            owners.append(o)
            kinds.append(kind)
        if not regions:
            continue
        res = _lift_frame(frame, regions, config, size_buckets, static_size)
        for i, o in enumerate(owners):
            if not bool(res["ok"][i]):
                reasons[id(o)].append(
                    f"{frame.frame_id}: {int(res['num_points'][i])} depth samples kept "
                    f"(< {config.min_points}; visible fraction {res['visible'][i]:.2f})"
                )
                continue
            view = view_completeness(regions[i], np.asarray(frame.depth))
            # Depth missing on part of the mask (NaN, 0 or negative: a sensor dropout, a
            # shiny or dark surface) hides that part as surely as an occluder does.
            view["valid_depth_fraction"] = round(float(res["visible"][i]), 4)
            view["complete"] = bool(
                view["complete"] and res["visible"][i] >= MIN_VALID_DEPTH_FRACTION
            )
            # Prefer a frame that shows the whole object, then the one with most samples.
            score = (view["complete"], int(res["num_points"][i]))
            if id(o) not in best or score > best[id(o)][0]:
                best[id(o)] = (score, frame.frame_id, kinds[i], i, res, view)

    objects, drops = [], []
    for o in scene.objects:
        if o.box3d is not None:
            objects.append(o)
            continue
        if id(o) not in best:
            why = "; ".join(reasons[id(o)]) or "nothing to lift from"
            drops.append({"index": o.index, "category": o.category, "reason": why})
            continue
        (_, score), frame_id, kind, i, res, view = best[id(o)]
        world_from_view = res["world_from_view"]
        rot_w = world_from_view[:3, :3]
        centre = rot_w @ res["centre"][i] + world_from_view[:3, 3]
        box = Box3D(centre=centre, extent=res["extent"][i], rotation=rot_w @ res["rotation"][i])
        extra = dict(o.extra)
        extra["visible_fraction"] = float(res["visible"][i])
        # Box-as-mask lifting lets background in: its extent is never trusted for sizes.
        complete = view["complete"] and kind == "mask"
        extra["lift"] = {
            "frame": frame_id,
            "from": kind,
            "num_points": score,
            **view,
            "complete": complete,
            "hidden_depth_m": hidden_depth(res["centre"][i], res["extent"][i], res["rotation"][i]),
        }
        objects.append(dataclasses.replace(o, box3d=box, extra=extra))
    # A frame showing an object that could not be lifted no longer lists everything it shows.
    dropped = {d["index"] for d in drops}
    unlisted = {
        f.frame_id
        for o in scene.objects
        if o.index in dropped and o.box3d is None
        for f in new_frames
        if f.frame_id in o.masks or f.frame_id in o.boxes2d
    }
    new_frames = [
        dataclasses.replace(f, exhaustive=False) if f.frame_id in unlisted else f
        for f in new_frames
    ]
    meta["lift_dropped"] = int(meta.get("lift_dropped", 0)) + len(drops)
    meta["lift_drop_reasons"] = list(meta.get("lift_drop_reasons", [])) + drops
    if names:
        meta["estimators"] = names
    return dataclasses.replace(scene, frames=new_frames, objects=objects, meta=meta)


class LiftingSource(Source):
    """Wraps a source so that every scene it loads comes out lifted (`lift_scene`)."""

    def __init__(
        self,
        source: Source,
        config: LiftConfig = DEFAULT_CONFIG,
        estimators: Estimators | None = None,
        *,
        discard_boxes: bool = False,
        **lift_options,
    ):
        """`discard_boxes`: drop annotated 3D boxes first and lift every object from depth and
        masks, as if the source had no 3D annotation (how the procedural default runs)."""
        super().__init__(source.root, **source.options)
        self.inner = source
        self.name = source.name
        self.config = config
        self.estimators = estimators
        self.discard_boxes = discard_boxes
        self.lift_options = lift_options

    def scene_ids(self) -> list[str]:
        return self.inner.scene_ids()

    def load(self, scene_id: str) -> Scene:
        scene = self.inner.load(scene_id)
        if self.discard_boxes:
            scene = dataclasses.replace(
                scene, objects=[dataclasses.replace(o, box3d=None) for o in scene.objects]
            )
        return lift_scene(scene, self.config, self.estimators, **self.lift_options)


def lifted(source: Source, config: LiftConfig = DEFAULT_CONFIG, **kwargs) -> LiftingSource:
    """`lifted(get_source("coco", root, depth_dir=...))`: a source whose scenes are lifted."""
    return LiftingSource(source, config, **kwargs)


__all__ = [
    "SIZE_BUCKETS",
    "Estimators",
    "GravityTable",
    "LiftingSource",
    "build_estimators",
    "estimate_frame",
    "lift_scene",
    "lifted",
    "object_mask",
    "open_image",
    "padded_size",
    "tilt_pose",
]
