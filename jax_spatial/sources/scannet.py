"""ScanNet posed frames from mmdetection3d v1.0 "infos" files.

Layout read (what `tools/create_data.py scannet` writes, v1.0 schema)::

    root/
      scannet_infos_{train,val}.pkl   # or any scannet_infos*.pkl holding a list of dicts
      points/scene0000_00.bin         # float32 x y z r g b, the unaligned scan (`pts_path`)
      posed_images/scene0000_00/00000.jpg

Each info entry is one scene: `point_cloud.lidar_idx` (the scene id), `intrinsics` (4x4 colour
intrinsics), `extrinsics` (one 4x4 camera-to-world pose per frame), `img_paths`, and `annos`
(`name`, `gt_boxes_upright_depth`, `unaligned_gt_boxes_upright_depth`, `axis_align_matrix`,
`index`, `class`). Flattened samples (`posed_images/00000.jpg`, a single `*.bin` beside the
infos) are found too.

Frames. The scene's `world` is ScanNet's unaligned scan frame: z up, and the frame the camera
poses and the scan points are given in, so both apply without conversion.

Boxes. Both box arrays are tight axis-aligned boxes of each instance's mesh vertices, each in its
own frame: `unaligned_gt_boxes_upright_depth` is axis-aligned in the unaligned (world) frame and
`gt_boxes_upright_depth` in the aligned frame (`aligned_from_world = axis_align_matrix`). On
scene0000_00 every face of both touches the scan within 5 cm, which is how this was checked. The
default `boxes="aligned"` maps the aligned box into the world: centre by
`inv(axis_align_matrix)`, rotation `world_from_box = axis_align_matrix[:3, :3].T`. That box
follows the room's walls, so a window set in a wall turned 19 degrees from the scan axes is
1.74 x 0.23 m rather than the 1.66 x 0.64 m world-axis box around it; sizes and distances come
out right. `boxes="unaligned"` keeps the world-axis box (identity rotation) instead.

Skips: a scene whose infos entry, points or every image is missing raises `SceneSkip`; a frame
with a non-finite pose (ScanNet marks failed tracking with -inf) or a missing image is dropped,
logged, and listed in `scene.meta["skipped_frames"]` with counts in
`scene.meta["skipped_frame_reasons"]`.
"""

from __future__ import annotations

import collections
import glob
import logging
import os

import numpy as np
from PIL import Image

from jax_spatial.scene import (
    Box3D,
    Frame,
    Scene,
    SceneObject,
    SceneSkip,
    box_problem,
    rigid_problem,
)
from jax_spatial.sources import Source, register

log = logging.getLogger(__name__)

# mmdetection3d's ScanNet class names join words; these are the ones that need spaces back.
_READABLE = {
    "garbagebin": "garbage bin",
    "showercurtrain": "shower curtain",
    "showercurtain": "shower curtain",
    "otherfurniture": "other furniture",
    "nightstand": "night stand",
}


def readable_category(name: str) -> str:
    """ScanNet / mmdetection3d class name -> lower-case words ("garbagebin" -> "garbage bin")."""
    name = str(name).strip().lower().replace("_", " ")
    return _READABLE.get(name.replace(" ", ""), name)


def _load_infos(path: str, skipped: list | None = None) -> list[dict]:
    # The infos are pickles; only numpy and builtins may be rebuilt from them. Refused globals
    # are marked, not fatal, so that one hostile entry is skipped alone (`_index`).
    from jax_spatial.sources.safe_pickle import (
        Refused,
        UnsafePickleError,
        load_pickle_marked,
        salvage_truncated,
    )

    try:
        infos, _ = load_pickle_marked(path)
    except SceneSkip as err:
        # A truncated file keeps the entries before the cut; the rest are reported lost.
        salvaged = salvage_truncated(path) if "truncated" in str(err) else None
        if salvaged is None or not isinstance(salvaged[0], list) or skipped is None:
            raise
        infos = salvaged[0]
        skipped.append({
            "scene_id": None,
            "file": path,
            "field": f"[{len(infos)}:]",
            "reason": f"{path}: truncated pickle; the entries after entry {len(infos) - 1} "
            f"are lost (the {len(infos)} before are read)",
        })  # fmt: skip
    if isinstance(infos, Refused):
        raise UnsafePickleError(f"{path}: refused global {infos.name}")
    if not isinstance(infos, list):
        raise SceneSkip(
            f"{path}: not an mmdetection3d v1.0 ScanNet infos list (got {type(infos).__name__}); "
            "the v1.x `data_list` layout is read by the mmdet3d source"
        )
    return infos


