"""Stitch the sites of one well into a mosaic.

Stage positions are known only nominally (grid + overlap); the real ones are off by a few
pixels. Each pair of neighbouring sites is registered by (masked) phase correlation on
their nominal overlapping strips; if the overlap that shift implies does not correlate
well, template matching over the whole search window proposes more candidates, and the
candidate whose full overlap correlates best wins. A pair whose shift is implausible
(beyond ``max_shift``) or whose overlap does not actually match (normalised
cross-correlation below ``min_correlation``, e.g. a strip of empty background) is
ignored: with nothing in the overlap there is nothing to misalign either. Positions are
the least-squares solution of all accepted pairwise offsets (weighted by their
correlation), with a weak pull towards the nominal grid so a site with no usable
neighbour stays where the stage put it. Overlaps are feathered with weights that fall
linearly towards each site's border, which hides seams and differing backgrounds.
"""

from __future__ import annotations

import numpy as np
from skimage.feature import match_template, peak_local_max
from skimage.registration import phase_cross_correlation

from openhcs.processing.checkpoint import checkpoint
from openhcs.processing.normalization import as_float_stack
from openhcs.processing.registry import register

_CANDIDATES = 5  # template-matching peaks to judge
_CONFIDENT = 0.8  # an overlap correlating this well needs no second opinion
_PRIOR_WEIGHT = 1e-3  # only decides sites with no accepted neighbour; negligible bias otherwise


def nominal_positions(grid: tuple[int, int], tile_shape: tuple[int, int], overlap: float) -> np.ndarray:
    """Top-left ``(y, x)`` of each site, row-major, from the grid and overlap fraction."""
    rows, cols = grid
    h, w = tile_shape
    step_y, step_x = round(h * (1 - overlap)), round(w * (1 - overlap))
    return np.array([(r * step_y, c * step_x) for r in range(rows) for c in range(cols)], dtype=np.int64)


def default_max_shift(tile_shape: tuple[int, int], overlap: float) -> int:
    """Half the overlap in pixels (at least 2): the largest stage error stitching will correct."""
    return max(2, round(min(tile_shape) * overlap / 2))


def _overlap(a: np.ndarray, b: np.ndarray, oy: int, ox: int) -> tuple[np.ndarray, np.ndarray]:
    """The parts of tiles ``a`` and ``b`` that coincide when ``b`` sits at ``(oy, ox)`` from ``a``."""
    h, w = a.shape
    y0, y1 = max(0, oy), min(h, oy + b.shape[0])
    x0, x1 = max(0, ox), min(w, ox + b.shape[1])
    if y1 <= y0 or x1 <= x0:
        return a[:0, :0], b[:0, :0]
    return a[y0:y1, x0:x1], b[y0 - oy : y1 - oy, x0 - ox : x1 - ox]


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    if a.size < 16:
        return 0.0
    a = a - a.mean()
    b = b - b.mean()
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum()) / denom if denom > 0 else 0.0


def _phase_candidates(a: np.ndarray, b: np.ndarray, nominal: tuple[int, int], margin: int) -> list[tuple[int, int]]:
    """The offset of ``b`` that masked phase correlation finds on the nominal overlap strips.

    Masked (Padfield) phase correlation is normalised and has no wrap-around, so it is
    right whenever the strips share an object; it can be a pixel or two off when the
    object is cut by the strip's edge.
    """
    ref, mov = _overlap(a, b, *nominal)
    if min(ref.shape) < 4:
        return []
    full = np.ones(ref.shape, dtype=bool)
    result = phase_cross_correlation(ref, mov, reference_mask=full, moving_mask=full, overlap_ratio=0.5)
    shift = result[0] if isinstance(result, tuple) else result  # older scikit-image: shift only
    return [(nominal[0] + int(round(shift[0])), nominal[1] + int(round(shift[1])))]


def _template_candidates(a: np.ndarray, b: np.ndarray, nominal: tuple[int, int], margin: int) -> list[tuple[int, int]]:
    """Offsets of ``b`` within ``margin`` of ``nominal`` where part of its overlap matches best.

    The part of ``b`` that overlaps ``a`` at every shift up to ``margin`` is matched against
    ``a`` by normalised cross-correlation (``match_template``) over the whole search
    window; the few best local peaks are returned.
    """
    (ny, nx), (h, w), (hb, wb) = nominal, a.shape, b.shape
    y0, y1 = max(0, margin - ny), min(hb, h - margin - ny)
    x0, x1 = max(0, margin - nx), min(wb, w - margin - nx)
    if y1 - y0 < 4 or x1 - x0 < 4:
        return [nominal]
    template = b[y0:y1, x0:x1]
    window = a[ny + y0 - margin : ny + y1 + margin, nx + x0 - margin : nx + x1 + margin]
    score = match_template(window, template)
    peaks = peak_local_max(score, min_distance=1, num_peaks=_CANDIDATES, exclude_border=False)
    if len(peaks) == 0:
        peaks = [np.unravel_index(int(np.argmax(score)), score.shape)]
    return [(ny + int(py) - margin, nx + int(px) - margin) for py, px in peaks]


