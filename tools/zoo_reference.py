"""Seeded inputs and ONNX Runtime's outputs for one model of ../shared/models/zoo.

Usage: python3 tools/zoo_reference.py MODEL_DIR OUT_DIR
(needs `pip install onnxruntime numpy`). Reads MODEL_DIR/provenance.json for the input shapes
ONNX Runtime runs (`test_input_shapes`), makes one seeded input per model input, runs ONNX
Runtime (CPU EP, 1 thread) and writes OUT_DIR/input_<i>.npy and OUT_DIR/output_<k>.npy in
the model's input and output order. What each model is fed:
- float inputs: uniform in [0, 1) (images, spectrograms, signals; the models normalise
  internally or take such scaled features);
- int64 inputs named like token ids: ids in [1000, 2000) (inside any BERT-class vocabulary);
  attention masks: ones; token type ids and other int64 inputs: zeros.
"""
import glob
import json
import os
import sys

import numpy as np
import onnxruntime as ort


def make_input(name, shape, dtype, rng):
    if dtype == "float32":
        return rng.random(shape, dtype=np.float32)
    if dtype == "int64":
        if "mask" in name:
            return np.ones(shape, np.int64)
        if "ids" in name and "type" not in name:
            return rng.integers(1000, 2000, shape).astype(np.int64)
        return np.zeros(shape, np.int64)
    raise SystemExit(f"{name}: no generator for dtype {dtype}")


def main():
    model_dir, out_dir = sys.argv[1], sys.argv[2]
    prov = json.load(open(os.path.join(model_dir, "provenance.json")))
    (model,) = glob.glob(os.path.join(model_dir, "*.onnx"))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    shapes = prov["test_input_shapes"]
    feeds = {}
    os.makedirs(out_dir, exist_ok=True)
    for i, inp in enumerate(sess.get_inputs()):
        shape, dtype = shapes[inp.name]
        feeds[inp.name] = make_input(inp.name, shape, dtype, rng)
        np.save(os.path.join(out_dir, f"input_{i}.npy"), feeds[inp.name])
    for k, out in enumerate(sess.run(None, feeds)):
        np.save(os.path.join(out_dir, f"output_{k}.npy"), np.asarray(out))
    print(model)


if __name__ == "__main__":
    main()
