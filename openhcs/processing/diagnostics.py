"""Functions for exercising an execution system, not for analysing images.

They let a test, a benchmark or a facility engineer check what a server does with a
slow step, a step that ignores cancellation, a step that raises and a worker that dies,
on real plates and real worker processes. Each acts only on stacks that contain
``marker`` (when given), so one well of a plate can be made to misbehave.
"""

from __future__ import annotations

import os
import time

import numpy as np

from openhcs.processing.checkpoint import checkpoint


def _hit(stack: np.ndarray, marker: float | None) -> bool:
    return marker is None or bool(np.any(stack == marker))


def passthrough(stack: np.ndarray) -> np.ndarray:
    """Return a copy of the stack: the cheapest real step (orchestration overhead)."""
    return stack.copy()


def mean_intensity(stack: np.ndarray) -> tuple[np.ndarray, list[dict]]:
    """One measurement row per plane: its mean intensity."""
    rows = [{"plane": i, "mean_intensity": float(p.mean())} for i, p in enumerate(stack)]
    return stack.copy(), rows


def sleep_step(stack: np.ndarray, seconds: float = 1.0, marker: float | None = None) -> np.ndarray:
    """Wait ``seconds``, polling for cancellation every 10 ms (a cooperative long step)."""
    if _hit(stack, marker):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            checkpoint()
            time.sleep(0.01)
    return stack.copy()


def ignore_cancel_step(stack: np.ndarray, seconds: float = 30.0, marker: float | None = None) -> np.ndarray:
    """Busy for ``seconds`` without ever polling cancellation (needs a forced kill)."""
    if _hit(stack, marker):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.01)
    return stack.copy()


def fail_step(stack: np.ndarray, marker: float | None = None, message: str = "deliberate failure") -> np.ndarray:
    """Raise ``RuntimeError(message)`` on matching stacks."""
    if _hit(stack, marker):
        raise RuntimeError(message)
    return stack.copy()


def crash_worker_step(stack: np.ndarray, marker: float | None = None, exit_code: int = 3) -> np.ndarray:
    """End the worker process abruptly (as a segfaulting C extension would)."""
    if _hit(stack, marker):
        os._exit(exit_code)
    return stack.copy()
