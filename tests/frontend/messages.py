"""Real progress-message dicts, in the exact shape ZMQExecutionClient delivers them."""

from __future__ import annotations

STEPS = ("flatfield", "background", "stitch", "measure")


class Feed:
    """Numbers messages of one run like the server's event log does (seq 1, 2, ...)."""

    def __init__(self, execution_id: str = "e1"):
        self.execution_id = execution_id
        self.seq = 0

    def _base(self, kind: str) -> dict:
        self.seq += 1
        return {"type": kind, "request_id": "", "version": 1, "timestamp": 1795811063.0 + self.seq,
                "execution_id": self.execution_id, "seq": self.seq}

    def run(self, status: str, **extra) -> dict:
        msg = {**self._base("run"), "status": status, "step": "run", "message": ""}
        if status in ("complete", "failed", "cancelled"):
            msg["final_seq"] = msg["seq"]
        return {**msg, **extra}

    def well(self, well: str, step: str, status: str, **metadata) -> dict:
        return {**self._base("progress"), "axis_id": well, "well_id": well, "step": step,
                "status": status, "metadata": metadata}

    def whole_well(self, well: str, steps=STEPS) -> list[dict]:
        out = [self.well(well, "pipeline", "started", total_steps=len(steps))]
        for i, step in enumerate(steps):
            out.append(self.well(well, step, "started", step_index=i, total_steps=len(steps)))
            out.append(self.well(well, step, "completed", step_index=i, total_steps=len(steps),
                                 duration_s=0.1))
        out.append(self.well(well, "pipeline", "completed", duration_s=0.5, outputs=3))
        return out
