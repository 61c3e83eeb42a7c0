"""The execution server as a real process: execute, status, cancel, events, shutdown."""

from __future__ import annotations

import os
import time

import openhcs_test_steps as steps
import pytest

from openhcs.core.config import GlobalPipelineConfig
from openhcs.runtime.connection import find_server
from openhcs.runtime.zmq_execution_client import ZMQExecutionClient

from .conftest import well_started

PROC2 = GlobalPipelineConfig(num_workers=2, mode="processes")


def seqs(events):
    return [e["seq"] for e in events]


def test_ping_and_idle_status(client, server):
    pong = client.ping()
    assert pong["server_pid"] == server.pid and pong["control_port"] == server.info.data_port + 1000
    status = client.get_status()
    assert status["status"] == "ok" and status["executions"] == []
    assert status["server"]["pid"] == server.pid
    assert client.get_status("no-such-run")["status"] == "not_found"
    assert client.cancel_execution("no-such-run")["status"] == "not_found"


def test_demo_pipeline_completes_with_ordered_gapless_events(server, plate, recorder):
    from openhcs.demo.pipeline import default_pipeline

    with ZMQExecutionClient(port=server.info.data_port, progress_callback=recorder) as client:
        response = client.execute_pipeline(plate_id=str(plate), pipeline_steps=default_pipeline(),
                                           global_config=PROC2)
        assert response["status"] == "complete", response
        eid = response["execution_id"]
        results = response["results"]
        assert sorted(results["completed"]) == ["A01", "A02", "A03", "B01", "B02", "B03"]
        assert results["metrics"]["wall_time_s"] > 0
        assert os.path.exists(results["summary_path"])
        events = recorder.for_run(eid)
        assert seqs(events) == list(range(1, response["final_seq"] + 1))
        assert events[0]["status"] == "queued" and events[-1]["status"] == "complete"
        assert events[-1]["final_seq"] == events[-1]["seq"]
        well_events = [e for e in events if e["type"] == "progress"]
        assert {e["well_id"] for e in well_events} == set(results["completed"])
        assert all(e["well_id"] == e["axis_id"] and e["step"] and e["status"] for e in well_events)
        # replay equals what was streamed, and from a sequence number
        replay = client.get_events(eid)
        assert seqs(replay) == seqs(events)
        assert seqs(client.get_events(eid, since_seq=10)) == list(range(11, response["final_seq"] + 1))
        run = client.get_status(eid)["execution"]
        assert run["state"] == "complete" and run["progress"]["wells_complete"] == 6
        # once compiled, the run announces its plan, so totals are known without the plate
        planned = [e for e in events if e["type"] == "run" and e["status"] == "planned"]
        assert len(planned) == 1
        assert planned[0]["summary"] == {"wells": ["A01", "A02", "A03", "B01", "B02", "B03"], "total_steps": 4}
        assert planned[0]["seq"] < min(e["seq"] for e in well_events)
        assert run["progress"]["wells_total"] == 6 and run["progress"]["fraction"] == 1.0


def test_status_answered_while_plate_runs_on_all_cores(client, plate, recorder):
    client.progress_callback = recorder
    eid = client.submit_pipeline(plate_id=plate, pipeline_steps=steps.busy_pipeline(1.5),
                                 global_config=PROC2)["execution_id"]
    recorder.wait_for(well_started(eid))
    latencies = []
    for _ in range(30):
        t0 = time.perf_counter()
        status = client.get_status(eid)
        latencies.append(time.perf_counter() - t0)
        assert status["execution"]["state"] == "running"
    assert max(latencies) < 1.0  # answered, not queued behind the run (bench measures p99)
    assert client.cancel_execution(eid, force=True)["status"] == "ok"
    assert client.wait_for_completion(eid, timeout=30)["status"] == "cancelled"


def test_cancel_whole_run_mid_run(client, plate, recorder):
    client.progress_callback = recorder
    eid = client.submit_pipeline(plate_id=plate, pipeline_steps=steps.busy_pipeline(3.0),
                                 global_config=PROC2)["execution_id"]
    recorder.wait_for(well_started(eid))
    t0 = time.perf_counter()
    reply = client.cancel_execution(eid)
    assert reply["status"] == "ok" and reply["state"] == "cancelling"
    assert time.perf_counter() - t0 < 1.0
    response = client.wait_for_completion(eid, timeout=30)
    assert response["status"] == "cancelled", (response["error"], response["traceback"])
    assert response["results"]["completed"] == []
    statuses = [e["status"] for e in recorder.for_run(eid) if e["type"] == "run"]
    assert statuses == ["queued", "started", "planned", "cancelling", "cancelled"]
    events = recorder.for_run(eid)
    assert seqs(events) == list(range(1, events[-1]["final_seq"] + 1))


