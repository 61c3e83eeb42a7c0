"""The plates a user has added, and each plate's layout as read from disk."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class PlateEntry:
    """One added plate. ``layout`` is ``Plate.summary()``; ``error`` is set when it could not be read."""

    path: Path
    layout: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def wells(self) -> list[str]:
        return list(self.layout.get("wells") or [])

    @property
    def sites(self) -> list[str]:
        return list(self.layout.get("sites") or [])

    @property
    def channels(self) -> list[str]:
        return list(self.layout.get("channels") or [])

    @property
    def site_grid(self) -> tuple[int, int]:
        """(rows, cols) of sites per well: from the HTD when known, else the squarest grid."""
        meta = self.layout.get("metadata") or {}
        rows, cols = meta.get("site_rows"), meta.get("site_cols")
        if isinstance(rows, int) and isinstance(cols, int) and rows * cols == len(self.sites):
            return rows, cols
        n = max(1, len(self.sites))
        rows = int(math.sqrt(n))
        while n % rows:
            rows -= 1
        return rows, n // rows

    def describe(self) -> str:
        if self.error:
            return f"{self.name}: {self.error}"
        return (f"{self.name}: {len(self.wells)} wells, {len(self.sites)} sites, "
                f"{len(self.channels)} channels ({', '.join(self.channels)}), {self.layout.get('format', '?')}")


def read_plate(path: str | Path) -> PlateEntry:
    """Open ``path`` as a plate; a plate that cannot be read keeps the error to show."""
    from openhcs.io.detect import open_plate
    from openhcs.io.errors import PlateError

    entry = PlateEntry(Path(path).expanduser().resolve())
    try:
        entry.layout = open_plate(entry.path).summary()
    except (PlateError, OSError) as exc:
        entry.error = str(exc)
    return entry


class PlateList:
    """Ordered plates, one per path."""

    def __init__(self) -> None:
        self._plates: dict[Path, PlateEntry] = {}

    def add(self, entry: PlateEntry) -> bool:
        """Add (or refresh) ``entry``; False if it was already there."""
        existed = entry.path in self._plates
        self._plates[entry.path] = entry
        return not existed

    def remove(self, path: str | Path) -> PlateEntry | None:
        return self._plates.pop(Path(path).expanduser().resolve(), None)

    def get(self, path: str | Path) -> PlateEntry | None:
        return self._plates.get(Path(path).expanduser().resolve())

    def __iter__(self):
        return iter(list(self._plates.values()))

    def __len__(self) -> int:
        return len(self._plates)

    def paths(self) -> list[Path]:
        return list(self._plates)
