"""A plate heatmap: rows A.., columns 1.., each well coloured by the chosen measurement."""

from __future__ import annotations

from PySide6.QtGui import QColor
from PySide6.QtWidgets import QHeaderView, QTableWidget, QTableWidgetItem

from openhcs.frontend.results import Heatmap, text_colour


class HeatmapWidget(QTableWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.heatmap: Heatmap | None = None
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)

    def show_heatmap(self, heatmap: Heatmap | None) -> None:
        self.heatmap = heatmap
        self.clear()
        if heatmap is None:
            self.setRowCount(0)
            self.setColumnCount(0)
            return
        self.setRowCount(len(heatmap.rows))
        self.setColumnCount(len(heatmap.cols))
        self.setVerticalHeaderLabels(heatmap.rows)
        self.setHorizontalHeaderLabels([str(c) for c in heatmap.cols])
        for r, row in enumerate(heatmap.rows):
            for c, col in enumerate(heatmap.cols):
                value, colour = heatmap.value(row, col), heatmap.colour(row, col)
                item = QTableWidgetItem("" if value is None else f"{value:g}")
                item.setToolTip(f"{heatmap.well(row, col)}: {value}")
                if colour is not None:
                    item.setBackground(QColor(colour))
                    item.setForeground(QColor(text_colour(colour)))
                self.setItem(r, c, item)
