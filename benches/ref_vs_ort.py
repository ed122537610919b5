"""Side-by-side latency: lpc's reference interpreter (`lpc bench --backend ref`) against ONNX
Runtime FP32, same models, same inputs, 1 and 2 threads, in one run. Prints a markdown table of
medians and ratios (lpc / ORT; lower is better for lpc).

Usage (from the project root):
    pip install onnxruntime==1.32.0 onnx numpy
    python3 benches/ref_vs_ort.py [--runs 20] [--out benches/results/ref_vs_ort.md]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import onnx
import onnx.numpy_helper
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, "..", "shared", "models")
CASES = [
    ("ppocr cls 48x192", "ch_ppocr_mobile_v2.0_cls_infer"),
    ("ppocr det 320x320", "ch_PP-OCRv4_det_infer"),
    ("light_resnet50", "light_resnet50"),
    ("light_squeezenet", "light_squeezenet"),
]


def ort_median(model, feed, threads, runs):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    sess.run(None, feed)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        sess.run(None, feed)
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def lpc_median(lpc, model, name, pb, threads, runs):
    out = subprocess.run(
        [lpc, "bench", model, "--input", f"{name}={pb}", "--threads", str(threads), "--runs", str(runs), "--json"],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out)["median_ms"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "lpc-cli"], cwd=ROOT, check=True)
    lpc = os.path.join(ROOT, "target", "release", "lpc")
    rows = ["| model | threads | lpc ref (ms) | ORT FP32 (ms) | lpc / ORT |", "|---|---|---|---|---|"]
    for label, stem in CASES:
        model = os.path.join(MODELS, stem + ".onnx")
        pb = os.path.join(MODELS, "reference", stem, "input_0.pb")
        t = onnx.TensorProto()
        with open(pb, "rb") as f:
            t.ParseFromString(f.read())
        x = onnx.numpy_helper.to_array(t)
        graph = onnx.load(model, load_external_data=False).graph
        inits = {t.name for t in graph.initializer}
        name = next(i.name for i in graph.input if i.name not in inits)
        for threads in (1, 2):
            o = ort_median(model, {name: x}, threads, args.runs)
            l = lpc_median(lpc, model, name, pb, threads, args.runs)
            rows.append(f"| {label} | {threads} | {l:.2f} | {o:.2f} | {l / o:.2f} |")
            print(rows[-1], flush=True)
    table = "\n".join(rows)
    header = f"lpc ref vs ONNX Runtime {ort.__version__} FP32, median of {args.runs} warm runs, {time.strftime('%Y-%m-%d')}\n\n"
    print("\n" + header + table)
    if args.out:
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(header + table + "\n")


if __name__ == "__main__":
    sys.exit(main())
