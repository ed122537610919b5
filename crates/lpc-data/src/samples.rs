//! Calibration and evaluation data: stacked `.npy`, `.npz`, folders of `.npy`/`.pb` files or of
//! PNG/JPEG images (with preprocessing), each sample checked against the model's inputs; seeded
//! subsets.

use crate::error::DataError;
use crate::files::{ext, list_dir};
use crate::images::{image_tensor, is_image, is_other_image, ImageOptions};
use crate::npy::read_npy;
use crate::npz::read_npz;
use crate::rng::choose;
use crate::rows::slice_rows;
use crate::spec::{check_finite, InputSpec};
use crate::wav::read_wav;
use lpc_ir::{Graph, Tensor};
use std::path::{Path, PathBuf};

/// Something that yields numbered samples: one tensor per model input, batch dimension 1.
pub trait SampleSource: Sync {
    /// Number of samples.
    fn len(&self) -> usize;
    /// True with no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Sample `i` (0-based, `< len()`).
    fn get(&self, i: usize) -> Result<Vec<Tensor>, DataError>;
    /// True when `get` decodes (images, files) rather than copies: worth caching when the
    /// samples are read several times.
    fn decodes(&self) -> bool {
        false
    }
}

/// Options for opening data.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadOptions {
    /// Number of samples to use; `None` uses all, and so does asking for more than exist (as
    /// NNCF's `subset_size`: [`Samples::available`] tells how many there were).
    pub subset: Option<usize>,
    /// Seed of the subset sampling and of random crops.
    pub seed: u64,
    /// Image preprocessing.
    pub image: ImageOptions,
}

impl Default for LoadOptions {
    fn default() -> LoadOptions {
        LoadOptions {
            subset: Some(300),
            seed: 0,
            image: ImageOptions::default(),
        }
    }
}

enum Kind {
    /// One stacked tensor per model input (rows = samples × rows per sample).
    Stacked(Vec<Tensor>),
    /// One file per sample (single-input models).
    Files(Vec<PathBuf>),
    /// Images (single-input models), with `crops_per_image` samples each.
    Images(Vec<PathBuf>),
}

/// Data for a model, already checked against its inputs where possible.
pub struct Samples {
    specs: Vec<InputSpec>,
    kind: Kind,
    /// Selected sample numbers into the underlying data.
    chosen: Vec<usize>,
    image: ImageOptions,
    seed: u64,
    /// Where the data came from, for reports.
    pub origin: String,
    /// Samples available before the subset was taken.
    pub available: usize,
}

/// What a folder holds: tensor files or images (one sample each, single-input models).
fn folder_kind(path: &Path, specs: &[InputSpec], what: &str) -> Result<Kind, DataError> {
    let files = list_dir(path)?;
    let tensors: Vec<PathBuf> = files
        .iter()
        .filter(|p| matches!(ext(p).as_str(), "npy" | "pb" | "wav"))
        .cloned()
        .collect();
    let images: Vec<PathBuf> = files.iter().filter(|p| is_image(p)).cloned().collect();
    if let Some(p) = files.iter().find(|p| is_other_image(p)) {
        return Err(DataError::Set(format!(
            "{}: image format not supported (PNG and JPEG are); convert it or move it out",
            p.display()
        )));
    }
    if specs.len() != 1 {
        return Err(DataError::Set(format!(
            "{what}: a folder gives one tensor per sample, but the model has {} inputs; use .npz",
            specs.len()
        )));
    }
    match (tensors.is_empty(), images.is_empty()) {
        (false, true) => Ok(Kind::Files(tensors)),
        (true, false) => Ok(Kind::Images(images)),
        (true, true) => Err(DataError::Set(format!(
            "{what}: no .npy, .pb, .wav, .png or .jpg files in the folder"
        ))),
        (false, false) => Err(DataError::Set(format!(
            "{what}: the folder mixes tensor files and images; keep one kind"
        ))),
    }
}

