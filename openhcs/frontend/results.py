"""Per-well results of a run: the table from ``summary.csv`` and a plate-shaped heatmap.

The orchestrator writes ``summary.csv`` (one row per well: ``well, status, duration_s``,
the well's measurement summary such as ``object_count``, ``error``) into the run's
``output_dir``. The heatmap lays one measurement out as the plate: rows A, B, … and
columns 1, 2, …, with the colour scale shared by both front ends.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

SUMMARY_FILE = "summary.csv"
DEFAULT_MEASUREMENT = "object_count"
_WELL = re.compile(r"^([A-Za-z]{1,2})(\d{1,3})$")
_NOT_MEASUREMENTS = {"well", "status", "error"}
# viridis at 0, .25, .5, .75, 1
_RAMP = ((68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37))


@dataclass
class ResultsTable:
    columns: list[str]
    rows: list[dict[str, str]]
    path: Path | None = None

    def measurements(self) -> list[str]:
        """Columns with a number in at least one row (the heatmap's choices)."""
        names = []
        for col in self.columns:
            if col in _NOT_MEASUREMENTS:
                continue
            if any(_number(r.get(col)) is not None for r in self.rows):
                names.append(col)
        return names

    def default_measurement(self) -> str | None:
        names = self.measurements()
        if DEFAULT_MEASUREMENT in names:
            return DEFAULT_MEASUREMENT
        others = [n for n in names if n != "duration_s"]
        return (others or names or [None])[0]

    def values(self, measurement: str) -> dict[str, float]:
        out = {}
        for row in self.rows:
            value = _number(row.get(measurement))
            if value is not None and row.get("well"):
                out[row["well"]] = value
        return out


def _number(text) -> float | None:
    if text is None or text == "":
        return None
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def read_summary(output_dir: str | Path) -> ResultsTable | None:
    """The table in ``output_dir/summary.csv``, or None when the run wrote none."""
    path = Path(output_dir) / SUMMARY_FILE
    if not path.is_file():
        return None
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        return ResultsTable(list(reader.fieldnames or []), rows, path)


def split_well(well: str) -> tuple[str, int] | None:
    """``'B03'`` → ``('B', 3)``; None for names that are not row-letter + column-number."""
    m = _WELL.match(well.strip())
    return (m.group(1).upper(), int(m.group(2))) if m else None


def _row_index(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + (ord(ch) - ord("A") + 1)
    return n - 1


def _row_name(index: int) -> str:
    name, index = "", index + 1
    while index:
        index, rem = divmod(index - 1, 26)
        name = chr(ord("A") + rem) + name
    return name


@dataclass
class Heatmap:
    measurement: str
    rows: list[str]
    cols: list[int]
    values: dict[str, float] = field(default_factory=dict)

    @property
    def vmin(self) -> float | None:
        return min(self.values.values()) if self.values else None

    @property
    def vmax(self) -> float | None:
        return max(self.values.values()) if self.values else None

    def well(self, row: str, col: int) -> str:
        return f"{row}{col:02d}"

    def value(self, row: str, col: int) -> float | None:
        return self.values.get(self.well(row, col))

    def fraction(self, value: float) -> float:
        lo, hi = self.vmin, self.vmax
        if lo is None or hi is None or hi == lo:
            return 0.5
        return (value - lo) / (hi - lo)

    def colour(self, row: str, col: int) -> str | None:
        """``'#rrggbb'`` for the cell, None for an empty well."""
        value = self.value(row, col)
        return None if value is None else heat_colour(self.fraction(value))

    def grid(self) -> list[list[float | None]]:
        return [[self.value(r, c) for c in self.cols] for r in self.rows]


def heat_colour(fraction: float) -> str:
    """A viridis colour for ``fraction`` in 0..1."""
    f = min(1.0, max(0.0, fraction)) * (len(_RAMP) - 1)
    i = min(int(f), len(_RAMP) - 2)
    t = f - i
    rgb = [round(a + (b - a) * t) for a, b in zip(_RAMP[i], _RAMP[i + 1], strict=True)]
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def text_colour(background: str) -> str:
    r, g, b = (int(background[i:i + 2], 16) for i in (1, 3, 5))
    return "#000000" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "#ffffff"


def build_heatmap(table: ResultsTable, measurement: str | None = None,
                  plate_wells: list[str] | None = None) -> Heatmap:
    """Lay ``measurement`` out as the plate. The plate's size comes from the union of its
    wells (when known) and the wells in the table, always starting at A and 1."""
    measurement = measurement or table.default_measurement() or DEFAULT_MEASUREMENT
    values = {}
    for well, value in table.values(measurement).items():
        part = split_well(well)
        if part:  # canonical names, so 'A1' and 'A01' land in the same cell
            values[f"{part[0]}{part[1]:02d}"] = value
    table_wells = [r.get("well") or "" for r in table.rows]
    parts = [p for p in (split_well(w) for w in [*(plate_wells or []), *table_wells]) if p]
    n_rows = max((_row_index(r) for r, _ in parts), default=-1) + 1
    n_cols = max((c for _, c in parts), default=0)
    return Heatmap(measurement, [_row_name(i) for i in range(n_rows)],
                   list(range(1, n_cols + 1)), values)
