"""ZMQExecutionClient against real servers: spawn/attach, persistence, liveness, replay."""

from __future__ import annotations

import os
import signal
import threading
import time

import openhcs_test_steps as steps
import psutil
import pytest

from openhcs.cli import main as cli_main
from openhcs.core.config import GlobalPipelineConfig
from openhcs.runtime.connection import connection_file_path, find_server
from openhcs.runtime.zmq_base import ServerUnavailable, find_free_port
from openhcs.runtime.zmq_execution_client import ZMQExecutionClient

from .conftest import well_started

PROC2 = GlobalPipelineConfig(num_workers=2, mode="processes")


def listener_threads():
    return [t for t in threading.enumerate() if t.name.startswith("openhcs-listener")]


def test_connect_spawns_an_owned_server_and_disconnect_stops_it(runtime_env):
    port = find_free_port()
    client = ZMQExecutionClient(port=port)
    client.connect(timeout=30)
    pid = client.server_process.pid
    assert client.connected and client.ping()["server_pid"] == pid
    assert find_server(port).pid == pid
    client.disconnect()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not connection_file_path(port).exists()
    assert not listener_threads()
    assert not client.connected


def test_connect_attaches_to_a_running_server_without_spawning(server):
    with ZMQExecutionClient(port=server.info.data_port) as client:
        assert client.server_process is None
        assert client.ping()["server_pid"] == server.pid
    assert server.popen.poll() is None  # not ours to stop


def test_two_clients_share_one_server_and_see_their_runs(server, plate, recorder):
    other = []
    with ZMQExecutionClient(port=server.info.data_port, progress_callback=recorder) as a, \
            ZMQExecutionClient(port=server.info.data_port, progress_callback=other.append) as b:
        ra = a.execute_pipeline(plate_id=plate, pipeline_steps=steps.noop_pipeline(), wells=["A01"],
                                global_config=PROC2, timeout=60)
        rb = b.execute_pipeline(plate_id=plate, pipeline_steps=steps.noop_pipeline(), wells=["A02"],
                                global_config=PROC2, timeout=60)
    assert ra["status"] == rb["status"] == "complete"
    assert {e["execution_id"] for e in recorder.events} == {ra["execution_id"]}
    assert {e["execution_id"] for e in other} == {rb["execution_id"]}


def test_persistent_server_outlives_its_client_and_cli_stops_it(runtime_env, capsys):
    port = find_free_port()
    client = ZMQExecutionClient(port=port, persistent=True)
    client.connect(timeout=30)
    proc = client.server_process
    client.disconnect()
    assert proc.popen.poll() is None
    assert os.getsid(proc.pid) == proc.pid  # its own session: survives our terminal
    with ZMQExecutionClient(port=port) as again:  # a later client attaches to it
        assert again.server_process is None and again.ping()["server_pid"] == proc.pid
    assert cli_main(["server", "list"]) == 0
    assert str(proc.pid) in capsys.readouterr().out
    assert cli_main(["server", "stop", "--port", str(port)]) == 0
    assert proc.popen.wait(timeout=15) == 0
    assert find_server(port) is None


def test_dead_server_is_reported_within_three_seconds(server, plate, recorder):
    client = ZMQExecutionClient(port=server.info.data_port, progress_callback=recorder)
    client.connect()
    try:
        eid = client.submit_pipeline(plate_id=plate, pipeline_steps=steps.busy_pipeline(30),
                                     global_config=PROC2)["execution_id"]
        recorder.wait_for(well_started(eid))
        box = {}

        def wait():
            try:
                client.wait_for_completion(eid, timeout=60)
            except ServerUnavailable as exc:
                box["error"] = exc
            box["at"] = time.monotonic()

        waiter = threading.Thread(target=wait)
        waiter.start()
        killed_at = time.monotonic()
        os.kill(server.pid, signal.SIGKILL)
        waiter.join(timeout=30)
        assert not waiter.is_alive()
        assert "error" in box, "a dead server must be reported, not a result"
        assert box["at"] - killed_at < 3.0
        assert str(server.pid) in str(box["error"])
    finally:
        client.disconnect()
        server.popen.wait(timeout=10)


