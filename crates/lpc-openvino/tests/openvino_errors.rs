//! Malformed OpenVINO IR gets clear errors, never a panic: hand-made defects, then many
//! deterministic random truncations and byte flips of the digits IR files.

use lpc_openvino::{import_openvino, import_openvino_parts, OpenVinoError};
use std::path::{Path, PathBuf};

const GOOD: &str = r#"<?xml version="1.0"?>
<net name="t" version="11">
  <layers>
    <layer id="0" name="x" type="Parameter" version="opset1">
      <data shape="1,4" element_type="f32"/>
      <output><port id="0" precision="FP32" names="x"><dim>1</dim><dim>4</dim></port></output>
    </layer>
    <layer id="1" name="c" type="Const" version="opset1">
      <data element_type="f32" shape="1,4" offset="0" size="16"/>
      <output><port id="0" precision="FP32"><dim>1</dim><dim>4</dim></port></output>
    </layer>
    <layer id="2" name="add" type="Add" version="opset1">
      <data auto_broadcast="numpy"/>
      <input>
        <port id="0" precision="FP32"><dim>1</dim><dim>4</dim></port>
        <port id="1" precision="FP32"><dim>1</dim><dim>4</dim></port>
      </input>
      <output><port id="2" precision="FP32" names="y"><dim>1</dim><dim>4</dim></port></output>
    </layer>
    <layer id="3" name="out" type="Result" version="opset1">
      <input><port id="0" precision="FP32"><dim>1</dim><dim>4</dim></port></input>
    </layer>
  </layers>
  <edges>
    <edge from-layer="0" from-port="0" to-layer="2" to-port="0"/>
    <edge from-layer="1" from-port="0" to-layer="2" to-port="1"/>
    <edge from-layer="2" from-port="2" to-layer="3" to-port="0"/>
  </edges>
</net>
"#;

fn bin() -> Vec<u8> {
    [1f32, 2.0, 3.0, 4.0]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect()
}

/// The import error of GOOD with `from` replaced by `to` (which must occur).
fn err_with(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "test bug: {from:?} not in the model");
    match import_openvino_parts(&GOOD.replacen(from, to, 1), Some(&bin())) {
        Ok(_) => panic!("{from:?} -> {to:?} imported without error"),
        Err(e) => e.to_string(),
    }
}

fn assert_contains(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "error {msg:?} does not mention {p:?}");
    }
}

#[test]
fn the_base_model_imports() {
    let g = import_openvino_parts(GOOD, Some(&bin())).expect("import");
    assert_eq!(g.inputs().len(), 1);
    assert_eq!(g.outputs().len(), 1);
    assert_eq!(g.value_name(g.outputs()[0]), "y");
    let c = g
        .const_value(g.node_input(g.outputs()[0].node, 1).expect("const input"))
        .expect("const");
    assert_eq!(c.as_f32().expect("f32"), &[1.0, 2.0, 3.0, 4.0]);
}

#[test]
fn malformed_xml() {
    let e = import_openvino_parts(&GOOD[..GOOD.len() / 2], Some(&bin())).unwrap_err();
    assert!(matches!(e, OpenVinoError::Xml(_)), "{e}");
    let msg = err_with("</layers>", "</layer>");
    assert_contains(&msg, &["malformed XML"]);
    let e =
        import_openvino_parts("<?xml version=\"1.0\"?><model version=\"11\"/>", None).unwrap_err();
    assert_contains(&e.to_string(), &["expected <net>"]);
    let e = import_openvino_parts("<net version=\"11\"></net>", None).unwrap_err();
    assert_contains(&e.to_string(), &["no <layers>"]);
    assert_contains(
        &err_with("version=\"11\"", "version=\"7\""),
        &["IR version '7'"],
    );
}

