"""Image processing functions for openhcs pipelines.

Importing this package imports every built-in module so their ``@register`` decorators
run; :func:`openhcs.processing.registry.list_functions` then lists them all. Plugins are
loaded explicitly with :func:`openhcs.processing.registry.load_plugins`.
"""

from openhcs.processing import (  # noqa: F401  (imported for registration)
    filters,
    flatfield,
    measurement,
    normalization,
    projection,
    segmentation,
    stitching,
)
from openhcs.processing.checkpoint import StepCancelled, cancellation_scope, checkpoint
from openhcs.processing.filters import denoise, subtract_background
from openhcs.processing.flatfield import correct_flatfield, estimate_flatfield
from openhcs.processing.measurement import measure_nuclei
from openhcs.processing.normalization import normalize_percentile
from openhcs.processing.projection import project_z
from openhcs.processing.registry import (
    FunctionInfo,
    ParamInfo,
    get_function,
    list_functions,
    load_plugins,
    register,
)
from openhcs.processing.segmentation import segment_nuclei
from openhcs.processing.stitching import stitch_sites

__all__ = [
    "FunctionInfo",
    "ParamInfo",
    "StepCancelled",
    "cancellation_scope",
    "checkpoint",
    "correct_flatfield",
    "denoise",
    "estimate_flatfield",
    "get_function",
    "list_functions",
    "load_plugins",
    "measure_nuclei",
    "normalize_percentile",
    "project_z",
    "register",
    "segment_nuclei",
    "stitch_sites",
    "subtract_background",
]
