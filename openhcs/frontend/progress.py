"""Per-plate and per-well progress of one run, fed by the server's progress messages.

Messages are the dicts ``ZMQExecutionClient`` hands its ``progress_callback`` (or the
legacy runner writes to its log): well events (``type='progress'``, ``well_id``, ``step``,
``status``, ``metadata`` with ``step_index``/``total_steps``) and run events
(``type='run'``, ``status`` queued/started/cancelling/complete/failed/cancelled). Events
are applied in sequence order; a repeated sequence number (a replay overlapping live
events) is ignored, so attaching to a run and replaying it gives the same picture.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TERMINAL = ("complete", "failed", "cancelled")
WELL_TERMINAL = ("complete", "failed", "cancelled")
_PIPELINE_STATUS = {"started": "running", "completed": "complete", "failed": "failed",
                    "cancelled": "cancelled"}


@dataclass
class WellProgress:
    well: str
    state: str = "pending"  # pending | running | complete | failed | cancelled
    step: str = ""
    steps_done: int = 0
    total_steps: int | None = None
    error: str | None = None
    traceback: str | None = None

    @property
    def fraction(self) -> float:
        if self.state == "complete":
            return 1.0
        if not self.total_steps:
            return 0.0
        return min(1.0, self.steps_done / self.total_steps)

    @property
    def percent(self) -> int:
        return int(round(100 * self.fraction))

    @property
    def finished(self) -> bool:
        return self.state in WELL_TERMINAL

    def label(self) -> str:
        if self.state == "running" and self.step:
            total = f"/{self.total_steps}" if self.total_steps else ""
            return f"{self.step} ({self.steps_done}{total})"
        return self.state


@dataclass
class RunProgress:
    """What the UI shows for one plate's run."""

    plate: Path
    wells: dict[str, WellProgress] = field(default_factory=dict)
    execution_id: str | None = None
    state: str = "submitting"  # submitting | queued | running | cancelling | complete | failed | cancelled | error
    message: str = ""
    error: str | None = None
    traceback: str | None = None
    results: dict[str, Any] | None = None
    last_seq: int = 0
    current: str = ""  # the most recent "well: step" line

    @classmethod
    def for_wells(cls, plate: Path, wells: list[str]) -> RunProgress:
        return cls(plate=Path(plate), wells={w: WellProgress(w) for w in wells})

    # ---- derived
    @property
    def finished(self) -> bool:
        return self.state in TERMINAL or self.state == "error"

    @property
    def wells_done(self) -> int:
        return sum(1 for w in self.wells.values() if w.finished)

    @property
    def fraction(self) -> float:
        if self.state == "complete":
            return 1.0
        if not self.wells:
            return 0.0
        # failed wells are done with; cancelled ones count only the steps they finished
        partial = sum(1.0 if w.state in ("complete", "failed") else w.fraction
                      for w in self.wells.values())
        return min(1.0, partial / len(self.wells))

    @property
    def percent(self) -> int:
        return int(round(100 * self.fraction))

    def counts(self) -> dict[str, int]:
        out = {"pending": 0, "running": 0, "complete": 0, "failed": 0, "cancelled": 0}
        for w in self.wells.values():
            out[w.state] = out.get(w.state, 0) + 1
        return out

    def status_line(self) -> str:
        c = self.counts()
        parts = [f"{self.plate.name}: {self.state}", f"{self.wells_done}/{len(self.wells)} wells done"]
        if c["failed"]:
            parts.append(f"{c['failed']} failed")
        if c["cancelled"]:
            parts.append(f"{c['cancelled']} cancelled")
        if self.current and not self.finished:
            parts.append(self.current)
        if self.message and self.finished:
            parts.append(self.message)
        return " · ".join(parts)

    # ---- the one mutator
    def handle(self, msg: dict[str, Any]) -> bool:
        """Apply one progress or run message; False if it was a duplicate or not ours."""
        if self.execution_id and msg.get("execution_id") not in (None, self.execution_id):
            return False
        seq = msg.get("seq")
        if isinstance(seq, int):
            if seq <= self.last_seq:
                return False
            self.last_seq = seq
        if msg.get("type") == "run" or "well_id" not in msg and "axis_id" not in msg:
            return self._run_event(msg)
        return self._well_event(msg)

    def _run_event(self, msg: dict[str, Any]) -> bool:
        status = msg.get("status", "")
        if self.state in TERMINAL:
            return False
        if status == "started" and self.state in ("submitting", "queued"):
            self.state = "running"
        elif status in ("queued", "cancelling") or status in TERMINAL:
            self.state = status
        else:
            return False
        if status in TERMINAL:
            self.message = msg.get("message") or self.message
            self.error = msg.get("error") or self.error
            self.traceback = msg.get("traceback") or self.traceback
            if msg.get("results"):
                self.results = msg["results"]
            for w in self.wells.values():  # wells that never finished stopped with the run
                if not w.finished and status != "complete":
                    w.state = "cancelled"
        return True

    def _well_event(self, msg: dict[str, Any]) -> bool:
        well_id = msg.get("well_id") or msg.get("axis_id")
        well = self.wells.get(well_id)
        if well is None:
            well = self.wells[well_id] = WellProgress(well_id)
        if self.state in ("submitting", "queued"):
            self.state = "running"
        if well.finished:
            return False
        meta = msg.get("metadata") or {}
        total = meta.get("total_steps")
        if isinstance(total, int) and total > 0:
            well.total_steps = total
        step, status = msg.get("step", ""), msg.get("status", "")
        if step == "pipeline":
            new = _PIPELINE_STATUS.get(status)
            if new is None:
                return False
            well.state = new
            if new == "complete" and well.total_steps:
                well.steps_done = well.total_steps
            if new == "failed":
                well.error = meta.get("error")
                well.traceback = meta.get("traceback")
            if new in WELL_TERMINAL:
                well.step = ""
                self.current = f"{well_id}: {new}"
            return True
        well.state = "running"
        if status == "started":
            well.step = step
            self.current = f"{well_id}: {step}"
        elif status == "completed":
            index = meta.get("step_index")
            done = index + 1 if isinstance(index, int) else well.steps_done + 1
            well.steps_done = max(well.steps_done, done)
        return True
