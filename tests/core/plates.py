"""Small real ImageXpress plates for core tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

MARKER = 4095  # a pixel value only "marked" wells contain


def write_plate(
    root: Path,
    wells: tuple[str, ...] = ("A01", "A02", "A03", "B01", "B02", "B03"),
    sites: int = 2,
    channels: int = 2,
    size: int = 32,
    marked: tuple[str, ...] = (),
) -> Path:
    """Write ``root/TimePoint_1/{well}_s{site}_w{ch}.tif``; marked wells hold ``MARKER``."""
    folder = root / "TimePoint_1"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for w_index, well in enumerate(wells):
        for site in range(1, sites + 1):
            for ch in range(1, channels + 1):
                image = rng.integers(100, 200, size=(size, size), dtype=np.uint16) + w_index
                if well in marked:
                    image[0, 0] = MARKER
                tifffile.imwrite(folder / f"{well}_s{site}_w{ch}.tif", image)
    return root
