"""Intensity normalisation, plus the stack checks every processing module shares.

Microscope images arrive as uint8/uint16/float of any range; processing works in float32
so results are comparable across dtypes and plates. ``as_float_stack`` is the single place
that validates the ``(n, y, x)`` contract and makes the private float copy that lets every
function leave its input untouched.
"""

from __future__ import annotations

import numpy as np

from openhcs.processing.checkpoint import checkpoint
from openhcs.processing.registry import register


def check_stack(stack: np.ndarray) -> np.ndarray:
    """Return ``stack`` as an array, raising ``ValueError`` unless it is 3-D and non-empty."""
    arr = np.asarray(stack)
    if arr.ndim != 3:
        raise ValueError(f"expected a 3-D stack (n, y, x), got an array of shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"expected a non-empty stack, got shape {arr.shape}")
    return arr


def as_float_stack(stack: np.ndarray) -> np.ndarray:
    """A new float32 copy of a validated ``(n, y, x)`` stack."""
    return check_stack(stack).astype(np.float32, copy=True)


@register(category="normalization")
def normalize_percentile(stack: np.ndarray, low: float = 1.0, high: float = 99.8) -> np.ndarray:
    """Rescale each plane so its ``low``..``high`` percentiles map to 0..1 (clipped), float32.

    A constant plane becomes all zeros.

    Example::

        >>> normalize_percentile(np.arange(5, dtype=np.uint16).reshape(1, 1, 5), 0, 100).tolist()
        [[[0.0, 0.25, 0.5, 0.75, 1.0]]]
    """
    if not 0.0 <= low < high <= 100.0:
        raise ValueError(f"need 0 <= low < high <= 100, got low={low}, high={high}")
    out = as_float_stack(stack)
    for plane in out:
        checkpoint()
        lo, hi = np.percentile(plane, (low, high))
        if hi <= lo:
            plane[...] = 0.0
            continue
        plane -= lo
        plane /= hi - lo
        np.clip(plane, 0.0, 1.0, out=plane)
    return out