/// What a single file holds, by extension.
fn file_kind(path: &Path, specs: &[InputSpec], what: &str) -> Result<Kind, DataError> {
    Ok(match ext(path).as_str() {
        "npy" => {
            if specs.len() != 1 {
                return Err(DataError::Set(format!(
                    "{what}: one .npy feeds one input; the model has {} (use .npz)",
                    specs.len()
                )));
            }
            Kind::Stacked(vec![read_npy(path)?])
        }
        "npz" => {
            let arrays = read_npz(path)?;
            let mut v = vec![];
            for s in specs {
                let t = match arrays.iter().find(|(k, _)| *k == s.name) {
                    Some((_, t)) => t.clone(),
                    None if arrays.len() == 1 && specs.len() == 1 => arrays[0].1.clone(),
                    None => {
                        let keys: Vec<&str> = arrays.iter().map(|(k, _)| k.as_str()).collect();
                        return Err(DataError::Set(format!(
                            "{what}: no array named '{}' (model input); the archive has {keys:?}",
                            s.name
                        )));
                    }
                };
                v.push(t);
            }
            Kind::Stacked(v)
        }
        "png" | "jpg" | "jpeg" => Kind::Images(vec![path.to_path_buf()]),
        "pb" | "wav" => Kind::Files(vec![path.to_path_buf()]),
        e => {
            return Err(DataError::Set(format!(
                "{what}: unknown data format '.{e}' (use .npy, .npz, .pb, .wav, .png, .jpg or a folder)"
            )))
        }
    })
}

/// Normalises stacked arrays to `[samples·rows, ...]` and counts the samples they hold; checks
/// sample 0 against its input and every value for NaN/Inf.
fn stacked(
    ts: Vec<Tensor>,
    specs: &[InputSpec],
    what: &str,
) -> Result<(Vec<Tensor>, usize), DataError> {
    let mut n = None;
    let mut out = vec![];
    for (t, s) in ts.into_iter().zip(specs) {
        let rank = s.dims.as_ref().map_or(t.rank(), |d| d.len());
        let rows = s.rows();
        let t = if t.rank() + 1 == rank {
            let mut sh = vec![1];
            sh.extend_from_slice(t.shape());
            t.reshape(&sh).map_err(DataError::Shape)?
        } else {
            t
        };
        if t.rank() != rank || t.rank() == 0 {
            return Err(DataError::Set(format!(
                "{what}: array for input '{}' has shape {:?}; expected rank {rank} (samples stacked on axis 0)",
                s.name,
                t.shape()
            )));
        }
        if rows == 0 {
            return Err(DataError::Set(format!(
                "{what}: input '{}' has a batch dimension of 0: no sample fits it",
                s.name
            )));
        }
        if t.shape()[0] % rows != 0 {
            return Err(DataError::Set(format!(
                "{what}: {} rows for input '{}' is not a multiple of its batch {rows}",
                t.shape()[0],
                s.name
            )));
        }
        let k = t.shape()[0] / rows;
        if n.is_some_and(|n| n != k) {
            return Err(DataError::Set(format!(
                "{what}: arrays hold different numbers of samples"
            )));
        }
        n = Some(k);
        s.check(
            &slice_rows(&t, 0, rows.min(t.shape()[0])),
            &format!("{what}: sample 0"),
        )
        .or_else(|e| if k == 0 { Ok(()) } else { Err(e) })?;
        if let Err(DataError::NonFinite { index, .. }) = check_finite(&t, what) {
            let row: usize = t.shape()[1..].iter().product::<usize>() * rows;
            return Err(DataError::Set(format!(
                "{what}: sample {} of input '{}' holds NaN or Inf",
                index / row.max(1),
                s.name
            )));
        }
        out.push(t);
    }
    Ok((out, n.unwrap_or(0)))
}

impl Samples {
    /// Opens `path` for model `g`: a stacked `.npy` (N samples along axis 0), a `.npz` (one
    /// array per input, by input name; or a single array), or a folder of `.npy`/`.pb` files or
    /// of `.png`/`.jpg` images (one sample each).
    pub fn open(path: &Path, g: &Graph, opts: &LoadOptions) -> Result<Samples, DataError> {
        let specs = InputSpec::of(g);
        if specs.is_empty() {
            return Err(DataError::Set("the model has no inputs".into()));
        }
        let what = path.display().to_string();
        let kind = if path.is_dir() {
            folder_kind(path, &specs, &what)?
        } else {
            file_kind(path, &specs, &what)?
        };
        Samples::from_kind(specs, kind, what, opts)
    }

