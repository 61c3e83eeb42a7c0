"""The openhcs execution wire protocol — the only module that knows the wire format.

Why one module: signing, versioning and parsing are security-relevant. If any other
module built or parsed frames by hand, a message could bypass the signature or replay
checks. Everything else (server, client, tests) goes through :class:`Session`.

A message is a list of frames::

    [b"openhcs/1", signature_hex, body_json]

(a ROUTER socket adds ``[identity, b""]`` in front, a PUB socket a topic frame).
``signature_hex`` is HMAC-SHA256, keyed with the secret from the connection file, over
the version frame and the body. The body is a JSON object with ``type``, ``msg_id``
(a fresh uuid per message), ``request_id`` (chosen by the client; retries keep it, which
makes ``execute`` idempotent), ``version`` and ``timestamp``, plus the fields of its type.

No pickle, ever: bodies are msgspec Structs encoded as JSON, validated on decode
(unknown types or fields are refused). See ``docs/protocol.md`` for every message.
"""

from __future__ import annotations

import hmac
import itertools
import os
import time
import uuid
from collections import OrderedDict
from typing import Any, Union

import msgspec

PROTOCOL_VERSION = 1
HEADER = b"openhcs/%d" % PROTOCOL_VERSION
HEADER_PREFIX = b"openhcs/"
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
DEFAULT_WINDOW_SECONDS = 60.0

# Error codes carried by ``Error.code``.
BAD_FRAMES = "bad_frames"
UNSUPPORTED_VERSION = "unsupported_version"
BAD_SIGNATURE = "bad_signature"
MALFORMED = "malformed"
UNKNOWN_TYPE = "unknown_type"
INVALID_MESSAGE = "invalid_message"
REPLAYED = "replayed"
STALE = "stale"
UNEXPECTED_TYPE = "unexpected_type"
INTERNAL = "internal"
SHUTTING_DOWN = "shutting_down"


class _Ids:
    """Unique ids without a syscall each: a random 64-bit per-process prefix + a counter.
    (uuid4 reads os.urandom every time, which shows on the ping path.) A forked child
    gets a fresh prefix."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.prefix = uuid.uuid4().hex[:16]
        self.counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self.prefix}{next(self.counter):016x}"


new_id = _Ids()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=new_id.reset)


class Message(
    msgspec.Struct, tag_field="type", forbid_unknown_fields=True, kw_only=True
):
    """Envelope fields every message carries."""

    msg_id: str = msgspec.field(default_factory=new_id)
    request_id: str = ""
    version: int = PROTOCOL_VERSION
    timestamp: float = msgspec.field(default_factory=time.time)


# --------------------------------------------------------------------------- requests


class Ping(Message, tag="ping", kw_only=True):
    """Handshake / liveness. With a ``nonce`` the server also publishes a ``hello``
    carrying it on the data channel, proving the client's SUB socket is joined."""

    nonce: str = ""


class Execute(Message, tag="execute", kw_only=True):
    plate_id: str
    pipeline_code: str
    config_code: str | None = None
    config_params: dict[str, Any] | None = None
    wells: list[str] | None = None


class Status(Message, tag="status", kw_only=True):
    execution_id: str | None = None


class Cancel(Message, tag="cancel", kw_only=True):
    execution_id: str
    axis_ids: list[str] | None = None
    force: bool = False
    grace_seconds: float | None = None


class Events(Message, tag="events", kw_only=True):
    execution_id: str
    from_seq: int = 0


class Shutdown(Message, tag="shutdown", kw_only=True):
    """Graceful stop: cancel running runs (wait ``grace_seconds``), then exit."""

    grace_seconds: float = 5.0


class Kill(Message, tag="kill", kw_only=True):
    """Immediate stop: force-cancel every run, then exit."""


class Functions(Message, tag="functions", kw_only=True):
    """The server's function catalog (built-ins, scikit-image, plugins), optionally filtered:
    ``search`` words must all occur in an entry's name, category, contract or summary."""

    search: str | None = None
    category: str | None = None


