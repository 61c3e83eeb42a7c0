"""Execution-runtime benchmarks, each printed as a ratio against a baseline measured in
the same run (this machine is noisy: compare ratios, not absolutes).

    .venv/bin/python bench/bench_runtime.py [--quick]

- cold start: launcher start to first pong           vs the 1.0 s target and a bare interpreter
- ping: ZMQExecutionClient.ping() median / p99        vs raw pyzmq REQ/REP (same frames)
- status p99 while a plate runs on all cores         vs the 10 ms target and idle status p99
- execute -> first progress event                     vs the 5 ms target and the ping median
- progress events/s to a callback, zero gaps          vs the 20,000/s target (synthetic burst
  through the real server path: run thread -> post -> loop -> EventLog/RunBook -> PUB ->
  listener -> ordered delivery)
- idle server RSS                                      vs the 80 MB target and bare python+zmq
- 20 small runs on one persistent server             vs the legacy subprocess-per-run runner
- demo plate through the server vs in-process         vs the 1.10x target
Takes about a minute and a half.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import psutil
import zmq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "runtime" / "pipelines"))  # busy/noop test steps


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


_last_measure = [""]


def row(name: str, value: str, ratio: float, against: str, ok: bool | None = None,
        target: str | None = None) -> None:
    """One figure: a human line, and a ``BENCH_ROW`` json line for bench/run_all.py."""
    flag = "" if ok is None else ("  OK" if ok else "  MISS")
    print(f"{name:<44} {value:>22}   {ratio:7.2f}x {against}{flag}")
    measure = name or f"{_last_measure[0]} (vs {against.split(' (')[0]})"
    _last_measure[0] = name or _last_measure[0]
    print("BENCH_ROW " + json.dumps({"measure": measure, "figure": value, "baseline": against,
                                     "ratio": round(ratio, 3), "target": target, "ok": ok}))


# --------------------------------------------------------------------------- baselines


RAW_ECHO = r"""
import sys, zmq
ctx = zmq.Context(); s = ctx.socket(zmq.REP); port = s.bind_to_random_port("tcp://127.0.0.1")
print(port, flush=True)
while True:
    m = s.recv_multipart(); s.send_multipart(m)
    if m[0] == b"quit": break
"""


def raw_reqrep(n: int) -> list[float]:
    proc = subprocess.Popen([sys.executable, "-c", RAW_ECHO], stdout=subprocess.PIPE, text=True)
    port = int(proc.stdout.readline())
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REQ)
    sock.linger = 0
    sock.connect(f"tcp://127.0.0.1:{port}")
    frames = [b"openhcs/1", b"0" * 64, b"x" * 160]
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        sock.send_multipart(frames)
        sock.recv_multipart()
        times.append(time.perf_counter() - t0)
    sock.send_multipart([b"quit"])
    sock.recv_multipart()
    sock.close()
    ctx.term()
    proc.wait()
    return times[n // 10:]


def bare_interpreter_start() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import zmq"], check=True)
    return time.perf_counter() - t0


def bare_rss_mb() -> float:
    code = "import zmq, psutil, os; c = zmq.Context(); print(psutil.Process().memory_info().rss)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout) / 2**20


# --------------------------------------------------------------------------- burst server

BURST_SERVER = r"""
import sys, time
from openhcs.runtime.zmq_execution_server import ZMQExecutionServer

class BurstServer(ZMQExecutionServer):
    # Everything real except the orchestrator: the run thread posts N progress events
    # exactly as the orchestrator's callback would.
    def _run_thread(self, run):
        eid = run.execution_id
        n = int(run.request.plate_id.rsplit("/", 1)[-1])  # the client made it an absolute path
        self.post(("started", eid, time.time()))
        post = self.post
        for i in range(n):
            post(("progress", eid, "A%02d" % (i % 96), "step", "completed",
                  {"step_index": 0, "total_steps": 1, "i": i}, time.time()))
        self.post(("finished", eid, "complete", "burst", None, None, None))

