"""Run a pipeline over one well: the unit of work every executor ships.

A :class:`WellTask` holds only what one well needs (its image records, the steps, where
to write), so it pickles small for worker processes and Dask tasks alike. ``run_well``
loads that well's images, applies each step's function pattern to stacks built per
``group_by`` group along the ``variable_components``, collects measurement rows and
writes images and CSVs atomically. It never raises for a failing well: the outcome says
``failed`` with the error and traceback.
"""

from __future__ import annotations

import resource
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from openhcs.core import progress
from openhcs.core.steps import FunctionStep, iter_calls
from openhcs.io.plate import ImageRecord, natural_key, read_image
from openhcs.io.storage import write_csv_atomic, write_tiff_atomic
from openhcs.processing.checkpoint import StepCancelled, cancellation_scope

# Image key order inside a well: every image is addressed by these component values.
KEY_COMPONENTS = ("site", "channel", "z", "timepoint")

Emit = Callable[[str, str, str, dict[str, Any]], None]


@dataclass(frozen=True)
class WellTask:
    well: str
    records: tuple[ImageRecord, ...]
    steps: tuple[FunctionStep, ...]
    output_dir: str
    materialization_format: str = "tiff"


@dataclass
class WellOutcome:
    well: str
    status: str  # complete | failed | cancelled (the run vocabulary, not the event one)
    duration_s: float = 0.0
    error: str | None = None
    traceback: str | None = None
    failed_step: str | None = None
    outputs: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    step_times: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: float = 0.0
    worker: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "duration_s": round(self.duration_s, 4),
            "error": self.error,
            "traceback": self.traceback,
            "failed_step": self.failed_step,
            "outputs": list(self.outputs),
            "measurements": dict(self.summary),
            "step_times": {k: round(v, 4) for k, v in self.step_times.items()},
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "worker": self.worker,
        }


class StepOutputError(ValueError):
    """A step function returned something the pipeline cannot use."""


def run_well(task: WellTask, emit: Emit, is_cancelled: Callable[[], bool]) -> WellOutcome:
    """Process one well; report progress through ``emit``; poll ``is_cancelled``."""
    well = task.well
    total = len(task.steps)
    started = time.perf_counter()
    outcome = WellOutcome(well=well, status="complete")
    current_step: str | None = None
    if is_cancelled():
        return _cancelled(outcome, emit, None, started)
    emit(well, progress.PIPELINE, progress.STARTED, {"total_steps": total})
    try:
        images = _load_images(task.records)
        rows: list[dict[str, Any]] = []
        for index, step in enumerate(task.steps):
            current_step = step.display_name
            if is_cancelled():
                return _cancelled(outcome, emit, current_step, started)
            meta = {"step_index": index, "total_steps": total}
            emit(well, current_step, progress.STARTED, dict(meta))
            t0 = time.perf_counter()
            with cancellation_scope(is_cancelled):
                images, step_rows = apply_step(step, images)
            dt = time.perf_counter() - t0
            outcome.step_times[current_step] = dt
            rows.extend({"well": well, "step": current_step, **r} for r in step_rows)
            emit(well, current_step, progress.COMPLETED, {**meta, "duration_s": round(dt, 4)})
        current_step = "write outputs"
        outcome.outputs = _write_outputs(task, images, rows)
        outcome.summary = summarize_rows(rows)
    except StepCancelled:
        return _cancelled(outcome, emit, current_step, started)
    except Exception as exc:  # a failing well must never take the others down
        outcome.status = progress.FAILED
        outcome.error = f"{type(exc).__name__}: {exc}"
        outcome.traceback = traceback.format_exc()
        outcome.failed_step = current_step
        outcome.duration_s = time.perf_counter() - started
        outcome.peak_rss_mb = _peak_rss_mb()
        emit(
            well,
            progress.PIPELINE,
            progress.FAILED,
            {"error": outcome.error, "traceback": outcome.traceback, "step": current_step},
        )
        return outcome
    outcome.duration_s = time.perf_counter() - started
    outcome.peak_rss_mb = _peak_rss_mb()
    emit(
        well,
        progress.PIPELINE,
        progress.COMPLETED,
        {"duration_s": round(outcome.duration_s, 4), "outputs": len(outcome.outputs)},
    )
    return outcome


def _cancelled(outcome: WellOutcome, emit: Emit, step: str | None, started: float) -> WellOutcome:
    outcome.status = progress.CANCELLED
    outcome.failed_step = step
    outcome.duration_s = time.perf_counter() - started
    emit(outcome.well, progress.PIPELINE, progress.CANCELLED, {"step": step})
    return outcome


Key = tuple[str, str, str, str]


def _load_images(records: tuple[ImageRecord, ...]) -> dict[Key, np.ndarray]:
    images: dict[Key, np.ndarray] = {}
    for rec in records:
        images[(rec.site, rec.channel, rec.z, rec.timepoint)] = read_image(rec.path)
    return images


