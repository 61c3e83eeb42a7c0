"""Results of finished runs: a plate heatmap of one measurement and the per-well table."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from openhcs.frontend.controller import PlateManagerController
from openhcs.frontend.results import build_heatmap
from openhcs.pyqt_gui.qt_bridge import QtController
from openhcs.pyqt_gui.widgets.heatmap import HeatmapWidget


class ResultsView(QWidget):
    def __init__(self, controller: PlateManagerController, parent=None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.signals = QtController(controller, self)
        self.plate_box = QComboBox()
        self.measurement_box = QComboBox()
        self.title = QLabel("No results yet: run a plate.")
        self.title.setObjectName("resultsTitle")
        self.heatmap = HeatmapWidget()
        self.table = QTableWidget()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Plate"))
        bar.addWidget(self.plate_box, 1)
        bar.addWidget(QLabel("Measurement"))
        bar.addWidget(self.measurement_box, 1)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.heatmap)
        split.addWidget(self.table)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.title)
        layout.addWidget(split, 1)
        self.plate_box.currentIndexChanged.connect(lambda _: self._draw())
        self.measurement_box.currentTextChanged.connect(lambda _: self._draw_heatmap())
        self.signals.changed.connect(self._on_changed)

    def _on_changed(self, topic: str, detail) -> None:
        if topic == "results":
            self.refresh_results(detail)

    def refresh_results(self, show: Path | None = None) -> None:
        plates = list(self.controller.results)
        self.plate_box.blockSignals(True)
        self.plate_box.clear()
        for p in plates:
            self.plate_box.addItem(p.name, str(p))
        if plates:
            target = show if show in plates else plates[-1]
            self.plate_box.setCurrentIndex(plates.index(target))
        self.plate_box.blockSignals(False)
        self._draw()

    def _plate(self) -> Path | None:
        data = self.plate_box.currentData()
        return Path(data) if data else None

    def _draw(self) -> None:
        plate = self._plate()
        table = self.controller.results.get(plate) if plate else None
        self.table.clear()
        if table is None:
            self.table.setRowCount(0)
            self.heatmap.show_heatmap(None)
            return
        self.measurement_box.blockSignals(True)
        current = self.measurement_box.currentText()
        self.measurement_box.clear()
        self.measurement_box.addItems(table.measurements())
        chosen = current if current in table.measurements() else table.default_measurement()
        if chosen:
            self.measurement_box.setCurrentText(chosen)
        self.measurement_box.blockSignals(False)
        self.table.setColumnCount(len(table.columns))
        self.table.setHorizontalHeaderLabels(table.columns)
        self.table.setRowCount(len(table.rows))
        for r, row in enumerate(table.rows):
            for c, col in enumerate(table.columns):
                self.table.setItem(r, c, QTableWidgetItem(row.get(col, "")))
        self.table.resizeColumnsToContents()
        self._draw_heatmap()

    def _draw_heatmap(self) -> None:
        plate = self._plate()
        table = self.controller.results.get(plate) if plate else None
        if table is None:
            return
        entry = self.controller.plates.get(plate)
        heat = build_heatmap(table, self.measurement_box.currentText() or None,
                             entry.wells if entry else None)
        self.title.setText(f"{plate.name}: {heat.measurement} per well (min {heat.vmin}, max {heat.vmax})")
        self.heatmap.show_heatmap(heat)
