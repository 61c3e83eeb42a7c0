"""How a 2-D scikit-image function is applied to an openhcs stack, one adapter per result shape.

An adapter takes the scikit-image function, the stack ``(n, y, x)`` and the keyword
options, calls the function on each plane (planes are sites or channels, never a volume)
and returns what the stack convention expects: a new stack, or the stack unchanged plus
rows. Outputs are float32 for images, uint8 0/1 for masks and int32 for labels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from openhcs.processing.checkpoint import checkpoint
from openhcs.processing.contracts import Contract, Kind
from openhcs.processing.normalization import check_stack

_OUT_DTYPE = {Kind.IMAGE: np.float32, Kind.MASK: np.uint8, Kind.LABELS: np.int32}
RANK_LEVELS = 1024  # float planes are mapped to 10-bit integers for rank filters (fast histograms)


class AdapterError(ValueError):
    """A scikit-image function returned something the stack convention cannot hold."""


def _planes(func: Callable, stack: np.ndarray, contract: Contract):
    """The input planes, in the dtype the function expects for its input kind."""
    arr = check_stack(stack)
    if contract.inputs[0] is Kind.MASK:
        return arr != 0
    if contract.inputs[0] is Kind.LABELS:
        if not (np.issubdtype(arr.dtype, np.integer) or np.all(arr == np.round(arr))):
            raise AdapterError(f"{func.__name__} needs integer labels, got {arr.dtype} values")
        return arr.astype(np.int32, copy=False)
    return arr


def _stacked(func: Callable, results: list, kind: Kind) -> np.ndarray:
    shapes = {np.shape(r) for r in results}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise AdapterError(f"skimage {func.__name__} returned planes of shapes {sorted(shapes)}, not one 2-D shape")
    return np.stack([np.asarray(r) for r in results]).astype(_OUT_DTYPE[kind])


def per_plane(func: Callable, stack: np.ndarray, kwargs: dict[str, Any], contract: Contract) -> np.ndarray:
    """Call ``func(plane, **kwargs)`` on each plane; the result must be one 2-D array."""
    results = []
    for plane in _planes(func, stack, contract):
        checkpoint()
        result = func(plane, **kwargs)
        if isinstance(result, tuple):  # e.g. relabel_sequential: (labels, forward, inverse)
            result = result[0]
        if not isinstance(result, np.ndarray):
            raise AdapterError(f"skimage {func.__name__} returned {type(result).__name__}, not an array")
        results.append(result)
    return _stacked(func, results, contract.output)


def unit_range(func: Callable, stack: np.ndarray, kwargs: dict[str, Any], contract: Contract) -> np.ndarray:
    """Like :func:`per_plane` for functions that need intensities in 0..1 (gamma, CLAHE):
    a float plane outside that range is rescaled to it first, by its own min and max."""
    arr = check_stack(stack)
    if np.issubdtype(arr.dtype, np.floating):
        lo = arr.min(axis=(1, 2), keepdims=True)
        hi = arr.max(axis=(1, 2), keepdims=True)
        outside = (lo < 0) | (hi > 1)
        span = np.where(hi > lo, hi - lo, 1)
        arr = np.where(outside, (arr - lo) / span, arr).astype(np.float32)
    return per_plane(func, arr, kwargs, contract)


def threshold(func: Callable, stack: np.ndarray, kwargs: dict[str, Any], contract: Contract) -> np.ndarray:
    """``plane > func(plane)``: a global (scalar) or local (array) threshold becomes a mask."""
    results = []
    for plane in _planes(func, stack, contract):
        checkpoint()
        if float(plane.max()) <= float(plane.min()):
            results.append(np.zeros(plane.shape, bool))  # a flat plane has no foreground
            continue
        results.append(plane > func(plane, **kwargs))
    return _stacked(func, results, Kind.MASK)


def classes(func: Callable, stack: np.ndarray, kwargs: dict[str, Any], contract: Contract) -> np.ndarray:
    """Multi-level thresholds: each pixel labelled by its class, 0 = below the first."""
    results = []
    for plane in _planes(func, stack, contract):
        checkpoint()
        results.append(np.digitize(plane, func(plane, **kwargs)))
    return _stacked(func, results, Kind.LABELS)


def rank(func: Callable, stack: np.ndarray, kwargs: dict[str, Any], contract: Contract) -> np.ndarray:
    """scikit-image rank filters over a disk of ``radius``; they need integer images.

    Integer planes within 0..65535 are used as they are; other planes are mapped linearly
    onto 0..1023 and the result mapped back, so a local mean of a float image stays in
    the image's units.
    """
    from skimage.morphology import disk

    options = dict(kwargs)
    footprint = disk(int(options.pop("radius", 3)))
    results = []
    for plane in _planes(func, stack, contract):
        checkpoint()
        lo, hi = float(plane.min()), float(plane.max())
        integral = np.issubdtype(plane.dtype, np.integer) or np.all(plane == np.round(plane))
        if integral and lo >= 0 and hi <= 65535:
            results.append(func(plane.astype(np.uint16), footprint, **options).astype(np.float32))
            continue
        span = (hi - lo) or 1.0
        scaled = np.round((plane - lo) / span * (RANK_LEVELS - 1)).astype(np.uint16)
        out = func(scaled, footprint, **options).astype(np.float32)
        results.append(out / (RANK_LEVELS - 1) * span + lo)
    return _stacked(func, results, contract.output)


def points(func: Callable, stack: np.ndarray, kwargs: dict[str, Any], contract: Contract):
    """Detectors returning coordinates (blobs, peaks, corners): one row per point.

    Rows have ``plane`` (index in the stack), ``y``, ``x`` and, for blob detectors, ``sigma``.
    """
    arr = check_stack(stack)
    rows = []
    for i, plane in enumerate(_planes(func, arr, contract)):
        checkpoint()
        found = np.asarray(func(plane, **kwargs))
        for point in found.reshape(len(found), -1) if found.size else ():
            row = {"plane": i, "y": float(point[0]), "x": float(point[1])}
            if len(point) > 2:
                row["sigma"] = float(point[2])
            rows.append(row)
    return arr.copy(), rows


def scalar(func: Callable, stack: np.ndarray, kwargs: dict[str, Any], contract: Contract):
    """Functions returning one number per plane: one row per plane (``plane``, the name)."""
    arr = check_stack(stack)
    rows = []
    for i, plane in enumerate(_planes(func, arr, contract)):
        checkpoint()
        value = func(plane, **kwargs)
        if np.ndim(value) != 0:
            raise AdapterError(f"skimage {func.__name__} returned {np.shape(value)} values, not one number")
        rows.append({"plane": i, func.__name__: float(value)})
    return arr.copy(), rows


def region_table(func: Callable, stack: np.ndarray, kwargs: dict[str, Any], contract: Contract):
    """``regionprops_table`` of the labels plane ``labels_index`` over the other planes.

    The stack holds the labels and the intensity planes of one field (a step with
    ``variable_components=('channel',)``); columns of intensity properties get the
    suffix ``_ch{k}`` for stack plane ``k-1``, like ``measure_nuclei``.
    """
    arr = check_stack(stack)
    options = dict(kwargs)
    index = int(options.pop("labels_index", 0))
    if not -len(arr) <= index < len(arr):
        raise AdapterError(f"labels_index {index} out of range for a stack of {len(arr)} planes")
    labels = _planes(func, arr[[index % len(arr)]], Contract.LABELS_TO_LABELS)[0]
    channels = [k for k in range(len(arr)) if k != index % len(arr)]
    intensity = np.moveaxis(arr[channels], 0, -1).astype(np.float32) if channels else None
    props = options.pop("properties", ("label", "area", "centroid", "intensity_mean"))
    if intensity is None:
        props = tuple(p for p in props if not p.startswith("intensity"))
    checkpoint()
    table = func(labels, intensity_image=intensity, properties=tuple(props), **options)
    rows = [{} for _ in range(len(table.get("label", ())))]
    for column, values in table.items():
        name = column
        head, _, tail = column.rpartition("-")
        if intensity is not None and column.startswith("intensity") and tail.isdigit():
            name = f"{head}_ch{channels[int(tail)] + 1}"
        elif column.startswith("intensity") and intensity is not None and len(channels) == 1:
            name = f"{column}_ch{channels[0] + 1}"
        for row, value in zip(rows, values, strict=True):
            row[name] = value.item() if hasattr(value, "item") else value
    return arr.copy(), rows


ADAPTERS: dict[str, Callable] = {
    "plane": per_plane,
    "unit": unit_range,
    "threshold": threshold,
    "classes": classes,
    "rank": rank,
    "points": points,
    "scalar": scalar,
    "regions": region_table,
}
