"""The execution server's run and well state, as a pure state machine.

Everything the server knows about its runs changes in one place, ``RunBook.handle(event)``,
and nowhere else. Events are plain frozen dataclasses carrying their own timestamps, so
this module does no I/O, starts no threads and reads no clock: it can be tested by feeding
it event sequences, and the server can replay, log or persist events without the state
depending on when or where they were handled. ``EventLog`` keeps each run's progress
events numbered, so late or reconnecting clients can catch up (the slow-joiner problem).

Run lifecycle::

    queued -> running -> complete | failed | cancelled
    queued | running -> cancelling -> complete | failed | cancelled
    (interrupted: set by the history when a server died; never by events)
"""

from __future__ import annotations

import copy
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field, fields
from enum import StrEnum
from itertools import islice
from typing import Any

PIPELINE_STEP = "pipeline"  # the step name the orchestrator uses for well-level events


class RunState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    CANCELLING = "cancelling"
    COMPLETE = "complete"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


TERMINAL_STATES = frozenset(
    {RunState.COMPLETE, RunState.FAILED, RunState.CANCELLED, RunState.INTERRUPTED}
)


class WellState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_WELL_STATES = frozenset({WellState.COMPLETE, WellState.FAILED, WellState.CANCELLED})

# Orchestrator well-level ('pipeline') statuses -> the well state they put a well in.
_WELL_STATUS = {
    "started": WellState.RUNNING,
    "completed": WellState.COMPLETE,
    "failed": WellState.FAILED,
    "cancelled": WellState.CANCELLED,
}


class InvalidTransition(ValueError):
    """An event that the run's current state does not allow (a bug in the caller)."""


class UnknownRun(KeyError):
    """An event or query for an execution id the book does not hold."""

    def __str__(self) -> str:  # KeyError would repr() the id
        return f"unknown execution id {self.args[0]!r}" if self.args else "unknown execution id"


class EventsExpired(LookupError):
    """Asked for events older than the log still keeps; replay from ``first_available``."""

    def __init__(self, first_available: int):
        super().__init__(f"events before seq {first_available} are no longer kept")
        self.first_available = first_available


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class Submitted:
    execution_id: str
    at: float
    request_id: str | None
    plate_id: str
    summary: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Started:
    execution_id: str
    at: float


@dataclass(frozen=True)
class Planned:
    """The run's plan is compiled: which wells it covers and how many steps each has."""

    execution_id: str
    at: float
    wells: tuple[str, ...]
    total_steps: int


@dataclass(frozen=True)
class WellProgress:
    execution_id: str
    at: float
    axis_id: str
    step: str
    status: str
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CancelRequested:
    execution_id: str
    at: float
    axis_ids: tuple[str, ...] | None = None
    force: bool = False


@dataclass(frozen=True)
class Finished:
    execution_id: str
    at: float
    status: str
    message: str = ""
    results: dict | None = None
    error: str | None = None
    traceback: str | None = None
    metrics: dict | None = None


Event = Submitted | Started | Planned | WellProgress | CancelRequested | Finished


# --------------------------------------------------------------------------- records


