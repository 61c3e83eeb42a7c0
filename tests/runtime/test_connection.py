"""Connection files: user-only, atomic, discoverable, stale ones removed."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

from openhcs.runtime.connection import (
    ConnectionInfo,
    connection_file_path,
    find_server,
    find_servers,
    is_alive,
    new_key,
    pid_alive,
    process_create_time,
    read_connection_file,
    remove_connection_file,
    write_connection_file,
)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def info_for(port: int, pid: int | None = None) -> ConnectionInfo:
    pid = os.getpid() if pid is None else pid
    return ConnectionInfo(host="127.0.0.1", data_port=port, control_port=port + 1000, pid=pid,
                          key=new_key(), pid_create_time=process_create_time(pid))


def test_written_user_only_and_read_back(isolated_dirs):
    info = info_for(40001)
    path = write_connection_file(info)
    assert path == isolated_dirs["runtime"] / "server-40001.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert {"host", "data_port", "control_port", "pid", "key", "transport", "started_at", "version",
            "curve_public_key"} <= set(data)
    assert read_connection_file(path) == info
    assert info.control_endpoint == "tcp://127.0.0.1:41001"
    assert not list(isolated_dirs["runtime"].glob(".*.tmp"))


def test_find_servers_skips_and_removes_stale_files(isolated_dirs):
    live = info_for(40002)
    stale = info_for(40003, pid=dead_pid())
    write_connection_file(live)
    write_connection_file(stale)
    (isolated_dirs["runtime"] / "server-40004.json").write_text("{not json")
    found = find_servers()
    assert [i.data_port for i in found] == [40002]
    assert not connection_file_path(40003).exists()
    assert find_server(40002) == live
    assert find_server(40003) is None


def test_reused_pid_is_not_mistaken_for_the_server(isolated_dirs):
    info = info_for(40005)
    info.pid_create_time -= 3600  # the recorded process started an hour earlier
    assert not pid_alive(info.pid, info.pid_create_time)
    write_connection_file(info)
    assert find_server(40005) is None


def test_remove_only_own_file(isolated_dirs):
    info = info_for(40006)
    write_connection_file(info)
    remove_connection_file(40006, pid=info.pid + 1)  # somebody else's server now
    assert connection_file_path(40006).exists()
    remove_connection_file(40006, pid=info.pid)
    assert not connection_file_path(40006).exists()


def test_is_alive_with_ping_against_a_real_server(server):
    assert is_alive(server.info)
    assert is_alive(server.info, ping=True, timeout=5)
    fake = info_for(server.info.data_port + 7)  # our own pid, but nothing listens
    assert is_alive(fake) and not is_alive(fake, ping=True, timeout=0.3)
