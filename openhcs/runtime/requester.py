"""Reliable requests to an execution server: the Lazy Pirate pattern over a REQ socket.

Why a separate module: it is the one piece both the client and the lifecycle code (which
asks a server to shut down) need, and neither should import the other. A REQ socket whose
request was lost is stuck waiting forever, so on a timeout the socket is closed and
reopened and the request re-sent — with a fresh ``msg_id`` (the server refuses replays)
but the same ``request_id`` (so a re-sent ``execute`` is idempotent) — a bounded number of
times; then :class:`ServerUnavailable` is raised rather than hanging.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import msgspec
import zmq

from openhcs.runtime import curve
from openhcs.runtime.connection import ConnectionInfo
from openhcs.runtime.protocol import (
    Error,
    Message,
    Ping,
    Pong,
    ProtocolError,
    Reply,
    Session,
    new_id,
)

log = logging.getLogger(__name__)

_MORE = int(zmq.SNDMORE)  # plain ints: pyzmq's enum flags cost more than the send itself


class ServerUnavailable(ConnectionError):
    """The server did not answer within the timeout and retries, or is known dead."""


class ServerError(RuntimeError):
    """The server answered with a structured ``error`` reply."""

    def __init__(self, code: str, message: str, traceback: str | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.traceback = traceback



def send_frames(sock: zmq.Socket, frames: list[bytes]) -> None:
    """``send_multipart`` without per-frame enum arithmetic (hot path)."""
    last = len(frames) - 1
    for i, frame in enumerate(frames):
        sock.send(frame, _MORE if i < last else 0)




def client_curve(info: ConnectionInfo, curve_dir: Path | None) -> curve.ClientKeys | None:
    if not info.curve_public_key:
        return None
    return curve.load_client_keys(info.curve_public_key, curve_dir)


class Requester:
    """A Lazy Pirate REQ client: per-request timeout; on timeout the socket is closed and
    reopened and the request re-sent (fresh msg_id, same request_id) up to ``retries``
    times; then :class:`ServerUnavailable`. Thread-safe (one request at a time)."""

    def __init__(self, context: zmq.Context, info: ConnectionInfo, timeout: float = 5.0,
                 retries: int = 3, curve_dir: Path | None = None):
        self.context = context
        self.info = info
        self.session = Session(info.key_bytes)
        self.timeout = timeout
        self.retries = retries
        self._curve = client_curve(info, curve_dir)
        self._sock: zmq.Socket | None = None
        self._rcvtimeo: int | None = None
        self._lock = threading.Lock()

    def _open(self) -> zmq.Socket:
        sock = self.context.socket(zmq.REQ)
        sock.linger = 0
        self._rcvtimeo = None
        if self._curve is not None:
            curve.make_client_socket(sock, self._curve)
        sock.connect(self.info.control_endpoint)
        self._sock = sock
        return sock

    def _discard(self) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None

    def request(self, msg: Message, timeout: float | None = None, retries: int | None = None) -> Reply:
        timeout = self.timeout if timeout is None else timeout
        retries = self.retries if retries is None else retries
        if not msg.request_id:
            msg = msgspec.structs.replace(msg, request_id=new_id())
        with self._lock:
            for attempt in range(retries + 1):
                if attempt:
                    msg = msgspec.structs.replace(msg, msg_id=new_id(), timestamp=time.time())
                sock = self._sock or self._open()
                wait_ms = max(1, int(timeout * 1000))
                if wait_ms != self._rcvtimeo:
                    sock.setsockopt(zmq.RCVTIMEO, wait_ms)
                    self._rcvtimeo = wait_ms
                send_frames(sock, self.session.serialize(msg))
                try:
                    frames = sock.recv_multipart()
                except zmq.Again:
                    frames = None
                if frames is not None:
                    reply = self.session.deserialize(frames)
                    if isinstance(reply, Reply) and reply.reply_to not in ("", msg.msg_id):
                        self._discard()
                        raise ProtocolError("mismatched_reply", "reply does not answer the request")
                    return reply
                self._discard()
                log.debug("no reply to %s within %.2fs (attempt %d)", type(msg).__name__, timeout, attempt + 1)
        raise ServerUnavailable(
            f"no reply from {self.info.control_endpoint} after {retries + 1} attempt(s) of {timeout:.1f}s"
        )

    def close(self) -> None:
        with self._lock:
            self._discard()


def ping_server(info: ConnectionInfo, timeout: float = 1.0, curve_dir: Path | None = None) -> Pong | None:
    """One signed ping; the pong, or None if the server did not answer in time."""
    ctx = zmq.Context()
    try:
        req = Requester(ctx, info, timeout=timeout, retries=0, curve_dir=curve_dir)
        try:
            reply = req.request(Ping())
        except (ServerUnavailable, ProtocolError):
            return None
        finally:
            req.close()
        return reply if isinstance(reply, Pong) else None
    finally:
        ctx.term()


def check_reply(reply: Reply, *expected: type) -> Reply:
    """Raise :class:`ServerError` for an error reply or an unexpected type."""
    if isinstance(reply, Error):
        raise ServerError(reply.code, reply.message, reply.traceback)
    if expected and not isinstance(reply, expected):
        raise ServerError("unexpected_reply", f"unexpected reply {type(reply).__name__}")
    return reply
