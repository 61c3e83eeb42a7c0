"""Fuzz the control port of a real execution server with hypothesis-generated frames.

Every case goes over a real socket to a real server process (one per module, kept for
all cases). The expected answer comes from an oracle: the protocol module's own
``Session.deserialize`` run locally on the same frames with the same key, so a case
passes only if the server answers with exactly the error code (and request id) the
protocol defines — or, for a message that is valid, with the right reply type naming the
request. After all cases the same server process must still answer a ping and run a
plate.

``OPENHCS_FUZZ_CASES`` (default 2000) sets the total number of cases; they are shared
between the strategies below. Examples are derandomized (the same cases on every run)
unless ``OPENHCS_FUZZ_RANDOM=1``.
"""

from __future__ import annotations

import json
import os
import time
import uuid

import pytest
import zmq
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from openhcs.runtime.protocol import (
    HEADER,
    MAX_MESSAGE_BYTES,
    REPLAYED,
    REQUEST_TYPES,
    STALE,
    Cancel,
    CancelReply,
    Error,
    Events,
    EventsReply,
    Execute,
    Kill,
    Ping,
    Pong,
    ProtocolError,
    Session,
    Shutdown,
    Status,
    StatusReply,
)
from tests.core.plates import write_plate
from tests.proof.conftest import copy_steps, make_dirs, start_server

FUZZ_CASES = int(os.environ.get("OPENHCS_FUZZ_CASES", "2000"))
RANDOM = os.environ.get("OPENHCS_FUZZ_RANDOM") == "1"
REPLY_TIMEOUT_MS = 10_000
WINDOW = 60.0  # the server's replay/staleness window (protocol.DEFAULT_WINDOW_SECONDS)

# share of FUZZ_CASES per strategy (sums to 1)
SHARES = {"frames": 0.25, "truncated": 0.10, "dealer": 0.15, "signed": 0.50}
SENT: dict[str, int] = dict.fromkeys(SHARES, 0)

EXPECTED_REPLY = {Ping: Pong, Status: StatusReply, Cancel: CancelReply, Events: EventsReply}
DANGEROUS = (Execute, Shutdown, Kill)  # valid ones would run code or stop the server


def fuzz_settings(share: str):
    return settings(
        max_examples=max(20, int(FUZZ_CASES * SHARES[share])),
        deadline=None,
        derandomize=not RANDOM,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    """One server (one process worker, warmed by a first plate) for every case."""
    root = tmp_path_factory.mktemp("fuzz")
    handle = start_server(make_dirs(root), "--workers", "1", "--mode", "processes")
    plate = write_plate(root / "plate", wells=("A01", "A02"), sites=1, channels=1)
    try:
        with handle.client() as client:
            result = client.execute_pipeline(plate_id=str(plate), pipeline_steps=copy_steps(), timeout=120)
        assert result["status"] == "complete", result
        handle.children()  # remember the warm worker
        handle.plate = plate
        yield handle
    finally:
        outlived = handle.stop()
    assert not outlived, f"processes outlived their server: {outlived}"


@pytest.fixture(scope="module")
def zctx():
    ctx = zmq.Context()
    yield ctx
    ctx.destroy(linger=0)


class Channel:
    """A REQ socket on the control port, reopened if a case left it without a reply."""

    def __init__(self, ctx, server):
        self.ctx, self.server = ctx, server
        self.session = server.session()
        self.sock = None

    def exchange(self, frames: list[bytes]) -> list[bytes]:
        if self.sock is None:
            self.sock = self.server.req_socket(self.ctx, REPLY_TIMEOUT_MS)
        self.sock.send_multipart(frames)
        try:
            return self.sock.recv_multipart()
        except zmq.Again:
            self.sock.close(linger=0)
            self.sock = None
            raise AssertionError(f"no reply within {REPLY_TIMEOUT_MS} ms to {_show(frames)}; "
                                 f"server alive: {self.server.alive()}") from None

    def close(self):
        if self.sock is not None:
            self.sock.close(linger=0)


@pytest.fixture(scope="module")
def channel(zctx, fuzz_server):
    chan = Channel(zctx, fuzz_server)
    yield chan
    chan.close()


def _show(frames: list[bytes]) -> str:
    return repr([bytes(f[:80]) + (b"..." if len(f) > 80 else b"") for f in frames])


class Unspecified(ProtocolError):
    """The protocol module itself raised something other than ProtocolError (a bug in it):
    the server must still answer with some structured error and survive."""


def oracle(session: Session, frames: list[bytes]):
    """What the protocol says about these frames: the decoded message or the ProtocolError."""
    try:
        return session.deserialize(frames, expect=REQUEST_TYPES)
    except ProtocolError as exc:
        return exc
    except Exception as exc:  # noqa: BLE001 — reported through the server's answer
        return Unspecified("any", f"{type(exc).__name__}: {exc}")


def check_error_reply(reply, expected: ProtocolError, frames):
    assert isinstance(reply, Error), f"expected error {expected.code} for {_show(frames)}, got {reply!r}"
    if isinstance(expected, Unspecified):
        return
    assert reply.code == expected.code, f"{_show(frames)}: code {reply.code} != {expected.code} ({reply.message})"
    assert reply.message
    assert reply.request_id == expected.request_id


def check_server(server):
    assert server.alive(), f"server died; log tail:\n{server.log_text()[-3000:]}"


# --------------------------------------------------------------------------- strategies

frame_bytes = st.binary(max_size=300)
first_frames = st.one_of(
    frame_bytes,
    st.sampled_from([HEADER, b"openhcs/2", b"openhcs/0", b"openhcs/", b"openhcs/999999999999",
                     b"OPENHCS/1", b"openhcs/1\x00", b""]),
)
raw_frames = st.builds(lambda first, rest: [first, *rest], first_frames, st.lists(frame_bytes, max_size=4))

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40))
junk = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
short_text = st.text(max_size=40)

