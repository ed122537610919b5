//! FakeQuantize → QuantizeLinear + DequantizeLinear (or an i8 initializer + DequantizeLinear
//! for constant inputs): ranges checked, per-axis detected, scales and zero points computed.

use super::attrs::attr_i;
use super::{ExportError, Exporter};
use lpc_ir::*;
use std::sync::Arc;

/// The checked constant ranges of one FakeQuantize node (`il == ol`, `ih == oh`).
struct Ranges {
    /// The low range tensor (for its shape).
    il: Arc<Tensor>,
    /// Low ends, one per range element.
    lo: Vec<f32>,
    /// High ends.
    hi: Vec<f32>,
}

/// Scales and integer zero points on the u8 level grid `0..=levels-1`, stored as i8 or u8.
struct QParams {
    /// Per range element.
    scales: Vec<f32>,
    /// Per range element, as levels.
    zps_u: Vec<i32>,
    /// Stored as i8 (`level - offset`) rather than u8.
    signed: bool,
    /// 127 for 255 levels, 128 for 256.
    offset: i32,
}

impl Exporter<'_> {
    /// FakeQuantize → QuantizeLinear + DequantizeLinear (or an i8 initializer + DequantizeLinear
    /// for constant inputs).
    pub(super) fn fake_quantize(
        &mut self,
        n: NodeId,
        levels: u32,
        ins: &[Option<ValueRef>],
        out: String,
    ) -> Result<(), ExportError> {
        let g = self.g;
        let r = self.ranges(n, levels, ins)?;
        let x = ins[0].ok_or_else(|| self.err(n, "missing input"))?;
        let steps = (levels - 1) as f32;
        let per_axis = self.per_axis(n, x, &r)?;
        let p = self.qparams(n, levels, &r, steps, g.const_value(x).is_some(), per_axis)?;
        let (scale_t, zp_t) = self.qparam_tensors(n, &p, per_axis)?;
        let base = out.clone();
        let scale = self.init(&format!("{base}_scale"), &scale_t);
        let zp = self.init(&format!("{base}_zero_point"), &zp_t);
        let axis_attr = per_axis
            .map(|a| vec![attr_i("axis", a as i64)])
            .unwrap_or_default();
        if let Some(w) = g.const_value(x) {
            // Constant: quantize now.
            let qt = self.quantize_constant(n, w, &r, &p, steps, per_axis)?;
            let qn = self.init(&format!("{base}_quantized"), &qt);
            self.push(
                &format!("{base}_DequantizeLinear"),
                "DequantizeLinear",
                vec![qn, scale, zp],
                vec![out],
                axis_attr,
            );
        } else {
            if levels != 256 {
                return Err(self.err(n, "activation quantizers need 256 levels to export as QDQ"));
            }
            let xn = self.name(x);
            let qn = self.fresh(&format!("{base}_quantized"));
            self.push(
                &format!("{base}_QuantizeLinear"),
                "QuantizeLinear",
                vec![xn, scale.clone(), zp.clone()],
                vec![qn.clone()],
                axis_attr.clone(),
            );
            self.push(
                &format!("{base}_DequantizeLinear"),
                "DequantizeLinear",
                vec![qn, scale, zp],
                vec![out],
                axis_attr,
            );
        }
        Ok(())
    }

    /// The constant ranges, checked to be expressible as 8-bit QDQ.
    fn ranges(
        &self,
        n: NodeId,
        levels: u32,
        ins: &[Option<ValueRef>],
    ) -> Result<Ranges, ExportError> {
        let g = self.g;
        let get = |k: usize| -> Result<Arc<Tensor>, ExportError> {
            ins.get(k)
                .copied()
                .flatten()
                .and_then(|v| g.const_value(v).cloned())
                .ok_or_else(|| {
                    self.err(n, "FakeQuantize ranges must be constants to export as QDQ")
                })
        };
        let (il, ih, ol, oh) = (get(1)?, get(2)?, get(3)?, get(4)?);
        let (ilv, ihv) = (il.to_f32_vec(), ih.to_f32_vec());
        if ilv != ol.to_f32_vec() || ihv != oh.to_f32_vec() || il.shape() != ih.shape() {
            return Err(self.err(n, "input and output ranges differ; not expressible as QDQ"));
        }
        if levels != 255 && levels != 256 {
            return Err(self.err(
                n,
                format!("levels {levels}: only 255 and 256 map to 8-bit QDQ"),
            ));
        }
        Ok(Ranges {
            il,
            lo: ilv,
            hi: ihv,
        })
    }

    /// Per-channel axis: the single non-1 dim of the range tensors (when not per-tensor).
    fn per_axis(&self, n: NodeId, x: ValueRef, r: &Ranges) -> Result<Option<usize>, ExportError> {
        let g = self.g;
        let il = &r.il;
        if r.lo.len() <= 1 {
            return Ok(None);
        }
        let dims: Vec<usize> = il
            .shape()
            .iter()
            .enumerate()
            .filter(|(_, &d)| d > 1)
            .map(|(i, _)| i)
            .collect();
        if dims.len() != 1 {
            return Err(self.err(
                n,
                format!(
                    "range shape {:?} is neither per-tensor nor per-axis",
                    il.shape()
                ),
            ));
        }
        let rank = g
            .const_value(x)
            .map(|t| t.rank())
            .or_else(|| g.value_type(x).shape.as_ref().map(|s| s.rank()));
        let off = rank.unwrap_or(il.rank()).saturating_sub(il.rank());
        Ok(Some(dims[0] + off))
    }

    /// Scales and zero points of the ranges, and the stored type.
    fn qparams(
        &self,
        n: NodeId,
        levels: u32,
        r: &Ranges,
        steps: f32,
        constant: bool,
        per_axis: Option<usize>,
    ) -> Result<QParams, ExportError> {
        let mut scales = vec![];
        let mut zps_u = vec![];
        for (&lo, &hi) in r.lo.iter().zip(&r.hi) {
            if !(hi > lo) {
                return Err(self.err(n, format!("empty or inverted range [{lo}, {hi}]")));
            }
            let s = (hi - lo) / steps;
            let z = -lo / s;
            if (z - z.round()).abs() > 1e-3 || z.round() < 0.0 || z.round() > steps {
                return Err(self.err(
                    n,
                    format!("zero point {z} of range [{lo}, {hi}] is not an integer level"),
                ));
            }
            scales.push(s);
            zps_u.push(z.round() as i32);
        }
        // Stored type (the values are the same either way: an i8 code is the u8 level minus the
        // offset). Weights (levels 255, narrow) are i8. Per-tensor activations are u8: OpenVINO
        // 2026.4 computed garbage from an i8 activation quantizer in ppocr det (the FPN Concat
        // feeding the head conv; symmetric or not, SQNR vs FP32 0 dB), the same values as u8
        // ran right. Per-axis activations are u8 only when every range starts at 0: ONNX
        // Runtime 1.32 fuses a u8 per-axis QuantizeLinear after a Conv into a QLinearConv,
        // which then fails ("result zero point must be a scalar").
        let offset = if levels == 255 { 127 } else { 128 };
        let signed =
            levels == 255 || ((constant || per_axis.is_some()) && zps_u.iter().any(|&z| z != 0));
        Ok(QParams {
            scales,
            zps_u,
            signed,
            offset,
        })
    }

    /// The scale and zero-point initializers: vectors per axis, scalars per tensor.
    fn qparam_tensors(
        &self,
        n: NodeId,
        p: &QParams,
        per_axis: Option<usize>,
    ) -> Result<(Tensor, Tensor), ExportError> {
        let (zps_u, offset) = (&p.zps_u, p.offset);
        let zp_t = if p.signed {
            Tensor::from_i8(
                &[zps_u.len()],
                zps_u.iter().map(|&z| (z - offset) as i8).collect(),
            )
        } else {
            Tensor::from_u8(&[zps_u.len()], zps_u.iter().map(|&z| z as u8).collect())
        }
        .map_err(|e| self.err(n, e.to_string()))?;
        Ok(match per_axis {
            Some(_) => (
                Tensor::from_f32(&[p.scales.len()], p.scales.clone())
                    .map_err(|e| self.err(n, e.to_string()))?,
                zp_t,
            ),
            None => (
                Tensor::scalar_f32(p.scales[0]),
                zp_t.reshape(&[]).map_err(|e| self.err(n, e.to_string()))?,
            ),
        })
    }

    /// A constant input quantized to its stored integer type.
    fn quantize_constant(
        &self,
        n: NodeId,
        w: &Tensor,
        r: &Ranges,
        p: &QParams,
        steps: f32,
        per_axis: Option<usize>,
    ) -> Result<Tensor, ExportError> {
        let (ilv, ihv, offset) = (&r.lo, &r.hi, p.offset);
        let wv = w
            .as_f32()
            .map_err(|_| self.err(n, "constant input must be f32"))?;
        let c = ilv.len();
        let inner: usize = match per_axis {
            Some(a) => w.shape()[a + 1..].iter().product(),
            None => 1,
        };
        let q: Vec<i32> = wv
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let ch = if c == 1 { 0 } else { (i / inner.max(1)) % c };
                let (lo, hi) = (ilv[ch], ihv[ch]);
                let k = if v <= lo {
                    0.0
                } else if v > hi {
                    steps
                } else {
                    ((v - lo) / (hi - lo) * steps).round_ties_even()
                };
                k as i32
            })
            .collect();
        if p.signed {
            Tensor::from_i8(w.shape(), q.iter().map(|&k| (k - offset) as i8).collect())
        } else {
            Tensor::from_u8(w.shape(), q.iter().map(|&k| k as u8).collect())
        }
        .map_err(|e| self.err(n, e.to_string()))
    }
}
