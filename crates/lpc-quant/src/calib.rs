//! Calibration and evaluation data: stacked `.npy`, `.npz`, folders of `.npy`/`.pb` files or of
//! PNG/JPEG images (with preprocessing), each sample checked against the model's inputs; seeded
//! subsets; batching of samples; and a two-core runner over batches.

use crate::progress::Progress;
use crate::QuantError;
use lpc_ir::{DType, Dim, Graph, Tensor, TensorData};
use rayon::prelude::*;
use std::io::Read;
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
    fn get(&self, i: usize) -> Result<Vec<Tensor>, QuantError>;
    /// True when `get` decodes (images, files) rather than copies: worth caching when the
    /// samples are read several times.
    fn decodes(&self) -> bool {
        false
    }
}

/// What the model expects of one input.
#[derive(Clone, Debug)]
pub struct InputSpec {
    /// Input name.
    pub name: String,
    /// Expected dtype, if declared.
    pub dtype: Option<DType>,
    /// Declared dims (None = unknown rank).
    pub dims: Option<Vec<Dim>>,
}

impl InputSpec {
    /// The specs of every input of `g`.
    pub fn of(g: &Graph) -> Vec<InputSpec> {
        g.inputs()
            .iter()
            .map(|&n| {
                let o = &g.node(n).outputs[0];
                InputSpec {
                    name: o.name.clone(),
                    dtype: o.ty.dtype,
                    dims: o.ty.shape.as_ref().map(|s| s.0.clone()),
                }
            })
            .collect()
    }

    /// Rows per sample along axis 0: the known leading dim, or 1 when it is symbolic.
    fn rows(&self) -> usize {
        match self.dims.as_ref().and_then(|d| d.first()) {
            Some(Dim::Known(k)) => *k,
            _ => 1,
        }
    }

    /// True when the leading dimension is symbolic, so samples can be batched.
    pub fn batchable(&self) -> bool {
        matches!(
            self.dims.as_ref().and_then(|d| d.first()),
            Some(Dim::Sym(_))
        )
    }

    /// Checks one sample tensor (rows along axis 0 already included) against the spec.
    fn check(&self, t: &Tensor, what: &str) -> Result<(), QuantError> {
        if let Some(d) = self.dtype {
            if d != t.dtype() {
                return Err(QuantError::Data(format!(
                    "{what}: dtype {} but model input '{}' takes {d}",
                    t.dtype(),
                    self.name
                )));
            }
        }
        if let Some(dims) = &self.dims {
            let ok = dims.len() == t.rank()
                && dims
                    .iter()
                    .zip(t.shape())
                    .enumerate()
                    .all(|(i, (d, &n))| match d {
                        Dim::Known(k) => *k == n,
                        Dim::Sym(_) => i == 0 || n > 0,
                    });
            if !ok {
                let want: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
                return Err(QuantError::Data(format!(
                    "{what}: shape {:?} does not fit model input '{}' [{}]",
                    t.shape(),
                    self.name,
                    want.join(",")
                )));
            }
        }
        check_finite(t, what)
    }
}

fn check_finite(t: &Tensor, what: &str) -> Result<(), QuantError> {
    let bad = match t.data() {
        TensorData::F32(v) => v
            .iter()
            .position(|x| !x.is_finite())
            .map(|i| (i, v[i] as f64)),
        TensorData::F64(v) => v.iter().position(|x| !x.is_finite()).map(|i| (i, v[i])),
        TensorData::F16(v) => v
            .iter()
            .position(|x| !x.is_finite())
            .map(|i| (i, v[i].to_f64())),
        TensorData::I8(_)
        | TensorData::U8(_)
        | TensorData::I32(_)
        | TensorData::I64(_)
        | TensorData::Bool(_) => None,
    };
    match bad {
        Some((i, x)) => Err(QuantError::Data(format!(
            "{what}: element {i} is {x} (NaN/Inf in calibration data)"
        ))),
        None => Ok(()),
    }
}

