"""Results of finished runs: the per-well table and the plate heatmap of one measurement."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, Select

from openhcs.frontend.controller import PlateManagerController
from openhcs.frontend.results import build_heatmap
from openhcs.textual_tui.bridge import ModelChanged, subscribe
from openhcs.textual_tui.widgets.heatmap import HeatmapTable


class ResultsScreen(Screen):
    def __init__(self, controller: PlateManagerController) -> None:
        super().__init__()
        self.controller = controller
        self.plate: Path | None = None
        self.measurement: str | None = None
        self._unsubscribe = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(classes="bar"):
            yield Label("Plate ")
            yield Select([], id="results-plate", prompt="plate")
            yield Label(" Measurement ")
            yield Select([], id="measurement", prompt="measurement")
        yield Label("No results yet: run a plate.", id="results-title")
        yield HeatmapTable(id="heatmap")
        yield DataTable(id="results-table", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self._unsubscribe = subscribe(self, self.controller.changed)
        self.refresh_results()

    def on_unmount(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()

    def on_screen_resume(self) -> None:
        self.refresh_results()

    def on_model_changed(self, message: ModelChanged) -> None:
        if message.topic == "results":
            self.plate = message.detail
            self.refresh_results()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.value is Select.NULL:
            return
        if event.select.id == "results-plate" and Path(event.value) != self.plate:
            self.plate = Path(event.value)
            self.measurement = None
            self.refresh_results()
        elif event.select.id == "measurement" and event.value != self.measurement:
            self.measurement = str(event.value)
            self._draw()

    def refresh_results(self) -> None:
        results = self.controller.results
        plates = self.query_one("#results-plate", Select)
        with plates.prevent(Select.Changed):
            plates.set_options([(p.name, str(p)) for p in results])
            if results and (self.plate is None or self.plate not in results):
                self.plate = next(reversed(results))
            if self.plate in results:
                plates.value = str(self.plate)
        self._draw()

    def _draw(self) -> None:
        table = self.controller.results.get(self.plate) if self.plate else None
        grid = self.query_one("#results-table", DataTable)
        grid.clear(columns=True)
        if table is None:
            self.query_one(HeatmapTable).show(None)
            return
        names = table.measurements()
        if self.measurement not in names:
            self.measurement = table.default_measurement()
        select = self.query_one("#measurement", Select)
        with select.prevent(Select.Changed):
            select.set_options([(n, n) for n in names])
            if self.measurement:
                select.value = self.measurement
        entry = self.controller.plates.get(self.plate)
        heat = build_heatmap(table, self.measurement, entry.wells if entry else None)
        self.query_one("#results-title", Label).update(
            f"{self.plate.name}: {heat.measurement} per well (min {heat.vmin}, max {heat.vmax})")
        self.query_one(HeatmapTable).show(heat)
        for col in table.columns:  # explicit widths (see HeatmapTable)
            width = max([len(col), *(len(r.get(col) or "") for r in table.rows)])
            grid.add_column(col, key=col, width=min(width, 40))
        for row in table.rows:
            grid.add_row(*(row.get(c, "") for c in table.columns), key=row.get("well"))
