"""The plates added so far, with their layout and run state; the cursor row is the selection."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable

from openhcs.frontend.controller import PlateManagerController

COLUMNS = {"plate": 30, "wells": 6, "sites": 6, "channels": 10, "run": 11, "progress": 9}


class PlateTable(DataTable):
    def __init__(self, controller: PlateManagerController, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.controller = controller

    def on_mount(self) -> None:
        for name, width in COLUMNS.items():
            self.add_column(name, key=name, width=width)
        self.refresh_rows()

    @property
    def selected(self) -> Path | None:
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key((self.cursor_row, 0)).row_key
        return Path(key.value) if key.value else None

    def refresh_rows(self) -> None:
        selected = self.selected
        self.clear()
        for entry in self.controller.plates:
            run = self.controller.runs.get(entry.path)
            cells = (entry.name, str(len(entry.wells)), str(len(entry.sites)), ", ".join(entry.channels),
                     (run.state if run else "—"), (f"{run.percent}%" if run else ""))
            if entry.error:
                cells = (entry.name, "—", "—", "—", "unreadable", "")
            self.add_row(*cells, key=str(entry.path))
        if selected is not None:
            keys = [str(e.path) for e in self.controller.plates]
            if str(selected) in keys:
                self.move_cursor(row=keys.index(str(selected)))

    def update_run(self, path: Path) -> None:
        run = self.controller.runs.get(path)
        if run is None or str(path) not in self.rows:
            return
        self.update_cell(str(path), "run", run.state)
        self.update_cell(str(path), "progress", f"{run.percent}%")
