"""DaskBackend on a real ``LocalCluster(processes=True)``: same results, progress, cancel.

The cluster is module-scoped through the backend's own shared-client registry (so the
tests also prove reuse across runs) and closed with ``close_shared_clients()`` in
teardown. Tests that replace worker processes use the command-line cluster instead
(``test_dask_cli_cluster.py``), which is started and stopped per test.

No ``tests/dask/__init__.py`` on purpose: with pytest's rootdir-relative imports it
would be importable as ``dask`` and shadow the real library.
"""

from __future__ import annotations

import contextlib
import csv
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import tifffile

from openhcs.core.config import GlobalPipelineConfig
from openhcs.core.executors import dask_backend as db
from openhcs.core.orchestrator.orchestrator import PipelineOrchestrator
from openhcs.core.steps import FunctionStep
from openhcs.processing import diagnostics as diag
from tests.core.plates import MARKER, write_plate
from tests.core.recorder import Recorder

STEPS = [
    FunctionStep(func=diag.passthrough, name="copy"),
    FunctionStep(func=diag.mean_intensity, name="measure", variable_components=("site",)),
]


def seed_sequence(step_names):
    """The events one well reports when it completes, in order."""
    seq = [("pipeline", "started")]
    for name in step_names:
        seq += [(name, "started"), (name, "completed")]
    return seq + [("pipeline", "completed")]


def run(plate, steps, out, recorder=None, **config):
    """One run in its own output folder; returns the RunResult."""
    orch = PipelineOrchestrator(
        plate, GlobalPipelineConfig(output_dir=str(out), **config), progress_callback=recorder
    )
    try:
        return orch.run(steps)
    finally:
        orch.shutdown()


@contextlib.contextmanager
def started_run(plate, steps, out, recorder, **config):
    """A run on its own thread: yields (orchestrator, box); box['r'] is the RunResult.

    Leaving the block waits (with a deadline) for the run to end; if the test body
    failed first, the run is cancelled so that no thread or worker is left busy.
    """
    orch = PipelineOrchestrator(
        plate, GlobalPipelineConfig(output_dir=str(out), **config), progress_callback=recorder
    )
    box: dict = {}
    thread = threading.Thread(target=lambda: box.setdefault("r", orch.run(steps)))
    thread.start()
    try:
        yield orch, box
    except BaseException:
        orch.cancel(force=True)
        raise
    finally:
        thread.join(90)
        orch.shutdown()
    assert not thread.is_alive(), "the run did not finish"


def summary_without_timings(path: Path) -> list[dict]:
    with open(path) as f:
        return [{k: v for k, v in row.items() if k != "duration_s"} for row in csv.DictReader(f)]


def assert_same_outputs(a, b):
    """Two RunResults measured the same: summary (but timings), per-well CSVs, images."""
    assert summary_without_timings(a.summary_path) == summary_without_timings(b.summary_path)
    csvs_a = sorted(p.name for p in (a.output_dir / "measurements").glob("*.csv"))
    csvs_b = sorted(p.name for p in (b.output_dir / "measurements").glob("*.csv"))
    assert csvs_a and csvs_a == csvs_b
    for name in csvs_a:
        text_a = (a.output_dir / "measurements" / name).read_bytes()
        assert text_a == (b.output_dir / "measurements" / name).read_bytes(), name
    images_a = sorted(p.relative_to(a.output_dir) for p in a.output_dir.glob("images/*/*.tif"))
    images_b = sorted(p.relative_to(b.output_dir) for p in b.output_dir.glob("images/*/*.tif"))
    assert images_a == images_b
    for rel in images_a:
        assert np.array_equal(tifffile.imread(a.output_dir / rel), tifffile.imread(b.output_dir / rel)), rel


# --------------------------------------------------------------------------- tests
DASK = {"mode": "dask", "num_workers": 2}
HELLO_TIMEOUT_S = 3.0  # what the cluster's workers wait for the progress channel


@pytest.fixture(scope="module")
def shared_client():
    # workers inherit the environment when spawned: a short hello timeout keeps the
    # unreachable-channel test short (a reachable channel answers in ~1 ms)
    saved = os.environ.get("OPENHCS_DASK_HELLO_TIMEOUT")
    os.environ["OPENHCS_DASK_HELLO_TIMEOUT"] = str(HELLO_TIMEOUT_S)
    try:
        client = db.get_shared_client(None, n_workers=2)
    finally:
        if saved is None:
            os.environ.pop("OPENHCS_DASK_HELLO_TIMEOUT")
        else:
            os.environ["OPENHCS_DASK_HELLO_TIMEOUT"] = saved
    yield client
    db.close_shared_clients()


