"""Shared fixtures. Every test is checked for leaked child processes and threads."""

from __future__ import annotations

import os
import threading

import psutil
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


# multiprocessing starts one resource tracker per interpreter and keeps it for good.
_INTERPRETER_HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")


def _children() -> set[int]:
    pids = set()
    for proc in psutil.Process().children(recursive=True):
        try:
            cmdline = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        if not any(helper in cmdline for helper in _INTERPRETER_HELPERS):
            pids.add(proc.pid)
    return pids


@pytest.fixture(autouse=True)
def no_leaks(request):
    """Fail a test that leaves child processes or non-daemon threads behind."""
    before_procs = _children()
    before_threads = set(threading.enumerate())
    yield
    if request.node.get_closest_marker("allow_leaks"):
        return
    leaked_threads = [
        t for t in threading.enumerate() if t not in before_threads and t.is_alive() and not t.daemon
    ]
    for t in leaked_threads:
        t.join(timeout=5)
    leaked_threads = [t for t in leaked_threads if t.is_alive()]
    new_procs = []
    for pid in _children() - before_procs:
        try:
            proc = psutil.Process(pid)
            proc.wait(timeout=5)
        except psutil.NoSuchProcess:
            continue
        except psutil.TimeoutExpired:
            new_procs.append(pid)
    assert not leaked_threads, f"leaked threads: {leaked_threads}"
    assert not new_procs, f"leaked child processes: {new_procs}"


@pytest.fixture
def isolated_dirs(tmp_path, monkeypatch):
    """Point openhcs's runtime, data and log folders at a per-test temp dir."""
    runtime = tmp_path / "runtime"
    data = tmp_path / "data"
    runtime.mkdir()
    data.mkdir()
    monkeypatch.setenv("OPENHCS_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("OPENHCS_DATA_DIR", str(data))
    return {"runtime": runtime, "data": data}