TYPE_FIELDS = {
    "ping": st.fixed_dictionaries({}, optional={"nonce": short_text}),
    "status": st.fixed_dictionaries({}, optional={"execution_id": st.none() | short_text}),
    "cancel": st.fixed_dictionaries(
        {"execution_id": short_text},
        optional={"axis_ids": st.none() | st.lists(short_text, max_size=4), "force": st.booleans(),
                  "grace_seconds": st.none() | st.floats(0, 100)}),
    "events": st.fixed_dictionaries({"execution_id": short_text},
                                    optional={"from_seq": st.integers(-10, 10**6)}),
    "execute": st.fixed_dictionaries(
        {"plate_id": short_text, "pipeline_code": short_text},
        optional={"config_params": st.none() | st.dictionaries(short_text, junk, max_size=3),
                  "config_code": st.none() | short_text, "wells": st.none() | st.lists(short_text, max_size=3)}),
    "shutdown": st.fixed_dictionaries({}, optional={"grace_seconds": st.floats(0, 10)}),
    "kill": st.just({}),
    # replies and data messages are not requests: the control port must refuse them
    "pong": st.fixed_dictionaries({"server_pid": st.integers(0, 10**6), "data_port": st.integers(0, 70000),
                                   "control_port": st.integers(0, 70000)}),
    "error": st.fixed_dictionaries({"code": short_text, "message": short_text}),
    "progress": st.fixed_dictionaries({"execution_id": short_text, "seq": st.integers(0, 100),
                                       "axis_id": short_text, "well_id": short_text, "step": short_text,
                                       "status": short_text}),
    "hello": st.fixed_dictionaries({"nonce": short_text, "server_pid": st.integers(0, 10**6)}),
}
SAFE_TYPE_NAMES = [t for t in TYPE_FIELDS if t not in ("execute", "shutdown", "kill")]
ENVELOPE = ("type", "msg_id", "request_id", "version", "timestamp")


def _deep(depth: int):
    value: object = []
    for _ in range(depth):
        value = [value]
    return value


