"""Where a formatted question names each of its objects: character spans plus the object.

    spans = mention_spans(obs, qa, fqa)      # [(start, end, object position), ...]
    fqa.question[start:end]                  # "the object in the green box", "region 3",
                                             # "<ref>region</ref><box>[[12, 40, 300, 990]]</box>"

The engine knows which object every name stands for; a model can be taught to look at that
object's pixels when it reads the name (`train` grounding supervision). The spans come from
rendering the question's own templates again with each name wrapped in marker characters,
so they are exact; every name is found, including the ones in multiple-choice options.
"""

from __future__ import annotations

from jax_spatial.formats.expand import object_reference
from jax_spatial.formats.spec import FormattedQA
from jax_spatial.qa.phrase import render_text

_OPEN, _MID, _CLOSE = "\x01", "\x02", "\x03"  # never in a template, kept by its whitespace rule


def mention_spans(obs, qa, fqa: FormattedQA) -> list[tuple[int, int, int]]:
    """`[(start, end, o)]`: `fqa.question[start:end]` names object `o` (its position in `obs`).

    Empty when the question has no objects or the record carries no slots to re-render (a
    hand-written record), or when the re-rendered text differs from the question other than
    in letter case (then no span is trusted).
    """
    objects = list(dict.fromkeys(qa.objects))
    if not objects or not qa.answer_template_id:
        return []
    prompts = {p.object: p for p in fqa.prompts}
    refs = {o: object_reference(obs, o, fqa.text_ref, prompts.get(o)) for o in objects}
    marked, _, _ = render_text(
        qa,
        lambda o: f"{_OPEN}{o}{_MID}{refs[o][0]}{_CLOSE}",
        lambda o: refs[o][1],
    )
    plain: list[str] = []
    spans: list[tuple[int, int, int]] = []
    open_at, obj, i = None, None, 0
    while i < len(marked):
        ch = marked[i]
        if ch == _OPEN:
            j = marked.index(_MID, i)
            obj, open_at, i = int(marked[i + 1 : j]), len(plain), j + 1
            continue
        if ch == _CLOSE:
            spans.append((open_at, len(plain), obj))
            i += 1
            continue
        plain.append(ch)
        i += 1
    text = "".join(plain)
    # Sentence capitals land on the marker, not on the name's first letter: compare caselessly.
    if text.casefold() != fqa.question.casefold():
        return []
    return spans


__all__ = ["mention_spans"]
