#!/usr/bin/env python3
"""What the Python package adds over the `lpc` command line, on the digits model.

(a) quantize: wall time of `lpc quantize digits_cnn.onnx --calib calib_x.npy -o q.onnx` (the
    process, as a user runs it) against the same work from Python in one process:
    `q = lpc.quantize(model, np.load(calib)); q.save(out)`; and, for the whole picture, a
    `python3 -c` process doing the same (interpreter start and `import numpy, lpc` included).
(b) one call of a compiled model: `m(x)` from Python against the same run timed inside Rust
    (`m.time_runs(x)`: the inputs converted once, then `CompiledModel::run` in a loop, no
    Python in between), and `lpc bench --backend jit` (the CLI's median) beside them.

Runs alternate between the two sides; medians. Needs the wheel installed (crates/lpc-py/ci.sh
or docs/python.md), the `lpc` binary (LPC_BIN, default target/release/lpc) and ../shared.
Writes benches/results/python.md with --write.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import lpc

REPO = Path(__file__).resolve().parents[1]
DIGITS = REPO.parent / "shared" / "data" / "digits"
MODEL, CALIB, TEST = DIGITS / "digits_cnn.onnx", DIGITS / "calib_x.npy", DIGITS / "test_x.npy"
LPC = Path(os.environ.get("LPC_BIN", REPO / "target" / "release" / "lpc"))


def cpu_line():
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    flags = next((l.split(":", 1)[1].split() for l in open("/proc/cpuinfo") if l.startswith("flags")), [])
    isa = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8") if f in flags]
    return f"{model}, {os.cpu_count()} cores; {' '.join(isa)}"


def wall(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))}: {p.stderr}")
    return p.stdout


def quantize_times(rounds, tmp):
    cli_out, py_out, proc_out = tmp / "cli.onnx", tmp / "py.onnx", tmp / "proc.onnx"
    cli = [str(LPC), "quantize", str(MODEL), "--calib", str(CALIB), "-o", str(cli_out)]
    script = (
        "import lpc, numpy as np; "
        f"lpc.quantize({str(MODEL)!r}, np.load({str(CALIB)!r})).save({str(proc_out)!r})"
    )
    proc = [sys.executable, "-c", script]

    def in_process():
        lpc.quantize(MODEL, np.load(CALIB)).save(py_out)

    in_process()  # warm the page cache and the module
    times = {"cli": [], "py": [], "proc": [], "start": []}
    for _ in range(rounds):
        times["cli"].append(wall(lambda: run(cli)))
        times["py"].append(wall(in_process))
        times["proc"].append(wall(lambda: run(proc)))
        times["start"].append(wall(lambda: run([str(LPC), "--version"])))
    assert py_out.read_bytes() == cli_out.read_bytes() == proc_out.read_bytes()
    return {k: statistics.median(v) for k, v in times.items()}


def call_times(runs, tmp, threads=None):
    q = tmp / "q.onnx"
    lpc.quantize(MODEL, np.load(CALIB)).save(q)
    x = np.ascontiguousarray(np.load(TEST)[:1])
    np.save(tmp / "x.npy", x)
    m = lpc.compile(q, {"input": x.shape}, threads=threads)
    for _ in range(200):  # warm
        m(x)
    py, rust = [], []
    for _ in range(5):  # alternate blocks of runs
        for _ in range(runs // 5):
            t = time.perf_counter_ns()
            m(x)
            py.append((time.perf_counter_ns() - t) / 1e9)
        rust += m.time_runs(x, runs=runs // 5)
    cmd = [str(LPC), "bench", str(q), "--input", str(tmp / "x.npy"), "--backend", "jit", "--runs", str(runs)]
    if threads:
        cmd += ["--threads", str(threads)]
    bench = json.loads(run(cmd + ["--json"]))
    return statistics.median(py), statistics.median(rust), bench["median_ms"] / 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=21, help="quantize runs per side")
    ap.add_argument("--runs", type=int, default=5000, help="calls per side")
    ap.add_argument("--write", action="store_true", help="write benches/results/python.md")
    args = ap.parse_args()
    for f in (MODEL, CALIB, TEST, LPC):
        if not f.exists():
            sys.exit(f"error: {f} is missing")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        qt = quantize_times(args.rounds, tmp)
        calls = {t: call_times(args.runs, tmp, t) for t in (None, 1)}
    added = (qt["py"] - qt["cli"]) / qt["cli"] * 100
    added_proc = (qt["proc"] - qt["cli"]) / qt["cli"] * 100
    lines = [
        "# The Python package's overhead",
        "",
        f"Host: {cpu_line()}. One run of `python3 benches/python_overhead.py --rounds {args.rounds} "
        f"--runs {args.runs}`, {datetime.date.today()}; Python {platform.python_version()}, numpy "
        f"{np.__version__}, lpc {lpc.__version__} (wheel built with `maturin build --release`).",
        "",
        "## (a) quantize, digits_cnn (300 calibration samples, defaults)",
        "",
        f"Medians of {args.rounds} runs per side, alternating; all three write the same bytes.",
        "",
        "| path | wall ms | vs the CLI |",
        "|---|---|---|",
        f"| `lpc quantize ... -o q.onnx` (the process) | {qt['cli'] * 1e3:.1f} | |",
        f"| `lpc --version` (starting the process alone) | {qt['start'] * 1e3:.1f} | |",
        f"| `lpc.quantize(model, np.load(calib)).save(out)` in a running Python | {qt['py'] * 1e3:.1f} | {added:+.1f} % |",
        f"| `python3 -c 'import lpc, numpy; ...'` (the process: interpreter and imports too) | {qt['proc'] * 1e3:.1f} | {added_proc:+.1f} % |",
        "",
        "## (b) one call of the compiled model, digits_cnn folded to INT8, input [1, 1, 16, 16] f32",
        "",
        f"Medians of {args.runs} calls per side, in alternating blocks; the JIT on all cores (its default)",
        "and on one thread.",
        "",
        "| path | all cores, µs | 1 thread, µs |",
        "|---|---|---|",
    ]
    rows = [
        ("`m(x)` from Python (array in, list of arrays out)", lambda c: c[0]),
        ("the same run timed in Rust (`m.time_runs(x)`: `CompiledModel::run` on converted inputs)", lambda c: c[1]),
        ("**added per call** (the difference)", lambda c: c[0] - c[1]),
        ("`lpc bench --backend jit` median (the CLI)", lambda c: c[2]),
    ]
    for label, f in rows:
        lines.append(f"| {label} | {f(calls[None]) * 1e6:.1f} | {f(calls[1]) * 1e6:.1f} |")
    lines += [
        "",
        "Python in a running interpreter is not slower than the CLI at quantizing: the CLI's time",
        "includes starting its process; a whole `python3` process adds the interpreter's start and",
        "the imports of numpy and lpc. The added time per call is pyo3's argument handling, one",
        "copy of the input into an lpc tensor, releasing and taking back the GIL, and wrapping each",
        "output buffer as a numpy array without a copy. The run itself varies more than that",
        "between runs of this script on a shared 2-core host (the other rows move by µs).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        (REPO / "benches" / "results" / "python.md").write_text(text)


if __name__ == "__main__":
    main()
