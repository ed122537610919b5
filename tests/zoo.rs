//! The zoo (`../shared/models/zoo`, real third-party models): every model imports, and lpc-ref
//! and the JIT (`CompiledModel`, float kernels and lpc-ref fallbacks) match ONNX Runtime on
//! seeded inputs (`tools/zoo_reference.py` makes them and runs ONNX Runtime); then the fast part of
//! the zoo sweep (`benches/zoo.py`): the model quantized on a few samples (a model that ships
//! quantized as it is), folded, and the folded graph run by the JIT bit-exact to lpc-ref. Every
//! folder of the zoo is a case, so a model added there is tested without a change here. Needs
//! python3 with onnxruntime; without it the cases are skipped unless `LPC_REQUIRE_PEERS` is set
//! (CI sets it).

use libtest_mimic::{Arguments, Failed, Trial};
use lpc_data::read_npy;
use lpc_ir::{Graph, OpKind, Tensor};
use lpc_suite::{jit_equals_ref, max_rel_err, root, shared};
use std::path::{Path, PathBuf};

/// Models that do not import or run yet, with the reason; each must still fail (a case that
/// starts passing has to be moved out of this list).
const PENDING: &[(&str, &str)] = &[];

/// Models whose fast INT8 part (quantize, fold, JIT == lpc-ref) does not pass yet, with the
/// reason; their import and FP32 match are still tested, and the INT8 part must still fail.
const PENDING_INT8: &[(&str, &str)] = &[];

/// Max |lpc − ORT| / max |ORT| allowed per output: 1e-4; 1e-3 for recurrent nets (long chains
/// of steps accumulate float differences); 1e-2 for models that carry Q/DQ pairs, where a
/// float difference in the last bit before a QuantizeLinear moves a value by a whole level
/// (ONNX Runtime's own outputs differ by ~7e-4 between its optimisation levels on the zoo's
/// QDQ transformer).
fn tolerance(g: &Graph) -> f64 {
    let has = |kinds: &[OpKind]| {
        g.node_ids()
            .into_iter()
            .any(|n| kinds.contains(&g.node(n).op.kind()))
    };
    if has(&[OpKind::QuantizeLinear, OpKind::DequantizeLinear]) {
        1e-2
    } else if has(&[OpKind::Lstm, OpKind::Gru, OpKind::Rnn]) {
        1e-3
    } else {
        1e-4
    }
}

fn model_file(dir: &Path) -> Result<PathBuf, String> {
    let mut found = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "onnx"))
        .collect::<Vec<_>>();
    match found.len() {
        1 => Ok(found.remove(0)),
        n => Err(format!("{}: {n} .onnx files, expected one", dir.display())),
    }
}

/// Runs the reference script; `Ok(None)` when ONNX Runtime is not installed and not required.
fn ort_reference(dir: &Path, out: &Path) -> Result<Option<()>, String> {
    let required = std::env::var_os("LPC_REQUIRE_PEERS").is_some();
    let o = std::process::Command::new("python3")
        .arg(root().join("tools").join("zoo_reference.py"))
        .arg(dir)
        .arg(out)
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    let err = String::from_utf8_lossy(&o.stderr);
    if !o.status.success() && err.contains("No module named") && !required {
        eprintln!("onnxruntime not installed: {} skipped", dir.display());
        return Ok(None);
    }
    if !o.status.success() {
        return Err(format!("zoo_reference.py failed: {err}"));
    }
    Ok(Some(()))
}

fn run_case(name: &str, dir: &Path) -> Result<(), String> {
    let g = lpc_load::load_model(&model_file(dir)?).map_err(|e| format!("import: {e:#}"))?;
    let out = std::env::temp_dir().join(format!("lpc-zoo-{}-{name}", std::process::id()));
    if ort_reference(dir, &out)?.is_none() {
        return Ok(());
    }
    let read = |f: String| read_npy(&out.join(&f)).map_err(|e| format!("{f}: {e}"));
    let inputs = (0..g.inputs().len())
        .map(|i| read(format!("input_{i}.npy")))
        .collect::<Result<Vec<_>, _>>()?;
    let outs = lpc_ref::run(&g, &inputs).map_err(|e| format!("lpc-ref: {e}"))?;
    let tol = tolerance(&g);
    for (k, a) in outs.iter().enumerate() {
        let e = read(format!("output_{k}.npy"))?;
        if a.shape() != e.shape() {
            return Err(format!(
                "output {k}: shape {:?}, ORT {:?}",
                a.shape(),
                e.shape()
            ));
        }
        let err = max_rel_err(a, &e);
        if err.is_nan() || err > tol {
            return Err(format!(
                "output {k}: max |diff| / max |ORT| = {err:e} > {tol:e}"
            ));
        }
    }
    std::fs::remove_dir_all(&out).ok();
    match (
        int8_jit_matches_ref(&g, &inputs),
        PENDING_INT8.iter().find(|(p, _)| *p == name),
    ) {
        (r, None) => r,
        (Ok(()), Some((_, why))) => Err(format!(
            "INT8 part listed as pending ({why}) but passes: remove it from PENDING_INT8"
        )),
        // Only the known difference is pending: any other failure still fails.
        (Err(e), Some(_)) if e.contains("differs from lpc-ref") => Ok(()),
        (Err(e), Some(_)) => Err(e),
    }
}

