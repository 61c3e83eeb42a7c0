"""Nucleus segmentation: the classic Otsu + distance-transform watershed recipe.

Nuclei in DAPI images are bright, compact and convex, so a global Otsu threshold separates
them from background, and touching pairs are split at the neck of their distance
transform. The distance transform is blurred slightly so an elongated nucleus has one
peak, and peaks as close as ``min_distance`` pixels still seed separate nuclei: the default
of 3 splits a small dim nucleus leaning on a big bright one, while nuclei of aspect ratio
up to ~2 stay whole (measured on synthetic nuclei of radius 5-9 px).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.filters import threshold_otsu
from skimage.segmentation import watershed

from openhcs.processing.checkpoint import checkpoint
from openhcs.processing.normalization import check_stack
from openhcs.processing.registry import register

_DISTANCE_SIGMA = 1.0  # pixels; 0.5-1.5 all work, 1.0 splits best on the demo plate


def label_nuclei(
    plane: np.ndarray,
    min_area: int = 30,
    smooth_sigma: float = 1.0,
    min_distance: int = 3,
    threshold_scale: float = 1.0,
) -> np.ndarray:
    """Label the nuclei of one 2-D plane; int32 labels, 0 is background."""
    image = ndi.gaussian_filter(np.asarray(plane, dtype=np.float32), smooth_sigma)
    if float(image.max()) <= float(image.min()):
        return np.zeros(image.shape, dtype=np.int32)
    mask = image > threshold_otsu(image) * threshold_scale
    components, _ = ndi.label(ndi.binary_fill_holes(mask))
    too_small = np.bincount(components.ravel()) < min_area  # (remove_small_objects' API moved)
    too_small[0] = True
    mask = ~too_small[components]
    if not mask.any():
        return np.zeros(image.shape, dtype=np.int32)
    components[~mask] = 0
    distance = ndi.distance_transform_edt(mask)
    # a light blur merges the plateaus of elongated nuclei into one peak
    distance = ndi.gaussian_filter(distance, _DISTANCE_SIGMA)
    peaks = peak_local_max(
        distance,
        min_distance=max(1, int(min_distance)),
        labels=components,
        exclude_border=False,
    )
    markers = np.zeros(image.shape, dtype=np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1, dtype=np.int32)
    labels = watershed(-distance, markers, mask=mask).astype(np.int32)
    return labels


@register(category="segmentation")
def segment_nuclei(
    stack: np.ndarray,
    min_area: int = 30,
    smooth_sigma: float = 1.0,
    min_distance: int = 3,
    threshold_scale: float = 1.0,
) -> np.ndarray:
    """Label nuclei in each plane: int32 labels, same shape as ``stack``, 0 = background.

    Otsu threshold (times ``threshold_scale``) after a gaussian of ``smooth_sigma``, holes
    filled, objects under ``min_area`` pixels removed, touching nuclei split by a watershed
    on the distance transform seeded by peaks at least ``min_distance`` apart.

    Example::

        >>> from skimage.draw import disk
        >>> img = np.zeros((1, 64, 64)); img[0][disk((20, 20), 6)] = 1; img[0][disk((45, 40), 6)] = 1
        >>> int(segment_nuclei(img).max())
        2
    """
    arr = check_stack(stack)
    out = np.empty(arr.shape, dtype=np.int32)
    for i, plane in enumerate(arr):
        checkpoint()
        out[i] = label_nuclei(plane, min_area, smooth_sigma, min_distance, threshold_scale)
    return out
