"""openhcs.runtime.protocol: encoding, signing, versions, replay guard — no sockets."""

from __future__ import annotations

import time

import msgspec
import pytest

from openhcs.runtime import protocol as p

KEY = b"k" * 32


def frames_for(session: p.Session, body: bytes, header: bytes = p.HEADER) -> list[bytes]:
    return [header, session.sign(body, header), body]


def test_round_trip_every_type_keeps_fields():
    s = p.Session(KEY)
    samples = [
        p.Ping(nonce="n"),
        p.Execute(plate_id="/plate", pipeline_code="x = 1", config_params={"num_workers": 2},
                  wells=["A01"]),
        p.Status(execution_id="e"),
        p.Cancel(execution_id="e", axis_ids=["A01", "B02"], force=True, grace_seconds=0.5),
        p.Events(execution_id="e", from_seq=3),
        p.Shutdown(grace_seconds=1.0),
        p.Kill(),
        p.Functions(search="otsu"),
        p.Pong(server_pid=1, data_port=2, control_port=1002),
        p.Accepted(execution_id="e", state="queued"),
        p.StatusReply(status="ok", executions=[]),
        p.CancelReply(status="ok", execution_id="e", state="cancelling"),
        p.EventsReply(status="ok", execution_id="e", events=[{"seq": 1}], last_seq=1),
        p.ShutdownReply(cancelled=["e"]),
        p.FunctionsReply(status="ok", total=1, functions=[p.FunctionEntry(
            name="f", category="c", module="m", qualname="f", contract="image -> image", inputs=["image"],
            output="image", params=[p.ParamEntry(name="sigma", kind="float", default=1.0)])]),
        p.Error(code="x", message="y"),
        p.Hello(nonce="n", server_pid=1),
        p.Heartbeat(server_pid=1),
        p.Progress(execution_id="e", seq=1, axis_id="A01", well_id="A01", step="s", status="started"),
        p.RunEvent(execution_id="e", seq=9, status="complete", final_seq=9),
    ]
    assert {type(m) for m in samples} == set(p.ALL_TYPES)
    for msg in samples:
        assert s.deserialize(s.serialize(msg)) == msg


def test_body_is_json_with_envelope_fields_and_no_pickle():
    s = p.Session(KEY)
    header, sig, body = s.serialize(p.Ping(request_id="r1"))
    assert header == b"openhcs/1"
    assert len(sig) == 64 and int(sig, 16) >= 0
    data = msgspec.json.decode(body)
    assert data["type"] == "ping" and data["request_id"] == "r1" and data["version"] == 1
    assert len(data["msg_id"]) == 32 and abs(data["timestamp"] - time.time()) < 5


def test_progress_dict_has_seed_callback_fields():
    msg = p.Progress(execution_id="e", seq=4, axis_id="B03", well_id="B03", step="segment",
                     status="completed", metadata={"step_index": 1})
    data = p.to_dict(msg)
    assert data["well_id"] == "B03" and data["step"] == "segment" and data["status"] == "completed"
    assert p.from_dict(data) == msg


@pytest.mark.parametrize("tamper", ["body", "signature", "missing", "other_key"])
def test_bad_signatures_are_refused(tamper):
    s = p.Session(KEY)
    header, sig, body = s.serialize(p.Ping())
    if tamper == "body":
        body = body.replace(b"ping", b"pong", 1)
    elif tamper == "signature":
        sig = b"0" * 64
    elif tamper == "missing":
        sig = b""
    else:
        sig = p.Session(b"other" * 8).sign(body)
    with pytest.raises(p.ProtocolError) as err:
        s.deserialize([header, sig, body])
    assert err.value.code == p.BAD_SIGNATURE


@pytest.mark.parametrize(
    "body, code",
    [
        (b"{not json", p.MALFORMED),
        (b"[1, 2]", p.MALFORMED),
        (b'{"msg_id": "x"}', p.MALFORMED),
        (b'{"type": "launch_missiles"}', p.UNKNOWN_TYPE),
        (b'{"type": "ping", "surprise": 1}', p.INVALID_MESSAGE),
        (b'{"type": "execute", "plate_id": "p"}', p.INVALID_MESSAGE),
        (b'{"type": "cancel", "execution_id": 5}', p.INVALID_MESSAGE),
        (b'{"type": "ping", "version": 2}', p.UNSUPPORTED_VERSION),
    ],
)
def test_invalid_bodies_get_specific_codes(body, code):
    s = p.Session(KEY)
    with pytest.raises(p.ProtocolError) as err:
        s.deserialize(frames_for(s, body))
    assert err.value.code == code
    reply = err.value.to_reply()
    assert isinstance(reply, p.Error) and reply.code == code and reply.message


def test_request_id_survives_into_error_reply_when_readable():
    s = p.Session(KEY)
    body = b'{"type": "ping", "request_id": "abc", "msg_id": "m1", "oops": true}'
    with pytest.raises(p.ProtocolError) as err:
        s.deserialize(frames_for(s, body))
    assert err.value.request_id == "abc" and err.value.reply_to == "m1"


