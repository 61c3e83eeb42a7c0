"""Choose a function from the catalog: search by name, filter by category, read its docstring."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from openhcs.frontend.designer import DesignerModel

ALL = "all categories"


class FunctionPicker(QWidget):
    """Emits ``chosen(name, add)``: ``add`` is True for "append to the chain"."""

    chosen = Signal(str, bool)

    def __init__(self, model: DesignerModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.search = QLineEdit(placeholderText="search functions by name or words of their description")
        self.search.setObjectName("functionSearch")
        self.category = QComboBox()
        self.category.addItems([ALL, *model.catalog.categories()])
        self.results = QListWidget()
        self.results.setObjectName("functionList")
        self.doc = QLabel("")
        self.doc.setObjectName("functionDoc")
        self.doc.setWordWrap(True)
        self.doc.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.use_button = QPushButton("Use function")
        self.use_button.setObjectName("useFunction")
        self.chain_button = QPushButton("Add to chain")
        self.chain_button.setObjectName("addToChain")
        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addWidget(self.category)
        buttons = QHBoxLayout()
        buttons.addWidget(self.use_button)
        buttons.addWidget(self.chain_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.results, 1)
        layout.addWidget(self.doc)
        layout.addLayout(buttons)
        self.search.textChanged.connect(self.refresh)
        self.category.currentTextChanged.connect(self.refresh)
        self.results.currentItemChanged.connect(self._show_doc)
        self.results.itemDoubleClicked.connect(lambda _item: self._choose(False))
        self.use_button.clicked.connect(lambda: self._choose(False))
        self.chain_button.clicked.connect(lambda: self._choose(True))
        self.refresh()

    def refresh(self) -> None:
        category = self.category.currentText()
        entries = self.model.search(self.search.text(), None if category == ALL else category)
        self.results.clear()
        for entry in entries:
            item = QListWidgetItem(f"{entry.name}  ({entry.category})")
            item.setData(Qt.ItemDataRole.UserRole, entry.name)
            item.setToolTip(entry.summary)
            self.results.addItem(item)
        if entries:
            self.results.setCurrentRow(0)
        else:
            self.doc.setText("No function matches.")

    def select(self, name: str) -> None:
        for row in range(self.results.count()):
            if self.results.item(row).data(Qt.ItemDataRole.UserRole) == name:
                self.results.setCurrentRow(row)
                return

    def current(self) -> str | None:
        item = self.results.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else None

    def _show_doc(self, item: QListWidgetItem | None, _previous=None) -> None:
        if item is None:
            return
        entry = self.model.catalog.get(item.data(Qt.ItemDataRole.UserRole))
        params = ", ".join(f.name for f in entry.fields) or "no options"
        self.doc.setText(f"<b>{entry.name}</b> ({entry.category}) — options: {params}<br>"
                         + "<br>".join(entry.doc.strip().split("\n\n")[0].splitlines()))

    def _choose(self, add: bool) -> None:
        name = self.current()
        if name:
            self.chosen.emit(name, add)
