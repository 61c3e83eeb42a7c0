"""``openhcs server start|stop|list|status|logs|keys`` and ``openhcs cancel ID``.

Servers are found through their connection files only, and stopped by their recorded
pid (polite ``shutdown`` request, then SIGTERM, then SIGKILL) — never by port scans or
process names. Heavy modules are imported inside the handlers so ``openhcs --help``
stays fast.
"""

from __future__ import annotations

import argparse
import sys
import time

DEFAULT_PORT = 7777


def register(subparsers: argparse._SubParsersAction) -> None:
    server = subparsers.add_parser("server", help="start, stop and inspect execution servers")
    sub = server.add_subparsers(dest="server_command", metavar="ACTION")
    server.set_defaults(handler=lambda args: (server.print_help(), 2)[1])

    p = sub.add_parser("start", help="start a detached (persistent) execution server")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--host", default="127.0.0.1",
                   help="bind address; non-loopback needs CURVE keys (`openhcs server keys`)")
    p.add_argument("--workers", type=int, help="worker processes in the shared pool")
    p.add_argument("--mode", choices=["threads", "processes", "dask"], help="default execution mode")
    p.add_argument("--dask-scheduler", help="Dask scheduler address (alone: dask is the default mode)")
    p.add_argument("--max-concurrent-runs", type=int, default=1)
    p.add_argument("--log-file", help="log file (default: log_dir()/server-PORT.log)")
    p.add_argument("--foreground", action="store_true", help="run in this terminal instead")
    p.set_defaults(handler=cmd_start)

    p = sub.add_parser("stop", help="stop a server by its recorded pid")
    p.add_argument("--port", type=int, default=None, help=f"server port (default {DEFAULT_PORT})")
    p.add_argument("--all", action="store_true", help="stop every server with a connection file")
    p.add_argument("--force", action="store_true", help="skip the polite request: SIGTERM then SIGKILL")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait at each stage")
    p.set_defaults(handler=cmd_stop)

    p = sub.add_parser("list", help="list servers and whether they answer")
    p.set_defaults(handler=cmd_list)

    p = sub.add_parser("status", help="a server's runs (or one run)")
    p.add_argument("execution_id", nargs="?")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--host", default="localhost")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_status)

    p = sub.add_parser("logs", help="print the end of a server's log")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("-n", "--lines", type=int, default=50)
    p.set_defaults(handler=cmd_logs)

    p = sub.add_parser("keys", help="create CURVE keys for servers bound to non-loopback hosts")
    p.add_argument("--dir", help="key folder (default data_dir()/keys)")
    p.add_argument("--force", action="store_true", help="replace existing keys")
    p.set_defaults(handler=cmd_keys)

    c = subparsers.add_parser("cancel", help="cancel a run (or some of its wells)")
    c.add_argument("execution_id")
    c.add_argument("--wells", help="comma-separated wells, e.g. A01,B02")
    c.add_argument("--force", action="store_true", help="kill workers still busy after no grace")
    c.add_argument("--port", type=int, help="server port (default: search every local server)")
    c.add_argument("--host", default="localhost")
    c.set_defaults(handler=cmd_cancel)


def _err(message: str) -> None:
    print(f"openhcs: {message}", file=sys.stderr)


