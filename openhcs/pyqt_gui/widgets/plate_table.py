"""The plates added so far: layout and run state, one row per plate."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from openhcs.frontend.controller import PlateManagerController

COLUMNS = ("plate", "wells", "sites", "channels", "run", "progress")


class PlateTable(QTableWidget):
    def __init__(self, controller: PlateManagerController, parent=None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.controller = controller
        self.setHorizontalHeaderLabels(COLUMNS)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.verticalHeader().setVisible(False)
        self._paths: list[Path] = []

    def selected_paths(self) -> list[Path]:
        rows = sorted({i.row() for i in self.selectedIndexes()})
        return [self._paths[r] for r in rows if r < len(self._paths)]

    def refresh_rows(self) -> None:
        selected = self.selected_paths()
        self._paths = [e.path for e in self.controller.plates]
        self.setRowCount(len(self._paths))
        for row, entry in enumerate(self.controller.plates):
            run = self.controller.runs.get(entry.path)
            cells = (entry.name, str(len(entry.wells)), str(len(entry.sites)), ", ".join(entry.channels),
                     run.state if run else "—", f"{run.percent}%" if run else "")
            if entry.error:
                cells = (entry.name, "—", "—", "—", "unreadable", "")
            for col, text in enumerate(cells):
                self.setItem(row, col, QTableWidgetItem(text))
            if entry.path in selected or (not selected and row == 0):
                self.selectRow(row)

    def update_run(self, path: Path) -> None:
        run = self.controller.runs.get(path)
        if run is None:
            return
        if path not in self._paths:
            self.refresh_rows()
            return
        row = self._paths.index(path)
        self.setItem(row, 4, QTableWidgetItem(run.state))
        self.setItem(row, 5, QTableWidgetItem(f"{run.percent}%"))
