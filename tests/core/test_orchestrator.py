"""PipelineOrchestrator on real TIFF plates, with threads and real worker processes."""

from __future__ import annotations

import csv
import threading

import pytest

from openhcs.core.config import GlobalPipelineConfig
from openhcs.core.orchestrator.compiler import CompileError
from openhcs.core.orchestrator.orchestrator import PipelineOrchestrator
from openhcs.core.steps import FunctionStep
from openhcs.processing import diagnostics as diag
from tests.core.plates import MARKER, write_plate
from tests.core.recorder import Recorder

STEPS = [
    FunctionStep(func=diag.passthrough, name="copy"),
    FunctionStep(func=diag.mean_intensity, name="measure", variable_components=("site",)),
]


@pytest.fixture
def plate(tmp_path):
    return write_plate(tmp_path / "plate")


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_run_reports_seed_progress_and_writes_outputs(plate, mode):
    rec = Recorder()
    orch = PipelineOrchestrator(
        plate, GlobalPipelineConfig(num_workers=2, mode=mode), progress_callback=rec
    )
    try:
        result = orch.run(STEPS)
    finally:
        orch.shutdown()
    assert result.status == "complete", result.to_dict()
    assert result.completed == ["A01", "A02", "A03", "B01", "B02", "B03"]
    assert rec.for_well("A01") == [
        ("pipeline", "started"),
        ("copy", "started"),
        ("copy", "completed"),
        ("measure", "started"),
        ("measure", "completed"),
        ("pipeline", "completed"),
    ]
    step_meta = [m for a, s, st, m in rec.events if a == "B02" and s == "measure" and st == "completed"][0]
    assert step_meta["step_index"] == 1 and step_meta["total_steps"] == 2 and step_meta["duration_s"] >= 0
    # 2 sites x 2 channels = 4 planes measured -> 4 rows per well
    with open(result.output_dir / "measurements" / "A02.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and {r["channel"] for r in rows} == {"1", "2"}
    with open(result.summary_path) as f:
        summary = {r["well"]: r for r in csv.DictReader(f)}
    assert summary["A01"]["status"] == "complete" and summary["A01"]["object_count"] == "4"
    assert len(list((result.output_dir / "images" / "A01").glob("*.tif"))) == 4
    assert not list(result.output_dir.rglob("*.tmp"))


def test_compile_errors_are_clear_and_early(plate, tmp_path):
    orch = PipelineOrchestrator(plate, GlobalPipelineConfig(num_workers=1, mode="processes"))
    with pytest.raises(CompileError, match="wells not in plate.*Z99"):
        orch.compile_pipelines(STEPS, wells=["A01", "Z99"])
    with pytest.raises(CompileError, match="channel '3' not in plate"):
        orch.compile_pipelines([FunctionStep(func={"3": diag.passthrough}, name="x")])
    with pytest.raises(CompileError, match="sleep_step.*cannot be called"):
        orch.compile_pipelines([FunctionStep(func=(diag.sleep_step, {"secs": 1}), name="x")])
    with pytest.raises(CompileError, match="cannot be sent to worker processes"):
        orch.compile_pipelines([FunctionStep(func=lambda s: s, name="lam")])
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("x")
    orch2 = PipelineOrchestrator(plate, GlobalPipelineConfig(output_dir=str(blocked / "sub")))
    with pytest.raises(CompileError, match="not writable"):
        orch2.compile_pipelines(STEPS)
    assert not (plate.parent / "plate_outputs" / "summary.csv").exists()


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_failing_well_does_not_stop_others(tmp_path, mode):
    plate = write_plate(tmp_path / "plate", marked=("A02",))
    rec = Recorder()
    orch = PipelineOrchestrator(plate, GlobalPipelineConfig(num_workers=2, mode=mode), progress_callback=rec)
    try:
        result = orch.run([FunctionStep(func=(diag.fail_step, {"marker": MARKER}), name="boom")])
    finally:
        orch.shutdown()
    assert result.status == "failed"
    assert result.failed == ["A02"]
    assert len(result.completed) == 5
    failed = result.wells["A02"]
    assert "deliberate failure" in failed.error and "RuntimeError" in failed.traceback
    assert failed.failed_step == "boom"
    meta = [m for a, s, st, m in rec.events if a == "A02" and st == "failed"][0]
    assert "deliberate failure" in meta["error"] and meta["traceback"]


def test_dead_worker_fails_only_its_well_and_pool_recovers(tmp_path):
    plate = write_plate(tmp_path / "plate", marked=("B01",))
    orch = PipelineOrchestrator(plate, GlobalPipelineConfig(num_workers=2, mode="processes"))
    try:
        result = orch.run([FunctionStep(func=(diag.crash_worker_step, {"marker": MARKER}), name="crash")])
        assert result.failed == ["B01"]
        assert "died (exit code 3)" in result.wells["B01"].error
        assert len(result.completed) == 5
        again = orch.run(STEPS)  # the pool replaced its worker
        assert again.status == "complete"
    finally:
        orch.shutdown()


def test_pool_is_reused_across_runs(plate):
    orch = PipelineOrchestrator(plate, GlobalPipelineConfig(num_workers=2, mode="processes"))
    try:
        orch.run(STEPS)
        first = set(orch._own_pool.pids())
        orch.run(STEPS)
        assert set(orch._own_pool.pids()) == first
    finally:
        orch.shutdown()


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_cancel_whole_run_lands_mid_step(plate, mode):
    rec = Recorder()
    orch = PipelineOrchestrator(plate, GlobalPipelineConfig(num_workers=2, mode=mode), progress_callback=rec)
    steps = [FunctionStep(func=(diag.sleep_step, {"seconds": 60}), name="slow")]
    box = {}
    runner = threading.Thread(target=lambda: box.setdefault("r", orch.run(steps)))
    runner.start()
    try:
        rec.wait_for(lambda e: e[1] == "slow" and e[2] == "started")
        orch.cancel()
        runner.join(30)
        assert not runner.is_alive()
    finally:
        orch.shutdown()
    result = box["r"]
    assert result.status == "cancelled"
    assert sorted(result.cancelled) == ["A01", "A02", "A03", "B01", "B02", "B03"]
    # every well reports exactly one terminal event, and it is 'cancelled'
    for well in result.wells:
        terminal = [st for a, s, st, _ in rec.events if a == well and s == "pipeline" and st != "started"]
        assert terminal == ["cancelled"]


def test_cancel_some_wells_only(tmp_path):
    plate = write_plate(tmp_path / "plate", marked=("A01",))
    rec = Recorder()
    orch = PipelineOrchestrator(plate, GlobalPipelineConfig(num_workers=2, mode="processes"), progress_callback=rec)
    steps = [FunctionStep(func=(diag.sleep_step, {"seconds": 60, "marker": MARKER}), name="slow")]
    box = {}
    runner = threading.Thread(target=lambda: box.setdefault("r", orch.run(steps)))
    runner.start()
    try:
        rec.wait_for(lambda e: e[0] == "A01" and e[1] == "slow" and e[2] == "started")
        orch.cancel(axis_ids=["A01"])
        runner.join(30)
        assert not runner.is_alive()
    finally:
        orch.shutdown()
    result = box["r"]
    assert result.cancelled == ["A01"]
    assert len(result.completed) == 5


def test_forced_cancel_kills_worker_that_ignores_cancel(plate):
    rec = Recorder()
    orch = PipelineOrchestrator(plate, GlobalPipelineConfig(num_workers=2, mode="processes"), progress_callback=rec)
    steps = [FunctionStep(func=(diag.ignore_cancel_step, {"seconds": 120}), name="stubborn")]
    box = {}
    runner = threading.Thread(target=lambda: box.setdefault("r", orch.run(steps)))
    runner.start()
    try:
        # both workers inside the stubborn step (a well cancelled before its step starts
        # stops cooperatively and its worker is rightly spared)
        rec.wait_until(lambda evs: len({e[0] for e in evs if e[1] == "stubborn" and e[2] == "started"}) == 2)
        pids_before = set(orch.worker_pids().values())
        assert len(pids_before) == 2
        orch.cancel(grace=0.2)
        runner.join(60)
        assert not runner.is_alive()
        assert result_pids_replaced(orch, pids_before), (orch._own_pool.pids(), pids_before, [e for e in rec.events if e[2] != "started"])
        result = box["r"]
        assert result.status == "cancelled" and len(result.cancelled) == 6
        forced = [m for a, s, st, m in rec.events if st == "cancelled" and m.get("forced")]
        assert forced and {m["pid"] for m in forced} <= pids_before
        orch.reset_cancellation()
        assert orch.run(STEPS).status == "complete"  # pool repaired
    finally:
        orch.shutdown()


def result_pids_replaced(orch, old_pids):
    return not (set(orch._own_pool.pids()) & old_pids)
