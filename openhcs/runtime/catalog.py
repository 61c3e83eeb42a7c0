"""The function catalog as an execution server serves it.

Building the catalog imports scikit-image and introspects some 150 functions (seconds),
so it is never done at server start nor in the control loop: the first ``functions``
request starts it in a background thread and is answered ``building``; the client asks
again, and from then on every answer comes from the entries built once. Plugins are
loaded from their entry points before the catalog is built, so a server lists its own.
"""

from __future__ import annotations

import inspect
import logging
import threading
from typing import Any

import msgspec

from openhcs.runtime.protocol import FunctionEntry, ParamEntry

log = logging.getLogger(__name__)


def _plain_default(value: Any) -> Any:
    """The default as JSON data, or ``None`` when it is not plain data."""
    if value is inspect.Parameter.empty:
        return None
    try:
        return msgspec.json.decode(msgspec.json.encode(value))
    except (TypeError, msgspec.EncodeError, OverflowError):
        return None


def to_entry(info) -> FunctionEntry:
    """A registry ``FunctionInfo`` as the wire struct."""
    params = [
        ParamEntry(
            name=p.name, kind=p.kind, annotation=p.annotation, default=_plain_default(p.default),
            default_repr="" if p.required else repr(p.default), required=p.required,
            nullable=p.nullable, choices=[_plain_default(c) for c in p.choices], doc=p.doc,
        )
        for p in info.params
    ]
    return FunctionEntry(
        name=info.name, category=info.category, module=info.module, qualname=info.qualname,
        contract=info.contract.value, inputs=[k.value for k in info.contract.inputs],
        output=info.contract.output.value, summary=info.summary, doc=info.doc, params=params,
    )


class CatalogService:
    """Builds the catalog once, off the calling thread; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._entries: list[tuple[Any, FunctionEntry]] | None = None
        self.error: str | None = None

    def lookup(self, search: str | None = None, category: str | None = None) -> list[FunctionEntry] | None:
        """Matching entries, or ``None`` while the catalog is still being built (the first
        call starts the build). Raises ``RuntimeError`` if the build failed."""
        with self._lock:
            if self._entries is None and self.error is None and self._thread is None:
                self._thread = threading.Thread(target=self._build, name="openhcs-catalog", daemon=True)
                self._thread.start()
            entries, error = self._entries, self.error
        if error is not None:
            raise RuntimeError(error)
        if entries is None:
            return None
        from openhcs.processing.registry import matches

        return [e for info, e in entries if matches(info, search, category)]

    @property
    def total(self) -> int:
        return len(self._entries or ())

    def _build(self) -> None:
        try:
            from openhcs.processing.registry import list_functions, load_plugins

            load_plugins()
            entries = [(info, to_entry(info)) for info in list_functions()]
        except BaseException as exc:  # reported to every later request, never raised in a thread
            log.exception("building the function catalog failed")
            with self._lock:
                self.error = f"building the function catalog failed: {type(exc).__name__}: {exc}"
            return
        with self._lock:
            self._entries = entries

    def close(self, timeout: float = 10.0) -> None:
        """Wait (bounded) for a build in progress; the thread is a daemon past that."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
