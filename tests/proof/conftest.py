"""Real execution-server processes for the proof suites, stopped by pid.

Everything here is real: servers are started with the launcher (``lifecycle.spawn_server``)
on a free loopback port with their own runtime/data folders, messages are signed with the
key read from the server's connection file, and servers (and any worker processes they
left behind) are stopped by their recorded pids.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
import zmq

from openhcs.runtime import lifecycle
from openhcs.runtime.connection import ConnectionInfo, connection_file_path
from openhcs.runtime.protocol import Message, Ping, Pong, Reply, Session
from openhcs.runtime.zmq_base import find_free_port

LONG = os.environ.get("OPENHCS_LONG_TESTS") == "1"
long_only = pytest.mark.skipif(not LONG, reason="long variant: set OPENHCS_LONG_TESTS=1")


def wait_until(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.02):
    """Re-check ``predicate`` until it is truthy; fail with ``what`` after ``timeout`` s.

    Used only where no event exists to block on (a line appearing in a server's log file,
    a thread reaching its wait); the wait between checks is an ``Event.wait`` that never
    sleeps past the deadline.
    """
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        value = predicate()
        if value:
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        pause.wait(min(interval, remaining))


def make_dirs(root: Path) -> dict[str, Path]:
    dirs = {"runtime": root / "runtime", "data": root / "data"}
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    return dirs


def server_env(dirs: dict[str, Path]) -> dict[str, str]:
    env = dict(os.environ)
    env["OPENHCS_RUNTIME_DIR"] = str(dirs["runtime"])
    env["OPENHCS_DATA_DIR"] = str(dirs["data"])
    return env


@dataclass
class ServerHandle:
    """One launcher process: its pid, connection info, folders and log."""

    port: int
    popen: subprocess.Popen
    info: ConnectionInfo
    dirs: dict[str, Path]
    args: list[str]
    host: str = "127.0.0.1"
    known_children: dict[int, psutil.Process] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def connection_file(self) -> Path:
        return connection_file_path(self.port, self.dirs["runtime"])

    @property
    def log_file(self) -> Path:
        return Path(self.info.log_file)

    def log_text(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def session(self) -> Session:
        """A client-side session with the real key (no replay guard, like a client)."""
        return Session(self.info.key_bytes)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def children(self) -> list[psutil.Process]:
        try:
            kids = psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        for proc in kids:
            self.known_children.setdefault(proc.pid, proc)
        return kids

    def client(self, **kwargs):
        from openhcs.runtime.zmq_execution_client import ZMQExecutionClient

        return ZMQExecutionClient(port=self.port, connection_file=str(self.connection_file), **kwargs)

    def req_socket(self, ctx: zmq.Context, timeout_ms: int = 5000, kind: int = zmq.REQ) -> zmq.Socket:
        sock = ctx.socket(kind)
        sock.linger = 0
        sock.rcvtimeo = timeout_ms
        sock.sndtimeo = timeout_ms
        sock.connect(self.info.control_endpoint)
        return sock

    def ping(self, timeout: float = 2.0) -> Pong | None:
        """A fresh signed ping on a fresh socket; the pong or None."""
        ctx = zmq.Context()
        try:
            sock = self.req_socket(ctx, int(timeout * 1000))
            try:
                reply = request(sock, self.session(), Ping())
            except zmq.Again:
                return None
            finally:
                sock.close(linger=0)
            return reply if isinstance(reply, Pong) else None
        finally:
            ctx.term()

    def stop(self) -> list[int]:
        """The lifecycle contract (ask → SIGTERM → SIGKILL); then every child the server
        was ever seen with must exit within 5 s. Returns the pids that had to be killed
        (each one a process that outlived its server)."""
        self.children()
        if self.alive():
            lifecycle.stop_server(self.info, popen=self.popen, wait=15, term_wait=5)
        else:
            self.popen.wait()
        return reap(list(self.known_children.values()), timeout=5)

    def kill9(self) -> None:
        """SIGKILL the server by pid (a crash), reap it; its workers are left to exit."""
        self.children()
        os.kill(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)


def reap(procs: list[psutil.Process], timeout: float) -> list[int]:
    """Wait for processes (recorded while their server lived) to exit; SIGKILL what
    remains after ``timeout``. psutil refuses to signal a pid that was reused by another
    process, so only the recorded processes can be hit. Returns the pids killed."""
    _gone, alive = psutil.wait_procs(procs, timeout=timeout)
    killed = []
    for proc in alive:
        try:
            proc.kill()
            killed.append(proc.pid)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)
    return killed


def request(sock: zmq.Socket, session: Session, msg: Message) -> Reply:
    """Send one signed request on a REQ socket and decode the signed reply."""
    sock.send_multipart(session.serialize(msg))
    return session.deserialize(sock.recv_multipart())


def start_server(dirs: dict[str, Path], *args: str, port: int | None = None, host: str = "127.0.0.1",
                 timeout: float = 30.0) -> ServerHandle:
    port = port or find_free_port()
    proc = lifecycle.spawn_server(port, host=host, args=list(args), timeout=timeout, env=server_env(dirs))
    return ServerHandle(port=port, popen=proc.popen, info=proc.info, dirs=dirs, args=list(args), host=host)


@pytest.fixture
def proof_dirs(tmp_path, monkeypatch) -> dict[str, Path]:
    """Per-test runtime/data folders, also set in this process's environment."""
    dirs = make_dirs(tmp_path / "openhcs")
    monkeypatch.setenv("OPENHCS_RUNTIME_DIR", str(dirs["runtime"]))
    monkeypatch.setenv("OPENHCS_DATA_DIR", str(dirs["data"]))
    return dirs


