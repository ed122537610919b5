//! Phases as data: the pipeline file (`passes/pipeline.toml`), its phases with their rules
//! and limits, and the built-in pipeline compiled from `passes/`.

use crate::rules::{parse_rules, RuleDef};
use crate::FoldError;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// E-graph limits of one phase.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Maximum iterations.
    pub iterations: usize,
    /// Maximum e-nodes.
    pub nodes: usize,
    /// Maximum time.
    pub time: Duration,
    /// Maximum memory of the e-graph, in bytes (its nodes at
    /// [`crate::driver::BYTES_PER_NODE`] each, and the constant values its analysis holds).
    pub bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            iterations: 30,
            nodes: 200_000,
            time: Duration::from_secs(10),
            bytes: 2 << 30,
        }
    }
}

/// One phase: a name, its rules and its limits.
#[derive(Clone, Debug)]
pub struct Phase {
    /// Phase name (the `--stop-after` value).
    pub name: String,
    /// Its rules, in file order.
    pub rules: Vec<Arc<RuleDef>>,
    /// Its limits.
    pub limits: Limits,
}

/// An ordered list of phases.
#[derive(Clone, Debug, Default)]
pub struct Pipeline {
    /// The phases, in order.
    pub phases: Vec<Phase>,
}

// The built-in pipeline and rule files, compiled into the binary by `build.rs` from every
// file under `passes/`: adding `passes/<phase>/<topic>.rules` is all it takes.
include!(concat!(env!("OUT_DIR"), "/builtin_passes.rs"));

fn rule_sources(spec: &str, base: Option<&Path>) -> Result<Vec<(String, String)>, FoldError> {
    match base {
        None => {
            let prefix = format!("{}/", spec.trim_end_matches('/'));
            let found: Vec<(String, String)> = BUILTIN_RULES
                .iter()
                .filter(|(p, _)| *p == spec || p.starts_with(&prefix))
                .map(|(p, s)| (format!("passes/{p}"), s.to_string()))
                .collect();
            if found.is_empty() {
                return Err(FoldError::NoBuiltinRules {
                    spec: spec.to_string(),
                });
            }
            Ok(found)
        }
        Some(b) => read_rule_path(&b.join(spec)),
    }
}

/// Reads a rule file, or every `*.rules` file of a directory (sorted by name).
pub fn read_rule_path(p: &Path) -> Result<Vec<(String, String)>, FoldError> {
    let io = |source| FoldError::Io {
        path: p.to_path_buf(),
        source,
    };
    if p.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(p)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|f| f.extension().is_some_and(|x| x == "rules"))
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|f| {
                Ok((
                    f.display().to_string(),
                    std::fs::read_to_string(&f).map_err(|source| FoldError::Io {
                        path: f.clone(),
                        source,
                    })?,
                ))
            })
            .collect()
    } else {
        Ok(vec![(
            p.display().to_string(),
            std::fs::read_to_string(p).map_err(io)?,
        )])
    }
}

/// Parses rule sources into rules, checking names are unique.
pub fn parse_sources(srcs: &[(String, String)]) -> Result<Vec<Arc<RuleDef>>, FoldError> {
    let mut all = vec![];
    for (f, s) in srcs {
        all.extend(parse_rules(f, s)?);
    }
    crate::rules::check_unique(&all)?;
    Ok(all.into_iter().map(Arc::new).collect())
}

impl Pipeline {
    /// The built-in pipeline (`passes/pipeline.toml` and its rule files, compiled in).
    pub fn builtin() -> Result<Pipeline, FoldError> {
        Pipeline::from_toml("passes/pipeline.toml", BUILTIN_PIPELINE, None)
    }

    /// The pipeline a command runs: the rule files/dirs given (one phase), a pipeline file, or
    /// the built-in one.
    pub fn from_args(
        rules: &[PathBuf],
        pipeline_file: Option<&Path>,
    ) -> Result<Pipeline, FoldError> {
        match (rules.is_empty(), pipeline_file) {
            (false, None) => Pipeline::from_rule_paths("rules", rules),
            (true, Some(p)) => Pipeline::from_file(p),
            (true, None) => Pipeline::builtin(),
            (false, Some(_)) => Err(FoldError::RulesAndPipeline),
        }
    }

