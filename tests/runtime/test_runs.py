"""RunBook and EventLog, driven by feeding events: no sockets, no threads, no clock."""

from __future__ import annotations

import json

import pytest

from openhcs.runtime.runs import (
    TERMINAL_STATES,
    CancelRequested,
    EventLog,
    EventsExpired,
    Finished,
    InvalidTransition,
    RunBook,
    RunRecord,
    RunState,
    Started,
    Submitted,
    UnknownRun,
    WellProgress,
    WellState,
)

WELLS = ["A01", "A02", "B01"]


def submit(book: RunBook, eid: str = "r1", at: float = 100.0, request_id: str | None = None):
    return book.handle(
        Submitted(eid, at, request_id, "/plates/p1", {"wells": WELLS, "steps": ["a", "b"]})
    )


def run_well(book: RunBook, eid: str, well: str, at: float, outcome: str = "completed") -> None:
    book.handle(WellProgress(eid, at, well, "pipeline", "started", {"total_steps": 2}))
    for i, step in enumerate(["a", "b"]):
        book.handle(WellProgress(eid, at, well, step, "started", {"step_index": i, "total_steps": 2}))
        book.handle(WellProgress(eid, at, well, step, "completed", {"step_index": i}))
    book.handle(WellProgress(eid, at, well, "pipeline", outcome, {}))


def test_happy_path_records_every_well_and_finishes_complete():
    book = RunBook()
    rec = submit(book)
    assert rec.state is RunState.QUEUED and rec.created_at == 100.0
    assert rec.total_steps == 2 and rec.wells == {}
    assert [r.execution_id for r in book.queued()] == ["r1"]

    book.handle(Started("r1", 101.0))
    assert rec.state is RunState.RUNNING and rec.started_at == 101.0
    assert book.queued() == []

    book.handle(WellProgress("r1", 102.0, "A01", "pipeline", "started", {"total_steps": 2}))
    book.handle(WellProgress("r1", 102.5, "A01", "a", "started", {"step_index": 0}))
    assert rec.wells == {"A01": WellState.RUNNING}
    assert rec.current_step == {"A01": "a"}
    book.handle(WellProgress("r1", 103.0, "A01", "a", "completed", {"step_index": 0}))
    assert rec.steps_done == {"A01": 1}
    # 1 of 2 steps in 1 of 3 wells
    assert rec.to_dict()["progress"]["fraction"] == pytest.approx(1 / 6)

    book.handle(WellProgress("r1", 103.5, "A01", "b", "started", {"step_index": 1}))
    book.handle(WellProgress("r1", 104.0, "A01", "b", "completed", {"step_index": 1}))
    book.handle(WellProgress("r1", 104.0, "A01", "pipeline", "completed", {"duration_s": 2}))
    assert rec.wells["A01"] is WellState.COMPLETE and "A01" not in rec.current_step
    run_well(book, "r1", "A02", 105.0)
    run_well(book, "r1", "B01", 106.0)

    out = book.handle(
        Finished("r1", 107.0, "complete", "done", {"wells": {}}, metrics={"wall_time_s": 6.0})
    )
    assert out is rec and rec.state is RunState.COMPLETE and rec.is_terminal
    assert rec.finished_at == 107.0 and rec.updated_at == 107.0
    assert rec.metrics == {"wall_time_s": 6.0} and rec.results == {"wells": {}}

    data = rec.to_dict()
    assert json.loads(json.dumps(data)) == data  # JSON-able as is
    assert data["state"] == "complete"
    assert data["progress"]["wells_total"] == 3
    assert data["progress"]["wells_done"] == 3
    assert data["progress"]["wells_complete"] == 3
    assert data["progress"]["fraction"] == 1.0
    assert data["cancel_requested"] is False
    assert book.active() == [] and book.records() == [rec]


