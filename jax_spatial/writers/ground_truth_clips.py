"""`ground_truth_clips.jsonl`: per clip, the exact geometry its multi-view answers come from.

One line per clip (`clip_record`), so anyone can re-derive every multi-view answer (counts,
distances, sizes, room size, appearance order, routes, rotations) without the engine::

    {"clip_id": "room_000003:uniform16", "scene_id": "room_000003",
     "source": "procedural_clips",
     "frame": "...",                                  # the conventions below, in words
     "room_polygon": [[x, y], ...] | null,            # metres, world frame, anticlockwise
     "room_area": 31.2 | null, "room_height": 2.8 | null,
     "visibility": {"rule": "instance_map", "min_pixels": 48},
     "objects": [{"index": 0, "category": "chair", "caption": "red chair" | null,
                  "centre": [x, y, z], "extent": [sx, sy, sz], "rotation": [[...]],
                  "footprint": [[x, y] x 4] | null,       # floor footprint (procedural)
                  "first_frame": 2}, ...],                # -1: no frame shows it
     "unseen": [5, 7],                                # object indices no frame shows
     "frames": [{"frame_id": "frame_0004", "time": 2.0, "width": 160, "height": 120,
                 "K": [[...]], "world_from_cam": [[...]],
                 "visible": [0, 3],                   # object indices this frame shows
                 "score": [812, 0, ...]}, ...],       # per object, what was thresholded
     "rotation": {"kind": "object", "yaw_change_deg": -105.0, ...}}   # rotation pairs only

Conventions: the scene's world frame, z up (against gravity), metres. `centre` is the box
centre, `extent` its full side lengths along its own axes, `rotation` world_from_box (its
columns are the box axes in the world). `K` is OpenCV intrinsics and `world_from_cam` the
OpenCV camera-to-world pose. Objects are listed in annotation order and named by `index`
everywhere (`visible`, `unseen`); an object without a usable 3D box has null `centre`,
`extent` and `rotation`. `score` follows the clip's visibility rule: instance-map or depth
pixels, visible scan points, or projected-box pixels (docs/multi_view.md, "Clips").

`read_ground_truth_clips` loads the file back into `ClipTruth`s of numpy arrays; a line that
is not a valid record is logged with file and line, appended to `skipped`, and left out.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Iterable

import numpy as np

from jax_spatial.multiview.clip import Clip

log = logging.getLogger(__name__)

FILE_NAME = "ground_truth_clips.jsonl"
_FRAME_TEXT = (
    "world frame: z up (against gravity), metres; centre/extent/rotation = box centre, full "
    "side lengths, world_from_box; K = OpenCV intrinsics; world_from_cam = OpenCV "
    "camera-to-world; objects named by index"
)


def json_safe(value):
    """numpy scalars and arrays, tuples -> plain JSON types (recursively)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        return float(value)
    return value


_json_safe = json_safe  # the name `multiview.generate` calls


def clip_record(clip: Clip) -> dict:
    """One line of `ground_truth_clips.jsonl` (module docstring)."""
    first = clip.first_seen
    objects = []
    for n, obj in enumerate(clip.objects):
        box = obj.box3d
        objects.append(
            {
                "index": int(obj.index),
                "category": obj.category,
                "caption": obj.caption,
                "centre": None if box is None else box.centre.tolist(),
                "extent": None if box is None else box.extent.tolist(),
                "rotation": None if box is None else box.rotation.tolist(),
                "footprint": None if clip.footprints is None else clip.footprints[n].tolist(),
                "first_frame": int(first[n]),
            }
        )
    index = np.array([o.index for o in clip.objects], np.int64)
    frames = []
    for t, frame in enumerate(clip.frames):
        frames.append(
            {
                "frame_id": frame.frame_id,
                "time": float(clip.frame_time[t]),
                "width": int(frame.width),
                "height": int(frame.height),
                "K": frame.K.tolist(),
                "world_from_cam": frame.world_from_cam.tolist(),
                "visible": index[clip.visible[t]].tolist(),
                "score": clip.visible_score[t].tolist(),
            }
        )
    record = {
        "clip_id": clip.clip_id,
        "scene_id": clip.scene_id,
        "source": clip.source,
        "frame": _FRAME_TEXT,
        "room_polygon": None if clip.room_polygon is None else clip.room_polygon.tolist(),
        "room_area": None if clip.room_area is None else float(clip.room_area),
        "room_height": None if clip.room_height is None else float(clip.room_height),
        "visibility": {"rule": clip.visibility_rule, "min_pixels": int(clip.min_pixels)},
        "objects": objects,
        "unseen": index[~clip.seen].tolist(),
        "frames": frames,
    }
    if clip.meta.get("rotation") is not None:
        record["rotation"] = json_safe(clip.meta["rotation"])
    return record


