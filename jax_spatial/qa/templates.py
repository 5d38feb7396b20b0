"""String-keyed registry of question and answer templates, and the relation lexicon.

A template is a `str.format` string with named slots. Groups are keyed like
`"left_right/yes_no"`, `"bigger_smaller/multiple_choice"`, `"existence/position"`,
`"counting"`, `"answer/no"`; a template's id is `"<group>/<k>"` and is recorded on every
`QARecord`, so configs and audits can name templates and balance checks can count them.

Slots used by the built-in templates (the phrasing stage fills them, `phrase.py`):

| slot        | example                          | meaning                                       |
|-------------|----------------------------------|-----------------------------------------------|
| `a`, `b`    | "the chair", "the table"         | the two objects (yes/no: subject, object;     |
|             |                                  | multiple choice: choices A and B)             |
| `is_a`      | "is" / "are"                     | "be" agreeing with `a`                        |
| `pred`      | "to the left of", "bigger than"  | the relation asked, as a predicate            |
| `true_pred` | "to the right of"                | the relation that holds (for "no" answers)    |
| `cmp`       | "further left", "bigger"         | the comparative asked in multiple choice      |
| `letter`    | "A"                              | the correct choice                            |
| `winner`, `loser`, `is_w` | "the chair", "the table", "is" | multiple-choice answer parts       |
| `ref`       | "the table"                      | existence: the reference object               |
| `a_cat`     | "a chair", "another chair"       | existence: the category, in a question        |
| `a_cat_decl`| "a chair", "some clothes"        | existence: the category in a statement        |
| `cats`      | "chairs", "other chairs"         | plural category                               |
| `is_there`, `there_is` | "is there", "there are" | existential "be" agreeing with the category   |
| `the_only`, `is_only` | "the only chair", "is"  | existence "no" answer, one other object       |
| `all_cats`  | "both chairs", "all three chairs"| existence "no" answer, several objects        |
| `count`     | "three chairs", "one person"     | counting answer                               |
| `be_n`      | "is" / "are"                     | "be" agreeing with the count                  |

A slot written with a capital first letter (`{A}`, `{Winner}`) is the same value with its
first letter upper-cased, for slots that open a sentence. Rendering also capitalises each
sentence's first letter, so a template may start with `{is_a}`.

Every predicate and comparative says what the relation pass decides (relations/types.py):
position relations are viewer-centred ("in front of" = closer to the camera, "above" =
higher up), sizes are real 3D sizes ("ignoring how far each one is from the camera"), and
width is the real extent across the line of sight ("from side to side as seen from the
camera"). Templates that add a viewpoint phrase only do so where it is true of the family.
"""

from __future__ import annotations

import dataclasses
import functools
import string

from jax_spatial.qa import grammar
from jax_spatial.relations.types import FAMILIES, POSITION_FAMILIES, RELATIONS, SIZE_FAMILIES

# Predicates after "is", as (direction 0, direction 1) pairs per family. A question and its
# "no" answer use the same variant, so "Is X higher up than Y?" is answered "No, X is lower
# down than Y.", never with a word from another variant.
PREDICATES: dict[str, tuple[tuple[str, str], ...]] = {
    "left_right": (
        ("to the left of", "to the right of"),
        ("further to the left than", "further to the right than"),
    ),
    "above_below": (
        ("above", "below"),
        ("higher up than", "lower down than"),
    ),
    "front_behind": (
        ("in front of", "behind"),
        ("closer to the camera than", "farther from the camera than"),
    ),
    "bigger_smaller": (
        ("bigger than", "smaller than"),
        ("larger than", "smaller than"),
    ),
    "taller_shorter": (("taller than", "shorter than"),),
    "wider_thinner": (("wider than", "narrower than"),),
}
# Comparatives for "Which is <cmp>, X or Y?" and "X is <cmp> than Y.", per family.
COMPARATIVES: dict[str, tuple[tuple[str, str], ...]] = {
    "left_right": (
        ("further left", "further right"),
        ("more to the left", "more to the right"),
    ),
    "above_below": (("higher up", "lower down"),),
    "front_behind": (
        ("closer to the camera", "farther from the camera"),
        ("nearer to the viewer", "farther from the viewer"),
    ),
    "bigger_smaller": (("bigger", "smaller"), ("larger", "smaller")),
    "taller_shorter": (("taller", "shorter"),),
    "wider_thinner": (("wider", "narrower"),),
}


