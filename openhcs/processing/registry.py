"""Registry of processing functions, readable by a UI and extendable by plugins.

Functions stay plain module-level callables: :func:`register` only records metadata
(name, category, docstring, parameters from ``inspect.signature``) and returns the
function unchanged, so it still pickles by reference for worker processes. Third-party
packages add functions through the ``openhcs.processing`` entry-point group; importing the
module is enough since its decorators register on import. A plugin that fails to import is
logged and skipped so one broken package never stops openhcs from starting. The built-in
modules are imported the first time the registry is queried, not when this module is,
so processes that only need ``checkpoint`` skip the scipy/scikit-image import.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "openhcs.processing"

BUILTIN_MODULES = (
    "openhcs.processing.normalization",
    "openhcs.processing.filters",
    "openhcs.processing.flatfield",
    "openhcs.processing.projection",
    "openhcs.processing.segmentation",
    "openhcs.processing.measurement",
    "openhcs.processing.stitching",
)

_EMPTY = inspect.Parameter.empty


@dataclass(frozen=True)
class ParamInfo:
    """One keyword option of a processing function.

    ``annotation`` is the annotation as a string (``""`` when absent); ``default`` is
    ``inspect.Parameter.empty`` for a required option.
    """

    name: str
    annotation: str
    default: Any

    @property
    def required(self) -> bool:
        return self.default is _EMPTY


@dataclass(frozen=True)
class FunctionInfo:
    name: str
    qualname: str
    module: str
    category: str
    doc: str
    params: tuple[ParamInfo, ...]


_functions: dict[str, Callable[..., Any]] = {}
_infos: dict[str, FunctionInfo] = {}


def _annotation_str(annotation: Any) -> str:
    if annotation is _EMPTY:
        return ""
    if isinstance(annotation, str):  # `from __future__ import annotations`
        return annotation
    return inspect.formatannotation(annotation)


def describe(func: Callable[..., Any], category: str) -> FunctionInfo:
    """Build the :class:`FunctionInfo` of ``func`` (its first parameter, the stack, is skipped)."""
    params = list(inspect.signature(func).parameters.values())
    if not params or params[0].kind not in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    ):
        raise TypeError(f"{func.__qualname__}: a processing function takes the stack as its first positional parameter")
    options = tuple(
        ParamInfo(p.name, _annotation_str(p.annotation), p.default)
        for p in params[1:]
        if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    )
    return FunctionInfo(
        name=func.__name__,
        qualname=func.__qualname__,
        module=func.__module__,
        category=category,
        doc=inspect.getdoc(func) or "",
        params=options,
    )


def register(category: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Record a processing function under ``category``; the function is returned unchanged.

    Example::

        @register(category="filters")
        def invert(stack, maximum: float = 1.0):
            return (maximum - stack).astype("float32")
    """

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        info = describe(func, category)
        existing = _functions.get(info.name)
        if existing is not None and existing is not func and (
            existing.__module__,
            existing.__qualname__,
        ) != (info.module, info.qualname):
            log.warning(
                "processing function %r from %s replaces the one from %s",
                info.name,
                info.module,
                existing.__module__,
            )
        _functions[info.name] = func
        _infos[info.name] = info
        return func

    return decorator


def load_builtins() -> None:
    """Import the built-in processing modules (their decorators register them); idempotent."""
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


def list_functions(category: str | None = None) -> list[FunctionInfo]:
    """All registered functions (optionally one category), sorted by category then name."""
    load_builtins()
    infos = [i for i in _infos.values() if category is None or i.category == category]
    return sorted(infos, key=lambda i: (i.category, i.name))


def get_function(name: str) -> Callable[..., Any]:
    """The registered function called ``name``; ``KeyError`` lists the known names."""
    if name not in _functions:
        load_builtins()
    try:
        return _functions[name]
    except KeyError:
        known = ", ".join(sorted(_functions)) or "(none)"
        raise KeyError(f"no processing function named {name!r}; known: {known}") from None


def get_info(name: str) -> FunctionInfo:
    """The :class:`FunctionInfo` of the registered function called ``name``."""
    get_function(name)
    return _infos[name]


def load_entry_points(entry_points: Iterable[importlib.metadata.EntryPoint]) -> list[str]:
    """Import each entry point; failures are logged and skipped. Returns the names loaded."""
    loaded = []
    for ep in entry_points:
        try:
            ep.load()
        except Exception as exc:  # a broken plugin must not stop openhcs
            log.warning("skipping processing plugin %r (%s): %s: %s", ep.name, ep.value, type(exc).__name__, exc)
            continue
        loaded.append(ep.name)
    return loaded


def load_plugins() -> list[str]:
    """Import every plugin registered in the ``openhcs.processing`` entry-point group."""
    return load_entry_points(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
