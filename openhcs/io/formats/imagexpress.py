"""Molecular Devices ImageXpress / MetaXpress plate folders.

Layout::

    PLATE/
      PLATE.HTD                        optional key/value metadata
      TimePoint_1/A01_s1_w1.tif        well, site, wavelength (channel)
      TimePoint_1/A01_s1_w1_z3.tif     z as a name suffix, or ...
      TimePoint_2/ZStep_3/A01_s1_w1.tif  ... z as a folder

Missing ``_s`` or ``_w`` parts mean site '1' or channel '1'. MetaXpress may add a plate
prefix (``MyPlate_A01_s1_w1.tif``) or a GUID after the wavelength; both are accepted.
``_thumb`` files are previews and are skipped, as is every non-TIFF file and every folder
that is not a TimePoint/ZStep folder (so outputs written inside a plate never feed back in).
"""

from __future__ import annotations

import csv
import logging
import os
import re
from pathlib import Path
from typing import Any

from openhcs.io.formats import PlateFormat, ScanResult, is_tiff_name
from openhcs.io.plate import ImageRecord, component_value, well_name

log = logging.getLogger(__name__)

NAME = "imagexpress"

_GUID = r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}"
IMAGE_RE = re.compile(
    r"^(?:.*?_)??(?P<row>[A-Z]{1,2})(?P<col>\d{1,3})"
    r"(?:_s(?P<site>\d+))?"
    rf"(?:_w(?P<channel>\d+)(?:{_GUID})?)?"
    r"(?:_z(?P<z>\d+))?"
    r"\.tiff?$",
    re.IGNORECASE,
)
TIMEPOINT_RE = re.compile(r"^TimePoint_(\d+)$", re.IGNORECASE)
ZSTEP_RE = re.compile(r"^ZStep_(\d+)$", re.IGNORECASE)

# HTD keys with integer values -> Plate.metadata names.
_HTD_INTS = {
    "XSites": "site_cols",
    "YSites": "site_rows",
    "XWells": "plate_cols",
    "YWells": "plate_rows",
    "NWavelengths": "n_channels",
    "TimePoints": "n_timepoints",
    "ZSteps": "n_z",
}


def parse_name(name: str) -> dict[str, str] | None:
    """Components encoded in an image file name, or None if it is not an image name."""
    if "_thumb" in name.lower():
        return None
    match = IMAGE_RE.match(name)
    if not match:
        return None
    parts = match.groupdict()
    return {
        "well": well_name(parts["row"], parts["col"]),
        "site": component_value(parts["site"] or "1"),
        "channel": component_value(parts["channel"] or "1"),
        "z": component_value(parts["z"]) if parts["z"] else "",
    }


def _find_htd(root: Path) -> Path | None:
    htds = sorted(e.path for e in os.scandir(root) if e.is_file() and e.name.lower().endswith(".htd"))
    return Path(htds[0]) if htds else None


def claims(root: Path) -> bool:
    """True if the folder has a TimePoint_N folder, an .HTD file or ImageXpress images."""
    with os.scandir(root) as entries:
        for entry in entries:
            if entry.is_dir() and TIMEPOINT_RE.match(entry.name):
                return True
            if entry.is_file() and entry.name.lower().endswith(".htd"):
                return True
            if entry.is_file() and is_tiff_name(entry.name) and parse_name(entry.name):
                return True
    return False


def parse_htd(path: Path) -> dict[str, Any]:
    """Metadata from an .HTD file (``"Key", value`` lines); unreadable files give {}."""
    try:
        text = path.read_text(encoding="latin-1")
    except OSError as exc:
        log.warning("cannot read ImageXpress metadata %s: %s", path, exc)
        return {}
    raw: dict[str, Any] = {}
    for row in csv.reader(text.splitlines(), skipinitialspace=True):
        cells = [cell.strip() for cell in row]
        if len(cells) >= 2 and cells[0]:
            raw[cells[0]] = cells[1] if len(cells) == 2 else cells[1:]
    return _htd_metadata(raw, path)


def _htd_metadata(raw: dict[str, Any], path: Path) -> dict[str, Any]:
    meta: dict[str, Any] = {"metadata_file": path.name, "htd": raw}
    for key, name in _HTD_INTS.items():
        try:
            meta[name] = int(raw[key])
        except (KeyError, TypeError, ValueError):
            continue
    names = {}
    for key, value in raw.items():
        wave = re.fullmatch(r"WaveName(\d+)", key)
        if wave and isinstance(value, str):
            names[component_value(wave.group(1))] = value
    if names:
        meta["channel_names"] = names
    if isinstance(raw.get("Description"), str):
        meta["description"] = raw["Description"]
    return meta


def _scan_folder(folder: Path, timepoint: str, z: str, out: list[ImageRecord],
                 skipped: list[str]) -> None:
    """Add the images directly inside ``folder``; recurse into its ZStep_M folders."""
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir():
                zstep = ZSTEP_RE.match(entry.name)
                if zstep:
                    _scan_folder(Path(entry.path), timepoint, component_value(zstep.group(1)), out, skipped)
                continue
            if not is_tiff_name(entry.name):
                continue
            parts = parse_name(entry.name)
            if parts is None:
                if "_thumb" not in entry.name.lower():
                    skipped.append(entry.path)
                continue
            parts["z"] = parts["z"] or z
            out.append(ImageRecord(timepoint=timepoint, path=Path(entry.path), **parts))


def scan(root: Path) -> ScanResult:
    """Every image under ``root`` (plate root, TimePoint_N and their ZStep_M folders)."""
    records: list[ImageRecord] = []
    skipped: list[str] = []
    _scan_folder(root, "1", "1", records, skipped)  # images at the root: timepoint 1
    with os.scandir(root) as entries:
        timepoints = [(e.path, TIMEPOINT_RE.match(e.name)) for e in entries if e.is_dir()]
    for folder, match in timepoints:
        if match:
            _scan_folder(Path(folder), component_value(match.group(1)), "1", records, skipped)
    if skipped:
        log.warning("%s: ignored %d TIFF file(s) not named like ImageXpress images, e.g. %s",
                    root, len(skipped), skipped[0])
    htd = _find_htd(root)
    return ScanResult(records=records, metadata=parse_htd(htd) if htd else {})


FORMAT = PlateFormat(
    name=NAME,
    looks_for="TimePoint_N/ folders, an .HTD file, or images named like A01_s1_w1.tif",
    claims=claims,
    scan=scan,
)