def test_unknown_protocol_header_and_wrong_frame_counts():
    s = p.Session(KEY)
    header, sig, body = s.serialize(p.Ping())
    with pytest.raises(p.ProtocolError) as err:
        s.deserialize([b"openhcs/2", s.sign(body, b"openhcs/2"), body])
    assert err.value.code == p.UNSUPPORTED_VERSION
    with pytest.raises(p.ProtocolError) as err:
        s.deserialize([b"garbage", sig, body])
    assert err.value.code == p.BAD_FRAMES
    for frames in ([], [header], [header, sig], [header, sig, body, b"extra"]):
        with pytest.raises(p.ProtocolError) as err:
            s.deserialize(frames)
        assert err.value.code == p.BAD_FRAMES


def test_replay_guard_refuses_repeats_and_stale_messages():
    server = p.Session(KEY, check_replay=True, window=30)
    client = p.Session(KEY)
    frames = client.serialize(p.Ping())
    server.deserialize(frames)
    with pytest.raises(p.ProtocolError) as err:
        server.deserialize(frames)
    assert err.value.code == p.REPLAYED
    old = client.serialize(p.Ping(timestamp=time.time() - 120))
    with pytest.raises(p.ProtocolError) as err:
        server.deserialize(old)
    assert err.value.code == p.STALE
    future = client.serialize(p.Ping(timestamp=time.time() + 120))
    with pytest.raises(p.ProtocolError) as err:
        server.deserialize(future)
    assert err.value.code == p.STALE


def test_replay_memory_is_bounded_by_the_window():
    server = p.Session(KEY, check_replay=True, window=10)
    client = p.Session(KEY)
    now = time.time()
    for i in range(100):
        server.deserialize(client.serialize(p.Ping(timestamp=now)), now=now + i * 0.01)
    assert len(server._seen) == 100
    server.deserialize(client.serialize(p.Ping(timestamp=now + 20)), now=now + 20)
    assert len(server._seen) == 1


def test_expect_refuses_replies_sent_as_requests():
    s = p.Session(KEY)
    with pytest.raises(p.ProtocolError) as err:
        s.deserialize(s.serialize(p.Pong(server_pid=1, data_port=1, control_port=2)),
                      expect=p.REQUEST_TYPES)
    assert err.value.code == p.UNEXPECTED_TYPE


def test_reply_to_links_request_and_reply():
    req = p.Status(request_id="r9")
    reply = p.reply_to(req, p.StatusReply, status="not_found")
    assert reply.request_id == "r9" and reply.reply_to == req.msg_id


def test_split_envelope_handles_req_and_raw_dealer_peers():
    assert p.split_envelope([b"id", b"", b"a", b"b", b"c"]) == ([b"id", b""], [b"a", b"b", b"c"])
    assert p.split_envelope([b"id", b"x"]) == ([b"id", b""], [b"x"])


def test_metadata_with_paths_and_numpy_scalars_encodes():
    import pathlib

    import numpy as np

    s = p.Session(KEY)
    msg = p.Progress(execution_id="e", seq=1, axis_id="A01", well_id="A01", step="s",
                     status="completed", metadata={"out": pathlib.Path("/x"), "t": np.float64(0.5)})
    back = s.deserialize(s.serialize(msg))
    assert back.metadata == {"out": "/x", "t": 0.5}


def test_empty_key_is_rejected():
    with pytest.raises(ValueError):
        p.Session(b"")


def test_deeply_nested_and_unhashable_bodies_are_refused_not_raised():
    s = p.Session(KEY)
    nested = b'{"type":"status","execution_id":' + b"[" * 5000 + b"]" * 5000 + b"}"
    for body, code in ((nested, p.MALFORMED), (b'{"type": [1]}', p.UNKNOWN_TYPE),
                       (b'{"type": {"a": 1}}', p.UNKNOWN_TYPE)):
        with pytest.raises(p.ProtocolError) as err:
            s.deserialize(frames_for(s, body))
        assert err.value.code == code


def test_replay_guard_never_accepts_a_forgotten_id():
    server = p.Session(KEY, check_replay=True, window=60, max_remembered=100)
    client = p.Session(KEY)
    now = time.time()
    captured = client.serialize(p.Ping(timestamp=now))
    server.deserialize(captured, now=now)
    for i in range(150):  # a flood pushes the captured id out of memory inside the window
        server.deserialize(client.serialize(p.Ping(timestamp=now + 0.001 * (i + 1))), now=now + 1)
    with pytest.raises(p.ProtocolError) as err:
        server.deserialize(captured, now=now + 2)
    assert err.value.code in (p.REPLAYED, p.STALE)
    server.deserialize(client.serialize(p.Ping(timestamp=now + 3)), now=now + 3)  # fresh ones pass