def cmd_start(args: argparse.Namespace) -> int:
    from openhcs.runtime.connection import find_server
    from openhcs.runtime.lifecycle import SpawnError, spawn_server

    extra = ["--max-concurrent-runs", str(args.max_concurrent_runs)]
    if args.workers:
        extra += ["--workers", str(args.workers)]
    if args.mode:
        extra += ["--mode", args.mode]
    if args.dask_scheduler:
        extra += ["--dask-scheduler", args.dask_scheduler]
    if args.log_file:
        extra += ["--log-file", args.log_file]
    if args.foreground:
        from openhcs.runtime.zmq_execution_server_launcher import main

        return main(["--port", str(args.port), "--host", args.host, "--persistent", *extra])
    existing = find_server(args.port)
    if existing is not None:
        _err(f"a server already runs on port {args.port} (pid {existing.pid})")
        return 1
    try:
        proc = spawn_server(args.port, host=args.host, persistent=True, args=extra)
    except SpawnError as exc:
        _err(str(exc))
        return 1
    info = proc.info
    print(f"execution server started: pid {info.pid}, {info.host} data port {info.data_port}, "
          f"control port {info.control_port}")
    if info.log_file:
        print(f"log: {info.log_file}")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from openhcs.runtime.connection import find_server, find_servers
    from openhcs.runtime.lifecycle import stop_process, stop_server

    if args.all:
        targets = find_servers()
    else:
        info = find_server(args.port or DEFAULT_PORT)
        targets = [info] if info else []
    if not targets:
        _err("no running server found" + ("" if args.all else f" on port {args.port or DEFAULT_PORT}"))
        return 1
    for info in targets:
        if args.force:
            how = stop_process(info.pid, ask=None, term_wait=args.timeout, create_time=info.pid_create_time)
            from openhcs.runtime.connection import remove_connection_file

            remove_connection_file(info.data_port, info.pid)
        else:
            how = stop_server(info, wait=args.timeout, term_wait=args.timeout)
        print(f"server on port {info.data_port} (pid {info.pid}): {how}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from openhcs.runtime.connection import find_servers
    from openhcs.runtime.zmq_base import ping_server

    servers = find_servers()
    if not servers:
        print("no execution servers running")
        return 0
    print(f"{'PORT':>6} {'CONTROL':>7} {'PID':>8} {'HOST':<15} {'STATUS':<14} {'UPTIME':>9} KIND")
    for info in servers:
        pong = ping_server(info, timeout=1.0)
        status = f"ok ({pong.active_runs} running)" if pong else "not answering"
        uptime = f"{time.time() - info.started_at:8.0f}s"
        kind = "persistent" if info.persistent else "owned"
        print(f"{info.data_port:>6} {info.control_port:>7} {info.pid:>8} {info.host:<15} {status:<14} "
              f"{uptime:>9} {kind}")
    return 0


def _client(host: str, port: int):
    from openhcs.runtime.zmq_execution_client import ZMQExecutionClient

    return ZMQExecutionClient(host=host, port=port, timeout=3.0, retries=1)


def _attach(host: str, port: int):
    """Connect without spawning: a status command must not start a server."""
    from openhcs.runtime.connection import find_server, is_loopback

    if is_loopback(host) and find_server(port) is None:
        return None
    client = _client(host, port)
    client.connect(timeout=5)
    return client


def cmd_status(args: argparse.Namespace) -> int:
    import json

    from openhcs.runtime.zmq_base import ServerUnavailable

    try:
        client = _attach(args.host, args.port)
    except ServerUnavailable as exc:
        _err(str(exc))
        return 1
    if client is None:
        _err(f"no server on port {args.port}")
        return 1
    try:
        status = client.get_status(args.execution_id)
    finally:
        client.disconnect()
    if args.json:
        print(json.dumps(status, indent=2, default=str))
        return 0 if status["status"] == "ok" else 1
    if status["status"] != "ok":
        _err(status.get("message") or status["status"])
        return 1
    server = status.get("server") or {}
    print(f"server pid {server.get('pid')} port {server.get('port')}: {server.get('active_runs')} running, "
          f"{server.get('queued_runs')} queued, up {server.get('uptime_s')}s")
    runs = [status["execution"]] if status.get("execution") else status.get("executions") or []
    for run in runs:
        prog = run.get("progress") or {}
        print(f"  {run['execution_id']}  {run['state']:<10} wells {prog.get('wells_done', 0)} done "
              f"({prog.get('wells_failed', 0)} failed, {prog.get('wells_cancelled', 0)} cancelled)  "
              f"{run.get('plate_id')}  {run.get('message') or ''}")
        if run.get("error") and args.execution_id:
            print(f"    error: {run['error']}")
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    from collections import deque
    from pathlib import Path

    from openhcs.runtime.connection import find_server
    from openhcs.runtime.paths import log_dir

    info = find_server(args.port)
    path = Path(info.log_file) if info and info.log_file else log_dir() / f"server-{args.port}.log"
    if not path.exists():
        _err(f"no log at {path}")
        return 1
    with open(path, errors="replace") as fh:
        for line in deque(fh, maxlen=max(1, args.lines)):
            print(line, end="")
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from pathlib import Path

    from openhcs.runtime.curve import create_keys, have_server_keys

    directory = Path(args.dir) if args.dir else None
    existed = have_server_keys(directory)
    folder = create_keys(directory, overwrite=args.force)
    print(("existing" if existed and not args.force else "created") + f" CURVE keys in {folder}")
    print(f"  server secret: {folder / 'server.key_secret'} (keep on the server)")
    print(f"  client secret: {folder / 'client.key_secret'} (copy to client machines' key folder)")
    print(f"  authorized clients: {folder / 'authorized'}")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from openhcs.runtime.connection import find_servers
    from openhcs.runtime.zmq_base import ServerUnavailable

    wells = [w.strip() for w in args.wells.split(",") if w.strip()] if args.wells else None
    ports = [args.port] if args.port else [i.data_port for i in find_servers()]
    if not ports:
        _err("no running server found")
        return 1
    for port in ports:
        try:
            client = _attach(args.host, port)
        except ServerUnavailable as exc:
            _err(f"port {port}: {exc}")
            continue
        if client is None:
            continue
        try:
            reply = client.cancel_execution(args.execution_id, axis_ids=wells, force=args.force)
        finally:
            client.disconnect()
        if reply["status"] == "ok":
            what = f"wells {', '.join(wells)} of " if wells else ""
            print(f"cancelling {what}run {args.execution_id} on port {port}: {reply.get('state')} "
                  f"{reply.get('message') or ''}".rstrip())
            return 0
    _err(f"run {args.execution_id} not found on any server")
    return 1
