"""Chaos on real processes: a server killed with SIGKILL mid-run, a worker killed
mid-well, clients that vanish mid-run, submits that are retried.

Processes are stopped by pid only: the server's pid from its launcher, a worker's pid
from the server's own ``status`` (checked against the server's child processes).
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
import uuid

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openhcs.processing import diagnostics as diag
from openhcs.runtime.history import RunHistory
from openhcs.runtime.protocol import Accepted, Execute
from openhcs.runtime.zmq_base import ServerUnavailable
from tests.core.plates import MARKER, write_plate
from tests.proof.conftest import (
    EventRecorder,
    assert_contiguous,
    copy_steps,
    plate_steps,
    reap,
    request,
    server_env,
    wait_until,
)

LOST_WITHIN_S = 3.0
TERMINAL = ("complete", "failed", "cancelled")


def slow_marked_steps(seconds: float = 60.0):
    """One step that sleeps (cooperatively) only in wells holding MARKER."""
    return plate_steps((diag.sleep_step, {"seconds": seconds, "marker": MARKER}, "slow"))


def started(eid: str, well: str, step: str):
    return lambda e: (e.get("execution_id") == eid and e.get("well_id") == well and e.get("step") == step
                      and e.get("status") == "started")


def well_done(eid: str):
    return lambda e: (e.get("execution_id") == eid and e.get("type") == "progress"
                      and e.get("step") == "pipeline" and e.get("status") in ("completed", "complete"))


def waiting_in_loop(thread: threading.Thread) -> bool:
    """True once ``thread`` sits in ``wait_for_completion``'s wait for the terminal event
    (past its opening status request), read from the thread's live Python stack."""
    frame = sys._current_frames().get(thread.ident)
    names = []
    while frame is not None:
        names.append(frame.f_code.co_name)
        frame = frame.f_back
    return bool(names) and names[0] == "wait" and "wait_for_completion" in names


def start_waiter(client, eid: str, outcome: dict) -> threading.Thread:
    """``client.wait_for_completion(eid)`` in a thread, returned once it is really waiting."""

    def wait() -> None:
        try:
            outcome["result"] = client.wait_for_completion(eid, timeout=60)
        except BaseException as exc:  # noqa: BLE001 — inspected by the test
            outcome["error"] = exc
        outcome["at"] = time.monotonic()

    waiter = threading.Thread(target=wait, name="proof-waiter")
    waiter.start()
    wait_until(lambda: waiting_in_loop(waiter) or "at" in outcome, 15, "the client waiting for the run")
    return waiter


def _start_slow_run(server, tmp_path, recorder):
    plate = write_plate(tmp_path / "plate", wells=("A01", "A02", "A03"), sites=1, channels=1, marked=("A01",))
    client = server.client(progress_callback=recorder)
    client.connect(timeout=30)
    accepted = client.submit_pipeline(plate_id=str(plate), pipeline_steps=slow_marked_steps())
    eid = accepted["execution_id"]
    recorder.wait_for(started(eid, "A01", "slow"), 60, "the marked well's slow step")
    return client, eid


# --------------------------------------------------------------------------- server killed


