//! Shared helpers for lpc's cross-crate tests: locating `../shared`, comparing tensors.
#![deny(missing_docs)]

use lpc_ir::{Tensor, TensorData};
use std::path::{Path, PathBuf};

/// The project root (where the workspace Cargo.toml is).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared` beside the project root. Panics (fails the test) when missing: CI must have it.
pub fn shared() -> PathBuf {
    let p = root().join("..").join("shared");
    assert!(
        p.join("DESIGN.md").exists(),
        "../shared is missing at {}: the tests need the shared data (see README.md)",
        p.display()
    );
    p
}

/// The tensors `<prefix>_0.pb`, `<prefix>_1.pb`, ... of an ONNX backend-suite test data set
/// (`set` is a `test_data_set_*` folder), up to the first missing index.
pub fn read_pb_set(set: &Path, prefix: &str) -> Result<Vec<Tensor>, String> {
    let mut v = vec![];
    for k in 0.. {
        let p = set.join(format!("{prefix}_{k}.pb"));
        if !p.exists() {
            break;
        }
        v.push(lpc_onnx::read_tensor_pb(&p).map_err(|e| format!("{}: {e}", p.display()))?);
    }
    Ok(v)
}

/// Compares an actual tensor with an expected one: dtype and shape equal; integers and bools
/// exactly; floats within `atol + rtol * |expected|` (NaN matches NaN). Returns a description
/// of the first mismatch.
pub fn compare(actual: &Tensor, expected: &Tensor, rtol: f64, atol: f64) -> Result<(), String> {
    if actual.dtype() != expected.dtype() {
        return Err(format!(
            "dtype {} != expected {}",
            actual.dtype(),
            expected.dtype()
        ));
    }
    if actual.shape() != expected.shape() {
        return Err(format!(
            "shape {:?} != expected {:?}",
            actual.shape(),
            expected.shape()
        ));
    }
    let float = matches!(
        expected.data(),
        TensorData::F32(_) | TensorData::F16(_) | TensorData::F64(_)
    );
    if !float {
        if actual.to_le_bytes() != expected.to_le_bytes() {
            let (a, e) = (actual.to_i64_vec(), expected.to_i64_vec());
            let i = a.iter().zip(&e).position(|(x, y)| x != y).unwrap_or(0);
            return Err(format!("element {i}: {} != expected {}", a[i], e[i]));
        }
        return Ok(());
    }
    let (a, e) = (actual.to_f64_vec(), expected.to_f64_vec());
    let mut worst: Option<(usize, f64)> = None;
    for (i, (&x, &y)) in a.iter().zip(&e).enumerate() {
        let ok = if y.is_nan() {
            x.is_nan()
        } else if y.is_infinite() {
            x == y
        } else {
            (x - y).abs() <= atol + rtol * y.abs()
        };
        if !ok {
            let err = if x.is_finite() {
                (x - y).abs()
            } else {
                f64::INFINITY
            };
            if worst.is_none_or(|(_, w)| err > w) {
                worst = Some((i, err));
            }
        }
    }
    match worst {
        None => Ok(()),
        Some((i, _)) => Err(format!(
            "element {i}: {} vs expected {} (and maybe others)",
            a[i], e[i]
        )),
    }
}

/// Relative error `max|a-e| / max|e|` of two float tensors of the same shape.
pub fn max_rel_err(actual: &Tensor, expected: &Tensor) -> f64 {
    let (a, e) = (actual.to_f64_vec(), expected.to_f64_vec());
    let scale = e
        .iter()
        .fold(0.0f64, |m, x| m.max(x.abs()))
        .max(f64::MIN_POSITIVE);
    a.iter()
        .zip(&e)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

/// Checks `parse(print(g)) == g` (with the weights sidecar) and that printing is deterministic.
pub fn check_roundtrip(g: &lpc_ir::Graph) -> Result<(), String> {
    let (text, weights) = lpc_ir::text::print_with_weights(g);
    let back = lpc_ir::text::parse_with_weights(&text, &weights)
        .map_err(|e| format!("re-parse failed at {e}\n{text}"))?;
    if back != *g {
        return Err(format!("parse(print(g)) != g for graph '{}'", g.name));
    }
    let (text2, _) = lpc_ir::text::print_with_weights(&back);
    if text2 != text {
        return Err("printing the re-parsed graph gives different text".into());
    }
    Ok(())
}

/// Every JIT output the same as lpc-ref's (dtype, shape and bits), or which one differs.
pub fn jit_equals_ref(jit: &[Tensor], reference: &[Tensor]) -> Result<(), String> {
    for (k, (a, b)) in jit.iter().zip(reference).enumerate() {
        if !a.same_content(b) {
            return Err(format!(
                "folded output {k}: jit {a} differs from lpc-ref {b}"
            ));
        }
    }
    Ok(())
}
