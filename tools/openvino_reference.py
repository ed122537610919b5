"""OpenVINO reference data for lpc's OpenVINO IR reader (crates/lpc-onnx/src/openvino.rs).

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
   Nothing of this is committed; run `LPC_OV_IR_DIR=DIR cargo test -p lpc-onnx --test
   openvino_convert` to check that lpc runs each IR like the ONNX model it came from.
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


def main():
    args = sys.argv[1:]
    reference_predictions()
    if args[:1] == ["--convert"] and len(args) == 2:
        convert(args[1])
    elif args:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
