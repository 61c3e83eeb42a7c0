"""``openhcs history``: what ran, how it ended, and why it failed.

Reads the SQLite run history that execution servers write (see
``openhcs.runtime.history``), so it works with no server running, for runs of servers
that have long since stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from openhcs.runtime.history import RunHistory, default_history_path
from openhcs.runtime.runs import TERMINAL_STATES, RunState

_STATE_STYLE = {
    "queued": "cyan",
    "running": "blue",
    "cancelling": "yellow",
    "complete": "green",
    "failed": "bold red",
    "cancelled": "yellow",
    "interrupted": "magenta",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "history",
        help="list past and current runs, or show one run in detail",
        description="List runs recorded by execution servers (newest first), or show one.",
    )
    parser.add_argument("execution_id", nargs="?", metavar="ID",
                        help="show this run (a unique prefix is enough)")
    parser.add_argument("--limit", type=int, default=50, metavar="N",
                        help="show at most N runs (default 50)")
    parser.add_argument("--state", choices=[s.value for s in RunState], metavar="S",
                        help="only runs in state S: " + ", ".join(s.value for s in RunState))
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--db", type=Path, default=None, help=argparse.SUPPRESS)
    parser.set_defaults(handler=run_history_command)


def run_history_command(args: argparse.Namespace) -> int:
    path = args.db or default_history_path()
    # full width for a terminal; wide enough not to squeeze ids and plates when piped
    console = Console() if sys.stdout.isatty() else Console(width=160)
    if not path.exists():
        if args.json:
            print("null" if args.execution_id else "[]")
        else:
            console.print(f"No runs recorded yet ({path}).")
        return 1 if args.execution_id else 0
    with RunHistory(path) as history:
        if args.execution_id:
            return _show_one(history, args.execution_id, args.json, console)
        runs = history.list(limit=args.limit, state=args.state)
    if args.json:
        print(json.dumps(runs, indent=2, default=str))
    elif not runs:
        console.print("No runs recorded" + (f" in state {args.state}." if args.state else "."))
    else:
        console.print(_runs_table(runs))
    return 0


def _show_one(history: RunHistory, wanted: str, as_json: bool, console: Console) -> int:
    run = history.get(wanted)
    if run is None:
        matches = history.match(wanted, limit=2)
        if len(matches) == 1:
            run = history.get(matches[0])
        else:
            why = "matches several runs" if matches else "matches no recorded run"
            print(f"openhcs history: {wanted!r} {why}", file=sys.stderr)
            return 1
    if as_json:
        print(json.dumps(run, indent=2, default=str))
    else:
        _print_detail(run, console)
    return 0


# ---------------------------------------------------------------------- formatting


def _when(ts: float | None) -> str:
    return "—" if ts is None else datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _duration(run: dict[str, Any]) -> str:
    start, end = run.get("started_at"), run.get("finished_at")
    if start is None:
        return "—"
    if end is None:
        if run.get("state") in TERMINAL_STATES:
            return "—"
        end = time.time()
    seconds = max(0.0, end - start)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def _well_counts(run: dict[str, Any]) -> tuple[int, int, int, int | None]:
    states = list((run.get("wells") or {}).values())
    progress = run.get("progress") or {}
    return (states.count("complete"), states.count("failed"), states.count("cancelled"),
            progress.get("wells_total"))


def _state_text(state: str | None) -> Text:
    return Text(state or "?", style=_STATE_STYLE.get(state or "", ""))


def _runs_table(runs: list[dict[str, Any]]) -> Table:
    table = Table(title="openhcs runs", title_justify="left")
    width = max(len(r["execution_id"]) for r in runs)
    table.add_column("execution id", no_wrap=True, min_width=width)
    table.add_column("plate", overflow="fold", min_width=12)
    table.add_column("state", no_wrap=True)
    table.add_column("started", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    table.add_column("wells ok/failed/cancelled", justify="right", no_wrap=True)
    for run in runs:
        ok, failed, cancelled, total = _well_counts(run)
        wells = f"{ok}/{failed}/{cancelled}" + (f" of {total}" if total is not None else "")
        table.add_row(
            Text(run["execution_id"]), Text(str(run.get("plate_id") or "")),
            _state_text(run.get("state")), _when(run.get("started_at") or run.get("created_at")),
            _duration(run), wells,
        )
    return table


def _print_detail(run: dict[str, Any], console: Console) -> None:
    info = Table.grid(padding=(0, 2))
    info.add_column(style="bold", no_wrap=True)
    info.add_column(overflow="fold")
    ok, failed, cancelled, total = _well_counts(run)
    rows = [
        ("execution id", Text(run["execution_id"])),
        ("request id", Text(str(run.get("request_id") or "—"))),
        ("plate", Text(str(run.get("plate_id") or ""))),
        ("state", _state_text(run.get("state"))),
        ("message", Text(run.get("message") or "")),
        ("submitted", _when(run.get("created_at"))),
        ("started", _when(run.get("started_at"))),
        ("finished", _when(run.get("finished_at"))),
        ("duration", _duration(run)),
        ("wells", f"{ok} complete, {failed} failed, {cancelled} cancelled"
                  + (f" of {total}" if total is not None else "")),
        ("server pid", str(run.get("server_pid") or "—")),
    ]
    for key, value in rows:
        info.add_row(key, value)
    console.print(info)

    wells = run.get("wells") or {}
    if wells:
        table = Table(title="wells", title_justify="left")
        table.add_column("well", no_wrap=True)
        table.add_column("state", no_wrap=True)
        table.add_column("steps done", justify="right")
        table.add_column("error", overflow="fold")
        steps_done, errors = run.get("steps_done") or {}, run.get("well_errors") or {}
        steps_total = run.get("total_steps")
        for well, state in wells.items():
            done = str(steps_done.get(well, 0)) + (f"/{steps_total}" if steps_total else "")
            table.add_row(well, _state_text(state), done, Text(errors.get(well, "")))
        console.print(table)
    if run.get("error"):
        console.print(Text("error: ", style="bold red") + Text(str(run["error"])))
    if run.get("traceback"):
        console.print(Text("traceback:", style="bold"))
        console.print(Text(str(run["traceback"])), soft_wrap=True)
