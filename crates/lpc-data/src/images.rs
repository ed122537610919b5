//! PNG/JPEG images as input tensors: decode, resize or crop, channel order, scale/mean/std.

use crate::error::DataError;
use crate::files::ext;
use crate::rng::Rng;
use crate::spec::InputSpec;
use lpc_ir::{Dim, Tensor};
use std::path::Path;

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

/// An image error about file `what`.
fn image_err(what: &str, msg: String) -> DataError {
    DataError::Image {
        what: what.to_string(),
        msg,
    }
}

/// Image files the loader decodes, by extension.
pub(crate) fn is_image(p: &Path) -> bool {
    matches!(ext(p).as_str(), "png" | "jpg" | "jpeg")
}

/// Image formats it does not decode: in a calibration folder they are an error, not skipped.
pub(crate) fn is_other_image(p: &Path) -> bool {
    matches!(
        ext(p).as_str(),
        "bmp" | "gif" | "tif" | "tiff" | "webp" | "ppm" | "pgm" | "heic" | "avif"
    )
}

/// Decodes a PNG or JPEG to (height, width, channels 1 or 3, 8-bit pixels).
fn decode_image(p: &Path) -> Result<(usize, usize, usize, Vec<u8>), DataError> {
    match ext(p).as_str() {
        "jpg" | "jpeg" => decode_jpeg(p),
        _ => decode_png(p),
    }
}

/// Decodes an 8-bit baseline or progressive JPEG (gray or colour; CMYK and 12/16-bit refused).
fn decode_jpeg(p: &Path) -> Result<(usize, usize, usize, Vec<u8>), DataError> {
    let what = p.display().to_string();
    let f = std::fs::File::open(p).map_err(|error| DataError::Io {
        path: p.to_path_buf(),
        error,
    })?;
    let mut dec = jpeg_decoder::Decoder::new(std::io::BufReader::new(f));
    let px = dec
        .decode()
        .map_err(|e| image_err(&what, format!("not a readable JPEG ({e})")))?;
    let info = dec
        .info()
        .ok_or_else(|| image_err(&what, "JPEG without a frame header".into()))?;
    let (h, w) = (info.height as usize, info.width as usize);
    match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => Ok((h, w, 1, px)),
        jpeg_decoder::PixelFormat::RGB24 => Ok((h, w, 3, px)),
        jpeg_decoder::PixelFormat::L16 => Err(image_err(
            &what,
            "JPEG with more than 8 bits per sample is not supported; convert it to 8-bit".into(),
        )),
        jpeg_decoder::PixelFormat::CMYK32 => Err(image_err(
            &what,
            "CMYK JPEG is not supported; convert it to RGB".into(),
        )),
    }
}

/// Decodes a PNG to (height, width, channels 1 or 3, 8-bit pixels).
fn decode_png(p: &Path) -> Result<(usize, usize, usize, Vec<u8>), DataError> {
    let what = p.display().to_string();
    let f = std::fs::File::open(p).map_err(|error| DataError::Io {
        path: p.to_path_buf(),
        error,
    })?;
    let mut dec = png::Decoder::new(std::io::BufReader::new(f));
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut r = dec
        .read_info()
        .map_err(|e| image_err(&what, format!("not a readable PNG ({e})")))?;
    let mut buf = vec![0u8; r.output_buffer_size()];
    let info = r
        .next_frame(&mut buf)
        .map_err(|e| image_err(&what, format!("PNG decode failed ({e})")))?;
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
) -> Result<Tensor, DataError> {
    let what = p.display().to_string();
    let (channels, th, tw) = target_size(&what, spec, o)?;
    let (h, w, c, px) = decode_image(p)?;
    if h == 0 || w == 0 || th == 0 || tw == 0 {
        return Err(image_err(&what, "empty image or target size".into()));
    }
    let src = Pixels { h, w, c, px };
    let win = source_window(h, w, (th, tw), o.crop, crop_seed);
    if o.mean.len() != 1 && o.mean.len() != channels || o.std.len() != 1 && o.std.len() != channels
    {
        return Err(DataError::Options(format!(
            "--mean/--std need 1 or {channels} values"
        )));
    }
    if o.std.contains(&0.0) {
        return Err(DataError::Options("--std values must be non-zero".into()));
    }
    let out = resample(&src, &win, (channels, th, tw), o);
    let shape = match o.layout {
        Layout::Nchw => vec![1, channels, th, tw],
        Layout::Nhwc => vec![1, th, tw, channels],
    };
    Tensor::from_f32(&shape, out).map_err(DataError::Shape)
}