def apply_step(
    step: FunctionStep, images: dict[Key, np.ndarray]
) -> tuple[dict[Key, np.ndarray], list[dict[str, Any]]]:
    """Apply one step to a well's images; return the new images and measurement rows."""
    var_idx = [KEY_COMPONENTS.index(c) for c in step.variable_components]
    fixed_idx = [i for i in range(len(KEY_COMPONENTS)) if i not in var_idx]
    groups: dict[tuple[str, ...], list[Key]] = {}
    for key in images:
        groups.setdefault(tuple(key[i] for i in fixed_idx), []).append(key)

    out: dict[Key, np.ndarray] = {}
    rows: list[dict[str, Any]] = []
    group_pos = KEY_COMPONENTS.index(step.group_by) if step.group_by else None
    for group_keys in groups.values():
        group_keys.sort(key=lambda k: tuple(natural_key(k[i]) for i in var_idx))
        pattern = step.func
        if isinstance(pattern, dict):
            pattern = pattern.get(group_keys[0][group_pos]) if group_pos is not None else None
            if pattern is None:  # groups the dict does not name pass through unchanged
                out.update({k: images[k] for k in group_keys})
                continue
        planes = [images[k] for k in group_keys]
        shapes = {p.shape for p in planes}
        if len(shapes) > 1:
            raise StepOutputError(
                f"step {step.display_name!r}: images to stack have different shapes {sorted(shapes)}"
            )
        stack = np.stack(planes)
        for func, kwargs in iter_calls(pattern):
            stack, new_rows = _call(step, func, stack, kwargs)
            group_info = {KEY_COMPONENTS[i]: group_keys[0][i] for i in fixed_idx}
            rows.extend({**group_info, **r} for r in new_rows)
        if stack.shape[0] == len(group_keys):
            out.update(zip(group_keys, stack, strict=True))
        elif stack.shape[0] == 1:
            out[group_keys[0]] = stack[0]
        else:
            raise StepOutputError(
                f"step {step.display_name!r}: function returned {stack.shape[0]} planes for a "
                f"stack of {len(group_keys)}; return the same number or 1"
            )
    return out, rows


def _call(step: FunctionStep, func: Callable, stack: np.ndarray, kwargs: dict) -> tuple[np.ndarray, list]:
    result = func(stack, **{**step.kwargs, **kwargs})
    rows: list = []
    if isinstance(result, tuple):
        if len(result) != 2:
            raise StepOutputError(
                f"step {step.display_name!r}: {func.__name__} returned a tuple of {len(result)}; "
                "expected (stack, rows)"
            )
        result, rows = result
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise StepOutputError(
                f"step {step.display_name!r}: {func.__name__} measurement rows must be a list of dicts"
            )
    if not isinstance(result, np.ndarray):
        raise StepOutputError(
            f"step {step.display_name!r}: {func.__name__} returned {type(result).__name__}, "
            "expected a numpy array"
        )
    if result.ndim == 2:
        result = result[np.newaxis]
    if result.ndim != 3:
        raise StepOutputError(
            f"step {step.display_name!r}: {func.__name__} returned a {result.ndim}-D array; "
            "expected a (n, y, x) stack"
        )
    return result, rows


def _write_outputs(task: WellTask, images: dict[Key, np.ndarray], rows: list[dict]) -> list[str]:
    out_dir = Path(task.output_dir)
    written: list[str] = []
    if task.materialization_format == "tiff":
        for (site, channel, z, tp), image in sorted(images.items()):
            name = f"{task.well}_s{site}_w{channel}_z{z}_t{tp}.tif"
            path = out_dir / "images" / task.well / name
            write_tiff_atomic(path, image)
            written.append(str(path))
    if rows:
        path = out_dir / "measurements" / f"{task.well}.csv"
        write_csv_atomic(path, rows)
        written.append(str(path))
    return written


_NOT_SUMMARISED = {"label", "centroid_y", "centroid_x", "well", "step", *KEY_COMPONENTS}


def summarize_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-well summary: object count and the mean of each numeric measurement.

    With several measuring steps, columns are prefixed by the step name.
    """
    by_step: dict[str, list[dict]] = {}
    for row in rows:
        by_step.setdefault(row.get("step", ""), []).append(row)
    summary: dict[str, Any] = {}
    for step, step_rows in by_step.items():
        prefix = "" if len(by_step) == 1 else f"{step}_"
        summary[f"{prefix}object_count"] = len(step_rows)
        numeric = [
            k for k, v in step_rows[0].items()
            if k not in _NOT_SUMMARISED and isinstance(v, int | float | np.number)
        ]
        for key in numeric:
            values = [float(r[key]) for r in step_rows if key in r]
            summary[f"{prefix}mean_{key}"] = round(float(np.mean(values)), 6) if values else None
    return summary


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
