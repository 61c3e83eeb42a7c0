"""Past runs from the run history, each run's per-well results, and tracebacks."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Header, Static

from openhcs.frontend.dispatch import Dispatcher
from openhcs.frontend.history import HISTORY_COLUMNS, HistoryModel, well_results
from openhcs.textual_tui.screens.traceback import TracebackDialog

WELL_COLUMNS = ("well", "status", "duration", "measurements", "error")


class HistoryScreen(Screen):
    def __init__(self, model: HistoryModel, dispatcher: Dispatcher) -> None:
        super().__init__()
        self.model = model
        self.dispatcher = dispatcher
        self.execution_id: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(classes="bar"):
            yield Button("Refresh", id="refresh-history")
            yield Button("Show traceback", id="show-traceback")
        yield DataTable(id="history", cursor_type="row", zebra_stripes=True)
        yield Static("Select a run to see its wells.", id="history-detail-title")
        yield DataTable(id="history-wells", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        runs = self.query_one("#history", DataTable)
        for name in HISTORY_COLUMNS:
            runs.add_column(name, key=name)
        wells = self.query_one("#history-wells", DataTable)
        for name in WELL_COLUMNS:
            wells.add_column(name, key=name)
        self.refresh_history()

    def on_screen_resume(self) -> None:
        self.refresh_history()

    def refresh_history(self) -> None:
        self.dispatcher.run_background(self.model.refresh, on_done=self._draw)

    def _draw(self, rows) -> None:
        table = self.query_one("#history", DataTable)
        table.clear()
        for row in rows:
            table.add_row(*row.cells(), key=row.execution_id)
        if rows and self.execution_id is None:
            self._show(rows[0].execution_id)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "history" and event.row_key.value:
            self._show(event.row_key.value)

    def _show(self, execution_id: str) -> None:
        self.execution_id = execution_id
        record = next((r.record for r in self.model.rows if r.execution_id == execution_id), {})
        wells = self.query_one("#history-wells", DataTable)
        wells.clear()
        for w in well_results(record):
            meas = ", ".join(f"{k}={v}" for k, v in list(w.measurements.items())[:3])
            duration = f"{w.duration_s:.2f} s" if w.duration_s is not None else "—"
            wells.add_row(w.well, w.status, duration, meas, (w.error or "")[:60], key=w.well)
        self.query_one("#history-detail-title", Static).update(
            f"Run {execution_id[:8]} · {record.get('state', '?')} · {record.get('message') or ''}")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "refresh-history":
            self.refresh_history()
        elif event.button.id == "show-traceback" and self.execution_id:
            wells = self.query_one("#history-wells", DataTable)
            well = None
            if wells.row_count:
                well = wells.coordinate_to_cell_key((wells.cursor_row, 0)).row_key.value
            text = self.model.traceback_text(self.execution_id, well)
            self.app.push_screen(TracebackDialog(f"Run {self.execution_id[:8]} {well or ''}", text))
