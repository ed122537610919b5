//! Spatial geometry shared by convolutions and pooling: output sizes and pads from kernel,
//! strides, dilations, explicit pads, auto_pad and ceil_mode, as ONNX defines them.

use crate::{invalid, EvalResult};
use lpc_ir::AutoPad;

/// Resolved geometry of a sliding window over N spatial axes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Geom {
    /// Input spatial sizes.
    pub input: Vec<usize>,
    /// Kernel sizes.
    pub kernel: Vec<usize>,
    /// Strides.
    pub strides: Vec<usize>,
    /// Dilations.
    pub dilations: Vec<usize>,
    /// Padding before each axis.
    pub pad_begin: Vec<usize>,
    /// Padding after each axis.
    pub pad_end: Vec<usize>,
    /// Output spatial sizes.
    pub output: Vec<usize>,
}

fn or_ones(v: &[usize], n: usize, what: &str) -> EvalResult<Vec<usize>> {
    if v.is_empty() {
        return Ok(vec![1; n]);
    }
    if v.len() != n || v.contains(&0) {
        return Err(invalid!("{what} {v:?} does not fit {n} spatial axes"));
    }
    Ok(v.to_vec())
}

/// Resolves the geometry. `pads` is `[begin..., end...]` or empty.
pub fn geometry(
    input: &[usize],
    kernel: &[usize],
    strides: &[usize],
    dilations: &[usize],
    pads: &[usize],
    auto_pad: AutoPad,
    ceil_mode: bool,
) -> EvalResult<Geom> {
    let n = input.len();
    if kernel.len() != n || kernel.contains(&0) {
        return Err(invalid!(
            "kernel {kernel:?} does not fit input spatial shape {input:?}"
        ));
    }
    let strides = or_ones(strides, n, "strides")?;
    let dilations = or_ones(dilations, n, "dilations")?;
    let (mut pb, mut pe) = if pads.is_empty() {
        (vec![0; n], vec![0; n])
    } else if pads.len() == 2 * n {
        (pads[..n].to_vec(), pads[n..].to_vec())
    } else {
        return Err(invalid!("pads {pads:?} do not fit {n} spatial axes"));
    };
    let mut output = vec![0; n];
    for a in 0..n {
        let ek = (kernel[a] - 1) * dilations[a] + 1;
        match auto_pad {
            AutoPad::SameUpper | AutoPad::SameLower => {
                let out = input[a].div_ceil(strides[a]);
                let total = ((out.max(1) - 1) * strides[a] + ek).saturating_sub(input[a]);
                let small = total / 2;
                let (b, e) = if auto_pad == AutoPad::SameUpper {
                    (small, total - small)
                } else {
                    (total - small, small)
                };
                pb[a] = b;
                pe[a] = e;
                output[a] = out;
                continue;
            }
            AutoPad::Valid => {
                pb[a] = 0;
                pe[a] = 0;
            }
            AutoPad::NotSet => {}
        }
        let span = input[a] + pb[a] + pe[a];
        if span < ek {
            return Err(invalid!(
                "window {ek} larger than padded input {span} on spatial axis {a}"
            ));
        }
        let num = span - ek;
        let mut out = if ceil_mode {
            num.div_ceil(strides[a]) + 1
        } else {
            num / strides[a] + 1
        };
        if ceil_mode && (out - 1) * strides[a] >= input[a] + pb[a] {
            out -= 1;
        }
        output[a] = out;
    }
    Ok(Geom {
        input: input.to_vec(),
        kernel: kernel.to_vec(),
        strides,
        dilations,
        pad_begin: pb,
        pad_end: pe,
        output,
    })
}

impl Geom {
    /// For each axis, each kernel tap and each output position: the input coordinate, or
    /// `None` when it falls in the padding.
    pub fn taps(&self) -> Vec<Vec<Vec<Option<usize>>>> {
        (0..self.input.len())
            .map(|a| {
                (0..self.kernel[a])
                    .map(|k| {
                        (0..self.output[a])
                            .map(|o| {
                                let i = (o * self.strides[a] + k * self.dilations[a]) as i64
                                    - self.pad_begin[a] as i64;
                                (i >= 0 && (i as usize) < self.input[a]).then_some(i as usize)
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect()
    }
}
