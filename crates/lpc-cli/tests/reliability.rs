//! The promises of `docs/reliability.md`, through the `lpc` binary: no verb writes over one of
//! its inputs, outputs are written atomically, an output's format is the one its extension
//! names, and limits (threads, memory, nesting depth, flag values) are errors naming what is
//! wrong, never an abort.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn lpc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lpc"))
        .args(args)
        .output()
        .expect("spawn lpc")
}

fn example(f: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/digits")
        .join(f)
}

/// A fresh folder holding copies of the example model (`m.onnx`) and calibration data (`c.npy`).
fn workdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lpc-reliability-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("tmp");
    std::fs::copy(example("digits_cnn.onnx"), d.join("m.onnx")).unwrap();
    std::fs::copy(example("calib_x.npy"), d.join("c.npy")).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `args`, expects exit status 1 with an error naming `flag` and each of `paths`, and
/// `unchanged` byte for byte as before.
fn refused(args: &[&str], flag: &str, paths: &[&Path], unchanged: &Path) -> String {
    let before = std::fs::read(unchanged).unwrap();
    let o = lpc(args);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{args:?}: {e}");
    assert!(e.contains(flag), "{args:?}: the error names {flag}: {e}");
    for p in paths {
        assert!(
            e.contains(s(p)),
            "{args:?}: the error names {}: {e}",
            p.display()
        );
    }
    assert_eq!(
        std::fs::read(unchanged).unwrap(),
        before,
        "{args:?} changed {unchanged:?}"
    );
    e
}

