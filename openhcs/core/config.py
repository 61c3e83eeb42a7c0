"""Run configuration: a global config, and per-plate overrides where ``None`` inherits.

Both are frozen dataclasses so a config can be shared between threads, sent to worker
processes and turned into Python source by :mod:`openhcs.codegen` without surprises.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path

EXECUTION_MODES = ("threads", "processes", "dask")
MATERIALIZATION_FORMATS = ("tiff", "none")


def _default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


@dataclass(frozen=True)
class GlobalPipelineConfig:
    """Settings every run starts from.

    ``output_dir=None`` writes results beside the plate, in ``<plate>_outputs``.
    ``cancel_grace_seconds`` is how long a cancelled well may keep running before a
    forced cancel kills its worker process.
    """

    num_workers: int = _default_workers()
    mode: str = "processes"
    output_dir: str | None = None
    materialization_format: str = "tiff"
    cancel_grace_seconds: float = 5.0
    dask_scheduler: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.num_workers, int) or self.num_workers < 1:
            raise ValueError(f"num_workers must be a positive integer, got {self.num_workers!r}")
        if self.mode not in EXECUTION_MODES:
            raise ValueError(f"mode must be one of {EXECUTION_MODES}, got {self.mode!r}")
        if self.materialization_format not in MATERIALIZATION_FORMATS:
            raise ValueError(
                f"materialization_format must be one of {MATERIALIZATION_FORMATS}, "
                f"got {self.materialization_format!r}"
            )
        if self.cancel_grace_seconds < 0:
            raise ValueError("cancel_grace_seconds must be >= 0")

    def output_path_for(self, plate_path: str | os.PathLike) -> Path:
        plate = Path(plate_path)
        if self.output_dir:
            return Path(self.output_dir) / plate.name
        return plate.parent / f"{plate.name}_outputs"


@dataclass(frozen=True)
class PipelineConfig:
    """Per-plate overrides of :class:`GlobalPipelineConfig`; ``None`` means inherit."""

    num_workers: int | None = None
    mode: str | None = None
    output_dir: str | None = None
    materialization_format: str | None = None
    cancel_grace_seconds: float | None = None
    dask_scheduler: str | None = None

    def resolve(self, global_config: GlobalPipelineConfig | None = None) -> GlobalPipelineConfig:
        base = global_config or GlobalPipelineConfig()
        overrides = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if getattr(self, f.name) is not None
        }
        return replace(base, **overrides)
