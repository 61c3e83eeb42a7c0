"""The pipeline designer's model, shared by the Qt and Textual front ends (no UI imports).

It holds the pipeline being edited as :class:`~openhcs.frontend.designer_steps.StepDraft`
objects, the function catalog to pick from, the plate to design against, and the last
validation's issues. Views call its methods and redraw on ``changed(topic, detail)``
with topic ``steps`` (the list changed), ``step`` (detail: the index of the step whose
content changed), ``plate``, ``issues``, ``saved`` or ``status``. Every edit that cannot
be applied raises ``ValueError`` (``ParamError`` for a parameter) with a message to show,
and changes nothing. The pipeline is written and read only through :mod:`openhcs.codegen`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from openhcs.core.steps import GROUPABLE, FunctionStep, PatternError
from openhcs.frontend.designer_catalog import Catalog, CatalogEntry
from openhcs.frontend.designer_check import (
    FUNCTION,
    NAME,
    PLATE,
    Issue,
    Preview,
    compile_issues,
    issue_for,
    preview_locally,
)
from openhcs.frontend.designer_params import ParamField
from openhcs.frontend.designer_steps import Branch, Call, DraftError, StepDraft, draft_from_step
from openhcs.frontend.plates import PlateEntry
from openhcs.frontend.signals import Signal

# The plate summary key holding each groupable component's values.
COMPONENT_KEYS = {"site": "sites", "channel": "channels", "z": "z_indices", "timepoint": "timepoints"}


class DesignerModel:
    def __init__(self, catalog: Catalog | None = None, plate: PlateEntry | None = None,
                 global_config=None) -> None:
        self.catalog = catalog or Catalog()
        self.plate = plate
        self.global_config = global_config
        self.steps: list[StepDraft] = []
        self.path: Path | None = None
        self.dirty = False
        self.issues: list[Issue] = []
        self.status = "New empty pipeline."
        self.changed = Signal()

    # ------------------------------------------------------------------ events
    def _emit(self, topic: str, detail: Any = None) -> None:
        self.changed.emit(topic, detail)

    def _say(self, text: str) -> None:
        self.status = text
        self._emit("status", text)

    def _edited(self, index: int | None = None) -> None:
        self.dirty = True
        if self.issues:
            self.issues = []
            self._emit("issues", self.issues)
        self._emit("steps" if index is None else "step", index)

    # ------------------------------------------------------------------ whole pipeline
    def _replace(self, steps: Sequence[FunctionStep], path: Path | None, status: str) -> None:
        self.steps = [draft_from_step(s, self.catalog.entry_for) for s in steps]
        self.path, self.dirty, self.issues = path, False, []
        self._emit("steps")
        self._emit("issues", self.issues)
        self._say(status)

    def new_empty(self) -> None:
        self._replace([], None, "New empty pipeline: add a step.")

    def new_default(self) -> None:
        """The default analysis, fitted to the plate's site grid (as the plate manager runs it)."""
        from openhcs.demo.pipeline import default_pipeline

        grid = self.plate.site_grid if self.plate is not None and self.plate.sites else (2, 2)
        self._replace(list(default_pipeline(grid=grid)), None, "Started from the default analysis.")

    def open(self, path: str | Path) -> None:
        """Load a ``.py`` pipeline file (raises CodegenError/DraftError naming what is wrong)."""
        from openhcs.codegen import load_pipeline_file

        path = Path(path).expanduser().resolve()
        steps = load_pipeline_file(path)
        self._replace(steps, path, f"Opened {path}")

    def function_steps(self) -> list[FunctionStep]:
        """The pipeline as FunctionSteps; ``ValueError`` listing every step that cannot be built."""
        built, issues = self._build()
        if issues:
            raise ValueError("; ".join(i.message for i in issues))
        return built  # type: ignore[return-value]

    def _build(self) -> tuple[list[FunctionStep | None], list[Issue]]:
        built: list[FunctionStep | None] = []
        issues: list[Issue] = []
        for index, draft in enumerate(self.steps):
            try:
                built.append(draft.to_step())
            except DraftError as exc:
                built.append(None)
                issues.append(Issue(index, exc.field, str(exc)))
            except PatternError as exc:
                built.append(None)
                issues.append(issue_for(str(exc), index))
        names = [d.display_name for d in self.steps]
        for index, name in enumerate(names):
            if names.count(name) > 1 and built[index] is not None:
                issues.append(Issue(index, NAME, f"step {name!r}: another step has the same name; rename one"))
        if not self.steps:
            issues.append(Issue(None, FUNCTION, "the pipeline has no steps"))
        return built, issues

    def code(self) -> str:
        """The pipeline as Python source (what :meth:`save` writes)."""
        from openhcs.codegen import generate_pipeline_code

        return generate_pipeline_code(self.function_steps())

    def save(self, path: str | Path | None = None) -> Path:
        """Write the pipeline to ``path`` (default: where it was opened or last saved)."""
        target = Path(path).expanduser().resolve() if path else self.path
        if target is None:
            raise ValueError("choose a file to save the pipeline to")
        if target.suffix != ".py":
            raise ValueError(f"{target.name}: a pipeline file must end in .py")
        code = self.code()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(code, encoding="utf-8")
        self.path, self.dirty = target, False
        self._emit("saved", target)
        self._say(f"Saved {target}")
        return target

    def use_in(self, controller) -> Path:
        """Save, then make this file the plate manager's pipeline choice (what it runs)."""
        path = self.save()
        if not controller.set_pipeline(path):
            raise ValueError(controller.status)
        self._say(f"The plate manager now runs {path.name}")
        return path

    # ------------------------------------------------------------------ plate and components
    def set_plate(self, plate: PlateEntry | None) -> None:
        self.plate = plate
        self._emit("plate", plate)

    def component_values(self, component: str) -> list[str]:
        """The plate's values of ``component`` (``[]`` without a plate)."""
        if component not in COMPONENT_KEYS:
            raise ValueError(f"unknown component {component!r}; choose from {', '.join(GROUPABLE)}")
        if self.plate is None:
            return []
        return list(self.plate.layout.get(COMPONENT_KEYS[component]) or [])

    def available_components(self) -> list[str]:
        """The components this plate has (all of them without a plate)."""
        if self.plate is None or not self.plate.layout:
            return list(GROUPABLE)
        return [c for c in GROUPABLE if self.component_values(c)]

    def set_components(self, index: int, variable_components: Sequence[str], group_by: str | None) -> None:
        draft = self._step(index)
        variable = tuple(variable_components)
        bad = [c for c in (*variable, group_by) if c is not None and c not in GROUPABLE]
        if bad:
            raise ValueError(f"unknown component {bad[0]!r}; choose from {', '.join(GROUPABLE)}")
        if group_by is not None and group_by in variable:
            raise ValueError(f"{group_by} cannot be both a variable component and the group-by")
        if not variable:
            raise ValueError("choose at least one variable component (the images stacked together)")
        if draft.per_component and group_by != draft.group_by:
            raise ValueError("a per-component step keys its functions by its group-by; "
                             "make it a single function first")
        draft.variable_components, draft.group_by = variable, group_by
        self._edited(index)

    # ------------------------------------------------------------------ step list
    def _step(self, index: int) -> StepDraft:
        if not 0 <= index < len(self.steps):
            raise IndexError(f"no step {index + 1} (the pipeline has {len(self.steps)})")
        return self.steps[index]

    def _unique_name(self, base: str) -> str:
        names = {d.display_name for d in self.steps}
        if base not in names:
            return base
        n = 2
        while f"{base} {n}" in names:
            n += 1
        return f"{base} {n}"

    def add_step(self, function: str | None = None, index: int | None = None) -> int:
        """Add a step (after the last, or at ``index``), with ``function`` from the catalog."""
        draft = StepDraft(name=None)  # unnamed: shown (and written) by its function's name
        if function:
            draft.branches[None] = Branch([self._new_call(function)])
            if draft.display_name in {d.display_name for d in self.steps}:
                draft.name = self._unique_name(function)
        at = len(self.steps) if index is None else max(0, min(index, len(self.steps)))
        self.steps.insert(at, draft)
        self._edited()
        return at

    def remove_step(self, index: int) -> None:
        self._step(index)
        del self.steps[index]
        self._edited()

    def duplicate_step(self, index: int) -> int:
        copy = self._step(index).copy()
        copy.name = self._unique_name(f"{self.steps[index].display_name} copy")
        self.steps.insert(index + 1, copy)
        self._edited()
        return index + 1

    def move_step(self, index: int, delta: int) -> int:
        """Move a step up (``-1``) or down (``+1``); returns its new index."""
        self._step(index)
        target = max(0, min(len(self.steps) - 1, index + delta))
        self.steps.insert(target, self.steps.pop(index))
        self._edited()
        return target

    def rename_step(self, index: int, name: str) -> None:
        draft = self._step(index)
        name = name.strip()
        if not name:
            raise ValueError("a step needs a name")
        if any(d.display_name == name for i, d in enumerate(self.steps) if i != index):
            raise ValueError(f"another step is already called {name!r}")
        draft.name = name
        self._edited(index)

    # ------------------------------------------------------------------ functions and patterns
    def _new_call(self, function: str) -> Call:
        entry = self.catalog.get(function)
        return Call(self.catalog.function(function), entry)

    def call(self, index: int, key: str | None = None, position: int = 0) -> Call:
        branch = self._step(index).branch(key)
        if not 0 <= position < len(branch.calls):
            raise IndexError(f"step {index + 1} has no function {position + 1} there")
        return branch.calls[position]

    def set_function(self, index: int, function: str, key: str | None = None, position: int = 0) -> None:
        """Choose ``function`` (a catalog name) for one call of a step; its options reset."""
        branch = self._step(index).branch(key)
        call = self._new_call(function)
        if position < len(branch.calls):
            branch.calls[position] = call
        elif position == len(branch.calls):
            branch.calls.append(call)
        else:
            raise IndexError(f"step {index + 1} has no function {position + 1} there")
        self._edited(index)

    def add_to_chain(self, index: int, function: str, key: str | None = None) -> None:
        """Append ``function`` to the step's chain (a single function becomes a chain)."""
        branch = self._step(index).branch(key)
        branch.calls.append(self._new_call(function))
        branch.listed = branch.listed or len(branch.calls) > 1
        self._edited(index)

    def remove_from_chain(self, index: int, position: int, key: str | None = None) -> None:
        branch = self._step(index).branch(key)
        if len(branch.calls) <= 1:
            raise ValueError("a step keeps at least one function; choose another one instead")
        self.call(index, key, position)
        del branch.calls[position]
        self._edited(index)

    def make_per_component(self, index: int) -> list[str]:
        """Give each value of the step's group-by its own function (a dict pattern)."""
        draft = self._step(index)
        if draft.per_component:
            return list(draft.branches)
        if draft.group_by is None:
            raise ValueError("choose a group-by (e.g. channel) before giving each value its own function")
        values = self.component_values(draft.group_by)
        if not values:
            raise ValueError(f"select a plate to know its {draft.group_by} values")
        base = draft.branches[None]
        draft.branches = {v: Branch([Call(c.func, c.entry, dict(c.kwargs), c.tupled) for c in base.calls],
                                    base.listed) for v in values}
        self._edited(index)
        return values

    def make_single(self, index: int) -> None:
        """Back to one function pattern for all groups (the first value's)."""
        draft = self._step(index)
        if draft.per_component:
            draft.branches = {None: next(iter(draft.branches.values()))}
            self._edited(index)

    def remove_component_key(self, index: int, key: str) -> None:
        """Let groups of ``key`` pass through unchanged (drop its entry of the dict)."""
        draft = self._step(index)
        if not draft.per_component or key not in draft.branches:
            raise ValueError(f"step {draft.display_name!r} has no function for {key!r}")
        if len(draft.branches) == 1:
            raise ValueError("a per-component step keeps at least one value")
        del draft.branches[key]
        self._edited(index)

    # ------------------------------------------------------------------ parameters
    def fields(self, index: int, key: str | None = None, position: int = 0) -> list[tuple[ParamField, Any, bool]]:
        """``(field, value shown, set by the user)`` for each option of one call."""
        draft = self._step(index)
        call = self.call(index, key, position)
        rows = []
        for f in call.entry.fields:
            if f.name in call.kwargs:
                rows.append((f, call.kwargs[f.name], True))
            else:
                rows.append((f, draft.step_kwargs.get(f.name, f.default), f.name in draft.step_kwargs))
        return rows

    def set_param(self, index: int, name: str, text: Any, key: str | None = None, position: int = 0) -> Any:
        """Parse and set one option; ``ParamError`` (nothing changed) when the value is refused.

        A value equal to the default is dropped from the call's options, so the code
        written lists only what differs."""
        call = self.call(index, key, position)
        field = call.entry.field(name)
        value = field.parse(text)
        if not field.required and type(value) is type(field.default) and value == field.default:
            call.kwargs.pop(name, None)
        else:
            call.kwargs[name] = value
        self._edited(index)
        return value

    def reset_param(self, index: int, name: str, key: str | None = None, position: int = 0) -> None:
        self.call(index, key, position).kwargs.pop(name, None)
        self._edited(index)

    def search(self, text: str = "", category: str | None = None) -> list[CatalogEntry]:
        return self.catalog.search(text, category)

    # ------------------------------------------------------------------ checking
    def validate(self, dispatcher=None, on_done: Callable[[list[Issue]], None] | None = None) -> list[Issue] | None:
        """Compile the pipeline against the plate; every issue is kept at its step and field.

        With a ``dispatcher`` the compile runs off the UI thread and the issues arrive on
        it (then ``on_done``); without one it runs here and returns them. The one seam for
        a server: a ``validate`` request would replace ``compile_issues``."""
        built, issues = self._build()
        if self.plate is None:
            issues.append(Issue(None, PLATE, "select a plate to validate against"))
        plate, config = self.plate, self.global_config

        def check() -> list[Issue]:
            if plate is None or not self.steps:
                return issues
            return issues + compile_issues(plate.path, built, config, whole=not issues)

        def show(found: list[Issue]) -> list[Issue]:
            self.issues = sorted(found, key=lambda i: -1 if i.step is None else i.step)
            self._emit("issues", self.issues)
            n = len(self.issues)
            self._say("Valid: the pipeline compiles on this plate." if not n
                      else f"{n} problem{'s' if n > 1 else ''} to fix before running.")
            if on_done is not None:
                on_done(self.issues)
            return self.issues

        if dispatcher is None:
            return show(check())
        self._say("Validating…")
        dispatcher.run_background(check, on_done=show, on_error=self._failed)
        return None

    def issues_for(self, index: int | None) -> list[Issue]:
        return [i for i in self.issues if i.step == index]

    def preview(self, index: int, well: str | None = None, site: str | None = None, dispatcher=None,
                on_done: Callable[[Preview], None] | None = None) -> Preview | None:
        """Run the steps up to ``index`` on one site of one well (in this process for now;
        the one seam for a server's preview request). With a ``dispatcher``, off the UI thread."""
        if self.plate is None:
            raise ValueError("select a plate to preview on")
        self._step(index)
        steps = self.function_steps()[: index + 1]
        path = self.plate.path
        if dispatcher is None:
            return preview_locally(path, steps, well, site)

        def shown(result: Preview) -> None:
            self._say(result.describe())
            if on_done is not None:
                on_done(result)

        self._say(f"Previewing {steps[-1].display_name!r} on one site…")
        dispatcher.run_background(lambda: preview_locally(path, steps, well, site), on_done=shown,
                                  on_error=self._failed)
        return None

    def _failed(self, exc: BaseException) -> None:
        self._say(f"{type(exc).__name__}: {exc}")
