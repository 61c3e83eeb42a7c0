"""A folder picker for plates (a directory tree); dismisses with the chosen path or None."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DirectoryTree, Label


class PlatePickerDialog(ModalScreen[Path | None]):
    BINDINGS = [("escape", "cancel", "Cancel")]

    def __init__(self, start: str | Path = ".") -> None:
        super().__init__()
        self.start = Path(start).expanduser().resolve()
        self.chosen: Path | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="picker-box"):
            yield Label(f"Choose a plate folder under {self.start}", id="picker-title")
            yield DirectoryTree(self.start, id="picker-tree")
            yield Label("", id="picker-choice")
            with Horizontal(classes="bar"):
                yield Button("Add this plate", id="picker-ok", variant="primary", disabled=True)
                yield Button("Cancel", id="picker-cancel")

    def on_directory_tree_directory_selected(self, event: DirectoryTree.DirectorySelected) -> None:
        self.chosen = Path(event.path)
        self.query_one("#picker-choice", Label).update(str(self.chosen))
        self.query_one("#picker-ok", Button).disabled = False

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(self.chosen if event.button.id == "picker-ok" else None)

    def action_cancel(self) -> None:
        self.dismiss(None)
