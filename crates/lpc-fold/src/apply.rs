//! Rules as egg rewrites: a rule's conditions and `let` helpers checked and bound for one
//! match, and its right side added to the e-graph.

use crate::analysis::{FGraph, FoldAnalysis};
use crate::lang::{AttrKey, FNode, Head};
use crate::registry::{HOut, HVal, HelperCtx};
use crate::rules::{HArg, RuleDef};
use crate::to_egraph::add_const;
use crate::FoldError;
use egg::{Applier, Id, Pattern, PatternAst, Rewrite, Subst, Symbol, Var};
use std::sync::Arc;

/// Why a rule did not apply to one match.
#[derive(Clone, Debug, PartialEq)]
pub enum Refusal {
    /// A condition is false (its text).
    Condition(String),
    /// A helper gave no value.
    Helper(String),
}

/// Checks a rule's conditions and computes its `let` bindings for one match; the new
/// constants are added to the e-graph. `Err` says which condition or helper refused.
pub fn bind(eg: &mut FGraph, def: &RuleDef, root: Id, subst: &Subst) -> Result<Subst, Refusal> {
    for c in &def.conds {
        let ids: Vec<Id> = c.vars.iter().map(|v| subst[*v]).collect();
        if !(c.spec.eval)(eg, &ids, c.cmp.as_ref()) {
            let vars: Vec<String> = c.vars.iter().map(|v| v.to_string()).collect();
            let cmp = c
                .cmp
                .as_ref()
                .map(|(_, w)| format!(" .. {}", w.join("|")))
                .unwrap_or_default();
            return Err(Refusal::Condition(format!(
                "{} {}{cmp} (at {})",
                c.spec.name,
                vars.join(" "),
                c.loc
            )));
        }
    }
    let mut s = subst.clone();
    for l in &def.lets {
        let args: Vec<HVal> = l
            .args
            .iter()
            .map(|a| match a {
                HArg::Var(v) => HVal::Class(s[*v]),
                HArg::Num(x) => HVal::Num(*x),
            })
            .collect();
        let out = {
            let ctx = HelperCtx {
                eg,
                root,
                lhs: &def.lhs,
                subst: &s,
            };
            (l.spec.eval)(&ctx, &args)
        };
        let id = match out {
            Some(HOut::Tensor(t)) => add_const(eg, t),
            Some(HOut::Attr(op)) => eg.add(FNode {
                head: Head::Attr(AttrKey::new(op)),
                children: vec![],
            }),
            Some(HOut::Absent) => eg.add(FNode {
                head: Head::Absent,
                children: vec![],
            }),
            None => {
                return Err(Refusal::Helper(format!(
                    "{} gave no value (at {})",
                    l.spec.name, l.loc
                )))
            }
        };
        s.insert(l.var, id);
    }
    Ok(s)
}

/// A parsed rule as an egg applier.
pub struct RuleApplier {
    /// The rule.
    pub def: Arc<RuleDef>,
}

impl Applier<FNode, FoldAnalysis> for RuleApplier {
    fn apply_one(
        &self,
        eg: &mut FGraph,
        eclass: Id,
        subst: &Subst,
        _ast: Option<&PatternAst<FNode>>,
        rule_name: Symbol,
    ) -> Vec<Id> {
        let Ok(s) = bind(eg, &self.def, eclass, subst) else {
            return vec![];
        };
        eg.analysis.current_rule = Some(rule_name);
        let id = eg.add_instantiation(&self.def.rhs, &s);
        let changed = eg.union(eclass, id);
        eg.analysis.current_rule = None;
        if changed {
            eg.analysis.fired.push((rule_name, eclass));
            vec![eclass]
        } else {
            vec![]
        }
    }

    fn vars(&self) -> Vec<Var> {
        vec![]
    }
}

/// Turns parsed rules into egg rewrites.
pub fn rewrites(defs: &[Arc<RuleDef>]) -> Result<Vec<Rewrite<FNode, FoldAnalysis>>, FoldError> {
    defs.iter()
        .map(|d| {
            Rewrite::new(
                d.name.clone(),
                Pattern::new(d.lhs.clone()),
                RuleApplier { def: d.clone() },
            )
            .map_err(|e| FoldError::BadPattern {
                loc: d.loc.to_string(),
                rule: d.name.clone(),
                msg: e.to_string(),
            })
        })
        .collect()
}
