"""A plate heatmap: rows A.., columns 1.., each well coloured by the chosen measurement."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from openhcs.frontend.results import Heatmap, text_colour

CELL_WIDTH = 8


def _format(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 or float(value).is_integer() else f"{value:.3g}"


class HeatmapTable(DataTable):
    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="cell", show_cursor=False, **kwargs)
        self.heatmap: Heatmap | None = None

    def show(self, heatmap: Heatmap | None) -> None:
        self.heatmap = heatmap
        self.clear(columns=True)
        if heatmap is None:
            return
        # explicit widths: auto widths of re-added columns are drawn from a stale cache
        self.add_column("", key="row", width=2)
        for col in heatmap.cols:
            self.add_column(str(col), key=str(col), width=CELL_WIDTH)
        for row in heatmap.rows:
            cells: list = [Text(row, style="bold")]
            for col in heatmap.cols:
                value, colour = heatmap.value(row, col), heatmap.colour(row, col)
                if value is None:
                    cells.append(Text(" · ", style="dim"))
                else:
                    cells.append(Text(f"{_format(value):>{CELL_WIDTH - 1}} ", style=f"{text_colour(colour)} on {colour}"))
            self.add_row(*cells, key=row)
