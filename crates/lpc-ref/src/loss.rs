//! NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (inference of a training loss: the
//! value only).

use crate::norm::softmax;
use crate::{invalid, EvalError, EvalResult, Inputs};
use lpc_ir::{DType, LossReduction, Tensor};

/// NegativeLogLikelihoodLoss: (input [N, C, d...], target [N, d...], weight [C]?).
/// `loss = -input[n, target, d...] * weight[target]`; a target equal to `ignore_index` gives
/// loss 0 and weight 0. Mean divides the sum by the sum of the weights (0/0 = NaN when
/// every target is ignored, as ONNX Runtime). Other targets outside `[0, C)` are an error.
pub fn nll_loss(
    reduction: LossReduction,
    ignore_index: Option<i64>,
    i: Inputs,
) -> EvalResult<Tensor> {
    let x = i.req(0, "input")?;
    let target = i.req(1, "target")?;
    nll(reduction, ignore_index, x, target, i.opt(2))
}

/// SoftmaxCrossEntropyLoss: (scores, labels, weights?) → (loss, log_prob?), the
/// NegativeLogLikelihoodLoss of LogSoftmax(scores) over axis 1.
pub fn softmax_cross_entropy_loss(
    reduction: LossReduction,
    ignore_index: Option<i64>,
    i: Inputs,
    n_outputs: usize,
) -> EvalResult<Vec<Tensor>> {
    let x = i.req(0, "scores")?;
    if x.rank() < 2 {
        return Err(invalid!(
            "scores must be [N, C, d...], got shape {:?}",
            x.shape()
        ));
    }
    let log_prob = softmax(1, false, true, x)?;
    let loss = nll(
        reduction,
        ignore_index,
        &log_prob,
        i.req(1, "labels")?,
        i.opt(2),
    )?;
    Ok(if n_outputs > 1 {
        vec![loss, log_prob]
    } else {
        vec![loss]
    })
}

