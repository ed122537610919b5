//! ONNX backend conformance: every case under `../shared/onnx-node` that `tests/onnx-node.txt`
//! lists must pass (integer outputs exact, float outputs within rtol 1e-3 / atol 1e-5), imported
//! directly and after a round trip through lpc's ONNX export; the
//! cases not listed are in `tests/onnx-node-failing.txt` with the reason. One test per case.
//!
//! `LPC_CONFORMANCE_ALL=1 cargo test --test conformance -- --include-ignored` also runs the
//! unlisted cases (as ignored tests) to see which now pass.

use libtest_mimic::{Arguments, Failed, Trial};
use lpc_suite::{check_roundtrip, compare, read_pb_set, root, shared};
use std::path::Path;

/// Runs one case: import, prepare, run every test_data_set, compare outputs; the same after
/// exporting the prepared graph to ONNX and importing it again.
fn run_case(dir: &Path) -> Result<(), String> {
    let mut g =
        lpc_onnx::import_file(&dir.join("model.onnx")).map_err(|e| format!("import: {e}"))?;
    lpc_load::prepare(&mut g).map_err(|e| format!("prepare: {e}"))?;
    check_roundtrip(&g)?;
    let mut sets: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    sets.sort();
    if sets.is_empty() {
        return Err("no test_data_set_* folder".into());
    }
    for set in sets {
        let inputs = read_pb_set(&set, "input")?;
        let expected = read_pb_set(&set, "output")?;
        let outs = lpc_ref::run(&g, &inputs).map_err(|e| format!("run: {e}"))?;
        if outs.len() != expected.len() {
            return Err(format!(
                "{} outputs, expected {}",
                outs.len(),
                expected.len()
            ));
        }
        for (k, (a, e)) in outs.iter().zip(&expected).enumerate() {
            compare(a, e, 1e-3, 1e-5).map_err(|m| format!("{}: output {k}: {m}", set.display()))?;
        }
        // lpc's ONNX export (opset 21) of the imported graph, imported again, computes the same.
        let export = |e: String| format!("{}: ONNX export round trip: {e}", set.display());
        let bytes = lpc_onnx::export::export_bytes(&g).map_err(|e| export(e.to_string()))?;
        let mut back = lpc_onnx::import_bytes(&bytes, None).map_err(|e| export(e.to_string()))?;
        lpc_load::prepare(&mut back).map_err(|e| export(e.to_string()))?;
        let outs = lpc_ref::run(&back, &inputs).map_err(|e| export(e.to_string()))?;
        for (k, (a, e)) in outs.iter().zip(&expected).enumerate() {
            compare(a, e, 1e-3, 1e-5).map_err(|m| export(format!("output {k}: {m}")))?;
        }
    }
    Ok(())
}

fn manifest(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(root().join("tests").join(name)).unwrap_or_default();
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

fn main() {
    let args = Arguments::from_args();
    let cases_dir = shared().join("onnx-node");
    assert!(cases_dir.is_dir(), "{} is missing", cases_dir.display());
    let expected = manifest("onnx-node.txt");
    let all = std::env::var("LPC_CONFORMANCE_ALL").is_ok();
    let mut names: Vec<String> = std::fs::read_dir(&cases_dir)
        .expect("read onnx-node")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    // Every case is accounted for: listed as passing, or in the failing list with a reason.
    let failing = std::fs::read_to_string(root().join("tests/onnx-node-failing.txt"))
        .expect("tests/onnx-node-failing.txt");
    let mut reasons = std::collections::BTreeMap::new();
    for line in failing
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (name, reason) = line.split_once('#').unwrap_or((line, ""));
        assert!(
            !reason.trim().is_empty(),
            "tests/onnx-node-failing.txt: '{}' gives no reason",
            name.trim()
        );
        reasons.insert(name.trim().to_string(), reason.trim().to_string());
    }
    for name in &names {
        let listed = expected.contains(name);
        assert!(
            listed != reasons.contains_key(name),
            "{name} must be in exactly one of tests/onnx-node.txt and tests/onnx-node-failing.txt"
        );
    }
    let mut trials = vec![];
    for name in expected.iter() {
        assert!(
            names.contains(name),
            "manifest lists {name}, which is not in {}",
            cases_dir.display()
        );
    }
    for name in names {
        let listed = expected.contains(&name);
        if !listed && !all {
            continue;
        }
        let dir = cases_dir.join(&name);
        trials.push(
            Trial::test(name, move || run_case(&dir).map_err(Failed::from))
                .with_ignored_flag(!listed),
        );
    }
    libtest_mimic::run(&args, trials).exit();
}
