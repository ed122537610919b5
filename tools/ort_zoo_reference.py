"""Writes seeded random inputs and ONNX Runtime's outputs for the zoo models with recurrent
ops, for tests/models.rs (`zoo_recurrent_models_match_onnxruntime`) to compare with.

Usage (from the project root; needs `pip install onnxruntime==1.32.0 numpy`):
    python3 tools/ort_zoo_reference.py

For each model below it draws standard-normal float32 inputs of the shapes its
provenance.json lists under `test_input_shapes` (numpy default_rng, seed 18, inputs in the
order the model declares them), runs ONNX Runtime (CPU EP, 1 thread) and saves every input
and output as tests/data/ort/<model>/<name>.npy.
"""
import json
import os
import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ZOO = os.path.join(ROOT, "..", "shared", "models", "zoo")
MODELS = [
    ("eeg_seizure_lstm", "modelA_paper.onnx"),
    ("plcmos_v2_gru", "plcmos_v2.onnx"),
]


def main():
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    for folder, file in MODELS:
        with open(os.path.join(ZOO, folder, "provenance.json")) as f:
            shapes = json.load(f)["test_input_shapes"]
        sess = ort.InferenceSession(os.path.join(ZOO, folder, file), opts, providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(18)
        feed = {}
        for i in sess.get_inputs():
            shape, dtype = shapes[i.name]
            feed[i.name] = rng.standard_normal(shape).astype(dtype)
        out_dir = os.path.join(ROOT, "tests", "data", "ort", folder)
        os.makedirs(out_dir, exist_ok=True)
        for name, v in feed.items():
            np.save(os.path.join(out_dir, name + ".npy"), v)
        for o, v in zip(sess.get_outputs(), sess.run(None, feed)):
            np.save(os.path.join(out_dir, o.name + ".npy"), v)
            print(f"{folder}: {o.name} {v.shape} (ORT {ort.__version__})")


if __name__ == "__main__":
    main()
