"""The editor of one designer step: name, components, function pattern and its options.

It shows the model's step ``index`` and turns edits into model calls; a refused edit
shows the model's message in the step's issue line and changes nothing.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from openhcs.frontend.designer import DesignerModel
from openhcs.frontend.designer_check import PARAMS
from openhcs.pyqt_gui.widgets.qt_designer_form import ParamForm
from openhcs.pyqt_gui.widgets.qt_designer_functions import FunctionPicker

NO_GROUP = "(none)"
ALL_GROUPS = "all groups"


class StepEditor(QWidget):
    def __init__(self, model: DesignerModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.index: int | None = None
        self.key: str | None = None
        self.position = 0
        self.name = QLineEdit(placeholderText="step name")
        self.name.setObjectName("stepName")
        self.variable_boxes: dict[str, QCheckBox] = {}
        self.variable_row = QHBoxLayout()
        self.group_by = QComboBox()
        self.group_by.setObjectName("groupBy")
        self.kind = QLabel("")
        self.kind.setObjectName("patternKind")
        self.per_component = QPushButton("One function per group value")
        self.per_component.setObjectName("perComponent")
        self.keys = QComboBox()
        self.keys.setObjectName("patternKey")
        self.calls = QListWidget()
        self.calls.setObjectName("chain")
        self.calls.setMaximumHeight(70)
        self.remove_call = QPushButton("Remove from chain")
        self.picker = FunctionPicker(model)
        self.form = ParamForm()
        self.issue = QLabel("")
        self.issue.setObjectName("stepIssue")
        self.issue.setWordWrap(True)
        self._build_layout()
        self.name.editingFinished.connect(self._rename)
        self.group_by.activated.connect(lambda _i: self._set_components(grouped=True))
        self.per_component.clicked.connect(self._toggle_per_component)
        self.keys.activated.connect(lambda _i: self._choose_key())
        self.calls.currentRowChanged.connect(self._choose_call)
        self.remove_call.clicked.connect(self._remove_call)
        self.picker.chosen.connect(self._choose_function)
        self.setEnabled(False)

    def _build_layout(self) -> None:
        components = QHBoxLayout()
        components.addWidget(QLabel("stack along:"))
        components.addLayout(self.variable_row)
        components.addWidget(QLabel("group by:"))
        components.addWidget(self.group_by)
        components.addStretch(1)
        pattern = QHBoxLayout()
        pattern.addWidget(self.kind, 1)
        pattern.addWidget(self.keys)
        pattern.addWidget(self.per_component)
        chain = QHBoxLayout()
        chain.addWidget(self.calls, 1)
        chain.addWidget(self.remove_call)
        options = QGroupBox("Options")
        QVBoxLayout(options).addWidget(self.form)
        layout = QVBoxLayout(self)
        layout.addWidget(self.name)
        layout.addLayout(components)
        layout.addLayout(pattern)
        layout.addLayout(chain)
        layout.addWidget(self.picker, 1)
        layout.addWidget(options)
        layout.addWidget(self.issue)

    # ---- drawing
    def show_step(self, index: int | None) -> None:
        if index != self.index:
            self.key, self.position = None, 0
        self.index = index
        self.setEnabled(index is not None and index < len(self.model.steps))
        if not self.isEnabled():
            self.index = None
            self.issue.clear()
            return
        draft = self.model.steps[self.index]
        if self.key not in draft.branches:
            self.key = next(iter(draft.branches))
        self.name.setText(draft.display_name)
        self._show_components(draft)
        self.kind.setText(f"Function pattern: {draft.kind}")
        self.per_component.setText("One function for all groups" if draft.per_component
                                   else f"One function per {draft.group_by or 'group'} value")
        self.keys.setVisible(draft.per_component)
        self.keys.clear()
        self.keys.addItems([str(k) for k in draft.branches if k is not None])
        if draft.per_component:
            self.keys.setCurrentText(str(self.key))
        branch = draft.branches[self.key]
        self.position = min(self.position, max(0, len(branch.calls) - 1))
        self.calls.blockSignals(True)
        self.calls.clear()
        self.calls.addItems([f"{i + 1}. {c.entry.name}" for i, c in enumerate(branch.calls)] or ["(no function)"])
        self.calls.setCurrentRow(self.position)
        self.calls.blockSignals(False)
        self.remove_call.setEnabled(len(branch.calls) > 1)
        issues = self.model.issues_for(self.index)
        self.issue.setText("\n".join(f"⚠ {i.message}" for i in issues))
        flagged = {i.param: i.message for i in issues if i.field == PARAMS and i.param}
        if branch.calls:
            call = branch.calls[self.position]
            self.picker.select(call.entry.name)
            rows = self.model.fields(self.index, self.key, self.position)
            self.form.show_fields((self.index, self.key, self.position, call.entry.name), rows, self._set_param,
                                  flagged)
        else:
            self.form.show_fields(None, [], self._set_param, flagged)

    def _show_components(self, draft) -> None:
        available = self.model.available_components()
        if list(self.variable_boxes) != available:
            for box in self.variable_boxes.values():
                box.deleteLater()
            self.variable_boxes = {}
            for comp in available:
                box = QCheckBox(comp)
                box.setObjectName(f"vary_{comp}")
                box.toggled.connect(lambda on, c=comp: self._set_components(checked=c if on else None))
                self.variable_row.addWidget(box)
                self.variable_boxes[comp] = box
        for comp, box in self.variable_boxes.items():
            box.blockSignals(True)
            box.setChecked(comp in draft.variable_components)
            box.blockSignals(False)
        self.group_by.clear()
        self.group_by.addItems([NO_GROUP, *available])
        self.group_by.setCurrentText(draft.group_by or NO_GROUP)

    # ---- edits (all through the model; refusals are shown, nothing changes)
    def _try(self, action) -> None:
        try:
            action()
        except (ValueError, KeyError, IndexError) as exc:
            self.show_step(self.index)  # put the refused edit back
            self.issue.setText(f"⚠ Refused: {exc.args[0] if exc.args else exc}")

    def _rename(self) -> None:
        if self.index is not None and self.name.text().strip() != self.model.steps[self.index].display_name:
            self._try(lambda: self.model.rename_step(self.index, self.name.text()))

    def _set_components(self, checked: str | None = None, grouped: bool = False) -> None:
        """Stacking along the group-by clears the group-by; grouping by a stacked
        component un-stacks it, so every click leads to a valid step."""
        if self.index is None:
            return
        variable = [c for c, box in self.variable_boxes.items() if box.isChecked()]
        group = None if self.group_by.currentText() == NO_GROUP else self.group_by.currentText()
        if checked is not None and checked == group:
            group = None
        if grouped and group in variable and len(variable) > 1:
            variable.remove(group)
        self._try(lambda: self.model.set_components(self.index, variable, group))

    def _toggle_per_component(self) -> None:
        if self.index is None:
            return
        if self.model.steps[self.index].per_component:
            self._try(lambda: self.model.make_single(self.index))
        else:
            self._try(lambda: self.model.make_per_component(self.index))

    def _choose_key(self) -> None:
        self.key, self.position = self.keys.currentText(), 0
        self.show_step(self.index)

    def _choose_call(self, row: int) -> None:
        if row >= 0:
            self.position = row
            self.show_step(self.index)

    def _remove_call(self) -> None:
        if self.index is not None:
            self._try(lambda: self.model.remove_from_chain(self.index, self.position, self.key))

    def _choose_function(self, name: str, add: bool) -> None:
        if self.index is None:
            return
        if add:
            self.position = len(self.model.steps[self.index].branches[self.key].calls)
            self._try(lambda: self.model.add_to_chain(self.index, name, self.key))
        else:
            self._try(lambda: self.model.set_function(self.index, name, self.key, self.position))

    def _set_param(self, name: str, value) -> None:
        self.model.set_param(self.index, name, value, self.key, self.position)

    def focus_name(self) -> None:
        self.name.setFocus(Qt.FocusReason.OtherFocusReason)
