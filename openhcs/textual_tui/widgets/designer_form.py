"""A parameter form generated from one call's catalog fields (no per-function code).

Booleans are check boxes, choices selects, the rest inputs whose placeholder shows the
default. A value goes to the model when the input is submitted or left; a refused value
is put back and the model's message shown under the form.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Checkbox, Input, Label, Select, Static

from openhcs.frontend.designer_params import ParamError, ParamField, format_value


class ParamForm(Vertical):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._key: object = None
        self._fields: dict[str, ParamField] = {}
        self._shown: dict[str, str] = {}
        self._setter: Callable[[str, Any], Any] | None = None
        self._drawing = False

    def compose(self):
        yield Vertical(id="param-rows")
        yield Static("", id="param-error", markup=False)

    def editor(self, name: str) -> Widget:
        return self.query_one(f"#param-{name}")

    async def show_fields(self, key: object, rows: list[tuple[ParamField, Any, bool]],
                          setter: Callable[[str, Any], Any], flagged: dict[str, str]) -> None:
        """Draw ``rows`` (field, value, set); rebuild only when ``key`` (the call) changed."""
        self._setter = setter
        box = self.query_one("#param-rows", Vertical)
        self._drawing = True
        try:
            if key != self._key or set(self._fields) != {f.name for f, _, _ in rows}:
                self._key = key
                self._fields = {f.name: f for f, _, _ in rows}
                await box.remove_children()
                await box.mount_all([self._row(f) for f, _, _ in rows] or [Label("This function has no options.")])
                self.query_one("#param-error", Static).update("")
            for field, value, user_set in rows:
                self._show_value(self.editor(field.name), value, user_set)
                self.editor(field.name).set_class(field.name in flagged, "issue")
        finally:
            self._drawing = False

    def _row(self, field: ParamField) -> Horizontal:
        if field.kind == "bool":
            editor: Widget = Checkbox(field.hint, id=f"param-{field.name}")
        elif field.kind == "choice":
            editor = Select([(str(c), c) for c in field.choices], allow_blank=False, id=f"param-{field.name}")
        else:
            editor = Input(placeholder=field.hint, id=f"param-{field.name}")
        return Horizontal(Label(f"{field.name}:", classes="param-name"), editor, classes="param-row")

    def _show_value(self, editor: Widget, value: Any, user_set: bool) -> None:
        if isinstance(editor, Checkbox):
            with editor.prevent(Checkbox.Changed):
                editor.value = bool(value)
        elif isinstance(editor, Select):
            with editor.prevent(Select.Changed):
                editor.value = value
        elif isinstance(editor, Input):
            text = format_value(value) if user_set else ""
            with editor.prevent(Input.Changed):
                editor.value = text
            self._shown[editor.id or ""] = text

    def commit(self, name: str, value: Any) -> None:
        if self._setter is None or self._drawing:
            return
        try:
            self._setter(name, value)
        except ParamError as exc:
            editor = self.editor(name)
            if isinstance(editor, Input):
                editor.value = self._shown.get(editor.id or "", "")
            self.query_one("#param-error", Static).update(f"Refused: {exc}")
            return
        self.query_one("#param-error", Static).update("")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._input_done(event.input)

    def on_input_blurred(self, event: Input.Blurred) -> None:
        self._input_done(event.input)

    def _input_done(self, editor: Input) -> None:
        name = (editor.id or "").removeprefix("param-")
        if name in self._fields and editor.value != self._shown.get(editor.id or ""):
            self.commit(name, editor.value)

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.stop()
        self.commit((event.checkbox.id or "").removeprefix("param-"), event.value)

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self.commit((event.select.id or "").removeprefix("param-"), event.value)
