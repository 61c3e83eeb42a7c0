"""Image processing functions for openhcs pipelines.

Importing this package is cheap on purpose: every worker process imports
``openhcs.processing.checkpoint``, and the built-in modules pull in scipy and
scikit-image (1-2 s). The function names below are loaded on first access, and
:func:`~openhcs.processing.registry.list_functions` / ``get_function`` import every built-in
module before answering, so registration is complete whenever the registry is asked.
Plugins are loaded explicitly with :func:`~openhcs.processing.registry.load_plugins`.
"""

from __future__ import annotations

import importlib
from typing import Any

from openhcs.processing.checkpoint import StepCancelled, cancellation_scope, checkpoint
from openhcs.processing.registry import (
    FunctionInfo,
    ParamInfo,
    get_function,
    list_functions,
    load_plugins,
    register,
)

_LAZY = {
    "correct_flatfield": "openhcs.processing.flatfield",
    "denoise": "openhcs.processing.filters",
    "estimate_flatfield": "openhcs.processing.flatfield",
    "measure_nuclei": "openhcs.processing.measurement",
    "normalize_percentile": "openhcs.processing.normalization",
    "project_z": "openhcs.processing.projection",
    "segment_nuclei": "openhcs.processing.segmentation",
    "stitch_sites": "openhcs.processing.stitching",
    "subtract_background": "openhcs.processing.filters",
}

__all__ = [
    "FunctionInfo",
    "ParamInfo",
    "StepCancelled",
    "cancellation_scope",
    "checkpoint",
    "get_function",
    "list_functions",
    "load_plugins",
    "register",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'openhcs.processing' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
