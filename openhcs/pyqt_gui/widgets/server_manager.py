"""The server manager: servers found by connection file; start, stop, force-kill."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from openhcs.frontend.dispatch import Dispatcher
from openhcs.frontend.servers import SERVER_COLUMNS, ServerManager


class ServerManagerView(QWidget):
    def __init__(self, manager: ServerManager, dispatcher: Dispatcher, parent=None) -> None:
        super().__init__(parent)
        self.manager = manager
        self.dispatcher = dispatcher
        self.port = QLineEdit(placeholderText="port (empty: any free port)")
        self.table = QTableWidget(0, len(SERVER_COLUMNS))
        self.table.setHorizontalHeaderLabels(SERVER_COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.status = QLabel("")
        self.status.setObjectName("serversStatus")
        bar = QHBoxLayout()
        bar.addWidget(self.port, 1)
        for text, slot in (("Start server", self.start_server), ("Stop", lambda: self._stop(False)),
                           ("Force kill", lambda: self._stop(True)), ("Refresh", self.refresh_servers)):
            button = QPushButton(text)
            button.clicked.connect(slot)
            bar.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)

    def refresh_servers(self) -> None:
        self.dispatcher.run_background(self.manager.refresh, on_done=self._draw,
                                       on_error=lambda exc: self.status.setText(f"Cannot list servers: {exc}"))

    def _draw(self, rows) -> None:
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, text in enumerate(row.cells()):
                self.table.setItem(r, c, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        self.status.setText(f"{len(rows)} server(s) found.")

    def start_server(self) -> None:
        text = self.port.text().strip()
        port = int(text) if text.isdigit() else None
        self.status.setText("Starting a server…")

        def started(info) -> None:
            self.status.setText(f"Started server pid {info.pid} on port {info.data_port}")
            self.refresh_servers()

        self.dispatcher.run_background(lambda: self.manager.start(port), on_done=started,
                                       on_error=lambda exc: self.status.setText(f"Cannot start: {exc}"))

    def _stop(self, force: bool) -> None:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        if not rows or rows[0] >= len(self.manager.rows):
            self.status.setText("Select a server first.")
            return
        info = self.manager.rows[rows[0]].info
        action = self.manager.kill if force else self.manager.stop
        self.status.setText(f"{'Killing' if force else 'Stopping'} pid {info.pid}…")

        def stopped(how: str) -> None:
            self.status.setText(f"Server pid {info.pid}: {how}")
            self.refresh_servers()

        self.dispatcher.run_background(lambda: action(info), on_done=stopped,
                                       on_error=lambda exc: self.status.setText(f"Failed: {exc}"))
