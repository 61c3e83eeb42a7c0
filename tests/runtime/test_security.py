"""Signed messages, replay refusal, malformed input, CURVE for non-loopback binds.

Every rejection must come back as a structured ``error`` reply, and the server must
still answer a ping afterwards: it never dies of a message and never hangs a REQ peer.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import msgspec
import pytest
import zmq

from openhcs.runtime import protocol as p
from openhcs.runtime.connection import ConnectionInfo, connection_file_path
from openhcs.runtime.lifecycle import SpawnError, spawn_server
from openhcs.runtime.zmq_base import ServerUnavailable, find_free_port, ping_server
from openhcs.runtime.zmq_execution_client import ZMQExecutionClient


def assert_still_alive(server):
    assert ping_server(server.info, timeout=5) is not None


def body_frames(session: p.Session, body: bytes) -> list[bytes]:
    return [p.HEADER, session.sign(body), body]


REJECTIONS = {
    "unsigned": (lambda s: [p.HEADER, b"", p.Session(b"x").serialize(p.Ping())[2]], p.BAD_SIGNATURE),
    "wrong_key": (lambda s: p.Session(b"not-the-key" * 3).serialize(p.Ping()), p.BAD_SIGNATURE),
    "stale": (lambda s: s.serialize(p.Ping(timestamp=time.time() - 3600)), p.STALE),
    "unknown_version_header": (
        lambda s: [b"openhcs/9", s.sign(b"{}", b"openhcs/9"), b"{}"], p.UNSUPPORTED_VERSION),
    "unknown_version_field": (
        lambda s: body_frames(s, b'{"type":"ping","version":7}'), p.UNSUPPORTED_VERSION),
    "malformed_json": (lambda s: body_frames(s, b'{"type": "ping",'), p.MALFORMED),
    "not_an_object": (lambda s: body_frames(s, b'"ping"'), p.MALFORMED),
    "unknown_type": (lambda s: body_frames(s, b'{"type":"format_disk"}'), p.UNKNOWN_TYPE),
    "unknown_field": (lambda s: body_frames(s, b'{"type":"status","sudo":true}'), p.INVALID_MESSAGE),
    "wrong_field_type": (
        lambda s: body_frames(s, b'{"type":"cancel","execution_id":["x"]}'), p.INVALID_MESSAGE),
    "reply_type_as_request": (
        lambda s: s.serialize(p.Pong(server_pid=1, data_port=1, control_port=2)), p.UNEXPECTED_TYPE),
    "random_bytes": (lambda s: [os.urandom(64)], p.BAD_FRAMES),
    "too_many_frames": (lambda s: [*s.serialize(p.Ping()), b"extra"], p.BAD_FRAMES),
    "empty_frame_only": (lambda s: [b""], p.BAD_FRAMES),
    "deeply_nested": (lambda s: body_frames(
        s, b'{"type":"status","execution_id":' + b"[" * 5000 + b"]" * 5000 + b"}"), p.MALFORMED),
    "unhashable_type": (lambda s: body_frames(s, b'{"type":[1]}'), p.UNKNOWN_TYPE),
}


@pytest.mark.parametrize("case", sorted(REJECTIONS))
def test_bad_messages_get_error_replies_and_server_survives(server, raw_peer, case):
    make, code = REJECTIONS[case]
    peer = raw_peer()
    reply = peer.send(make(peer.session))
    assert isinstance(reply, p.Error)
    assert reply.code == code, reply
    assert reply.message
    assert_still_alive(server)


def test_replayed_message_is_refused(server, raw_peer):
    peer = raw_peer()
    frames = peer.session.serialize(p.Status())
    assert isinstance(peer.send(frames), p.StatusReply)
    reply = peer.send(frames)
    assert isinstance(reply, p.Error) and reply.code == p.REPLAYED
    assert_still_alive(server)


def test_rejected_execute_runs_nothing(server, raw_peer, tmp_path):
    """Code inside a message with a bad signature is never executed."""
    marker = tmp_path / "pwned"
    code = f"open({str(marker)!r}, 'w').write('x')\npipeline_steps = []"
    msg = p.Execute(plate_id=str(tmp_path), pipeline_code=code)
    body = msgspec.json.encode(msg)
    peer = raw_peer(key=b"attacker-key" * 3)
    reply = peer.send([p.HEADER, peer.session.sign(body), body])
    assert isinstance(reply, p.Error) and reply.code == p.BAD_SIGNATURE
    status = peer.send(peer.verify.serialize(p.Status()))
    assert status.executions == []
    assert not marker.exists()


def test_oversized_message_is_dropped_and_server_survives(server):
    ctx = zmq.Context()
    try:
        sock = ctx.socket(zmq.DEALER)
        sock.linger = 0
        sock.connect(server.info.control_endpoint)
        sock.send_multipart([b"", p.HEADER, b"0" * 64, b"x" * (p.MAX_MESSAGE_BYTES + 1024)])
        # libzmq drops a peer that exceeds MAXMSGSIZE: no reply, and no crash
        assert not sock.poll(500)
        sock.close(linger=0)
    finally:
        ctx.term()
    assert_still_alive(server)


def test_client_with_wrong_key_cannot_talk(server):
    client = ZMQExecutionClient(port=server.info.data_port, key="0" * 64, timeout=0.5, retries=0)
    with pytest.raises((p.ProtocolError, ServerUnavailable)):
        client.connect(timeout=3)
    assert client._listener is None
    assert_still_alive(server)


def test_connection_file_is_user_only_and_holds_the_key(server):
    path = connection_file_path(server.info.data_port)
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o600
    assert len(server.info.key) == 64 and server.info.pid == server.pid


def test_non_loopback_bind_requires_curve_keys(runtime_env):
    with pytest.raises(SpawnError, match="openhcs server keys"):
        spawn_server(find_free_port(), host="0.0.0.0", timeout=30)


def test_curve_server_accepts_only_clients_with_keys(server_factory, runtime_env, tmp_path):
    from openhcs.runtime.curve import create_keys

    create_keys()
    server = server_factory("--workers", "1", host="0.0.0.0")
    info = server.info
    assert info.curve_public_key
    # a client with the authorized key pair works end to end
    with ZMQExecutionClient(port=info.data_port, timeout=2) as client:
        assert client.ping()["server_pid"] == server.pid
    # without CURVE (server key stripped) the handshake never completes
    plain = ConnectionInfo.from_dict({**info.to_dict(), "curve_public_key": None})
    assert ping_server(plain, timeout=0.5) is None
    # a client whose key pair the server has not authorized is refused
    other = create_keys(tmp_path / "other-keys")
    assert ping_server(info, timeout=0.5, curve_dir=Path(other)) is None
    assert ping_server(info, timeout=2) is not None


def test_no_pickle_in_runtime_sources():
    import openhcs.runtime as runtime

    folder = Path(runtime.__file__).parent
    for path in folder.glob("*.py"):
        text = path.read_text()
        assert "import pickle" not in text and "send_pyobj" not in text and "recv_pyobj" not in text, path
