from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from openhcs.processing.checkpoint import StepCancelled, cancellation_scope
from openhcs.processing.stitching import (
    blend_tiles,
    estimate_site_positions,
    nominal_positions,
    stitch_sites,
)

from .helpers import CancelAfter, disks_image

TILE = 160


def jittered_crops(seed, grid=(3, 3), overlap=0.15, jitter=4, sparse=False):
    """Crops of a known texture at nominal grid positions plus random jitter."""
    rng = np.random.default_rng(seed)
    if sparse:  # nuclei-like: mostly background, so some overlaps have nothing to match
        centres = rng.uniform(0, 520, size=(60, 2))
        texture = disks_image(centres, radius=7, shape=(520, 520), value=800.0, background=50.0)
    else:
        texture = ndi.gaussian_filter(rng.random((520, 520)), 1.5) * 1000
    true = nominal_positions(grid, (TILE, TILE), overlap) + rng.integers(-jitter, jitter + 1, (grid[0] * grid[1], 2))
    true += jitter
    tiles = np.stack([texture[y : y + TILE, x : x + TILE] for y, x in true])
    return texture, tiles, true


def covered(positions, n):
    return blend_tiles(np.ones((n, TILE, TILE), dtype=np.float32), positions) > 0


@pytest.mark.parametrize("seed", range(4))
def test_jittered_crops_are_recovered_exactly(seed):
    texture, tiles, true = jittered_crops(seed)
    copy = tiles.copy()
    positions = estimate_site_positions(tiles, grid=(3, 3), overlap=0.15)
    assert np.array_equal(tiles, copy)
    assert np.array_equal(positions, true - true[0])
    mosaic = stitch_sites(tiles, grid=(3, 3), overlap=0.15, canvas="tight")
    assert mosaic.dtype == np.float32 and mosaic.ndim == 3 and mosaic.shape[0] == 1
    oy, ox = true.min(axis=0)
    h, w = mosaic.shape[1:]
    assert (h, w) == tuple(true.max(axis=0) - true.min(axis=0) + TILE)
    truth = texture[oy : oy + h, ox : ox + w]
    inside = covered(positions, len(tiles))
    assert np.abs(mosaic[0] - truth)[inside].max() < 1e-3
    assert not mosaic[0][~inside].any()


def test_without_refinement_jitter_shows_as_error():
    texture, tiles, true = jittered_crops(0)
    mosaic = stitch_sites(tiles, grid=(3, 3), overlap=0.15, refine=False)
    refined = stitch_sites(tiles, grid=(3, 3), overlap=0.15, canvas="tight")
    nominal = nominal_positions((3, 3), (TILE, TILE), 0.15)
    assert mosaic.shape[1:] == tuple(nominal.max(axis=0) + TILE)
    assert mosaic.shape != refined.shape or not np.array_equal(mosaic, refined)


@pytest.mark.parametrize("seed", range(3))
def test_fixed_canvas_has_a_predictable_shape_and_the_refined_content(seed):
    texture, tiles, true = jittered_crops(seed)
    tight = stitch_sites(tiles, grid=(3, 3), overlap=0.15, canvas="tight")[0]
    fixed = stitch_sites(tiles, grid=(3, 3), overlap=0.15, max_shift=10)
    nominal_extent = nominal_positions((3, 3), (TILE, TILE), 0.15).max(axis=0) + TILE
    assert fixed.shape == (1, *(nominal_extent + 20))
    # the tight mosaic appears, unchanged, somewhere inside the fixed canvas
    ys, xs = np.nonzero(fixed[0])
    inner = fixed[0, ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    assert inner.shape == tight.shape
    assert np.allclose(inner, tight)


def test_empty_overlaps_fall_back_to_the_nominal_grid():
    rng = np.random.default_rng(3)
    tiles = rng.normal(100, 5, (4, 64, 64))  # pure noise: nothing to register
    positions = estimate_site_positions(tiles, grid=(2, 2), overlap=0.1)
    assert np.array_equal(positions, nominal_positions((2, 2), (64, 64), 0.1))


def test_sparse_nuclei_pairs_sharing_a_nucleus_are_registered_exactly():
    checked = 0
    for seed in range(4):
        texture, tiles, true = jittered_crops(seed, sparse=True)
        positions = estimate_site_positions(tiles, grid=(3, 3), overlap=0.15)
        for a in range(9):
            for b in (a + 1, a + 3):
                if b >= 9 or (b == a + 1 and b % 3 == 0):
                    continue
                # the pair's true overlap in texture coordinates
                y0, x0 = np.maximum(true[a], true[b])
                y1, x1 = np.minimum(true[a], true[b]) + TILE
                if (texture[y0:y1, x0:x1] > 400).sum() < 40:  # no nucleus to match on
                    continue
                checked += 1
                assert np.array_equal(positions[b] - positions[a], true[b] - true[a]), (seed, a, b)
    assert checked >= 15


def test_average_blend_of_identical_overlaps_is_exact():
    texture = np.arange(40 * 70, dtype=np.uint16).reshape(40, 70)
    tiles = np.stack([texture[:, :40], texture[:, 30:70]])
    mosaic = stitch_sites(tiles, grid=(1, 2), overlap=0.25, refine=False, blend="average")
    assert mosaic.shape == (1, 40, 70)
    assert np.array_equal(mosaic[0], texture.astype(np.float32))


def test_single_site_is_returned_as_is():
    tile = np.random.default_rng(0).random((1, 32, 48))
    assert np.allclose(stitch_sites(tile, grid=(1, 1)), tile)


def test_wrong_grid_or_options():
    with pytest.raises(ValueError, match="needs 6 sites"):
        stitch_sites(np.zeros((4, 16, 16)), grid=(2, 3))
    with pytest.raises(ValueError, match="blend"):
        stitch_sites(np.zeros((4, 16, 16)), blend="max")
    with pytest.raises(ValueError, match="overlap"):
        stitch_sites(np.zeros((4, 16, 16)), overlap=1.0)
    with pytest.raises(ValueError, match="canvas"):
        stitch_sites(np.zeros((4, 16, 16)), canvas="loose")


def test_cancel_lands_between_pairs():
    _, tiles, _ = jittered_crops(0)
    check = CancelAfter(3)
    with cancellation_scope(check), pytest.raises(StepCancelled):
        stitch_sites(tiles, grid=(3, 3), overlap=0.15)
    assert check.calls == 3
