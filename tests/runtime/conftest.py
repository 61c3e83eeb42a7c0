"""Runtime fixtures: real server processes on free ports, with private folders.

Every server started here is stopped by its pid at teardown (shutdown request, then
SIGTERM, then SIGKILL), so the suite-wide leak check sees no child left behind.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest
import zmq

from openhcs.runtime.lifecycle import ServerProcess, spawn_server, stop_server
from openhcs.runtime.protocol import Session
from openhcs.runtime.zmq_base import find_free_port

STEPS_DIR = Path(__file__).parent / "pipelines"
if str(STEPS_DIR) not in sys.path:  # test modules import openhcs_test_steps at the top
    sys.path.insert(0, str(STEPS_DIR))


@pytest.fixture
def runtime_env(isolated_dirs, monkeypatch):
    """Private runtime/data folders; test step functions importable by servers and workers."""
    old = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", str(STEPS_DIR) + (os.pathsep + old if old else ""))
    monkeypatch.syspath_prepend(str(STEPS_DIR))
    return isolated_dirs


@pytest.fixture
def server_factory(runtime_env):
    """``start(*launcher_args, host=..., port=..., persistent=...) -> ServerProcess``."""
    started: list[ServerProcess] = []

    def start(*args: str, host: str = "127.0.0.1", port: int | None = None,
              persistent: bool = False) -> ServerProcess:
        proc = spawn_server(port or find_free_port(), host=host, persistent=persistent,
                            args=list(args), timeout=30)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        stop_server(proc.info, popen=proc.popen, wait=15)


@pytest.fixture
def server(server_factory) -> ServerProcess:
    return server_factory("--workers", "2")


@pytest.fixture
def client(server):
    from openhcs.runtime.zmq_execution_client import ZMQExecutionClient

    c = ZMQExecutionClient(port=server.info.data_port)
    c.connect(timeout=15)
    yield c
    c.disconnect()


@pytest.fixture
def plate(tmp_path) -> Path:
    """A small synthetic ImageXpress plate: 2 x 3 wells, 2 x 2 sites, 2 channels."""
    from openhcs.demo.plate import make_demo_plate

    path = tmp_path / "plate"
    make_demo_plate(path, rows=2, cols=3, image_size=96)
    return path


class RawPeer:
    """A bare REQ socket on a server's control port, for sending arbitrary frames."""

    def __init__(self, info, key: bytes | None = None):
        self.info = info
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.REQ)
        self.sock.linger = 0
        self.sock.connect(info.control_endpoint)
        self.session = Session(info.key_bytes if key is None else key)
        self.verify = Session(info.key_bytes)

    def send(self, frames: list[bytes], timeout: float = 5.0):
        """Send frames; return the server's reply, verified with the server's real key."""
        self.sock.send_multipart(frames)
        if not self.sock.poll(int(timeout * 1000)):
            raise TimeoutError("no reply from server")
        return self.verify.deserialize(self.sock.recv_multipart())

    def close(self) -> None:
        self.sock.close(linger=0)
        self.ctx.term()


@pytest.fixture
def raw_peer(server):
    peers: list[RawPeer] = []

    def make(key: bytes | None = None) -> RawPeer:
        peer = RawPeer(server.info, key)
        peers.append(peer)
        return peer

    yield make
    for peer in peers:
        peer.close()


class EventRecorder:
    """A progress callback that records events and lets tests wait for conditions."""

    def __init__(self):
        self.events: list[dict] = []
        self._cond = threading.Condition()

    def __call__(self, message: dict) -> None:
        with self._cond:
            self.events.append(message)
            self._cond.notify_all()

    def wait_for(self, predicate, timeout: float = 30.0) -> dict:
        """The first recorded event matching ``predicate`` (waits up to ``timeout``)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no matching event among {len(self.events)}")
                self._cond.wait(remaining)

    def for_run(self, execution_id: str) -> list[dict]:
        with self._cond:
            return [e for e in self.events if e.get("execution_id") == execution_id]


@pytest.fixture
def recorder() -> EventRecorder:
    return EventRecorder()


def well_started(execution_id: str | None = None):
    def match(e: dict) -> bool:
        return (e.get("type") == "progress" and e.get("step") == "pipeline" and e.get("status") == "started"
                and (execution_id is None or e.get("execution_id") == execution_id))
    return match


def wait_pid_gone(pid: int, timeout: float) -> bool:
    """Wait (psutil, deadline) for a process that is not our child to disappear."""
    import psutil

    try:
        psutil.Process(pid).wait(timeout)
    except psutil.NoSuchProcess:
        return True
    except psutil.TimeoutExpired:
        return False
    return True