server = BurstServer(int(sys.argv[1]))
info = server.bind()
print("READY", flush=True)
server.serve_forever()
"""


def burst_rate(n: int) -> tuple[float, bool, int]:
    from openhcs.runtime.connection import find_server
    from openhcs.runtime.lifecycle import stop_server
    from openhcs.runtime.zmq_base import find_free_port
    from openhcs.runtime.zmq_execution_client import ZMQExecutionClient

    port = find_free_port()
    proc = subprocess.Popen([sys.executable, "-c", BURST_SERVER, str(port)], stdout=subprocess.PIPE,
                            text=True)
    proc.stdout.readline()
    seqs: list[int] = []
    stamps: list[float] = []

    def on_progress(message):
        seqs.append(message["seq"])
        stamps.append(time.perf_counter())

    client = ZMQExecutionClient(port=port, progress_callback=on_progress)
    client.connect()
    try:
        accepted = client.submit_pipeline(plate_id=str(n), pipeline_steps="not used")
        result = client.wait_for_completion(accepted["execution_id"], timeout=120)
    finally:
        client.disconnect()
        stop_server(find_server(port), popen=proc)
    gapless = seqs == list(range(1, result["final_seq"] + 1))
    progress = len(seqs) - 3  # queued, started, complete
    rate = progress / (stamps[-1] - stamps[0])
    return rate, gapless, len(seqs)


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    reps = 500 if args.quick else 2000

    tmp = tempfile.mkdtemp(prefix="openhcs-bench-")
    os.environ["OPENHCS_RUNTIME_DIR"] = f"{tmp}/runtime"
    os.environ["OPENHCS_DATA_DIR"] = f"{tmp}/data"
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "tests" / "runtime" / "pipelines"), os.environ.get("PYTHONPATH", "")])

    import openhcs_test_steps as steps

    from openhcs.core.config import GlobalPipelineConfig
    from openhcs.demo.pipeline import default_pipeline
    from openhcs.demo.plate import make_demo_plate
    from openhcs.runtime.lifecycle import spawn_server, stop_server
    from openhcs.runtime.zmq_base import find_free_port, ping_server
    from openhcs.runtime.zmq_execution_client import ZMQExecutionClient

    cores = os.cpu_count() or 2
    print(f"openhcs runtime bench — {cores} cores, python {sys.version.split()[0]}, "
          f"pyzmq {zmq.__version__}\n")
    print(f"{'measure':<44} {'value':>22}   {'ratio':>8} baseline")

    # cold start to first pong
    bare = statistics.median(bare_interpreter_start() for _ in range(3))
    colds = []
    for _ in range(3):
        port = find_free_port()
        t0 = time.perf_counter()
        proc = spawn_server(port)
        while ping_server(proc.info, timeout=1.0) is None:
            pass
        colds.append(time.perf_counter() - t0)
        stop_server(proc.info, popen=proc.popen)
    cold = statistics.median(colds)
    row("server cold start -> first pong", f"{cold * 1000:.0f} ms", cold / 1.0, "of 1.0 s target",
        cold <= 1.0)
    row("", "", cold / bare, f"of bare `python -c 'import zmq'` ({bare * 1000:.0f} ms)")

    port = find_free_port()
    server = spawn_server(port, args=["--workers", str(cores)])
    try:
        # idle RSS
        rss = psutil.Process(server.pid).memory_info().rss / 2**20
        base_rss = bare_rss_mb()
        row("idle server RSS", f"{rss:.1f} MB", rss / 80, "of 80 MB target", rss <= 80)
        row("", "", rss / base_rss, f"of bare python+zmq ({base_rss:.1f} MB)")

        # ping vs raw
        raw = raw_reqrep(reps)
        client = ZMQExecutionClient(port=port)
        client.connect()
        pings = []
        for _ in range(reps):
            t0 = time.perf_counter()
            client.ping()
            pings.append(time.perf_counter() - t0)
        pings = pings[reps // 10:]
        ratio = statistics.median(pings) / statistics.median(raw)
        row("ping via client, median", f"{statistics.median(pings) * 1e6:.0f} us", ratio,
            f"of raw REQ/REP median ({statistics.median(raw) * 1e6:.0f} us), target <= 3x", ratio <= 3)
        row("ping via client, p99", f"{pct(pings, 0.99) * 1e6:.0f} us", pct(pings, 0.99) / pct(raw, 0.99),
            f"of raw REQ/REP p99 ({pct(raw, 0.99) * 1e6:.0f} us)")

        # status idle vs while a plate runs on all cores
        idle = []
        for _ in range(300):
            t0 = time.perf_counter()
            client.get_status()
            idle.append(time.perf_counter() - t0)
        plate_dir = Path(tmp) / "plate"
        demo = make_demo_plate(plate_dir, rows=4, cols=6)
        started = threading.Event()

        def on_progress(message):
            if message.get("status") == "started" and message.get("step") == "busy":
                started.set()

        client.progress_callback = on_progress
        config = GlobalPipelineConfig(num_workers=cores, mode="processes", materialization_format="none")
        eid = client.submit_pipeline(plate_id=plate_dir, pipeline_steps=steps.busy_pipeline(3.0),
                                     global_config=config)["execution_id"]
        started.wait(60)
        busy = []
        for _ in range(300):
            t0 = time.perf_counter()
            client.get_status(eid)
            busy.append(time.perf_counter() - t0)
        client.cancel_execution(eid, force=True)
        client.wait_for_completion(eid, timeout=60)
        p99 = pct(busy, 0.99)
        row("status p99 while a plate runs (all cores)", f"{p99 * 1000:.2f} ms", p99 / 0.010,
            "of 10 ms target", p99 <= 0.010)
        row("", "", p99 / pct(idle, 0.99), f"of idle status p99 ({pct(idle, 0.99) * 1000:.2f} ms)")

        # execute -> first progress event
        first: dict[str, float] = {}

        def first_event(message):
            first.setdefault(message["execution_id"], time.perf_counter())

        client.progress_callback = first_event
        lat = []
        for _ in range(15):
            t0 = time.perf_counter()
            eid = client.submit_pipeline(plate_id=plate_dir, pipeline_steps=steps.noop_pipeline(),
                                         global_config=config, wells=["A01"])["execution_id"]
            client.wait_for_completion(eid, timeout=60)
            lat.append(first[eid] - t0)
        med = statistics.median(lat)
        row("execute -> first progress event, median", f"{med * 1000:.2f} ms", med / 0.005,
            "of 5 ms target", med <= 0.005)
        row("", "", med / statistics.median(pings), "of client ping median")

        # 20 small runs: one warm server vs the legacy subprocess-per-run runner
        small = GlobalPipelineConfig(num_workers=1, mode="processes", materialization_format="none")
        n_small = 5 if args.quick else 20
        client.progress_callback = None
        t0 = time.perf_counter()
        for _ in range(n_small):
            done = client.execute_pipeline(plate_id=plate_dir, pipeline_steps=steps.noop_pipeline(),
                                           global_config=small, wells=["A01"])
            assert done["status"] == "complete", done
        warm = time.perf_counter() - t0
        from openhcs.textual_tui.subprocess_runner import start_run

        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            for _ in range(n_small):
                legacy_run = start_run(plate_dir, list(steps.noop_pipeline()), small, wells=["A01"],
                                       work_dir=tmp)
                legacy_run.wait(120)
                legacy_run.close()
                assert legacy_run.state == "complete", legacy_run.state
        legacy = time.perf_counter() - t0
        row(f"{n_small} small runs, one persistent server", f"{warm:.2f} s", legacy / warm,
            f"faster than subprocess-per-run ({legacy:.2f} s), target >= 10x", legacy / warm >= 10,
            ">= 10x")

        # demo plate: server vs in-process orchestrator, alternating, warm pools both ways
        from openhcs.core.executors.process_pool import WorkerPool
        from openhcs.core.orchestrator.orchestrator import PipelineOrchestrator
        from openhcs.runtime.zmq_execution_server import _lower_priority

        client.progress_callback = None
        pipeline = default_pipeline(grid=demo.grid, overlap=demo.overlap)
        demo_cfg = GlobalPipelineConfig(num_workers=cores, mode="processes")
        pool = WorkerPool(cores)
        _lower_priority(pool.pids())  # the server's workers run at this priority too
        server_times, local_times = [], []
        try:
            for i in range(1 + (2 if args.quick else 3)):  # the first round warms both up
                t0 = time.perf_counter()
                response = client.execute_pipeline(plate_id=plate_dir, pipeline_steps=pipeline,
                                                   global_config=demo_cfg)
                assert response["status"] == "complete", response
                t1 = time.perf_counter()
                PipelineOrchestrator(plate_dir, demo_cfg, worker_pool=pool).run(pipeline)
                t2 = time.perf_counter()
                if i:
                    server_times.append(t1 - t0)
                    local_times.append(t2 - t1)
        finally:
            pool.close()
        client.disconnect()
    finally:
        stop_server(server.info, popen=server.popen)
    via_server, in_process = statistics.median(server_times), statistics.median(local_times)
    ratio = via_server / in_process
    row("demo plate via server (24 wells), median", f"{via_server:.2f} s", ratio,
        f"of in-process orchestrator ({in_process:.2f} s), target <= 1.10x", ratio <= 1.10)

    # progress throughput
    n = 20_000 if args.quick else 60_000
    rate, gapless, count = burst_rate(n)
    row("progress events/s to a callback", f"{rate:,.0f}/s", rate / 20_000,
        f"of 20,000/s target ({count} events, {'no gaps' if gapless else 'GAPS'})",
        rate >= 20_000 and gapless)
    return 0


if __name__ == "__main__":
    sys.exit(main())