@dataclasses.dataclass(frozen=True)
class Template:
    """One phrasing. `id` is `"<group>/<k>"`; `text` a `str.format` string with named slots."""

    id: str
    text: str

    @functools.cached_property
    def slots(self) -> frozenset[str]:
        """The slot names the text uses (capitalised variants included as written); parsed
        once per template, not on every `render`."""
        return frozenset(
            name for _, name, _, _ in string.Formatter().parse(self.text) if name is not None
        )

    def render(self, **values: str) -> str:
        """Fills the slots; `{Name}` is `values["name"]` with its first letter upper-cased.

        Raises KeyError when a slot has no value, so a missing slot never ships as "{a}".
        """
        filled = {}
        for name in self.slots:
            if name in values:
                filled[name] = values[name]
            elif name[:1].isupper() and (name[:1].lower() + name[1:]) in values:
                filled[name] = grammar.capitalize_first(values[name[:1].lower() + name[1:]])
            else:
                raise KeyError(f"template {self.id} needs slot {name!r}")
        text = " ".join(self.text.format(**filled).split())
        return grammar.capitalize_sentences(text)


_REGISTRY: dict[str, tuple[Template, ...]] = {}


def register(group: str, texts: list[str] | tuple[str, ...], replace: bool = False) -> None:
    """Adds phrasings to a group; ids continue the group's numbering.

    Args:
      group: e.g. "left_right/yes_no".
      texts: format strings.
      replace: drop the group's existing templates first.
    """
    existing = () if replace else _REGISTRY.get(group, ())
    start = len(existing)
    new = tuple(Template(f"{group}/{start + k}", text) for k, text in enumerate(texts))
    _REGISTRY[group] = existing + new


def templates(group: str) -> tuple[Template, ...]:
    """The phrasings of a group (KeyError for an unknown group)."""
    if group not in _REGISTRY:
        raise KeyError(f"no templates registered for {group!r}; known: {sorted(_REGISTRY)}")
    return _REGISTRY[group]


def get(template_id: str) -> Template:
    """A template by id ("left_right/yes_no/3")."""
    group, _, k = template_id.rpartition("/")
    return templates(group)[int(k)]


def groups() -> tuple[str, ...]:
    """All registered group keys, sorted."""
    return tuple(sorted(_REGISTRY))


def relation_name(family: str, direction: int) -> str:
    """ "left_of" for ("left_right", 0)."""
    return RELATIONS[family][direction]


# --------------------------------------------------------------------------------------------
# Pair questions, yes/no. `pred` comes from PREDICATES[family].

_POSITION_YES_NO = [
    "{is_a} {a} {pred} {b}?",
    "From the camera's point of view, {is_a} {a} {pred} {b}?",
    "In this image, {is_a} {a} {pred} {b}?",
    "From the viewer's perspective, {is_a} {a} {pred} {b}?",
    "Looking at the picture, would you say {a} {is_a} {pred} {b}?",
    "Is it true that {a} {is_a} {pred} {b} from where the camera stands?",
    "As seen in this photo, {is_a} {a} positioned {pred} {b}?",
    "Seen from the camera, {is_a} {a} {pred} {b}?",
    "Based on the image, {is_a} {a} located {pred} {b}?",
]
register(
    "left_right/yes_no",
    _POSITION_YES_NO + ["Facing the scene as the camera does, {is_a} {a} {pred} {b}?"],
)
register("above_below/yes_no", _POSITION_YES_NO + ["Vertically speaking, {is_a} {a} {pred} {b}?"])
register(
    "front_behind/yes_no",
    _POSITION_YES_NO + ["In terms of depth from the camera, {is_a} {a} {pred} {b}?"],
)

