"""Editable drafts of pipeline steps, and their exact round trip to ``FunctionStep``.

A ``FunctionStep``'s function pattern comes in four kinds (see :mod:`openhcs.core.steps`):
a callable, ``(callable, kwargs)``, a chain (list) and a per-component dict. A draft holds
all four in one shape — ``branches``: ``None`` -> the step's one chain of calls, or one
chain per component value — plus the two flags that make the round trip exact: a call
written as ``(f, {})`` stays a tuple and a one-call list stays a list. So a pipeline
loaded from a file and saved again is written the same way.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from openhcs.core.steps import FunctionStep
from openhcs.frontend.designer_catalog import CatalogEntry

PATTERN_KINDS = ("function", "function with options", "chain", "per-component")


class DraftError(ValueError):
    """A draft that cannot become a FunctionStep yet; ``field`` says where."""

    def __init__(self, message: str, field: str = "function") -> None:
        super().__init__(message)
        self.field = field


@dataclass
class Call:
    """One function call of a pattern; ``kwargs`` holds only the options the user set."""

    func: Callable
    entry: CatalogEntry
    kwargs: dict[str, Any] = field(default_factory=dict)
    tupled: bool = False  # written as (func, {...}) even with no options

    def pattern(self) -> Any:
        return (self.func, dict(self.kwargs)) if self.kwargs or self.tupled else self.func


@dataclass
class Branch:
    """A chain of calls; one call is written bare unless ``listed``."""

    calls: list[Call] = field(default_factory=list)
    listed: bool = False

    def pattern(self) -> Any:
        if not self.calls:
            return None
        if self.listed or len(self.calls) > 1:
            return [c.pattern() for c in self.calls]
        return self.calls[0].pattern()


@dataclass
class StepDraft:
    """A step being edited. ``branches`` keys: ``None`` (one pattern) or component values."""

    name: str | None
    variable_components: tuple[str, ...] = ("site",)
    group_by: str | None = "channel"
    branches: dict[str | None, Branch] = field(default_factory=lambda: {None: Branch()})
    step_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def per_component(self) -> bool:
        return None not in self.branches

    @property
    def kind(self) -> str:
        """Which of :data:`PATTERN_KINDS` the step's pattern is."""
        if self.per_component:
            return "per-component"
        branch = self.branches[None]
        if branch.listed or len(branch.calls) > 1:
            return "chain"
        if branch.calls and (branch.calls[0].kwargs or branch.calls[0].tupled):
            return "function with options"
        return "function"

    @property
    def display_name(self) -> str:
        if self.name:
            return self.name
        names = {k: "+".join(c.entry.name for c in b.calls) or "?" for k, b in self.branches.items()}
        if None in names:
            return names[None] if names[None] != "?" else "(no function)"
        return "|".join(f"{k}:{v}" for k, v in names.items())

    def branch(self, key: str | None = None) -> Branch:
        if key not in self.branches:
            raise KeyError(f"step {self.display_name!r} has no pattern for {key!r}")
        return self.branches[key]

    def copy(self) -> StepDraft:
        """A deep copy that shares the function objects and catalog entries."""
        memo = {}
        for branch in self.branches.values():
            for call in branch.calls:
                memo[id(call.func)] = call.func
                memo[id(call.entry)] = call.entry
        return copy.deepcopy(self, memo)

    def pattern(self) -> Any:
        if not self.per_component:
            return self.branches[None].pattern()
        return {k: b.pattern() for k, b in self.branches.items()}

    def to_step(self) -> FunctionStep:
        """The FunctionStep; :class:`DraftError` when a function is still missing."""
        empty = [k for k, b in self.branches.items() if not b.calls]
        if empty:
            where = "" if empty == [None] else f" for {self.group_by} {', '.join(map(str, empty))}"
            raise DraftError(f"step {self.display_name!r}: choose a function{where}")
        return FunctionStep(func=self.pattern(), name=self.name, variable_components=self.variable_components,
                            group_by=self.group_by, kwargs=dict(self.step_kwargs))


def _branch(pattern: Any, entry_for: Callable[[Callable], CatalogEntry]) -> Branch:
    if isinstance(pattern, list):
        return Branch([_call(p, entry_for) for p in pattern], listed=True)
    return Branch([_call(pattern, entry_for)])


def _call(pattern: Any, entry_for: Callable[[Callable], CatalogEntry]) -> Call:
    if isinstance(pattern, tuple):
        func, kwargs = pattern
        return Call(func, entry_for(func), dict(kwargs), tupled=True)
    if isinstance(pattern, list):  # a chain nested in a chain: core flattens it; so do we
        raise DraftError("nested chains cannot be edited in the designer; flatten the list")
    return Call(pattern, entry_for(pattern))


def draft_from_step(step: FunctionStep, entry_for: Callable[[Callable], CatalogEntry]) -> StepDraft:
    """The draft of ``step``; ``entry_for`` finds each function's catalog entry."""
    if isinstance(step.func, dict):
        branches = {k: _branch(v, entry_for) for k, v in step.func.items()}
    else:
        branches = {None: _branch(step.func, entry_for)}
    return StepDraft(step.name, tuple(step.variable_components), step.group_by, branches, dict(step.kwargs))
