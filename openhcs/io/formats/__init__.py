"""Microscope folder layouts, one module each.

A format knows two things: whether a folder *claims* to be in its layout (cheap: a marker
folder or file name, no full listing), and how to *scan* such a folder into image records
plus metadata. Keeping the two apart lets ``open_plate`` tell "not this microscope"
(``UnknownLayout``) from "this microscope, but no images" (``EmptyPlate``). Adding a format
means adding a module here and listing it in ``available_formats``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openhcs.io.plate import ImageRecord

TIFF_SUFFIXES = (".tif", ".tiff")


@dataclass
class ScanResult:
    """What a format found in a plate folder: image records and parsed metadata."""

    records: list[ImageRecord] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PlateFormat:
    """A supported layout: its name, what it looks for, and its two entry points."""

    name: str
    looks_for: str
    claims: Callable[[Path], bool]
    scan: Callable[[Path], ScanResult]


def is_tiff_name(name: str) -> bool:
    """A visible .tif/.tiff name. Hidden files are skipped: macOS copies leave '._A01...tif'
    resource forks next to every image, and our own temp files start with a dot too."""
    return not name.startswith(".") and name.lower().endswith(TIFF_SUFFIXES)


def available_formats() -> tuple[PlateFormat, ...]:
    """Every supported layout, in detection order."""
    from openhcs.io.formats import imagexpress, operaphenix

    return (operaphenix.FORMAT, imagexpress.FORMAT)


__all__ = ["PlateFormat", "ScanResult", "TIFF_SUFFIXES", "available_formats", "is_tiff_name"]