def test_record_round_trips_through_dict():
    book = RunBook()
    submit(book, request_id="req-1")
    book.handle(Started("r1", 101.0))
    book.handle(CancelRequested("r1", 102.0, ("A02",), False))
    run_well(book, "r1", "A01", 103.0, outcome="failed")
    rec = book.get("r1")
    again = RunRecord.from_dict(json.loads(json.dumps(rec.to_dict())))
    assert again == rec


def test_cancel_queued_run_then_finish_cancelled():
    book = RunBook()
    submit(book)
    rec = book.handle(CancelRequested("r1", 101.0, None, False))
    assert rec.state is RunState.CANCELLING
    assert rec.cancel_axis_ids is None and rec.cancel_requested
    assert book.queued() == [] and book.active() == [rec]
    # the worker may still pick it up: starting while cancelling is allowed, stays cancelling
    book.handle(Started("r1", 102.0))
    assert rec.state is RunState.CANCELLING and rec.started_at == 102.0
    with pytest.raises(InvalidTransition):
        book.handle(Started("r1", 102.5))
    book.handle(Finished("r1", 103.0, "cancelled", "cancelled before start", None))
    assert rec.state is RunState.CANCELLED and rec.finished_at == 103.0


def test_cancel_running_run_marks_unfinished_wells_cancelled():
    book = RunBook()
    submit(book)
    book.handle(Started("r1", 101.0))
    run_well(book, "r1", "A01", 102.0)
    book.handle(WellProgress("r1", 103.0, "A02", "pipeline", "started", {}))
    book.handle(WellProgress("r1", 103.1, "A02", "a", "started", {}))
    rec = book.handle(CancelRequested("r1", 104.0, None, True))
    assert rec.state is RunState.CANCELLING and rec.cancel_force
    # a per-well cancel on a run already cancelling as a whole changes nothing
    book.handle(CancelRequested("r1", 104.5, ("B01",), False))
    assert rec.cancel_axis_ids is None and rec.state is RunState.CANCELLING

    book.handle(Finished("r1", 105.0, "cancelled", "stopped", None))
    assert rec.state is RunState.CANCELLED
    assert rec.wells == {"A01": WellState.COMPLETE, "A02": WellState.CANCELLED}
    assert rec.current_step == {}
    assert rec.to_dict()["progress"]["wells_cancelled"] == 1


def test_cancelling_run_keeps_reported_final_status():
    book = RunBook()
    submit(book)
    book.handle(Started("r1", 101.0))
    book.handle(CancelRequested("r1", 102.0, None, False))
    rec = book.handle(Finished("r1", 103.0, "complete", "finished before the cancel landed", {}))
    assert rec.state is RunState.COMPLETE


def test_per_well_cancel_keeps_run_running():
    book = RunBook()
    submit(book)
    book.handle(Started("r1", 101.0))
    rec = book.handle(CancelRequested("r1", 102.0, ("A02",), False))
    assert rec.state is RunState.RUNNING
    assert rec.cancel_axis_ids == {"A02"} and rec.cancel_requested
    book.handle(CancelRequested("r1", 102.5, ("B01", "A02"), False))
    assert rec.cancel_axis_ids == {"A02", "B01"}
    assert rec.to_dict()["cancel_axis_ids"] == ["A02", "B01"]

    run_well(book, "r1", "A01", 103.0)
    book.handle(WellProgress("r1", 104.0, "A02", "pipeline", "cancelled", {"step": None}))
    book.handle(WellProgress("r1", 104.0, "B01", "pipeline", "cancelled", {"step": None}))
    # a late event for a finished well never revives it
    book.handle(WellProgress("r1", 104.5, "A02", "a", "started", {}))
    assert rec.wells["A02"] is WellState.CANCELLED and "A02" not in rec.current_step
    book.handle(Finished("r1", 105.0, "complete", "2 wells cancelled", {}))
    assert rec.state is RunState.COMPLETE
    progress = rec.to_dict()["progress"]
    assert (progress["wells_complete"], progress["wells_cancelled"]) == (1, 2)


