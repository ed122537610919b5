//! NonMaxSuppression, as ONNX Runtime computes it (f32 geometry, strict `>` comparisons), and
//! RoiAlign, as ONNX's reference implementation computes it.

use crate::util::{ints, want_float};
use crate::{invalid, EvalResult, Inputs};
use lpc_ir::Tensor;

/// `(x_min, y_min, x_max, y_max)` of box `k`.
fn corners(b: &[f32], center: bool) -> (f32, f32, f32, f32) {
    if center {
        let (w, h) = (b[2] / 2.0, b[3] / 2.0);
        (b[0] - w, b[1] - h, b[0] + w, b[1] + h)
    } else {
        (
            b[1].min(b[3]),
            b[0].min(b[2]),
            b[1].max(b[3]),
            b[0].max(b[2]),
        )
    }
}

/// True when the IoU of two boxes exceeds the threshold (empty overlaps or areas never do).
fn suppresses(a: (f32, f32, f32, f32), b: (f32, f32, f32, f32), iou_threshold: f32) -> bool {
    let (ix0, ix1) = (a.0.max(b.0), a.2.min(b.2));
    if ix1 <= ix0 {
        return false;
    }
    let (iy0, iy1) = (a.1.max(b.1), a.3.min(b.3));
    if iy1 <= iy0 {
        return false;
    }
    let inter = (ix1 - ix0) * (iy1 - iy0);
    if inter <= 0.0 {
        return false;
    }
    let area_a = (a.2 - a.0) * (a.3 - a.1);
    let area_b = (b.2 - b.0) * (b.3 - b.1);
    let union = area_a + area_b - inter;
    if area_a <= 0.0 || area_b <= 0.0 || union <= 0.0 {
        return false;
    }
    inter / union > iou_threshold
}

/// One-element input `slot` as f32 / i64 (absent: the default).
fn scalar_f32(i: Inputs, slot: usize, what: &str, default: f32) -> EvalResult<f32> {
    match i.opt(slot) {
        None => Ok(default),
        Some(t) => match t.to_f32_vec().as_slice() {
            [v] => Ok(*v),
            [] => Ok(default),
            v => Err(invalid!(
                "{what} must hold one value, got {} values",
                v.len()
            )),
        },
    }
}

/// NonMaxSuppression: boxes `[B, N, 4]`, scores `[B, C, N]`; per batch and class, the boxes
/// with score above score_threshold by descending score (ties by index), each kept unless its
/// IoU with a kept box exceeds iou_threshold, at most max_output_boxes_per_class (absent: 0).
/// Output i64 `[selected, 3]` rows `(batch, class, box)`.
pub fn non_max_suppression(center_point_box: bool, i: Inputs) -> EvalResult<Tensor> {
    let boxes = i.req(0, "boxes")?;
    let scores = i.req(1, "scores")?;
    want_float(boxes, 0, "boxes")?;
    want_float(scores, 1, "scores")?;
    let (&[nb, n, 4], &[sb, nc, sn]) = (boxes.shape(), scores.shape()) else {
        return Err(invalid!(
            "boxes {:?} must be [batches, boxes, 4] and scores {:?} [batches, classes, boxes]",
            boxes.shape(),
            scores.shape()
        ));
    };
    if sb != nb || sn != n {
        return Err(invalid!(
            "scores {:?} do not match boxes {:?}",
            scores.shape(),
            boxes.shape()
        ));
    }
    let max_out = match i.opt(2) {
        None => 0,
        Some(t) => match t.to_i64_vec().as_slice() {
            [] => 0,
            [v] => (*v).max(0) as usize,
            v => {
                return Err(invalid!(
                    "max_output_boxes_per_class must hold one value, got {}",
                    v.len()
                ))
            }
        },
    };
    let iou = scalar_f32(i, 3, "iou_threshold", 0.0)?;
    if !(0.0..=1.0).contains(&iou) {
        return Err(invalid!("iou_threshold {iou} must be in [0, 1]"));
    }
    let score_threshold = match i.opt(4) {
        Some(_) => Some(scalar_f32(i, 4, "score_threshold", f32::NEG_INFINITY)?),
        None => None,
    };
    let bv = boxes.to_f32_vec();
    let sv = scores.to_f32_vec();
    let mut out: Vec<i64> = vec![];
    for b in 0..nb {
        let corner: Vec<_> = (0..n)
            .map(|k| corners(&bv[(b * n + k) * 4..][..4], center_point_box))
            .collect();
        for c in 0..nc {
            if max_out == 0 {
                break;
            }
            let s = &sv[(b * nc + c) * n..][..n];
            let mut cand: Vec<usize> = (0..n)
                .filter(|&k| score_threshold.is_none_or(|t| s[k] > t))
                .collect();
            cand.sort_by(|&p, &q| s[q].total_cmp(&s[p]));
            let mut kept: Vec<usize> = vec![];
            for k in cand {
                if kept.len() >= max_out {
                    break;
                }
                if kept.iter().all(|&j| !suppresses(corner[k], corner[j], iou)) {
                    kept.push(k);
                }
            }
            for k in kept {
                out.extend([b as i64, c as i64, k as i64]);
            }
        }
    }
    let rows = out.len() / 3;
    Tensor::from_i64(&[rows, 3], out).map_err(|e| invalid!("{e}"))
}

