"""DaskBackend against a cluster started from the command line, as on separate machines.

``dask scheduler`` and two ``dask worker --nworkers 1 --nthreads 1`` processes on loopback
(each worker under its own nanny, as a deployment would run them), reached only through
``GlobalPipelineConfig(mode='dask', dask_scheduler=ADDRESS)`` — directly, and through a
real execution server process and its client. The cluster is started per test because
most of the tests replace worker processes or kill the scheduler; every process is
stopped by its handle in teardown (terminate, wait, kill).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest
from test_dask_backend import STEPS, Recorder, assert_same_outputs, run, seed_sequence, started_run

from openhcs.core.executors import dask_backend as db
from openhcs.core.steps import FunctionStep
from openhcs.processing import diagnostics as diag
from tests.core.plates import MARKER, write_plate

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def cluster(tmp_path):
    """(address, client) of a fresh command-line cluster; torn down by process handles."""
    from distributed import Client

    dask_cli = str(Path(sys.executable).with_name("dask"))
    scheduler_file = tmp_path / "scheduler.json"
    logs = tmp_path / "logs"
    logs.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        # what docs/scale-out.md recommends: a worker holds only the well it is running
        "DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "1.0",
    }
    procs: list[tuple[subprocess.Popen, object]] = []

    def start(name: str, *args: str) -> None:
        log = open(logs / f"{name}.log", "w")
        procs.append((subprocess.Popen([dask_cli, *args], stdout=log, stderr=subprocess.STDOUT,
                                       env=env, cwd=tmp_path), log))

    start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", "0",
          "--scheduler-file", str(scheduler_file), "--no-dashboard")
    for i in range(2):
        start(f"worker{i}", "worker", "--scheduler-file", str(scheduler_file), "--host", "127.0.0.1",
              "--nworkers", "1", "--nthreads", "1", "--no-dashboard", "--name", f"w{i}")
    client = None
    try:
        # Client and workers wait for the scheduler file themselves (bounded by timeouts)
        client = Client(scheduler_file=str(scheduler_file), timeout=60, set_as_default=False)
        client.wait_for_workers(2, timeout=90)
        settings = client.run_on_scheduler(
            lambda dask_scheduler: (dask_scheduler.allowed_failures, dask_scheduler.WORKER_SATURATION)
        )
        assert settings == (3, 1.0)  # Dask's default retry limit; no wells queued on workers
        yield client.scheduler.address, client
    finally:
        db.close_shared_clients()
        if client is not None:
            client.close()
        for proc, _ in reversed(procs):  # workers first, then the scheduler
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for _, log in procs:
            log.close()


def _pids(client) -> set[int]:
    return set(client.run(os.getpid).values())


def test_cli_cluster_matches_processes(cluster, tmp_path):
    address, client = cluster
    plate = write_plate(tmp_path / "plate")
    reference = run(plate, STEPS, tmp_path / "proc", mode="processes", num_workers=2)
    rec = Recorder()
    result = run(plate, STEPS, tmp_path / "dask", rec, mode="dask", num_workers=2, dask_scheduler=address)
    assert result.status == "complete", result.to_dict()
    assert_same_outputs(reference, result)
    for well in result.wells:
        assert rec.for_well(well) == seed_sequence(["copy", "measure"]), well
    assert {int(o.worker.split(" pid ")[1]) for o in result.wells.values()} <= _pids(client)


def test_forced_cancel_restarts_only_the_stubborn_wells_worker(cluster, tmp_path):
    address, client = cluster
    plate = write_plate(tmp_path / "plate", marked=("A01",))
    rec = Recorder()
    steps = [FunctionStep(func=(diag.ignore_cancel_step, {"seconds": 120, "marker": MARKER}), name="stubborn")]
    config = {"mode": "dask", "num_workers": 2, "dask_scheduler": address}
    with started_run(plate, steps, tmp_path / "out", rec, **config) as (orch, box):
        rec.wait_for(lambda e: e[0] == "A01" and e[1] == "stubborn" and e[2] == "started")
        stubborn_pid = orch.worker_pids()["A01"]
        other_pids = _pids(client) - {stubborn_pid}
        assert len(other_pids) == 1
        orch.cancel(axis_ids=["A01"], grace=0.2)
    result = box["r"]
    assert result.cancelled == ["A01"] and len(result.completed) == 5
    reason = result.wells["A01"].error
    assert "restarted" in reason and str(stubborn_pid) in reason
    forced = [m for a, s, st, m in rec.events if a == "A01" and st == "cancelled"]
    assert len(forced) == 1 and forced[0]["forced"] and forced[0]["pid"] == stubborn_pid
    assert forced[0]["step"] == "stubborn"
    assert not psutil.pid_exists(stubborn_pid)
    client.wait_for_workers(2, timeout=90)
    now = _pids(client)
    assert other_pids <= now and stubborn_pid not in now  # only that worker was replaced


def test_lost_worker_is_retried_once_then_reported(cluster, tmp_path):
    address, client = cluster
    config = {"mode": "dask", "num_workers": 2, "dask_scheduler": address}
    plate = write_plate(tmp_path / "plate", marked=("A01",))
    rec = Recorder()
    steps = [FunctionStep(func=(diag.sleep_step, {"seconds": 2, "marker": MARKER}), name="slow")]
    with started_run(plate, steps, tmp_path / "out", rec, **config) as (orch, box):
        rec.wait_for(lambda e: e[0] == "A01" and e[1] == "slow" and e[2] == "started")
        os.kill(orch.worker_pids()["A01"], signal.SIGKILL)  # the machine running A01 is gone
    result = box["r"]
    assert result.status == "complete", result.to_dict()
    assert rec.for_well("A01") == [("pipeline", "started"), ("slow", "started")] + seed_sequence(["slow"])
    retry = [m for a, s, st, m in rec.events if a == "A01" and s == "pipeline" and st == "started"][1]
    assert retry["attempt"] == 2 and retry["previous_worker"].startswith("tcp://127.0.0.1:")

    # a well that takes down every worker it runs on: one retry, then a clear failure
    crash_plate = write_plate(tmp_path / "crash", marked=("B01",))
    rec = Recorder()
    result = run(crash_plate, [FunctionStep(func=(diag.crash_worker_step, {"marker": MARKER}), name="crash")],
                 tmp_path / "out2", rec, **config)
    errors = {w: o.error for w, o in result.wells.items() if o.error}
    assert result.failed == ["B01"] and len(result.completed) == 5, errors
    error = result.wells["B01"].error
    assert "lost while running well B01" in error and "tcp://127.0.0.1:" in error
    assert "tried on 2 worker(s)" in error
    assert rec.terminal("B01") == ["failed"]


def test_scheduler_lost_mid_run_ends_the_run_with_reasons(cluster, tmp_path):
    address, client = cluster
    plate = write_plate(tmp_path / "plate", marked=("A01",))
    rec = Recorder()
    steps = [FunctionStep(func=(diag.sleep_step, {"seconds": 30, "marker": MARKER}), name="slow")]
    config = {"mode": "dask", "num_workers": 2, "dask_scheduler": address}
    with started_run(plate, steps, tmp_path / "out", rec, **config) as (orch, box):
        rec.wait_until(lambda evs: {"A01", "A02", "A03", "B01", "B02", "B03"} - {"A01"}
                       <= {a for a, s, st, _ in evs if st == "completed" and s == "pipeline"}
                       and any(e[0] == "A01" and e[1] == "slow" and e[2] == "started" for e in evs))
        psutil.Process(client.run_on_scheduler(os.getpid)).kill()  # the scheduler's machine is gone
    result = box["r"]  # started_run checked that the run ended (bounded wait)
    assert result.status == "failed" and len(result.completed) == 5, result.to_dict()
    assert result.failed == ["A01"]
    assert "lost the connection to the Dask scheduler" in result.wells["A01"].error
    assert rec.terminal("A01") == ["failed"]


def test_execution_server_runs_on_the_cluster_with_gapless_progress(cluster, tmp_path, isolated_dirs):
    from openhcs.core.config import GlobalPipelineConfig
    from openhcs.runtime.lifecycle import spawn_server, stop_server
    from openhcs.runtime.zmq_base import find_free_port
    from openhcs.runtime.zmq_execution_client import ZMQExecutionClient

    address, client = cluster
    plate = write_plate(tmp_path / "plate")
    reference = run(plate, STEPS, tmp_path / "proc", mode="processes", num_workers=2)
    config = GlobalPipelineConfig(mode="dask", num_workers=2, dask_scheduler=address,
                                  output_dir=str(tmp_path / "dask"))
    server = spawn_server(find_free_port(), host="127.0.0.1", persistent=False, args=[], timeout=30)
    messages: list[dict] = []
    try:
        with ZMQExecutionClient(port=server.info.data_port, progress_callback=messages.append) as remote:
            response = remote.execute_pipeline(plate_id=str(plate), pipeline_steps=STEPS,
                                               global_config=config, timeout=120)
    finally:
        stop_server(server.info, popen=server.popen, wait=15)
    assert response["status"] == "complete", response
    mine = [m for m in messages if m["execution_id"] == response["execution_id"]]
    seqs = [m["seq"] for m in mine]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no gaps, in order
    progress = [m for m in mine if "well_id" in m]
    for well in ("A01", "A02", "A03", "B01", "B02", "B03"):
        got = [(m["step"], m["status"]) for m in progress if m["well_id"] == well]
        assert got == seed_sequence(["copy", "measure"]), well
    out = tmp_path / "dask" / plate.name
    assert_same_outputs(reference, SimpleNamespace(output_dir=out, summary_path=out / "summary.csv"))
