"""Every built-in keeps the processing contract, whatever the input dtype.

3-D stack in; input untouched; a new stack of n or 1 planes out (float32 for intensities,
int32 for labels), optionally with a list of dict rows.
"""

from __future__ import annotations

import numpy as np
import pytest

from openhcs.processing import registry
from openhcs.processing.registry import get_function, list_functions

from .helpers import disks_image

BUILTINS = sorted(i.name for i in list_functions() if i.module in registry.BUILTIN_MODULES)
LABELS = {"segment_nuclei"}
ONE_PLANE = {"project_z", "stitch_sites", "estimate_flatfield"}
UNCHANGED_COPY = {"measure_nuclei"}


def stack_of(dtype) -> np.ndarray:
    """Four 96x96 planes of nuclei-like disks with noise, in ``dtype``'s range."""
    rng = np.random.default_rng(0)
    planes = []
    for i in range(4):
        centres = rng.uniform(10, 86, size=(5, 2))
        planes.append(disks_image(centres, radius=6, shape=(96, 96), value=150.0, background=20.0, noise=5, seed=i))
    stack = np.array(planes)
    if np.issubdtype(dtype, np.floating):
        return (stack / 200.0).astype(dtype)
    return np.clip(stack, 0, np.iinfo(dtype).max).astype(dtype)


@pytest.mark.parametrize("name", BUILTINS)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.float32, np.float64])
def test_contract(name, dtype):
    func = get_function(name)
    stack = stack_of(dtype)
    copy = stack.copy()
    result = func(stack)
    assert np.array_equal(stack, copy) and stack.dtype == copy.dtype, "input modified"
    rows = None
    if isinstance(result, tuple):
        result, rows = result
        assert isinstance(rows, list) and all(isinstance(r, dict) for r in rows)
    assert isinstance(result, np.ndarray) and result.ndim == 3
    assert not np.shares_memory(result, stack)
    assert result.shape[0] == (1 if name in ONE_PLANE else len(stack))
    if name in UNCHANGED_COPY:
        assert np.array_equal(result, stack)
    else:
        assert result.dtype == (np.int32 if name in LABELS else np.float32)
        assert np.all(np.isfinite(result))


def test_every_builtin_is_covered():
    assert len(BUILTINS) == 9
