"""Fixtures: real plate folders made of real TIFF files (written by tifffile)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from io_plate_builders import INDEX_XML, opera_name, write_tiff

WriteTiff = Callable[..., Path]


@pytest.fixture
def tiff() -> WriteTiff:
    return write_tiff


@pytest.fixture
def imagexpress_plate(tmp_path: Path) -> Path:
    """2 wells x 2 sites x 2 channels in TimePoint_1, plus an HTD file."""
    root = tmp_path / "plate"
    value = 0
    for well in ("A01", "B02"):
        for site in (1, 2):
            for channel in (1, 2):
                value += 1
                write_tiff(root / "TimePoint_1" / f"{well}_s{site}_w{channel}.tif", value=value)
    (root / "plate.HTD").write_text(
        '"HTSInfoFile", Version 1.0\n'
        '"Description", "screen 7, replicate 2"\n'
        '"XWells", 24\n"YWells", 16\n'
        '"XSites", 2\n"YSites", 1\n'
        '"NWavelengths", 2\n"WaveName1", "DAPI"\n"WaveName2", "FITC"\n'
        '"SiteSelection1", TRUE, TRUE\n'
    )
    return root


@pytest.fixture
def opera_plate(tmp_path: Path) -> Path:
    """Wells A01 and B03, 2 fields, 2 planes, 2 channels, 2 timepoints, with Index.xml."""
    root = tmp_path / "opera"
    images = root / "Images"
    for row, col in ((1, 1), (2, 3)):
        for field in (1, 2):
            for plane in (1, 2):
                for channel in (1, 2):
                    for timepoint in (1, 2):
                        name = opera_name(row, col, field, plane, channel, timepoint)
                        write_tiff(images / name, value=row * 10 + col)
    (images / "Index.xml").write_text(INDEX_XML)
    return root
