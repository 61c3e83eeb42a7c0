"""CellProfiler-style measurements (cp-measure) of objects whose answers are known."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

from openhcs.processing import object_measurements
from openhcs.processing.object_measurements import intensity_range, measure_objects
from openhcs.processing.registry import get_info


def _field() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels 4 (6x6 square) and 9 (8x10 rectangle) touching label 12 (4x4); two channels."""
    labels = np.zeros((48, 48), np.int32)
    labels[5:11, 5:11] = 4
    labels[20:28, 20:30] = 9
    labels[20:24, 30:34] = 12
    ch2 = np.full(labels.shape, 1000.0)
    ch2[labels == 4] = 20000
    ch2[20:28, 20:30] = np.tile(np.arange(10) * 1000.0 + 30000, (8, 1))  # a ramp
    ch2[labels == 12] = 50000
    ch3 = np.where(labels > 0, 200.0, 10.0)
    return labels, ch2, ch3


def test_size_intensity_and_labels_match_independent_values():
    labels, ch2, ch3 = _field()
    stack = np.stack([labels, ch2, ch3]).astype(np.float32)
    before = stack.copy()
    out, rows = measure_objects(stack, features=("sizeshape", "intensity"))
    assert np.array_equal(stack, before) and np.array_equal(out, stack) and out is not stack
    assert [r["label"] for r in rows] == [4, 9, 12]  # the plane's own label ids, not 1..N
    by_label = {r["label"]: r for r in rows}
    for label in (4, 9, 12):
        mask = labels == label
        row = by_label[label]
        assert row["AreaShape_Area"] == mask.sum()
        ys, xs = np.nonzero(mask)
        assert row["AreaShape_Center_Y"] == pytest.approx(ys.mean())
        assert row["AreaShape_Center_X"] == pytest.approx(xs.mean())
        # 16-bit data is divided by 65535, as CellProfiler does
        assert row["Intensity_MeanIntensity_ch2"] == pytest.approx(ch2[mask].mean() / 65535, rel=1e-5)
        assert row["Intensity_IntegratedIntensity_ch2"] == pytest.approx(ch2[mask].sum() / 65535, rel=1e-5)
        assert row["Intensity_MaxIntensity_ch3"] == pytest.approx(200 / 255, rel=1e-5)  # 8-bit values
    assert by_label[9]["Intensity_MinIntensity_ch2"] == pytest.approx(30000 / 65535, rel=1e-5)
    assert by_label[4]["AreaShape_Perimeter"] == pytest.approx(20, abs=2)


def test_neighbours_count_touching_objects_and_closest_distances():
    labels, ch2, _ = _field()
    _, rows = measure_objects(np.stack([labels, ch2]), features=("neighbors",))
    by_label = {r["label"]: r for r in rows}
    assert [by_label[k]["Neighbors_NumberOfNeighbors_Adjacent"] for k in (4, 9, 12)] == [0, 1, 1]
    assert by_label[4]["Neighbors_PercentTouching_Adjacent"] == 0
    assert by_label[12]["Neighbors_PercentTouching_Adjacent"] > by_label[9]["Neighbors_PercentTouching_Adjacent"] > 0
    closest = by_label[4]["Neighbors_FirstClosestDistance_Adjacent"]
    centre = lambda lab: np.argwhere(labels == lab).mean(axis=0)  # noqa: E731
    expected = min(np.linalg.norm(centre(4) - centre(9)), np.linalg.norm(centre(4) - centre(12)))
    assert closest == pytest.approx(expected, rel=1e-6)


def test_texture_and_granularity_per_channel_are_finite_and_differ_for_a_ramp():
    labels, ch2, ch3 = _field()
    _, rows = measure_objects(np.stack([labels, ch2, ch3]), features=("texture", "granularity"))
    by_label = {r["label"]: r for r in rows}
    contrast = [k for k in rows[0] if k.startswith("Texture_Contrast") and k.endswith("_ch2")]
    assert contrast and all(k.replace("_ch2", "_ch3") in rows[0] for k in contrast)
    granularity = [k for k in rows[0] if k.startswith("Granularity_")]
    assert len(granularity) == 2 * 16
    assert all(math.isfinite(by_label[9][k]) for k in contrast + granularity)
    # the ramp object has texture contrast, the uniform one none
    assert by_label[9][contrast[0]] > 0 and by_label[4][contrast[0]] == pytest.approx(0)


def test_every_registered_measurement_runs_with_its_contract():
    labels, ch2, ch3 = _field()
    stack = np.stack([labels, ch2, ch3])
    for name in object_measurements.register_catalog():
        info = get_info(name)
        assert info.contract.value.startswith("labels"), name
        _, rows = getattr(object_measurements, name)(stack)
        assert [r["label"] for r in rows] == [4, 9, 12] and len(rows[0]) > 1, name


def test_bad_inputs_are_named():
    labels, ch2, _ = _field()
    with pytest.raises(ValueError, match="plane 0 .* labels"):
        measure_objects(np.stack([ch2 + 0.5, ch2]))
    with pytest.raises(ValueError, match="labels_index 5"):
        measure_objects(np.stack([labels, ch2]), labels_index=5)
    with pytest.raises(ValueError, match="unknown features"):
        measure_objects(np.stack([labels, ch2]), features=("colour",))
    _, rows = measure_objects(np.stack([np.zeros_like(labels), ch2]))
    assert rows == []


def test_intensity_range_and_docstring_example():
    assert intensity_range(np.array([0.0, 0.7])) == 1.0
    assert intensity_range(np.array([0.0, 200.0])) == 255.0
    assert intensity_range(np.array([0.0, 4000.0])) == 65535.0
    assert intensity_range(np.array([0.0, 3.5])) == 65535.0
    assert intensity_range(np.array([0.0, 9.0]), intensity_scale=10) == 10.0
    result = doctest.testmod(object_measurements, extraglobs={"np": np})
    assert result.attempted > 0 and result.failed == 0
