"""The main screen: the PlateManager."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Header

from openhcs.frontend.controller import PlateManagerController
from openhcs.textual_tui.widgets.plate_manager import PlateManager


class PlatesScreen(Screen):
    def __init__(self, controller: PlateManagerController) -> None:
        super().__init__()
        self.controller = controller

    def compose(self) -> ComposeResult:
        yield Header()
        yield PlateManager(self.controller, id="plate-manager")
        yield Footer()
