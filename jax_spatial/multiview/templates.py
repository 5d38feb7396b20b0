"""Question and answer templates of the multi-view (clip) tasks, and their lexicon.

The templates live in the same string-keyed registry as the single-view ones
(`qa.templates.register`), under groups `"multi_view/<task>[/<relation>]"` (questions) and
`"multi_view/answer/<task>[/<relation>]"` (answers); a template's id is `"<group>/<k>"` and
is recorded on every `ClipQA`. Rendering (`Template.render`) collapses whitespace and
capitalises each sentence, and `{A}` is slot `a` with a capital first letter.

The question forms are VSI-Bench's (Yang et al., "Thinking in Space", 2024), each said
several ways; every question stem ends with "?" and multiple-choice options are appended by
`multiview.tasks` as `" (A) <choice> (B) <choice> ..."`, the single-view convention.
Lengths are in meters and centimeters, VSI-Bench's units and spelling.

Slots:

| slot        | example                                   | used by                         |
|-------------|-------------------------------------------|---------------------------------|
| `a`, `b`    | "the red chair", "the table"              | distance, size, rotation        |
| `cats`      | "chairs"                                  | counting (plural category)      |
| `count`     | "three chairs"                            | counting answers                |
| `be_n`      | "is" / "are"                              | counting answers                |
| `value`     | "2.3", "85", "31.2", "135"                | numeric answers, as printed     |
| `t`         | "the lamp"                                | relative distance: the target   |
| `winner`    | "the box"                                 | relative distance answers       |
| `s`, `f`, `q` | "the sofa", "the tv", "the lamp"        | direction: stand, face, query   |
| `where`     | "to my left", "behind me"                 | direction answers               |
| `listed`    | "box, chair, lamp and table"              | appearance order (alphabetical) |
| `order`     | "first a chair, then a table, ..."        | appearance order answers        |
| `steps`     | "1. Go forward until the table. 2. [please fill in] ..." | route        |
| `c`         | "the shelf"                               | route: the goal                 |
| `turns`     | "turn left, then turn back"               | route answers                   |
| `direction` | "anticlockwise", "counterclockwise", "clockwise" | rotation                 |
| `letter`    | "B"                                       | multiple-choice answers         |
"""

from __future__ import annotations

from jax_spatial.qa import grammar
from jax_spatial.qa import templates as T

PREFIX = "multi_view"

# Relative direction: the option word of each class (`relations.*_CLASSES` order) and how
# an answer says it, first person as the questions are.
DIRECTION_OPTIONS = {
    "easy": ("left", "right"),
    "medium": ("left", "right", "back"),
    "hard": ("front-left", "front-right", "back-left", "back-right"),
}
DIRECTION_WHERE = {
    "left": "to my left",
    "right": "to my right",
    "back": "behind me",
    "front-left": "to my front-left",
    "front-right": "to my front-right",
    "back-left": "to my back-left",
    "back-right": "to my back-right",
}
# Route turns (`route.TURNS` keys) as an option and an instruction say them.
TURN_WORDS = {"turn_left": "turn left", "turn_right": "turn right", "turn_back": "turn back"}
BLANK = "[please fill in]"
# Rotation: the words for a positive (anticlockwise seen from above) turn and its opposite.
ANTICLOCKWISE_WORDS = ("anticlockwise", "counterclockwise")
CLOCKWISE_WORD = "clockwise"


def question_group(task: str, relation: str | None = None) -> str:
    """ "multi_view/rel_direction/easy" for a task (and relation, where phrasings differ)."""
    return f"{PREFIX}/{task}" + (f"/{relation}" if relation else "")


def answer_group(task: str, relation: str | None = None) -> str:
    """ "multi_view/answer/route" (answers)."""
    return f"{PREFIX}/answer/{task}" + (f"/{relation}" if relation else "")


def options_text(choices) -> str:
    """`["left", "right"]` -> `"(A) left (B) right"`."""
    return " ".join(f"({chr(65 + k)}) {c}" for k, c in enumerate(choices))


def listing(words) -> str:
    """`["box", "chair", "lamp"]` -> `"box, chair and lamp"`."""
    words = list(words)
    if len(words) <= 2:
        return " and ".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def order_text(categories) -> str:
    """First appearances in order, in words: "first a chair, then a table and last a box"."""
    items = [grammar.with_indefinite(grammar.display_noun(c)) for c in categories]
    if len(items) == 1:
        return f"only {items[0]}"
    middle = "".join(f", then {x}" for x in items[1:-1])
    return f"first {items[0]}{middle} and last {items[-1]}"


def turns_text(turns) -> str:
    """`["turn_left", "turn_back"]` -> `"turn left, then turn back"` (an answer's words)."""
    words = [TURN_WORDS[t] for t in turns]
    return ", then ".join(words)


