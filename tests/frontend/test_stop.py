import pytest

from openhcs.frontend.stop import DONE, GIVE_UP, OFFER_FORCE, POLL, StopSequence


def test_run_that_stops_within_the_timeout_is_reported_as_graceful():
    stop = StopSequence("e1", started_at=100.0, timeout=5.0)
    assert stop.observe("cancelling", 100.25) == POLL
    assert stop.observe("running", 102.0) == POLL
    assert stop.observe("cancelled", 103.2) == DONE
    assert stop.state == "stopped" and not stop.active
    assert stop.message() == "Stopped gracefully in 3.2 s"


def test_run_still_running_after_5_s_offers_a_forced_kill():
    stop = StopSequence("e1", started_at=0.0, timeout=5.0)
    assert stop.observe("cancelling", 4.9) == POLL
    assert stop.observe("cancelling", 5.0) == OFFER_FORCE
    assert stop.state == "offer_force" and stop.can_force
    assert "Did not stop within 5 s" in stop.message()
    stop.force(6.0)
    assert stop.active and stop.observe("cancelling", 7.0) == POLL
    assert stop.observe("cancelled", 7.5) == DONE
    assert stop.state == "killed"
    assert stop.message() == "Killed by force in 7.5 s"


def test_forced_kill_that_does_not_end_the_run_gives_up_after_the_timeout():
    stop = StopSequence("e1", started_at=0.0, timeout=2.0)
    stop.force(0.5)  # the user may force before the offer
    assert stop.observe("cancelling", 2.4) == POLL  # counted from the force, not the start
    assert stop.observe("cancelling", 2.5) == GIVE_UP
    assert stop.state == "failed" and not stop.can_force
    with pytest.raises(RuntimeError):
        stop.force(3.0)


def test_run_that_finished_before_the_cancel_says_so():
    stop = StopSequence("e1", started_at=0.0)
    assert stop.observe("complete", 0.3) == DONE
    assert "ended (complete) before the cancel took effect" in stop.message()


def test_a_run_the_server_no_longer_knows_counts_as_stopped():
    stop = StopSequence("e1", started_at=0.0)
    assert stop.observe("not_found", 1.0) == DONE and stop.state == "stopped"


def test_observations_after_the_end_change_nothing():
    stop = StopSequence("e1", started_at=0.0)
    stop.observe("cancelled", 1.0)
    assert stop.observe("running", 2.0) == DONE and stop.ended_at == 1.0
