"""Dynamic INT8 side by side: `lpc quantize --mode dynamic` against ONNX Runtime's `quantize_dynamic`
on the zoo's transformer and recurrent models, at several sequence lengths.

Per model and length, one run:
  accuracy: on an evaluation set (seeded inputs as benches/zoo.py makes them) against FP32 ONNX
            Runtime: cosine and SQNR of the worst output (top-1 agreement for classifiers), for lpc's
            model run by `lpc run --backend jit` (which folds it to integer kernels), and for ORT's
            `quantize_dynamic` (defaults: int8 weights per tensor; and per_channel=True) run by ORT
  export:   lpc's dynamic ONNX loaded and run by ONNX Runtime and by OpenVINO
  jit==ref: lpc's model under `--backend jit` and `--backend ref`, bit-exact
  latency:  1 thread, ms, median of round medians, engines taking turns: lpc dynamic (jit), ORT FP32,
            ORT dynamic (its best form of the two), OpenVINO default precision (bf16 where the host has
            it) and strict f32

Usage (from the project root, with onnxruntime, openvino, onnx and numpy installed):
    python3 benches/dynamic.py [--calib 32] [--eval 16] [--runs 20] [--rounds 3] [--out benches/results/dynamic.md]
"""
import argparse
import datetime
import glob
import json
import os
import platform
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zoo import (ZOO, compare, cpu_line, export_runs, fmt_metric, jit_equals_ref, lpc_inputs,  # noqa: E402
                 lpc_run, make_set, one_line, ort_session, ov_compile, read_outputs, run_ort, sample, sh, take_turns, timed)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (folder, task, input shapes per length): the zoo's transformer and recurrent models.
MODELS = [
    ("minilm_l6_w8", "embedding", {s: {"input_ids": ([1, s], "int64"), "attention_mask": ([1, s], "int64"),
                                       "token_type_ids": ([1, s], "int64")} for s in (16, 64, 128)}),
    ("eeg_seizure_lstm", "classifier", {None: {"x": ([1, 100, 64], "float32")}}),
    ("plcmos_v2_gru", "sqnr", {None: {"degraded_audio": ([1, 1, 100, 257], "float32"),
                                      "rater_embed": ([1, 64], "float32")}}),
    ("eeg_spindle_unet", "sqnr", {None: {"raw_signal": ([1, 1, 7500], "float32"),
                                         "spectrogram": ([1, 15, 7500], "float32")}}),
]


def peer_weights(lpc, model, work):
    """The model with its constant weights as float initializers, as a user of ORT's quantizer would
    give it: a weight-only int8 model (int8 initializers -> Cast -> Mul) hides its weights from
    `quantize_dynamic`, which then leaves its matmuls alone. `lpc import` folds the constants
    (the file runs in ORT within 1e-6 of the original)."""
    import onnx

    ops = {n.op_type for n in onnx.load(model, load_external_data=False).graph.node}
    if "Cast" not in ops:
        return model
    out = os.path.join(work, "peer.onnx")
    sh([lpc, "import", model, "-o", out])
    return out


def ort_dynamic(model, out, per_channel):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(model, out, weight_type=QuantType.QInt8, per_channel=per_channel)
    return out


def one_case(lpc, folder, task, seq, shapes, args):
    (model,) = glob.glob(os.path.join(ZOO, folder, "*.onnx"))
    work = tempfile.mkdtemp(prefix=f"lpc-dyn-{folder}-")
    row = {"model": folder if seq is None else f"{folder} (seq {seq})", "errors": []}

    def stage(key, fn):
        try:
            row[key] = fn()
        except Exception as e:  # noqa: BLE001  (a failure is a result)
            row[key] = None
            row["errors"].append(f"{key}: {one_line(e)}")
        return row[key]

    evals = make_set(shapes, args.eval, seed=1000)
    one = sample(evals, 0)
    fp32 = ort_session(model)
    names = [o.name for o in fp32.get_outputs()]
    ref = run_ort(fp32, evals)
    dyn = os.path.join(work, "dyn.onnx")

    calib_path = os.path.join(work, "calib.npz")
    np.savez(calib_path, **make_set(shapes, args.calib, seed=1))

    def quantize():
        t = time.perf_counter()
        sh([lpc, "quantize", model, "--mode", "dynamic", "--calib", calib_path, "--subset", "0", "-o", dyn])
        return time.perf_counter() - t

    stage("lpc_quantize_s", quantize)
    if row["lpc_quantize_s"] is None:
        return row

    def lpc_acc():
        outs = [read_outputs(lpc_run(lpc, dyn, sample(evals, i), work, "jit", f"e{i}"), names)
                for i in range(args.eval)]
        return compare(ref, [np.stack([o[k] for o in outs]) for k in range(len(names))], task)

    stage("lpc_acc", lpc_acc)

    def jit_eq_ref():
        return jit_equals_ref(lpc, dyn, one, work, names)

    stage("jit_eq_ref", jit_eq_ref)

    stage("export", lambda: export_runs(dyn, one, row["errors"]))
    ort_q = {}
    peer = stage("peer_form", lambda: peer_weights(lpc, model, work))
    for pc in (False, True) if peer else ():
        key = "per-channel" if pc else "per-tensor"
        t = time.perf_counter()
        p = stage(f"ort_{key}", lambda pc=pc: ort_dynamic(peer, os.path.join(work, f"ort.{key}.onnx"), pc))
        if p:
            row[f"ort_{key}_s"] = time.perf_counter() - t
            ort_q[key] = p
            stage(f"ort_{key}_acc", lambda p=p: compare(ref, run_ort(ort_session(p), evals), task))

    runners = {}
    inp = lpc_inputs(one, work, "bench")

    def lpc_bench(r):
        o = sh([lpc, "bench", dyn, "--backend", "jit", "--threads", "1", "--runs", str(r), "--json"] + inp)
        return json.loads(o)["median_ms"]

    runners["lpc dynamic"] = lpc_bench
    runners["ORT FP32"] = lambda r, s=fp32: timed(lambda: s.run(None, one), r)
    runners["ORT on lpc's dynamic"] = lambda r, s=ort_session(dyn): timed(lambda: s.run(None, one), r)
    for key, p in ort_q.items():
        s = ort_session(p)
        runners[f"ORT dynamic {key}"] = lambda r, s=s: timed(lambda: s.run(None, one), r)
    for label, strict in (("OV default", False), ("OV f32", True)):
        try:
            req = ov_compile(model, strict).create_infer_request()
            runners[label] = lambda r, q=req: timed(lambda: q.infer(one), r)
        except Exception as e:  # noqa: BLE001
            row["errors"].append(f"{label}: {one_line(e)}")
    row["latency"] = take_turns(runners, args, stage, row["errors"])
    row["task"] = task
    return row


