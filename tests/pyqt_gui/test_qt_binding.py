"""The Qt binding must not corrupt reference counts when it calls our slots.

PySide6 6.12.0 on Python < 3.12 drops a reference to ``None`` (or ``True``) each time C++
calls a Python slot or ``Signal.emit`` returns; after some tens of thousands of progress
updates the interpreter aborts ("deallocating None"). Python 3.12+ makes ``None``
immortal, which hides it. This fails on an affected install, so CI cannot go green on one.
"""

import sys

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QPushButton


class _Emitter(QObject):
    value = Signal(object)


def test_signals_and_slots_keep_none_and_true_alive(qtbot):
    emitter = _Emitter()
    received = []
    emitter.value.connect(received.append)
    button = QPushButton()
    button.clicked.connect(lambda: received.append("click"))
    before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(200):
        emitter.value.emit(None)
        button.click()
    after = sys.getrefcount(None), sys.getrefcount(True)
    assert len(received) == 400
    assert after[0] - before[0] > -50 and after[1] - before[1] > -50, (
        f"the Qt binding leaks references to None/True: {before} -> {after}; "
        "use PySide6 other than 6.12.0 (or Python >= 3.12)")
