"""One progress bar per well of the shown run, plus a bar for the whole plate."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widget import Widget
from textual.widgets import Label, ProgressBar

from openhcs.frontend.progress import RunProgress


class WellRow(Horizontal):
    def __init__(self, well: str) -> None:
        super().__init__(classes="well-row", id=f"well-{well}")
        self.well = well

    def compose(self) -> ComposeResult:
        yield Label(self.well, classes="well-name")
        yield ProgressBar(total=100, show_eta=False, classes="well-bar")
        yield Label("pending", classes="well-state")

    def show(self, percent: int, label: str, state: str) -> None:
        self.query_one(ProgressBar).update(progress=percent)
        state_label = self.query_one(".well-state", Label)
        state_label.update(label)
        state_label.set_classes(f"well-state state-{state}")


class WellProgressPanel(Widget):
    """Attributes down: ``show(run)`` draws the given run (or nothing)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._wells: tuple[str, ...] = ()

    def compose(self) -> ComposeResult:
        with Horizontal(id="plate-progress-row"):
            yield Label("plate", id="plate-progress-label")
            yield ProgressBar(total=100, show_eta=False, id="plate-progress")
        yield VerticalScroll(id="well-rows")

    def show(self, run: RunProgress | None) -> None:
        bar = self.query_one("#plate-progress", ProgressBar)
        rows = self.query_one("#well-rows", VerticalScroll)
        if run is None:
            bar.update(progress=0)
            self.query_one("#plate-progress-label", Label).update("plate")
            return
        self.query_one("#plate-progress-label", Label).update(f"{run.plate.name} {run.percent}%")
        bar.update(progress=run.percent)
        wells = tuple(run.wells)
        if wells != self._wells:
            self._wells = wells
            rows.remove_children()
            rows.mount_all([WellRow(w) for w in wells])
            self.call_after_refresh(self.show, run)
            return
        for row in rows.query(WellRow):
            progress = run.wells.get(row.well)
            if progress is not None:
                row.show(progress.percent, progress.label(), progress.state)