def test_local_cluster_matches_processes_and_reports_every_event(shared_client, tmp_path):
    plate = write_plate(tmp_path / "plate")
    reference = run(plate, STEPS, tmp_path / "proc", mode="processes", num_workers=2)
    rec = Recorder()
    result = run(plate, STEPS, tmp_path / "dask", rec, **DASK)
    assert result.status == "complete", result.to_dict()
    assert_same_outputs(reference, result)
    for well in result.wells:
        assert rec.for_well(well) == seed_sequence(["copy", "measure"]), well
    meta = [m for a, s, st, m in rec.events if a == "B02" and s == "measure" and st == "completed"][0]
    assert meta["step_index"] == 1 and meta["total_steps"] == 2 and meta["duration_s"] >= 0
    workers = {o.worker.split(" pid ")[0] for o in result.wells.values()}
    assert workers <= set(shared_client.scheduler_info()["workers"])


def test_demo_plate_matches_processes(shared_client, tmp_path):
    demo_plate = pytest.importorskip("openhcs.demo.plate")
    demo_pipeline = pytest.importorskip("openhcs.demo.pipeline")
    plate = demo_plate.make_demo_plate(tmp_path / "demo", rows=1, cols=3, image_size=128)
    steps = demo_pipeline.default_pipeline(grid=plate.grid, overlap=plate.overlap)
    reference = run(plate.path, steps, tmp_path / "proc", mode="processes", num_workers=2)
    rec = Recorder()
    result = run(plate.path, steps, tmp_path / "dask", rec, **DASK)
    assert reference.status == "complete" and result.status == "complete", result.to_dict()
    assert_same_outputs(reference, result)
    names = [step.display_name for step in steps]
    for well in plate.wells:
        assert rec.for_well(well) == seed_sequence(names), well


def test_shared_cluster_is_reused_across_runs(shared_client, tmp_path):
    plate = write_plate(tmp_path / "plate", wells=("A01", "A02", "A03", "A04"))
    first = run(plate, STEPS, tmp_path / "one", **DASK)
    assert db.get_shared_client(None, n_workers=2) is shared_client
    second = run(plate, STEPS, tmp_path / "two", **DASK)
    assert first.status == second.status == "complete"
    pids = {o.worker.split(" pid ")[1] for r in (first, second) for o in r.wells.values()}
    assert len(pids) <= 2  # the same two worker processes served both runs
    settings = shared_client.run_on_scheduler(
        lambda dask_scheduler: (dask_scheduler.allowed_failures, dask_scheduler.WORKER_SATURATION)
    )
    assert settings == (3, 1.0)  # Dask's default retry limit; no well waits on a worker


def test_failing_well_reports_its_error_through_dask(shared_client, tmp_path):
    plate = write_plate(tmp_path / "plate", marked=("A02",))
    rec = Recorder()
    result = run(plate, [FunctionStep(func=(diag.fail_step, {"marker": MARKER}), name="boom")],
                 tmp_path / "out", rec, **DASK)
    assert result.failed == ["A02"] and len(result.completed) == 5
    failed = result.wells["A02"]
    assert "deliberate failure" in failed.error and "RuntimeError" in failed.traceback
    assert failed.failed_step == "boom"
    assert rec.terminal("A02") == ["failed"]


def test_cancel_whole_run_lands_mid_step_and_skips_queued_wells(shared_client, tmp_path):
    plate = write_plate(tmp_path / "plate")
    rec = Recorder()
    steps = [FunctionStep(func=(diag.sleep_step, {"seconds": 60}), name="slow")]
    with started_run(plate, steps, tmp_path / "out", rec, **DASK) as (orch, box):
        # both workers busy in the long step; the other four wells wait in Dask
        rec.wait_until(lambda evs: len({a for a, s, st, _ in evs if s == "slow" and st == "started"}) == 2)
        running = set(orch.worker_pids())
        assert len(running) == 2 and set(orch.worker_pids().values()) <= _worker_pids(shared_client)
        orch.cancel()
    result = box["r"]
    assert result.status == "cancelled"
    assert sorted(result.cancelled) == ["A01", "A02", "A03", "B01", "B02", "B03"]
    for well in result.wells:
        assert rec.terminal(well) == ["cancelled"], well
    landed = [m for a, s, st, m in rec.events if a in running and st == "cancelled"]
    assert landed and all(m["step"] == "slow" for m in landed)  # stopped inside the step
    for well in set(result.wells) - running:  # queued wells never started
        assert rec.for_well(well) == [("pipeline", "cancelled")], well


