"""Check a pipeline against a plate before any work starts.

Everything a user can get wrong — a bad function pattern, a keyword a function does not
take, a component or channel the plate does not have, unknown wells, a step that cannot
be shipped to a worker process, an output folder that cannot be written — is reported
here, with the step and the reason, before a single image is read.
"""

from __future__ import annotations

import inspect
import pickle
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from openhcs.core.config import GlobalPipelineConfig
from openhcs.core.pipeline import Pipeline
from openhcs.core.steps import FunctionStep, PatternError, iter_calls
from openhcs.core.well_runner import WellTask
from openhcs.io.plate import Plate
from openhcs.processing.contracts import Contract, ContractError, Kind, apply
from openhcs.processing.registry import contract_of

_COMPONENT_VALUES = {
    "site": "sites",
    "channel": "channels",
    "z": "z_indices",
    "timepoint": "timepoints",
}


class CompileError(ValueError):
    """The pipeline cannot run on this plate; the message says why."""


@dataclass(frozen=True)
class CompiledPlan:
    pipeline: Pipeline
    wells: tuple[str, ...]
    tasks: tuple[WellTask, ...]
    output_dir: Path
    config: GlobalPipelineConfig


def compile_plan(
    plate: Plate,
    steps: Pipeline | Iterable[FunctionStep],
    config: GlobalPipelineConfig,
    wells: Iterable[str] | None = None,
) -> CompiledPlan:
    try:
        pipeline = Pipeline.coerce(steps)
    except PatternError as exc:
        raise CompileError(str(exc)) from exc
    if not len(pipeline):
        raise CompileError("the pipeline has no steps")
    selected = _select_wells(plate, wells)
    kinds: frozenset[Kind] | None = frozenset({Kind.IMAGE})
    for step in pipeline:
        _check_step(plate, step)
        kinds = _check_contracts(plate, step, kinds)
    if config.mode in ("processes", "dask"):
        _check_picklable(pipeline)
    output_dir = config.output_path_for(plate.path)
    _check_writable(output_dir)
    tasks = tuple(
        WellTask(
            well=well,
            records=tuple(plate.records_for(well)),
            steps=pipeline.steps,
            output_dir=str(output_dir),
            materialization_format=config.materialization_format,
        )
        for well in selected
    )
    return CompiledPlan(pipeline, selected, tasks, output_dir, config)


def _select_wells(plate: Plate, wells: Iterable[str] | None) -> tuple[str, ...]:
    if wells is None:
        return tuple(plate.wells)
    wanted = [w.strip().upper() for w in wells if w.strip()]
    unknown = [w for w in wanted if w not in plate.wells]
    if unknown:
        raise CompileError(
            f"wells not in plate {plate.path}: {', '.join(unknown)} "
            f"(plate has {len(plate.wells)} wells, {plate.wells[0]}..{plate.wells[-1]})"
        )
    if not wanted:
        raise CompileError("no wells selected")
    return tuple(dict.fromkeys(wanted))


def _check_step(plate: Plate, step: FunctionStep) -> None:
    name = step.display_name
    if isinstance(step.func, dict):
        if step.group_by is None:
            raise CompileError(f"step {name!r}: a dict pattern needs group_by to choose its keys")
        available = list(getattr(plate, _COMPONENT_VALUES[step.group_by]))
        missing = [k for k in step.func if k not in available]
        if missing:
            raise CompileError(
                f"step {name!r}: {step.group_by} {', '.join(map(repr, missing))} not in plate "
                f"(plate has {step.group_by}s {', '.join(available)})"
            )
        patterns = list(step.func.values())
    else:
        patterns = [step.func]
    for pattern in patterns:
        for func, kwargs in iter_calls(pattern):
            _check_signature(name, func, {**step.kwargs, **kwargs})


def _check_signature(step_name: str, func, kwargs: dict) -> None:
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return  # builtins without signatures: checked at run time
    try:
        sig.bind(None, **kwargs)
    except TypeError as exc:
        fname = getattr(func, "__name__", repr(func))
        raise CompileError(
            f"step {step_name!r}: {fname}{sig} cannot be called with a stack and "
            f"{sorted(kwargs)}: {exc}"
        ) from exc


def _check_contracts(plate: Plate, step: FunctionStep, kinds: frozenset[Kind] | None) -> frozenset[Kind] | None:
    """Follow the kinds of planes (image, mask, labels) through ``step``'s declared contracts.

    Returns the kinds after the step; ``None`` once a function without a contract ran (its
    output is unknown, so later steps are not checked).
    """
    if kinds is None:
        return None
    patterns = list(step.func.values()) if isinstance(step.func, dict) else [step.func]
    after: set[Kind] = set()
    if isinstance(step.func, dict):
        values = getattr(plate, _COMPONENT_VALUES[step.group_by]) if step.group_by else ()
        if any(v not in step.func for v in values):
            after |= kinds  # groups the dict does not name pass through
    for pattern in patterns:
        branch = kinds
        for func, _ in iter_calls(pattern):
            contract = contract_of(func)
            if contract is None:
                return None
            fname = getattr(func, "__name__", repr(func))
            try:
                branch = apply(Contract(contract), branch)
            except ContractError as exc:
                raise CompileError(f"step {step.display_name!r}: {fname} {exc}") from None
            if Contract(contract) is Contract.LABELS_IMAGE_TO_TABLE and (
                "site" in step.variable_components or "channel" not in step.variable_components
            ):
                raise CompileError(
                    f"step {step.display_name!r}: {fname} measures the labels plane against the channel "
                    "planes of one field, so the step needs variable_components=('channel',) "
                    f"(it has {step.variable_components})"
                )
        after |= branch
    return frozenset(after)


def _check_picklable(pipeline: Pipeline) -> None:
    for step in pipeline:
        try:
            pickle.dumps(step)
        except Exception as exc:
            raise CompileError(
                f"step {step.display_name!r} cannot be sent to worker processes ({exc}); "
                "use functions defined at module level in an importable module, "
                "or mode='threads'"
            ) from exc


def _check_writable(output_dir: Path) -> None:
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=output_dir, prefix=".openhcs-probe-"):
            pass
    except OSError as exc:
        raise CompileError(f"output folder {output_dir} is not writable: {exc.strerror or exc}") from exc
