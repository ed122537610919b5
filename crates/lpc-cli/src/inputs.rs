//! Model inputs on the command line: `--input NAME=PATH` bindings, `--dim SYM=SIZE` bindings and
//! the concrete input shapes they give.

use crate::memory;
use anyhow::{bail, Context, Result};
use lpc_ir::{Graph, Tensor};
use std::collections::HashMap;
use std::path::Path;

/// Parses `--dim SYM=SIZE` bindings.
pub fn parse_dims(specs: &[String]) -> Result<HashMap<String, usize>> {
    let mut m = HashMap::new();
    for s in specs {
        let (k, v) = s
            .split_once('=')
            .with_context(|| format!("--dim '{s}': expected SYM=SIZE"))?;
        let n: usize = v
            .trim()
            .parse()
            .with_context(|| format!("--dim '{s}': size must be a positive integer"))?;
        if n == 0 {
            bail!("--dim '{s}': size must be at least 1");
        }
        m.insert(k.trim().to_string(), n);
    }
    Ok(m)
}

/// The concrete shape of every graph input: declared dims, symbolic ones from `dims` (else 1).
/// Shapes whose tensors would not fit in the memory available are refused, naming the input
/// and the `--dim` bindings it uses.
pub fn input_shapes(g: &Graph, dims: &HashMap<String, usize>) -> Result<Vec<Vec<usize>>> {
    for k in dims.keys() {
        let used = g.inputs().iter().any(|&n| {
            g.node(n).outputs[0].ty.shape.as_ref().is_some_and(|s| {
                s.0.iter()
                    .any(|d| matches!(d, lpc_ir::Dim::Sym(x) if x == k))
            })
        });
        if !used {
            bail!("--dim {k}: no input of the model has a dimension named {k}");
        }
    }
    let mut shapes = vec![];
    let mut total = Some(0usize);
    for &n in g.inputs() {
        let out = &g.node(n).outputs[0];
        let shape = out
            .ty
            .shape
            .as_ref()
            .with_context(|| format!("input '{}' has unknown rank; pass --input", out.name))?;
        let mut bound = vec![];
        let concrete: Vec<usize> = shape
            .0
            .iter()
            .map(|d| match d {
                lpc_ir::Dim::Known(k) => *k,
                lpc_ir::Dim::Sym(s) => {
                    let v = dims.get(s).copied().unwrap_or(1);
                    if dims.contains_key(s) {
                        bound.push(format!("--dim {s}={v}"));
                    }
                    v
                }
            })
            .collect();
        let dtype = out.ty.dtype.unwrap_or(lpc_ir::DType::F32);
        let bytes = concrete
            .iter()
            .try_fold(dtype.size(), |a, &d| a.checked_mul(d));
        total = total.zip(bytes).and_then(|(t, b)| t.checked_add(b));
        memory::check(
            || {
                let by = if bound.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", bound.join(", "))
                };
                format!("input '{}' {dtype}{concrete:?}{by}", out.name)
            },
            bytes,
        )?;
        shapes.push(concrete);
    }
    memory::check(|| "the model's inputs together".into(), total)?;
    Ok(shapes)
}

fn input_names(g: &Graph) -> Vec<String> {
    g.inputs()
        .iter()
        .map(|&n| g.node(n).outputs[0].name.clone())
        .collect()
}

/// An `--input` spec: `NAME=PATH` when NAME is an input of the model (its index), else the
/// whole spec is the path.
fn split_spec<'a>(names: &[String], spec: &'a str) -> (Option<usize>, &'a str) {
    spec.split_once('=')
        .and_then(|(n, p)| Some((names.iter().position(|x| x == n)?, p)))
        .map_or((None, spec), |(k, p)| (Some(k), p))
}

/// The files `--input` specs name.
pub fn input_files<'a>(g: &Graph, specs: &'a [String]) -> Vec<&'a Path> {
    let names = input_names(g);
    specs
        .iter()
        .map(|s| Path::new(split_spec(&names, s).1))
        .collect()
}

/// Binds `--input` specs to graph inputs; every input must be given.
pub fn bind_inputs(g: &Graph, specs: &[String]) -> Result<Vec<Tensor>> {
    bind_inputs_or(g, specs, |g, n| {
        let name = &g.node(n).outputs[0].name;
        bail!("missing input '{name}' (pass --input {name}=PATH)")
    })
}

/// Binds `--input` specs to graph inputs; inputs not given come from `missing`.
pub fn bind_inputs_or(
    g: &Graph,
    specs: &[String],
    mut missing: impl FnMut(&Graph, lpc_ir::NodeId) -> Result<Tensor>,
) -> Result<Vec<Tensor>> {
    let names = input_names(g);
    let mut bound: Vec<Option<Tensor>> = vec![None; names.len()];
    for spec in specs {
        let (idx, path) = split_spec(&names, spec);
        let idx = match idx {
            Some(k) => k,
            None if names.len() == 1 => 0,
            None => bail!(
                "--input '{spec}': the model has {} inputs ({}); use NAME=PATH",
                names.len(),
                names.join(", ")
            ),
        };
        if bound[idx].is_some() {
            bail!("input '{}' given twice", names[idx]);
        }
        let t = lpc_data::read_tensor(Path::new(path))
            .with_context(|| format!("input '{}'", names[idx]))?;
        bound[idx] = Some(t);
    }
    bound
        .into_iter()
        .zip(g.inputs())
        .map(|(t, &n)| match t {
            Some(t) => Ok(t),
            None => missing(g, n),
        })
        .collect()
}
