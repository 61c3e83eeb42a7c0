"""The demo plate on disk, and the default pipeline's functions counting its nuclei.

The pipeline functions are applied by hand, in the order and grouping the pipeline
declares, so this test checks the processing and the generator, not the orchestrator.
"""

from __future__ import annotations

import csv
import time

import numpy as np
import pytest
import tifffile

from openhcs.core.steps import iter_calls
from openhcs.demo import default_pipeline, make_demo_plate
from openhcs.demo.plate import dose_response_count, well_names


def load_channels(plate, well):
    """``[(sites, y, x) per channel]`` in site order, as the orchestrator stacks them."""
    folder = plate.path / "TimePoint_1"
    n_sites = plate.grid[0] * plate.grid[1]
    return [
        np.stack([tifffile.imread(folder / f"{well}_s{s}_w{c}.tif") for s in range(1, n_sites + 1)])
        for c in (1, 2)
    ]


def run_pipeline_by_hand(pipeline, channels):
    """Steps 1-3 per channel over sites, step 4 over the channels of the single mosaic."""
    flatfield, background, stitch, measure = pipeline.steps
    for step in (flatfield, background, stitch):
        assert step.variable_components == ("site",) and step.group_by == "channel"
        ((func, kwargs),) = iter_calls(step.func)
        channels = [func(stack, **kwargs) for stack in channels]
    assert all(len(stack) == 1 for stack in channels)  # one mosaic per channel
    assert measure.variable_components == ("channel",) and measure.group_by == "site"
    ((func, kwargs),) = iter_calls(measure.func)
    mosaic = np.concatenate(channels)
    out, rows = func(mosaic, **kwargs)
    assert np.array_equal(out, mosaic)
    return mosaic, rows


@pytest.fixture(scope="module")
def small_plates(tmp_path_factory):
    return [
        make_demo_plate(tmp_path_factory.mktemp(f"seed{seed}") / f"plate{seed}", rows=2, cols=3, seed=seed)
        for seed in (0, 3)
    ]


