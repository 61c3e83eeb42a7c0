"""Basic functionality of the ZMQ execution pattern, as a runnable script.

Connect (spawning a server), execute a pipeline with live progress, submit a second run
and cancel it, then disconnect (which stops the server this script started).

    python examples/test_zmq_execution_pattern.py [--port 7777] [--plate PLATE]

Without ``--plate`` a small synthetic demo plate is written to a temporary folder.
Exits 0 when every check passed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
from pathlib import Path

from openhcs.core.config import GlobalPipelineConfig
from openhcs.demo.pipeline import default_pipeline
from openhcs.demo.plate import make_demo_plate
from openhcs.runtime.zmq_execution_client import ZMQExecutionClient


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=7777)
    parser.add_argument("--plate", help="plate folder (default: a fresh demo plate)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        plate = Path(args.plate) if args.plate else Path(tmp) / "plate"
        if not args.plate:
            make_demo_plate(plate, rows=2, cols=3, image_size=96)
        steps = default_pipeline()
        config = GlobalPipelineConfig(num_workers=args.workers, mode="processes")
        events: list[dict] = []
        first_well = threading.Event()

        def on_progress(message: dict) -> None:
            events.append(message)
            if message.get("type") == "progress":
                print(f"  [{message.get('well_id')}] {message.get('step')}: {message.get('status')}")
                first_well.set()

        client = ZMQExecutionClient(port=args.port, persistent=False, progress_callback=on_progress)
        print(f"connecting to (or starting) an execution server on port {args.port}")
        client.connect(timeout=30)
        try:
            print(f"ping: {client.ping()}")
            print("executing the demo pipeline")
            response = client.execute_pipeline(plate_id=str(plate), pipeline_steps=steps,
                                               global_config=config)
            check(response["status"] == "complete", f"run complete ({response['message']})")
            run_events = [e for e in events if e["execution_id"] == response["execution_id"]]
            check([e["seq"] for e in run_events] == list(range(1, response["final_seq"] + 1)),
                  f"{len(run_events)} progress events in order, no gaps")

            print("submitting a second run and cancelling it")
            first_well.clear()
            accepted = client.submit_pipeline(plate_id=str(plate), pipeline_steps=steps,
                                              global_config=config)
            first_well.wait(timeout=60)
            reply = client.cancel_execution(accepted["execution_id"])
            check(reply["status"] == "ok", f"cancel answered: {reply['state']}")
            final = client.wait_for_completion(accepted["execution_id"], timeout=120)
            check(final["status"] in ("cancelled", "complete"), f"second run ended {final['status']}")
        finally:
            client.disconnect()
            print("disconnected (the server this script started is stopped)")
    print("PASS")
    return 0


def check(condition: bool, what: str) -> None:
    print(("ok   " if condition else "FAIL ") + what)
    if not condition:
        raise SystemExit(1)


if __name__ == "__main__":
    sys.exit(main())
