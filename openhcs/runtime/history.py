"""Run history in SQLite, so what happened to a run outlives the server that ran it.

The execution server saves a run's record whenever it changes state; ``openhcs history``
and other servers read the same file. Several processes may use one file at once: the
database is in WAL mode (readers never block the writer) and every connection waits for
locks instead of failing at once. A server that dies leaves its runs "running" forever,
so at start-up a server calls ``mark_interrupted()``: runs whose owning server process is
gone are marked ``interrupted``.

History is a record, not the source of truth for a live run: a failed write (full disk,
locked file) is logged and reported as ``False`` and never raises into the server's loop.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from openhcs.runtime.paths import data_dir
from openhcs.runtime.runs import TERMINAL_STATES, RunRecord, RunState

log = logging.getLogger(__name__)

HISTORY_FILE = "history.sqlite"
INTERRUPTED_MESSAGE = "server stopped before the run finished"
BUSY_TIMEOUT_S = 10.0
_ACTIVE_STATES = tuple(s.value for s in RunState if s not in TERMINAL_STATES)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    execution_id TEXT PRIMARY KEY,
    request_id   TEXT,
    plate_id     TEXT,
    state        TEXT NOT NULL,
    created_at   REAL,
    started_at   REAL,
    finished_at  REAL,
    message      TEXT,
    error        TEXT,
    traceback    TEXT,
    record_json  TEXT,
    server_pid   INTEGER,
    updated_at   REAL
);
CREATE INDEX IF NOT EXISTS runs_created ON runs (created_at);
CREATE INDEX IF NOT EXISTS runs_state ON runs (state);
"""

_COLUMNS = (
    "execution_id", "request_id", "plate_id", "state", "created_at", "started_at",
    "finished_at", "message", "error", "traceback", "record_json", "server_pid", "updated_at",
)

_UPSERT = f"""
INSERT INTO runs ({", ".join(_COLUMNS)}) VALUES ({", ".join("?" * len(_COLUMNS))})
ON CONFLICT(execution_id) DO UPDATE SET
{", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[1:])}
"""


def default_history_path() -> Path:
    return data_dir() / HISTORY_FILE


def _pid_alive(pid: int, created_at: float | None) -> bool:
    """True if ``pid`` is running and is old enough to have created the run.

    A process that started after the run was created cannot be its server: the pid was
    reused after the server died.
    """
    if not psutil.pid_exists(pid):
        return False
    if created_at is None:
        return True
    try:
        return psutil.Process(pid).create_time() <= created_at + 1.0
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:  # e.g. AccessDenied: it exists, assume alive
        return True


