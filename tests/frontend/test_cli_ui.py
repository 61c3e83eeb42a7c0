"""``openhcs gui`` and ``openhcs tui`` are registered and pass their options on."""

from openhcs.cli import build_parser
from openhcs.cli.ui import _argv, cmd_gui, cmd_tui


def test_gui_and_tui_commands_parse_plates_port_and_pipeline():
    parser = build_parser()
    args = parser.parse_args(["tui", "p1", "p2", "--port", "7790", "--pipeline", "x.py"])
    assert args.handler is cmd_tui
    assert _argv(args) == ["p1", "p2", "--port", "7790", "--host", "localhost", "--pipeline", "x.py"]
    args = parser.parse_args(["gui"])
    assert args.handler is cmd_gui and _argv(args) == ["--port", "7777", "--host", "localhost"]