def _pair_offset(
    a: np.ndarray, b: np.ndarray, nominal: tuple[int, int], max_shift: int, min_correlation: float
) -> tuple[int, int, float] | None:
    """``(dy, dx, ncc)``: offset of ``b`` from ``a`` refined around ``nominal``; None if untrustworthy."""
    best, offset = -2.0, nominal
    seen: set[tuple[int, int]] = set()
    for propose in (_phase_candidates, _template_candidates):
        # judge each candidate (and its neighbours, for objects cut by a strip edge) by the
        # normalised cross-correlation of the whole overlap it implies
        for cy, cx in propose(a, b, nominal, max_shift):
            for ey in (-1, 0, 1):
                for ex in (-1, 0, 1):
                    oy, ox = cy + ey, cx + ex
                    if (oy, ox) in seen or max(abs(oy - nominal[0]), abs(ox - nominal[1])) > max_shift:
                        continue
                    seen.add((oy, ox))
                    score = _ncc(*_overlap(a, b, oy, ox))
                    if score > best:
                        best, offset = score, (oy, ox)
        if best >= _CONFIDENT:
            break
    if best < min_correlation:
        return None
    return offset[0], offset[1], best


def estimate_site_positions(
    stack: np.ndarray,
    grid: tuple[int, int],
    overlap: float = 0.1,
    max_shift: float | None = None,
    min_correlation: float = 0.3,
) -> np.ndarray:
    """Refined top-left ``(y, x)`` of each site (row-major), site 1 at ``(0, 0)``; int64 ``(n, 2)``."""
    tiles = as_float_stack(stack)
    rows, cols = _check_grid(tiles, grid)
    h, w = tiles.shape[1:]
    nominal = nominal_positions(grid, (h, w), overlap)
    if max_shift is None:
        max_shift = default_max_shift((h, w), overlap)
    n = len(tiles)
    equations: list[tuple[int, int, np.ndarray, float]] = []
    for k in range(n):
        r, c = divmod(k, cols)
        for nb in ((k + 1) if c + 1 < cols else None, (k + cols) if r + 1 < rows else None):
            if nb is None:
                continue
            checkpoint()
            nom = nominal[nb] - nominal[k]
            found = _pair_offset(tiles[k], tiles[nb], (int(nom[0]), int(nom[1])), int(max_shift), min_correlation)
            if found is not None:
                equations.append((k, nb, np.array(found[:2], dtype=np.float64), found[2]))
    # least squares over p_1..p_{n-1} (p_0 = 0): p_b - p_a = offset, plus weak p_k = nominal_k
    design = np.zeros((len(equations) + n - 1, n - 1))
    target = np.zeros((len(equations) + n - 1, 2))
    for i, (a, b, offset, weight) in enumerate(equations):
        if b > 0:
            design[i, b - 1] = weight
        if a > 0:
            design[i, a - 1] = -weight
        target[i] = weight * offset
    for k in range(1, n):
        design[len(equations) + k - 1, k - 1] = _PRIOR_WEIGHT
        target[len(equations) + k - 1] = _PRIOR_WEIGHT * nominal[k]
    positions = np.zeros((n, 2), dtype=np.int64)
    if n > 1:
        # normal equations with einsum: lstsq would wake every BLAS thread for a 7x3 system
        gram = np.einsum("ij,ik->jk", design, design)
        solution = np.linalg.solve(gram, np.einsum("ij,ik->jk", design, target))
        positions[1:] = np.rint(solution).astype(np.int64)
    return positions


def _check_grid(tiles: np.ndarray, grid: tuple[int, int]) -> tuple[int, int]:
    rows, cols = (int(g) for g in grid)
    if rows < 1 or cols < 1 or rows * cols != len(tiles):
        raise ValueError(f"grid {tuple(grid)} needs {rows * cols} sites, the stack has {len(tiles)} planes")
    return rows, cols


