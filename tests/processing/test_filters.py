from __future__ import annotations

import time

import numpy as np
import pytest

from openhcs.processing.checkpoint import StepCancelled, cancellation_scope
from openhcs.processing.filters import denoise, subtract_background

from .helpers import CancelAfter, disks_image


@pytest.mark.parametrize("method", ["gaussian", "median"])
def test_denoise_reduces_noise_and_keeps_mean(method):
    rng = np.random.default_rng(0)
    stack = rng.normal(500, 50, (2, 64, 64)).astype(np.float32)
    copy = stack.copy()
    out = denoise(stack, method=method, sigma=2)
    assert np.array_equal(stack, copy)
    assert out.dtype == np.float32 and out.shape == stack.shape
    assert out.std() < stack.std() / 3
    assert out.mean() == pytest.approx(500, abs=2)


def test_denoise_median_removes_salt_noise_exactly():
    stack = np.full((1, 16, 16), 10, dtype=np.uint16)
    stack[0, 5, 5] = 60000
    out = denoise(stack, method="median", sigma=1)
    assert np.all(out == 10)


def test_denoise_rejects_unknown_method():
    with pytest.raises(ValueError, match="bilateral"):
        denoise(np.zeros((1, 4, 4)), method="bilateral")


@pytest.mark.parametrize("method", ["opening", "rolling_ball"])
def test_subtract_background_removes_a_gradient_and_keeps_objects(method):
    yy, xx = np.mgrid[:256, :256]
    gradient = 200 + 1.5 * xx + 0.5 * yy
    img = disks_image([(60, 60), (128, 200), (200, 90)], radius=8, shape=(256, 256), value=800.0, background=0.0)
    stack = (img + gradient)[None].astype(np.uint16)
    copy = stack.copy()
    out = subtract_background(stack, radius=25, method=method)
    assert np.array_equal(stack, copy)
    assert out.dtype == np.float32 and out.min() >= 0
    background = img == 0
    assert np.median(out[0][background]) < 20  # was 200..780
    for cy, cx in [(60, 60), (128, 200), (200, 90)]:
        assert out[0, cy, cx] == pytest.approx(800, rel=0.1)


def test_subtract_background_is_fast():
    stack = np.random.default_rng(0).poisson(300, (8, 256, 256)).astype(np.uint16)
    subtract_background(stack[:1])
    start = time.perf_counter()
    subtract_background(stack, radius=25)
    per_plane = (time.perf_counter() - start) / len(stack)
    assert per_plane < 0.03, f"{per_plane * 1000:.1f} ms per 256x256 plane"


def test_subtract_background_rejects_bad_radius():
    with pytest.raises(ValueError, match="radius"):
        subtract_background(np.zeros((1, 8, 8)), radius=0)


def test_cancel_lands_between_planes():
    check = CancelAfter(2)
    with cancellation_scope(check), pytest.raises(StepCancelled):
        subtract_background(np.zeros((6, 64, 64)))
    assert check.calls == 2
