"""The demo plate through the real orchestrator and worker processes matches its ground truth."""

from __future__ import annotations

import csv

from openhcs.core.config import GlobalPipelineConfig
from openhcs.core.orchestrator.orchestrator import PipelineOrchestrator
from openhcs.demo.pipeline import default_pipeline
from openhcs.demo.plate import make_demo_plate


def test_default_pipeline_counts_nuclei_within_5_percent(tmp_path):
    demo = make_demo_plate(tmp_path / "plate", rows=2, cols=3, seed=3)
    orch = PipelineOrchestrator(demo.path, GlobalPipelineConfig(num_workers=2, mode="processes"))
    try:
        result = orch.run(default_pipeline(grid=demo.grid, overlap=demo.overlap))
    finally:
        orch.shutdown()
    assert result.status == "complete", result.to_dict()["failed"]
    with open(result.summary_path) as f:
        counts = {row["well"]: int(row["object_count"]) for row in csv.DictReader(f)}
    assert set(counts) == set(demo.ground_truth)
    for well, truth in demo.ground_truth.items():
        assert abs(counts[well] - truth) <= max(1, 0.05 * truth), (well, counts[well], truth)
    # one stitched mosaic per channel per well, written as real TIFFs
    mosaics = sorted(p.name for p in (result.output_dir / "images" / "A01").glob("*.tif"))
    assert mosaics == ["A01_s1_w1_z1_t1.tif", "A01_s1_w2_z1_t1.tif"]