fn nll(
    reduction: LossReduction,
    ignore_index: Option<i64>,
    x: &Tensor,
    target: &Tensor,
    weight: Option<&Tensor>,
) -> EvalResult<Tensor> {
    crate::util::want_float(x, 0, "input")?;
    if !matches!(target.dtype(), DType::I32 | DType::I64) {
        return Err(EvalError::DType {
            slot: 1,
            what: "target",
            got: target.dtype(),
            expected: "i32 or i64",
        });
    }
    let sh = x.shape();
    let mut want = vec![];
    if sh.len() >= 2 {
        want.push(sh[0]);
        want.extend_from_slice(&sh[2..]);
    }
    if sh.len() < 2 || target.shape() != want.as_slice() {
        return Err(invalid!(
            "input must be [N, C, d...] and target [N, d...], got {:?} and {:?}",
            sh,
            target.shape()
        ));
    }
    let (n, c) = (sh[0], sh[1]);
    let inner: usize = sh[2..].iter().product();
    let w = match weight {
        Some(w) => {
            if w.dtype() != x.dtype() {
                return Err(EvalError::DType {
                    slot: 2,
                    what: "weight",
                    got: w.dtype(),
                    expected: "the input's float type",
                });
            }
            if w.shape() != [c] {
                return Err(invalid!("weight must be [C] = [{c}], got {:?}", w.shape()));
            }
            Some(w.to_f64_vec())
        }
        None => None,
    };
    let xv = x.to_f64_vec();
    let tv = target.to_i64_vec();
    let mut loss = Vec::with_capacity(tv.len());
    let mut weight_sum = 0.0;
    for b in 0..n {
        for q in 0..inner {
            let t = tv[b * inner + q];
            if Some(t) == ignore_index {
                loss.push(0.0);
                continue;
            }
            let k = usize::try_from(t)
                .ok()
                .filter(|&k| k < c)
                .ok_or_else(|| invalid!("target value {t} is outside [0, {c})"))?;
            let wk = w.as_ref().map_or(1.0, |w| w[k]);
            weight_sum += wk;
            loss.push(-xv[(b * c + k) * inner + q] * wk);
        }
    }
    let out = match reduction {
        LossReduction::None => Tensor::from_f64(target.shape(), loss),
        LossReduction::Sum => Tensor::from_f64(&[], vec![loss.iter().sum()]),
        LossReduction::Mean => Tensor::from_f64(&[], vec![loss.iter().sum::<f64>() / weight_sum]),
    };
    Ok(out.expect("size").into_dtype(x.dtype()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32s(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_f32(shape, v.to_vec()).unwrap()
    }

    fn i64s(shape: &[usize], v: &[i64]) -> Tensor {
        Tensor::from_i64(shape, v.to_vec()).unwrap()
    }

    fn nll_of(
        r: LossReduction,
        ii: Option<i64>,
        x: &Tensor,
        t: &Tensor,
        w: Option<&Tensor>,
    ) -> Vec<f32> {
        let ins = [Some(x), Some(t), w];
        nll_loss(r, ii, Inputs::new(&ins)).unwrap().to_f32_vec()
    }

    #[test]
    fn nll_reductions_weights_and_ignore_index() {
        // N = 3, C = 2: picks -x[0,1], -x[1,0], -x[2,1].
        let x = f32s(&[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let t = i64s(&[3], &[1, 0, 1]);
        assert_eq!(
            nll_of(LossReduction::None, None, &x, &t, None),
            [-2.0, -3.0, -6.0]
        );
        assert_eq!(nll_of(LossReduction::Sum, None, &x, &t, None), [-11.0]);
        assert_eq!(
            nll_of(LossReduction::Mean, None, &x, &t, None),
            [-11.0 / 3.0]
        );
        // Weights 0.5 (class 0) and 2 (class 1): mean divides by 2 + 0.5 + 2.
        let w = f32s(&[2], &[0.5, 2.0]);
        assert_eq!(
            nll_of(LossReduction::None, None, &x, &t, Some(&w)),
            [-4.0, -1.5, -12.0]
        );
        assert_eq!(
            nll_of(LossReduction::Mean, None, &x, &t, Some(&w)),
            [-17.5 / 4.5]
        );
        // Ignoring class 1 leaves only the middle element, weight and all.
        assert_eq!(
            nll_of(LossReduction::None, Some(1), &x, &t, Some(&w)),
            [0.0, -1.5, 0.0]
        );
        assert_eq!(
            nll_of(LossReduction::Mean, Some(1), &x, &t, Some(&w)),
            [-3.0]
        );
        // A negative ignore_index matches a negative target, which is otherwise an error.
        let tn = i64s(&[3], &[-1, 0, -1]);
        assert_eq!(nll_of(LossReduction::Sum, Some(-1), &x, &tn, None), [-3.0]);
        let ins = [Some(&x), Some(&tn), None];
        assert!(nll_loss(LossReduction::Sum, None, Inputs::new(&ins)).is_err());
        // Every target ignored: mean is 0/0.
        let all = i64s(&[3], &[1, 1, 1]);
        assert!(nll_of(LossReduction::Mean, Some(1), &x, &all, None)[0].is_nan());
        assert_eq!(nll_of(LossReduction::Sum, Some(1), &x, &all, None), [0.0]);
    }

    #[test]
    fn nll_spatial_and_special_values() {
        // [N=1, C=2, d=2]: target [1, 2] picks x[0,1,0] and x[0,0,1].
        let x = f32s(&[1, 2, 2], &[1.0, f32::NAN, f32::NEG_INFINITY, 4.0]);
        let t = Tensor::from_i64(&[1, 2], vec![1, 0])
            .unwrap()
            .into_dtype(DType::I32);
        let got = nll_of(LossReduction::None, None, &x, &t, None);
        assert_eq!(got[0], f32::INFINITY);
        assert!(got[1].is_nan());
        // An unpicked NaN does not leak into the sum.
        let t2 = i64s(&[1, 2], &[0, 1]);
        assert_eq!(nll_of(LossReduction::Sum, None, &x, &t2, None), [-5.0]);
    }

    #[test]
    fn nll_rejects_bad_inputs() {
        let x = f32s(&[2, 2], &[0.0; 4]);
        let run = |t: &Tensor, w: Option<&Tensor>| {
            let ins = [Some(&x), Some(t), w];
            nll_loss(LossReduction::Mean, None, Inputs::new(&ins))
        };
        assert!(
            run(&i64s(&[2], &[0, 2]), None).is_err(),
            "target out of range"
        );
        assert!(run(&i64s(&[3], &[0, 1, 0]), None).is_err(), "target shape");
        assert!(
            run(&i64s(&[2], &[0, 1]), Some(&f32s(&[3], &[1.0; 3]))).is_err(),
            "weight shape"
        );
        assert!(matches!(
            run(&f32s(&[2], &[0.0, 1.0]), None),
            Err(EvalError::DType { slot: 1, .. })
        ));
        let t8 = i64s(&[2], &[0, 1]).into_dtype(DType::I8);
        assert!(matches!(
            run(&t8, None),
            Err(EvalError::DType { slot: 1, .. })
        ));
        let w64 = f32s(&[2], &[1.0; 2]).into_dtype(DType::F64);
        assert!(matches!(
            run(&i64s(&[2], &[0, 1]), Some(&w64)),
            Err(EvalError::DType { slot: 2, .. })
        ));
    }

    #[test]
    fn softmax_cross_entropy_is_nll_of_log_softmax() {
        // Two equal scores: log_prob = ln(1/2) each, loss = ln 2.
        let x = f32s(&[2, 2], &[0.0, 0.0, 1.0, 1.0]);
        let t = i64s(&[2], &[0, 1]);
        let ins = [Some(&x), Some(&t), None];
        let out =
            softmax_cross_entropy_loss(LossReduction::Mean, None, Inputs::new(&ins), 2).unwrap();
        assert_eq!(out.len(), 2);
        let ln2 = std::f32::consts::LN_2;
        assert!((out[0].to_f32_vec()[0] - ln2).abs() < 1e-6);
        assert_eq!(out[1].shape(), &[2, 2]);
        for v in out[1].to_f32_vec() {
            assert!((v + ln2).abs() < 1e-6);
        }
        // Scores [0, ln 3]: p = [1/4, 3/4]; label 1 with weight 2, sum: -2 ln(3/4).
        let x = f32s(&[1, 2], &[0.0, 3f32.ln()]);
        let t = i64s(&[1], &[1]);
        let w = f32s(&[2], &[1.0, 2.0]);
        let ins = [Some(&x), Some(&t), Some(&w)];
        let out =
            softmax_cross_entropy_loss(LossReduction::Sum, None, Inputs::new(&ins), 1).unwrap();
        assert_eq!(out.len(), 1);
        assert!((out[0].to_f32_vec()[0] + 2.0 * 0.75f32.ln()).abs() < 1e-6);
        // Rank 1 scores are an error, not a panic.
        let x1 = f32s(&[2], &[0.0, 1.0]);
        let ins = [Some(&x1), Some(&t), None];
        assert!(
            softmax_cross_entropy_loss(LossReduction::Sum, None, Inputs::new(&ins), 1).is_err()
        );
    }
}
