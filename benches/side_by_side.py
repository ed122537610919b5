"""Side-by-side latency, one run, same inputs: lpc INT8 (JIT), lpc FP32 (JIT), ONNX Runtime FP32 and
INT8 (its quantize_static, QDQ per-channel), OpenVINO FP32 (precision hint f32) and INT8 (NNCF), at
1 and 2 threads. Writes a markdown table of medians and the ratios peer / lpc INT8 (> 1: lpc faster).

Usage (from the project root; a venv keeps the peers out of the system Python):
    python3 -m venv /tmp/bench-venv
    /tmp/bench-venv/bin/pip install onnxruntime==1.32.0 onnx numpy pillow sympy openvino nncf
    /tmp/bench-venv/bin/python benches/side_by_side.py [--runs 30] [--rounds 5] [--out benches/results/side_by_side.md]

Calibration for every quantizer is the same .npy written here: digits' calib_x (300), 64 seeded
crops of the shared photos for PaddleOCR (BGR, (x/255-0.5)/0.5), 32 uniform [-1, 1] tensors for
the light_* models (their weights are constant: they are for speed only).
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared")
MODELS = os.path.join(SHARED, "models")
DIGITS = os.path.join(SHARED, "data", "digits")
IMAGES = os.path.join(SHARED, "data", "images")

# label, model path, input shape (None = take the digits test set), calibration kind
CASES = [
    ("digits_cnn b1", os.path.join(DIGITS, "digits_cnn.onnx"), 1, "digits"),
    ("digits_cnn b64", os.path.join(DIGITS, "digits_cnn.onnx"), 64, "digits"),
    ("ppocr cls", os.path.join(MODELS, "ch_ppocr_mobile_v2.0_cls_infer.onnx"), (1, 3, 48, 192), "photos"),
    ("ppocr det 320", os.path.join(MODELS, "ch_PP-OCRv4_det_infer.onnx"), (1, 3, 320, 320), "photos"),
    ("light_resnet50", os.path.join(MODELS, "light_resnet50.onnx"), (1, 3, 224, 224), "random"),
    ("light_squeezenet", os.path.join(MODELS, "light_squeezenet.onnx"), (1, 3, 224, 224), "random"),
]


def input_name(model):
    g = onnx.load(model, load_external_data=False).graph
    inits = {t.name for t in g.initializer}
    return next(i.name for i in g.input if i.name not in inits)


def photo_crops(shape, n, seed=1):
    from PIL import Image

    rng = np.random.default_rng(seed)
    files = ["astronaut.png", "coffee.png", "camera.png", "page.png"]
    _, c, h, w = shape
    imgs = [np.asarray(Image.open(os.path.join(IMAGES, f)).convert("RGB")) for f in files]
    imgs = [im for im in imgs if im.shape[0] >= h and im.shape[1] >= w]  # page.png is 191 high
    out = []
    for i in range(n):
        img = imgs[i % len(imgs)]
        H, W, _ = img.shape
        y, x = rng.integers(0, H - h + 1), rng.integers(0, W - w + 1)
        crop = img[y : y + h, x : x + w, ::-1].astype(np.float32)  # BGR
        out.append(((crop / 255.0 - 0.5) / 0.5).transpose(2, 0, 1))
    return np.stack(out).astype(np.float32)


def data_for(shape, kind):
    """(calibration set [N, ...], one timed input)."""
    if kind == "digits":
        calib = np.load(os.path.join(DIGITS, "calib_x.npy")).astype(np.float32)
        x = np.load(os.path.join(DIGITS, "test_x.npy"))[:shape].astype(np.float32)
        return calib, x
    if kind == "photos":
        calib = photo_crops(shape, 64)
        return calib, photo_crops(shape, 1, seed=7)
    rng = np.random.default_rng(3)
    calib = rng.uniform(-1, 1, (32,) + tuple(shape[1:])).astype(np.float32)
    return calib, rng.uniform(-1, 1, shape).astype(np.float32)


def timed(fn, runs):
    fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def ort_session(model, threads):
    import onnxruntime as ort

    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    o.inter_op_num_threads = 1
    return ort.InferenceSession(model, o, providers=["CPUExecutionProvider"])


def ort_int8(model, name, calib, out):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{name: calib[i : i + 1]} for i in range(len(calib))])

        def get_next(self):
            return next(self.it, None)

    # Per-channel QDQ needs opset >= 13 (DequantizeLinear's axis): upgrade older models first.
    m = onnx.load(model)
    # Old exports list initializers as graph inputs too; the quantizer then expects them fed.
    inits = {t.name for t in m.graph.initializer}
    if any(i.name in inits for i in m.graph.input):
        keep = [i for i in m.graph.input if i.name not in inits]
        del m.graph.input[:]
        m.graph.input.extend(keep)
        model = out + ".inputs.onnx"
        onnx.save(m, model)
    if max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")) < 13:
        from onnx import version_converter

        model = out + ".opset13.onnx"
        onnx.save(version_converter.convert_version(m, 13), model)
    pre = out + ".pre.onnx"
    quant_pre_process(model, pre, skip_symbolic_shape=True)
    quantize_static(pre, out, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return out


def ov_compiled(model_or_path, threads):
    import openvino as ov

    core = ov.Core()
    cfg = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32",
           "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
    return core.compile_model(model_or_path, "CPU", cfg)


def ov_int8_model(model, name, calib):
    import nncf
    import openvino as ov

    m = ov.Core().read_model(model)
    ds = nncf.Dataset([calib[i : i + 1] for i in range(len(calib))])
    return nncf.quantize(m, ds, subset_size=len(calib))


def lpc_bench(lpc, model, name, xpath, threads, runs, backend="jit"):
    out = subprocess.run(
        [lpc, "bench", model, "--backend", backend, "--input", f"{name}={xpath}",
         "--threads", str(threads), "--runs", str(runs), "--json"],
        check=True, capture_output=True, text=True).stdout
    return json.loads(out)["median_ms"]


def lpc_int8(lpc, model, calib_path, n_calib, work):
    stem = os.path.join(work, os.path.basename(model).rsplit(".", 1)[0])
    subprocess.run([lpc, "quantize", model, "--calib", calib_path, "--subset", str(n_calib), "-o", stem + ".int8.lir"],
                   check=True, capture_output=True)
    subprocess.run([lpc, "fold", stem + ".int8.lir", "-o", stem + ".folded.lir"],
                   check=True, capture_output=True)
    return stem + ".folded.lir"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30, help="timed runs per engine per round")
    ap.add_argument("--turn-ms", type=float, default=300, help="least work per engine turn (ms)")
    ap.add_argument("--rounds", type=int, default=5, help="turns each engine takes (figures: median of round medians)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--backend", default="jit", help="lpc backend (jit, or ref to compare)")
    ap.add_argument("--only", default=None, help="substring of a case label")
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "lpc-cli"], cwd=ROOT, check=True)
    lpc = os.path.join(ROOT, "target", "release", "lpc")
    import onnxruntime as ort
    import openvino as ov

    cols = ["lpc INT8", "lpc FP32", "ORT FP32", "ORT INT8", "OV FP32", "OV INT8"]
    rows = ["| model | threads | " + " | ".join(c + " (ms)" for c in cols)
            + " | ORT INT8 / lpc INT8 | OV INT8 / lpc INT8 | lpc FP32 / lpc INT8 |",
            "|---|---|" + "---|" * (len(cols) + 3)]
    work = tempfile.mkdtemp(prefix="lpc-sbs-")
    for label, model, shape, kind in CASES:
        if args.only and args.only not in label:
            continue
        name = input_name(model)
        calib, x = data_for(shape, kind)
        calib_path = os.path.join(work, label.replace(" ", "_") + ".calib.npy")
        x_path = os.path.join(work, label.replace(" ", "_") + ".x.npy")
        np.save(calib_path, calib)
        np.save(x_path, x)
        lpc_q = lpc_int8(lpc, model, calib_path, len(calib), work)
        try:
            ort_q = ort_int8(model, name, calib, os.path.join(work, label.replace(" ", "_") + ".qdq.onnx"))
        except Exception as e:  # e.g. opset-9 models the version converter cannot upgrade
            print(f"{label}: ORT quantize_static failed: {e}", file=sys.stderr)
            ort_q = None
        ov_q = ov_int8_model(model, name, calib)
        for threads in (1, 2):
            # Engines take turns, `--rounds` times `--runs` runs each: this VM's noise comes in
            # phases of seconds, so one engine's block alone could land in a slow phase. Each
            # figure is the median of its rounds' medians.
            runners = {
                "lpc INT8": lambda r: lpc_bench(lpc, lpc_q, name, x_path, threads, r, args.backend),
                "lpc FP32": lambda r: lpc_bench(lpc, model, name, x_path, threads, r, args.backend),
            }
            for key, m in (("ORT FP32", model), ("ORT INT8", ort_q)):
                if m is not None:
                    s = ort_session(m, threads)
                    runners[key] = lambda r, s=s: timed(lambda: s.run(None, {name: x}), r)
            for key, m in (("OV FP32", model), ("OV INT8", ov_q)):
                req = ov_compiled(m, threads).create_infer_request()
                runners[key] = lambda r, req=req: timed(lambda: req.infer({0: x}), r)
            # A first, untimed round warms every engine up and sizes its turns: at least
            # `--runs` runs and `--turn-ms` of work, so that a tiny model's turn is not all
            # wake-up (lpc's digits b1 measured 0.06 ms in 30-run turns, 0.015 ms alone).
            est = {k: run(args.runs) for k, run in runners.items()}
            n = {k: max(args.runs, math.ceil(args.turn_ms / max(est[k], 1e-3))) for k in runners}
            per = {k: [] for k in runners}
            for _ in range(args.rounds):
                for k, run in runners.items():
                    per[k].append(run(n[k]))
            t = {c: statistics.median(per[c]) if per.get(c) else float("nan") for c in cols}
            li = t["lpc INT8"]
            rows.append(f"| {label} | {threads} | " + " | ".join(f"{t[c]:.2f}" for c in cols)
                        + f" | {t['ORT INT8'] / li:.2f} | {t['OV INT8'] / li:.2f} | {t['lpc FP32'] / li:.2f} |")
            print(rows[-1], flush=True)
    header = (f"Median of {args.rounds} rounds' medians (engines take turns; each turn at least {args.runs} "
              f"warm runs and {args.turn_ms:.0f} ms, after one untimed round), "
              "one run of `benches/side_by_side.py`, "
              f"{time.strftime('%Y-%m-%d')}; onnxruntime {ort.__version__}, openvino {ov.__version__}. "
              "Ratios > 1 mean lpc INT8 is faster.\n\n")
    table = header + "\n".join(rows) + "\n"
    print("\n" + table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table)


if __name__ == "__main__":
    sys.exit(main())
