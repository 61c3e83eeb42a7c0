from __future__ import annotations

import numpy as np
import pytest

from openhcs.processing.checkpoint import StepCancelled, cancellation_scope
from openhcs.processing.flatfield import correct_flatfield, estimate_flatfield

from .helpers import CancelAfter, disks_image


def vignette(shape, low=0.6):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    r2 = ((yy - shape[0] * 0.45) / shape[0]) ** 2 + ((xx - shape[1] * 0.55) / shape[1]) ** 2
    return 1.0 - (1.0 - low) * r2 / r2.max()


def sites_under_illumination(n=4, shape=(256, 256), seed=0):
    """Sites of sparse nuclei on an even background, all under the same vignetting."""
    rng = np.random.default_rng(seed)
    illumination = vignette(shape)
    planes = []
    for _ in range(n):
        centres = rng.uniform(10, shape[0] - 10, size=(12, 2))
        scene = disks_image(centres, radius=6, shape=shape, value=1500.0, background=400.0)
        planes.append(rng.poisson(scene * illumination))
    return np.array(planes, dtype=np.uint16), illumination


def cv(values):
    return float(np.std(values) / np.mean(values))


def test_known_vignetting_is_flattened():
    stack, illumination = sites_under_illumination()
    copy = stack.copy()
    out = correct_flatfield(stack)
    assert np.array_equal(stack, copy)
    assert out.dtype == np.float32 and out.shape == stack.shape
    # background pixels only: the scene is flat there, so only illumination varies
    background = stack < 600 * 1.0
    before = cv(stack[background].astype(float))
    after = cv(out[background])
    assert before > 0.10
    assert after < 0.06  # shot noise alone is ~0.05 at 400 counts
    # corners and centre of the background agree after correction
    smooth = [np.median(out[:, :40, :40]), np.median(out[:, -40:, -40:]), np.median(out[:, 108:148, 108:148])]
    assert max(smooth) / min(smooth) < 1.05


def test_estimated_profile_matches_the_true_one():
    stack, illumination = sites_under_illumination(seed=1)
    profile = estimate_flatfield(stack)
    assert profile.shape == (1, 256, 256) and profile.dtype == np.float32
    assert profile.mean() == pytest.approx(1.0, abs=1e-3)
    truth = illumination / illumination.mean()
    assert np.abs(profile[0] - truth).max() < 0.03


def test_gaussian_option_and_single_plane():
    stack, _ = sites_under_illumination(n=1)
    profile = estimate_flatfield(stack, sigma=30)
    assert profile.shape == (1, 256, 256)
    assert profile[0, 128, 140] > profile[0, 5, 5]


def test_constant_stack_is_unchanged():
    stack = np.full((3, 64, 64), 250, dtype=np.uint16)
    assert np.allclose(correct_flatfield(stack), 250, atol=1e-3)
    assert not np.any(correct_flatfield(np.zeros((2, 32, 32))))


def test_bad_options():
    with pytest.raises(ValueError, match="sigma"):
        estimate_flatfield(np.ones((2, 8, 8)), sigma=0)
    with pytest.raises(ValueError, match="degree"):
        estimate_flatfield(np.ones((2, 8, 8)), degree=-1)


def test_cancel_lands_mid_step():
    check = CancelAfter(4)
    with cancellation_scope(check), pytest.raises(StepCancelled):
        correct_flatfield(np.ones((8, 32, 32)))
    assert check.calls == 4
