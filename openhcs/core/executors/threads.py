"""Run wells on threads inside the calling process.

Cheap to start and easy to debug; numpy/scipy release the GIL in most heavy calls, but a
pure-Python step serialises. Threads cannot be killed, so a forced cancel falls back to
the cooperative one (the cancel token the step functions poll).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from openhcs.core.executors.base import OnDone, OnEvent, WellBackend
from openhcs.core.well_runner import WellTask, run_well


class ThreadBackend(WellBackend):
    can_kill = False

    def __init__(self, num_workers: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=num_workers, thread_name_prefix="openhcs-well")
        self._lock = threading.Lock()
        self._cancelled: set[str] = set()
        self._running: dict[str, int] = {}

    def submit(self, task: WellTask, on_event: OnEvent, on_done: OnDone) -> None:
        self._pool.submit(self._run, task, on_event, on_done)

    def _run(self, task: WellTask, on_event: OnEvent, on_done: OnDone) -> None:
        if self.is_cancelled(task.well):
            on_done(None)
            return
        with self._lock:
            self._running[task.well] = threading.get_ident()
        try:
            outcome = run_well(task, on_event, lambda: self.is_cancelled(task.well))
            outcome.worker = threading.current_thread().name
        finally:
            with self._lock:
                self._running.pop(task.well, None)
        on_done(outcome)

    def is_cancelled(self, axis_id: str) -> bool:
        with self._lock:
            return axis_id in self._cancelled

    def cancel(self, axis_id: str) -> None:
        with self._lock:
            self._cancelled.add(axis_id)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
