#!/usr/bin/env python3
"""Robustness fuzzer for the `lpc` binary (issue 22).

    python3 tools/fuzz.py --lpc PATH/TO/lpc --cases N --seed S [--time-limit SECONDS]
        [--per-run-timeout 10] [--jobs 2] [--work DIR] [--report FILE.md]

Builds its inputs in a scratch folder from the repo's small files (the digits model and data,
the rule files of passes/ with their .lir cases, and .lir made with `lpc import` / `lpc
quantize` / `lpc fold`), then runs lpc once per case on mutated inputs or mutated flags:

  onnx   structure-aware ONNX mutations (onnx package): attribute value/type, a dim, a dtype,
         drop/add a node input, a dangling value, an unknown or another real op_type,
         opset 99 or 0, a node cycle, truncated initializer data, an empty graph
  bytes  byte mutations (flip, insert, delete, truncate) of .onnx, .lir, .lir.weights, .rules,
         .npy files
  cli    flag mutations on valid inputs: negative, zero, huge, NaN, inf, empty and mistyped
         values, unknown flags, missing values, an output that is an input, an output in a
         missing folder, odd --dim values
  verbs  every verb in turn (show, import, run, bench, compile, calibrate, quantize, accuracy,
         fold, explain, rules check) on an input mutated by either of the first two families

Case i is generated from random.Random(f"{seed}:{i}") alone: the same seed gives the same
cases, whatever --jobs and --time-limit are (a time limit only stops it earlier).

Each run is classified (see OUTCOMES). Silent acceptance is exit 0 on an input that is invalid
for sure: an ONNX mutation of a kind in SURE_INVALID that onnx.checker.check_model(full_check=
True) also rejects (a truncated initializer is checked by its byte count instead), or a flag
mutation of a kind in SURE_INVALID_FLAGS (a value outside what the flag documents). Every other
exit 0 is "ok". The inputs of every bad outcome stay in WORK/cases/NNNNN; the report gives the
command to reproduce it. Exit status 1 when any bad outcome occurred, 2 on a usage/setup error.
"""

import argparse
import concurrent.futures
import copy
import hashlib
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np  # noqa: F401  (the brief's toolset; .npy files are handled as bytes here)
import onnx
from onnx import TensorProto, helper

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS = os.path.join(REPO, "examples", "digits")

FAMILIES = ["onnx", "bytes", "cli", "verbs"]
OUTCOMES = ["ok", "clear error", "unclear", "panic", "abort", "signal", "hang",
            "input changed", "silent acceptance"]
GOOD = {"ok", "clear error"}

VERBS = ["show", "import", "run", "bench", "compile", "calibrate", "quantize", "accuracy",
         "fold", "explain", "rules check"]
MODEL_VERBS = VERBS[:-1]
NODES = ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten", "fc"]

# ONNX mutation kinds whose result is invalid for sure (when the checker agrees).
SURE_INVALID = {"opset99", "opset0", "dangling", "unknown_op", "cycle", "truncate_init",
                "empty_graph", "add_input", "dtype_init", "dtype_input"}
# Flag mutations whose value is outside what the flag documents (docs/reliability.md, --help).
SURE_INVALID_FLAGS = {"threads_bad", "unknown_flag", "missing_value", "out_is_input",
                      "bad_ext", "dim_bad", "enum_bad", "float_bad"}
ENUM_VALID = {"--backend": {"ref", "jit"}, "--isa": {"auto", "zmm", "vnni", "i16"},
              "--preset": {"mixed", "performance"}, "--metric": {"agreement", "top1"},
              "--estimator": {"mse", "minmax", "mean-minmax", "quantile:0.99"},
              "--bias-correction": {"sequential", "fast", "off"}}
ENUM_VALUES = sorted(set().union(*ENUM_VALID.values())) + ["", "REF", "x", "nan", "quantile:2",
                                                          "quantile:nan", "quantile:"]
# Flags without a value (a "missing value" mutation skips them).
BOOL_FLAGS = {"--dot", "--stats", "--json", "--no-fold", "--trust-rules", "--per-layer",
              "--stretch", "--bgr", "--no-bias-correction"}
# Inputs a command reads: an output set to one of them must be refused.
INPUT_FLAGS = {"--calib", "--data", "--labels", "--input", "--rules", "--reference", "--cases"}