    /// Opens one stacked array per model input, by input name (`--calib NAME=PATH`, repeated):
    /// each file a `.npy` (N samples along axis 0) or a `.npz` holding one array. Every input
    /// must be given exactly once.
    pub fn open_per_input(
        files: &[(String, PathBuf)],
        g: &Graph,
        opts: &LoadOptions,
    ) -> Result<Samples, DataError> {
        let specs = InputSpec::of(g);
        let given: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        check_names(&given, &specs, "as NAME=PATH")?;
        let mut v = vec![];
        for s in &specs {
            let Some((_, p)) = files.iter().find(|(n, _)| *n == s.name) else {
                unreachable!("check_names: every input is given")
            };
            let what = p.display().to_string();
            v.push(match ext(p).as_str() {
                "npy" => read_npy(p)?,
                "npz" => {
                    let mut a = read_npz(p)?;
                    if a.len() != 1 {
                        return Err(DataError::Set(format!(
                            "{what}: holds {} arrays; NAME=PATH takes one (or give the .npz alone)",
                            a.len()
                        )));
                    }
                    a.remove(0).1
                }
                // One clip: one sample.
                "wav" => {
                    let t = read_wav(p)?;
                    let rank = s.dims.as_ref().map_or(t.rank(), |d| d.len());
                    if t.rank() + 1 == rank {
                        let mut sh = vec![1];
                        sh.extend_from_slice(t.shape());
                        t.reshape(&sh).map_err(DataError::Shape)?
                    } else {
                        t
                    }
                }
                e => {
                    return Err(DataError::Set(format!(
                        "{what}: NAME=PATH takes a stacked .npy, a one-array .npz or a .wav clip, not '.{e}'"
                    )))
                }
            });
        }
        let what = files
            .iter()
            .map(|(n, p)| format!("{n}={}", p.display()))
            .collect::<Vec<_>>()
            .join(", ");
        Samples::from_kind(specs, Kind::Stacked(v), what, opts)
    }

    /// In-memory data: one stacked array per model input (N samples along axis 0, or one
    /// sample without it), by input name, checked as [`Samples::open_per_input`] checks its
    /// files (every input given once); `what` names the data in messages. The Python package's
    /// calibration and evaluation arrays come through here, so they are sampled exactly as the
    /// same arrays read from `.npy` files.
    pub fn from_arrays(
        arrays: Vec<(String, Tensor)>,
        g: &Graph,
        opts: &LoadOptions,
        what: &str,
    ) -> Result<Samples, DataError> {
        let specs = InputSpec::of(g);
        if specs.is_empty() {
            return Err(DataError::Set("the model has no inputs".into()));
        }
        let given: Vec<&str> = arrays.iter().map(|(n, _)| n.as_str()).collect();
        check_names(&given, &specs, "by name").map_err(|e| match e {
            DataError::Set(m) => DataError::Set(format!("{what}: {m}")),
            e => e,
        })?;
        let mut arrays = arrays;
        let v = specs
            .iter()
            .map(|s| {
                let k = arrays.iter().position(|(n, _)| *n == s.name);
                arrays
                    .swap_remove(k.expect("check_names: every input is given"))
                    .1
            })
            .collect();
        Samples::from_kind(specs, Kind::Stacked(v), what.to_string(), opts)
    }

