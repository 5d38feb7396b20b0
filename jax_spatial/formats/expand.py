"""Expanding a QA record into its instruction formats: references, suitability, sampling.

`expand_formats(obs, qa, select, seed, qa_id)` re-renders the record's templates with the
objects named in each suitable format's style (`qa.phrase.render_text`) and attaches the
overlay spec (`Prompt`s). The table of which formats a task gets, and why, is in
docs/formats.md; in short:

* A question with no object (counting names a category) gets `caption/raw` only: a per-object
  prompt would have nothing to point at, and prompting the counted objects gives the answer.
* `image_text` never on `raw` (there is nothing to refer to).
* Caption text (`caption`, `ref`) only when words single out every referenced object: its
  unique caption or a relative expression ("the leftmost car"), `FrameObservation.referring`.
  `ref_region_box`, `ref_caption_box` (the box says which "car") and image text point by
  geometry and work for any object.
* Box text only when the 0..1000 box is not degenerate after rounding.
* `boxes` when every referenced box is at least `min_box_side` px on its short side; `masks`
  when every referenced object has a mask of at least `min_mask_px` px; `marks` when every
  box fits a legible mark (`min_mark_side`) and, without masks, the marks do not overlap.

Capitalisation: a sentence that opens with a tagged reference keeps the tag's content as it is
("<ref>the chair</ref> is ..."): the tag holds the exact referring phrase, identical in question
and answer, and upper-casing inside it would make the same object's phrase differ between
sentences. Untagged references are capitalised as usual ("The object in the red box is ...",
"Region 3 is ..."). Agreement: caption references agree with the phrase ("the clothes are");
"region", "the object in the red box" and "region 3" are singular.

Determinism: colours, mark labels and the sampled formats come from a numpy Generator seeded by
SHA-256 of `"<qa_id>|<seed>"`, so they do not depend on the process, the batch or the order.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from jax_spatial import masks as mask_lib
from jax_spatial.formats import draw
from jax_spatial.formats.spec import (
    FORMATS,
    KIND_OF_IMAGE,
    FormattedQA,
    Prompt,
    split_format,
)
from jax_spatial.observe import FrameObservation
from jax_spatial.qa import grammar
from jax_spatial.qa.phrase import render_text
from jax_spatial.qa.types import QARecord
from jax_spatial.writers.jsonl import box_to_1000

# Colours a QA's prompts are drawn from (the first four of the palette), and a pair never
# used together: red and green are the pair red-green colour blindness confuses.
_PROMPT_COLOURS = ("red", "blue", "yellow", "green")
_CONFUSABLE = frozenset({"red", "green"})
# Mark labels: one digit, so every mark is equally wide; drawn at random so "region 1" is not
# always the first object mentioned.
_LABELS = tuple(range(1, 10))
# Text references that name an object by words alone, and those that carry its box.
_CAPTION_REFS = ("caption", "ref")
_BOX_REFS = ("ref_region_box", "ref_caption_box")
# The text references that point at an object by its geometry.
_POINTING_REFS = ("ref_region_box", "ref_caption_box", "image_text")
# `--formats auto`: one line per QA, nothing drawn: its own words on the raw image where words
# single out its objects, else the words with the boxes (InternVL grounding text), else the
# boxes alone.
AUTO_FORMATS = ("caption/raw", "ref_caption_box/raw", "ref_region_box/raw")


def reference_kinds(select) -> tuple[str, ...]:
    """The ways objects may be named (`QuotaConfig.references`) in a run's formats.

    `select` as `parse_select` returns it. Caption and relative words need a `caption` or
    `ref` format; pointing needs a format that names objects by their box or drawn prompt.
    """
    if select == "all" or select == "auto" or isinstance(select, int | np.integer):
        return ("caption", "relative", "pointing")
    text_refs = {split_format(f)[0] for f in select}
    kinds = []
    if text_refs & set(_CAPTION_REFS):
        kinds += ["caption", "relative"]
    if text_refs & set(_POINTING_REFS):
        kinds.append("pointing")
    return tuple(kinds)


@dataclasses.dataclass(frozen=True)
class FormatConfig:
    """Suitability thresholds.

    Attributes:
      min_mask_px: a mask with fewer pixels is not drawn: 16 px (4 x 4) is the least a
        translucent tint shows as a shape rather than a speck.
      style: the drawing style the thresholds refer to (default: `draw.style_for(H, W)`).
    """

    min_mask_px: int = 16
    style: draw.DrawStyle | None = None

    def style_for(self, obs: FrameObservation) -> draw.DrawStyle:
        return self.style or draw.style_for(obs.height, obs.width)


def box_text(obs: FrameObservation, o: int) -> str:
    """ "[[x1, y1, x2, y2]]": the object's pixel box in InternVL's 0..1000 integers."""
    return "[[" + ", ".join(str(v) for v in box_to_1000(obs.box2d[o], obs.width, obs.height)) + "]]"


def object_reference(
    obs: FrameObservation, o: int, text_ref: str, prompt: Prompt | None = None
) -> tuple[str, str]:
    """How a format names object `o`, and the "is"/"are" that agrees with the name.

    Args:
      obs: the frame.
      o: the object's position in `obs`.
      text_ref: one of `spec.TEXT_REFS`.
      prompt: the object's prompt (needed for "image_text": its colour or label).

    Returns:
      (name, be), e.g. ("<ref>the clothes</ref>", "are"), ("region 3", "is").
    """
    words = obs.referring[o] if obs.referring is not None else None
    caption = words or grammar.definite(obs.reference_phrases[o])
    if text_ref == "caption":
        return caption, grammar.be(caption)
    if text_ref == "ref":
        return f"<ref>{caption}</ref>", grammar.be(caption)
    if text_ref == "ref_region_box":
        return f"<ref>region</ref><box>{box_text(obs, o)}</box>", "is"
    if text_ref == "ref_caption_box":
        return f"<ref>{caption}</ref><box>{box_text(obs, o)}</box>", grammar.be(caption)
    if text_ref == "image_text":
        if prompt is None:
            raise ValueError("image_text references need the object's prompt")
        if prompt.kind == "box":
            return f"the object in the {prompt.colour} box", "is"
        if prompt.kind == "mask":
            return f"the object under the {prompt.colour} mask", "is"
        return f"region {prompt.label}", "is"
    raise ValueError(f"unknown text reference {text_ref!r}")


def _mask_area(spec, obs: FrameObservation) -> float:
    if isinstance(spec, dict):
        return float(mask_lib.rle_area(spec))
    if isinstance(spec, np.ndarray) and spec.ndim == 2:
        return float(spec.sum())
    return mask_lib.polygon_area(spec)


def suitable_formats(
    obs: FrameObservation,
    qa: QARecord,
    config: FormatConfig = FormatConfig(),
    candidates: tuple[str, ...] = FORMATS,
) -> tuple[str, ...]:
    """The formats `qa` can be asked in, in `FORMATS` order (rules in the module docstring).

    Args:
      obs, qa: the frame and the record.
      config: suitability thresholds.
      candidates: only these formats are checked (a subset of `FORMATS`, in its order); the
        answer for each is the same as with all of them, and checks no candidate needs are
        skipped (the default `caption/raw` run skips the box, mask and mark tests).
    """
    objects = list(dict.fromkeys(qa.objects))
    if not objects or not qa.answer_template_id:
        # Counting, or a hand-built record without slots: its own text only.
        return ("caption/raw",) if "caption/raw" in candidates else ()
    checks: dict[str, bool] = {}

    def holds(name: str) -> bool:
        if name not in checks:
            checks[name] = _CHECKS[name](obs, objects, config)
        return checks[name]

    out = []
    for fid in candidates:
        text_ref, image_prompt = split_format(fid)
        if image_prompt != "raw" and not holds(image_prompt):
            continue
        if text_ref in _CAPTION_REFS and not holds("caption"):
            continue
        if text_ref in _BOX_REFS and not holds("box_text"):
            continue
        out.append(fid)
    return tuple(out)


def _boxes(obs: FrameObservation, objects) -> np.ndarray:
    return np.asarray(obs.box2d, np.float64)[objects]  # [k, 4]


def _short_sides(obs: FrameObservation, objects) -> np.ndarray:
    boxes = _boxes(obs, objects)
    return np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])


def _has_masks(obs: FrameObservation, objects) -> bool:
    return obs.masks is not None and all(obs.masks[o] is not None for o in objects)


def _caption_ok(obs: FrameObservation, objects, config: FormatConfig) -> bool:
    if obs.referring is not None:
        return all(obs.referring[o] is not None for o in objects)
    unique = obs.caption_unique
    return all(unique[o] for o in objects)


def _box_text_ok(obs: FrameObservation, objects, config: FormatConfig) -> bool:
    box1000 = [box_to_1000(obs.box2d[o], obs.width, obs.height) for o in objects]
    return all(b[2] > b[0] and b[3] > b[1] for b in box1000)


def _boxes_ok(obs: FrameObservation, objects, config: FormatConfig) -> bool:
    return bool(_short_sides(obs, objects).min() >= draw.min_box_side(config.style_for(obs)))


def _masks_ok(obs: FrameObservation, objects, config: FormatConfig) -> bool:
    return _has_masks(obs, objects) and all(
        _mask_area(obs.masks[o], obs) >= config.min_mask_px for o in objects
    )


def _marks_ok(obs: FrameObservation, objects, config: FormatConfig) -> bool:
    style = config.style_for(obs)
    if _short_sides(obs, objects).min() < draw.min_mark_side(style):
        return False
    if _has_masks(obs, objects):
        return True
    # Marks sit at the box centres: two close centres would stack the discs.
    boxes = _boxes(obs, objects)
    centres = 0.5 * (boxes[:, :2] + boxes[:, 2:])  # [k, 2]
    gap = 2 * (draw.mark_radius(style) + style.glyph_scale)
    return all(np.hypot(*(a - b)) >= gap for k, a in enumerate(centres) for b in centres[k + 1 :])


# Suitability tests by name: the drawn image prompts, and the two text conditions.
_CHECKS = {
    "boxes": _boxes_ok,
    "masks": _masks_ok,
    "marks": _marks_ok,
    "caption": _caption_ok,
    "box_text": _box_text_ok,
}


def format_rng(qa_id: str, seed: int) -> np.random.Generator:
    """The Generator of one QA's format choices: SHA-256 of `"<qa_id>|<seed>"`."""
    digest = hashlib.sha256(f"{qa_id}|{int(seed)}".encode()).digest()
    return np.random.default_rng(list(np.frombuffer(digest[:16], dtype=np.uint32)))


