"""Progress events the orchestrator reports, with the seed's names and order.

``progress_callback(axis_id, step, status, metadata)`` fires at:

- axis started:   ``(well, PIPELINE, STARTED, {"total_steps": n})``
- step started:   ``(well, step_name, STARTED, {"step_index": i, "total_steps": n})``
- step completed: ``(well, step_name, COMPLETED, {"step_index": i, "total_steps": n, "duration_s": t})``
- axis completed: ``(well, PIPELINE, COMPLETED, {"duration_s": t, "outputs": [...]})``
- axis failed:    ``(well, PIPELINE, FAILED, {"error": str, "traceback": str, "step": name})``
- cancelled:      ``(well, PIPELINE, CANCELLED, {"step": name or None})``
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PIPELINE = "pipeline"
STARTED = "started"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"

ProgressCallback = Callable[[str, str, str, dict[str, Any]], None]


def is_terminal_well_event(step: str, status: str) -> bool:
    """True for the last event a well ever reports."""
    return step == PIPELINE and status in (COMPLETED, FAILED, CANCELLED)
