"""Projection of a stack to one plane (z-stacks to a 2-D image)."""

from __future__ import annotations

import numpy as np

from openhcs.processing.normalization import check_stack
from openhcs.processing.registry import register

_METHODS = ("max", "mean", "min", "sum")


@register(category="projection")
def project_z(stack: np.ndarray, method: str = "max") -> np.ndarray:
    """Project the planes of ``stack`` into one float32 plane, shape ``(1, y, x)``.

    ``method`` is ``"max"`` (default), ``"mean"``, ``"min"`` or ``"sum"``.

    Example::

        >>> project_z(np.array([[[1, 5]], [[3, 2]]]), method="max").tolist()
        [[[3.0, 5.0]]]
    """
    arr = check_stack(stack)
    if method not in _METHODS:
        raise ValueError(f"unknown projection method {method!r}; choose from {_METHODS}")
    if method == "mean":
        out = arr.mean(axis=0, dtype=np.float64)
    elif method == "sum":
        out = arr.sum(axis=0, dtype=np.float64)
    else:
        out = getattr(arr, method)(axis=0)
    return out.astype(np.float32)[np.newaxis]
