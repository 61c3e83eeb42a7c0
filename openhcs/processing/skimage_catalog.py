"""scikit-image's filters, morphology, exposure, restoration, segmentation, feature and
measure functions as openhcs processing functions, found by introspection.

A function qualifies when its first parameter is the image, every other parameter has a
default (or one is given in :data:`DEFAULTS`) and it is not in :data:`SKIPPED` (needs a
second image, returns something a stack cannot hold). Its wrapper takes a stack first,
applies the function to each plane through an adapter of
:mod:`openhcs.processing.skimage_adapters` and declares a contract; the rules for both are
below, by name, with ``image -> image`` per plane as the default.

Wrappers are named ``<submodule>_<function>`` (``filters_gaussian``,
``filters_rank_median``) and live in this module: ``from
openhcs.processing.skimage_catalog import filters_gaussian`` builds just that one
(importing one scikit-image submodule), so a worker unpickling a step pays for nothing
else. :func:`register_catalog` builds and registers all of them on the registry's first
query; nothing here runs when openhcs starts.
"""

from __future__ import annotations

import importlib
import inspect
import threading
from collections.abc import Callable
from typing import Any

from openhcs.processing.contracts import Contract

SUBMODULES = ("filters", "filters.rank", "morphology", "exposure", "restoration", "segmentation", "feature", "measure")

_IMAGE_PARAMS = {"image", "ar", "data", "label_image", "label_img", "img", "labels"}

# options that decide the *shape* of the result, not the processing: fixed, not offered
PINNED: dict[str, Any] = {
    "channel_axis": None, "multichannel": False, "return_num": False, "return_tree": False,
    "extended_output": False,
}
_DROPPED = {"out"}

SKIPPED: dict[str, str] = {
    "filters.rank_order": "returns two arrays",
    "filters.try_all_threshold": "draws a figure",
    "filters.filter_forward": "needs an impulse response",
    "filters.filter_inverse": "needs an impulse response",
    "filters.wiener": "needs an impulse response",
    "filters.rank.windowed_histogram": "returns a histogram per pixel",
    "exposure.histogram": "returns a histogram",
    "exposure.cumulative_distribution": "returns a distribution",
    "exposure.is_low_contrast": "returns a boolean",
    "morphology.max_tree": "returns a tree",
    "segmentation.quickshift": "needs colour images",
    "feature.daisy": "returns descriptors",
    "feature.hog": "returns descriptors",
    "feature.hessian_matrix": "returns several arrays",
    "feature.structure_tensor": "returns several arrays",
    "feature.multiscale_basic_features": "returns a feature per pixel",
    "feature.corner_foerstner": "returns two arrays",
    "measure.find_contours": "returns polygons",
    "measure.regionprops": "returns objects (regionprops_table is registered)",
    "measure.moments": "returns a matrix",
    "measure.moments_central": "returns a matrix",
    "measure.centroid": "returns a point",
    "measure.inertia_tensor": "returns a matrix",
    "measure.inertia_tensor_eigvals": "returns a list",
    "restoration.unwrap_phase": "for phase images only",
}

# defaults for options scikit-image requires, so every wrapper runs as it is
DEFAULTS: dict[str, dict[str, Any]] = {
    "filters.difference_of_gaussians": {"low_sigma": 1.0},
    "morphology.isotropic_erosion": {"radius": 3},
    "morphology.isotropic_dilation": {"radius": 3},
    "morphology.isotropic_opening": {"radius": 3},
    "morphology.isotropic_closing": {"radius": 3},
    "morphology.remove_objects_by_distance": {"min_distance": 10},
    "segmentation.morphological_chan_vese": {"num_iter": 35},
    "feature.local_binary_pattern": {"P": 8, "R": 1.0},
    "measure.regionprops_table": {"properties": ("label", "area", "centroid", "intensity_mean")},
}

