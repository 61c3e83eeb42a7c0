"""A minimal observer list: the controller announces what changed, UIs subscribe."""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


class Signal:
    """``connect(fn)``; ``emit(*args)`` calls every subscriber in order, on the caller's thread."""

    def __init__(self) -> None:
        self._subscribers: list[Callable[..., None]] = []

    def connect(self, fn: Callable[..., None]) -> None:
        self._subscribers.append(fn)

    def disconnect(self, fn: Callable[..., None]) -> None:
        if fn in self._subscribers:
            self._subscribers.remove(fn)

    def emit(self, *args) -> None:
        for fn in list(self._subscribers):
            try:
                fn(*args)
            except Exception:
                log.exception("a subscriber of %r raised", self)