def _target(path) -> str:
    path = os.fspath(path)
    return os.path.join(path, FILE_NAME) if os.path.isdir(path) else path


def write_ground_truth_clips(clips: Iterable[Clip], path) -> int:
    """Writes one `clip_record` line per clip; returns how many were written.

    Args:
      clips: the clips.
      path: the file, or a folder to write `ground_truth_clips.jsonl` into.
    """
    count = 0
    with open(_target(path), "w", encoding="utf-8") as f:
        for clip in clips:
            f.write(json.dumps(clip_record(clip), separators=(",", ":")) + "\n")
            count += 1
    return count


@dataclasses.dataclass
class ClipTruth:
    """One clip of `ground_truth_clips.jsonl` as numpy arrays (`N` objects, `T` frames).

    Attributes:
      clip_id, scene_id, source: as written.
      room_polygon: `[P, 2]` or None; room_area, room_height: float or None.
      visibility_rule, min_pixels: the clip's visibility rule and threshold.
      index: `[N]` object annotation indices; category, caption: `N` strings (or None).
      centre, extent: `[N, 3]`; rotation: `[N, 3, 3]` (nan for objects without a box).
      footprints: `[N, 4, 2]` or None.
      frame_ids: `T` ids; time: `[T]`; K: `[T, 3, 3]`; world_from_cam: `[T, 4, 4]`;
      width, height: `[T]` int.
      visible: `[T, N]` bool; score: `[T, N]` int; unseen: indices no frame shows.
      rotation: the rotation pair's answer, or None.
    """

    clip_id: str
    scene_id: str
    source: str
    room_polygon: np.ndarray | None
    room_area: float | None
    room_height: float | None
    visibility_rule: str
    min_pixels: int
    index: np.ndarray
    category: list[str]
    caption: list[str | None]
    centre: np.ndarray
    extent: np.ndarray
    rotation: np.ndarray
    footprints: np.ndarray | None
    frame_ids: list[str]
    time: np.ndarray
    K: np.ndarray
    world_from_cam: np.ndarray
    width: np.ndarray
    height: np.ndarray
    visible: np.ndarray
    score: np.ndarray
    unseen: list[int]
    rotation_pair: dict | None = None

    def arrays(self) -> dict:
        """The per-clip numpy dict `multiview.batch.make_clip_batch` packs (boxed objects)."""
        keep = np.flatnonzero(np.all(np.isfinite(self.centre), axis=1))
        return {
            "centre": self.centre[keep],
            "extent": self.extent[keep],
            "rotation": self.rotation[keep],
            "category": [self.category[k] for k in keep],
            "visible": self.visible[:, keep],
            "frame_time": self.time.copy(),
            "cam_from_world": np.linalg.inv(self.world_from_cam),
            "index": self.index[keep],
            "position": keep,
        }


def _array(value, shape, name):
    arr = np.asarray(value, np.float64)
    if arr.shape != shape:
        raise ValueError(f"{name} has shape {arr.shape}, expected {shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} has a non-finite value")
    return arr