def turns_option(turns) -> str:
    """`["turn_left", "turn_back"]` -> `"Turn left, turn back"` (an option's words)."""
    return grammar.capitalize_first(", ".join(TURN_WORDS[t] for t in turns))


# --------------------------------------------------------------------------------------------
# Counting over the clip: every object once, however many frames show it.

T.register(
    question_group("mv_counting"),
    [
        "How many {cats} are in this room?",
        "How many {cats} are there in this room?",
        "Counting each one once, however many frames show it, how many {cats} are in the room?",
        "The frames show one room. How many {cats} does it contain?",
        "What is the total number of {cats} in this room?",
        "How many {cats} can be found in this room?",
    ],
)
T.register(
    answer_group("mv_counting"),
    ["There {be_n} {count} in this room.", "{Count}.", "The room has {count}."],
)

# --------------------------------------------------------------------------------------------
# Absolute distance: closest points of the two boxes.

T.register(
    question_group("abs_distance"),
    [
        "Measuring from the closest point of each object, what is the distance between {a} "
        "and {b} in meters?",
        "What is the direct distance, in meters, between the closest points of {a} and {b}?",
        "How many meters apart are {a} and {b}, measured between their closest points?",
        "What is the shortest distance between {a} and {b}, in meters?",
        "Measured from the nearest point of one to the nearest point of the other, how far is "
        "{a} from {b} in meters?",
    ],
)
T.register(
    answer_group("abs_distance"),
    [
        "{A} and {b} are {value} meters apart.",
        "About {value} meters.",
        "The closest points of {a} and {b} are {value} meters apart.",
    ],
)

# --------------------------------------------------------------------------------------------
# Object size: the longest side of the box.

T.register(
    question_group("object_size"),
    [
        "What is the length of the longest dimension (length, width, or height) of {a}, in "
        "centimeters?",
        "How long is the longest side of {a}, in centimeters?",
        "In centimeters, what is the largest of the length, width and height of {a}?",
        "Measured along its longest dimension, how big is {a} in centimeters?",
        "What is the size of {a} along its longest side, in centimeters?",
    ],
)
T.register(
    answer_group("object_size"),
    [
        "About {value} centimeters.",
        "The longest side of {a} is {value} centimeters.",
        "{A} measures {value} centimeters along its longest side.",
    ],
)

# --------------------------------------------------------------------------------------------
# Room size: the floor area.

T.register(
    question_group("room_size"),
    [
        "What is the size of this room in square meters?",
        "How large is this room, in square meters?",
        "What is the floor area of this room, in square meters?",
        "About how many square meters does the floor of this room cover?",
        "If the frames show a single room, what is its floor area in square meters?",
    ],
)
T.register(
    answer_group("room_size"),
    [
        "About {value} square meters.",
        "The room's floor area is {value} square meters.",
        "This room covers about {value} square meters.",
    ],
)

# --------------------------------------------------------------------------------------------
# Relative distance: which candidate is closest to the target (closest points).

T.register(
    question_group("rel_distance"),
    [
        "Measuring from the closest point of each object, which of these objects is the "
        "closest to {t}?",
        "Which of the following objects is nearest to {t}, measuring between the closest "
        "points of the objects?",
        "Of these objects, which one is the closest to {t}?",
        "Which of these is the shortest distance from {t}, measured between closest points?",
        "Which object below is nearest to {t}?",
    ],
)
T.register(
    answer_group("rel_distance"),
    ["({letter}) {Winner} is the closest to {t}.", "The answer is ({letter}): {winner}."],
)

# --------------------------------------------------------------------------------------------
# Relative direction: standing by s, facing f, where is q. First person, as VSI-Bench.

T.register(
    question_group("rel_direction", "easy"),
    [
        "If I am standing by {s} and facing {f}, is {q} to my left or right?",
        "Standing next to {s} and looking towards {f}, would I have {q} on my left or on my right?",
        "Suppose I stand beside {s} and face {f}. Is {q} on my left or my right?",
        "Imagine I am at {s}, facing {f}. Is {q} to my left or to my right?",
    ],
)
T.register(
    question_group("rel_direction", "medium"),
    [
        "If I am standing by {s} and facing {f}, is {q} to my left, right, or back, where back "
        "means I would have to turn at least 135 degrees to face it?",
        "An object is behind me if I would have to turn at least 135 degrees to face it. If I "
        "am standing by {s} and facing {f}, is {q} to my left, to my right or behind me?",
        "Suppose I stand beside {s} and face {f}. Counting anything I would have to turn 135 "
        "degrees or more to face as behind me, is {q} to my left, to my right or behind me?",
    ],
)
T.register(
    question_group("rel_direction", "hard"),
    [
        "If I am standing by {s} and facing {f}, is {q} to my front-left, front-right, "
        "back-left, or back-right?",
        "The directions are the quadrants around me, with me facing forward. Standing by {s} "
        "and facing {f}, is {q} to my front-left, front-right, back-left or back-right?",
        "Suppose I stand beside {s} and face {f}. In which quadrant around me is {q}: "
        "front-left, front-right, back-left or back-right?",
    ],
)
for _level in DIRECTION_OPTIONS:
    T.register(
        answer_group("rel_direction", _level),
        ["({letter}) {Q} is {where}.", "The answer is ({letter}): {q} is {where}."],
    )