def test_cancel_one_well_leaves_the_others_running(shared_client, tmp_path):
    plate = write_plate(tmp_path / "plate", marked=("A01",))
    rec = Recorder()
    steps = [FunctionStep(func=(diag.sleep_step, {"seconds": 60, "marker": MARKER}), name="slow")]
    with started_run(plate, steps, tmp_path / "out", rec, **DASK) as (orch, box):
        rec.wait_for(lambda e: e[0] == "A01" and e[1] == "slow" and e[2] == "started")
        orch.cancel(axis_ids=["A01"])
    result = box["r"]
    assert result.cancelled == ["A01"] and len(result.completed) == 5
    assert rec.terminal("A01") == ["cancelled"]
    assert [m for a, s, st, m in rec.events if a == "A01" and st == "cancelled"][0]["step"] == "slow"


def _worker_pids(client) -> set[int]:
    return set(client.run(os.getpid).values())


def test_workers_that_cannot_reach_the_channel_fail_fast_with_the_reason(shared_client, tmp_path):
    import time

    from openhcs.core.executors.dask_progress import UNREACHABLE

    plate = write_plate(tmp_path / "plate")
    orch = PipelineOrchestrator(plate, GlobalPipelineConfig(output_dir=str(tmp_path / "out"), **DASK))
    tasks = orch.compile_pipelines(STEPS).tasks
    backend = db.DaskBackend(shared_client, orch.config)
    backend.hub.address = "tcp://127.0.0.1:9"  # as if workers could not route to this host
    rec = Recorder()
    outcomes = []
    started = time.monotonic()
    try:
        for task in tasks:
            backend.submit(task, rec, outcomes.append)
        rec.wait_until(lambda evs: len({a for a, s, st, _ in evs if st == "failed"}) == len(tasks),
                       timeout=10 * HELLO_TIMEOUT_S)
    finally:
        backend.close()
    elapsed = time.monotonic() - started
    assert len(outcomes) == len(tasks) and all(o.status == "failed" for o in outcomes)
    assert all(o.error.startswith(UNREACHABLE) and "OPENHCS_DASK_CHANNEL_HOST" in o.error for o in outcomes)
    # the first answer-less hello fails the wells still waiting: not one timeout per well
    assert elapsed < 2.5 * HELLO_TIMEOUT_S, elapsed


# ------------------------------------------------------- the channel on its own
def test_channel_handshake_cancel_and_stray_traffic():
    from openhcs.core.executors.dask_progress import Hub, WorkerLink

    seen: list[tuple[str, dict]] = []
    cond = threading.Condition()
    cancel_on_hello = {"A02"}

    def on_message(attempt, msg):
        with cond:
            seen.append((attempt, msg))
            cond.notify_all()
        if msg["k"] == "hello":
            hub.send(attempt, {"k": "ack", "cancelled": msg["w"] in cancel_on_hello})

    hub = Hub("127.0.0.1", "right-token", on_message, lambda cmd: hub.send(cmd, {"k": "cancel"}),
              lambda: None, lambda: None)
    links = []
    try:
        stray = WorkerLink(hub.address, "wrong-token", "A01", "stray1")
        links.append(stray)
        stray.emit("A01", "pipeline", "started", {})
        first = WorkerLink(hub.address, "right-token", "A01", "att1")
        links.append(first)
        first.hello(pid=123, worker="tcp://w:1")
        assert not first.is_cancelled()
        first.emit("A01", "copy", "started", {"step_index": 0})
        with cond:
            assert cond.wait_for(lambda: len(seen) == 2, 10)
        assert [m["k"] for _, m in seen] == ["hello", "ev"]  # the stray message was dropped
        assert seen[0] == ("att1", seen[0][1]) and seen[0][1]["pid"] == 123
        assert seen[1][1]["s"] == "copy" and seen[1][1]["m"] == {"step_index": 0}
        hub.post("att1")  # a cancel for that attempt, sent from the hub thread
        assert first.is_cancelled(timeout=10)
        second = WorkerLink(hub.address, "right-token", "A02", "att2")
        links.append(second)
        second.hello(pid=456, worker="tcp://w:2")  # cancelled before it started: told in the ack
        assert second.is_cancelled()
    finally:
        for link in links:
            link.close()
        hub.stop()


def test_channel_host_follows_the_scheduler(monkeypatch):
    from openhcs.core.executors.dask_progress import CHANNEL_HOST_ENV, channel_host_for

    monkeypatch.delenv(CHANNEL_HOST_ENV, raising=False)
    assert channel_host_for(None) == "127.0.0.1"
    assert channel_host_for("tcp://127.0.0.1:8786") == "127.0.0.1"
    assert channel_host_for("tls://localhost:8786") == "127.0.0.1"
    monkeypatch.setenv(CHANNEL_HOST_ENV, "10.1.2.3")
    assert channel_host_for("tcp://127.0.0.1:8786") == "10.1.2.3"