_IMAGE, _MASK, _LABELS = Contract.IMAGE_TO_IMAGE, Contract.IMAGE_TO_MASK, Contract.IMAGE_TO_LABELS
# (adapter, contract) by qualified name; unlisted names are ("plane", image -> image)
RULES: dict[str, tuple[str, Contract]] = {
    "filters.threshold_multiotsu": ("classes", _LABELS),
    "filters.rank.threshold": ("rank", _IMAGE),
    "morphology.label": ("plane", Contract.MASK_TO_LABELS),
    "measure.label": ("plane", Contract.MASK_TO_LABELS),
    "morphology.local_maxima": ("plane", _MASK),
    "morphology.local_minima": ("plane", _MASK),
    "morphology.convex_hull_image": ("plane", Contract.MASK_TO_MASK),
    "morphology.convex_hull_object": ("plane", Contract.MASK_TO_MASK),
    "morphology.medial_axis": ("plane", Contract.MASK_TO_MASK),
    "morphology.skeletonize": ("plane", Contract.MASK_TO_MASK),
    "morphology.thin": ("plane", Contract.MASK_TO_MASK),
    "morphology.remove_small_holes": ("plane", Contract.MASK_TO_MASK),
    "morphology.remove_small_objects": ("plane", Contract.LABELS_TO_LABELS),
    "morphology.remove_objects_by_distance": ("plane", Contract.LABELS_TO_LABELS),
    "morphology.isotropic_erosion": ("plane", Contract.MASK_TO_MASK),
    "morphology.isotropic_dilation": ("plane", Contract.MASK_TO_MASK),
    "morphology.isotropic_opening": ("plane", Contract.MASK_TO_MASK),
    "morphology.isotropic_closing": ("plane", Contract.MASK_TO_MASK),
    "segmentation.watershed": ("plane", _LABELS),
    "segmentation.slic": ("plane", _LABELS),
    "segmentation.felzenszwalb": ("plane", _LABELS),
    "segmentation.chan_vese": ("plane", _MASK),
    "segmentation.morphological_chan_vese": ("plane", _MASK),
    "segmentation.clear_border": ("plane", Contract.LABELS_TO_LABELS),
    "segmentation.expand_labels": ("plane", Contract.LABELS_TO_LABELS),
    "segmentation.relabel_sequential": ("plane", Contract.LABELS_TO_LABELS),
    "segmentation.find_boundaries": ("plane", Contract.LABELS_TO_MASK),
    "feature.canny": ("plane", _MASK),
    "feature.blob_dog": ("points", Contract.IMAGE_TO_TABLE),
    "feature.blob_log": ("points", Contract.IMAGE_TO_TABLE),
    "feature.blob_doh": ("points", Contract.IMAGE_TO_TABLE),
    "feature.peak_local_max": ("points", Contract.IMAGE_TO_TABLE),
    "feature.corner_peaks": ("points", Contract.IMAGE_TO_TABLE),
    "measure.regionprops_table": ("regions", Contract.LABELS_IMAGE_TO_TABLE),
    "exposure.adjust_gamma": ("unit", _IMAGE),
    "exposure.adjust_log": ("unit", _IMAGE),
    "exposure.adjust_sigmoid": ("unit", _IMAGE),
    "exposure.equalize_adapthist": ("unit", _IMAGE),
    "measure.euler_number": ("scalar", Contract.MASK_TO_TABLE),
    "measure.perimeter": ("scalar", Contract.MASK_TO_TABLE),
    "measure.perimeter_crofton": ("scalar", Contract.MASK_TO_TABLE),
    "measure.shannon_entropy": ("scalar", Contract.IMAGE_TO_TABLE),
    "measure.blur_effect": ("scalar", Contract.IMAGE_TO_TABLE),
    "restoration.estimate_sigma": ("scalar", Contract.IMAGE_TO_TABLE),
}
# options fixed for one function because its adapter depends on them
FIXED: dict[str, dict[str, Any]] = {
    "feature.corner_peaks": {"indices": True},
    "morphology.local_maxima": {"indices": False},
    "morphology.local_minima": {"indices": False},
}

_lock = threading.RLock()
_built: dict[str, Callable[..., Any]] = {}


def python_name(qualified: str) -> str:
    """``filters.rank.mean`` -> ``filters_rank_mean``."""
    return qualified.replace(".", "_")


def rule(qualified: str) -> tuple[str, Contract]:
    if qualified in RULES:
        return RULES[qualified]
    sub, _, name = qualified.rpartition(".")
    if sub == "filters.rank":
        return "rank", Contract.IMAGE_TO_IMAGE
    if name.startswith("threshold_"):
        return "threshold", Contract.IMAGE_TO_MASK
    return "plane", Contract.IMAGE_TO_IMAGE


def _is_deprecated(default: Any) -> bool:
    return "DEPRECATED" in repr(default)


