"""PipelineOrchestrator: initialize -> compile -> execute a pipeline over a plate.

The orchestrator owns one plate and runs wells (the parallel axis) on a backend:
threads, a warm process pool (its own, or a server's shared one), or Dask. It reports
progress through ``progress_callback(axis_id, step, status, metadata)`` at the seed's
points, and cancels the whole run or some wells: a cancelled well stops at the next step
or at the next ``checkpoint()`` inside a long step; in process mode a well still running
after the grace period has its worker killed by pid and the pool repairs itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from openhcs.core import progress
from openhcs.core.config import GlobalPipelineConfig, PipelineConfig
from openhcs.core.executors.base import WellBackend
from openhcs.core.orchestrator.compiler import CompiledPlan, CompileError, compile_plan
from openhcs.core.orchestrator.result import RunResult, overall_status, write_plate_summary
from openhcs.core.pipeline import Pipeline
from openhcs.core.progress import ProgressCallback
from openhcs.core.steps import FunctionStep
from openhcs.core.well_runner import WellOutcome
from openhcs.io.detect import open_plate
from openhcs.io.errors import OutputError
from openhcs.io.plate import Plate

log = logging.getLogger(__name__)

__all__ = ["PipelineOrchestrator", "CompileError", "RunResult"]


class PipelineOrchestrator:
    """Runs one pipeline over one plate. Not reentrant: one execution at a time."""

    def __init__(
        self,
        plate_path: str | Path,
        global_config: GlobalPipelineConfig | None = None,
        pipeline_config: PipelineConfig | None = None,
        progress_callback: ProgressCallback | None = None,
        worker_pool: Any = None,
        dask_client: Any = None,
    ) -> None:
        self.plate_path = Path(plate_path)
        self.global_config = global_config or GlobalPipelineConfig()
        self.pipeline_config = pipeline_config
        self.config = (pipeline_config or PipelineConfig()).resolve(self.global_config)
        self.progress_callback = progress_callback
        self.plate: Plate | None = None
        self._shared_pool = worker_pool
        self._own_pool: Any = None
        self._dask_client = dask_client
        # Seed names: a threading.Event for "cancel everything"; per-well sets beside it.
        self._cancel_requested = threading.Event()
        self._lock = threading.Lock()
        self._cancelled_axes: set[str] = set()
        self._backend: WellBackend | None = None
        self._running: set[str] = set()
        self._finished = threading.Event()
        self._finished.set()
        self._escalations: list[threading.Thread] = []

    # --------------------------------------------------------------- lifecycle
    def initialize(self) -> PipelineOrchestrator:
        """Parse the plate layout once (raises ``PlateError`` with the reason)."""
        if self.plate is None:
            self.plate = open_plate(self.plate_path)
        return self

    def compile_pipelines(
        self, pipeline_steps: Pipeline | Iterable[FunctionStep], wells: Iterable[str] | None = None
    ) -> CompiledPlan:
        self.initialize()
        assert self.plate is not None
        return compile_plan(self.plate, pipeline_steps, self.config, wells)

    def run(
        self, pipeline_steps: Pipeline | Iterable[FunctionStep], wells: Iterable[str] | None = None
    ) -> RunResult:
        return self.execute_compiled_plate(self.compile_pipelines(pipeline_steps, wells))

    def execute_compiled_plate(self, compiled: CompiledPlan) -> RunResult:
        """Run every well of the plan; returns when all are complete, failed or cancelled."""
        started = time.perf_counter()
        outcomes: dict[str, WellOutcome] = {}
        all_done = threading.Event()
        remaining = len(compiled.tasks)
        if remaining == 0:
            all_done.set()
        self._finished.clear()
        backend = self._make_backend()
        with self._lock:
            self._backend = backend

        def on_done(well: str, outcome: WellOutcome | None) -> None:
            nonlocal remaining
            if outcome is None:  # cancelled before it started
                outcome = WellOutcome(well=well, status="cancelled")
                self._emit(well, progress.PIPELINE, progress.CANCELLED, {"step": None})
            with self._lock:
                outcomes[well] = outcome
                self._running.discard(well)
                remaining -= 1
                if remaining == 0:
                    all_done.set()

        try:
            for task in compiled.tasks:
                with self._lock:
                    self._running.add(task.well)
                if self._is_cancelled(task.well):
                    on_done(task.well, None)
                    continue
                backend.submit(task, self._emit, lambda o, w=task.well: on_done(w, o))
                if self._is_cancelled(task.well):  # a cancel that raced the submit
                    backend.cancel(task.well)
            all_done.wait()
        finally:
            self._finished.set()
            with self._lock:
                self._backend = None
                escalations, self._escalations = self._escalations, []
            for thread in escalations:
                thread.join()
            backend.close()  # a process backend leaves its (possibly shared) pool running
        ordered = {w: outcomes[w] for w in compiled.wells if w in outcomes}
        summary_path, error = None, None
        if ordered:
            try:
                summary_path = write_plate_summary(compiled.output_dir, ordered)
            except OutputError as exc:  # keep every well's outcome; report the summary apart
                error = str(exc)
                log.error("run finished but its summary was not written: %s", exc)
        metrics = {
            "wall_time_s": round(time.perf_counter() - started, 4),
            "wells": len(ordered),
            "per_step_s": _sum_step_times(ordered.values()),
            "peak_rss_mb": max((o.peak_rss_mb for o in ordered.values()), default=0.0),
            "mode": self.config.mode,
            "num_workers": self.config.num_workers,
        }
        return RunResult(
            status="failed" if error else overall_status(ordered),
            error=error,
            wells=ordered,
            output_dir=compiled.output_dir,
            summary_path=summary_path,
            metrics=metrics,
        )

    def shutdown(self) -> None:
        """Stop the orchestrator's own worker pool (a shared pool is left running)."""
        if self._own_pool is not None:
            self._own_pool.close()
            self._own_pool = None

    # ------------------------------------------------------------ cancellation
    def cancel(
        self, axis_ids: Iterable[str] | None = None, force: bool = False, grace: float | None = None
    ) -> None:
        """Cancel the run, or only ``axis_ids``; returns at once (thread-safe).

        Queued wells never start; running wells stop at the next step boundary or
        ``checkpoint()``. With a process backend, a well still running after ``grace``
        seconds (``cancel_grace_seconds`` by default, 0 with ``force``) is killed.
        """
        axes = None if axis_ids is None else {a.strip().upper() for a in axis_ids}
        with self._lock:
            if axes is None:
                self._cancel_requested.set()
            else:
                self._cancelled_axes.update(axes)
            backend = self._backend
            targets = set(self._running) if axes is None else axes & self._running
        if backend is None:
            return
        for axis in sorted(targets):
            backend.cancel(axis)
        if not backend.can_kill:
            return
        wait = 0.0 if force else (self.config.cancel_grace_seconds if grace is None else grace)
        thread = threading.Thread(
            target=self._escalate, args=(backend, targets, wait), name="openhcs-cancel-escalation"
        )
        with self._lock:  # started under the lock: the run's end joins every listed thread
            self._escalations.append(thread)
            thread.start()

    def reset_cancellation(self) -> None:
        with self._lock:
            self._cancel_requested.clear()
            self._cancelled_axes.clear()

    def is_cancel_requested(self) -> bool:
        return self._cancel_requested.is_set()

    def worker_pids(self) -> dict[str, int]:
        with self._lock:
            backend = self._backend
        return backend.pids() if backend is not None else {}

    def _escalate(self, backend: WellBackend, targets: set[str], wait: float) -> None:
        if self._finished.wait(wait):
            return
        for axis in sorted(targets):
            with self._lock:
                still_running = axis in self._running
            if still_running:
                pid = backend.kill(axis)
                if pid is not None:
                    log.warning("well %s ignored cancellation for %.1fs; killed worker pid %s", axis, wait, pid)

    def _is_cancelled(self, axis_id: str) -> bool:
        return self._cancel_requested.is_set() or axis_id in self._cancelled_axes

    # ----------------------------------------------------------------- helpers
    def _make_backend(self) -> WellBackend:
        mode = self.config.mode
        if mode == "threads":
            from openhcs.core.executors.threads import ThreadBackend

            return ThreadBackend(self.config.num_workers)
        if mode == "processes":
            from openhcs.core.executors.process_pool import WorkerPool
            from openhcs.core.executors.processes import ProcessBackend

            pool = self._shared_pool
            if pool is None:
                if self._own_pool is None or self._own_pool.closed:
                    self._own_pool = WorkerPool(self.config.num_workers)
                pool = self._own_pool
            return ProcessBackend(pool)
        if mode == "dask":
            from openhcs.core.executors.dask_backend import DaskBackend

            return DaskBackend(self._dask_client, self.config)
        raise CompileError(f"unknown execution mode {mode!r}")

    def _emit(self, axis_id: str, step: str, status: str, metadata: dict[str, Any]) -> None:
        if self.progress_callback is None:
            return
        try:
            self.progress_callback(axis_id, step, status, metadata)
        except Exception:  # a broken listener must not break the run
            log.exception("progress_callback raised")


def _sum_step_times(outcomes: Iterable[WellOutcome]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for o in outcomes:
        for step, t in o.step_times.items():
            totals[step] = round(totals.get(step, 0.0) + t, 4)
    return totals
