"""Writes ONNX Runtime's predictions for the digits test set, for lpc's tests to compare with.

Usage (from the project root; needs `pip install onnxruntime numpy`):
    python3 tools/ort_reference.py

For each model below it runs ONNX Runtime (CPU EP, 1 thread) on ../shared/data/digits/test_x.npy
(500 images) and saves the argmax of each image as int64 to tests/data/ort/<model>.top1.npy.
"""
import os
import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS = os.path.join(ROOT, "..", "shared", "data", "digits")
MODELS = [
    os.path.join(DIGITS, "digits_cnn.onnx"),
    os.path.join(DIGITS, "digits_mbv.onnx"),
    os.path.join(DIGITS, "quantized-by-peers", "digits_cnn.ort-qdq.onnx"),
    os.path.join(DIGITS, "quantized-by-peers", "digits_mbv.ort-qdq.onnx"),
]


def main():
    x = np.load(os.path.join(DIGITS, "test_x.npy"))
    out_dir = os.path.join(ROOT, "tests", "data", "ort")
    os.makedirs(out_dir, exist_ok=True)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    for path in MODELS:
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        preds = np.concatenate([sess.run(None, {name: x[i : i + 1]})[0].argmax(axis=1) for i in range(len(x))])
        stem = os.path.basename(path)[: -len(".onnx")]
        np.save(os.path.join(out_dir, stem + ".top1.npy"), preds.astype(np.int64))
        print(f"{stem}: ORT {onnxruntime_version()} top-1 {np.mean(preds == np.load(os.path.join(DIGITS, 'test_y.npy'))) * 100:.1f}%")


def onnxruntime_version():
    return ort.__version__


if __name__ == "__main__":
    main()
