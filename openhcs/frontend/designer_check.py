"""Check a designed pipeline against a plate, and preview it on one site, in-process.

Both are what a server will later answer over the wire; the designer model calls them
through one method each (``DesignerModel.validate`` / ``preview``), so switching to the
server's requests changes only those methods. Validation is the orchestrator's own
compile phase, run once per step so that every step's error is shown, not only the first;
each ``CompileError`` names its step, and the reason is mapped to the field to fix.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from openhcs.core.steps import FunctionStep

# Fields an issue can point at (``param`` names the parameter when field == PARAMS).
FUNCTION, NAME, COMPONENTS, PARAMS, PLATE, KEYS = "function", "name", "components", "params", "plate", "keys"

_STEP_RE = re.compile(r"^step '(?P<name>(?:[^'\\]|\\.)*)'")
_KWARG_RES = (
    re.compile(r"unexpected keyword argument '(?P<p>\w+)'"),
    re.compile(r"missing a required argument: '(?P<p>\w+)'"),
)


@dataclass(frozen=True)
class Issue:
    """One problem, at a step (index; None for the whole pipeline) and a field."""

    step: int | None
    field: str
    message: str
    param: str | None = None

    def __str__(self) -> str:
        return self.message


def issue_for(message: str, step: int | None, default_field: str = FUNCTION) -> Issue:
    """An :class:`Issue` whose field is read from a compile error's reason."""
    for pattern in _KWARG_RES:
        found = pattern.search(message)
        if found:
            return Issue(step, PARAMS, message, found.group("p"))
    if "variable component" in message or "group_by" in message:
        return Issue(step, COMPONENTS, message)
    if " not in plate (plate has " in message:
        return Issue(step, KEYS, message)
    if "names must be unique" in message:
        return Issue(step, NAME, message)
    return Issue(step, default_field, message)


def step_index(message: str, names: Sequence[str]) -> int | None:
    """Which step a ``step 'name': ...`` message is about."""
    found = _STEP_RE.match(message)
    if found and found.group("name") in names:
        return list(names).index(found.group("name"))
    return None


def compile_issues(plate_path: Path, steps: Sequence[FunctionStep | None], global_config=None,
                   whole: bool = True) -> list[Issue]:
    """Every compile error of ``steps`` on the plate, one per failing step.

    ``None`` stands for a step that could not be built (already reported by the caller).
    With ``whole``, a pipeline whose steps all compile is compiled once more as a whole.
    """
    from openhcs.core.orchestrator.orchestrator import CompileError, PipelineOrchestrator
    from openhcs.io.errors import PlateError

    try:
        orchestrator = PipelineOrchestrator(plate_path, global_config).initialize()
    except (PlateError, OSError) as exc:
        return [Issue(None, PLATE, f"cannot read plate {plate_path}: {exc}")]
    issues = []
    for index, step in enumerate(steps):
        if step is None:
            continue
        try:
            orchestrator.compile_pipelines([step])
        except CompileError as exc:
            issues.append(issue_for(str(exc), index))
    built = [s for s in steps if s is not None]
    if whole and built and not issues:
        try:  # what only the whole pipeline can get wrong (e.g. two steps with one name)
            orchestrator.compile_pipelines(built)
        except CompileError as exc:
            names = [s.display_name for s in built]
            issues.append(issue_for(str(exc), step_index(str(exc), names), NAME))
    return issues


@dataclass
class Preview:
    """The images (and measurement rows) after ``step`` on one site of one well."""

    step: str
    well: str
    site: str
    images: dict[tuple[str, str, str, str], np.ndarray] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)

    def describe(self) -> str:
        if not self.images:
            return f"{self.step}: no images on {self.well} site {self.site}"
        first = next(iter(self.images.values()))
        return (f"after {self.step!r} on {self.well} site {self.site}: {len(self.images)} image(s) "
                f"{first.shape[1]}x{first.shape[0]} {first.dtype}, {len(self.rows)} measurement row(s)")


def preview_locally(plate_path: Path, steps: Sequence[FunctionStep], well: str | None = None,
                    site: str | None = None) -> Preview:
    """Run ``steps`` on one site of one well in this process, with core's step runner."""
    from openhcs.core.well_runner import apply_step
    from openhcs.io.detect import open_plate
    from openhcs.io.plate import read_image

    plate = open_plate(plate_path)
    well = well or plate.wells[0]
    records = plate.records_for(well)
    site = site or records[0].site
    images = {(r.site, r.channel, r.z, r.timepoint): read_image(r.path) for r in records if r.site == site}
    rows: list[dict[str, Any]] = []
    for step in steps:
        images, step_rows = apply_step(step, images)
        rows = [{"step": step.display_name, **r} for r in step_rows] or rows
    return Preview(steps[-1].display_name if steps else "(none)", well, site, images, rows)
