"""Generic dual-channel ZeroMQ server and client (transport only — no execution logic).

Channels: a PUB socket on the data port P carries progress, ``hello`` and ``heartbeat``
messages (topic frame = execution id, or ``b"server"``); a ROUTER socket on the control
port P+1000 answers REQ clients, so one slow client never blocks another.

Why the handshake: a SUB socket that has just connected misses whatever the PUB sends in
the first milliseconds (the "slow joiner"). A client is therefore connected only after a
``pong`` on the control channel *and* a ``hello`` carrying its own nonce on the data
channel; until the hello arrives it re-pings.

Why no sleeps: the server loop blocks in ``zmq.Poller.poll`` on the ROUTER and an inproc
wake-up socket that worker threads signal; the timeout is only the next heartbeat. The
client's listener thread likewise blocks on its SUB socket and an inproc command pipe.
Requests are Lazy Pirate: bounded wait, close and reopen the REQ socket, bounded retries.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from pathlib import Path

import zmq

from openhcs.runtime import curve
from openhcs.runtime.connection import (
    ConnectionInfo,
    connection_file_path,
    control_port_for,
    find_server,
    is_loopback,
    new_key,
    process_create_time,
    read_connection_file,
    remove_connection_file,
    write_connection_file,
)
from openhcs.runtime.protocol import (
    INTERNAL,
    MAX_MESSAGE_BYTES,
    REQUEST_TYPES,
    Error,
    Heartbeat,
    Hello,
    Message,
    Ping,
    Pong,
    ProtocolError,
    Reply,
    Session,
    new_id,
    reply_to,
    split_envelope,
)
from openhcs.runtime.requester import (  # noqa: F401 — re-exported: the transport's public names
    Requester,
    ServerError,
    ServerUnavailable,
    check_reply,
    client_curve,
    ping_server,
    send_frames,
)

log = logging.getLogger(__name__)

SERVER_TOPIC = b"server"
_POLLIN = int(zmq.POLLIN)
SOCKET_LINGER_MS = 200
PUB_HWM = 200_000


# --------------------------------------------------------------------------- ports


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def find_free_port(start: int = 20000, end: int = 60000, host: str = "127.0.0.1") -> int:
    """A data port P such that P and P+1000 are both free right now."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if start <= port < end and port_is_free(control_port_for(port), host):
            return port
    raise RuntimeError("no free port pair found")


def bind_host(host: str) -> str:
    return "127.0.0.1" if host in ("localhost", "") else host


# --------------------------------------------------------------------------- server


