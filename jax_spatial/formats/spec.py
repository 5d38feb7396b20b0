"""The instruction-format contract: format ids, overlay prompt specs and formatted QA.

A *format* is a (text reference, image prompt) pair: how the question names its objects and
what is drawn on the image. Four pure-text references x four images give 16 formats; the
image-based text ("the object in the red box", "region 2") only makes sense on a drawn image,
which adds 3: 19 in all.

| text_ref          | an object is named as                                    |
|-------------------|----------------------------------------------------------|
| `caption`         | `the red chair`                                          |
| `ref`             | `<ref>the red chair</ref>`                               |
| `ref_region_box`  | `<ref>region</ref><box>[[x1, y1, x2, y2]]</box>`         |
| `ref_caption_box` | `<ref>the red chair</ref><box>[[x1, y1, x2, y2]]</box>`  |
| `image_text`      | `the object in the red box` / `the object under the red  |
|                   | mask` / `region 2`                                       |

| image_prompt | drawn on the image                                          |
|--------------|-------------------------------------------------------------|
| `raw`        | nothing                                                     |
| `boxes`      | a coloured box border per referenced object                 |
| `masks`      | a translucent coloured mask per referenced object           |
| `marks`      | a numbered disc per referenced object (white digits)        |

Box coordinates follow InternVL: integers 0..1000, `round(x / W * 1000)`, clipped.

Overlays are specs, not pixels (`Prompt`): the TFDS builder stores them and a loader draws
them (`formats.draw`) when it reads an example, so formats can be re-sampled every epoch.
"""

from __future__ import annotations

import dataclasses

TEXT_REFS = ("caption", "ref", "ref_region_box", "ref_caption_box", "image_text")
IMAGE_PROMPTS = ("raw", "boxes", "masks", "marks")
PROMPT_KINDS = ("box", "mask", "mark")
# The prompt kind drawn for each drawn image.
KIND_OF_IMAGE = {"boxes": "box", "masks": "mask", "marks": "mark"}


def format_id(text_ref: str, image_prompt: str) -> str:
    """ "ref_caption_box/masks" for ("ref_caption_box", "masks")."""
    return f"{text_ref}/{image_prompt}"


# The 19 formats in a fixed order: the 16 pure-text formats (text ref major), then image_text
# on the three drawn images.
FORMATS: tuple[str, ...] = tuple(
    format_id(t, i) for t in TEXT_REFS if t != "image_text" for i in IMAGE_PROMPTS
) + tuple(format_id("image_text", i) for i in IMAGE_PROMPTS if i != "raw")
assert len(FORMATS) == 19


def split_format(fid: str) -> tuple[str, str]:
    """ "caption/raw" -> ("caption", "raw"); ValueError for an unknown id."""
    if fid not in FORMATS:
        raise ValueError(f"unknown format {fid!r}; known: {', '.join(FORMATS)}")
    text_ref, _, image_prompt = fid.partition("/")
    return text_ref, image_prompt


# Named colours used in both the pixels and the words ("red box" is drawn in PALETTE["red"]).
# Saturated values far apart in hue and lightness. The order matters: prompts take colours
# from the front (`formats.expand` samples among the first four), and red, blue and yellow
# stay distinct under the common red-green colour blindnesses; green is never paired with red.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (228, 26, 28),
    "blue": (30, 100, 235),
    "yellow": (255, 210, 0),
    "green": (20, 170, 60),
    "purple": (150, 60, 200),
    "orange": (255, 127, 0),
    "cyan": (0, 200, 220),
    "pink": (240, 80, 190),
}
COLOUR_NAMES: tuple[str, ...] = tuple(PALETTE)


@dataclasses.dataclass(frozen=True)
class Prompt:
    """One visual prompt on the image.

    Attributes:
      object: the object's position in the `FrameObservation` (its box `obs.box2d[object]`,
        its mask `obs.masks[object]`).
      kind: "box" | "mask" | "mark".
      colour: a `PALETTE` name; the same word the text uses ("the red box").
      label: the number drawn in a mark ("region 2"); None for boxes and masks.
    """

    object: int
    kind: str
    colour: str
    label: int | None = None

    def __post_init__(self):
        if self.kind not in PROMPT_KINDS:
            raise ValueError(f"prompt kind must be one of {PROMPT_KINDS}, got {self.kind!r}")
        if self.colour not in PALETTE:
            raise ValueError(f"unknown colour {self.colour!r}; known: {COLOUR_NAMES}")
        if (self.kind == "mark") != (self.label is not None):
            raise ValueError("marks carry a label, boxes and masks do not")

    def as_dict(self) -> dict:
        """JSON form, as written to `meta.prompts`."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class FormattedQA:
    """One QA in one instruction format.

    Attributes:
      format_id: "caption/raw", "ref_caption_box/masks", "image_text/marks", ... (`FORMATS`).
      text_ref: one of `TEXT_REFS`.
      image_prompt: one of `IMAGE_PROMPTS`.
      question, answer: the text, objects named in the format's style (answers that name an
        object use the same style as the question).
      prompts: what to draw, one per referenced object in mention order; () for "raw".
      choices: multiple-choice texts in letter order, in the format's style (else ()).
    """

    format_id: str
    text_ref: str
    image_prompt: str
    question: str
    answer: str
    prompts: tuple[Prompt, ...]
    choices: tuple[str, ...] = ()


__all__ = [
    "COLOUR_NAMES",
    "FORMATS",
    "IMAGE_PROMPTS",
    "KIND_OF_IMAGE",
    "PALETTE",
    "PROMPT_KINDS",
    "TEXT_REFS",
    "FormattedQA",
    "Prompt",
    "format_id",
    "split_format",
]
