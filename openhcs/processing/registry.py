"""Registry of processing functions, readable by a UI and extendable by plugins.

Functions stay plain module-level callables: :func:`register` only records metadata
(name, category, docstring, parameters from ``inspect.signature``) and returns the
function unchanged, so it still pickles by reference for worker processes. Third-party
packages add functions through the ``openhcs.processing`` entry-point group; importing the
module is enough since its decorators register on import. A plugin that fails to import is
logged and skipped so one broken package never stops openhcs from starting. The built-in
modules are imported the first time the registry is queried, not when this module is,
so processes that only need ``checkpoint`` skip the scipy/scikit-image import. The same
first query builds the catalog modules (scikit-image's functions, CellProfiler-style
object measurements): each offers ``register_catalog()``.

Every function has a :class:`~openhcs.processing.contracts.Contract` (what kind of planes
it needs and returns), recorded on the function as ``openhcs_contract`` so the compiler
can check a pipeline without building the catalog, and form metadata for each option
(see :mod:`openhcs.processing.params`).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from openhcs.processing.contracts import BUILTIN_CONTRACTS, Contract
from openhcs.processing.params import first_line, infer, numpydoc_params

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

# Modules whose ``register_catalog()`` registers many functions at once (on first query).
CATALOG_MODULES = (
    "openhcs.processing.skimage_catalog",
    "openhcs.processing.object_measurements",
)

_EMPTY = inspect.Parameter.empty


@dataclass(frozen=True)
class ParamInfo:
    """One keyword option of a processing function.

    ``annotation`` is the annotation as a string (``""`` when absent); ``default`` is
    ``inspect.Parameter.empty`` for a required option. ``kind`` (one of
    :data:`~openhcs.processing.params.FORM_KINDS`), ``choices``, ``nullable`` and ``doc``
    are what a form needs; they are derived, so they do not take part in equality.
    """

    name: str
    annotation: str
    default: Any
    kind: str = field(default="", compare=False)
    choices: tuple = field(default=(), compare=False)
    nullable: bool = field(default=False, compare=False)
    doc: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.kind:
            kind, choices, nullable = infer(self.annotation, self.default)
            object.__setattr__(self, "kind", kind)
            object.__setattr__(self, "choices", self.choices or choices)
            object.__setattr__(self, "nullable", self.nullable or nullable)

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
    contract: Contract = Contract.IMAGE_TO_IMAGE

    @property
    def summary(self) -> str:
        """The first line of the docstring."""
        return first_line(self.doc)


_functions: dict[str, Callable[..., Any]] = {}
_infos: dict[str, FunctionInfo] = {}


def _annotation_str(annotation: Any) -> str:
    if annotation is _EMPTY:
        return ""
    if isinstance(annotation, str):  # `from __future__ import annotations`
        return annotation
    return inspect.formatannotation(annotation)


def describe(func: Callable[..., Any], category: str, contract: Contract = Contract.IMAGE_TO_IMAGE,
             doc_source: Callable[..., Any] | None = None) -> FunctionInfo:
    """Build the :class:`FunctionInfo` of ``func`` (its first parameter, the stack, is skipped).

    Option types and descriptions are read from the numpydoc docstring of ``doc_source``
    (default ``func``), e.g. the scikit-image function a wrapper adapts.
    """
    params = list(inspect.signature(func).parameters.values())
    if not params or params[0].kind not in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    ):
        raise TypeError(f"{func.__qualname__}: a processing function takes the stack as its first positional parameter")
    docs = numpydoc_params(doc_source or func)
    options = []
    for p in params[1:]:
        if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        annotation = _annotation_str(p.annotation)
        doc_type, doc = docs.get(p.name, ("", ""))
        kind, choices, nullable = infer(annotation, p.default, doc_type)
        options.append(ParamInfo(p.name, annotation, p.default, kind, choices, nullable, doc))
    return FunctionInfo(
        name=func.__name__,
        qualname=func.__qualname__,
        module=func.__module__,
        category=category,
        doc=inspect.getdoc(func) or "",
        params=tuple(options),
        contract=Contract(contract),
    )


def register(category: str, contract: Contract | str | None = None,
             doc_source: Callable[..., Any] | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Record a processing function under ``category``; the function is returned unchanged
    (apart from its ``openhcs_contract`` attribute).

    ``contract`` says what the function consumes and returns (default ``image -> image``).

    Example::

        @register(category="filters")
        def invert(stack, maximum: float = 1.0):
            return (maximum - stack).astype("float32")
    """

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        declared = contract or BUILTIN_CONTRACTS.get(f"{func.__module__}.{func.__qualname__}", Contract.IMAGE_TO_IMAGE)
        info = describe(func, category, Contract(declared), doc_source)
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
        with _lock:
            _functions[info.name] = func
            _infos[info.name] = info
        func.openhcs_contract = info.contract
        return func

    return decorator


_catalogs_loaded = False
_lock = threading.RLock()  # the catalog may be built by a server thread while runs compile


def load_builtins() -> None:
    """Import the built-in processing modules (their decorators register them) and build the
    catalog modules once; idempotent. A catalog that fails to build is logged and skipped."""
    global _catalogs_loaded
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    with _lock:
        if _catalogs_loaded:
            return
        for name in CATALOG_MODULES:
            try:
                importlib.import_module(name).register_catalog()
            except Exception as exc:  # e.g. an optional library missing: the rest still loads
                log.warning("function catalog %s not loaded: %s: %s", name, type(exc).__name__, exc)
        _catalogs_loaded = True


def contract_of(func: Callable[..., Any]) -> Contract | None:
    """The declared contract of a registered (or catalog) function; ``None`` if unknown."""
    return getattr(func, "openhcs_contract", None)


def list_functions(category: str | None = None, search: str | None = None) -> list[FunctionInfo]:
    """All registered functions (optionally one category), sorted by category then name.

    ``search``: words that must all occur (case-insensitive) in the name, category,
    contract or first docstring line.
    """
    load_builtins()
    with _lock:
        infos = [i for i in _infos.values() if matches(i, search, category)]
    return sorted(infos, key=lambda i: (i.category, i.name))


def matches(info: FunctionInfo, search: str | None = None, category: str | None = None) -> bool:
    """Whether ``info`` is in ``category`` (if given) and contains every word of ``search``
    (case-insensitive) in its name, category, contract or summary."""
    if category is not None and info.category != category:
        return False
    text = f"{info.name} {info.category} {info.contract.value} {info.summary}".lower()
    return all(word in text for word in (search or "").lower().split())


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