def test_per_well_cancel_of_queued_run_stays_queued():
    book = RunBook()
    submit(book)
    rec = book.handle(CancelRequested("r1", 101.0, ("A01",), False))
    assert rec.state is RunState.QUEUED and rec.cancel_axis_ids == {"A01"}


def test_failure_keeps_error_and_traceback():
    book = RunBook()
    submit(book)
    book.handle(Started("r1", 101.0))
    book.handle(WellProgress("r1", 102.0, "A01", "pipeline", "started", {}))
    book.handle(
        WellProgress(
            "r1", 103.0, "A01", "pipeline", "failed",
            {"error": "ValueError: bad", "traceback": "Traceback...", "step": "a"},
        )
    )
    book.handle(WellProgress("r1", 103.0, "A02", "pipeline", "started", {}))
    rec = book.handle(
        Finished("r1", 104.0, "failed", "1 well failed", None,
                 error="ValueError: bad", traceback="Traceback (most recent call last): ...")
    )
    assert rec.state is RunState.FAILED
    assert rec.error == "ValueError: bad"
    assert rec.traceback.startswith("Traceback")
    assert rec.well_errors == {"A01": "ValueError: bad"}
    assert rec.wells == {"A01": WellState.FAILED, "A02": WellState.CANCELLED}
    data = rec.to_dict()
    assert data["error"] == "ValueError: bad" and data["progress"]["wells_failed"] == 1


def test_illegal_transitions_raise_and_leave_state_alone():
    book = RunBook()
    submit(book)
    with pytest.raises(InvalidTransition):
        submit(book)  # same execution id
    book.handle(Started("r1", 101.0))
    with pytest.raises(InvalidTransition):
        book.handle(Started("r1", 102.0))  # already running
    with pytest.raises(InvalidTransition):
        book.handle(Finished("r1", 102.0, "running", "", None))  # not a final status
    with pytest.raises(InvalidTransition):
        book.handle(Finished("r1", 102.0, "exploded", "", None))
    assert book.get("r1").state is RunState.RUNNING

    book.handle(Finished("r1", 103.0, "complete", "", {}))
    with pytest.raises(InvalidTransition):
        book.handle(Finished("r1", 104.0, "failed", "", None))
    with pytest.raises(InvalidTransition):
        book.handle(Started("r1", 104.0))
    with pytest.raises(TypeError):
        book.handle("not an event")
    rec = book.get("r1")
    assert rec.state is RunState.COMPLETE and rec.finished_at == 103.0


def test_terminal_run_ignores_cancel_and_keeps_state_on_late_progress():
    book = RunBook()
    submit(book)
    book.handle(Started("r1", 101.0))
    book.handle(Finished("r1", 102.0, "complete", "ok", {}))
    rec = book.handle(CancelRequested("r1", 103.0, None, True))
    assert rec.state is RunState.COMPLETE and not rec.cancel_requested and not rec.cancel_force
    assert rec.updated_at == 102.0
    book.handle(WellProgress("r1", 104.0, "A01", "pipeline", "completed", {}))
    assert rec.state is RunState.COMPLETE and rec.wells == {"A01": WellState.COMPLETE}


def test_progress_before_started_event_implies_running():
    book = RunBook()
    submit(book)
    rec = book.handle(WellProgress("r1", 101.0, "A01", "pipeline", "started", {}))
    assert rec.state is RunState.RUNNING and rec.started_at == 101.0

    submit(book, "r2")
    book.handle(CancelRequested("r2", 102.0, None, False))
    rec2 = book.handle(WellProgress("r2", 103.0, "A01", "pipeline", "cancelled", {}))
    assert rec2.state is RunState.CANCELLING and rec2.started_at == 103.0


def test_unknown_run_raises_unknown_run_a_key_error():
    book = RunBook()
    for event in (
        Started("nope", 1.0),
        WellProgress("nope", 1.0, "A01", "pipeline", "started", {}),
        CancelRequested("nope", 1.0, None, False),
        Finished("nope", 1.0, "complete", "", None),
    ):
        with pytest.raises(UnknownRun) as info:
            book.handle(event)
        assert isinstance(info.value, KeyError) and "nope" in str(info.value)
    assert book.get("nope") is None and "nope" not in book


