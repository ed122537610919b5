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
lpc timing: `LPC_GEMM_MEDIANS=<shape> LPC_GEMM_BATCH=R cargo bench -p lpc-jit --bench gemm` (the
criterion bench's medians mode): the median over `--runs` units of R `GemmKernel::run` calls (one
thread, B packed in a plain Vec as the runtime does), i.e. the same timing unit as ORT's. On a busy
machine that matters: a unit of a few ms is preempted as often for both, while criterion's long
samples would average every preemption in and per-call timing would skip most of them.

The VM is noisy (2 vCPUs shared with other jobs) and its speed drifts over minutes, so the script
alternates: each round measures every shape with ORT and then lpc right after; the table reports
the median over rounds, and the per-round ratios show how stable the comparison is. Every figure in
one table comes from the same invocation of this script.

Usage (from the project root):
    /work/venv/bin/python benches/gemm_vs_ort.py [--rounds 3] [--runs 200] [--out benches/results/gemm.md]
"""
import argparse
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


class OrtGemm:
    """One ORT session (1 thread) for `op` on the shape; `gops(runs)` times it."""

    def __init__(self, op, m, n, k, rng):
        self.ops = 2 * m * n * k
        self.copies = max(1, min(32, round(2e8 / self.ops)))
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.log_severity_level = 3
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.sess = ort.InferenceSession(
            model(op, m, n, k, self.copies, rng), so, providers=["CPUExecutionProvider"]
        )
        self.feed = {"X": rng.integers(0, 256, size=(n, k), dtype=np.uint8)}

    def gops(self, runs):
        for _ in range(max(5, runs // 10)):
            self.sess.run(None, self.feed)
        ts = []
        for _ in range(runs):
            t0 = time.perf_counter()
            self.sess.run(None, self.feed)
            ts.append(time.perf_counter() - t0)
        return self.ops / (statistics.median(ts) / self.copies) / 1e9


def cargo_env():
    env = dict(os.environ)
    env.setdefault("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return env


def lpc_gops(label, copies, args):
    """lpc medians (u8 and i32 out) in units of `copies` calls, like the ORT session's."""
    env = cargo_env()
    env.update(LPC_GEMM_MEDIANS=label, LPC_GEMM_BATCH=str(copies), LPC_GEMM_RUNS=str(args.runs))
    cmd = ["cargo", "bench", "-q", "-p", "lpc-jit", "--bench", "gemm"]
    out = subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
    f = out.split()
    if f[0:1] != ["tier"] or f[1] != args.tier:
        sys.exit(f"unexpected lpc bench output (wanted tier {args.tier}): {out!r}")
    return {"u8": float(f[3]), "i32": float(f[5])}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=200, help="timed ORT runs per model and round")
    ap.add_argument("--rounds", type=int, default=3, help="ORT-then-lpc rounds per shape")
    ap.add_argument("--tier", default="zmm", help="lpc GEMM tier expected (the host's best)")
    ap.add_argument("--out", help="also write the markdown here")
    args = ap.parse_args()
    subprocess.run(
        ["cargo", "bench", "-q", "-p", "lpc-jit", "--bench", "gemm", "--no-run"],
        cwd=ROOT, env=cargo_env(), check=True,
    )
    rng = np.random.default_rng(0)
    ops = ("MatMulInteger", "QLinearMatMul")
    sessions = {(label, op): OrtGemm(op, m, n, k, rng) for label, m, n, k in SHAPES for op in ops}
    # per (shape, column): one figure per round; shapes alternate ORT and lpc inside a round
    rounds = {}
    for r in range(args.rounds):
        for label, m, n, k in SHAPES:
            for op in ops:
                rounds.setdefault((label, op), []).append(sessions[(label, op)].gops(args.runs))
            copies = sessions[(label, ops[0])].copies
            for out, g in lpc_gops(label, copies, args).items():
                rounds.setdefault((label, out), []).append(g)
            print(
                f"round {r + 1} {label}: "
                + ", ".join(f"{c} {rounds[(label, c)][-1]:.0f}" for c in ("u8", "i32") + ops),
                file=sys.stderr,
            )
    med = {key: statistics.median(v) for key, v in rounds.items()}
    load = os.getloadavg()
    lines = [
        f"`benches/gemm_vs_ort.py --rounds {args.rounds}` (one invocation), {time.strftime('%Y-%m-%d %H:%M')}, "
        f"onnxruntime {ort.__version__}, 1 thread, load average at the end {load[0]:.1f}/{load[1]:.1f} "
        "(2 vCPUs shared with other jobs).",
        f"Each round times, per shape, ORT and then lpc (`LPC_GEMM_MEDIANS=<shape> cargo bench -p lpc-jit --bench gemm`) "
        f"in the same units (one ORT session.run of R GEMM nodes = R lpc kernel calls; {args.runs} units, median); "
        "the table gives the median over the rounds. "
        f"GOPS = 2·M·N·K / time; in brackets the fraction of the `vpdpbusd zmm` peak ({PEAK:.0f} GOPS, measured "
        "on a quiet host). ORT computes X[N×K] u8 · W[K×M] s8 with W a constant initializer; QLinearMatMul is "
        "per-tensor, u8 out; lpc's u8 out is the fused bias + per-row requantize epilogue.",
        "",
        f"| shape (M×N×K) | lpc {args.tier} u8 out | lpc {args.tier} i32 out | ORT MatMulInteger (i32) "
        "| ORT QLinearMatMul (u8) | lpc i32 / ORT MatMulInteger (per round) | lpc u8 / ORT QLinearMatMul (per round) |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, m, n, k in SHAPES:
        u8, i32 = med[(label, "u8")], med[(label, "i32")]
        mmi, qmm = med[(label, ops[0])], med[(label, ops[1])]
        per = lambda a, b: ", ".join(
            f"{x / y:.2f}" for x, y in zip(rounds[(label, a)], rounds[(label, b)])
        )
        name = f"{m}×{n}×{k}" + (" (ResNet stage-1 conv)" if label.startswith("resnet") else "")
        lines.append(
            f"| {name} | {u8:.0f} ({u8 / PEAK:.2f}) | {i32:.0f} ({i32 / PEAK:.2f}) | {mmi:.0f} ({mmi / PEAK:.2f}) "
            f"| {qmm:.0f} ({qmm / PEAK:.2f}) | {i32 / mmi:.2f} ({per('i32', ops[0])}) "
            f"| {u8 / qmm:.2f} ({per('u8', ops[1])}) |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
