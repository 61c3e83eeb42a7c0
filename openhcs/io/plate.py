"""The in-memory description of a plate: which image files exist and what they show.

A ``Plate`` is only an index. It never holds pixel data: ``Plate.read`` opens one TIFF when
asked. That keeps it small and picklable, so the orchestrator can ship it to worker
processes, and it keeps opening a plate of tens of thousands of images cheap. Parsing a
particular microscope's folder layout lives in ``openhcs.io.formats``; this module knows
nothing about folder names.

Component values (well, site, channel, z, timepoint) are strings such as ``'A01'`` and
``'1'``, sorted in natural order: ``'2' < '10'`` and ``'P24' < 'AA01'``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from openhcs.io.errors import CorruptImage

COMPONENTS = ("well", "site", "channel", "z", "timepoint")

_WELL_RE = re.compile(r"^([A-Za-z]{1,2})(\d+)$")
_CHUNK_RE = re.compile(r"(\d+)")


def natural_key(value: str) -> tuple:
    """Sort key putting '2' before '10' and wells in plate order (A01..P24, then AA01).

    Well names sort by row length first, so the double-letter rows of a 1536-well plate
    come after 'Z'. Other strings are compared chunk by chunk, digits as numbers.
    """
    well = _WELL_RE.match(value)
    if well:
        row, col = well.groups()
        return (0, len(row), row.upper(), int(col), value)
    chunks = tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part.lower())
        for part in _CHUNK_RE.split(value)
        if part
    )
    return (1, chunks, value)


def natural_sorted(values: Iterable[str]) -> tuple[str, ...]:
    """The distinct values, in natural order."""
    return tuple(sorted(set(values), key=natural_key))


def row_letters(row: int) -> str:
    """1 -> 'A', 26 -> 'Z', 27 -> 'AA' (the row naming of 1536-well plates)."""
    if row < 1:
        raise ValueError(f"plate rows start at 1, got {row}")
    letters = ""
    while row:
        row, rem = divmod(row - 1, 26)
        letters = chr(ord("A") + rem) + letters
    return letters


def component_value(text: str) -> str:
    """'01' -> '1': component values carry no leading zeros, whatever the layout."""
    return str(int(text))


def well_name(row: str | int, col: int | str) -> str:
    """Canonical well name: upper-case row letters and a column of at least two digits."""
    letters = row_letters(row) if isinstance(row, int) else row.upper()
    return f"{letters}{int(col):02d}"


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """One 2-D image file and where it sits on the plate."""

    well: str
    site: str
    channel: str
    z: str
    timepoint: str
    path: Path

    def key(self) -> tuple[str, str, str, str, str]:
        """The (well, site, channel, z, timepoint) identity of this image."""
        return (self.well, self.site, self.channel, self.z, self.timepoint)

    def sort_key(self) -> tuple:
        return tuple(natural_key(part) for part in self.key())


def read_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of the first page of a TIFF, read from its header only."""
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            shape, dtype = tuple(page.shape), np.dtype(page.dtype)
    except Exception as exc:  # tifffile raises many kinds for garbage input
        raise CorruptImage(f"cannot read TIFF header of {path}: {exc}") from exc
    if len(shape) != 2:
        raise CorruptImage(f"{path} is not a 2-D single-channel image (shape {shape})")
    return shape, dtype


def read_image(path: Path) -> np.ndarray:
    """Pixel data of the first page of a TIFF, as a 2-D array."""
    try:
        with tifffile.TiffFile(path) as tif:
            data = tif.pages[0].asarray()
    except Exception as exc:
        raise CorruptImage(f"cannot read image {path}: {exc}") from exc
    if data.ndim != 2:
        raise CorruptImage(f"{path} is not a 2-D single-channel image (shape {data.shape})")
    return data


@dataclass(frozen=True)
class Plate:
    """An index of a plate's images. Build one with ``openhcs.io.detect.open_plate``."""

    path: Path
    format: str
    records: tuple[ImageRecord, ...]
    image_shape: tuple[int, int]
    dtype: np.dtype
    metadata: dict[str, Any] = field(default_factory=dict)
    _by_well: dict[str, tuple[ImageRecord, ...]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        # Frozen, so normalise through object.__setattr__ (callers may pass str / lists).
        object.__setattr__(self, "path", Path(self.path))
        object.__setattr__(self, "image_shape", tuple(int(n) for n in self.image_shape))
        object.__setattr__(self, "dtype", np.dtype(self.dtype))
        ordered = tuple(sorted(self.records, key=ImageRecord.sort_key))
        object.__setattr__(self, "records", ordered)
        by_well: dict[str, list[ImageRecord]] = {}
        for record in ordered:
            by_well.setdefault(record.well, []).append(record)
        object.__setattr__(self, "_by_well", {w: tuple(rs) for w, rs in by_well.items()})

    def _values(self, component: str) -> tuple[str, ...]:
        return natural_sorted(getattr(r, component) for r in self.records)

    # cached_property writes the instance __dict__ directly, which a frozen dataclass allows.
    @cached_property
    def wells(self) -> tuple[str, ...]:
        return tuple(self._by_well)  # records are sorted, so wells are in natural order

    @cached_property
    def sites(self) -> tuple[str, ...]:
        return self._values("site")

    @cached_property
    def channels(self) -> tuple[str, ...]:
        return self._values("channel")

    @cached_property
    def z_indices(self) -> tuple[str, ...]:
        return self._values("z")

    @cached_property
    def timepoints(self) -> tuple[str, ...]:
        return self._values("timepoint")

    def records_for(self, well: str) -> tuple[ImageRecord, ...]:
        """All images of one well, in (site, channel, z, timepoint) natural order."""
        try:
            return self._by_well[well]
        except KeyError:
            raise KeyError(f"well {well!r} is not in plate {self.path}") from None

    def read(self, record: ImageRecord) -> np.ndarray:
        """Read one image from disk (2-D array); raises ``CorruptImage`` if it cannot."""
        return read_image(record.path)

    def summary(self) -> dict[str, Any]:
        """A JSON-able overview: counts, component values, image shape and metadata."""
        return {
            "path": str(self.path),
            "format": self.format,
            "n_images": len(self.records),
            "n_wells": len(self._by_well),
            "wells": list(self.wells),
            "sites": list(self.sites),
            "channels": list(self.channels),
            "z_indices": list(self.z_indices),
            "timepoints": list(self.timepoints),
            "image_shape": list(self.image_shape),
            "dtype": str(self.dtype),
            "metadata": self.metadata,
        }