def test_server_killed_mid_run_is_reported_lost_and_the_run_shows_interrupted(servers, proof_dirs, tmp_path):
    server = servers("--workers", "1", "--mode", "processes")
    recorder = EventRecorder()
    client, eid = _start_slow_run(server, tmp_path, recorder)
    queued = client.submit_pipeline(plate_id=str(tmp_path / "plate"), pipeline_steps=copy_steps())["execution_id"]
    outcome: dict = {}
    waiter = start_waiter(client, eid, outcome)
    try:
        killed_at = time.monotonic()
        server.kill9()
        waiter.join(LOST_WITHIN_S + 5)
        assert not waiter.is_alive(), "wait_for_completion still blocked after the server died"
    finally:
        client.disconnect()
        waiter.join(10)
    assert isinstance(outcome.get("error"), ServerUnavailable), outcome
    took = outcome["at"] - killed_at
    assert took <= LOST_WITHIN_S, f"server loss reported after {took:.2f}s"
    assert str(server.pid) in str(outcome["error"]) or "stopped responding" in str(outcome["error"])

    # restart on the same port and data folder: the runs it had in flight (running and
    # queued) are 'interrupted' — in the history file, in the CLI, and to a new client
    restarted = servers("--workers", "1", "--mode", "processes", port=server.port)
    assert restarted.ping() is not None
    with RunHistory(proof_dirs["data"] / "history.sqlite") as history:
        states = {run_id: (history.get(run_id) or {}).get("state") for run_id in (eid, queued)}
    assert states == {eid: "interrupted", queued: "interrupted"}, states
    done = subprocess.run([sys.executable, "-m", "openhcs", "history", "--json"], capture_output=True,
                          text=True, timeout=60, env=server_env(proof_dirs))
    assert done.returncode == 0, done.stderr
    listed = {r["execution_id"]: r for r in json.loads(done.stdout)}
    assert listed[eid]["state"] == listed[queued]["state"] == "interrupted"
    with restarted.client() as late:
        t0 = time.monotonic()
        final = late.wait_for_completion(eid, timeout=30)
        assert time.monotonic() - t0 <= LOST_WITHIN_S
    assert final["status"] == "interrupted", final


def test_workers_do_not_outlive_a_killed_server(servers, tmp_path):
    """Children die with their parent: a SIGKILLed server's worker, busy in a 60 s
    well, must exit promptly rather than finish the well as an orphan."""
    server = servers("--workers", "1", "--mode", "processes")
    recorder = EventRecorder()
    client, _eid = _start_slow_run(server, tmp_path, recorder)
    try:
        workers = [p for p in server.children() if p.pid in server_worker_pids(client)]
        assert workers, "no worker process found among the server's children"
        server.kill9()
    finally:
        client.disconnect()
    _gone, alive = psutil.wait_procs(workers, timeout=5)
    reap(alive, timeout=0)
    assert not alive, f"worker(s) {[p.pid for p in alive]} outlived their SIGKILLed server by 5 s"


def server_worker_pids(client) -> set[int]:
    return set(client.get_status()["server"]["worker_pids"])


# --------------------------------------------------------------------------- worker killed


def test_worker_killed_mid_well_fails_that_well_only_and_server_keeps_serving(server, tmp_path):
    recorder = EventRecorder()
    client, eid = _start_slow_run(server, tmp_path, recorder)
    try:
        pool_pids = server_worker_pids(client)
        children = {p.pid: p for p in server.children()}
        victims = [children[pid] for pid in pool_pids if pid in children]
        assert len(victims) == 1, (pool_pids, sorted(children))  # one worker: it runs A01
        victim = victims[0]
        assert victim.ppid() == server.pid
        victim.send_signal(signal.SIGKILL)
        result = client.wait_for_completion(eid, timeout=120)
        assert result["status"] == "failed", result
        wells = result["results"]["wells"]
        assert wells["A01"]["status"] == "failed"
        reason = wells["A01"]["error"]
        assert str(victim.pid) in reason and "died" in reason, reason
        assert {w: o["status"] for w, o in wells.items() if w != "A01"} == {"A02": "complete", "A03": "complete"}
        failed_event = recorder.wait_for(
            lambda e: e.get("execution_id") == eid and e.get("well_id") == "A01" and e.get("status") == "failed",
            5, "A01's failed event")
        assert str(victim.pid) in failed_event["metadata"]["error"]
        # the server keeps serving: same pid, a fresh worker, and a new run completes
        assert client.ping()["server_pid"] == server.pid
        again = client.execute_pipeline(plate_id=str(tmp_path / "plate"), pipeline_steps=copy_steps(), timeout=120)
        assert again["status"] == "complete", again
        new_pids = server_worker_pids(client)
        assert victim.pid not in new_pids and new_pids <= {p.pid for p in server.children()}
    finally:
        client.disconnect()


