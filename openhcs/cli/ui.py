"""``openhcs gui`` (PySide6) and ``openhcs tui`` (Textual): the plate manager front ends."""

from __future__ import annotations

import argparse


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("plates", nargs="*", help="plate folders to add")
    p.add_argument("--port", type=int, default=7777, help="execution server port (spawned if none runs)")
    p.add_argument("--host", default="localhost")
    p.add_argument("--pipeline", help="pipeline .py file (default: the demo pipeline)")


def register(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser("gui", help="the PySide6 plate manager (needs openhcs[gui])")
    _common(g)
    g.set_defaults(handler=cmd_gui)
    t = sub.add_parser("tui", help="the Textual plate manager in the terminal (needs openhcs[tui])")
    _common(t)
    t.set_defaults(handler=cmd_tui)


def _argv(args: argparse.Namespace) -> list[str]:
    argv = [*args.plates, "--port", str(args.port), "--host", args.host]
    return argv + (["--pipeline", args.pipeline] if args.pipeline else [])


def cmd_gui(args: argparse.Namespace) -> int:
    try:
        from openhcs.pyqt_gui.main import main
    except ImportError as exc:
        print(f"openhcs gui needs PySide6: pip install 'openhcs[gui]' ({exc})")
        return 2
    return main(_argv(args))


def cmd_tui(args: argparse.Namespace) -> int:
    try:
        from openhcs.textual_tui.app import main
    except ImportError as exc:
        print(f"openhcs tui needs Textual: pip install 'openhcs[tui]' ({exc})")
        return 2
    return main(_argv(args))
