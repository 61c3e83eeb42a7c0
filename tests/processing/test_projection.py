from __future__ import annotations

import numpy as np
import pytest

from openhcs.processing.projection import project_z


@pytest.mark.parametrize(
    "method,expected",
    [("max", [[3, 5], [9, 4]]), ("mean", [[2, 3.5], [6, 3]]), ("min", [[1, 2], [3, 2]]), ("sum", [[4, 7], [12, 6]])],
)
def test_exact_projection_values(method, expected):
    stack = np.array([[[1, 5], [3, 4]], [[3, 2], [9, 2]]], dtype=np.uint16)
    copy = stack.copy()
    out = project_z(stack, method=method)
    assert out.shape == (1, 2, 2)
    assert out.dtype == np.float32
    assert out[0].tolist() == expected
    assert np.array_equal(stack, copy)


def test_uint8_sum_does_not_overflow():
    out = project_z(np.full((3, 2, 2), 200, dtype=np.uint8), method="sum")
    assert out.max() == 600


def test_unknown_method():
    with pytest.raises(ValueError, match="median"):
        project_z(np.zeros((2, 3, 3)), method="median")
