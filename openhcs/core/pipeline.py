"""A pipeline: a named, ordered list of :class:`~openhcs.core.steps.FunctionStep`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from openhcs.core.steps import FunctionStep, PatternError


@dataclass(frozen=True)
class Pipeline:
    steps: tuple[FunctionStep, ...]
    name: str = "pipeline"

    def __init__(self, steps: Iterable[FunctionStep], name: str = "pipeline") -> None:
        steps = tuple(steps)
        for i, step in enumerate(steps):
            if not isinstance(step, FunctionStep):
                raise PatternError(f"pipeline step {i} is a {type(step).__name__}, not a FunctionStep")
        names = [s.display_name for s in steps]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise PatternError(f"step names must be unique within a pipeline; repeated: {dupes}")
        object.__setattr__(self, "steps", steps)
        object.__setattr__(self, "name", name)

    def __iter__(self) -> Iterator[FunctionStep]:
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def __getitem__(self, index: int) -> FunctionStep:
        return self.steps[index]

    @classmethod
    def coerce(cls, steps: Pipeline | Iterable[FunctionStep]) -> Pipeline:
        return steps if isinstance(steps, Pipeline) else cls(steps)
