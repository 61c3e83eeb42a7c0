"""Form fields generated from a catalog function's parameter metadata.

Why here and not in each front end: both views draw the same fields (a number box, a
check box, a choice list, a tuple box) and must refuse the same bad values with the same
message. A :class:`ParamField` knows its kind from the parameter's annotation (``int``,
``float | None``, ``bool``, ``Literal['a', 'b']``, ``tuple[int, int]``) or, without one,
from its default's type; ``parse`` turns typed text into a value or raises
:class:`ParamError` saying what is wrong.
"""

from __future__ import annotations

import ast
import inspect
import re
from dataclasses import dataclass
from typing import Any

NUMBER_KINDS = {"int": int, "float": float}
KINDS = ("int", "float", "bool", "choice", "tuple", "str", "literal")

_OPTIONAL_RE = re.compile(r"^(?:Optional\[(?P<a>.+)\]|(?P<b>.+?)\s*\|\s*None|None\s*\|\s*(?P<c>.+))$")
_LITERAL_RE = re.compile(r"^(?:typing\.)?Literal\[(?P<body>.+)\]$")
_TUPLE_RE = re.compile(r"^(?:tuple|Tuple|typing\.Tuple)\[(?P<body>.+)\]$")


class ParamError(ValueError):
    """A value typed into a parameter field that the function cannot take."""


def _no_default(default: Any) -> bool:
    return default is inspect.Parameter.empty


@dataclass(frozen=True)
class ParamField:
    """One editable parameter: ``kind`` is one of :data:`KINDS`.

    ``element`` is the item kind of a tuple (``int``/``float``/``literal``), ``length``
    its fixed length (None for ``tuple[int, ...]``); ``optional`` fields accept an empty
    box as ``None``; ``choices`` lists a choice field's values.
    """

    name: str
    kind: str
    default: Any
    annotation: str = ""
    optional: bool = False
    choices: tuple[Any, ...] = ()
    element: str = ""
    length: int | None = None

    @property
    def required(self) -> bool:
        return _no_default(self.default)

    @property
    def hint(self) -> str:
        """What to type, shown beside the box, e.g. ``int, default 25``."""
        what = self.annotation or self.kind
        if self.required:
            return f"{what}, required"
        return f"{what}, default {'none' if self.default is None else format_value(self.default)}"

    def parse(self, text: str | bool | Any) -> Any:
        """The value for ``text`` (a bool for check boxes) or :class:`ParamError`."""
        if self.kind == "bool":
            if isinstance(text, bool):
                return text
            word = str(text).strip().lower()
            if word in ("true", "yes", "1", "on"):
                return True
            if word in ("false", "no", "0", "off"):
                return False
            raise ParamError(f"{self.name}: {text!r} is not true or false")
        if not isinstance(text, str):
            return self.check(text)
        stripped = text.strip()
        if stripped == "" or stripped == "None":
            if self.optional:
                return None
            if stripped == "" and not self.required:
                return self.default
            raise ParamError(f"{self.name}: a value is required ({self.hint})")
        if self.kind in NUMBER_KINDS:
            return _number(self.name, self.kind, stripped)
        if self.kind == "choice":
            for choice in self.choices:
                if stripped == str(choice):
                    return choice
            raise ParamError(f"{self.name}: {stripped!r} is not one of {', '.join(map(str, self.choices))}")
        if self.kind == "tuple":
            return self._tuple(stripped)
        if self.kind == "str":
            return stripped
        try:
            return ast.literal_eval(stripped)
        except (ValueError, SyntaxError):
            raise ParamError(f"{self.name}: {stripped!r} is not a Python value (number, text in quotes, "
                             "list, tuple…)") from None

    def check(self, value: Any) -> Any:
        """``value`` if this field accepts it (loading a file), else :class:`ParamError`."""
        if value is None and (self.optional or self.default is None):
            return value
        if self.kind == "bool" and not isinstance(value, bool):
            raise ParamError(f"{self.name}: expected true or false, got {value!r}")
        if self.kind in NUMBER_KINDS and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ParamError(f"{self.name}: expected a number, got {value!r}")
        if self.kind == "int" and isinstance(value, float) and not value.is_integer():
            raise ParamError(f"{self.name}: expected a whole number, got {value!r}")
        if self.kind == "choice" and value not in self.choices:
            raise ParamError(f"{self.name}: {value!r} is not one of {', '.join(map(str, self.choices))}")
        if self.kind == "tuple":
            return self._tuple(format_value(value))
        return value

    def _tuple(self, text: str) -> tuple:
        body = text.strip()
        if body[:1] in "([" and body[-1:] in ")]":
            body = body[1:-1]
        parts = [p.strip() for p in body.split(",") if p.strip()]
        if self.length is not None and len(parts) != self.length:
            raise ParamError(f"{self.name}: expected {self.length} values separated by commas, got {len(parts)}")
        if self.element in NUMBER_KINDS:
            return tuple(_number(self.name, self.element, p) for p in parts)
        try:
            return tuple(ast.literal_eval(p) for p in parts)
        except (ValueError, SyntaxError):
            raise ParamError(f"{self.name}: {text!r} is not a tuple of values") from None


