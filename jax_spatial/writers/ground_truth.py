"""`ground_truth.jsonl`: per view, everything its answers were derived from, for re-checking.

Sources that know their scenes exactly (the procedural rooms: `Scene.meta["ground_truth"]`)
get one line per view beside `qa.jsonl`, so anyone can re-derive every answer without the
engine. A line::

    {"id": "procedural/proc_000000/view_00",       # = meta source/scene_id/frame_id of the QA
     "source": "procedural", "scene_id": "proc_000000", "frame_id": "view_00",
     "answers_from": "lifted",                     # or "exact"
     "derived_from": "...",                        # what the answers were computed from
     "frame": "...",                               # the conventions below, in words
     "camera": {"width", "height", "K", "world_from_cam", "view_from_cam"},
     "exhaustive": true,                           # counting allowed on this view
     "relations": {...},                           # the margins (`RelationConfig`) used
     "objects": [{
        "index": 3, "category": "chair", "caption": "red chair",
        "exact": {"centre": [x, y, z], "size": [sx, sy, sz], "rotation": [[...]]},
        "pixel_box": [x1, y1, x2, y2] | null, "pixels": 1234,     # the rendered mask
        "role": "asked" | "glimpse" | "unseen",
        "answer_box": {"centre", "size", "rotation", "hidden_depth", "complete"} | null,
        "box2d": [x1, y1, x2, y2] | null}, ...]}  # the pixel box the QA records show

Conventions: boxes are in the view frame (x right, y forward along the horizontal viewing
direction, z up; metres, origin at the optical centre); `size` is the full side lengths along
the box's own axes and `rotation` is view_from_box (its columns are the box axes in the view
frame); `K` is OpenCV intrinsics, `world_from_cam` the camera-to-world pose of the scene's
z-up world, `view_from_cam` the camera's tilt. `role`: "asked" objects are those the QA may
ask about (`meta.objects[*].index` is their `index`); "glimpse" ones may be seen but are too
small or hidden to ask about, and still count where the rules say so (caption uniqueness,
"there is no ..."); "unseen" ones are not in the view (or not lifted). `answer_box` is the
box the answers were derived from: the exact box for `answers_from == "exact"`, else the box
lifted from the rendered depth and masks, with its `hidden_depth` (metres it may reach behind
what the camera saw) and `complete` (lifted from a view that shows the whole object); the
relation rules of docs/relations.md widen their margins by these.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jax_spatial.observe import FrameObservation
from jax_spatial.scene import Frame, Scene

_FRAME_TEXT = (
    "view frame: x right, y forward (horizontal viewing direction), z up, metres, origin at "
    "the optical centre; size = full side lengths along the box axes; rotation = view_from_box"
)


def has_ground_truth(scene: Scene) -> bool:
    """Whether the scene carries exact ground truth (`meta["ground_truth"]`)."""
    return bool((scene.meta or {}).get("ground_truth"))


def scene_truth(scene: Scene) -> dict:
    """Per frame id, what `view_record` needs from the scene: the frame and the exact objects.

    Computed when the scene is loaded (the observations outlive it).
    """
    objects = list(scene.meta["ground_truth"])
    return {frame.frame_id: {"frame": frame, "objects": objects} for frame in scene.frames}


def _box(centre, extent, rotation) -> dict:
    return {
        "centre": [float(v) for v in centre],
        "size": [float(v) for v in extent],
        "rotation": np.asarray(rotation, np.float64).tolist(),
    }


def view_record(truth: dict, obs: FrameObservation, relations=None) -> dict:
    """One line of `ground_truth.jsonl` for the view `obs` (see the module docstring).

    Args:
      truth: `scene_truth(scene)[frame_id]`.
      obs: the observation the view's QA were asked of (after any trimming).
      relations: the `RelationConfig` the answers were decided with.
    """
    frame: Frame = truth["frame"]
    view_from_cam = np.asarray(obs.view_from_cam, np.float64)
    view_from_world = view_from_cam @ np.linalg.inv(frame.world_from_cam)
    rot, shift = view_from_world[:3, :3], view_from_world[:3, 3]
    lifted = (obs.geometry or {}).get("boxes", "annotated") != "annotated"
    asked = {int(i): k for k, i in enumerate(obs.object_index)}
    glimpses = obs.glimpses
    glimpsed = {} if glimpses is None else {int(i): k for k, i in enumerate(glimpses.object_index)}
    objects = []
    for o in truth["objects"]:
        index, box = int(o["index"]), o["box3d"]
        entry = {
            "index": index,
            "category": o["category"],
            "caption": o["caption"],
            "exact": _box(rot @ box.centre + shift, box.extent, rot @ box.rotation),
            "pixel_box": _floats(o["boxes2d"].get(frame.frame_id)),
            "pixels": int(o["pixels"].get(frame.frame_id, 0)),
            "role": "unseen",
            "answer_box": None,
            "box2d": None,
        }
        if index in asked:
            k = asked[index]
            entry["role"] = "asked"
            entry["answer_box"] = {
                **_box(obs.centre[k], obs.extent[k], obs.rotation[k]),
                "hidden_depth": float(obs.hidden_depth[k]),
                "complete": bool(obs.box_complete[k]),
            }
            entry["box2d"] = _floats(obs.box2d[k])
        elif index in glimpsed:
            k = glimpsed[index]
            entry["role"] = "glimpse"
            # As the relations see a glimpse: its box, with what the observation says of its
            # hidden depth and completeness (none: an exact box).
            hidden = getattr(glimpses, "hidden_depth", None)
            complete = getattr(glimpses, "box_complete", None)
            entry["answer_box"] = {
                **_box(glimpses.centre[k], glimpses.extent[k], glimpses.rotation[k]),
                "hidden_depth": 0.0 if hidden is None else float(hidden[k]),
                "complete": True if complete is None else bool(complete[k]),
            }
            entry["box2d"] = _floats(glimpses.box2d[k])
        objects.append(entry)
    if lifted:
        derived = (
            "boxes lifted from the rendered depth and instance masks (lift.scene_lift), the "
            "exact boxes discarded; answer_box is each lifted box, exact the true one"
        )
    else:
        derived = "the exact (annotated) boxes; answer_box equals exact"
    record = {
        "id": f"{obs.source}/{obs.scene_id}/{obs.frame_id}",
        "source": obs.source,
        "scene_id": obs.scene_id,
        "frame_id": obs.frame_id,
        "answers_from": "lifted" if lifted else "exact",
        "derived_from": derived,
        "frame": _FRAME_TEXT,
        "camera": {
            "width": int(frame.width),
            "height": int(frame.height),
            "K": np.asarray(frame.K, np.float64).tolist(),
            "world_from_cam": np.asarray(frame.world_from_cam, np.float64).tolist(),
            "view_from_cam": view_from_cam.tolist(),
        },
        "exhaustive": bool(obs.exhaustive),
        "objects": objects,
    }
    if relations is not None:
        record["relations"] = dataclasses.asdict(relations)
    return record


def _floats(box):
    return None if box is None else [float(v) for v in np.asarray(box).reshape(-1)]


__all__ = ["has_ground_truth", "scene_truth", "view_record"]
