"""INT8 GEMM, 1 thread, side by side in one session: lpc-jit's GEMM kernel (zmm tier, u8 and i32
outputs, from `cargo bench -p lpc-jit --bench gemm`) against ONNX Runtime's MatMulInteger
(u8 x s8 -> i32) and QLinearMatMul (u8 x s8 -> u8, per-tensor scales), same shapes.

Shapes are lpc's M x N x K: M weight rows (output channels), N activation columns (pixels), K depth.
ORT computes the same product transposed, as a model would hold it: X[N, K] u8 activations times a
constant initializer W[K, M] s8 (so ORT may prepack it, like lpc packs its weights at compile time).
Ops = 2*M*N*K; GOPS = ops / median time.

ORT timing: one model per shape with R identical, independent nodes on the same input (R chosen so
one session.run does >= ~0.2 G ops), so Python's per-run overhead is spread over R GEMMs; the time
per GEMM is the median over `--runs` session.run calls (after warm-up) divided by R.
lpc timing: criterion's median estimate (target/criterion/.../new/estimates.json) of
`gemm/<shape>/<tier>/{u8,i32}`, one thread (`GemmKernel::run`).

The VM is noisy (2 vCPUs shared with other jobs): everything is a median, and every figure in one
table comes from the same invocation of this script.

Usage (from the project root):
    /work/venv/bin/python benches/gemm_vs_ort.py [--runs 200] [--out benches/results/gemm.md]
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
from onnx import TensorProto, helper, numpy_helper
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEAK = 940.0  # measured `vpdpbusd zmm` GOPS, 1 thread (../shared/notes/cranelift-int8.md)

# label (criterion group suffix), M, N, K
SHAPES = [
    ("256x256x256", 256, 256, 256),
    ("1024x1024x1024", 1024, 1024, 1024),
    ("resnet_s1_M64_N3136_K576", 64, 3136, 576),
    ("48x64x512", 48, 64, 512),
]


def model(op, m, n, k, copies, rng):
    """A model with `copies` independent `op` nodes computing X[n,k] (u8) @ W[k,m] (s8)."""
    w = rng.integers(-128, 128, size=(k, m), dtype=np.int8)
    inits = [numpy_helper.from_array(w, "W")]
    x = helper.make_tensor_value_info("X", TensorProto.UINT8, [n, k])
    nodes, outs = [], []
    for i in range(copies):
        y = f"Y{i}"
        if op == "MatMulInteger":
            nodes.append(helper.make_node("MatMulInteger", ["X", "W", "xz", "wz"], [y]))
            ot = TensorProto.INT32
        else:
            nodes.append(
                helper.make_node("QLinearMatMul", ["X", "xs", "xz", "W", "ws", "wz", "ys", "yz"], [y])
            )
            ot = TensorProto.UINT8
        outs.append(helper.make_tensor_value_info(y, ot, [n, m]))
    inits += [
        numpy_helper.from_array(np.array(3, np.uint8), "xz"),
        numpy_helper.from_array(np.array(0, np.int8), "wz"),
    ]
    if op == "QLinearMatMul":
        inits += [
            numpy_helper.from_array(np.array(0.02, np.float32), "xs"),
            numpy_helper.from_array(np.array(0.01, np.float32), "ws"),
            numpy_helper.from_array(np.array(float(k) * 0.5, np.float32), "ys"),
            numpy_helper.from_array(np.array(128, np.uint8), "yz"),
        ]
    g = helper.make_graph(nodes, "gemm", [x], outs, initializer=inits)
    mp = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    mp.ir_version = 8
    onnx.checker.check_model(mp)
    return mp.SerializeToString()


def time_ort(op, m, n, k, runs, rng):
    ops = 2 * m * n * k
    copies = max(1, min(32, round(2e8 / ops)))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(model(op, m, n, k, copies, rng), so, providers=["CPUExecutionProvider"])
    feed = {"X": rng.integers(0, 256, size=(n, k), dtype=np.uint8)}
    for _ in range(max(5, runs // 10)):
        sess.run(None, feed)
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, feed)
        ts.append(time.perf_counter() - t0)
    return ops / (statistics.median(ts) / copies) / 1e9


def time_lpc(tier, args):
    env = dict(os.environ)
    env.setdefault("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    cmd = [
        "cargo", "bench", "-p", "lpc-jit", "--bench", "gemm", "--",
        f"{tier}/(u8|i32)$", "--warm-up-time", "1", "--measurement-time", str(args.lpc_secs),
    ]
    print("+", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=sys.stderr)
    crit = os.path.join(env["CARGO_TARGET_DIR"], "criterion")
    res = {}
    for label, m, n, k in SHAPES:
        for out in ("u8", "i32"):
            path = os.path.join(crit, f"gemm_{label}", tier, out, "new", "estimates.json")
            with open(path) as f:
                ns = json.load(f)["median"]["point_estimate"]
            res[(label, out)] = 2 * m * n * k / ns
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=200, help="timed ORT runs per model")
    ap.add_argument("--lpc-secs", type=int, default=3, help="criterion measurement time per bench")
    ap.add_argument("--tier", default="zmm", help="lpc GEMM tier (criterion id prefix)")
    ap.add_argument("--out", help="also write the markdown here")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    ort_res = {}
    for label, m, n, k in SHAPES:
        for op in ("MatMulInteger", "QLinearMatMul"):
            ort_res[(label, op)] = time_ort(op, m, n, k, args.runs, rng)
            print(f"ort {op} {label}: {ort_res[(label, op)]:.0f} GOPS", file=sys.stderr)
    lpc = time_lpc(args.tier, args)
    load = os.getloadavg()
    lines = [
        f"`python benches/gemm_vs_ort.py` (one run: ORT first, then `cargo bench -p lpc-jit --bench gemm`), "
        f"{time.strftime('%Y-%m-%d %H:%M')}, onnxruntime {ort.__version__}, 1 thread, "
        f"load average after the run {load[0]:.1f}/{load[1]:.1f}.",
        f"GOPS = 2·M·N·K / median time; in brackets the fraction of the `vpdpbusd zmm` peak ({PEAK:.0f} GOPS). "
        "ORT computes X[N×K] u8 · W[K×M] s8 (W a constant initializer); QLinearMatMul per-tensor u8 out.",
        "",
        f"| shape (M×N×K) | lpc {args.tier} u8 out | lpc {args.tier} i32 out | ORT MatMulInteger (i32) "
        "| ORT QLinearMatMul (u8) | lpc i32 / ORT MatMulInteger | lpc u8 / ORT QLinearMatMul |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, m, n, k in SHAPES:
        u8, i32 = lpc[(label, "u8")], lpc[(label, "i32")]
        mmi, qmm = ort_res[(label, "MatMulInteger")], ort_res[(label, "QLinearMatMul")]
        name = f"{m}×{n}×{k}" + (" (ResNet stage-1 conv)" if label.startswith("resnet") else "")
        lines.append(
            f"| {name} | {u8:.0f} ({u8 / PEAK:.2f}) | {i32:.0f} ({i32 / PEAK:.2f}) | {mmi:.0f} ({mmi / PEAK:.2f}) "
            f"| {qmm:.0f} ({qmm / PEAK:.2f}) | {i32 / mmi:.2f} | {u8 / qmm:.2f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