class RunHistory:
    """The ``runs`` table of one SQLite file (default ``data_dir()/history.sqlite``).

    One connection per instance, shared by threads under a lock; use one instance per
    process (or several: they behave like separate processes). ``close()`` when done.
    """

    def __init__(self, path: Path | str | None = None, *, timeout: float = BUSY_TIMEOUT_S):
        self.path = Path(path) if path is not None else default_history_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            self.path, timeout=timeout, isolation_level=None, check_same_thread=False
        )
        try:
            self._conn.row_factory = sqlite3.Row
            self._conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.executescript(_SCHEMA)
        except BaseException:
            self._conn.close()
            self._conn = None
            raise

    # ---- lifecycle
    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> RunHistory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"run history {self.path} is closed")
        return self._conn

    # ---- writes
    def save(self, record: RunRecord, server_pid: int) -> bool:
        """Insert or update ``record``; False (and a logged error) if it could not be written."""
        try:
            data = record.to_dict()
            row = (
                record.execution_id, record.request_id, record.plate_id, record.state.value,
                record.created_at, record.started_at, record.finished_at, record.message,
                record.error, record.traceback, json.dumps(data, default=str), server_pid,
                record.updated_at if record.updated_at is not None else time.time(),
            )
            with self._lock:
                self._db().execute(_UPSERT, row)
            return True
        except (sqlite3.Error, RuntimeError, TypeError, ValueError) as exc:
            log.error("could not save run %s to %s: %s", record.execution_id, self.path, exc)
            return False

    def mark_interrupted(self, alive_pids: Callable[[int], bool] | None = None) -> list[str]:
        """Mark runs left unfinished by a dead server as ``interrupted``; return their ids.

        A run counts as orphaned when its ``server_pid`` is missing or not alive. The
        default check uses psutil (and rejects a reused pid that started after the run);
        runs owned by this very process are never touched.
        """
        own = os.getpid()
        marked: list[str] = []
        now = time.time()
        try:
            with self._lock:
                db = self._db()
                db.execute("BEGIN IMMEDIATE")
                try:
                    rows = db.execute(
                        f"SELECT execution_id, server_pid, created_at, record_json FROM runs "
                        f"WHERE state IN ({', '.join('?' * len(_ACTIVE_STATES))})",
                        _ACTIVE_STATES,
                    ).fetchall()
                    for row in rows:
                        pid = row["server_pid"]
                        if pid == own:
                            continue
                        if pid is not None:
                            alive = alive_pids(pid) if alive_pids else _pid_alive(pid, row["created_at"])
                            if alive:
                                continue
                        db.execute(
                            "UPDATE runs SET state = ?, message = ?, record_json = ?, updated_at = ? "
                            "WHERE execution_id = ?",
                            (RunState.INTERRUPTED.value, INTERRUPTED_MESSAGE,
                             _interrupted_json(row["record_json"], now), now, row["execution_id"]),
                        )
                        marked.append(row["execution_id"])
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
        except (sqlite3.Error, RuntimeError) as exc:
            log.error("could not mark interrupted runs in %s: %s", self.path, exc)
            return []
        if marked:
            log.warning("marked %d run(s) interrupted: %s", len(marked), ", ".join(marked))
        return marked

    # ---- reads
    def get(self, execution_id: str) -> dict[str, Any] | None:
        """One run as a dict (the record's ``to_dict()`` plus ``server_pid``), or None."""
        with self._lock:
            row = self._db().execute(
                "SELECT * FROM runs WHERE execution_id = ?", (execution_id,)
            ).fetchone()
        return None if row is None else _row_to_dict(row)

    def match(self, prefix: str, limit: int = 10) -> list[str]:
        """Execution ids starting with ``prefix`` (for short ids typed by people)."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        with self._lock:
            rows = self._db().execute(
                "SELECT execution_id FROM runs WHERE execution_id LIKE ? ESCAPE '\\' "
                "ORDER BY created_at DESC LIMIT ?",
                (escaped + "%", limit),
            ).fetchall()
        return [r["execution_id"] for r in rows]

    def list(self, limit: int = 50, state: str | None = None) -> list[dict[str, Any]]:
        """The newest ``limit`` runs (optionally only those in ``state``), newest first."""
        query, params = "SELECT * FROM runs", []
        if state is not None:
            query += " WHERE state = ?"
            params.append(str(state))
        query += " ORDER BY created_at DESC, rowid DESC LIMIT ?"
        params.append(max(0, int(limit)))
        with self._lock:
            rows = self._db().execute(query, params).fetchall()
        return [_row_to_dict(r) for r in rows]


def _interrupted_json(record_json: str | None, now: float) -> str | None:
    if not record_json:
        return record_json
    try:
        data = json.loads(record_json)
    except ValueError:
        return record_json
    data.update(state=RunState.INTERRUPTED.value, message=INTERRUPTED_MESSAGE, updated_at=now)
    return json.dumps(data)


def _row_to_dict(row: sqlite3.Row) -> dict[str, Any]:
    """The stored record, with the columns (kept current by updates) taking precedence."""
    data: dict[str, Any] = {}
    if row["record_json"]:
        try:
            data = json.loads(row["record_json"])
        except ValueError:
            log.warning("unreadable record_json for run %s", row["execution_id"])
    for column in _COLUMNS:
        if column != "record_json":
            data[column] = row[column]
    return data
