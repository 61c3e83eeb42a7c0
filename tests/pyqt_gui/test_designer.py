"""The Qt designer driven with pytest-qt (offscreen): build a 3-step pipeline, set a
parameter, validate an error and fix it, save, re-open, run it on a real server, see results."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QLineEdit

from openhcs.pyqt_gui.main_window import MainWindow
from tests.frontend.fixtures import assert_gone, demo_plate, free_port, threads_config

LEFT = Qt.MouseButton.LeftButton


@pytest.fixture
def window(qtbot, isolated_dirs):
    win = MainWindow(port=free_port(), global_config=threads_config(), use_zmq=True)
    qtbot.addWidget(win)
    win.show()
    yield win
    pid = win.controller._zmq.server_pid if win.controller._zmq else None
    win.close()
    assert_gone(pid)


def _click(qtbot, view, name: str) -> None:
    from PySide6.QtWidgets import QPushButton

    qtbot.mouseClick(view.findChild(QPushButton, name), LEFT)


def _pick(qtbot, view, search: str, add: bool = False) -> None:
    """Search the catalog, take the first match, press "Use function" / "Add to chain"."""
    picker = view.editor.picker
    picker.search.setText(search)
    assert picker.results.count() >= 1
    qtbot.mouseClick(picker.chain_button if add else picker.use_button, LEFT)


def _type(qtbot, editor: QLineEdit, text: str) -> None:
    editor.clear()
    qtbot.keyClicks(editor, text)
    qtbot.keyClick(editor, Qt.Key.Key_Return)


def test_build_validate_fix_save_reopen_and_run(qtbot, window, tmp_path):
    plate = demo_plate(tmp_path)
    window.plate_manager.plate_path.setText(str(plate))
    qtbot.mouseClick(window.plate_manager.add_button, LEFT)
    view, model = window.designer_view, window.designer
    window.tabs.setCurrentWidget(view)
    assert view.plates.currentText() == "plate" and model.plate.path == plate

    _click(qtbot, view, "newEmpty")
    assert view.steps.count() == 0
    _click(qtbot, view, "addStep")
    _pick(qtbot, view, "flatfield")
    assert view.editor.picker.current() == "correct_flatfield"
    _click(qtbot, view, "addStep")
    _pick(qtbot, view, "subtract_background")
    radius = view.editor.form.editors["radius"]
    assert radius.placeholderText() == "int, default 25"        # defaults shown
    _type(qtbot, radius, "ten")                                # refused at once
    assert "not a whole number" in view.editor.form.error.text()
    assert radius.text() == "" and model.steps[1].branch().calls[0].kwargs == {}
    _type(qtbot, radius, "10")
    assert model.steps[1].branch().calls[0].kwargs == {"radius": 10}
    assert "function with options" in view.steps.item(1).text()
    _click(qtbot, view, "addStep")                             # third step: no function yet
    assert view.steps.currentRow() == 2
    view.editor.findChild(QCheckBox, "vary_site").setChecked(False)   # refused: nothing to stack
    assert "at least one variable component" in view.editor.issue.text()
    view.editor.findChild(QCheckBox, "vary_channel").setChecked(True)   # stack channels: no group-by
    assert (model.steps[2].variable_components, model.steps[2].group_by) == (("site", "channel"), None)
    view.editor.group_by.setCurrentText("site")                          # group by site: un-stacked
    view.editor.group_by.activated.emit(view.editor.group_by.currentIndex())
    assert (model.steps[2].variable_components, model.steps[2].group_by) == (("channel",), "site")

    _click(qtbot, view, "validate")                            # the error, at its step and field
    qtbot.waitUntil(lambda: view.issues.count() == 1, timeout=30_000)
    assert view.issues.item(0).text().startswith("step 3 · function: ")
    assert "choose a function" in view.issues.item(0).text()
    assert view.steps.item(2).text().startswith("⚠ 3.")
    assert "choose a function" in view.editor.issue.text()
    _pick(qtbot, view, "measure_nuclei")                       # fix it
    view.editor.name.setText("count nuclei")
    view.editor.name.editingFinished.emit()
    assert view.issues.count() == 0
    _click(qtbot, view, "validate")
    qtbot.waitUntil(lambda: "Valid" in view.status.text(), timeout=30_000)

    path = tmp_path / "designed.py"
    assert view.save(path)
    first = path.read_bytes()
    assert b'(subtract_background, {"radius": 10})' in first
    _click(qtbot, view, "newDefault")
    assert view.steps.count() == 4
    view.open_file(path)
    assert [model.steps[i].display_name for i in range(3)] == ["correct_flatfield", "subtract_background",
                                                                "count nuclei"]
    assert view.save(tmp_path / "again.py")
    assert (tmp_path / "again.py").read_bytes() == first

    _click(qtbot, view, "usePipelineFromDesigner")
    assert window.controller.pipeline.path == tmp_path / "again.py"
    window.tabs.setCurrentWidget(window.plate_manager)
    assert "correct_flatfield → subtract_background → count nuclei" in window.plate_manager.steps_label.text()
    qtbot.mouseClick(window.plate_manager.run_all_button, LEFT)
    qtbot.waitUntil(lambda: plate in window.controller.results, timeout=120_000)
    assert window.controller.runs[plate].state == "complete"
    window.tabs.setCurrentWidget(window.results_view)
    assert window.results_view.table.rowCount() == 4
    assert window.results_view.measurement_box.currentText() == "object_count"


def test_chain_per_channel_and_preview(qtbot, window, tmp_path):
    plate = demo_plate(tmp_path)
    window.controller.add_plate(plate)
    view, model = window.designer_view, window.designer
    window.tabs.setCurrentWidget(view)
    _click(qtbot, view, "newDefault")
    view.steps.setCurrentRow(0)
    _pick(qtbot, view, "normalize_percentile", add=True)       # a chain
    assert model.steps[0].kind == "chain" and view.editor.calls.count() == 2
    assert view.editor.calls.currentRow() == 1
    _type(qtbot, view.editor.form.editors["high"], "99")
    assert model.steps[0].branch().calls[1].kwargs == {"high": 99.0}
    view.steps.setCurrentRow(1)
    _click(qtbot, view.editor, "perComponent")                 # per-channel dict
    assert model.steps[1].kind == "per-component" and view.editor.keys.count() == 2
    view.editor.keys.setCurrentText("2")
    view.editor.keys.activated.emit(1)
    _pick(qtbot, view, "denoise")
    assert model.function_steps()[1].func["2"].__name__ == "denoise"
    _click(qtbot, view, "duplicateStep")
    assert view.steps.currentRow() == 2 and model.steps[2].display_name == "background copy"
    _click(qtbot, view, "stepUp")
    assert view.steps.currentRow() == 1 and model.steps[1].display_name == "background copy"
    _click(qtbot, view, "removeStep")
    assert [d.display_name for d in model.steps] == ["flatfield", "background", "stitch", "measure"]
    view.steps.setCurrentRow(1)
    _click(qtbot, view, "preview")
    qtbot.waitUntil(lambda: view.preview_image.pixmap() is not None and not view.preview_image.pixmap().isNull(),
                    timeout=60_000)
    assert "after 'background' on A01 site 1: 2 image(s)" in view.status.text()
