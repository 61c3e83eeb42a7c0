"""`openhcs run` as a user runs it: a real subprocess, real plate, real Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from tests.core.plates import write_plate

PIPELINE = """
from openhcs.core.steps import FunctionStep
from openhcs.processing.diagnostics import {func}

pipeline_steps = [FunctionStep(func=({func}, {kwargs}), name="work")]
"""


def _pipeline(tmp_path, func, kwargs):
    path = tmp_path / f"{func}.py"
    path.write_text(textwrap.dedent(PIPELINE.format(func=func, kwargs=kwargs)))
    return path


def _openhcs(*args, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "openhcs", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw,
    )


def test_run_completes_with_exit_code_0(tmp_path):
    plate = write_plate(tmp_path / "plate")
    pipe = _pipeline(tmp_path, "mean_intensity", "{}")
    proc = _openhcs("run", str(plate), "--pipeline", str(pipe), "--workers", "2", "--wells", "A01,B02")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "run complete" in out and "2 complete" in out
    assert (tmp_path / "plate_outputs" / "measurements" / "B02.csv").exists()
    assert not (tmp_path / "plate_outputs" / "measurements" / "A02.csv").exists()


@pytest.mark.parametrize("args, message", [
    (["--wells", "Z99"], "wells not in plate"),
    (["--mode", "threads", "--workers", "0"], "num_workers"),
])
def test_bad_input_exits_2_with_a_clear_message(tmp_path, args, message):
    plate = write_plate(tmp_path / "plate")
    proc = _openhcs("run", str(plate), "--pipeline", str(_pipeline(tmp_path, "passthrough", "{}")), *args)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and message in err


def test_missing_plate_is_reported(tmp_path):
    proc = _openhcs("run", str(tmp_path / "nope"))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "nope" in err


def test_ctrl_c_cancels_gracefully_with_exit_code_3(tmp_path):
    plate = write_plate(tmp_path / "plate")
    pipe = _pipeline(tmp_path, "sleep_step", '{"seconds": 120}')
    proc = _openhcs("run", str(plate), "--pipeline", str(pipe), "--workers", "2",
                    env={**os.environ, "COLUMNS": "120"})
    # wait until a well has started its slow step, read from the live progress on stderr
    seen = ""
    while "work" not in seen:
        line = proc.stderr.readline()
        assert line, f"openhcs run ended early: {proc.stdout.read()}"
        seen += line
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    assert "run cancelled" in out and "6 cancelled" in out
