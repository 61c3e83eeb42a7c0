"""The shared controller must stay UI-free: importing it loads neither Qt nor Textual."""

import subprocess
import sys

CHECK = """
import sys
import openhcs.frontend, openhcs.frontend.controller, openhcs.frontend.execution
import openhcs.frontend.servers, openhcs.frontend.history, openhcs.frontend.results
import openhcs.frontend.designer
bad = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'textual', 'PyQt5', 'PyQt6'))
print(','.join(bad))
"""


def test_frontend_models_import_no_ui_toolkit():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_use_zmq_execution_env_switch(monkeypatch):
    from openhcs.frontend.execution import use_zmq_execution

    monkeypatch.delenv("OPENHCS_USE_ZMQ_EXECUTION", raising=False)
    assert use_zmq_execution()
    for off in ("false", "0", "No", "OFF"):
        monkeypatch.setenv("OPENHCS_USE_ZMQ_EXECUTION", off)
        assert not use_zmq_execution()
    monkeypatch.setenv("OPENHCS_USE_ZMQ_EXECUTION", "true")
    assert use_zmq_execution()
