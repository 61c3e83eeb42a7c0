"""The Stop button's decisions: graceful cancel, poll status for up to 5 s, then offer a kill.

No I/O and no clock of its own: the controller sends the cancel, polls ``status`` on a
timer and feeds each observed run state (and the time) in; this says what to do next
and what to tell the user. States::

    cancelling --(run terminal)--> stopped          "stopped gracefully in 1.3 s"
    cancelling --(timeout)-------> offer_force      "did not stop within 5 s"
    offer_force --force()--------> forcing --(terminal)--> killed
    forcing --(timeout)----------> failed           "still running after the forced kill"
"""

from __future__ import annotations

from dataclasses import dataclass

TERMINAL = ("complete", "failed", "cancelled", "interrupted")
POLL, DONE, OFFER_FORCE, GIVE_UP = "poll", "done", "offer_force", "give_up"


@dataclass
class StopSequence:
    execution_id: str
    started_at: float
    timeout: float = 5.0
    poll_interval: float = 0.25
    state: str = "cancelling"  # cancelling | stopped | offer_force | forcing | killed | failed
    final_run_state: str | None = None
    forced_at: float | None = None
    ended_at: float | None = None

    @property
    def active(self) -> bool:
        return self.state in ("cancelling", "forcing")

    @property
    def can_force(self) -> bool:
        return self.state in ("cancelling", "offer_force")

    def observe(self, run_state: str | None, now: float) -> str:
        """A status poll (or terminal event) saw ``run_state`` at ``now``: what next?"""
        if not self.active:
            return DONE if self.state in ("stopped", "killed") else self.state
        if run_state in TERMINAL or run_state == "not_found":
            self.final_run_state = run_state
            self.ended_at = now
            self.state = "killed" if self.state == "forcing" else "stopped"
            return DONE
        begun = self.forced_at if self.state == "forcing" else self.started_at
        if now - begun >= self.timeout:
            if self.state == "forcing":
                self.state = "failed"
                return GIVE_UP
            self.state = "offer_force"
            return OFFER_FORCE
        return POLL

    def force(self, now: float) -> None:
        if not self.can_force:
            raise RuntimeError(f"cannot force a stop that is {self.state}")
        self.state = "forcing"
        self.forced_at = now

    def message(self) -> str:
        took = "" if self.ended_at is None else f" in {self.ended_at - self.started_at:.1f} s"
        if self.state == "cancelling":
            return "Stopping: cancel requested, waiting for the run to stop…"
        if self.state == "stopped":
            if self.final_run_state not in (None, "cancelled", "not_found"):
                return f"The run ended ({self.final_run_state}) before the cancel took effect"
            return f"Stopped gracefully{took}"
        if self.state == "offer_force":
            return f"Did not stop within {self.timeout:g} s — force kill?"
        if self.state == "forcing":
            return "Force kill requested, waiting…"
        if self.state == "killed":
            return f"Killed by force{took}"
        return f"Still running {self.timeout:g} s after the forced kill"
