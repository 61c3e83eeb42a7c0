"""``ZMQExecutionClient``: run pipelines on an execution server, local or remote, one API.

    client = ZMQExecutionClient(port=7777, progress_callback=on_progress)
    client.connect()                       # attach to the server on 7777, or spawn one
    response = client.execute_pipeline(plate_id=..., pipeline_steps=..., global_config=...)
    client.disconnect()                    # stops the server too if this client owns it

Pipelines and configs travel as Python source made by :mod:`openhcs.codegen`, never as
pickle. Progress arrives on the listener thread (see :class:`ZMQClient`) and is handed to
``progress_callback`` strictly in sequence order, per run, without gaps: when a sequence
number is skipped (a slow joiner, a dropped message, a late ``attach``) the listener asks
the server for the missing events (``events`` replay) before delivering more.

While waiting for a run the client watches the server's heartbeats; when they stop it asks
for ``status`` once, and a server that does not answer is reported with
:class:`ServerUnavailable` within about 2.5 s rather than waiting forever.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from openhcs.runtime.protocol import (
    TERMINAL_RUN_STATES,
    Accepted,
    Cancel,
    CancelReply,
    Events,
    EventsReply,
    Execute,
    Functions,
    FunctionsReply,
    Message,
    Ping,
    Pong,
    Progress,
    ProtocolError,
    RunEvent,
    Shutdown,
    ShutdownReply,
    Status,
    StatusReply,
    from_dict,
    new_id,
    to_dict,
)
from openhcs.runtime.zmq_base import Requester, ServerError, ServerUnavailable, ZMQClient

log = logging.getLogger(__name__)

__all__ = ["ZMQExecutionClient", "ServerUnavailable", "ServerError"]

_ENVELOPE = ("type", "msg_id", "request_id", "version", "timestamp", "reply_to")


def _plain(reply: Message) -> dict[str, Any]:
    """A reply as the dict the public methods return (no envelope fields)."""
    data = to_dict(reply, drop_none=False)
    for key in _ENVELOPE:
        data.pop(key, None)
    return data


class ZMQExecutionClient(ZMQClient):
    """High-level client for :class:`~openhcs.runtime.zmq_execution_server.ZMQExecutionServer`.

    ``progress_callback(message: dict)`` receives every event of the runs this client
    submitted or attached to: well events (``type='progress'`` with ``execution_id``,
    ``seq``, ``well_id``/``axis_id``, ``step``, ``status``, ``metadata``, ``timestamp``) and
    run events (``type='run'``, ``status`` queued/started/cancelling/complete/failed/
    cancelled; terminal ones carry ``final_seq``). It runs on the listener thread.
    """

    heartbeat_timeout = 1.2  # no data-channel message for this long -> check liveness
    liveness_timeout = 0.8   # how long that status check may take

    def __init__(self, host: str = "localhost", port: int = 7777, persistent: bool = False,
                 progress_callback: Callable[[dict], None] | None = None, timeout: float = 5.0,
                 retries: int = 3, connection_file: str | None = None, key: str | None = None,
                 curve_dir=None, server_args: list[str] | None = None):
        super().__init__(host=host, port=port, persistent=persistent, timeout=timeout,
                         retries=retries, connection_file=connection_file, key=key,
                         curve_dir=curve_dir, server_args=server_args)
        self.progress_callback = progress_callback
        self._cond = threading.Condition()
        self._terminal: dict[str, dict] = {}
        self._followed: dict[str, int] = {}  # listener thread only: last delivered seq
        self._expected: dict[str, None] = {}  # listener thread only: request ids we submitted
        self._listener_requester: Requester | None = None

    # ------------------------------------------------------------------ requests
    def ping(self) -> dict[str, Any]:
        return _plain(self.request(Ping(), Pong))

    def submit_pipeline(self, plate_id, pipeline_steps, global_config=None, pipeline_config=None,
                        wells: list[str] | None = None, config_params: dict | None = None,
                        request_id: str | None = None) -> dict[str, Any]:
        """Send a run; returns ``{'status': 'accepted', 'execution_id', 'state', ...}`` at once.

        ``request_id`` makes the submit idempotent: a retry (ours, after a timeout, or
        the caller's) with the same id returns the same ``execution_id``.
        """
        from openhcs.codegen import generate_config_code, generate_pipeline_code

        code = pipeline_steps if isinstance(pipeline_steps, str) else generate_pipeline_code(pipeline_steps)
        config_code = None
        if global_config is not None or pipeline_config is not None:
            config_code = generate_config_code(global_config, pipeline_config)
        plate = str(plate_id)
        if self._is_local() and not os.path.isabs(plate):
            plate = os.path.abspath(plate)  # the server's working folder is not ours
        msg = Execute(request_id=request_id or new_id(), plate_id=plate, pipeline_code=code,
                      config_code=config_code, config_params=config_params,
                      wells=list(wells) if wells else None)
        # Tell the listener first: it then follows the run from its ``queued`` event
        # (which carries our request id) instead of replaying it after the reply.
        self.send_command(b"expect", msg.request_id.encode())
        reply = self.request(msg, Accepted)
        self.follow(reply.execution_id)
        return _plain(reply)

    def execute_pipeline(self, plate_id, pipeline_steps, global_config=None, pipeline_config=None,
                         wells: list[str] | None = None, timeout: float | None = None,
                         **kwargs: Any) -> dict[str, Any]:
        """Submit and block until the run ends: ``{'status': 'complete'|'failed'|'cancelled',
        'execution_id', 'message', 'results', ...}``."""
        accepted = self.submit_pipeline(plate_id, pipeline_steps, global_config, pipeline_config,
                                        wells=wells, **kwargs)
        return self.wait_for_completion(accepted["execution_id"], timeout=timeout)

    def wait_for_completion(self, execution_id: str, timeout: float | None = None) -> dict[str, Any]:
        """Block until the run is terminal; raises ``TimeoutError`` after ``timeout`` s and
        ``ServerUnavailable`` when the server dies meanwhile."""
        self.follow(execution_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:  # short: a dead server must be reported within seconds, not after all retries
            known = self.get_status(execution_id, timeout=self.liveness_timeout, retries=1)
        except ServerUnavailable as exc:
            raise self._lost(execution_id, exc) from exc
        if known["status"] != "ok":
            return {"status": known["status"], "execution_id": execution_id,
                    "message": known.get("message") or "", "results": None}
        if (known.get("execution") or {}).get("state") == "interrupted":  # its server died
            return self._final_response(execution_id, {"status": "interrupted"}, known)
        while True:
            with self._cond:
                event = self._terminal.get(execution_id)
                if event is None:
                    self._cond.wait(0.25)
                    event = self._terminal.get(execution_id)
            if event is not None:
                return self._final_response(execution_id, event)
            status = self._check_alive(execution_id)
            if status is not None:  # terminal per status although the event was not seen
                run = status.get("execution") or {}
                if run.get("state") in (*TERMINAL_RUN_STATES, "interrupted"):
                    return self._final_response(execution_id, {"status": run["state"]}, status)
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"run {execution_id} not finished within {timeout} s")

    def _check_alive(self, execution_id: str) -> dict | None:
        self._check_spawned_alive()
        if time.monotonic() - self.last_seen < self.heartbeat_timeout:
            return None
        try:
            return self.get_status(execution_id, timeout=self.liveness_timeout, retries=0)
        except ServerUnavailable as exc:
            raise self._lost(execution_id, exc) from exc

    def _lost(self, execution_id: str, exc: Exception) -> ServerUnavailable:
        pid = self.info.pid if self.info else "?"
        return ServerUnavailable(
            f"execution server {self.host}:{self.port} (pid {pid}) stopped responding "
            f"while run {execution_id} was in progress: {exc}")

    def _final_response(self, execution_id: str, event: dict, status: dict | None = None) -> dict:
        if status is None:
            try:  # short, like the liveness check: the server may be stopping right now
                status = self.get_status(execution_id, timeout=self.liveness_timeout, retries=1)
            except ServerUnavailable:  # e.g. the server shut down right after the run
                status = {}
        run = status.get("execution") or {}
        return {
            "status": event.get("status", run.get("state")),
            "execution_id": execution_id,
            "message": run.get("message") or event.get("message") or "",
            "results": run.get("results"),
            "error": run.get("error"),
            "traceback": run.get("traceback"),
            "final_seq": event.get("final_seq"),
            "execution": run,
        }

    def get_status(self, execution_id: str | None = None, timeout: float | None = None,
                   retries: int | None = None) -> dict[str, Any]:
        """One run (``{'status': 'ok'|'not_found', 'execution': {...}}``) or all runs
        (``{'status': 'ok', 'executions': [...]}``), plus ``server`` facts."""
        reply = self.request(Status(execution_id=execution_id), StatusReply, timeout=timeout,
                             retries=retries)
        return _plain(reply)

    def cancel_execution(self, execution_id: str, axis_ids: list[str] | None = None,
                         force: bool = False, grace_seconds: float | None = None) -> dict[str, Any]:
        """Ask to cancel the run (or only ``axis_ids``); answered at once with
        ``{'status': 'ok', 'state': 'cancelling', ...}`` (``'not_found'`` for unknown ids)."""
        reply = self.request(Cancel(execution_id=execution_id, axis_ids=axis_ids, force=force,
                                    grace_seconds=grace_seconds), CancelReply)
        return _plain(reply)

    def get_events(self, execution_id: str, since_seq: int = 0) -> list[dict[str, Any]]:
        """Every stored event of the run with ``seq > since_seq``, oldest first."""
        return _fetch_events(lambda m: self.request(m, EventsReply), execution_id, since_seq)

    def attach(self, execution_id: str) -> dict[str, Any]:
        """Follow a run started elsewhere: its past events are replayed to the callback,
        then live ones, with no gap or duplicate. Returns its current status."""
        status = self.get_status(execution_id)
        if status["status"] == "ok":
            self.follow(execution_id)
        return status

    def follow(self, execution_id: str, from_seq: int = 0) -> None:
        """Deliver this run's events (after ``from_seq``) to the callback."""
        self.send_command(b"follow", execution_id.encode(), str(from_seq).encode())

    def list_functions(self, search: str | None = None, category: str | None = None,
                       timeout: float = 120.0) -> list[dict[str, Any]]:
        """The server's function catalog (entries as dicts with ``name``, ``category``,
        ``contract``, ``summary``, ``doc`` and ``params``), filtered by ``search`` words.

        The first request makes the server build its catalog (seconds); until it is ready
        the server answers ``building`` and this asks again, backing off, for ``timeout`` s.
        """
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            reply = self.request(Functions(search=search, category=category), FunctionsReply)
            if reply.status == "ok":
                return [to_dict(entry, drop_none=False) for entry in reply.functions]
            if reply.status != "building":
                raise ServerError("catalog_failed", reply.message or reply.status)
            if time.monotonic() + delay > deadline:
                raise TimeoutError(f"the server's function catalog was not ready within {timeout} s")
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    def shutdown_server(self, grace_seconds: float = 5.0) -> dict[str, Any]:
        """Ask the server to cancel its runs and exit (waits for an owned process)."""
        reply = _plain(self.request(Shutdown(grace_seconds=grace_seconds), ShutdownReply))
        proc = self.server_process
        if proc is not None:
            from openhcs.runtime import lifecycle

            lifecycle.stop_server(proc.info, popen=proc.popen, wait=grace_seconds + 10)
            self.server_process = None
        return reply

    # ------------------------------------------------------------------ listener side
    def on_listener_start(self) -> None:
        self._listener_requester = Requester(self._ctx, self.info, timeout=1.0, retries=1,
                                             curve_dir=self.curve_dir)

    def on_listener_stop(self) -> None:
        if self._listener_requester is not None:
            self._listener_requester.close()
            self._listener_requester = None

    def on_command(self, frames: list[bytes]) -> None:
        if frames[0] == b"expect":
            self._expected[frames[1].decode()] = None
            while len(self._expected) > 1000:  # submits that failed never show up
                self._expected.pop(next(iter(self._expected)))
        elif frames[0] == b"follow":
            eid, from_seq = frames[1].decode(), int(frames[2])
            if eid not in self._followed:
                self._followed[eid] = from_seq
                self._catch_up(eid)

    def on_data(self, msg: Message) -> None:
        if not isinstance(msg, Progress | RunEvent):
            return
        eid = msg.execution_id
        last = self._followed.get(eid)
        if last is None and msg.request_id in self._expected and isinstance(msg, RunEvent):
            del self._expected[msg.request_id]
            last = self._followed[eid] = 0
        if last is None or msg.seq <= last:
            return
        if msg.seq > last + 1:
            self._catch_up(eid)
            if msg.seq <= self._followed[eid]:
                return
        self._deliver(eid, msg)

    def _catch_up(self, eid: str) -> None:
        """Replay the events after the last delivered one (fills gaps, late attaches)."""
        req = self._listener_requester
        try:
            events = _fetch_events(lambda m: req.request(m), eid, self._followed[eid])
        except (ServerUnavailable, ServerError, ProtocolError) as exc:
            log.warning("could not replay events of %s: %s", eid, exc)
            return
        for data in events:
            if data.get("seq", 0) > self._followed[eid]:
                self._deliver(eid, from_dict(data))

    def _deliver(self, eid: str, msg: Progress | RunEvent) -> None:
        self._followed[eid] = msg.seq
        data = to_dict(msg)
        if self.progress_callback is not None:
            try:
                self.progress_callback(data)
            except Exception:
                log.exception("progress_callback raised")
        if isinstance(msg, RunEvent) and msg.status in TERMINAL_RUN_STATES:
            with self._cond:
                self._terminal[eid] = data
                self._cond.notify_all()


def _fetch_events(send, execution_id: str, since_seq: int) -> list[dict[str, Any]]:
    """All events after ``since_seq``, following the server's page size."""
    events: list[dict[str, Any]] = []
    seq = since_seq
    while True:
        reply = send(Events(execution_id=execution_id, from_seq=seq))
        if not isinstance(reply, EventsReply):
            raise ServerError("unexpected_reply", f"unexpected reply {type(reply).__name__}")
        if reply.status == "expired":
            raise ServerError("expired", reply.message)
        if reply.status != "ok":
            return events
        events.extend(reply.events)
        if not reply.events:
            return events
        seq = reply.events[-1]["seq"]
        if seq >= reply.last_seq:
            return events
