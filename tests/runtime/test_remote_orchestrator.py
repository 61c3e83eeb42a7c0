"""The deprecated RemoteOrchestrator: warns everywhere, delegates to ZMQExecutionClient."""

from __future__ import annotations

import importlib
import sys
import warnings

import openhcs_test_steps as steps
import pytest

from openhcs.core.config import GlobalPipelineConfig
from openhcs.runtime.zmq_execution_client import ZMQExecutionClient


def test_import_warns():
    sys.modules.pop("openhcs.runtime.remote_orchestrator", None)
    with pytest.warns(DeprecationWarning, match="ZMQExecutionClient"):
        importlib.import_module("openhcs.runtime.remote_orchestrator")


def test_construction_and_call_warn_and_delegate(server, plate):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the import warning is tested above
        from openhcs.runtime.remote_orchestrator import RemoteOrchestrator
    with pytest.warns(DeprecationWarning, match="deprecated"):
        orchestrator = RemoteOrchestrator("localhost", server.info.data_port)
    assert isinstance(orchestrator.client, ZMQExecutionClient)
    try:
        with pytest.warns(DeprecationWarning, match="deprecated"):
            response = orchestrator.run_remote_pipeline(
                plate_id=plate, pipeline_steps=steps.noop_pipeline(), wells=["A01"],
                global_config=GlobalPipelineConfig(num_workers=2),
            )
        assert orchestrator.client.server_process is None  # attached, did not spawn
        assert response["status"] == "complete" and response["success"] is True
        assert response["execution_results"]["completed"] == ["A01"]
        assert response["output_plate_root"] == response["results"]["output_dir"]
        status = orchestrator.get_status(response["execution_id"])
        assert status["execution"]["state"] == "complete"
        assert orchestrator.cancel(response["execution_id"])["status"] == "ok"
    finally:
        orchestrator.close()
    assert not orchestrator.client.connected
