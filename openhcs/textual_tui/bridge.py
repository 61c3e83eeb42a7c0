"""The Textual bridge: the controller's dispatcher for a running Textual app.

Callbacks from the client's listener thread (and background requests' results) become a
``Dispatched`` message posted to the app — ``post_message`` is thread-safe and never
blocks the listener — and run on the app's event loop. Timers use ``set_timer``.
Controller changes become ``ModelChanged`` messages posted to subscribed widgets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.app import App
from textual.message import Message
from textual.widget import Widget

from openhcs.frontend.dispatch import run_in_thread


class Dispatched(Message):
    """A callable to run on the app's thread."""

    def __init__(self, fn: Callable[[], None]) -> None:
        super().__init__()
        self.fn = fn


class ModelChanged(Message):
    """The controller changed (``topic`` as in ``PlateManagerController.changed``)."""

    def __init__(self, topic: str, detail: Any = None) -> None:
        super().__init__()
        self.topic = topic
        self.detail = detail


class TextualDispatcher:
    def __init__(self, app: App) -> None:
        self.app = app

    def call_soon(self, fn: Callable[[], None]) -> None:
        self.app.post_message(Dispatched(fn))

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        self.app.set_timer(delay, fn)

    def run_background(self, fn, on_done=None, on_error=None) -> None:
        run_in_thread(fn, on_done, on_error, self.call_soon)


def subscribe(widget: Widget, signal) -> Callable[[], None]:
    """Forward ``signal`` emissions to ``widget`` as ``ModelChanged``; returns the unsubscriber."""

    def forward(topic: str, detail: Any = None) -> None:
        widget.post_message(ModelChanged(topic, detail))

    signal.connect(forward)
    return lambda: signal.disconnect(forward)