def test_layout_on_disk(small_plates):
    plate = small_plates[0]
    assert plate.wells == ("A01", "A02", "A03", "B01", "B02", "B03")
    assert plate.grid == (2, 2) and plate.overlap == 0.1
    names = sorted(p.name for p in (plate.path / "TimePoint_1").iterdir())
    assert len(names) == 6 * 4 * 2
    assert names[:3] == ["A01_s1_w1.tif", "A01_s1_w2.tif", "A01_s2_w1.tif"]
    image = tifffile.imread(plate.path / "TimePoint_1" / "B03_s4_w2.tif")
    assert image.dtype == np.uint16 and image.shape == (256, 256)
    assert image.min() > 50  # camera offset: no zero pixels in a real camera image
    htd = (plate.path / f"{plate.path.name}.HTD").read_text(encoding="latin-1")
    for line in ('"XSites", 2', '"YSites", 2', '"NWavelengths", 2', '"WaveName1", "DAPI"', '"WaveName2", "FITC"'):
        assert line in htd
    with open(plate.path / "ground_truth.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["well"]: int(r["nuclei_count"]) for r in rows} == plate.ground_truth


def test_dose_response_and_ground_truth(small_plates):
    plate = small_plates[0]
    assert dose_response_count(0, 6) == pytest.approx(59.7, abs=0.5)
    assert dose_response_count(5, 6) == pytest.approx(15.3, abs=0.5)
    truth = plate.ground_truth
    assert truth["A01"] > truth["A02"] > truth["A03"] or truth["B01"] > truth["B02"] > truth["B03"]
    for well in plate.wells:
        centres = plate.nuclei_centres[well]
        assert len(centres) == truth[well]
        sites = plate.site_positions[well]
        inside = [np.any(np.all((c >= sites) & (c < sites + 256), axis=1)) for c in centres]
        assert all(inside)


def test_deterministic_for_a_seed(tmp_path):
    a = make_demo_plate(tmp_path / "a", rows=1, cols=2, seed=7)
    b = make_demo_plate(tmp_path / "b", rows=1, cols=2, seed=7)
    c = make_demo_plate(tmp_path / "c", rows=1, cols=2, seed=8)
    assert a.ground_truth == b.ground_truth
    for name in ("A01_s1_w1.tif", "A02_s4_w2.tif"):
        assert np.array_equal(tifffile.imread(a.path / "TimePoint_1" / name), tifffile.imread(b.path / "TimePoint_1" / name))
    assert not np.array_equal(
        tifffile.imread(a.path / "TimePoint_1" / "A01_s1_w1.tif"), tifffile.imread(c.path / "TimePoint_1" / "A01_s1_w1.tif")
    )


def test_sites_overlap_with_stage_jitter(small_plates):
    plate = small_plates[1]
    for well in plate.wells:
        positions = plate.site_positions[well]
        nominal = np.array([(0, 0), (0, 230), (230, 0), (230, 230)])
        jitter = positions - nominal
        assert np.abs(jitter).max() <= 6
    assert any(np.any(plate.site_positions[w] != nominal) for w in plate.wells)


def test_nuclei_counts_match_ground_truth(small_plates):
    pipeline = default_pipeline()
    for plate in small_plates:
        for well in plate.wells:
            mosaic, rows = run_pipeline_by_hand(pipeline, load_channels(plate, well))
            truth = plate.ground_truth[well]
            assert abs(len(rows) - truth) <= max(1, 0.05 * truth), (plate.path.name, well, len(rows), truth)
            assert mosaic.shape[0] == 2
            # the cytoplasm channel is brighter inside nuclei than the mosaic background
            assert np.median([r["mean_intensity_ch2"] for r in rows]) > 3 * np.median(mosaic[1])


def test_stitching_recovers_the_stage_jitter(small_plates):
    from openhcs.processing.stitching import estimate_site_positions

    plate = small_plates[0]
    pipeline = default_pipeline()
    flatfield, background = pipeline.steps[:2]
    checked = 0
    for well in plate.wells:
        dapi = load_channels(plate, well)[0]
        for step in (flatfield, background):
            ((func, kwargs),) = iter_calls(step.func)
            dapi = func(dapi, **kwargs)
        estimated = estimate_site_positions(dapi, grid=plate.grid, overlap=plate.overlap)
        true = plate.site_positions[well]
        centres = plate.nuclei_centres[well]
        for a, b in [(0, 1), (2, 3), (0, 2), (1, 3)]:
            lo, hi = np.maximum(true[a], true[b]), np.minimum(true[a], true[b]) + 256
            if not np.any(np.all((centres > lo + 3) & (centres < hi - 3), axis=1)):
                continue  # no nucleus in this overlap: nothing to register, nothing to double
            checked += 1
            assert np.abs((estimated[b] - estimated[a]) - (true[b] - true[a])).max() <= 1, (well, a, b)
    assert checked >= 6


def test_default_plate_generates_quickly(tmp_path):
    # CPU time, not wall time: the budget is the generator's work, not the machine's load
    start = time.process_time()
    plate = make_demo_plate(tmp_path / "plate")
    elapsed = time.process_time() - start
    assert len(plate.wells) == 24 and plate.wells[-1] == "D06"
    assert plate.wells == well_names(4, 6)
    assert elapsed < 5.0, f"{elapsed:.1f} s"
    counts = [plate.ground_truth[w] for w in plate.wells]
    assert 45 <= np.mean(counts[:1] + counts[6:7] + counts[12:13] + counts[18:19]) <= 75
    assert 8 <= np.mean(counts[5:6] + counts[11:12] + counts[17:18] + counts[23:24]) <= 22


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="rows"):
        make_demo_plate(tmp_path / "p", rows=0)
    with pytest.raises(ValueError, match="overlap"):
        make_demo_plate(tmp_path / "p", overlap=0.6)


def test_the_io_layer_reads_the_demo_plate(small_plates):
    from openhcs.io.detect import open_plate

    plate = small_plates[0]
    opened = open_plate(plate.path)
    assert opened.format == "imagexpress"
    assert opened.wells == plate.wells
    assert opened.sites == ("1", "2", "3", "4") and opened.channels == ("1", "2")
    assert opened.image_shape == (256, 256) and opened.dtype == np.uint16
    assert opened.metadata["site_rows"] == 2 and opened.metadata["site_cols"] == 2
    assert opened.metadata["channel_names"] == {"1": "DAPI", "2": "FITC"}


def test_public_names():
    import doctest

    import openhcs.demo
    import openhcs.demo.pipeline
    import openhcs.processing

    for name in openhcs.processing.__all__ + openhcs.demo.__all__:
        module = openhcs.processing if name in openhcs.processing.__all__ else openhcs.demo
        assert getattr(module, name) is not None, name
    result = doctest.testmod(openhcs.demo.pipeline)
    assert result.attempted > 0 and result.failed == 0