class ZMQServer(ABC):
    """A signed, versioned request/reply + publish server on two ports.

    Subclasses provide ``request_handlers()`` (an explicit table: request type → method
    returning a reply) and may override ``handle_posted(item)`` for items that other
    threads hand to the loop with ``post()``. All socket work happens in the loop thread.
    """

    heartbeat_interval = 0.5

    def __init__(self, port: int, host: str = "127.0.0.1", key: str | None = None,
                 curve_dir: Path | None = None, persistent: bool = False,
                 log_file: str | None = None, write_connection: bool = True):
        self.port = port
        self.control_port = control_port_for(port)
        self.host = bind_host(host)
        self.key = key or new_key()
        self.session = Session(self.key.encode(), check_replay=True)
        self.persistent = persistent
        self.log_file = log_file
        self.write_connection = write_connection
        self.curve_dir = curve_dir
        self.started_at = time.time()
        self.info: ConnectionInfo | None = None
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._posted: deque = deque()
        self._wake_lock = threading.Lock()
        self._wake_pending = False
        self._wake_addr = f"inproc://openhcs-wake-{id(self)}"
        self._ctx: zmq.Context | None = None
        self._auth = None
        self._handlers: dict[type, Callable[[Message], Reply | None]] = {Ping: self._handle_ping}
        self._handlers.update(self.request_handlers())
        missing = set(REQUEST_TYPES) - set(self._handlers)
        if missing:
            raise TypeError(f"{type(self).__name__} handles no {sorted(c.__name__ for c in missing)}")

    # ---- subclass API
    @abstractmethod
    def request_handlers(self) -> dict[type, Callable[[Message], Reply | None]]:
        """Request type → handler; every type in ``protocol.REQUEST_TYPES`` but ping."""

    def handle_posted(self, item) -> None:  # noqa: B027 — optional hook
        """Called in the loop thread for each item given to ``post()``."""

    def on_tick(self) -> None:  # noqa: B027 — optional hook
        """Called in the loop thread at every heartbeat."""

    def counts(self) -> tuple[int, int]:
        """(active runs, queued runs) for pong and heartbeat."""
        return 0, 0

    # ---- lifecycle
    def bind(self) -> ConnectionInfo:
        """Create and bind the sockets, then write the connection file."""
        ctx = self._ctx = zmq.Context()
        keys = None
        if not is_loopback(self.host):
            keys = curve.load_server_keys(self.curve_dir)  # raises CurveKeysMissing
            self._auth = curve.start_authenticator(ctx, keys)
        try:
            self._pub = ctx.socket(zmq.PUB)
            self._router = ctx.socket(zmq.ROUTER)
            self._wake_pull = ctx.socket(zmq.PULL)
            self._wake_push = ctx.socket(zmq.PUSH)
            for sock in (self._pub, self._router, self._wake_pull, self._wake_push):
                sock.linger = SOCKET_LINGER_MS
            self._pub.sndhwm = PUB_HWM
            self._router.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
            if keys is not None:
                curve.make_server_socket(self._pub, keys)
                curve.make_server_socket(self._router, keys)
            self._pub.bind(f"tcp://{self.host}:{self.port}")
            self._router.bind(f"tcp://{self.host}:{self.control_port}")
            self._wake_pull.bind(self._wake_addr)
            self._wake_push.connect(self._wake_addr)
        except BaseException:
            self._close_sockets()
            raise
        self.info = ConnectionInfo(
            host=self.host, data_port=self.port, control_port=self.control_port,
            pid=os.getpid(), key=self.key, started_at=self.started_at,
            curve_public_key=keys.public.decode() if keys else None,
            pid_create_time=process_create_time(os.getpid()),
            log_file=self.log_file, persistent=self.persistent,
        )
        if self.write_connection:
            write_connection_file(self.info)
        return self.info

    def serve_forever(self) -> None:
        """Run the control loop in this thread until ``request_stop()``; then close."""
        if self.info is None:
            self.bind()
        try:
            self._loop()
        finally:
            try:
                self.on_stop()
            finally:
                self._close_sockets()
                if self.write_connection:
                    remove_connection_file(self.port, os.getpid())
                self._stopped.set()

    def on_stop(self) -> None:  # noqa: B027 — optional hook
        """Called in the loop thread after the loop ends, before the sockets close."""

    def request_stop(self, wake: bool = True) -> None:
        """Ask the loop to end. Safe from any thread; from a signal handler pass
        ``wake=False`` (the loop notices within one heartbeat interval)."""
        self._stop.set()
        if wake:
            self.post(None)

    def wait_stopped(self, timeout: float | None = None) -> bool:
        return self._stopped.wait(timeout)

    def post(self, item) -> None:
        """Hand ``item`` to the loop thread (thread-safe, never blocks on the loop).

        Only the first item after the loop last drained sends a wake-up message, so a
        burst of progress events costs one socket message, not one each."""
        with self._wake_lock:
            self._posted.append(item)
            if self._wake_pending or self._ctx is None or self._ctx.closed:
                return
            self._wake_pending = True
            try:
                self._wake_push.send(b"", zmq.NOBLOCK)
            except zmq.ZMQError:
                pass  # closing; the item is simply dropped with the loop

    def publish(self, topic: bytes, msg) -> None:
        """Sign and publish a message (a Struct, or a dict with the same fields)."""
        send_frames(self._pub, [topic, *self.session.serialize(msg)])

    # ---- the loop
    def _loop(self) -> None:
        poller = zmq.Poller()
        poller.register(self._router, zmq.POLLIN)
        poller.register(self._wake_pull, zmq.POLLIN)
        next_beat = time.monotonic()
        while not self._stop.is_set():
            # items left by a bounded drain: look at requests, then keep draining
            wait_ms = 0 if self._posted else max(0.0, (next_beat - time.monotonic()) * 1000)
            try:
                ready = dict(poller.poll(wait_ms))
            except zmq.ZMQError as exc:  # EINTR from a signal: re-check the stop flag
                if exc.errno == zmq.EINTR:
                    continue
                raise
            if self._wake_pull in ready:
                self._drain_wakes()
            if self._router in ready:
                router = self._router
                for _ in range(256):  # bounded so posted events are never starved
                    frames = router.recv_multipart()
                    try:
                        self._on_request(frames)
                    except Exception:  # e.g. a reply that cannot be sent: log, keep serving
                        log.exception("error answering a request")
                    if not router.getsockopt(zmq.EVENTS) & _POLLIN:
                        break
            if self._posted:
                self._drain_posted()
            if time.monotonic() >= next_beat:
                self._beat()
                next_beat = time.monotonic() + self.heartbeat_interval

    def _drain_wakes(self) -> None:
        # Consume the wake-ups first, then re-arm: a post() that lands in between still
        # finds "pending" and sends nothing, but its item is drained right after this
        # (the loop always drains posted items next). Re-arming first would let such a
        # wake-up be swallowed here and leave "pending" stuck, so later posts would wait
        # for the next heartbeat.
        while True:
            try:
                self._wake_pull.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
        with self._wake_lock:
            self._wake_pending = False

    def _drain_posted(self, limit: int | None = 2000) -> None:
        """Handle posted items — at most ``limit`` per loop turn, so a burst of progress
        events never keeps requests waiting."""
        posted = self._posted
        while posted and (limit is None or limit > 0):
            if limit is not None:
                limit -= 1
            item = posted.popleft()
            if item is None:
                continue
            try:
                self.handle_posted(item)
            except Exception:
                log.exception("error handling an internal event %r", item)

    def _beat(self) -> None:
        active, queued = self.counts()
        self.publish(SERVER_TOPIC, Heartbeat(server_pid=os.getpid(), active_runs=active, queued_runs=queued))
        try:
            self.on_tick()
        except Exception:
            log.exception("error in periodic tick")

    def _on_request(self, frames: list[bytes]) -> None:
        envelope, content = split_envelope(frames)
        try:
            msg = self.session.deserialize(content, expect=REQUEST_TYPES)
        except ProtocolError as exc:
            log.warning("refused a message: %s", exc)
            reply = exc.to_reply()
        except Exception as exc:  # a decoder bug must not end the loop either
            log.exception("could not decode a message")
            reply = Error(code=INTERNAL, message=f"could not decode the message: {type(exc).__name__}")
        else:
            try:
                reply = self._handlers[type(msg)](msg)
            except Exception as exc:  # the server never dies of a message
                log.exception("error handling %s", type(msg).__name__)
                reply = reply_to(msg, Error, code=INTERNAL, message=f"{type(exc).__name__}: {exc}",
                                 traceback=traceback.format_exc())
        if reply is not None:
            send_frames(self._router, [*envelope, *self.session.serialize(reply)])

    def _handle_ping(self, msg: Ping) -> Pong:
        if msg.nonce:
            self.publish(SERVER_TOPIC, Hello(nonce=msg.nonce, server_pid=os.getpid()))
        active, queued = self.counts()
        return reply_to(msg, Pong, server_pid=os.getpid(), data_port=self.port,
                        control_port=self.control_port, nonce=msg.nonce,
                        active_runs=active, queued_runs=queued)

    def _close_sockets(self) -> None:
        with self._wake_lock:
            for name in ("_pub", "_router", "_wake_pull", "_wake_push"):
                sock = getattr(self, name, None)
                if sock is not None:
                    sock.close(linger=SOCKET_LINGER_MS)
            if self._auth is not None:
                self._auth.stop()
                self._auth = None
            if self._ctx is not None:
                self._ctx.term()


