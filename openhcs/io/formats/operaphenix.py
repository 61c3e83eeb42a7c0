"""PerkinElmer / Revvity Opera Phenix (Harmony export) plate folders.

Layout::

    PLATE/Images/Index.xml                        (or Index.idx.xml) optional metadata
    PLATE/Images/r01c01f01p01-ch1sk1fk1fl1.tiff   row, column, field, plane, channel, timepoint

File names are the truth: row/column become the well ('r02c03' -> 'B03'), field the site,
plane the z index, ``ch`` the channel and ``sk`` the timepoint. Index.xml is read only for
metadata such as channel names, so a plate whose index is missing or broken still opens (with
a warning). Pointing at the Images folder itself works too.
"""

from __future__ import annotations

import logging
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from openhcs.io.formats import PlateFormat, ScanResult, is_tiff_name
from openhcs.io.plate import ImageRecord, component_value, well_name

log = logging.getLogger(__name__)

NAME = "operaphenix"

IMAGE_RE = re.compile(
    r"^r(?P<row>\d+)c(?P<col>\d+)f(?P<site>\d+)p(?P<z>\d+)"
    r"-ch(?P<channel>\d+)sk(?P<timepoint>\d+)fk\d+fl\d+\.tiff?$",
    re.IGNORECASE,
)
INDEX_NAMES = ("index.idx.xml", "index.xml")
# Plate-level Index.xml elements copied into metadata, with their metadata names.
_PLATE_FIELDS = {
    "PlateID": "plate_id",
    "MeasurementID": "measurement_id",
    "PlateTypeName": "plate_type",
    "PlateRows": "plate_rows",
    "PlateColumns": "plate_cols",
}


def parse_name(name: str) -> dict[str, str] | None:
    """Components encoded in an Opera Phenix file name, or None if it is not one."""
    match = IMAGE_RE.match(name)
    if not match:
        return None
    parts = match.groupdict()
    return {
        "well": well_name(int(parts["row"]), parts["col"]),
        "site": component_value(parts["site"]),
        "channel": component_value(parts["channel"]),
        "z": component_value(parts["z"]),
        "timepoint": component_value(parts["timepoint"]),
    }


def _child(folder: Path, lower_name: str, want_dir: bool) -> Path | None:
    """The entry of ``folder`` with this name, compared case-insensitively."""
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.lower() == lower_name and entry.is_dir() == want_dir:
                return Path(entry.path)
    return None


def find_index(image_dir: Path) -> Path | None:
    for name in INDEX_NAMES:
        found = _child(image_dir, name, want_dir=False)
        if found:
            return found
    return None


def _has_opera_files(folder: Path) -> bool:
    with os.scandir(folder) as entries:
        return any(IMAGE_RE.match(e.name) for e in entries)


def image_dir(root: Path) -> Path | None:
    """The folder holding the images: ``root/Images``, or ``root`` itself if it is one."""
    images = _child(root, "images", want_dir=True)
    for folder in (images, root):
        if folder and (find_index(folder) or _has_opera_files(folder)):
            return folder
    return None


def claims(root: Path) -> bool:
    """True if there is an Images folder with an Index.xml or Opera Phenix file names."""
    return image_dir(root) is not None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child_text(elem: ET.Element, name: str) -> str | None:
    for child in elem:
        if _local(child.tag) == name:
            return (child.text or "").strip() or None
    return None


def parse_index(path: Path) -> dict[str, Any]:
    """Channel names and plate facts from Index.xml; a broken file gives {} and a warning."""
    meta: dict[str, Any] = {"metadata_file": path.name}
    names: dict[str, str] = {}
    try:
        for _, elem in ET.iterparse(path, events=("end",)):
            tag = _local(elem.tag)
            if tag in ("Entry", "Image"):
                channel = elem.get("ChannelID") or _child_text(elem, "ChannelID")
                name = _child_text(elem, "ChannelName")
                if channel and channel.isdigit() and name:
                    names.setdefault(component_value(channel), name)
                if tag == "Image":
                    elem.clear()  # thousands of these; keep memory flat
            elif tag in _PLATE_FIELDS and _PLATE_FIELDS[tag] not in meta and elem.text:
                text = elem.text.strip()
                meta[_PLATE_FIELDS[tag]] = int(text) if text.isdigit() else text
    except (ET.ParseError, OSError) as exc:
        log.warning("cannot parse Opera Phenix index %s (%s); using file names only", path, exc)
        return {}
    if names:
        meta["channel_names"] = names
    return meta


def scan(root: Path) -> ScanResult:
    """Every Opera Phenix image in the plate's Images folder, plus Index.xml metadata."""
    folder = image_dir(root) or root
    records: list[ImageRecord] = []
    skipped: list[str] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if not is_tiff_name(entry.name) or not entry.is_file():
                continue
            parts = parse_name(entry.name)
            if parts is None:
                skipped.append(entry.path)
                continue
            records.append(ImageRecord(path=Path(entry.path), **parts))
    if skipped:
        log.warning("%s: ignored %d TIFF file(s) not named like Opera Phenix images, e.g. %s",
                    folder, len(skipped), skipped[0])
    index = find_index(folder)
    if index is None:
        log.warning("%s has no Index.xml; channel names and plate metadata are unknown", folder)
        return ScanResult(records=records)
    return ScanResult(records=records, metadata=parse_index(index))


FORMAT = PlateFormat(
    name=NAME,
    looks_for="an Images/ folder with Index.xml or files named like r01c01f01p01-ch1sk1fk1fl1.tiff",
    claims=claims,
    scan=scan,
)
