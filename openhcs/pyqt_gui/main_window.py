"""The main window: only wires the controller, the bridge and the tabs."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QMainWindow, QTabWidget

from openhcs.frontend.controller import PlateManagerController
from openhcs.frontend.designer import DesignerModel
from openhcs.frontend.history import HistoryModel
from openhcs.frontend.servers import ServerManager
from openhcs.pyqt_gui.qt_bridge import QtDispatcher
from openhcs.pyqt_gui.widgets.history_view import HistoryView
from openhcs.pyqt_gui.widgets.plate_manager import PlateManager
from openhcs.pyqt_gui.widgets.qt_designer import DesignerView
from openhcs.pyqt_gui.widgets.results_view import ResultsView
from openhcs.pyqt_gui.widgets.server_manager import ServerManagerView

STYLE_FILE = Path(__file__).with_name("openhcs.qss")


class MainWindow(QMainWindow):
    def __init__(self, port: int = 7777, host: str = "localhost", global_config=None,
                 use_zmq: bool | None = None, stop_timeout: float = 5.0) -> None:
        super().__init__()
        self.setWindowTitle("openhcs — plate manager")
        self.dispatcher = QtDispatcher(self)
        self.controller = PlateManagerController(self.dispatcher, host=host, port=port,
                                                 global_config=global_config, use_zmq=use_zmq,
                                                 stop_timeout=stop_timeout)
        self.servers = ServerManager()
        self.history = HistoryModel()
        self.plate_manager = PlateManager(self.controller)
        self.designer = DesignerModel(global_config=global_config)
        self.designer_view = DesignerView(self.designer, self.controller, self.dispatcher)
        self.results_view = ResultsView(self.controller)
        self.server_view = ServerManagerView(self.servers, self.dispatcher)
        self.history_view = HistoryView(self.history, self.dispatcher)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.plate_manager, "Plates")
        self.tabs.addTab(self.designer_view, "Designer")
        self.tabs.addTab(self.results_view, "Results")
        self.tabs.addTab(self.server_view, "Servers")
        self.tabs.addTab(self.history_view, "History")
        self.tabs.currentChanged.connect(self._tab_shown)
        self.setCentralWidget(self.tabs)
        self.statusBar().showMessage(self.controller.status)
        self.plate_manager.status_message.connect(self.statusBar().showMessage)
        self.setStyleSheet(STYLE_FILE.read_text())
        self.resize(1100, 800)
        self._closed = False

    def _tab_shown(self, index: int) -> None:
        widget = self.tabs.widget(index)
        if widget is self.server_view:
            self.server_view.refresh_servers()
        elif widget is self.history_view:
            self.history_view.refresh_history()

    def shutdown(self) -> None:
        """Disconnect (stopping a server this window spawned); idempotent."""
        if not self._closed:
            self._closed = True
            self.controller.close()
            self.servers.close()

    def closeEvent(self, event) -> None:  # noqa: N802 — Qt's name
        self.shutdown()
        super().closeEvent(event)
