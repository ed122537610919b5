//! What the verbs write, and the rules every output follows: it never overwrites one of the
//! verb's inputs (checked by [`Files`] before any work), its format is the one its extension
//! names ([`Format`]), and it is written atomically (`lpc_ir::host`), so a failure leaves the old
//! file as it was.

use anyhow::{bail, Context, Result};
use lpc_ir::Graph;
use std::path::{Path, PathBuf};

/// A verb's input files and the output files checked so far. Paths compare after resolving
/// symbolic links; a model brings every file loading it reads (`lpc_load::model_files`: its
/// `.lir.weights`, OpenVINO `.bin` or ONNX external data); a folder input (images, `.npy`
/// files, rules) covers everything inside it; a `.lir` output brings the `.lir.weights` it
/// writes or removes.
#[derive(Default)]
pub struct Files {
    inputs: Vec<File>,
    outputs: Vec<File>,
}

/// A file as named in messages, and its resolved path.
struct File {
    what: String,
    real: PathBuf,
    dir: bool,
}

impl Files {
    /// Records the model `flag` names and every file loading it reads.
    pub fn model(&mut self, flag: &str, path: &Path) -> &mut Self {
        for (k, f) in lpc_load::model_files(path).iter().enumerate() {
            let what = match k {
                0 => format!("{flag} {}", f.display()),
                _ => format!("{} (read with {flag} {})", f.display(), path.display()),
            };
            self.input(what, f);
        }
        self
    }

    /// Records a file or folder that `flag` names.
    pub fn input_file(&mut self, flag: &str, path: &Path) -> &mut Self {
        self.input(format!("{flag} {}", path.display()), path)
    }

    fn input(&mut self, what: String, path: &Path) -> &mut Self {
        self.inputs.push(File {
            what,
            real: resolve(path),
            dir: path.is_dir(),
        });
        self
    }

    /// Refuses the output `path` of `flag` (and, for `.lir`, its `.lir.weights`) when it is an
    /// input, lies inside an input folder, or is an output already checked.
    pub fn output(&mut self, flag: &str, path: &Path) -> Result<()> {
        let mut written = vec![(path.to_path_buf(), String::new())];
        if Format::of_path(path) == Some(Format::Lir) {
            let w = lpc_ir::text::weights_path(path);
            let note = format!(" (its weights file {})", w.display());
            written.push((w, note));
        }
        for (w, note) in written {
            let real = resolve(&w);
            let shown = path.display();
            if let Some(i) = self
                .inputs
                .iter()
                .find(|i| real == i.real || (i.dir && real.starts_with(&i.real)))
            {
                let how = if i.dir { "write into" } else { "overwrite" };
                bail!(
                    "{flag} {shown}{note} would {how} the input {}; choose another output path",
                    i.what
                );
            }
            if let Some(o) = self.outputs.iter().find(|o| o.real == real) {
                bail!("{flag} {shown}{note} is the same file as {}", o.what);
            }
            self.outputs.push(File {
                what: format!("{flag} {}", w.display()),
                real,
                dir: false,
            });
        }
        Ok(())
    }
}

/// `path` with symbolic links resolved: the file when it exists, else its resolved folder
/// joined with its name (an output not written yet), else `path` made absolute.
fn resolve(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match (std::fs::canonicalize(dir), path.file_name()) {
        (Ok(d), Some(name)) => d.join(name),
        _ => std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
    }
}

/// A model file format lpc writes, named by the output's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `.lir`: the graph as text, large constants in `.lir.weights`.
    Lir,
    /// `.onnx`: ONNX, FakeQuantize written as QuantizeLinear/DequantizeLinear.
    Onnx,
}

impl Format {
    fn of_path(path: &Path) -> Option<Format> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("lir") => Some(Format::Lir),
            Some("onnx") => Some(Format::Onnx),
            _ => None,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Format::Lir => ".lir (lpc graph text)",
            Format::Onnx => ".onnx (QDQ ONNX)",
        }
    }

    /// The format `path`'s extension names, when the verb writes it (`accepted`); otherwise an
    /// error naming `flag` and listing the accepted extensions.
    pub fn of(flag: &str, path: &Path, accepted: &[Format]) -> Result<Format> {
        match Format::of_path(path) {
            Some(f) if accepted.contains(&f) => Ok(f),
            _ => {
                let list: Vec<&str> = accepted.iter().map(|f| f.describe()).collect();
                bail!(
                    "{flag} {}: output must end in {}",
                    path.display(),
                    list.join(" or ")
                )
            }
        }
    }
}

/// Writes `g` to `path` in format `f`.
pub fn write_model(g: &Graph, path: &Path, f: Format) -> Result<()> {
    match f {
        Format::Onnx => lpc_onnx::export::write_qdq(g, path)
            .with_context(|| format!("{}: ONNX export failed", path.display())),
        Format::Lir => Ok(lpc_ir::text::write_lir(path, g)?),
    }
}

/// Writes a text output (JSON reports).
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    Ok(lpc_ir::host::write_atomic(path, text.as_bytes())?)
}