def _colours(n: int, rng: np.random.Generator) -> list[str]:
    order = [_PROMPT_COLOURS[i] for i in rng.permutation(len(_PROMPT_COLOURS))]
    if n >= 2 and set(order[:2]) == _CONFUSABLE:
        order[1], order[2] = order[2], order[1]
    if n > len(order):
        raise ValueError(f"at most {len(order)} prompted objects per question, got {n}")
    return order[:n]


def parse_select(text: str | int | None):
    """CLI value -> "all", "auto", an int K, or a tuple of format ids ("caption/raw,ref/raw")."""
    if text is None:
        return ("caption/raw",)
    if isinstance(text, int):
        return text
    text = str(text).strip()
    if text in ("all", "auto"):
        return text
    if text.isdigit():
        if int(text) < 1:
            raise ValueError("--formats K needs K >= 1")
        return int(text)
    ids = tuple(t.strip() for t in text.split(",") if t.strip())
    for fid in ids:
        split_format(fid)
    return ids


def expand_formats(
    obs: FrameObservation,
    qa: QARecord,
    select="all",
    seed: int = 0,
    qa_id: str = "",
    config: FormatConfig = FormatConfig(),
) -> list[FormattedQA]:
    """A QA in its suitable formats.

    Args:
      obs: the frame the QA is about.
      qa: the record (from `qa.phrase`, so it carries its slots).
      select: "all" (every suitable format, in `FORMATS` order), an int K (K of them drawn
        uniformly without replacement, in `FORMATS` order; all when fewer are suitable),
        "auto" (the first suitable of `AUTO_FORMATS`), or a sequence of format ids (those of
        them that are suitable).
      seed: run seed.
      qa_id: the QA's stable id (e.g. "scannet/scene0000_00/00000/3"); with `seed` it seeds
        the colours, labels and sampling.
      config: suitability thresholds.

    Returns:
      `FormattedQA`s; empty when none of the selected formats is suitable.
    """
    sampled = isinstance(select, int | np.integer)
    if select == "all" or sampled:
        suitable = suitable_formats(obs, qa, config)
    elif select == "auto":
        suitable = ()
        for fid in AUTO_FORMATS:
            suitable = suitable_formats(obs, qa, config, (fid,))
            if suitable:
                break
    else:
        wanted = set(select)
        suitable = suitable_formats(obs, qa, config, tuple(f for f in FORMATS if f in wanted))
    objects = list(dict.fromkeys(qa.objects))
    if not sampled and all(f.endswith("/raw") for f in suitable):
        # No prompts to colour or label and nothing to sample: the Generator (a SHA-256 and
        # a seeding, most of a raw-only run's time here) is not needed, and skipping it
        # changes nothing, since every draw below comes from a Generator of this QA alone.
        colours, labels, chosen = [], [], suitable
    else:
        rng = format_rng(qa_id, seed)
        colours = _colours(len(objects), rng) if objects else []
        labels = [int(x) for x in rng.choice(_LABELS, size=len(objects), replace=False)]
        if sampled and len(suitable) > select:
            pick = np.sort(rng.choice(len(suitable), size=int(select), replace=False))
            chosen = tuple(suitable[i] for i in pick)
        else:
            chosen = suitable
    out = []
    for fid in chosen:
        text_ref, image_prompt = split_format(fid)
        prompts: dict[int, Prompt] = {}
        if image_prompt != "raw":
            kind = KIND_OF_IMAGE[image_prompt]
            for o, colour, label in zip(objects, colours, labels, strict=True):
                prompts[o] = Prompt(o, kind, colour, label if kind == "mark" else None)
        if text_ref == "caption" and image_prompt == "raw" or not objects:
            question, answer, choices = qa.question, qa.answer, list(qa.choices)
        else:
            refs = {o: object_reference(obs, o, text_ref, prompts.get(o)) for o in objects}
            question, answer, choices = render_text(
                qa, lambda o, refs=refs: refs[o][0], lambda o, refs=refs: refs[o][1]
            )
        out.append(
            FormattedQA(
                format_id=fid,
                text_ref=text_ref,
                image_prompt=image_prompt,
                question=question,
                answer=answer,
                prompts=tuple(prompts[o] for o in objects) if prompts else (),
                choices=tuple(choices),
            )
        )
    return out


def has_format(obs: FrameObservation, qa: QARecord, select, config: FormatConfig = FormatConfig()):
    """Whether `expand_formats(obs, qa, select)` gives at least one format."""
    if select == "all" or isinstance(select, int | np.integer):
        return bool(suitable_formats(obs, qa, config))
    candidates = AUTO_FORMATS if select == "auto" else tuple(f for f in FORMATS if f in select)
    return any(suitable_formats(obs, qa, config, (f,)) for f in candidates)


__all__ = [
    "AUTO_FORMATS",
    "FormatConfig",
    "has_format",
    "reference_kinds",
    "box_text",
    "expand_formats",
    "format_rng",
    "object_reference",
    "parse_select",
    "suitable_formats",
]