def test_cancel_some_wells_leaves_others_complete(client, plate, recorder):
    client.progress_callback = recorder
    eid = client.submit_pipeline(plate_id=plate, pipeline_steps=steps.busy_pipeline(1.0),
                                 global_config=PROC2)["execution_id"]
    first = recorder.wait_for(well_started(eid))["well_id"]
    reply = client.cancel_execution(eid, axis_ids=[first, "B03"])
    assert reply["status"] == "ok" and reply["axis_ids"] == [first, "B03"]
    assert reply["state"] == "running"  # the run goes on; only those wells stop
    response = client.wait_for_completion(eid, timeout=60)
    wells = response["results"]["wells"]
    assert wells[first]["status"] == "cancelled" and wells["B03"]["status"] == "cancelled"
    others = set(wells) - {first, "B03"}
    assert len(others) == 4 and all(wells[w]["status"] == "complete" for w in others)
    assert response["status"] == "cancelled"


def test_cancel_immediately_after_submit_takes_effect(client, plate):
    # The cancel reaches the server before the run thread has built its orchestrator
    # (loading code / compiling): it must be kept and applied, not lost.
    eid = client.submit_pipeline(plate_id=plate, pipeline_steps=steps.busy_pipeline(5.0),
                                 global_config=PROC2)["execution_id"]
    reply = client.cancel_execution(eid)
    assert reply["status"] == "ok" and reply["state"] in ("cancelling", "cancelled")
    response = client.wait_for_completion(eid, timeout=30)
    assert response["status"] == "cancelled"
    assert not (response["results"] or {}).get("completed")


def test_queued_run_cancelled_before_it_starts(client, plate, recorder):
    client.progress_callback = recorder
    first = client.submit_pipeline(plate_id=plate, pipeline_steps=steps.busy_pipeline(3.0),
                                   global_config=PROC2)["execution_id"]
    second = client.submit_pipeline(plate_id=plate, pipeline_steps=steps.busy_pipeline(3.0),
                                    global_config=PROC2)["execution_id"]
    recorder.wait_for(well_started(first))
    assert client.get_status(second)["execution"]["state"] == "queued"
    assert client.get_status()["server"]["queued_runs"] == 1
    reply = client.cancel_execution(second)
    assert reply["status"] == "ok" and reply["state"] == "cancelled"  # never started
    assert client.wait_for_completion(second, timeout=10)["status"] == "cancelled"
    assert [e["status"] for e in recorder.for_run(second)] == ["queued", "cancelling", "cancelled"]
    client.cancel_execution(first, force=True)
    assert client.wait_for_completion(first, timeout=30)["status"] == "cancelled"


def test_force_cancel_kills_a_worker_that_ignores_cancellation(client, plate, recorder):
    client.progress_callback = recorder
    eid = client.submit_pipeline(plate_id=plate, pipeline_steps=steps.stubborn_pipeline(120),
                                 global_config=PROC2, wells=["A01"])["execution_id"]
    # inside the step (not just at the well's start), where only a kill can stop it
    recorder.wait_for(lambda e: e.get("step") == "stubborn" and e.get("status") == "started")
    pids_before = set(client.get_status()["server"]["worker_pids"])
    assert len(pids_before) == 2
    t0 = time.perf_counter()
    client.cancel_execution(eid, force=True)
    response = client.wait_for_completion(eid, timeout=30)
    assert response["status"] == "cancelled"
    assert time.perf_counter() - t0 < 20
    pids_after = set(client.get_status()["server"]["worker_pids"])
    assert len(pids_after - pids_before) == 1  # exactly the stuck worker was replaced
    # the warm pool still works after the kill
    again = client.execute_pipeline(plate_id=plate, pipeline_steps=steps.noop_pipeline(),
                                    global_config=PROC2, wells=["A02"], timeout=60)
    assert again["status"] == "complete"


def test_failed_wells_and_runs_carry_error_and_traceback(client, plate, recorder):
    client.progress_callback = recorder
    response = client.execute_pipeline(plate_id=plate, pipeline_steps=steps.failing_pipeline(),
                                       global_config=PROC2, wells=["A01", "A02"], timeout=60)
    assert response["status"] == "failed"
    assert "boom" in response["error"]
    well = response["results"]["wells"]["A01"]
    assert well["status"] == "failed" and "boom" in well["error"] and "Traceback" in well["traceback"]
    failed = [e for e in recorder.for_run(response["execution_id"])
              if e["type"] == "progress" and e["status"] == "failed"]
    assert {e["well_id"] for e in failed} == {"A01", "A02"}
    assert all("boom" in e["metadata"]["error"] and e["metadata"]["traceback"] for e in failed)


