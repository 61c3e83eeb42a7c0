"""The editor of one designer step: name, components, function pattern and its options.

Attributes down: the screen calls :meth:`StepEditor.show_step` with the model's step
index. Messages up: inputs, check boxes and the function picker become model calls; a
refused edit shows the model's message in the step's issue line and changes nothing.
"""

from __future__ import annotations

from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Checkbox, Input, Label, OptionList, Select, Static

from openhcs.core.steps import GROUPABLE
from openhcs.frontend.designer import DesignerModel
from openhcs.frontend.designer_check import PARAMS
from openhcs.textual_tui.widgets.designer_form import ParamForm
from openhcs.textual_tui.widgets.designer_functions import FunctionPicker


class StepEditor(VerticalScroll):
    def __init__(self, model: DesignerModel, **kwargs) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.index: int | None = None
        self.key: str | None = None
        self.position = 0
        self._drawing = False

    def compose(self):
        yield Input(placeholder="step name", id="step-name")
        with Horizontal(classes="bar", id="components"):
            yield Label("stack along:")
            for comp in GROUPABLE:
                yield Checkbox(comp, id=f"vary-{comp}")
            yield Label("group by:")
            yield Select([(c, c) for c in GROUPABLE], prompt="(none)", id="group-by")
        with Horizontal(classes="bar"):
            yield Label("", id="pattern-kind")
            yield Select([], prompt="value", id="pattern-key")
            yield Button("Per value", id="per-component")
        with Horizontal(classes="bar"):
            yield OptionList(id="chain")
            yield Button("Remove from chain", id="remove-call")
        yield FunctionPicker(self.model, id="picker")
        yield ParamForm(id="params")
        yield Static("", id="step-issue", markup=False)

    # ---- drawing
    async def show_step(self, index: int | None) -> None:
        if index != self.index:
            self.key, self.position = None, 0
        self.index = index if index is not None and index < len(self.model.steps) else None
        self.disabled = self.index is None
        if self.index is None:
            self.query_one("#step-issue", Static).update("")
            return
        self._drawing = True
        try:
            await self._draw(self.model.steps[self.index])
        finally:
            self._drawing = False

    async def _draw(self, draft) -> None:
        if self.key not in draft.branches:
            self.key = next(iter(draft.branches))
        name = self.query_one("#step-name", Input)
        with name.prevent(Input.Changed):
            name.value = draft.display_name
        available = self.model.available_components()
        for comp in GROUPABLE:
            box = self.query_one(f"#vary-{comp}", Checkbox)
            box.display = comp in available
            with box.prevent(Checkbox.Changed):
                box.value = comp in draft.variable_components
        group = self.query_one("#group-by", Select)
        with group.prevent(Select.Changed):
            group.value = draft.group_by if draft.group_by else Select.NULL
        self.query_one("#pattern-kind", Label).update(f"Function pattern: {draft.kind}")
        self.query_one("#per-component", Button).label = (
            "One function for all" if draft.per_component else f"Per {draft.group_by or 'group'} value")
        keys = self.query_one("#pattern-key", Select)
        keys.display = draft.per_component
        with keys.prevent(Select.Changed):
            keys.set_options([(str(k), k) for k in draft.branches if k is not None])
            if draft.per_component:
                keys.value = self.key
        branch = draft.branches[self.key]
        self.position = min(self.position, max(0, len(branch.calls) - 1))
        chain = self.query_one("#chain", OptionList)
        with chain.prevent(OptionList.OptionHighlighted):
            chain.clear_options()
            chain.add_options([f"{i + 1}. {c.entry.name}" for i, c in enumerate(branch.calls)] or ["(no function)"])
            chain.highlighted = self.position
        self.query_one("#remove-call", Button).disabled = len(branch.calls) <= 1
        issues = self.model.issues_for(self.index)
        self.query_one("#step-issue", Static).update("\n".join(f"⚠ {i.message}" for i in issues))
        flagged = {i.param: i.message for i in issues if i.field == PARAMS and i.param}
        form = self.query_one(ParamForm)
        if branch.calls:
            call = branch.calls[self.position]
            self.query_one(FunctionPicker).select(call.entry.name)
            await form.show_fields((self.index, self.key, self.position, call.entry.name),
                                   self.model.fields(self.index, self.key, self.position), self._set_param, flagged)
        else:
            await form.show_fields(None, [], self._set_param, flagged)

    # ---- edits (all through the model; refusals are shown, nothing changes)
    async def _try(self, action) -> None:
        try:
            action()
        except (ValueError, KeyError, IndexError) as exc:
            await self.show_step(self.index)  # put the refused edit back
            self.query_one("#step-issue", Static).update(f"⚠ Refused: {exc.args[0] if exc.args else exc}")

    def _set_param(self, name: str, value) -> None:
        self.model.set_param(self.index, name, value, self.key, self.position)

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "step-name":
            event.stop()
            await self._rename()

    async def on_input_blurred(self, event: Input.Blurred) -> None:
        if event.input.id == "step-name":
            await self._rename()

    async def _rename(self) -> None:
        text = self.query_one("#step-name", Input).value
        if self.index is not None and text.strip() != self.model.steps[self.index].display_name:
            await self._try(lambda: self.model.rename_step(self.index, text))

    async def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        comp = (event.checkbox.id or "").removeprefix("vary-")
        if comp in GROUPABLE and not self._drawing:
            event.stop()
            await self._set_components(checked=comp if event.value else None)

    async def on_select_changed(self, event: Select.Changed) -> None:
        if self._drawing or self.index is None:
            return
        if event.select.id == "group-by":
            event.stop()
            await self._set_components(grouped=True)
        elif event.select.id == "pattern-key" and event.value is not Select.NULL:
            event.stop()
            self.key, self.position = str(event.value), 0
            await self.show_step(self.index)

    async def _set_components(self, checked: str | None = None, grouped: bool = False) -> None:
        """Stacking along the group-by clears it; grouping by a stacked component un-stacks it."""
        if self.index is None:
            return
        variable = [c for c in GROUPABLE if self.query_one(f"#vary-{c}", Checkbox).value]
        value = self.query_one("#group-by", Select).value
        group = None if value is Select.NULL else str(value)
        if checked is not None and checked == group:
            group = None
        if grouped and group in variable and len(variable) > 1:
            variable.remove(group)
        await self._try(lambda: self.model.set_components(self.index, variable, group))

    async def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_list.id == "chain" and not self._drawing:
            event.stop()
            self.position = event.option_index
            await self.show_step(self.index)

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        if self.index is None or event.button.id not in ("per-component", "remove-call"):
            return
        event.stop()
        if event.button.id == "remove-call":
            await self._try(lambda: self.model.remove_from_chain(self.index, self.position, self.key))
        elif self.model.steps[self.index].per_component:
            await self._try(lambda: self.model.make_single(self.index))
        else:
            await self._try(lambda: self.model.make_per_component(self.index))

    async def on_function_picker_chosen(self, event: FunctionPicker.Chosen) -> None:
        event.stop()
        if self.index is None:
            return
        if event.add:
            self.position = len(self.model.steps[self.index].branches[self.key].calls)
            await self._try(lambda: self.model.add_to_chain(self.index, event.name, self.key))
        else:
            await self._try(lambda: self.model.set_function(self.index, event.name, self.key, self.position))
