"""The launcher process and the lifecycle module: start, ready line, signals, stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from openhcs.cli import main as cli_main
from openhcs.runtime.connection import connection_file_path, find_server
from openhcs.runtime.lifecycle import SpawnError, spawn_server, stop_process, stop_server
from openhcs.runtime.zmq_base import find_free_port, ping_server

from .conftest import wait_pid_gone


def test_ready_line_connection_file_and_default_log(server_factory, runtime_env):
    server = server_factory()
    info = server.info
    assert find_server(info.data_port) == info
    assert info.log_file == str(runtime_env["data"] / "logs" / f"server-{info.data_port}.log")
    assert "execution server pid" in open(info.log_file).read()
    assert ping_server(info, timeout=5).server_pid == server.pid


def test_sigterm_stops_gracefully_and_removes_the_file(server_factory, tmp_path):
    log_file = tmp_path / "custom.log"
    server = server_factory("--log-file", str(log_file))
    os.kill(server.pid, signal.SIGTERM)
    assert server.popen.wait(timeout=15) == 0
    assert not connection_file_path(server.info.data_port).exists()
    assert "stopped" in log_file.read_text()


def test_port_in_use_is_a_clear_spawn_error(server_factory):
    server = server_factory()
    with pytest.raises(SpawnError, match="cannot start"):
        spawn_server(server.info.data_port, timeout=30)
    assert ping_server(server.info, timeout=5) is not None


def test_stop_escalates_to_sigkill_for_a_wedged_server(server_factory):
    server = server_factory()
    os.kill(server.pid, signal.SIGSTOP)  # cannot answer, cannot handle SIGTERM
    how = stop_server(server.info, popen=server.popen, wait=0.5, term_wait=0.5)
    assert how == "killed"
    assert server.popen.returncode == -signal.SIGKILL


def test_stop_process_of_a_gone_pid(runtime_env):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert stop_process(proc.pid) == "not_running"


def test_owned_server_stops_when_its_parent_dies(runtime_env, tmp_path):
    """A non-persistent server watches its parent pid, so it never outlives its owner."""
    port = find_free_port()
    script = (
        "import json, sys\n"
        "from openhcs.runtime.lifecycle import spawn_server\n"
        f"proc = spawn_server({port})\n"
        "print(json.dumps({'pid': proc.pid}), flush=True)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                         check=True)
    server_pid = json.loads(out.stdout.strip().splitlines()[-1])["pid"]
    assert wait_pid_gone(server_pid, timeout=15)


def test_server_start_up_does_not_import_heavy_modules():
    code = (
        "import sys\n"
        "import openhcs.runtime.zmq_execution_server_launcher\n"
        "import openhcs.runtime.zmq_execution_server\n"
        "heavy = [m for m in ('numpy', 'scipy', 'skimage', 'openhcs.core.orchestrator.orchestrator',\n"
        "                     'openhcs.processing.filters') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_cli_start_status_logs_stop(runtime_env, capsys):
    port = find_free_port()
    assert cli_main(["server", "start", "--port", str(port), "--workers", "1"]) == 0
    info = find_server(port)
    assert info is not None and info.persistent
    try:
        assert cli_main(["server", "start", "--port", str(port)]) == 1  # already running
        assert cli_main(["server", "status", "--port", str(port)]) == 0
        assert f"server pid {info.pid}" in capsys.readouterr().out
        assert cli_main(["server", "logs", "--port", str(port)]) == 0
        assert "execution server pid" in capsys.readouterr().out
        assert cli_main(["cancel", "no-such-run", "--port", str(port)]) == 1
    finally:
        assert cli_main(["server", "stop", "--port", str(port)]) == 0
    assert wait_pid_gone(info.pid, timeout=15)
    assert cli_main(["server", "stop", "--port", str(port)]) == 1
    assert cli_main(["server", "status", "--port", str(port)]) == 1


def test_cli_keys_creates_curve_certificates(runtime_env, capsys):
    assert cli_main(["server", "keys"]) == 0
    keys = runtime_env["data"] / "keys"
    assert (keys / "server.key_secret").exists() and (keys / "authorized" / "client.key").exists()
    assert oct((keys / "server.key_secret").stat().st_mode & 0o777) == "0o600"
    assert cli_main(["server", "keys"]) == 0
    assert "existing" in capsys.readouterr().out
