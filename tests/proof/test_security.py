"""Security of a real execution server: signatures, replay, staleness, CURVE, no pickle,
and code execution only for authenticated clients.

Each refusal is checked twice: on the wire (a structured ``error`` reply with the right
code) and in the server's log file (the operator must be able to see it).
"""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import zmq

from openhcs.runtime import curve
from openhcs.runtime.connection import new_key
from openhcs.runtime.lifecycle import SpawnError
from openhcs.runtime.protocol import (
    BAD_SIGNATURE,
    HEADER,
    MALFORMED,
    REPLAYED,
    STALE,
    Accepted,
    Error,
    Execute,
    Ping,
    Pong,
    Session,
    Status,
)
from tests.core.plates import write_plate
from tests.proof.conftest import request, server_env, start_server, wait_until

RUNTIME_SOURCES = Path(__file__).resolve().parents[2] / "openhcs" / "runtime"
CLI_SOURCES = Path(__file__).resolve().parents[2] / "openhcs" / "cli"


@pytest.fixture
def zctx():
    ctx = zmq.Context()
    yield ctx
    ctx.destroy(linger=0)


def exchange(server, ctx, frames: list[bytes], timeout_ms: int = 5000):
    """Raw frames on a fresh REQ socket; the reply verified with the server's real key."""
    sock = server.req_socket(ctx, timeout_ms)
    try:
        sock.send_multipart(frames)
        return server.session().deserialize(sock.recv_multipart())
    finally:
        sock.close(linger=0)


def refused_in_log(server, code: str, timeout: float = 5.0) -> str:
    """The log line that records a refusal with ``code`` (logging is flushed per record)."""
    pattern = re.compile(rf"refused a message: {code}\b.*")
    return wait_until(lambda: pattern.search(server.log_text()), timeout, f"a logged {code} refusal").group(0)


def assert_refused(reply, code: str, what: str = "") -> None:
    assert isinstance(reply, Error), f"{what}: expected a {code} error, got {reply!r}"
    assert reply.code == code, (what, reply.code, reply.message)


# --------------------------------------------------------------------------- signatures


def test_unsigned_message_is_refused_and_logged(servers, zctx):
    server = servers("--mode", "threads")
    body = Session(b"irrelevant").serialize(Ping())[2]
    assert_refused(exchange(server, zctx, [HEADER, b"", body]), BAD_SIGNATURE)
    refused_in_log(server, BAD_SIGNATURE)
    assert server.ping() is not None


def test_wrongly_signed_and_tampered_messages_are_refused_and_logged(servers, zctx):
    server = servers("--mode", "threads")
    wrong = Session(new_key().encode())
    assert_refused(exchange(server, zctx, wrong.serialize(Ping())), BAD_SIGNATURE)
    # a correct signature over another body: the body was changed in flight
    real = server.session()
    header, sig, _ = real.serialize(Status())
    tampered = real.serialize(Status(execution_id="someone-elses-run"))[2]
    assert_refused(exchange(server, zctx, [header, sig, tampered]), BAD_SIGNATURE)
    # a truncated signature
    frames = real.serialize(Ping())
    assert_refused(exchange(server, zctx, [frames[0], frames[1][:32], frames[2]]), BAD_SIGNATURE)
    wait_until(lambda: len(re.findall(rf"refused a message: {BAD_SIGNATURE}", server.log_text())) >= 3, 5,
               "three logged signature refusals")
    assert server.ping() is not None


def test_replayed_message_is_refused_and_logged(servers, zctx):
    server = servers("--mode", "threads")
    frames = server.session().serialize(Ping())
    assert isinstance(exchange(server, zctx, frames), Pong)
    assert_refused(exchange(server, zctx, frames), REPLAYED)
    assert_refused(exchange(server, zctx, frames), REPLAYED)
    refused_in_log(server, REPLAYED)
    assert server.ping() is not None


