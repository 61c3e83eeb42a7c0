"""The controller against a real execution server (real sockets, real server process)."""

from __future__ import annotations

import pytest

from openhcs.core.config import GlobalPipelineConfig
from openhcs.frontend.controller import PlateManagerController
from openhcs.frontend.dispatch import ManualDispatcher, QueueDispatcher
from openhcs.frontend.results import build_heatmap
from openhcs.runtime.zmq_execution_client import ZMQExecutionClient
from tests.frontend.fixtures import (
    assert_gone,
    demo_plate,
    free_port,
    slow_pipeline_file,
    threads_config,
)


def test_added_plate_shows_its_layout_and_a_bad_path_its_error(tmp_path):
    ctl = PlateManagerController(ManualDispatcher())
    topics = []
    ctl.changed.connect(lambda topic, detail: topics.append(topic))
    entry = ctl.add_plate(demo_plate(tmp_path))
    assert (len(entry.wells), len(entry.sites), entry.channels) == (4, 4, ["1", "2"])
    assert entry.site_grid == (2, 2)
    assert "4 wells, 4 sites, 2 channels" in ctl.status and "plates" in topics
    bad = ctl.add_plate(tmp_path / "nowhere")
    assert bad.error and "Cannot read plate" in ctl.status
    ctl.remove_plate(bad.path)
    assert len(ctl.plates) == 1


def test_pipeline_choice_default_or_file_and_a_broken_file_is_refused(tmp_path):
    ctl = PlateManagerController(ManualDispatcher())
    assert ctl.step_names() == ["flatfield", "background", "stitch", "measure"]
    assert ctl.set_pipeline(slow_pipeline_file(tmp_path))
    assert ctl.step_names() == ["sleep"]
    broken = tmp_path / "broken.py"
    broken.write_text("x = 1\n")
    assert not ctl.set_pipeline(broken)
    assert "Cannot load pipeline" in ctl.status and ctl.step_names() == ["sleep"]
    assert ctl.set_pipeline(None) and ctl.pipeline.path is None


@pytest.fixture
def live(tmp_path, isolated_dirs):
    """A controller on a private port; its client spawns the server, close() stops it."""
    dispatcher = QueueDispatcher()
    ctl = PlateManagerController(dispatcher, port=free_port(), global_config=threads_config(),
                                 use_zmq=True)
    yield ctl, dispatcher
    pid = ctl.zmq_backend().server_pid if ctl._zmq else None
    ctl.close()
    assert_gone(pid)


def test_run_reaches_100_percent_and_loads_the_results_heatmap(tmp_path, live):
    ctl, ui = live
    plate = ctl.add_plate(demo_plate(tmp_path)).path
    percents = []
    ctl.changed.connect(lambda t, d: percents.append(ctl.runs[plate].percent) if t == "progress" else None)
    ctl.run_plates()
    assert ui.wait_until(lambda: plate in ctl.results, timeout=120), ctl.status
    run = ctl.runs[plate]
    assert run.state == "complete" and run.percent == 100
    assert all(w.state == "complete" for w in run.wells.values())
    assert percents == sorted(percents) and 0 < len(set(percents)) and percents[-1] == 100
    table = ctl.results[plate]
    assert [r["well"] for r in table.rows] == ["A01", "A02", "B01", "B02"]
    heat = build_heatmap(table, "object_count", ctl.plates.get(plate).wells)
    assert heat.rows == ["A", "B"] and heat.cols == [1, 2]
    assert all(v is not None and v > 0 for row in heat.grid() for v in row)


def test_stop_cancels_gracefully_within_the_timeout(tmp_path, live):
    ctl, ui = live
    plate = ctl.add_plate(demo_plate(tmp_path)).path
    ctl.set_pipeline(slow_pipeline_file(tmp_path, seconds=30))
    ctl.run_plates()
    assert ui.wait_until(lambda: ctl.runs[plate].counts()["running"] > 0, timeout=60)
    ctl.stop()
    assert ctl.stop_sequence.state == "cancelling"
    assert ui.wait_until(lambda: not ctl.stop_sequence.active, timeout=60)
    assert ctl.stop_sequence.state == "stopped", ctl.stop_sequence.message()
    assert ctl.stop_sequence.message().startswith("Stopped gracefully")
    assert ui.wait_until(lambda: ctl.runs[plate].finished, timeout=60)
    assert ctl.runs[plate].state == "cancelled"


def test_stop_offers_a_forced_kill_after_the_timeout_and_performs_it(tmp_path, isolated_dirs):
    ui = QueueDispatcher()
    config = GlobalPipelineConfig(num_workers=2, mode="processes", cancel_grace_seconds=60)
    ctl = PlateManagerController(ui, port=free_port(), global_config=config, use_zmq=True,
                                 stop_timeout=1.0)
    try:
        plate = ctl.add_plate(demo_plate(tmp_path, rows=1, cols=2)).path
        ctl.set_pipeline(slow_pipeline_file(tmp_path, seconds=60, func="ignore_cancel_step",
                                            name="stubborn"))
        ctl.run_plates()
        assert ui.wait_until(lambda: ctl.runs[plate].counts()["running"] == 2, timeout=60)
        ctl.stop()
        assert ui.wait_until(lambda: ctl.stop_sequence.state == "offer_force", timeout=60)
        assert "Did not stop within 1 s" in ctl.status
        assert ctl.runs[plate].state == "cancelling"
        ctl.force_stop()
        assert ui.wait_until(lambda: not ctl.stop_sequence.active, timeout=60)
        assert ctl.stop_sequence.state == "killed", ctl.stop_sequence.message()
        assert ctl.status.startswith("Killed by force")
    finally:
        pid = ctl.zmq_backend().server_pid
        ctl.close()
        assert_gone(pid)


