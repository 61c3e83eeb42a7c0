"""Deprecated: ``RemoteOrchestrator`` is a thin wrapper over :class:`ZMQExecutionClient`.

It used to carry its own socket code; every call now delegates to the client, which
adds signing, the handshake, progress streaming and cancellation. New code should use
``ZMQExecutionClient`` directly::

    client = ZMQExecutionClient(host='server-host', port=7777)
    client.connect()
    response = client.execute_pipeline(...)
    client.disconnect()
"""

from __future__ import annotations

import warnings
from typing import Any

from openhcs.runtime.zmq_execution_client import ZMQExecutionClient

_MESSAGE = ("openhcs.runtime.remote_orchestrator.RemoteOrchestrator is deprecated; "
            "use openhcs.runtime.zmq_execution_client.ZMQExecutionClient")

warnings.warn(_MESSAGE, DeprecationWarning, stacklevel=2)


class RemoteOrchestrator:
    """Deprecated. Runs pipelines on an execution server through ``ZMQExecutionClient``."""

    def __init__(self, server_host: str = "localhost", server_port: int = 7777, **client_kwargs: Any):
        warnings.warn(_MESSAGE, DeprecationWarning, stacklevel=2)
        self.server_host = server_host
        self.server_port = server_port
        self.client = ZMQExecutionClient(host=server_host, port=server_port, **client_kwargs)

    def run_remote_pipeline(self, plate_id, pipeline_steps, global_config=None, pipeline_config=None,
                            wells: list[str] | None = None, timeout: float | None = None,
                            **kwargs: Any) -> dict[str, Any]:
        """Run and wait; returns the client's response plus the legacy keys
        (``success``, ``output_plate_root``, ``execution_results``)."""
        warnings.warn(_MESSAGE, DeprecationWarning, stacklevel=2)
        if not self.client.connected:
            self.client.connect()
        response = self.client.execute_pipeline(
            plate_id=plate_id, pipeline_steps=pipeline_steps, global_config=global_config,
            pipeline_config=pipeline_config, wells=wells, timeout=timeout, **kwargs,
        )
        results = response.get("results") or {}
        response.setdefault("success", response["status"] == "complete")
        response.setdefault("output_plate_root", results.get("output_dir"))
        response.setdefault("execution_results", results)
        return response

    def cancel(self, execution_id: str, axis_ids: list[str] | None = None, force: bool = False) -> dict:
        return self.client.cancel_execution(execution_id, axis_ids=axis_ids, force=force)

    def get_status(self, execution_id: str | None = None) -> dict:
        return self.client.get_status(execution_id)

    def close(self) -> None:
        self.client.disconnect()

    def __enter__(self) -> RemoteOrchestrator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