mutation = st.one_of(
    st.tuples(st.just("drop"), st.integers(0, 20)),
    st.tuples(st.just("junk"), st.integers(0, 20), junk),
    st.tuples(st.just("extra"), short_text, junk),
    st.tuples(st.just("huge"), st.integers(0, 20), st.sampled_from([1_000, 100_000, 2_000_000])),
    st.tuples(st.just("deep"), st.integers(0, 20), st.integers(1, 200)),
    st.tuples(st.just("version"), st.one_of(st.integers(-5, 2**40), junk)),
    st.tuples(st.just("timestamp"), st.sampled_from([0.0, -10.0, 10.0, -120.0, 120.0, -86400.0, 1e12])),
    st.tuples(st.just("type"), st.one_of(st.sampled_from(SAFE_TYPE_NAMES), short_text, junk)),
    st.tuples(st.just("msg_id"), st.one_of(st.sampled_from(["", "fixed-id"]), junk)),
)


@st.composite
def signed_bodies(draw):
    kind = draw(st.sampled_from([*TYPE_FIELDS, "unknown"]))
    fields = dict(draw(TYPE_FIELDS.get(kind, st.dictionaries(short_text, junk, max_size=3))))
    body = {"type": kind if kind != "unknown" else draw(short_text), "msg_id": uuid.uuid4().hex,
            "request_id": draw(short_text), "version": 1, "timestamp": time.time(), **fields}
    mutations = draw(st.lists(mutation, max_size=3))
    if kind in ("execute", "shutdown", "kill"):
        mutations.append(("extra", "zz_not_a_field", None))  # never a runnable execute/shutdown
    for m in mutations:
        keys = list(body)
        op = m[0]
        if op == "drop" and keys:
            body.pop(keys[m[1] % len(keys)])
        elif op == "junk" and keys:
            body[keys[m[1] % len(keys)]] = m[2]
        elif op == "extra":
            body["x_" + m[1] if m[1] != "zz_not_a_field" else m[1]] = m[2]
        elif op == "huge" and keys:
            body[keys[m[1] % len(keys)]] = "x" * m[2]
        elif op == "deep" and keys:
            body[keys[m[1] % len(keys)]] = _deep(m[2])
        elif op == "version":
            body["version"] = m[1]
        elif op == "timestamp":
            body["timestamp"] = time.time() + m[1]
        elif op == "type":
            body["type"] = m[1]
        elif op == "msg_id":
            body["msg_id"] = m[1]
    shape = draw(st.sampled_from(["json", "json", "json", "list", "text"]))
    if shape == "list":
        return json.dumps([body]).encode()
    if shape == "text":
        return draw(st.binary(max_size=200))
    return json.dumps(body).encode()


# --------------------------------------------------------------------------- cases


@fuzz_settings("frames")
@given(frames=raw_frames)
def test_random_frames_get_structured_errors(fuzz_server, channel, frames):
    expected = oracle(channel.session, frames)
    assert isinstance(expected, ProtocolError)  # unsigned garbage is never valid
    reply = channel.session.deserialize(channel.exchange(frames))
    SENT["frames"] += 1
    check_error_reply(reply, expected, frames)
    check_server(fuzz_server)


@fuzz_settings("truncated")
@given(kind=st.sampled_from(["cut", "drop", "extra", "header"]), which=st.integers(0, 2),
       cut=st.integers(0, 10_000), version=st.integers(0, 10**9))
def test_truncated_and_reframed_messages(fuzz_server, channel, kind, which, cut, version):
    session = channel.session
    frames = session.serialize(Status(execution_id="fuzz-" + uuid.uuid4().hex))
    if kind == "cut":
        frames[which] = frames[which][: cut % max(1, len(frames[which]))]
    elif kind == "drop":
        del frames[which]
    elif kind == "extra":
        frames.insert(which, frames[which])
    else:  # a correctly signed message under another protocol version
        header = b"openhcs/%d" % version
        frames = [header, session.sign(frames[2], header), frames[2]]
    expected = oracle(session, frames)
    if not isinstance(expected, ProtocolError):
        reject()  # e.g. version 1 drawn: a valid message, covered elsewhere
    reply = session.deserialize(channel.exchange(frames))
    SENT["truncated"] += 1
    check_error_reply(reply, expected, frames)
    check_server(fuzz_server)