def parse_record(record: dict) -> ClipTruth:
    """A decoded line -> `ClipTruth`. Raises ValueError/KeyError/TypeError naming the field."""
    objects = record["objects"]
    n = len(objects)
    index = np.array([int(o["index"]) for o in objects], np.int64)
    if len(set(index.tolist())) != n:
        raise ValueError("objects: repeated index")
    position = {int(i): k for k, i in enumerate(index)}
    centre, extent = np.full((n, 3), np.nan), np.full((n, 3), np.nan)
    rotation = np.full((n, 3, 3), np.nan)
    footprints = np.zeros((n, 4, 2)) if n and objects[0].get("footprint") is not None else None
    for k, o in enumerate(objects):
        if o.get("centre") is not None:
            centre[k] = _array(o["centre"], (3,), f"objects[{k}].centre")
            extent[k] = _array(o["extent"], (3,), f"objects[{k}].extent")
            rotation[k] = _array(o["rotation"], (3, 3), f"objects[{k}].rotation")
        if footprints is not None:
            footprints[k] = _array(o["footprint"], (4, 2), f"objects[{k}].footprint")
    frames = record["frames"]
    t = len(frames)
    visible = np.zeros((t, n), bool)
    score = np.zeros((t, n), np.int64)
    for j, f in enumerate(frames):
        for i in f["visible"]:
            if int(i) not in position:
                raise ValueError(f"frames[{j}].visible names object {i}, which is not listed")
            visible[j, position[int(i)]] = True
        if "score" in f:
            score[j] = np.asarray(f["score"], np.int64).reshape(n)
    polygon = record.get("room_polygon")
    if polygon is not None:
        polygon = np.asarray(polygon, np.float64)
        if polygon.ndim != 2 or polygon.shape[1] != 2 or len(polygon) < 3:
            raise ValueError(f"room_polygon has shape {polygon.shape}, expected (P >= 3, 2)")
    time = np.array([float(f["time"]) for f in frames])
    vis = record.get("visibility", {})
    return ClipTruth(
        clip_id=str(record["clip_id"]),
        scene_id=str(record["scene_id"]),
        source=str(record["source"]),
        room_polygon=polygon,
        room_area=None if record.get("room_area") is None else float(record["room_area"]),
        room_height=None if record.get("room_height") is None else float(record["room_height"]),
        visibility_rule=str(vis.get("rule", "")),
        min_pixels=int(vis.get("min_pixels", 0)),
        index=index,
        category=[str(o["category"]) for o in objects],
        caption=[o.get("caption") for o in objects],
        centre=centre,
        extent=extent,
        rotation=rotation,
        footprints=footprints,
        frame_ids=[str(f["frame_id"]) for f in frames],
        time=time,
        K=np.stack([_array(f["K"], (3, 3), f"frames[{j}].K") for j, f in enumerate(frames)])
        if t
        else np.zeros((0, 3, 3)),
        world_from_cam=np.stack(
            [
                _array(f["world_from_cam"], (4, 4), f"frames[{j}].world_from_cam")
                for j, f in enumerate(frames)
            ]
        )
        if t
        else np.zeros((0, 4, 4)),
        width=np.array([int(f["width"]) for f in frames], np.int64),
        height=np.array([int(f["height"]) for f in frames], np.int64),
        visible=visible,
        score=score,
        unseen=[int(i) for i in record.get("unseen", [])],
        rotation_pair=record.get("rotation"),
    )


def read_ground_truth_clips(path, skipped: list | None = None) -> list[ClipTruth]:
    """Loads `ground_truth_clips.jsonl` (a file, or a folder holding it).

    Args:
      path: the file or its folder.
      skipped: when given, receives `{"file", "line", "reason"}` for every line left out.

    Raises:
      UserError: the file does not exist.
    """
    from jax_spatial.errors import UserError

    target = _target(path)
    if not os.path.isfile(target):
        raise UserError(f"{target}: no such ground-truth file")
    out = []
    with open(target, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError(f"a {type(record).__name__}, not an object")
                out.append(parse_record(record))
            except (ValueError, KeyError, TypeError) as err:
                reason = f"missing field {err}" if isinstance(err, KeyError) else str(err)
                log.warning("%s: line %d: skipped: %s", target, number, reason)
                if skipped is not None:
                    skipped.append({"file": target, "line": number, "reason": reason})
    return out


__all__ = [
    "FILE_NAME",
    "ClipTruth",
    "clip_record",
    "parse_record",
    "read_ground_truth_clips",
    "write_ground_truth_clips",
]