def test_find_by_request_for_idempotent_submit():
    book = RunBook()
    rec = submit(book, "r1", request_id="req-1")
    submit(book, "r2", request_id=None)
    assert book.find_by_request("req-1") is rec
    assert book.find_by_request("req-2") is None
    with pytest.raises(InvalidTransition):
        submit(book, "r3", request_id="req-1")  # same request must not make a second run
    assert [r.execution_id for r in book.records()] == ["r1", "r2"]
    assert book.forget("r1") is rec
    assert book.find_by_request("req-1") is None and book.get("r1") is None
    assert book.forget("r1") is None


def test_bounded_memory_drops_oldest_finished_only():
    book = RunBook(max_finished=2)
    for i in range(5):
        submit(book, f"r{i}", at=float(i), request_id=f"q{i}")
    # finish in a different order than creation: r3, r0, r1, r2; r4 stays active
    for eid in ("r3", "r0", "r1", "r2"):
        book.handle(Finished(eid, 10.0, "cancelled", "", None))
    assert [r.execution_id for r in book.records()] == ["r1", "r2", "r4"]
    assert book.pop_evicted() == ["r3", "r0"]
    assert book.pop_evicted() == []
    assert book.find_by_request("q3") is None and book.find_by_request("q1") is not None
    assert [r.execution_id for r in book.active()] == ["r4"]
    assert all(r.state in TERMINAL_STATES for r in book.records()[:2])


def test_unknown_well_status_changes_nothing():
    book = RunBook()
    submit(book)
    rec = book.handle(WellProgress("r1", 101.0, "A01", "pipeline", "weird", {}))
    assert rec.wells == {}


# --------------------------------------------------------------------------- EventLog


def test_event_log_numbers_per_run_from_one():
    log = EventLog()
    first = {"type": "progress", "n": 1}
    assert log.append("r1", first) == 1 and first["seq"] == 1
    assert log.append("r1", {"n": 2}) == 2
    assert log.append("r2", {"n": 1}) == 1
    assert log.last_seq("r1") == 2 and log.last_seq("r2") == 1 and log.last_seq("r3") == 0
    assert [e["n"] for e in log.since("r1", 0)] == [1, 2]
    assert [e["seq"] for e in log.since("r1", 1)] == [2]
    assert log.since("r1", 2) == [] and log.since("r1", 99) == []
    assert log.since("unknown", 0) == []
    log.drop("r1")
    assert log.last_seq("r1") == 0 and log.since("r1", 0) == [] and "r1" not in log
    assert log.append("r1", {}) == 1


def test_event_log_bound_drops_oldest_and_reports_gap():
    log = EventLog(max_events_per_run=3)
    for n in range(1, 6):
        log.append("r1", {"n": n})
    assert log.first_seq("r1") == 3 and log.last_seq("r1") == 5
    assert [e["seq"] for e in log.since("r1", 2)] == [3, 4, 5]  # exactly what is kept
    assert [e["seq"] for e in log.since("r1", 4)] == [5]
    with pytest.raises(EventsExpired) as info:
        log.since("r1", 1)
    assert info.value.first_available == 3
    with pytest.raises(EventsExpired):
        log.since("r1", 0)


def test_planned_fills_wells_and_steps_for_progress():
    from openhcs.runtime.runs import Planned

    book = RunBook()
    book.handle(Submitted("r1", 1.0, None, "/plate", {"wells": None}))
    record = book.handle(Planned("r1", 2.0, ("A01", "A02"), 3))
    assert record.wells_total == 2 and record.total_steps == 3
    assert record.progress()["fraction"] == 0.0
    book.handle(WellProgress("r1", 3.0, "A01", "pipeline", "completed", {}))
    assert book.get("r1").progress()["fraction"] == 0.5
