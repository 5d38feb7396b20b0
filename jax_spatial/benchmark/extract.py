"""A model's free-text answer -> the canonical form of the benchmark item it answers.

    extract_answer("Yes, the chair is further left.", item)      -> Extraction("yes", "ok")
    extract_answer("The answer is (b)", item)                   -> Extraction("B", "ok")
    extract_answer("A and B", item)                             -> Extraction(None, "ambiguous")
    extract_answer("about 1.5 m", item_gold_in_cm)              -> Extraction("150", "ok", 150.0)

`item` is a bench record (`answer_type`, `choices`, `question`, `meta.unit`). The status says
why nothing came out: "none" (no answer of the asked kind in the text: "I don't know", empty)
or "ambiguous" (two answers: "Yes and no", "A and B", "AB"). Either scores as wrong.

Rules, per answer type:

* yes_no: the leading yes/no word ("Yes.", "no, the chair is ..."; also after "Answer:" or
  "The answer is"); a first clause holding both words ("Yes and no", "yes or no") is
  ambiguous; otherwise the one yes/no word found anywhere ("I think the answer is no"), and
  both words anywhere with no leading one is ambiguous. "yeah"/"yep" read as yes, "nope" as no;
  "No idea" / "no clue" is no answer.
* multiple_choice: a list of letters ("A and B", "A, C", "AB", "(A) or (B)", "both A and B")
  is ambiguous; else "answer is B" / "Answer: B" / "option B"; else a leading "(A)", "A.",
  "A)", "A:" or a bare "A" (any case inside brackets or alone: "(b)", "b"); else the one
  bracketed letter in the text; else the option's own text, exact or contained (with word
  boundaries, when exactly one option's text is contained, or when the longest contained one
  contains all the others: "the red chair" over "the chair"). A bare capital "A" followed by a
  word ("A chair is ...") is the article, not a letter.
* count / number: the last number in the text (the InternSpatial counting rule: "There are 3
  chairs" -> 3, "2 or 3" -> 3, "2-3" -> 3), number words up to twenty ("three" -> 3; "one"
  after "the", "which", "this", "that", "each", "every", "any" is a pronoun and skipped),
  "none" -> 0 when no number is written. Thousands separators ("1,200") are read. A unit
  right after that number ("1.5 m", "150cm", "12 square meters", "90°") is converted to the
  item's unit (`meta.unit`, else a unit the question names: "in meters", "in cm"), within one
  dimension (length, area, angle); a number without a unit is taken in the item's unit.
"""

from __future__ import annotations

import dataclasses
import math
import re

YES_NO = "yes_no"
MULTIPLE_CHOICE = "multiple_choice"
COUNT = "count"
NUMBER = "number"
ANSWER_TYPES = (YES_NO, MULTIPLE_CHOICE, COUNT, NUMBER)

LETTERS = "ABCDEFGH"


@dataclasses.dataclass(frozen=True)
class Extraction:
    """`value`: canonical string ("yes", "B", "150") or None; `status`: ok | none | ambiguous;
    `number`: the value as a float for count/number items (in the item's unit)."""

    value: str | None
    status: str
    number: float | None = None


NONE = Extraction(None, "none")
AMBIGUOUS = Extraction(None, "ambiguous")

# Markdown emphasis, quotes and code ticks models wrap answers in.
_DECORATION = re.compile(r"[*_`\"“”‘’]+")


def _clean(text: str) -> str:
    return " ".join(_DECORATION.sub(" ", text).split())


# ---------------------------------------------------------------------------------- yes / no

_YES_WORDS = {"yes": "yes", "yeah": "yes", "yep": "yes", "no": "no", "nope": "no"}
_YN_WORD = re.compile(r"\b(yes|yeah|yep|nope|no)\b", re.IGNORECASE)
_ANSWER_PREFIX = re.compile(
    r"^(?:(?:the\s+)?(?:final\s+|correct\s+|short\s+)?answer\s*(?:is|:|-)?\s*:?\s*)", re.I
)
_CLAUSE_END = re.compile(r"[,.;:!?\n(]")


# "No idea" opens with "no" but answers nothing.
_NO_IDEA = re.compile(r"^(?:i\s+have\s+)?no\s+(?:idea|clue)\b", re.I)


def extract_yes_no(text: str) -> Extraction:
    clean = _clean(text)
    if not clean or _NO_IDEA.match(clean):
        return NONE
    body = _ANSWER_PREFIX.sub("", clean, count=1).lstrip(" ([{'")
    clause = _CLAUSE_END.split(body, maxsplit=1)[0]
    clause_words = {_YES_WORDS[w.lower()] for w in _YN_WORD.findall(clause)}
    if len(clause_words) > 1:
        return AMBIGUOUS
    leading = _YN_WORD.match(body)
    if leading:
        return Extraction(_YES_WORDS[leading.group(1).lower()], "ok")
    stated = re.search(r"\banswer\s*(?:is|:)\s*:?\s*\(?\s*(yes|no)\b", clean, re.I)
    if stated:
        return Extraction(stated.group(1).lower(), "ok")
    found = {_YES_WORDS[w.lower()] for w in _YN_WORD.findall(clean)}
    if len(found) == 1:
        return Extraction(found.pop(), "ok")
    return AMBIGUOUS if found else NONE