def _entry_id(path: str, i: int, info, skipped: list) -> str | None:
    """An infos entry's scene id (`point_cloud.lidar_idx`); None, recorded in `skipped`, when
    the entry is not a dict or names none."""
    from jax_spatial.sources.safe_pickle import Refused

    field = f"[{i}]"
    if isinstance(info, Refused):
        reason = f"{path}: entry {i} is refused global {info.name}"
    elif not isinstance(info, dict):
        reason = f"{path}: entry {i} is a {type(info).__name__}, not a dict"
    elif not isinstance(info.get("point_cloud"), dict) or not info["point_cloud"].get("lidar_idx"):
        field, reason = f"[{i}].point_cloud.lidar_idx", f"{path}: entry {i} has no scene id"
    else:
        return str(info["point_cloud"]["lidar_idx"])
    skipped.append({"scene_id": None, "file": path, "field": field, "reason": reason})
    return None


@register("scannet")
class ScanNetSource(Source):
    """ScanNet scenes with posed colour frames, 3D boxes and the scan as occlusion points.

    Options:
      infos: infos file name(s) under `root` (str or list); default every `scannet_infos*.pkl`
        in `root` that holds a v1.0 list.
      points: path of the scan `.bin` (may contain `{scene_id}`); default the entry's
        `pts_path`, then `points/{scene_id}.bin`, then `{scene_id}.bin`, then the single `*.bin`
        in `root`.
      boxes: "aligned" (default, room-aligned oriented box) or "unaligned" (world-axis box).
      max_frames: keep at most this many frames per scene, evenly spaced (default all).
    """

    OPTIONS = (("infos", None), ("points", ""), ("boxes", "aligned"), ("max_frames", 0))

    def __init__(self, root: str, **options):
        super().__init__(root, **options)
        if options.get("boxes", "aligned") not in ("aligned", "unaligned"):
            raise ValueError(f"boxes must be 'aligned' or 'unaligned', got {options['boxes']!r}")
        self._entries: dict[str, tuple[str, dict]] | None = None

    # -- index ---------------------------------------------------------------------------------

    def _info_files(self) -> list[str]:
        names = self.options.get("infos")
        if names is None:
            return sorted(glob.glob(os.path.join(self.root, "scannet_infos*.pkl")))
        names = [names] if isinstance(names, str) else list(names)
        return [n if os.path.isabs(n) else os.path.join(self.root, n) for n in names]

    def _index(self) -> dict[str, tuple[str, dict]]:
        if self._entries is None:
            entries: dict[str, tuple[str, dict]] = {}
            explicit = self.options.get("infos") is not None
            for path in self._info_files():
                if not os.path.exists(path):
                    raise SceneSkip(f"ScanNet infos file not found: {path}")
                try:
                    infos = _load_infos(path, self.skipped_entries)
                except Exception as err:
                    if explicit:
                        raise
                    # A globbed file of another layout (v1.x) may sit beside the v1.0 one;
                    # one that does not load at all (truncated, hostile) is reported.
                    log.info("ignoring %s: %s", path, err)
                    if "v1.x" not in str(err):
                        self.skipped_entries.append(
                            {"scene_id": None, "file": path, "field": None, "reason": str(err)}
                        )
                    continue
                for i, info in enumerate(infos):
                    scene_id = _entry_id(path, i, info, self.skipped_entries)
                    if scene_id:
                        entries[scene_id] = (path, info)
            self._entries = entries
        return self._entries

    def scene_ids(self) -> list[str]:
        return sorted(self._index())

    # -- one scene -----------------------------------------------------------------------------

    def load(self, scene_id: str) -> Scene:
        entries = self._index()
        if scene_id not in entries:
            raise SceneSkip(f"scene {scene_id}: no entry in the ScanNet infos under {self.root}")
        infos_path, info = entries[scene_id]
        from jax_spatial.sources.safe_pickle import find_refused

        refused = find_refused(info, limit=1)
        if refused:
            raise SceneSkip(
                f"{infos_path}: scene {scene_id}: {refused[0][0]} is refused global "
                f"{refused[0][1]} (not loaded, not run)",
                file=infos_path,
                field=refused[0][0],
            )
        try:
            return self._load(scene_id, infos_path, info)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
            # A missing key or a value of the wrong shape in one entry: name the entry.
            field = str(err.args[0]) if isinstance(err, KeyError) and err.args else None
            detail = "missing key" if field else f"{type(err).__name__}: {err}"
            raise SceneSkip(
                f"{infos_path}: scene {scene_id}: {field + ': ' if field else ''}{detail}",
                file=infos_path,
                field=field,
            ) from err

    def _load(self, scene_id: str, infos_path: str, info: dict) -> Scene:
        K = np.asarray(info["intrinsics"], np.float64)[:3, :3]
        extrinsics = list(info.get("extrinsics", []))
        img_paths = list(info.get("img_paths", []))
        if not img_paths or len(img_paths) != len(extrinsics):
            raise SceneSkip(
                f"scene {scene_id}: {len(img_paths)} image paths for {len(extrinsics)} poses"
            )

        frames, skipped = [], []
        for k, (rel, pose) in enumerate(zip(img_paths, extrinsics, strict=True)):
            frame_id = os.path.splitext(os.path.basename(rel))[0]
            pose = np.asarray(pose, np.float64)
            if pose.shape != (4, 4) or not np.all(np.isfinite(pose)):
                skipped.append({"frame_id": frame_id, "reason": "non-finite pose"})
                continue
            problem = rigid_problem(pose)
            if problem is not None:
                # A mirrored or scaled pose would flip or stretch every relation of the frame.
                skipped.append({
                    "frame_id": frame_id,
                    "reason": "pose is not rigid",
                    "detail": f"{infos_path}: extrinsics[{k}] is {problem}",
                    "file": str(infos_path),
                    "field": f"extrinsics[{k}]",
                })  # fmt: skip
                continue
            path = self._find_image(scene_id, rel)
            if path is None:
                skipped.append({"frame_id": frame_id, "reason": "image not found"})
                continue
            try:
                with Image.open(path) as image:  # reads the header only
                    width, height = image.size
            except (OSError, ValueError, SyntaxError):
                skipped.append({"frame_id": frame_id, "reason": f"unreadable image {path}"})
                continue
            frames.append(
                Frame(
                    frame_id=frame_id,
                    width=width,
                    height=height,
                    K=K,
                    world_from_cam=pose,
                    image_path=os.path.relpath(path, self.root),
                )
            )
        for s in skipped:
            log.warning(
                "scene %s: skipping frame %s: %s", scene_id, s["frame_id"],
                s.get("detail", s["reason"]),
            )  # fmt: skip
        if not frames:
            reasons = collections.Counter(s["reason"] for s in skipped)
            raise SceneSkip(f"scene {scene_id}: no usable frame ({dict(reasons)})")
        max_frames = self.options.get("max_frames")
        if max_frames and len(frames) > max_frames:
            keep = np.unique(np.linspace(0, len(frames) - 1, int(max_frames)).round().astype(int))
            frames = [frames[i] for i in keep]

        annos = info.get("annos", {})
        objects = self._objects(scene_id, annos, infos_path)
        points = self._points(scene_id, info)
        return Scene(
            scene_id=scene_id,
            source=self.name,
            frames=frames,
            objects=objects,
            points=points,
            root=self.root,
            meta={
                "infos": os.path.relpath(infos_path, self.root),
                "axis_align_matrix": np.asarray(
                    annos.get("axis_align_matrix", np.eye(4)), np.float64
                ),
                "boxes": self.options.get("boxes", "aligned"),
                "skipped_frames": skipped,
                "skipped_frame_reasons": dict(collections.Counter(s["reason"] for s in skipped)),
            },
        )

    def _find_image(self, scene_id: str, rel: str) -> str | None:
        name = os.path.basename(rel)
        for candidate in (
            os.path.join(self.root, rel),
            os.path.join(self.root, "posed_images", scene_id, name),
            os.path.join(self.root, "posed_images", name),
        ):
            if os.path.exists(candidate):
                return candidate
        return None

    def _objects(self, scene_id: str, annos: dict, infos_path="infos") -> list[SceneObject]:
        n = int(annos.get("gt_num", len(annos.get("name", []))))
        if n == 0:
            return []
        names = list(annos["name"])
        mode = self.options.get("boxes", "aligned")
        if mode == "aligned":
            align = np.asarray(annos.get("axis_align_matrix", np.eye(4)), np.float64)
            world_from_aligned = np.linalg.inv(align)
            raw = np.asarray(annos["gt_boxes_upright_depth"], np.float64).reshape(-1, 6)
            centres = raw[:, :3] @ world_from_aligned[:3, :3].T + world_from_aligned[:3, 3]
            # The aligned frame differs from the world by a yaw (and a shift) only, so the
            # aligned box's axes in the world are the columns of the inverse rotation.
            rotation = world_from_aligned[:3, :3]
        else:
            raw = np.asarray(annos["unaligned_gt_boxes_upright_depth"], np.float64).reshape(-1, 6)
            centres = raw[:, :3]
            rotation = np.eye(3)
        if len(raw) != n or len(names) != n:
            raise SceneSkip(
                f"scene {scene_id}: {n} objects but {len(raw)} boxes, {len(names)} names"
            )
        index = np.asarray(annos.get("index", np.arange(n))).astype(int)
        classes = np.asarray(annos.get("class", np.full(n, -1))).astype(int)
        objects = []
        for i in range(n):
            extra = {"class_id": int(classes[i]), "raw_name": str(names[i])}
            problem = box_problem(centres[i], raw[i, 3:6], rotation)
            if problem is None:
                box3d = Box3D(centre=centres[i], extent=raw[i, 3:6], rotation=rotation)
            else:
                # Dropped from the questions; observe makes the frames non-exhaustive and the
                # run counts it.
                box3d = None
                field = "gt_boxes_upright_depth" if mode == "aligned" else (
                    "unaligned_gt_boxes_upright_depth"
                )  # fmt: skip
                extra["invalid_box3d"] = f"{infos_path}: {scene_id} annos.{field}[{i}]: {problem}"
            objects.append(
                SceneObject(
                    index=int(index[i]),
                    category=readable_category(names[i]),
                    box3d=box3d,
                    extra=extra,
                )
            )
        return objects

    def _points(self, scene_id: str, info: dict) -> np.ndarray:
        option = self.options.get("points")
        candidates = []
        if option:
            option = option.format(scene_id=scene_id)
            candidates.append(option if os.path.isabs(option) else os.path.join(self.root, option))
        if info.get("pts_path"):
            candidates.append(os.path.join(self.root, info["pts_path"]))
        candidates += [
            os.path.join(self.root, "points", f"{scene_id}.bin"),
            os.path.join(self.root, f"{scene_id}.bin"),
        ]
        path = next((c for c in candidates if os.path.exists(c)), None)
        if path is None and not option:
            # A single-scene sample keeps its scan beside the infos under any name.
            loose = sorted(glob.glob(os.path.join(self.root, "*.bin")))
            loose += sorted(glob.glob(os.path.join(self.root, "points", "*.bin")))
            path = loose[0] if len(loose) == 1 else None
        if path is None:
            raise SceneSkip(f"scene {scene_id}: scan points not found (tried {candidates})")
        width = int(info.get("point_cloud", {}).get("num_features", 6))
        raw = np.fromfile(path, dtype=np.float32)
        if raw.size % width:
            raise SceneSkip(
                f"scene {scene_id}: {path} holds {raw.size} floats, not rows of {width}"
            )
        return raw.reshape(-1, width)[:, :3].astype(np.float64)