# Sizes are real sizes: the qualifiers say so, since a near object looks bigger.
_SIZE_YES_NO = [
    "{is_a} {a} {pred} {b}?",
    "In real life, {is_a} {a} {pred} {b}?",
    "Comparing their actual sizes, {is_a} {a} {pred} {b}?",
    "Ignoring how far each one is from the camera, {is_a} {a} {pred} {b}?",
    "Would you say {a} {is_a} {pred} {b} in actual size?",
    "Is it true that {a} {is_a} {pred} {b}?",
    "Judging by their true dimensions, {is_a} {a} {pred} {b}?",
    "In this scene, {is_a} {a} physically {pred} {b}?",
    "Based on the image, {is_a} {a} {pred} {b} in reality?",
]
register("bigger_smaller/yes_no", _SIZE_YES_NO)
register("taller_shorter/yes_no", _SIZE_YES_NO)
# Width is the real extent across the line of sight: it depends on the viewpoint but not on
# the distance.
register(
    "wider_thinner/yes_no",
    [
        "{is_a} {a} {pred} {b}?",
        "Measured from side to side as seen from the camera, {is_a} {a} {pred} {b}?",
        "In real life, {is_a} {a} {pred} {b} from the camera's point of view?",
        "Ignoring how far each one is from the camera, {is_a} {a} {pred} {b} from side to side?",
        "Comparing actual widths across the view, {is_a} {a} {pred} {b}?",
        "Seen from where the camera stands, {is_a} {a} really {pred} {b}?",
        "Is it true that {a} {is_a} {pred} {b}, measuring across the camera's view?",
        "In terms of real horizontal extent in this view, {is_a} {a} {pred} {b}?",
        "From this viewpoint, {is_a} {a} actually {pred} {b} from side to side?",
    ],
)

# --------------------------------------------------------------------------------------------
# Pair questions, multiple choice. `cmp` from COMPARATIVES[family]; `a`, `b` are the choices
# in letter order. The phrasing stage appends " (A) <a> (B) <b>".

_POSITION_MC = [
    "Which is {cmp}, {a} or {b}?",
    "Which one is {cmp} in this image, {a} or {b}?",
    "From the viewer's perspective, which object is {cmp}: {a} or {b}?",
    "Between {a} and {b}, which is {cmp} from the camera's point of view?",
    "Looking at the image, which of these is {cmp}: {a} or {b}?",
    "Which object appears {cmp} in the picture, {a} or {b}?",
    "Of {a} and {b}, which one is {cmp} as seen from the camera?",
    "Consider {a} and {b}. Which is {cmp} from the viewer's point of view?",
    "In this photo, which is {cmp}: {a} or {b}?",
]
register("left_right/multiple_choice", _POSITION_MC)
register("above_below/multiple_choice", _POSITION_MC)
# The comparatives of front/behind already name the camera or viewer; no second qualifier.
register(
    "front_behind/multiple_choice",
    [
        "Which is {cmp}, {a} or {b}?",
        "Which one is {cmp} in this image, {a} or {b}?",
        "Between {a} and {b}, which is {cmp}?",
        "Looking at the image, which of these is {cmp}: {a} or {b}?",
        "Which object appears {cmp} in the picture, {a} or {b}?",
        "Of {a} and {b}, which one is {cmp}?",
        "Consider {a} and {b}. Which one is {cmp}?",
        "In this photo, which is {cmp}: {a} or {b}?",
        "Judging by depth, which is {cmp}, {a} or {b}?",
    ],
)
_SIZE_MC = [
    "Which is {cmp}, {a} or {b}?",
    "Which is {cmp} in real life, {a} or {b}?",
    "Comparing their actual sizes, which is {cmp}: {a} or {b}?",
    "Ignoring how far each one is from the camera, which is {cmp}, {a} or {b}?",
    "Between {a} and {b}, which one is {cmp} in reality?",
    "Of {a} and {b}, which is physically {cmp}?",
    "Judging by their true dimensions, which object is {cmp}: {a} or {b}?",
    "In this scene, which one is {cmp}, {a} or {b}?",
    "Which object is actually {cmp}, {a} or {b}?",
]
register("bigger_smaller/multiple_choice", _SIZE_MC)
register("taller_shorter/multiple_choice", _SIZE_MC)
register(
    "wider_thinner/multiple_choice",
    [
        "Which is {cmp}, {a} or {b}?",
        "Measured from side to side as seen from the camera, which is {cmp}: {a} or {b}?",
        "Ignoring how far each one is from the camera, which is {cmp} from side to side, "
        "{a} or {b}?",
        "Comparing actual widths across the view, which is {cmp}, {a} or {b}?",
        "Between {a} and {b}, which one is really {cmp} from this viewpoint?",
        "In real life, which is {cmp} as seen from the camera: {a} or {b}?",
        "Of {a} and {b}, which is physically {cmp} across the camera's view?",
        "In terms of real horizontal extent in this view, which is {cmp}: {a} or {b}?",
        "Which object is actually {cmp} from the viewer's perspective, {a} or {b}?",
    ],
)

