"""Live per-well progress in the terminal (rich), fed by orchestrator or server events.

One overall bar counts finished wells; each running well gets its own bar through the
pipeline's steps and disappears when it finishes, so a 1536-well plate stays readable.
"""

from __future__ import annotations

import threading
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from openhcs.core import progress as ev


class ProgressView:
    def __init__(self, total_wells: int | None, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._progress = Progress(
            TextColumn("{task.description:<14}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[step]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self._lock = threading.Lock()
        self._overall = self._progress.add_task("plate", total=total_wells, step="")
        self._wells: dict[str, Any] = {}
        self.counts = {"complete": 0, "failed": 0, "cancelled": 0}

    def __enter__(self) -> ProgressView:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def update(self, axis_id: str, step: str, status: str, metadata: dict[str, Any]) -> None:
        """Feed one progress event (the orchestrator's callback signature)."""
        if not self.console.is_terminal:  # logs and pipes get one plain line per event
            self.console.print(f"{axis_id} {step} {status}", highlight=False)
        with self._lock:
            if step == ev.PIPELINE and status == ev.STARTED:
                total = metadata.get("total_steps") or 1
                self._wells[axis_id] = self._progress.add_task(axis_id, total=total, step="starting")
            elif step != ev.PIPELINE and axis_id in self._wells:
                task = self._wells[axis_id]
                if status == ev.STARTED:
                    self._progress.update(task, step=step)
                elif status == ev.COMPLETED:
                    self._progress.update(task, completed=metadata.get("step_index", 0) + 1)
            elif ev.is_terminal_well_event(step, status):
                task = self._wells.pop(axis_id, None)
                if task is not None:
                    self._progress.remove_task(task)
                key = {"completed": "complete"}.get(status, status)
                self.counts[key] += 1
                if status == ev.FAILED:
                    self.console.print(f"[red]{axis_id} failed[/red]: {metadata.get('error')}")
                done = sum(self.counts.values())
                summary = ", ".join(f"{v} {k}" for k, v in self.counts.items() if v)
                self._progress.update(self._overall, completed=done, step=summary)

    def set_total(self, total_wells: int | None) -> None:
        """Number of wells, when it becomes known (``None``: unknown, an open bar)."""
        self._progress.update(self._overall, total=total_wells)

    def message(self, text: str) -> None:
        self.console.print(text)