/// The attributes of RoiAlign (see `Op::RoiAlign`).
#[derive(Clone, Copy, Debug)]
pub struct RoiAlign {
    /// Output rows per region.
    pub output_height: usize,
    /// Output columns per region.
    pub output_width: usize,
    /// Samples per bin along each axis (0: adaptive).
    pub sampling_ratio: usize,
    /// Scale from roi coordinates to pixels.
    pub spatial_scale: f32,
    /// Max of the samples (else the mean).
    pub max: bool,
    /// Shift roi coordinates by -0.5.
    pub half_pixel: bool,
}

/// The four bilinear taps `(flat index, weight)` of point (y, x) in an `h`×`w` image, or
/// `None` when the point is more than one pixel outside it.
fn taps(y: f64, x: f64, h: usize, w: usize) -> Option<[(usize, f64); 4]> {
    if y < -1.0 || y > h as f64 || x < -1.0 || x > w as f64 {
        return None;
    }
    // The low and high rows and the fraction between them; the last row clamps.
    let axis = |v: f64, n: usize| {
        let v = v.max(0.0);
        let lo = v as usize;
        if lo + 1 >= n {
            (n - 1, n - 1, 0.0)
        } else {
            (lo, lo + 1, v - lo as f64)
        }
    };
    let (y0, y1, ly) = axis(y, h);
    let (x0, x1, lx) = axis(x, w);
    let (hy, hx) = (1.0 - ly, 1.0 - lx);
    Some([
        (y0 * w + x0, hy * hx),
        (y0 * w + x1, hy * lx),
        (y1 * w + x0, ly * hx),
        (y1 * w + x1, ly * lx),
    ])
}

