"""The pipeline designer screen: the step list on the left, the step editor on the right.

All decisions live in :class:`~openhcs.frontend.designer.DesignerModel`; the screen
draws it (model changes arrive as ``ModelChanged`` through the one bridge) and turns
presses into its methods. "Use in plate manager" saves the file and makes it the plate
manager's pipeline.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, OptionList, Select, Static

from openhcs.frontend.controller import PlateManagerController
from openhcs.frontend.designer import DesignerModel
from openhcs.textual_tui.bridge import ModelChanged, subscribe
from openhcs.textual_tui.widgets.designer_step import StepEditor


class DesignerScreen(Screen):
    def __init__(self, model: DesignerModel, controller: PlateManagerController, dispatcher) -> None:
        super().__init__()
        self.model, self.controller, self.dispatcher = model, controller, dispatcher
        self._unsubscribe: list = []
        self._wanted: int | None = None  # the step to select once the list is redrawn

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(classes="bar"):
            yield Select([], prompt="(no plate: add one in Plates)", id="designer-plate")
            yield Button("Default analysis", id="new-default")
            yield Button("Empty", id="new-empty")
            yield Input(placeholder="pipeline .py file", id="pipeline-file")
            yield Button("Open", id="open-pipeline")
            yield Button("Save", id="save-pipeline")
        with Horizontal(id="designer-main"):
            with Vertical(id="designer-left"):
                yield OptionList(id="designer-steps")
                with Horizontal(classes="bar"):
                    yield Button("Add", id="add-step")
                    yield Button("Remove", id="remove-step")
                    yield Button("Copy", id="duplicate-step")
                with Horizontal(classes="bar"):
                    yield Button("Up", id="step-up")
                    yield Button("Down", id="step-down")
            yield StepEditor(self.model, id="step-editor")
        with Horizontal(classes="bar"):
            yield Button("Validate", id="validate", variant="primary")
            yield Button("Preview step on one site", id="preview")
            yield Button("Use in plate manager", id="use-in-plates", variant="success")
        yield Static("", id="designer-issues", markup=False)
        yield Static(self.model.status, id="designer-status", markup=False)
        yield Footer()

    async def on_mount(self) -> None:
        self._unsubscribe = [subscribe(self, self.model.changed), subscribe(self, self.controller.changed)]
        self._draw_plates()
        await self._draw_steps()

    def on_unmount(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()

    # ---- actions
    def current(self) -> int | None:
        row = self.query_one("#designer-steps", OptionList).highlighted
        return row if row is not None and row < len(self.model.steps) else None

    def _attempt(self, action) -> bool:
        try:
            action()
        except Exception as exc:  # codegen, file and model errors are shown, never raised
            self.query_one("#designer-status", Static).update(f"⚠ {exc}")
            return False
        return True

    def _select(self, index: int) -> None:
        """Select step ``index``; the model's ``steps`` event redraws the list after this."""
        self._wanted = index

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        model, at, path = self.model, self.current(), self.query_one("#pipeline-file", Input).value.strip()
        actions = {
            "new-default": model.new_default, "new-empty": model.new_empty,
            "open-pipeline": lambda: model.open(path),
            "save-pipeline": lambda: model.save(path or None),
            "add-step": lambda: self._select(model.add_step(index=None if at is None else at + 1)),
            "validate": lambda: model.validate(self.dispatcher),
            "use-in-plates": lambda: (path and model.save(path), model.use_in(self.controller)),
        }
        if at is not None:
            actions.update({
                "remove-step": lambda: model.remove_step(at),
                "duplicate-step": lambda: self._select(model.duplicate_step(at)),
                "step-up": lambda: self._select(model.move_step(at, -1)),
                "step-down": lambda: self._select(model.move_step(at, 1)),
                "preview": lambda: model.preview(at, dispatcher=self.dispatcher),
            })
        action = actions.get(event.button.id or "")
        if action is not None:
            event.stop()
            self._attempt(action)

    async def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_list.id == "designer-steps":
            await self.query_one(StepEditor).show_step(event.option_index)

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "designer-plate":
            value = event.value
            self.model.set_plate(None if value is Select.NULL else self.controller.plates.get(str(value)))

    # ---- drawing (attributes down)
    async def on_model_changed(self, message: ModelChanged) -> None:
        if message.topic == "plates":
            self._draw_plates()
        elif message.topic == "steps":
            await self._draw_steps()
        elif message.topic in ("step", "plate", "issues"):
            self._label_steps()
            await self.query_one(StepEditor).show_step(self.current())
            if message.topic == "issues":
                self._draw_issues()
        elif message.topic == "saved":
            self.query_one("#pipeline-file", Input).value = str(self.model.path)
        self.query_one("#designer-status", Static).update(self.model.status)

    def _draw_plates(self) -> None:
        select = self.query_one("#designer-plate", Select)
        readable = [e for e in self.controller.plates if not e.error]
        with select.prevent(Select.Changed):
            select.set_options([(e.name, str(e.path)) for e in readable])
        chosen = self.model.plate.path if self.model.plate else (readable[0].path if readable else None)
        if chosen is not None and any(e.path == chosen for e in readable):
            select.value = str(chosen)

    async def _draw_steps(self) -> None:
        steps = self.query_one("#designer-steps", OptionList)
        row, self._wanted = (self._wanted if self._wanted is not None else self.current()), None
        with steps.prevent(OptionList.OptionHighlighted):
            steps.clear_options()
            steps.add_options(self._step_labels())
            if self.model.steps:
                steps.highlighted = min(row or 0, len(self.model.steps) - 1)
        if self.model.path is not None:
            self.query_one("#pipeline-file", Input).value = str(self.model.path)
        await self.query_one(StepEditor).show_step(self.current())

    def _step_labels(self) -> list[str]:
        return [f"{'⚠ ' if self.model.issues_for(i) else ''}{i + 1}. {d.display_name} ({d.kind})"
                for i, d in enumerate(self.model.steps)]

    def _label_steps(self) -> None:
        steps = self.query_one("#designer-steps", OptionList)
        for i, label in enumerate(self._step_labels()):
            steps.replace_option_prompt_at_index(i, label)

    def _draw_issues(self) -> None:
        lines = [f"{'pipeline' if i.step is None else f'step {i.step + 1}'} · {i.param or i.field}: {i.message}"
                 for i in self.model.issues]
        self.query_one("#designer-issues", Static).update("\n".join(lines))