REQUEST_TYPES = (Ping, Execute, Status, Cancel, Events, Shutdown, Kill, Functions)

# --------------------------------------------------------------------------- replies


class Reply(Message, kw_only=True):
    """Replies copy the request's ``request_id`` and name its ``msg_id`` in ``reply_to``."""

    reply_to: str = ""


class Pong(Reply, tag="pong", kw_only=True):
    server_pid: int
    data_port: int
    control_port: int
    nonce: str = ""
    active_runs: int = 0
    queued_runs: int = 0


class Accepted(Reply, tag="accepted", kw_only=True):
    status: str = "accepted"
    execution_id: str
    state: str
    duplicate: bool = False


class StatusReply(Reply, tag="status_reply", kw_only=True):
    status: str  # "ok" | "not_found"
    execution_id: str | None = None
    execution: dict[str, Any] | None = None
    executions: list[dict[str, Any]] | None = None
    server: dict[str, Any] | None = None
    message: str = ""


class CancelReply(Reply, tag="cancel_reply", kw_only=True):
    status: str  # "ok" | "not_found"
    execution_id: str
    state: str = ""
    axis_ids: list[str] | None = None
    force: bool = False
    message: str = ""


class EventsReply(Reply, tag="events_reply", kw_only=True):
    status: str  # "ok" | "not_found" | "expired"
    execution_id: str
    events: list[dict[str, Any]] = []
    last_seq: int = 0
    terminal: bool = False
    message: str = ""


class ShutdownReply(Reply, tag="shutdown_reply", kw_only=True):
    status: str = "ok"
    cancelled: list[str] = []


