//! Model inputs on the command line: `--input NAME=PATH` bindings, `--dim SYM=SIZE` bindings and
//! the concrete input shapes they give (symbolic dims nothing binds are set to 1, and said so).

use crate::memory;
use anyhow::{bail, Context, Result};
use lpc_ir::{Dim, Graph, Tensor};
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

/// The concrete shape of every graph input, and the symbolic dims nothing bound.
pub struct InputShapes {
    /// One shape per graph input.
    pub shapes: Vec<Vec<usize>>,
    /// Per input (name), its symbolic dims that no `--input` or `--dim` bound: set to 1.
    pub defaulted: Vec<(String, Vec<String>)>,
}

impl InputShapes {
    /// The shapes of the graph inputs: a given tensor's own shape; otherwise the declared
    /// dims, a symbolic one bound by `--dim` or by a given tensor whose declared shape names
    /// the same dim (e.g. the batch of another input), else 1 (listed in `defaulted`).
    pub fn of(
        g: &Graph,
        dims: &HashMap<String, usize>,
        given: &[Option<Tensor>],
    ) -> Result<InputShapes> {
        for k in dims.keys() {
            if !g
                .inputs()
                .iter()
                .any(|&n| declared(g, n).contains(&Dim::Sym(k.clone())))
            {
                bail!("--dim {k}: no input of the model has a dimension named {k}");
            }
        }
        let mut bound = dims.clone();
        for (&n, t) in g.inputs().iter().zip(given) {
            let (Some(t), decl) = (t, declared(g, n)) else {
                continue;
            };
            if decl.len() != t.rank() {
                continue; // the run reports the mismatch, naming the input
            }
            for (d, &size) in decl.iter().zip(t.shape()) {
                let Dim::Sym(sym) = d else { continue };
                match dims.get(sym) {
                    Some(&v) if v != size => bail!(
                        "--dim {sym}={v}, but input '{}' has {sym} = {size} in its data",
                        g.node(n).outputs[0].name
                    ),
                    _ => {
                        bound.entry(sym.clone()).or_insert(size);
                    }
                }
            }
        }
        let mut out = InputShapes {
            shapes: vec![],
            defaulted: vec![],
        };
        let mut total = Some(0usize);
        for (k, &n) in g.inputs().iter().enumerate() {
            let name = &g.node(n).outputs[0].name;
            if let Some(t) = given.get(k).and_then(Option::as_ref) {
                out.shapes.push(t.shape().to_vec());
                continue;
            }
            if g.node(n).outputs[0].ty.shape.is_none() {
                bail!("input '{name}' has unknown rank; pass --input {name}=PATH");
            }
            let mut unbound = vec![];
            let shape: Vec<usize> = declared(g, n)
                .iter()
                .map(|d| match d {
                    Dim::Known(k) => *k,
                    Dim::Sym(s) => bound.get(s).copied().unwrap_or_else(|| {
                        unbound.push(s.clone());
                        1
                    }),
                })
                .collect();
            check_memory(g, n, &shape, dims, &mut total)?;
            out.shapes.push(shape);
            if !unbound.is_empty() {
                out.defaulted.push((name.clone(), unbound));
            }
        }
        memory::check(|| "the model's inputs together".into(), total)?;
        Ok(out)
    }

    /// What was set to 1, e.g. "symbolic dims set to 1: input 'x': N, H; bind them with
    /// --dim NAME=SIZE"; `None` when nothing was.
    pub fn note(&self) -> Option<String> {
        if self.defaulted.is_empty() {
            return None;
        }
        let each: Vec<String> = self
            .defaulted
            .iter()
            .map(|(input, dims)| format!("input '{input}': {}", dims.join(", ")))
            .collect();
        Some(format!(
            "symbolic dims set to 1: {}; bind them with --dim NAME=SIZE",
            each.join("; ")
        ))
    }

    /// The context of an error of a run on these shapes: the model, and what was set to 1.
    pub fn context(&self, model: &Path) -> String {
        match self.note() {
            Some(n) => format!("{} ({n})", model.display()),
            None => model.display().to_string(),
        }
    }
}

/// The declared dims of input node `n` (none when its rank is unknown).
fn declared(g: &Graph, n: lpc_ir::NodeId) -> &[Dim] {
    g.node(n).outputs[0].ty.shape.as_ref().map_or(&[], |s| &s.0)
}

/// Binds `--input` specs to graph inputs; every input must be given.
pub fn bind_inputs(g: &Graph, specs: &[String]) -> Result<Vec<Tensor>> {
    read_inputs(g, specs)?
        .into_iter()
        .zip(g.inputs())
        .map(|(t, &n)| {
            t.ok_or_else(|| {
                let name = &g.node(n).outputs[0].name;
                anyhow::anyhow!("missing input '{name}' (pass --input {name}=PATH)")
            })
        })
        .collect()
}

/// Reads the `--input` specs (`NAME=PATH`, or `PATH` for a single-input model): one entry per
/// graph input, `None` for those not given.
pub fn read_inputs(g: &Graph, specs: &[String]) -> Result<Vec<Option<Tensor>>> {
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
    Ok(bound)
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

/// Refuses an input shape (of input node `n`) whose tensor would not fit in the memory
/// available, naming the input and the `--dim` bindings it uses; adds its bytes to `total`
/// (`None` once a size overflows).
fn check_memory(
    g: &Graph,
    n: lpc_ir::NodeId,
    shape: &[usize],
    dims: &HashMap<String, usize>,
    total: &mut Option<usize>,
) -> Result<()> {
    let out = &g.node(n).outputs[0];
    let dtype = out.ty.dtype.unwrap_or(lpc_ir::DType::F32);
    let bytes = shape
        .iter()
        .try_fold(dtype.size(), |a, &d| a.checked_mul(d));
    *total = total.zip(bytes).and_then(|(t, b)| t.checked_add(b));
    memory::check(
        || {
            let by: Vec<String> = declared(g, n)
                .iter()
                .filter_map(|d| match d {
                    Dim::Sym(s) => dims.get(s).map(|v| format!("--dim {s}={v}")),
                    Dim::Known(_) => None,
                })
                .collect();
            let by = if by.is_empty() {
                String::new()
            } else {
                format!(" ({})", by.join(", "))
            };
            format!("input '{}' {dtype}{shape:?}{by}", out.name)
        },
        bytes,
    )
}
