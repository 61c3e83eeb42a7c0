"""The openhcs Textual app: wires the controller, the bridge and the screens (modes)."""

from __future__ import annotations

from textual.app import App
from textual.reactive import reactive

from openhcs.frontend.controller import PlateManagerController
from openhcs.frontend.designer import DesignerModel
from openhcs.frontend.history import HistoryModel
from openhcs.frontend.servers import ServerManager
from openhcs.textual_tui.bridge import Dispatched, TextualDispatcher
from openhcs.textual_tui.screens.designer import DesignerScreen
from openhcs.textual_tui.screens.history import HistoryScreen
from openhcs.textual_tui.screens.plates import PlatesScreen
from openhcs.textual_tui.screens.results import ResultsScreen
from openhcs.textual_tui.screens.servers import ServersScreen


class OpenHCSApp(App):
    TITLE = "openhcs"
    SUB_TITLE = "plate manager"
    CSS_PATH = "openhcs.tcss"
    BINDINGS = [
        ("f1", "switch_mode('plates')", "Plates"),
        ("f2", "switch_mode('results')", "Results"),
        ("f3", "switch_mode('servers')", "Servers"),
        ("f4", "switch_mode('history')", "History"),
        ("f5", "switch_mode('designer')", "Designer"),
        ("ctrl+q", "quit", "Quit"),
    ]

    current_status: reactive[str] = reactive("")  # the controller's status line

    def __init__(self, port: int = 7777, host: str = "localhost", global_config=None,
                 use_zmq: bool | None = None, stop_timeout: float = 5.0, plates=(), pipeline=None):
        super().__init__()
        self.dispatcher = TextualDispatcher(self)
        self.controller = PlateManagerController(self.dispatcher, host=host, port=port,
                                                 global_config=global_config, use_zmq=use_zmq,
                                                 stop_timeout=stop_timeout)
        self.servers = ServerManager()
        self.history = HistoryModel()
        self.designer = DesignerModel(global_config=global_config)
        self._initial = (list(plates), pipeline)
        self.controller.changed.connect(self._status_changed)
        self.add_mode("plates", lambda: PlatesScreen(self.controller))
        self.add_mode("results", lambda: ResultsScreen(self.controller))
        self.add_mode("servers", lambda: ServersScreen(self.servers, self.dispatcher))
        self.add_mode("history", lambda: HistoryScreen(self.history, self.dispatcher))
        self.add_mode("designer", lambda: DesignerScreen(self.designer, self.controller, self.dispatcher))

    def on_mount(self) -> None:
        self.switch_mode("plates")
        plates, pipeline = self._initial
        if pipeline:
            self.controller.set_pipeline(pipeline)
        for plate in plates:
            self.controller.add_plate(plate)

    def _status_changed(self, *_args) -> None:
        self.current_status = self.controller.status

    def on_dispatched(self, message: Dispatched) -> None:
        message.fn()

    def on_unmount(self) -> None:
        self.controller.close()  # disconnects; stops a server this app spawned
        self.servers.close()


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m openhcs.textual_tui", description="openhcs plate manager (TUI)")
    p.add_argument("plates", nargs="*", help="plate folders to add")
    p.add_argument("--port", type=int, default=7777, help="execution server port (spawned if none runs)")
    p.add_argument("--host", default="localhost")
    p.add_argument("--pipeline", help="pipeline .py file (default: the demo pipeline)")
    args = p.parse_args(argv)
    OpenHCSApp(port=args.port, host=args.host, plates=args.plates, pipeline=args.pipeline).run()
    return 0
