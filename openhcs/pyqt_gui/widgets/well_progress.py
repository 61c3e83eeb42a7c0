"""A QProgressBar for the plate and one per well of the shown run."""

from __future__ import annotations

from PySide6.QtWidgets import QGridLayout, QLabel, QProgressBar, QScrollArea, QVBoxLayout, QWidget

from openhcs.frontend.progress import RunProgress


class WellProgressPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plate_label = QLabel("plate")
        self.plate_label.setObjectName("plateProgressLabel")
        self.plate_bar = QProgressBar()
        self.plate_bar.setObjectName("plateProgress")
        self.plate_bar.setRange(0, 100)
        self._grid_host = QWidget()
        self._grid = QGridLayout(self._grid_host)
        self._grid.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self._grid_host)
        layout = QVBoxLayout(self)
        layout.addWidget(self.plate_label)
        layout.addWidget(self.plate_bar)
        layout.addWidget(scroll, 1)
        self.well_bars: dict[str, QProgressBar] = {}
        self.well_states: dict[str, QLabel] = {}

    def _rebuild(self, wells: list[str]) -> None:
        while self._grid.count():
            item = self._grid.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        self.well_bars, self.well_states = {}, {}
        for i, well in enumerate(wells):
            bar = QProgressBar()
            bar.setRange(0, 100)
            bar.setObjectName(f"well-{well}")
            state = QLabel("pending")
            self._grid.addWidget(QLabel(well), i, 0)
            self._grid.addWidget(bar, i, 1)
            self._grid.addWidget(state, i, 2)
            self.well_bars[well], self.well_states[well] = bar, state

    def show_run(self, run: RunProgress | None) -> None:
        if run is None:
            self.plate_label.setText("plate")
            self.plate_bar.setValue(0)
            self._rebuild([])
            return
        self.plate_label.setText(f"{run.plate.name}: {run.state} — {run.wells_done}/{len(run.wells)} wells")
        self.plate_bar.setValue(run.percent)
        if list(run.wells) != list(self.well_bars):
            self._rebuild(list(run.wells))
        for well, progress in run.wells.items():
            self.well_bars[well].setValue(progress.percent)
            label = self.well_states[well]
            label.setText(progress.label())
            label.setProperty("state", progress.state)
            label.style().unpolish(label)
            label.style().polish(label)
