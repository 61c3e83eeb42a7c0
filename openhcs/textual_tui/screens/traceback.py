"""A dialog showing a traceback (from the history)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, TextArea


class TracebackDialog(ModalScreen[None]):
    BINDINGS = [("escape", "dismiss", "Close")]

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self.title_text = title
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(id="traceback-box"):
            yield Label(self.title_text, id="traceback-title")
            yield TextArea(self.text, read_only=True, id="traceback-text")
            yield Button("Close", id="close-traceback")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None)
