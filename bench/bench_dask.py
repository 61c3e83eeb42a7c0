"""Dask mode vs processes mode, as ratios measured in one run.

    .venv/bin/python bench/bench_dask.py [--wells-rows 4] [--wells-cols 6] [--repeats 5]

1. Start-up, reported apart: starting a pool of 2 worker processes vs a LocalCluster of 2
   workers, each until a first one-well run has finished on it (a server pays this once
   and reuses the pool or cluster for every later run).
2. The demo plate with the default pipeline, 2 workers each: best wall time of
   ``--repeats`` interleaved runs after one warm-up run each (target: dask <= 1.25x
   processes). Best-of, because on a shared machine other load only ever adds time.
3. Dispatch overhead: a no-op pipeline (one passthrough step, nothing written) over many
   one-image wells. Per-well overhead = wall time x workers / wells, i.e. the worker time
   each well costs beyond its (empty) work (target: <= 20 ms per well in dask mode).

The machine is noisy (2 shared cores): compare the ratios, not the absolute times.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from openhcs.core.config import GlobalPipelineConfig  # noqa: E402
from openhcs.core.executors import dask_backend  # noqa: E402
from openhcs.core.executors.process_pool import WorkerPool  # noqa: E402
from openhcs.core.orchestrator.orchestrator import PipelineOrchestrator  # noqa: E402
from openhcs.core.steps import FunctionStep  # noqa: E402
from openhcs.processing import diagnostics as diag  # noqa: E402

WORKERS = 2


def timed_run(plate, steps, out: Path, mode: str, pool=None, client=None, fmt="tiff") -> float:
    config = GlobalPipelineConfig(
        mode=mode, num_workers=WORKERS, output_dir=str(out), materialization_format=fmt
    )
    orch = PipelineOrchestrator(plate, config, worker_pool=pool, dask_client=client)
    compiled = orch.compile_pipelines(steps)
    t0 = time.perf_counter()
    result = orch.execute_compiled_plate(compiled)
    elapsed = time.perf_counter() - t0
    orch.shutdown()
    if result.status != "complete":
        raise SystemExit(f"{mode} run did not complete: {result.to_dict()}")
    return elapsed


def write_tiny_plate(root: Path, wells: int) -> Path:
    folder = root / "TimePoint_1"
    folder.mkdir(parents=True)
    image = np.zeros((8, 8), dtype=np.uint16)
    for i in range(wells):
        tifffile.imwrite(folder / f"{chr(ord('A') + i // 24)}{i % 24 + 1:02d}_s1_w1.tif", image)
    return root


def compare(label, plate, steps, work: Path, pool, client, repeats: int, fmt="tiff") -> dict:
    """Best of ``repeats`` runs per mode, the modes interleaved (other load only adds time)."""
    times: dict[str, list[float]] = {"processes": [], "dask": []}
    for i in range(repeats + 1):  # run 0 warms imports and caches on the workers
        order = ("processes", "dask") if i % 2 else ("dask", "processes")
        for mode in order:
            t = timed_run(plate, steps, work / f"{label}-{mode}-{i}", mode, pool, client, fmt)
            if i:
                times[mode].append(t)
    return {mode: min(ts) for mode, ts in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wells-rows", type=int, default=4)
    parser.add_argument("--wells-cols", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--noop-wells", type=int, default=96)
    args = parser.parse_args()

    from openhcs.demo.pipeline import default_pipeline
    from openhcs.demo.plate import make_demo_plate

    with tempfile.TemporaryDirectory(prefix="openhcs-bench-dask-") as tmp:
        work = Path(tmp)
        one = write_tiny_plate(work / "one", 1)
        noop = [FunctionStep(func=diag.passthrough, name="noop")]
        # start-up = create the pool / cluster and finish a first one-well run on it
        t0 = time.perf_counter()
        pool = WorkerPool(WORKERS)
        timed_run(one, noop, work / "first-processes", "processes", pool=pool, fmt="none")
        pool_start = time.perf_counter() - t0
        t0 = time.perf_counter()
        client = dask_backend.get_shared_client(None, n_workers=WORKERS)
        timed_run(one, noop, work / "first-dask", "dask", client=client, fmt="none")
        cluster_start = time.perf_counter() - t0
        try:
            demo = make_demo_plate(work / "demo", rows=args.wells_rows, cols=args.wells_cols)
            steps = default_pipeline(grid=demo.grid, overlap=demo.overlap)
            wells = len(demo.wells)
            demo_t = compare("demo", demo.path, steps, work, pool, client, args.repeats)

            tiny = write_tiny_plate(work / "tiny", args.noop_wells)
            noop_t = compare("noop", tiny, noop, work, pool, client, args.repeats, fmt="none")
        finally:
            dask_backend.close_shared_clients()
            pool.close()

    per_well = {m: t * WORKERS / args.noop_wells * 1000 for m, t in noop_t.items()}
    print(f"start-up to a first finished well (once per server, excluded below): "
          f"process pool {pool_start:.2f} s, LocalCluster {cluster_start:.2f} s")
    print(f"demo plate, {wells} wells, {WORKERS} workers, best of {args.repeats}: "
          f"processes {demo_t['processes']:.2f} s, dask {demo_t['dask']:.2f} s, "
          f"ratio dask/processes = {demo_t['dask'] / demo_t['processes']:.2f}x (target <= 1.25x)")
    print(f"dispatch, no-op pipeline on {args.noop_wells} wells: processes {per_well['processes']:.1f} ms/well, "
          f"dask {per_well['dask']:.1f} ms/well (target <= 20 ms), "
          f"ratio {per_well['dask'] / per_well['processes']:.2f}x")


if __name__ == "__main__":
    main()
