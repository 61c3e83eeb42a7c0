"""Core benchmarks (issue 2), printed as ratios against baselines measured in the same run.

- speedup: demo plate, processes mode, 2 workers vs 1 (pools warmed first, best of 3
  interleaved runs; target >= 1.7x)
- overhead: no-op pipeline over a 1536-well plate of tiny images, orchestrator wall time
  per well minus a bare loop doing the same reads and copies in one process (target <= 2 ms)
- memory: peak RSS (server-side process + largest worker) of a 384-well run vs a 96-well
  run, each in a fresh interpreter (target <= 1.3x)

Run: ``./run python bench/bench_core.py`` (about 2 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

from openhcs.core.config import GlobalPipelineConfig
from openhcs.core.orchestrator.orchestrator import PipelineOrchestrator
from openhcs.core.steps import FunctionStep
from openhcs.io.plate import row_letters
from openhcs.processing import diagnostics

NOOP = [FunctionStep(func=diagnostics.passthrough, name="noop")]
MEASURE = [FunctionStep(func=diagnostics.mean_intensity, name="measure")]


def write_grid_plate(root: Path, rows: int, cols: int, size: int, sites: int = 1) -> Path:
    folder = root / "TimePoint_1"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    image = rng.integers(0, 4000, size=(size, size), dtype=np.uint16)
    for r in range(rows):
        for c in range(1, cols + 1):
            for s in range(1, sites + 1):
                tifffile.imwrite(folder / f"{row_letters(r + 1)}{c:02d}_s{s}_w1.tif", image)
    return root


def timed_run(orch: PipelineOrchestrator, steps) -> float:
    t0 = time.perf_counter()
    result = orch.run(steps)
    assert result.status == "complete", result.to_dict()["failed"]
    return time.perf_counter() - t0


def bench_speedup(tmp: Path) -> dict:
    from openhcs.demo.pipeline import default_pipeline
    from openhcs.demo.plate import make_demo_plate

    demo = make_demo_plate(tmp / "demo", rows=4, cols=6, seed=0)
    steps = list(default_pipeline(grid=demo.grid, overlap=demo.overlap))
    orchs = {}
    for workers in (1, 2):
        config = GlobalPipelineConfig(num_workers=workers, mode="processes", materialization_format="none",
                                      output_dir=str(tmp / f"out{workers}"))
        orchs[workers] = PipelineOrchestrator(demo.path, config)
    try:
        for orch in orchs.values():
            timed_run(orch, steps)  # warm the pools and the caches
        samples: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(3):  # interleaved, so a burst of load hits both sides alike
            for workers, orch in orchs.items():
                samples[workers].append(timed_run(orch, steps))
    finally:
        for orch in orchs.values():
            orch.shutdown()
    times = {w: min(v) for w, v in samples.items()}
    return {"wells": len(demo.wells), "t1_s": times[1], "t2_s": times[2], "speedup": times[1] / times[2]}


def bench_overhead(tmp: Path) -> dict:
    plate = write_grid_plate(tmp / "p1536", 32, 48, size=16)
    config = GlobalPipelineConfig(num_workers=2, mode="processes", materialization_format="none",
                                  output_dir=str(tmp / "o1536"))
    orch = PipelineOrchestrator(plate, config)
    try:
        timed_run(orch, NOOP)
        wall = min(timed_run(orch, NOOP) for _ in range(2))
    finally:
        orch.shutdown()
    files = sorted((plate / "TimePoint_1").glob("*.tif"))
    t0 = time.perf_counter()
    for f in files:  # the work itself, with no orchestration: read + copy
        diagnostics.passthrough(np.asarray(tifffile.imread(f))[None])
    bare = time.perf_counter() - t0
    n = len(files)
    return {"wells": n, "orchestrated_s": wall, "bare_loop_s": bare,
            "overhead_ms_per_well": 1000 * (wall - bare / 2) / n,  # bare work split over 2 workers
            "ms_per_well": 1000 * wall / n}


def memory_case(rows: int, cols: int) -> None:
    """Child mode: run one plate and print peak RSS figures as JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        plate = write_grid_plate(Path(tmp) / "p", rows, cols, size=256, sites=2)
        config = GlobalPipelineConfig(num_workers=2, mode="processes", materialization_format="none")
        orch = PipelineOrchestrator(plate, config)
        try:
            result = orch.run(MEASURE)
        finally:
            orch.shutdown()
        parent = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        worker = result.metrics["peak_rss_mb"]
        print(json.dumps({"parent_mb": parent, "worker_mb": worker, "status": result.status}))


def bench_memory() -> dict:
    out = {}
    for wells, (rows, cols) in ((96, (8, 12)), (384, (16, 24))):
        proc = subprocess.run([sys.executable, __file__, "--memory-case", str(rows), str(cols)],
                              capture_output=True, text=True, check=True)
        out[wells] = json.loads(proc.stdout.strip().splitlines()[-1])
    total = {k: v["parent_mb"] + v["worker_mb"] for k, v in out.items()}
    return {"mb_96": total[96], "mb_384": total[384], "ratio": total[384] / total[96], "detail": out}


def main() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        speed = bench_speedup(tmp)
        over = bench_overhead(tmp)
    mem = bench_memory()
    print(f"core speedup 2 vs 1 workers ({speed['wells']}-well demo plate): "
          f"{speed['t1_s']:.2f}s / {speed['t2_s']:.2f}s = {speed['speedup']:.2f}x   (target >= 1.7x)")
    print(f"core overhead, no-op pipeline, {over['wells']} wells: {over['ms_per_well']:.2f} ms/well wall, "
          f"{over['overhead_ms_per_well']:.2f} ms/well over a bare read+copy loop   (target <= 2 ms)")
    print(f"core peak memory 384 vs 96 wells: {mem['mb_384']:.0f} MB / {mem['mb_96']:.0f} MB = "
          f"{mem['ratio']:.2f}x   (target <= 1.3x)")
    return {"speedup": speed, "overhead": over, "memory": mem}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--memory-case", nargs=2, type=int)
    args = parser.parse_args()
    if args.memory_case:
        memory_case(*args.memory_case)
    else:
        main()
