"""The Qt bridge: the controller's dispatcher, and its change events as a Qt signal.

Callbacks from the client's listener thread (and results of background requests) are
emitted through ``QtDispatcher.invoke``, a signal whose receiver lives in the GUI thread,
so Qt queues them there. Timers are ``QTimer.singleShot``. ``QtController`` re-emits the
controller's ``changed(topic, detail)`` as a Qt signal that widgets connect to.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from openhcs.frontend.dispatch import run_in_thread


class QtDispatcher(QObject):
    invoke = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.invoke.connect(self._run)

    @Slot(object)
    def _run(self, fn: Callable[[], None]) -> None:
        fn()

    def call_soon(self, fn: Callable[[], None]) -> None:
        self.invoke.emit(fn)

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        QTimer.singleShot(max(0, int(delay * 1000)), self, fn)

    def run_background(self, fn, on_done=None, on_error=None) -> None:
        run_in_thread(fn, on_done, on_error, self.call_soon)


class QtController(QObject):
    """``changed(topic, detail)`` as a Qt signal, for one controller."""

    changed = Signal(str, object)

    def __init__(self, controller, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        controller.changed.connect(self._forward)

    def _forward(self, topic: str, detail=None) -> None:
        self.changed.emit(topic, detail)

    def detach(self) -> None:
        self.controller.changed.disconnect(self._forward)
