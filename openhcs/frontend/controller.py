"""The plate manager's controller, shared by the Qt and Textual front ends (no UI imports).

It owns the plate list, the pipeline choice, the run progress of each plate, the stop
sequence and the results; front ends render it and call its methods. Its state changes
only on the UI thread: messages from the client's listener thread arrive through
``dispatcher.call_soon``, blocking requests run through ``dispatcher.run_background``
(see :mod:`openhcs.frontend.dispatch`). After every change it emits ``changed(topic,
detail)`` with topic ``plates``, ``pipeline``, ``progress``, ``results``, ``stop`` or
``status``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from openhcs.frontend.dispatch import Dispatcher
from openhcs.frontend.execution import SubprocessExecution, ZmqExecution, use_zmq_execution
from openhcs.frontend.pipelines import PipelineChoice, choose
from openhcs.frontend.plates import PlateEntry, PlateList, read_plate
from openhcs.frontend.progress import RunProgress
from openhcs.frontend.results import ResultsTable, read_summary
from openhcs.frontend.signals import Signal
from openhcs.frontend.stop import OFFER_FORCE, POLL, StopSequence

log = logging.getLogger(__name__)


class PlateManagerController:
    def __init__(self, dispatcher: Dispatcher, host: str = "localhost", port: int = 7777,
                 global_config=None, use_zmq: bool | None = None, persistent: bool = False,
                 stop_timeout: float = 5.0, poll_interval: float = 0.25, watch_interval: float = 2.0,
                 clock: Callable[[], float] = time.monotonic, legacy_work_dir: str | Path | None = None):
        self.dispatcher = dispatcher
        self.host, self.port, self.persistent = host, port, persistent
        self.global_config = global_config
        self._use_zmq = use_zmq
        self.stop_timeout, self.poll_interval = stop_timeout, poll_interval
        self.watch_interval = watch_interval
        self._watching = False
        self._watch_inflight: set[str] = set()  # one liveness request per run at a time
        self.closed = False
        self.clock = clock
        self.legacy_work_dir = legacy_work_dir
        self.plates = PlateList()
        self.pipeline = PipelineChoice()
        self.runs: dict[Path, RunProgress] = {}
        self.results: dict[Path, ResultsTable] = {}
        self.current_execution_id: str | None = None
        self.stop_sequence: StopSequence | None = None
        self.status = "Add a plate to begin."
        self.changed = Signal()
        self._zmq: ZmqExecution | None = None
        self._legacy: SubprocessExecution | None = None
        self._backend_of: dict[str, Any] = {}
        self._plate_of: dict[str, Path] = {}
        self._early: dict[str, list[dict]] = {}  # messages that beat their submit reply

    # ------------------------------------------------------------------ helpers
    @property
    def use_zmq(self) -> bool:
        return use_zmq_execution() if self._use_zmq is None else self._use_zmq

    def _emit(self, topic: str, detail: Any = None) -> None:
        self.changed.emit(topic, detail)

    def _say(self, text: str) -> None:
        self.status = text
        self._emit("status", text)

    def _on_listener_message(self, msg: dict) -> None:
        """Called on the client's listener (or tail) thread: hop to the UI thread."""
        self.dispatcher.call_soon(lambda: self.handle_message(msg))

    def zmq_backend(self) -> ZmqExecution:
        if self.closed:
            raise RuntimeError("the plate manager is closed")
        if self._zmq is None:
            self._zmq = ZmqExecution(self._on_listener_message, self.host, self.port, self.persistent)
        return self._zmq

    def legacy_backend(self) -> SubprocessExecution:
        if self._legacy is None:
            self._legacy = SubprocessExecution(self._on_listener_message, self.legacy_work_dir)
        return self._legacy

    # ------------------------------------------------------------------ plates and pipeline
    def add_plate(self, path: str | Path) -> PlateEntry:
        entry = read_plate(path)
        self.plates.add(entry)
        self._say(f"Added {entry.describe()}" if not entry.error else f"Cannot read plate: {entry.error}")
        self._emit("plates", entry.path)
        return entry

    def remove_plate(self, path: str | Path) -> None:
        entry = self.plates.remove(path)
        if entry is not None:
            self._say(f"Removed {entry.name}")
            self._emit("plates", entry.path)

    def set_pipeline(self, path: str | Path | None) -> bool:
        try:
            self.pipeline = choose(path)
        except Exception as exc:
            self._say(f"Cannot load pipeline {path}: {exc}")
            return False
        self._say(f"Pipeline: {self.pipeline.label}")
        self._emit("pipeline", self.pipeline)
        return True

    def step_names(self, plate: str | Path | None = None) -> list[str]:
        entry = self.plates.get(plate) if plate else next(iter(self.plates), None)
        try:
            return self.pipeline.step_names(entry)
        except Exception as exc:
            return [f"(cannot load: {exc})"]

    # ------------------------------------------------------------------ running
    def run_plates(self, paths: list[str | Path] | None = None, wells: list[str] | None = None) -> None:
        """Run the chosen pipeline on ``paths`` (default: every readable plate)."""
        if self.use_zmq:
            self._run_plates_zmq(paths, wells)
        else:
            self._run_plates_subprocess(paths, wells)

    def _run_plates_zmq(self, paths=None, wells=None) -> None:
        self._submit(self.zmq_backend(), paths, wells)

    def _run_plates_subprocess(self, paths=None, wells=None) -> None:
        self._submit(self.legacy_backend(), paths, wells)

    def _submit(self, backend, paths, wells) -> None:
        entries = [self.plates.get(p) for p in paths] if paths else list(self.plates)
        entries = [e for e in entries if e is not None and not e.error]
        if not entries:
            self._say("No readable plate to run.")
            return
        for entry in entries:
            current = self.runs.get(entry.path)
            if current is not None and not current.finished:
                self._say(f"{entry.name} is already running.")
                continue
            try:
                steps = self.pipeline.steps_for(entry)
            except Exception as exc:
                self._say(f"Cannot load pipeline: {exc}")
                return
            progress = RunProgress.for_wells(entry.path, list(wells) if wells else entry.wells)
            self.runs[entry.path] = progress
            self.results.pop(entry.path, None)
            self._say(f"Submitting {entry.name} ({backend.kind})…")
            self._emit("progress", entry.path)
            self.dispatcher.run_background(
                lambda e=entry, s=steps: backend.submit(e.path, s, self.global_config, wells),
                on_done=lambda eid, p=progress: self._accepted(backend, p, eid),
                on_error=lambda exc, p=progress: self._submit_failed(p, exc))

    def _accepted(self, backend, progress: RunProgress, execution_id: str) -> None:
        progress.execution_id = execution_id
        if progress.state == "submitting":
            progress.state = "queued"
        self._backend_of[execution_id] = backend
        self._plate_of[execution_id] = progress.plate
        self.current_execution_id = execution_id
        self._say(f"{progress.plate.name}: accepted as run {execution_id[:8]}")
        self._emit("progress", progress.plate)
        for msg in self._early.pop(execution_id, []):
            self.handle_message(msg)
        self._start_watch()

    def _submit_failed(self, progress: RunProgress, exc: BaseException) -> None:
        progress.state = "error"
        progress.error = f"{type(exc).__name__}: {exc}"
        self._say(f"{progress.plate.name}: could not start: {progress.error}")
        self._emit("progress", progress.plate)

    def handle_message(self, msg: dict) -> None:
        """Apply one progress/run message (UI thread)."""
        eid = msg.get("execution_id")
        path = self._plate_of.get(eid)
        if path is None:
            self._early.setdefault(eid, []).append(msg)
            return
        progress = self.runs[path]
        was_finished = progress.finished
        if not progress.handle(msg):
            return
        self.status = progress.status_line()
        self._emit("progress", path)
        if progress.finished and not was_finished:
            self._finished(progress)

    def _finished(self, progress: RunProgress) -> None:
        eid = progress.execution_id
        stop = self.stop_sequence
        if stop is not None and stop.execution_id == eid and stop.active:
            self._observe_stop(progress.state)
        backend = self._backend_of[eid]

        def loaded(record: dict) -> None:
            if record.get("results"):
                progress.results = record["results"]
            progress.error = progress.error or record.get("error")
            progress.traceback = progress.traceback or record.get("traceback")
            out = (progress.results or {}).get("output_dir")
            table = read_summary(out) if out else None
            if table is not None:
                self.results[progress.plate] = table
            self._emit("results", progress.plate)

        self.dispatcher.run_background(lambda: backend.final(eid), on_done=loaded,
                                       on_error=lambda exc: log.warning("no results for %s: %s", eid, exc))

    # ------------------------------------------------------------------ liveness
    def _start_watch(self) -> None:
        if not self._watching and self.watch_interval > 0:
            self._watching = True
            self.dispatcher.call_later(self.watch_interval, self._watch)

    def _watch(self) -> None:
        """While runs are active, ask the server about each: a run that ended without us
        seeing its final event is finished from its status; a server that stopped
        answering puts its runs in ``error`` instead of leaving them "running" forever."""
        active = [(eid, self.runs[p]) for eid, p in self._plate_of.items() if not self.runs[p].finished]
        if not active or self.closed:
            self._watching = False
            return
        for eid, progress in active:
            if eid in self._watch_inflight:
                continue
            self._watch_inflight.add(eid)
            backend = self._backend_of[eid]
            self.dispatcher.run_background(
                lambda b=backend, e=eid: b.run_state(e, quick=True),
                on_done=lambda state, p=progress, e=eid: self._watched(e, p, state),
                on_error=lambda exc, p=progress, e=eid: self._lost(e, p, exc))
        self.dispatcher.call_later(self.watch_interval, self._watch)

    def _watched(self, eid: str, progress: RunProgress, state: str) -> None:
        self._watch_inflight.discard(eid)
        if progress.finished or state not in ("complete", "failed", "cancelled", "interrupted", "not_found"):
            return
        final = "cancelled" if state in ("interrupted", "not_found") else state
        self.handle_message({"type": "run", "execution_id": progress.execution_id, "status": final,
                             "message": f"run {state} (from its status)"})

    def _lost(self, eid: str, progress: RunProgress, exc: BaseException) -> None:
        self._watch_inflight.discard(eid)
        if progress.finished:
            return
        progress.state = "error"
        progress.error = f"the execution server stopped responding: {exc}"
        self._say(f"{progress.plate.name}: {progress.error}")
        self._emit("progress", progress.plate)

    # ------------------------------------------------------------------ attach
    def attach(self, execution_id: str) -> None:
        """Follow a run started elsewhere on our server; its events are replayed. A short
        id (the 8 characters the history shows) is completed from the server's runs."""
        backend = self.zmq_backend()

        def resolve_and_attach() -> dict:
            eid = execution_id
            if len(eid) < 32:
                matches = [r["execution_id"] for r in backend.runs() if r["execution_id"].startswith(eid)]
                if len(matches) != 1:
                    return {"status": "not_found" if not matches else "ambiguous", "execution_id": eid}
                eid = matches[0]
            return backend.attach(eid)

        def attached(status: dict) -> None:
            run = status.get("execution") or {}
            if status.get("status") != "ok":
                self._say(f"No run {execution_id} on the server" if status.get("status") != "ambiguous"
                          else f"Run id {execution_id} is ambiguous: type more of it")
                return
            eid = run.get("execution_id") or status.get("execution_id") or execution_id
            plate = Path(run.get("plate_id") or execution_id)
            entry = self.plates.get(plate)
            wells = entry.wells if entry else sorted(run.get("wells") or {})
            progress = RunProgress.for_wells(plate, wells)
            self.runs[plate] = progress
            self._accepted(backend, progress, eid)
            self._say(f"Attached to run {eid[:8]} ({plate.name})")

        self.dispatcher.run_background(resolve_and_attach, on_done=attached,
                                       on_error=lambda exc: self._say(f"Cannot attach: {exc}"))

    def server_runs(self, on_done: Callable[[list[dict]], None]) -> None:
        """Runs the server knows (for the attach picker)."""
        self.dispatcher.run_background(lambda: self.zmq_backend().runs(), on_done=on_done,
                                       on_error=lambda exc: self._say(f"Cannot list runs: {exc}"))

    # ------------------------------------------------------------------ stopping
    def active_execution_id(self) -> str | None:
        eid = self.current_execution_id
        if eid and not self.runs[self._plate_of[eid]].finished:
            return eid
        for eid, path in self._plate_of.items():
            if not self.runs[path].finished:
                return eid
        return None

    def stop(self, execution_id: str | None = None) -> None:
        """Graceful cancel, then poll status up to ``stop_timeout`` s; then offer a kill."""
        eid = execution_id or self.active_execution_id()
        if eid is None:
            self._say("Nothing is running.")
            return
        self.stop_sequence = StopSequence(eid, self.clock(), self.stop_timeout, self.poll_interval)
        self._say(self.stop_sequence.message())
        self._emit("stop", self.stop_sequence)
        backend = self._backend_of[eid]
        self.dispatcher.run_background(lambda: backend.cancel(eid), on_done=lambda _: self._poll_stop(),
                                       on_error=lambda exc: self._say(f"Cancel failed: {exc}"))

    def force_stop(self) -> None:
        """The user accepted the offered kill: cancel with force (workers are killed)."""
        stop = self.stop_sequence
        if stop is None or not stop.can_force:
            return
        stop.force(self.clock())
        self._say(stop.message())
        self._emit("stop", stop)
        backend = self._backend_of[stop.execution_id]
        self.dispatcher.run_background(lambda: backend.cancel(stop.execution_id, force=True),
                                       on_done=lambda _: self._poll_stop(),
                                       on_error=lambda exc: self._say(f"Force kill failed: {exc}"))

    def _poll_stop(self) -> None:
        stop = self.stop_sequence
        if stop is None or not stop.active or self.closed:
            return
        backend = self._backend_of[stop.execution_id]
        self.dispatcher.run_background(lambda: backend.run_state(stop.execution_id),
                                       on_done=self._observe_stop,
                                       on_error=lambda exc: self._observe_stop(None))

    def _observe_stop(self, run_state: str | None) -> None:
        stop = self.stop_sequence
        if stop is None or not stop.active:
            return
        action = stop.observe(run_state, self.clock())
        if action == POLL:
            self.dispatcher.call_later(self.poll_interval, self._poll_stop)
            return
        if action == OFFER_FORCE:
            log.info("run %s did not stop within %s s", stop.execution_id, stop.timeout)
        self._say(stop.message())
        self._emit("stop", stop)

    def cancel_wells(self, wells: list[str], execution_id: str | None = None) -> None:
        """Cancel only ``wells`` of a run; the others go on."""
        eid = execution_id or self.active_execution_id()
        if eid is None or not wells:
            self._say("Nothing to cancel.")
            return
        backend = self._backend_of[eid]
        self.dispatcher.run_background(
            lambda: backend.cancel(eid, axis_ids=list(wells)),
            on_done=lambda reply: self._say(f"Cancel of {', '.join(wells)}: {reply.get('status')}"
                                            + (f" ({reply['message']})" if reply.get("message") else "")),
            on_error=lambda exc: self._say(f"Cancel failed: {exc}"))

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Disconnect (stopping a server this UI spawned) and stop legacy runs."""
        self.closed = True
        for backend in (self._zmq, self._legacy):
            if backend is not None:
                backend.close()
        self._zmq = self._legacy = None
