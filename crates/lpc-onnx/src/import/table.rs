//! The converter table (ONNX `op_type` → converter function) and `Cx`, the state of the node
//! being converted that every converter reads and edits.

use super::attrs::Attrs;
use super::Importer;
use crate::ImportError;
use lpc_ir::{Graph, Op, Output, Tensor, ValueRef};
use std::collections::HashMap;

/// What a converter made of a node.
pub(super) enum Converted {
    /// The op of the node's main lpc node; the caller checks its arity against `Cx::ins`, adds
    /// it with `Cx::n_out` outputs and binds their names.
    Op(Op),
    /// The converter added its nodes and bound the outputs itself (`Constant`).
    Bound,
}

/// One node being converted: its inputs (editable: converters of old opsets turn attributes
/// into constant inputs), outputs and attributes.
pub(super) struct Cx<'c, 'a> {
    /// The importer (value names, fresh names, constants).
    pub me: &'c mut Importer<'a>,
    /// The node's attributes (and the error constructor naming the node).
    pub a: &'c Attrs<'c>,
    /// The ONNX op type.
    pub op_type: String,
    /// The lpc node name (unique).
    pub name: String,
    /// The default-domain opset in force.
    pub opset: i64,
    /// The resolved inputs (`None`: omitted optional input).
    pub ins: Vec<Option<ValueRef>>,
    /// The ONNX output names, as written.
    pub out_names: Vec<String>,
    /// How many outputs the lpc node has (up to the last named one).
    pub n_out: usize,
    /// The first output's name (base of fresh value names).
    pub first_out: String,
}

impl Cx<'_, '_> {
    /// Fails unless the first `n` inputs are present.
    pub fn need(&self, n: usize) -> Result<(), ImportError> {
        let ins = &self.ins;
        if ins.len() < n || ins[..n].iter().any(Option::is_none) {
            return Err(self.a.err(format!(
                "needs {n} inputs, got {}",
                ins.iter().filter(|x| x.is_some()).count()
            )));
        }
        Ok(())
    }

    /// Fails unless the `n` inputs from slot `start` on are present.
    pub fn need_from(&self, start: usize, n: usize) -> Result<(), ImportError> {
        match (start..start + n).find(|&s| self.ins.get(s).is_none_or(Option::is_none)) {
            Some(s) => Err(self.a.err(format!("input {s} is required"))),
            None => Ok(()),
        }
    }

    /// Attribute operands of old opsets become constant inputs at `slot`.
    pub fn put(&mut self, g: &mut Graph, slot: usize, t: Option<Tensor>) {
        if self.ins.len() <= slot {
            self.ins.resize(slot + 1, None);
        }
        if let Some(t) = t {
            self.ins[slot] = Some(self.me.konst(g, &self.first_out, t));
        }
    }

    /// Adds a helper node `<name>__<suffix>` computing `op` of `ins` with one fresh output,
    /// and returns that output.
    pub fn helper(
        &mut self,
        g: &mut Graph,
        suffix: &str,
        op: Op,
        ins: &[Option<ValueRef>],
    ) -> ValueRef {
        let v = self.me.fresh_value(&self.first_out);
        let id = g.add_node(
            format!("{}__{suffix}", self.name),
            op,
            ins,
            vec![Output::named(v)],
        );
        ValueRef::first(id)
    }

    /// Checks the inputs against `op`'s arity, adds the node with `n_out` outputs (unnamed
    /// ones get fresh names) and binds the output names.
    pub fn add_main(mut self, g: &mut Graph, op: Op) -> Result<(), ImportError> {
        let a = self.a;
        let (req, max) = op.arity();
        let ins = &mut self.ins;
        let present = ins.iter().rposition(Option::is_some).map_or(0, |p| p + 1);
        if present < req || ins[..req.min(ins.len())].iter().any(Option::is_none) {
            return Err(a.err(format!("needs {req} inputs, got {present}")));
        }
        if let Some(m) = max {
            if present > m {
                return Err(a.err(format!("takes at most {m} inputs, got {present}")));
            }
            ins.truncate(m.max(present));
        }
        // Ops with bodies keep every slot: absent leading operands (Loop's trip count and
        // condition) are counted positions.
        if op.bodies().is_empty() {
            ins.truncate(present.max(req));
        }
        let outputs: Vec<Output> = (0..self.n_out)
            .map(|i| {
                let nm = &self.out_names[i];
                Output::named(if nm.is_empty() {
                    self.me.fresh_value(&self.first_out)
                } else {
                    nm.clone()
                })
            })
            .collect();
        let names: Vec<String> = outputs.iter().map(|o| o.name.clone()).collect();
        let id = g.add_node(self.name, op, &self.ins, outputs);
        for (i, nm) in names.iter().enumerate() {
            self.me.bind(
                nm,
                ValueRef {
                    node: id,
                    output: i,
                },
                a,
            )?;
        }
        Ok(())
    }
}

/// A converter: reads `Cx` (and may edit its inputs and output count, or add helper nodes to
/// the graph) and returns the lpc op.
pub(super) type Convert = fn(&mut Cx, &mut Graph) -> Result<Converted, ImportError>;

/// ONNX op type → converter: the default domain's by `op_type`, `com.microsoft`'s by
/// `com.microsoft.<op_type>`. Opset differences are handled inside each
/// converter, which reads `Cx::opset`.
#[derive(Default)]
pub(super) struct Table(HashMap<&'static str, Convert>);

impl Table {
    /// The table of every supported op, family by family.
    pub fn all() -> Table {
        let mut t = Table::default();
        super::math::register(&mut t);
        super::logic::register(&mut t);
        super::nn::register(&mut t);
        super::array::register(&mut t);
        super::index::register(&mut t);
        super::quant::register(&mut t);
        super::recurrent::register(&mut t);
        super::misc::register(&mut t);
        super::control::register(&mut t);
        super::optional::register(&mut t);
        super::spectral::register(&mut t);
        super::contrib::register(&mut t);
        t
    }

    /// Registers `f` for `op_type`; each op type is registered once.
    pub fn add(&mut self, op_type: &'static str, f: Convert) {
        let old = self.0.insert(op_type, f);
        debug_assert!(old.is_none(), "{op_type} registered twice");
    }

    /// The converter of `op_type`.
    pub fn get(&self, op_type: &str) -> Option<Convert> {
        self.0.get(op_type).copied()
    }
}
