"""A progress_callback that records events and lets a test wait on them (no sleeps)."""

from __future__ import annotations

import threading


class Recorder:
    """Collects progress events and lets a test wait for one (with a deadline)."""

    def __init__(self):
        self.events: list[tuple] = []
        self.cond = threading.Condition()

    def __call__(self, axis_id, step, status, metadata):
        with self.cond:
            self.events.append((axis_id, step, status, metadata))
            self.cond.notify_all()

    def wait_for(self, predicate, timeout=60):
        """Wait until some event satisfies ``predicate(event)``."""
        with self.cond:
            assert self.cond.wait_for(lambda: any(predicate(e) for e in self.events), timeout), (
                f"event not seen; got {self.events[-5:]}"
            )

    def wait_until(self, condition, timeout=60):
        """Wait until ``condition(events)`` holds for the events so far."""
        with self.cond:
            assert self.cond.wait_for(lambda: condition(self.events), timeout), (
                f"condition not met; got {self.events[-5:]}"
            )

    def for_well(self, well):
        return [(s, st) for a, s, st, _ in self.events if a == well]

    def terminal(self, well):
        """The well-level outcomes reported for ``well`` (exactly one, when all is well)."""
        return [st for a, s, st, _ in self.events if a == well and s == "pipeline" and st != "started"]
