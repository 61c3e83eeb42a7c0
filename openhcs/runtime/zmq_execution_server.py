"""The long-lived execution server: execute / status / cancel / events / shutdown / kill.

Threads and who owns what:

- The **control loop** (one thread, :class:`~openhcs.runtime.zmq_base.ZMQServer`) owns
  every socket, the :class:`RunBook` (run state), the :class:`EventLog` (replay) and the
  history. It never waits on execution, so ``status`` and ``cancel`` are answered while a
  plate runs on every core.
- **Run threads** (a bounded pool, ``max_concurrent_runs``; later runs stay queued) load
  the pipeline from source (only after the request's HMAC was verified), build a
  ``PipelineOrchestrator`` and run it. They never touch sockets or state: progress and
  state changes are handed to the loop with ``post()``, which wakes its poller.
- One warm ``WorkerPool`` is created at the first process-mode run and shared by all runs,
  so a run never pays for worker start-up again.

Heavy modules (the orchestrator, numpy, scikit-image) are imported in run threads only,
which keeps cold start and idle memory small.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import threading
import time
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from typing import Any

from openhcs.runtime.catalog import CatalogService
from openhcs.runtime.protocol import (
    SHUTTING_DOWN,
    Accepted,
    Cancel,
    CancelReply,
    Error,
    Events,
    EventsReply,
    Execute,
    Functions,
    FunctionsReply,
    Kill,
    Shutdown,
    ShutdownReply,
    Status,
    StatusReply,
    new_id,
    reply_to,
)
from openhcs.runtime.runs import (
    CancelRequested,
    EventLog,
    EventsExpired,
    Finished,
    Planned,
    RunBook,
    Started,
    Submitted,
    WellProgress,
)
from openhcs.runtime.zmq_base import ZMQServer

log = logging.getLogger(__name__)

MAX_EVENTS_PER_REPLY = 5000
# Workers run at a lower priority than the server so that, with every core busy, the
# control loop still wakes at once for status and cancel requests.
WORKER_NICE_INCREMENT = 5
MAX_FINISHED_IN_STATUS = 50
# Finished runs (and their event logs) kept in memory for status/replay; older ones live
# on in the SQLite history only. Bounds a long-lived server's memory.
MAX_FINISHED_RUNS = 200
SHUTDOWN_EXTRA_SECONDS = 5.0


@dataclass
class _Run:
    """What a run thread and the loop share about one run (guarded by ``lock``)."""

    execution_id: str
    request: Execute
    lock: threading.Lock = field(default_factory=threading.Lock)
    orchestrator: Any = None
    cancel_all: bool = False
    cancel_axes: set[str] = field(default_factory=set)
    force: bool = False
    grace: float | None = None
    future: Future | None = None


class ZMQExecutionServer(ZMQServer):
    """Runs pipelines sent as code; streams progress; cancels runs or single wells."""

    def __init__(self, port: int = 7777, host: str = "127.0.0.1", *, num_workers: int | None = None,
                 mode: str | None = None, max_concurrent_runs: int = 1, history_path=None,
                 parent_pid: int | None = None, dask_scheduler: str | None = None, **kwargs: Any):
        super().__init__(port, host, **kwargs)
        if max_concurrent_runs < 1:
            raise ValueError("max_concurrent_runs must be >= 1")
        self.num_workers = num_workers
        self.dask_scheduler = dask_scheduler
        # a scheduler address alone means "run on that cluster by default"
        self.mode = mode or ("dask" if dask_scheduler else None)
        self.max_concurrent_runs = max_concurrent_runs
        self.parent_pid = parent_pid
        self.runs = RunBook(max_finished=MAX_FINISHED_RUNS)
        self.events = EventLog()
        self.history = None
        self._history_path = history_path
        self._executor = ThreadPoolExecutor(max_concurrent_runs, thread_name_prefix="openhcs-run")
        # execution_id -> the run's shared handle (its orchestrator once built); runs
        # leave this table when they reach a terminal state
        self.active_executions: dict[str, _Run] = {}
        self._pool = None
        self._pool_lock = threading.Lock()
        self._shutting_down = False
        self._shutdown_deadline: float | None = None
        self.catalog = CatalogService()

    def request_handlers(self):
        return {
            Execute: self._handle_execute,
            Status: self._handle_status,
            Cancel: self._handle_cancel,
            Events: self._handle_events,
            Shutdown: self._handle_shutdown,
            Kill: self._handle_kill,
            Functions: self._handle_functions,
        }

    def bind(self):
        from openhcs.runtime.history import RunHistory

        info = super().bind()
        self.history = RunHistory(self._history_path)
        self.history.mark_interrupted()
        return info

    def counts(self) -> tuple[int, int]:
        queued = sum(1 for r in self.active_executions.values() if r.future is not None and not r.future.running()
                     and not r.future.done())
        return len(self.active_executions) - queued, queued

    # ------------------------------------------------------------------ requests
    def _handle_execute(self, msg: Execute):
        if msg.request_id:
            existing = self.runs.find_by_request(msg.request_id)
            if existing is not None:
                return reply_to(msg, Accepted, execution_id=existing.execution_id,
                                state=existing.state.value, duplicate=True)
        if self._shutting_down:
            return reply_to(msg, Error, code=SHUTTING_DOWN, message="the server is shutting down")
        execution_id = new_id()
        summary = {"plate_id": msg.plate_id, "wells": list(msg.wells) if msg.wells else None}
        record = self.runs.handle(Submitted(execution_id, time.time(), msg.request_id or None,
                                            msg.plate_id, summary))
        run = self.active_executions[execution_id] = _Run(execution_id, msg)
        # the queued event names the request, so the submitting client can follow the run
        # from its first event without waiting for the reply
        self._emit_run(execution_id, "queued", request_id=msg.request_id)
        self._save(record)
        run.future = self._executor.submit(self._run_thread, run)
        run.future.add_done_callback(lambda f, eid=execution_id: self._run_thread_done(eid, f))
        return reply_to(msg, Accepted, execution_id=execution_id, state=record.state.value)

    def _run_thread_done(self, execution_id: str, future: Future) -> None:
        """Belt and braces: a run thread that died without reporting still ends its run."""
        if future.cancelled() or future.exception() is None:
            return
        exc = future.exception()
        message = f"run thread crashed: {type(exc).__name__}: {exc}"
        tb = "".join(traceback.format_exception(exc))
        self.post(("finished", execution_id, "failed", message, None, message, tb))

    def _handle_status(self, msg: Status):
        server = self._server_info()
        if msg.execution_id:
            record = self.runs.get(msg.execution_id)
            if record is None:
                # an older run (of this or an earlier server) is still known to the history
                stored = self.history.get(msg.execution_id) if self.history is not None else None
                if stored is not None:
                    return reply_to(msg, StatusReply, status="ok", execution_id=msg.execution_id,
                                    execution=stored, server=server, message="from the run history")
                return reply_to(msg, StatusReply, status="not_found", execution_id=msg.execution_id,
                                server=server, message=f"no run {msg.execution_id!r} on this server")
            return reply_to(msg, StatusReply, status="ok", execution_id=msg.execution_id,
                            execution=record.to_dict(), server=server)
        records = self.runs.records()
        finished = [r for r in records if r.is_terminal][-MAX_FINISHED_IN_STATUS:]
        shown = [r for r in records if not r.is_terminal or r in finished]
        executions = []
        for r in shown:
            data = r.to_dict()
            data.pop("results", None)
            data.pop("traceback", None)
            executions.append(data)
        return reply_to(msg, StatusReply, status="ok", executions=executions, server=server)

    def _handle_cancel(self, msg: Cancel):
        record = self.runs.get(msg.execution_id)
        if record is None:
            return reply_to(msg, CancelReply, status="not_found", execution_id=msg.execution_id,
                            message=f"no run {msg.execution_id!r} on this server")
        if record.is_terminal:
            return reply_to(msg, CancelReply, status="ok", execution_id=msg.execution_id,
                            state=record.state.value, message=f"run already {record.state.value}")
        axes = None if msg.axis_ids is None else tuple(a.strip().upper() for a in msg.axis_ids)
        self._cancel(msg.execution_id, axes, msg.force, msg.grace_seconds)
        # the run's real state: 'cancelling' for the whole run (or already 'cancelled' if
        # it was queued); a cancel of some wells leaves the run 'running'
        state = self.runs.get(msg.execution_id).state.value
        what = f"wells {', '.join(axes)}" if axes else "the run"
        return reply_to(msg, CancelReply, status="ok", execution_id=msg.execution_id,
                        state=state, axis_ids=list(axes) if axes else None,
                        force=msg.force, message=f"cancellation of {what} requested")

    def _handle_events(self, msg: Events):
        eid = msg.execution_id
        record = self.runs.get(eid)
        if record is None and eid not in self.events:
            return reply_to(msg, EventsReply, status="not_found", execution_id=eid,
                            message=f"no run {eid!r} on this server")
        try:
            events = self.events.since(eid, msg.from_seq)
        except EventsExpired as exc:
            return reply_to(msg, EventsReply, status="expired", execution_id=eid,
                            last_seq=self.events.last_seq(eid), message=str(exc))
        return reply_to(msg, EventsReply, status="ok", execution_id=eid,
                        events=events[:MAX_EVENTS_PER_REPLY], last_seq=self.events.last_seq(eid),
                        terminal=record is not None and record.is_terminal)

    def _handle_functions(self, msg: Functions):
        """The catalog, built once in a background thread (``building`` until then)."""
        try:
            found = self.catalog.lookup(msg.search, msg.category)
        except RuntimeError as exc:
            return reply_to(msg, FunctionsReply, status="failed", message=str(exc))
        if found is None:
            return reply_to(msg, FunctionsReply, status="building", message="the function catalog is being built")
        return reply_to(msg, FunctionsReply, status="ok", functions=found, total=self.catalog.total)

    def _handle_shutdown(self, msg: Shutdown):
        ids = self._begin_shutdown(force=False, grace=msg.grace_seconds)
        return reply_to(msg, ShutdownReply, cancelled=ids)

    def _handle_kill(self, msg: Kill):
        ids = self._begin_shutdown(force=True, grace=0.0)
        self.request_stop()
        return reply_to(msg, ShutdownReply, cancelled=ids)

    # ------------------------------------------------------------------ cancellation
    def _cancel(self, execution_id: str, axes: tuple[str, ...] | None, force: bool,
                grace: float | None) -> None:
        """Record the cancel (state), hand it to the orchestrator if one exists yet, else
        keep it pending: the run thread applies it as soon as it builds the orchestrator,
        so a cancel during queueing or compiling still takes effect."""
        self.runs.handle(CancelRequested(execution_id, time.time(), axes, force))
        run = self.active_executions.get(execution_id)
        if run is None:
            return
        with run.lock:
            if axes is None:
                run.cancel_all = True
            else:
                run.cancel_axes.update(axes)
            run.force = run.force or force
            run.grace = grace if grace is not None else run.grace
            orch = run.orchestrator
        if axes is None:
            self._emit_run(execution_id, "cancelling")
        if orch is not None:
            orch.cancel(None if axes is None else list(axes), force=force, grace=grace)
        elif axes is None and run.future is not None and run.future.cancel():
            self._finish(execution_id, "cancelled", "cancelled before it started", None, None, None)

    def _begin_shutdown(self, force: bool, grace: float) -> list[str]:
        self._shutting_down = True
        self._shutdown_deadline = time.monotonic() + grace + SHUTDOWN_EXTRA_SECONDS
        ids = list(self.active_executions)
        for eid in ids:
            if not self.runs.get(eid).is_terminal:
                self._cancel(eid, None, force, grace)
        if not self.active_executions:
            self.request_stop()
        return ids

    # ------------------------------------------------------------------ run threads
    def _run_thread(self, run: _Run) -> None:
        eid, msg = run.execution_id, run.request
        self.post(("started", eid, time.time()))
        orch = None
        status, message, results, error, tb = "failed", "", None, None, None
        try:
            from openhcs.codegen import load_pipeline_code
            from openhcs.core.orchestrator.orchestrator import PipelineOrchestrator

            steps = load_pipeline_code(msg.pipeline_code)
            global_config, pipeline_config = self._configs(msg)
            resolved = (pipeline_config.resolve(global_config) if pipeline_config else global_config)
            pool = self._shared_pool(resolved) if resolved.mode == "processes" else None
            if pool is not None:
                _lower_priority(pool.pids())

            def progress(axis_id: str, step: str, state: str, metadata: dict) -> None:
                self.send_progress_update(eid, axis_id, step, state, metadata)

            orch = PipelineOrchestrator(msg.plate_id, global_config, pipeline_config,
                                        progress_callback=progress, worker_pool=pool)
            with run.lock:
                run.orchestrator = orch
                if run.cancel_all:
                    orch.cancel(None, force=run.force, grace=run.grace)
                if run.cancel_axes:
                    orch.cancel(sorted(run.cancel_axes), force=run.force, grace=run.grace)
            compiled = orch.compile_pipelines(steps, msg.wells)
            self.post(("planned", eid, compiled.wells, len(compiled.pipeline), time.time()))
            result = orch.execute_compiled_plate(compiled)
            status, results = result.status, result.to_dict()
            message = _result_message(results)
            if status == "failed":
                error = "; ".join(f"{w}: {e}" for w, e in _well_errors(results).items())[:2000] or None
        except BaseException as exc:  # incl. SystemExit/KeyboardInterrupt raised by user code
            status, message = "failed", f"{type(exc).__name__}: {exc}"
            error, tb = message, traceback.format_exc()
            log.warning("run %s failed: %s", eid, message)
        finally:
            if orch is not None:
                try:
                    orch.shutdown()
                except Exception:
                    log.exception("orchestrator shutdown failed")
            self.post(("finished", eid, status, message, results, error, tb))

    def _configs(self, msg: Execute):
        from openhcs.core.config import GlobalPipelineConfig, PipelineConfig

        if msg.config_code:
            from openhcs.codegen import load_config_code

            global_config, pipeline_config = load_config_code(msg.config_code)
        elif msg.config_params:
            params = dict(msg.config_params)
            nested = params.pop("pipeline_config", None)
            params = params.pop("global_config", params)
            global_config = GlobalPipelineConfig(**params)
            pipeline_config = PipelineConfig(**nested) if nested else None
        else:
            global_config, pipeline_config = None, None
        if global_config is None:
            defaults = {}
            if self.num_workers:
                defaults["num_workers"] = self.num_workers
            if self.mode:
                defaults["mode"] = self.mode
            if self.dask_scheduler:
                defaults["dask_scheduler"] = self.dask_scheduler
            global_config = GlobalPipelineConfig(**defaults)
        resolved = pipeline_config.resolve(global_config) if pipeline_config else global_config
        if resolved.mode == "dask" and resolved.dask_scheduler is None and self.dask_scheduler:
            # the cluster belongs to the server, not to the client
            global_config = dataclasses.replace(global_config, dask_scheduler=self.dask_scheduler)
        return global_config, pipeline_config

    def _shared_pool(self, config):
        """The one warm worker pool, created at the first process-mode run."""
        with self._pool_lock:
            if self._pool is None or self._pool.closed:
                from openhcs.core.executors.process_pool import WorkerPool

                self._pool = WorkerPool(self.num_workers or config.num_workers)
            return self._pool

    def send_progress_update(self, execution_id: str, axis_id: str, step: str, status: str,
                             metadata: dict | None = None) -> None:
        """The orchestrator's progress callback, bound to a run (any thread, never blocks):
        numbered, recorded and published by the loop thread."""
        self.post(("progress", execution_id, axis_id, step, status, metadata, time.time()))

    # ------------------------------------------------------------------ loop side
    def handle_posted(self, item) -> None:
        kind = item[0]
        if kind == "progress":
            _, eid, axis_id, step, status, metadata, at = item
            self._on_progress(eid, axis_id, step, status, metadata, at)
        elif kind == "started":
            _, eid, at = item
            record = self.runs.get(eid)
            if record is not None and record.started_at is None and not record.is_terminal:
                self._save(self.runs.handle(Started(eid, at)))
                self._emit_run(eid, "started")
        elif kind == "planned":
            _, eid, wells, total_steps, at = item
            record = self.runs.get(eid)
            if record is not None and not record.is_terminal:
                self._save(self.runs.handle(Planned(eid, at, tuple(wells), total_steps)))
                self._emit_run(eid, "planned", summary={"wells": list(wells), "total_steps": total_steps})
        elif kind == "finished":
            self._finish(*item[1:])

    def _on_progress(self, eid, axis_id, step, status, metadata, at) -> None:
        metadata = metadata or {}
        event = {
            "type": "progress", "msg_id": new_id(), "request_id": "", "version": 1,
            "timestamp": at, "execution_id": eid, "axis_id": axis_id, "well_id": axis_id,
            "step": step, "status": status, "metadata": metadata,
        }
        self.events.append(eid, event)
        try:
            self.runs.handle(WellProgress(eid, at, axis_id, step, status, metadata))
        except Exception as exc:  # a late event for a finished/forgotten run
            log.debug("progress for %s not recorded: %s", eid, exc)
        self.publish(eid.encode(), event)

    def _emit_run(self, eid: str, status: str, **fields: Any) -> dict:
        event = {
            "type": "run", "msg_id": new_id(), "request_id": "", "version": 1,
            "timestamp": time.time(), "execution_id": eid, "status": status, "step": "run",
            **{k: v for k, v in fields.items() if v is not None},
        }
        seq = self.events.append(eid, event)
        if status in ("complete", "failed", "cancelled"):
            event["final_seq"] = seq
        self.publish(eid.encode(), event)
        return event

    def _finish(self, eid, status, message, results, error, tb) -> None:
        record = self.runs.get(eid)
        if record is None or record.is_terminal:
            return
        metrics = (results or {}).get("metrics") if results else None
        record = self.runs.handle(Finished(eid, time.time(), status, message or "", results,
                                           error, tb, metrics))
        self._emit_run(eid, status, message=message or "", error=error, traceback=tb,
                       summary=record.progress())
        self.active_executions.pop(eid, None)
        self._save(record)
        for old in self.runs.pop_evicted():
            self.events.drop(old)
        if self._shutting_down and not self.active_executions:
            self.request_stop()

    def _save(self, record) -> None:
        if self.history is not None:
            self.history.save(record, os.getpid())

    def on_tick(self) -> None:
        if self.parent_pid and os.getppid() != self.parent_pid and not self._shutting_down:
            log.warning("parent process %d is gone; shutting down", self.parent_pid)
            self._begin_shutdown(force=True, grace=0.0)
        if self._shutdown_deadline is not None and time.monotonic() > self._shutdown_deadline:
            log.warning("runs did not finish within the shutdown grace period; stopping anyway")
            self.request_stop()

    def on_stop(self) -> None:
        """Cancel what still runs, wait (bounded) for run threads, close the pool."""
        for eid, run in list(self.active_executions.items()):
            with run.lock:
                orch = run.orchestrator
            if orch is not None:
                orch.cancel(None, force=True, grace=0.0)
            elif run.future is not None and run.future.cancel():
                self._finish(eid, "cancelled", "server stopped before the run started", None, None, None)
        futures = [r.future for r in self.active_executions.values() if r.future is not None]
        if futures:
            wait_futures(futures, timeout=SHUTDOWN_EXTRA_SECONDS)
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._drain_posted(limit=None)  # final events of runs that just ended (state + history)
        for eid in list(self.active_executions):  # run threads stuck in user code
            self._finish(eid, "cancelled", "server stopped before the run finished", None, None, None)
        with self._pool_lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None
        dask_backend = sys.modules.get("openhcs.core.executors.dask_backend")
        if dask_backend is not None:  # shared Dask clients/clusters, only if Dask was used
            try:
                dask_backend.close_shared_clients()
            except Exception:
                log.exception("closing Dask clients failed")
        if self.history is not None:
            self.history.close()
        self.catalog.close()

    def _server_info(self) -> dict[str, Any]:
        active, queued = self.counts()
        with self._pool_lock:
            pool = self._pool
        return {
            "pid": os.getpid(), "port": self.port, "control_port": self.control_port,
            "uptime_s": round(time.time() - self.started_at, 3), "active_runs": active,
            "queued_runs": queued, "max_concurrent_runs": self.max_concurrent_runs,
            "num_workers": self.num_workers, "worker_pids": pool.pids() if pool is not None else [],
            "persistent": self.persistent, "shutting_down": self._shutting_down,
            "mode": self.mode, "dask_scheduler": self.dask_scheduler,
        }


def _well_errors(results: dict) -> dict[str, str]:
    return {w: o.get("error") for w, o in (results.get("wells") or {}).items()
            if o.get("status") == "failed" and o.get("error")}


def _result_message(results: dict) -> str:
    return (f"{len(results.get('completed', []))} complete, {len(results.get('failed', []))} failed, "
            f"{len(results.get('cancelled', []))} cancelled")


def _lower_priority(pids: list[int]) -> None:
    """Raise the niceness of worker processes (once each; unprivileged and harmless)."""
    import psutil

    own = psutil.Process().nice()
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            if proc.nice() < own + WORKER_NICE_INCREMENT:
                proc.nice(own + WORKER_NICE_INCREMENT)
        except (psutil.Error, OSError):
            pass