    /// Counts the samples of `kind`, takes the subset and checks sample 0.
    fn from_kind(
        specs: Vec<InputSpec>,
        kind: Kind,
        what: String,
        opts: &LoadOptions,
    ) -> Result<Samples, DataError> {
        // Count samples and normalise stacked arrays to [samples·rows, ...].
        let (kind, available) = match kind {
            Kind::Stacked(ts) => {
                let (out, n) = stacked(ts, &specs, &what)?;
                (Kind::Stacked(out), n)
            }
            Kind::Files(f) => {
                let n = f.len();
                (Kind::Files(f), n)
            }
            Kind::Images(f) => {
                let n = f.len() * opts.image.crops_per_image.max(1);
                (Kind::Images(f), n)
            }
        };
        if available == 0 {
            return Err(DataError::Set(format!("{what}: no samples")));
        }
        let chosen = match opts.subset {
            Some(0) => return Err(DataError::Options("--subset must be at least 1".into())),
            Some(k) => choose(available, k, opts.seed),
            None => (0..available).collect(),
        };
        let s = Samples {
            specs,
            kind,
            chosen,
            image: opts.image.clone(),
            seed: opts.seed,
            origin: what,
            available,
        };
        // Load the first sample now so that shape errors show before any long work.
        s.get(0)?;
        Ok(s)
    }

    fn load_file(&self, p: &Path, what: &str) -> Result<Tensor, DataError> {
        let t = match ext(p).as_str() {
            "npy" => read_npy(p)?,
            "wav" => read_wav(p)?,
            _ => lpc_onnx::read_tensor_pb(p).map_err(|e| DataError::File {
                what: what.to_string(),
                msg: e.to_string(),
            })?,
        };
        let rank = self.specs[0].dims.as_ref().map_or(t.rank(), |d| d.len());
        if t.rank() + 1 == rank {
            let mut sh = vec![1];
            sh.extend_from_slice(t.shape());
            return t.reshape(&sh).map_err(DataError::Shape);
        }
        Ok(t)
    }
}

impl SampleSource for Samples {
    fn len(&self) -> usize {
        self.chosen.len()
    }

    fn decodes(&self) -> bool {
        !matches!(self.kind, Kind::Stacked(_))
    }

    fn get(&self, i: usize) -> Result<Vec<Tensor>, DataError> {
        let k = *self.chosen.get(i).ok_or(DataError::OutOfRange(i))?;
        let out = match &self.kind {
            Kind::Stacked(ts) => ts
                .iter()
                .zip(&self.specs)
                .map(|(t, s)| slice_rows(t, k * s.rows(), s.rows()))
                .collect(),
            Kind::Files(f) => {
                let what = f[k].display().to_string();
                vec![self.load_file(&f[k], &what)?]
            }
            Kind::Images(f) => {
                let per = self.image.crops_per_image.max(1);
                let p = &f[k / per];
                let crop = (self.image.crops_per_image > 0).then(|| {
                    (
                        self.seed ^ (k as u64).wrapping_mul(0x2545_f491_4f6c_dd1d),
                        k,
                    )
                });
                vec![image_tensor(
                    p,
                    &self.specs[0],
                    &self.image,
                    crop.map(|c| c.0),
                )?]
            }
        };
        for (t, s) in out.iter().zip(&self.specs) {
            let what = match &self.kind {
                Kind::Stacked(_) => format!("{}: sample {k}", self.origin),
                Kind::Files(f) => f[k].display().to_string(),
                Kind::Images(f) => f[k / self.image.crops_per_image.max(1)]
                    .display()
                    .to_string(),
            };
            s.check(t, &what)?;
        }
        Ok(out)
    }
}

/// Checks the input names data is given for: each an input of the model, none twice, every
/// input given (`how`: "as NAME=PATH", "by name").
fn check_names(given: &[&str], specs: &[InputSpec], how: &str) -> Result<(), DataError> {
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    for (i, n) in given.iter().enumerate() {
        if !names.contains(n) {
            return Err(DataError::Set(format!(
                "'{n}' is not an input of the model (its inputs: {names:?})"
            )));
        }
        if given[..i].contains(n) {
            return Err(DataError::Set(format!("input '{n}' is given twice")));
        }
    }
    match names.iter().find(|n| !given.contains(n)) {
        Some(n) => Err(DataError::Set(format!(
            "no data for input '{n}' (give every input {how})"
        ))),
        None => Ok(()),
    }
}

/// An in-memory sample set (tests, tools): each sample one tensor per input.
pub struct InMemory(pub Vec<Vec<Tensor>>);

impl SampleSource for InMemory {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn get(&self, i: usize) -> Result<Vec<Tensor>, DataError> {
        self.0.get(i).cloned().ok_or(DataError::OutOfRange(i))
    }
}
