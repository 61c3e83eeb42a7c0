"""Step functions for runtime tests, importable by server and worker processes.

The test fixtures put this folder on PYTHONPATH, so a pipeline using these functions
round-trips through ``openhcs.codegen`` and runs in a real server's worker pool.
"""

from __future__ import annotations

import time

from openhcs.core.pipeline import Pipeline
from openhcs.core.steps import FunctionStep
from openhcs.processing.checkpoint import checkpoint


def busy(stack, seconds: float = 1.0):
    """CPU-bound work for ``seconds`` that honours cancellation (polls ``checkpoint``)."""
    deadline = time.monotonic() + seconds
    x = 0
    while time.monotonic() < deadline:
        checkpoint()
        for i in range(2000):
            x += i * i
    return stack.copy()


def stubborn(stack, seconds: float = 60.0):
    """CPU-bound work that ignores cancellation: only a kill stops it."""
    deadline = time.monotonic() + seconds
    x = 0
    while time.monotonic() < deadline:
        for i in range(2000):
            x += i * i
    return stack.copy()


def explode(stack):
    raise RuntimeError("boom: this step always fails")


def noop(stack):
    return stack


def pipeline(func, name: str, **kwargs) -> Pipeline:
    step = FunctionStep(func=(func, kwargs) if kwargs else func, name=name,
                        variable_components=("site",), group_by="channel")
    return Pipeline([step], name=f"test: {name}")


def busy_pipeline(seconds: float = 1.0) -> Pipeline:
    return pipeline(busy, "busy", seconds=seconds)


def stubborn_pipeline(seconds: float = 60.0) -> Pipeline:
    return pipeline(stubborn, "stubborn", seconds=seconds)


def failing_pipeline() -> Pipeline:
    return pipeline(explode, "explode")


def noop_pipeline(steps: int = 1) -> Pipeline:
    return Pipeline([FunctionStep(func=noop, name=f"noop{i}", variable_components=("site",),
                                  group_by="channel") for i in range(steps)], name="test: noop")
