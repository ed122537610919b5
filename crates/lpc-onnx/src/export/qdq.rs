//! FakeQuantize → QuantizeLinear + DequantizeLinear (or an i8 initializer + DequantizeLinear
//! for constant inputs): ranges, axis, scales and zero points from `lpc_ir::quant`, stored as
//! i8 or u8.

use super::attrs::attr_i;
use super::{ExportError, Exporter};
use lpc_ir::quant::{level_index, FqRanges, QParamError, QParams};
use lpc_ir::*;

/// How a FakeQuantize's levels are stored: i8 (`level - offset`) or u8 (the level itself).
struct Storage {
    /// Stored as i8 rather than u8.
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
        let r = self.ranges(n, levels)?;
        let x = ins[0].ok_or_else(|| self.err(n, "missing input"))?;
        let p = r.qparams().map_err(|e| self.err(n, e.to_string()))?;
        let per_axis = p.axis;
        let st = storage(&p, g.const_value(x).is_some());
        let (scale_t, zp_t) = self.qparam_tensors(n, &p, &st)?;
        let base = out.clone();
        let scale = self.init(&format!("{base}_scale"), &scale_t);
        let zp = self.init(&format!("{base}_zero_point"), &zp_t);
        let axis_attr = per_axis
            .map(|a| vec![attr_i("axis", a as i64)])
            .unwrap_or_default();
        if let Some(w) = g.const_value(x) {
            // Constant: quantize now.
            let qt = self.quantize_constant(n, w, &r, &st, per_axis)?;
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
    fn ranges(&self, n: NodeId, levels: u32) -> Result<FqRanges, ExportError> {
        let r = FqRanges::of_node(self.g, n).map_err(|e| match e {
            QParamError::NotConstant { .. } => {
                self.err(n, "FakeQuantize ranges must be constants to export as QDQ")
            }
            QParamError::RangesDiffer => {
                self.err(n, "input and output ranges differ; not expressible as QDQ")
            }
            e => self.err(n, e.to_string()),
        })?;
        if levels != 255 && levels != 256 {
            return Err(self.err(
                n,
                format!("levels {levels}: only 255 and 256 map to 8-bit QDQ"),
            ));
        }
        Ok(r)
    }

    /// The scale and zero-point initializers: vectors per axis, scalars per tensor.
    fn qparam_tensors(
        &self,
        n: NodeId,
        p: &QParams,
        st: &Storage,
    ) -> Result<(Tensor, Tensor), ExportError> {
        let (zps_u, offset) = (&p.zero_level, st.offset);
        let zp_t = if st.signed {
            Tensor::from_i8(
                &[zps_u.len()],
                zps_u.iter().map(|&z| (z - offset) as i8).collect(),
            )
        } else {
            Tensor::from_u8(&[zps_u.len()], zps_u.iter().map(|&z| z as u8).collect())
        }
        .map_err(|e| self.err(n, e.to_string()))?;
        Ok(match p.axis {
            Some(_) => (
                Tensor::from_f32(&[p.scale.len()], p.scale.clone())
                    .map_err(|e| self.err(n, e.to_string()))?,
                zp_t,
            ),
            None => (
                Tensor::scalar_f32(p.scale[0]),
                zp_t.reshape(&[]).map_err(|e| self.err(n, e.to_string()))?,
            ),
        })
    }

    /// A constant input quantized to its stored integer type.
    fn quantize_constant(
        &self,
        n: NodeId,
        w: &Tensor,
        r: &FqRanges,
        st: &Storage,
        per_axis: Option<usize>,
    ) -> Result<Tensor, ExportError> {
        let (ilv, ihv, offset) = (&r.lo, &r.hi, st.offset);
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
                level_index(v, ilv[ch], ihv[ch], r.levels) as i32
            })
            .collect();
        if st.signed {
            Tensor::from_i8(w.shape(), q.iter().map(|&k| (k - offset) as i8).collect())
        } else {
            Tensor::from_u8(w.shape(), q.iter().map(|&k| k as u8).collect())
        }
        .map_err(|e| self.err(n, e.to_string()))
    }
}

/// The stored type (the values are the same either way: an i8 code is the u8 level minus the
/// offset). Weights (levels 255, narrow) are i8. Per-tensor activations are u8: OpenVINO
/// 2026.4 computed garbage from an i8 activation quantizer in ppocr det (the FPN Concat
/// feeding the head conv; symmetric or not, SQNR vs FP32 0 dB), the same values as u8
/// ran right. Per-axis activations are u8 only when every range starts at 0: ONNX
/// Runtime 1.32 fuses a u8 per-axis QuantizeLinear after a Conv into a QLinearConv,
/// which then fails ("result zero point must be a scalar").
fn storage(p: &QParams, constant: bool) -> Storage {
    let offset = if p.levels == 255 { 127 } else { 128 };
    let signed =
        p.levels == 255 || ((constant || p.axis.is_some()) && p.zero_level.iter().any(|&z| z != 0));
    Storage { signed, offset }
}
