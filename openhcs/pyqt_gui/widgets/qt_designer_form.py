"""A parameter form generated from one call's catalog fields (no per-function code).

Booleans are check boxes, choices combo boxes, numbers, tuples and the rest line edits
showing the default as placeholder. A value is handed to the model as soon as the box
is left; a refused value is put back and the model's message shown under the form.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from openhcs.frontend.designer_params import ParamError, ParamField, format_value


class ParamForm(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.form = QFormLayout()
        self.error = QLabel("")
        self.error.setObjectName("paramError")
        self.error.setWordWrap(True)
        self.empty = QLabel("This function has no options.")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self.form)
        layout.addWidget(self.empty)
        layout.addWidget(self.error)
        self.editors: dict[str, QWidget] = {}
        self._key: object = None
        self._hints: dict[str, str] = {}
        self._shown: dict[str, str] = {}  # what each line edit showed, to put back a refused value
        self._setter: Callable[[str, Any], Any] | None = None

    def show_fields(self, key: object, rows: list[tuple[ParamField, Any, bool]],
                    setter: Callable[[str, Any], Any], flagged: dict[str, str]) -> None:
        """Draw ``rows`` (field, value, set); rebuild only when ``key`` (the call) changed."""
        self._setter = setter
        if key != self._key or set(self.editors) != {f.name for f, _, _ in rows}:
            self._key = key
            self._rebuild(rows)
        for field, value, user_set in rows:
            self._show_value(self.editors[field.name], field, value, user_set)
        for name, editor in self.editors.items():
            editor.setProperty("issue", name in flagged)
            editor.setToolTip(flagged.get(name, self._hints.get(name, "")))
            editor.style().unpolish(editor)
            editor.style().polish(editor)

    def _rebuild(self, rows) -> None:
        while self.form.rowCount():
            self.form.removeRow(0)
        self.editors, self._hints, self._shown = {}, {}, {}
        self.error.clear()
        for field, _, _ in rows:
            editor = self._editor(field)
            editor.setObjectName(f"param_{field.name}")
            self.editors[field.name] = editor
            self._hints[field.name] = field.hint
            self.form.addRow(f"{field.name}:", editor)
        self.empty.setVisible(not rows)

    def _editor(self, field: ParamField) -> QWidget:
        if field.kind == "bool":
            box = QCheckBox(field.hint)
            box.toggled.connect(lambda on, n=field.name: self._commit(n, on))
            return box
        if field.kind == "choice":
            combo = QComboBox()
            combo.addItems([str(c) for c in field.choices])
            combo.currentTextChanged.connect(lambda text, n=field.name: self._commit(n, text))
            return combo
        line = QLineEdit()
        line.setPlaceholderText(field.hint)
        line.editingFinished.connect(lambda n=field.name, e=line: self._commit(n, e.text()))
        return line

    def _show_value(self, editor: QWidget, field: ParamField, value: Any, user_set: bool) -> None:
        editor.blockSignals(True)
        try:
            if isinstance(editor, QCheckBox):
                editor.setChecked(bool(value))
            elif isinstance(editor, QComboBox):
                editor.setCurrentText(format_value(value))
            elif isinstance(editor, QLineEdit):
                editor.setText(format_value(value) if user_set else "")
                self._shown[field.name] = editor.text()
        finally:
            editor.blockSignals(False)

    def _commit(self, name: str, value: Any) -> None:
        if self._setter is None:
            return
        try:
            self._setter(name, value)
        except ParamError as exc:
            editor = self.editors.get(name)
            if isinstance(editor, QLineEdit):
                editor.setText(self._shown.get(name, ""))
            self.error.setText(f"Refused: {exc}")
            return
        self.error.clear()
