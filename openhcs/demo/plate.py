"""A synthetic ImageXpress plate with a known answer, for demos and end-to-end tests.

Real plates are big and their "right answer" is unknown; this one is small, written in
the exact on-disk layout MetaXpress produces (``TimePoint_1/A01_s1_w1.tif`` + ``.HTD``),
and carries its ground truth (nuclei per well). Each well is rendered as one canvas larger
than a site: nuclei (DAPI) and cytoplasm (FITC) follow a dose-response across columns.
Sites are cropped from the canvas on a grid with the nominal overlap plus a few pixels of
stage jitter, so stitching must find the true positions. Each site sees the same uneven
illumination, a background and camera offset, and its own Poisson shot noise, so
flat-field correction, background subtraction and stitching all have real work to do.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tifffile
from scipy import ndimage as ndi

CHANNELS = ("DAPI", "FITC")
NUCLEUS_RADIUS = (6.0, 9.0)  # mean semi-axis range, pixels
MAX_JITTER = 3  # stage error, pixels, each axis
CAMERA_OFFSET = 100  # counts a dark camera reads
BACKGROUND = (150.0, 120.0)  # medium autofluorescence per channel, before illumination
COUNT_RANGE = (60.0, 15.0)  # nuclei per well (default geometry) at low and high dose
TOUCHING_FRACTION = 0.12  # nuclei placed against a neighbour
_DEFAULT_AREA = (round(256 * 0.9) + 256) ** 2


@dataclass(frozen=True)
class DemoPlate:
    path: Path
    wells: tuple[str, ...]
    ground_truth: dict[str, int]
    grid: tuple[int, int]
    overlap: float
    # per well, relative to site 1's top-left corner: true (y, x) of every site, and of
    # every counted nucleus
    site_positions: dict[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)
    nuclei_centres: dict[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)


def well_names(rows: int, cols: int) -> tuple[str, ...]:
    return tuple(f"{chr(ord('A') + r)}{c + 1:02d}" for r in range(rows) for c in range(cols))


def dose_response_count(col: int, cols: int) -> float:
    """Expected nuclei in a well of column ``col`` (0-based): a sigmoid from 60 down to 15."""
    dose = col / max(1, cols - 1)
    high, low = COUNT_RANGE
    return low + (high - low) / (1.0 + np.exp((dose - 0.5) * 10.0))


def illumination_field(size: int) -> np.ndarray:
    """Vignetting from 1.0 (slightly off-centre) down to 0.6 in the far corner."""
    yy, xx = np.mgrid[:size, :size] / max(1, size - 1)
    r2 = (yy - 0.45) ** 2 + (xx - 0.55) ** 2
    return 1.0 - 0.4 * r2 / r2.max()


def _covered(point: np.ndarray, positions: np.ndarray, size: int) -> bool:
    return bool(np.any(np.all((point >= positions) & (point < positions + size), axis=1)))


def _place_nuclei(rng: np.random.Generator, n: int, positions: np.ndarray, size: int) -> list[tuple]:
    """``(cy, cx, a, b, angle, brightness)`` for ``n`` nuclei inside the sites' union.

    Nuclei keep a minimum spacing, except that some are placed against one neighbour
    (touching pairs, never larger clusters), as in a real, not too dense culture.
    """
    lo, hi = positions.min(axis=0), positions.max(axis=0) + size
    spacing = 2.6 * NUCLEUS_RADIUS[1]
    nuclei: list[tuple] = []
    centres = np.empty((0, 2))
    paired: list[bool] = []
    attempts = 0
    while len(nuclei) < n and attempts < 200 * n:
        attempts += 1
        r = rng.uniform(*NUCLEUS_RADIUS)
        elong = rng.uniform(1.0, 1.3)
        a, b = r * np.sqrt(elong), r / np.sqrt(elong)
        partner = -1
        if len(nuclei) and rng.random() < TOUCHING_FRACTION:
            partner = int(rng.integers(len(nuclei)))
            if paired[partner]:
                continue
            # against the partner: centre distance about the sum of the radii
            cy0, cx0, a0, b0, *_ = nuclei[partner]
            theta = rng.uniform(0, 2 * np.pi)
            dist = (np.sqrt(a0 * b0) + r) * rng.uniform(0.95, 1.05)
            centre = np.array([cy0 + dist * np.sin(theta), cx0 + dist * np.cos(theta)])
        else:
            centre = rng.uniform(lo, hi)
        if not _covered(centre, positions, size):
            continue
        if len(centres):
            gaps = np.hypot(*(centres - centre).T)
            if partner >= 0:
                gaps[partner] = np.inf
            if gaps.min() < spacing:
                continue
        nuclei.append((centre[0], centre[1], a, b, rng.uniform(0, np.pi), rng.uniform(600, 1400)))
        centres = np.vstack([centres, centre])
        paired.append(partner >= 0)
        if partner >= 0:
            paired[partner] = True
    return nuclei


def _stamp(canvas: np.ndarray, cy: float, cx: float, a: float, b: float, angle: float, value: float) -> None:
    """Add a filled ellipse of ``value`` to ``canvas`` (local patch only)."""
    reach = int(np.ceil(max(a, b))) + 1
    y0, x0 = max(0, int(cy) - reach), max(0, int(cx) - reach)
    y1, x1 = min(canvas.shape[0], int(cy) + reach + 2), min(canvas.shape[1], int(cx) + reach + 2)
    if y1 <= y0 or x1 <= x0:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1]
    dy, dx = yy - cy, xx - cx
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = -dx * np.sin(angle) + dy * np.cos(angle)
    canvas[y0:y1, x0:x1] += value * ((u / a) ** 2 + (v / b) ** 2 <= 1.0)


def _render_well(rng: np.random.Generator, nuclei: list[tuple], shape: tuple[int, int]) -> np.ndarray:
    """The noiseless ``(2, H, W)`` signal of one well: nuclei and cytoplasm."""
    dapi = np.zeros(shape, dtype=np.float32)
    fitc = np.zeros(shape, dtype=np.float32)
    for cy, cx, a, b, angle, brightness in nuclei:
        _stamp(dapi, cy, cx, a, b, angle, brightness)
        grow = rng.uniform(1.8, 2.4)
        _stamp(
            fitc,
            cy + rng.normal(0, 2),
            cx + rng.normal(0, 2),
            a * grow,
            b * grow * rng.uniform(0.8, 1.1),
            rng.uniform(0, np.pi),
            rng.uniform(150, 350),
        )
    dapi = ndi.gaussian_filter(dapi, 1.2)
    fitc = ndi.gaussian_filter(fitc, 3.0)
    return np.stack([dapi + BACKGROUND[0], fitc + BACKGROUND[1]])


def _write_htd(path: Path, rows: int, cols: int, grid: tuple[int, int]) -> None:
    well_sel = [f'"WellsSelection{r + 1}", ' + ", ".join(["TRUE"] * cols) for r in range(rows)]
    site_sel = [f'"SiteSelection{r + 1}", ' + ", ".join(["TRUE"] * grid[1]) for r in range(grid[0])]
    lines = [
        '"HTSInfoFile", Version 1.0',
        '"Description", "openhcs synthetic demo plate"',
        '"PlateType", 6',
        '"TimePoints", 1',
        '"ZSeries", FALSE',
        '"ZSteps", 1',
        '"ZProjection", FALSE',
        f'"XWells", {cols}',
        f'"YWells", {rows}',
        *well_sel,
        '"Sites", TRUE',
        f'"XSites", {grid[1]}',
        f'"YSites", {grid[0]}',
        *site_sel,
        '"Waves", TRUE',
        f'"NWavelengths", {len(CHANNELS)}',
        *(f'"WaveName{i + 1}", "{name}"' for i, name in enumerate(CHANNELS)),
        *(f'"WaveCollect{i + 1}", 1' for i in range(len(CHANNELS))),
        '"EndFile"',
    ]
    path.write_text("\r\n".join(lines) + "\r\n", encoding="latin-1")


def make_demo_plate(
    dest: str | Path,
    rows: int = 4,
    cols: int = 6,
    sites: tuple[int, int] = (2, 2),
    image_size: int = 256,
    overlap: float = 0.1,
    seed: int = 0,
) -> DemoPlate:
    """Write a synthetic ImageXpress plate into ``dest`` and return its description.

    ``sites`` is the ``(rows, cols)`` grid of sites per well; site 1 is top-left, numbered
    row-major. Deterministic for a given ``seed``.

    Example::

        >>> plate = make_demo_plate(tmp_path / "plate", rows=1, cols=2)  # doctest: +SKIP
        >>> plate.ground_truth  # doctest: +SKIP
        {'A01': 58, 'A02': 14}
    """
    if not 1 <= rows <= 26 or cols < 1:
        raise ValueError(f"rows must be 1..26 and cols >= 1, got rows={rows}, cols={cols}")
    if not 0 <= overlap < 0.5:
        raise ValueError(f"overlap must be in [0, 0.5), got {overlap}")
    dest = Path(dest)
    images = dest / "TimePoint_1"
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    grid = (int(sites[0]), int(sites[1]))
    step = round(image_size * (1 - overlap))
    nominal = np.array([(r * step, c * step) for r in range(grid[0]) for c in range(grid[1])])
    canvas_shape = tuple(int(v) for v in nominal.max(axis=0) + image_size + 2 * MAX_JITTER)
    area_scale = float(np.prod(nominal.max(axis=0) + image_size)) / _DEFAULT_AREA
    illumination = illumination_field(image_size)
    wells = well_names(rows, cols)
    truth: dict[str, int] = {}
    positions_by_well: dict[str, np.ndarray] = {}
    centres_by_well: dict[str, np.ndarray] = {}
    for i, well in enumerate(wells):
        expected = dose_response_count(i % cols, cols) * area_scale
        n = max(1, int(round(rng.normal(expected, 0.08 * expected))))
        positions = nominal + MAX_JITTER + rng.integers(-MAX_JITTER, MAX_JITTER + 1, size=nominal.shape)
        nuclei = _place_nuclei(rng, n, positions, image_size)
        signal = _render_well(rng, nuclei, canvas_shape)
        for s, (y, x) in enumerate(positions, start=1):
            crop = signal[:, y : y + image_size, x : x + image_size] * illumination
            counts = np.minimum(rng.poisson(crop) + CAMERA_OFFSET, 65535).astype(np.uint16)
            for c in range(len(CHANNELS)):
                tifffile.imwrite(images / f"{well}_s{s}_w{c + 1}.tif", counts[c])
        truth[well] = len(nuclei)
        positions_by_well[well] = positions - positions[0]
        centres_by_well[well] = np.array([n[:2] for n in nuclei]).reshape(-1, 2) - positions[0]
    _write_htd(dest / f"{dest.name}.HTD", rows, cols, grid)
    with open(dest / "ground_truth.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["well", "nuclei_count"])
        writer.writerows(truth.items())
    return DemoPlate(
        path=dest,
        wells=wells,
        ground_truth=truth,
        grid=grid,
        overlap=overlap,
        site_positions=positions_by_well,
        nuclei_centres=centres_by_well,
    )
