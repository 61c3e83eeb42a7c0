"""The history view's model: past runs from the SQLite run history, with per-well detail."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openhcs.frontend.servers import format_duration

HISTORY_COLUMNS = ("run", "plate", "state", "started", "duration", "wells", "message")


@dataclass
class HistoryRow:
    record: dict[str, Any]

    @property
    def execution_id(self) -> str:
        return self.record["execution_id"]

    @property
    def state(self) -> str:
        return self.record.get("state", "")

    @property
    def duration_s(self) -> float | None:
        start, end = self.record.get("started_at"), self.record.get("finished_at")
        return None if start is None or end is None else end - start

    def wells_summary(self) -> str:
        wells = self.record.get("wells") or {}
        counts: dict[str, int] = {}
        for state in wells.values():
            counts[state] = counts.get(state, 0) + 1
        return ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "—"

    def cells(self) -> tuple[str, ...]:
        import datetime

        started = self.record.get("started_at") or self.record.get("created_at")
        when = (datetime.datetime.fromtimestamp(started).strftime("%Y-%m-%d %H:%M:%S")
                if started else "—")
        return (self.execution_id[:8], Path(self.record.get("plate_id") or "?").name, self.state,
                when, format_duration(self.duration_s), self.wells_summary(),
                (self.record.get("message") or "")[:80])


@dataclass
class WellResult:
    well: str
    status: str
    duration_s: float | None
    measurements: dict[str, Any]
    error: str | None
    traceback: str | None


def well_results(record: dict[str, Any]) -> list[WellResult]:
    """Per-well outcomes of a run: from its results when it finished, else its well states."""
    results = (record.get("results") or {}).get("wells") or {}
    if results:
        return [WellResult(w, o.get("status", ""), o.get("duration_s"), o.get("measurements") or {},
                           o.get("error"), o.get("traceback")) for w, o in sorted(results.items())]
    errors = record.get("well_errors") or {}
    return [WellResult(w, s, None, {}, errors.get(w), None)
            for w, s in sorted((record.get("wells") or {}).items())]


class HistoryModel:
    """``refresh()`` reads the newest runs; ``detail(id)`` one run's full record."""

    def __init__(self, path: str | Path | None = None, limit: int = 200):
        self.path = path
        self.limit = limit
        self.rows: list[HistoryRow] = []

    def _open(self):
        from openhcs.runtime.history import RunHistory

        return RunHistory(self.path)

    def refresh(self) -> list[HistoryRow]:
        with self._open() as history:
            self.rows = [HistoryRow(r) for r in history.list(limit=self.limit)]
        return self.rows

    def detail(self, execution_id: str) -> dict[str, Any] | None:
        with self._open() as history:
            return history.get(execution_id)

    def traceback_text(self, execution_id: str, well: str | None = None) -> str:
        """The traceback of a failed well (or of the run), for the traceback viewer."""
        record = self.detail(execution_id) or {}
        if well is not None:
            for result in well_results(record):
                if result.well == well:
                    return result.traceback or result.error or f"{well}: no error recorded"
        return record.get("traceback") or record.get("error") or "no error recorded"
