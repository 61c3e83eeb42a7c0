"""Load on one real server: many clients at once while a plate runs, and many runs in a
row without the server growing.

``OPENHCS_LONG_TESTS=1`` adds the long variant (1,000 consecutive runs).
"""

from __future__ import annotations

import statistics
import threading
import time

import psutil
import pytest
import zmq

from openhcs.processing import diagnostics as diag
from openhcs.runtime.protocol import TERMINAL_RUN_STATES, Heartbeat, RunEvent
from openhcs.runtime.zmq_base import ServerError, ServerUnavailable
from tests.core.plates import write_plate
from tests.proof.conftest import assert_contiguous, copy_steps, long_only, plate_steps

POLLERS = 20
SUBSCRIBERS = 5
POLL_INTERVAL_S = 0.01
MAX_POLLS = 5000  # per poller: a bound even if the run never ended
RSS_GROWTH_LIMIT_MB = 20.0


class Subscriber(threading.Thread):
    """A raw SUB socket on the data port that must see every event of one run live —
    no replay, no gap-filling: what the server published is what counts."""

    def __init__(self, ctx: zmq.Context, server, index: int):
        super().__init__(name=f"proof-sub-{index}", daemon=True)
        self.session = server.session()
        self.sock = ctx.socket(zmq.SUB)
        self.sock.linger = 0
        self.sock.rcvhwm = 0
        self.sock.setsockopt(zmq.SUBSCRIBE, b"")
        self.sock.connect(server.info.data_endpoint)
        self.joined = threading.Event()
        self.execution_id: str | None = None
        self.eid_known = threading.Event()
        self.seqs: list[int] = []
        self.terminal: RunEvent | None = None
        self.error: BaseException | None = None
        self.deadline = time.monotonic() + 180

    def run(self) -> None:
        try:
            pending: list = []
            while time.monotonic() < self.deadline:
                if not self.sock.poll(200):
                    continue
                msg = self.session.deserialize(self.sock.recv_multipart()[1:])
                if isinstance(msg, Heartbeat):
                    self.joined.set()
                    continue
                pending.append(msg)
                if not self.eid_known.is_set():
                    continue
                for item in pending:
                    if getattr(item, "execution_id", None) == self.execution_id:
                        self.seqs.append(item.seq)
                        if isinstance(item, RunEvent) and item.status in TERMINAL_RUN_STATES:
                            self.terminal = item
                pending.clear()
                if self.terminal is not None:
                    return
        except BaseException as exc:  # noqa: BLE001 — reported by the test
            self.error = exc
        finally:
            self.sock.close(linger=0)


def test_20_pollers_and_5_subscribers_while_a_plate_runs(servers, tmp_path):
    server = servers("--workers", "2", "--mode", "processes")
    wells = tuple(f"{r}{c:02d}" for r in "AB" for c in range(1, 7))
    plate = write_plate(tmp_path / "plate", wells=wells, sites=2, channels=1)
    steps = plate_steps((diag.sleep_step, {"seconds": 0.3}, "slow"), (diag.mean_intensity, None, "measure"))

    ctx = zmq.Context()
    subscribers = [Subscriber(ctx, server, i) for i in range(SUBSCRIBERS)]
    for sub in subscribers:
        sub.start()
    for sub in subscribers:
        assert sub.joined.wait(10), "a subscriber never heard a heartbeat"

    stop = threading.Event()
    answered = [0] * POLLERS
    latencies: list[list[float]] = [[] for _ in range(POLLERS)]
    failures: list[str] = []
    pollers_ready = threading.Barrier(POLLERS + 1, timeout=60)
    box: dict = {}

    def poll(i: int) -> None:
        try:
            with server.client(timeout=5.0, retries=0) as client:
                pollers_ready.wait()
                for _ in range(MAX_POLLS):
                    t0 = time.perf_counter()
                    reply = client.get_status(box["eid"])
                    latencies[i].append(time.perf_counter() - t0)
                    assert reply["status"] == "ok", reply
                    answered[i] += 1
                    if stop.wait(POLL_INTERVAL_S):
                        break
        except (ServerUnavailable, ServerError, AssertionError, threading.BrokenBarrierError) as exc:
            failures.append(f"poller {i}: {type(exc).__name__}: {exc}")
            stop.set()

    with server.client() as submitter:
        box["eid"] = eid = submitter.submit_pipeline(plate_id=str(plate), pipeline_steps=steps)["execution_id"]
        for sub in subscribers:
            sub.execution_id = eid
            sub.eid_known.set()
        threads = [threading.Thread(target=poll, args=(i,), name=f"proof-poll-{i}") for i in range(POLLERS)]
        for t in threads:
            t.start()
        try:
            pollers_ready.wait()
            result = submitter.wait_for_completion(eid, timeout=180)
        finally:
            stop.set()
            for t in threads:
                t.join(30)
            for sub in subscribers:
                sub.join(30)
            ctx.term()
    assert not failures, failures
    assert result["status"] == "complete", result
    assert all(n >= 3 for n in answered), f"some pollers barely ran: {answered}"
    all_latencies = sorted(x for lat in latencies for x in lat)
    p99 = all_latencies[int(len(all_latencies) * 0.99) - 1]
    print(f"{sum(answered)} status requests answered, median {statistics.median(all_latencies) * 1e3:.2f} ms, "
          f"p99 {p99 * 1e3:.2f} ms")
    # the control loop never waits on execution: a blocked loop shows up as seconds here
    assert p99 < 0.25, f"status p99 {p99 * 1e3:.0f} ms while the plate ran"
    for sub in subscribers:
        assert sub.error is None, sub.error
        assert sub.terminal is not None, f"{sub.name} saw no terminal event (seqs {sub.seqs[-5:]})"
        assert_contiguous(sub.seqs, f"events seen live by {sub.name}")
        assert sub.seqs[-1] == sub.terminal.final_seq == result["final_seq"]