/// Three calibration samples from the reference input: as it is and its float inputs scaled
/// by 0.5 and 0.9 (integer inputs, token ids and masks, unchanged).
fn few_samples(inputs: &[Tensor]) -> Vec<Vec<Tensor>> {
    [1.0f32, 0.5, 0.9]
        .iter()
        .map(|&k| {
            inputs
                .iter()
                .map(|t| match t.as_f32().ok() {
                    Some(v) if k != 1.0 => {
                        Tensor::from_f32(t.shape(), v.iter().map(|x| x * k).collect())
                            .expect("same shape")
                    }
                    _ => t.clone(),
                })
                .collect()
        })
        .collect()
}

/// Quantize (min-max ranges, no bias correction: the sweep measures accuracy, this checks the
/// path), static and `--mode dynamic`, fold each with the built-in pipeline, and demand the
/// JIT's outputs equal lpc-ref's.
fn int8_jit_matches_ref(g: &Graph, inputs: &[Tensor]) -> Result<(), String> {
    let data = lpc_data::InMemory(few_samples(inputs));
    let cfg = lpc_quant::Config {
        estimator: lpc_quant::Estimator::MinMax,
        bias_correction: false,
        report_samples: 0,
        ..Default::default()
    };
    // A model that ships quantized is folded as it is.
    let (q, dynamic) = match lpc_quant::quantize(g, &data, &cfg) {
        Ok(q) => {
            let d = lpc_quant::quantize_dynamic(g, Some(&data), &cfg)
                .map_err(|e| format!("quantize --mode dynamic: {e:#}"))?;
            (q.graph, Some(d.graph))
        }
        Err(lpc_quant::QuantError::AlreadyQuantized { .. }) => (g.clone(), None),
        Err(e) => return Err(format!("quantize: {e:#}")),
    };
    folded_jit_matches_ref(&q, inputs)?;
    match dynamic {
        Some(d) => folded_jit_matches_ref(&d, inputs).map_err(|e| format!("dynamic INT8: {e}")),
        None => Ok(()),
    }
}

/// Folds `q` with the built-in pipeline and demands the JIT's outputs equal lpc-ref's.
fn folded_jit_matches_ref(q: &Graph, inputs: &[Tensor]) -> Result<(), String> {
    let f = lpc_fold::fold_graph(q, &[], None, None)
        .map_err(|e| format!("fold: {e:#}"))?
        .graph;
    let want = lpc_ref::run(&f, inputs).map_err(|e| format!("lpc-ref on the folded graph: {e}"))?;
    let shapes: Vec<Vec<usize>> = inputs.iter().map(|t| t.shape().to_vec()).collect();
    let m = lpc_jit::CompiledModel::compile(&f, &shapes, &lpc_jit::CompileOptions::default())
        .map_err(|e| format!("jit compile of the folded graph: {e}"))?;
    let got = m.run(inputs).map_err(|e| format!("jit: {e}"))?;
    jit_equals_ref(&got, &want)
}

fn main() {
    let args = Arguments::from_args();
    let zoo = shared().join("models").join("zoo");
    let mut names: Vec<String> = std::fs::read_dir(&zoo)
        .unwrap_or_else(|e| panic!("{}: {e}", zoo.display()))
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(!names.is_empty(), "{} holds no models", zoo.display());
    for (p, _) in PENDING.iter().chain(PENDING_INT8) {
        assert!(
            names.iter().any(|n| n == p),
            "PENDING lists {p}, not in the zoo"
        );
    }
    let trials = names
        .into_iter()
        .map(|name| {
            let dir = zoo.join(&name);
            let pending = PENDING.iter().find(|(p, _)| *p == name).map(|(_, r)| *r);
            Trial::test(name.clone(), move || {
                match (run_case(&name, &dir), pending) {
                    (r, None) => r.map_err(Failed::from),
                    (Ok(()), Some(why)) => Err(Failed::from(format!(
                        "listed as pending ({why}) but passes: remove it from PENDING"
                    ))),
                    (Err(_), Some(_)) => Ok(()),
                }
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
