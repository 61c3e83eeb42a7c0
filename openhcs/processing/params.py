"""Form metadata of a function's options: which widget edits it, which values it allows.

A pipeline designer builds its forms from this, never per function. The *kind* of an
option is one of :data:`FORM_KINDS`, taken from its annotation, else from the type its
numpydoc docstring gives (``sigma : scalar`` is a float even when the default is ``1``),
else from its default. ``{'reflect', 'wrap'}`` in a docstring or ``Literal[...]`` in an
annotation gives a ``choice`` with its ``choices``; ``None`` in either, or a ``None``
default, makes the option ``nullable``.
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Callable

FORM_KINDS = ("bool", "int", "float", "str", "choice", "tuple", "array", "callable", "any")

_EMPTY = inspect.Parameter.empty
_BRACES = re.compile(r"\{([^{}]*)\}")
_LITERAL = re.compile(r"Literal\[([^\]]*)\]")


def _literals(text: str) -> tuple:
    values = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            values.append(ast.literal_eval(item))
        except (ValueError, SyntaxError):
            values.append(item.strip("'\""))
    return tuple(values)


def _kind_from_words(text: str) -> str:
    words = set(re.findall(r"[a-z]+", text.lower()))
    if "bool" in words or "boolean" in words:
        return "bool"
    if words & {"callable", "function"}:
        return "callable"
    if words & {"ndarray", "array", "image"}:
        return "array"
    if words & {"float", "scalar", "number", "real"}:
        return "float"
    if "int" in words or "integer" in words:
        return "int"
    if words & {"tuple", "sequence", "list"}:
        return "tuple"
    if words & {"str", "string"}:
        return "str"
    return ""


def _kind_from_default(default) -> str:
    if default is _EMPTY or default is None:
        return ""
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float"
    if isinstance(default, str):
        return "str"
    if isinstance(default, tuple | list):
        return "tuple"
    if callable(default):
        return "callable"
    if hasattr(default, "shape"):
        return "array"
    return "any"


def infer(annotation: str, default, doc_type: str = "") -> tuple[str, tuple, bool]:
    """``(kind, choices, nullable)`` of one option."""
    nullable = default is None or "None" in annotation or "None" in doc_type
    choices: tuple = ()
    match = _LITERAL.search(annotation) or _BRACES.search(doc_type)
    if match:
        choices = tuple(c for c in _literals(match.group(1)) if c is not None)
        nullable = nullable or None in _literals(match.group(1))
    if choices:
        return "choice", choices, nullable
    from_default = _kind_from_default(default)
    declared = _kind_from_words(annotation) or _kind_from_words(doc_type)
    if declared == "float" and from_default == "int" and not annotation:
        return "float", (), nullable  # numpydoc "scalar" with an integer default
    if declared == "array" and from_default == "tuple":
        declared = "tuple"  # "sequence or ndarray" with a tuple default
    if declared and not (declared == "callable" and from_default not in ("", "callable")):
        return declared, (), nullable
    return from_default or "any", (), nullable


def numpydoc_params(func: Callable) -> dict[str, tuple[str, str]]:
    """``{name: (type text, first sentence of the description)}`` from a numpydoc docstring."""
    doc = inspect.getdoc(func) or ""
    if "Parameters" not in doc:
        return {}
    import docstring_parser

    try:
        parsed = docstring_parser.parse(doc, docstring_parser.DocstringStyle.NUMPYDOC)
    except docstring_parser.ParseError:
        return {}
    out = {}
    for p in parsed.params:
        text = " ".join((p.description or "").split())
        first = re.split(r"(?<=\.)\s", text, maxsplit=1)[0]
        for name in p.arg_name.split(","):  # "low, high : float"
            out[name.strip()] = (p.type_name or "", first)
    return out


def first_line(doc: str) -> str:
    """The summary line of a docstring ('' when there is none)."""
    for line in (doc or "").strip().splitlines():
        if line.strip():
            return line.strip()
    return ""