#[test]
fn no_verb_overwrites_its_inputs() {
    let d = workdir("inputs");
    let (m, c) = (d.join("m.onnx"), d.join("c.npy"));
    let quantize = |extra: &[&str]| -> Vec<String> {
        let mut v = vec!["quantize", s(&m), "--calib", s(&c), "--subset", "8"];
        v.extend(extra);
        v.into_iter().map(String::from).collect()
    };

    refused(&["import", s(&m), "-o", s(&m)], "-o", &[&m], &m);
    refused(&strs(&quantize(&["-o", s(&m)])), "-o", &[&m], &m);
    let q = d.join("q.lir");
    refused(
        &strs(&quantize(&["-o", s(&q), "--report", s(&m)])),
        "--report",
        &[&m],
        &m,
    );
    refused(
        &["calibrate", s(&m), "--calib", s(&c), "-o", s(&c)],
        "-o",
        &[&c],
        &c,
    );
    refused(
        &["calibrate", s(&m), "--calib", s(&c), "--report", s(&c)],
        "--report",
        &[&c],
        &c,
    );

    // Through a symbolic link: the model is read as link.onnx, the output names the file.
    #[cfg(unix)]
    {
        let link = d.join("link.onnx");
        std::os::unix::fs::symlink(&m, &link).unwrap();
        refused(&["import", s(&link), "-o", s(&m)], "-o", &[&m, &link], &m);
        refused(&["import", s(&m), "-o", s(&link)], "-o", &[&link, &m], &m);
    }

    // A .lir input brings its .lir.weights; fold and compile may not replace the .lir.
    let lir = d.join("q.lir");
    let weights = d.join("q.lir.weights");
    let o = lpc(&["import", s(&m), "-o", s(&lir)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(weights.is_file(), "the example has large constants");
    refused(&["fold", s(&lir), "-o", s(&lir)], "-o", &[&lir], &lir);
    refused(
        &["compile", s(&lir), "-o", s(&lir)],
        "-o",
        &[&lir],
        &weights,
    );
    let e = refused(
        &[
            "quantize",
            s(&lir),
            "--calib",
            s(&c),
            "-o",
            s(&d.join("x.onnx")),
            "--report",
            s(&weights),
        ],
        "--report",
        &[&weights, &lir],
        &weights,
    );
    assert!(e.contains("read with MODEL"), "{e}");

    // A .lir output brings the .lir.weights it writes: here that is the calibration data.
    let cw = d.join("out.lir.weights");
    std::fs::copy(&c, &cw).unwrap();
    let out = d.join("out.lir");
    refused(
        &[
            "quantize",
            s(&m),
            "--calib",
            s(&cw),
            "--subset",
            "8",
            "-o",
            s(&out),
        ],
        "-o",
        &[&out, &cw],
        &cw,
    );
    // Two outputs naming one file.
    let a = d.join("a.lir");
    let e = refused(
        &strs(&quantize(&[
            "-o",
            s(&a),
            "--report",
            s(&d.join("a.lir.weights")),
        ])),
        "--report",
        &[&d.join("a.lir.weights")],
        &m,
    );
    assert!(e.contains("same file"), "{e}");
    assert!(!a.exists());

    // A folder input covers what is inside it.
    let cd = d.join("calib");
    std::fs::create_dir(&cd).unwrap();
    std::fs::copy(&c, cd.join("all.npy")).unwrap();
    let r = cd.join("r.json");
    refused(
        &["calibrate", s(&m), "--calib", s(&cd), "--report", s(&r)],
        "--report",
        &[&r, &cd],
        &cd.join("all.npy"),
    );
    assert!(!r.exists());

    // run --output-dir: an output file that is an --input.
    let od = d.join("outs");
    std::fs::create_dir(&od).unwrap();
    let logits = od.join("logits.npy");
    std::fs::copy(example("test_x8.npy"), &logits).unwrap();
    refused(
        &["run", s(&m), "--input", s(&logits), "--output-dir", s(&od)],
        "--output-dir",
        &[&logits],
        &logits,
    );
}

#[test]
fn onnx_external_data_is_an_input() {
    use lpc_onnx::proto::{ModelProto, StringStringEntryProto};
    use prost::Message;
    let d = workdir("external");
    let mut model =
        ModelProto::decode(std::fs::read(d.join("m.onnx")).unwrap().as_slice()).unwrap();
    let graph = model.graph.as_mut().unwrap();
    let t = graph
        .initializer
        .iter_mut()
        .max_by_key(|t| t.raw_data.as_ref().map_or(0, Vec::len))
        .unwrap();
    let bin = d.join("weights.bin");
    std::fs::write(&bin, t.raw_data.take().expect("raw data")).unwrap();
    t.data_location = Some(1);
    t.external_data = vec![StringStringEntryProto {
        key: Some("location".into()),
        value: Some("weights.bin".into()),
    }];
    let ext = d.join("ext.onnx");
    std::fs::write(&ext, model.encode_to_vec()).unwrap();
    // The model loads with its external data ...
    let o = lpc(&["show", s(&ext)]);
    assert!(o.status.success(), "{}", stderr(&o));
    // ... so an output may not replace that file.
    let e = refused(
        &[
            "quantize",
            s(&ext),
            "--calib",
            s(&d.join("c.npy")),
            "-o",
            s(&d.join("q.onnx")),
            "--report",
            s(&bin),
        ],
        "--report",
        &[&bin, &ext],
        &bin,
    );
    assert!(e.contains("read with MODEL"), "{e}");
}

#[test]
fn a_failed_write_leaves_the_old_output() {
    let d = workdir("atomic");
    let m = d.join("m.onnx");
    // Writing `out.lir` writes `out.lir.weights` too; here that cannot be written (it is a
    // folder), so the import fails half-way. The old `out.lir` must still be there, whole.
    let out = d.join("out.lir");
    std::fs::write(&out, "old text").unwrap();
    std::fs::create_dir(d.join("out.lir.weights")).unwrap();
    let o = lpc(&["import", s(&m), "-o", s(&out)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("out.lir.weights"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "old text");

    // A successful write replaces the file and leaves no temporary file behind.
    let good = d.join("good.lir");
    std::fs::write(&good, "old text").unwrap();
    let o = lpc(&["import", s(&m), "-o", s(&good)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read_to_string(&good).unwrap().contains("graph"));
    let mut names: Vec<String> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "c.npy",
            "good.lir",
            "good.lir.weights",
            "m.onnx",
            "out.lir",
            "out.lir.weights"
        ]
    );
}

#[test]
fn the_output_format_is_the_one_its_extension_names() {
    let d = workdir("format");
    let m = d.join("m.onnx");
    for bad in ["out.xyz", "out", "out.npy"] {
        let p = d.join(bad);
        let o = lpc(&["import", s(&m), "-o", s(&p)]);
        assert_eq!(o.status.code(), Some(1), "{bad}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!("-o {}: output must end in .lir", p.display()))
                && stderr(&o).contains(".onnx"),
            "{}",
            stderr(&o)
        );
        assert!(!p.exists(), "{bad} written");
    }
    // import -o .onnx writes ONNX, and it runs as the original does.
    let onnx = d.join("again.onnx");
    let o = lpc(&["import", s(&m), "-o", s(&onnx)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let x = example("test_x8.npy");
    let a = lpc(&["run", s(&m), "-i", s(&x)]);
    let b = lpc(&["run", s(&onnx), "-i", s(&x)]);
    assert!(b.status.success(), "{}", stderr(&b));
    assert_eq!(a.stdout, b.stdout);
    // fold writes .lir only (its fused integer ops have no ONNX form).
    let f = d.join("f.onnx");
    let o = lpc(&["fold", s(&m), "-o", s(&f)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("output must end in .lir"),
        "{}",
        stderr(&o)
    );
    assert!(!f.exists());
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let d = workdir("deep");
    let n = 20_000;
    let rules = d.join("deep.rules");
    std::fs::write(
        &rules,
        format!(
            "rule deep\n  match {}?x{}\n  rewrite ?x\n",
            "(relu ".repeat(n),
            ")".repeat(n)
        ),
    )
    .unwrap();
    let cases =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../passes/legalize/fake-quantize.lir");
    let o = lpc(&["rules", "check", s(&rules), "--cases", s(&cases)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("deep.rules:2:1545: pattern nested deeper than 256 levels"),
        "{}",
        stderr(&o)
    );
    let m = d.join("m.onnx");
    let o = lpc(&[
        "fold",
        s(&m),
        "--rules",
        s(&rules),
        "-o",
        s(&d.join("f.lir")),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("deep.rules:2:1545"), "{}", stderr(&o));

    // A graph that is one long chain folds without recursing once per node: 2,000 nodes in a
    // 256 KiB stack.
    let n = 2000;
    let mut text = format!("graph @chain(%x: f32[4]) -> (%y{n}) {{\n  %y0 = relu(%x) : f32[4]\n");
    for i in 1..=n {
        text += &format!("  %y{i} = relu(%y{}) : f32[4]\n", i - 1);
    }
    text += &format!("  return %y{n}\n}}\n");
    let chain = d.join("chain.lir");
    std::fs::write(&chain, text).unwrap();
    let out = d.join("chain.out.lir");
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -s 256 && exec '{}' fold '{}' -o '{}'",
            env!("CARGO_BIN_EXE_lpc"),
            chain.display(),
            out.display()
        ))
        .output()
        .expect("sh");
    assert!(o.status.success(), "{:?}: {}", o.status, stderr(&o));
    assert!(std::fs::read_to_string(&out)
        .unwrap()
        .contains(&format!("%y{n} =")));
}

#[test]
fn threads_and_shapes_are_bounded() {
    let m = example("digits_cnn.onnx");
    for verb in ["run", "bench", "compile"] {
        for n in ["0", "100000", "x"] {
            let o = lpc(&[verb, s(&m), "--threads", n]);
            assert_eq!(o.status.code(), Some(2), "{verb} --threads {n}");
            assert!(stderr(&o).contains("--threads"), "{}", stderr(&o));
        }
    }
    // An input larger than the memory: refused before anything is allocated.
    for verb in ["bench", "compile"] {
        let o = lpc(&[verb, s(&m), "--dim", "N=99999999999999"]);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{verb}: {e}");
        assert!(
            e.contains("input 'input'")
                && e.contains("--dim N=99999999999999")
                && e.contains("needs 102399999999998976 bytes"),
            "{e}"
        );
        // Bytes beyond usize are an error too, not an overflow.
        let o = lpc(&[verb, s(&m), "--dim", "N=4611686018427387904"]);
        assert_eq!(o.status.code(), Some(1), "{verb}: {}", stderr(&o));
        assert!(stderr(&o).contains("address space"), "{}", stderr(&o));
    }
    // An input that fits whose compiled plan does not: the digits model's values live at once
    // are 16 times its input, so an input of a quarter of the memory needs four times it.
    if let Some(avail) = mem_available() {
        let n = avail / 1024 / 4;
        let o = lpc(&["compile", s(&m), "--dim", &format!("N={n}")]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(stderr(&o).contains("the JIT plan"), "{}", stderr(&o));
    }
}

/// `MemAvailable` of `/proc/meminfo`, in bytes.
fn mem_available() -> Option<usize> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<usize>().ok()? * 1024)
}

#[test]
fn flag_errors_name_the_flag() {
    let m = example("digits_cnn.onnx");
    let c = example("calib_x.npy");
    let cases: &[(&str, &str)] = &[
        ("--max-drop", "nan"),
        ("--max-drop", "inf"),
        ("--min-sqnr", "NaN"),
        ("--min-sqnr", "-inf"),
        ("--preset", "fast"),
        ("--estimator", "median"),
        ("--metric", "top5"),
    ];
    for (flag, value) in cases {
        let arg = format!("{flag}={value}");
        let o = lpc(&["quantize", s(&m), "--calib", s(&c), "-o", "never.lir", &arg]);
        assert_eq!(o.status.code(), Some(2), "{flag} {value}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!("invalid value '{value}' for '{flag}")),
            "{}",
            stderr(&o)
        );
    }
    assert!(!Path::new("never.lir").exists());
}

#[test]
fn labels_must_be_one_class_per_sample() {
    let d = workdir("labels");
    let m = example("digits_cnn.onnx");
    let x = example("test_x8.npy");
    let write = |name: &str, shape: &[usize], v: Vec<i64>| {
        let p = d.join(name);
        let t = lpc_ir::Tensor::new(shape, lpc_ir::TensorData::I64(v)).unwrap();
        lpc_data::write_npy(&p, &t).unwrap();
        p
    };
    let ok = [4, 6, 8, 0, 3, 7, 2, 4];
    let cases = [
        (
            write("neg.npy", &[8], vec![4, 6, -1, 0, 3, 7, 2, 4]),
            "label -1 (sample 2) is negative",
        ),
        (
            write("big.npy", &[8], vec![4, 6, 8, 0, 3, 10, 2, 4]),
            "sample 5: label 10 is not a class of the model's 10 (0 to 9)",
        ),
        (
            write("rank2.npy", &[8, 1], ok.to_vec()),
            "labels must be a vector of class ids (one per sample), got shape [8, 1]",
        ),
        (
            write("short.npy", &[7], ok[..7].to_vec()),
            "7 labels for 8 samples",
        ),
    ];
    for (labels, want) in &cases {
        let o = lpc(&["accuracy", s(&m), "--data", s(&x), "--labels", s(labels)]);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{e}");
        assert!(e.contains(s(labels)) && e.contains(want), "{want}: {e}");
    }
    let good = write("good.npy", &[8], ok.to_vec());
    let o = lpc(&["accuracy", s(&m), "--data", s(&x), "--labels", s(&good)]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn fold_checks_user_rules_before_trusting_them() {
    let d = workdir("user-rules");
    let m = d.join("q.lir");
    std::fs::write(
        &m,
        r#"graph @g(%x: u8[2,8]) -> (%q) {
  %s = const f32[] [0.03]
  %z = const u8[] [100]
  %d = dequantize_linear(%x, %s, %z) {axis=1, block_size=0} : f32[2,8]
  %r = relu(%d) : f32[2,8]
  %q = quantize_linear(%r, %s, %z) {axis=1, block_size=0, dtype=u8} : u8[2,8]
  return %q
}
"#,
    )
    .unwrap();
    let rules = |name: &str, text: &str| {
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    // Dropping a Relu inside Q/DQ moves every level below the zero point: refused, with the
    // rule's location and the difference, and nothing written.
    let bad = rules(
        "bad.rules",
        "rule drop-relu\n  match (q (relu (dq ?x ?s ?z)) ?s ?z)\n  rewrite ?x\n",
    );
    let out = d.join("out.lir");
    let o = lpc(&["fold", s(&m), "--rules", s(&bad), "-o", s(&out)]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains(&format!("{}:1:6: rule 'drop-relu' is unsound", s(&bad)))
            && e.contains("sides differ by")
            && e.contains("--trust-rules"),
        "{e}"
    );
    assert!(!out.exists());
    // --trust-rules applies it unchecked (the user's call).
    let o = lpc(&[
        "fold",
        s(&m),
        "--rules",
        s(&bad),
        "--trust-rules",
        "-o",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.exists());
    // A sound rule passes the check; a rule that matches nothing is reported as such.
    let good = rules(
        "good.rules",
        "rule keep\n  match (q (dq ?x ?s ?z) ?s ?z)\n  rewrite ?x\n",
    );
    let o = lpc(&["fold", s(&m), "--rules", s(&good), "-o", s(&out)]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        text.contains("1 rule(s) matched nothing") && text.contains("keep"),
        "{text}"
    );
}

#[test]
fn compile_says_which_shapes_it_cannot_bind() {
    let d = workdir("dynamic");
    let m = d.join("nz.lir");
    std::fs::write(
        &m,
        "graph @g(%x: f32[3,4]) -> (%y) {\n  %nz = non_zero(%x) : i64[2,s0] @NonZero_1\n  %y = transpose(%nz) : i64[s0,2] @Transpose_2\n  return %y\n}\n",
    )
    .unwrap();
    let out = d.join("c.lir");
    let o = lpc(&["compile", s(&m), "-o", s(&out)]);
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    assert!(
        e.contains(
            "2 step(s) have output shapes that depend on the input data (NonZero_1, Transpose_2)"
        ),
        "{e}"
    );
    // And the compiled model runs, the shapes found at run time.
    let x = d.join("x.npy");
    let t = lpc_ir::Tensor::new(
        &[3, 4],
        lpc_ir::TensorData::F32(vec![0., 1., 0., 2., 0., 0., 3., 0., 4., 0., 0., 0.]),
    )
    .unwrap();
    lpc_data::write_npy(&x, &t).unwrap();
    let o = lpc(&["run", s(&out), "--backend", "jit", "--input", s(&x)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("y: i64[4, 2]"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

#[test]
fn fuzz_findings_are_errors_not_panics() {
    // Found by tools/fuzz.py: a model without outputs, an input whose batch is 0, and a
    // --runs too large to allocate for.
    let d = workdir("fuzz-findings");
    let src = std::fs::read(example("digits_cnn.onnx")).unwrap();
    let mut m = <lpc_onnx::proto::ModelProto as prost::Message>::decode(&src[..]).unwrap();
    let g = m.graph.as_mut().unwrap();
    let outputs = std::mem::take(&mut g.output);
    let no_out = d.join("no_output.onnx");
    std::fs::write(&no_out, prost::Message::encode_to_vec(&m)).unwrap();
    let g = m.graph.as_mut().unwrap();
    g.output = outputs;
    let dim = &mut g.input[0]
        .r#type
        .as_mut()
        .and_then(|t| t.value.as_mut())
        .map(|v| match v {
            lpc_onnx::proto::type_proto::Value::TensorType(t) => t,
            _ => panic!("tensor input"),
        })
        .and_then(|t| t.shape.as_mut())
        .unwrap()
        .dim[0];
    dim.value = Some(lpc_onnx::proto::tensor_shape_proto::dimension::Value::DimValue(0));
    let batch0 = d.join("batch0.onnx");
    std::fs::write(&batch0, prost::Message::encode_to_vec(&m)).unwrap();
    let x = example("test_x8.npy");
    let y = example("test_y8.npy");
    let c = example("calib_x.npy");
    let r = d.join("r.json");
    let model = example("digits_cnn.onnx");
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            vec!["accuracy", s(&no_out), "--data", s(&x), "--labels", s(&y)],
            1,
            "the model has no outputs",
        ),
        (
            vec!["calibrate", s(&batch0), "--calib", s(&c), "-o", s(&r)],
            1,
            "has a batch dimension of 0",
        ),
        (
            vec!["bench", s(&model), "--runs", "4294967296"],
            2,
            "'--runs <RUNS>': 4294967296 is not in 1..=1000000",
        ),
    ];
    for (args, code, want) in cases {
        let o = lpc(&args);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {e}");
        assert!(e.contains(want), "{args:?}: {e}");
    }
}