@fuzz_settings("dealer")
@given(frames=st.lists(st.binary(max_size=120), min_size=1, max_size=8))
def test_multiframe_garbage_on_a_raw_dealer(fuzz_server, zctx, frames):
    """Garbage with no REQ envelope: the server may answer it or drop it, but a ping sent
    right behind it on the same socket is answered."""
    session = fuzz_server.session()
    sock = fuzz_server.req_socket(zctx, REPLY_TIMEOUT_MS, kind=zmq.DEALER)
    try:
        sock.send_multipart(frames)
        ping = Ping()
        sock.send_multipart([b"", *session.serialize(ping)])
        SENT["dealer"] += 1
        for _ in range(3):
            try:
                got = sock.recv_multipart()
            except zmq.Again:
                raise AssertionError(f"no pong after {_show(frames)}; alive: {fuzz_server.alive()}") from None
            reply = session.deserialize(got[-3:])
            if isinstance(reply, Pong):
                assert reply.reply_to == ping.msg_id
                break
            assert isinstance(reply, Error), reply
        else:
            raise AssertionError(f"more replies than requests after {_show(frames)}")
    finally:
        sock.close(linger=0)
    check_server(fuzz_server)


_accepted_ids: dict[str, float] = {}  # msg_ids the server has let through its replay guard


@fuzz_settings("signed")
@given(body=signed_bodies())
def test_signed_messages_with_bad_fields(fuzz_server, channel, body):
    """Correct HMAC (the real key), so every case reaches decoding and validation."""
    session = channel.session
    frames = [HEADER, session.sign(body), body]
    expected = oracle(session, frames)
    now = time.time()
    if not isinstance(expected, ProtocolError):
        if isinstance(expected, DANGEROUS):
            reject()
        if abs(now - expected.timestamp) > WINDOW:
            expected = ProtocolError(STALE, "stale", expected.request_id)
        elif expected.msg_id in _accepted_ids:
            age = now - _accepted_ids[expected.msg_id]
            if WINDOW - 10 < age < WINDOW + 10:
                reject()  # either answer is right at the edge of the window
            if age < WINDOW:
                expected = ProtocolError(REPLAYED, "replayed", expected.request_id)
    reply = session.deserialize(channel.exchange(frames))
    SENT["signed"] += 1
    if isinstance(expected, ProtocolError):
        check_error_reply(reply, expected, frames)
    else:
        want = EXPECTED_REPLY[type(expected)]
        assert isinstance(reply, want), f"{body[:300]!r}: expected {want.__name__}, got {reply!r}"
        assert reply.request_id == expected.request_id
        if "msg_id" in json.loads(body):  # else both sides made up their own
            _accepted_ids.setdefault(expected.msg_id, now)
            assert reply.reply_to == expected.msg_id
    check_server(fuzz_server)


