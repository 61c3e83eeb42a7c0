"""Pipeline steps and function patterns.

A step's ``func`` is a *function pattern*:

- a callable: ``normalize_percentile``
- a callable with keyword options: ``(normalize_percentile, {"high": 99.5})``
- a chain (a list of patterns), applied in order: ``[denoise, subtract_background]``
- a dict keyed by a value of the step's ``group_by`` component, e.g. per channel:
  ``{"1": segment_nuclei, "2": denoise}``; groups whose value is not a key pass through.

The images of one well are grouped by ``group_by`` (e.g. one group per channel); inside a
group they are stacked along ``variable_components`` (e.g. all sites) into a 3-D array
``(n, y, x)``. A function takes that stack first and returns a stack of the same length,
or of length 1 (a projection or a mosaic), optionally with a list of per-object
measurement rows: ``return stack`` or ``return stack, rows``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

COMPONENTS = ("well", "site", "channel", "z", "timepoint")
GROUPABLE = ("site", "channel", "z", "timepoint")

FunctionPattern = Any  # Callable | tuple[Callable, dict] | list[FunctionPattern] | dict[str, FunctionPattern]


class PatternError(ValueError):
    """A function pattern or step definition that cannot run."""


@dataclass(frozen=True)
class FunctionStep:
    """One processing step of a pipeline."""

    func: FunctionPattern
    name: str | None = None
    variable_components: tuple[str, ...] = ("site",)
    group_by: str | None = "channel"
    kwargs: dict[str, Any] = field(default_factory=dict, hash=False, compare=True)

    def __post_init__(self) -> None:
        if isinstance(self.variable_components, str):
            object.__setattr__(self, "variable_components", (self.variable_components,))
        else:
            object.__setattr__(self, "variable_components", tuple(self.variable_components))
        for comp in self.variable_components:
            if comp not in GROUPABLE:
                raise PatternError(
                    f"step {self.display_name!r}: unknown variable component {comp!r}; "
                    f"choose from {GROUPABLE}"
                )
        if self.group_by is not None and self.group_by not in GROUPABLE:
            raise PatternError(
                f"step {self.display_name!r}: unknown group_by component {self.group_by!r}; "
                f"choose from {GROUPABLE}"
            )
        if self.group_by is not None and self.group_by in self.variable_components:
            raise PatternError(
                f"step {self.display_name!r}: group_by {self.group_by!r} cannot also be a "
                "variable component"
            )
        validate_pattern(self.func, where=f"step {self.display_name!r}")

    @property
    def display_name(self) -> str:
        if self.name:
            return self.name
        return pattern_name(self.func)


def pattern_name(pattern: FunctionPattern) -> str:
    """A short human name for a pattern, used when a step has no name."""
    if callable(pattern):
        return getattr(pattern, "__name__", type(pattern).__name__)
    if isinstance(pattern, tuple) and pattern:
        return pattern_name(pattern[0])
    if isinstance(pattern, list) and pattern:
        return "+".join(pattern_name(p) for p in pattern)
    if isinstance(pattern, dict) and pattern:
        return "|".join(f"{k}:{pattern_name(v)}" for k, v in pattern.items())
    return "step"


def validate_pattern(pattern: FunctionPattern, where: str = "pattern") -> None:
    """Raise :class:`PatternError` naming what is wrong with ``pattern``."""
    if callable(pattern) and not isinstance(pattern, type):
        return
    if isinstance(pattern, tuple):
        if len(pattern) != 2 or not callable(pattern[0]) or not isinstance(pattern[1], dict):
            raise PatternError(f"{where}: a tuple pattern must be (callable, dict of kwargs), got {pattern!r}")
        bad = [k for k in pattern[1] if not isinstance(k, str)]
        if bad:
            raise PatternError(f"{where}: keyword names must be strings, got {bad!r}")
        return
    if isinstance(pattern, list):
        if not pattern:
            raise PatternError(f"{where}: an empty list is not a function pattern")
        for i, item in enumerate(pattern):
            if isinstance(item, dict):
                raise PatternError(f"{where}: a dict pattern cannot be nested in a chain (item {i})")
            validate_pattern(item, where=f"{where}[{i}]")
        return
    if isinstance(pattern, dict):
        if not pattern:
            raise PatternError(f"{where}: an empty dict is not a function pattern")
        for key, item in pattern.items():
            if not isinstance(key, str):
                raise PatternError(f"{where}: dict pattern keys must be component values as strings, got {key!r}")
            if isinstance(item, dict):
                raise PatternError(f"{where}: dict patterns cannot be nested (key {key!r})")
            validate_pattern(item, where=f"{where}[{key!r}]")
        return
    raise PatternError(
        f"{where}: expected a callable, (callable, kwargs), a list or a dict, got {type(pattern).__name__}"
    )


def iter_calls(pattern: FunctionPattern) -> list[tuple[Callable, dict]]:
    """Flatten a non-dict pattern into the ordered (callable, kwargs) calls it makes."""
    if isinstance(pattern, tuple):
        return [(pattern[0], dict(pattern[1]))]
    if isinstance(pattern, list):
        calls: list[tuple[Callable, dict]] = []
        for item in pattern:
            calls.extend(iter_calls(item))
        return calls
    return [(pattern, {})]
