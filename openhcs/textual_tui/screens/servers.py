"""The server manager: servers found by connection file; start, stop, force-kill."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Header, Input, Static

from openhcs.frontend.dispatch import Dispatcher
from openhcs.frontend.servers import SERVER_COLUMNS, ServerManager


class ServersScreen(Screen):
    def __init__(self, manager: ServerManager, dispatcher: Dispatcher) -> None:
        super().__init__()
        self.manager = manager
        self.dispatcher = dispatcher

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(classes="bar"):
            yield Input(placeholder="port (empty: any free port)", id="server-port")
            yield Button("Start server", id="start-server", variant="success")
            yield Button("Stop", id="stop-server")
            yield Button("Force kill", id="kill-server", variant="error")
            yield Button("Refresh", id="refresh-servers")
        yield DataTable(id="servers", cursor_type="row", zebra_stripes=True)
        yield Static("", id="servers-status")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#servers", DataTable)
        for name in SERVER_COLUMNS:
            table.add_column(name, key=name)
        self.refresh_servers()

    def on_screen_resume(self) -> None:
        self.refresh_servers()

    def _say(self, text: str) -> None:
        self.query_one("#servers-status", Static).update(text)

    def refresh_servers(self) -> None:
        self.dispatcher.run_background(self.manager.refresh, on_done=self._draw,
                                       on_error=lambda exc: self._say(f"Cannot list servers: {exc}"))

    def _draw(self, rows) -> None:
        table = self.query_one("#servers", DataTable)
        table.clear()
        for row in rows:
            table.add_row(*row.cells(), key=str(row.pid))
        self._say(f"{len(rows)} server(s) found.")

    def _selected(self):
        table = self.query_one("#servers", DataTable)
        if not table.row_count:
            return None
        pid = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        return next((r.info for r in self.manager.rows if str(r.pid) == pid), None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        bid = event.button.id
        if bid == "refresh-servers":
            self.refresh_servers()
        elif bid == "start-server":
            text = self.query_one("#server-port", Input).value.strip()
            port = int(text) if text.isdigit() else None
            self._say("Starting a server…")
            self.dispatcher.run_background(
                lambda: self.manager.start(port),
                on_done=lambda info: (self._say(f"Started server pid {info.pid} on port {info.data_port}"),
                                      self.refresh_servers()),
                on_error=lambda exc: self._say(f"Cannot start: {exc}"))
        elif bid in ("stop-server", "kill-server"):
            info = self._selected()
            if info is None:
                self._say("Select a server first.")
                return
            action = self.manager.stop if bid == "stop-server" else self.manager.kill
            self._say(f"{'Stopping' if bid == 'stop-server' else 'Killing'} pid {info.pid}…")
            self.dispatcher.run_background(
                lambda: action(info),
                on_done=lambda how: (self._say(f"Server pid {info.pid}: {how}"), self.refresh_servers()),
                on_error=lambda exc: self._say(f"Failed: {exc}"))