def render(rows, args):
    import onnxruntime
    import openvino

    lat_cols = ["lpc dynamic", "ORT FP32", "ORT dynamic per-tensor", "ORT dynamic per-channel", "ORT on lpc's dynamic",
                "OV default", "OV f32"]
    out = ["# Dynamic INT8 side by side", "",
           f"Host: {cpu_line()}. One run of `python3 benches/dynamic.py --calib {args.calib} --eval {args.eval} --runs {args.runs} "
           f"--rounds {args.rounds}`, {datetime.date.today()}; onnxruntime {onnxruntime.__version__}, "
           f"openvino {openvino.__version__}; Python {platform.python_version()}.", "",
           "Accuracy on the evaluation set against FP32 ONNX Runtime (task metric first; SQNR and cosine of the "
           "worst output). lpc: `lpc quantize MODEL --mode dynamic -o dyn.onnx`, run with `lpc run dyn.onnx "
           "--backend jit` (folded to integer kernels by default); with `--calib` (32 seeded samples) outlier "
           "channels go through float. ORT: `quantize_dynamic(weight_type=QInt8)`, per tensor (its default) and "
           "`per_channel=True`, given the model with its weights as float initializers (`lpc import`; the zoo's "
           "MiniLM ships weight-only int8, whose weights ORT's quantizer cannot see). \"ORT on lpc's dynamic\": "
           "lpc's exported file run by ONNX Runtime. Latency: 1 thread, ms, median of round medians.", "",
           "## Accuracy", "",
           "| model | lpc dynamic | ORT dynamic per-tensor | ORT dynamic per-channel | lpc export runs in | jit == ref |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        t = r.get("task", "sqnr")
        cell = lambda k: fmt_metric(r.get(k), t) if r.get(k) else "–"  # noqa: E731
        out.append(f"| {r['model']} | {cell('lpc_acc')} | {cell('ort_per-tensor_acc')} | {cell('ort_per-channel_acc')} "
                   f"| {r.get('export') or '–'} | {r.get('jit_eq_ref') or '✗'} |")
    out += ["", "## Latency (1 thread, ms)", "",
            "| model | " + " | ".join(lat_cols) + " | best ORT dynamic / lpc |",
            "|---|" + "---|" * (len(lat_cols) + 1)]
    for r in rows:
        lat = r.get("latency", {})
        cells = [f"{lat[c]:.2f}" if c in lat else "–" for c in lat_cols]
        ort = [lat[c] for c in lat_cols if c.startswith("ORT dynamic") and c in lat]
        ratio = f"{min(ort) / lat['lpc dynamic']:.2f}" if ort and "lpc dynamic" in lat else "–"
        out.append(f"| {r['model']} | " + " | ".join(cells) + f" | {ratio} |")
    out += ["", "## Quantization time (s)", "", "| model | lpc | ORT per-tensor | ORT per-channel |", "|---|---|---|---|"]
    for r in rows:
        f = lambda k: f"{r[k]:.2f}" if r.get(k) is not None else "–"  # noqa: E731
        out.append(f"| {r['model']} | {f('lpc_quantize_s')} | {f('ort_per-tensor_s')} | {f('ort_per-channel_s')} |")
    errs = [f"- {r['model']}: {e}" for r in rows for e in r["errors"]]
    out += ["", "## Errors, as reported", ""] + (errs or ["none"]) + [""]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lpc", default=os.path.join(ROOT, "target", "release", "lpc"))
    ap.add_argument("--calib", type=int, default=32)
    ap.add_argument("--eval", type=int, default=16)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    rows = []
    for folder, task, lengths in MODELS:
        if args.only and args.only not in folder:
            continue
        for seq, shapes in lengths.items():
            print(f"{folder} {seq or ''}", file=sys.stderr, flush=True)
            rows.append(one_case(args.lpc, folder, task, seq, shapes, args))
    text = render(rows, args)
    if args.out:
        open(args.out, "w").write(text)
    print(text)


if __name__ == "__main__":
    main()
