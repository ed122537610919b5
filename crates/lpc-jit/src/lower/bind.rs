//! Binding a graph's input shapes: a copy with concrete input shapes, types re-inferred and the
//! now-constant shape subgraphs folded, ready for lowering.

use crate::JitError;
use lpc_ir::{Dim, Graph, Shape, ValueRef};
use std::collections::HashMap;

/// A copy of `g` with every graph input bound to the given concrete shape (one per input, in
/// order), types re-inferred and the now-constant shape subgraphs folded.
pub(crate) fn bind_shapes(g: &Graph, shapes: &[Vec<usize>]) -> Result<Graph, JitError> {
    if shapes.len() != g.inputs().len() {
        return Err(JitError::Input {
            name: "(inputs)".into(),
            why: format!(
                "model has {} inputs, {} shapes given",
                g.inputs().len(),
                shapes.len()
            ),
        });
    }
    let mut b = g.clone();
    let mut syms: HashMap<String, usize> = HashMap::new();
    for (&n, dims) in g.inputs().iter().zip(shapes) {
        let out = &g.node(n).outputs[0];
        let bad = |why: String| JitError::Input {
            name: out.name.clone(),
            why,
        };
        if let Some(s) = &out.ty.shape {
            if s.rank() != dims.len() {
                return Err(bad(format!("expected shape {s}, got {dims:?}")));
            }
            for (d, &k) in s.0.iter().zip(dims) {
                match d {
                    Dim::Known(x) if *x != k => {
                        return Err(bad(format!("expected shape {s}, got {dims:?}")))
                    }
                    Dim::Known(_) => {}
                    Dim::Sym(name) => {
                        let prev = *syms.entry(name.clone()).or_insert(k);
                        if prev != k {
                            return Err(bad(format!(
                                "dimension {name} is {prev} elsewhere, got {k}"
                            )));
                        }
                    }
                }
            }
        }
        b.output_mut(ValueRef::first(n)).ty.shape = Some(Shape::known(dims));
    }
    let graph_err = |e: String| JitError::Lower {
        node: "(graph)".into(),
        why: e,
    };
    lpc_ir::infer_types(&mut b).map_err(|e| graph_err(e.to_string()))?;
    for _ in 0..4 {
        let s = lpc_ref::fold_constants(&mut b).map_err(|e| graph_err(e.to_string()))?;
        lpc_ir::infer_types(&mut b).map_err(|e| graph_err(e.to_string()))?;
        if s.folded == 0 {
            break;
        }
    }
    lpc_ir::verify(&b).map_err(|e| graph_err(e.to_string()))?;
    Ok(b)
}
