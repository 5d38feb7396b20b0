"""How true are answers from lifted geometry? Procedural scenes make it measurable.

A procedural scene knows every object's exact 3D box. `lifted_vs_truth` throws those boxes
away, lifts every object again from the rendered depth and instance masks alone (what an
image-only source has), generates QA from the lifted boxes, and re-derives every answer with
the slow reference from the *true* boxes of the same objects in the same frame. It also
reports the lifting's own errors (view-space centre and extent) per visible object.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from jax_spatial import engine
from jax_spatial.lift.scene_lift import lift_scene
from jax_spatial.observe import FrameObservation, observe_frame
from jax_spatial.relations.reference import reference_relations_for
from jax_spatial.relations.types import FAMILIES, RELATIONS
from jax_spatial.scene import Scene
from jax_spatial.sources import Source

_SIGN_OF = {
    name: (f, 1 if d == 0 else -1)
    for f, family in enumerate(FAMILIES)
    for d, name in enumerate(RELATIONS[family])
}


def strip_boxes(scene: Scene) -> Scene:
    """The scene as an image-only source would see it: masks and depth, no 3D boxes."""
    objects = [dataclasses.replace(o, box3d=None) for o in scene.objects]
    return dataclasses.replace(scene, objects=objects)


def with_true_boxes(lifted: FrameObservation, truth: Scene) -> FrameObservation:
    """The lifted observation's objects, with their true view-space boxes instead."""
    frame = truth.frame(lifted.frame_id)
    everyone = observe_frame(truth, frame, dataclasses.replace(_ALL_VISIBLE))
    position = {int(i): p for p, i in enumerate(everyone.object_index)}
    keep = np.array([position[int(i)] for i in lifted.object_index], dtype=int)
    true = everyone.select(keep)
    n = lifted.num_objects
    # True boxes are exact and whole: no hidden depth, nothing incomplete.
    return dataclasses.replace(
        lifted,
        centre=true.centre,
        extent=true.extent,
        rotation=true.rotation,
        box_complete=np.ones(n, bool),
        hidden_depth=np.zeros(n),
    )


# Every object with a 3D box in front of the camera, hidden or not: the lifted observation
# decides which objects the frame shows; this only supplies their true boxes.
_ALL_VISIBLE = engine.ObserveConfig(min_box_px=0.0, min_visible_fraction=0.0, min_visible_samples=0)


def answer_is_true(meta: dict, obs_true: FrameObservation, facts) -> bool:
    """Re-derives one record's canonical answer from the reference facts of the true boxes."""
    position = {int(i): p for p, i in enumerate(obs_true.object_index)}
    objs = [position[o["index"]] for o in meta["objects"]]
    if meta["task"] in ("position", "size"):
        f, sign = _SIGN_OF[meta["relation"]]
        if meta["kind"] == "yes_no":
            truth = facts.pair[objs[0], objs[1], f]
            return truth != 0 and meta["canonical"] == ("yes" if truth == sign else "no")
        winner = objs["AB".index(meta["canonical"])]
        loser = objs[1 - "AB".index(meta["canonical"])]
        return facts.pair[winner, loser, f] == sign
    if meta["task"] == "existence":
        f, sign = _SIGN_OF[meta["relation"]]
        k = facts.categories.index(meta["category"])
        truth = facts.exists[objs[0], k, f, 0 if sign == 1 else 1]
        return truth != 0 and meta["canonical"] == ("yes" if truth == 1 else "no")
    if meta["task"] == "counting":
        k = facts.categories.index(meta["category"])
        return int(meta["canonical"]) == int(facts.counts[k])
    raise ValueError(f"unknown task {meta['task']}")


@dataclasses.dataclass
class AgreementReport:
    views: int
    objects: int
    qa: int
    agree: int
    per_task: dict
    disagreements: list[dict]
    centre_error_m: np.ndarray  # [objects] view-space centre distance
    extent_error_m: np.ndarray  # [objects, 3] |sorted lifted sides - sorted true sides|

    @property
    def agreement(self) -> float:
        return self.agree / max(self.qa, 1)

    def as_dict(self) -> dict:
        return {
            "views": self.views,
            "objects": self.objects,
            "qa": self.qa,
            "agree": self.agree,
            "agreement": round(self.agreement, 5),
            "per_task": self.per_task,
            "median_centre_error_m": round(float(np.median(self.centre_error_m)), 4),
            "median_extent_error_m": [
                round(float(v), 4) for v in np.median(self.extent_error_m, axis=0)
            ],
            "disagreements": self.disagreements[:20],
        }


def lifted_vs_truth(
    source: Source, scene_ids: Sequence[str], config: engine.GenerateConfig | None = None
) -> AgreementReport:
    """Lifts `scene_ids` of a source with true boxes, asks QA of the lifted boxes, scores them."""
    from jax_spatial.writers.jsonl import chat_record

    config = config or engine.GenerateConfig()
    observations, truths = [], {}
    for scene_id in scene_ids:
        truth = source.load(scene_id)
        lifted = lift_scene(strip_boxes(truth))
        truths[scene_id] = truth
        observations += [observe_frame(lifted, f, config.observe) for f in lifted.frames]
    per_task: dict[str, list[int]] = {}
    disagreements, centre_err, extent_err = [], [], []
    qa = agree = 0
    for frame_qa in engine.questions_for_observations(observations, config):
        obs = frame_qa.observation
        obs_true = with_true_boxes(obs, truths[obs.scene_id])
        centre_err += list(np.linalg.norm(obs.centre - obs_true.centre, axis=-1))
        extent_err += list(np.abs(np.sort(obs.extent, -1) - np.sort(obs_true.extent, -1)))
        facts = reference_relations_for(obs_true, config.relations)
        for number, record in enumerate(frame_qa.qas):
            meta = chat_record(obs, record, number, None)["meta"]
            ok = answer_is_true(meta, obs_true, facts)
            qa += 1
            ok = bool(ok)
            agree += ok
            counts = per_task.setdefault(meta["task"], [0, 0])
            counts[0] += ok
            counts[1] += 1
            if not ok:
                disagreements.append({"question": record.question, "answer": record.answer, **meta})
    return AgreementReport(
        views=len(observations),
        objects=len(centre_err),
        qa=qa,
        agree=agree,
        per_task={k: {"agree": a, "total": t} for k, (a, t) in per_task.items()},
        disagreements=disagreements,
        centre_error_m=np.asarray(centre_err),
        extent_error_m=np.asarray(extent_err).reshape(-1, 3),
    )