/// Rows `[start, start+count)` of a tensor along axis 0.
pub fn slice_rows(t: &Tensor, start: usize, count: usize) -> Tensor {
    let row: usize = t.shape()[1..].iter().product();
    let (a, b) = (start * row, (start + count) * row);
    let data = match t.data() {
        TensorData::F32(v) => TensorData::F32(v[a..b].to_vec()),
        TensorData::F16(v) => TensorData::F16(v[a..b].to_vec()),
        TensorData::F64(v) => TensorData::F64(v[a..b].to_vec()),
        TensorData::I8(v) => TensorData::I8(v[a..b].to_vec()),
        TensorData::U8(v) => TensorData::U8(v[a..b].to_vec()),
        TensorData::I32(v) => TensorData::I32(v[a..b].to_vec()),
        TensorData::I64(v) => TensorData::I64(v[a..b].to_vec()),
        TensorData::Bool(v) => TensorData::Bool(v[a..b].to_vec()),
    };
    let mut shape = t.shape().to_vec();
    shape[0] = count;
    Tensor::new(&shape, data).expect("slice of a valid tensor")
}

/// Tensors of equal trailing shape and dtype stacked along axis 0.
pub fn concat_rows(ts: &[Tensor]) -> Result<Tensor, QuantError> {
    let first = ts
        .first()
        .ok_or_else(|| QuantError::Data("no tensors to stack".into()))?;
    let mut shape = first.shape().to_vec();
    if shape.is_empty() {
        return Err(QuantError::Data("cannot stack rank-0 tensors".into()));
    }
    let mut bytes = Vec::new();
    let mut rows = 0;
    for t in ts {
        if t.dtype() != first.dtype() || t.shape()[1..] != first.shape()[1..] {
            return Err(QuantError::Data(format!(
                "samples of different shapes: {:?} and {:?}",
                first.shape(),
                t.shape()
            )));
        }
        rows += t.shape()[0];
        bytes.extend_from_slice(&t.to_le_bytes());
    }
    shape[0] = rows;
    Tensor::from_le_bytes(first.dtype(), &shape, &bytes)
        .map_err(|e| QuantError::Data(e.to_string()))
}

/// Reads a `.npy` array (little-endian, C order).
pub fn read_npy_bytes(bytes: &[u8], what: &str) -> Result<Tensor, QuantError> {
    let err = |m: String| QuantError::Data(format!("{what}: {m}"));
    let npy =
        npyz::NpyFile::new(bytes).map_err(|e| err(format!("not a valid .npy array ({e})")))?;
    if npy.order() != npyz::Order::C {
        return Err(err(
            "Fortran-order arrays are not supported; save with C order".into(),
        ));
    }
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let n: u128 = shape.iter().map(|&d| d as u128).product();
    if n > (1u128 << 31) {
        return Err(err(format!("array of shape {shape:?} is too large")));
    }
    let descr = npy.dtype().descr();
    let rd = |e: std::io::Error| {
        err(format!(
            "truncated or unreadable data for shape {shape:?} ({e})"
        ))
    };
    let data = match descr.trim_matches('\'') {
        "<f4" => TensorData::F32(npy.into_vec::<f32>().map_err(rd)?),
        "<f2" => TensorData::F16(npy.into_vec::<half::f16>().map_err(rd)?),
        "<f8" => TensorData::F64(npy.into_vec::<f64>().map_err(rd)?),
        "|i1" => TensorData::I8(npy.into_vec::<i8>().map_err(rd)?),
        "|u1" => TensorData::U8(npy.into_vec::<u8>().map_err(rd)?),
        "<i4" => TensorData::I32(npy.into_vec::<i32>().map_err(rd)?),
        "<i8" => TensorData::I64(npy.into_vec::<i64>().map_err(rd)?),
        "|b1" => TensorData::Bool(npy.into_vec::<bool>().map_err(rd)?),
        other => {
            return Err(err(format!(
                "unsupported dtype {other} (use little-endian f32/f16/f64/i8/u8/i32/i64/bool)"
            )))
        }
    };
    Tensor::new(&shape, data).map_err(|e| err(e.to_string()))
}