@pytest.mark.parametrize("offset", [-3600.0, +3600.0])
def test_stale_and_future_messages_are_refused_and_logged(servers, zctx, offset):
    server = servers("--mode", "threads")
    frames = server.session().serialize(Ping(timestamp=time.time() + offset))
    assert_refused(exchange(server, zctx, frames), STALE)
    refused_in_log(server, STALE)
    assert server.ping() is not None


# --------------------------------------------------------------------------- binding and CURVE


def test_server_bound_beyond_loopback_refuses_to_start_without_curve_keys(proof_dirs, tmp_path):
    no_keys = tmp_path / "no-keys"
    no_keys.mkdir()
    before = set(proof_dirs["runtime"].iterdir())
    with pytest.raises(SpawnError, match=r"(?i)curve.*keys|keys.*curve") as err:
        start_server(proof_dirs, "--curve-dir", str(no_keys), host="0.0.0.0")
    assert "exited with code 2" in str(err.value)
    assert set(proof_dirs["runtime"].iterdir()) == before, "a refused server wrote a connection file"


def test_cli_server_start_on_all_interfaces_refuses_without_keys(proof_dirs):
    """The same refusal through ``openhcs server start --host 0.0.0.0`` (keys are looked
    up in the isolated data folder, which has none)."""
    port = _free_port()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "openhcs", "server", "start", "--host", "0.0.0.0", "--port", str(port)],
            capture_output=True, text=True, timeout=60, env=server_env(proof_dirs),
        )
        assert done.returncode != 0, done
        assert re.search(r"(?i)curve", done.stdout + done.stderr), done
        assert not list(proof_dirs["runtime"].glob("server-*.json"))
    finally:  # had it started, it would be a detached server: stop it by its recorded pid
        from openhcs.runtime.connection import find_server
        from openhcs.runtime.lifecycle import stop_server

        info = find_server(port, proof_dirs["runtime"])
        if info is not None:
            stop_server(info)


def _free_port() -> int:
    from openhcs.runtime.zmq_base import find_free_port

    return find_free_port()


def _curve_req(ctx, server, public: bytes, secret: bytes, server_public: bytes, timeout_ms=1500):
    sock = ctx.socket(zmq.REQ)
    sock.linger = 0
    sock.rcvtimeo = timeout_ms
    sock.curve_publickey, sock.curve_secretkey, sock.curve_serverkey = public, secret, server_public
    sock.connect(server.info.control_endpoint)
    return sock


def _no_reply(sock, session: Session) -> bool:
    """Send a correctly HMAC-signed ping; True if nothing came back in the timeout."""
    try:
        request(sock, session, Ping())
    except zmq.Again:
        return True
    finally:
        sock.close(linger=0)
    return False


def test_curve_server_answers_only_clients_holding_its_keys(servers, zctx, tmp_path):
    keys = curve.create_keys(tmp_path / "keys")
    server = servers("--mode", "threads", "--curve-dir", str(keys), host="0.0.0.0")
    assert server.info.curve_public_key
    server_public = server.info.curve_public_key.encode()
    session = server.session()  # even with the HMAC key, CURVE must keep strangers out
    client_keys = curve.load_client_keys(server_public, keys)

    # the authorized client works, through the real client class
    with server.client(curve_dir=keys) as client:
        assert client.ping()["server_pid"] == server.pid

    # no CURVE at all
    plain = server.req_socket(zctx, 1500)
    assert _no_reply(plain, session), "a plaintext client got an answer from a CURVE server"
    # CURVE with a key pair the server never authorized
    stranger_pub, stranger_sec = zmq.curve_keypair()
    assert _no_reply(_curve_req(zctx, server, stranger_pub, stranger_sec, server_public), session)
    # the authorized key pair, but the wrong server key (a man in the middle's)
    fake_server_pub, _ = zmq.curve_keypair()
    assert _no_reply(_curve_req(zctx, server, client_keys.public, client_keys.secret, fake_server_pub), session)

    # the data channel: an unauthenticated SUB hears nothing, an authorized one hears heartbeats
    def sub(with_keys: bool):
        s = zctx.socket(zmq.SUB)
        s.linger = 0
        if with_keys:
            s.curve_publickey, s.curve_secretkey = client_keys.public, client_keys.secret
            s.curve_serverkey = server_public
        s.setsockopt(zmq.SUBSCRIBE, b"")
        s.connect(server.info.data_endpoint)
        return s

    good, bad = sub(True), sub(False)
    try:
        assert good.poll(5000), "authorized subscriber got no heartbeat"
        assert not bad.poll(1500), "a plaintext subscriber received data from a CURVE server"
    finally:
        good.close(linger=0)
        bad.close(linger=0)
    # and the server is still fine for its real client
    sock = _curve_req(zctx, server, client_keys.public, client_keys.secret, server_public, 5000)
    try:
        assert isinstance(request(sock, session, Ping()), Pong)
    finally:
        sock.close(linger=0)


