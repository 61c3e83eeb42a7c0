"""Shared helpers for processing tests: synthetic images with known answers."""

from __future__ import annotations

import numpy as np
from skimage.draw import disk


def disks_image(centres, radius=7, shape=(128, 128), value=1000.0, background=100.0, noise=0.0, seed=0):
    """A float image with filled disks at ``centres`` on a flat background."""
    img = np.full(shape, background, dtype=np.float64)
    for cy, cx in centres:
        img[disk((cy, cx), radius, shape=shape)] += value
    if noise:
        img += np.random.default_rng(seed).normal(0, noise, shape)
    return np.clip(img, 0, None)


class CancelAfter:
    """A cancel check that turns True on its ``n``-th call, counting calls."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.calls >= self.n