# --------------------------------------------------------------------------------------------
# Existence: "is there a <category> <relation> the <object>". Position families by default;
# the size group serves a relation pass that also decides size existence.

register(
    "existence/position",
    [
        "{is_there} {a_cat} {pred} {ref}?",
        "In this image, {is_there} {a_cat} {pred} {ref}?",
        "Are there any {cats} {pred} {ref}?",
        "Can you see {a_cat} {pred} {ref}?",
        "From the camera's point of view, {is_there} {a_cat} {pred} {ref}?",
        "Looking at the picture, {is_there} {a_cat} {pred} {ref}?",
        "Do you see {a_cat} {pred} {ref} in this image?",
        "From the viewer's perspective, {is_there} {a_cat} {pred} {ref}?",
        "Does the image show {a_cat} {pred} {ref}?",
        "Seen from the camera, {is_there} {a_cat} {pred} {ref}?",
    ],
)
register(
    "existence/size",
    [
        "{is_there} {a_cat} {pred} {ref}?",
        "In this image, {is_there} {a_cat} {pred} {ref}?",
        "Are there any {cats} {pred} {ref}?",
        "Can you see {a_cat} {pred} {ref}?",
        "In real life, {is_there} {a_cat} {pred} {ref} in this scene?",
        "Ignoring distance from the camera, {is_there} {a_cat} {pred} {ref}?",
        "Judging by real size, {is_there} {a_cat} {pred} {ref}?",
        "Comparing real sizes, {is_there} {a_cat} {pred} {ref}?",
    ],
)

# --------------------------------------------------------------------------------------------
# Counting.

register(
    "counting",
    [
        "How many {cats} are there in this image?",
        "How many {cats} can you see?",
        "Count the {cats} in the picture.",
        "What is the number of {cats} in this image?",
        "How many {cats} are visible?",
        "Can you count how many {cats} appear in this image?",
        "In this scene, how many {cats} are there?",
        "Tell me how many {cats} you can see.",
        "How many {cats} does this image show?",
    ],
)

# --------------------------------------------------------------------------------------------
# Answers. A "no" answer states the relation that holds, so the answer teaches the fact.

register("answer/yes", ["Yes, {a} {is_a} {pred} {b}.", "Yes. {A} {is_a} {pred} {b}."])
register(
    "answer/no", ["No, {a} {is_a} {true_pred} {b}.", "No. {A} {is_a} actually {true_pred} {b}."]
)
register(
    "answer/multiple_choice",
    [
        "({letter}) {Winner} {is_w} {cmp} than {loser}.",
        "The answer is ({letter}): {winner} {is_w} {cmp} than {loser}.",
    ],
)
register(
    "answer/existence/yes",
    ["Yes, {there_is} {a_cat_decl} {pred} {ref}.", "Yes. {There_is} {a_cat_decl} {pred} {ref}."],
)
register(
    "answer/existence/no_one",
    ["No, {the_only} {is_only} {true_pred} {ref}.", "No. {The_only} {is_only} {true_pred} {ref}."],
)
register(
    "answer/existence/no_all",
    ["No, {all_cats} are {true_pred} {ref}.", "No. {All_cats} are {true_pred} {ref}."],
)
register(
    "answer/counting",
    ["There {be_n} {count}.", "I can see {count}.", "{Count}."],
)


def pair_group(family: str, kind: str) -> str:
    """ "left_right/yes_no" for a pair question of `family` and `kind`."""
    return f"{family}/{kind}"


def existence_group(family: str) -> str:
    """ "existence/position" or "existence/size"."""
    return "existence/position" if family in POSITION_FAMILIES else "existence/size"


assert set(PREDICATES) == set(FAMILIES) == set(COMPARATIVES)
assert set(POSITION_FAMILIES) | set(SIZE_FAMILIES) == set(FAMILIES)

__all__ = [
    "COMPARATIVES",
    "PREDICATES",
    "Template",
    "existence_group",
    "get",
    "groups",
    "pair_group",
    "register",
    "relation_name",
    "templates",
]
