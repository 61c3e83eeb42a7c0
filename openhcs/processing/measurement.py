"""Per-nucleus measurements across the channels of one image.

The stack is the channels of one field (or mosaic): one plane is segmented, every plane is
measured inside those nuclei. Rows are plain dicts so they go straight to CSV.
"""

from __future__ import annotations

import numpy as np
from skimage.measure import regionprops_table

from openhcs.processing.checkpoint import checkpoint
from openhcs.processing.normalization import check_stack
from openhcs.processing.registry import register
from openhcs.processing.segmentation import label_nuclei


@register(category="measurement")
def measure_nuclei(
    stack: np.ndarray,
    nuclei_index: int = 0,
    min_area: int = 30,
    smooth_sigma: float = 1.0,
    min_distance: int = 3,
) -> tuple[np.ndarray, list[dict]]:
    """Segment plane ``nuclei_index`` and measure every channel inside each nucleus.

    Returns ``(copy_of_stack, rows)``, one row per nucleus with ``label``, ``area``,
    ``centroid_y``, ``centroid_x`` and ``mean_intensity_ch{k}`` for plane ``k-1``.

    Example::

        >>> from skimage.draw import disk
        >>> img = np.zeros((2, 64, 64)); img[0][disk((20, 20), 6)] = 1; img[1] += 3
        >>> _, rows = measure_nuclei(img)
        >>> len(rows), rows[0]["mean_intensity_ch2"]
        (1, 3.0)
    """
    arr = check_stack(stack)
    if not -len(arr) <= nuclei_index < len(arr):
        raise ValueError(f"nuclei_index {nuclei_index} out of range for a stack of {len(arr)} planes")
    checkpoint()
    labels = label_nuclei(arr[nuclei_index], min_area=min_area, smooth_sigma=smooth_sigma, min_distance=min_distance)
    checkpoint()
    props = regionprops_table(
        labels,
        intensity_image=np.moveaxis(arr, 0, -1).astype(np.float32, copy=False),
        properties=("label", "area", "centroid", "intensity_mean"),
    )
    n_channels = len(arr)
    rows = []
    for i in range(len(props["label"])):
        row = {
            "label": int(props["label"][i]),
            "area": int(props["area"][i]),
            "centroid_y": float(props["centroid-0"][i]),
            "centroid_x": float(props["centroid-1"][i]),
        }
        for c in range(n_channels):
            row[f"mean_intensity_ch{c + 1}"] = float(props[f"intensity_mean-{c}"][i])
        rows.append(row)
    return arr.copy(), rows
