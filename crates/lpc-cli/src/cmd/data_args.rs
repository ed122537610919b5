//! How the quantization verbs read data: `DataArgs` (subset, seed, image preprocessing) and
//! integer labels.

use anyhow::{bail, Context, Result};
use lpc_data::{ImageOptions, Layout, LoadOptions, Samples};
use lpc_ir::Graph;
use std::path::{Path, PathBuf};

/// How to read and preprocess data (calibration or evaluation).
#[derive(clap::Args, Clone, Debug)]
pub struct DataArgs {
    /// Number of samples to use, drawn with a seeded shuffle (0 = all; all when there are fewer).
    #[arg(long, default_value_t = 300)]
    pub subset: usize,
    /// Seed of the subset sampling and of random image crops.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Images: target size HxW (default: the model input's).
    #[arg(long, value_name = "HxW")]
    pub size: Option<String>,
    /// Images: stretch to HxW instead of resize-and-centre-crop.
    #[arg(long)]
    pub stretch: bool,
    /// Images: BGR channel order instead of RGB.
    #[arg(long)]
    pub bgr: bool,
    /// Images: pixel multiplier applied before mean/std.
    #[arg(long, default_value_t = 1.0 / 255.0)]
    pub scale: f32,
    /// Images: per-channel mean, comma-separated (1 or C values).
    #[arg(long, value_delimiter = ',', default_value = "0")]
    pub mean: Vec<f32>,
    /// Images: per-channel std, comma-separated (1 or C values).
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub std: Vec<f32>,
    /// Images: input layout, nchw or nhwc.
    #[arg(long, default_value = "nchw")]
    pub layout: String,
    /// Images: number of seeded random crops per image (0 = the whole image once).
    #[arg(long, default_value_t = 0)]
    pub crops: usize,
}

impl DataArgs {
    /// The load options these arguments describe.
    pub fn options(&self, subset: bool) -> Result<LoadOptions> {
        let size = match &self.size {
            None => None,
            Some(s) => {
                let (h, w) = s
                    .split_once(['x', 'X'])
                    .with_context(|| format!("--size '{s}': expected HxW"))?;
                Some((
                    h.trim().parse().with_context(|| format!("--size '{s}'"))?,
                    w.trim().parse().with_context(|| format!("--size '{s}'"))?,
                ))
            }
        };
        let layout = match self.layout.as_str() {
            "nchw" | "NCHW" => Layout::Nchw,
            "nhwc" | "NHWC" => Layout::Nhwc,
            o => bail!("--layout '{o}': expected nchw or nhwc"),
        };
        Ok(LoadOptions {
            subset: (subset && self.subset > 0).then_some(self.subset),
            seed: self.seed,
            image: ImageOptions {
                size,
                crop: !self.stretch,
                bgr: self.bgr,
                scale: self.scale,
                mean: self.mean.clone(),
                std: self.std.clone(),
                layout,
                crops_per_image: self.crops,
            },
        })
    }
}

/// How a data flag's values name their files: one file or folder (`PATH`), or one stacked
/// array per model input (`NAME=PATH`, the flag repeated). A value is `NAME=PATH` when the text
/// before its first `=` is an input of `g`.
pub fn data_files(values: &[PathBuf], g: &Graph) -> Vec<(Option<String>, PathBuf)> {
    let specs = lpc_data::InputSpec::of(g);
    let inputs: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    values
        .iter()
        .map(|v| match v.to_str().and_then(|s| s.split_once('=')) {
            Some((n, p)) if inputs.contains(&n) => (Some(n.to_string()), PathBuf::from(p)),
            _ => (None, v.clone()),
        })
        .collect()
}

/// Opens `values` (one `PATH`, or `NAME=PATH` per model input: [`data_files`]) as data
/// (`what`: "calibration data"...) for `g`.
pub fn open_data(values: &[PathBuf], g: &Graph, opts: &LoadOptions, what: &str) -> Result<Samples> {
    let files = data_files(values, g);
    let s = match files.as_slice() {
        [(None, p)] => Samples::open(p, g, opts),
        _ => match files
            .iter()
            .map(|(n, p)| n.clone().map(|n| (n, p.clone())).ok_or(p))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(named) => Samples::open_per_input(&named, g, opts),
            Err(p) => bail!(
                "{what}: '{}' is not NAME=PATH for an input of the model; several values each name an input",
                p.display()
            ),
        },
    };
    s.context(what.to_string())
}

/// [`open_data`], and when the subset asked for (`flag`: `--subset`, `--eval-subset`) is larger
/// than the data, all samples are used and a note on stderr says so.
pub fn open_samples(
    values: &[PathBuf],
    g: &Graph,
    opts: &LoadOptions,
    what: &str,
    flag: &str,
) -> Result<Samples> {
    let s = open_data(values, g, opts, what)?;
    if let Some(k) = opts.subset.filter(|&k| k > s.available) {
        eprintln!(
            "note: {what}: {} has {} samples, fewer than {flag} {k}: all are used",
            s.origin, s.available
        );
    }
    Ok(s)
}

/// Integer class labels of evaluation data, and the name errors about them give (the
/// `--labels` file).
pub struct Labels {
    /// Where they came from.
    pub name: PathBuf,
    /// One class id per evaluation sample.
    pub classes: Vec<i64>,
}

/// Reads `--labels`: a `.npy` vector of integer classes, one per sample, none negative.
pub fn read_labels(p: &Path) -> Result<Vec<i64>> {
    labels_of(lpc_data::read_npy(p)?, p)
}

/// The class ids in `t` (labels `p` names): a vector of integers, none negative.
pub fn labels_of(t: lpc_ir::Tensor, p: &Path) -> Result<Vec<i64>> {
    if !t.dtype().is_int() {
        bail!(
            "{}: labels must be integers, got {}",
            p.display(),
            t.dtype()
        );
    }
    if t.rank() != 1 {
        bail!(
            "{}: labels must be a vector of class ids (one per sample), got shape {:?}",
            p.display(),
            t.shape()
        );
    }
    let l = t.to_i64_vec();
    if let Some(i) = l.iter().position(|&c| c < 0) {
        bail!(
            "{}: label {} (sample {i}) is negative; labels are class ids from 0",
            p.display(),
            l[i]
        );
    }
    Ok(l)
}

/// Names the `--labels` file in an error about a label.
pub fn name_labels(e: lpc_quant::QuantError, labels: Option<&Path>) -> anyhow::Error {
    match (&e, labels) {
        (lpc_quant::QuantError::LabelRange { .. }, Some(p)) => {
            anyhow::anyhow!("{}: {e}", p.display())
        }
        _ => e.into(),
    }
}

/// Checks that `--labels` gives one label per sample.
pub fn check_label_count(p: &Path, labels: &[i64], samples: usize) -> Result<()> {
    if labels.len() != samples {
        bail!(
            "{}: {} labels for {} samples",
            p.display(),
            labels.len(),
            samples
        );
    }
    Ok(())
}