/// The model input's (channels, height, width): channels from its shape, the size from
/// `--size` or its shape.
fn target_size(
    what: &str,
    spec: &InputSpec,
    o: &ImageOptions,
) -> Result<(usize, usize, usize), DataError> {
    let dims = spec.dims.clone().unwrap_or_default();
    let known = |i: usize| dims.get(i).and_then(Dim::known);
    if dims.len() != 4 {
        return Err(image_err(
            what,
            format!(
                "images need a rank-4 model input, '{}' has rank {}",
                spec.name,
                dims.len()
            ),
        ));
    }
    let (ci, hi, wi) = match o.layout {
        Layout::Nchw => (1, 2, 3),
        Layout::Nhwc => (3, 1, 2),
    };
    let channels = known(ci).ok_or_else(|| {
        image_err(
            what,
            format!("model input '{}' has no known channel count", spec.name),
        )
    })?;
    if channels != 1 && channels != 3 {
        return Err(image_err(
            what,
            format!(
                "model input '{}' has {channels} channels; images give 1 or 3 (check --layout)",
                spec.name
            ),
        ));
    }
    let (th, tw) = match (o.size, known(hi), known(wi)) {
        (Some(s), _, _) => s,
        (None, Some(h), Some(w)) => (h, w),
        _ => {
            return Err(image_err(
                what,
                format!(
                    "model input '{}' has symbolic H/W; give --size HxW",
                    spec.name
                ),
            ))
        }
    };
    Ok((channels, th, tw))
}

/// Decoded 8-bit pixels: `h` rows of `w` pixels of `c` (1 or 3) samples.
struct Pixels {
    h: usize,
    w: usize,
    c: usize,
    px: Vec<u8>,
}

impl Pixels {
    /// Sample `k` of pixel (y, x); a grey image gives its one sample for every `k`.
    fn get(&self, y: usize, x: usize, k: usize) -> f64 {
        let c = self.c;
        self.px[(y * self.w + x) * c + if c == 1 { 0 } else { k }] as f64
    }

    /// Bilinear sample `k` at pixel-centre coordinates (fy, fx), clamped to the image.
    fn bilinear(&self, fy: f64, fx: f64, k: usize) -> f64 {
        let (h, w) = (self.h, self.w);
        let fy = (fy - 0.5).clamp(0.0, (h - 1) as f64);
        let fx = (fx - 0.5).clamp(0.0, (w - 1) as f64);
        let (y, x) = (fy.floor() as usize, fx.floor() as usize);
        let (y1, x1) = ((y + 1).min(h - 1), (x + 1).min(w - 1));
        let (dy, dx) = (fy - y as f64, fx - x as f64);
        self.get(y, x, k) * (1.0 - dy) * (1.0 - dx)
            + self.get(y, x1, k) * (1.0 - dy) * dx
            + self.get(y1, x, k) * dy * (1.0 - dx)
            + self.get(y1, x1, k) * dy * dx
    }
}

/// The source window (top, left, height, width) in pixels.
struct Window {
    y0: f64,
    x0: f64,
    hh: f64,
    ww: f64,
}

/// The source window of an `h`×`w` image for a target of size `(th, tw)`: a seeded random
/// crop, a centre crop to the target's aspect ratio (`crop`), or the whole image.
fn source_window(
    h: usize,
    w: usize,
    (th, tw): (usize, usize),
    crop: bool,
    crop_seed: Option<u64>,
) -> Window {
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
    } else if crop {
        let src_aspect = w as f64 / h as f64;
        if src_aspect > target_aspect {
            ww = h as f64 * target_aspect;
            x0 = (w as f64 - ww) / 2.0;
        } else {
            hh = w as f64 / target_aspect;
            y0 = (h as f64 - hh) / 2.0;
        }
    }
    Window { y0, x0, hh, ww }
}

/// Samples the window to `channels`×`th`×`tw` values in `o`'s layout, scaled and normalised.
/// Box-filtered bilinear sampling: s×s bilinear taps per output pixel when downscaling.
fn resample(
    src: &Pixels,
    win: &Window,
    (channels, th, tw): (usize, usize, usize),
    o: &ImageOptions,
) -> Vec<f32> {
    let sy = win.hh / th as f64;
    let sx = win.ww / tw as f64;
    let taps = (sy.max(sx).ceil() as usize).clamp(1, 8);
    let mut out = vec![0f32; channels * th * tw];
    let pick = |m: &[f32], k: usize| {
        if m.len() == 1 {
            m[0]
        } else {
            m.get(k).copied().unwrap_or(0.0)
        }
    };
    for oy in 0..th {
        for ox in 0..tw {
            let mut rgb = [0f64; 3];
            for ty in 0..taps {
                for tx in 0..taps {
                    let fy = win.y0 + (oy as f64 + (ty as f64 + 0.5) / taps as f64) * sy;
                    let fx = win.x0 + (ox as f64 + (tx as f64 + 0.5) / taps as f64) * sx;
                    for (k, v) in rgb.iter_mut().enumerate() {
                        *v += src.bilinear(fy, fx, k);
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
    out
}