def _options(qualified: str, func: Callable[..., Any]) -> list[inspect.Parameter] | None:
    """The keyword options a wrapper offers, or ``None`` when ``func`` does not qualify."""
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return None
    if not params or params[0].name not in _IMAGE_PARAMS:
        return None
    defaults = DEFAULTS.get(qualified, {})
    options = []
    for p in params[1:]:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in PINNED or p.name in _DROPPED:
            continue
        if p.name in FIXED.get(qualified, {}) or _is_deprecated(p.default):
            continue
        if qualified.startswith("filters.rank.") and p.name == "footprint":
            options.append(inspect.Parameter("radius", inspect.Parameter.KEYWORD_ONLY, default=3, annotation=int))
            continue
        default = defaults.get(p.name, p.default)
        if default is inspect.Parameter.empty:
            return None  # a required option nobody chose a default for
        options.append(p.replace(kind=inspect.Parameter.KEYWORD_ONLY, default=default))
    return options


def _make(qualified: str) -> Callable[..., Any] | None:
    from openhcs.processing.skimage_adapters import ADAPTERS

    sub, _, name = qualified.rpartition(".")
    module = importlib.import_module(f"skimage.{sub}")
    func = getattr(module, name, None)
    if qualified in SKIPPED or not inspect.isfunction(func):
        return None
    options = _options(qualified, func)
    if options is None:
        return None
    adapter_name, contract = rule(qualified)
    adapter = ADAPTERS[adapter_name]
    accepted = set(inspect.signature(func).parameters)
    # pinned options, and the defaults openhcs supplies for options scikit-image requires
    fixed = {k: v for k, v in {**PINNED, **FIXED.get(qualified, {}), **DEFAULTS.get(qualified, {})}.items()
             if k in accepted}
    signature = inspect.Signature([inspect.Parameter("stack", inspect.Parameter.POSITIONAL_OR_KEYWORD), *options])

    def wrapper(stack, **kwargs):
        signature.bind(stack, **kwargs)  # an unknown option is a TypeError naming it
        return adapter(func, stack, {**fixed, **kwargs}, contract)

    wrapper.__name__ = wrapper.__qualname__ = python_name(qualified)
    wrapper.__module__ = __name__
    wrapper.__signature__ = signature
    summary = (inspect.getdoc(func) or name).strip().splitlines()[0]
    wrapper.__doc__ = (
        f"{summary}\n\nscikit-image's ``skimage.{qualified}`` applied to each plane of the stack "
        f"({contract.value}).\n\n{inspect.getdoc(func) or ''}"
    )
    wrapper.openhcs_contract = contract
    wrapper.skimage_function = func
    return wrapper


def build(qualified: str) -> Callable[..., Any] | None:
    """The wrapper of ``skimage.<qualified>`` (built once), or ``None`` if it does not qualify."""
    key = python_name(qualified)
    with _lock:
        if key not in _built:
            wrapper = _make(qualified)
            if wrapper is None:
                return None
            _built[key] = wrapper
        return _built[key]


def candidates() -> list[str]:
    """Qualified names of every public function of :data:`SUBMODULES`."""
    names = []
    for sub in SUBMODULES:
        module = importlib.import_module(f"skimage.{sub}")
        public = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
        names.extend(f"{sub}.{n}" for n in public if inspect.isfunction(getattr(module, n, None)))
    return names


def register_catalog() -> list[str]:
    """Build and register every qualifying wrapper; returns their names."""
    from openhcs.processing.registry import register

    names = []
    for qualified in candidates():
        wrapper = build(qualified)
        if wrapper is None:
            continue
        category = "skimage." + qualified.rpartition(".")[0]
        register(category, wrapper.openhcs_contract, doc_source=wrapper.skimage_function)(wrapper)
        names.append(wrapper.__name__)
    return names


def __getattr__(name: str) -> Callable[..., Any]:
    """``filters_gaussian`` -> the wrapper of ``skimage.filters.gaussian`` (PEP 562)."""
    for sub in sorted(SUBMODULES, key=len, reverse=True):  # filters_rank_* before filters_*
        prefix = python_name(sub) + "_"
        if name.startswith(prefix):
            wrapper = build(f"{sub}.{name[len(prefix):]}")
            if wrapper is not None:
                return wrapper
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