def test_cancel_selected_wells_leaves_the_others_running(tmp_path, live):
    ctl, ui = live
    plate = ctl.add_plate(demo_plate(tmp_path)).path
    ctl.set_pipeline(slow_pipeline_file(tmp_path, seconds=2))
    ctl.run_plates()
    assert ui.wait_until(lambda: ctl.runs[plate].wells["A01"].state == "running", timeout=60)
    ctl.cancel_wells(["B02"])
    assert ui.wait_until(lambda: ctl.runs[plate].finished, timeout=60)
    states = {w: p.state for w, p in ctl.runs[plate].wells.items()}
    assert states["B02"] == "cancelled"
    assert states["A01"] == "complete" and states["A02"] == "complete"


def test_attach_replays_a_run_started_by_another_client(tmp_path, live):
    ctl, ui = live
    plate = demo_plate(tmp_path)
    backend = ctl.zmq_backend()
    backend.ensure_connected()  # spawns the server on the private port
    other = ZMQExecutionClient(port=ctl.port)
    other.connect(timeout=60)
    try:
        from openhcs.demo.pipeline import default_pipeline

        eid = other.submit_pipeline(plate_id=str(plate), pipeline_steps=list(default_pipeline()),
                                    global_config=threads_config())["execution_id"]
        other.wait_for_completion(eid, timeout=120)
    finally:
        other.disconnect()
    ctl.attach("0" * 8 if not eid.startswith("0" * 8) else "f" * 8)  # no such run
    assert ui.wait_until(lambda: ctl.status.startswith("No run"), timeout=60)
    ctl.attach(eid[:8])  # the short id the history shows
    assert ui.wait_until(lambda: plate in ctl.runs and ctl.runs[plate].finished, timeout=60)
    run = ctl.runs[plate]
    assert run.execution_id == eid and run.state == "complete" and run.percent == 100
    assert set(run.wells) == {"A01", "A02", "B01", "B02"}
    assert ui.wait_until(lambda: plate in ctl.results, timeout=60)


def test_use_zmq_false_runs_through_the_deprecated_subprocess_runner(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENHCS_USE_ZMQ_EXECUTION", "false")
    ui = QueueDispatcher()
    ctl = PlateManagerController(ui, global_config=threads_config(), legacy_work_dir=tmp_path / "runs")
    try:
        assert not ctl.use_zmq
        plate = ctl.add_plate(demo_plate(tmp_path, rows=1, cols=2)).path
        with pytest.warns(DeprecationWarning):
            ctl.run_plates()
            assert ui.wait_until(lambda: plate in ctl.results, timeout=120), ctl.status
        run = ctl.runs[plate]
        assert run.execution_id.startswith("local-") and ctl._zmq is None
        assert run.state == "complete" and run.percent == 100
        assert [r["well"] for r in ctl.results[plate].rows] == ["A01", "A02"]
    finally:
        ctl.close()


def test_a_server_that_dies_mid_run_puts_the_run_in_error_instead_of_running_forever(tmp_path, live):
    import os
    import signal

    ctl, ui = live
    ctl.watch_interval = 0.5
    plate = ctl.add_plate(demo_plate(tmp_path)).path
    ctl.set_pipeline(slow_pipeline_file(tmp_path, seconds=30))
    ctl.run_plates()
    assert ui.wait_until(lambda: ctl.runs[plate].counts()["running"] > 0, timeout=60)
    os.kill(ctl.zmq_backend().server_pid, signal.SIGKILL)
    assert ui.wait_until(lambda: ctl.runs[plate].state == "error", timeout=60), ctl.status
    assert "stopped responding" in ctl.runs[plate].error and "stopped responding" in ctl.status
    assert ctl.runs[plate].finished


def test_a_run_whose_final_event_was_missed_is_finished_from_its_status(tmp_path, live):
    """The watchdog asks the server; a terminal state it reports ends the run in the UI."""
    ctl, ui = live
    ctl.watch_interval = 0.5
    plate = ctl.add_plate(demo_plate(tmp_path, rows=1, cols=1)).path
    ctl.set_pipeline(slow_pipeline_file(tmp_path, seconds=0.2))
    drop_final = [True]
    original = ctl.handle_message

    def lossy(msg):  # the real stream, minus its terminal event (as if the SUB lost it)
        if drop_final[0] and msg.get("type") == "run" and msg.get("final_seq"):
            drop_final[0] = False
            return
        original(msg)

    ctl.handle_message = lossy
    ctl.run_plates()
    assert ui.wait_until(lambda: plate in ctl.results, timeout=60), ctl.status
    assert not drop_final[0]  # the final event really was dropped
    assert ctl.runs[plate].state == "complete" and ctl.runs[plate].percent == 100
