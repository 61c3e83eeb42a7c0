"""Retrospective flat-field (illumination) correction from the images themselves.

Microscope illumination is uneven (vignetting), so the same object is dimmer near the
corners. Every site of a well/channel shares the same illumination, so the per-pixel median
across sites removes the objects (which move from site to site) and keeps the profile. What
is left (noise, an object present in most sites) is removed by fitting a low-order 2-D
polynomial surface. Gaussian smoothing (``sigma=``) is offered too, but it flattens the
profile near the image border, where vignetting is strongest; the polynomial does not. Both
run on a downsampled profile and are interpolated back: about 10 ms for 4x256x256.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.transform import downscale_local_mean, resize

from openhcs.processing.checkpoint import checkpoint
from openhcs.processing.normalization import as_float_stack, check_stack
from openhcs.processing.registry import register


def _powers(coords: np.ndarray, degree: int) -> np.ndarray:
    """``(len(coords), degree + 1)``: coords**0 .. coords**degree."""
    return coords[:, None] ** np.arange(degree + 1)[None, :]


def _least_squares(design: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Least squares via the normal equations (einsum + a tiny solve).

    ``np.linalg.lstsq`` on a 1000x15 system wakes every OpenBLAS thread; in a busy worker
    process that spin costs ~40 ms of CPU against 0.2 ms of arithmetic.
    """
    gram = np.einsum("ij,ik->jk", design, design)
    return np.linalg.solve(gram, np.einsum("ij,i->j", design, values))


def _polyfit_surface(small: np.ndarray, factor: int, shape: tuple[int, int], degree: int) -> np.ndarray:
    """Fit a 2-D polynomial to the block means ``small``; evaluate it at full resolution.

    Terms are ``x**i * y**j`` with ``i + j <= degree``; evaluation is separable
    (``Y @ C @ X.T``), which keeps it to two small matrix products.
    """
    ny, nx = shape
    scale = 2.0 / max(ny, nx)
    # centres of the ``factor``-sized blocks, in full-resolution pixel coordinates
    py = _powers((np.arange(small.shape[0]) * factor + (factor - 1) / 2) * scale - 1, degree)
    px = _powers((np.arange(small.shape[1]) * factor + (factor - 1) / 2) * scale - 1, degree)
    terms = [(j, i) for i in range(degree + 1) for j in range(degree + 1 - i)]
    design = np.stack([np.outer(py[:, j], px[:, i]).ravel() for j, i in terms], axis=1)
    values = small.ravel().astype(np.float64)
    keep = np.ones(values.shape, dtype=bool)
    for _ in range(3):  # refit without outliers: residual objects, bright debris
        coef = _least_squares(design[keep], values[keep])
        residual = values - design @ coef
        mad = float(np.median(np.abs(residual[keep]))) * 1.4826
        if mad <= 0:
            break
        keep = np.abs(residual) < 3 * mad
    matrix = np.zeros((degree + 1, degree + 1))
    for (j, i), c in zip(terms, coef, strict=True):
        matrix[j, i] = c
    fy = _powers(np.arange(ny) * scale - 1, degree)
    fx = _powers(np.arange(nx) * scale - 1, degree)
    return fy @ matrix @ fx.T


def _smooth_profile(profile: np.ndarray, sigma: float | None, degree: int) -> np.ndarray:
    factor = int(max(1, min(8, min(profile.shape) // 32)))
    # trim so the blocks tile the image exactly; the fit covers the trimmed border
    hy, hx = (profile.shape[0] // factor) * factor, (profile.shape[1] // factor) * factor
    small = downscale_local_mean(profile[:hy, :hx], (factor, factor)) if factor > 1 else profile
    if sigma is None:
        return _polyfit_surface(small, factor, profile.shape, degree)
    small = ndi.gaussian_filter(small, sigma / factor, mode="reflect")
    if factor == 1:
        return small
    return resize(small, profile.shape, order=1, preserve_range=True, anti_aliasing=False)


@register(category="flatfield")
def estimate_flatfield(stack: np.ndarray, sigma: float | None = None, degree: int = 4) -> np.ndarray:
    """Estimate the illumination profile of ``stack``, shape ``(1, y, x)``, float32, mean 1.

    The profile is the per-pixel median across planes, fitted by a 2-D polynomial of total
    ``degree``; or, when ``sigma`` is given, gaussian-smoothed with ``sigma`` instead.

    Example::

        >>> rng = np.random.default_rng(0)
        >>> ramp = np.linspace(0.5, 1.0, 128)[None, None, :]
        >>> profile = estimate_flatfield(rng.poisson(200 * ramp, (4, 128, 128)))
        >>> bool(profile[0, 64, 120] > profile[0, 64, 8])
        True
    """
    arr = check_stack(stack)
    if sigma is not None and sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    if degree < 0:
        raise ValueError(f"degree must be >= 0, got {degree}")
    checkpoint()
    profile = np.median(arr.astype(np.float32, copy=False), axis=0) if len(arr) > 1 else arr[0].astype(np.float32)
    checkpoint()
    profile = _smooth_profile(profile.astype(np.float32), None if sigma is None else float(sigma), int(degree))
    mean = float(profile.mean())
    if not np.isfinite(mean) or mean <= 0:
        return np.ones((1, *arr.shape[1:]), dtype=np.float32)
    profile = profile / mean
    floor = 1e-3
    return np.maximum(profile, floor).astype(np.float32)[np.newaxis]


@register(category="flatfield")
def correct_flatfield(stack: np.ndarray, sigma: float | None = None, degree: int = 4) -> np.ndarray:
    """Divide every plane by the illumination profile estimated from the whole stack.

    Give it all the sites of one well and channel (``variable_components=("site",)``,
    ``group_by="channel"``). Returns float32 with the same mean brightness.

    Example::

        >>> rng = np.random.default_rng(0)
        >>> ramp = np.linspace(0.5, 1.0, 128)[None, None, :]
        >>> flat = correct_flatfield(rng.poisson(200 * ramp, (4, 128, 128)))
        >>> bool(abs(flat[:, :, 8].mean() - flat[:, :, 120].mean()) < 5)
        True
    """
    profile = estimate_flatfield(stack, sigma=sigma, degree=degree)[0]
    out = as_float_stack(stack)
    for plane in out:
        checkpoint()
        plane /= profile
    return out