def test_bad_pipeline_code_and_missing_plate_fail_with_traceback(client, tmp_path):
    bad = client.execute_pipeline(plate_id=tmp_path, pipeline_steps="pipeline_steps = [1/0]",
                                  timeout=30)
    assert bad["status"] == "failed"
    assert "ZeroDivisionError" in bad["message"] and "Traceback" in bad["traceback"]
    missing = client.execute_pipeline(plate_id=tmp_path / "nope", pipeline_steps=steps.noop_pipeline(),
                                      timeout=30)
    assert missing["status"] == "failed" and missing["traceback"]
    assert client.ping()["server_pid"]


def test_idempotent_submit_returns_the_same_execution(client, plate):
    first = client.submit_pipeline(plate_id=plate, pipeline_steps=steps.noop_pipeline(),
                                   global_config=PROC2, request_id="same-request-42")
    again = client.submit_pipeline(plate_id=plate, pipeline_steps=steps.noop_pipeline(),
                                   global_config=PROC2, request_id="same-request-42")
    assert again["execution_id"] == first["execution_id"]
    assert first["duplicate"] is False and again["duplicate"] is True
    client.wait_for_completion(first["execution_id"], timeout=60)
    runs = client.get_status()["executions"]
    assert [r["request_id"] for r in runs].count("same-request-42") == 1


def test_concurrent_runs_when_configured(server_factory, plate, recorder):
    server = server_factory("--workers", "2", "--max-concurrent-runs", "2")
    with ZMQExecutionClient(port=server.info.data_port, progress_callback=recorder) as client:
        a = client.submit_pipeline(plate_id=plate, pipeline_steps=steps.busy_pipeline(1.0),
                                   global_config=PROC2, wells=["A01"])["execution_id"]
        b = client.submit_pipeline(plate_id=plate, pipeline_steps=steps.busy_pipeline(1.0),
                                   global_config=PROC2, wells=["A02"])["execution_id"]
        recorder.wait_for(well_started(a))
        recorder.wait_for(well_started(b))
        assert client.get_status()["server"]["active_runs"] == 2
        assert client.wait_for_completion(a, timeout=60)["status"] == "complete"
        assert client.wait_for_completion(b, timeout=60)["status"] == "complete"


def test_shutdown_request_cancels_runs_and_exits(server, plate, recorder):
    client = ZMQExecutionClient(port=server.info.data_port, progress_callback=recorder)
    client.connect()
    try:
        eid = client.submit_pipeline(plate_id=plate, pipeline_steps=steps.busy_pipeline(30),
                                     global_config=PROC2)["execution_id"]
        recorder.wait_for(well_started(eid))
        reply = client.shutdown_server(grace_seconds=5)
        assert reply["cancelled"] == [eid]
        server.popen.wait(timeout=30)
        assert server.popen.returncode == 0
        recorder.wait_for(lambda e: e.get("execution_id") == eid and e.get("status") == "cancelled",
                          timeout=5)
    finally:
        client.disconnect()
    assert find_server(server.info.data_port) is None
    from openhcs.runtime.history import RunHistory

    with RunHistory() as history:
        record = history.get(eid)
        assert record["state"] == "cancelled", (record["error"], record["traceback"])


@pytest.mark.parametrize("with_run", [False, True])
def test_history_records_runs_and_marks_interrupted_after_crash(server_factory, plate, recorder, with_run):
    import signal

    from openhcs.runtime.history import RunHistory

    server = server_factory("--workers", "1")
    client = ZMQExecutionClient(port=server.info.data_port, progress_callback=recorder)
    client.connect()
    try:
        done = client.execute_pipeline(plate_id=plate, pipeline_steps=steps.noop_pipeline(),
                                       global_config=GlobalPipelineConfig(num_workers=1),
                                       wells=["A01"], timeout=60)
        eid = None
        if with_run:
            eid = client.submit_pipeline(plate_id=plate, pipeline_steps=steps.busy_pipeline(30),
                                         global_config=GlobalPipelineConfig(num_workers=1))["execution_id"]
            recorder.wait_for(well_started(eid))
    finally:
        client.disconnect()
    os.kill(server.pid, signal.SIGKILL)
    server.popen.wait(timeout=10)
    with RunHistory() as history:
        assert history.get(done["execution_id"])["state"] == "complete"
        if with_run:
            assert history.get(eid)["state"] == "running"
    new = server_factory("--workers", "1")  # a new server marks the dead one's runs interrupted
    with RunHistory() as history:
        if with_run:
            assert history.get(eid)["state"] == "interrupted"
        assert history.get(done["execution_id"])["state"] == "complete"
    with ZMQExecutionClient(port=new.info.data_port) as client:  # and answers from history
        old = client.get_status(done["execution_id"])
        assert old["status"] == "ok" and old["execution"]["state"] == "complete"
        if with_run:
            assert client.wait_for_completion(eid, timeout=10)["status"] == "interrupted"
        assert client.wait_for_completion("no-such-run", timeout=10)["status"] == "not_found"


