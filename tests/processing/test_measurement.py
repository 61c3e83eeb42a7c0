from __future__ import annotations

import numpy as np
import pytest
from skimage.draw import disk

from openhcs.processing.checkpoint import StepCancelled, cancellation_scope
from openhcs.processing.measurement import measure_nuclei

from .helpers import disks_image


def two_channel_image():
    nuclei = disks_image([(30, 30), (30, 90), (90, 60)], radius=8, shape=(128, 128), value=1000.0, background=0.0)
    second = np.zeros((128, 128))
    # cytoplasm-like: wider than the nucleus, so the nucleus mask sees one value
    second[disk((30, 30), 14)] = 10.0
    second[disk((30, 90), 14)] = 20.0
    second[disk((90, 60), 14)] = 30.0
    return np.stack([nuclei, second]).astype(np.uint16)


def test_one_row_per_nucleus_with_known_values():
    stack = two_channel_image()
    copy = stack.copy()
    out, rows = measure_nuclei(stack, nuclei_index=0)
    assert np.array_equal(stack, copy)
    assert np.array_equal(out, stack) and out is not stack
    assert len(rows) == 3
    assert set(rows[0]) == {"label", "area", "centroid_y", "centroid_x", "mean_intensity_ch1", "mean_intensity_ch2"}
    by_position = {(round(r["centroid_y"]), round(r["centroid_x"])): r for r in rows}
    assert set(by_position) == {(30, 30), (30, 90), (90, 60)}
    disk_area = int(disk((0, 0), 8, shape=None)[0].size)
    for (cy, cx), expected in {(30, 30): 10.0, (30, 90): 20.0, (90, 60): 30.0}.items():
        row = by_position[(cy, cx)]
        assert row["mean_intensity_ch1"] == pytest.approx(1000.0, rel=0.1)
        assert row["mean_intensity_ch2"] == pytest.approx(expected)
        assert row["area"] == pytest.approx(disk_area, rel=0.2)
    assert sorted(r["label"] for r in rows) == [1, 2, 3]


def test_nuclei_from_another_plane():
    stack = two_channel_image()[::-1].copy()
    _, rows = measure_nuclei(stack, nuclei_index=1)
    assert len(rows) == 3
    assert all(r["mean_intensity_ch2"] == pytest.approx(1000.0, rel=0.1) for r in rows)
    assert sorted(r["mean_intensity_ch1"] for r in rows) == pytest.approx([10.0, 20.0, 30.0])


def test_no_nuclei_gives_no_rows():
    out, rows = measure_nuclei(np.zeros((2, 32, 32), dtype=np.uint16))
    assert rows == [] and out.shape == (2, 32, 32)


def test_bad_index():
    with pytest.raises(ValueError, match="nuclei_index"):
        measure_nuclei(np.zeros((2, 8, 8)), nuclei_index=2)


def test_cancelled():
    with cancellation_scope(lambda: True), pytest.raises(StepCancelled):
        measure_nuclei(two_channel_image())
