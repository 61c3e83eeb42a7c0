"""The Textual PlateManager: plates, pipeline, run/stop, per-plate and per-well progress.

All decisions live in :class:`~openhcs.frontend.controller.PlateManagerController`; this
widget draws it and turns button presses into its method calls. ``_run_plates_zmq`` and
``_run_plates_subprocess`` are the two execution paths (``OPENHCS_USE_ZMQ_EXECUTION``).
"""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Static

from openhcs.frontend.controller import PlateManagerController
from openhcs.textual_tui.bridge import ModelChanged, subscribe
from openhcs.textual_tui.screens.plate_picker import PlatePickerDialog
from openhcs.textual_tui.widgets.plate_table import PlateTable
from openhcs.textual_tui.widgets.well_progress import WellProgressPanel


class PlateManager(Widget):
    def __init__(self, controller: PlateManagerController, **kwargs) -> None:
        super().__init__(**kwargs)
        self.controller = controller
        self._unsubscribe = None

    @property
    def current_execution_id(self) -> str | None:
        return self.controller.current_execution_id

    def compose(self) -> ComposeResult:
        with Horizontal(classes="bar"):
            yield Input(placeholder="plate folder", id="plate-path")
            yield Button("Browse…", id="browse-plate")
            yield Button("Add plate", id="add-plate", variant="primary")
            yield Button("Remove", id="remove-plate")
        yield PlateTable(self.controller, id="plates")
        yield Static("", id="layout")
        with Horizontal(classes="bar"):
            yield Input(placeholder="pipeline .py file (empty: default pipeline)", id="pipeline-path")
            yield Button("Use pipeline", id="use-pipeline")
        yield Label("", id="steps")
        with Horizontal(classes="bar"):
            yield Button("Run selected", id="run", variant="success")
            yield Button("Run all", id="run-all")
            yield Button("Stop", id="stop", variant="error")
            yield Button("Force kill", id="force", variant="warning", disabled=True)
        with Horizontal(classes="bar"):
            yield Input(placeholder="wells to cancel, e.g. A01,B02", id="cancel-wells-input")
            yield Button("Cancel wells", id="cancel-wells")
            yield Input(placeholder="execution id of a run started elsewhere", id="attach-id")
            yield Button("Attach", id="attach")
        with Vertical(id="progress-box"):
            yield WellProgressPanel(id="progress")
        yield Static(self.controller.status, id="status")

    def on_mount(self) -> None:
        self._unsubscribe = subscribe(self, self.controller.changed)
        self._show_pipeline()

    def on_unmount(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()

    # ---- actions (messages up: buttons → controller)
    def on_button_pressed(self, event: Button.Pressed) -> None:
        handlers = {
            "add-plate": self._add_plate, "remove-plate": self._remove_plate,
            "browse-plate": self._browse_plate,
            "use-pipeline": self._use_pipeline, "run": self.action_run_plate,
            "run-all": self.action_run_all, "stop": self.action_stop,
            "force": self.controller.force_stop, "cancel-wells": self._cancel_wells,
            "attach": self._attach_run,
        }
        handler = handlers.get(event.button.id or "")
        if handler:
            handler()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "plate-path":
            self._add_plate()
        elif event.input.id == "pipeline-path":
            self._use_pipeline()

    def _add_plate(self) -> None:
        box = self.query_one("#plate-path", Input)
        if box.value.strip():
            self.controller.add_plate(box.value.strip())
            box.value = ""

    def _browse_plate(self) -> None:
        def chosen(path) -> None:
            if path is not None:
                self.controller.add_plate(path)

        self.app.push_screen(PlatePickerDialog(Path.cwd()), chosen)

    def _remove_plate(self) -> None:
        selected = self.query_one(PlateTable).selected
        if selected is not None:
            self.controller.remove_plate(selected)

    def _use_pipeline(self) -> None:
        self.controller.set_pipeline(self.query_one("#pipeline-path", Input).value.strip() or None)

    def _selected_paths(self) -> list[Path] | None:
        selected = self.query_one(PlateTable).selected
        return [selected] if selected is not None else None

    def action_run_plate(self) -> None:
        """Run the selected plate by the configured path (ZMQ unless disabled)."""
        if self.controller.use_zmq:
            self._run_plates_zmq(self._selected_paths())
        else:
            self._run_plates_subprocess(self._selected_paths())

    def action_run_all(self) -> None:
        self.controller.run_plates()

    def _run_plates_zmq(self, paths=None) -> None:
        self.controller._run_plates_zmq(paths)

    def _run_plates_subprocess(self, paths=None) -> None:
        self.controller._run_plates_subprocess(paths)

    def action_stop(self) -> None:
        self.controller.stop()

    def _cancel_wells(self) -> None:
        text = self.query_one("#cancel-wells-input", Input).value
        self.controller.cancel_wells([w.strip().upper() for w in text.split(",") if w.strip()])

    def _attach_run(self) -> None:
        eid = self.query_one("#attach-id", Input).value.strip()
        if eid:
            self.controller.attach(eid)

    # ---- drawing (attributes down: controller → widgets)
    def on_model_changed(self, message: ModelChanged) -> None:
        table = self.query_one(PlateTable)
        if message.topic == "plates":
            table.refresh_rows()
            self._show_layout()
            self._show_pipeline()
        elif message.topic == "pipeline":
            self._show_pipeline()
        elif message.topic == "progress":
            if message.detail is not None and str(message.detail) not in table.rows:
                table.refresh_rows()
            table.update_run(message.detail)
            self.query_one(WellProgressPanel).show(self.controller.runs.get(message.detail))
        stop = self.controller.stop_sequence
        self.query_one("#force", Button).disabled = not (stop is not None and stop.state == "offer_force")
        self.query_one("#status", Static).update(self.controller.status)

    def on_data_table_row_highlighted(self, event) -> None:
        self._show_layout()
        selected = self.query_one(PlateTable).selected
        if selected is not None:
            self.query_one(WellProgressPanel).show(self.controller.runs.get(selected))

    def _show_layout(self) -> None:
        selected = self.query_one(PlateTable).selected
        entry = self.controller.plates.get(selected) if selected else None
        self.query_one("#layout", Static).update(entry.describe() if entry else "No plate selected.")

    def _show_pipeline(self) -> None:
        steps = " → ".join(self.controller.step_names(self.query_one(PlateTable).selected))
        self.query_one("#steps", Label).update(f"Pipeline: {self.controller.pipeline.label}\nSteps: {steps}")
