"""Wall time and result of NNCF's `quantize_with_accuracy_control` (the peer of
`lpc quantize --max-drop/--min-sqnr`) on the same models, budgets and data recipe as lpc's
measurements (docs/accuracy-aware.md).

Cases:
  digits   digits_mbv, 300 calibration inputs, the 500 test inputs, agreement drop <= 0 points
  det      ppocr det 320x320, 300 calibration crops of astronaut/coffee/camera/page, 100
           evaluation crops of brick/grass, output SQNR >= 25 dB (expressed to NNCF as a drop
           of the metric "SQNR capped at 40 dB" from its FP32 value 40)
  det-text ppocr det 320x320, the crops of benches/quantize_vs_ort.py (same function, same
           pixels): 300 calibration crops of astronaut/coffee/camera and the LEFT half of
           page.png, 100 evaluation crops of the RIGHT half of page.png (held-out text), same
           SQNR >= 25 dB budget

The ppocr crops follow lpc's recipe (random square-ish crops of 30-100% of the short side,
resized to 320x320, BGR, (x/255-0.5)/0.5) with numpy's seeded RNG: the same recipe, not the
same pixels as lpc's crops.

Usage (from the project root; NNCF is not needed by lpc itself):
    python3 -m venv --system-site-packages /work/venv && /work/venv/bin/pip install nncf
    /work/venv/bin/python benches/nncf_accuracy_control.py [digits|det|det-text ...]

Besides the final line, every NNCF log line is printed with the seconds since the start of
`quantize_with_accuracy_control`, so a run stopped early still shows how far it got when.
"""
import logging
import os
import sys
import time

import numpy as np
import onnx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared")


def crops(files, n_per, seed, size=320):
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = []
    for f in files:
        im = Image.open(os.path.join(SHARED, "data", "images", f)).convert("RGB")
        w, h = im.size
        short = min(w, h)
        for _ in range(n_per):
            s = int(short * rng.uniform(0.3, 1.0))
            x0 = int(rng.integers(0, w - s + 1))
            y0 = int(rng.integers(0, h - s + 1))
            c = im.crop((x0, y0, x0 + s, y0 + s)).resize((size, size), Image.BILINEAR)
            a = np.asarray(c, dtype=np.float32)[:, :, ::-1]  # BGR
            a = (a / 255.0 - 0.5) / 0.5
            out.append(a.transpose(2, 0, 1)[None])
    return out


def sqnr(ref, x):
    ref = np.concatenate([r.ravel() for r in ref])
    x = np.concatenate([r.ravel() for r in x])
    n = float(((ref - x) ** 2).sum())
    return float("inf") if n == 0 else 10 * np.log10(float((ref**2).sum()) / n)


def run(case):
    import nncf
    import openvino as ov

    core = ov.Core()
    if case == "digits":
        path = os.path.join(SHARED, "data", "digits", "digits_mbv.onnx")
        d = os.path.join(SHARED, "data", "digits")
        calib = [x[None] for x in np.load(os.path.join(d, "calib_x.npy"))]
        evalx = [x[None] for x in np.load(os.path.join(d, "test_x.npy"))]
        drop = 0.0
    elif case == "det":
        path = os.path.join(SHARED, "models", "ch_PP-OCRv4_det_infer.onnx")
        calib = crops(["astronaut.png", "coffee.png", "camera.png", "page.png"], 75, 1)
        evalx = crops(["brick.png", "grass.png"], 50, 2)
        drop = 15.0  # min(SQNR, 40) >= 25 dB  <=>  drop of at most 15 from FP32's 40
    elif case == "det-text":
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from quantize_vs_ort import CALIB_IMAGES, crops as bench_crops

        path = os.path.join(SHARED, "models", "ch_PP-OCRv4_det_infer.onnx")
        calib = [x[None] for x in bench_crops(CALIB_IMAGES, 300, (320, 320), seed=1)]
        evalx = [x[None] for x in bench_crops(["page.png:right"], 100, (320, 320), seed=2)]
        drop = 15.0
    else:
        raise SystemExit(f"unknown case {case!r}: digits, det, det-text")
    model = core.read_model(path)
    if case != "digits":
        model.reshape({model.inputs[0].get_any_name(): [1, 3, 320, 320]})
    cfg = {"INFERENCE_PRECISION_HINT": "f32"}  # strict FP32 reference (no bf16 on AMX)
    fp32 = core.compile_model(model, "CPU", cfg)
    ref = [fp32(x)[0] for x in evalx]

    def metric(compiled, dataset):
        outs = [compiled(x)[0] for x in dataset]
        if case == "digits":
            agree = np.mean([np.argmax(a) == np.argmax(b) for a, b in zip(outs, ref)])
            return float(agree)
        return min(sqnr(ref, outs), 40.0)

    t = time.perf_counter()

    class Stamp(logging.Handler):
        def emit(self, rec):
            print(f"[{time.perf_counter() - t:7.1f} s] {rec.getMessage()}", flush=True)

    logging.getLogger("nncf").addHandler(Stamp())
    q = nncf.quantize_with_accuracy_control(
        model,
        calibration_dataset=nncf.Dataset(calib),
        validation_dataset=nncf.Dataset(evalx),
        validation_fn=metric,
        max_drop=drop / 100.0 if case == "digits" else drop,
        drop_type=nncf.DropType.ABSOLUTE,
        subset_size=300,
    )
    secs = time.perf_counter() - t
    qc = core.compile_model(q, "CPU", cfg)
    outs = [qc(x)[0] for x in evalx]
    if case == "digits":
        flips = sum(int(np.argmax(a) != np.argmax(b)) for a, b in zip(outs, ref))
        res = f"{flips} flips of {len(ref)}"
    else:
        res = f"SQNR {sqnr(ref, outs):.2f} dB on {len(ref)} crops"
    print(f"NNCF quantize_with_accuracy_control {case}: {secs:.1f} s, {res}", flush=True)


if __name__ == "__main__":
    for c in sys.argv[1:] or ["digits", "det"]:
        run(c)
