"""Shared, UI-free front-end logic: the plate manager's controller and its models.

Both front ends (``openhcs.pyqt_gui`` and ``openhcs.textual_tui``) render these objects
and call their methods; nothing here imports Qt or Textual.
"""

from openhcs.frontend.controller import PlateManagerController
from openhcs.frontend.dispatch import Dispatcher, ManualDispatcher
from openhcs.frontend.execution import USE_ZMQ_ENV, use_zmq_execution
from openhcs.frontend.history import HistoryModel
from openhcs.frontend.progress import RunProgress, WellProgress
from openhcs.frontend.results import Heatmap, ResultsTable, build_heatmap, read_summary
from openhcs.frontend.servers import ServerManager
from openhcs.frontend.stop import StopSequence

__all__ = [
    "USE_ZMQ_ENV", "Dispatcher", "Heatmap", "HistoryModel", "ManualDispatcher",
    "PlateManagerController", "ResultsTable", "RunProgress", "ServerManager", "StopSequence",
    "WellProgress", "build_heatmap", "read_summary", "use_zmq_execution",
]
