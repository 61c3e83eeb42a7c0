"""openhcs: high-content-screening pipelines, run locally or through a ZeroMQ execution server."""

__version__ = "0.1.0"
