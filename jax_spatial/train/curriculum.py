"""A curriculum of training stages: batches of one mixture for the first steps, then another.

    stages = [Stage(800, lambda: iter(first_ds), "image_text/boxes"),
              Stage(None, lambda: iter(main_ds), "all")]
    it = StagedBatches(stages)
    batch = next(it)          # from the first stage until 800 batches were drawn
    it.get_state()            # bytes: the plan, the stage, the batches drawn, its own state

The learning benchmark uses it to show the model the questions whose wording gives nothing
away (objects named by the colour of a drawn prompt) before the mixture, where written
coordinates and category names offer an answer without looking (docs/learning.md).

The state is what `grain.checkpoint` saves for an iterator that is not grain's own (bytes):
a resumed run rebuilds the stage it was in and restores that stage's iterator, so it reads
the batches an uninterrupted run would have read, across a stage boundary too. The state
carries the plan (each stage's name and length): a run resumed with another plan would move
a boundary silently, so it is refused.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator, Sequence

from jax_spatial.errors import UserError


@dataclasses.dataclass(frozen=True)
class Stage:
    """`steps` batches (None: the rest of the run) from the iterator `make()` returns;
    `name` says what the stage trains on (its formats), for the plan a checkpoint keeps."""

    steps: int | None
    make: Callable[[], Iterator]
    name: str = ""


class StagedBatches:
    """Draws from each stage's iterator in turn; checkpointable like a grain iterator."""

    def __init__(self, stages: Sequence[Stage]):
        if not stages:
            raise UserError("a curriculum needs at least one stage")
        if any(s.steps is not None and s.steps < 1 for s in stages):
            raise UserError("every curriculum stage but the last needs at least one step")
        self.stages = tuple(stages)
        self.stage = 0
        self.drawn = 0  # batches drawn in the current stage
        self._iterator = None

    @property
    def plan(self) -> list:
        """`[[name, steps], ...]` per stage, as the state stores it."""
        return [[s.name, s.steps] for s in self.stages]

    def _current(self) -> Iterator:
        if self._iterator is None:
            self._iterator = self.stages[self.stage].make()
        return self._iterator

    def _advance(self) -> None:
        # A stage that is used up hands over to the next one, built fresh.
        while (
            self.stage + 1 < len(self.stages)
            and self.stages[self.stage].steps is not None
            and self.drawn >= self.stages[self.stage].steps
        ):
            self._close()
            self.stage += 1
            self.drawn = 0

    def _close(self) -> None:
        # A used-up stage's worker processes (`mp_prefetch`) are not needed again.
        close = getattr(self._iterator, "close", None)
        if close is not None:
            close()
        self._iterator = None

    def __iter__(self):
        return self

    def __next__(self):
        self._advance()
        batch = next(self._current())
        self.drawn += 1
        return batch

    def get_state(self) -> bytes:
        # The stage's grain iterator state (a JSON-able dict), or None before its first draw.
        inner = self._iterator.get_state() if self._iterator is not None else None
        return json.dumps(
            {"plan": self.plan, "stage": self.stage, "drawn": self.drawn, "inner": inner}
        ).encode()

    def set_state(self, state: bytes) -> None:
        state = json.loads(state)
        if not isinstance(state, dict) or "stage" not in state:
            raise UserError(
                "the checkpoint's data position was saved without a curriculum, and this run "
                "has one; use the run's own config or a new workdir"
            )
        if "plan" in state and state["plan"] != self.plan:
            raise UserError(
                f"the checkpoint was saved with the curriculum {_describe(state['plan'])}, "
                f"and this run has {_describe(self.plan)}; use the run's own config or a new "
                f"workdir"
            )
        if not 0 <= state["stage"] < len(self.stages):
            raise UserError(
                f"the checkpoint is in curriculum stage {state['stage'] + 1}, but this run has "
                f"{len(self.stages)} stages; use the run's own config or a new workdir"
            )
        self._close()
        self.stage, self.drawn = int(state["stage"]), int(state["drawn"])
        if state["inner"] is not None:
            self._current().set_state(state["inner"])

    def start_prefetch(self) -> None:
        """`grain.checkpoint` calls this after a restore; the stages' iterators prefetch
        on their own."""


def parse_stages(spec: str) -> list[tuple[str, int]]:
    """`"image_text/boxes:700;caption/boxes,ref/boxes:500"` -> `[(formats, steps), ...]`:
    the stages before the mixture, in order (formats comma-joined, as `data.formats`)."""
    stages = []
    for part in filter(None, (p.strip() for p in str(spec or "").split(";"))):
        formats, sep, steps = part.rpartition(":")
        try:
            count = int(steps)
        except ValueError:
            count = 0
        if not sep or not formats.strip() or count < 1:
            raise UserError(
                f"curriculum stage {part!r} is not FORMATS:STEPS with at least one step "
                f"(e.g. image_text/boxes:800)"
            )
        stages.append((formats.strip(), count))
    return stages


def _describe(plan) -> str:
    return " then ".join(
        f"{name or '?'} ({'the rest' if steps is None else f'{steps} steps'})"
        for name, steps in plan
    )


__all__ = ["Stage", "StagedBatches", "parse_stages"]
