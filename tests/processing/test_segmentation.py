from __future__ import annotations

import numpy as np
import pytest
from skimage.draw import ellipse

from openhcs.processing.checkpoint import StepCancelled, cancellation_scope
from openhcs.processing.segmentation import segment_nuclei

from .helpers import CancelAfter, disks_image

TEN_CENTRES = [(20 + 40 * (i // 5), 20 + 22 * (i % 5)) for i in range(10)]


def test_ten_separated_disks_give_ten_labels():
    img = disks_image(TEN_CENTRES, radius=7, shape=(128, 128), noise=30)
    stack = img[None].astype(np.uint16)
    copy = stack.copy()
    labels = segment_nuclei(stack)
    assert np.array_equal(stack, copy)
    assert labels.dtype == np.int32 and labels.shape == stack.shape
    assert labels.max() == 10
    assert len(np.unique(labels)) == 11
    for cy, cx in TEN_CENTRES:
        assert labels[0, cy, cx] > 0


def test_two_touching_disks_are_split():
    img = disks_image([(64, 52), (64, 66)], radius=8, shape=(128, 128), noise=20)
    labels = segment_nuclei(img[None])
    assert labels.max() == 2
    assert labels[0, 64, 50] != labels[0, 64, 68]
    mask = img > 600
    assert len(np.unique(labels[0][mask])) == 2  # the pair is one blob, split by the watershed


def test_an_elongated_nucleus_is_not_split():
    img = np.full((96, 96), 100.0)
    img[ellipse(48, 48, 7, 13, rotation=0.5)] += 900
    assert segment_nuclei(img[None]).max() == 1


def test_objects_below_min_area_are_removed():
    img = disks_image([(30, 30), (90, 90)], radius=7, shape=(128, 128))
    img = img + disks_image([(30, 90)], radius=2, shape=(128, 128), background=0.0)
    labels = segment_nuclei(img[None], min_area=40)
    assert labels.max() == 2
    assert labels[0, 30, 90] == 0


def test_each_plane_is_labelled_independently_and_empty_planes_are_empty():
    stack = np.stack(
        [
            disks_image(TEN_CENTRES[:3], shape=(128, 128)),
            np.full((128, 128), 100.0),
            disks_image(TEN_CENTRES[:5], shape=(128, 128)),
        ]
    )
    labels = segment_nuclei(stack)
    assert [int(p.max()) for p in labels] == [3, 0, 5]


def test_cancel_lands_between_planes():
    check = CancelAfter(2)
    stack = np.stack([disks_image(TEN_CENTRES, shape=(128, 128))] * 4)
    with cancellation_scope(check), pytest.raises(StepCancelled):
        segment_nuclei(stack)
    assert check.calls == 2
