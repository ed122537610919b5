//! Integer bit ops (BitShift, BitwiseAnd/Or/Xor/Not, BitCast), the cumulative ops (CumSum,
//! CumProd) and OneHot, EyeLike, Compress, NonZero, Unique, ReverseSequence, CenterCropPad
//! and Det.

use super::table::{Converted, Cx, Table};
use crate::tensor::{dtype_from_onnx, onnx_type_name};
use crate::ImportError;
use lpc_ir::*;

/// Registers this family's converters.
pub(super) fn register(t: &mut Table) {
    t.add("ImageDecoder", |cx, _| {
        let a = cx.a;
        cx.need(1)?;
        let f = a.string("pixel_format", "RGB")?;
        let pixel_format = match f.as_str() {
            "RGB" => PixelFormat::Rgb,
            "BGR" => PixelFormat::Bgr,
            "Grayscale" => PixelFormat::Grayscale,
            _ => {
                return Err(a.err(format!(
                    "pixel_format must be RGB, BGR or Grayscale, got '{f}'"
                )))
            }
        };
        Ok(Converted::Op(Op::ImageDecoder { pixel_format }))
    });
    t.add("TfIdfVectorizer", tf_idf_vectorizer);
    t.add("BitShift", |cx, _| {
        let a = cx.a;
        cx.need(2)?;
        Ok(Converted::Op(Op::Binary(
            match a.string("direction", "")?.as_str() {
                "LEFT" => BinaryOp::BitShiftLeft,
                "RIGHT" => BinaryOp::BitShiftRight,
                other => {
                    return Err(a.err(format!(
                        "attribute 'direction' must be LEFT or RIGHT, got '{other}'"
                    )))
                }
            },
        )))
    });
    t.add("BitwiseAnd", |_, _| {
        Ok(Converted::Op(Op::Binary(BinaryOp::BitwiseAnd)))
    });
    t.add("BitwiseOr", |_, _| {
        Ok(Converted::Op(Op::Binary(BinaryOp::BitwiseOr)))
    });
    t.add("BitwiseXor", |_, _| {
        Ok(Converted::Op(Op::Binary(BinaryOp::BitwiseXor)))
    });
    t.add("BitwiseNot", |_, _| {
        Ok(Converted::Op(Op::Unary(UnaryOp::BitwiseNot)))
    });
    t.add("BitCast", |cx, _| {
        let a = cx.a;
        if !a.has("to") {
            return Err(a.err("attribute 'to' is required"));
        }
        let to = a.int("to", 0)?;
        let to = dtype_from_onnx(to as i32).ok_or_else(|| {
            a.err(format!(
                "attribute 'to': {} is not supported",
                onnx_type_name(to as i32)
            ))
        })?;
        Ok(Converted::Op(Op::Unary(UnaryOp::BitCast { to })))
    });
    t.add("CumSum", |cx, _| {
        Ok(Converted::Op(Op::CumSum {
            exclusive: cx.a.bool("exclusive", false)?,
            reverse: cx.a.bool("reverse", false)?,
        }))
    });
    t.add("CumProd", |cx, _| {
        Ok(Converted::Op(Op::CumProd {
            exclusive: cx.a.bool("exclusive", false)?,
            reverse: cx.a.bool("reverse", false)?,
        }))
    });
    t.add("OneHot", |cx, _| {
        Ok(Converted::Op(Op::OneHot {
            axis: cx.a.int("axis", -1)?,
        }))
    });
    t.add("EyeLike", eye_like);
    t.add("Compress", |cx, _| {
        let a = cx.a;
        Ok(Converted::Op(Op::Compress {
            axis: a.has("axis").then(|| a.int("axis", 0)).transpose()?,
        }))
    });
    t.add("NonZero", |_, _| Ok(Converted::Op(Op::NonZero)));
    t.add("Einsum", |cx, _| {
        cx.need(1)?;
        let equation = cx.a.string("equation", "")?;
        if equation.is_empty() {
            return Err(cx.a.err("attribute 'equation' is required"));
        }
        Ok(Converted::Op(Op::Einsum {
            equation: equation.chars().filter(|c| !c.is_whitespace()).collect(),
        }))
    });
    t.add("RotaryEmbedding", |cx, _| {
        let a = cx.a;
        cx.need(3)?;
        let dim = a.int("rotary_embedding_dim", 0)?;
        let heads = a.int("num_heads", 0)?;
        if dim < 0 || heads < 0 {
            return Err(a.err("rotary_embedding_dim and num_heads must not be negative"));
        }
        Ok(Converted::Op(Op::RotaryEmbedding {
            interleaved: a.bool("interleaved", false)?,
            rotary_embedding_dim: dim as usize,
            num_heads: heads as usize,
        }))
    });
    t.add("TensorScatter", |cx, _| {
        let a = cx.a;
        cx.need(2)?;
        let circular = match a.string("mode", "linear")?.as_str() {
            "linear" => false,
            "circular" => true,
            m => return Err(a.err(format!("mode '{m}' is not 'linear' or 'circular'"))),
        };
        Ok(Converted::Op(Op::TensorScatter {
            axis: a.int("axis", -2)?,
            circular,
        }))
    });
    t.add("NonMaxSuppression", |cx, _| {
        cx.need(2)?;
        let c = cx.a.int("center_point_box", 0)?;
        if !(0..=1).contains(&c) {
            return Err(cx.a.err(format!("center_point_box {c} is not 0 or 1")));
        }
        Ok(Converted::Op(Op::NonMaxSuppression {
            center_point_box: c == 1,
        }))
    });
    t.add("LinearAttention", |cx, _| {
        let a = cx.a;
        cx.need(3)?;
        let heads = |k: &str| -> Result<usize, ImportError> {
            if !a.has(k) {
                return Err(a.err(format!("attribute '{k}' is required")));
            }
            match a.int(k, 0)? {
                n if n > 0 => Ok(n as usize),
                n => Err(a.err(format!("{k} {n} must be positive"))),
            }
        };
        // chunk_size is a tuning hint for chunked kernels: it does not change the result.
        let (gated, delta) = match a.string("update_rule", "gated_delta")?.as_str() {
            "linear" => (false, false),
            "gated" => (true, false),
            "delta" => (false, true),
            "gated_delta" => (true, true),
            r => {
                return Err(a.err(format!(
                    "update_rule '{r}' is not linear, gated, delta or gated_delta"
                )))
            }
        };
        Ok(Converted::Op(Op::LinearAttention {
            q_num_heads: heads("q_num_heads")?,
            kv_num_heads: heads("kv_num_heads")?,
            scale: a.float("scale", 0.0)?,
            gated,
            delta,
        }))
    });
    t.add("SwiGLU", |cx, _| {
        cx.need(2)?;
        Ok(Converted::Op(Op::SwiGlu {
            alpha: cx.a.float("alpha", 1.0)?,
        }))
    });
    t.add("RoiAlign", |cx, _| {
        let a = cx.a;
        cx.need(3)?;
        let size = |k: &str, default: i64, min: i64| -> Result<usize, ImportError> {
            match a.int(k, default)? {
                n if n >= min => Ok(n as usize),
                n => Err(a.err(format!("{k} {n} must be at least {min}"))),
            }
        };
        let max = match a.string("mode", "avg")?.as_str() {
            "avg" => false,
            "max" => true,
            m => return Err(a.err(format!("mode '{m}' is not 'avg' or 'max'"))),
        };
        // Opset 10 has no coordinate_transformation_mode and behaves as output_half_pixel.
        let default_ct = if cx.opset >= 16 {
            "half_pixel"
        } else {
            "output_half_pixel"
        };
        let half_pixel = match a
            .string("coordinate_transformation_mode", default_ct)?
            .as_str()
        {
            "half_pixel" => true,
            "output_half_pixel" => false,
            m => {
                return Err(a.err(format!(
                    "coordinate_transformation_mode '{m}' is not 'half_pixel' or \
                     'output_half_pixel'"
                )))
            }
        };
        Ok(Converted::Op(Op::RoiAlign {
            output_height: size("output_height", 1, 1)?,
            output_width: size("output_width", 1, 1)?,
            sampling_ratio: size("sampling_ratio", 0, 0)?,
            spatial_scale: a.float("spatial_scale", 1.0)?,
            max,
            half_pixel,
        }))
    });
    t.add("Unique", |cx, _| {
        let a = cx.a;
        Ok(Converted::Op(Op::Unique {
            sorted: a.bool("sorted", true)?,
            axis: a.has("axis").then(|| a.int("axis", 0)).transpose()?,
        }))
    });
    t.add("ReverseSequence", |cx, _| {
        let a = cx.a;
        let axis = |key: &str, default: i64| -> Result<usize, ImportError> {
            match a.int(key, default)? {
                v @ (0 | 1) => Ok(v as usize),
                v => Err(a.err(format!("attribute '{key}' must be 0 or 1, got {v}"))),
            }
        };
        let (batch_axis, time_axis) = (axis("batch_axis", 1)?, axis("time_axis", 0)?);
        if batch_axis == time_axis {
            return Err(a.err("attributes 'batch_axis' and 'time_axis' must differ"));
        }
        Ok(Converted::Op(Op::ReverseSequence {
            batch_axis,
            time_axis,
        }))
    });
    t.add("CenterCropPad", |cx, _| {
        Ok(Converted::Op(Op::CenterCropPad {
            axes: cx.a.ints("axes")?.unwrap_or_default(),
        }))
    });
    t.add("Det", |_, _| Ok(Converted::Op(Op::Det)));
    t.add("GridSample", |cx, _| {
        let a = cx.a;
        let mode = match a.string("mode", "linear")?.as_str() {
            "nearest" => ResizeMode::Nearest,
            "linear" | "bilinear" => ResizeMode::Linear,
            "cubic" | "bicubic" => ResizeMode::Cubic,
            other => return Err(a.err(format!("unsupported mode '{other}'"))),
        };
        let padding = match a.string("padding_mode", "zeros")?.as_str() {
            "zeros" => GridPadding::Zeros,
            "border" => GridPadding::Border,
            "reflection" => GridPadding::Reflection,
            other => return Err(a.err(format!("unsupported padding_mode '{other}'"))),
        };
        Ok(Converted::Op(Op::GridSample {
            mode,
            padding,
            align_corners: a.bool("align_corners", false)?,
        }))
    });
    t.add("AffineGrid", |cx, _| {
        Ok(Converted::Op(Op::AffineGrid {
            align_corners: cx.a.bool("align_corners", false)?,
        }))
    });
    t.add("Col2Im", |cx, _| {
        let a = cx.a;
        Ok(Converted::Op(Op::Col2Im {
            dilations: a.usizes("dilations")?,
            pads: a.usizes("pads")?,
            strides: a.usizes("strides")?,
        }))
    });
}

