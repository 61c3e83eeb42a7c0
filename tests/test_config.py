from dataclasses import FrozenInstanceError

import pytest

from openhcs.core.config import GlobalPipelineConfig, PipelineConfig


def test_pipeline_config_inherits_none_fields():
    base = GlobalPipelineConfig(num_workers=3, mode="threads", cancel_grace_seconds=2.0)
    resolved = PipelineConfig(mode="processes").resolve(base)
    assert resolved.mode == "processes"
    assert resolved.num_workers == 3
    assert resolved.cancel_grace_seconds == 2.0


def test_configs_are_frozen():
    with pytest.raises(FrozenInstanceError):
        GlobalPipelineConfig().num_workers = 5


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_workers": 0}, "num_workers"),
        ({"mode": "gpu"}, "mode must be one of"),
        ({"materialization_format": "png"}, "materialization_format"),
    ],
)
def test_bad_global_config_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GlobalPipelineConfig(**kwargs)


def test_output_path_defaults_beside_plate(tmp_path):
    plate = tmp_path / "plate1"
    assert GlobalPipelineConfig().output_path_for(plate) == tmp_path / "plate1_outputs"
    out = GlobalPipelineConfig(output_dir=str(tmp_path / "out")).output_path_for(plate)
    assert out == tmp_path / "out" / "plate1"
