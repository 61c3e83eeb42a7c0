"""The progress and cancel channel between a Dask run and its worker tasks (ZeroMQ).

Why not Dask's own primitives: measured from a task on a local cluster (2 shared cores),
``distributed.Event.is_set()`` costs ~0.5 ms and ``Queue.put()`` ~0.5 ms, each a scheduler
round trip, while a long step polls its cancel token every ~10 ms and every well emits
2 + 2 x steps events; a watcher thread per task would fix the polling cost but not the
event traffic through the scheduler. Over our own socket ``is_cancelled()`` costs ~3 us,
an event ~20 us and the per-well handshake ~1 ms. So progress and cancellation take a
direct path: the backend binds one ROUTER socket per run (on an address the workers can
reach) and each well's task connects a DEALER to it. Over that one connection:

- worker -> backend: ``hello`` (pid, worker address), then every progress event, in
  order (one connection per attempt keeps per-well order), then the well's outcome, so
  a result never waits in (or is lost with) a worker's memory;
- backend -> worker: ``ack`` to the hello (carrying "already cancelled"), and ``cancel``.

The hello/ack handshake removes the slow-joiner race a PUB/SUB cancel channel would have:
a cancel issued before the task connected is answered in the ack, and a cancel issued
afterwards goes to the attempt's own routing id. ``is_cancelled()`` on the worker is a
non-blocking poll of its socket (microseconds), so no watcher thread is needed.

Messages are JSON objects carrying the run's random token; anything else is dropped. The
backend side runs one thread: a ``zmq.Poller`` on the ROUTER and on a wake-up pipe
(commands from other threads), with a timeout only when a deadline is pending — no
sleep-polling. Only that thread touches the ROUTER and calls the backend's handlers.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import zmq

log = logging.getLogger(__name__)

#: how long a worker waits for the backend to answer its hello
HELLO_TIMEOUT_S = float(os.environ.get("OPENHCS_DASK_HELLO_TIMEOUT", "20"))
#: how long a worker socket keeps unsent events after the task returned
WORKER_LINGER_MS = 5000
#: environment override for the address the backend binds (what workers connect to)
CHANNEL_HOST_ENV = "OPENHCS_DASK_CHANNEL_HOST"


#: how a well's error starts when its worker could not reach the channel
UNREACHABLE = "no answer from the openhcs progress channel"


class ChannelUnreachable(RuntimeError):
    """A worker task could not reach the run's progress channel."""


def encode(msg: dict[str, Any]) -> bytes:
    return json.dumps(msg, separators=(",", ":"), default=str).encode()


def decode(raw: bytes) -> dict[str, Any] | None:
    try:
        msg = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return msg if isinstance(msg, dict) else None


def channel_host_for(scheduler_address: str | None) -> str:
    """The local address workers can reach: the interface that routes to the scheduler.

    ``OPENHCS_DASK_CHANNEL_HOST`` overrides it (e.g. a cluster-internal interface). A
    local cluster (no address, or a loopback scheduler) gets 127.0.0.1.
    """
    override = os.environ.get(CHANNEL_HOST_ENV)
    if override:
        return override
    if not scheduler_address:
        return "127.0.0.1"
    host = urlparse(scheduler_address if "://" in scheduler_address else f"tcp://{scheduler_address}").hostname
    if not host or host in ("localhost", "127.0.0.1", "::1"):
        return "127.0.0.1"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((host, 9))  # no packet is sent: this only picks the route
            return probe.getsockname()[0]
        except OSError:
            return "0.0.0.0"


# ---------------------------------------------------------------- worker side
class WorkerLink:
    """One well attempt's connection to the backend.

    Used from the task's thread; the lock only guards against a step that calls
    ``checkpoint()`` from threads of its own (a zmq socket must not be shared unguarded).
    """

    def __init__(self, address: str, token: str, well: str, attempt: str) -> None:
        self._lock = threading.Lock()
        self._token = token
        self._well = well
        self._attempt = attempt
        self._cancelled = False
        self._sock = zmq.Context.instance().socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, WORKER_LINGER_MS)
        self._sock.setsockopt(zmq.ROUTING_ID, attempt.encode())
        self._sock.connect(address)
        self._address = address

    def hello(self, pid: int, worker: str) -> None:
        """Announce this attempt and wait for the backend's ack (tells if cancelled)."""
        self._send({"k": "hello", "pid": pid, "worker": worker})
        deadline = time.monotonic() + HELLO_TIMEOUT_S
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._sock.poll(int(remaining * 1000) + 1):
                raise ChannelUnreachable(
                    f"{UNREACHABLE} at {self._address} within "
                    f"{HELLO_TIMEOUT_S:g}s; workers must reach the submitting machine there "
                    f"(set {CHANNEL_HOST_ENV} to an address they can reach)"
                )
            if self._take() == "ack":
                return

    def emit(self, axis_id: str, step: str, status: str, metadata: dict[str, Any]) -> None:
        self._send({"k": "ev", "s": step, "st": status, "m": metadata})

    def send_outcome(self, outcome: dict[str, Any]) -> None:
        """The well's result, after its last event (so nothing depends on the worker's memory)."""
        self._send({"k": "done", "o": outcome})

    def is_cancelled(self, timeout: float = 0.0) -> bool:
        """True once this well was cancelled; waits up to ``timeout`` seconds for that."""
        if self._cancelled:
            return True
        deadline = time.monotonic() + timeout
        with self._lock:
            while not self._cancelled:
                wait_ms = max(0, int((deadline - time.monotonic()) * 1000))
                if not self._sock.poll(wait_ms):
                    break
                self._take()
        return self._cancelled

    def close(self) -> None:
        with self._lock:
            self._sock.close()  # LINGER lets queued events drain in zmq's I/O thread

    def _send(self, body: dict[str, Any]) -> None:
        raw = encode({"t": self._token, "w": self._well, "a": self._attempt, **body})
        with self._lock:
            self._sock.send(raw)

    def _take(self) -> str | None:
        msg = decode(self._sock.recv())
        if msg is None or msg.get("t") != self._token:
            return None
        if msg.get("cancelled") or msg.get("k") == "cancel":
            self._cancelled = True
        return msg.get("k")


