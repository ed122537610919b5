//! `lpc rules check`: every rule of a rule file checked by lpc-ref on its matches in the
//! example graphs of a case file.

use crate::check::check_rules;
use crate::pipeline::{parse_sources, read_rule_path};
use crate::FoldError;
use std::fmt::Write;
use std::path::Path;

/// The result of `lpc rules check`.
pub struct CheckReport {
    /// No rule failed.
    pub ok: bool,
    /// The report to print.
    pub text: String,
}

/// `lpc rules check FILE`: checks every rule of FILE (a rule file or directory) on the matches
/// in the example graphs of `cases` (default: the `.lir` case file beside FILE).
pub fn rules_check(file: &Path, cases: Option<&Path>) -> Result<CheckReport, FoldError> {
    let rules = parse_sources(&read_rule_path(file)?)?;
    let case_path = cases
        .map(Path::to_path_buf)
        .unwrap_or_else(|| file.with_extension("lir"));
    let text = std::fs::read_to_string(&case_path).map_err(|source| FoldError::Io {
        path: case_path.clone(),
        source,
    })?;
    let mut graphs = vec![];
    for part in text.split("# -----") {
        if part.lines().any(|l| l.trim_start().starts_with("graph")) {
            graphs.push(lpc_ir::text::parse(part).map_err(|source| FoldError::Case {
                path: case_path.clone(),
                source,
            })?);
        }
    }
    let reports = check_rules(&rules, &graphs, 16)?;
    let mut ok = true;
    let mut s = String::new();
    for r in &reports {
        let verdict = if !r.failures.is_empty() {
            ok = false;
            "FAIL"
        } else if r.checked == 0 {
            "not exercised"
        } else {
            "ok"
        };
        let _ = writeln!(
            s,
            "{verdict:>13}  {} — {} matches checked, {} refused, worst {:.3} steps",
            r.rule, r.checked, r.refused, r.worst_steps
        );
        for f in &r.failures {
            let _ = writeln!(s, "               {f}");
        }
    }
    Ok(CheckReport { ok, text: s })
}
