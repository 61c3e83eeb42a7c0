"""``openhcs functions``: the processing functions a pipeline can use, with their contracts.

Without ``--server`` the catalog of this installation is listed (built in this process);
with ``--server [HOST:]PORT`` the catalog of that running execution server, which is what
its runs can use (its own plugins included).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "functions",
        help="list the processing functions (name, category, contract, summary)",
        description="List the processing functions pipelines can use: built-ins, scikit-image, "
                    "CellProfiler-style measurements and plugins.",
    )
    p.add_argument("--search", metavar="TEXT", help="only functions whose name, category, contract or "
                   "summary contain every word of TEXT (case-insensitive)")
    p.add_argument("--category", help="only this category (e.g. skimage.filters, measurement)")
    p.add_argument("--server", metavar="[HOST:]PORT", help="ask the execution server at [HOST:]PORT")
    p.add_argument("--json", action="store_true", help="print JSON entries with every parameter")
    p.set_defaults(handler=run_functions_command)


def _local(search: str | None, category: str | None) -> list[dict[str, Any]]:
    from openhcs.processing.registry import list_functions, load_plugins
    from openhcs.runtime.catalog import to_entry
    from openhcs.runtime.protocol import to_dict

    load_plugins()
    return [to_dict(to_entry(info), drop_none=False) for info in list_functions(category, search)]


def _remote(address: str, search: str | None, category: str | None) -> list[dict[str, Any]]:
    from openhcs.runtime.connection import find_server, is_loopback
    from openhcs.runtime.zmq_execution_client import ZMQExecutionClient

    host, _, port = address.rpartition(":")
    host = host or "localhost"
    try:
        port_number = int(port)
    except ValueError:
        raise SystemExit(f"openhcs functions: --server expects [HOST:]PORT, got {address!r}") from None
    if is_loopback(host) and find_server(port_number) is None:  # listing must not start a server
        raise SystemExit(f"openhcs functions: no execution server on port {port_number}")
    client = ZMQExecutionClient(host=host, port=port_number, timeout=10.0, retries=1)
    client.connect(timeout=10)
    try:
        return client.list_functions(search=search, category=category)
    finally:
        client.disconnect()


def run_functions_command(args: argparse.Namespace) -> int:
    if args.server:
        from openhcs.runtime.zmq_base import ServerError, ServerUnavailable

        try:
            entries = _remote(args.server, args.search, args.category)
        except (ServerUnavailable, ServerError, TimeoutError) as exc:
            print(f"openhcs functions: {exc}", file=sys.stderr)
            return 1
    else:
        entries = _local(args.search, args.category)
    if args.json:
        print(json.dumps(entries, indent=2, default=str))
        return 0
    if not entries:
        print("no functions match" + (f" {args.search!r}" if args.search else ""), file=sys.stderr)
        return 1
    _print_table(entries)
    return 0


def _print_table(entries: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console() if sys.stdout.isatty() else Console(width=200)
    table = Table(show_lines=False, title=f"{len(entries)} functions")
    for column in ("name", "category", "contract", "summary"):
        table.add_column(column, overflow="fold" if column == "summary" else "ellipsis",
                         no_wrap=column != "summary")
    for e in entries:
        table.add_row(e["name"], e["category"], e["contract"], e["summary"])
    console.print(table)
