//! `lpc run`: run a model on inputs and write or summarise its outputs.

use crate::inputs::{bind_inputs, input_files};
use crate::jit::{jit_compile, Backend, Isa};
use crate::outputs::Files;
use crate::runtime::{prepare, FoldArg};
use crate::threads::set_threads;
use anyhow::{Context, Result};
use lpc_ir::{Tensor, TensorData};
use std::path::PathBuf;

/// Arguments of `lpc run`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// Model file (.onnx or .lir).
    pub model: PathBuf,
    /// Input as NAME=PATH (.npy, TensorProto .pb, or .wav as [channels, frames] f32); just PATH
    /// for a single-input model.
    #[arg(long = "input", short = 'i')]
    pub inputs: Vec<String>,
    /// Write each output to DIR/<name>.npy.
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
    /// Execution backend.
    #[arg(long, value_enum, default_value_t = Backend::Ref)]
    pub backend: Backend,
    /// Worker threads (default: all cores).
    #[arg(long, value_parser = crate::threads::threads_arg())]
    pub threads: Option<usize>,
    /// `--no-fold`.
    #[command(flatten)]
    pub fold: FoldArg,
}

/// Runs `lpc run`.
pub fn run(a: &RunArgs) -> Result<()> {
    set_threads(a.threads)?;
    let model = &a.model;
    let g = lpc_load::load_model(model)?;
    let out_files: Vec<PathBuf> = match &a.output_dir {
        None => vec![],
        Some(dir) => g
            .outputs()
            .iter()
            .map(|v| dir.join(format!("{}.npy", file_stem(g.value_name(*v)))))
            .collect(),
    };
    let mut files = Files::default();
    files.model("MODEL", model);
    for p in input_files(&g, &a.inputs) {
        files.input_file("--input", p);
    }
    for p in &out_files {
        files.output("--output-dir", p)?;
    }
    let ins = bind_inputs(&g, &a.inputs)?;
    let g = prepare(g, a.fold, model)?.graph;
    let outs = match a.backend {
        Backend::Ref => lpc_ref::run(&g, &ins).with_context(|| model.display().to_string())?,
        Backend::Jit => jit_compile(&g, &ins, a.threads, Isa::Auto)
            .and_then(|m| Ok(m.run(&ins)?))
            .with_context(|| model.display().to_string())?,
    };
    if let Some(dir) = &a.output_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
        for (p, t) in out_files.iter().zip(&outs) {
            lpc_data::write_npy(p, t)?;
        }
    } else {
        for (v, t) in g.outputs().iter().zip(&outs) {
            println!("{}", summary(g.value_name(*v), t));
        }
    }
    Ok(())
}

/// A file name for a value name: every character outside `[A-Za-z0-9._-]` becomes `_`.
fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn summary(name: &str, t: &Tensor) -> String {
    let mut s = format!("{name}: {}{:?}", t.dtype(), t.shape());
    if !t.is_empty() && !matches!(t.data(), TensorData::Bool(_)) {
        let v = t.to_f64_vec();
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        s += &format!("  min {min:.6} max {max:.6} mean {mean:.6}");
        let head: Vec<String> = v.iter().take(6).map(|x| format!("{x:.5}")).collect();
        s += &format!(
            "  [{}{}]",
            head.join(", "),
            if v.len() > 6 { ", ..." } else { "" }
        );
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn file_stems() {
        assert_eq!(super::file_stem("gpu_0/softmax:0"), "gpu_0_softmax_0");
        assert_eq!(super::file_stem("a.b-c_9"), "a.b-c_9");
    }
}
