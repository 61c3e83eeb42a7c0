"""DEPRECATED legacy runner: one subprocess per run, progress by log-file polling.

.. deprecated::
    Use the ZMQ execution pattern (``openhcs.runtime.zmq_execution_client.ZMQExecutionClient``),
    which both front ends use by default. This runner is kept, working, for
    ``OPENHCS_USE_ZMQ_EXECUTION=false``.

Why the ZMQ pattern replaces it:

- **Process reuse.** This starts a fresh Python process per run, which imports numpy and
  scikit-image and starts its own worker pool every time; an execution server stays warm
  between runs and shares one worker pool.
- **Real-time progress.** Here progress is JSON lines appended to a log file that the UI
  polls (every 0.1 s); the server streams signed progress messages as they happen, keeps
  them for replay, and lets any client attach to a run.
- **Graceful cancel.** Here stopping means signalling the process (SIGTERM asks the
  orchestrator to cancel, a forced stop is SIGKILL and loses the run's state); the server
  cancels at step boundaries, per run or per well, with a structured reply and a bounded
  escalation to killing workers.

How it works: ``start_run()`` writes the pipeline and config as Python source (codegen,
never pickle) next to a log file and starts ``python -m openhcs.textual_tui.subprocess_runner``.
That process runs ``PipelineOrchestrator`` in-process and appends one JSON object per
line to the log: progress events (``type='progress'``, ``seq``, ``well_id``, ``step``,
``status``, ``metadata``) and run events (``type='run'``, ``status`` started / complete /
failed / cancelled, the terminal one with ``results``). A tail thread in the UI process
reads new lines and hands each dict to ``on_message``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

TAIL_INTERVAL = 0.1
_TERMINAL = ("complete", "failed", "cancelled")


# --------------------------------------------------------------------------- UI side


class SubprocessRun:
    """One legacy run: its process, its log file and the thread tailing it."""

    def __init__(self, execution_id: str, plate: Path, popen: subprocess.Popen, log_file: Path,
                 on_message: Callable[[dict], None]):
        self.execution_id = execution_id
        self.plate = plate
        self.popen = popen
        self.log_file = log_file
        self.on_message = on_message
        self.state = "queued"
        self.results: dict | None = None
        self.last_seq = 0
        self._killed = False
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._tail, name=f"openhcs-tail-{execution_id[:8]}",
                                        daemon=True)
        self._thread.start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the process ended and its log was read to the end."""
        return self._done.wait(timeout)

    def cancel(self, force: bool = False) -> None:
        """SIGTERM (the runner cancels the orchestrator) or, forced, SIGKILL."""
        if self.popen.poll() is not None:
            return
        self._killed = self._killed or force
        self.popen.send_signal(signal.SIGKILL if force else signal.SIGTERM)

    def close(self) -> None:
        """Kill a still-running process, reap it and stop tailing."""
        if self.popen.poll() is None:
            self.cancel(force=True)
        self.popen.wait()
        self._stop.set()
        self._thread.join()

    def _emit(self, msg: dict) -> None:
        self.last_seq = max(self.last_seq, msg.get("seq", 0))
        if msg.get("type") == "run":
            self.state = "running" if msg["status"] == "started" else msg["status"]
            if msg.get("results"):
                self.results = msg["results"]
        try:
            self.on_message(msg)
        except Exception:  # a UI callback must not stop the tail
            traceback.print_exc()

    def _tail(self) -> None:
        buf = ""
        pos = 0
        try:
            while True:
                exited = self.popen.poll() is not None
                try:
                    with open(self.log_file, encoding="utf-8") as fh:
                        fh.seek(pos)
                        chunk = fh.read()
                        pos = fh.tell()
                except FileNotFoundError:
                    chunk = ""
                buf += chunk
                *lines, buf = buf.split("\n")
                for line in lines:
                    if line.strip():
                        self._emit(json.loads(line))
                if exited and not chunk:
                    break
                if self._stop.wait(TAIL_INTERVAL):
                    break
            if self.state not in _TERMINAL:  # killed before it could say so
                status = "cancelled" if self._killed or self.popen.returncode < 0 else "failed"
                self._emit({"type": "run", "execution_id": self.execution_id, "seq": self.last_seq + 1,
                            "status": status, "timestamp": time.time(),
                            "message": f"runner process ended with code {self.popen.returncode}"})
        finally:
            self._done.set()