# --------------------------------------------------------------------------- multiple choice

_L = r"[A-H]"
_LETTER_TOKEN = rf"(?:\(\s*{_L}\s*\)|{_L}(?![A-Za-z]))"
_JOIN = r"\s*(?:,|/|&|\+|\band\b|\bor\b|;)\s*"
_MULTI_AT_START = re.compile(rf"^\(?{_LETTER_TOKEN}(?:{_JOIN}{_LETTER_TOKEN})+", re.I)
_RUN_OF_LETTERS = re.compile(rf"^{_L}{{2,8}}[.!]?$")
_BOTH = re.compile(rf"\b(?:both|either)\s+{_LETTER_TOKEN}{_JOIN}{_LETTER_TOKEN}", re.I)
_STATED = re.compile(
    rf"\b(?:answer|option|choice)\s*(?:is|would\s+be|:|-)?\s*:?\s*"
    rf"(\(\s*(?P<par>{_L})\s*\)|(?P<bare>{_L})(?![A-Za-z]))"
    rf"(?P<more>{_JOIN}{_LETTER_TOKEN})?",
    re.I,
)
_LEADING = re.compile(
    rf"^(?:\(\s*(?P<par>{_L})\s*\)|(?P<sep>{_L})\s*[.):](?!\d)|(?P<bare>{_L})$)", re.I
)
_BRACKETED = re.compile(rf"\(\s*({_L})\s*\)", re.I)
_NON_WORD = re.compile(r"[^0-9a-z]+")
_ARTICLE = re.compile(r"^(?:the|a|an)\s+")


def _norm_text(text: str) -> str:
    text = re.sub(r"</?ref>", " ", text.lower())
    return " ".join(_NON_WORD.sub(" ", text).split())


def _choice_from_text(clean: str, choices: list[str]) -> str | None:
    said = _norm_text(clean)
    cores = [_ARTICLE.sub("", _norm_text(c)) for c in choices]
    said_core = _ARTICLE.sub("", said)
    exact = [i for i, core in enumerate(cores) if core and core == said_core]
    if len(exact) == 1:
        return LETTERS[exact[0]]
    padded = f" {said} "
    contained = [i for i, core in enumerate(cores) if core and f" {core} " in padded]
    if len(contained) == 1:
        return LETTERS[contained[0]]
    if contained:
        longest = max(contained, key=lambda i: len(cores[i]))
        others = [cores[i] for i in contained if cores[i] != cores[longest]]
        if others and all(f" {o} " in f" {cores[longest]} " for o in others):
            return LETTERS[longest]
    return None


def extract_choice(text: str, choices: list[str] | tuple[str, ...] = ()) -> Extraction:
    clean = _clean(text)
    if not clean:
        return NONE
    body = clean.rstrip(" .!")
    if _MULTI_AT_START.match(body) or _RUN_OF_LETTERS.match(body) or _BOTH.search(clean):
        return AMBIGUOUS
    stated = _STATED.search(clean)
    if stated:
        if stated.group("more"):
            return AMBIGUOUS
        # A bare lowercase letter after "answer is" is a word ("the answer is a chair").
        bare = stated.group("bare")
        if stated.group("par") or (bare and bare.isupper()):
            return Extraction((stated.group("par") or bare).upper(), "ok")
    lead = _LEADING.match(clean)
    if lead:
        letter = lead.group("par") or lead.group("sep") or lead.group("bare")
        # "a." or "b)" in lowercase opens a list item as well as an answer; accept only
        # a capital outside brackets unless the letter is all there is.
        if lead.group("par") or letter.isupper() or len(body) == 1:
            return Extraction(letter.upper(), "ok")
    bracketed = {m.upper() for m in _BRACKETED.findall(clean)}
    if len(bracketed) == 1:
        return Extraction(bracketed.pop(), "ok")
    if len(bracketed) > 1:
        return AMBIGUOUS
    if choices:
        letter = _choice_from_text(clean, list(choices))
        if letter is not None:
            return Extraction(letter, "ok")
    return NONE


# ------------------------------------------------------------------------------------ numbers

_NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        (
            "zero one two three four five six seven eight nine ten eleven twelve thirteen "
            "fourteen fifteen sixteen seventeen eighteen nineteen twenty"
        ).split()
    )
}
# "the one on the left", "which one": a pronoun, not the number.
_PRONOUN_BEFORE_ONE = {"the", "which", "this", "that", "each", "every", "any", "no", "another"}

