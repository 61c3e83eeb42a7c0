"""``python -m openhcs.runtime.zmq_execution_server_launcher --port P [...]``

Starts one execution server in this process. Once its sockets are bound and its
connection file written it prints a single ``OPENHCS_READY {json}`` line (what
``lifecycle.spawn_server`` waits for), then points stdout/stderr at the log file so a
detached (``--persistent``) server never writes into a pipe whose reader has gone.

SIGTERM and SIGINT request a graceful stop (runs cancelled, pool closed, connection
file removed). Without ``--persistent`` the launcher's parent pid is watched and the
server stops when its owner dies, so an owned server never outlives its client.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m openhcs.runtime.zmq_execution_server_launcher",
                                description="Run an openhcs execution server.")
    p.add_argument("--port", type=int, default=7777, help="data (PUB) port; control is port+1000")
    p.add_argument("--host", default="127.0.0.1",
                   help="bind address (non-loopback requires CURVE keys: `openhcs server keys`)")
    p.add_argument("--persistent", action="store_true", help="detached server that outlives its client")
    p.add_argument("--log-file", help="log file (default: log_dir()/server-PORT.log)")
    p.add_argument("--workers", type=int, help="worker processes in the shared pool")
    p.add_argument("--mode", choices=["threads", "processes", "dask"], help="default execution mode")
    p.add_argument("--dask-scheduler", help="Dask scheduler address for dask-mode runs "
                   "(alone, it makes dask the default mode)")
    p.add_argument("--max-concurrent-runs", type=int, default=1, help="runs executing at once")
    p.add_argument("--parent-pid", type=int, help="stop when this process (the owner) exits")
    p.add_argument("--curve-dir", help="folder with CURVE keys (default data_dir()/keys)")
    p.add_argument("--log-level", default="INFO")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from openhcs.runtime.paths import log_dir

    log_file = Path(args.log_file) if args.log_file else log_dir() / f"server-{args.port}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(filename=str(log_file), level=args.log_level.upper(),
                        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("openhcs.server")

    from openhcs.runtime.curve import CurveKeysMissing
    from openhcs.runtime.zmq_execution_server import ZMQExecutionServer

    server = ZMQExecutionServer(
        args.port, args.host, num_workers=args.workers, mode=args.mode,
        max_concurrent_runs=args.max_concurrent_runs, parent_pid=args.parent_pid,
        dask_scheduler=args.dask_scheduler,
        persistent=args.persistent, log_file=str(log_file),
        curve_dir=Path(args.curve_dir) if args.curve_dir else None,
    )
    try:
        info = server.bind()
    except CurveKeysMissing as exc:
        print(f"openhcs server: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # e.g. address in use
        print(f"openhcs server: cannot start on {args.host}:{args.port}: {exc}", file=sys.stderr)
        log.error("cannot start: %s", exc)
        return 1

    def on_signal(signum, _frame) -> None:
        log.info("signal %d: stopping", signum)
        server.request_stop(wake=False)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("execution server pid %d on %s ports %d/%d", os.getpid(), info.host, info.data_port,
             info.control_port)
    print("OPENHCS_READY " + json.dumps(info.to_dict()), flush=True)
    _redirect_std_streams(log_file)
    try:
        server.serve_forever()
    except Exception:
        log.exception("server loop crashed")
        return 1
    log.info("execution server pid %d stopped", os.getpid())
    return 0


def _redirect_std_streams(log_file: Path) -> None:
    fd = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


if __name__ == "__main__":
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # Run threads stuck in user code must not keep a stopped server alive.
    os._exit(code)
