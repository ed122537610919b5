//! Compiles `passes/` into the built-in pipeline: every `*.rules` file (by path, sorted) and
//! `pipeline.toml` become `$OUT_DIR/builtin_passes.rs`, included by `src/pipeline.rs`.

use std::fmt::Write;
use std::path::{Path, PathBuf};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "rules") {
            out.push(p);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let passes = manifest
        .join("../../passes")
        .canonicalize()
        .expect("passes/ beside crates/");
    let mut files = vec![];
    walk(&passes, &mut files);
    let toml = passes.join("pipeline.toml");
    println!("cargo:rerun-if-changed={}", toml.display());
    let mut s = String::new();
    writeln!(s, "/// `passes/pipeline.toml`.").expect("write");
    writeln!(
        s,
        "pub const BUILTIN_PIPELINE: &str = include_str!({:?});",
        toml.display().to_string()
    )
    .expect("write");
    writeln!(
        s,
        "/// Every `passes/**/*.rules` file: (path relative to `passes/`, text), sorted by path."
    )
    .expect("write");
    writeln!(s, "pub const BUILTIN_RULES: &[(&str, &str)] = &[").expect("write");
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let rel = f.strip_prefix(&passes).expect("under passes/");
        let rel: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        writeln!(
            s,
            "    ({:?}, include_str!({:?})),",
            rel.join("/"),
            f.display().to_string()
        )
        .expect("write");
    }
    writeln!(s, "];").expect("write");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("builtin_passes.rs");
    std::fs::write(&out, s).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
}
