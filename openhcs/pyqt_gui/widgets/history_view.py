"""Past runs from the run history, each run's per-well results, and tracebacks."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from openhcs.frontend.dispatch import Dispatcher
from openhcs.frontend.history import HISTORY_COLUMNS, HistoryModel, well_results

WELL_COLUMNS = ("well", "status", "duration", "measurements", "error")


def _table(columns) -> QTableWidget:
    table = QTableWidget(0, len(columns))
    table.setHorizontalHeaderLabels(columns)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.horizontalHeader().setStretchLastSection(True)
    return table


class TracebackDialog(QDialog):
    def __init__(self, title: str, text: str, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.text = QPlainTextEdit(text)
        self.text.setReadOnly(True)
        close = QPushButton("Close")
        close.clicked.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(close)
        self.resize(800, 500)


class HistoryView(QWidget):
    def __init__(self, model: HistoryModel, dispatcher: Dispatcher, parent=None) -> None:
        super().__init__(parent)
        self.model = model
        self.dispatcher = dispatcher
        self.execution_id: str | None = None
        self.runs = _table(HISTORY_COLUMNS)
        self.wells = _table(WELL_COLUMNS)
        self.detail = QLabel("Select a run to see its wells.")
        self.detail.setObjectName("historyDetail")
        bar = QHBoxLayout()
        for text, slot in (("Refresh", self.refresh_history), ("Show traceback", self.show_traceback)):
            button = QPushButton(text)
            button.clicked.connect(slot)
            bar.addWidget(button)
        bar.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.runs, 1)
        layout.addWidget(self.detail)
        layout.addWidget(self.wells, 1)
        self.runs.itemSelectionChanged.connect(self._on_select)

    def refresh_history(self) -> None:
        self.dispatcher.run_background(self.model.refresh, on_done=self._draw)

    def _draw(self, rows) -> None:
        self.runs.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, text in enumerate(row.cells()):
                self.runs.setItem(r, c, QTableWidgetItem(text))
        self.runs.resizeColumnsToContents()
        if rows:
            self.runs.selectRow(0)

    def _on_select(self) -> None:
        rows = sorted({i.row() for i in self.runs.selectedIndexes()})
        if not rows or rows[0] >= len(self.model.rows):
            return
        record = self.model.rows[rows[0]].record
        self.execution_id = record["execution_id"]
        results = well_results(record)
        self.wells.setRowCount(len(results))
        for r, w in enumerate(results):
            meas = ", ".join(f"{k}={v}" for k, v in list(w.measurements.items())[:3])
            duration = f"{w.duration_s:.2f} s" if w.duration_s is not None else "—"
            for c, text in enumerate((w.well, w.status, duration, meas, (w.error or "")[:80])):
                self.wells.setItem(r, c, QTableWidgetItem(text))
        self.wells.resizeColumnsToContents()
        self.detail.setText(f"Run {self.execution_id[:8]} · {record.get('state')} · {record.get('message') or ''}")

    def show_traceback(self) -> TracebackDialog | None:
        if not self.execution_id:
            return None
        rows = sorted({i.row() for i in self.wells.selectedIndexes()})
        well = self.wells.item(rows[0], 0).text() if rows else None
        dialog = TracebackDialog(f"Run {self.execution_id[:8]} {well or ''}",
                                 self.model.traceback_text(self.execution_id, well), self)
        dialog.open()
        return dialog
