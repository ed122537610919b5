//! The recurrent ONNX ops LSTM, GRU and RNN (every opset): one lpc op each, with the
//! attributes typed and the ONNX defaults filled in (activations and their alpha/beta).

use super::attrs::Attrs;
use super::table::{Converted, Cx, Table};
use crate::ImportError;
use lpc_ir::*;

/// Registers this family's converters.
pub(super) fn register(t: &mut Table) {
    t.add("LSTM", |cx, g| {
        let rnn = rnn_attrs(cx, g, 3)?;
        let input_forget = cx.a.bool("input_forget", false)?;
        Ok(Converted::Op(Op::Lstm { rnn, input_forget }))
    });
    t.add("GRU", |cx, g| {
        let rnn = rnn_attrs(cx, g, 2)?;
        let linear_before_reset = cx.a.bool("linear_before_reset", false)?;
        Ok(Converted::Op(Op::Gru {
            rnn,
            linear_before_reset,
        }))
    });
    t.add("RNN", |cx, g| {
        Ok(Converted::Op(Op::Rnn(rnn_attrs(cx, g, 1)?)))
    });
}

/// The shared attributes; `functions` activations per direction (LSTM 3, GRU 2, RNN 1).
/// Opset 1's `output_sequence` only says whether Y is wanted, which the outputs already do.
pub(super) fn rnn_attrs(cx: &Cx, g: &Graph, functions: usize) -> Result<RnnAttrs, ImportError> {
    let a = cx.a;
    cx.need(3)?;
    let direction = match a.string("direction", "forward")?.as_str() {
        "forward" => RnnDirection::Forward,
        "reverse" => RnnDirection::Reverse,
        "bidirectional" => RnnDirection::Bidirectional,
        other => {
            return Err(a.err(format!(
                "attribute 'direction' is '{other}' (expected forward, reverse or bidirectional)"
            )))
        }
    };
    let batch_first = match a.int("layout", 0)? {
        0 => false,
        1 => true,
        other => return Err(a.err(format!("attribute 'layout' is {other} (expected 0 or 1)"))),
    };
    let clip = match a.get("clip") {
        None => None,
        Some(_) => match a.float("clip", 0.0)? {
            c if c > 0.0 => Some(c),
            c => return Err(a.err(format!("attribute 'clip' is {c} (must be positive)"))),
        },
    };
    Ok(RnnAttrs {
        direction,
        hidden_size: hidden_size(cx, g)?,
        activations: activations(a, functions, direction.count())?,
        clip,
        batch_first,
    })
}

/// `hidden_size`, or R's last dimension when the attribute is absent.
fn hidden_size(cx: &Cx, g: &Graph) -> Result<usize, ImportError> {
    let a = cx.a;
    if a.has("hidden_size") {
        return match a.int("hidden_size", 0)? {
            h if (1..=1 << 24).contains(&h) => Ok(h as usize),
            h => Err(a.err(format!("attribute 'hidden_size' is {h} (must be positive)"))),
        };
    }
    let r = cx.ins.get(2).copied().flatten();
    let known = r.and_then(|r| g.value_type(r).shape.as_ref()?.0.get(2)?.known());
    known
        .filter(|&h| h > 0)
        .ok_or_else(|| a.err("attribute 'hidden_size' is missing and R's shape does not give it"))
}

/// The activation list with the defaults of ONNX (and ONNX Runtime): alpha and beta values
/// are consumed in order by the activations that take them; a missing one is LeakyRelu 0.01,
/// HardSigmoid 0.2 / 0.5, Elu 1.0, and 0 for Affine, ThresholdedRelu and ScaledTanh (as
/// ONNX Runtime). Names are case-insensitive (as ONNX Runtime).
fn activations(
    a: &Attrs,
    functions: usize,
    dirs: usize,
) -> Result<Vec<RnnActivation>, ImportError> {
    let Some(mut names) = a.strings("activations")? else {
        return Ok(rnn_default_activations(functions, dirs));
    };
    // RNN's schema default is ["Tanh", "Tanh"]; a forward RNN uses the first (ONNX Runtime).
    if functions == 1 && dirs == 1 && names.len() == 2 {
        names.truncate(1);
    }
    if names.len() != functions * dirs {
        return Err(a.err(format!(
            "attribute 'activations' has {} functions, expected {} ({functions} per direction)",
            names.len(),
            functions * dirs
        )));
    }
    let alphas = a.floats("activation_alpha")?.unwrap_or_default();
    let betas = a.floats("activation_beta")?.unwrap_or_default();
    let (mut alphas, mut betas) = (alphas.into_iter(), betas.into_iter());
    let mut out = vec![];
    for name in &names {
        let mut alpha = |d: f32| alphas.next().unwrap_or(d);
        let act = match name.to_ascii_lowercase().as_str() {
            "relu" => RnnActivation::Relu,
            "tanh" => RnnActivation::Tanh,
            "sigmoid" => RnnActivation::Sigmoid,
            "affine" => RnnActivation::Affine {
                alpha: alpha(0.0),
                beta: betas.next().unwrap_or(0.0),
            },
            "leakyrelu" => RnnActivation::LeakyRelu { alpha: alpha(0.01) },
            "thresholdedrelu" => RnnActivation::ThresholdedRelu { alpha: alpha(0.0) },
            "scaledtanh" => RnnActivation::ScaledTanh {
                alpha: alpha(0.0),
                beta: betas.next().unwrap_or(0.0),
            },
            "hardsigmoid" => RnnActivation::HardSigmoid {
                alpha: alpha(0.2),
                beta: betas.next().unwrap_or(0.5),
            },
            "elu" => RnnActivation::Elu { alpha: alpha(1.0) },
            "softsign" => RnnActivation::Softsign,
            "softplus" => RnnActivation::Softplus,
            _ => {
                return Err(a.err(format!(
                    "attribute 'activations': unknown activation '{name}' (expected Relu, Tanh, \
                     Sigmoid, Affine, LeakyRelu, ThresholdedRelu, ScaledTanh, HardSigmoid, Elu, \
                     Softsign or Softplus)"
                )))
            }
        };
        out.push(act);
    }
    Ok(out)
}
