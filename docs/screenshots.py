"""Render each main screen of both front ends to PNG in ``docs/screenshots/``.

    QT_QPA_PLATFORM=offscreen python docs/screenshots.py [--designer]

It makes the demo plate, runs the default pipeline on it through a private execution
server (spawned by each UI's client, stopped when the UI closes), and captures:

- Qt: ``widget.grab().save()`` of the Plates tab while running and when done, and of the
  Results, Servers and History tabs;
- Textual: ``app.save_screenshot()`` (SVG) of the same screens, rasterised to PNG with
  cairosvg when it is installed, else with PySide6's ``QSvgRenderer``;
- the pipeline designer of each (``--designer`` makes only those; they need no run).

Runtime and data folders are private temp folders, so no real servers or history show.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

OUT = Path(__file__).resolve().parent / "screenshots"
ROOT = Path(__file__).resolve().parent.parent
SIZE = (150, 48)


def _setup(tmp: Path) -> Path:
    os.environ["OPENHCS_RUNTIME_DIR"] = str(tmp / "runtime")
    os.environ["OPENHCS_DATA_DIR"] = str(tmp / "data")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, str(ROOT))
    from openhcs.demo.plate import make_demo_plate

    return make_demo_plate(tmp / "demo_plate", rows=4, cols=6).path


def _config():
    from openhcs.core.config import GlobalPipelineConfig

    return GlobalPipelineConfig(num_workers=2, mode="threads")


def _free_port() -> int:
    from openhcs.runtime.zmq_base import find_free_port

    return find_free_port()


# --------------------------------------------------------------------------- Qt


def qt_screens(plate: Path) -> list[Path]:
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from openhcs.pyqt_gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    win = MainWindow(port=_free_port(), global_config=_config())
    win.resize(1200, 860)
    win.show()
    ctl = win.controller

    def wait(condition, timeout: float) -> None:
        """Run the Qt event loop until ``condition()`` holds (checked every 100 ms)."""
        loop = QEventLoop()
        ticker = QTimer()
        ticker.timeout.connect(lambda: loop.quit() if condition() else None)
        ticker.start(100)
        deadline = QTimer()
        deadline.setSingleShot(True)
        deadline.timeout.connect(loop.quit)
        deadline.start(int(timeout * 1000))
        if not condition():
            loop.exec()
        ticker.stop()
        deadline.stop()
        if not condition():
            raise TimeoutError("the UI did not reach the expected state")

    def grab(name: str) -> Path:
        app.processEvents()
        path = OUT / f"qt_{name}.png"
        win.grab().save(str(path))
        return path

    shots = []
    try:
        win.plate_manager.plate_path.setText(str(plate))
        win.plate_manager._add_plate()
        win.plate_manager.table.selectRow(0)
        win.plate_manager.action_run_plates()
        wait(lambda: plate in ctl.runs and ctl.runs[plate].counts()["complete"] >= 6, 180)
        shots.append(grab("plates_running"))
        wait(lambda: plate in ctl.results, 300)
        shots.append(grab("plates_done"))
        win.tabs.setCurrentWidget(win.results_view)
        shots.append(grab("results"))
        win.tabs.setCurrentWidget(win.server_view)
        wait(lambda: "server(s) found" in win.server_view.status.text(), 30)
        shots.append(grab("servers"))
        win.tabs.setCurrentWidget(win.history_view)
        wait(lambda: win.history_view.runs.rowCount() > 0, 30)
        shots.append(grab("history"))
    finally:
        win.close()
    return shots


# --------------------------------------------------------------------------- Textual


def svg_to_png(svg: Path, png: Path, width: int = 1600) -> None:
    try:
        import cairosvg
    except ImportError:
        cairosvg = None
    if cairosvg is not None:
        cairosvg.svg2png(url=str(svg), write_to=str(png), output_width=width)
        return
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer
    from PySide6.QtWidgets import QApplication

    QApplication.instance() or QApplication([])
    renderer = QSvgRenderer(str(svg))
    size = renderer.defaultSize()
    height = round(width * size.height() / max(1, size.width()))
    image = QImage(width, height, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.black)
    painter = QPainter(image)
    renderer.render(painter)
    painter.end()
    image.save(str(png))


def textual_screens(plate: Path, tmp: Path) -> list[Path]:
    from textual.widgets import Input

    from openhcs.textual_tui.app import OpenHCSApp

    app = OpenHCSApp(port=_free_port(), global_config=_config())
    shots: list[Path] = []

    async def until(pilot, condition, timeout: float) -> None:
        ready = asyncio.Event()

        def check(*_a) -> None:
            if condition():
                ready.set()

        app.controller.changed.connect(check)
        try:
            check()
            await asyncio.wait_for(ready.wait(), timeout)
        finally:
            app.controller.changed.disconnect(check)
        await pilot.pause()

    def shot(name: str) -> None:
        svg = Path(app.save_screenshot(f"tui_{name}.svg", str(tmp)))
        png = OUT / f"tui_{name}.png"
        svg_to_png(svg, png)
        shots.append(png)

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            app.screen.query_one("#plate-path", Input).value = str(plate)
            await pilot.click("#add-plate")
            await pilot.pause()
            await pilot.click("#run")
            ctl = app.controller
            await until(pilot, lambda: plate in ctl.runs and ctl.runs[plate].counts()["complete"] >= 6, 180)
            shot("plates_running")
            await until(pilot, lambda: plate in ctl.results, 300)
            shot("plates_done")
            await pilot.press("f2")
            await pilot.pause()
            shot("results")
            await pilot.press("f3")
            screen = app.screen
            for _ in range(200):  # the server list fills in from a background request
                await pilot.pause(0.05)
                if "server(s) found" in str(screen.query_one("#servers-status").render()):
                    break
            shot("servers")
            await pilot.press("f4")
            for _ in range(200):
                await pilot.pause(0.05)
                if app.screen.query_one("#history").row_count:
                    break
            await pilot.pause()
            shot("history")

    asyncio.run(scenario())
    return shots


# --------------------------------------------------------------------------- designer


def qt_designer_screens(plate: Path) -> list[Path]:
    """The Designer tab: the default analysis with a one-site preview, then a validation error."""
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from openhcs.pyqt_gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    win = MainWindow(port=_free_port(), global_config=_config())
    win.resize(1200, 860)
    win.show()
    view, model = win.designer_view, win.designer

    def settle(condition) -> None:
        loop, ticker = QEventLoop(), QTimer()
        ticker.timeout.connect(lambda: loop.quit() if condition() else None)
        ticker.start(50)
        if not condition():
            loop.exec()
        ticker.stop()

    def grab(name: str) -> Path:
        app.processEvents()
        path = OUT / f"qt_{name}.png"
        win.grab().save(str(path))
        return path

    try:
        win.controller.add_plate(plate)
        win.tabs.setCurrentWidget(view)
        model.new_default()
        view.steps.setCurrentRow(1)
        model.set_param(1, "radius", "20")
        view.preview()
        settle(lambda: model.status.startswith("after"))
        shots = [grab("designer")]
        view.add_step()
        model.validate(win.dispatcher)
        settle(lambda: bool(model.issues))
        shots.append(grab("designer_issues"))
    finally:
        win.close()
    return shots


def textual_designer_screens(plate: Path, tmp: Path) -> list[Path]:
    from textual.widgets import OptionList

    from openhcs.textual_tui.app import OpenHCSApp

    app = OpenHCSApp(port=_free_port(), global_config=_config())
    shots: list[Path] = []

    async def scenario() -> None:
        async with app.run_test(size=(150, 60)) as pilot:
            app.controller.add_plate(plate)
            await pilot.press("f5")
            await pilot.pause()
            app.designer.new_default()
            await pilot.pause()
            app.screen.query_one("#designer-steps", OptionList).highlighted = 1
            await pilot.pause()
            app.designer.set_param(1, "radius", "20")
            app.designer.validate()
            await pilot.pause()
            svg = Path(app.save_screenshot("tui_designer.svg", str(tmp)))
            png = OUT / "tui_designer.png"
            svg_to_png(svg, png)
            shots.append(png)

    asyncio.run(scenario())
    return shots


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    only_designer = "--designer" in sys.argv[1:]
    with tempfile.TemporaryDirectory(prefix="openhcs-shots-") as tmp_name:
        tmp = Path(tmp_name)
        plate = _setup(tmp)
        shots = [] if only_designer else qt_screens(plate) + textual_screens(plate, tmp)
        shots += qt_designer_screens(plate) + textual_designer_screens(plate, tmp)
    for path in shots:
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