class ParamEntry(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One option of a catalog function, with what a form needs to edit it.

    ``kind``: bool | int | float | str | choice | tuple | array | callable | any.
    ``default`` is ``None`` when ``required`` or when it is not plain data (an array, a
    function); ``default_repr`` is always its Python repr ("" when required).
    """

    name: str
    kind: str
    annotation: str = ""
    default: Any = None
    default_repr: str = ""
    required: bool = False
    nullable: bool = False
    choices: list[Any] = []
    doc: str = ""


class FunctionEntry(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One catalog function. ``contract`` reads ``inputs -> output``, e.g.
    ``labels + image -> table``; ``module``/``qualname`` import it."""

    name: str
    category: str
    module: str
    qualname: str
    contract: str
    inputs: list[str]
    output: str
    summary: str = ""
    doc: str = ""
    params: list[ParamEntry] = []


class FunctionsReply(Reply, tag="functions_reply", kw_only=True):
    status: str  # "ok" | "building" (ask again shortly) | "failed"
    functions: list[FunctionEntry] = []
    total: int = 0  # catalog size before filtering
    message: str = ""


class Error(Reply, tag="error", kw_only=True):
    code: str
    message: str
    traceback: str | None = None


# --------------------------------------------------------------------------- data channel


class Hello(Message, tag="hello", kw_only=True):
    nonce: str
    server_pid: int


class Heartbeat(Message, tag="heartbeat", kw_only=True):
    server_pid: int
    active_runs: int = 0
    queued_runs: int = 0


class Progress(Message, tag="progress", kw_only=True):
    """One well-level progress event. ``well_id`` always equals ``axis_id``."""

    execution_id: str
    seq: int
    axis_id: str
    well_id: str
    step: str
    status: str
    metadata: dict[str, Any] = {}


class RunEvent(Message, tag="run", kw_only=True):
    """A run-level event: ``queued``, ``started``, ``cancelling`` or a terminal state
    (``complete``/``failed``/``cancelled``), which carries ``final_seq``."""

    execution_id: str
    seq: int
    status: str
    step: str = "run"
    message: str = ""
    final_seq: int | None = None
    error: str | None = None
    traceback: str | None = None
    summary: dict[str, Any] | None = None


DATA_TYPES = (Hello, Heartbeat, Progress, RunEvent)
REPLY_TYPES = (Pong, Accepted, StatusReply, CancelReply, EventsReply, ShutdownReply, FunctionsReply, Error)
ALL_TYPES = REQUEST_TYPES + REPLY_TYPES + DATA_TYPES
TYPE_NAMES = {cls.__struct_config__.tag: cls for cls in ALL_TYPES}
TERMINAL_RUN_STATES = ("complete", "failed", "cancelled")

AnyMessage = Union[ALL_TYPES]  # noqa: UP007 — a runtime union of the tuple

def _fallback(obj: Any) -> Any:
    """JSON for values msgspec does not know (paths, numpy scalars, sets) in metadata."""
    if hasattr(obj, "item") and callable(obj.item):
        try:
            return obj.item()
        except (TypeError, ValueError):
            pass
    if isinstance(obj, set | frozenset):
        return sorted(obj, key=str)
    return str(obj)


_encoder = msgspec.json.Encoder(enc_hook=_fallback)
_decoder = msgspec.json.Decoder(AnyMessage)


class ProtocolError(Exception):
    """A message that cannot be accepted. ``code`` is one of the error codes above;
    ``request_id``/``reply_to`` are filled when the body was readable enough."""

    def __init__(self, code: str, message: str, request_id: str = "", reply_to: str = ""):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.request_id = request_id
        self.reply_to = reply_to

    def to_reply(self) -> Error:
        return Error(
            code=self.code, message=self.message, request_id=self.request_id, reply_to=self.reply_to
        )


def reply_to(request: Message, cls: type[Reply], **fields: Any) -> Reply:
    """Build a reply of type ``cls`` that answers ``request``."""
    return cls(request_id=request.request_id, reply_to=request.msg_id, **fields)


def to_dict(msg: Message, drop_none: bool = True) -> dict[str, Any]:
    """A plain dict of a message (with ``type``), as handed to user callbacks."""
    data = msgspec.to_builtins(msg)
    if drop_none:
        data = {k: v for k, v in data.items() if v is not None}
    return data


def from_dict(data: dict[str, Any]) -> Message:
    """Rebuild a typed message from :func:`to_dict` output (e.g. from an events replay)."""
    return msgspec.convert(data, AnyMessage)


class Session:
    """Signs, verifies, encodes and decodes messages with one shared key.

    ``check_replay`` turns on the replay guard used by servers: each ``msg_id`` is
    accepted once within ``window`` seconds and older timestamps are refused as stale,
    so a captured request cannot be re-sent later.
    """

    def __init__(self, key: bytes, window: float = DEFAULT_WINDOW_SECONDS,
                 check_replay: bool = False, max_remembered: int = 200_000):
        if not key:
            raise ValueError("a signing key is required")
        self.key = bytes(key)
        self.window = window
        self.check_replay = check_replay
        self._max_remembered = max_remembered
        self._seen: OrderedDict[str, tuple[float, float]] = OrderedDict()  # id -> (received, stamp)
        self._floor = float("-inf")

    # ---------------------------------------------------------------- signing
    def sign(self, body: bytes, header: bytes = HEADER) -> bytes:
        return hmac.digest(self.key, header + body, "sha256").hex().encode()

    def serialize(self, msg: Message) -> list[bytes]:
        """Frames ``[header, signature, body]`` for ``msg``."""
        body = _encoder.encode(msg)
        return [HEADER, self.sign(body), body]

    # ---------------------------------------------------------------- parsing
    def deserialize(self, frames: list[bytes], expect: tuple[type, ...] | None = None,
                    now: float | None = None) -> Message:
        """Verify and decode ``frames`` (without routing or topic frames).

        Raises :class:`ProtocolError` for anything that is not a valid, fresh, signed
        message of the current version (and of one of the ``expect`` types, if given).
        """
        if len(frames) != 3:
            raise ProtocolError(BAD_FRAMES, f"expected 3 frames (version, signature, body), got {len(frames)}")
        header, signature, body = (bytes(f) for f in frames)
        if header != HEADER:
            if header.startswith(HEADER_PREFIX):
                raise ProtocolError(
                    UNSUPPORTED_VERSION,
                    f"protocol {header.decode(errors='replace')!r} is not supported; this server speaks {HEADER.decode()!r}",
                )
            raise ProtocolError(BAD_FRAMES, "first frame must be the protocol version, e.g. b'openhcs/1'")
        if not hmac.compare_digest(self.sign(body, header), signature):
            raise ProtocolError(BAD_SIGNATURE, "missing or invalid HMAC signature")
        try:
            msg = _decoder.decode(body)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise _diagnose(body, exc) from None
        except RecursionError:
            raise ProtocolError(MALFORMED, "body is nested too deeply") from None
        if msg.version != PROTOCOL_VERSION:
            raise ProtocolError(
                UNSUPPORTED_VERSION,
                f"message version {msg.version} is not supported (expected {PROTOCOL_VERSION})",
                msg.request_id, msg.msg_id,
            )
        if expect is not None and not isinstance(msg, expect):
            raise ProtocolError(
                UNEXPECTED_TYPE, f"a {type(msg).__struct_config__.tag!r} message is not accepted here",
                msg.request_id, msg.msg_id,
            )
        if self.check_replay:
            self._guard(msg, time.time() if now is None else now)
        return msg

    def _guard(self, msg: Message, now: float) -> None:
        if abs(now - msg.timestamp) > self.window:
            raise ProtocolError(
                STALE, f"message timestamp is {now - msg.timestamp:+.1f}s away from server time "
                f"(window {self.window:.0f}s)", msg.request_id, msg.msg_id,
            )
        if msg.timestamp <= self._floor:
            raise ProtocolError(
                STALE, "message is older than ids this server still remembers (flood guard)",
                msg.request_id, msg.msg_id)
        seen = self._seen
        while seen:
            received, stamp = next(iter(seen.values()))
            if received >= now - self.window and len(seen) < self._max_remembered:
                break
            seen.popitem(last=False)
            if received >= now - self.window:
                # forgotten while still inside the window: refuse anything as old as it,
                # so a replay of a forgotten id can never be accepted
                self._floor = max(self._floor, stamp)
        if msg.msg_id in seen:
            raise ProtocolError(REPLAYED, f"message {msg.msg_id} was already received",
                                msg.request_id, msg.msg_id)
        seen[msg.msg_id] = (now, msg.timestamp)


def _diagnose(body: bytes, exc: Exception) -> ProtocolError:
    """Turn a decode failure into a specific error code (slow path, errors only)."""
    try:
        raw = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return ProtocolError(MALFORMED, f"body is not valid JSON: {exc}")
    except RecursionError:
        return ProtocolError(MALFORMED, "body is nested too deeply")
    if not isinstance(raw, dict):
        return ProtocolError(MALFORMED, "body must be a JSON object")
    request_id = raw.get("request_id") if isinstance(raw.get("request_id"), str) else ""
    msg_id = raw.get("msg_id") if isinstance(raw.get("msg_id"), str) else ""
    version = raw.get("version", PROTOCOL_VERSION)
    if version != PROTOCOL_VERSION:
        return ProtocolError(UNSUPPORTED_VERSION,
                             f"message version {version!r} is not supported (expected {PROTOCOL_VERSION})",
                             request_id, msg_id)
    kind = raw.get("type")
    if kind is None:
        return ProtocolError(MALFORMED, "body has no 'type' field", request_id, msg_id)
    if not isinstance(kind, str) or kind not in TYPE_NAMES:
        return ProtocolError(UNKNOWN_TYPE, f"unknown message type {kind!r}", request_id, msg_id)
    return ProtocolError(INVALID_MESSAGE, f"invalid {kind!r} message: {exc}", request_id, msg_id)


def split_envelope(frames: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """Split a ROUTER message into (routing envelope incl. the empty delimiter, content).

    A peer that sent no delimiter (a raw DEALER) gets its identity frame back plus a
    delimiter, so every peer with an identity can be answered.
    """
    for i, frame in enumerate(frames):
        if len(frame) == 0:
            return frames[: i + 1], frames[i + 1:]
    return [frames[0], b""], frames[1:]