def test_oversized_frames_are_dropped_and_the_server_keeps_answering(fuzz_server, zctx):
    """A frame over MAX_MESSAGE_BYTES cannot be accepted (the ROUTER disconnects the
    peer); a big message under the limit is answered normally."""
    session = fuzz_server.session()
    sock = fuzz_server.req_socket(zctx, 1000, kind=zmq.DEALER)
    try:
        sock.send_multipart([b"", HEADER, b"0" * 64, b"x" * (MAX_MESSAGE_BYTES + 1)])
        if sock.poll(1000):  # none expected; if one comes it must be an error
            assert isinstance(session.deserialize(sock.recv_multipart()[-3:]), Error)
    finally:
        sock.close(linger=0)
    assert fuzz_server.ping() is not None, "no pong right after an oversized frame"
    big = Status(execution_id="y" * (MAX_MESSAGE_BYTES // 2))
    chan = Channel(zctx, fuzz_server)
    try:
        reply = session.deserialize(chan.exchange(session.serialize(big)))
    finally:
        chan.close()
    assert isinstance(reply, StatusReply) and reply.status == "not_found"
    check_server(fuzz_server)


def test_server_survived_fuzzing_and_still_runs_a_plate(fuzz_server):
    check_server(fuzz_server)
    pong = fuzz_server.ping()
    assert pong is not None and pong.server_pid == fuzz_server.pid
    assert "refused a message" in fuzz_server.log_text()
    with fuzz_server.client() as client:
        result = client.execute_pipeline(plate_id=str(fuzz_server.plate), pipeline_steps=copy_steps(),
                                         timeout=120)
    assert result["status"] == "complete", result
    if all(SENT.values()):  # the whole module ran: the promised number of cases was sent
        assert sum(SENT.values()) >= FUZZ_CASES, SENT


def _send_signed(server, body: bytes):
    """Sign ``body`` with the server's real key, send it once, return the decoded reply
    (``None`` when none came within 5 s)."""
    session = server.session()
    ctx = zmq.Context()
    try:
        sock = server.req_socket(ctx, 5000)
        try:
            sock.send_multipart([HEADER, session.sign(body), body])
            try:
                return session.deserialize(sock.recv_multipart())
            except zmq.Again:
                return None
        finally:
            sock.close(linger=0)
    finally:
        ctx.term()


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deeply_nested_signed_body_gets_error_reply(servers, depth):
    """Nesting beyond msgspec's recursion limit must be refused like any malformed body
    (docs/REQUESTS-proof.md #1: it used to end the server loop)."""
    server = servers("--mode", "threads")
    body = b'{"type":"status","execution_id":' + b"[" * depth + b"]" * depth + b"}"
    reply = _send_signed(server, body)
    assert server.alive(), f"server died:\n{server.log_text()[-1500:]}"
    assert isinstance(reply, Error) and reply.code in ("malformed", "invalid_message"), reply
    assert server.ping() is not None



@pytest.mark.parametrize("body", [b'{"type":[1]}', b'{"type":{"a":1},"msg_id":"m"}', b'{"type":["ping"]}'])
def test_unhashable_type_field_gets_error_reply(servers, body):
    """A signed body whose ``type`` is a list or object must be refused like any unknown
    type (docs/REQUESTS-proof.md #2: it raised TypeError out of the server loop)."""
    server = servers("--mode", "threads")
    reply = _send_signed(server, body)
    assert server.alive(), f"server died:\n{server.log_text()[-1500:]}"
    assert isinstance(reply, Error) and reply.code in ("malformed", "unknown_type", "invalid_message"), reply
    assert server.ping() is not None


BROKEN_CODE = {
    "recursion": ("def f(): f()\nf()", "RecursionError"),
    "not a pipeline": ("pipeline_steps = 5", "got int"),
    "no pipeline": ("x = 1", "defines none of"),
    "empty": ("", "defines none of"),
    "null byte": ("\x00", "null bytes"),
    "syntax": ("pipeline_steps = [", "line 1"),
    "raises": ("raise ValueError('from the pipeline code')", "from the pipeline code"),
    "SystemExit": ("raise SystemExit(3)", "SystemExit"),
    "sys.exit": ("import sys; sys.exit(0)", "SystemExit"),
    "KeyboardInterrupt": ("raise KeyboardInterrupt", "KeyboardInterrupt"),
}
BROKEN_CONFIG = {
    "negative workers": ({"num_workers": -1}, "num_workers"),
    "unknown mode": ({"mode": "gpu"}, "mode"),
    "unknown key": ({"bogus": 1}, "bogus"),
    "not a mapping": ({"global_config": 5}, "mapping"),
}


def test_broken_pipeline_code_and_config_fail_the_run_with_a_message(servers, tmp_path):
    """Validly signed executes with bad code or config: accepted, then a failed run whose
    message says why — never an empty error, never a dead server (REQUESTS-proof #8 for
    SystemExit/KeyboardInterrupt, which used to give a failed run with no message)."""
    server = servers("--workers", "1", "--mode", "threads")
    plate = write_plate(tmp_path / "plate", wells=("A01",), sites=1, channels=1)
    problems = []
    with server.client() as client:
        cases = [(name, code, None, want) for name, (code, want) in BROKEN_CODE.items()]
        cases += [(name, "pipeline_steps = []", cfg, want) for name, (cfg, want) in BROKEN_CONFIG.items()]
        for name, code, cfg, want in cases:
            result = client.execute_pipeline(plate_id=str(plate), pipeline_steps=code, config_params=cfg,
                                             timeout=60)
            if result["status"] != "failed" or want not in (result["message"] or ""):
                problems.append(f"{name}: {result['status']} {result['message']!r}")
        assert client.ping()["server_pid"] == server.pid
    assert not problems, "\n".join(problems)
