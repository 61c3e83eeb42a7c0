"""The one interface the orchestrator uses to run wells: threads, processes or Dask.

A backend runs :class:`~openhcs.core.well_runner.WellTask` objects and reports through
two callbacks: ``on_event(axis_id, step, status, metadata)`` for progress and
``on_done(outcome)`` once per well (``outcome`` is a ``WellOutcome``, or ``None`` when the
well was cancelled before it started). Callbacks may arrive on any thread.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from openhcs.core.well_runner import WellOutcome, WellTask

OnEvent = Callable[[str, str, str, dict[str, Any]], None]
OnDone = Callable[[WellOutcome | None], None]


class WellBackend(ABC):
    """Runs wells for one orchestrator run."""

    #: whether :meth:`kill` can stop a well that ignores cancellation
    can_kill: bool = False

    @abstractmethod
    def submit(self, task: WellTask, on_event: OnEvent, on_done: OnDone) -> None:
        """Start (or queue) one well."""

    @abstractmethod
    def cancel(self, axis_id: str) -> None:
        """Cooperatively stop one well: skip it if queued, flag it if running."""

    def kill(self, axis_id: str) -> int | None:
        """Forcefully stop one running well; returns the pid killed, if any."""
        return None

    def pids(self) -> dict[str, int]:
        """Process ids running each well right now (empty where not applicable)."""
        return {}

    def close(self) -> None:
        """Release what this backend owns (not shared pools)."""
        return None