# --------------------------------------------------------------------------- clients vanish

CLIENT_SCRIPT = r"""
import json, sys
from openhcs.runtime.zmq_execution_client import ZMQExecutionClient
def show(event):
    print(json.dumps({"seq": event.get("seq"), "step": event.get("step"), "status": event.get("status")}),
          flush=True)
client = ZMQExecutionClient(port=int(sys.argv[1]), connection_file=sys.argv[2], progress_callback=show)
client.connect(timeout=30)
accepted = client.submit_pipeline(plate_id=sys.argv[3], pipeline_steps=sys.argv[4])
print(json.dumps({"execution_id": accepted["execution_id"]}), flush=True)
client.wait_for_completion(accepted["execution_id"], timeout=120)
print(json.dumps({"done": True}), flush=True)
"""


def _read_until(proc: subprocess.Popen, predicate, timeout: float) -> list[dict]:
    """JSON lines from ``proc``'s stdout until one satisfies ``predicate`` (deadline)."""
    lines: list[dict] = []
    buf = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"client subprocess said only {lines}"
            if not sel.select(remaining):
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            assert chunk, f"client subprocess exited ({proc.poll()}) after {lines}"
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                lines.append(json.loads(line))
                if predicate(lines[-1]):
                    return lines


@pytest.mark.parametrize("how", ["disconnect", "kill -9"])
def test_client_vanishes_mid_run_and_another_replays_every_event(server, tmp_path, how):
    from openhcs.codegen import generate_pipeline_code

    wells = ("A01", "A02", "A03", "B01", "B02", "B03")
    plate = write_plate(tmp_path / "plate", wells=wells, sites=1, channels=1)
    code = generate_pipeline_code(plate_steps((diag.sleep_step, {"seconds": 0.4}, "slow"),
                                              (diag.passthrough, None, "copy")))
    first = EventRecorder()
    if how == "disconnect":
        client = server.client(progress_callback=first)
        client.connect(timeout=30)
        eid = client.submit_pipeline(plate_id=str(plate), pipeline_steps=code)["execution_id"]
        first.wait_for(well_done(eid), 60, "a first finished well")
        client.disconnect()
    else:
        proc = subprocess.Popen(
            [sys.executable, "-c", CLIENT_SCRIPT, str(server.port), str(server.connection_file), str(plate), code],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=server_env(server.dirs))
        try:
            lines = _read_until(proc, lambda d: d.get("step") == "pipeline" and d.get("status") == "completed", 60)
            eid = next(d["execution_id"] for d in lines if "execution_id" in d)
            proc.send_signal(signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
            proc.stdout.close()

    second = EventRecorder()
    with server.client(progress_callback=second) as late:
        status = late.attach(eid)
        assert status["execution"]["state"] == "running", "the run ended before the second client attached"
        final = late.wait_for_completion(eid, timeout=60)
        replay = late.get_events(eid)
    assert final["status"] == "complete", final
    seqs = second.seqs(eid)
    assert_contiguous(seqs, "events seen by the attaching client")
    assert seqs[-1] == final["final_seq"] == replay[-1]["seq"]
    assert [e["seq"] for e in replay] == seqs
    assert {e["well_id"] for e in second.events if e.get("type") == "progress"} == set(wells)


# --------------------------------------------------------------------------- retried submits


def test_retried_submit_creates_no_duplicate_run(server, tmp_path, proof_dirs):
    plate = write_plate(tmp_path / "plate", wells=("A01", "A02"), sites=1, channels=1)
    rid = "proof-" + uuid.uuid4().hex
    with server.client() as client:
        first = client.submit_pipeline(plate_id=str(plate), pipeline_steps=copy_steps(), request_id=rid)
        # the client's own retry path: same request_id, fresh msg_id (as after a timeout)
        again = client.submit_pipeline(plate_id=str(plate), pipeline_steps=copy_steps(), request_id=rid)
        # a raw retry on another socket, and concurrent retries from several threads
        session = server.session()
        import zmq

        ctx = zmq.Context()
        try:
            sock = server.req_socket(ctx)
            try:
                raw = request(sock, session, Execute(plate_id=str(plate), pipeline_code="pipeline_steps = []",
                                                     request_id=rid))
            finally:
                sock.close(linger=0)
            replies: list = []

            def retry() -> None:
                s = server.req_socket(ctx)
                try:
                    replies.append(request(s, session, Execute(plate_id=str(plate), pipeline_code="x",
                                                               request_id=rid)))
                finally:
                    s.close(linger=0)

            threads = [threading.Thread(target=retry) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
        finally:
            ctx.term()
        final = client.wait_for_completion(first["execution_id"], timeout=120)
        late = client.submit_pipeline(plate_id=str(plate), pipeline_steps=copy_steps(), request_id=rid)
        runs = client.get_status()["executions"]
    eid = first["execution_id"]
    assert final["status"] == "complete", final
    assert first["duplicate"] is False
    for reply in (again, late):
        assert reply["execution_id"] == eid and reply["duplicate"] is True
    assert len(replies) == 8
    for reply in [raw, *replies]:
        assert isinstance(reply, Accepted) and reply.execution_id == eid and reply.duplicate
    assert [r["execution_id"] for r in runs] == [eid]
    with RunHistory(proof_dirs["data"] / "history.sqlite") as history:
        recorded = [r for r in history.list(limit=100) if r.get("request_id") == rid]
    assert [r["execution_id"] for r in recorded] == [eid]


def test_restart_loses_no_history_of_finished_runs(servers, proof_dirs, tmp_path):
    """A finished run survives a SIGKILL of its server unchanged (not re-marked)."""
    server = servers("--workers", "1", "--mode", "threads")
    plate = write_plate(tmp_path / "plate", wells=("A01",), sites=1, channels=1)
    with server.client() as client:
        done = client.execute_pipeline(plate_id=str(plate), pipeline_steps=copy_steps(), timeout=120)
    server.kill9()
    servers("--mode", "threads", port=server.port)
    with RunHistory(proof_dirs["data"] / "history.sqlite") as history:
        assert history.get(done["execution_id"])["state"] == "complete"


# --------------------------------------------------------------------------- graceful stop mid-run


def _sigterm_mid_run(servers, tmp_path, queue_another: bool):
    server = servers("--workers", "1", "--mode", "processes")
    recorder = EventRecorder()
    client, eid = _start_slow_run(server, tmp_path, recorder)
    queued = None
    if queue_another:
        queued = client.submit_pipeline(plate_id=str(tmp_path / "plate"), pipeline_steps=copy_steps())["execution_id"]
    outcome: dict = {}
    waiter = start_waiter(client, eid, outcome)
    t0 = time.monotonic()
    os.kill(server.pid, signal.SIGTERM)
    try:
        server.popen.wait(30)
        waiter.join(40)
    finally:
        client.disconnect()
        waiter.join(10)
    return server, recorder, eid, queued, outcome, t0


def test_graceful_stop_mid_run_tells_the_waiting_client_within_3s(servers, tmp_path):
    """SIGTERM cancels the run cleanly; the client, already waiting, must get the
    'cancelled' outcome promptly — not block on result requests to a server that has gone
    (docs/REQUESTS-proof.md #5)."""
    server, recorder, eid, _q, outcome, t0 = _sigterm_mid_run(servers, tmp_path, queue_another=False)
    assert server.popen.returncode == 0
    terminal = recorder.wait_for(lambda e: e.get("execution_id") == eid and e.get("final_seq"), 1,
                                 "the published terminal event")
    assert terminal["status"] == "cancelled"
    assert "result" in outcome, f"wait_for_completion raised {outcome.get('error')!r} after the run was cancelled"
    assert outcome["result"]["status"] == "cancelled"
    took = outcome["at"] - t0
    assert took <= LOST_WITHIN_S, f"wait_for_completion returned {took:.1f}s after SIGTERM"


def test_graceful_stop_leaves_no_run_queued_or_running_in_history(servers, proof_dirs, tmp_path):
    """After a clean stop, history must not claim runs are still queued or running
    (docs/REQUESTS-proof.md #6)."""
    server, _rec, eid, queued, _outcome, _t0 = _sigterm_mid_run(servers, tmp_path, queue_another=True)
    assert server.popen.returncode == 0
    assert not server.connection_file.exists()
    with RunHistory(proof_dirs["data"] / "history.sqlite") as history:
        states = {run_id: history.get(run_id)["state"] for run_id in (eid, queued)}
    assert states[eid] == "cancelled", states
    assert states[queued] in ("cancelled", "interrupted"), states


def test_cancelling_some_wells_replies_with_the_runs_real_state(servers, tmp_path):
    """A well-subset cancel leaves the run running; the cancel reply must not claim the
    run is 'cancelling' (docs/REQUESTS-proof.md #7)."""
    server = servers("--workers", "2", "--mode", "threads")
    plate = write_plate(tmp_path / "plate", wells=("A01", "A02"), sites=1, channels=1, marked=("A01", "A02"))
    recorder = EventRecorder()
    with server.client(progress_callback=recorder) as client:
        eid = client.submit_pipeline(plate_id=str(plate), pipeline_steps=slow_marked_steps())["execution_id"]
        for well in ("A01", "A02"):
            recorder.wait_for(started(eid, well, "slow"), 60, f"{well}'s slow step")
        reply = client.cancel_execution(eid, axis_ids=["A01"])
        state = client.get_status(eid)["execution"]["state"]
        recorder.wait_for(lambda e: e.get("well_id") == "A01" and e.get("status") == "cancelled", 30,
                          "A01 cancelled")
        still = client.get_status(eid)["execution"]["state"]
        client.cancel_execution(eid)
        final = client.wait_for_completion(eid, timeout=60)
    assert final["status"] == "cancelled"
    assert still == "running", still  # the other well runs on
    assert reply["status"] == "ok" and reply["state"] == state, (reply, state)


def test_frozen_server_is_reported_within_3s_and_recovers_after_thaw(servers, tmp_path):
    """SIGSTOP (a wedged server: pid alive, nothing answers) is reported like a dead one;
    after SIGCONT the same server finishes the run and serves a new client."""
    server = servers("--workers", "1", "--mode", "processes")
    recorder = EventRecorder()
    plate = write_plate(tmp_path / "plate", wells=("A01", "A02"), sites=1, channels=1, marked=("A01",))
    client = server.client(progress_callback=recorder)
    client.connect(timeout=30)
    outcome: dict = {}
    try:
        eid = client.submit_pipeline(plate_id=str(plate),
                                     pipeline_steps=slow_marked_steps(seconds=4.0))["execution_id"]
        recorder.wait_for(started(eid, "A01", "slow"), 60, "the marked well's slow step")
        waiter = start_waiter(client, eid, outcome)
        frozen_at = time.monotonic()
        os.kill(server.pid, signal.SIGSTOP)
        try:
            waiter.join(LOST_WITHIN_S + 5)
        finally:
            os.kill(server.pid, signal.SIGCONT)
        waiter.join(30)
    finally:
        client.disconnect()
    assert isinstance(outcome.get("error"), ServerUnavailable), outcome
    assert outcome["at"] - frozen_at <= LOST_WITHIN_S, f"reported after {outcome['at'] - frozen_at:.2f}s"
    with server.client() as again:
        final = again.wait_for_completion(eid, timeout=60)
        assert again.ping()["server_pid"] == server.pid
    assert final["status"] == "complete", final


def test_waiting_on_an_already_frozen_server_is_reported_within_3s(servers, tmp_path):
    """``wait_for_completion`` called when the server has just stopped answering must
    not spend 4 x 5 s on its opening status request (docs/REQUESTS-proof.md #5)."""
    server = servers("--workers", "1", "--mode", "processes")
    recorder = EventRecorder()
    client, eid = _start_slow_run(server, tmp_path, recorder)
    outcome: dict = {}
    try:
        os.kill(server.pid, signal.SIGSTOP)
        t0 = time.monotonic()
        try:
            client.wait_for_completion(eid, timeout=60)
        except ServerUnavailable as exc:
            outcome["error"] = exc
        took = time.monotonic() - t0
    finally:
        os.kill(server.pid, signal.SIGCONT)
        client.disconnect()
    assert isinstance(outcome.get("error"), ServerUnavailable)
    assert took <= LOST_WITHIN_S, f"a frozen server was reported after {took:.1f}s"


def test_forced_cancel_kills_only_that_runs_worker(servers, tmp_path):
    """Two runs share the server's pool; force-cancelling one kills exactly its worker
    (by pid) while the other run's well, on the other worker, completes untouched."""
    server = servers("--workers", "2", "--mode", "processes", "--max-concurrent-runs", "2")
    stubborn_plate = write_plate(tmp_path / "stubborn", wells=("A01",), sites=1, channels=1, marked=("A01",))
    calm_plate = write_plate(tmp_path / "calm", wells=("B01",), sites=1, channels=1, marked=("B01",))
    recorder = EventRecorder()
    with server.client(progress_callback=recorder) as client:
        stubborn = client.submit_pipeline(plate_id=str(stubborn_plate), pipeline_steps=plate_steps(
            (diag.ignore_cancel_step, {"seconds": 120, "marker": MARKER}, "stubborn")))["execution_id"]
        calm = client.submit_pipeline(plate_id=str(calm_plate),
                                      pipeline_steps=slow_marked_steps(seconds=3.0))["execution_id"]
        recorder.wait_for(started(stubborn, "A01", "stubborn"), 60, "the stubborn well")
        recorder.wait_for(started(calm, "B01", "slow"), 60, "the calm well")
        pids_before = server_worker_pids(client)
        assert len(pids_before) == 2
        reply = client.cancel_execution(stubborn, force=True)
        assert reply["status"] == "ok"
        cancelled = client.wait_for_completion(stubborn, timeout=60)
        finished = client.wait_for_completion(calm, timeout=60)
        pids_after = server_worker_pids(client)
    assert cancelled["status"] == "cancelled", cancelled
    assert finished["status"] == "complete", finished
    forced = [e for e in recorder.events if e.get("execution_id") == stubborn and e.get("status") == "cancelled"
              and (e.get("metadata") or {}).get("forced")]
    assert forced, "no forced-cancel event for the stubborn well"
    killed = forced[0]["metadata"]["pid"]
    assert killed in pids_before and killed not in pids_after
    assert pids_before - {killed} <= pids_after, "the other run's worker was replaced too"


def test_a_killed_servers_connection_file_is_found_stale_and_removed(servers, proof_dirs):
    """SIGKILL leaves the connection file behind; discovery must notice the dead pid,
    remove the file, and never offer the dead server to a client."""
    from openhcs.runtime.connection import find_server

    server = servers("--mode", "threads")
    server.kill9()
    assert server.connection_file.exists()  # nobody could clean up
    done = subprocess.run([sys.executable, "-m", "openhcs", "server", "list"], capture_output=True, text=True,
                          timeout=60, env=server_env(proof_dirs))
    assert done.returncode in (0, 1), done
    assert not server.connection_file.exists(), "stale connection file kept"
    assert find_server(server.port, proof_dirs["runtime"]) is None
    assert str(server.port) not in done.stdout, done.stdout  # the dead server is not listed


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_cancel_racing_the_end_of_runs_leaves_one_consistent_outcome(servers, tmp_path, proof_dirs, mode):
    """Cancels sent at every moment of short runs (before start, mid-well, as the run
    ends, after it ended): each run ends in exactly one terminal state, published once as
    the last event, and status and history agree with it."""
    server = servers("--workers", "2", "--mode", mode, "--max-concurrent-runs", "2")
    plate = write_plate(tmp_path / "plate", wells=("A01", "A02", "A03"), sites=1, channels=1, size=16)
    steps = plate_steps((diag.sleep_step, {"seconds": 0.02}, "tick"), (diag.passthrough, None, "copy"))
    recorder = EventRecorder()
    runs = []
    with server.client(progress_callback=recorder) as client:
        for i in range(24):
            eid = client.submit_pipeline(plate_id=str(plate), pipeline_steps=steps)["execution_id"]
            wait_for_seq = i % 12  # 0: cancel at once; 1-10: mid-run; 11: after the run ended
            if wait_for_seq == 11:
                recorder.wait_for(lambda e, eid=eid: e.get("execution_id") == eid and e.get("final_seq"), 30,
                                  f"the end of run {i}")
            elif wait_for_seq:
                recorder.wait_for(lambda e, eid=eid, n=wait_for_seq: e.get("execution_id") == eid and (
                    e.get("seq", 0) >= n or e.get("final_seq")), 30, f"event {wait_for_seq} of run {i}")
            reply = client.cancel_execution(eid, axis_ids=["A02"] if i % 3 == 1 else None)
            assert reply["status"] == "ok", reply
            runs.append(eid)
        finals = {eid: client.wait_for_completion(eid, timeout=60) for eid in runs}
        statuses = {eid: client.get_status(eid)["execution"]["state"] for eid in runs}
    with RunHistory(proof_dirs["data"] / "history.sqlite") as history:
        recorded = {eid: history.get(eid)["state"] for eid in runs}
    outcomes = set()
    for eid in runs:
        state = finals[eid]["status"]
        outcomes.add(state)
        assert state in ("complete", "cancelled"), finals[eid]
        assert statuses[eid] == recorded[eid] == state, (eid, state, statuses[eid], recorded[eid])
        events = [e for e in recorder.events if e.get("execution_id") == eid]
        terminal = [e for e in events if e.get("type") == "run" and e.get("status") in TERMINAL]
        assert len(terminal) == 1 and terminal[0] is events[-1], [e.get("status") for e in events][-5:]
        assert_contiguous([e["seq"] for e in events], f"events of {eid}")
        assert terminal[0]["final_seq"] == events[-1]["seq"]
    assert outcomes == {"complete", "cancelled"}, f"the races never produced both outcomes: {outcomes}"


# --------------------------------------------------------------------------- random interleavings

ACTIONS = st.lists(st.one_of(
    st.tuples(st.just("submit"), st.integers(1, 3), st.sampled_from([0.0, 0.01, 0.05])),
    st.tuples(st.just("cancel"), st.integers(0, 7), st.sampled_from([None, ["A01"], ["A02", "A03"], ["Z99"]]),
              st.booleans()),
    st.tuples(st.just("events"), st.integers(0, 7), st.integers(-5, 40)),
    st.tuples(st.just("status"), st.integers(0, 7)),
), min_size=1, max_size=10)


@pytest.fixture(scope="module", params=["threads", "processes"])
def interleaving_server(tmp_path_factory, request):
    from tests.proof.conftest import make_dirs, start_server

    root = tmp_path_factory.mktemp("interleave")
    handle = start_server(make_dirs(root), "--workers", "2", "--mode", request.param, "--max-concurrent-runs", "2")
    handle.plate = write_plate(root / "plate", wells=("A01", "A02", "A03"), sites=1, channels=1, size=16)
    try:
        yield handle
    finally:
        outlived = handle.stop()
    assert not outlived, f"processes outlived their server: {outlived}"


@pytest.mark.allow_leaks  # forced cancels replace the module server's workers; its fixture reaps them
@settings(max_examples=int(os.environ.get("OPENHCS_INTERLEAVINGS", "25")), deadline=None,
          derandomize=os.environ.get("OPENHCS_FUZZ_RANDOM") != "1", database=None,
          suppress_health_check=list(HealthCheck))
@given(actions=ACTIONS)
def test_random_interleavings_of_submit_cancel_status_and_events(interleaving_server, actions):
    """Hypothesis interleaves submits, cancels (run, wells, unknown wells, forced),
    replays from any sequence number and status requests on one live server; afterwards
    every run has one terminal state, agreed by its events, status and history."""
    server = interleaving_server
    runs: list[str] = []
    with server.client() as client:
        for action in actions:
            kind = action[0]
            if kind == "submit":
                _, n_wells, seconds = action
                steps = plate_steps((diag.sleep_step, {"seconds": seconds}, "tick"))
                wells = ["A01", "A02", "A03"][:n_wells]
                runs.append(client.submit_pipeline(plate_id=str(server.plate), pipeline_steps=steps,
                                                   wells=wells)["execution_id"])
            elif not runs:
                continue
            elif kind == "cancel":
                _, idx, axes, force = action
                reply = client.cancel_execution(runs[idx % len(runs)], axis_ids=axes, force=force)
                assert reply["status"] == "ok", reply
            elif kind == "events":
                _, idx, since = action
                events = client.get_events(runs[idx % len(runs)], since_seq=since)
                seqs = [e["seq"] for e in events]
                assert seqs == list(range(max(since, 0) + 1, max(since, 0) + 1 + len(seqs))), (since, seqs)
            else:
                status = client.get_status(runs[action[1] % len(runs)])
                assert status["status"] == "ok", status
        finals = {eid: client.wait_for_completion(eid, timeout=60) for eid in runs}
        for eid, final in finals.items():
            wells = (final.get("results") or {}).get("wells") or {}
            assert final["status"] in ("complete", "cancelled"), (
                final["status"], {w: (o["status"], o.get("error")) for w, o in wells.items()}, actions)
            events = client.get_events(eid)
            assert_contiguous([e["seq"] for e in events], f"events of {eid}")
            terminal = [e for e in events if e.get("type") == "run" and e.get("status") in TERMINAL]
            assert len(terminal) == 1 and terminal[0]["seq"] == events[-1]["seq"] == final["final_seq"]
            assert terminal[0]["status"] == final["status"] == client.get_status(eid)["execution"]["state"]
    with RunHistory(server.dirs["data"] / "history.sqlite") as history:
        for eid, final in finals.items():
            assert history.get(eid)["state"] == final["status"]
    server.children()  # remember replacement workers, so the fixture checks they exit too


def test_forced_cancel_never_kills_the_next_runs_well(servers, tmp_path):
    """Force-cancelling run X just as its well ends must not kill the worker after the
    pool has handed it run Y's well (docs/REQUESTS-proof.md #10: Y's well failed with
    'worker process N died (exit code -9)' in about 1 of 10 tries). 30 tries: with the
    bug, all 30 pass with a probability of about 4%; each try waits for a fresh worker."""
    server = servers("--workers", "1", "--mode", "processes", "--max-concurrent-runs", "2")
    plate = write_plate(tmp_path / "plate", wells=("A01",), sites=1, channels=1, size=16)
    steps = plate_steps((diag.sleep_step, {"seconds": 0.005}, "tick"))
    hit = []
    with server.client() as client:
        client.execute_pipeline(plate_id=str(plate), pipeline_steps=steps, timeout=60)  # warm worker
        for i in range(30):
            x = client.submit_pipeline(plate_id=str(plate), pipeline_steps=steps)["execution_id"]
            y = client.submit_pipeline(plate_id=str(plate), pipeline_steps=steps)["execution_id"]
            client.cancel_execution(x, force=True)
            assert client.wait_for_completion(x, timeout=60)["status"] in ("cancelled", "complete")
            other = client.wait_for_completion(y, timeout=60)
            if other["status"] != "complete":
                hit.append((i, {w: o.get("error") for w, o in other["results"]["wells"].items()}))
    assert not hit, f"a forced cancel of one run killed another run's well: {hit}"
