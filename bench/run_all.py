"""Run every benchmark of the project and write ``BENCHMARKS.md``.

    ./run bench                      # = python bench/run_all.py
    python bench/run_all.py --only core,runtime --output /tmp/B.md

Each benchmark module (``bench/bench_<name>.py``) runs in its own interpreter — imported
as a module and its ``main()`` called, so a module that returns a dict (``bench_core``)
is read as data, and one that only prints (``bench_runtime``, ``bench_dask``) is read from
its lines. Each figure is reported beside the baseline measured in the same run, with the
ratio, the target and pass/fail. A module that does not exist is reported as missing; one
that crashes or times out is reported with its exit code and the end of its output: the
report is always written.

A benchmark may also print ``BENCH_ROW {json}`` lines (keys: ``measure``, ``figure``,
``baseline``, ``ratio``, ``target``, ``ok``); these are used as they are.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "bench"
BENCHES = ("core", "runtime", "dask")
RESULT_PREFIX = "RUN_ALL_RESULT "
ROW_PREFIX = "BENCH_ROW "
DEFAULT_TIMEOUT_S = 1800


@dataclass
class Row:
    measure: str
    figure: str
    baseline: str = "none measured"
    ratio: str = "—"
    target: str = "—"
    ok: bool | None = None

    @property
    def result(self) -> str:
        return "—" if self.ok is None else ("pass" if self.ok else "**FAIL**")


@dataclass
class BenchRun:
    name: str
    status: str = "not run"  # ok | missing | failed | timeout
    seconds: float = 0.0
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    data: object = None
    rows: list[Row] = field(default_factory=list)
    unparsed: list[str] = field(default_factory=list)
    from_bench_rows: bool = False


# --------------------------------------------------------------------------- running


def child_main(name: str) -> int:
    """In the child interpreter: import bench_<name>, call main(), print its result."""
    path = BENCH_DIR / f"bench_{name}.py"
    sys.path.insert(0, str(BENCH_DIR))
    sys.path.insert(0, str(ROOT))
    sys.argv = [str(path)]
    import importlib

    module = importlib.import_module(f"bench_{name}")
    result = module.main()
    sys.stdout.flush()
    if isinstance(result, dict):
        print(RESULT_PREFIX + json.dumps(result, default=str), flush=True)
        return 0
    return int(result or 0)


def run_bench(name: str, timeout: float, echo: bool = True) -> BenchRun:
    run = BenchRun(name)
    if not (BENCH_DIR / f"bench_{name}.py").exists():
        run.status = "missing"
        return run
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        run.status = "ok" if proc.returncode == 0 else "failed"
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        run.status = "timeout"
    run.seconds = time.perf_counter() - t0
    run.exit_code = proc.returncode
    run.stdout, run.stderr = out, err
    lines = []
    for line in out.splitlines():
        if line.startswith(RESULT_PREFIX):
            try:
                run.data = json.loads(line[len(RESULT_PREFIX):])
            except ValueError:
                pass
        else:
            lines.append(line)
    run.stdout = "\n".join(lines)
    if echo:
        print(f"== bench_{name}: {run.status} in {run.seconds:.0f} s", flush=True)
        print("\n".join(ln for ln in run.stdout.splitlines() if not ln.startswith(ROW_PREFIX)), flush=True)
        if run.status != "ok":
            print(run.stderr[-3000:], file=sys.stderr, flush=True)
    PARSERS.get(name, parse_generic)(run)
    return run


# --------------------------------------------------------------------------- parsing

_NUM = r"[-+]?[\d,]*\.?\d+"


def _f(text: str) -> float:
    return float(text.replace(",", ""))


def _bench_rows(run: BenchRun) -> list[str]:
    """Turn ``BENCH_ROW {json}`` lines into rows (grouped like the text rows below); return
    the other lines — which are not parsed again when a bench printed BENCH_ROW lines."""
    entries, rest = [], []
    for line in run.stdout.splitlines():
        if line.startswith(ROW_PREFIX):
            try:
                d = json.loads(line[len(ROW_PREFIX):])
            except ValueError:
                rest.append(line)
                continue
            entries.append({"measure": str(d.get("measure") or "?"), "figure": str(d.get("figure") or ""),
                            "against": str(d.get("baseline") or ""), "ratio": d.get("ratio"),
                            "target": d.get("target"), "ok": d.get("ok")})
        else:
            rest.append(line)
    if entries:
        run.rows += _group(entries)
        run.from_bench_rows = True
    return rest


_TARGET_ONLY = re.compile(r"^of (?P<target>" + _NUM + r"\s?[^\s,()]*) target(?P<rest>.*)$")
_TARGET_IN = re.compile(r",?\s*target (?P<target>[<>]=?\s*\S+)")


def _ratio_text(ratio) -> str:
    if ratio is None or ratio == "":
        return "—"
    try:
        return f"{_f(str(ratio)):.2f}x"
    except ValueError:
        return str(ratio)


def _group(entries: list[dict]) -> list[Row]:
    """Rows of one measure (a figure, then rows with an empty figure for the same measure)
    become one table row per measured baseline; rows against a target ("of 1.0 s target")
    give the group its target, with the direction read from OK/MISS and the ratio."""
    groups: list[dict] = []
    for e in entries:
        if e["figure"] or not groups:
            groups.append({"measure": e["measure"], "figure": e["figure"] or "?", "baselines": [],
                           "target": None, "ok": None})
        group = groups[-1]
        ok, against = e["ok"], e["against"].strip()
        if ok is not None:
            group["ok"] = ok if group["ok"] is None else (group["ok"] and ok)
        if e.get("target"):
            group["target"] = str(e["target"])
        only = _TARGET_ONLY.match(against)
        if only:
            try:
                ratio = _f(str(e["ratio"]))  # figure / target: with OK/MISS this gives the direction
            except (TypeError, ValueError):
                ratio = 1.0
            op = "" if ok is None or ratio == 1 else ("<=" if (ratio < 1) == ok else ">=")
            group["target"] = group["target"] or (f"{op} {only['target']}".strip() + (
                f" ({only['rest'].strip(' ()')})" if only["rest"].strip() else ""))
            continue
        within = _TARGET_IN.search(against)
        if within:
            group["target"] = group["target"] or within["target"]
            against = against[: within.start()].strip()
        group["baselines"].append((against.removeprefix("of ").strip(), _ratio_text(e["ratio"])))
    rows = []
    for g in groups:
        if g["baselines"]:
            for i, (baseline, ratio) in enumerate(g["baselines"]):
                rows.append(Row(g["measure"], g["figure"] if i == 0 else "″", baseline, ratio,
                                g["target"] or "—", g["ok"] if i == 0 else None))
        else:
            rows.append(Row(g["measure"], g["figure"], "none measured (target only)", "—",
                            g["target"] or "—", g["ok"]))
    return rows


def parse_core(run: BenchRun) -> None:
    lines = _bench_rows(run)
    if run.from_bench_rows:
        return
    d = run.data if isinstance(run.data, dict) else None
    try:
        s, o, m = d["speedup"], d["overhead"], d["memory"]
        run.rows += [
            Row(f"demo plate ({s['wells']} wells), processes, 2 workers vs 1",
                f"{s['t2_s']:.2f} s (2 workers)", f"{s['t1_s']:.2f} s (1 worker)",
                f"{s['speedup']:.2f}x speed-up", ">= 1.7x speed-up", s["speedup"] >= 1.7),
            Row(f"orchestration overhead, no-op pipeline, {o['wells']} wells",
                f"{o['ms_per_well']:.2f} ms/well ({o['overhead_ms_per_well']:.2f} ms/well overhead)",
                f"bare read+copy loop, {o['bare_loop_s'] * 1000 / o['wells']:.2f} ms/well in one process",
                f"{o['orchestrated_s'] / (o['bare_loop_s'] / 2):.2f}x of the loop split over 2 workers",
                "overhead <= 2 ms/well", o["overhead_ms_per_well"] <= 2.0),
            Row("peak memory, 384 wells vs 96 wells", f"{m['mb_384']:.0f} MB (384 wells)",
                f"{m['mb_96']:.0f} MB (96 wells)", f"{m['ratio']:.2f}x", "<= 1.3x", m["ratio"] <= 1.3),
        ]
    except (TypeError, KeyError, ZeroDivisionError):  # no (or a changed) result dict: read the lines
        for line in lines:
            row = parse_text_line(line)
            if row is not None:
                run.rows.append(row)
            elif line.strip():
                run.unparsed.append(line)
        return
    run.unparsed += [ln for ln in lines if ln.strip() and not ln.startswith("core ")]


_RUNTIME_ROW = re.compile(
    r"^(?P<name>.{44}) (?P<value>.{22})   \s*(?P<ratio>" + _NUM + r")x (?P<against>.*?)(?P<flag>  OK|  MISS)?$")


def parse_runtime(run: BenchRun) -> None:
    """Rows printed by bench_runtime.row(): a named row, then '' rows for the same measure."""
    lines = _bench_rows(run)
    if run.from_bench_rows:
        return
    entries = []
    for line in lines:
        match = _RUNTIME_ROW.match(line)
        if not match or "ratio" in match["value"]:
            if line.strip() and not line.startswith(("openhcs runtime bench", "measure ")):
                run.unparsed.append(line)
            continue
        entries.append({"measure": match["name"].strip(), "figure": match["value"].strip(),
                        "against": match["against"].strip(), "ratio": match["ratio"], "target": None,
                        "ok": None if match["flag"] is None else match["flag"].strip() == "OK"})
    run.rows += _group(entries)


_TARGET = re.compile(r"\(target (?P<op>[<>]=?)\s*(?P<value>" + _NUM + r")\s*(?P<unit>x|ms|s|MB)?[^)]*\)")
_PAIR = re.compile(r"(?P<label>[A-Za-z][\w /-]*?)\s+(?P<value>" + _NUM + r")\s*(?P<unit>ms/well|ms|s|MB|x)\b")
_RATIO = re.compile(r"(?:=\s*|ratio\s+)(?P<ratio>" + _NUM + r")x")


def _compare(op: str, value: float, limit: float) -> bool:
    return {"<=": value <= limit, "<": value < limit, ">=": value >= limit, ">": value > limit}[op]


def parse_text_line(line: str) -> Row | None:
    """Any ``measure: ... (target OP V unit)`` line, kept whole as the figure."""
    if ":" not in line:
        return None
    measure, rest = line.split(":", 1)
    target = _TARGET.search(rest)
    if target is None:
        return None
    body = rest[: target.start()].strip()
    ratio_m = _RATIO.search(rest)
    unit = target["unit"] or ""
    ok = None
    if unit == "x" and ratio_m:
        ok = _compare(target["op"], _f(ratio_m["ratio"]), _f(target["value"]))
    elif unit:
        values = re.findall("(" + _NUM + r")\s*" + re.escape(unit) + r"\b", body)
        if values:
            ok = _compare(target["op"], _f(values[-1]), _f(target["value"]))
    return Row(measure.strip(), body, "see figure", f"{_f(ratio_m['ratio']):.2f}x" if ratio_m else "—",
               f"{target['op']} {target['value']}{'' if unit == 'x' else ' '}{unit}".strip(), ok)


def parse_generic(run: BenchRun) -> None:
    """Lines ``measure: baseline-label A unit, figure-label B unit, ... (target OP V unit)``:
    the first labelled number is the baseline, the second the figure."""
    lines = _bench_rows(run)
    if run.from_bench_rows:
        return
    for line in lines:
        if ":" not in line:
            if line.strip():
                run.unparsed.append(line)
            continue
        measure, rest = line.split(":", 1)
        pairs = list(_PAIR.finditer(rest))
        if len(pairs) < 2:
            run.unparsed.append(line)
            continue
        base, fig = pairs[0], pairs[1]
        ratio_m = _RATIO.search(rest)
        ratio = _f(ratio_m["ratio"]) if ratio_m else (_f(fig["value"]) / _f(base["value"]) if _f(base["value"]) else None)
        target = _TARGET.search(rest)
        ok = None
        target_text = "— (reported apart)" if "apart" in line or "excluded" in line else "—"
        if target:
            unit = target["unit"] or ""
            target_text = f"{target['op']} {target['value']}{' ' if unit != 'x' else ''}{unit}".strip()
            value = ratio if unit == "x" else _f(fig["value"])
            ok = None if value is None else _compare(target["op"], value, _f(target["value"]))
        run.rows.append(Row(measure.strip(), f"{fig['label'].strip()} {fig['value']} {fig['unit']}",
                            f"{base['label'].strip()} {base['value']} {base['unit']}",
                            "—" if ratio is None else f"{ratio:.2f}x", target_text, ok))


PARSERS = {"core": parse_core, "runtime": parse_runtime, "dask": parse_generic}


# --------------------------------------------------------------------------- report


def machine() -> dict[str, str]:
    info = {"cpu count": str(os.cpu_count())}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
        info["cpu model"] = model.group(1).strip() if model else platform.processor() or "unknown"
    except OSError:
        info["cpu model"] = platform.processor() or "unknown"
    try:
        mem = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
        info["RAM"] = f"{int(mem.group(1)) / 2**20:.1f} GiB" if mem else "unknown"
    except OSError:
        info["RAM"] = "unknown"
    info["python"] = f"{platform.python_implementation()} {platform.python_version()}"
    info["OS"] = platform.platform()
    try:
        info["load average at start"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        pass
    try:
        info["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                        text=True, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        info["commit"] = "unknown"
    return info


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(runs: list[BenchRun], info: dict[str, str], started: str, seconds: float, argv: list[str]) -> str:
    out = ["# Benchmarks", "",
           "Written by `bench/run_all.py`; regenerate with `./run bench` (which runs "
           "`python bench/run_all.py`).", ""]
    command = "python bench/run_all.py" + (" " + " ".join(argv) if argv else "")
    out += [f"Run: {started} UTC, {seconds:.0f} s in total, command `{command}`.", ""]
    out += ["## Machine", "", "| | |", "|---|---|"]
    out += [f"| {k} | {_cell(v)} |" for k, v in info.items()]
    out += ["", "Every baseline below was measured in the same run, on the same machine, as the figure "
            "beside it; compare ratios rather than absolute times (the machine is shared and noisy: "
            "see the load average).", ""]
    out += ["## Results", "", "| bench | measure | figure | baseline (same run) | ratio | target | result |",
            "|---|---|---|---|---|---|---|"]
    for run in runs:
        if run.status != "ok" and not run.rows:
            what = {"missing": f"bench/bench_{run.name}.py does not exist",
                    "timeout": f"timed out after {run.seconds:.0f} s",
                    "failed": f"failed with exit code {run.exit_code}"}.get(run.status, run.status)
            out.append(f"| {run.name} | *{what}* | — | — | — | — | {run.status} |")
            continue
        for row in run.rows:
            out.append(f"| {run.name} | {_cell(row.measure)} | {_cell(row.figure)} | {_cell(row.baseline)} | "
                       f"{_cell(row.ratio)} | {_cell(row.target)} | {row.result} |")
        if run.status != "ok":
            out.append(f"| {run.name} | *then {run.status} (exit code {run.exit_code})* | — | — | — | — | "
                       f"{run.status} |")
    passed = sum(1 for r in runs for row in r.rows if row.ok)
    failed = sum(1 for r in runs for row in r.rows if row.ok is False)
    missing = sum(1 for r in runs if r.status == "missing")
    broken = sum(1 for r in runs if r.status in ("failed", "timeout"))
    out += ["", f"{passed} {'figures meet their' if passed != 1 else 'figure meets its'} target, "
            f"{failed} {'do' if failed != 1 else 'does'} not; {missing} bench module(s) missing, "
            f"{broken} failed to run.", ""]
    out += ["## Output of each bench", ""]
    for run in runs:
        out.append(f"### bench_{run.name} — {run.status}"
                   + (f" ({run.seconds:.0f} s)" if run.status != "missing" else ""))
        out.append("")
        if run.status == "missing":
            out += [f"`bench/bench_{run.name}.py` is not in the repository yet.", ""]
            continue
        shown = "\n".join(ln for ln in run.stdout.splitlines() if not ln.startswith(ROW_PREFIX))
        out += ["```", shown.rstrip() or "(no output)", "```", ""]
        if run.unparsed:
            out += ["Lines not turned into table rows (shown above as printed): "
                    + "; ".join(f"`{ln.strip()}`" for ln in run.unparsed[:6]), ""]
        if run.status != "ok":
            out += ["stderr (end):", "", "```", run.stderr.rstrip()[-3000:] or "(empty)", "```", ""]
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run every benchmark and write BENCHMARKS.md.")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(BENCHES)}")
    parser.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per bench")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(args.child)
    names = [n.strip() for n in args.only.split(",")] if args.only else list(BENCHES)
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")
    info = machine()
    t0 = time.perf_counter()
    runs = [run_bench(name, args.timeout) for name in names]
    report = render(runs, info, started, time.perf_counter() - t0, list(argv if argv is not None else sys.argv[1:]))
    Path(args.output).write_text(report)
    print(f"wrote {args.output}")
    return 0 if all(r.status in ("ok", "missing") for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