@pytest.fixture
def servers(proof_dirs) -> Iterator[Callable[..., ServerHandle]]:
    """Start servers with ``servers(*launcher_args, port=None)``; all are stopped after."""
    started: list[ServerHandle] = []

    def start(*args: str, port: int | None = None, dirs: dict[str, Path] | None = None,
              host: str = "127.0.0.1") -> ServerHandle:
        handle = start_server(dirs or proof_dirs, *args, port=port, host=host)
        started.append(handle)
        return handle

    yield start
    outlived = [pid for handle in reversed(started) for pid in handle.stop()]
    for handle in started:
        assert not handle.alive()
    assert not outlived, f"processes outlived their server and had to be killed: {outlived}"


@pytest.fixture
def server(servers) -> ServerHandle:
    """One server, one process worker, processes mode."""
    return servers("--workers", "1", "--mode", "processes")


def plate_steps(*funcs_and_kwargs):
    """FunctionSteps from ``(func, kwargs, name)`` triples."""
    from openhcs.core.steps import FunctionStep

    return [FunctionStep(func=(func, kwargs) if kwargs else func, name=name)
            for func, kwargs, name in funcs_and_kwargs]


def copy_steps():
    from openhcs.processing import diagnostics as diag

    return plate_steps((diag.passthrough, None, "copy"))


class EventRecorder:
    """A ``progress_callback`` that keeps every event and lets a test wait for one."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.cond = threading.Condition()

    def __call__(self, event: dict) -> None:
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    def wait_for(self, predicate: Callable[[dict], bool], timeout: float, what: str = "an event") -> dict:
        with self.cond:
            found: list[dict] = []

            def seen() -> bool:
                found[:] = [e for e in self.events if predicate(e)]
                return bool(found)

            assert self.cond.wait_for(seen, timeout), f"{what} not seen in {timeout}s; last: {self.events[-3:]}"
            return found[0]

    def seqs(self, execution_id: str) -> list[int]:
        with self.cond:
            return [e["seq"] for e in self.events if e.get("execution_id") == execution_id]


def assert_contiguous(seqs: list[int], what: str = "events") -> None:
    assert seqs, f"no {what}"
    assert seqs == list(range(1, len(seqs) + 1)), f"{what}: sequence gaps or duplicates in {seqs[:50]}..."
