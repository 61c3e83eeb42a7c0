"""The compiler follows declared contracts (image / mask / labels) through a pipeline, and a
labels + image measurement writes per-object rows that keep well, site and label."""

from __future__ import annotations

import csv

import pytest

from openhcs.core.config import GlobalPipelineConfig
from openhcs.core.orchestrator.compiler import CompileError
from openhcs.core.orchestrator.orchestrator import PipelineOrchestrator
from openhcs.core.steps import FunctionStep
from openhcs.processing.filters import denoise
from openhcs.processing.object_measurements import measure_objects
from openhcs.processing.segmentation import segment_nuclei
from openhcs.processing.skimage_catalog import (
    filters_gaussian,
    measure_label,
    segmentation_expand_labels,
)

from .plates import write_plate


@pytest.fixture
def orchestrator(tmp_path):
    from openhcs.demo.plate import make_demo_plate

    plate = tmp_path / "plate"
    make_demo_plate(plate, rows=1, cols=2, image_size=96)
    config = GlobalPipelineConfig(mode="threads", num_workers=1, output_dir=str(tmp_path / "out"))
    orch = PipelineOrchestrator(plate, config).initialize()
    yield orch
    orch.shutdown()


def _measure_step(**kwargs) -> FunctionStep:
    return FunctionStep(func=measure_objects, name="measure", variable_components=("channel",),
                        group_by="site", kwargs=kwargs)


SEGMENT = FunctionStep(func={"1": segment_nuclei}, name="segment", variable_components=("site",),
                       group_by="channel")


def test_a_labels_consumer_without_labels_is_refused_naming_the_step(orchestrator):
    with pytest.raises(CompileError, match=r"step 'measure': measure_objects needs labels and an image"):
        orchestrator.compile_pipelines([_measure_step()])
    grow = FunctionStep(func=segmentation_expand_labels, name="grow")
    with pytest.raises(CompileError, match=r"step 'grow': segmentation_expand_labels needs labels"):
        orchestrator.compile_pipelines([FunctionStep(func=filters_gaussian, name="blur"), grow])


def test_an_image_filter_on_labels_only_is_refused(orchestrator):
    everything = FunctionStep(func=segment_nuclei, name="segment all")
    with pytest.raises(CompileError, match=r"step 'smooth': denoise needs an image .* only holds labels"):
        orchestrator.compile_pipelines([everything, FunctionStep(func=denoise, name="smooth")])


def test_a_keyword_the_function_does_not_take_is_refused(orchestrator):
    step = FunctionStep(func=(filters_gaussian, {"sigmaa": 2}), name="blur")
    with pytest.raises(CompileError, match=r"step 'blur'.*sigmaa"):
        orchestrator.compile_pipelines([step])


def test_a_measurement_needs_one_field_per_stack(orchestrator):
    step = FunctionStep(func=measure_objects, name="measure", variable_components=("site",), group_by="channel")
    with pytest.raises(CompileError, match=r"step 'measure'.*variable_components=\('channel',\)"):
        orchestrator.compile_pipelines([SEGMENT, step])


def test_a_chain_from_mask_to_labels_compiles(orchestrator):
    from openhcs.processing.skimage_catalog import filters_threshold_otsu

    chain = FunctionStep(func={"1": [filters_gaussian, filters_threshold_otsu, measure_label]}, name="objects",
                         group_by="channel")
    plan = orchestrator.compile_pipelines([chain, _measure_step(features=("sizeshape",))])
    assert len(plan.pipeline) == 2


def test_rows_keep_well_site_and_label(tmp_path):
    plate = write_plate(tmp_path / "plate", wells=("A01", "B02"), sites=2, channels=2, size=48)
    config = GlobalPipelineConfig(mode="threads", num_workers=1, output_dir=str(tmp_path / "out"))
    from openhcs.processing.skimage_catalog import filters_threshold_mean

    # smoothed random noise above its mean: several objects in every site
    threshold = FunctionStep(func={"1": [(filters_gaussian, {"sigma": 2}), filters_threshold_mean, measure_label]},
                             name="objects", group_by="channel")
    orch = PipelineOrchestrator(plate, config)
    try:
        result = orch.run([threshold, _measure_step(features=("sizeshape", "intensity"))])
    finally:
        orch.shutdown()
    assert result.status == "complete", result.to_dict()
    for well in ("A01", "B02"):
        with open(tmp_path / "out" / "plate" / "measurements" / f"{well}.csv") as fh:
            rows = list(csv.DictReader(fh))
        assert rows and {r["well"] for r in rows} == {well} and {r["site"] for r in rows} == {"1", "2"}
        for site in ("1", "2"):
            labels = [int(r["label"]) for r in rows if r["site"] == site]
            assert labels == list(range(1, len(labels) + 1))
        assert all(float(r["AreaShape_Area"]) > 0 and "Intensity_MeanIntensity_ch2" in r for r in rows)
