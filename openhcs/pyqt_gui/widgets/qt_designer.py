"""The Qt pipeline designer: steps on the left, the selected step's editor on the right.

All decisions live in :class:`~openhcs.frontend.designer.DesignerModel`; this view draws
it (through the one Qt bridge, ``QtController``) and turns clicks into its methods.
"Use in plate manager" saves the file and makes it the plate manager's pipeline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from openhcs.frontend.designer import DesignerModel
from openhcs.pyqt_gui.qt_bridge import QtController
from openhcs.pyqt_gui.widgets.qt_designer_step import StepEditor

NO_PLATE = "(no plate: add one in Plates)"


def _button(text: str, name: str, slot) -> QPushButton:
    button = QPushButton(text)
    button.setObjectName(name)
    button.clicked.connect(slot)
    return button


def _row(*widgets) -> QHBoxLayout:
    layout = QHBoxLayout()
    for w in widgets:
        layout.addWidget(w, 1 if isinstance(w, QComboBox) else 0)
    return layout


def to_qimage(image: np.ndarray) -> QImage:
    """A 2-D array as an 8-bit grey image, stretched between its 1st and 99th percentiles."""
    data = np.asarray(image, dtype=np.float32)
    low, high = np.percentile(data, (1, 99)) if data.size else (0.0, 1.0)
    scaled = np.clip((data - low) / max(float(high - low), 1e-9), 0, 1)
    grey = np.ascontiguousarray((scaled * 255).astype(np.uint8))
    return QImage(grey.data, grey.shape[1], grey.shape[0], grey.strides[0], QImage.Format.Format_Grayscale8).copy()


class DesignerView(QWidget):
    def __init__(self, model: DesignerModel, controller, dispatcher, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model, self.controller, self.dispatcher = model, controller, dispatcher
        self.signals = QtController(model, self)
        self.plate_signals = QtController(controller, self)
        self.plates = QComboBox()
        self.plates.setObjectName("designerPlate")
        self.path_label = QLabel("")
        self.steps = QListWidget()
        self.steps.setObjectName("designerSteps")
        self.editor = StepEditor(model)
        self.issues = QListWidget()
        self.issues.setObjectName("designerIssues")
        self.issues.setMaximumHeight(90)
        self.preview_image = QLabel("")
        self.preview_image.setObjectName("previewImage")
        self.status = QLabel(model.status)
        self.status.setObjectName("designerStatus")
        self.status.setWordWrap(True)
        self.validate_button = _button("Validate", "validate", self.validate)
        self.preview_button = _button("Preview step on one site", "preview", self.preview)
        self.use_button = _button("Use in plate manager", "usePipelineFromDesigner", self.use_in_plate_manager)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.addWidget(QLabel("Steps (run top to bottom)"))
        left_layout.addWidget(self.steps, 1)
        left_layout.addLayout(_row(_button("Add", "addStep", self.add_step),
                                   _button("Remove", "removeStep", self._remove),
                                   _button("Duplicate", "duplicateStep", self._duplicate)))
        left_layout.addLayout(_row(_button("Up", "stepUp", lambda: self._move(-1)),
                                   _button("Down", "stepDown", lambda: self._move(1))))
        left_layout.addWidget(self.preview_image, 0, Qt.AlignmentFlag.AlignCenter)
        split = QSplitter()
        split.addWidget(left)
        split.addWidget(self.editor)
        split.setStretchFactor(1, 3)
        layout = QVBoxLayout(self)
        layout.addLayout(_row(QLabel("Plate:"), self.plates,
                              _button("Default analysis", "newDefault", model.new_default),
                              _button("Empty", "newEmpty", model.new_empty),
                              _button("Open…", "openPipeline", lambda: self.open_file()),
                              _button("Save", "savePipeline", lambda: self.save()),
                              _button("Save as…", "saveAs", lambda: self.save(ask=True))))
        layout.addWidget(self.path_label)
        layout.addWidget(split, 1)
        layout.addLayout(_row(self.validate_button, self.preview_button, self.use_button))
        layout.addWidget(self.issues)
        layout.addWidget(self.status)
        self.signals.changed.connect(self._on_changed)
        self.plate_signals.changed.connect(self._on_plates)
        self.steps.currentRowChanged.connect(self.editor.show_step)
        self.issues.itemClicked.connect(self._go_to_issue)
        self.plates.activated.connect(lambda _i: self._choose_plate())
        self._on_plates("plates")
        self._draw_steps()

    # ---- actions
    def current(self) -> int | None:
        row = self.steps.currentRow()
        return row if 0 <= row < len(self.model.steps) else None

    def add_step(self) -> None:
        at = self.current()
        index = self.model.add_step(index=None if at is None else at + 1)
        self.steps.setCurrentRow(index)

    def _remove(self) -> None:
        if self.current() is not None:
            self.model.remove_step(self.current())

    def _duplicate(self) -> None:
        if self.current() is not None:
            self.steps.setCurrentRow(self.model.duplicate_step(self.current()))

    def _move(self, delta: int) -> None:
        if self.current() is not None:
            self.steps.setCurrentRow(self.model.move_step(self.current(), delta))

    def _attempt(self, action) -> bool:
        try:
            action()
        except Exception as exc:  # codegen, file and model errors: shown, never raised into Qt
            self.status.setText(f"⚠ {exc}")
            return False
        return True

    def open_file(self, path: str | Path | None = None) -> None:
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Open pipeline", filter="Python (*.py)")
        if path:
            self._attempt(lambda: self.model.open(path))

    def save(self, path: str | Path | None = None, ask: bool = False) -> bool:
        if path is None and (ask or self.model.path is None):
            path, _ = QFileDialog.getSaveFileName(self, "Save pipeline", filter="Python (*.py)")
            if not path:
                return False
        return self._attempt(lambda: self.model.save(path))

    def validate(self) -> None:
        self.model.validate(self.dispatcher)

    def preview(self) -> None:
        index = self.current()
        if index is not None:
            self._attempt(lambda: self.model.preview(index, dispatcher=self.dispatcher, on_done=self._show_preview))

    def use_in_plate_manager(self) -> None:
        if self.model.path is None and not self.save():
            return
        self._attempt(lambda: self.model.use_in(self.controller))

    def _choose_plate(self) -> None:
        path = self.plates.currentData()
        self.model.set_plate(self.controller.plates.get(path) if path else None)

    def _go_to_issue(self, item) -> None:
        step = item.data(Qt.ItemDataRole.UserRole)
        if step is not None:
            self.steps.setCurrentRow(step)

    def _show_preview(self, result) -> None:
        first = next(iter(result.images.values()), None)
        if first is not None:
            self.preview_image.setPixmap(QPixmap.fromImage(to_qimage(first)).scaled(
                220, 220, Qt.AspectRatioMode.KeepAspectRatio))

    # ---- drawing
    def _on_plates(self, topic: str, _detail=None) -> None:
        if topic != "plates":
            return
        readable = [e for e in self.controller.plates if not e.error]
        chosen = self.model.plate.path if self.model.plate else None
        self.plates.clear()
        self.plates.addItem(NO_PLATE, None)
        for entry in readable:
            self.plates.addItem(entry.name, entry.path)
        if chosen is None and readable:
            chosen = readable[0].path
        index = self.plates.findData(chosen) if chosen else 0
        self.plates.setCurrentIndex(max(0, index))
        self._choose_plate()

    def _on_changed(self, topic: str, detail) -> None:
        if topic == "steps":
            self._draw_steps()
        elif topic in ("step", "plate"):
            self._label_steps()
            self._label_path()
            self.editor.show_step(self.current())
        elif topic == "issues":
            self._draw_issues()
        elif topic == "saved":
            self._label_path()
        self.status.setText(self.model.status)

    def _draw_steps(self) -> None:
        row = self.current()
        self.steps.blockSignals(True)
        self.steps.clear()
        self.steps.addItems(["" for _ in self.model.steps])
        self._label_steps()
        self.steps.blockSignals(False)
        if self.model.steps:
            self.steps.setCurrentRow(min(row if row is not None else 0, len(self.model.steps) - 1))
        self.editor.show_step(self.current())
        self._label_path()

    def _label_steps(self) -> None:
        for i, draft in enumerate(self.model.steps):
            item = self.steps.item(i)
            warn = "⚠ " if self.model.issues_for(i) else ""
            item.setText(f"{warn}{i + 1}. {draft.display_name}  [{draft.kind}]")
            item.setForeground(Qt.GlobalColor.darkRed if warn else Qt.GlobalColor.black)

    def _label_path(self) -> None:
        where = str(self.model.path) if self.model.path else "not saved yet"
        self.path_label.setText(f"Pipeline file: {where}{' (modified)' if self.model.dirty else ''}")

    def _draw_issues(self) -> None:
        self.issues.clear()
        for issue in self.model.issues:
            where = "pipeline" if issue.step is None else f"step {issue.step + 1}"
            field = issue.param or issue.field
            self.issues.addItem(f"{where} · {field}: {issue.message}")
            self.issues.item(self.issues.count() - 1).setData(Qt.ItemDataRole.UserRole, issue.step)
        self._label_steps()
        self.editor.show_step(self.current())
