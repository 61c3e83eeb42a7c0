"""The default demo pipeline: flat-field, background, stitch, measure nuclei.

Kept next to the demo plate because its options are tuned for it (nucleus size, overlap
and site grid); the functions themselves are the generic registered ones.
"""

from __future__ import annotations

from openhcs.core.pipeline import Pipeline
from openhcs.core.steps import FunctionStep
from openhcs.processing.filters import subtract_background
from openhcs.processing.flatfield import correct_flatfield
from openhcs.processing.measurement import measure_nuclei
from openhcs.processing.stitching import stitch_sites

BACKGROUND_RADIUS = 25  # larger than the biggest cytoplasm blob's half-width
MIN_NUCLEUS_AREA = 40


def default_pipeline(grid: tuple[int, int] = (2, 2), overlap: float = 0.1) -> Pipeline:
    """Per well: flat-field and background per channel, stitch sites, count nuclei.

    Example::

        >>> [step.name for step in default_pipeline()]
        ['flatfield', 'background', 'stitch', 'measure']
    """
    return Pipeline(
        [
            FunctionStep(func=correct_flatfield, name="flatfield", variable_components=("site",), group_by="channel"),
            FunctionStep(
                func=(subtract_background, {"radius": BACKGROUND_RADIUS}),
                name="background",
                variable_components=("site",),
                group_by="channel",
            ),
            FunctionStep(
                func=(stitch_sites, {"grid": tuple(grid), "overlap": overlap}),
                name="stitch",
                variable_components=("site",),
                group_by="channel",
            ),
            FunctionStep(
                func=(measure_nuclei, {"nuclei_index": 0, "min_area": MIN_NUCLEUS_AREA}),
                name="measure",
                variable_components=("channel",),
                group_by="site",
            ),
        ],
        name="demo: nuclei per well",
    )