ERROR_LINE = re.compile(r"^error: \S.{2,}", re.M)


# ----------------------------------------------------------------------------- set-up

def run_lpc_setup(lpc, args, cwd):
    p = subprocess.run([lpc] + args, cwd=cwd, capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        sys.exit(f"error: set-up command failed: lpc {' '.join(args)}\n{p.stderr}")


def setup(lpc, base):
    """The valid inputs every case starts from, in `base`."""
    os.makedirs(base, exist_ok=True)
    for src, dst in [("digits_cnn.onnx", "m.onnx"), ("calib_x.npy", "calib.npy"),
                     ("test_x8.npy", "x8.npy"), ("test_y8.npy", "y8.npy")]:
        shutil.copy(os.path.join(DIGITS, src), os.path.join(base, dst))
    rules = []
    for root, _, files in sorted(os.walk(os.path.join(REPO, "passes"))):
        for f in sorted(files):
            if f.endswith(".rules"):
                stem = f[:-len(".rules")]
                shutil.copy(os.path.join(root, f), os.path.join(base, f))
                if os.path.exists(os.path.join(root, stem + ".lir")):
                    shutil.copy(os.path.join(root, stem + ".lir"), os.path.join(base, stem + ".lir"))
                    rules.append(stem)
    run_lpc_setup(lpc, ["import", "m.onnx", "-o", "x.lir"], base)
    run_lpc_setup(lpc, ["quantize", "m.onnx", "--calib", "calib.npy", "--subset", "8",
                        "-o", "q.lir", "-o", "q.onnx"], base)
    run_lpc_setup(lpc, ["fold", "q.lir", "-o", "f.lir"], base)
    if not rules:
        sys.exit("error: no passes/**/*.rules with a .lir case found")
    return rules


# ----------------------------------------------------------------------------- mutations

def odd_int(r):
    return r.choice([0, -1, 1, 2, 3, 7, 255, 256, 65535, -2**31, 2**31 - 1, 2**62, -2**62])


def mutate_onnx(r, model):
    """Returns (kind, mutated ModelProto)."""
    m = copy.deepcopy(model)
    g = m.graph
    kind = r.choice(["attr_value", "attr_type", "dim", "dtype_input", "dtype_init",
                     "drop_input", "add_input", "dangling", "unknown_op", "other_op",
                     "opset99", "opset0", "cycle", "truncate_init", "empty_graph",
                     "drop_output", "rename_output"])
    nodes = list(g.node)
    if kind == "attr_value":
        n = r.choice([n for n in nodes if n.attribute])
        a = r.choice(n.attribute)
        if a.type == onnx.AttributeProto.INTS and a.ints:
            i = r.randrange(len(a.ints))
            a.ints[i] = odd_int(r)
            if r.random() < 0.3:
                a.ints.append(odd_int(r))
            if r.random() < 0.2:
                del a.ints[:]
        elif a.type == onnx.AttributeProto.INT:
            a.i = odd_int(r)
        elif a.type == onnx.AttributeProto.FLOAT:
            a.f = r.choice([float("nan"), float("inf"), -float("inf"), 0.0, -1.0, 1e30])
        kind += ":" + a.name
    elif kind == "attr_type":
        n = r.choice([n for n in nodes if n.attribute])
        a = r.choice(n.attribute)
        t = r.choice([onnx.AttributeProto.FLOAT, onnx.AttributeProto.INT,
                      onnx.AttributeProto.STRING, onnx.AttributeProto.INTS,
                      onnx.AttributeProto.FLOATS, onnx.AttributeProto.TENSOR])
        new = onnx.AttributeProto(name=a.name, type=t)
        if t == onnx.AttributeProto.FLOAT:
            new.f = 1.5
        elif t == onnx.AttributeProto.INT:
            new.i = 3
        elif t == onnx.AttributeProto.STRING:
            new.s = b"x"
        elif t == onnx.AttributeProto.INTS:
            new.ints.extend([1, 2])
        elif t == onnx.AttributeProto.FLOATS:
            new.floats.extend([0.5])
        else:
            new.t.CopyFrom(helper.make_tensor("t", TensorProto.FLOAT, [1], [1.0]))
        a.CopyFrom(new)
        kind += ":" + a.name
    elif kind == "dim":
        vi = r.choice(list(g.input) + list(g.output))
        dims = vi.type.tensor_type.shape.dim
        d = dims[r.randrange(len(dims))]
        choice = r.choice(["zero", "neg", "huge", "param", "drop", "add"])
        if choice == "zero":
            d.dim_value = 0
        elif choice == "neg":
            d.dim_value = -3
        elif choice == "huge":
            d.dim_value = 2**40
        elif choice == "param":
            d.dim_param = "Q"
        elif choice == "drop":
            dims.remove(d)
        else:
            dims.add().dim_value = 2
        kind += ":" + choice
    elif kind == "dtype_input":
        t = g.input[0].type.tensor_type
        t.elem_type = r.choice([TensorProto.DOUBLE, TensorProto.INT8, TensorProto.INT64,
                                TensorProto.STRING, TensorProto.BOOL, TensorProto.FLOAT16,
                                0, 999])
        if t.elem_type == 0:
            kind = "dtype_input_undefined"  # lpc infers it from the weights: lenient, harmless
    elif kind == "dtype_init":
        init = r.choice(list(g.initializer))
        init.data_type = r.choice([TensorProto.DOUBLE, TensorProto.INT64,
                                   TensorProto.STRING, 0, 999])
    elif kind == "drop_input":
        n = r.choice([n for n in nodes if n.input])
        del n.input[r.randrange(len(n.input))]
    elif kind == "add_input":
        n = r.choice(nodes)
        n.input.append(r.choice([i.name for i in g.initializer] + ["input"]))
    elif kind == "dangling":
        n = r.choice(nodes)
        n.input[r.randrange(len(n.input))] = "dangling_%d" % r.randrange(1000)
    elif kind == "unknown_op":
        r.choice(nodes).op_type = r.choice(["FooBar", "conv", "", "Conv2", "\u00c9"])
    elif kind == "other_op":
        r.choice(nodes).op_type = r.choice(["Add", "Relu", "Conv", "MatMul", "Gemm",
                                            "Softmax", "Sigmoid", "Transpose", "Reshape",
                                            "Concat", "MaxPool", "AveragePool", "Flatten",
                                            "QuantizeLinear", "Loop", "If"])
    elif kind == "opset99":
        m.opset_import[0].version = 99
    elif kind == "opset0":
        m.opset_import[0].version = 0
    elif kind == "cycle":
        i = r.randrange(len(nodes))
        j = r.randrange(i, len(nodes))
        nodes[i].input[0] = nodes[j].output[0]
    elif kind == "truncate_init":
        init = r.choice([i for i in g.initializer if len(i.raw_data) > 4])
        init.raw_data = init.raw_data[:r.randrange(len(init.raw_data))]
    elif kind == "empty_graph":
        del g.node[:]
        if r.random() < 0.5:
            del g.initializer[:]
    elif kind == "drop_output":
        del g.output[:]
    elif kind == "rename_output":
        g.output[0].name = "nowhere"
    return kind, m


def onnx_sure_invalid(kind, m):
    """True when the mutated model is invalid for sure (see the module docstring)."""
    base = kind.split(":")[0]
    if base not in SURE_INVALID:
        return False
    if base == "truncate_init":
        for i in m.graph.initializer:
            n = 1
            for d in i.dims:
                n *= d
            if i.raw_data and len(i.raw_data) != 4 * n:
                return True
        return False
    try:
        onnx.checker.check_model(m, full_check=True)
    except Exception:
        return True
    return False


def mutate_bytes(r, data):
    data = bytearray(data)
    kind = r.choice(["flip", "insert", "delete", "truncate", "zero"])
    if not data:
        return "insert", bytes([r.randrange(256)])
    if kind == "flip":
        for _ in range(r.choice([1, 1, 2, 4, 16])):
            i = r.randrange(len(data))
            data[i] ^= 1 << r.randrange(8)
    elif kind == "insert":
        i = r.randrange(len(data) + 1)
        data[i:i] = bytes(r.randrange(256) for _ in range(r.choice([1, 2, 8, 64])))
    elif kind == "delete":
        i = r.randrange(len(data))
        del data[i:i + r.choice([1, 2, 8, 64, 512])]
    elif kind == "truncate":
        data = data[:r.randrange(len(data))]
    else:
        i = r.randrange(len(data))
        data[i:i + r.choice([4, 16, 128])] = bytes(len(data[i:i + r.choice([4, 16, 128])]))
    return kind, bytes(data)


# ----------------------------------------------------------------------------- commands

def verb_args(r, verb, model, ctx):
    """A valid command line of `verb` on `model`; ctx holds the case's file names."""
    calib, data, labels = ctx.get("calib", "calib.npy"), ctx.get("data", "x8.npy"), \
        ctx.get("labels", "y8.npy")
    if verb == "show":
        return ["show", model] + (["--dot"] if r.random() < 0.3 else [])
    if verb == "import":
        return ["import", model, "-o", r.choice(["out.lir", "out.onnx"])]
    if verb == "run":
        a = ["run", model, "--input", data]
        if r.random() < 0.4:
            a += ["--backend", "jit"]
        if r.random() < 0.3:
            a += ["--output-dir", "outdir"]
        return a
    if verb == "bench":
        return ["bench", model, "--runs", "2", "--dim", "N=2"] + \
            (["--backend", "jit"] if r.random() < 0.4 else [])
    if verb == "compile":
        return ["compile", model, "--dim", "N=2", "-o", "c.lir"]
    if verb == "calibrate":
        return ["calibrate", model, "--calib", calib, "--subset", "8", "-o", "r.json"]
    if verb == "quantize":
        return ["quantize", model, "--calib", calib, "--subset", "8", "-o",
                r.choice(["o.lir", "o.onnx"])]
    if verb == "accuracy":
        a = ["accuracy", model, "--data", data, "--labels", labels]
        if r.random() < 0.3:
            a += ["--reference", "m.onnx"]
        return a
    if verb == "fold":
        a = ["fold", model, "-o", "f2.lir"]
        if "rules" in ctx:
            a += ["--rules", ctx["rules"]]
        return a
    if verb == "explain":
        return ["explain", model, "--node", r.choice(NODES)]
    if verb == "rules check":
        a = ["rules", "check", ctx["rules"]]
        if "cases" in ctx:
            a += ["--cases", ctx["cases"]]
        return a
    raise ValueError(verb)


CLI_FLAGS = {  # verb -> [(flag, kind of value)]
    "run": [("--threads", "threads"), ("--backend", "enum"), ("--output-dir", "path"),
            ("--input", "input")],
    "bench": [("--threads", "threads"), ("--runs", "int"), ("--dim", "dim"),
              ("--backend", "enum"), ("--isa", "enum")],
    "compile": [("--dim", "dim"), ("--threads", "threads"), ("--isa", "enum")],
    "calibrate": [("--subset", "int"), ("--seed", "int"), ("--batch", "int"),
                  ("--scale", "float"), ("--preset", "enum"), ("--estimator", "enum"),
                  ("--ignore", "str"), ("--bias-samples", "int"), ("--size", "str")],
    "quantize": [("--subset", "int"), ("--batch", "int"), ("--max-drop", "float"),
                 ("--min-sqnr", "float"), ("--metric", "enum"), ("--bias-correction", "enum"),
                 ("--preset", "enum"), ("--ignore", "str"), ("--rank-samples", "int"),
                 ("--min-int8-macs", "int"), ("--eval-subset", "int")],
    "accuracy": [("--subset", "int"), ("--batch", "int"), ("--rank-samples", "int"),
                 ("--seed", "int")],
    "fold": [("--stop-after", "str"), ("--rules", "path"), ("--pipeline", "path")],
    "explain": [("--node", "str")],
}
ODD_INTS = ["-1", "0", "1", "2", "99999999999999999999", "4294967296", "-9223372036854775808",
            "nan", "inf", "", "abc", "1.5", "0x10", " 3", "+2"]
ODD_FLOATS = ["nan", "NaN", "inf", "-inf", "-1", "0", "1e309", "1e-320", "", "abc", "1,5"]
ODD_STRS = ["", " ", "\u00e9\u00e9", "a" * 5000, "-", "--", "*", "(", "conv1", "Conv", "nan"]


def cli_mutation(r, verb, ctx):
    """(kind, model, args) for a flag mutation of `verb` on the valid base inputs."""
    model = "f.lir" if verb in ("fold", "explain") and r.random() < 0.3 else \
        ("q.lir" if verb in ("fold", "run", "bench", "compile") and r.random() < 0.5 else "m.onnx")
    if verb == "fold" and model == "m.onnx":
        model = "q.lir"
    args = verb_args(r, verb, model, ctx)
    kind = r.choice(["value", "value", "value", "unknown_flag", "missing_value",
                     "out_is_input", "out_missing_dir", "bad_ext", "dup_flag"])
    if kind in ("out_is_input", "out_missing_dir", "bad_ext") and "-o" not in args:
        kind = "value"
    if kind == "value" and verb not in CLI_FLAGS:
        kind = "unknown_flag"
    if kind == "value":
        flag, vk = r.choice(CLI_FLAGS[verb])
        if vk == "threads":
            v = r.choice(["0", "-1", "1025", "99999999999", "nan", "", "two", "1", "1024"])
            kind = "threads_bad" if v not in ("1", "1024") else "threads_ok"
        elif vk == "int":
            v = r.choice(ODD_INTS)
            kind = "int:" + flag
        elif vk == "float":
            v = r.choice(ODD_FLOATS)
            kind = "float:" + flag
            if v in ("", "abc", "1,5") or (flag in ("--max-drop", "--min-sqnr")
                                           and v not in ("-1", "0", "1e-320")):
                kind = "float_bad"  # not a number, or not finite where a budget is meant
        elif vk == "enum":
            v = r.choice(ENUM_VALUES)
            kind = "enum_bad" if v not in ENUM_VALID[flag] else "enum:" + flag
        elif vk == "dim":
            v = r.choice(["N=0", "N=-1", "N=", "=2", "N", "N=2=3", "N=nan", "M=2", "N=1e3",
                          "N=99999999999", "N=4294967297", "N=4096", "", "N=2,N=3"])
            kind = "dim_bad" if v in ("N=-1", "N=", "=2", "N", "N=2=3", "N=nan", "N=1e3",
                                      "N=99999999999", "") else "dim_odd"
        elif vk == "input":
            v = r.choice(["input=x8.npy", "nope=x8.npy", "x8.npy=input", "=", "input=",
                          "missing.npy", "calib.npy", "m.onnx", "input=y8.npy"])
            kind = "input:" + v
        elif vk == "path":
            v = r.choice(["", "missing", "m.onnx", "calib.npy", ".", "/", "/dev/null", "q.lir"])
            kind = "path:" + flag
        else:
            v = r.choice(ODD_STRS)
            kind = "str:" + flag
        # Replace an existing value, else add the flag.
        if flag in args:
            args[args.index(flag) + 1] = v
        else:
            args += [flag, v]
    elif kind == "unknown_flag":
        args.insert(r.randrange(2, len(args) + 1), r.choice(["--frobnicate", "-z", "---",
                                                             "--no-such-flag=1"]))
    elif kind == "missing_value":
        flags = [i for i, a in enumerate(args) if a.startswith("-") and a not in BOOL_FLAGS
                 and i + 1 < len(args)]
        if flags:
            i = r.choice(flags)
            flag = args.pop(i)
            del args[i]
            args.append(flag)  # the flag, last, without its value
        else:
            args.append("-o")
    elif kind == "out_is_input":
        ins = [args[1]] + [args[i + 1] for i, a in enumerate(args[:-1]) if a in INPUT_FLAGS]
        if args[1].endswith(".lir"):
            ins.append(args[1] + ".weights")
        args[args.index("-o") + 1] = r.choice(ins)
    elif kind == "out_missing_dir":
        o = args.index("-o") + 1
        args[o] = os.path.join("no", "such", "dir", args[o])
    elif kind == "bad_ext":
        o = args.index("-o") + 1
        args[o] = r.choice(["out.txt", "out", "out.LIR", "out.lir.weights", "out.npy", ".lir"])
        if verb in ("calibrate",):
            kind = "any_ext"  # a JSON report may have any name
    elif kind == "dup_flag":
        args += args[-2:]
    return kind, model, args


# ----------------------------------------------------------------------------- cases

def sha_files(d):
    out = {}
    for root, _, files in os.walk(d):
        for f in files:
            p = os.path.join(root, f)
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as fh:
                    out[p] = hashlib.sha256(fh.read()).hexdigest()
    return out


class Case:
    def __init__(self, idx, family):
        self.idx, self.family = idx, family
        self.kind, self.verb, self.args, self.invalid = "", "", [], False
        self.outcome, self.rc, self.stderr, self.dir, self.secs = "", None, "", "", 0.0


BASE_FILES = ["m.onnx", "calib.npy", "x8.npy", "y8.npy", "x.lir", "x.lir.weights", "q.lir",
              "q.lir.weights", "q.onnx", "f.lir", "f.lir.weights"]


def make_case(idx, seed, base, rules, model_proto, d):
    """Generates case `idx` into the empty folder `d` (every file of `d` is an input)."""
    r = random.Random(f"{seed}:{idx}")
    family = FAMILIES[r.randrange(len(FAMILIES))]
    c = Case(idx, family)
    c.dir = d
    for f in BASE_FILES:
        if os.path.exists(os.path.join(base, f)):
            shutil.copy(os.path.join(base, f), os.path.join(d, f))
    stem = r.choice(rules)
    for ext in (".rules", ".lir"):
        shutil.copy(os.path.join(base, stem + ext), os.path.join(d, stem + ext))
    ctx = {"rules": stem + ".rules"}

    def onnx_mut():
        kind, m = mutate_onnx(r, model_proto)
        with open(os.path.join(d, "mut.onnx"), "wb") as fh:
            fh.write(m.SerializeToString())
        return "onnx:" + kind, "mut.onnx", onnx_sure_invalid(kind, m)

    def bytes_mut(verb=None):
        targets = ["m.onnx", "x.lir", "x.lir.weights", "q.lir", "q.lir.weights", "f.lir",
                   stem + ".rules", stem + ".lir", "calib.npy", "x8.npy", "y8.npy"]
        if verb == "rules check":
            targets = [stem + ".rules", stem + ".lir"]
        t = r.choice(targets)
        with open(os.path.join(d, t), "rb") as fh:
            kind, data = mutate_bytes(r, fh.read())
        with open(os.path.join(d, t), "wb") as fh:
            fh.write(data)
        return "bytes:%s:%s" % (os.path.splitext(t)[1] or t, kind), t

    def model_for(target, verb):
        if target.endswith(".npy"):
            return "q.lir" if verb == "fold" else "m.onnx"
        if target.endswith(".lir.weights"):
            return target[:-len(".weights")]
        if target.endswith(".rules") or target == stem + ".lir":
            return "q.lir"
        return target

    if family == "onnx":
        c.kind, model, c.invalid = onnx_mut()
        c.verb = r.choice(MODEL_VERBS)
        c.args = verb_args(r, c.verb, model, ctx)
    elif family == "bytes":
        c.kind, t = bytes_mut()
        if t.endswith(".npy"):
            c.verb = {"calib.npy": r.choice(["calibrate", "quantize"]),
                      "x8.npy": r.choice(["run", "accuracy"]), "y8.npy": "accuracy"}[t]
        elif t == stem + ".rules" or t == stem + ".lir":
            c.verb = r.choice(["rules check", "fold"])
        else:
            c.verb = r.choice(MODEL_VERBS)
        if t == stem + ".lir" and c.verb == "rules check":
            ctx["cases"] = t
        c.args = verb_args(r, c.verb, model_for(t, c.verb), ctx)
    elif family == "cli":
        c.verb = r.choice(VERBS)
        if c.verb == "rules check":
            kinds = ["unknown_flag", "missing_cases", "cases_wrong"]
            k = r.choice(kinds)
            c.args = ["rules", "check", ctx["rules"]]
            if k == "unknown_flag":
                c.args.append("--bogus")
            elif k == "missing_cases":
                c.args += ["--cases", "none.lir"]
            else:
                c.args += ["--cases", r.choice(["m.onnx", "x.lir", "calib.npy", ""])]
            c.kind = "cli:rules:" + k
            c.invalid = k == "unknown_flag"
        else:
            kind, _, c.args = cli_mutation(r, c.verb, ctx)
            c.kind = "cli:" + kind
            c.invalid = kind in SURE_INVALID_FLAGS
    else:  # verbs: each verb in turn on a mutated input
        c.verb = VERBS[idx % len(VERBS)]
        if c.verb != "rules check" and r.random() < 0.5:
            c.kind, model, c.invalid = onnx_mut()
        else:
            c.kind, t = bytes_mut(c.verb)
            model = model_for(t, c.verb)
            if c.verb == "fold" and t in (stem + ".rules", stem + ".lir"):
                ctx["rules"] = stem + ".rules"
            if t == stem + ".lir":
                ctx["cases"] = t
            if c.verb in ("run", "accuracy", "calibrate", "quantize") and t.endswith(".npy"):
                model = "m.onnx"
        c.args = verb_args(r, c.verb, model, ctx)
    return c


def classify(c, rc, stderr, timed_out, changed):
    if timed_out:
        return "hang"
    if changed:
        return "input changed"
    if "panicked at" in stderr or rc == 101:
        return "panic"
    if rc == -6 or rc == 134:
        return "abort"
    if rc is not None and rc < 0:
        return "signal"
    if rc == 0:
        return "silent acceptance" if c.invalid else "ok"
    if rc in (1, 2) and ERROR_LINE.search(stderr):
        return "clear error"
    return "unclear"


def run_case(c, lpc, timeout):
    before = sha_files(c.dir)
    t0 = time.monotonic()
    timed_out = False
    try:
        p = subprocess.run([lpc] + c.args, cwd=c.dir, capture_output=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        rc, err = p.returncode, p.stderr.decode("utf-8", "replace")
    except subprocess.TimeoutExpired as e:
        timed_out, rc = True, None
        err = (e.stderr or b"").decode("utf-8", "replace")
    c.secs = time.monotonic() - t0
    after = sha_files(c.dir)
    changed = [p for p, h in before.items() if after.get(p) != h]
    c.rc, c.stderr = rc, err
    c.outcome = classify(c, rc, err, timed_out, changed)
    if c.outcome == "input changed":
        c.stderr = "changed: %s\n%s" % (", ".join(os.path.basename(p) for p in changed), err)
    return c


# ----------------------------------------------------------------------------- report

def repro(c, lpc):
    return "(cd %s && %s %s)" % (shlex.quote(c.dir), shlex.quote(lpc),
                                 " ".join(shlex.quote(a) for a in c.args))


def table(counts, md):
    cols = [o for o in OUTCOMES]
    lines = []
    if md:
        lines.append("| family | cases | " + " | ".join(cols) + " |")
        lines.append("|---|---:|" + "---:|" * len(cols))
    else:
        lines.append("%-8s %6s " % ("family", "cases") + " ".join("%8s" % o[:8] for o in cols))
    for fam in FAMILIES + ["total"]:
        row = counts.get(fam, {})
        n = sum(row.values())
        if md:
            lines.append("| %s | %d | " % (fam, n) + " | ".join(str(row.get(o, 0)) for o in cols)
                         + " |")
        else:
            lines.append("%-8s %6d " % (fam, n) + " ".join("%8d" % row.get(o, 0) for o in cols))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lpc", required=True)
    ap.add_argument("--cases", type=int, required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--time-limit", type=float, default=None, help="seconds for the whole run")
    ap.add_argument("--per-run-timeout", type=float, default=10.0)
    ap.add_argument("--jobs", type=int, default=2, help="lpc runs at once")
    ap.add_argument("--work", default=None, help="scratch folder (kept; default: a new temp dir)")
    ap.add_argument("--report", default=None, help="markdown report file")
    a = ap.parse_args()
    if a.cases < 0 or a.jobs < 1 or a.per_run_timeout <= 0:
        ap.error("--cases >= 0, --jobs >= 1, --per-run-timeout > 0")
    lpc = os.path.abspath(a.lpc)
    if not os.access(lpc, os.X_OK):
        sys.exit(f"error: {lpc}: not an executable")
    work = os.path.abspath(a.work or tempfile.mkdtemp(prefix="lpc-fuzz-"))
    os.makedirs(work, exist_ok=True)
    base = os.path.join(work, "base")
    shutil.rmtree(base, ignore_errors=True)
    rules = setup(lpc, base)
    model_proto = onnx.load(os.path.join(base, "m.onnx"))
    cases_dir = os.path.join(work, "cases")
    shutil.rmtree(cases_dir, ignore_errors=True)
    os.makedirs(cases_dir)

    start = time.monotonic()
    deadline = start + a.time_limit if a.time_limit else None
    done, lock = [], threading.Lock()

    def one(idx):
        if deadline and time.monotonic() > deadline:
            return None
        d = os.path.join(cases_dir, "%05d" % idx)
        os.makedirs(d)
        c = make_case(idx, a.seed, base, rules, model_proto, d)
        run_case(c, lpc, a.per_run_timeout)
        if c.outcome in GOOD:
            shutil.rmtree(d, ignore_errors=True)
        with lock:
            done.append(c)
            if len(done) % 500 == 0:
                print("... %d cases, %.0f s" % (len(done), time.monotonic() - start),
                      file=sys.stderr, flush=True)
        return c

    with concurrent.futures.ThreadPoolExecutor(max_workers=a.jobs) as ex:
        list(ex.map(one, range(a.cases)))
    elapsed = time.monotonic() - start
    done.sort(key=lambda c: c.idx)

    counts = {}
    for c in done:
        for fam in (c.family, "total"):
            counts.setdefault(fam, {}).setdefault(c.outcome, 0)
            counts[fam][c.outcome] += 1
    bad = [c for c in done if c.outcome not in GOOD]
    with open(os.path.join(work, "cases.tsv"), "w") as fh:
        fh.write("case\tfamily\tkind\tverb\toutcome\texit\tsecs\tfirst stderr line\targs\n")
        for c in done:
            first = (c.stderr.strip().splitlines() or [""])[0][:300].replace("\t", " ")
            fh.write("%d\t%s\t%s\t%s\t%s\t%s\t%.3f\t%s\t%s\n" % (
                c.idx, c.family, c.kind, c.verb, c.outcome, c.rc, c.secs, first,
                " ".join(shlex.quote(x) for x in c.args)))
    stopped = " (stopped by --time-limit)" if len(done) < a.cases else ""
    head = "lpc fuzz: seed %d, %d of %d cases run%s in %.0f s, %d jobs, per-run timeout %g s" % (
        a.seed, len(done), a.cases, stopped, elapsed, a.jobs, a.per_run_timeout)
    print(head)
    print(table(counts, md=False))
    print("%d bad outcome(s); inputs kept in %s" % (len(bad), cases_dir))
    for c in bad[:20]:
        first = (c.stderr.strip().splitlines() or [""])[0][:200]
        print("  [%s] %s %s: %s\n    %s" % (c.outcome, c.family, c.kind, repro(c, lpc), first))
    if len(bad) > 20:
        print("  ... %d more in the report" % (len(bad) - 20))

    if a.report:
        cmd = "python3 tools/fuzz.py --lpc %s --cases %d --seed %d" % (a.lpc, a.cases, a.seed)
        if a.time_limit:
            cmd += " --time-limit %g" % a.time_limit
        cmd += " --per-run-timeout %g --jobs %d" % (a.per_run_timeout, a.jobs)
        out = ["# lpc fuzz run", "", "`%s`" % cmd, "", head, "",
               table(counts, md=True), ""]
        out += ["## Bad outcomes (%d)" % len(bad), ""]
        groups = {}
        for c in bad:
            groups.setdefault((c.outcome, c.kind, c.verb), []).append(c)
        for (outcome, kind, verb), cs in sorted(groups.items()):
            out.append("### %s — `%s`, `%s` (%d)" % (outcome, kind, verb, len(cs)))
            out.append("")
            for c in cs[:3]:
                out.append("case %d, exit %s:" % (c.idx, c.rc))
                out.append("")
                out.append("    " + repro(c, lpc))
                for line in c.stderr.strip().splitlines()[:4]:
                    out.append("    | " + line[:300])
                out.append("")
            for c in cs[3:200]:
                out.append("- case %d: `%s`" % (c.idx, repro(c, lpc)))
            if len(cs) > 200:
                out.append("- ... %d more (inputs in %s)" % (len(cs) - 200, cases_dir))
            out.append("")
        with open(a.report, "w") as fh:
            fh.write("\n".join(out) + "\n")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
