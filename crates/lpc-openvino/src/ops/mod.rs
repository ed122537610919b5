//! OpenVINO operations (opsets 1–13 as NNCF/OpenVINO emit them for CNNs) mapped onto lpc `Op`s:
//! the layer-type table, attribute readers and shared helpers here, the converters by op family
//! in `math`, `nn`, `array` and `quant`.

mod array;
mod logic;
mod math;
mod nn;
mod quant;

use crate::builder::Builder;
use crate::net::Layer;
use crate::OpenVinoError;
use lpc_ir::{AutoPad, BinaryOp, ConvAttrs, DType, Op, PoolAttrs, UnaryOp, ValueRef, ValueType};
use std::collections::HashMap;
use std::sync::LazyLock;

type R<T> = Result<T, OpenVinoError>;

/// A converter: one layer and its input values → one value per output port.
type Convert = fn(&mut Builder, &Layer, &[ValueRef]) -> R<Vec<ValueRef>>;

/// OpenVINO layer type → converter (opset versions are told apart inside the converters, which
/// read `Layer::opset`).
#[derive(Default)]
struct Table(HashMap<&'static str, Convert>);

impl Table {
    /// Registers `f` for layer type `ty`; each type is registered once.
    fn add(&mut self, ty: &'static str, f: Convert) {
        let old = self.0.insert(ty, f);
        debug_assert!(old.is_none(), "{ty} registered twice");
    }

    /// The converter of layer type `ty`.
    fn get(&self, ty: &str) -> Option<Convert> {
        self.0.get(ty).copied()
    }
}

/// Every supported layer type's converter, family by family, built on first use.
static TABLE: LazyLock<Table> = LazyLock::new(|| {
    let mut t = Table::default();
    math::register(&mut t);
    logic::register(&mut t);
    nn::register(&mut t);
    array::register(&mut t);
    quant::register(&mut t);
    t
});

/// The single output of a one-output layer.
fn one(v: ValueRef) -> R<Vec<ValueRef>> {
    Ok(vec![v])
}

/// Attribute access with errors naming the layer.
impl Layer {
    fn attr(&self, k: &str) -> Option<&str> {
        self.data.get(k).map(String::as_str)
    }

    fn req(&self, k: &str) -> R<&str> {
        self.attr(k)
            .ok_or_else(|| self.err(format!("missing attribute '{k}'")))
    }

    fn i64s(&self, k: &str) -> R<Vec<i64>> {
        let s = self.req(k)?.trim();
        if s.is_empty() {
            return Ok(vec![]);
        }
        s.split(',')
            .map(|x| {
                x.trim()
                    .parse::<i64>()
                    .map_err(|_| self.err(format!("attribute '{k}' has a bad value '{x}'")))
            })
            .collect()
    }

    fn usizes(&self, k: &str) -> R<Vec<usize>> {
        self.i64s(k)?
            .into_iter()
            .map(|x| {
                if (0..=(1 << 24)).contains(&x) {
                    Ok(x as usize)
                } else {
                    Err(self.err(format!("attribute '{k}' has invalid value {x}")))
                }
            })
            .collect()
    }

    /// Like `usizes`, empty when absent.
    fn usizes_or_empty(&self, k: &str) -> R<Vec<usize>> {
        if self.attr(k).is_none() {
            Ok(vec![])
        } else {
            self.usizes(k)
        }
    }

    fn i64_attr(&self, k: &str, default: i64) -> R<i64> {
        match self.attr(k) {
            None => Ok(default),
            Some(s) => s
                .trim()
                .parse()
                .map_err(|_| self.err(format!("attribute '{k}' is not an integer: '{s}'"))),
        }
    }

    fn f64_attr(&self, k: &str) -> R<f64> {
        let s = self.req(k)?;
        s.trim()
            .parse()
            .map_err(|_| self.err(format!("attribute '{k}' is not a number: '{s}'")))
    }

    fn f32_attr_or(&self, k: &str, default: f32) -> R<f32> {
        match self.attr(k) {
            None => Ok(default),
            Some(s) => s
                .trim()
                .parse()
                .map_err(|_| self.err(format!("attribute '{k}' is not a number: '{s}'"))),
        }
    }

    fn bool_attr(&self, k: &str, default: bool) -> R<bool> {
        match self.attr(k).map(|s| s.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(s) if s == "true" || s == "1" => Ok(true),
            Some(s) if s == "false" || s == "0" => Ok(false),
            Some(s) => Err(self.err(format!("attribute '{k}' is not a boolean: '{s}'"))),
        }
    }

    fn str_attr<'s>(&'s self, k: &str, default: &'s str) -> &'s str {
        self.attr(k).map(str::trim).unwrap_or(default)
    }

    /// Numpy (or no) broadcasting only.
    fn check_broadcast(&self) -> R<()> {
        match self
            .str_attr("auto_broadcast", "numpy")
            .to_ascii_lowercase()
            .as_str()
        {
            "numpy" | "none" => Ok(()),
            other => Err(self.err(format!(
                "auto_broadcast '{other}' is not supported (only numpy broadcasting)"
            ))),
        }
    }

    fn auto_pad(&self) -> R<AutoPad> {
        Ok(
            match self
                .str_attr("auto_pad", "explicit")
                .to_ascii_lowercase()
                .as_str()
            {
                "explicit" | "notset" | "" => AutoPad::NotSet,
                "same_upper" => AutoPad::SameUpper,
                "same_lower" => AutoPad::SameLower,
                "valid" => AutoPad::Valid,
                other => return Err(self.err(format!("unknown auto_pad '{other}'"))),
            },
        )
    }

    /// `pads_begin ++ pads_end` (empty when both are all zero or absent).
    fn pads(&self) -> R<Vec<usize>> {
        let b = self.usizes_or_empty("pads_begin")?;
        let e = self.usizes_or_empty("pads_end")?;
        if b.len() != e.len() {
            return Err(self.err(format!(
                "pads_begin has {} values, pads_end {}",
                b.len(),
                e.len()
            )));
        }
        if b.iter().chain(&e).all(|&p| p == 0) {
            return Ok(vec![]);
        }
        Ok(b.into_iter().chain(e).collect())
    }

    fn conv_attrs(&self, group: usize) -> R<ConvAttrs> {
        Ok(ConvAttrs {
            kernel: vec![],
            strides: self.usizes_or_empty("strides")?,
            pads: self.pads()?,
            dilations: self.usizes_or_empty("dilations")?,
            group,
            auto_pad: self.auto_pad()?,
        })
    }

    fn pool_attrs(&self) -> R<PoolAttrs> {
        let kernel = self.usizes("kernel")?;
        if kernel.is_empty() {
            return Err(self.err("kernel is empty"));
        }
        let ceil_mode = match self
            .str_attr("rounding_type", "floor")
            .to_ascii_lowercase()
            .as_str()
        {
            "floor" => false,
            "ceil" => true,
            other => {
                return Err(self.err(format!(
                    "rounding_type '{other}' is not supported (floor or ceil)"
                )))
            }
        };
        Ok(PoolAttrs {
            kernel,
            strides: self.usizes_or_empty("strides")?,
            pads: self.pads()?,
            dilations: self.usizes_or_empty("dilations")?,
            ceil_mode,
            auto_pad: self.auto_pad()?,
        })
    }

    /// Known dims of input port `k`, or an error saying what needs them.
    fn known_dims(&self, k: usize, why: &str) -> R<Vec<usize>> {
        let p = self
            .inputs
            .get(k)
            .ok_or_else(|| self.err(format!("missing input port {k}")))?;
        p.dims
            .iter()
            .map(|d| {
                d.ok_or_else(|| self.err(format!("{why} needs the static shape of input {k}")))
            })
            .collect()
    }

    /// Rank of input port `k`.
    fn rank(&self, k: usize) -> usize {
        self.inputs.get(k).map_or(0, |p| p.dims.len())
    }
}

fn need(l: &Layer, ins: &[ValueRef], min: usize, max: usize) -> R<()> {
    if ins.len() < min || ins.len() > max {
        let want = if min == max {
            format!("{min}")
        } else {
            format!("{min} to {max}")
        };
        return Err(l.err(format!("needs {want} inputs, got {}", ins.len())));
    }
    Ok(())
}

/// The integer values of a constant input.
fn const_ints(b: &Builder, l: &Layer, v: ValueRef, what: &str) -> R<Vec<i64>> {
    let t = b
        .const_of(v)
        .ok_or_else(|| l.err(format!("input '{what}' must be a constant")))?;
    if !t.dtype().is_int() {
        return Err(l.err(format!(
            "input '{what}' must be an integer tensor, got {}",
            t.dtype()
        )));
    }
    Ok(t.to_i64_vec())
}

/// The single float value of a constant input.
fn const_scalar(b: &Builder, l: &Layer, v: ValueRef, what: &str) -> R<f32> {
    let t = b
        .const_of(v)
        .ok_or_else(|| l.err(format!("input '{what}' must be a constant")))?;
    match t.to_f32_vec().as_slice() {
        [x] => Ok(*x),
        _ => Err(l.err(format!(
            "input '{what}' must hold one value, it has shape {:?}",
            t.shape()
        ))),
    }
}

/// An integer operand (axes, shapes, pads) as i64: constants are converted, others cast.
fn to_i64(b: &mut Builder, l: &Layer, v: ValueRef) -> ValueRef {
    if let Some(t) = b.const_of(v) {
        if t.dtype() == DType::I64 {
            return v;
        }
        return b.konst(&l.name, t.cast(DType::I64));
    }
    let ty = b.g.value_type(v).clone();
    if ty.dtype == Some(DType::I64) {
        return v;
    }
    b.aux(
        &l.name,
        Op::Unary(UnaryOp::Cast { to: DType::I64 }),
        &[Some(v)],
        ValueType {
            dtype: Some(DType::I64),
            shape: ty.shape,
        },
    )
}

/// The value range of an integer dtype.
fn int_range(d: DType) -> (f64, f64) {
    match d {
        DType::I8 => (-128.0, 127.0),
        DType::U8 => (0.0, 255.0),
        DType::I32 => (i32::MIN as f64, i32::MAX as f64),
        DType::I64 => (i64::MIN as f64, i64::MAX as f64),
        DType::Bool => (0.0, 1.0),
        DType::F32 | DType::F16 | DType::F64 => (f64::NEG_INFINITY, f64::INFINITY),
    }
}

fn binary(b: &mut Builder, l: &Layer, ins: &[ValueRef], op: BinaryOp) -> R<Vec<ValueRef>> {
    need(l, ins, 2, 2)?;
    l.check_broadcast()?;
    Ok(b.main(l, Op::Binary(op), &[Some(ins[0]), Some(ins[1])]))
}

fn unary(b: &mut Builder, l: &Layer, ins: &[ValueRef], op: UnaryOp) -> R<Vec<ValueRef>> {
    need(l, ins, 1, 1)?;
    Ok(b.main(l, Op::Unary(op), &[Some(ins[0])]))
}

/// Converts one layer; returns one value per output port.
/// Converts one layer; returns one value per output port.
pub(crate) fn convert(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
    match TABLE.get(l.ty.as_str()) {
        Some(f) => f(b, l, ins),
        None => Err(l.err(format!(
            "operation {} is not supported by lpc's OpenVINO reader",
            l.ty
        ))),
    }
}