def start_run(plate: str | Path, steps: list, config=None, wells: list[str] | None = None,
              on_message: Callable[[dict], None] = lambda m: None,
              work_dir: str | Path | None = None) -> SubprocessRun:
    """Start one runner process for ``plate`` and tail its log (emits DeprecationWarning)."""
    warnings.warn("the subprocess runner is deprecated; use ZMQExecutionClient "
                  "(OPENHCS_USE_ZMQ_EXECUTION=true, the default)", DeprecationWarning, stacklevel=2)
    from openhcs.codegen import generate_config_code, generate_pipeline_code

    execution_id = "local-" + uuid.uuid4().hex
    folder = Path(work_dir or tempfile.mkdtemp(prefix="openhcs-run-")) / execution_id
    folder.mkdir(parents=True)
    (folder / "pipeline.py").write_text(generate_pipeline_code(steps))
    args = [sys.executable, "-m", "openhcs.textual_tui.subprocess_runner", "--plate", str(plate),
            "--pipeline", str(folder / "pipeline.py"), "--log-file", str(folder / "progress.jsonl"),
            "--execution-id", execution_id]
    if config is not None:
        (folder / "config.py").write_text(generate_config_code(config, None))
        args += ["--config", str(folder / "config.py")]
    if wells:
        args += ["--wells", ",".join(wells)]
    with open(folder / "stderr.log", "wb") as err:
        popen = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=err, close_fds=True)
    return SubprocessRun(execution_id, Path(plate), popen, folder / "progress.jsonl", on_message)


# --------------------------------------------------------------------------- runner side


class _Log:
    def __init__(self, path: Path, execution_id: str):
        self.fh = open(path, "a", encoding="utf-8")
        self.execution_id = execution_id
        self.seq = 0
        self.lock = threading.Lock()

    def write(self, **fields: Any) -> None:
        with self.lock:
            self.seq += 1
            record = {"execution_id": self.execution_id, "seq": self.seq, "timestamp": time.time(), **fields}
            if record.get("type") == "run" and record.get("status") in _TERMINAL:
                record["final_seq"] = self.seq
            self.fh.write(json.dumps(record, default=str) + "\n")
            self.fh.flush()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m openhcs.textual_tui.subprocess_runner")
    p.add_argument("--plate", required=True)
    p.add_argument("--pipeline", required=True, help="pipeline source file (codegen)")
    p.add_argument("--config", help="config source file (codegen)")
    p.add_argument("--log-file", required=True)
    p.add_argument("--execution-id", default="local")
    p.add_argument("--wells")
    args = p.parse_args(argv)
    warnings.warn("openhcs.textual_tui.subprocess_runner is deprecated; use the ZMQ execution "
                  "server", DeprecationWarning, stacklevel=1)
    log = _Log(Path(args.log_file), args.execution_id)
    log.write(type="run", status="started", step="run")
    orch = None
    try:
        from openhcs.codegen import load_config_code, load_pipeline_file
        from openhcs.core.orchestrator.orchestrator import PipelineOrchestrator

        steps = load_pipeline_file(args.pipeline)
        global_config = pipeline_config = None
        if args.config:
            global_config, pipeline_config = load_config_code(Path(args.config).read_text())

        def progress(axis_id: str, step: str, status: str, metadata: dict) -> None:
            log.write(type="progress", axis_id=axis_id, well_id=axis_id, step=step, status=status,
                      metadata=metadata or {})

        orch = PipelineOrchestrator(args.plate, global_config, pipeline_config, progress_callback=progress)
        signal.signal(signal.SIGTERM, lambda *_: orch.cancel())
        wells = args.wells.split(",") if args.wells else None
        result = orch.run(steps, wells)
        data = result.to_dict()
        message = (f"{len(data['completed'])} complete, {len(data['failed'])} failed, "
                   f"{len(data['cancelled'])} cancelled")
        log.write(type="run", status=result.status, step="run", message=message, results=data)
        return 0 if result.status == "complete" else 1
    except Exception as exc:
        log.write(type="run", status="failed", step="run", message=f"{type(exc).__name__}: {exc}",
                  error=str(exc), traceback=traceback.format_exc())
        return 1
    finally:
        if orch is not None:
            orch.shutdown()


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)
