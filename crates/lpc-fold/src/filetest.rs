//! `.lir` case files beside rule files: a `# RUN:` line, cases split by `# -----`, each a graph
//! with `# check:` lines (substrings that must appear in order in the folded graph's text),
//! `# check-not:` lines (substrings that must not appear) and an optional `# numerics: TOL`
//! (both graphs run by lpc-ref on random inputs must agree within TOL).

use crate::check::compare_random;
use crate::driver::{fold, FoldOptions};
use crate::pipeline::Pipeline;
use std::path::{Path, PathBuf};

/// What a case file asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum Run {
    /// `lpc fold --rules FILE...`: one phase of these rule files (relative to the case file).
    Rules(Vec<PathBuf>),
    /// `lpc fold --stop-after PHASE`: the built-in pipeline up to a phase.
    StopAfter(String),
    /// `lpc fold`: the whole built-in pipeline.
    All,
}

/// The outcome of one case.
#[derive(Clone, Debug)]
pub struct CaseResult {
    /// 1-based case number.
    pub index: usize,
    /// Line of the case's first line.
    pub line: usize,
    /// Problems (empty when the case passes).
    pub failures: Vec<String>,
    /// The folded graph's text.
    pub output: String,
}

fn parse_run(line: &str, dir: &Path) -> Result<Run, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    if words.len() < 2 || words[0] != "lpc" || words[1] != "fold" {
        return Err(format!("RUN line must start with 'lpc fold': {line}"));
    }
    let mut rules = vec![];
    let mut stop = None;
    let mut i = 2;
    while i < words.len() {
        match words[i] {
            "--rules" if i + 1 < words.len() => {
                rules.push(dir.join(words[i + 1]));
                i += 2;
            }
            "--stop-after" if i + 1 < words.len() => {
                stop = Some(words[i + 1].to_string());
                i += 2;
            }
            w => return Err(format!("unknown RUN argument '{w}'")),
        }
    }
    Ok(match (rules.is_empty(), stop) {
        (false, None) => Run::Rules(rules),
        (true, Some(s)) => Run::StopAfter(s),
        (true, None) => Run::All,
        (false, Some(_)) => return Err("RUN: give --rules or --stop-after, not both".into()),
    })
}

/// Runs every case of a `.lir` case file.
pub fn run_case_file(path: &Path) -> Result<Vec<CaseResult>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let run_line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("# RUN:"))
        .ok_or_else(|| format!("{}: no '# RUN:' line", path.display()))?;
    let run = parse_run(run_line.trim(), dir).map_err(|e| format!("{}: {e}", path.display()))?;
    let pipeline = match &run {
        Run::Rules(files) => Pipeline::from_rule_paths("rules", files),
        Run::StopAfter(_) | Run::All => Pipeline::builtin(),
    }
    .map_err(|e| e.to_string())?;
    let opts = FoldOptions {
        stop_after: if let Run::StopAfter(s) = &run {
            Some(s.clone())
        } else {
            None
        },
        ..Default::default()
    };
    // Split into cases at '# -----' lines, remembering where each starts.
    let mut cases: Vec<(usize, String)> = vec![(1, String::new())];
    for (i, l) in text.lines().enumerate() {
        if l.trim_start().starts_with("# -----") {
            cases.push((i + 2, String::new()));
        } else if let Some(c) = cases.last_mut() {
            c.1.push_str(l);
            c.1.push('\n');
        }
    }
    let mut out = vec![];
    let mut index = 0;
    for (line, body) in cases {
        if !body.lines().any(|l| l.trim_start().starts_with("graph")) {
            continue;
        }
        index += 1;
        let mut failures = vec![];
        let mut output = String::new();
        match lpc_ir::text::parse(&body) {
            Err(e) => failures.push(format!("line {}: {e}", line + e.line - 1)),
            Ok(g) => match fold(&g, &pipeline, &opts) {
                Err(e) => failures.push(format!("fold: {e}")),
                Ok(r) => {
                    output = lpc_ir::text::print(&r.graph);
                    let mut pos = 0;
                    for l in body.lines().map(str::trim) {
                        if let Some(c) = l.strip_prefix("# check:") {
                            let c = c.trim();
                            match output[pos..].find(c) {
                                Some(k) => pos += k + c.len(),
                                None => failures.push(format!("check not found (in order): {c}")),
                            }
                        } else if let Some(c) = l.strip_prefix("# check-not:") {
                            if output.contains(c.trim()) {
                                failures.push(format!("check-not found: {}", c.trim()));
                            }
                        } else if let Some(t) = l.strip_prefix("# numerics:") {
                            match t.trim().parse::<f64>() {
                                Err(_) => {
                                    failures.push(format!("bad numerics tolerance '{}'", t.trim()))
                                }
                                Ok(tol) => {
                                    match compare_random(&g, &r.graph, 4, 7 + index as u64) {
                                        Err(e) => failures.push(format!("numerics: {e}")),
                                        Ok((worst, _)) if worst > tol => failures.push(format!(
                                            "numerics: outputs differ by {worst} > {tol}"
                                        )),
                                        Ok(_) => {}
                                    }
                                }
                            }
                        }
                    }
                }
            },
        }
        out.push(CaseResult {
            index,
            line,
            failures,
            output,
        });
    }
    if out.is_empty() {
        return Err(format!("{}: no cases", path.display()));
    }
    Ok(out)
}
