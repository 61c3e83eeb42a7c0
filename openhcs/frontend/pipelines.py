"""Which pipeline to run: the default demo pipeline (fitted to each plate's site grid) or a file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from openhcs.frontend.plates import PlateEntry

DEFAULT_NAME = "default (flat-field, background, stitch, measure nuclei)"


@dataclass
class PipelineChoice:
    """``path=None`` is the default pipeline; otherwise a ``.py`` pipeline file."""

    path: Path | None = None

    @property
    def label(self) -> str:
        return DEFAULT_NAME if self.path is None else str(self.path)

    def steps_for(self, plate: PlateEntry | None = None) -> list:
        """The FunctionSteps to run on ``plate`` (raises CodegenError for a bad file)."""
        if self.path is not None:
            from openhcs.codegen import load_pipeline_file

            return load_pipeline_file(self.path)
        from openhcs.demo.pipeline import default_pipeline

        grid = plate.site_grid if plate is not None and plate.sites else (2, 2)
        return list(default_pipeline(grid=grid))

    def step_names(self, plate: PlateEntry | None = None) -> list[str]:
        return [s.display_name for s in self.steps_for(plate)]


def choose(path: str | Path | None) -> PipelineChoice:
    """A choice for ``path`` (None/'' = default); loads the file once to fail early."""
    if not path:
        return PipelineChoice()
    choice = PipelineChoice(Path(path).expanduser().resolve())
    choice.steps_for()
    return choice