def test_lazy_pirate_retries_then_reports_unavailable(server):
    client = ZMQExecutionClient(port=server.info.data_port, timeout=0.3, retries=2)
    client.connect()
    try:
        os.kill(server.pid, signal.SIGSTOP)
        try:
            t0 = time.perf_counter()
            with pytest.raises(ServerUnavailable, match="3 attempt"):
                client.ping()
            assert 0.8 < time.perf_counter() - t0 < 3.0
        finally:
            os.kill(server.pid, signal.SIGCONT)
        assert client.ping()["server_pid"] == server.pid  # fresh socket after the failures
    finally:
        client.disconnect()


def test_retried_submit_is_idempotent_across_a_stalled_server(server, plate):
    client = ZMQExecutionClient(port=server.info.data_port, timeout=0.3, retries=0)
    client.connect()
    try:
        os.kill(server.pid, signal.SIGSTOP)
        try:
            with pytest.raises(ServerUnavailable):
                client.submit_pipeline(plate_id=plate, pipeline_steps=steps.noop_pipeline(),
                                       request_id="retry-me", wells=["A01"])
        finally:
            os.kill(server.pid, signal.SIGCONT)
        client.retries = 3
        client._requester.retries = 3
        accepted = client.submit_pipeline(plate_id=plate, pipeline_steps=steps.noop_pipeline(),
                                          request_id="retry-me", wells=["A01"])
        client.wait_for_completion(accepted["execution_id"], timeout=60)
        runs = [r for r in client.get_status()["executions"] if r["request_id"] == "retry-me"]
        assert len(runs) == 1 and runs[0]["execution_id"] == accepted["execution_id"]
    finally:
        client.disconnect()


def test_late_attach_replays_everything_once_in_order(server, plate, recorder):
    late = []
    with ZMQExecutionClient(port=server.info.data_port, progress_callback=recorder) as client:
        eid = client.submit_pipeline(plate_id=plate, pipeline_steps=steps.busy_pipeline(0.5),
                                     global_config=PROC2)["execution_id"]
        recorder.wait_for(well_started(eid))
        with ZMQExecutionClient(port=server.info.data_port, progress_callback=late.append) as watcher:
            status = watcher.attach(eid)
            assert status["execution"]["state"] == "running"
            response = watcher.wait_for_completion(eid, timeout=60)
        final = response["final_seq"]
        assert [e["seq"] for e in late] == list(range(1, final + 1))
        assert [e["seq"] for e in recorder.for_run(eid)] == list(range(1, final + 1))
        assert late == recorder.for_run(eid)
        # attaching after the end also replays the whole run
        again = []
        with ZMQExecutionClient(port=server.info.data_port, progress_callback=again.append) as c:
            c.attach(eid)
            c.wait_for_completion(eid, timeout=10)
        assert [e["seq"] for e in again] == list(range(1, final + 1))


def test_seed_callback_fields_present(server, plate):
    seen = []

    def on_progress(message):
        seen.append((message.get("well_id", "unknown"), message.get("step", "unknown"),
                     message.get("status", "unknown")))

    with ZMQExecutionClient(port=server.info.data_port, progress_callback=on_progress) as client:
        client.execute_pipeline(plate_id=plate, pipeline_steps=steps.noop_pipeline(2), wells=["B02"],
                                global_config=PROC2, timeout=60)
    assert ("B02", "pipeline", "started") in seen
    assert ("B02", "noop0", "started") in seen and ("B02", "noop1", "completed") in seen
    assert ("B02", "pipeline", "completed") in seen


def test_remote_host_without_connection_file_is_unavailable(runtime_env):
    client = ZMQExecutionClient(host="192.0.2.1", port=find_free_port())
    with pytest.raises(ServerUnavailable, match="connection file"):
        client.connect(timeout=2)


def test_requests_before_connect_fail_clearly():
    client = ZMQExecutionClient(port=1)
    with pytest.raises(ServerUnavailable, match="connect"):
        client.get_status()


def test_relative_plate_path_is_resolved_for_a_local_server(client, plate, monkeypatch):
    monkeypatch.chdir(plate.parent)  # the server was started from another folder
    response = client.execute_pipeline(plate_id="plate", pipeline_steps=steps.noop_pipeline(),
                                       wells=["A01"], global_config=PROC2, timeout=60)
    assert response["status"] == "complete", response["message"]
    assert response["execution"]["plate_id"] == str(plate)