def _count(value: Any) -> int | None:
    """A count from a summary entry that may be a list of names or a number."""
    if isinstance(value, list | tuple | set | frozenset):
        return len(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


@dataclass
class RunRecord:
    """What is known about one run. Mutated only by ``RunBook.handle``."""

    execution_id: str
    request_id: str | None
    plate_id: str
    state: RunState
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    updated_at: float | None = None
    message: str = ""
    error: str | None = None
    traceback: str | None = None
    wells: dict[str, WellState] = field(default_factory=dict)  # filled as wells start
    current_step: dict[str, str] = field(default_factory=dict)
    steps_done: dict[str, int] = field(default_factory=dict)
    well_errors: dict[str, str] = field(default_factory=dict)
    total_steps: int | None = None
    # Cancellation asked for: empty set = none, some ids = those wells, None = the whole run.
    cancel_axis_ids: set[str] | None = field(default_factory=set)
    cancel_force: bool = False
    results: dict | None = None
    metrics: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def cancel_requested(self) -> bool:
        return self.cancel_axis_ids is None or bool(self.cancel_axis_ids)

    @property
    def wells_total(self) -> int | None:
        return _count(self.summary.get("wells"))

    def progress(self) -> dict[str, Any]:
        """Well counts and a 0..1 fraction (None while the number of wells is unknown).

        The fraction counts finished wells fully and running wells by their completed
        steps when the number of steps is known.
        """
        counts = Counter(self.wells.values())
        done = sum(counts[s] for s in TERMINAL_WELL_STATES)
        total, steps = self.wells_total, self.total_steps
        partial = 0.0
        if steps:
            partial = sum(min(self.steps_done.get(w, 0), steps) / steps
                          for w, s in self.wells.items() if s not in TERMINAL_WELL_STATES)
        fraction = min(1.0, (done + partial) / total) if total else None
        if total == 0:
            fraction = 1.0 if self.is_terminal else 0.0
        progress: dict[str, Any] = {"wells_total": total, "wells_done": done}
        for state in (WellState.RUNNING, *sorted(TERMINAL_WELL_STATES)):
            progress[f"wells_{state.value}"] = counts[state]
        progress["fraction"] = fraction
        return progress

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able snapshot (states as strings, sets as sorted lists) plus progress."""
        data = {f.name: copy.copy(getattr(self, f.name)) for f in fields(self)}
        data["state"] = self.state.value
        data["wells"] = {w: s.value for w, s in self.wells.items()}
        data["cancel_axis_ids"] = _sorted_or_none(self.cancel_axis_ids)
        data["cancel_requested"] = self.cancel_requested
        data["progress"] = self.progress()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        """Rebuild a record from ``to_dict()`` output (e.g. one read back from history)."""
        kwargs = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        kwargs["state"] = RunState(data["state"])
        kwargs["wells"] = {w: WellState(s) for w, s in (data.get("wells") or {}).items()}
        cancel = data.get("cancel_axis_ids", [])
        kwargs["cancel_axis_ids"] = None if cancel is None else set(cancel)
        return cls(**kwargs)


def _sorted_or_none(ids: set[str] | None) -> list[str] | None:
    return None if ids is None else sorted(ids)


# --------------------------------------------------------------------------- the book


class RunBook:
    """All runs of one server, changed only through ``handle(event)``.

    Terminal records are kept up to ``max_finished`` (oldest finished dropped first);
    ids dropped that way are reported once by ``pop_evicted()`` so the caller can drop
    their event logs too. Not thread-safe: the server feeds it from one thread.
    """

    def __init__(self, max_finished: int = 1000):
        if max_finished < 0:
            raise ValueError("max_finished must be >= 0")
        self.max_finished = max_finished
        self._records: dict[str, RunRecord] = {}  # creation order
        self._by_request: dict[str, str] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()  # in the order they ended
        self._evicted: list[str] = []
        self._handlers = {
            Submitted: self._submitted,
            Started: self._started,
            WellProgress: self._well_progress,
            CancelRequested: self._cancel_requested,
            Finished: self._finished_event,
            Planned: self._planned,
        }

    # ---- the only mutator
    def handle(self, event: Event) -> RunRecord:
        """Apply one event and return the affected record.

        Raises ``UnknownRun`` for an id never submitted (or forgotten) and
        ``InvalidTransition`` for an event the run's state does not allow.
        """
        try:
            handler = self._handlers[type(event)]
        except KeyError:
            raise TypeError(f"not a run event: {event!r}") from None
        before = self._records.get(event.execution_id)
        was_terminal = before is not None and before.is_terminal
        record = handler(event)
        if not was_terminal:  # a finished run's record stays as it finished
            record.updated_at = event.at
        return record

    def _record(self, execution_id: str) -> RunRecord:
        try:
            return self._records[execution_id]
        except KeyError:
            raise UnknownRun(execution_id) from None

    def _submitted(self, ev: Submitted) -> RunRecord:
        if ev.execution_id in self._records:
            raise InvalidTransition(f"execution id {ev.execution_id!r} already submitted")
        if ev.request_id is not None and ev.request_id in self._by_request:
            raise InvalidTransition(
                f"request id {ev.request_id!r} already used by run {self._by_request[ev.request_id]!r}"
            )
        summary = dict(ev.summary)
        record = RunRecord(
            execution_id=ev.execution_id,
            request_id=ev.request_id,
            plate_id=ev.plate_id,
            state=RunState.QUEUED,
            created_at=ev.at,
            total_steps=_count(summary.get("total_steps", summary.get("steps"))),
            summary=summary,
        )
        self._records[ev.execution_id] = record
        if ev.request_id is not None:
            self._by_request[ev.request_id] = ev.execution_id
        return record

    def _started(self, ev: Started) -> RunRecord:
        record = self._record(ev.execution_id)
        if record.state is RunState.QUEUED:
            record.state = RunState.RUNNING
        elif record.state is not RunState.CANCELLING or record.started_at is not None:
            raise InvalidTransition(f"run {ev.execution_id!r} cannot start: it is {record.state}")
        record.started_at = ev.at
        return record

    def _planned(self, ev: Planned) -> RunRecord:
        record = self._record(ev.execution_id)
        if not record.is_terminal:
            record.summary["wells"] = list(ev.wells)
            record.total_steps = ev.total_steps
        return record

    def _well_progress(self, ev: WellProgress) -> RunRecord:
        record = self._record(ev.execution_id)
        if record.started_at is None and not record.is_terminal:
            record.started_at = ev.at  # progress proves it started, even if Started was lost
            if record.state is RunState.QUEUED:
                record.state = RunState.RUNNING
        well, meta = ev.axis_id, ev.metadata or {}
        total = _count(meta.get("total_steps"))
        if total:
            record.total_steps = total
        current = record.wells.get(well)
        if current in TERMINAL_WELL_STATES:
            return record  # a finished well never changes again
        if ev.step == PIPELINE_STEP:
            new = _WELL_STATUS.get(ev.status)
            if new is None:
                return record
            record.wells[well] = new
            if new in TERMINAL_WELL_STATES:
                record.current_step.pop(well, None)
            if new is WellState.FAILED and meta.get("error"):
                record.well_errors[well] = str(meta["error"])
            return record
        # a step inside the well
        record.wells[well] = WellState.RUNNING
        if ev.status == "started":
            record.current_step[well] = ev.step
        elif ev.status == "completed":
            index = meta.get("step_index")
            done = record.steps_done.get(well, 0) + 1
            if isinstance(index, int) and not isinstance(index, bool):
                done = max(record.steps_done.get(well, 0), index + 1)
            record.steps_done[well] = done
        return record

    def _cancel_requested(self, ev: CancelRequested) -> RunRecord:
        record = self._record(ev.execution_id)
        if record.is_terminal:
            return record  # cancelling a finished run is harmless
        record.cancel_force = record.cancel_force or ev.force
        if ev.axis_ids is None:
            record.cancel_axis_ids = None
            record.state = RunState.CANCELLING
        elif record.cancel_axis_ids is not None:
            record.cancel_axis_ids.update(ev.axis_ids)
        return record

    def _finished_event(self, ev: Finished) -> RunRecord:
        record = self._record(ev.execution_id)
        try:
            state = RunState(ev.status)
        except ValueError:
            raise InvalidTransition(f"unknown final status {ev.status!r}") from None
        if state not in TERMINAL_STATES:
            raise InvalidTransition(f"{ev.status!r} is not a final status")
        if record.is_terminal:
            raise InvalidTransition(f"run {ev.execution_id!r} already finished ({record.state})")
        record.state = state
        record.finished_at = ev.at
        record.message = ev.message
        record.results = ev.results
        record.error = ev.error
        record.traceback = ev.traceback
        if ev.metrics:
            record.metrics.update(ev.metrics)
        if state is not RunState.COMPLETE:
            # wells that never got to finish were stopped with the run
            for well, well_state in record.wells.items():
                if well_state not in TERMINAL_WELL_STATES:
                    record.wells[well] = WellState.CANCELLED
                    record.current_step.pop(well, None)
        self._finished[record.execution_id] = None
        self._evict()
        return record

    def _evict(self) -> None:
        while len(self._finished) > self.max_finished:
            old, _ = self._finished.popitem(last=False)
            self._drop(old)
            self._evicted.append(old)

    def _drop(self, execution_id: str) -> RunRecord | None:
        record = self._records.pop(execution_id, None)
        self._finished.pop(execution_id, None)
        if record is not None and record.request_id is not None:
            self._by_request.pop(record.request_id, None)
        return record

    # ---- queries and housekeeping (no state transitions)
    def get(self, execution_id: str) -> RunRecord | None:
        return self._records.get(execution_id)

    def find_by_request(self, request_id: str) -> RunRecord | None:
        """The run submitted with this client request id, for idempotent submits."""
        execution_id = self._by_request.get(request_id)
        return None if execution_id is None else self._records.get(execution_id)

    def records(self) -> list[RunRecord]:
        return list(self._records.values())

    def active(self) -> list[RunRecord]:
        return [r for r in self._records.values() if not r.is_terminal]

    def queued(self) -> list[RunRecord]:
        """Runs waiting to start, oldest first (the server's queue order)."""
        return [r for r in self._records.values() if r.state is RunState.QUEUED]

    def forget(self, execution_id: str) -> RunRecord | None:
        """Drop a run (any state); returns it, or None if it was not held."""
        return self._drop(execution_id)

    def pop_evicted(self) -> list[str]:
        """Ids dropped by the ``max_finished`` bound since the last call."""
        evicted, self._evicted = self._evicted, []
        return evicted

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, execution_id: object) -> bool:
        return execution_id in self._records


# --------------------------------------------------------------------------- event log


class EventLog:
    """Per-run, append-only progress events numbered 1, 2, 3... for replay.

    Each run keeps at most ``max_events_per_run`` events; older ones are dropped and a
    request for them raises ``EventsExpired``. Not thread-safe: the server appends and
    reads from its one loop thread.
    """

    def __init__(self, max_events_per_run: int = 1_000_000):
        if max_events_per_run < 1:
            raise ValueError("max_events_per_run must be >= 1")
        self.max_events_per_run = max_events_per_run
        self._events: dict[str, deque[dict]] = {}
        self._last: dict[str, int] = {}

    def append(self, execution_id: str, event: dict) -> int:
        """Store ``event`` (setting ``event['seq']``) and return its sequence number."""
        seq = self._last.get(execution_id, 0) + 1
        event["seq"] = seq
        events = self._events.get(execution_id)
        if events is None:
            events = self._events[execution_id] = deque(maxlen=self.max_events_per_run)
        events.append(event)
        self._last[execution_id] = seq
        return seq

    def since(self, execution_id: str, seq: int = 0) -> list[dict]:
        """Events with a sequence number greater than ``seq``, oldest first.

        An id with no events gives ``[]``. Raises ``EventsExpired`` if some of the asked-for
        events were already dropped.
        """
        last = self._last.get(execution_id, 0)
        seq = max(seq, 0)
        if seq >= last:
            return []
        first = self.first_seq(execution_id)
        if seq + 1 < first:
            raise EventsExpired(first)
        wanted = last - seq
        newest_first = list(islice(reversed(self._events[execution_id]), wanted))
        newest_first.reverse()
        return newest_first

    def first_seq(self, execution_id: str) -> int:
        """The oldest sequence number still kept (``last_seq + 1`` when none are kept)."""
        events = self._events.get(execution_id)
        if not events:
            return self._last.get(execution_id, 0) + 1
        return self._last[execution_id] - len(events) + 1

    def last_seq(self, execution_id: str) -> int:
        return self._last.get(execution_id, 0)

    def drop(self, execution_id: str) -> None:
        self._events.pop(execution_id, None)
        self._last.pop(execution_id, None)

    def __contains__(self, execution_id: object) -> bool:
        return execution_id in self._last
