"""End to end on a plate: the default pipeline through an execution server.

    python examples/test_zmq_with_real_plate.py [PLATE] [--port 7777] [--workers 2]

PLATE is a plate folder (ImageXpress or Opera Phenix layout); without it the demo plate
is generated in a temporary folder. Prints live per-well progress and the run summary;
exits 0 when the run completed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from openhcs.core.config import GlobalPipelineConfig
from openhcs.demo.pipeline import default_pipeline
from openhcs.demo.plate import make_demo_plate
from openhcs.runtime.zmq_execution_client import ZMQExecutionClient


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plate", nargs="?", help="plate folder (default: the demo plate)")
    parser.add_argument("--port", type=int, default=7777)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rows", type=int, default=4, help="demo plate rows")
    parser.add_argument("--cols", type=int, default=6, help="demo plate columns")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        if args.plate:
            plate, steps = Path(args.plate), default_pipeline()
        else:
            plate = Path(tmp) / "plate"
            demo = make_demo_plate(plate, rows=args.rows, cols=args.cols)
            steps = default_pipeline(grid=demo.grid, overlap=demo.overlap)
            print(f"demo plate with {len(demo.ground_truth)} wells at {plate}")

        def on_progress(message: dict) -> None:
            if message.get("type") == "progress" and message.get("step") == "pipeline":
                print(f"  [{message['well_id']}] {message['status']}")

        started = time.perf_counter()
        with ZMQExecutionClient(port=args.port, progress_callback=on_progress) as client:
            response = client.execute_pipeline(
                plate_id=str(plate), pipeline_steps=steps,
                global_config=GlobalPipelineConfig(num_workers=args.workers, mode="processes"),
            )
        elapsed = time.perf_counter() - started
        results = response.get("results") or {}
        print(f"run {response['status']} in {elapsed:.1f}s: {response['message']}")
        if results.get("summary_path"):
            print(f"plate summary: {results['summary_path']}")
        if response["status"] != "complete":
            print(response.get("error") or "", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