fn read_file(path: &Path) -> Result<Vec<u8>, QuantError> {
    std::fs::read(path).map_err(|e| QuantError::Data(format!("{}: {e}", path.display())))
}

/// Reads a `.npy` file.
pub fn read_npy(path: &Path) -> Result<Tensor, QuantError> {
    read_npy_bytes(&read_file(path)?, &path.display().to_string())
}

/// Reads every array of a `.npz` file, by name (without the `.npy` suffix), in archive order.
pub fn read_npz(path: &Path) -> Result<Vec<(String, Tensor)>, QuantError> {
    let what = path.display().to_string();
    let f = std::fs::File::open(path).map_err(|e| QuantError::Data(format!("{what}: {e}")))?;
    let mut z = zip::ZipArchive::new(f)
        .map_err(|e| QuantError::Data(format!("{what}: not a valid .npz archive ({e})")))?;
    let mut out = vec![];
    for i in 0..z.len() {
        let mut e = z
            .by_index(i)
            .map_err(|e| QuantError::Data(format!("{what}: entry {i}: {e}")))?;
        let name = e.name().to_string();
        let Some(key) = name.strip_suffix(".npy") else {
            continue;
        };
        if e.size() > (1 << 34) {
            return Err(QuantError::Data(format!(
                "{what}: entry '{name}' is too large"
            )));
        }
        let mut buf = Vec::with_capacity(e.size() as usize);
        e.read_to_end(&mut buf)
            .map_err(|e| QuantError::Data(format!("{what}: entry '{name}': {e}")))?;
        out.push((
            key.to_string(),
            read_npy_bytes(&buf, &format!("{what}:{name}"))?,
        ));
    }
    if out.is_empty() {
        return Err(QuantError::Data(format!(
            "{what}: the archive holds no .npy arrays"
        )));
    }
    Ok(out)
}

/// Tensor layout of image inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `[N, C, H, W]`
    Nchw,
    /// `[N, H, W, C]`
    Nhwc,
}

/// How images are turned into input tensors:
/// `x = ((pixel · scale) - mean[c]) / std[c]` after resizing to H×W.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageOptions {
    /// Target height × width; `None` takes it from the model input.
    pub size: Option<(usize, usize)>,
    /// Resize to cover H×W keeping the aspect ratio, then centre-crop (true); or stretch.
    pub crop: bool,
    /// Channel order BGR instead of RGB.
    pub bgr: bool,
    /// Pixel multiplier (default 1/255).
    pub scale: f32,
    /// Per-channel mean subtracted after scaling (1 or C values).
    pub mean: Vec<f32>,
    /// Per-channel std divided by (1 or C values).
    pub std: Vec<f32>,
    /// Input layout.
    pub layout: Layout,
    /// Random crops per image (seeded); 0 means the whole image once.
    pub crops_per_image: usize,
}

impl Default for ImageOptions {
    fn default() -> ImageOptions {
        ImageOptions {
            size: None,
            crop: true,
            bgr: false,
            scale: 1.0 / 255.0,
            mean: vec![0.0],
            std: vec![1.0],
            layout: Layout::Nchw,
            crops_per_image: 0,
        }
    }
}

/// Options for opening data.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadOptions {
    /// Number of samples to use; `None` uses all. Asking for more than exist is an error.
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

/// splitmix64: a small, good, seedable generator.
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n.max(1)
    }
}

/// `k` of `n` indices, sampled without replacement with a seeded shuffle, ascending.
pub fn choose(n: usize, k: usize, seed: u64) -> Vec<usize> {
    if k >= n {
        return (0..n).collect();
    }
    let mut v: Vec<usize> = (0..n).collect();
    let mut r = Rng::new(seed);
    for i in 0..k {
        let j = i + r.below(n - i);
        v.swap(i, j);
    }
    let mut out = v[..k].to_vec();
    out.sort_unstable();
    out
}

fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, QuantError> {
    let rd =
        std::fs::read_dir(dir).map_err(|e| QuantError::Data(format!("{}: {e}", dir.display())))?;
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    Ok(v)
}

