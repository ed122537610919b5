//! NonMaxSuppression, as ONNX Runtime computes it (f32 geometry, strict `>` comparisons).

use crate::util::want_float;
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
}
