"""Plates, pipeline files and a controller wired to a real execution server, for the
front-end tests (controller, Qt and Textual)."""

from __future__ import annotations

from pathlib import Path

import psutil

SLEEP_PIPELINE = '''from openhcs.core.steps import FunctionStep
from openhcs.processing.diagnostics import {func}

pipeline_steps = [
    FunctionStep(func=({func}, {{"seconds": {seconds}}}), name="{name}",
                 variable_components=("site",), group_by="channel"),
]
'''


def demo_plate(tmp_path: Path, rows: int = 2, cols: int = 2) -> Path:
    from openhcs.demo.plate import make_demo_plate

    return make_demo_plate(tmp_path / "plate", rows=rows, cols=cols).path


def slow_pipeline_file(tmp_path: Path, seconds: float = 30.0, func: str = "sleep_step",
                       name: str = "sleep") -> Path:
    """A pipeline file whose one step takes ``seconds`` per channel group (cooperative
    ``sleep_step``, or ``ignore_cancel_step`` which only a kill stops)."""
    path = tmp_path / f"{name}_pipeline.py"
    path.write_text(SLEEP_PIPELINE.format(func=func, seconds=seconds, name=name))
    return path


def threads_config(workers: int = 2):
    from openhcs.core.config import GlobalPipelineConfig

    return GlobalPipelineConfig(num_workers=workers, mode="threads")


def free_port() -> int:
    from openhcs.runtime.zmq_base import find_free_port

    return find_free_port()


def assert_gone(pid: int | None) -> None:
    """The server a test spawned must be gone (reaped) after the UI closed."""
    if pid is None:
        return
    try:
        proc = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    assert proc.status() == psutil.STATUS_ZOMBIE or not proc.is_running(), f"server {pid} still runs"


FAIL_PIPELINE = '''from openhcs.core.steps import FunctionStep
from openhcs.processing.diagnostics import fail_step

pipeline_steps = [
    FunctionStep(func=(fail_step, {"marker": 4095}), name="fail",
                 variable_components=("site",), group_by="channel"),
]
'''


def plate_with_failing_well(tmp_path: Path) -> tuple[Path, Path]:
    """A 2-well plate whose A02 holds the marker, and a pipeline failing marked stacks."""
    from tests.core.plates import write_plate

    plate = write_plate(tmp_path / "marked_plate", wells=("A01", "A02"), marked=("A02",))
    pipeline = tmp_path / "fail_pipeline.py"
    pipeline.write_text(FAIL_PIPELINE)
    return plate, pipeline
