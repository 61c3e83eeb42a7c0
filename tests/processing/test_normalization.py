from __future__ import annotations

import numpy as np
import pytest

from openhcs.processing.checkpoint import StepCancelled, cancellation_scope
from openhcs.processing.normalization import as_float_stack, check_stack, normalize_percentile

from .helpers import CancelAfter


def test_exact_values_per_plane():
    stack = np.stack([np.arange(101, dtype=np.uint16).reshape(1, 101), 2 * np.arange(101, dtype=np.uint16).reshape(1, 101)])
    out = normalize_percentile(stack, low=10, high=90)
    assert out.dtype == np.float32
    for plane in out:
        assert plane[0, 10] == pytest.approx(0.0)
        assert plane[0, 50] == pytest.approx(0.5)
        assert plane[0, 90] == pytest.approx(1.0)
        assert plane.min() == 0.0 and plane.max() == 1.0  # clipped


def test_constant_plane_becomes_zero_and_input_untouched():
    stack = np.full((2, 8, 8), 7, dtype=np.uint8)
    copy = stack.copy()
    out = normalize_percentile(stack)
    assert np.array_equal(stack, copy)
    assert not out.any()


def test_float_input_is_not_modified():
    stack = np.random.default_rng(0).random((3, 16, 16)).astype(np.float32)
    copy = stack.copy()
    out = normalize_percentile(stack)
    assert np.array_equal(stack, copy)
    assert out is not stack


@pytest.mark.parametrize("low,high", [(50, 50), (-1, 99), (1, 101), (90, 10)])
def test_bad_percentiles_rejected(low, high):
    with pytest.raises(ValueError, match="low"):
        normalize_percentile(np.zeros((1, 4, 4)), low=low, high=high)


def test_stack_must_be_3d_and_non_empty():
    with pytest.raises(ValueError, match="3-D"):
        check_stack(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="non-empty"):
        check_stack(np.zeros((0, 4, 4)))
    assert as_float_stack(np.ones((1, 2, 2), dtype=np.uint16)).dtype == np.float32


def test_cancel_lands_between_planes():
    check = CancelAfter(3)
    with cancellation_scope(check), pytest.raises(StepCancelled):
        normalize_percentile(np.zeros((10, 8, 8)))
    assert check.calls == 3