fn ext(p: &Path) -> String {
    p.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

impl Samples {
    /// Opens `path` for model `g`: a stacked `.npy` (N samples along axis 0), a `.npz` (one
    /// array per input, by input name; or a single array), or a folder of `.npy`/`.pb` files or
    /// of `.png`/`.jpg` images (one sample each).
    pub fn open(path: &Path, g: &Graph, opts: &LoadOptions) -> Result<Samples, QuantError> {
        let specs = InputSpec::of(g);
        if specs.is_empty() {
            return Err(QuantError::Data("the model has no inputs".into()));
        }
        let what = path.display().to_string();
        let kind = if path.is_dir() {
            let files = list_dir(path)?;
            let tensors: Vec<PathBuf> = files
                .iter()
                .filter(|p| ext(p) == "npy" || ext(p) == "pb")
                .cloned()
                .collect();
            let images: Vec<PathBuf> = files.iter().filter(|p| is_image(p)).cloned().collect();
            if let Some(p) = files.iter().find(|p| is_other_image(p)) {
                return Err(QuantError::Data(format!(
                    "{}: image format not supported (PNG and JPEG are); convert it or move it out",
                    p.display()
                )));
            }
            if specs.len() != 1 {
                return Err(QuantError::Data(format!(
                    "{what}: a folder gives one tensor per sample, but the model has {} inputs; use .npz",
                    specs.len()
                )));
            }
            match (tensors.is_empty(), images.is_empty()) {
                (false, true) => Kind::Files(tensors),
                (true, false) => Kind::Images(images),
                (true, true) => {
                    return Err(QuantError::Data(format!(
                        "{what}: no .npy, .pb, .png or .jpg files in the folder"
                    )))
                }
                (false, false) => {
                    return Err(QuantError::Data(format!(
                        "{what}: the folder mixes tensor files and images; keep one kind"
                    )))
                }
            }
        } else {
            match ext(path).as_str() {
                "npy" => {
                    if specs.len() != 1 {
                        return Err(QuantError::Data(format!(
                            "{what}: one .npy feeds one input; the model has {} (use .npz)",
                            specs.len()
                        )));
                    }
                    Kind::Stacked(vec![read_npy(path)?])
                }
                "npz" => {
                    let arrays = read_npz(path)?;
                    let mut v = vec![];
                    for s in &specs {
                        let t = match arrays.iter().find(|(k, _)| *k == s.name) {
                            Some((_, t)) => t.clone(),
                            None if arrays.len() == 1 && specs.len() == 1 => arrays[0].1.clone(),
                            None => {
                                let keys: Vec<&str> =
                                    arrays.iter().map(|(k, _)| k.as_str()).collect();
                                return Err(QuantError::Data(format!(
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
                "pb" => Kind::Files(vec![path.to_path_buf()]),
                e => {
                    return Err(QuantError::Data(format!(
                    "{what}: unknown data format '.{e}' (use .npy, .npz, .pb, .png, .jpg or a folder)"
                )))
                }
            }
        };
        // Count samples and normalise stacked arrays to [samples·rows, ...].
        let (kind, available) = match kind {
            Kind::Stacked(ts) => {
                let mut n = None;
                let mut out = vec![];
                for (t, s) in ts.into_iter().zip(&specs) {
                    let rank = s.dims.as_ref().map_or(t.rank(), |d| d.len());
                    let rows = s.rows();
                    let t = if t.rank() + 1 == rank {
                        let mut sh = vec![1];
                        sh.extend_from_slice(t.shape());
                        t.reshape(&sh)
                            .map_err(|e| QuantError::Data(e.to_string()))?
                    } else {
                        t
                    };
                    if t.rank() != rank || t.rank() == 0 {
                        return Err(QuantError::Data(format!(
                            "{what}: array for input '{}' has shape {:?}; expected rank {rank} (samples stacked on axis 0)",
                            s.name,
                            t.shape()
                        )));
                    }
                    if t.shape()[0] % rows != 0 {
                        return Err(QuantError::Data(format!(
                            "{what}: {} rows for input '{}' is not a multiple of its batch {rows}",
                            t.shape()[0],
                            s.name
                        )));
                    }
                    let k = t.shape()[0] / rows;
                    if n.is_some_and(|n| n != k) {
                        return Err(QuantError::Data(format!(
                            "{what}: arrays hold different numbers of samples"
                        )));
                    }
                    n = Some(k);
                    s.check(
                        &slice_rows(&t, 0, rows.min(t.shape()[0])),
                        &format!("{what}: sample 0"),
                    )
                    .or_else(|e| if k == 0 { Ok(()) } else { Err(e) })?;
                    if let Err(QuantError::Data(m)) = check_finite(&t, &what) {
                        let row: usize = t.shape()[1..].iter().product::<usize>() * rows;
                        let idx: usize = m
                            .split("element ")
                            .nth(1)
                            .and_then(|s| s.split(' ').next())
                            .and_then(|s| s.parse().ok())
                            .unwrap_or(0);
                        return Err(QuantError::Data(format!(
                            "{what}: sample {} of input '{}' holds NaN or Inf",
                            idx / row.max(1),
                            s.name
                        )));
                    }
                    out.push(t);
                }
                let n = n.unwrap_or(0);
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
            return Err(QuantError::Data(format!("{what}: no samples")));
        }
        let chosen = match opts.subset {
            Some(k) if k > available => {
                return Err(QuantError::Data(format!(
                    "{what}: {k} samples asked for (--subset), only {available} available"
                )))
            }
            Some(0) => return Err(QuantError::Data("--subset must be at least 1".into())),
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

    fn load_file(&self, p: &Path, what: &str) -> Result<Tensor, QuantError> {
        let t = match ext(p).as_str() {
            "npy" => read_npy(p)?,
            _ => {
                lpc_onnx::read_tensor_pb(p).map_err(|e| QuantError::Data(format!("{what}: {e}")))?
            }
        };
        let rank = self.specs[0].dims.as_ref().map_or(t.rank(), |d| d.len());
        if t.rank() + 1 == rank {
            let mut sh = vec![1];
            sh.extend_from_slice(t.shape());
            return t.reshape(&sh).map_err(|e| QuantError::Data(e.to_string()));
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

    fn get(&self, i: usize) -> Result<Vec<Tensor>, QuantError> {
        let k = *self
            .chosen
            .get(i)
            .ok_or_else(|| QuantError::Data(format!("sample {i} out of range")))?;
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
                vec![crate::calib::image_tensor(
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

/// An in-memory sample set (tests, tools): each sample one tensor per input.
pub struct InMemory(pub Vec<Vec<Tensor>>);

impl SampleSource for InMemory {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn get(&self, i: usize) -> Result<Vec<Tensor>, QuantError> {
        self.0
            .get(i)
            .cloned()
            .ok_or_else(|| QuantError::Data(format!("sample {i} out of range")))
    }
}

/// Image files the loader decodes, by extension.
fn is_image(p: &Path) -> bool {
    matches!(ext(p).as_str(), "png" | "jpg" | "jpeg")
}

/// Image formats it does not decode: in a calibration folder they are an error, not skipped.
fn is_other_image(p: &Path) -> bool {
    matches!(
        ext(p).as_str(),
        "bmp" | "gif" | "tif" | "tiff" | "webp" | "ppm" | "pgm" | "heic" | "avif"
    )
}

/// Decodes a PNG or JPEG to (height, width, channels 1 or 3, 8-bit pixels).
fn decode_image(p: &Path) -> Result<(usize, usize, usize, Vec<u8>), QuantError> {
    match ext(p).as_str() {
        "jpg" | "jpeg" => decode_jpeg(p),
        _ => decode_png(p),
    }
}

/// Decodes an 8-bit baseline or progressive JPEG (gray or colour; CMYK and 12/16-bit refused).
fn decode_jpeg(p: &Path) -> Result<(usize, usize, usize, Vec<u8>), QuantError> {
    let what = p.display().to_string();
    let f = std::fs::File::open(p).map_err(|e| QuantError::Data(format!("{what}: {e}")))?;
    let mut dec = jpeg_decoder::Decoder::new(std::io::BufReader::new(f));
    let px = dec
        .decode()
        .map_err(|e| QuantError::Data(format!("{what}: not a readable JPEG ({e})")))?;
    let info = dec
        .info()
        .ok_or_else(|| QuantError::Data(format!("{what}: JPEG without a frame header")))?;
    let (h, w) = (info.height as usize, info.width as usize);
    match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => Ok((h, w, 1, px)),
        jpeg_decoder::PixelFormat::RGB24 => Ok((h, w, 3, px)),
        jpeg_decoder::PixelFormat::L16 => Err(QuantError::Data(format!(
            "{what}: JPEG with more than 8 bits per sample is not supported; convert it to 8-bit"
        ))),
        jpeg_decoder::PixelFormat::CMYK32 => Err(QuantError::Data(format!(
            "{what}: CMYK JPEG is not supported; convert it to RGB"
        ))),
    }
}

/// Decodes a PNG to (height, width, channels 1 or 3, 8-bit pixels).
fn decode_png(p: &Path) -> Result<(usize, usize, usize, Vec<u8>), QuantError> {
    let what = p.display().to_string();
    let f = std::fs::File::open(p).map_err(|e| QuantError::Data(format!("{what}: {e}")))?;
    let mut dec = png::Decoder::new(std::io::BufReader::new(f));
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut r = dec
        .read_info()
        .map_err(|e| QuantError::Data(format!("{what}: not a readable PNG ({e})")))?;
    let mut buf = vec![0u8; r.output_buffer_size()];
    let info = r
        .next_frame(&mut buf)
        .map_err(|e| QuantError::Data(format!("{what}: PNG decode failed ({e})")))?;
    let (w, h) = (info.width as usize, info.height as usize);
    let ch = info.color_type.samples();
    buf.truncate(info.buffer_size());
    let mut out = Vec::with_capacity(w * h * 3);
    let c = if matches!(
        info.color_type,
        png::ColorType::Grayscale | png::ColorType::GrayscaleAlpha
    ) {
        1
    } else {
        3
    };
    for px in buf.chunks_exact(ch) {
        out.extend_from_slice(&px[..c]);
    }
    Ok((h, w, c, out))
}

/// Loads an image as one input sample, preprocessed per `o`; with `crop_seed`, a random crop
/// (30–100% of the shorter side, the target's aspect ratio) is taken first.
pub fn image_tensor(
    p: &Path,
    spec: &InputSpec,
    o: &ImageOptions,
    crop_seed: Option<u64>,
) -> Result<Tensor, QuantError> {
    let what = p.display().to_string();
    let dims = spec.dims.clone().unwrap_or_default();
    let known = |i: usize| dims.get(i).and_then(Dim::known);
    if dims.len() != 4 {
        return Err(QuantError::Data(format!(
            "{what}: images need a rank-4 model input, '{}' has rank {}",
            spec.name,
            dims.len()
        )));
    }
    let (ci, hi, wi) = match o.layout {
        Layout::Nchw => (1, 2, 3),
        Layout::Nhwc => (3, 1, 2),
    };
    let channels = known(ci).ok_or_else(|| {
        QuantError::Data(format!(
            "{what}: model input '{}' has no known channel count",
            spec.name
        ))
    })?;
    if channels != 1 && channels != 3 {
        return Err(QuantError::Data(format!(
            "{what}: model input '{}' has {channels} channels; images give 1 or 3 (check --layout)",
            spec.name
        )));
    }
    let (th, tw) = match (o.size, known(hi), known(wi)) {
        (Some(s), _, _) => s,
        (None, Some(h), Some(w)) => (h, w),
        _ => {
            return Err(QuantError::Data(format!(
                "{what}: model input '{}' has symbolic H/W; give --size HxW",
                spec.name
            )))
        }
    };
    let (h, w, c, px) = decode_image(p)?;
    if h == 0 || w == 0 || th == 0 || tw == 0 {
        return Err(QuantError::Data(format!(
            "{what}: empty image or target size"
        )));
    }
    // Source window (y0, x0, hh, ww) in pixels.
    let (mut y0, mut x0, mut hh, mut ww) = (0f64, 0f64, h as f64, w as f64);
    let target_aspect = tw as f64 / th as f64;
    if let Some(seed) = crop_seed {
        let mut r = Rng::new(seed);
        let frac = 0.3 + 0.7 * r.unit();
        let (mut ch, mut cw) = (h as f64 * frac, h as f64 * frac * target_aspect);
        if cw > w as f64 {
            let k = w as f64 / cw;
            ch *= k;
            cw *= k;
        }
        y0 = r.unit() * (h as f64 - ch);
        x0 = r.unit() * (w as f64 - cw);
        hh = ch;
        ww = cw;
    } else if o.crop {
        let src_aspect = w as f64 / h as f64;
        if src_aspect > target_aspect {
            ww = h as f64 * target_aspect;
            x0 = (w as f64 - ww) / 2.0;
        } else {
            hh = w as f64 / target_aspect;
            y0 = (h as f64 - hh) / 2.0;
        }
    }
    let get =
        |y: usize, x: usize, k: usize| px[(y * w + x) * c + if c == 1 { 0 } else { k }] as f64;
    // Box-filtered bilinear sampling: s×s bilinear taps per output pixel when downscaling.
    let sy = hh / th as f64;
    let sx = ww / tw as f64;
    let taps = (sy.max(sx).ceil() as usize).clamp(1, 8);
    let sample = |fy: f64, fx: f64, k: usize| {
        let fy = (fy - 0.5).clamp(0.0, (h - 1) as f64);
        let fx = (fx - 0.5).clamp(0.0, (w - 1) as f64);
        let (y, x) = (fy.floor() as usize, fx.floor() as usize);
        let (y1, x1) = ((y + 1).min(h - 1), (x + 1).min(w - 1));
        let (dy, dx) = (fy - y as f64, fx - x as f64);
        get(y, x, k) * (1.0 - dy) * (1.0 - dx)
            + get(y, x1, k) * (1.0 - dy) * dx
            + get(y1, x, k) * dy * (1.0 - dx)
            + get(y1, x1, k) * dy * dx
    };
    let mut out = vec![0f32; channels * th * tw];
    let pick = |m: &[f32], k: usize| {
        if m.len() == 1 {
            m[0]
        } else {
            m.get(k).copied().unwrap_or(0.0)
        }
    };
    if o.mean.len() != 1 && o.mean.len() != channels || o.std.len() != 1 && o.std.len() != channels
    {
        return Err(QuantError::Data(format!(
            "--mean/--std need 1 or {channels} values"
        )));
    }
    if o.std.iter().any(|&s| s == 0.0) {
        return Err(QuantError::Data("--std values must be non-zero".into()));
    }
    for oy in 0..th {
        for ox in 0..tw {
            let mut rgb = [0f64; 3];
            for ty in 0..taps {
                for tx in 0..taps {
                    let fy = y0 + (oy as f64 + (ty as f64 + 0.5) / taps as f64) * sy;
                    let fx = x0 + (ox as f64 + (tx as f64 + 0.5) / taps as f64) * sx;
                    for (k, v) in rgb.iter_mut().enumerate() {
                        *v += sample(fy, fx, k);
                    }
                }
            }
            let n = (taps * taps) as f64;
            let vals: Vec<f64> = if channels == 1 {
                vec![(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]) / n]
            } else if o.bgr {
                vec![rgb[2] / n, rgb[1] / n, rgb[0] / n]
            } else {
                vec![rgb[0] / n, rgb[1] / n, rgb[2] / n]
            };
            for (k, v) in vals.into_iter().enumerate() {
                let x = ((v as f32 * o.scale) - pick(&o.mean, k)) / pick(&o.std, k);
                let idx = match o.layout {
                    Layout::Nchw => (k * th + oy) * tw + ox,
                    Layout::Nhwc => (oy * tw + ox) * channels + k,
                };
                out[idx] = x;
            }
        }
    }
    let shape = match o.layout {
        Layout::Nchw => vec![1, channels, th, tw],
        Layout::Nhwc => vec![1, th, tw, channels],
    };
    Tensor::from_f32(&shape, out).map_err(|e| QuantError::Data(e.to_string()))
}

/// Input values per interpreter run that `--batch 0` (auto) aims for: batches of large inputs
/// (e.g. 3×320×320 images) make every intermediate tensor fall out of the caches — on ppocr det
/// batch 32 collected statistics ~1.6× slower than batch 1–4 — while tiny inputs (digits)
/// gain from batching the per-op overhead away.
pub const AUTO_BATCH_VALUES: usize = 1 << 16;

/// The batch `for_batches` uses for a requested `batch`: itself, or for 0 (auto) about
/// [`AUTO_BATCH_VALUES`] input values per run, between 1 and 32 samples.
pub fn resolve_batch(src: &dyn SampleSource, batch: usize) -> Result<usize, QuantError> {
    if batch > 0 || src.len() == 0 {
        return Ok(batch.max(1));
    }
    let values: usize = src.get(0)?.iter().map(Tensor::len).sum();
    Ok((AUTO_BATCH_VALUES / values.max(1)).clamp(1, 32))
}

/// Runs `f(state, batch_inputs, first_sample, batch_len)` over all samples of `src` in batches of
/// up to `batch` samples (0: auto, see [`resolve_batch`]), on all rayon threads (contiguous
/// chunks of samples per thread), and merges the per-thread states in chunk order (deterministic
/// for a given thread count).
pub fn for_batches<S: Send>(
    src: &dyn SampleSource,
    batch: usize,
    label: &str,
    progress: bool,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, &[Tensor], usize, usize) -> Result<(), QuantError> + Sync,
    merge: impl Fn(&mut S, S),
) -> Result<S, QuantError> {
    let n = src.len();
    let batch = resolve_batch(src, batch)?;
    let threads = rayon::current_num_threads().max(1).min(n.max(1));
    let per = n.div_ceil(threads);
    let bar = Progress::new(label, n, progress);
    let states: Vec<Result<S, QuantError>> = (0..threads)
        .into_par_iter()
        .map(|t| {
            let mut st = init();
            let (a, b) = (t * per, ((t + 1) * per).min(n));
            let mut i = a;
            while i < b {
                let k = batch.max(1).min(b - i);
                let samples: Vec<Vec<Tensor>> =
                    (i..i + k).map(|j| src.get(j)).collect::<Result<_, _>>()?;
                let inputs: Vec<Tensor> = (0..samples[0].len())
                    .map(|x| {
                        let col: Vec<Tensor> = samples.iter().map(|s| s[x].clone()).collect();
                        if col.len() == 1 {
                            Ok(col.into_iter().next().expect("one"))
                        } else {
                            concat_rows(&col)
                        }
                    })
                    .collect::<Result<_, _>>()?;
                f(&mut st, &inputs, i, k)?;
                bar.add(k);
                i += k;
            }
            Ok(st)
        })
        .collect();
    bar.finish();
    let mut it = states.into_iter();
    let mut acc = it
        .next()
        .ok_or_else(|| QuantError::Data("no samples".into()))??;
    for s in it {
        merge(&mut acc, s?);
    }
    Ok(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_choice() {
        let a = choose(1000, 300, 7);
        assert_eq!(a.len(), 300);
        assert_eq!(a, choose(1000, 300, 7));
        assert_ne!(a, choose(1000, 300, 8));
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(choose(5, 10, 1), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn rows() {
        let t = Tensor::from_f32(&[3, 2], vec![0., 1., 2., 3., 4., 5.]).unwrap();
        let s = slice_rows(&t, 1, 2);
        assert_eq!(s.shape(), &[2, 2]);
        assert_eq!(s.as_f32().unwrap(), &[2., 3., 4., 5.]);
        let c = concat_rows(&[slice_rows(&t, 0, 1), s]).unwrap();
        assert_eq!(c, t);
        assert!(
            concat_rows(&[t.clone(), Tensor::from_f32(&[1, 3], vec![0.; 3]).unwrap()]).is_err()
        );
    }
}
