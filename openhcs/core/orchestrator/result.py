"""What a run produced: per-well outcomes, the plate summary and run metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openhcs.core.well_runner import WellOutcome
from openhcs.io.storage import write_csv_atomic


@dataclass
class RunResult:
    status: str  # complete | failed | cancelled
    wells: dict[str, WellOutcome]
    output_dir: Path
    summary_path: Path | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # a run-level failure, e.g. the summary could not be written

    @property
    def completed(self) -> list[str]:
        return [w for w, o in self.wells.items() if o.status == "complete"]

    @property
    def failed(self) -> list[str]:
        return [w for w, o in self.wells.items() if o.status == "failed"]

    @property
    def cancelled(self) -> list[str]:
        return [w for w, o in self.wells.items() if o.status == "cancelled"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "wells": {w: o.to_dict() for w, o in self.wells.items()},
            "completed": self.completed,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "output_dir": str(self.output_dir),
            "summary_path": str(self.summary_path) if self.summary_path else None,
            "metrics": dict(self.metrics),
            "error": self.error,
        }


def overall_status(outcomes: dict[str, WellOutcome]) -> str:
    statuses = {o.status for o in outcomes.values()}
    if "failed" in statuses:
        return "failed"
    if "cancelled" in statuses:
        return "cancelled"
    return "complete"


def write_plate_summary(output_dir: Path, outcomes: dict[str, WellOutcome]) -> Path:
    """One row per well: status, duration and its measurement summary."""
    rows = [
        {
            "well": well,
            "status": o.status,
            "duration_s": round(o.duration_s, 4),
            **o.summary,
            "error": o.error or "",
        }
        for well, o in outcomes.items()
    ]
    path = output_dir / "summary.csv"
    write_csv_atomic(path, rows)
    return path
