"""The function catalog the designer picks from, behind one small source seam.

A *source* is any callable returning catalog entries that carry ``name``, ``category``,
``doc``, ``module``, ``qualname`` and ``params`` (each with ``name``, ``annotation``,
``default`` and optionally ``choices``). Today it is the local registry
(:func:`local_source`); a connected execution server's served catalog plugs in the same
way (``Catalog(client.list_functions)``). Entries become :class:`CatalogEntry` with
ready-made form fields, and functions are imported by ``module`` + ``qualname`` so the
pipeline written to code names the same object the server will import.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from openhcs.frontend.designer_params import ParamField, field_for

log = logging.getLogger(__name__)

UNCATALOGUED = "(not in catalog)"


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    category: str
    doc: str
    module: str
    qualname: str
    fields: tuple[ParamField, ...]

    @property
    def summary(self) -> str:
        """The docstring's first line, for lists."""
        return self.doc.strip().splitlines()[0] if self.doc.strip() else ""

    def field(self, name: str) -> ParamField:
        for f in self.fields:
            if f.name == name:
                return f
        known = ", ".join(f.name for f in self.fields) or "none"
        raise KeyError(f"{self.name} has no parameter {name!r} (it has: {known})")


def _default(param: Any) -> Any:
    """A served entry may mark "no default" with ``required``; the registry uses ``empty``."""
    if getattr(param, "required", False):
        return inspect.Parameter.empty
    return getattr(param, "default", inspect.Parameter.empty)


def entry_from_info(info: Any) -> CatalogEntry:
    """A :class:`CatalogEntry` from a registry ``FunctionInfo`` or a served equivalent."""
    fields = tuple(
        field_for(p.name, getattr(p, "annotation", "") or "", _default(p), tuple(getattr(p, "choices", ()) or ()))
        for p in info.params
    )
    return CatalogEntry(info.name, info.category, info.doc or "", info.module, info.qualname, fields)


def entry_for_function(func: Callable) -> CatalogEntry:
    """An entry for a function that is in no catalog (e.g. from a hand-written file)."""
    from openhcs.processing.registry import describe

    try:
        info = describe(func, UNCATALOGUED)
    except (TypeError, ValueError):  # no signature (a C builtin): no form, kwargs kept as they are
        name = getattr(func, "__name__", repr(func))
        return CatalogEntry(name, UNCATALOGUED, inspect.getdoc(func) or "",
                            getattr(func, "__module__", "") or "", getattr(func, "__qualname__", name), ())
    return entry_from_info(info)


def local_source() -> list[Any]:
    """The processing registry of this process (built-ins and plugins)."""
    from openhcs.processing.registry import list_functions

    return list_functions()


def import_function(entry: CatalogEntry) -> Callable:
    """The callable an entry names, imported by module and qualname."""
    obj: Any = importlib.import_module(entry.module)
    for part in entry.qualname.split("."):
        obj = getattr(obj, part)
    return obj


class Catalog:
    """Entries from ``source`` (loaded once, on first use), searchable by name and category."""

    def __init__(self, source: Callable[[], Iterable[Any]] = local_source) -> None:
        self.source = source
        self._entries: dict[str, CatalogEntry] | None = None

    def entries(self) -> list[CatalogEntry]:
        if self._entries is None:
            loaded = {}
            for info in self.source():
                try:
                    entry = entry_from_info(info)
                except Exception as exc:  # one odd entry must not hide the others
                    log.warning("skipping catalog entry %r: %s", getattr(info, "name", info), exc)
                    continue
                loaded[entry.name] = entry
            self._entries = loaded
        return sorted(self._entries.values(), key=lambda e: (e.category, e.name))

    def categories(self) -> list[str]:
        return sorted({e.category for e in self.entries()})

    def search(self, text: str = "", category: str | None = None) -> list[CatalogEntry]:
        """Entries whose name, category or docstring's first line contains every word of ``text``."""
        words = text.lower().split()
        found = []
        for entry in self.entries():
            if category and entry.category != category:
                continue
            haystack = f"{entry.name} {entry.category} {entry.summary}".lower()
            if all(w in haystack for w in words):
                found.append(entry)
        return found

    def get(self, name: str) -> CatalogEntry:
        self.entries()
        assert self._entries is not None
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(f"no function {name!r} in the catalog") from None

    def entry_for(self, func: Callable) -> CatalogEntry:
        """The catalog entry of ``func`` when the catalog has it, else one built from its signature."""
        self.entries()
        assert self._entries is not None
        entry = self._entries.get(getattr(func, "__name__", ""))
        if entry is not None:
            try:
                if import_function(entry) is func:
                    return entry
            except (ImportError, AttributeError):
                pass
        return entry_for_function(func)

    def function(self, name: str) -> Callable:
        return import_function(self.get(name))
