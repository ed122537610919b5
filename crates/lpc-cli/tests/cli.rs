//! The `lpc` command line contract: verbs, file outputs, exit codes (1 bad input, 2 usage).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn lpc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lpc"))
        .args(args)
        .output()
        .expect("spawn lpc")
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn example(f: &str) -> String {
    root()
        .join("examples/digits")
        .join(f)
        .to_string_lossy()
        .into_owned()
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lpc-cli-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("tmp");
    d
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn run_prints_summary_and_writes_npy() {
    let o = lpc(&[
        "run",
        &example("digits_cnn.onnx"),
        "--input",
        &example("test_x8.npy"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("logits: f32[8, 10]"), "{out}");

    let dir = tmpdir("run");
    let o = lpc(&[
        "run",
        &example("digits_cnn.onnx"),
        "--input",
        &format!("input={}", example("test_x8.npy")),
        "--output-dir",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let t = lpc_data::read_npy(&dir.join("logits.npy")).expect("logits.npy");
    assert_eq!(t.shape(), &[8, 10]);
    // ONNX Runtime's predictions for these 8 images (one is a genuine mistake: an 8 read as 7).
    let labels = lpc_data::read_npy(&root().join("tests/data/ort/digits_cnn.top1.npy"))
        .unwrap()
        .to_i64_vec();
    let v = t.to_f32_vec();
    for (row, &label) in v.chunks(10).zip(&labels) {
        let best = row
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0;
        assert_eq!(best as i64, label);
    }
}

#[test]
fn import_writes_lir_that_runs_the_same() {
    let dir = tmpdir("import");
    let lir = dir.join("digits.lir");
    let o = lpc(&[
        "import",
        &example("digits_cnn.onnx"),
        "-o",
        lir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let a = lpc(&[
        "run",
        &example("digits_cnn.onnx"),
        "--input",
        &example("test_x8.npy"),
    ]);
    let b = lpc(&[
        "run",
        lir.to_str().unwrap(),
        "--input",
        &example("test_x8.npy"),
    ]);
    assert!(b.status.success(), "{}", stderr(&b));
    assert_eq!(a.stdout, b.stdout);
    let show = lpc(&["show", lir.to_str().unwrap()]);
    assert!(show.status.success());
    assert!(String::from_utf8_lossy(&show.stdout).contains("conv("));
    let dot = lpc(&["show", "--dot", &example("digits_cnn.onnx")]);
    assert!(String::from_utf8_lossy(&dot.stdout).starts_with("digraph"));
}

#[test]
fn exit_codes() {
    // Usage errors: 2.
    assert_eq!(lpc(&["run"]).status.code(), Some(2));
    assert_eq!(lpc(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(
        lpc(&["run", &example("digits_cnn.onnx"), "--backend", "gpu"])
            .status
            .code(),
        Some(2)
    );
    // Bad input: 1 with one clear line naming the file or input.
    let dir = tmpdir("bad");
    let o = lpc(&["run", "/nonexistent/model.onnx"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("/nonexistent/model.onnx"),
        "{}",
        stderr(&o)
    );

    let bad = dir.join("bad.onnx");
    std::fs::write(&bad, b"\x08\x07\x12\xffthis is not a model").unwrap();
    let o = lpc(&["show", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("bad.onnx"));
    assert_eq!(stderr(&o).trim().lines().count(), 1, "{}", stderr(&o));

    // Wrong input shape: names the input.
    let wrong = dir.join("wrong.npy");
    lpc_data::write_npy(
        &wrong,
        &lpc_ir::Tensor::zeros(lpc_ir::DType::F32, &[1, 1, 8, 8]),
    )
    .unwrap();
    let o = lpc(&[
        "run",
        &example("digits_cnn.onnx"),
        "--input",
        wrong.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("input"), "{}", stderr(&o));
    // Wrong dtype.
    lpc_data::write_npy(
        &wrong,
        &lpc_ir::Tensor::zeros(lpc_ir::DType::I64, &[1, 1, 16, 16]),
    )
    .unwrap();
    let o = lpc(&[
        "run",
        &example("digits_cnn.onnx"),
        "--input",
        wrong.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("dtype"), "{}", stderr(&o));
    // Truncated npy.
    std::fs::write(
        &wrong,
        &std::fs::read(example("test_x8.npy")).unwrap()[..300],
    )
    .unwrap();
    let o = lpc(&[
        "run",
        &example("digits_cnn.onnx"),
        "--input",
        wrong.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("wrong.npy"), "{}", stderr(&o));
    // Missing input.
    let o = lpc(&["run", &example("digits_cnn.onnx")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("missing input 'input'"),
        "{}",
        stderr(&o)
    );
}

/// The default `--subset 300` on a set of 8 samples uses the 8, with a note (not an error).
#[test]
fn quantize_uses_all_samples_when_the_set_is_smaller_than_the_subset() {
    let dir = tmpdir("fewer");
    let q = dir.join("q.lir");
    let o = lpc(&[
        "quantize",
        &example("digits_cnn.onnx"),
        "--calib",
        &example("test_x8.npy"),
        "-o",
        q.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("note: calibration data: ")
            && e.contains("has 8 samples, fewer than --subset 300: all are used"),
        "{e}"
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("(8 samples, "), "{out}");
}

/// Symbolic input dims: `bench` takes them from the data of the inputs given (another input
/// naming the same dims gets them too), then from `--dim`; what nothing binds is set to 1 and
/// said so up front, and an error on those shapes says it again with the flag to use.
#[test]
fn symbolic_dims_come_from_the_data_or_are_named() {
    let dir = tmpdir("dims");
    let model = dir.join("pool.lir");
    std::fs::write(
        &model,
        "graph @pool(%x: f32[N,1,H,W], %m: f32[N,1,H,W]) -> (%y) {\n  \
         %s = add(%x, %m) : f32[N,1,H,W]\n  \
         %y = max_pool(%s) {kernel=[2,2], strides=[2,2]}\n  return %y\n}\n",
    )
    .unwrap();
    let model = model.to_str().unwrap();
    let x = dir.join("x.npy");
    lpc_data::write_npy(
        &x,
        &lpc_ir::Tensor::zeros(lpc_ir::DType::F32, &[2, 1, 6, 4]),
    )
    .unwrap();
    let note = "note: symbolic dims set to 1: input 'x': N, H, W; input 'm': N, H, W; \
                bind them with --dim NAME=SIZE";
    for verb in [&["bench", model, "--runs", "1"][..], &["compile", model]] {
        let o = lpc(verb);
        assert_eq!(o.status.code(), Some(1), "{verb:?}");
        let e = stderr(&o);
        assert!(e.contains(note), "{verb:?}: {e}");
        let last = e.lines().last().unwrap();
        assert!(
            last.starts_with("error: ") && last.contains("set to 1") && last.contains("--dim"),
            "{verb:?}: {e}"
        );
    }
    // --input x: m takes N, H and W from x's data; no note.
    let xs = format!("x={}", x.display());
    let o = lpc(&["bench", model, "--input", &xs, "--runs", "1", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("note:"), "{}", stderr(&o));
    let j = String::from_utf8_lossy(&o.stdout);
    assert!(j.contains("[[2, 1, 6, 4], [2, 1, 6, 4]]"), "{j}");
    // --dim binds the rest; only what is left unbound is noted.
    let o = lpc(&[
        "bench", model, "--dim", "H=4", "--dim", "W=2", "--runs", "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("set to 1: input 'x': N; input 'm': N;"),
        "{}",
        stderr(&o)
    );
    let o = lpc(&[
        "compile", model, "--dim", "N=1", "--dim", "H=4", "--dim", "W=2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("note:"), "{}", stderr(&o));
    // --dim contradicting the data is an error naming both.
    let o = lpc(&[
        "bench", model, "--input", &xs, "--dim", "H=4", "--runs", "1",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("--dim H=4, but input 'x' has H = 6 in its data"),
        "{}",
        stderr(&o)
    );
}

/// Quantizes and folds the example model into `dir`; returns the folded .lir path.
fn folded_example(dir: &Path) -> String {
    let q = dir.join("int8.lir");
    let f = dir.join("folded.lir");
    let o = lpc(&[
        "quantize",
        &example("digits_cnn.onnx"),
        "--calib",
        &example("calib_x.npy"),
        "--estimator",
        "minmax",
        "--subset",
        "32",
        "-o",
        q.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = lpc(&["fold", q.to_str().unwrap(), "-o", f.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    f.to_string_lossy().into_owned()
}

#[test]
fn jit_backend_matches_ref_and_compile_writes_a_reloadable_artefact() {
    let dir = tmpdir("jit");
    let model = folded_example(&dir);
    let x = example("test_x8.npy");
    let mut outs = vec![];
    for b in ["ref", "jit"] {
        let od = dir.join(b);
        let o = lpc(&[
            "run",
            &model,
            "-i",
            &x,
            "--backend",
            b,
            "--threads",
            "2",
            "--output-dir",
            od.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{b}: {}", stderr(&o));
        outs.push(lpc_data::read_npy(&od.join("logits.npy")).unwrap());
    }
    assert!(outs[0].same_content(&outs[1]), "jit differs from ref");

    // compile --stats lists kernel kinds; the artefact reloads and runs the same.
    let art = dir.join("cnn8.lir");
    let o = lpc(&[
        "compile",
        &model,
        "--dim",
        "N=8",
        "-o",
        art.to_str().unwrap(),
        "--stats",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("jit gemm (im2col, "), "{text}");
    assert!(text.contains("jit gemm (matmul, "), "{text}");
    assert!(text.contains("compile: "), "{text}");
    let head = std::fs::read_to_string(&art).unwrap();
    assert!(head.starts_with("# lpc compile"), "{head}");
    let od = dir.join("art");
    let o = lpc(&[
        "run",
        art.to_str().unwrap(),
        "-i",
        &x,
        "--backend",
        "jit",
        "--output-dir",
        od.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(lpc_data::read_npy(&od.join("logits.npy"))
        .unwrap()
        .same_content(&outs[0]));

    // The artefact is bound to batch 8: another batch is refused naming the input.
    let one = dir.join("one.npy");
    lpc_data::write_npy(
        &one,
        &lpc_ir::Tensor::zeros(lpc_ir::DType::F32, &[1, 1, 16, 16]),
    )
    .unwrap();
    let o = lpc(&[
        "run",
        art.to_str().unwrap(),
        "-i",
        one.to_str().unwrap(),
        "--backend",
        "jit",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("input"), "{}", stderr(&o));

    // bench --json reports the backend and the compile time.
    let o = lpc(&[
        "bench",
        &model,
        "--backend",
        "jit",
        "--dim",
        "N=4",
        "--runs",
        "3",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j = String::from_utf8_lossy(&o.stdout);
    assert!(
        j.contains("\"backend\": \"jit\"") && j.contains("\"compile_ms\""),
        "{j}"
    );
    assert!(j.contains("[[4, 1, 16, 16]]"), "{j}");

    // --profile with jit: time per kernel kind and the slowest steps, on stderr.
    let o = lpc(&[
        "bench",
        &model,
        "--backend",
        "jit",
        "--profile",
        "--runs",
        "3",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("kernel kind") && e.contains("jit gemm (im2col, "),
        "{e}"
    );
    assert!(e.contains("slowest steps:"), "{e}");
    // --isa forces a GEMM tier (the exact i16 one runs on any x86-64 host).
    let o = lpc(&["compile", &model, "--isa", "i16", "--stats"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("jit gemm (im2col, i16)"), "{text}");
    assert!(!text.contains("zmm)") && !text.contains("vnni)"), "{text}");
    let o = lpc(&[
        "bench",
        &model,
        "--backend",
        "jit",
        "--isa",
        "i16",
        "--runs",
        "2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));

    // Bad input: unknown dim symbol, non-.lir artefact.
    let o = lpc(&["compile", &model, "--dim", "Q=3"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("Q"), "{}", stderr(&o));
    let o = lpc(&[
        "compile",
        &model,
        "-o",
        dir.join("x.onnx").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn quantize_writes_every_output_and_checks_extensions_first() {
    let dir = tmpdir("qout");
    let (onnx, lir, txt) = (dir.join("q.onnx"), dir.join("q.lir"), dir.join("q.txt"));
    let args = |outs: &[&PathBuf]| {
        let mut v: Vec<String> = [
            "quantize",
            &example("digits_cnn.onnx"),
            "--calib",
            &example("calib_x.npy"),
            "--subset",
            "16",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for p in outs {
            v.push("-o".into());
            v.push(p.to_string_lossy().into_owned());
        }
        v
    };
    let run = |v: Vec<String>| lpc(&v.iter().map(String::as_str).collect::<Vec<_>>());
    let o = run(args(&[&onnx, &lir]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(onnx.is_file() && lir.is_file());
    std::fs::remove_file(&onnx).expect("rm");
    let o = run(args(&[&onnx, &txt]));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("q.txt: output must end in .onnx"),
        "{}",
        stderr(&o)
    );
    assert!(
        !onnx.exists(),
        "nothing is written when an output path is bad"
    );
}

/// `run`, `bench` and `compile` fold a quantized model first: the unfolded FakeQuantize graph
/// runs the same as its `lpc fold` output (bit for bit, on both backends), `bench --json`
/// says it folded, and `--no-fold` runs the graph as given.
#[test]
fn quantized_models_are_folded_before_they_run() {
    let dir = tmpdir("runtime-fold");
    let folded = folded_example(&dir);
    let unfolded = dir.join("int8.lir").to_string_lossy().into_owned();
    let x = example("test_x8.npy");
    let run = |model: &str, backend: &str, extra: &[&str], name: &str| {
        let od = dir.join(name);
        let mut args = vec![
            "run",
            model,
            "-i",
            &x,
            "--backend",
            backend,
            "--output-dir",
            od.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let o = lpc(&args);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        lpc_data::read_npy(&od.join("logits.npy")).unwrap()
    };
    let want = run(&folded, "ref", &[], "folded-ref");
    for b in ["ref", "jit"] {
        let got = run(&unfolded, b, &[], &format!("unfolded-{b}"));
        assert!(
            got.same_content(&want),
            "{b}: the unfolded model did not run folded"
        );
    }
    // As given: FakeQuantize simulated in float, which differs from the integer kernels in
    // the last bits of the logits.
    let as_given = run(&unfolded, "ref", &["--no-fold"], "no-fold");
    assert_eq!(as_given.shape(), want.shape());
    assert!(!as_given.same_content(&want), "--no-fold still folded");

    let bench = |extra: &[&str]| {
        let mut args = vec!["bench", unfolded.as_str(), "--runs", "1", "--json"];
        args.extend_from_slice(extra);
        let o = lpc(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(bench(&[]).contains("\"folded\": true"), "{}", bench(&[]));
    assert!(bench(&["--no-fold"]).contains("\"folded\": false"));

    let o = lpc(&["compile", &unfolded, "--stats"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("folded to integer ops"), "{text}");
    assert!(text.contains("jit gemm (im2col, "), "{text}");
    let o = lpc(&["compile", &unfolded, "--stats", "--no-fold"]);
    assert!(!String::from_utf8_lossy(&o.stdout).contains("folded to integer ops"));
}
