"""Starting and stopping execution-server processes (never protocol, never sockets).

Start: run the launcher as a child process and wait — on its stdout pipe, with a
deadline, no polling — for the one ``OPENHCS_READY {json}`` line it prints once its
sockets are bound and its connection file written. A persistent server gets its own
session (``start_new_session=True``) so it outlives the client that started it.

Stop, by recorded pid only (never a port scan or a process name), with a contract: when
``stop_server`` returns the process is gone (and reaped, if it was our child):
ask politely (a signed ``shutdown`` request) → wait → SIGTERM → wait → SIGKILL → wait.
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import psutil

from openhcs.runtime.connection import ConnectionInfo, pid_alive, remove_connection_file

log = logging.getLogger(__name__)

READY_PREFIX = "OPENHCS_READY "
LAUNCHER_MODULE = "openhcs.runtime.zmq_execution_server_launcher"


class SpawnError(RuntimeError):
    """The server process exited or stayed silent before it was ready."""


@dataclass
class ServerProcess:
    popen: subprocess.Popen
    info: ConnectionInfo

    @property
    def pid(self) -> int:
        return self.popen.pid


def launcher_command(port: int, host: str = "127.0.0.1", persistent: bool = False,
                     args: list[str] | None = None) -> list[str]:
    cmd = [sys.executable, "-m", LAUNCHER_MODULE, "--port", str(port), "--host", host]
    if persistent:
        cmd.append("--persistent")
    else:
        cmd += ["--parent-pid", str(os.getpid())]
    return cmd + list(args or [])


def spawn_server(port: int, host: str = "127.0.0.1", persistent: bool = False,
                 args: list[str] | None = None, timeout: float = 15.0,
                 env: dict[str, str] | None = None) -> ServerProcess:
    """Start a server process and return once it is bound (its connection info known)."""
    cmd = launcher_command(port, host, persistent, args)
    popen = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=persistent, close_fds=True, env=env,
    )
    try:
        info = _wait_ready(popen, timeout)
    except BaseException:
        _kill_and_reap(popen)
        raise
    finally:
        popen.stdout.close()
    popen.stderr.close()
    return ServerProcess(popen=popen, info=info)


def _wait_ready(popen: subprocess.Popen, timeout: float) -> ConnectionInfo:
    deadline = time.monotonic() + timeout
    buf = b""
    with selectors.DefaultSelector() as sel:
        sel.register(popen.stdout, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SpawnError(f"server process {popen.pid} not ready within {timeout:.1f}s")
            if not sel.select(remaining):
                continue
            chunk = os.read(popen.stdout.fileno(), 65536)
            if not chunk:
                popen.wait(timeout=max(0.1, deadline - time.monotonic()))
                err = popen.stderr.read().decode(errors="replace").strip()
                raise SpawnError(f"server process exited with code {popen.returncode}: {err[-2000:]}")
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                text = line.decode(errors="replace")
                if text.startswith(READY_PREFIX):
                    return ConnectionInfo.from_dict(json.loads(text[len(READY_PREFIX):]))


def _kill_and_reap(popen: subprocess.Popen) -> None:
    if popen.poll() is None:
        popen.kill()
    popen.wait()
    for stream in (popen.stdout, popen.stderr):
        if stream is not None and not stream.closed:
            stream.close()


def _wait_gone(pid: int, popen: subprocess.Popen | None, timeout: float,
               create_time: float | None) -> bool:
    if popen is not None:
        try:
            popen.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    try:
        proc = psutil.Process(pid)
        if create_time is not None and abs(proc.create_time() - create_time) > 1.0:
            return True  # the pid was reused: our server is long gone
        proc.wait(timeout=timeout)
        return True
    except psutil.NoSuchProcess:
        return True
    except psutil.TimeoutExpired:
        return not pid_alive(pid, create_time)  # a zombie of another parent counts as gone


def stop_process(pid: int, popen: subprocess.Popen | None = None, ask=None, wait: float = 10.0,
                 term_wait: float = 5.0, create_time: float | None = None) -> str:
    """Stop ``pid``: ``ask()`` (if given) → wait → SIGTERM → wait → SIGKILL → wait.

    Returns how it ended: ``'exited'``, ``'terminated'``, ``'killed'`` or ``'not_running'``.
    """
    if popen is None and not pid_alive(pid, create_time):
        return "not_running"
    if popen is not None and popen.poll() is not None:
        return "not_running"
    if ask is not None:
        try:
            ask()
        except Exception as exc:  # a dead or wedged server cannot be asked
            log.info("polite stop of pid %d failed: %s", pid, exc)
        else:
            if _wait_gone(pid, popen, wait, create_time):
                return "exited"
    for sig, how, patience in ((signal.SIGTERM, "terminated", term_wait), (signal.SIGKILL, "killed", 10.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            _wait_gone(pid, popen, 1.0, create_time)
            return "exited"
        if _wait_gone(pid, popen, patience, create_time):
            return how
    raise RuntimeError(f"process {pid} survived SIGKILL")


def stop_server(info: ConnectionInfo, popen: subprocess.Popen | None = None, wait: float = 10.0,
                term_wait: float = 5.0, grace_seconds: float = 2.0) -> str:
    """Stop the server described by ``info`` (its recorded pid); see ``stop_process``."""
    from openhcs.runtime.protocol import Shutdown
    from openhcs.runtime.requester import Requester, ServerUnavailable

    def ask() -> None:
        import zmq

        ctx = zmq.Context()
        try:
            req = Requester(ctx, info, timeout=2.0, retries=0)
            try:
                req.request(Shutdown(grace_seconds=grace_seconds))
            except ServerUnavailable:
                raise
            finally:
                req.close()
        finally:
            ctx.term()

    outcome = stop_process(info.pid, popen, ask=ask, wait=wait, term_wait=term_wait,
                           create_time=info.pid_create_time)
    remove_connection_file(info.data_port, info.pid)
    return outcome
