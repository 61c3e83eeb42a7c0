"""``openhcs run`` and ``openhcs demo``.

``run`` executes a pipeline over a plate in this process (or, with ``--server``, through an
execution server) with live per-well progress. Ctrl-C cancels gracefully; a second
Ctrl-C forces (kills workers still busy). Exit codes: 0 complete, 1 failed, 2 bad input,
3 cancelled.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import Any

EXIT_CODES = {"complete": 0, "failed": 1, "cancelled": 3}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a pipeline over a plate, with live progress")
    p.add_argument("plate", help="plate folder (ImageXpress or Opera Phenix layout)")
    p.add_argument("--pipeline", help="a .py file defining pipeline_steps (default: the demo pipeline)")
    p.add_argument("--workers", type=int, help="parallel wells")
    p.add_argument("--mode", choices=["threads", "processes", "dask"], help="execution mode")
    p.add_argument("--wells", help="comma-separated wells, e.g. A01,B03")
    p.add_argument("--output-dir", help="where results go (default: <plate>_outputs beside the plate)")
    p.add_argument("--server", help="run through an execution server at [HOST:]PORT")
    p.set_defaults(handler=cmd_run)

    d = sub.add_parser("demo", help="make the demo plate and run the default pipeline through a server")
    d.add_argument("--dest", default="openhcs_demo", help="folder for the demo plate (default ./openhcs_demo)")
    d.add_argument("--rows", type=int, default=4)
    d.add_argument("--cols", type=int, default=6)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--workers", type=int, default=2)
    d.add_argument("--port", type=int, default=7777, help="execution server port (auto-started)")
    d.add_argument("--local", action="store_true", help="run in this process, without a server")
    d.add_argument("--real", action="store_true", help="build the plate from real nuclei images (ndev-sampledata)")
    d.set_defaults(handler=cmd_demo)


def _config(args: argparse.Namespace):
    from openhcs.core.config import GlobalPipelineConfig

    kwargs: dict[str, Any] = {}
    if args.workers is not None:
        kwargs["num_workers"] = args.workers
    if getattr(args, "mode", None):
        kwargs["mode"] = args.mode
    if getattr(args, "output_dir", None):
        kwargs["output_dir"] = args.output_dir
    return GlobalPipelineConfig(**kwargs)


def _load_steps(pipeline_file: str | None, plate_path: Path):
    if pipeline_file:
        from openhcs.codegen import load_pipeline_file

        return load_pipeline_file(pipeline_file)
    from openhcs.demo.pipeline import default_pipeline

    return list(default_pipeline())


def cmd_run(args: argparse.Namespace) -> int:
    from openhcs.core.orchestrator.compiler import CompileError
    from openhcs.io.errors import PlateError

    plate = Path(args.plate)
    wells = [w for w in args.wells.split(",")] if args.wells else None
    try:
        steps = _load_steps(args.pipeline, plate)
        config = _config(args)
        if args.server:
            host, _, port = args.server.rpartition(":")
            return run_via_server(plate, steps, config, wells, host or "localhost", int(port))
        return run_in_process(plate, steps, config, wells)
    except (PlateError, CompileError, ValueError, OSError) as exc:
        print(f"openhcs: {exc}", file=sys.stderr)
        return 2


def run_in_process(plate: Path, steps, config, wells) -> int:
    from openhcs.cli.progress_view import ProgressView
    from openhcs.core.orchestrator.orchestrator import PipelineOrchestrator

    orch = PipelineOrchestrator(plate, global_config=config)
    compiled = orch.compile_pipelines(steps, wells)
    view = ProgressView(len(compiled.wells))
    orch.progress_callback = view.update
    box: dict[str, Any] = {}
    done = threading.Event()

    def work() -> None:
        try:
            box["result"] = orch.execute_compiled_plate(compiled)
        except BaseException as exc:  # reported below, on the main thread
            box["error"] = exc
        finally:
            done.set()

    worker = threading.Thread(target=work, name="openhcs-run")
    with view:
        worker.start()
        interrupts = 0
        while not done.is_set():
            try:
                done.wait()
            except KeyboardInterrupt:
                interrupts += 1
                force = interrupts > 1
                view.message("[yellow]forcing cancellation[/yellow]" if force else
                             "[yellow]cancelling (Ctrl-C again to force)[/yellow]")
                orch.cancel(force=force)
    worker.join()
    orch.shutdown()
    if "error" in box:
        raise box["error"]
    result = box["result"]
    _print_result(result.to_dict(), result.status)
    return EXIT_CODES[result.status]


def run_via_server(plate: Path, steps, config, wells, host: str, port: int) -> int:
    from openhcs.cli.progress_view import ProgressView
    from openhcs.runtime.zmq_execution_client import ZMQExecutionClient

    view = ProgressView(None)

    def on_progress(message: dict) -> None:
        if message.get("status") == "planned":  # the server compiled the run: now we know its wells
            view.set_total(len((message.get("summary") or {}).get("wells") or []) or None)
        elif message.get("well_id") and message.get("step"):
            view.update(message["well_id"], message["step"], message["status"], message.get("metadata") or {})

    with ZMQExecutionClient(host=host, port=port, persistent=False, progress_callback=on_progress) as client:
        client.connect(timeout=30)
        with view:
            submitted = client.submit_pipeline(
                plate_id=str(plate.resolve()), pipeline_steps=steps, global_config=config, wells=wells
            )
            execution_id = submitted["execution_id"]
            view.message(f"execution {execution_id} accepted by server {host}:{port}")
            interrupts = 0
            while True:
                try:
                    response = client.wait_for_completion(execution_id)
                    break
                except KeyboardInterrupt:
                    interrupts += 1
                    view.message("[yellow]cancelling (Ctrl-C again to force)[/yellow]" if interrupts == 1
                                 else "[yellow]forcing cancellation[/yellow]")
                    client.cancel_execution(execution_id, force=interrupts > 1)
    _print_result(response.get("results") or {}, response["status"], response.get("message"))
    return EXIT_CODES.get(response["status"], 1)


def _print_result(result: dict, status: str, message: str | None = None) -> None:
    from rich.console import Console

    console = Console()
    colour = {"complete": "green", "failed": "red", "cancelled": "yellow"}.get(status, "white")
    console.print(f"[bold {colour}]run {status}[/bold {colour}]" + (f": {message}" if message else ""))
    if result:
        console.print(
            f"  wells: {len(result.get('completed', []))} complete, {len(result.get('failed', []))} failed, "
            f"{len(result.get('cancelled', []))} cancelled"
        )
        console.print(f"  results: {result.get('output_dir')}")
        if result.get("summary_path"):
            console.print(f"  plate summary: {result['summary_path']}")
        wall = (result.get("metrics") or {}).get("wall_time_s")
        if wall is not None:
            console.print(f"  wall time: {wall:.2f} s")


def cmd_demo(args: argparse.Namespace) -> int:
    from rich.console import Console

    from openhcs.demo.pipeline import default_pipeline
    from openhcs.demo.plate import make_demo_plate

    console = Console(stderr=True)
    dest = Path(args.dest).resolve() / "plate"
    _clear_previous_demo(dest)
    console.print(f"writing the demo plate to {dest} ...")
    if getattr(args, "real", False):
        from openhcs.demo.real import make_real_plate

        demo = make_real_plate(dest, rows=args.rows, cols=args.cols, seed=args.seed)
    else:
        demo = make_demo_plate(dest, rows=args.rows, cols=args.cols, seed=args.seed)
    steps = list(default_pipeline(grid=demo.grid, overlap=demo.overlap))
    from openhcs.core.config import GlobalPipelineConfig

    config = GlobalPipelineConfig(num_workers=args.workers, mode="processes")
    if args.local:
        code = run_in_process(dest, steps, config, None)
    else:
        console.print(f"starting an execution server on port {args.port} (stopped when the demo ends)")
        code = run_via_server(dest, steps, config, None, "localhost", args.port)
    _report_accuracy(dest, demo, console)
    return code


def _clear_previous_demo(plate: Path) -> None:
    """Remove an earlier demo plate and its results — only folders the demo wrote."""
    import shutil

    outputs = Path(f"{plate}_outputs")
    if (plate / "ground_truth.csv").exists():
        shutil.rmtree(plate)
    if (outputs / "summary.csv").exists():
        shutil.rmtree(outputs)


def _report_accuracy(plate: Path, demo, console) -> None:
    import csv

    summary = Path(f"{plate}_outputs") / "summary.csv"
    if not summary.exists():
        return
    with open(summary) as f:
        rows = {r["well"]: r for r in csv.DictReader(f)}
    errors = []
    for well, truth in demo.ground_truth.items():
        count = rows.get(well, {}).get("object_count")
        if count:
            errors.append(abs(int(count) - truth) / max(truth, 1))
    if errors:
        console.print(
            f"  nuclei counts vs ground truth: mean error {100 * sum(errors) / len(errors):.1f}%, "
            f"worst {100 * max(errors):.1f}% over {len(errors)} wells"
        )
