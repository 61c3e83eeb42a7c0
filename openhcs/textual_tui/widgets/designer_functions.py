"""Choose a function from the catalog: search by name, filter by category, read its docstring."""

from __future__ import annotations

from rich.markup import escape
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Input, OptionList, Select, Static
from textual.widgets.option_list import Option

from openhcs.frontend.designer import DesignerModel


class FunctionPicker(Vertical):
    class Chosen(Message):
        """``add`` is True for "append to the chain"."""

        def __init__(self, name: str, add: bool) -> None:
            super().__init__()
            self.name, self.add = name, add

    def __init__(self, model: DesignerModel, **kwargs) -> None:
        super().__init__(**kwargs)
        self.model = model

    def compose(self):
        with Horizontal(classes="bar"):
            yield Input(placeholder="search functions", id="function-search")
            yield Select([(c, c) for c in self.model.catalog.categories()], prompt="all categories",
                         id="function-category")
        yield OptionList(id="functions")
        yield Static("", id="function-doc")
        with Horizontal(classes="bar"):
            yield Button("Use function", id="use-function", variant="primary")
            yield Button("Add to chain", id="add-to-chain")

    def on_mount(self) -> None:
        self.refresh_list()

    def refresh_list(self) -> None:
        category = self.query_one("#function-category", Select).value
        entries = self.model.search(self.query_one("#function-search", Input).value,
                                    None if category is Select.NULL else str(category))
        options = self.query_one("#functions", OptionList)
        options.clear_options()
        options.add_options([Option(f"{e.name}  ({e.category})", id=e.name) for e in entries])
        if entries:
            options.highlighted = 0
        else:
            self.query_one("#function-doc", Static).update("No function matches.")

    def current(self) -> str | None:
        options = self.query_one("#functions", OptionList)
        if options.highlighted is None:
            return None
        return options.get_option_at_index(options.highlighted).id

    def select(self, name: str) -> None:
        options = self.query_one("#functions", OptionList)
        try:
            options.highlighted = options.get_option_index(name)
        except Exception:  # not in the filtered list: leave the highlight where it is
            pass

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "function-search":
            event.stop()
            self.refresh_list()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "function-category":
            event.stop()
            self.refresh_list()

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        entry = self.model.catalog.get(event.option.id)
        params = ", ".join(f.name for f in entry.fields) or "no options"
        doc = escape(entry.doc.strip().split("\n\n")[0])
        self.query_one("#function-doc", Static).update(f"[b]{entry.name}[/b] ({entry.category}) — options: "
                                                       f"{params}\n{doc}")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.post_message(self.Chosen(event.option.id, False))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id in ("use-function", "add-to-chain"):
            event.stop()
            name = self.current()
            if name:
                self.post_message(self.Chosen(name, event.button.id == "add-to-chain"))
