"""openhcs.codegen: objects -> source -> the same objects, and clear refusals."""

from __future__ import annotations

import functools
import http
import math
import os
import re
import subprocess
import sys
import types
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
import pytest
import scipy.ndimage as ndi

from openhcs.codegen import (
    CodegenError,
    generate_config_code,
    generate_pipeline_code,
    load_config_code,
    load_pipeline_code,
    load_pipeline_file,
    pickle_to_python,
    python_to_object,
)
from openhcs.core.config import GlobalPipelineConfig, PipelineConfig
from openhcs.core.pipeline import Pipeline
from openhcs.core.steps import FunctionStep


def round_trip(obj, var_name=None):
    code = pickle_to_python(obj, var_name) if var_name else pickle_to_python(obj)
    compile(code, "<test>", "exec")
    name = var_name or re.findall(r"^(\w+) = ", code, re.MULTILINE)[-1]
    return code, python_to_object(code, name)


def same(a, b) -> bool:
    """Equality that treats nan as equal to nan and insists on equal types."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


@pytest.fixture(autouse=True)
def restore_sys_path(monkeypatch):
    """load_pipeline_file puts a file's folder on sys.path; keep tests from seeing each other's."""
    monkeypatch.setattr(sys, "path", list(sys.path))


def ruff_check(tmp_path, code):
    target = tmp_path / "generated.py"
    target.write_text(code)
    return subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--isolated", "--no-cache", "--select", "E,F", str(target)],
        capture_output=True,
        text=True,
        timeout=60,
    )


# --- configs ---------------------------------------------------------------------------


def test_global_config_defaults_round_trip_and_are_written_in_full():
    config = GlobalPipelineConfig()
    code, rebuilt = round_trip(config)
    assert rebuilt == config
    assert code.splitlines()[-8].startswith("global_config = GlobalPipelineConfig(")
    # num_workers' default depends on the machine, so it is always written
    assert f"num_workers={config.num_workers}," in code


def test_global_config_overrides_round_trip():
    config = GlobalPipelineConfig(
        num_workers=3, mode="threads", output_dir="/data/out", cancel_grace_seconds=0.25,
        dask_scheduler="tcp://10.0.0.5:8786",
    )
    _, rebuilt = round_trip(config)
    assert rebuilt == config


def test_pipeline_config_writes_only_overrides():
    code, rebuilt = round_trip(PipelineConfig())
    assert rebuilt == PipelineConfig()
    assert "pipeline_config = PipelineConfig()\n" in code
    config = PipelineConfig(mode="threads", cancel_grace_seconds=0.0)
    code, rebuilt = round_trip(config)
    assert rebuilt == config
    assert 'pipeline_config = PipelineConfig(mode="threads", cancel_grace_seconds=0.0)\n' in code


@pytest.mark.parametrize(
    "global_config, pipeline_config",
    [
        (None, None),
        (GlobalPipelineConfig(num_workers=2), None),
        (None, PipelineConfig(num_workers=1)),
        (GlobalPipelineConfig(mode="dask"), PipelineConfig(output_dir="/tmp/o")),
    ],
)
def test_config_code_round_trip(global_config, pipeline_config):
    code = generate_config_code(global_config, pipeline_config)
    assert load_config_code(code) == (global_config, pipeline_config)


def test_config_code_refuses_wrong_types():
    with pytest.raises(CodegenError, match="GlobalPipelineConfig"):
        generate_config_code(PipelineConfig(), None)
    with pytest.raises(CodegenError, match="neither global_config nor pipeline_config"):
        load_config_code("x = 1\n")
    with pytest.raises(CodegenError, match="PipelineConfig is a int"):
        load_config_code("pipeline_config = 3\n")


# --- steps and pipelines ---------------------------------------------------------------

PATTERNS = {
    "callable": ndi.gaussian_filter,
    "with_kwargs": (ndi.gaussian_filter, {"sigma": (0.0, 2.0, 2.0), "mode": "nearest"}),
    "chain": [ndi.median_filter, (np.clip, {"a_min": 0, "a_max": 1.5})],
    "dict": {"1": (ndi.gaussian_filter, {"sigma": 1}), "2": [ndi.uniform_filter, np.clip]},
}


@pytest.mark.parametrize("kind", PATTERNS)
def test_step_patterns_round_trip(kind):
    step = FunctionStep(func=PATTERNS[kind], name=f"step_{kind}")
    code, rebuilt = round_trip(step)
    assert rebuilt == step
    assert rebuilt.func == step.func
    # the public package, not scipy.ndimage._filters
    assert "from scipy.ndimage import " in code and "_filters" not in code


def test_step_fields_that_differ_from_defaults_round_trip():
    step = FunctionStep(
        func=np.clip, variable_components=("z", "site"), group_by=None, kwargs={"a_min": -1}
    )
    code, rebuilt = round_trip(step)
    assert rebuilt == step
    assert "name=" not in code  # defaults are left out


def test_nested_kwargs_with_awkward_values_round_trip():
    kwargs = {
        "sigma": (1.0, (2, 3.5), [4, {"deep": (5,)}]),
        "empty": ((), [], {}),
        "nan": float("nan"),
        "inf": (float("inf"), -float("inf")),
        "none": None,
        "flags": (True, False),
        "text": "it's \"quoted\"\n\ttab ü",
        "raw": b"\x00\xffbytes",
        "big": 2**70,
        "tiny": 1e-300,
        "negative": -0.0,
        "status": http.HTTPStatus.NOT_FOUND,
        "flag": re.IGNORECASE | re.MULTILINE,
        "dtype": np.float32,
        "int_keys": {1: "a", (2, 3): "b"},
    }
    step = FunctionStep(func=(ndi.gaussian_filter, kwargs), name="awkward")
    code, rebuilt = round_trip(step)
    assert same(rebuilt.func[1], kwargs)
    assert math.copysign(1, rebuilt.func[1]["negative"]) == -1
    assert rebuilt.func[1]["flag"] is re.IGNORECASE | re.MULTILINE
    assert "from http import HTTPStatus" in code and "HTTPStatus.NOT_FOUND" in code


def test_sets_paths_and_partials_round_trip():
    value = {
        "set": {3, 1, 2},
        "frozen": frozenset({"b", "a"}),
        "empty_set": set(),
        "path": Path("/data/plate 1"),
        "posix": PurePosixPath("/srv/x"),
        "windows": PureWindowsPath(r"C:\plates\p1"),
    }
    code, rebuilt = round_trip(value, "value")
    assert rebuilt == value
    assert "Path(" in code and "PosixPath(" not in code.replace("PurePosixPath(", "")
    partial = functools.partial(np.clip, a_min=0, a_max=255)
    _, step = round_trip(FunctionStep(func=partial, name="p"))
    assert (step.func.func, step.func.args, step.func.keywords) == (np.clip, (), {"a_min": 0, "a_max": 255})


def test_numpy_scalars_become_python_scalars():
    _, rebuilt = round_trip([np.float32(0.5), np.int64(7), np.bool_(True), np.float64("nan")], "v")
    assert [type(x) for x in rebuilt] == [float, int, bool, float]
    assert rebuilt[:3] == [0.5, 7, True] and math.isnan(rebuilt[3])


def test_pipeline_and_step_lists_round_trip():
    steps = [FunctionStep(func=PATTERNS[k], name=k) for k in PATTERNS]
    code = generate_pipeline_code(steps)
    assert "\npipeline_steps = [\n" in code
    assert load_pipeline_code(code) == steps
    pipeline = Pipeline(steps, name="plate pipeline")
    code = generate_pipeline_code(pipeline)
    assert "\npipeline = Pipeline(\n" in code
    assert python_to_object(code, "pipeline") == pipeline
    assert load_pipeline_code(code) == steps
    _, rebuilt = round_trip(tuple(steps))
    assert rebuilt == tuple(steps)


def test_generate_pipeline_code_refuses_non_steps():
    with pytest.raises(CodegenError, match="list of FunctionStep, got str"):
        generate_pipeline_code([FunctionStep(func=np.clip), "oops"])


# --- imports ---------------------------------------------------------------------------


def test_imports_are_deduplicated_sorted_and_clashes_aliased():
    steps = [
        FunctionStep(func=math.sqrt, name="a"),
        FunctionStep(func=[np.sqrt, np.max, math.sqrt], name="b"),
        FunctionStep(func=(np.clip, {"a_min": 0}), name="c"),
    ]
    code = generate_pipeline_code(steps)
    assert load_pipeline_code(code) == steps
    imports = [line for line in code.splitlines() if line.startswith("from ")]
    assert imports == [
        "from math import sqrt",
        "from numpy import clip, max as numpy_max, sqrt as numpy_sqrt",
        "from openhcs.core.steps import FunctionStep",
    ]
    # an import never takes the variable's own name
    code = pickle_to_python(np.clip, var_name="clip")
    assert "from numpy import clip as numpy_clip" in code
    assert python_to_object(code, "clip") is np.clip


def test_output_is_deterministic_and_ruff_clean(tmp_path):
    steps = [FunctionStep(func=PATTERNS[k], name=k, kwargs={"s": {5, 3, 9}}) for k in PATTERNS]
    many = [ndi.maximum_filter, ndi.minimum_filter, ndi.sobel, ndi.laplace, ndi.binary_erosion]
    steps.append(FunctionStep(func=many, name="many"))  # a `from scipy.ndimage import (...)` block
    steps.append(FunctionStep(func=(np.clip, {"a_min": float("nan"), "names": ["x" * 30] * 5}), name="wide"))
    code = generate_pipeline_code(steps)
    n = len(PATTERNS)
    reordered = [FunctionStep(func=s.func, name=s.name, kwargs={"s": {9, 5, 3}}) for s in steps[:n]]
    assert generate_pipeline_code(reordered + steps[n:]) == code
    assert generate_pipeline_code(steps) == code
    compile(code, "<test>", "exec")
    assert max(len(line) for line in code.splitlines()) <= 88
    assert "from scipy.ndimage import (\n    binary_erosion,\n" in code
    assert load_pipeline_code(code)[:-1] == steps[:-1]  # the last holds a nan, never ==
    for text in (code, generate_config_code(GlobalPipelineConfig(), PipelineConfig(mode="threads"))):
        result = ruff_check(tmp_path, text)
        assert result.returncode == 0, result.stdout + result.stderr


GENERATE_IN_SUBPROCESS = """
import scipy.ndimage as ndi
from openhcs.codegen import generate_pipeline_code
from openhcs.core.steps import FunctionStep
names = {"nuclei", "cells", "cytoplasm", "spots", "membrane", "bg"}
print(generate_pipeline_code([FunctionStep(func=(ndi.gaussian_filter, {"labels": names}))]))
"""


def test_sets_are_written_in_one_order_whatever_the_hash_seed():
    outputs = {
        subprocess.run(
            [sys.executable, "-c", GENERATE_IN_SUBPROCESS],
            capture_output=True, text=True, timeout=120, check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outputs) == 1
    assert '{"bg", "cells", "cytoplasm", "membrane", "nuclei", "spots"}' in outputs.pop()


def test_ruff_reports_a_broken_file(tmp_path):
    """The ruff check above can fail: an unused import is reported."""
    result = ruff_check(tmp_path, "import os\n")
    assert result.returncode != 0 and "F401" in result.stdout


# --- refusals --------------------------------------------------------------------------


def _make_local():
    def local_filter(stack):
        return stack

    return local_filter


class _Holder:
    def method(self, stack):
        return stack


def test_lambda_is_refused_with_advice():
    with pytest.raises(CodegenError, match="lambda functions cannot be sent to a server; define"):
        generate_pipeline_code([FunctionStep(func=lambda stack: stack, name="anon")])


@pytest.mark.parametrize(
    "func, message",
    [
        (_make_local(), "defined inside a function"),
        (_Holder().method, "bound to an instance"),
        (
            types.FunctionType(ndi.gaussian_filter.__code__, ndi.gaussian_filter.__globals__),
            "does not import back to the same object",
        ),
        (types.FunctionType(_make_local.__code__, {"__name__": "__main__"}), "__main__ script"),
        (
            load_pipeline_code(
                "from openhcs.core.steps import FunctionStep\n"
                "def mine(stack):\n    return stack\n"
                "pipeline_steps = [FunctionStep(func=mine)]\n"
            )[0].func,
            "'mine' comes from '__openhcs_code__', which cannot be imported",
        ),
    ],
    ids=["nested", "bound-method", "impostor", "main-script", "defined-in-exec-code"],
)
def test_unimportable_functions_are_refused(func, message):
    with pytest.raises(CodegenError, match=message):
        pickle_to_python(FunctionStep(func=func, name="x"))


def test_unsupported_and_cyclic_values_are_refused():
    with pytest.raises(CodegenError, match="cannot write an object of type"):
        pickle_to_python({"lock": object()})
    loop: list = []
    loop.append(loop)
    with pytest.raises(CodegenError, match="contains itself"):
        pickle_to_python(loop)
    with pytest.raises(CodegenError, match="not a valid variable name"):
        pickle_to_python(1, var_name="class")


# --- loading ---------------------------------------------------------------------------


def test_python_to_object_reports_the_failing_line():
    with pytest.raises(CodegenError, match=r"line 2: .*x = \(1,"):
        python_to_object("y = 1\nx = (1,\n", "x")
    with pytest.raises(CodegenError, match=r"does not define 'x' \(it defines \['y'\]\)"):
        python_to_object("y = 1\n", "x")
    with pytest.raises(CodegenError, match="line 3: from no_such_module_xyz import f: ModuleNotFoundError"):
        python_to_object("# header\n\nfrom no_such_module_xyz import f\nx = f\n", "x")
    with pytest.raises(CodegenError, match="line 1: .*PatternError: .*unknown group_by"):
        load_pipeline_code(
            "from openhcs.core.steps import FunctionStep; "
            "from numpy import clip; pipeline_steps = [FunctionStep(func=clip, group_by='well')]"
        )


def test_load_pipeline_code_needs_steps():
    with pytest.raises(CodegenError, match="none of pipeline_steps, pipeline or build_pipeline"):
        load_pipeline_code("steps = []\n")
    with pytest.raises(CodegenError, match="Pipeline or a list of FunctionStep, got int"):
        load_pipeline_code("pipeline_steps = 5\n")


PIPELINE_FILE = '''
from numpy import clip
from scipy.ndimage import gaussian_filter

from openhcs.core.steps import FunctionStep


def build_pipeline():
    return [FunctionStep(func=gaussian_filter, name="blur"), FunctionStep(func=clip, name="clip")]


if __name__ == "__main__":
    raise SystemExit("a pipeline file's main block must not run when openhcs loads it")
'''


def test_load_pipeline_file(tmp_path):
    path = tmp_path / "my_pipeline.py"
    path.write_text(PIPELINE_FILE)
    steps = load_pipeline_file(path)
    assert [s.name for s in steps] == ["blur", "clip"] and steps[0].func is ndi.gaussian_filter
    # a file written by generate_pipeline_code loads the same way
    path.write_text(generate_pipeline_code(steps))
    assert load_pipeline_file(str(path)) == steps


def test_load_pipeline_file_can_import_sibling_modules(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "codegen_sibling_funcs", None)  # removed again afterwards
    del sys.modules["codegen_sibling_funcs"]
    (tmp_path / "codegen_sibling_funcs.py").write_text("def keep(stack):\n    return stack\n")
    path = tmp_path / "uses_sibling.py"
    path.write_text(
        "from codegen_sibling_funcs import keep\n"
        "from openhcs.core.steps import FunctionStep\n"
        "pipeline_steps = [FunctionStep(func=keep)]\n"
    )
    (step,) = load_pipeline_file(path)
    assert step.func is sys.modules["codegen_sibling_funcs"].keep
    # and such a function, being importable, can be written back as code
    assert "from codegen_sibling_funcs import keep" in generate_pipeline_code([step])


def test_load_pipeline_file_errors(tmp_path):
    with pytest.raises(CodegenError, match="cannot read pipeline file"):
        load_pipeline_file(tmp_path / "missing.py")
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    with pytest.raises(CodegenError, match=f"{re.escape(str(empty))} defines none of pipeline_steps"):
        load_pipeline_file(empty)
    broken = tmp_path / "broken.py"
    broken.write_text("def build_pipeline():\n    return 1 / 0\n")
    with pytest.raises(CodegenError, match="build_pipeline\\(\\) failed: ZeroDivisionError"):
        load_pipeline_file(broken)
