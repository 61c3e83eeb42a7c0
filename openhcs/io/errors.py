"""Errors raised while reading plates and writing results.

They all derive from ``PlateError`` (a ``ValueError``) so callers such as the orchestrator can
refuse a bad plate with one ``except`` clause, while tests and front ends can still tell the
cases apart. Every message names the file or folder involved and what is wrong with it,
because the person reading it usually has a terminal and a file browser, not a debugger.
"""

from __future__ import annotations


class PlateError(ValueError):
    """A plate folder (or an output next to it) cannot be used."""


class PlateNotFound(PlateError):
    """The plate path does not exist or is not a folder."""


class EmptyPlate(PlateError):
    """The folder has a recognised layout but no images in it."""


class UnknownLayout(PlateError):
    """The folder matches no supported microscope layout (or more than one)."""


class CorruptImage(PlateError):
    """An image file cannot be read as a 2-D TIFF."""


class MixedShapes(PlateError):
    """The images of one plate do not all have the same shape."""


class DuplicateImage(PlateError):
    """Two files claim the same well, site, channel, z and timepoint."""


class OutputError(PlateError):
    """An output file cannot be written (permission denied, disk full, read-only...)."""


__all__ = [
    "CorruptImage",
    "DuplicateImage",
    "EmptyPlate",
    "MixedShapes",
    "OutputError",
    "PlateError",
    "PlateNotFound",
    "UnknownLayout",
]
