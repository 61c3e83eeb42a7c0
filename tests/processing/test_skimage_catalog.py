"""scikit-image functions registered as stack functions: each runs, keeps its contract,
pickles by reference and is described well enough to generate a form."""

from __future__ import annotations

import inspect
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

from openhcs.processing import skimage_catalog
from openhcs.processing.contracts import Contract, Kind
from openhcs.processing.params import FORM_KINDS
from openhcs.processing.registry import get_function, get_info, list_functions

WRAPPERS = sorted(i.name for i in list_functions() if i.module == skimage_catalog.__name__)
DTYPES = {Kind.IMAGE: np.float32, Kind.MASK: np.uint8, Kind.LABELS: np.int32}


def _inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    labels = np.zeros((2, 40, 40), np.int32)
    labels[:, 6:14, 6:14] = 3
    labels[:, 22:32, 20:30] = 8
    image = (labels > 0) * 0.8 + 0.1 + rng.normal(0, 0.03, labels.shape)
    return {
        "image": image.astype(np.float64),
        "mask": (labels > 0).astype(np.uint8),
        "labels": labels,
        "labels + image": np.stack([labels[0], image[0] * 1000]),
    }


INPUTS = _inputs()


def test_the_catalog_has_at_least_150_functions_each_described():
    infos = list_functions()
    assert len(infos) >= 150
    assert len(WRAPPERS) >= 120
    categories = {i.category for i in infos}
    assert {f"skimage.{s}" for s in skimage_catalog.SUBMODULES} <= categories
    for info in infos:
        assert info.summary, info.name
        assert isinstance(info.contract, Contract)
        for param in info.params:
            assert param.kind in FORM_KINDS, (info.name, param)


@pytest.mark.parametrize("name", WRAPPERS)
def test_wrapper_runs_per_plane_and_keeps_its_contract(name):
    func = get_function(name)
    contract = get_info(name).contract
    stack = INPUTS["labels + image" if len(contract.inputs) == 2 else contract.inputs[0].value]
    before = stack.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-image warns about precision, ranges...
        result = func(stack)
    assert np.array_equal(stack, before), "input modified"
    if contract.output is Kind.TABLE:
        result, rows = result
        assert np.array_equal(result, stack) and not np.shares_memory(result, stack)
        assert isinstance(rows, list) and all(isinstance(r, dict) for r in rows)
        return
    assert isinstance(result, np.ndarray) and result.ndim == 3 and len(result) == len(stack)
    assert result.dtype == DTYPES[contract.output]
    if contract.output is Kind.MASK:
        assert set(np.unique(result)) <= {0, 1}


def test_known_results_per_plane():
    stack = INPUTS["image"]
    clean = np.where(INPUTS["labels"] > 0, 0.9, 0.1)
    planes = skimage_catalog.filters_threshold_otsu(clean)
    assert np.array_equal(planes, (INPUTS["labels"] > 0).astype(np.uint8))
    labelled = get_function("measure_label")(planes)
    assert labelled.max() == 2 and labelled.dtype == np.int32
    _, rows = get_function("measure_regionprops_table")(INPUTS["labels + image"])
    assert [r["label"] for r in rows] == [3, 8] and [r["area"] for r in rows] == [64.0, 100.0]
    mean = np.mean(INPUTS["labels + image"][1][INPUTS["labels"][0] == 8])
    assert rows[1]["intensity_mean_ch2"] == pytest.approx(mean)
    _, blobs = get_function("feature_blob_log")(stack, max_sigma=8)
    assert {r["plane"] for r in blobs} == {0, 1} and all({"y", "x", "sigma"} <= set(r) for r in blobs)


def test_rank_filters_keep_float_units():
    stack = np.full((1, 20, 20), 0.25, np.float32)
    stack[0, :, 10:] = 0.75
    out = get_function("filters_rank_mean")(stack, radius=1)
    assert out[0, 5, 2] == pytest.approx(0.25, abs=1e-3) and out[0, 5, 17] == pytest.approx(0.75, abs=1e-3)


def test_form_metadata_from_numpydoc():
    params = {p.name: p for p in get_info("filters_threshold_local").params}
    assert params["method"].kind == "choice"
    assert set(params["method"].choices) >= {"generic", "gaussian", "mean", "median"}
    assert params["block_size"].kind == "int" and params["block_size"].default == 3
    assert params["offset"].kind == "float" and params["offset"].doc
    rank = {p.name: p for p in get_info("filters_rank_median").params}
    assert rank["radius"].kind == "int" and "footprint" not in rank
    # required scikit-image options get openhcs defaults, so every wrapper runs as it is
    assert {p.name: p.default for p in get_info("filters_difference_of_gaussians").params}["low_sigma"] == 1.0


def test_unknown_option_is_refused_with_its_name():
    with pytest.raises(TypeError, match="sigmaa"):
        skimage_catalog.filters_gaussian(INPUTS["image"], sigmaa=2)


def test_wrappers_pickle_by_reference_and_import_by_name():
    func = get_function("filters_sobel")
    assert pickle.loads(pickle.dumps(func)) is func
    assert skimage_catalog.filters_sobel is func
    assert inspect.signature(func).parameters["mode"].kind is inspect.Parameter.KEYWORD_ONLY
    with pytest.raises(AttributeError):
        skimage_catalog.filters_no_such_function  # noqa: B018
    with pytest.raises(AttributeError):  # skipped: returns two arrays
        skimage_catalog.filters_rank_order  # noqa: B018


def _fresh(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180,
                          check=True).stdout.strip()


def test_nothing_is_imported_until_asked_and_one_wrapper_builds_alone():
    code = ("import sys, openhcs.processing.registry, openhcs.processing.skimage_catalog, "
            "openhcs.processing.object_measurements; "
            "print(sorted(m for m in ('skimage', 'cp_measure', 'docstring_parser') if m in sys.modules))")
    assert _fresh(code) == "[]"
    code = ("import sys, pickle, openhcs.processing.skimage_catalog as c; "
            "f = pickle.loads(pickle.dumps(c.exposure_equalize_hist)); "
            "print(f.__name__, 'skimage.restoration' in sys.modules, len(c._built))")
    assert _fresh(code) == "exposure_equalize_hist False 1"