def test_config_params_instead_of_config_code(client, plate):
    response = client.execute_pipeline(
        plate_id=plate, pipeline_steps=steps.noop_pipeline(), wells=["A01", "B01"],
        config_params={"num_workers": 1, "mode": "threads", "pipeline_config": {"materialization_format": "none"}},
        timeout=60)
    assert response["status"] == "complete"
    assert response["results"]["metrics"]["mode"] == "threads"
    assert response["results"]["metrics"]["num_workers"] == 1


def test_kill_request_force_cancels_and_exits_at_once(server, plate, recorder):
    from openhcs.runtime import protocol as p

    client = ZMQExecutionClient(port=server.info.data_port, progress_callback=recorder)
    client.connect()
    try:
        eid = client.submit_pipeline(plate_id=plate, pipeline_steps=steps.stubborn_pipeline(120),
                                     global_config=PROC2)["execution_id"]
        recorder.wait_for(lambda e: e.get("step") == "stubborn" and e.get("status") == "started")
        t0 = time.perf_counter()
        reply = client.request(p.Kill(), p.ShutdownReply)
        assert reply.cancelled == [eid]
        server.popen.wait(timeout=30)
        assert time.perf_counter() - t0 < 15
    finally:
        client.disconnect()
    assert find_server(server.info.data_port) is None


def test_posted_items_never_wait_for_a_heartbeat(runtime_env):
    """Regression: a swallowed wake-up left the loop handling posted items (progress,
    finished runs) only at heartbeats. With a 60 s heartbeat, any lost wake-up hangs."""
    import threading

    from openhcs.runtime.zmq_base import ZMQServer, find_free_port

    handled = []
    ready = threading.Condition()

    class Server(ZMQServer):
        heartbeat_interval = 60.0

        def request_handlers(self):
            return {t: (lambda m: None) for t in __import__("openhcs.runtime.protocol",
                                                              fromlist=["x"]).REQUEST_TYPES}

        def handle_posted(self, item):
            with ready:
                handled.append(item)
                ready.notify_all()

    server = Server(find_free_port(), write_connection=False)
    server.bind()
    loop = threading.Thread(target=server.serve_forever)
    loop.start()
    def produce(start: int, count: int) -> None:
        for k in range(count):  # posts race with the loop draining the previous ones
            server.post(start + k)

    try:
        n = 0
        for i in range(300):
            count = 1 + (i * 37) % 200
            producers = [threading.Thread(target=produce, args=(n + j * count, count)) for j in range(2)]
            for t in producers:
                t.start()
            for t in producers:
                t.join()
            n += 2 * count
            with ready:
                assert ready.wait_for(lambda n=n: len(handled) == n, timeout=5), f"stuck at {len(handled)}/{n}"
    finally:
        server.request_stop()
        loop.join(timeout=10)
    assert sorted(handled) == list(range(n))


def test_a_crashed_run_thread_still_ends_its_run(runtime_env):
    """If a run thread dies before reporting (a bug), the run fails with the traceback
    instead of staying queued forever."""
    import subprocess
    import sys

    from openhcs.runtime.lifecycle import stop_server
    from openhcs.runtime.zmq_base import find_free_port

    code = (
        "import sys\n"
        "from openhcs.runtime.zmq_execution_server import ZMQExecutionServer\n"
        "class Broken(ZMQExecutionServer):\n"
        "    def _run_thread(self, run):\n"
        "        raise RuntimeError('bug before reporting')\n"
        "s = Broken(int(sys.argv[1])); s.bind(); print('READY', flush=True); s.serve_forever()\n"
    )
    port = find_free_port()
    proc = subprocess.Popen([sys.executable, "-c", code, str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "READY"
        with ZMQExecutionClient(port=port) as client:
            response = client.execute_pipeline(plate_id="/nowhere", pipeline_steps="x", timeout=30)
        assert response["status"] == "failed"
        assert "bug before reporting" in response["message"] and "RuntimeError" in response["traceback"]
    finally:
        proc.stdout.close()
        stop_server(find_server(port), popen=proc)