def _snapshot(server) -> dict:
    """The server's RSS, threads, processes, and file descriptors — not counting the
    TCP connections of this test's own client (which opens its replay socket lazily, the
    first time it needs one: a connection, not a leak)."""
    proc = psutil.Process(server.pid)
    ours = {c.laddr.port for c in psutil.Process().net_connections("tcp") if c.laddr}
    from_us = [c for c in proc.net_connections("tcp") if c.raddr and c.raddr.port in ours]
    return {
        "rss_mb": proc.memory_info().rss / 2**20,
        "threads": proc.num_threads(),
        "fds": proc.num_fds() - len(from_us),
        "client_connections": len(from_us),
        "children": sorted(p.pid for p in proc.children(recursive=True)),
    }


def _consecutive_runs(server, tmp_path, runs: int) -> tuple[dict, dict, list[float]]:
    plate = write_plate(tmp_path / "plate", wells=("A01", "A02"), sites=1, channels=1, size=16)
    steps = copy_steps()
    times = []
    with server.client() as client:
        for _ in range(5):  # warm: worker started, imports done, caches filled
            assert client.execute_pipeline(plate_id=str(plate), pipeline_steps=steps, timeout=120)["status"] == "complete"
        before = _snapshot(server)
        for i in range(runs):
            t0 = time.perf_counter()
            result = client.execute_pipeline(plate_id=str(plate), pipeline_steps=steps, timeout=120)
            times.append(time.perf_counter() - t0)
            assert result["status"] == "complete", (i, result)
        after = _snapshot(server)
        assert client.get_status()["server"]["active_runs"] == 0
    return before, after, times


def _check_no_growth(before: dict, after: dict, runs: int, times: list[float]) -> None:
    growth = after["rss_mb"] - before["rss_mb"]
    print(f"{runs} runs: mean {statistics.mean(times) * 1e3:.1f} ms/run; RSS {before['rss_mb']:.1f} -> "
          f"{after['rss_mb']:.1f} MB; threads {before['threads']} -> {after['threads']}; "
          f"fds {before['fds']} -> {after['fds']} (+ our client's connections "
          f"{before['client_connections']} -> {after['client_connections']}); children {before['children']} -> {after['children']}")
    assert growth <= RSS_GROWTH_LIMIT_MB, f"server RSS grew {growth:.1f} MB over {runs} runs"
    assert after["threads"] <= before["threads"], f"threads leaked: {before['threads']} -> {after['threads']}"
    assert after["fds"] <= before["fds"], f"file descriptors leaked: {before['fds']} -> {after['fds']}"
    assert after["children"] == before["children"], "worker processes changed or leaked"


def test_100_consecutive_runs_leak_nothing(server, tmp_path):
    before, after, times = _consecutive_runs(server, tmp_path, 100)
    _check_no_growth(before, after, 100, times)


@long_only
@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_1000_consecutive_runs_leak_nothing(server, tmp_path):
    before, after, times = _consecutive_runs(server, tmp_path, 1000)
    _check_no_growth(before, after, 1000, times)


