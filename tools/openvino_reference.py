"""OpenVINO reference data for lpc's OpenVINO IR reader (crates/lpc-openvino).

Usage (from the project root; needs `pip install openvino numpy`):
    python3 tools/openvino_reference.py            # digits predictions -> tests/data/openvino/
    python3 tools/openvino_reference.py --convert /tmp/lpc-ov-ir
                                                   # also convert ../shared ONNX models to IR

1. Runs OpenVINO's CPU plugin, strict FP32 (INFERENCE_PRECISION_HINT=f32, 1 thread), on the
   NNCF-quantized digits IRs in ../shared/data/digits/quantized-by-peers/ over the 500 test
   images (test_x.npy, one image per inference) and saves, per model,
   tests/data/openvino/<stem>.top1.npy (int64 [500], argmax) and <stem>.logits.npy
   (float32 [500, 10]). These are committed; lpc's tests compare against them.
2. With --convert DIR: converts ../shared/models/*.onnx and the two FP32 digits models to IR with
   openvino.convert_model + save_model into DIR, twice: <stem>.xml with FP32 weights
   (compress_to_fp16=False) and <stem>.fp16.xml with OpenVINO's default FP16-compressed weights.
   Nothing of this is committed; run `LPC_OV_IR_DIR=DIR cargo test -p lpc-openvino --test
   openvino_convert` to check that lpc runs each IR like the ONNX model it came from.
3. Builds small operator-coverage IRs with OpenVINO's opset API (grouped and transposed
   convolutions with compressed u8/i8 weights and zero points, MatMul transposes, pooling with
   indices, Interpolate, shape subgraphs, ...) into tests/data/openvino/ops/<case>.{xml,bin}
   with a seeded input (input.npy) and OpenVINO's FP32 CPU outputs (output_K.npy), all
   committed and a few KB each; `cargo test -p lpc-openvino --test openvino_ops` checks lpc's run.
"""
import glob
import os
import sys

import numpy as np
import openvino as ov

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared")
DIGITS = os.path.join(SHARED, "data", "digits")
PEERS = os.path.join(DIGITS, "quantized-by-peers")


def reference_predictions():
    x = np.load(os.path.join(DIGITS, "test_x.npy"))
    y = np.load(os.path.join(DIGITS, "test_y.npy"))
    out_dir = os.path.join(ROOT, "tests", "data", "openvino")
    os.makedirs(out_dir, exist_ok=True)
    core = ov.Core()
    config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1}
    for stem in ["digits_cnn.nncf-int8", "digits_mbv.nncf-int8"]:
        compiled = core.compile_model(os.path.join(PEERS, stem + ".xml"), "CPU", config)
        req = compiled.create_infer_request()
        logits = np.concatenate([req.infer({0: x[i : i + 1]})[0] for i in range(len(x))]).astype(np.float32)
        top1 = logits.argmax(axis=1).astype(np.int64)
        np.save(os.path.join(out_dir, stem + ".top1.npy"), top1)
        np.save(os.path.join(out_dir, stem + ".logits.npy"), logits)
        print(f"{stem}: OpenVINO {ov.__version__} CPU f32, top-1 {np.mean(top1 == y) * 100:.1f}%")


