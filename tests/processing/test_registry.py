"""The registry lists every built-in with its options and survives broken plugins."""

from __future__ import annotations

import importlib.metadata
import inspect
import logging
import pickle
import subprocess
import sys

import pytest

import openhcs.processing  # noqa: F401  (registers the built-ins)
from openhcs.processing import registry
from openhcs.processing.registry import (
    FunctionInfo,
    ParamInfo,
    get_function,
    list_functions,
    load_entry_points,
    register,
)

BUILTINS = {
    "normalize_percentile": "normalization",
    "denoise": "filters",
    "subtract_background": "filters",
    "correct_flatfield": "flatfield",
    "estimate_flatfield": "flatfield",
    "project_z": "projection",
    "segment_nuclei": "segmentation",
    "measure_nuclei": "measurement",
    "stitch_sites": "stitching",
}


def test_every_builtin_is_listed_with_its_category():
    listed = {info.name: info.category for info in list_functions()}
    for name, category in BUILTINS.items():
        assert listed.get(name) == category, name


def test_params_come_from_the_signature_without_the_stack():
    info = next(i for i in list_functions("normalization") if i.name == "normalize_percentile")
    assert isinstance(info, FunctionInfo)
    assert info.module == "openhcs.processing.normalization"
    assert info.qualname == "normalize_percentile"
    assert info.params == (ParamInfo("low", "float", 1.0), ParamInfo("high", "float", 99.8))
    assert "Example" in info.doc
    stitch = next(i for i in list_functions("stitching") if i.name == "stitch_sites")
    assert stitch.params[0] == ParamInfo("grid", "tuple[int, int]", (2, 2))
    assert {p.name for p in stitch.params} >= {"overlap", "refine", "max_shift"}


def test_every_builtin_has_a_docstring_example_and_only_keyword_options():
    for info in list_functions():
        if info.module in registry.BUILTIN_MODULES:
            assert "Example" in info.doc, info.name
            assert all(p.default is not inspect.Parameter.empty for p in info.params), info.name


def test_category_filter():
    assert {i.name for i in list_functions("filters")} >= {"denoise", "subtract_background"}
    assert all(i.category == "filters" for i in list_functions("filters"))
    assert list_functions("no such category") == []


def test_get_function_returns_the_plain_function_which_pickles_by_reference():
    from openhcs.processing.filters import denoise

    func = get_function("denoise")
    assert func is denoise
    assert pickle.loads(pickle.dumps(func)) is denoise


def test_get_function_unknown_name_lists_known_names():
    with pytest.raises(KeyError) as err:
        get_function("no_such_function")
    assert "no_such_function" in str(err.value)
    assert "segment_nuclei" in str(err.value)


def test_register_returns_function_unchanged_and_rejects_no_stack():
    def plugin_invert(stack, maximum: float = 1.0):
        return maximum - stack

    try:
        assert register(category="test")(plugin_invert) is plugin_invert
        assert get_function("plugin_invert") is plugin_invert
        assert list_functions("test")[0].params == (ParamInfo("maximum", "float", 1.0),)
    finally:
        registry._functions.pop("plugin_invert", None)
        registry._infos.pop("plugin_invert", None)

    def no_stack(*, option=1):
        return option

    with pytest.raises(TypeError, match="stack"):
        register(category="test")(no_stack)


def test_broken_plugin_is_logged_and_skipped(caplog):
    good = importlib.metadata.EntryPoint(
        name="good", value="openhcs.processing.projection:project_z", group=registry.ENTRY_POINT_GROUP
    )
    missing = importlib.metadata.EntryPoint(
        name="broken", value="nonexistent_mod:f", group=registry.ENTRY_POINT_GROUP
    )
    bad_attr = importlib.metadata.EntryPoint(
        name="bad_attr", value="openhcs.processing.projection:no_such_attr", group=registry.ENTRY_POINT_GROUP
    )
    with caplog.at_level(logging.WARNING, logger="openhcs.processing.registry"):
        loaded = load_entry_points([missing, good, bad_attr])
    assert loaded == ["good"]
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "broken" in messages and "nonexistent_mod" in messages
    assert "bad_attr" in messages


def test_load_plugins_reads_the_installed_group():
    # nothing is installed in this group in the test environment; the call must not fail
    assert isinstance(registry.load_plugins(), list)


def _fresh_python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return result.stdout.strip()


def test_importing_checkpoint_does_not_import_scikit_image():
    code = "import sys, openhcs.processing.checkpoint, openhcs.processing; print('skimage' in sys.modules)"
    assert _fresh_python(code) == "False"


def test_a_fresh_process_sees_every_builtin_through_the_registry():
    code = "from openhcs.processing import list_functions; print(','.join(sorted(i.name for i in list_functions())))"
    assert set(_fresh_python(code).split(",")) >= set(BUILTINS)
    code = "import openhcs.processing as p; print(p.stitch_sites is p.get_function('stitch_sites'))"
    assert _fresh_python(code) == "True"
