"""The Qt PlateManager: plates, pipeline, run/stop, per-plate and per-well progress bars.

All decisions live in :class:`~openhcs.frontend.controller.PlateManagerController`; this
widget draws it and turns clicks into its method calls. ``_run_plates_zmq`` and
``_run_plates_subprocess`` are the two execution paths (``OPENHCS_USE_ZMQ_EXECUTION``).
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from openhcs.frontend.controller import PlateManagerController
from openhcs.pyqt_gui.qt_bridge import QtController
from openhcs.pyqt_gui.widgets.plate_table import PlateTable
from openhcs.pyqt_gui.widgets.well_progress import WellProgressPanel


def _button(text: str, name: str, slot) -> QPushButton:
    button = QPushButton(text)
    button.setObjectName(name)
    button.clicked.connect(slot)
    return button


def _row(*widgets: QWidget) -> QHBoxLayout:
    layout = QHBoxLayout()
    for w in widgets:
        layout.addWidget(w, 1 if isinstance(w, QLineEdit) else 0)
    return layout


class PlateManager(QWidget):
    status_message = Signal(str)  # the status line, whenever the controller changes it

    def __init__(self, controller: PlateManagerController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.signals = QtController(controller, self)
        self.plate_path = QLineEdit(placeholderText="plate folder")
        self.pipeline_path = QLineEdit(placeholderText="pipeline .py file (empty: default pipeline)")
        self.cancel_wells_input = QLineEdit(placeholderText="wells to cancel, e.g. A01,B02")
        self.attach_id = QLineEdit(placeholderText="execution id of a run started elsewhere")
        self.table = PlateTable(controller)
        self.layout_label = QLabel("No plate selected.")
        self.steps_label = QLabel("")
        self.status_label = QLabel(controller.status)
        self.status_label.setObjectName("status")
        self.status_label.setWordWrap(True)
        self.progress = WellProgressPanel()
        self.add_button = _button("Add plate", "addPlate", self._add_plate)
        self.run_button = _button("Run selected", "run", self.action_run_plates)
        self.run_all_button = _button("Run all", "runAll", self.controller.run_plates)
        self.stop_button = _button("Stop", "stop", self.action_stop)
        self.force_button = _button("Force kill", "force", self.controller.force_stop)
        self.force_button.setEnabled(False)
        layout = QVBoxLayout(self)
        layout.addLayout(_row(self.plate_path, _button("Browse…", "browsePlate", self._browse_plate),
                              self.add_button, _button("Remove", "removePlate", self._remove_plate)))
        layout.addWidget(self.table, 1)
        layout.addWidget(self.layout_label)
        layout.addLayout(_row(self.pipeline_path, _button("Browse…", "browsePipeline", self._browse_pipeline),
                              _button("Use pipeline", "usePipeline", self._use_pipeline)))
        layout.addWidget(self.steps_label)
        layout.addLayout(_row(self.run_button, self.run_all_button, self.stop_button, self.force_button))
        layout.addLayout(_row(self.cancel_wells_input, _button("Cancel wells", "cancelWells", self._cancel_wells),
                              self.attach_id, _button("Attach", "attach", self._attach_run)))
        layout.addWidget(self.progress, 2)
        layout.addWidget(self.status_label)
        self.signals.changed.connect(self._on_changed)
        self.table.itemSelectionChanged.connect(self._on_selection)
        self._show_pipeline()

    @property
    def current_execution_id(self) -> str | None:
        return self.controller.current_execution_id

    # ---- actions
    def _browse_plate(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Plate folder")
        if folder:
            self.plate_path.setText(folder)
            self._add_plate()

    def _browse_pipeline(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Pipeline file", filter="Python (*.py)")
        if path:
            self.pipeline_path.setText(path)
            self._use_pipeline()

    def _add_plate(self) -> None:
        text = self.plate_path.text().strip()
        if text:
            self.controller.add_plate(text)
            self.plate_path.clear()

    def _remove_plate(self) -> None:
        for path in self.table.selected_paths():
            self.controller.remove_plate(path)

    def _use_pipeline(self) -> None:
        self.controller.set_pipeline(self.pipeline_path.text().strip() or None)

    def action_run_plates(self) -> None:
        """Run the selected plates by the configured path (ZMQ unless disabled)."""
        paths = self.table.selected_paths() or None
        if self.controller.use_zmq:
            self._run_plates_zmq(paths)
        else:
            self._run_plates_subprocess(paths)

    def _run_plates_zmq(self, paths=None) -> None:
        self.controller._run_plates_zmq(paths)

    def _run_plates_subprocess(self, paths=None) -> None:
        self.controller._run_plates_subprocess(paths)

    def action_stop(self) -> None:
        self.controller.stop()

    def _cancel_wells(self) -> None:
        wells = [w.strip().upper() for w in self.cancel_wells_input.text().split(",") if w.strip()]
        self.controller.cancel_wells(wells)

    def _attach_run(self) -> None:
        if self.attach_id.text().strip():
            self.controller.attach(self.attach_id.text().strip())

    # ---- drawing
    def _on_changed(self, topic: str, detail) -> None:
        if topic == "plates":
            self.table.refresh_rows()
            self._on_selection()
        elif topic == "pipeline":
            self._show_pipeline()
        elif topic == "progress":
            self.table.update_run(detail)
            selected = self.table.selected_paths()
            if not selected or detail in selected:
                self.progress.show_run(self.controller.runs.get(detail))
        stop = self.controller.stop_sequence
        self.force_button.setEnabled(stop is not None and stop.state == "offer_force")
        if self.status_label.text() != self.controller.status:
            self.status_label.setText(self.controller.status)
            self.status_message.emit(self.controller.status)

    def _on_selection(self) -> None:
        selected = self.table.selected_paths()
        entry = self.controller.plates.get(selected[0]) if selected else None
        self.layout_label.setText(entry.describe() if entry else "No plate selected.")
        self.progress.show_run(self.controller.runs.get(selected[0]) if selected else None)
        self._show_pipeline()

    def _show_pipeline(self) -> None:
        selected = self.table.selected_paths()
        steps = " → ".join(self.controller.step_names(selected[0] if selected else None))
        self.steps_label.setText(f"Pipeline: {self.controller.pipeline.label}\nSteps: {steps}")
