"""How the controller reaches the UI thread: the one seam each front end's bridge fills.

The controller's state is touched only on the UI thread. Three things cross threads:
progress messages from the client's listener thread (``call_soon``), blocking requests
(connect, submit, cancel, status) that must not freeze the UI (``run_background``), and
timers for the stop sequence's status polling (``call_later``). The Qt bridge implements
them with a queued signal and ``QTimer``; the Textual bridge with ``post_message`` and
``set_timer``. ``ManualDispatcher`` runs everything inline and keeps timers until told
to advance its clock, which makes the controller testable without threads or sockets.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)
OnDone = Callable[[Any], None]
OnError = Callable[[BaseException], None]


class Dispatcher(Protocol):
    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the UI thread soon (callable from any thread)."""

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the UI thread after ``delay`` seconds (call from the UI thread)."""

    def run_background(self, fn: Callable[[], Any], on_done: OnDone | None = None,
                       on_error: OnError | None = None) -> None:
        """Run blocking ``fn`` off the UI thread; its result or error comes back on it."""


class ManualDispatcher:
    """Inline dispatcher with a manual clock, for headless use and tests."""

    def __init__(self) -> None:
        self.now = 0.0
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()

    def call_soon(self, fn: Callable[[], None]) -> None:
        fn()

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (self.now + delay, next(self._order), fn))

    def run_background(self, fn, on_done=None, on_error=None) -> None:
        try:
            result = fn()
        except Exception as exc:
            if on_error is None:
                raise
            on_error(exc)
            return
        if on_done is not None:
            on_done(result)

    @property
    def pending_timers(self) -> int:
        return len(self._timers)

    def advance(self, seconds: float) -> None:
        """Move the clock on, running every timer that falls due (in order)."""
        until = self.now + seconds
        while self._timers and self._timers[0][0] <= until:
            at, _, fn = heapq.heappop(self._timers)
            self.now = max(self.now, at)
            fn()
        self.now = until


class QueueDispatcher:
    """Headless dispatcher: the thread that calls ``process()`` plays the UI thread.

    ``call_soon`` queues from any thread; ``run_background`` uses a daemon thread whose
    result is queued back; ``call_later`` timers fire inside ``process()``. For scripts
    and tests that drive the controller against a real server without a UI toolkit.
    """

    def __init__(self, clock=None) -> None:
        import queue
        import time

        self._queue: queue.Queue = queue.Queue()
        self.clock = clock or time.monotonic
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()

    def call_soon(self, fn: Callable[[], None]) -> None:
        self._queue.put(fn)

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (self.clock() + delay, next(self._order), fn))

    def run_background(self, fn, on_done=None, on_error=None) -> None:
        run_in_thread(fn, on_done, on_error, self.call_soon)

    def process(self, timeout: float) -> None:
        """Run due timers and queued calls; block up to ``timeout`` s for the next one."""
        import queue

        now = self.clock()
        while self._timers and self._timers[0][0] <= now:
            heapq.heappop(self._timers)[2]()
        wait = timeout
        if self._timers:
            wait = max(0.0, min(wait, self._timers[0][0] - now))
        try:
            fn = self._queue.get(timeout=wait)
        except queue.Empty:
            return
        fn()
        while True:
            try:
                fn = self._queue.get_nowait()
            except queue.Empty:
                return
            fn()

    def wait_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Process events until ``condition()`` holds or ``timeout`` s passed."""
        deadline = self.clock() + timeout
        while not condition():
            remaining = deadline - self.clock()
            if remaining <= 0:
                return False
            self.process(min(remaining, 0.5))
        return True


def run_in_thread(fn: Callable[[], Any], on_done: OnDone | None, on_error: OnError | None,
                  call_soon: Callable[[Callable[[], None]], None]) -> None:
    """Run ``fn`` on a daemon thread and hand its result or error to ``call_soon``
    (the bridges' ``run_background``)."""
    import threading

    def work() -> None:
        try:
            result = fn()
        except Exception as exc:
            if on_error is not None:
                call_soon(lambda e=exc: on_error(e))
            else:
                log.exception("background call failed")
            return
        if on_done is not None:
            call_soon(lambda: on_done(result))

    threading.Thread(target=work, name="openhcs-ui-work", daemon=True).start()