# --------------------------------------------------------------------------- client


class ZMQClient(ABC):
    """Connects to (or spawns) a server on ``port``, runs the data-channel listener thread.

    Subclasses implement ``on_data(msg)`` (called in the listener thread for every data
    message except hello/heartbeat) and may implement ``on_command(frames)`` for commands
    sent to the listener with ``send_command``.
    """

    handshake_interval = 0.05

    def __init__(self, host: str = "localhost", port: int = 7777, persistent: bool = False,
                 timeout: float = 5.0, retries: int = 3, connection_file: str | None = None,
                 key: str | None = None, curve_dir: Path | None = None,
                 server_args: list[str] | None = None):
        self.host = host
        self.port = port
        self.persistent = persistent
        self.timeout = timeout
        self.retries = retries
        self.connection_file = connection_file
        self.key = key
        self.curve_dir = curve_dir
        self.server_args = list(server_args or [])
        self.info: ConnectionInfo | None = None
        self.server_process = None  # lifecycle.ServerProcess when this client spawned it
        self.last_seen = 0.0  # monotonic time of the last data-channel message
        self._ctx: zmq.Context | None = None
        self._requester: Requester | None = None
        self._listener: threading.Thread | None = None
        self._cmd_push: zmq.Socket | None = None
        self._cmd_lock = threading.Lock()
        self._cmd_addr = f"inproc://openhcs-client-{id(self)}"
        self._hello = threading.Event()
        self._nonce = ""
        self._sub_ready = threading.Event()

    @property
    def connected(self) -> bool:
        return self._listener is not None and self._hello.is_set()

    # ---- subclass API
    @abstractmethod
    def on_data(self, msg: Message) -> None:
        """A data-channel message (progress or run event), in the listener thread."""

    def on_command(self, frames: list[bytes]) -> None:  # noqa: B027 — optional hook
        """A command sent with ``send_command``, in the listener thread."""

    def on_listener_start(self) -> None:  # noqa: B027
        """Called in the listener thread before it starts receiving."""

    def on_listener_stop(self) -> None:  # noqa: B027
        """Called in the listener thread after it stopped receiving."""

    # ---- connect / disconnect
    def _is_local(self) -> bool:
        return is_loopback(self.host)

    def _resolve(self) -> ConnectionInfo | None:
        if self.connection_file:
            return read_connection_file(self.connection_file)
        if self.key:
            return ConnectionInfo(host=self.host, data_port=self.port,
                                  control_port=control_port_for(self.port), pid=0, key=self.key)
        if self._is_local():
            return find_server(self.port)
        path = connection_file_path(self.port)
        if path.exists():
            info = read_connection_file(path)
            info.host = self.host
            return info
        return None

    def connect(self, timeout: float = 15) -> ZMQClient:
        """Attach to the server on this port, spawning one locally if none runs."""
        if self.connected:
            return self
        deadline = time.monotonic() + timeout
        info = self._resolve()
        if info is None:
            if not self._is_local():
                raise ServerUnavailable(
                    f"no connection file for {self.host}:{self.port}; pass connection_file= or key="
                )
            info = self._spawn(deadline)
        self.info = info
        self._ctx = zmq.Context()
        try:
            self._requester = Requester(self._ctx, info, self.timeout, self.retries, self.curve_dir)
            self._start_listener()
            self._handshake(deadline)
        except BaseException:
            self._teardown()
            raise
        return self

    def _spawn(self, deadline: float) -> ConnectionInfo:
        from openhcs.runtime import lifecycle

        try:
            self.server_process = lifecycle.spawn_server(
                self.port, persistent=self.persistent, args=self.server_args,
                timeout=max(0.1, deadline - time.monotonic()),
            )
        except lifecycle.SpawnError:
            info = find_server(self.port)  # another client won the race to start it
            if info is None:
                raise
            return info
        return self.server_process.info

    def _handshake(self, deadline: float) -> Pong:
        self._nonce = new_id()
        self._hello.clear()
        wait = self.handshake_interval
        last_error: Exception | None = None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ServerUnavailable(
                    f"handshake with {self.info.control_endpoint} did not complete: {last_error or 'no hello'}"
                )
            try:
                reply = self._requester.request(
                    Ping(nonce=self._nonce), timeout=min(remaining, self.timeout), retries=0)
                pong = check_reply(reply, Pong)
            except ServerUnavailable as exc:
                last_error = exc
                self._check_spawned_alive()
                continue
            if self._hello.wait(min(wait, max(0.0, deadline - time.monotonic()))):
                return pong
            wait = min(wait * 2, 1.0)

    def _check_spawned_alive(self) -> None:
        proc = self.server_process
        if proc is not None and proc.popen.poll() is not None:
            raise ServerUnavailable(f"server process {proc.pid} exited with code {proc.popen.returncode}")

    def request(self, msg: Message, *expected: type, timeout: float | None = None,
                retries: int | None = None) -> Reply:
        if self._requester is None:
            raise ServerUnavailable("not connected; call connect() first")
        return check_reply(self._requester.request(msg, timeout, retries), *expected)

    def disconnect(self) -> None:
        """Stop the listener, close sockets; stop the server if this client owns it."""
        self._teardown()
        proc, self.server_process = self.server_process, None
        if proc is not None and not self.persistent:
            from openhcs.runtime import lifecycle

            lifecycle.stop_server(proc.info, popen=proc.popen)

    def _teardown(self) -> None:
        if self._listener is not None:
            self.send_command(b"stop")
            self._listener.join()
            self._listener = None
        if self._cmd_push is not None:
            with self._cmd_lock:
                self._cmd_push.close(linger=0)
                self._cmd_push = None
        if self._requester is not None:
            self._requester.close()
            self._requester = None
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None
        self._hello.clear()

    def __enter__(self):
        return self.connect() if not self.connected else self

    def __exit__(self, *exc) -> None:
        self.disconnect()

    # ---- listener thread
    def send_command(self, *frames: bytes) -> None:
        with self._cmd_lock:
            if self._cmd_push is not None:
                self._cmd_push.send_multipart(list(frames))

    def _start_listener(self) -> None:
        self._cmd_push = self._ctx.socket(zmq.PUSH)
        self._cmd_push.linger = 0
        pull = self._ctx.socket(zmq.PULL)
        pull.linger = 0
        pull.bind(self._cmd_addr)
        self._cmd_push.connect(self._cmd_addr)
        sub = self._ctx.socket(zmq.SUB)
        sub.linger = 0
        sub.rcvhwm = PUB_HWM
        client_keys = client_curve(self.info, self.curve_dir)
        if client_keys is not None:
            curve.make_client_socket(sub, client_keys)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(self.info.data_endpoint)
        self.last_seen = time.monotonic()
        self._listener = threading.Thread(
            target=self._listen, args=(sub, pull), name=f"openhcs-listener-{self.port}", daemon=True)
        self._listener.start()

    def _listen(self, sub: zmq.Socket, pull: zmq.Socket) -> None:
        session = Session(self.info.key_bytes)
        poller = zmq.Poller()
        poller.register(sub, zmq.POLLIN)
        poller.register(pull, zmq.POLLIN)
        try:
            self.on_listener_start()
            while True:
                ready = dict(poller.poll())
                if pull in ready:
                    frames = pull.recv_multipart()
                    if frames[0] == b"stop":
                        return
                    self.on_command(frames)
                if sub in ready:
                    for _ in range(1024):
                        try:
                            frames = sub.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        self.last_seen = time.monotonic()
                        try:
                            msg = session.deserialize(frames[1:])
                        except Exception as exc:  # ProtocolError, or worse from a bad peer
                            log.warning("dropped a data message: %s", exc)
                            continue
                        if isinstance(msg, Heartbeat):
                            continue
                        if isinstance(msg, Hello):
                            if msg.nonce == self._nonce:
                                self._hello.set()
                            continue
                        try:
                            self.on_data(msg)
                        except Exception:
                            log.exception("error handling a data message")
        finally:
            try:
                self.on_listener_stop()
            finally:
                sub.close(linger=0)
                pull.close(linger=0)