def convert(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    models = sorted(glob.glob(os.path.join(SHARED, "models", "*.onnx")))
    models += [os.path.join(DIGITS, "digits_cnn.onnx"), os.path.join(DIGITS, "digits_mbv.onnx")]
    for path in models:
        stem = os.path.basename(path)[: -len(".onnx")]
        model = ov.convert_model(path)
        ov.save_model(model, os.path.join(out_dir, stem + ".xml"), compress_to_fp16=False)
        ov.save_model(ov.convert_model(path), os.path.join(out_dir, stem + ".fp16.xml"))
        print(f"{stem}: wrote {out_dir}/{stem}.xml and {stem}.fp16.xml")


def op_cases():
    import openvino.opset13 as ops
    from openvino import opset8, opset10

    rng = np.random.default_rng(2026)
    f32 = np.float32

    def c(a):
        return ops.constant(np.asarray(a))

    def compressed(q, zp, scale):
        """Integer weights as NNCF stores them: Const -> Convert -> [Subtract zp] -> Multiply."""
        w = ops.convert(c(q), "f32")
        if zp is not None:
            w = ops.subtract(w, ops.convert(c(zp), "f32"))
        return ops.multiply(w, c(scale.astype(f32)))

    cases = {}

    # Grouped conv (G=2, O/G=3) with asymmetric u8 weights, per-output-channel scale/zp.
    x = ops.parameter([1, 4, 9, 9], f32, name="x")
    q = rng.integers(0, 256, size=(2, 3, 2, 3, 3)).astype(np.uint8)
    zp = rng.integers(100, 156, size=(2, 3, 1, 1, 1)).astype(np.uint8)
    sc = rng.uniform(0.001, 0.01, size=(2, 3, 1, 1, 1))
    # (No FakeQuantize here: with one, OpenVINO's CPU plugin runs this conv in INT8 and
    # differs from the FP32 semantics of the IR by up to 3e-2; the digits IRs cover FQ.)
    y = ops.group_convolution(x, compressed(q, zp, sc), [2, 2], [1, 0], [1, 1], [1, 1])
    y = ops.hswish(y)
    q2 = rng.integers(-127, 128, size=(5, 6, 1, 1)).astype(np.int8)
    y = ops.convolution(y, compressed(q2, None, rng.uniform(0.01, 0.02, size=(5, 1, 1, 1))), [1, 1], [0, 0], [0, 0], [1, 1])
    cases["group_conv_u8"] = ([x], [ops.relu(y)], rng.normal(size=(1, 4, 9, 9)))

    # Depthwise-style grouped conv with plain f32 weights, same_upper padding, HSigmoid, Clamp.
    x = ops.parameter([2, 3, 7, 7], f32, name="x")
    w = c(rng.normal(size=(3, 2, 1, 3, 3)).astype(f32))
    y = ops.group_convolution(x, w, [2, 2], [0, 0], [0, 0], [1, 1], auto_pad="same_upper")
    y = ops.clamp(ops.hsigmoid(y), 0.1, 0.8)
    cases["group_conv_same"] = ([x], [y], rng.normal(size=(2, 3, 7, 7)))

    # MatMul: transpose_b with per-row i8 weights, transpose_a on activations, then Softmax.
    x = ops.parameter([2, 5, 8], f32, name="x")
    q = rng.integers(-127, 128, size=(6, 8)).astype(np.int8)
    y = ops.matmul(x, compressed(q, None, rng.uniform(0.01, 0.05, size=(6, 1))), False, True)
    b = c(rng.normal(size=(5, 4)).astype(f32))
    y = ops.matmul(y, b, True, False)
    cases["matmul_transposes"] = ([x], [ops.softmax(y, -1)], rng.normal(size=(2, 5, 8)))

    # Pooling: MaxPool-8 with indices used, AvgPool with exclude-pad and ceil rounding.
    x = ops.parameter([1, 2, 7, 7], f32, name="x")
    mp = opset8.max_pool(x, [2, 2], [1, 1], [1, 1], [0, 0], [3, 3], "floor", None, "i32")
    ap = ops.avg_pool(x, [2, 2], [1, 1], [1, 1], [3, 3], True, "ceil")
    cases["pools"] = ([x], [mp.output(0), ops.convert(mp.output(1), "f32"), ap], rng.normal(size=(1, 2, 7, 7)))

    # Interpolate-11 (nearest/asymmetric/floor by scales; linear_onnx/half_pixel by sizes), Concat.
    x = ops.parameter([1, 2, 4, 5], f32, name="x")
    a = ops.interpolate(x, c(np.array([2.0, 2.0], f32)), "nearest", "scales", coordinate_transformation_mode="asymmetric", nearest_mode="floor", axes=c(np.array([2, 3], np.int64)))
    bb = ops.interpolate(x, c(np.array([8, 10], np.int64)), "linear_onnx", "sizes", coordinate_transformation_mode="half_pixel", axes=c(np.array([2, 3], np.int64)))
    # Interpolate-4: cubic, align_corners, by sizes over all axes (no axes input).
    cu = opset10.interpolate(x, c(np.array([1, 2, 8, 10], np.int64)), c(np.array([1, 1, 2, 2], f32)), "cubic", "sizes", coordinate_transformation_mode="align_corners")
    cases["interpolate"] = ([x], [ops.concat([a, bb, cu], 1)], rng.normal(size=(1, 2, 4, 5)))

    # FakeQuantize on weights (POT style), per output channel, under GroupConvolution and a
    # transpose_b MatMul: the layout change is pushed through the FakeQuantize's ranges.
    x = ops.parameter([1, 4, 6, 6], f32, name="x")
    w = rng.normal(size=(2, 3, 2, 3, 3)).astype(f32)
    lo = -np.abs(w).max(axis=(2, 3, 4), keepdims=True)
    wq = ops.fake_quantize(c(w), c(lo), c(-lo), c(lo), c(-lo), 255)
    y = ops.relu(ops.group_convolution(x, wq, [1, 1], [0, 0], [0, 0], [1, 1]))
    y = ops.reshape(y, c(np.array([1, 6, 16], np.int64)), False)
    m = rng.normal(size=(7, 16)).astype(f32)
    lo = -np.abs(m).max(axis=1, keepdims=True)
    mq = ops.fake_quantize(c(m), c(lo), c(-lo), c(lo), c(-lo), 255)
    cases["fq_weights"] = ([x], [ops.matmul(y, mq, False, True)], rng.normal(size=(1, 4, 6, 6)))

    # Shape subgraph, Reshape special_zero, Transpose, ReduceMean, Squeeze/Unsqueeze, Pad, Split,
    # StridedSlice, Gather, PRelu.
    x = ops.parameter([2, 3, 4, 5], f32, name="x")
    shp = ops.shape_of(x, "i32")
    nc = ops.gather(shp, c(np.array([0, 1], np.int32)), c(np.int32(0)))
    flat = ops.reshape(x, ops.concat([nc, c(np.array([-1], np.int32))], 0), False)
    t = ops.transpose(flat, c(np.array([0, 2, 1], np.int64)))
    m = ops.reduce_mean(t, c(np.array([1], np.int64)), False)
    u = ops.squeeze(ops.unsqueeze(m, c(np.array([0], np.int64))), c(np.array([0], np.int64)))
    p = ops.pad(x, c(np.array([0, 0, 1, 2], np.int64)), c(np.array([0, 0, 2, 1], np.int64)), "reflect")
    s1 = ops.split(p, c(np.int64(1)), 3).output(1)
    ss = ops.strided_slice(x, c(np.array([0, 1, 0, 4], np.int64)), c(np.array([0, 3, 4, 0], np.int64)), c(np.array([1, 1, 2, -2], np.int64)), [1, 0, 0, 0], [1, 0, 0, 1])
    pr = ops.prelu(x, c(np.array([0.1, 0.2, 0.3], f32)))
    cases["shape_ops"] = ([x], [u, s1, ss, pr], rng.normal(size=(2, 3, 4, 5)))

    # Transposed convolution (ConvolutionBackpropData) with output_padding.
    x = ops.parameter([1, 3, 5, 5], f32, name="x")
    w = c(rng.normal(size=(3, 2, 3, 3)).astype(f32))
    y = ops.convolution_backprop_data(x, w, [2, 2], pads_begin=[1, 1], pads_end=[1, 1], output_padding=[1, 1])
    cases["deconv"] = ([x], [y], rng.normal(size=(1, 3, 5, 5)))

    out_dir = os.path.join(ROOT, "tests", "data", "openvino", "ops")
    os.makedirs(out_dir, exist_ok=True)
    core = ov.Core()
    for name, (params, results, xin) in cases.items():
        model = ov.Model([r if isinstance(r, ov.Output) else r.output(0) for r in results], params, name)
        path = os.path.join(out_dir, name + ".xml")
        ov.save_model(model, path, compress_to_fp16=(name == "group_conv_same"))
        compiled = core.compile_model(path, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        xin = xin.astype(f32)
        outs = compiled({0: xin})
        np.save(os.path.join(out_dir, name + ".input.npy"), xin)
        for k in range(len(results)):
            np.save(os.path.join(out_dir, f"{name}.output_{k}.npy"), np.asarray(outs[k]).astype(f32))
        print(f"{name}: {len(results)} outputs")


def main():
    args = sys.argv[1:]
    reference_predictions()
    op_cases()
    if args[:1] == ["--convert"] and len(args) == 2:
        convert(args[1])
    elif args:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
