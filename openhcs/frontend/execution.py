"""The two ways a front end runs plates, behind one small interface.

``ZmqExecution`` (the default) talks to an execution server through
``ZMQExecutionClient``: it attaches to the server on the port or spawns one it owns.
``SubprocessExecution`` is the deprecated path (``OPENHCS_USE_ZMQ_EXECUTION=false``):
one ``openhcs.textual_tui.subprocess_runner`` process per run, progress tailed from its
log file. Both deliver the same message dicts to ``on_message`` from their own threads
and answer ``submit / cancel / run_state / final`` with blocking calls, which the
controller makes off the UI thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

USE_ZMQ_ENV = "OPENHCS_USE_ZMQ_EXECUTION"
OnMessage = Callable[[dict[str, Any]], None]


def use_zmq_execution() -> bool:
    """``OPENHCS_USE_ZMQ_EXECUTION`` (default true); false/0/no/off selects the legacy runner."""
    return os.environ.get(USE_ZMQ_ENV, "true").strip().lower() not in ("false", "0", "no", "off")


class ZmqExecution:
    kind = "zmq"

    def __init__(self, on_message: OnMessage, host: str = "localhost", port: int = 7777,
                 persistent: bool = False, connect_timeout: float = 30.0):
        self.on_message = on_message
        self.host, self.port, self.persistent = host, port, persistent
        self.connect_timeout = connect_timeout
        self.client = None
        self.closed = False

    def ensure_connected(self):
        from openhcs.runtime.zmq_execution_client import ZMQExecutionClient

        if self.closed:  # never respawn a server for a late timer after the UI closed
            raise RuntimeError("the execution connection is closed")
        if self.client is None:
            self.client = ZMQExecutionClient(host=self.host, port=self.port, persistent=self.persistent,
                                             progress_callback=self.on_message)
        if not self.client.connected:
            self.client.connect(timeout=self.connect_timeout)
        return self.client

    @property
    def server_pid(self) -> int | None:
        info = self.client.info if self.client is not None else None
        return info.pid if info else None

    def submit(self, plate: Path, steps: list, config, wells: list[str] | None) -> str:
        reply = self.ensure_connected().submit_pipeline(
            plate_id=str(plate), pipeline_steps=steps, global_config=config, wells=wells)
        return reply["execution_id"]

    def cancel(self, execution_id: str, axis_ids: list[str] | None = None, force: bool = False) -> dict:
        return self.ensure_connected().cancel_execution(execution_id, axis_ids=axis_ids, force=force)

    def run_state(self, execution_id: str, quick: bool = False) -> str:
        """The run's state on the server; ``quick`` = one short attempt (liveness checks),
        raising ``ServerUnavailable`` when the server does not answer."""
        client = self.ensure_connected()
        if quick:
            status = client.get_status(execution_id, timeout=1.0, retries=1)
        else:
            status = client.get_status(execution_id)
        if status.get("status") != "ok":
            return "not_found"
        return (status.get("execution") or {}).get("state", "unknown")

    def final(self, execution_id: str) -> dict[str, Any]:
        """The run's record (with ``results``) once it ended."""
        return self.ensure_connected().get_status(execution_id).get("execution") or {}

    def attach(self, execution_id: str) -> dict[str, Any]:
        return self.ensure_connected().attach(execution_id)

    def runs(self) -> list[dict[str, Any]]:
        return self.ensure_connected().get_status().get("executions") or []

    def close(self) -> None:
        self.closed = True
        if self.client is not None:
            self.client.disconnect()
            self.client = None


class SubprocessExecution:
    """Deprecated: one runner process per run (see ``openhcs.textual_tui.subprocess_runner``)."""

    kind = "subprocess"

    def __init__(self, on_message: OnMessage, work_dir: str | Path | None = None):
        from openhcs.textual_tui import subprocess_runner

        self._runner = subprocess_runner
        self.on_message = on_message
        self.work_dir = Path(work_dir) if work_dir else None
        self.runs_by_id: dict[str, Any] = {}

    def submit(self, plate: Path, steps: list, config, wells: list[str] | None) -> str:
        run = self._runner.start_run(plate, steps, config, wells, on_message=self.on_message,
                                     work_dir=self.work_dir)
        self.runs_by_id[run.execution_id] = run
        return run.execution_id

    def cancel(self, execution_id: str, axis_ids: list[str] | None = None, force: bool = False) -> dict:
        run = self.runs_by_id[execution_id]
        if axis_ids:
            return {"status": "error", "message": "the subprocess runner cannot cancel single wells"}
        run.cancel(force=force)
        return {"status": "ok", "execution_id": execution_id}

    def run_state(self, execution_id: str, quick: bool = False) -> str:
        run = self.runs_by_id.get(execution_id)
        return "not_found" if run is None else run.state

    def final(self, execution_id: str) -> dict[str, Any]:
        run = self.runs_by_id.get(execution_id)
        return {} if run is None else {"state": run.state, "results": run.results}

    def attach(self, execution_id: str) -> dict[str, Any]:
        raise NotImplementedError("the subprocess runner cannot attach to runs started elsewhere")

    def runs(self) -> list[dict[str, Any]]:
        return [{"execution_id": i, "state": r.state, "plate_id": str(r.plate)}
                for i, r in self.runs_by_id.items()]

    def close(self) -> None:
        for run in self.runs_by_id.values():
            run.close()
