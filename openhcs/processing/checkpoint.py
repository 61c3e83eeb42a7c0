"""Cooperative cancellation for long-running processing functions.

Processing functions stay plain (image in, image out); a long one calls
:func:`checkpoint` inside its loops. The executor running the function installs the
current well's cancel check with :func:`cancellation_scope`; outside any scope
``checkpoint()`` does nothing, so functions work unchanged in a notebook.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator


class StepCancelled(Exception):
    """Raised inside a step when its well has been cancelled."""


_current_check: contextvars.ContextVar[Callable[[], bool] | None] = contextvars.ContextVar(
    "openhcs_cancel_check", default=None
)


def checkpoint() -> None:
    """Raise :class:`StepCancelled` if the well being processed was cancelled."""
    check = _current_check.get()
    if check is not None and check():
        raise StepCancelled("cancelled")


@contextlib.contextmanager
def cancellation_scope(is_cancelled: Callable[[], bool]) -> Iterator[None]:
    """Make ``checkpoint()`` consult ``is_cancelled`` for the duration of the block."""
    token = _current_check.set(is_cancelled)
    try:
        yield
    finally:
        _current_check.reset(token)
