"""Answer extraction: free-text model answers -> the canonical answer they give.

Each row is a phrasing a model may produce and the answer a person reads in it (None: no
answer, or two answers, both of which score as wrong). The rows were written by hand from
the rules in `jax_spatial.benchmark.extract`; a row that stops holding is a changed rule.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jax_spatial.benchmark.extract import extract_answer
from jax_spatial.benchmark.metrics import score_item

YN = {"answer_type": "yes_no", "canonical": "yes", "choices": []}
MC = {
    "answer_type": "multiple_choice",
    "canonical": "B",
    "choices": ["the chair", "the red table"],
}
MC4 = {
    "answer_type": "multiple_choice",
    "canonical": "C",
    "choices": ["the lamp", "the red chair", "the chair", "the sofa"],
}
COUNT = {"answer_type": "count", "canonical": "3", "choices": []}
CM = {
    "answer_type": "number",
    "canonical": "150",
    "choices": [],
    "question": "How long is the table?",
    "meta": {"value": 150.0, "unit": "cm"},
}
METRES = {
    "answer_type": "number",
    "canonical": "2.5",
    "choices": [],
    "question": "How far apart are the chair and the table (in meters)?",
    "meta": {},
}
AREA = {
    "answer_type": "number",
    "canonical": "12",
    "choices": [],
    "question": "What is the area of the room?",
    "meta": {"value": 12.0, "unit": "m2"},
}
DEG = {
    "answer_type": "number",
    "canonical": "90",
    "choices": [],
    "question": "By how much did the camera turn?",
    "meta": {"value": 90.0, "unit": "deg"},
}

CASES = [
    # yes / no
    ("Yes.", YN, "yes"),
    ("yes, the chair is further left than the table.", YN, "yes"),
    ("No", YN, "no"),
    ("no.", YN, "no"),
    ("The answer is no", YN, "no"),
    ("Answer: yes", YN, "yes"),
    ("**Yes**, it is.", YN, "yes"),
    ("No, there is no other chair there.", YN, "no"),
    ("Yes, there is no other chair closer.", YN, "yes"),
    ("I think the answer is no.", YN, "no"),
    ("Looking at the image, yes.", YN, "yes"),
    ("Nope.", YN, "no"),
    ("Yes and no", YN, None),
    ("yes or no?", YN, None),
    ("It could be yes; it could be no.", YN, None),
    ("I don't know", YN, None),
    ("No idea.", YN, None),
    ("", YN, None),
    ("   ", YN, None),
    # multiple choice: letters
    ("(A)", MC, "A"),
    ("A.", MC, "A"),
    ("A", MC, "A"),
    ("Answer: A", MC, "A"),
    ("The answer is B", MC, "B"),
    ("The answer is (B).", MC, "B"),
    ("(b)", MC, "B"),
    ("b", MC, "B"),
    ("B) the red table", MC, "B"),
    ("(B) The red table is closer to the camera than the chair.", MC, "B"),
    ("Option B", MC, "B"),
    ("(A) is closer than the other one", MC, "A"),
    ("C", MC4, "C"),
    # multiple choice: the option's own text
    ("the chair", MC, "A"),
    ("The red table.", MC, "B"),
    ("I'd say the red table is closer.", MC, "B"),
    ("The red chair", MC4, "B"),  # contains "the chair" too: the longer option wins
    ("the lamp or the sofa", MC4, None),  # two options, neither contains the other
    # multiple choice: no single answer
    ("A and B", MC, None),
    ("A, C", MC4, None),
    ("AB", MC, None),
    ("(A) or (B)", MC, None),
    ("Both A and B", MC, None),
    ("A lamp is closer", MC, None),  # the article, and no option's text
    ("The answer is a mystery", MC, None),
    ("I cannot tell.", MC, None),
    ("", MC, None),
    # counts: the last number (InternSpatial's rule)
    ("There are 3 chairs", COUNT, "3"),
    ("2 or 3", COUNT, "3"),
    ("2-3 chairs", COUNT, "3"),
    ("three", COUNT, "3"),
    ("There are three chairs.", COUNT, "3"),
    ("The one on the left and 4 more", COUNT, "4"),
    ("I count 12.", COUNT, "12"),
    ("3.0", COUNT, "3"),
    ("None.", COUNT, "0"),
    ("many", COUNT, None),
    ("", COUNT, None),
    # numbers with units
    ("1.5 m", CM, "150"),
    ("about 150cm", CM, "150"),
    ("1,500 mm", CM, "150"),
    ("It is 150.", CM, "150"),
    ("2.5", METRES, "2.5"),
    ("250 cm", METRES, "2.5"),
    ("roughly 2.5 meters", METRES, "2.5"),
    ("12 square meters", AREA, "12"),
    ("120000 cm2", AREA, "12"),
    ("12 m²", AREA, "12"),
    ("90 degrees", DEG, "90"),
    ("90°", DEG, "90"),
    ("about 3 to 4 m", METRES, "4"),
]


@pytest.mark.parametrize("text, item, expected", CASES)
def test_extraction(text, item, expected):
    got = extract_answer(text, item)
    assert got.value == expected, (text, got)
    if expected is None:
        assert got.status in ("none", "ambiguous")


def test_case_table_is_large():
    assert len(CASES) >= 40


@pytest.mark.parametrize(
    "text, item, status",
    [
        ("Yes and no", YN, "ambiguous"),
        ("A and B", MC, "ambiguous"),
        ("AB", MC, "ambiguous"),
        ("I don't know", YN, "none"),
        ("", COUNT, "none"),
        ("no number here", CM, "none"),
    ],
)
def test_no_single_answer_scores_wrong(text, item, status):
    got = extract_answer(text, item)
    assert got.status == status
    scored = score_item(item, got)
    assert scored.score == 0.0 and not scored.exact


@pytest.mark.parametrize(
    "text, right", [("Yes.", True), ("No.", False), ("(B)", None), ("The red table", None)]
)
def test_scoring_uses_the_extracted_answer(text, right):
    item = YN if right is not None else MC
    scored = score_item(item, extract_answer(text, item))
    assert scored.exact == (True if right is None else right)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**6), st.sampled_from(["There are {} chairs.", "{}", "I count {}."]))
def test_any_count_reads_back(n, template):
    text = template.format(f"{n:,}" if n % 2 else str(n))  # with and without separators
    assert extract_answer(text, COUNT).number == n


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 10**6).map(lambda k: k / 100),
    st.sampled_from([("m", 100.0), ("mm", 0.1), ("cm", 1.0), ("meters", 100.0)]),
)
def test_lengths_convert_to_the_item_unit(value, unit):
    name, to_cm = unit
    got = extract_answer(f"It is about {value} {name}.", CM).number
    assert got == pytest.approx(value * to_cm, rel=1e-9)  # float unit factors, rounded to 1e-9
