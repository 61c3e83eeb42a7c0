"""``python -m openhcs.pyqt_gui.main``: the PySide6 plate manager."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m openhcs.pyqt_gui.main", description="openhcs plate manager (GUI)")
    p.add_argument("plates", nargs="*", help="plate folders to add")
    p.add_argument("--port", type=int, default=7777, help="execution server port (spawned if none runs)")
    p.add_argument("--host", default="localhost")
    p.add_argument("--pipeline", help="pipeline .py file (default: the demo pipeline)")
    args = p.parse_args(argv)
    from PySide6.QtWidgets import QApplication

    from openhcs.pyqt_gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow(port=args.port, host=args.host)
    if args.pipeline:
        window.controller.set_pipeline(args.pipeline)
    for plate in args.plates:
        window.controller.add_plate(plate)
    window.show()
    app.aboutToQuit.connect(window.shutdown)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