def _number(name: str, kind: str, text: str) -> int | float:
    try:
        return int(text) if kind == "int" else float(text)
    except ValueError:
        what = "a whole number" if kind == "int" else "a number"
        raise ParamError(f"{name}: {text!r} is not {what}") from None


def format_value(value: Any) -> str:
    """The text shown in a box for ``value`` (tuples as ``2, 2``; None as empty)."""
    if _no_default(value) or value is None:
        return ""
    if isinstance(value, tuple):
        return ", ".join(format_value(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def field_for(name: str, annotation: str, default: Any, choices: tuple = ()) -> ParamField:
    """The :class:`ParamField` of one parameter from its annotation text and default."""
    text = (annotation or "").strip()
    optional = False
    match = _OPTIONAL_RE.match(text)
    if match:
        text = (match.group("a") or match.group("b") or match.group("c")).strip()
        optional = True
    if choices:
        return ParamField(name, "choice", default, annotation, optional, tuple(choices))
    literal = _LITERAL_RE.match(text)
    if literal:
        try:
            values = ast.literal_eval(f"({literal.group('body')},)")
        except (ValueError, SyntaxError):
            values = ()
        if values:
            return ParamField(name, "choice", default, annotation, optional, tuple(values))
    if text in ("int", "float", "bool", "str"):
        return ParamField(name, text, default, annotation, optional)
    tup = _TUPLE_RE.match(text)
    if tup:
        items = [p.strip() for p in tup.group("body").split(",")]
        variable = len(items) == 2 and items[1] == "..."
        element = items[0] if items[0] in NUMBER_KINDS and len(set(items) - {"..."}) == 1 else "literal"
        return ParamField(name, "tuple", default, annotation, optional, element=element,
                          length=None if variable else len(items))
    return _from_default(name, annotation, default, optional)


def _from_default(name: str, annotation: str, default: Any, optional: bool) -> ParamField:
    """No usable annotation: infer the kind from the default's type."""
    if isinstance(default, bool):
        return ParamField(name, "bool", default, annotation, optional)
    if isinstance(default, int):
        return ParamField(name, "int", default, annotation, optional)
    if isinstance(default, float):
        return ParamField(name, "float", default, annotation, optional)
    if isinstance(default, str):
        return ParamField(name, "str", default, annotation, optional)
    if isinstance(default, tuple) and default and all(isinstance(v, (int, float)) for v in default):
        element = "float" if any(isinstance(v, float) for v in default) else "int"
        return ParamField(name, "tuple", default, annotation, optional, element=element, length=len(default))
    return ParamField(name, "literal", default, annotation, optional or default is None)
