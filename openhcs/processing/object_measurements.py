"""Per-object measurements comparable to CellProfiler's, computed by ``cp-measure``.

cp-measure is CellProfiler's measurement code as a library (MeasureObjectSizeShape,
MeasureObjectIntensity, MeasureTexture, MeasureGranularity, MeasureObjectNeighbors, ...),
so the numbers match what a CellProfiler pipeline reports. The stack holds one field's
labels plane (``labels_index``) and its intensity planes — a step with
``variable_components=('channel',)`` after a segmentation of one channel — so every row
keeps the field's well and site (added by the well runner) and the object's ``label``.
Columns are CellProfiler's feature names with their module prefix (``AreaShape_Area``,
``Intensity_MeanIntensity_ch2``): intensity features carry ``_ch{k}`` for stack plane ``k-1``.

Each channel's intensities are scaled into CellProfiler's 0..1 range first: by ``intensity_scale`` when
given (e.g. 65535 for raw 16-bit data, as CellProfiler divides by the type's maximum),
else by 1 for data already within 0..1, 255 for 8-bit values and 65535 for 16-bit values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from openhcs.processing.checkpoint import checkpoint
from openhcs.processing.contracts import Contract
from openhcs.processing.normalization import check_stack
from openhcs.processing.registry import register

SHAPE_FEATURES = ("sizeshape", "zernike", "feret")
INTENSITY_FEATURES = ("intensity", "texture", "granularity", "radial_distribution")
ALL_FEATURES = (*SHAPE_FEATURES, *INTENSITY_FEATURES, "neighbors")
DEFAULT_FEATURES = ("sizeshape", "intensity", "texture", "granularity", "neighbors")
_PREFIX = {
    "sizeshape": "AreaShape_", "zernike": "AreaShape_", "feret": "AreaShape_", "intensity": "",
    "texture": "Texture_", "granularity": "", "radial_distribution": "", "neighbors": "",
}


def intensity_range(planes: np.ndarray, intensity_scale: float = 0.0) -> float:
    """The value that maps to 1.0 (see the module docstring)."""
    if intensity_scale > 0:
        return float(intensity_scale)
    top = float(planes.max()) if planes.size else 0.0
    if top <= 1.0:
        return 1.0
    integral = bool(np.all(planes == np.round(planes)))
    if integral and top <= 255:
        return 255.0
    return 65535.0 if top <= 65535 else top


def _split(stack: np.ndarray, labels_index: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
    arr = check_stack(stack)
    if not -len(arr) <= labels_index < len(arr):
        raise ValueError(f"labels_index {labels_index} out of range for a stack of {len(arr)} planes")
    index = labels_index % len(arr)
    labels = arr[index]
    if not (np.issubdtype(labels.dtype, np.integer) or np.all(labels == np.round(labels))) or labels.min() < 0:
        raise ValueError(
            f"plane {index} of the stack must hold object labels (non-negative integers), got {labels.dtype} values; "
            "segment that channel first"
        )
    channels = [k for k in range(len(arr)) if k != index]
    return arr, labels.astype(np.int32), channels


def measure_stack(
    stack: np.ndarray,
    features: Sequence[str],
    labels_index: int = 0,
    intensity_scale: float = 0.0,
    options: dict[str, dict] | None = None,
) -> tuple[np.ndarray, list[dict]]:
    """The measurements ``features`` (names of :data:`ALL_FEATURES`) of every object."""
    unknown = [f for f in features if f not in ALL_FEATURES]
    if unknown:
        raise ValueError(f"unknown features {unknown}; choose from {', '.join(ALL_FEATURES)}")
    from cp_measure.bulk import get_core_measurements, get_multimask_measurements
    from skimage.segmentation import relabel_sequential

    arr, labels, channels = _split(stack, labels_index)
    options = options or {}
    ids = np.unique(labels)
    ids = ids[ids > 0]
    rows = [{"label": int(i)} for i in ids]
    if not len(ids):
        return arr.copy(), []
    masks = relabel_sequential(labels)[0]  # cp-measure indexes objects 1..N
    core = get_core_measurements(sanitize=False)
    blank = np.zeros(labels.shape, np.float32)
    for feature in features:
        checkpoint()
        if feature == "neighbors":
            # objects touching each other; the closest-object *numbers* are left out, as
            # cp-measure reports them inconsistently when objects are their own neighbours
            found = get_multimask_measurements()["neighbors"](
                masks, masks, **{"distance_method": "Adjacent", **options.get(feature, {})})
            _add(rows, {k: v for k, v in found.items() if "ObjectNumber" not in k}, "", "")
        elif feature in SHAPE_FEATURES:
            _add(rows, core[feature](masks, blank, **options.get(feature, {})), _PREFIX[feature], "")
        else:
            for k in channels:
                checkpoint()
                pixels = np.clip(arr[k].astype(np.float32) / intensity_range(arr[k], intensity_scale), 0.0, 1.0)
                found = core[feature](masks, pixels, **options.get(feature, {}))
                _add(rows, found, _PREFIX[feature], f"_ch{k + 1}")
    return arr.copy(), rows


def _add(rows: list[dict], found: dict, prefix: str, suffix: str) -> None:
    for name, values in found.items():
        values = np.asarray(values)
        if values.shape[:1] != (len(rows),):
            raise ValueError(f"cp-measure returned {values.shape[0]} values of {name} for {len(rows)} objects")
        for row, value in zip(rows, values.tolist(), strict=True):
            row[f"{prefix}{name}{suffix}"] = value


def _one(feature: str, doc: str, contract: Contract) -> Callable:
    """A registered function measuring one CellProfiler module's features."""

    def func(stack: np.ndarray, labels_index: int = 0, intensity_scale: float = 0.0) -> tuple[np.ndarray, list[dict]]:
        return measure_stack(stack, (feature,), labels_index, intensity_scale)

    func.__name__ = func.__qualname__ = f"cp_measure_{feature}"
    func.__doc__ = (
        f"{doc}\n\nPlane ``labels_index`` of the stack holds the objects' labels, the other planes "
        "the channels measured; ``intensity_scale`` maps intensities onto 0..1 (0 = from the data).\n\n"
        "Example::\n\n    FunctionStep(func=[segment_first_channel, cp_measure_" + feature + "],\n"
        "                 variable_components=('channel',), group_by=None)\n"
    )
    globals()[func.__name__] = func  # importable by name, so it pickles by reference
    return register("measurement", contract)(func)


