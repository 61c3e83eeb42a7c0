"""The server manager's model: servers found by their connection files, start/stop/kill.

Discovery is ``connection.find_servers()`` (never a port scan); each live server is asked
for its facts with one signed ping. Stopping goes through ``lifecycle`` by recorded pid:
``stop`` asks politely then escalates, ``kill`` skips straight to signals.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from openhcs.runtime import lifecycle
from openhcs.runtime.connection import ConnectionInfo, find_servers, remove_connection_file


@dataclass
class ServerRow:
    info: ConnectionInfo
    reachable: bool
    active_runs: int = 0
    queued_runs: int = 0

    @property
    def port(self) -> int:
        return self.info.data_port

    @property
    def pid(self) -> int:
        return self.info.pid

    @property
    def uptime_s(self) -> float:
        return max(0.0, time.time() - self.info.started_at)

    def cells(self) -> tuple[str, ...]:
        """port, pid, uptime, active, queued, state — as the tables show them."""
        return (str(self.port), str(self.pid), format_duration(self.uptime_s),
                str(self.active_runs), str(self.queued_runs),
                ("persistent" if self.info.persistent else "owned")
                + ("" if self.reachable else ", not answering"))


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


SERVER_COLUMNS = ("port", "pid", "uptime", "active", "queued", "kind")


class ServerManager:
    """Lists servers and starts/stops them. Servers started here are reaped here."""

    def __init__(self, ping_timeout: float = 0.5):
        self.ping_timeout = ping_timeout
        self.rows: list[ServerRow] = []
        self._started: dict[int, lifecycle.ServerProcess] = {}

    def refresh(self) -> list[ServerRow]:
        from openhcs.runtime.zmq_base import ping_server

        rows = []
        for info in find_servers():
            pong = ping_server(info, timeout=self.ping_timeout)
            rows.append(ServerRow(info, pong is not None,
                                  pong.active_runs if pong else 0, pong.queued_runs if pong else 0))
        self.rows = rows
        return rows

    def start(self, port: int | None = None, persistent: bool = True,
              args: list[str] | None = None) -> ConnectionInfo:
        """Start a server on ``port`` (a free one if None); returns once it is bound."""
        from openhcs.runtime.zmq_base import find_free_port

        proc = lifecycle.spawn_server(port or find_free_port(), persistent=persistent, args=args)
        self._started[proc.pid] = proc
        return proc.info

    def stop(self, info: ConnectionInfo) -> str:
        """Graceful: shutdown request → wait → SIGTERM → SIGKILL. Returns how it ended."""
        proc = self._started.pop(info.pid, None)
        return lifecycle.stop_server(info, popen=proc.popen if proc else None)

    def kill(self, info: ConnectionInfo) -> str:
        """Forced: signals only, no request (for a wedged server)."""
        proc = self._started.pop(info.pid, None)
        outcome = lifecycle.stop_process(info.pid, proc.popen if proc else None, ask=None,
                                         term_wait=0.5, create_time=info.pid_create_time)
        remove_connection_file(info.data_port, info.pid)
        return outcome

    def close(self) -> None:
        """Stop the non-persistent servers this manager started."""
        for pid, proc in list(self._started.items()):
            if not proc.info.persistent:
                lifecycle.stop_server(proc.info, popen=proc.popen)
                self._started.pop(pid, None)