# --------------------------------------------------------------------------------------------
# Appearance order: the first appearance of each category, in order.

T.register(
    question_group("appearance_order"),
    [
        "What is the order in which the following categories first appear in the video: {listed}?",
        "In which order do these categories first appear in the frames: {listed}?",
        "Sorted by when each is first seen in the video, what is the order of {listed}?",
        "Which of these orders lists {listed} by their first appearance in the video?",
    ],
)
T.register(
    answer_group("appearance_order"),
    ["({letter}) {Order}.", "The answer is ({letter}): {order}."],
)

# --------------------------------------------------------------------------------------------
# Route: the planner's instructions with the turns blanked.

T.register(
    question_group("route"),
    [
        "You are a robot beginning at {a}, facing {b}. You want to navigate to {c}. You will "
        "perform the following actions, where each [please fill in] is turn left, turn right "
        "or turn back: {steps} You have reached the final destination. Which turns fill in "
        "the blanks, in order?",
        "Starting beside {a} and facing {b}, you walk to {c} by these steps: {steps} You are "
        "then at {c}. Each [please fill in] is turn left, turn right or turn back; which "
        "sequence of turns is right?",
        "A robot starts at {a}, facing {b}, and has to reach {c}. It follows these "
        "instructions: {steps} It has then arrived. If each [please fill in] is a left, right "
        "or back turn, which turns are they, in order?",
    ],
)
T.register(
    answer_group("route"),
    ["({letter}) {Turns}.", "The answer is ({letter}): {turns}."],
)

# --------------------------------------------------------------------------------------------
# Rotation: an object turned in front of a still camera, or a camera moved around an object.

T.register(
    question_group("rotation", "degrees"),
    [
        "How many degrees did {a} turn ({direction}, seen from above) between the two views?",
        "Seen from above, how many degrees {direction} did {a} rotate from the first frame to "
        "the second?",
        "Between the first and the second image, {a} was turned about its vertical axis. By how "
        "many degrees {direction}, seen from above?",
        "From the first view to the second, how far did {a} turn {direction} when seen from "
        "above, in degrees?",
    ],
)
T.register(
    question_group("rotation", "bins"),
    [
        "About how far did {a} turn {direction}, seen from above, between the two views?",
        "Seen from above, roughly how many degrees {direction} did {a} rotate from the first "
        "frame to the second?",
        "Between the two images, {a} was turned about its vertical axis. About how far "
        "{direction}, seen from above?",
    ],
)
T.register(
    question_group("rotation", "camera_degrees"),
    [
        "The camera moved around {a} between the two views, always looking at it. How many "
        "degrees did the camera turn ({direction}, seen from above)?",
        "Seen from above, how many degrees {direction} did the camera travel around {a} from "
        "the first frame to the second?",
        "Between the two images the camera circled {a}. By how many degrees {direction}, "
        "seen from above?",
    ],
)
T.register(
    question_group("rotation", "camera_bins"),
    [
        "The camera moved around {a} between the two views, always looking at it. About how "
        "far did it turn {direction}, seen from above?",
        "Seen from above, roughly how many degrees {direction} did the camera travel around {a} "
        "from the first frame to the second?",
        "Between the two images the camera circled {a}. About how far did it go {direction}, "
        "seen from above?",
    ],
)
T.register(
    answer_group("rotation", "degrees"),
    ["{A} turned {value} degrees {direction}.", "About {value} degrees {direction}."],
)
T.register(
    answer_group("rotation", "camera_degrees"),
    [
        "The camera turned {value} degrees {direction} around {a}.",
        "About {value} degrees {direction}.",
    ],
)
for _relation in ("bins", "camera_bins"):
    T.register(
        answer_group("rotation", _relation),
        [
            "({letter}) About {value} degrees {direction}.",
            "The answer is ({letter}): about {value} degrees.",
        ],
    )

__all__ = [
    "ANTICLOCKWISE_WORDS",
    "BLANK",
    "CLOCKWISE_WORD",
    "DIRECTION_OPTIONS",
    "DIRECTION_WHERE",
    "PREFIX",
    "TURN_WORDS",
    "answer_group",
    "listing",
    "options_text",
    "order_text",
    "question_group",
    "turns_option",
    "turns_text",
]