/// RoiAlign: (x `[N, C, H, W]`, rois `[R, 4]`, batch_indices `[R]`) → `[R, C, oh, ow]`.
/// Each bin averages (or, for `max`, takes the largest weighted tap of) a grid of bilinear
/// samples; samples more than a pixel outside x read 0.
pub fn roi_align(a: RoiAlign, i: Inputs) -> EvalResult<Tensor> {
    let x = i.req(0, "x")?;
    let rois = i.req(1, "rois")?;
    let idx = ints(i.req(2, "batch_indices")?, "batch_indices")?;
    want_float(x, 0, "x")?;
    want_float(rois, 1, "rois")?;
    let [n, c, h, w] = *x.shape() else {
        return Err(invalid!("x must be 4-D [N, C, H, W], got {:?}", x.shape()));
    };
    let r = idx.len();
    if rois.shape() != [r, 4] {
        return Err(invalid!(
            "rois {:?} must be [{r}, 4] for {r} batch indices",
            rois.shape()
        ));
    }
    let (oh, ow) = (a.output_height, a.output_width);
    if oh == 0 || ow == 0 {
        return Err(invalid!(
            "output_height and output_width must be at least 1"
        ));
    }
    if h == 0 || w == 0 {
        return Err(invalid!("x {:?} has an empty image", x.shape()));
    }
    let (xv, rv) = (x.to_f64_vec(), rois.to_f64_vec());
    let scale = a.spatial_scale as f64;
    let shift = if a.half_pixel { 0.5 } else { 0.0 };
    let mut out = vec![0.0; crate::shape_ops::check_count(&[r, c, oh, ow])?];
    for (k, &b) in idx.iter().enumerate() {
        let b = usize::try_from(b)
            .ok()
            .filter(|&b| b < n)
            .ok_or_else(|| invalid!("batch index {b} is out of range for batch {n}"))?;
        let roi: Vec<f64> = rv[k * 4..][..4].iter().map(|v| v * scale - shift).collect();
        let (x0, y0) = (roi[0], roi[1]);
        let (mut rw, mut rh) = (roi[2] - x0, roi[3] - y0);
        if !a.half_pixel {
            rw = rw.max(1.0);
            rh = rh.max(1.0);
        }
        let (bh, bw) = (rh / oh as f64, rw / ow as f64);
        let grid = |size: f64, bins: usize| {
            if a.sampling_ratio > 0 {
                a.sampling_ratio
            } else {
                (size / bins as f64).ceil().max(0.0) as usize
            }
        };
        let (gh, gw) = (grid(rh, oh), grid(rw, ow));
        // Every bin's samples are made (and all are read per channel): bound their number.
        crate::shape_ops::check_count(&[oh, ow, gh, gw, c]).map_err(|_| {
            invalid!("roi {k}: {gh}×{gw} samples per bin of {oh}×{ow} bins is too many")
        })?;
        let count = gh.saturating_mul(gw).max(1) as f64;
        for py in 0..oh {
            for px in 0..ow {
                let samples: Vec<Option<[(usize, f64); 4]>> = (0..gh)
                    .flat_map(|iy| (0..gw).map(move |ix| (iy, ix)))
                    .map(|(iy, ix)| {
                        let y = y0 + py as f64 * bh + (iy as f64 + 0.5) * bh / gh as f64;
                        let x = x0 + px as f64 * bw + (ix as f64 + 0.5) * bw / gw as f64;
                        taps(y, x, h, w)
                    })
                    .collect();
                for ch in 0..c {
                    let img = &xv[(b * c + ch) * h * w..][..h * w];
                    // A sample outside the image is four zero-weight taps of pixel 0.
                    let weighted = |s: &Option<[(usize, f64); 4]>| {
                        s.unwrap_or([(0, 0.0); 4]).map(|(p, wt)| wt * img[p])
                    };
                    let v = if a.max {
                        samples
                            .iter()
                            .map(|s| weighted(s).into_iter().fold(f64::NEG_INFINITY, f64::max))
                            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
                            .unwrap_or(0.0)
                    } else {
                        samples
                            .iter()
                            .map(|s| weighted(s).iter().sum::<f64>())
                            .sum::<f64>()
                            / count
                    };
                    out[((k * c + ch) * oh + py) * ow + px] = v;
                }
            }
        }
    }
    Ok(Tensor::from_f64(&[r, c, oh, ow], out)
        .map_err(|e| invalid!("{e}"))?
        .into_dtype(x.dtype()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suppresses_overlaps_keeps_boundary_and_limits() {
        // Boxes 0 and 1 overlap with IoU 0.5 (corners flipped on box 1); box 2 is apart.
        let boxes = Tensor::from_f32(
            &[1, 3, 4],
            vec![0.0, 0.0, 1.0, 2.0, 1.0, 2.0, 0.0, 0.0, 5.0, 5.0, 6.0, 6.0],
        )
        .unwrap();
        let boxes_half = Tensor::from_f32(
            &[1, 3, 4],
            vec![0.0, 0.0, 1.0, 2.0, 0.0, 1.0, 1.0, 3.0, 5.0, 5.0, 6.0, 6.0],
        )
        .unwrap();
        let scores = Tensor::from_f32(&[1, 1, 3], vec![0.9, 0.8, 0.7]).unwrap();
        let max = Tensor::from_i64(&[1], vec![3]).unwrap();
        let half = Tensor::from_f32(&[1], vec![0.3]).unwrap();
        let run = |bx: &Tensor, iou: f32| {
            let t = Tensor::from_f32(&[1], vec![iou]).unwrap();
            non_max_suppression(
                false,
                Inputs::new(&[Some(bx), Some(&scores), Some(&max), Some(&t)]),
            )
            .unwrap()
            .to_i64_vec()
        };
        // Identical boxes 0 and 1: IoU 1 suppresses; box 2 is kept.
        assert_eq!(run(&boxes, 0.5), vec![0, 0, 0, 0, 0, 2]);
        // IoU 1/3 with box 1: suppressed at 0.3, kept at exactly 1/3 (strict >).
        assert_eq!(run(&boxes_half, 0.3), vec![0, 0, 0, 0, 0, 2]);
        assert_eq!(
            run(&boxes_half, 1.0 / 3.0 + 1e-6),
            vec![0, 0, 0, 0, 0, 1, 0, 0, 2]
        );
        // No max_output_boxes_per_class: nothing selected.
        let y = non_max_suppression(false, Inputs::new(&[Some(&boxes), Some(&scores)])).unwrap();
        assert_eq!(y.shape(), &[0, 3]);
        // A score threshold drops box 2.
        let st = Tensor::from_f32(&[1], vec![0.75]).unwrap();
        let y = non_max_suppression(
            false,
            Inputs::new(&[
                Some(&boxes_half),
                Some(&scores),
                Some(&max),
                Some(&half),
                Some(&st),
            ]),
        )
        .unwrap();
        assert_eq!(y.to_i64_vec(), vec![0, 0, 0]);
    }

    #[test]
    fn roi_align_avg_max_half_pixel_and_outside() {
        let x = Tensor::from_f32(&[1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let bi = Tensor::vec_i64(&[0]);
        let a = RoiAlign {
            output_height: 1,
            output_width: 1,
            sampling_ratio: 1,
            spatial_scale: 1.0,
            max: false,
            half_pixel: false,
        };
        let run = |a: RoiAlign, roi: [f32; 4], bi: &Tensor| {
            let rois = Tensor::from_f32(&[1, 4], roi.to_vec()).unwrap();
            roi_align(a, Inputs::new(&[Some(&x), Some(&rois), Some(bi)])).map(|y| y.to_f32_vec())
        };
        // One sample at the centre (0.5, 0.5) of the unit roi: the mean 2.5; the largest
        // weighted tap 0.25·4 for max; shifted by half a pixel the sample is pixel (0, 0).
        assert_eq!(run(a, [0.0, 0.0, 1.0, 1.0], &bi).unwrap(), vec![2.5]);
        let max = RoiAlign { max: true, ..a };
        assert_eq!(run(max, [0.0, 0.0, 1.0, 1.0], &bi).unwrap(), vec![1.0]);
        let half = RoiAlign {
            half_pixel: true,
            ..a
        };
        assert_eq!(run(half, [0.0, 0.0, 1.0, 1.0], &bi).unwrap(), vec![1.0]);
        // Adaptive sampling of a 2×2 roi into one bin: 2×2 samples, their mean 2.5.
        let adaptive = RoiAlign {
            sampling_ratio: 0,
            ..half
        };
        assert_eq!(run(adaptive, [0.0, 0.0, 2.0, 2.0], &bi).unwrap(), vec![2.5]);
        // More than a pixel outside reads 0; a batch index out of range is an error.
        assert_eq!(run(a, [5.0, 5.0, 6.0, 6.0], &bi).unwrap(), vec![0.0]);
        assert!(run(a, [0.0, 0.0, 1.0, 1.0], &Tensor::vec_i64(&[1])).is_err());
    }
}