/// `EyeLike`: lpc's EyeLike keeps the input's dtype; a `dtype` attribute becomes a Cast of
/// the (0/1, so exactly representable) result.
fn eye_like(cx: &mut Cx, g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    let k = a.int("k", 0)?;
    if !a.has("dtype") {
        return Ok(Converted::Op(Op::EyeLike { k }));
    }
    let code = a.int("dtype", 0)?;
    let to = dtype_from_onnx(code as i32).ok_or_else(|| {
        a.err(format!(
            "attribute 'dtype': {} is not supported",
            onnx_type_name(code as i32)
        ))
    })?;
    cx.need(1)?;
    let vname = cx.me.fresh_value(&cx.first_out);
    let id = g.add_node(
        format!("{}__eye", cx.name),
        Op::EyeLike { k },
        &cx.ins[..1],
        vec![Output::named(vname)],
    );
    cx.ins = vec![Some(ValueRef::first(id))];
    Ok(Converted::Op(Op::Unary(UnaryOp::Cast { to })))
}

/// `TfIdfVectorizer`: the integer form (`pool_int64s`); lpc has no string tensors, so
/// `pool_strings` is refused.
fn tf_idf_vectorizer(cx: &mut Cx, _g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    cx.need(1)?;
    if a.has("pool_strings") {
        return Err(
            a.err("pool_strings (string n-grams) is not supported: lpc has no string tensors")
        );
    }
    let mode = match a.string("mode", "")?.as_str() {
        "TF" => TfIdfMode::Tf,
        "IDF" => TfIdfMode::Idf,
        "TFIDF" => TfIdfMode::TfIdf,
        m => return Err(a.err(format!("mode must be TF, IDF or TFIDF, got '{m}'"))),
    };
    let len = |k: &str| -> Result<usize, ImportError> {
        match a.int(k, -1)? {
            v if (0..=1 << 24).contains(&v) => Ok(v as usize),
            v => Err(a.err(format!(
                "attribute '{k}' is required and must not be negative, got {v}"
            ))),
        }
    };
    let weights = a.floats("weights")?.unwrap_or_default();
    let attrs = TfIdfAttrs {
        mode,
        min_gram_length: len("min_gram_length")?,
        max_gram_length: len("max_gram_length")?,
        max_skip_count: len("max_skip_count")?,
        ngram_counts: a.usizes("ngram_counts")?,
        ngram_indexes: a.usizes("ngram_indexes")?,
        pool: a.ints("pool_int64s")?.unwrap_or_default(),
        weights: Tensor::from_f32(&[weights.len()], weights)
            .map_err(|e| a.err(e.to_string()))?
            .into_arc(),
    };
    attrs.check().map_err(|e| a.err(e))?;
    Ok(Converted::Op(Op::TfIdfVectorizer(attrs)))
}
