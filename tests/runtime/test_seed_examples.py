"""The seed specification's usage examples, run verbatim against real servers.

The code blocks below are copied from ``spec/seed-zmq-execution-pattern.md``. Only the
plate path and the elided arguments (``...``) are filled in, and the remote examples'
``'server-host'`` becomes ``'localhost'``. They use port 7777 as written; the
``isolated_dirs`` fixture keeps their connection files private, and every server they
start is stopped by its pid.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from openhcs.runtime.connection import find_server
from openhcs.runtime.lifecycle import stop_server
from openhcs.runtime.zmq_base import find_free_port, port_is_free

REPO = Path(__file__).resolve().parents[2]

BASIC = '''
from openhcs.runtime.zmq_execution_client import ZMQExecutionClient

# Create client (spawns server if needed)
client = ZMQExecutionClient(port=7777, persistent=False)
client.connect(timeout=15)

# Execute pipeline
response = client.execute_pipeline(
    plate_id="/path/to/plate",
    pipeline_steps=pipeline_steps,
    global_config=global_config,
    pipeline_config=pipeline_config
)

# Check result
if response['status'] == 'complete':
    print("Execution completed successfully")
else:
    print(f"Execution failed: {response['message']}")

# Cleanup
client.disconnect()
'''

WITH_PROGRESS = '''
def on_progress(message):
    well_id = message.get('well_id', 'unknown')
    step = message.get('step', 'unknown')
    status = message.get('status', 'unknown')
    print(f"[{well_id}] {step}: {status}")

client = ZMQExecutionClient(
    port=7777,
    progress_callback=on_progress
)
client.connect()
response = client.execute_pipeline(...)
client.disconnect()
'''

WITH_CANCELLATION = '''
client = ZMQExecutionClient(port=7777)
client.connect()

# Start execution (in background thread)
response = client.execute_pipeline(...)
execution_id = response['execution_id']

# Cancel if needed
cancel_response = client.cancel_execution(execution_id)
if cancel_response['status'] == 'ok':
    print("Cancellation requested")

client.disconnect()
'''

OLD_PATTERN = '''
from openhcs.runtime.remote_orchestrator import RemoteOrchestrator

orchestrator = RemoteOrchestrator('server-host', 7777)
response = orchestrator.run_remote_pipeline(...)
'''

NEW_PATTERN = '''
from openhcs.runtime.zmq_execution_client import ZMQExecutionClient

client = ZMQExecutionClient(host='server-host', port=7777)
client.connect()
response = client.execute_pipeline(...)
client.disconnect()
'''

ARGS = "plate_id=PLATE, pipeline_steps=pipeline_steps, global_config=global_config, " \
       "pipeline_config=pipeline_config"


def fill(snippet: str) -> str:
    return (snippet.replace('"/path/to/plate"', "PLATE")
            .replace("execute_pipeline(...)", f"execute_pipeline({ARGS})")
            .replace("run_remote_pipeline(...)", f"run_remote_pipeline({ARGS})")
            .replace("'server-host'", "'localhost'"))


@pytest.fixture
def seed_namespace(runtime_env, tmp_path):
    """Port 7777 as in the seed (skipped if something else holds it), a demo plate, the
    demo pipeline; any server left on 7777 is stopped by pid afterwards."""
    if not (port_is_free(7777) and port_is_free(8777)):
        pytest.skip("port 7777/8777 is in use on this machine")
    from openhcs.core.config import GlobalPipelineConfig, PipelineConfig
    from openhcs.demo.pipeline import default_pipeline
    from openhcs.demo.plate import make_demo_plate

    plate = tmp_path / "plate"
    make_demo_plate(plate, rows=1, cols=3, image_size=96)
    namespace = {
        "PLATE": str(plate),
        "pipeline_steps": list(default_pipeline()),
        "global_config": GlobalPipelineConfig(num_workers=2, mode="processes"),
        "pipeline_config": PipelineConfig(materialization_format="none"),
    }
    yield namespace
    info = find_server(7777)
    if info is not None:
        stop_server(info)


def run(snippet: str, namespace: dict) -> dict:
    exec(compile(fill(snippet), "<seed example>", "exec"), namespace)
    return namespace


def test_basic_execution(seed_namespace, capsys):
    ns = run(BASIC, seed_namespace)
    assert "Execution completed successfully" in capsys.readouterr().out
    assert ns["response"]["status"] == "complete"
    assert find_server(7777) is None  # the client owned the server it spawned and stopped it


def test_with_progress_callback(seed_namespace, capsys):
    from openhcs.runtime.zmq_execution_client import ZMQExecutionClient

    seed_namespace["ZMQExecutionClient"] = ZMQExecutionClient
    ns = run(WITH_PROGRESS, seed_namespace)
    out = capsys.readouterr().out
    assert ns["response"]["status"] == "complete"
    for well in ("A01", "A02", "A03"):
        assert f"[{well}] pipeline: started" in out and f"[{well}] pipeline: completed" in out
        assert f"[{well}] measure: completed" in out
    assert find_server(7777) is None


def test_with_cancellation(seed_namespace, capsys):
    from openhcs.runtime.zmq_execution_client import ZMQExecutionClient

    seed_namespace["ZMQExecutionClient"] = ZMQExecutionClient
    ns = run(WITH_CANCELLATION, seed_namespace)
    assert "Cancellation requested" in capsys.readouterr().out
    assert ns["cancel_response"]["status"] == "ok"
    assert find_server(7777) is None


def test_new_pattern(seed_namespace):
    ns = run(NEW_PATTERN, seed_namespace)
    assert ns["response"]["status"] == "complete"


def test_old_pattern_remote_orchestrator(seed_namespace):
    sys.modules.pop("openhcs.runtime.remote_orchestrator", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ns = run(OLD_PATTERN, seed_namespace)
    try:
        assert ns["response"]["status"] == "complete" and ns["response"]["success"] is True
        deprecations = [w for w in caught if issubclass(w.category, DeprecationWarning)
                        and "RemoteOrchestrator" in str(w.message)]
        assert len(deprecations) >= 3  # import, construction, call
    finally:
        ns["orchestrator"].close()  # the example never disconnects; stop its owned server
    assert find_server(7777) is None


@pytest.mark.parametrize("script", ["test_zmq_execution_pattern.py", "test_zmq_with_real_plate.py"])
def test_example_scripts_run(runtime_env, script):
    port = find_free_port()
    args = [sys.executable, str(REPO / "examples" / script), "--port", str(port)]
    if script == "test_zmq_with_real_plate.py":
        args += ["--rows", "1", "--cols", "3"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=240, cwd=REPO)
    assert out.returncode == 0, out.stdout + out.stderr
    assert find_server(port) is None
    if script == "test_zmq_execution_pattern.py":
        assert "PASS" in out.stdout and "FAIL" not in out.stdout
    else:
        assert "run complete" in out.stdout


def test_every_name_the_seed_promises_exists():
    import inspect

    from openhcs.codegen import pickle_to_python
    from openhcs.core.orchestrator.orchestrator import PipelineOrchestrator
    from openhcs.runtime import zmq_base, zmq_execution_server_launcher
    from openhcs.runtime.zmq_execution_client import ZMQExecutionClient
    from openhcs.runtime.zmq_execution_server import ZMQExecutionServer

    assert inspect.isabstract(zmq_base.ZMQServer) and inspect.isabstract(zmq_base.ZMQClient)
    assert issubclass(ZMQExecutionServer, zmq_base.ZMQServer)
    assert issubclass(ZMQExecutionClient, zmq_base.ZMQClient)
    for name in ("send_progress_update", "_handle_cancel", "_handle_execute", "_handle_status"):
        assert callable(getattr(ZMQExecutionServer, name))
    for name in ("connect", "disconnect", "execute_pipeline", "submit_pipeline", "wait_for_completion",
                 "get_status", "cancel_execution", "get_events", "attach", "ping", "shutdown_server"):
        assert callable(getattr(ZMQExecutionClient, name))
    params = inspect.signature(ZMQExecutionClient).parameters
    assert params["host"].default == "localhost" and params["port"].default == 7777
    assert params["persistent"].default is False and params["progress_callback"].default is None
    assert callable(zmq_execution_server_launcher.main)
    assert "progress_callback" in inspect.signature(PipelineOrchestrator).parameters
    for name in ("cancel", "reset_cancellation"):
        assert callable(getattr(PipelineOrchestrator, name))
    assert callable(pickle_to_python)
    for kind in ("ping", "execute", "status", "cancel", "progress"):
        from openhcs.runtime.protocol import TYPE_NAMES

        assert kind in TYPE_NAMES