def test_10_clients_submitting_at_once_every_run_completes_gapless(servers, tmp_path):
    """30 runs from 10 clients at once, 2 executing at a time: every run completes and
    every client sees each of its runs' events 1..final_seq, in order, exactly once."""
    from tests.proof.conftest import EventRecorder

    server = servers("--workers", "2", "--mode", "processes", "--max-concurrent-runs", "2")
    plate = write_plate(tmp_path / "plate", wells=("A01", "A02", "B01"), sites=1, channels=1, size=16)
    results: dict[int, list] = {}
    failures: list[str] = []
    go = threading.Barrier(10, timeout=60)

    def submitter(i: int) -> None:
        rec = EventRecorder()
        try:
            with server.client(progress_callback=rec) as client:
                go.wait()
                ids = [client.submit_pipeline(plate_id=str(plate), pipeline_steps=copy_steps())["execution_id"]
                       for _ in range(3)]
                finals = [client.wait_for_completion(eid, timeout=180) for eid in ids]
            results[i] = [(eid, final, rec.seqs(eid)) for eid, final in zip(ids, finals, strict=True)]
        except Exception as exc:  # noqa: BLE001 — reported below
            failures.append(f"client {i}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=submitter, args=(i,), name=f"proof-submit-{i}") for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(240)
    assert not failures, failures
    all_ids = [eid for runs in results.values() for eid, _f, _s in runs]
    assert len(all_ids) == len(set(all_ids)) == 30
    for runs in results.values():
        for eid, final, seqs in runs:
            assert final["status"] == "complete", final
            assert_contiguous(seqs, f"events of {eid}")
            assert seqs[-1] == final["final_seq"]


def test_stalled_clients_do_not_slow_the_others(servers, tmp_path):
    """Peers that never read (SUB sockets, REQ sockets awaiting replies they never
    collect, a DEALER flooding pings) must not block the server for a normal client."""
    from openhcs.runtime.protocol import Ping

    server = servers("--workers", "2", "--mode", "threads")
    plate = write_plate(tmp_path / "plate", wells=tuple(f"A{c:02d}" for c in range(1, 13)), sites=1, channels=1)
    steps = plate_steps(*[(diag.passthrough, None, f"copy{i}") for i in range(6)])
    session = server.session()
    ctx = zmq.Context()
    stalled = []
    try:
        for _ in range(5):
            sub = ctx.socket(zmq.SUB)
            sub.rcvhwm = 10
            sub.setsockopt(zmq.SUBSCRIBE, b"")
            sub.connect(server.info.data_endpoint)
            stalled.append(sub)
            req = server.req_socket(ctx, 1000)
            req.send_multipart(session.serialize(Ping()))
            stalled.append(req)
        flood = server.req_socket(ctx, 1000, kind=zmq.DEALER)
        flood.sndhwm = 0
        for _ in range(5000):
            flood.send_multipart([b"", *session.serialize(Ping())])
        stalled.append(flood)
        latencies = []
        with server.client() as client:
            eid = client.submit_pipeline(plate_id=str(plate), pipeline_steps=steps,
                                         config_params={"materialization_format": "none"})["execution_id"]
            for _ in range(200):
                t0 = time.perf_counter()
                state = client.get_status(eid)["execution"]["state"]
                latencies.append(time.perf_counter() - t0)
                if state in TERMINAL_RUN_STATES:
                    break
            final = client.wait_for_completion(eid, timeout=120)
    finally:
        for sock in stalled:
            sock.close(linger=0)
        ctx.term()
    assert final["status"] == "complete", final
    worst = max(latencies)
    print(f"{len(latencies)} status requests beside stalled peers: worst {worst * 1e3:.1f} ms")
    assert worst < 2.0, f"a status request took {worst:.2f}s while other peers stalled"
    assert server.ping() is not None


def test_replay_of_a_run_with_more_events_than_one_reply_holds(servers, tmp_path):
    """A late client replays a >5,000-event run (several ``events`` pages): every seq
    once, in order; and a client attaching mid-run sees the same sequence."""
    server = servers("--workers", "2", "--mode", "threads")
    wells = tuple(f"{r}{c:02d}" for r in "ABCDEFGHIJKLMNOP" for c in range(1, 25))  # 384
    plate = write_plate(tmp_path / "plate", wells=wells, sites=1, channels=1, size=8)
    steps = plate_steps(*[(diag.passthrough, None, f"copy{i}") for i in range(6)])
    from tests.proof.conftest import EventRecorder

    first, mid = EventRecorder(), EventRecorder()
    with server.client(progress_callback=first) as client:
        eid = client.submit_pipeline(plate_id=str(plate), pipeline_steps=steps,
                                     config_params={"materialization_format": "none"})["execution_id"]
        first.wait_for(lambda e: e.get("execution_id") == eid and e.get("seq", 0) > 100, 120, "100 events")
        with server.client(progress_callback=mid) as attacher:
            assert attacher.attach(eid)["execution"]["state"] == "running"
            final = attacher.wait_for_completion(eid, timeout=300)
        replay = client.get_events(eid)
    assert final["status"] == "complete", final
    seqs = [e["seq"] for e in replay]
    assert len(seqs) > 5000, len(seqs)
    assert_contiguous(seqs, "replayed events")
    assert seqs[-1] == final["final_seq"]
    live = mid.seqs(eid)
    assert_contiguous(live, "events of the mid-run attacher")
    assert live[-1] == final["final_seq"]


def test_50_client_sessions_leak_nothing_in_the_client_process(servers):
    """A GUI connects and disconnects many times: the client process must not gain
    threads or file descriptors, and the server must not keep connections."""
    server = servers("--mode", "threads")
    me = psutil.Process()

    def session() -> None:
        with server.client() as client:
            assert client.ping()["server_pid"] == server.pid
            client.get_status()

    session()  # first use: lazy imports, zmq's own helpers
    before = (me.num_threads(), me.num_fds(), _snapshot(server))
    for _ in range(50):
        session()
    after = (me.num_threads(), me.num_fds(), _snapshot(server))
    print(f"client threads {before[0]} -> {after[0]}, fds {before[1]} -> {after[1]}; "
          f"server fds {before[2]['fds']} -> {after[2]['fds']}")
    assert after[0] <= before[0], "client threads leaked"
    assert after[1] <= before[1], "client file descriptors leaked"
    assert after[2]["threads"] <= before[2]["threads"] and after[2]["fds"] <= before[2]["fds"]
