"""RunHistory on real SQLite files, the `openhcs history` command, and the paths it uses."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time

import pytest

from openhcs.cli import main
from openhcs.runtime import paths
from openhcs.runtime.history import INTERRUPTED_MESSAGE, RunHistory
from openhcs.runtime.runs import (
    CancelRequested,
    Finished,
    RunBook,
    RunRecord,
    RunState,
    Started,
    Submitted,
    WellProgress,
)


def make_book(base: float | None = None) -> RunBook:
    """Three runs: r-done (complete), r-fail (failed with traceback), r-live (running).

    Times are ``base`` + small offsets; ``base`` defaults to now so that a server process
    started before the test is old enough to own the runs.
    """
    t = time.time() if base is None else base
    book = RunBook()
    wells = {"wells": ["A01", "A02", "B01"]}
    book.handle(Submitted("r-done", t + 0, "req-1", "/plates/one", wells))
    book.handle(Started("r-done", t + 1))
    for well in ("A01", "A02"):
        book.handle(WellProgress("r-done", t + 2, well, "pipeline", "started", {}))
        book.handle(WellProgress("r-done", t + 3, well, "pipeline", "completed", {}))
    book.handle(WellProgress("r-done", t + 3, "B01", "pipeline", "cancelled", {}))
    book.handle(Finished("r-done", t + 90, "complete", "all good", {"status": "complete"}))

    book.handle(Submitted("r-fail", t + 1000, None, "/plates/two", wells))
    book.handle(Started("r-fail", t + 1001))
    book.handle(WellProgress("r-fail", t + 1002, "A01", "pipeline", "failed", {"error": "boom"}))
    book.handle(Finished("r-fail", t + 1003, "failed", "1 well failed", None,
                         error="ValueError: boom",
                         traceback='Traceback (most recent call last):\n  File "x.py"\nValueError: boom'))

    book.handle(Submitted("r-live", t + 2000, None, "/plates/three", wells))
    book.handle(Started("r-live", t + 2001))
    return book


def save_all(history: RunHistory, book: RunBook, pid: int) -> None:
    for record in book.records():
        assert history.save(record, pid) is True


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_save_get_list_round_trip(tmp_path):
    book = make_book()
    with RunHistory(tmp_path / "h.sqlite") as history:
        save_all(history, book, os.getpid())
        got = history.get("r-fail")
        assert got["state"] == "failed" and got["error"] == "ValueError: boom"
        assert got["traceback"].endswith("ValueError: boom")
        assert got["server_pid"] == os.getpid()
        assert got["wells"] == {"A01": "failed"}
        assert RunRecord.from_dict(got) == book.get("r-fail")
        assert history.get("missing") is None

        assert [r["execution_id"] for r in history.list()] == ["r-live", "r-fail", "r-done"]
        assert [r["execution_id"] for r in history.list(limit=1)] == ["r-live"]
        assert [r["execution_id"] for r in history.list(state="complete")] == ["r-done"]
        assert [r["execution_id"] for r in history.list(state=RunState.RUNNING)] == ["r-live"]

        # upsert: a later save of the same run replaces it
        book.handle(CancelRequested("r-live", 3002.0, None, False))
        assert history.save(book.get("r-live"), os.getpid())
        assert history.get("r-live")["state"] == "cancelling"
        assert len(history.list()) == 3
        assert history.match("r-") == ["r-live", "r-fail", "r-done"]
        assert history.match("r-d") == ["r-done"] and history.match("r_") == []


def test_mark_interrupted_with_a_dead_pid(tmp_path):
    book = make_book()
    book.handle(Submitted("r-queued", 3500.0, None, "/plates/four", {}))
    gone = dead_pid()
    with RunHistory(tmp_path / "h.sqlite") as history:
        save_all(history, book, gone)
        marked = history.mark_interrupted()
        assert sorted(marked) == ["r-live", "r-queued"]
        live = history.get("r-live")
        assert live["state"] == "interrupted" and live["message"] == INTERRUPTED_MESSAGE
        # the JSON snapshot agrees with the columns
        assert RunRecord.from_dict(live).state is RunState.INTERRUPTED
        assert history.get("r-done")["state"] == "complete"  # finished runs are left alone
        assert history.get("r-fail")["state"] == "failed"
        assert history.mark_interrupted() == []  # nothing left to mark


def test_mark_interrupted_leaves_runs_of_live_servers(tmp_path):
    book = make_book()
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                             stdin=subprocess.PIPE)
    try:
        with RunHistory(tmp_path / "h.sqlite") as history:
            save_all(history, book, child.pid)
            assert history.mark_interrupted() == []
            assert history.get("r-live")["state"] == "running"

            book.handle(Submitted("r-mine", 4000.0, None, "/plates/mine", {}))
            assert history.save(book.get("r-mine"), os.getpid())
            # our own runs are never marked, whatever the check says
            assert history.mark_interrupted(alive_pids=lambda pid: False) == ["r-live"]
            assert history.get("r-mine")["state"] == "queued"
    finally:
        child.stdin.close()
        child.wait()


def test_reused_pid_does_not_keep_a_run_alive(tmp_path):
    """A live process that started after the run was created cannot be its server."""
    book = RunBook()
    book.handle(Submitted("old", 1.0, None, "/p", {}))  # created in 1970
    parent = os.getppid()
    with RunHistory(tmp_path / "h.sqlite") as history:
        history.save(book.get("old"), parent)
        assert history.mark_interrupted() == ["old"]


def test_two_instances_share_one_file(tmp_path):
    path = tmp_path / "shared.sqlite"
    book = make_book()
    with RunHistory(path) as server_a, RunHistory(path) as server_b:
        assert server_a.save(book.get("r-done"), 111)
        assert server_b.get("r-done")["server_pid"] == 111
        assert server_b.save(book.get("r-live"), 222)
        assert [r["execution_id"] for r in server_a.list()] == ["r-live", "r-done"]
        assert server_a.mark_interrupted(alive_pids=lambda pid: pid == 111) == ["r-live"]
        assert server_b.get("r-live")["state"] == "interrupted"
        mode = server_a._db().execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"


def test_save_reports_failure_instead_of_raising(tmp_path, caplog):
    book = make_book()
    with RunHistory(tmp_path / "h.sqlite") as history:
        record = book.get("r-done")
        record.summary["padding"] = "x" * 200_000
        history._db().execute("PRAGMA max_page_count = 1")  # the file is "full"
        assert history.save(record, os.getpid()) is False
        assert "could not save run r-done" in caplog.text
    closed = RunHistory(tmp_path / "h2.sqlite")
    closed.close()
    closed.close()  # idempotent
    assert closed.save(book.get("r-done"), os.getpid()) is False


def test_cli_lists_and_shows_runs(isolated_dirs, capsys):
    book = make_book()
    with RunHistory() as history:  # default path: data_dir()/history.sqlite
        save_all(history, book, os.getpid())
    assert (isolated_dirs["data"] / "history.sqlite").exists()

    assert main(["history"]) == 0
    out = capsys.readouterr().out
    for text in ("r-done", "r-fail", "r-live", "/plates/one", "complete", "failed", "1m29s",
                 "2/0/1 of 3"):
        assert text in out, text
    assert out.index("r-live") < out.index("r-fail") < out.index("r-done")

    assert main(["history", "--state", "failed", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert [r["execution_id"] for r in runs] == ["r-fail"]

    assert main(["history", "r-fail"]) == 0
    out = capsys.readouterr().out
    assert "ValueError: boom" in out and "Traceback (most recent call last):" in out
    assert "1 well failed" in out and "boom" in out

    assert main(["history", "r-d", "--json"]) == 0  # unique prefix
    assert json.loads(capsys.readouterr().out)["message"] == "all good"

    assert main(["history", "r-"]) == 1  # ambiguous
    assert "several" in capsys.readouterr().err
    assert main(["history", "zzz"]) == 1
    assert "no recorded run" in capsys.readouterr().err


def test_cli_without_history_file(isolated_dirs, capsys):
    assert main(["history"]) == 0
    assert "No runs recorded yet" in capsys.readouterr().out
    assert not (isolated_dirs["data"] / "history.sqlite").exists()


def test_paths_follow_environment(isolated_dirs, tmp_path, monkeypatch):
    assert paths.runtime_dir() == isolated_dirs["runtime"]
    assert paths.data_dir() == isolated_dirs["data"]
    assert paths.log_dir() == isolated_dirs["data"] / "logs" and paths.log_dir().is_dir()
    fresh = tmp_path / "new" / "runtime"
    monkeypatch.setenv("OPENHCS_RUNTIME_DIR", str(fresh))
    assert paths.runtime_dir() == fresh
    assert stat.S_IMODE(fresh.stat().st_mode) & 0o077 == 0  # user-only


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX permissions")
def test_runtime_dir_falls_back_to_private_temp(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENHCS_RUNTIME_DIR", raising=False)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setattr(paths.platformdirs, "user_runtime_dir", lambda app: str(blocker / app))
    monkeypatch.setattr(paths.tempfile, "gettempdir", lambda: str(tmp_path))
    got = paths.runtime_dir()
    assert got.parent == tmp_path and got.name.startswith("openhcs-")
    assert stat.S_IMODE(got.stat().st_mode) == 0o700