#[test]
fn bin_shorter_than_an_offset() {
    let e = import_openvino_parts(GOOD, Some(&bin()[..12]))
        .unwrap_err()
        .to_string();
    assert_contains(
        &e,
        &["layer 1 'c' (Const/opset1)", "outside the .bin (12 bytes)"],
    );
    assert_contains(
        &err_with("offset=\"0\"", "offset=\"18446744073709551615\""),
        &["outside the .bin"],
    );
    assert_contains(&err_with("offset=\"0\"", "offset=\"-4\""), &["offset"]);
    assert_contains(
        &err_with("size=\"16\"", "size=\"12\""),
        &["size 12 bytes does not hold", "layer 1 'c'"],
    );
    let e = import_openvino_parts(GOOD, None).unwrap_err().to_string();
    assert_contains(&e, &["no .bin"]);
}

#[test]
fn missing_bin_file_is_named() {
    let dir = std::env::temp_dir().join(format!("lpc-ov-nobin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let xml = dir.join("m.xml");
    std::fs::write(&xml, GOOD).expect("write");
    let e = import_openvino(&xml).unwrap_err().to_string();
    assert_contains(&e, &["m.bin"]);
    let e = import_openvino(&dir.join("absent.xml")).unwrap_err();
    assert!(matches!(e, OpenVinoError::Io { .. }), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn dangling_edges() {
    assert_contains(
        &err_with(r#"from-layer="1""#, r#"from-layer="9""#),
        &["edge 9:0 -> 2:1", "no layer has id 9"],
    );
    assert_contains(
        &err_with(r#"to-layer="3" to-port="0""#, r#"to-layer="3" to-port="5""#),
        &["has no input port 5"],
    );
    assert_contains(
        &err_with(
            r#"from-layer="2" from-port="2""#,
            r#"from-layer="2" from-port="0""#,
        ),
        &["no output port 0"],
    );
    assert_contains(
        &err_with(
            r#"<edge from-layer="1" from-port="0" to-layer="2" to-port="1"/>"#,
            "",
        ),
        &["layer 2 'add'", "input port 1 has no incoming edge"],
    );
    assert_contains(
        &err_with(r#"to-layer="2" to-port="1""#, r#"to-layer="2" to-port="0""#),
        &["two incoming edges"],
    );
    assert_contains(
        &err_with(
            r#"from-layer="0" from-port="0""#,
            r#"from-layer="x" from-port="0""#,
        ),
        &["from-layer"],
    );
}

#[test]
fn precision_and_shape_mismatches() {
    let e = err_with(
        r#"<port id="1" precision="FP32">"#,
        r#"<port id="1" precision="I8">"#,
    );
    assert_contains(
        &e,
        &[
            "precision mismatch",
            "'c' produces FP32",
            "'add' expects I8",
        ],
    );
    assert_contains(
        &err_with(
            r#"element_type="f32" shape="1,4""#,
            r#"element_type="i32" shape="1,4""#,
        ),
        &["does not match the port precision FP32"],
    );
    assert_contains(
        &err_with(r#"shape="1,4" offset"#, r#"shape="2,2" offset"#),
        &["does not match the port dims"],
    );
    assert_contains(
        &err_with(
            r#"<port id="1" precision="FP32"><dim>1</dim>"#,
            r#"<port id="1" precision="FP32"><dim>2</dim>"#,
        ),
        &["shape mismatch"],
    );
    assert_contains(
        &err_with(
            r#"precision="FP32" names="x""#,
            r#"precision="BF16" names="x""#,
        ),
        &["BF16"],
    );
    assert_contains(
        &err_with(
            "<dim>4</dim></port></output>\n    </layer>\n    <layer id=\"1\"",
            "<dim>-7</dim></port></output>\n    </layer>\n    <layer id=\"1\"",
        ),
        &["dimension '-7'"],
    );
}

#[test]
fn unsupported_and_bad_layers() {
    assert_contains(
        &err_with(r#"type="Add""#, r#"type="Frobnicate""#),
        &["layer 2 'add' (Frobnicate/opset1)", "not supported"],
    );
    assert_contains(
        &err_with(r#"auto_broadcast="numpy""#, r#"auto_broadcast="pdpd""#),
        &["layer 2 'add'", "auto_broadcast 'pdpd'"],
    );
    assert_contains(
        &err_with(r#"<layer id="3""#, r#"<layer id="2""#),
        &["two layers have id 2"],
    );
    assert_contains(
        &err_with(
            r#"element_type="f32" shape="1,4" offset"#,
            r#"element_type="u4" shape="1,4" offset"#,
        ),
        &["'u4'"],
    );
    // A cycle: the Add reads its own output.
    let e = err_with(
        r#"from-layer="1" from-port="0" to-layer="2""#,
        r#"from-layer="2" from-port="2" to-layer="2""#,
    );
    assert_contains(&e, &["cycle"]);
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Imports `xml` + `bin` written to files; Ok(true) when the model imported.
fn try_import(dir: &Path, xml: &[u8], bin: &[u8]) -> std::thread::Result<bool> {
    std::fs::write(dir.join("m.xml"), xml).expect("write xml");
    std::fs::write(dir.join("m.bin"), bin).expect("write bin");
    let p = dir.join("m.xml");
    std::panic::catch_unwind(|| match import_openvino(&p) {
        Ok(mut g) => {
            // What imports must also be safe for the stages after import.
            let _ = lpc_ir::verify(&g);
            let _ = lpc_ir::infer_types(&mut g);
            true
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            false
        }
    })
}

#[test]
fn random_truncations_and_flips_never_panic() {
    let peers = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/digits/quantized-by-peers");
    let dir: PathBuf = std::env::temp_dir().join(format!("lpc-ov-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut rng = Rng(0x5eed_1998_0bad_cafe);
    let (mut ok, mut err) = (0, 0);
    // The digits IRs, then the operator-coverage IRs (more layer types, fewer cases each).
    let ops = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/openvino/ops");
    let mut models: Vec<(PathBuf, usize)> = ["digits_cnn.nncf-int8", "digits_mbv.nncf-int8"]
        .iter()
        .map(|s| (peers.join(format!("{s}.xml")), 400))
        .collect();
    let mut op_files: Vec<PathBuf> = std::fs::read_dir(&ops)
        .expect("ops dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    op_files.sort();
    models.extend(op_files.into_iter().map(|p| (p, 60)));
    let mut total = 0;
    for (path, n) in models {
        let stem = path.display().to_string();
        let xml = std::fs::read(&path).expect("xml");
        let bin = std::fs::read(path.with_extension("bin")).expect("bin");
        let digits: Vec<usize> = (0..xml.len())
            .filter(|&i| xml[i].is_ascii_digit())
            .collect();
        total += n;
        for case in 0..n {
            let (mut x, mut b) = (xml.clone(), bin.clone());
            match case % 5 {
                0 => x.truncate(rng.below(x.len())),
                1 if !b.is_empty() => b.truncate(rng.below(b.len())),
                1 => x.truncate(rng.below(x.len())),
                2 => {
                    for _ in 0..1 + rng.below(4) {
                        let i = rng.below(x.len());
                        x[i] ^= 1 << rng.below(8);
                    }
                }
                3 => {
                    // Numbers carry the structure: ids, ports, dims, offsets, sizes.
                    for _ in 0..1 + rng.below(3) {
                        let i = digits[rng.below(digits.len())];
                        x[i] = b"0123456789-?"[rng.below(12)];
                    }
                }
                _ if !b.is_empty() => {
                    let i = rng.below(b.len());
                    b[i] ^= 1 << rng.below(8);
                }
                _ => x.truncate(rng.below(x.len())),
            }
            match try_import(&dir, &x, &b) {
                Ok(true) => ok += 1,
                Ok(false) => err += 1,
                Err(_) => panic!("{stem}: mutation case {case} panicked (seeded, reproducible)"),
            }
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    eprintln!("{total} mutated models: {ok} imported, {err} rejected with an error, none panicked");
    assert!(
        err > total / 4,
        "too few mutations were rejected ({err}): the checks are not checking"
    );
}
