from pathlib import Path

from openhcs.frontend.progress import RunProgress
from tests.frontend.messages import STEPS, Feed

WELLS = ["A01", "A02", "B01", "B02"]


def _run() -> RunProgress:
    progress = RunProgress.for_wells(Path("/plates/p1"), WELLS)
    progress.execution_id = "e1"
    return progress


def test_progress_counts_steps_of_running_wells_and_reaches_100_when_complete():
    progress, feed = _run(), Feed()
    assert progress.handle(feed.run("queued"))
    assert progress.state == "queued"
    progress.handle(feed.run("started"))
    assert progress.state == "running" and progress.percent == 0
    progress.handle(feed.well("A01", "pipeline", "started", total_steps=4))
    progress.handle(feed.well("A01", "flatfield", "started", step_index=0, total_steps=4))
    assert progress.wells["A01"].label() == "flatfield (0/4)"
    assert "A01: flatfield" in progress.status_line()
    progress.handle(feed.well("A01", "flatfield", "completed", step_index=0, total_steps=4))
    progress.handle(feed.well("A01", "background", "completed", step_index=1, total_steps=4))
    assert progress.wells["A01"].percent == 50
    assert progress.percent == round(100 * 0.5 / 4)
    for well in WELLS:
        msgs = feed.whole_well(well)
        for msg in msgs:
            progress.handle(msg)
    assert all(w.state == "complete" and w.percent == 100 for w in progress.wells.values())
    assert progress.wells_done == 4 and progress.percent == 100
    progress.handle(feed.run("complete", message="4 complete, 0 failed, 0 cancelled"))
    assert progress.finished and progress.state == "complete"
    assert progress.status_line().endswith("4 complete, 0 failed, 0 cancelled")


def test_duplicate_and_replayed_messages_are_ignored():
    progress, feed = _run(), Feed()
    msgs = [feed.run("started"), *feed.whole_well("A01")[:3]]
    for msg in msgs:
        assert progress.handle(msg)
    before = (progress.wells["A01"].steps_done, progress.last_seq)
    for msg in msgs:  # a replay overlapping the live stream
        assert not progress.handle(msg)
    assert (progress.wells["A01"].steps_done, progress.last_seq) == before


def test_messages_of_another_run_are_not_applied():
    progress = _run()
    other = Feed("other")
    assert not progress.handle(other.well("A01", "pipeline", "started", total_steps=4))
    assert progress.wells["A01"].state == "pending"


def test_cancelled_run_marks_unfinished_wells_cancelled_and_stays_below_100():
    progress, feed = _run(), Feed()
    progress.handle(feed.run("started"))
    for msg in feed.whole_well("A01"):
        progress.handle(msg)
    progress.handle(feed.well("A02", "pipeline", "started", total_steps=4))
    progress.handle(feed.well("A02", "flatfield", "started", step_index=0, total_steps=4))
    progress.handle(feed.run("cancelling"))
    assert progress.state == "cancelling" and not progress.finished
    progress.handle(feed.well("A02", "pipeline", "cancelled"))
    progress.handle(feed.run("cancelled", message="1 complete, 0 failed, 1 cancelled"))
    assert progress.state == "cancelled"
    assert {w: p.state for w, p in progress.wells.items()} == {
        "A01": "complete", "A02": "cancelled", "B01": "cancelled", "B02": "cancelled"}
    assert progress.percent < 100
    # a late event after the end changes nothing
    assert not progress.handle(feed.well("B01", "pipeline", "started", total_steps=4))


def test_failed_well_keeps_error_and_traceback():
    progress, feed = _run(), Feed()
    progress.handle(feed.well("B02", "pipeline", "started", total_steps=len(STEPS)))
    progress.handle(feed.well("B02", "pipeline", "failed", error="RuntimeError: boom",
                              traceback="Traceback ...\nRuntimeError: boom"))
    well = progress.wells["B02"]
    assert well.state == "failed" and well.error == "RuntimeError: boom"
    assert "Traceback" in well.traceback
    assert "1 failed" in progress.status_line()


def test_wells_not_in_the_layout_are_added_as_they_appear():
    progress, feed = _run(), Feed()
    progress.handle(feed.well("C07", "pipeline", "started", total_steps=2))
    assert "C07" in progress.wells and progress.wells["C07"].state == "running"
