"""Writing results so that an interrupted run never leaves a half-written file.

Every output goes to a hidden temp file (``.<name>.<random>.tmp``) in the destination
folder, is flushed and fsynced, and only then renamed over the destination with
``os.replace`` — atomic on POSIX and Windows because both names are on the same file system.
If anything fails, the temp file is removed and the destination is untouched. Operating
system failures become ``OutputError`` with the path and a plain cause ("disk full",
"permission denied"), because the person who sees it needs to fix the disk, not the code.
"""

from __future__ import annotations

import csv
import errno
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np
import tifffile

from openhcs.io.errors import OutputError

_MODES = ("w", "wt", "wb")
_CAUSES = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "read-only file system",
    errno.ENOTDIR: "a parent path is not a folder",
    errno.EISDIR: "the destination is a folder",
    errno.ENAMETOOLONG: "file name too long",
}
_FULL_BELOW = 1 << 20  # bytes free under which an errno-less short write means "disk full"


def _current_umask() -> int:
    # Read once at import: os.umask can only be read by setting it.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def _nearly_full(folder: Path) -> bool:
    try:
        stat = os.statvfs(folder)
    except (OSError, AttributeError):  # AttributeError: no statvfs on Windows
        return False
    return stat.f_bavail * stat.f_frsize < _FULL_BELOW


def output_error(path: Path, exc: OSError) -> OutputError:
    """An ``OutputError`` naming ``path`` and the cause of ``exc`` in plain words.

    Short writes (numpy's ``tofile``, used by tifffile, reports "N requested and M written"
    with no errno) count as "disk full" when the destination's file system is nearly full,
    so call this before freeing the temp file's space.
    """
    cause = _CAUSES.get(exc.errno or 0)
    if cause is None and exc.errno is None and _nearly_full(path.parent):
        cause = "disk full"
    cause = cause or exc.strerror or type(exc).__name__
    return OutputError(f"cannot write {path}: {cause} ({exc})")


def _final_mode(dest: Path) -> int:
    """Keep an existing file's permissions; new files get the usual 0666 minus umask."""
    try:
        return dest.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_UMASK


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (not possible on every OS; best effort)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove(path: str) -> None:
    """Best effort: a failure here must not hide the error that made us clean up."""
    try:
        os.unlink(path)
    except OSError:
        pass


def _make_temp(dest: Path) -> tuple[int, str]:
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name[:100]}.", suffix=".tmp")
    except FileExistsError as exc:  # mkdir found a file where a folder should be
        raise OutputError(f"cannot write {dest}: a parent path is not a folder ({exc})") from exc
    except OSError as exc:
        raise output_error(dest, exc) from exc


@contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temp file for writing; on success it replaces ``path``, on error it vanishes.

    ``mode`` is ``"wb"`` (binary) or ``"w"``/``"wt"`` (UTF-8 text, newlines untranslated).
    Parent folders are created. ``OSError`` from creating, writing or renaming is re-raised
    as ``OutputError``; any other exception from the body propagates unchanged.

    >>> with atomic_write("out/result.txt", "w") as f:  # doctest: +SKIP
    ...     f.write("done\\n")
    """
    if mode not in _MODES:
        raise ValueError(f"atomic_write mode must be one of {_MODES}, got {mode!r}")
    dest = Path(path)
    fd, tmp = _make_temp(dest)
    os.close(fd)  # reopen by name, so handle.name is a path (tifffile needs one)
    text = {} if "b" in mode else {"encoding": "utf-8", "newline": ""}
    try:
        with open(tmp, mode, **text) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
            if hasattr(os, "fchmod"):  # POSIX (Windows only from Python 3.13)
                os.fchmod(handle.fileno(), _final_mode(dest))
        os.replace(tmp, dest)
    except BaseException as exc:
        error = output_error(dest, exc) if isinstance(exc, OSError) else None
        _remove(tmp)
        if error is not None:
            raise error from exc
        raise
    _fsync_dir(dest.parent)


def write_tiff_atomic(path: str | os.PathLike[str], array: np.ndarray) -> Path:
    """Write ``array`` as an uncompressed grayscale TIFF (2-D, or a 3-D stack of pages)."""
    dest = Path(path)
    with atomic_write(dest, "wb") as handle:
        tifffile.imwrite(handle, np.asarray(array), compression=None, photometric="minisblack")
    return dest


def write_csv_atomic(
    path: str | os.PathLike[str],
    rows: Iterable[Mapping[str, Any]],
    fieldnames: Sequence[str] | None = None,
) -> Path:
    """Write ``rows`` as CSV; columns default to every key, in first-seen order.

    Missing values are written as empty cells. With explicit ``fieldnames``, a row with a
    key not among them raises ``ValueError`` (and no file is written).
    """
    dest = Path(path)
    rows = list(rows)
    if fieldnames is None:
        fieldnames = list(dict.fromkeys(key for row in rows for key in row))
    with atomic_write(dest, "w") as handle:
        if fieldnames:
            writer = csv.DictWriter(handle, fieldnames=list(fieldnames), restval="")
            writer.writeheader()
            writer.writerows(rows)
    return dest