# Unit spellings -> (dimension, factor to the dimension's base unit: m, m2, deg).
_UNITS: list[tuple[str, str, float]] = [
    (r"square\s+millimet(?:er|re)s?|mm\s*\^?\s*2|mm²", "area", 1e-6),
    (r"square\s+centimet(?:er|re)s?|cm\s*\^?\s*2|cm²", "area", 1e-4),
    (r"square\s+met(?:er|re)s?|sq\.?\s*met(?:er|re)s?|sq\.?\s*m|m\s*\^\s*2|m2|m²|sqm", "area", 1.0),
    (r"square\s+(?:feet|foot)|sq\.?\s*f(?:ee|oo)?t|ft\s*\^?\s*2|ft²", "area", 0.09290304),
    (r"millimet(?:er|re)s?|mm", "length", 1e-3),
    (r"centimet(?:er|re)s?|cm", "length", 1e-2),
    (r"kilomet(?:er|re)s?|km", "length", 1e3),
    (r"met(?:er|re)s?|m", "length", 1.0),
    (r"inch(?:es)?", "length", 0.0254),
    (r"feet|foot|ft", "length", 0.3048),
    (r"yards?|yd", "length", 0.9144),
    (r"degrees?|deg|°", "angle", 1.0),
    (r"radians?|rad", "angle", 180.0 / math.pi),
]
_UNIT_RES = [(re.compile(rf"(?:{p})(?![a-z0-9])", re.I), dim, f) for p, dim, f in _UNITS]
_NUMBER = re.compile(
    r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?(?!\d|(?:st|nd|rd|th)\b)"
    r"|(?<![\w.])\.\d+(?!\d)"
)
_WORD_NUMBER = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b", re.I)


def parse_unit(text: str | None) -> tuple[str, float] | None:
    """A whole unit string ("cm", "m2", "square meters", "deg") -> (dimension, factor)."""
    if not text:
        return None
    text = text.strip()
    for regex, dim, factor in _UNIT_RES:
        if regex.fullmatch(text):
            return dim, factor
    return None


def _unit_after(text: str) -> tuple[str, float] | None:
    stripped = text.lstrip()
    for regex, dim, factor in _UNIT_RES:
        if regex.match(stripped):
            return dim, factor
    return None


def _unit_named_in(question: str) -> tuple[str, float] | None:
    """A unit the question asks for: "(in meters)", "in cm", "in square meters"."""
    for match in re.finditer(r"\bin\s+([a-z²^0-9. ]{1,24})", question, re.I):
        unit = _unit_after(match.group(1))
        if unit is not None:
            return unit
    return None


def item_unit(item: dict) -> tuple[str, float] | None:
    meta = item.get("meta") or {}
    return parse_unit(meta.get("unit") if isinstance(meta, dict) else None) or _unit_named_in(
        str(item.get("question") or "")
    )


def _numbers_in(text: str) -> list[tuple[int, float, int]]:
    """(start, value, end) of every number written in digits or as a small number word."""
    found = [
        (m.start(), float(m.group().replace(",", "")), m.end()) for m in _NUMBER.finditer(text)
    ]
    for m in _WORD_NUMBER.finditer(text):
        word = m.group(1).lower()
        if word == "one":
            before = text[: m.start()].lower().split()
            if before and before[-1] in _PRONOUN_BEFORE_ONE:
                continue
        found.append((m.start(), float(_NUMBER_WORDS[word]), m.end()))
    return sorted(found)


def format_number(value: float) -> str:
    """Canonical decimal string: integers without a point, others with up to 6 decimals."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6f}".rstrip("0").rstrip(".")


def extract_number(text: str, unit: tuple[str, float] | None = None) -> Extraction:
    clean = _clean(text)
    if not clean:
        return NONE
    numbers = _numbers_in(clean)
    if not numbers:
        if re.search(r"\bnone\b", clean, re.I):
            return Extraction("0", "ok", 0.0)
        return NONE
    _, value, end = numbers[-1]
    said = _unit_after(clean[end:])
    if unit is not None and said is not None and said[0] == unit[0]:
        value = value * said[1] / unit[1]
        # Unit factors are not exact in binary; 1.5 m -> 150.00000000000003 cm otherwise.
        value = round(value, 9)
    return Extraction(format_number(value), "ok", value)


def extract_answer(text: str | None, item: dict) -> Extraction:
    """The canonical answer `text` gives to bench `item` (see the module docstring)."""
    if text is None:
        return NONE
    kind = item.get("answer_type")
    if kind == YES_NO:
        return extract_yes_no(text)
    if kind == MULTIPLE_CHOICE:
        return extract_choice(text, item.get("choices") or ())
    if kind in (COUNT, NUMBER):
        return extract_number(text, item_unit(item) if kind == NUMBER else None)
    raise ValueError(f"unknown answer_type {kind!r}")


__all__ = [
    "ANSWER_TYPES",
    "Extraction",
    "extract_answer",
    "extract_choice",
    "extract_number",
    "extract_yes_no",
    "format_number",
    "item_unit",
    "parse_unit",
]
