"""Every docstring example in the processing modules runs and gives what it shows."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest

MODULES = ["normalization", "filters", "flatfield", "projection", "segmentation", "measurement", "stitching"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"openhcs.processing.{name}")
    result = doctest.testmod(module, extraglobs={"np": np}, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