cp_measure_sizeshape = _one("sizeshape", "Area, perimeter, axes, eccentricity, solidity... of each object (CellProfiler MeasureObjectSizeShape).", Contract.LABELS_TO_TABLE)
cp_measure_zernike = _one("zernike", "Zernike shape moments of each object (CellProfiler MeasureObjectSizeShape).", Contract.LABELS_TO_TABLE)
cp_measure_feret = _one("feret", "Minimum and maximum Feret diameters of each object (CellProfiler MeasureObjectSizeShape).", Contract.LABELS_TO_TABLE)
cp_measure_intensity = _one("intensity", "Integrated, mean, median, quartile and edge intensities of each object (CellProfiler MeasureObjectIntensity).", Contract.LABELS_IMAGE_TO_TABLE)
cp_measure_texture = _one("texture", "Haralick texture features of each object (CellProfiler MeasureTexture).", Contract.LABELS_IMAGE_TO_TABLE)
cp_measure_granularity = _one("granularity", "Granularity spectrum of each object (CellProfiler MeasureGranularity).", Contract.LABELS_IMAGE_TO_TABLE)
cp_measure_radial_distribution = _one("radial_distribution", "Radial intensity distribution in each object (CellProfiler MeasureObjectIntensityDistribution).", Contract.LABELS_IMAGE_TO_TABLE)
cp_measure_neighbors = _one("neighbors", "Number of touching neighbours, closest distances and percent touching of each object (CellProfiler MeasureObjectNeighbors, adjacent).", Contract.LABELS_TO_TABLE)


@register(category="measurement", contract=Contract.LABELS_IMAGE_TO_TABLE)
def measure_objects(
    stack: np.ndarray,
    labels_index: int = 0,
    features: tuple[str, ...] = DEFAULT_FEATURES,
    intensity_scale: float = 0.0,
) -> tuple[np.ndarray, list[dict]]:
    """CellProfiler's size/shape, intensity, texture, granularity and neighbour measurements per object.

    Plane ``labels_index`` holds the labels, every other plane is a channel measured inside
    them; one row per object with ``label`` and the ``features`` chosen from
    ``sizeshape, zernike, feret, intensity, texture, granularity, radial_distribution,
    neighbors``. Returns ``(copy_of_stack, rows)``.

    Example::

        >>> labels = np.zeros((32, 32)); labels[4:10, 4:10] = 1
        >>> image = np.where(labels > 0, 0.5, 0.1)
        >>> _, rows = measure_objects(np.stack([labels, image]), features=("sizeshape", "intensity"))
        >>> rows[0]["AreaShape_Area"], rows[0]["Intensity_MeanIntensity_ch2"]
        (36.0, 0.5)
    """
    return measure_stack(stack, tuple(features), labels_index, intensity_scale)


def register_catalog() -> list[str]:
    """Registered on import (so the compiler sees the contracts); listed for the registry."""
    return ["measure_objects", *(f"cp_measure_{f}" for f in ALL_FEATURES)]
