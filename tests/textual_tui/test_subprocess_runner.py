"""The deprecated subprocess runner still runs a plate and reports progress by log lines."""

from __future__ import annotations

import json

import pytest

from openhcs.textual_tui import subprocess_runner
from tests.frontend.fixtures import demo_plate, threads_config


def test_legacy_runner_runs_a_tiny_plate_with_progress_lines_and_completion(tmp_path):
    plate = demo_plate(tmp_path, rows=1, cols=2)
    from openhcs.demo.pipeline import default_pipeline

    seen: list[dict] = []
    with pytest.warns(DeprecationWarning, match="deprecated"):
        run = subprocess_runner.start_run(plate, list(default_pipeline()), threads_config(),
                                          on_message=seen.append, work_dir=tmp_path / "runs")
    try:
        assert run.wait(timeout=120), "runner did not finish"
    finally:
        run.close()
    assert run.popen.returncode == 0
    lines = [json.loads(line) for line in run.log_file.read_text().splitlines()]
    assert lines == seen  # the UI got exactly what the runner wrote
    assert [m["seq"] for m in seen] == list(range(1, len(seen) + 1))
    steps = {(m["well_id"], m["step"], m["status"]) for m in seen if m["type"] == "progress"}
    for well in ("A01", "A02"):
        assert (well, "pipeline", "started") in steps and (well, "measure", "completed") in steps
        assert (well, "pipeline", "completed") in steps
    assert seen[0]["status"] == "started" and seen[-1]["type"] == "run"
    assert seen[-1]["status"] == "complete" and run.state == "complete"
    assert run.results["completed"] == ["A01", "A02"]


def test_legacy_runner_stop_signals_the_process_and_reports_cancelled(tmp_path):
    from tests.frontend.fixtures import slow_pipeline_file

    plate = demo_plate(tmp_path, rows=1, cols=1)
    from openhcs.codegen import load_pipeline_file

    steps = load_pipeline_file(slow_pipeline_file(tmp_path, seconds=30))
    seen: list[dict] = []
    with pytest.warns(DeprecationWarning):
        run = subprocess_runner.start_run(plate, steps, threads_config(1), on_message=seen.append,
                                          work_dir=tmp_path / "runs")
    try:
        # wait (on the tail's own event stream, no sleeps) for the well to be running
        import threading

        running = threading.Event()
        run.on_message = lambda m: (seen.append(m), m.get("step") == "sleep" and running.set())
        assert running.wait(60) or any(m.get("step") == "sleep" for m in seen)
        run.cancel()
        assert run.wait(timeout=30)
    finally:
        run.close()
    assert run.state == "cancelled"