    /// Reads a pipeline file; its rule paths are relative to its directory.
    pub fn from_file(path: &Path) -> Result<Pipeline, FoldError> {
        let text = std::fs::read_to_string(path).map_err(|source| FoldError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Pipeline::from_toml(&path.display().to_string(), &text, Some(base))
    }

    /// One phase made of the given rule files or directories.
    pub fn from_rule_paths(name: &str, paths: &[PathBuf]) -> Result<Pipeline, FoldError> {
        let mut srcs = vec![];
        for p in paths {
            srcs.extend(read_rule_path(p)?);
        }
        Ok(Pipeline {
            phases: vec![Phase {
                name: name.into(),
                rules: parse_sources(&srcs)?,
                limits: Limits::default(),
            }],
        })
    }

    fn from_toml(file: &str, text: &str, base: Option<&Path>) -> Result<Pipeline, FoldError> {
        let bad = |msg: String| FoldError::Pipeline {
            file: file.to_string(),
            msg,
        };
        let v: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| bad(e.to_string()))?;
        let phases = v
            .get("phase")
            .and_then(|p| p.as_array())
            .ok_or_else(|| bad("expected [[phase]] tables".into()))?;
        let mut out = vec![];
        let mut seen = vec![];
        for (i, p) in phases.iter().enumerate() {
            let t = p
                .as_table()
                .ok_or_else(|| bad(format!("phase {i} is not a table")))?;
            for k in t.keys() {
                if !matches!(
                    k.as_str(),
                    "name" | "rules" | "iterations" | "nodes" | "time_ms" | "memory_mb"
                ) {
                    return Err(bad(format!("phase {i}: unknown key '{k}'")));
                }
            }
            let name = t
                .get("name")
                .and_then(|x| x.as_str())
                .ok_or_else(|| bad(format!("phase {i} has no name")))?;
            let files = t
                .get("rules")
                .and_then(|x| x.as_array())
                .ok_or_else(|| bad(format!("phase '{name}' has no rules list")))?;
            let mut srcs = vec![];
            for f in files {
                let f = f
                    .as_str()
                    .ok_or_else(|| bad(format!("phase '{name}': rules entries are strings")))?;
                srcs.extend(rule_sources(f, base)?);
            }
            let num = |k: &str, d: u64| -> Result<u64, FoldError> {
                match t.get(k) {
                    None => Ok(d),
                    Some(x) => x
                        .as_integer()
                        .filter(|&n| n > 0)
                        .map(|n| n as u64)
                        .ok_or_else(|| {
                            bad(format!("phase '{name}': {k} must be a positive integer"))
                        }),
                }
            };
            let d = Limits::default();
            let limits = Limits {
                iterations: num("iterations", d.iterations as u64)? as usize,
                nodes: num("nodes", d.nodes as u64)? as usize,
                time: Duration::from_millis(num("time_ms", d.time.as_millis() as u64)?),
                bytes: num("memory_mb", (d.bytes >> 20) as u64)?
                    .checked_mul(1 << 20)
                    .and_then(|b| usize::try_from(b).ok())
                    .ok_or_else(|| bad(format!("phase '{name}': memory_mb is too large")))?,
            };
            let rules = parse_sources(&srcs)?;
            seen.extend(rules.iter().map(|r| (**r).clone()));
            crate::rules::check_unique(&seen)?;
            if out.iter().any(|q: &Phase| q.name == name) {
                return Err(bad(format!("duplicate phase name '{name}'")));
            }
            out.push(Phase {
                name: name.to_string(),
                rules,
                limits,
            });
        }
        Ok(Pipeline { phases: out })
    }

    /// The phase names, in order (the `--stop-after` values).
    pub fn phase_names(&self) -> Vec<&str> {
        self.phases.iter().map(|p| p.name.as_str()).collect()
    }

    /// Every rule of every phase.
    pub fn all_rules(&self) -> Vec<Arc<RuleDef>> {
        self.phases
            .iter()
            .flat_map(|p| p.rules.iter().cloned())
            .collect()
    }
}
