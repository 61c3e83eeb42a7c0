"""Open a plate folder: find its layout, index its images, check them.

``open_plate`` is the one entry point. It refuses a bad plate up front, with an error that
names the folder or file, rather than letting a pipeline fail on well 317 an hour later.
Validation reads only TIFF headers (shape and dtype), never pixel data, so it stays cheap
even for a 1536-well plate.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from openhcs.io.errors import (
    CorruptImage,
    DuplicateImage,
    EmptyPlate,
    MixedShapes,
    PlateError,
    PlateNotFound,
    UnknownLayout,
)
from openhcs.io.formats import PlateFormat, available_formats
from openhcs.io.plate import ImageRecord, Plate, read_header

log = logging.getLogger(__name__)


def open_plate(path: str | os.PathLike[str], validate: bool = True) -> Plate:
    """Detect the layout of the plate at ``path`` and index its images.

    With ``validate=True`` every image's TIFF header is read: unreadable files raise
    ``CorruptImage`` and images of differing shapes raise ``MixedShapes``. Otherwise only
    the first image is looked at, to learn the image shape and dtype.
    """
    root = _plate_folder(path)
    fmt = detect_format(root)
    try:
        result = fmt.scan(root)
    except OSError as exc:
        raise PlateError(f"cannot list plate folder {root}: {exc}") from exc
    if not result.records:
        raise EmptyPlate(f"{root} looks like an {fmt.name} plate but has no images "
                         f"(looked for {fmt.looks_for})")
    records = result.records
    _check_duplicates(records)
    if validate:
        shape, dtype = check_headers(records)
    else:
        shape, dtype = read_header(min(records, key=ImageRecord.sort_key).path)
    return Plate(path=root, format=fmt.name, records=tuple(records), image_shape=shape,
                 dtype=dtype, metadata=result.metadata)


def _plate_folder(path: str | os.PathLike[str]) -> Path:
    root = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))
    if not root.exists():
        raise PlateNotFound(f"plate folder {root} does not exist")
    if not root.is_dir():
        raise PlateNotFound(f"plate path {root} is not a folder")
    return root


def detect_format(root: Path) -> PlateFormat:
    """The one layout that claims ``root``; ``UnknownLayout`` if none or several do."""
    try:
        claimed = [fmt for fmt in available_formats() if fmt.claims(root)]
        with os.scandir(root) as entries:
            empty = next(entries, None) is None
    except OSError as exc:
        raise PlateError(f"cannot list plate folder {root}: {exc}") from exc
    if len(claimed) == 1:
        return claimed[0]
    looked_for = "; ".join(f"{fmt.name}: {fmt.looks_for}" for fmt in available_formats())
    if not claimed:
        hint = " (the folder is empty)" if empty else ""
        raise UnknownLayout(f"{root} is not a recognised plate folder{hint}; looked for {looked_for}")
    names = " and ".join(fmt.name for fmt in claimed)
    raise UnknownLayout(f"{root} matches both {names} layouts; move one set of images elsewhere")


def _check_duplicates(records: Sequence[ImageRecord]) -> None:
    seen: dict[tuple[str, ...], ImageRecord] = {}
    for record in records:
        first = seen.setdefault(record.key(), record)
        if first is not record:
            raise DuplicateImage(
                f"{first.path} and {record.path} are both well {record.well} site "
                f"{record.site} channel {record.channel} z {record.z} timepoint {record.timepoint}"
            )


def check_headers(records: Sequence[ImageRecord]) -> tuple[tuple[int, int], np.dtype]:
    """Read every header; return the common shape and the dtype a stack of them would have."""
    headers: list[tuple[Path, tuple[int, ...], np.dtype]] = []
    corrupt: list[CorruptImage] = []
    for record in records:
        try:
            shape, dtype = read_header(record.path)
        except CorruptImage as exc:
            corrupt.append(exc)
            continue
        headers.append((record.path, shape, dtype))
    if corrupt:
        more = f" (and {len(corrupt) - 1} more unreadable images)" if len(corrupt) > 1 else ""
        raise CorruptImage(f"{corrupt[0]}{more}") from corrupt[0]
    shape = _common_shape(headers)
    dtypes = {dtype for _, _, dtype in headers}
    if len(dtypes) > 1:
        log.warning("images have mixed dtypes %s; stacks will be %s",
                    sorted(map(str, dtypes)), np.result_type(*dtypes))
    return shape, np.result_type(*dtypes)


def _common_shape(headers: list[tuple[Path, tuple[int, ...], np.dtype]]) -> tuple[int, int]:
    counts = Counter(shape for _, shape, _ in headers)
    expected, n_expected = counts.most_common(1)[0]
    if len(counts) > 1:
        odd = [(path, shape) for path, shape, _ in headers if shape != expected]
        example = next(path for path, shape, _ in headers if shape == expected)
        raise MixedShapes(
            f"{odd[0][0]} has shape {odd[0][1]}, expected {expected} like {n_expected} other "
            f"images (e.g. {example}); {len(odd)} image(s) differ"
        )
    return expected  # type: ignore[return-value]
