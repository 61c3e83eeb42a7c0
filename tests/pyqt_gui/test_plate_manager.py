"""The Qt GUI driven with pytest-qt (offscreen) against a real execution server process."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from openhcs.pyqt_gui.main_window import MainWindow
from tests.frontend.fixtures import (
    assert_gone,
    demo_plate,
    free_port,
    plate_with_failing_well,
    slow_pipeline_file,
    threads_config,
)


@pytest.fixture
def window(qtbot, isolated_dirs):
    win = MainWindow(port=free_port(), global_config=threads_config(), use_zmq=True)
    qtbot.addWidget(win)
    win.show()
    yield win
    pid = win.controller._zmq.server_pid if win.controller._zmq else None
    win.close()  # closeEvent disconnects, which stops the server the window spawned
    assert_gone(pid)


def _add_plate(qtbot, win: MainWindow, path) -> None:
    pm = win.plate_manager
    pm.plate_path.setText(str(path))
    qtbot.mouseClick(pm.add_button, Qt.MouseButton.LeftButton)


def test_add_plate_run_progress_reaches_100_and_results_are_shown(qtbot, window, tmp_path):
    plate = demo_plate(tmp_path)
    pm = window.plate_manager
    _add_plate(qtbot, window, plate)
    assert pm.table.rowCount() == 1 and pm.table.item(0, 1).text() == "4"
    assert "4 wells, 4 sites, 2 channels" in pm.layout_label.text()
    assert "flatfield → background → stitch → measure" in pm.steps_label.text()
    bar_values, messages = [], []
    pm.progress.plate_bar.valueChanged.connect(bar_values.append)
    pm.status_message.connect(messages.append)
    qtbot.mouseClick(pm.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: plate in window.controller.results, timeout=120_000)
    assert pm.progress.plate_bar.value() == 100
    assert bar_values == sorted(bar_values) and bar_values[-1] == 100
    assert list(pm.progress.well_bars) == ["A01", "A02", "B01", "B02"]
    assert all(bar.value() == 100 for bar in pm.progress.well_bars.values())
    assert (pm.table.item(0, 4).text(), pm.table.item(0, 5).text()) == ("complete", "100%")
    assert "4 complete, 0 failed, 0 cancelled" in pm.status_label.text()
    assert messages[-1] == pm.status_label.text() and window.statusBar().currentMessage() == messages[-1]
    assert pm.current_execution_id == window.controller.runs[plate].execution_id

    window.tabs.setCurrentWidget(window.results_view)
    results = window.results_view
    assert results.table.rowCount() == 4
    headers = [results.table.horizontalHeaderItem(i).text() for i in range(results.table.columnCount())]
    assert "object_count" in headers and results.measurement_box.currentText() == "object_count"
    heat = results.heatmap
    assert (heat.rowCount(), heat.columnCount()) == (2, 2)
    assert [heat.verticalHeaderItem(i).text() for i in range(2)] == ["A", "B"]
    assert all(heat.item(r, c).text() for r in range(2) for c in range(2))
    assert "object_count per well" in results.title.text()

    window.tabs.setCurrentWidget(window.history_view)
    qtbot.waitUntil(lambda: window.history_view.runs.rowCount() >= 1, timeout=60_000)
    assert window.history_view.runs.item(0, 2).text() == "complete"
    assert window.history_view.wells.rowCount() == 4


def test_run_then_stop_is_cancelled_gracefully(qtbot, window, tmp_path):
    plate = demo_plate(tmp_path)
    pm = window.plate_manager
    _add_plate(qtbot, window, plate)
    pm.pipeline_path.setText(str(slow_pipeline_file(tmp_path)))
    qtbot.mouseClick(pm.findChild(type(pm.run_button), "usePipeline"), Qt.MouseButton.LeftButton)
    assert "Steps: sleep" in pm.steps_label.text()
    qtbot.mouseClick(pm.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.controller.runs[plate].counts()["running"] > 0, timeout=60_000)
    assert not pm.force_button.isEnabled()
    qtbot.mouseClick(pm.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.controller.stop_sequence.active, timeout=60_000)
    qtbot.waitUntil(lambda: window.controller.runs[plate].finished, timeout=60_000)
    assert window.controller.runs[plate].state == "cancelled"
    assert pm.status_label.text().startswith("Stopped gracefully")
    assert pm.table.item(0, 4).text() == "cancelled"
    assert all(label.text() == "cancelled" for label in pm.progress.well_states.values())
    assert pm.progress.plate_bar.value() < 100


def test_server_manager_starts_lists_and_stops_a_server(qtbot, window):
    view = window.server_view
    window.tabs.setCurrentWidget(view)
    qtbot.waitUntil(lambda: "server(s) found" in view.status.text(), timeout=60_000)
    assert view.table.rowCount() == 0
    view.port.setText(str(free_port()))
    view.start_server()
    qtbot.waitUntil(lambda: view.table.rowCount() == 1, timeout=60_000)
    pid = view.manager.rows[0].pid
    assert view.table.item(0, 1).text() == str(pid)
    view.table.selectRow(0)
    view._stop(force=False)
    qtbot.waitUntil(lambda: "exited" in view.status.text() or view.table.rowCount() == 0, timeout=60_000)
    qtbot.waitUntil(lambda: view.table.rowCount() == 0, timeout=60_000)
    assert_gone(pid)
    # force-kill: signals only, no polite request
    view.port.clear()
    view.start_server()
    qtbot.waitUntil(lambda: view.table.rowCount() == 1, timeout=60_000)
    pid = view.manager.rows[0].pid
    view.table.selectRow(0)
    view._stop(force=True)
    qtbot.waitUntil(lambda: f"Server pid {pid}: " in view.status.text() or view.table.rowCount() == 0,
                    timeout=60_000)
    qtbot.waitUntil(lambda: view.table.rowCount() == 0, timeout=60_000)
    assert_gone(pid)


def test_failed_well_shows_its_error_in_progress_and_its_traceback_in_history(qtbot, window, tmp_path):
    plate, pipeline = plate_with_failing_well(tmp_path)
    pm = window.plate_manager
    _add_plate(qtbot, window, plate)
    window.controller.set_pipeline(pipeline)
    qtbot.mouseClick(pm.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.controller.runs[plate].finished, timeout=60_000)
    run = window.controller.runs[plate]
    assert run.state == "failed" and run.wells["A01"].state == "complete"
    assert run.wells["A02"].state == "failed" and "deliberate failure" in run.wells["A02"].error
    assert pm.progress.well_states["A02"].text() == "failed"
    assert "1 failed" in pm.status_label.text()

    history = window.history_view
    window.tabs.setCurrentWidget(history)
    qtbot.waitUntil(lambda: history.runs.rowCount() >= 1, timeout=60_000)
    assert history.runs.item(0, 2).text() == "failed"
    wells = {history.wells.item(r, 0).text(): history.wells.item(r, 1).text()
             for r in range(history.wells.rowCount())}
    assert wells == {"A01": "complete", "A02": "failed"}
    history.wells.selectRow(1)
    dialog = history.show_traceback()
    text = dialog.text.toPlainText()
    assert "Traceback" in text and "RuntimeError: deliberate failure" in text
    dialog.accept()


def test_stop_that_times_out_enables_force_kill_and_the_ui_says_it_killed(qtbot, tmp_path, isolated_dirs):
    from openhcs.core.config import GlobalPipelineConfig

    config = GlobalPipelineConfig(num_workers=2, mode="processes", cancel_grace_seconds=60)
    win = MainWindow(port=free_port(), global_config=config, use_zmq=True, stop_timeout=1.0)
    qtbot.addWidget(win)
    win.show()
    try:
        plate = demo_plate(tmp_path, rows=1, cols=2)
        pm = win.plate_manager
        _add_plate(qtbot, win, plate)
        win.controller.set_pipeline(slow_pipeline_file(tmp_path, seconds=60, func="ignore_cancel_step",
                                                       name="stubborn"))
        qtbot.mouseClick(pm.run_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: win.controller.runs[plate].counts()["running"] == 2, timeout=60_000)
        qtbot.mouseClick(pm.stop_button, Qt.MouseButton.LeftButton)
        assert pm.status_label.text().startswith("Stopping")
        qtbot.waitUntil(pm.force_button.isEnabled, timeout=60_000)
        assert pm.status_label.text() == "Did not stop within 1 s — force kill?"
        qtbot.mouseClick(pm.force_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: pm.status_label.text().startswith("Killed by force"), timeout=60_000)
        assert not pm.force_button.isEnabled()
        assert win.controller.runs[plate].finished
    finally:
        pid = win.controller._zmq.server_pid if win.controller._zmq else None
        win.close()
        assert_gone(pid)
