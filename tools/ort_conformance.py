"""ONNX Runtime on the ONNX backend node suite, with the tolerances lpc's conformance test uses.

    python3 tools/ort_conformance.py [--cases ../shared/onnx-node] [--out benches/results/conformance_ort.md]

Each case: load model.onnx in an ORT session (CPU, all optimizations off so the ops themselves are
compared), run every test_data_set_*, compare each output with rtol 1e-3 / atol 1e-5 (integers and
bools exact, NaN equal to NaN). Writes a summary with every failing case and its first error line,
and says for each whether lpc passes it (tests/onnx-node.txt).
"""
import argparse
import glob
import os
import platform
import subprocess

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_pb(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def close(a, e):
    if a.shape != e.shape:
        return f"shape {a.shape} vs expected {e.shape}"
    if e.dtype.kind in "fc":
        a = a.astype(np.float64)
        e = e.astype(np.float64)
        same = (a == e) | (np.isnan(a) & np.isnan(e))
        with np.errstate(invalid="ignore"):
            ok = same | (np.abs(a - e) <= 1e-5 + 1e-3 * np.abs(e))
        if not ok.all():
            i = int(np.argmin(ok.reshape(-1)))
            return f"element {i}: {a.reshape(-1)[i]} vs expected {e.reshape(-1)[i]}"
        return None
    if not np.array_equal(a, e):
        return "values differ"
    return None


def run_case(d):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 4
    sess = ort.InferenceSession(os.path.join(d, "model.onnx"), so, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    model = onnx.load(os.path.join(d, "model.onnx"), load_external_data=False)
    graph_inputs = [i.name for i in model.graph.input if i.name not in {x.name for x in model.graph.initializer}]
    for s in sorted(glob.glob(os.path.join(d, "test_data_set_*"))):
        ins = sorted(glob.glob(os.path.join(s, "input_*.pb")), key=lambda p: int(p.rsplit("_", 1)[1][:-3]))
        outs = sorted(glob.glob(os.path.join(s, "output_*.pb")), key=lambda p: int(p.rsplit("_", 1)[1][:-3]))
        feed = {}
        for k, p in enumerate(ins):
            name = graph_inputs[k] if k < len(graph_inputs) else names[k]
            if name in names:
                feed[name] = load_pb(p)
        got = sess.run(None, feed)
        for k, p in enumerate(outs):
            err = close(np.asarray(got[k]), load_pb(p))
            if err:
                return f"{os.path.basename(s)}: output {k}: {err}"
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default=os.path.join(ROOT, "..", "shared", "onnx-node"))
    ap.add_argument("--out", default=os.path.join(ROOT, "benches", "results", "conformance_ort.md"))
    a = ap.parse_args()
    listed = {l.strip() for l in open(os.path.join(ROOT, "tests", "onnx-node.txt")) if l.strip() and not l.startswith("#")}
    cases = sorted(d for d in os.listdir(a.cases) if os.path.isdir(os.path.join(a.cases, d)))
    fails = []
    for c in cases:
        try:
            err = run_case(os.path.join(a.cases, c))
        except Exception as e:  # noqa: BLE001 - every failure is reported with its message
            err = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        if err:
            fails.append((c, err))
    cpu = subprocess.run(["sh", "-c", "lscpu | grep 'Model name' | sed 's/.*: *//'"], capture_output=True, text=True).stdout.strip()
    n = len(cases)
    lines = [
        "# ONNX Runtime on the ONNX backend node suite",
        "",
        f"Host: {cpu} ({platform.machine()}); onnxruntime {ort.__version__}, onnx {onnx.__version__}.",
        f"Command: `python3 tools/ort_conformance.py` (CPU provider, graph optimizations off; rtol 1e-3, atol 1e-5, integers exact).",
        "",
        f"**ONNX Runtime passes {n - len(fails)} of {n} cases**; lpc lists {len(listed)} as passing (`tests/onnx-node.txt`).",
        f"Cases ORT fails that lpc passes: {sum(1 for c, _ in fails if c in listed)}.",
        "",
        "| case | ORT error | lpc |",
        "|---|---|---|",
    ]
    for c, e in fails:
        e = e.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {c} | {e} | {'passes' if c in listed else 'fails'} |")
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"ORT passes {n - len(fails)}/{n}; report in {a.out}")


if __name__ == "__main__":
    main()
