"""Run wells on a :class:`WorkerPool` — the orchestrator's own, or a server's shared one."""

from __future__ import annotations

import threading

from openhcs.core.executors.base import OnDone, OnEvent, WellBackend
from openhcs.core.executors.process_pool import WorkerPool
from openhcs.core.well_runner import WellTask


class ProcessBackend(WellBackend):
    can_kill = True

    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool
        self._lock = threading.Lock()
        self._task_ids: dict[str, int] = {}

    def submit(self, task: WellTask, on_event: OnEvent, on_done: OnDone) -> None:
        def done(outcome, _well=task.well):
            with self._lock:
                self._task_ids.pop(_well, None)
            on_done(outcome)

        with self._lock:
            # Registered under the lock before the pool can call ``done``.
            self._task_ids[task.well] = self.pool.submit(task, on_event, done)

    def _task_id(self, axis_id: str) -> int | None:
        with self._lock:
            return self._task_ids.get(axis_id)

    def cancel(self, axis_id: str) -> None:
        task_id = self._task_id(axis_id)
        if task_id is not None:
            self.pool.cancel(task_id)

    def kill(self, axis_id: str) -> int | None:
        task_id = self._task_id(axis_id)
        return None if task_id is None else self.pool.kill(task_id)

    def pids(self) -> dict[str, int]:
        with self._lock:
            items = list(self._task_ids.items())
        out = {}
        for well, task_id in items:
            pid = self.pool.pid_of(task_id)
            if pid is not None:
                out[well] = pid
        return out