# --------------------------------------------------------------------------- no pickle


class _CreatesFile:
    """Unpickling this calls ``open(path, 'w')``: the file appearing means pickle ran."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_nothing_on_the_wire_is_ever_unpickled(servers, zctx, tmp_path):
    server = servers("--mode", "threads")
    # the payloads are real: unpickling one here does create its file
    control = tmp_path / "control-unpickled"
    pickle.loads(pickle.dumps(_CreatesFile(control))).close()
    assert control.exists()

    marker = tmp_path / "server-unpickled-this"
    session = server.session()
    for proto in range(pickle.HIGHEST_PROTOCOL + 1):
        payload = pickle.dumps(_CreatesFile(marker), protocol=proto)
        # 1. a bare pickle frame
        assert isinstance(exchange(server, zctx, [payload]), Error)
        # 2. a pickle body with a valid HMAC: authenticated, still never unpickled
        assert_refused(exchange(server, zctx, [HEADER, session.sign(payload), payload]), MALFORMED)
        # 3. pickles in every frame position, and as multi-frame garbage on a DEALER
        assert isinstance(exchange(server, zctx, [payload, payload, payload]), Error)
        dealer = server.req_socket(zctx, 5000, kind=zmq.DEALER)
        try:
            dealer.send_multipart([payload, b"", payload])
            ping = Ping()
            dealer.send_multipart([b"", *session.serialize(ping)])
            for _ in range(3):
                reply = session.deserialize(dealer.recv_multipart()[-3:])
                if isinstance(reply, Pong):
                    break
                assert isinstance(reply, Error)
        finally:
            dealer.close(linger=0)
    assert server.ping() is not None  # everything above was processed before this pong
    assert not marker.exists(), "the server unpickled a wire payload"


PICKLE_LOADERS = re.compile(
    r"pickle\.loads?\(|cPickle|cloudpickle|\bdill\b|recv_pyobj|recv_serialized|marshal\.loads?\("
    r"|from pickle import|jsonpickle|shelve\."
)


def test_runtime_and_cli_sources_never_unpickle():
    """Regression guard: no module of the runtime or the CLI may load pickles."""
    offenders = []
    files = sorted(RUNTIME_SOURCES.rglob("*.py")) + sorted(CLI_SOURCES.rglob("*.py"))
    assert len(files) >= 8, files  # the guard must actually look at the runtime
    for path in files:
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            if PICKLE_LOADERS.search(line):
                offenders.append(f"{path}:{lineno}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


# --------------------------------------------------------------------------- code execution


def _evil_pipeline_code(marker: Path) -> str:
    return (
        "import pathlib\n"
        f"pathlib.Path({str(marker)!r}).write_text('pipeline code ran')\n"
        "from openhcs.core.steps import FunctionStep\n"
        "from openhcs.processing.diagnostics import passthrough\n"
        "pipeline_steps = [FunctionStep(func=passthrough, name='copy')]\n"
    )


def test_pipeline_code_runs_only_for_authenticated_clients(servers, zctx, tmp_path):
    server = servers("--mode", "threads", "--workers", "1")
    plate = write_plate(tmp_path / "plate", wells=("A01",), sites=1, channels=1)
    marker = tmp_path / "code-ran"
    code = _evil_pipeline_code(marker)
    session = server.session()

    def execute(**kw) -> Execute:
        return Execute(plate_id=str(plate), pipeline_code=code, request_id=uuid.uuid4().hex, **kw)

    body = session.serialize(execute())[2]
    attempts = {
        "unsigned": [HEADER, b"", body],
        "signature of a stranger": Session(new_key().encode()).serialize(execute()),
        "signature of the key file's previous key": Session(os.urandom(32).hex().encode()).serialize(execute()),
        "a real signature over a harmless body, with the code swapped in": [
            HEADER, session.serialize(Status())[1], body],
    }
    for what, frames in attempts.items():
        assert_refused(exchange(server, zctx, frames), BAD_SIGNATURE, what)
    status = exchange(server, zctx, session.serialize(Status()))
    assert status.executions == [], f"a refused execute created a run: {status.executions}"
    assert server.ping() is not None
    assert not marker.exists(), "pipeline code ran for an unauthenticated client"

    # control: the same code from an authenticated client does run — so the test can fail
    signed = session.serialize(execute())
    accepted = exchange(server, zctx, signed)
    assert isinstance(accepted, Accepted)
    # ... and a replay of that authenticated execute is refused: no second run
    assert_refused(exchange(server, zctx, signed), REPLAYED)
    with server.client() as client:
        final = client.wait_for_completion(accepted.execution_id, timeout=60)
        runs = client.get_status()["executions"]
    assert final["status"] == "complete", final
    assert marker.read_text() == "pipeline code ran"
    assert [r["execution_id"] for r in runs] == [accepted.execution_id]


def test_replay_is_refused_even_after_a_flood_of_fresh_messages(servers, zctx):
    """The replay guard must not forget a message that is still inside the freshness
    window just because many others came after it (docs/REQUESTS-proof.md #9: after
    200,000 messages the oldest id was evicted and its replay accepted)."""
    from openhcs.runtime.protocol import DEFAULT_WINDOW_SECONDS

    server = servers("--mode", "threads")
    session = server.session()
    captured = session.serialize(Ping())
    assert isinstance(exchange(server, zctx, captured), Pong)
    flood = server.req_socket(zctx, 10_000, kind=zmq.DEALER)
    batch = 500  # replies in flight stay under the ROUTER's per-peer high-water mark (1000)
    t0 = time.monotonic()
    try:
        for _ in range(200_001 // batch + 1):
            for _ in range(batch):
                flood.send_multipart([b"", *session.serialize(Ping())])
            for _ in range(batch):
                flood.recv_multipart()
    finally:
        flood.close(linger=0)
    elapsed = time.monotonic() - t0
    if elapsed > DEFAULT_WINDOW_SECONDS - 5:
        pytest.skip(f"the flood took {elapsed:.0f}s: the captured message is no longer fresh")
    reply = exchange(server, zctx, captured)
    assert isinstance(reply, Error) and reply.code in (REPLAYED, STALE), f"a replay after a flood got {reply!r}"


def test_a_message_captured_before_a_restart_is_refused_after_it(servers, zctx, tmp_path):
    """The replay memory dies with the server; the key must die with it too, so a
    captured request (here: an execute carrying code) cannot be replayed to the next
    server on the same port and folders."""
    first = servers("--mode", "threads")
    marker = tmp_path / "replayed-code-ran"
    plate = write_plate(tmp_path / "plate", wells=("A01",), sites=1, channels=1)
    captured = first.session().serialize(
        Execute(plate_id=str(plate), pipeline_code=_evil_pipeline_code(marker), request_id=uuid.uuid4().hex))
    first.stop()
    second = servers("--mode", "threads", port=first.port)
    assert second.info.key != first.info.key
    reply = exchange(second, zctx, captured)
    assert isinstance(reply, Error) and reply.code in (BAD_SIGNATURE, REPLAYED, STALE), reply
    assert exchange(second, zctx, second.session().serialize(Status())).executions == []
    assert not marker.exists()
