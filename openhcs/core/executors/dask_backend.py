"""Run wells as Dask tasks: scale-out to a cluster with the same progress and cancel.

One Dask task per well (``client.submit(run_remote, task, pure=False)``); the task runs
:func:`~openhcs.core.well_runner.run_well` on a worker, so measurements and outputs are
exactly those of local runs. The ``WellOutcome`` is the future's result, and is also sent
over the progress channel right after the well's last event: the backend normally has it
before Dask reports the task done, and a worker lost after finishing a well cannot make
Dask rerun it (the future is released as soon as the outcome is in). The plate and
output folders must be at the same path on every worker.

Progress and cancellation do not ride on Dask messages (a scheduler hop each; see
:mod:`openhcs.core.executors.dask_progress` for the numbers): each task connects back to a
per-run ZeroMQ channel, so ``on_event`` sees the same seed events, in the same order per
well, as with local workers, and a cancel reaches a running step's ``checkpoint()`` in
well under a millisecond. One thread (the channel's) calls ``on_event`` and ``on_done``,
so a well's terminal event always comes before its ``on_done``, exactly once.

Lost workers: the scheduler reruns a task whose worker died. Dask's own limit
(``allowed-failures``) counts every task that was merely *assigned* to a dying worker, so
an innocent well waiting there could be failed; the backend counts instead the attempts
that actually started (each says hello on the channel): a well that loses its worker
once runs again elsewhere, and one that loses a second worker is reported ``failed``
with that worker's address. Dask's limit stays as a backstop (a task lost before it
could start). A forced cancel (:meth:`DaskBackend.kill`) releases the task and restarts
only the worker process running it, through its nanny.

Clusters and clients are expensive to start (~1-2 s), so :func:`get_shared_client` keeps
one per scheduler address (or one local cluster per size) for the whole process; a server
calls :func:`close_shared_clients` at shutdown.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

try:
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError as exc:  # an optional dependency: say how to get it
    raise ImportError("mode='dask' needs Dask distributed: pip install 'openhcs[dask]'") from exc

from openhcs.core import progress
from openhcs.core.config import GlobalPipelineConfig
from openhcs.core.executors.base import OnDone, OnEvent, WellBackend
from openhcs.core.executors.dask_progress import (
    UNREACHABLE,
    ChannelUnreachable,
    Hub,
    WorkerLink,
    channel_host_for,
)
from openhcs.core.well_runner import WellOutcome, WellTask, run_well

log = logging.getLogger(__name__)

#: a finished task's outcome waits this long for its terminal event to arrive
FLUSH_GRACE_S = 5.0
#: how long a forced cancel waits for the nanny to bring the worker back
RESTART_TIMEOUT_S = 60.0
#: how long fetching a finished task's result may take (only when the channel did not
#: deliver the outcome, e.g. a worker that cannot reach it)
RESULT_TIMEOUT_S = 60.0
#: a well whose worker is lost runs at most this many times in all (one retry)
MAX_STARTS = 2
#: Dask settings for the local clusters started here (docs/scale-out.md gives them for
#: real clusters). A worker is sent a well only when its thread is free, so fewer wells
#: wait on a worker that may die (Dask would count them as suspicious). And the nanny's
#: default ``MALLOC_TRIM_THRESHOLD_=65536`` is dropped: it makes every large numpy
#: temporary a fresh mmap with page faults, which made the demo pipeline's steps ~1.5x
#: slower than in the process pool (measured on 2 cores). The statistical profiler (a
#: stack sample every 10 ms, under the GIL) feeds only the dashboard, which is off here.
LOCAL_SCHEDULER_CONFIG = {
    "distributed.scheduler.worker-saturation": 1.0,
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.worker.profile.enabled": False,
}


# ------------------------------------------------------------ shared clients
@dataclass
class _Shared:
    client: Any
    cluster: Any = None


_shared: dict[str, _Shared] = {}
_shared_lock = threading.Lock()


def get_shared_client(address: str | None = None, n_workers: int = 2) -> Any:
    """The process-wide client for ``address``, or for a local cluster of ``n_workers``.

    A local cluster uses worker processes (one thread each, no dashboard) and is started
    on first use, then reused by every later run in this process.
    """
    from distributed import Client, LocalCluster

    key = address or f"local:{n_workers}"
    with _shared_lock:
        entry = _shared.get(key)
        if entry is not None and entry.client.status == "running":
            return entry.client
        if entry is not None:
            _close_entry(entry)
        if address:
            entry = _Shared(Client(address, set_as_default=False))
        else:
            import dask

            with dask.config.set(LOCAL_SCHEDULER_CONFIG):
                cluster = LocalCluster(
                    n_workers=n_workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                )
            client = Client(cluster, set_as_default=False)
            client.register_plugin(_LocalWorkerSetup(), name="openhcs-local-worker")
            entry = _Shared(client, cluster)
        _shared[key] = entry
        return entry.client


class _LocalWorkerSetup(WorkerPlugin):
    """Local workers behave like the process pool's: they yield the CPU to the server
    (nice) and import the processing functions before the first well. Runs again on every
    worker a nanny restarts."""

    def setup(self, worker: Any) -> None:
        from openhcs.core.executors.process_pool import WORKER_NICE_INCREMENT
        from openhcs.processing.registry import load_builtins

        with contextlib.suppress(OSError):
            os.nice(WORKER_NICE_INCREMENT)
        try:
            load_builtins()
        except Exception:  # a broken plugin must not stop the worker; its wells report it
            log.exception("preloading processing functions failed")


def close_shared_clients() -> None:
    """Close every shared client and local cluster; their worker processes are joined."""
    with _shared_lock:
        entries = list(_shared.values())
        _shared.clear()
    for entry in entries:
        _close_entry(entry)


def _close_entry(entry: _Shared) -> None:
    try:
        entry.client.close()
    except Exception:
        log.exception("closing a Dask client failed")
    if entry.cluster is not None:
        try:
            entry.cluster.close()  # closes the nannies, which join their worker processes
        except Exception:
            log.exception("closing a local Dask cluster failed")


# ------------------------------------------------------------ the worker task
def run_remote(task: WellTask, channel: str, token: str) -> WellOutcome:
    """The Dask task: run one well on this worker, streaming progress to ``channel``."""
    from distributed import get_worker

    pid = os.getpid()
    try:
        worker = get_worker().address
    except ValueError:  # run outside a worker (e.g. a debugging call)
        worker = ""
    link = WorkerLink(channel, token, task.well, secrets.token_hex(6))
    try:
        try:
            link.hello(pid, worker)
        except ChannelUnreachable as exc:
            return WellOutcome(well=task.well, status=progress.FAILED, error=str(exc), worker=worker)
        outcome = run_well(task, link.emit, link.is_cancelled)
        outcome.worker = f"{worker} pid {pid}"
        link.send_outcome(dataclasses.asdict(outcome))
        return outcome
    finally:
        link.close()


# ------------------------------------------------------------ the backend
@dataclass
class _Well:
    task: WellTask
    on_event: OnEvent
    on_done: OnDone
    future: Any = None
    cancelled: bool = False
    attempt: str | None = None
    attempts: int = 0
    pid: int | None = None
    worker: str = ""
    step: str | None = None
    terminal: bool = False  # a terminal event has been emitted
    done: bool = False  # on_done has been called
    killed: bool = False
    outcome: WellOutcome | None = None  # a result waiting for its terminal event
    flush_by: float | None = None
    retry_note: dict[str, Any] | None = None  # added to a retried well's "started" event


class DaskBackend(WellBackend):
    """Runs one orchestrator run's wells on a Dask cluster."""

    can_kill = True

    def __init__(self, client: Any = None, config: GlobalPipelineConfig | None = None) -> None:
        config = config or GlobalPipelineConfig(mode="dask")
        self.client = client or get_shared_client(config.dask_scheduler, config.num_workers)
        self.run_id = secrets.token_hex(4)
        self._lock = threading.Lock()
        self._wells: dict[str, _Well] = {}
        self._closed = False
        # the channel listens on the interface that routes to the scheduler, which the
        # workers reach too (a client passed in may point at a remote cluster)
        self._scheduler = config.dask_scheduler or getattr(self.client.scheduler, "address", None)
        self.hub = Hub(
            channel_host_for(self._scheduler),
            secrets.token_hex(16),
            on_message=self._on_message,
            on_command=self._on_command,
            on_tick=self._flush_overdue,
            next_deadline=self._next_deadline,
        )

    # ------------------------------------------------------------- interface
    def submit(self, task: WellTask, on_event: OnEvent, on_done: OnDone) -> None:
        state = _Well(task, on_event, on_done)
        with self._lock:
            self._wells[task.well] = state
        try:
            future = self.client.submit(
                run_remote,
                task,
                self.hub.address,
                self.hub.token,
                key=f"openhcs-{self.run_id}-{task.well}",
                pure=False,
            )
        except Exception as exc:  # e.g. the scheduler is gone
            self.hub.post(("failed", task.well, f"could not submit the well to Dask: {exc}"))
            return
        with self._lock:
            state.future = future
        future.add_done_callback(lambda f, _well=task.well: self._future_done(_well, f))

    def cancel(self, axis_id: str) -> None:
        with self._lock:
            state = self._wells.get(axis_id)
            if state is None or state.done:
                return
            state.cancelled = True
            running, future = state.attempt is not None, state.future
        if running:
            self.hub.post(("cancel", axis_id))
        elif future is not None:
            future.cancel()  # never started: Dask drops it; the done callback reports it

    def kill(self, axis_id: str) -> int | None:
        with self._lock:
            state = self._wells.get(axis_id)
            if state is None or state.done or state.terminal or state.pid is None:
                return None
            state.killed = True
            pid, worker, future = state.pid, state.worker, state.future
        if future is not None:
            future.cancel()  # released first, so losing its worker does not reschedule it
        try:  # the nanny kills the worker process and starts a fresh one
            status = self.client.restart_workers([worker], timeout=RESTART_TIMEOUT_S).get(worker)
            how = "was restarted" if status == "OK" else f"restart: {status}"
        except Exception as exc:
            how = f"could not be restarted: {exc}"
            log.error("could not restart Dask worker %s: %s", worker, exc)
        reason = f"well ignored cancellation; Dask worker {worker} (pid {pid}) {how}"
        log.warning("well %s: %s", axis_id, reason)
        self.hub.post(("killed", axis_id, reason))
        return pid

    def pids(self) -> dict[str, int]:
        with self._lock:
            return {
                w: s.pid for w, s in self._wells.items()
                if s.pid is not None and s.attempt is not None and not s.done
            }

    def close(self) -> None:
        """Stop the progress thread; release any task still known (the client stays)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            leftovers = [s.future for s in self._wells.values() if s.future is not None and not s.done]
            for state in self._wells.values():
                state.future = None  # dropping the futures lets Dask free the results
        try:
            if leftovers:
                self.client.cancel(leftovers)
        except Exception as exc:  # e.g. the scheduler is gone: nothing left to release
            log.warning("could not release %d Dask tasks: %s", len(leftovers), exc)
        finally:
            self.hub.stop()

    # ------------------------------------------------------- Dask's thread
    def _future_done(self, well: str, future: Any) -> None:
        with self._lock:
            state = self._wells.get(well)
            if state is None or state.done:
                return  # normally: the outcome came over the channel already
        status = future.status
        if status == "finished":
            try:
                self.hub.post(("outcome", well, future.result(timeout=RESULT_TIMEOUT_S)))
                return
            except Exception as exc:
                if future.status == "finished":
                    self.hub.post(("failed", well, f"could not fetch the well's result: {exc}"))
                    return
                status = future.status
        if status == "error":
            self.hub.post(("failed", well, _error_reason(well, future.exception())))
        elif status == "cancelled":
            self.hub.post(("gone", well))
        else:  # "lost"/"pending": its worker died holding the result; Dask runs it again
            future.add_done_callback(lambda f: self._future_done(well, f))

    # --------------------------------------------------- the hub's thread
    def _on_message(self, attempt: str, msg: dict[str, Any]) -> None:
        well = msg.get("w")
        kind = msg.get("k")
        with self._lock:
            state = self._wells.get(well) if isinstance(well, str) else None
            if state is None:
                return
            if kind == "hello":
                retry_of = state.worker if state.attempt is not None and not state.terminal else None
                lost = None
                if retry_of is not None and state.attempts >= MAX_STARTS and not state.done:
                    lost = _lost_reason(retry_of, well, state.attempts)
                state.attempt, state.attempts = attempt, state.attempts + 1
                state.pid, state.worker = msg.get("pid"), str(msg.get("worker", ""))
                cancelled = state.cancelled or state.killed or state.done or lost is not None
                attempts = state.attempts
                if attempts > 1:
                    state.retry_note = {"attempt": attempts, "previous_worker": retry_of}
            elif kind == "ev":
                if attempt != state.attempt or state.terminal or state.killed or state.done:
                    return
            elif kind == "done":
                if attempt != state.attempt or state.killed or state.done:
                    return
            else:
                return
        if kind == "hello":
            self.hub.send(attempt, {"k": "ack", "cancelled": cancelled})
            if lost is not None:  # this attempt is told to stop at once; its result is ignored
                log.error("well %s: %s", well, lost)
                self._finish(state, WellOutcome(well=well, status=progress.FAILED, error=lost),
                             (progress.FAILED, {"error": lost, "traceback": None, "step": state.step}))
            elif retry_of is not None:
                log.warning("well %s: worker %s lost; retrying (attempt %d)", well, retry_of, attempts)
            return
        if kind == "done":
            try:
                outcome = WellOutcome(**msg["o"])
            except (KeyError, TypeError) as exc:
                log.warning("well %s: unreadable outcome on the channel (%s); using Dask's", well, exc)
                return
            self._outcome(state, outcome)
            return
        step, status, meta = str(msg.get("s")), str(msg.get("st")), msg.get("m") or {}
        note = state.retry_note
        if note and step == progress.PIPELINE and status == progress.STARTED:
            meta = {**meta, **note}
        self._emit(state, step, status, meta)

    def _emit(self, state: _Well, step: str, status: str, meta: dict[str, Any]) -> None:
        terminal = progress.is_terminal_well_event(step, status)
        with self._lock:
            if state.terminal:
                return
            if step != progress.PIPELINE and status == progress.STARTED:
                state.step = step
            state.terminal = terminal
            ready = terminal and state.outcome is not None
        state.on_event(state.task.well, step, status, meta)
        if ready:
            self._finish(state, state.outcome)

    def _on_command(self, command: tuple) -> None:
        kind, well = command[0], command[1]
        with self._lock:
            state = self._wells.get(well)
            if state is None or state.done:
                return
            attempt = state.attempt
        if kind == "cancel":
            if attempt is not None:
                self.hub.send(attempt, {"k": "cancel"})
        elif kind == "outcome":
            self._outcome(state, command[2])
        elif kind == "failed":
            if state.killed:
                return  # the kill reports this well
            reason = command[2]
            self._finish(state, WellOutcome(well=well, status=progress.FAILED, error=reason),
                         (progress.FAILED, {"error": reason, "traceback": None, "step": state.step}))
        elif kind == "gone":  # the future was cancelled
            if state.killed:
                return
            if state.cancelled:
                self._finish(state, None)
            else:
                reason = (
                    "Dask cancelled the task" if self.client.status == "running"
                    else f"lost the connection to the Dask scheduler {self._scheduler}"
                )
                self._finish(state, WellOutcome(well=well, status=progress.FAILED, error=reason),
                             (progress.FAILED, {"error": reason, "traceback": None, "step": state.step}))
        elif kind == "killed":
            reason = command[2]
            meta = {"step": state.step, "forced": True, "pid": state.pid, "worker": state.worker,
                    "reason": reason}
            self._finish(state, WellOutcome(well=well, status=progress.CANCELLED, error=reason,
                                            failed_step=state.step, worker=state.worker),
                         (progress.CANCELLED, meta))

    def _outcome(self, state: _Well, outcome: WellOutcome) -> None:
        if state.killed:
            return
        if outcome.error and outcome.error.startswith(UNREACHABLE):
            self._fail_unstarted(outcome.error)  # every other well would wait as long
            self._finish(state, outcome)
            return
        with self._lock:
            if not state.terminal:  # its last events are still on the way: wait a little
                state.outcome = outcome
                state.flush_by = time.monotonic() + FLUSH_GRACE_S
                return
        self._finish(state, outcome)

    def _finish(self, state: _Well, outcome: WellOutcome | None,
                event: tuple[str, dict[str, Any]] | None = None) -> None:
        """Report a well's end once: its terminal event (unless already sent), then on_done.

        ``outcome=None`` means "cancelled before it started"; the orchestrator emits that
        well's cancelled event itself, so None is passed on only if nothing was emitted.
        """
        with self._lock:
            if state.done:
                return
            state.done = True
            already = state.terminal
            state.terminal = True
            state.outcome, state.flush_by = None, None
            state.future = None  # released: Dask will not rerun a finished well
        if not already and state.attempt is not None and not state.killed:
            self.hub.send(state.attempt, {"k": "cancel"})  # a task still running stops early
        if outcome is None:
            if already:
                outcome = WellOutcome(well=state.task.well, status=progress.CANCELLED)
        elif not already:
            status, meta = event or _terminal_for(outcome)
            state.on_event(state.task.well, progress.PIPELINE, status, meta)
        state.on_done(outcome)

    def _fail_unstarted(self, reason: str) -> None:
        with self._lock:
            unstarted = [s for s in self._wells.values() if s.attempt is None and not s.done]
            for state in unstarted:
                state.killed = True  # its future's own end is not reported again
        futures = [s.future for s in unstarted if s.future is not None]
        if futures:
            self.client.cancel(futures)
        for state in unstarted:
            outcome = WellOutcome(well=state.task.well, status=progress.FAILED, error=reason)
            self._finish(state, outcome, (progress.FAILED, {"error": reason, "traceback": None, "step": None}))

    def _flush_overdue(self) -> None:
        now = time.monotonic()
        with self._lock:
            overdue = [s for s in self._wells.values() if s.flush_by is not None and s.flush_by <= now]
        for state in overdue:
            log.warning("well %s: its last progress events never arrived", state.task.well)
            self._finish(state, state.outcome)

    def _next_deadline(self) -> float | None:
        with self._lock:
            return min((s.flush_by for s in self._wells.values() if s.flush_by is not None), default=None)


def _terminal_for(outcome: WellOutcome) -> tuple[str, dict[str, Any]]:
    if outcome.status == "complete":
        return progress.COMPLETED, {"duration_s": round(outcome.duration_s, 4), "outputs": len(outcome.outputs)}
    if outcome.status == progress.CANCELLED:
        return progress.CANCELLED, {"step": outcome.failed_step}
    return progress.FAILED, {"error": outcome.error, "traceback": outcome.traceback, "step": outcome.failed_step}


def _lost_reason(worker: str, well: str, tries: int) -> str:
    return f"worker {worker} lost while running well {well} (tried on {tries} worker(s))"


def _error_reason(well: str, exc: BaseException | None) -> str:
    from distributed.scheduler import KilledWorker

    if isinstance(exc, KilledWorker):
        return _lost_reason(exc.last_worker.address, well, exc.allowed_failures + 1)
    return f"the Dask task failed: {type(exc).__name__}: {exc}"