def _feather(h: int, w: int) -> np.ndarray:
    """Weights rising linearly from the border to the middle of a tile (never zero)."""
    wy = np.minimum(np.arange(1, h + 1), np.arange(h, 0, -1)).astype(np.float32)
    wx = np.minimum(np.arange(1, w + 1), np.arange(w, 0, -1)).astype(np.float32)
    return np.minimum.outer(wy, wx)


def blend_tiles(
    tiles: np.ndarray,
    positions: np.ndarray,
    blend: str = "linear",
    shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """Place ``tiles`` at ``positions`` into one float32 plane.

    Without ``shape`` positions are shifted so the smallest is 0 and the plane is their
    bounding box; with ``shape`` positions are used as given, clipped so every tile fits.
    """
    tiles = np.asarray(tiles, dtype=np.float32)
    positions = np.asarray(positions, dtype=np.int64)
    h, w = tiles.shape[1:]
    if shape is None:
        positions = positions - positions.min(axis=0)
        height, width = int(positions[:, 0].max()) + h, int(positions[:, 1].max()) + w
    else:
        height, width = (int(v) for v in shape)
        if height < h or width < w:
            raise ValueError(f"a {height}x{width} canvas cannot hold {h}x{w} tiles")
        positions = np.clip(positions, 0, [height - h, width - w])
    acc = np.zeros((height, width), dtype=np.float32)
    weights = np.zeros((height, width), dtype=np.float32)
    weight = _feather(h, w) if blend == "linear" else np.ones((h, w), dtype=np.float32)
    for tile, (y, x) in zip(tiles, positions, strict=True):
        checkpoint()
        acc[y : y + h, x : x + w] += tile * weight
        weights[y : y + h, x : x + w] += weight
    np.divide(acc, weights, out=acc, where=weights > 0)
    return acc


@register(category="stitching")
def stitch_sites(
    stack: np.ndarray,
    grid: tuple[int, int] = (2, 2),
    overlap: float = 0.1,
    refine: bool = True,
    max_shift: int | None = None,
    min_correlation: float = 0.3,
    blend: str = "linear",
    canvas: str = "fixed",
) -> np.ndarray:
    """Stitch sites (row-major, site 1 top-left) into a ``(1, H, W)`` float32 mosaic.

    ``grid`` is ``(rows, cols)`` of sites, ``overlap`` the nominal overlap fraction between
    neighbours. With ``refine`` each neighbour pair is registered by phase correlation
    (shifts up to ``max_shift`` pixels, default half the overlap). ``blend`` is
    ``"linear"`` (feathered) or ``"average"``.

    ``canvas="fixed"`` (default) gives a mosaic whose shape depends only on the grid, tile
    shape, overlap and ``max_shift`` (the nominal extent plus a ``max_shift`` margin on every
    side, zero where no site reaches), so channels stitched separately stack together;
    ``canvas="tight"`` crops to the bounding box of the refined positions.

    Example::

        >>> texture = np.random.default_rng(0).random((120, 120))
        >>> tiles = np.stack([texture[y:y + 64, x:x + 64] for y in (0, 56) for x in (0, 56)])
        >>> mosaic = stitch_sites(tiles, grid=(2, 2), overlap=0.125, canvas="tight")
        >>> mosaic.shape, bool(np.allclose(mosaic[0], texture[:120, :120], atol=1e-6))
        ((1, 120, 120), True)
    """
    if blend not in ("linear", "average"):
        raise ValueError(f"unknown blend {blend!r}; choose 'linear' or 'average'")
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    if canvas not in ("fixed", "tight"):
        raise ValueError(f"unknown canvas {canvas!r}; choose 'fixed' or 'tight'")
    tiles = as_float_stack(stack)
    _check_grid(tiles, grid)
    tile_shape = tiles.shape[1:]
    nominal = nominal_positions(grid, tile_shape, overlap)
    if max_shift is None:
        max_shift = default_max_shift(tile_shape, overlap)
    if not refine or len(tiles) == 1:
        positions, margin = nominal, 0
    else:
        positions = estimate_site_positions(tiles, grid, overlap, max_shift, min_correlation)
        margin = int(max_shift)
    if canvas == "tight":
        return blend_tiles(tiles, positions, blend)[np.newaxis]
    # centre the refined layout on the nominal grid, inside a margin of ``max_shift``
    positions = positions + np.rint((nominal - positions).mean(axis=0)).astype(np.int64) + margin
    extent = nominal.max(axis=0) + np.array(tile_shape) + 2 * margin
    return blend_tiles(tiles, positions, blend, shape=(int(extent[0]), int(extent[1])))[np.newaxis]