# ---------------------------------------------------------------- backend side
class Hub:
    """The backend's ROUTER socket and the one thread that serves it.

    ``on_message(attempt, msg)`` runs for each message bearing the token;
    ``on_command(cmd)`` for each object passed to :meth:`post`; ``on_tick()`` after
    every wake-up. ``next_deadline()`` (monotonic seconds or None) bounds the wait.
    """

    def __init__(
        self,
        host: str,
        token: str,
        on_message: Callable[[str, dict[str, Any]], None],
        on_command: Callable[[Any], None],
        on_tick: Callable[[], None],
        next_deadline: Callable[[], float | None],
    ) -> None:
        self.token = token
        self._on_message = on_message
        self._on_command = on_command
        self._on_tick = on_tick
        self._next_deadline = next_deadline
        self._ctx = zmq.Context.instance()
        self._router = self._ctx.socket(zmq.ROUTER)
        self._router.setsockopt(zmq.LINGER, 0)
        port = self._router.bind_to_random_port(f"tcp://{host}")
        shown = "127.0.0.1" if host == "0.0.0.0" else host
        self.address = f"tcp://{shown}:{port}"
        self._commands: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._stopping = False
        self._wake_lock = threading.Lock()  # no wake-up write after the pipe is closed
        self._thread = threading.Thread(target=self._loop, name="openhcs-dask-progress", daemon=True)
        self._thread.start()

    def post(self, command: Any) -> None:
        """Hand ``command`` to the hub thread (any thread; ignored once stopped)."""
        self._commands.put(command)
        self._wake()

    def send(self, attempt: str, body: dict[str, Any]) -> None:
        """Send to one attempt; only from the hub thread (inside a handler)."""
        try:
            self._router.send_multipart(
                [attempt.encode(), encode({"t": self.token, **body})], flags=zmq.NOBLOCK
            )
        except zmq.ZMQError as exc:  # peer gone: nothing to tell it any more
            log.debug("could not send to attempt %s: %s", attempt, exc)

    def stop(self) -> None:
        """Stop the thread and join it (it closes the socket and the pipe)."""
        with self._wake_lock:
            if self._stopping:
                return
            self._stopping = True
            try:
                os.write(self._wake_w, b"x")
            except BlockingIOError:  # already full of wake-ups: the thread will see _stopping
                pass
        if threading.current_thread() is not self._thread:  # a handler may close its backend
            self._thread.join()

    def _wake(self) -> None:
        with self._wake_lock:
            if self._stopping:
                return
            try:
                os.write(self._wake_w, b"x")
            except BlockingIOError:  # the pipe is full of wake-ups already
                pass

    def _loop(self) -> None:
        try:
            self._serve()
        finally:  # the thread owns the socket and the pipe: it closes them on its way out
            self._router.close()
            with self._wake_lock:
                self._stopping = True
                os.close(self._wake_r)
                os.close(self._wake_w)

    def _serve(self) -> None:
        poller = zmq.Poller()
        poller.register(self._router, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        while not self._stopping:
            deadline = self._next_deadline()
            timeout = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000) + 1)
            ready = dict(poller.poll(timeout))
            if self._router in ready:
                self._drain_router()
            if self._wake_r in ready:
                try:
                    while os.read(self._wake_r, 4096):
                        pass
                except BlockingIOError:
                    pass
            self._drain_commands()
            self._guard(self._on_tick)

    def _drain_router(self) -> None:
        while True:
            try:
                attempt, raw = self._router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            except ValueError:  # wrong frame count: not ours
                continue
            msg = decode(raw)
            if msg is None or msg.get("t") != self.token:
                log.debug("dropped a message without this run's token")
                continue
            self._guard(self._on_message, attempt.decode(errors="replace"), msg)

    def _drain_commands(self) -> None:
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            self._guard(self._on_command, command)

    @staticmethod
    def _guard(fn: Callable, *args: Any) -> None:
        try:
            fn(*args)
        except Exception:  # a broken handler or callback must not stop progress delivery
            log.exception("openhcs dask progress handler raised")
