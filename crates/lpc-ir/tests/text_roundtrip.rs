//! `.lir` round trips: every `Op` variant and attribute value, names, types, constants, weights.

use half::f16;
use lpc_ir::text::{
    parse, parse_with_weights, print, print_with_weights, read_lir, write_lir, Weights,
};
use lpc_ir::*;
use std::sync::Arc;

/// A variant id per `Op` variant and sub-enum variant. No catch-all: a new variant fails to
/// compile here until it gets an id (and then `every_variant_is_generated` demands a sample).
fn kind(op: &Op) -> usize {
    match op {
        Op::Input { .. } => 0,
        Op::Const(_) => 1,
        Op::Unary(u) => match u {
            UnaryOp::Abs => 2,
            UnaryOp::Neg => 3,
            UnaryOp::Ceil => 4,
            UnaryOp::Floor => 5,
            UnaryOp::Round => 6,
            UnaryOp::Sqrt => 7,
            UnaryOp::Reciprocal => 8,
            UnaryOp::Exp => 9,
            UnaryOp::Log => 10,
            UnaryOp::Erf => 11,
            UnaryOp::Sigmoid => 12,
            UnaryOp::Tanh => 13,
            UnaryOp::Relu => 14,
            UnaryOp::Identity => 15,
            UnaryOp::Elu { .. } => 16,
            UnaryOp::LeakyRelu { .. } => 17,
            UnaryOp::HardSigmoid { .. } => 18,
            UnaryOp::HardSwish => 19,
            UnaryOp::Gelu { .. } => 20,
            UnaryOp::Cast { .. } => 21,
            UnaryOp::Not => 76,
            UnaryOp::IsNaN => 77,
            UnaryOp::IsInf { .. } => 78,
            UnaryOp::Sign => 79,
            UnaryOp::Sin => 80,
            UnaryOp::Cos => 81,
            UnaryOp::Tan => 82,
            UnaryOp::Asin => 83,
            UnaryOp::Acos => 84,
            UnaryOp::Atan => 85,
            UnaryOp::Sinh => 86,
            UnaryOp::Cosh => 87,
            UnaryOp::Asinh => 88,
            UnaryOp::Acosh => 89,
            UnaryOp::Atanh => 90,
            UnaryOp::BitwiseNot => 123,
            UnaryOp::BitCast { .. } => 124,
            UnaryOp::Swish { .. } => 141,
            UnaryOp::ThresholdedRelu { .. } => 142,
            UnaryOp::Softplus => 143,
            UnaryOp::Selu { .. } => 144,
            UnaryOp::Softsign => 145,
            UnaryOp::Shrink { .. } => 146,
            UnaryOp::Celu { .. } => 147,
            UnaryOp::Mish => 148,
        },
        Op::Binary(b) => match b {
            BinaryOp::Add => 22,
            BinaryOp::Sub => 23,
            BinaryOp::Mul => 24,
            BinaryOp::Div => 25,
            BinaryOp::Pow => 26,
            BinaryOp::Mod => 116,
            BinaryOp::Fmod => 117,
            BinaryOp::Max => 27,
            BinaryOp::Min => 28,
            BinaryOp::Equal => 29,
            BinaryOp::PRelu => 30,
            BinaryOp::Greater => 91,
            BinaryOp::Less => 92,
            BinaryOp::GreaterOrEqual => 93,
            BinaryOp::LessOrEqual => 94,
            BinaryOp::And => 95,
            BinaryOp::Or => 96,
            BinaryOp::Xor => 97,
            BinaryOp::BitwiseAnd => 125,
            BinaryOp::BitwiseOr => 126,
            BinaryOp::BitwiseXor => 127,
            BinaryOp::BitShiftLeft => 128,
            BinaryOp::BitShiftRight => 129,
        },
        Op::Clip => 31,
        Op::Where => 32,
        Op::Conv(_) => 33,
        Op::ConvTranspose { .. } => 34,
        Op::ConvInteger(_) => 35,
        Op::QLinearConv(_) => 36,
        Op::MatMul => 37,
        Op::MatMulInteger => 38,
        Op::QLinearMatMul => 39,
        Op::Gemm { .. } => 40,
        Op::MaxPool { .. } => 41,
        Op::AveragePool { .. } => 42,
        Op::GlobalAveragePool => 43,
        Op::GlobalMaxPool => 44,
        Op::BatchNorm { .. } => 45,
        Op::LayerNorm { .. } => 46,
        Op::Softmax { .. } => 47,
        Op::LogSoftmax { .. } => 48,
        Op::Reduce { op, .. } => match op {
            ReduceOp::Max => 49,
            ReduceOp::Mean => 50,
            ReduceOp::Sum => 51,
            ReduceOp::Min => 105,
            ReduceOp::Prod => 106,
            ReduceOp::L1 => 107,
            ReduceOp::L2 => 108,
            ReduceOp::LogSum => 109,
            ReduceOp::LogSumExp => 110,
            ReduceOp::SumSquare => 111,
        },
        Op::Concat { .. } => 52,
        Op::Split { .. } => 53,
        Op::Flatten { .. } => 54,
        Op::Reshape { .. } => 55,
        Op::Squeeze => 56,
        Op::Unsqueeze => 57,
        Op::Transpose { .. } => 58,
        Op::Expand => 59,
        Op::Gather { .. } => 60,
        Op::ShapeOf { .. } => 61,
        Op::Slice => 62,
        Op::Pad { .. } => 63,
        Op::Resize(_) => 64,
        Op::Range => 65,
        Op::ConstantOfShape { .. } => 66,
        Op::QuantizeLinear { .. } => 67,
        Op::DequantizeLinear { .. } => 68,
        Op::DynamicQuantizeLinear => 69,
        Op::FakeQuantize { .. } => 70,
        Op::QConv(_) => 71,
        Op::QMatMul => 72,
        Op::Requantize => 73,
        Op::QAdd => 74,
        Op::Lut => 75,
        Op::GatherElements { .. } => 98,
        Op::GatherNd { .. } => 99,
        Op::ScatterElements { .. } => 100,
        Op::ScatterNd { .. } => 101,
        Op::Tile => 102,
        Op::CastLike => 112,
        Op::Size => 118,
        Op::ArgMax(_) => 119,
        Op::ArgMin(_) => 120,
        Op::TopK { .. } => 121,
        Op::Trilu { .. } => 122,
        Op::CumSum { .. } => 130,
        Op::CumProd { .. } => 131,
        Op::OneHot { .. } => 132,
        Op::EyeLike { .. } => 133,
        Op::Compress { .. } => 134,
        Op::NonZero => 135,
        Op::Unique { .. } => 136,
        Op::ReverseSequence { .. } => 137,
        Op::CenterCropPad { .. } => 138,
        Op::Det => 139,
        Op::Col2Im { .. } => 140,
        Op::GridSample { .. } => 164,
        Op::AffineGrid { .. } => 165,
        Op::DepthToSpace { .. } => 103,
        Op::SpaceToDepth { .. } => 104,
        Op::Lstm { .. } => 113,
        Op::Gru { .. } => 114,
        Op::Rnn(_) => 115,
        Op::Hardmax { .. } => 149,
        Op::LpNormalization { .. } => 152,
        Op::LpPool { .. } => 153,
        Op::InstanceNorm { .. } => 154,
        Op::NegativeLogLikelihoodLoss { .. } => 150,
        Op::SoftmaxCrossEntropyLoss { .. } => 151,
        Op::If { .. } => 155,
        Op::Loop { .. } => 156,
        Op::Scan(_) => 157,
        Op::Attention(_) => 158,
        Op::Lrn { .. } => 159,
        Op::GroupNorm { .. } => 160,
        Op::MeanVarianceNorm { .. } => 161,
        Op::MaxUnpool { .. } => 162,
        Op::CausalConvWithState { .. } => 163,
        Op::Dft { .. } => 166,
        Op::Window { .. } => 167,
        Op::Stft { .. } => 168,
        Op::RmsNorm { .. } => 169,
        Op::Einsum { .. } => 170,
        Op::RotaryEmbedding { .. } => 171,
        Op::TensorScatter { .. } => 172,
        Op::NonMaxSuppression { .. } => 173,
        Op::LinearAttention { .. } => 174,
        Op::SwiGlu { .. } => 175,
        Op::RoiAlign { .. } => 176,
        Op::DeformConv { .. } => 177,
        Op::ImageDecoder { .. } => 178,
        Op::TfIdfVectorizer(_) => 179,
        Op::MelWeightMatrix { .. } => 180,
    }
}
const KINDS: usize = 181;

/// Ids of the word-valued attribute enums, again without catch-alls; (enum, variant).
fn words(op: &Op) -> Vec<(usize, usize)> {
    let auto_pad = |a: &AutoPad| match a {
        AutoPad::NotSet => (0, 0),
        AutoPad::SameUpper => (0, 1),
        AutoPad::SameLower => (0, 2),
        AutoPad::Valid => (0, 3),
    };
    let dtype = |d: &DType| match d {
        DType::F32 => (1, 0),
        DType::F16 => (1, 1),
        DType::F64 => (1, 2),
        DType::I8 => (1, 3),
        DType::U8 => (1, 4),
        DType::I32 => (1, 5),
        DType::I64 => (1, 6),
        DType::Bool => (1, 7),
    };
    match op {
        Op::Conv(c)
        | Op::ConvInteger(c)
        | Op::QLinearConv(c)
        | Op::ConvTranspose { conv: c, .. } => {
            vec![auto_pad(&c.auto_pad)]
        }
        Op::MaxPool { pool, .. } | Op::AveragePool { pool, .. } | Op::LpPool { pool, .. } => {
            vec![auto_pad(&pool.auto_pad)]
        }
        Op::Unary(UnaryOp::Cast { to } | UnaryOp::BitCast { to }) => vec![dtype(to)],
        Op::QuantizeLinear { dtype: d, .. } => vec![dtype(d)],
        Op::ConstantOfShape { value } => vec![dtype(&value.dtype())],
        Op::ScatterElements { reduction, .. } | Op::ScatterNd { reduction } => {
            vec![scatter_reduction(reduction)]
        }
        Op::DepthToSpace { mode, .. } | Op::SpaceToDepth { mode, .. } => vec![match mode {
            BlockOrder::Dcr => (8, 0),
            BlockOrder::Crd => (8, 1),
        }],
        Op::Pad { mode } => vec![match mode {
            PadMode::Constant => (2, 0),
            PadMode::Reflect => (2, 1),
            PadMode::Edge => (2, 2),
            PadMode::Wrap => (2, 3),
        }],
        Op::Resize(r) => vec![
            match r.mode {
                ResizeMode::Nearest => (3, 0),
                ResizeMode::Linear => (3, 1),
                ResizeMode::Cubic => (3, 2),
            },
            match r.coord {
                CoordTransform::HalfPixel => (4, 0),
                CoordTransform::HalfPixelSymmetric => (4, 1),
                CoordTransform::PytorchHalfPixel => (4, 2),
                CoordTransform::AlignCorners => (4, 3),
                CoordTransform::Asymmetric => (4, 4),
                CoordTransform::TfCropAndResize => (4, 5),
            },
            match r.nearest {
                NearestMode::RoundPreferFloor => (5, 0),
                NearestMode::RoundPreferCeil => (5, 1),
                NearestMode::Floor => (5, 2),
                NearestMode::Ceil => (5, 3),
            },
            match r.policy {
                AspectPolicy::Stretch => (6, 0),
                AspectPolicy::NotLarger => (6, 1),
                AspectPolicy::NotSmaller => (6, 2),
            },
        ],
        Op::Lstm { rnn, .. } | Op::Gru { rnn, .. } | Op::Rnn(rnn) => rnn_words(rnn),
        Op::NegativeLogLikelihoodLoss { reduction, .. }
        | Op::SoftmaxCrossEntropyLoss { reduction, .. } => vec![match reduction {
            LossReduction::None => (11, 0),
            LossReduction::Sum => (11, 1),
            LossReduction::Mean => (11, 2),
        }],
        Op::Attention(a) => vec![
            match a.qk_output {
                QkOutput::Raw => (12, 0),
                QkOutput::Softcapped => (12, 1),
                QkOutput::Biased => (12, 2),
                QkOutput::Softmax => (12, 3),
            },
            match a.softmax_precision {
                None => (13, 0),
                Some(DType::F32) => (13, 1),
                Some(DType::F16) => (13, 2),
                Some(_) => (13, 3),
            },
        ],
        Op::GridSample { mode, padding, .. } => vec![
            match mode {
                ResizeMode::Nearest => (3, 0),
                ResizeMode::Linear => (3, 1),
                ResizeMode::Cubic => (3, 2),
            },
            match padding {
                GridPadding::Zeros => (14, 0),
                GridPadding::Border => (14, 1),
                GridPadding::Reflection => (14, 2),
            },
        ],
        Op::Window {
            window, dtype: d, ..
        } => vec![
            match window {
                WindowKind::Hann => (15, 0),
                WindowKind::Hamming => (15, 1),
                WindowKind::Blackman => (15, 2),
            },
            dtype(d),
        ],
        Op::ImageDecoder { pixel_format } => vec![match pixel_format {
            PixelFormat::Rgb => (16, 0),
            PixelFormat::Bgr => (16, 1),
            PixelFormat::Grayscale => (16, 2),
        }],
        Op::TfIdfVectorizer(a) => vec![match a.mode {
            TfIdfMode::Tf => (17, 0),
            TfIdfMode::Idf => (17, 1),
            TfIdfMode::TfIdf => (17, 2),
        }],
        Op::MelWeightMatrix { dtype: d } => vec![dtype(d)],
        _ => vec![],
    }
}
const WORD_COUNTS: [usize; 18] = [4, 8, 4, 3, 6, 4, 3, 5, 2, 3, 11, 3, 4, 4, 3, 3, 3, 3];

fn scatter_reduction(r: &ScatterReduction) -> (usize, usize) {
    match r {
        ScatterReduction::None => (7, 0),
        ScatterReduction::Add => (7, 1),
        ScatterReduction::Mul => (7, 2),
        ScatterReduction::Max => (7, 3),
        ScatterReduction::Min => (7, 4),
    }
}

/// The direction (enum 9) and the activations (enum 10) of a recurrent op.
fn rnn_words(r: &RnnAttrs) -> Vec<(usize, usize)> {
    let mut v = vec![match r.direction {
        RnnDirection::Forward => (9, 0),
        RnnDirection::Reverse => (9, 1),
        RnnDirection::Bidirectional => (9, 2),
    }];
    for a in &r.activations {
        v.push(match a {
            RnnActivation::Relu => (10, 0),
            RnnActivation::Tanh => (10, 1),
            RnnActivation::Sigmoid => (10, 2),
            RnnActivation::Affine { .. } => (10, 3),
            RnnActivation::LeakyRelu { .. } => (10, 4),
            RnnActivation::ThresholdedRelu { .. } => (10, 5),
            RnnActivation::ScaledTanh { .. } => (10, 6),
            RnnActivation::HardSigmoid { .. } => (10, 7),
            RnnActivation::Elu { .. } => (10, 8),
            RnnActivation::Softsign => (10, 9),
            RnnActivation::Softplus => (10, 10),
        });
    }
    v
}

/// Recurrent ops: defaults, every direction and activation, special floats in the parameters.
fn rnn_samples() -> Vec<Op> {
    use RnnActivation::*;
    let fs = special_f32s();
    let attrs = |direction, activations, clip, batch_first| RnnAttrs {
        direction,
        hidden_size: 3,
        activations,
        clip,
        batch_first,
    };
    let bi = RnnDirection::Bidirectional;
    vec![
        Op::Lstm {
            rnn: attrs(
                RnnDirection::Forward,
                rnn_default_activations(3, 1),
                None,
                false,
            ),
            input_forget: false,
        },
        Op::Lstm {
            rnn: attrs(
                bi,
                vec![
                    Sigmoid,
                    Tanh,
                    Relu,
                    HardSigmoid {
                        alpha: fs[4],
                        beta: fs[12],
                    },
                    Elu { alpha: fs[13] },
                    Softsign,
                ],
                Some(2.5),
                true,
            ),
            input_forget: true,
        },
        Op::Gru {
            rnn: attrs(
                RnnDirection::Reverse,
                vec![
                    Affine {
                        alpha: fs[3],
                        beta: fs[1],
                    },
                    ScaledTanh {
                        alpha: fs[5],
                        beta: fs[10],
                    },
                ],
                Some(fs[6]),
                false,
            ),
            linear_before_reset: true,
        },
        Op::Gru {
            rnn: attrs(bi, rnn_default_activations(2, 2), None, true),
            linear_before_reset: false,
        },
        Op::Rnn(attrs(RnnDirection::Forward, vec![Tanh], None, false)),
        Op::Rnn(attrs(
            bi,
            vec![
                LeakyRelu { alpha: fs[15] },
                ThresholdedRelu { alpha: fs[11] },
            ],
            Some(1e-7),
            false,
        )),
        Op::Rnn(attrs(RnnDirection::Reverse, vec![Softplus], None, true)),
    ]
}

/// A body graph: `n_in` inputs (some typed, one with a quoted name), a large constant (so
/// that bodies' weights go to the sidecar), and `n_out` outputs computed from them.
fn body(name: &str, n_in: usize, n_out: usize) -> Arc<Graph> {
    let mut b = Graph::new(name);
    let ins: Vec<ValueRef> = (0..n_in)
        .map(|i| {
            let ty = types()[i % types().len()].clone();
            b.add_input(
                if i == 1 {
                    "in put".to_string()
                } else {
                    format!("b{i}")
                },
                ty,
            )
        })
        .collect();
    let w = b.add_const("w", large_tensors()[0].clone());
    let mut last = w;
    let mut outs = vec![];
    for k in 0..n_out {
        let a = ins.get(k).copied().unwrap_or(w);
        let id = b.add_node(
            format!("add{k}"),
            Op::Binary(BinaryOp::Add),
            &[Some(a), Some(last)],
            vec![Output::named(format!("o{k}"))],
        );
        last = ValueRef::first(id);
        outs.push(last);
    }
    b.set_outputs(outs);
    Arc::new(b)
}

/// If, Loop and Scan with bodies, default and non-default attributes, and nesting (a Loop
/// whose body holds an If).
fn control_samples() -> Vec<Op> {
    let if_op = Op::If {
        then_branch: body("then", 2, 1),
        else_branch: body("else", 2, 1),
    };
    let mut nested = (*body("outer body", 3, 2)).clone();
    let ins: Vec<ValueRef> = nested
        .inputs()
        .iter()
        .map(|&n| ValueRef::first(n))
        .collect();
    let inner = nested.add_node(
        "inner_if",
        if_op.clone(),
        &[Some(ins[1]), Some(ins[0]), Some(ins[2])],
        vec![Output::named("picked")],
    );
    let first = nested.outputs()[0];
    nested.set_outputs(vec![first, ValueRef::first(inner)]);
    vec![
        if_op,
        Op::If {
            then_branch: Arc::new(Graph::new("")),
            else_branch: body("e", 0, 0),
        },
        Op::Loop {
            body: body("loop_body", 4, 3),
            captures: 0,
        },
        Op::Loop {
            body: Arc::new(nested),
            captures: 1,
        },
        Op::Scan(ScanAttrs {
            body: body("scan_body", 2, 2),
            captures: 0,
            num_scan_inputs: 1,
            input_axes: vec![],
            input_directions: vec![],
            output_axes: vec![],
            output_directions: vec![],
        }),
        Op::Scan(ScanAttrs {
            body: body("scan_body", 3, 2),
            captures: 1,
            num_scan_inputs: 1,
            input_axes: vec![-1],
            input_directions: vec![1],
            output_axes: vec![1, 0],
            output_directions: vec![0, 1],
        }),
    ]
}

/// Floats that must survive printing bit for bit.
fn special_f32s() -> Vec<f32> {
    vec![
        0.0,
        -0.0,
        1.0,
        -1.25,
        0.1,
        1e-7,
        3.4028235e38,
        -3.4028235e38,
        f32::MIN_POSITIVE,
        1e-45,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        f32::from_bits(0x7fc0_0001),
        f32::from_bits(0xffc0_0000),
        16777217.0,
    ]
}

fn conv_samples() -> Vec<ConvAttrs> {
    let mut v = vec![ConvAttrs::default()];
    for auto_pad in [
        AutoPad::NotSet,
        AutoPad::SameUpper,
        AutoPad::SameLower,
        AutoPad::Valid,
    ] {
        v.push(ConvAttrs {
            kernel: vec![3, 5],
            strides: vec![2, 1],
            pads: vec![1, 2, 3, 0],
            dilations: vec![1, 4],
            group: 7,
            auto_pad,
        });
    }
    v.push(ConvAttrs {
        group: 0,
        kernel: vec![0],
        ..ConvAttrs::default()
    });
    v
}

fn pool_samples() -> Vec<PoolAttrs> {
    let base = PoolAttrs {
        kernel: vec![],
        strides: vec![],
        pads: vec![],
        dilations: vec![],
        ceil_mode: false,
        auto_pad: AutoPad::NotSet,
    };
    let mut v = vec![base.clone()];
    for (i, auto_pad) in [
        AutoPad::NotSet,
        AutoPad::SameUpper,
        AutoPad::SameLower,
        AutoPad::Valid,
    ]
    .into_iter()
    .enumerate()
    {
        v.push(PoolAttrs {
            kernel: vec![2, 3, 1],
            strides: vec![2, 2, 2],
            pads: vec![0, 1, 0, 1, 0, 1],
            dilations: vec![1, 2, 3],
            ceil_mode: i % 2 == 0,
            auto_pad,
        });
    }
    v
}

fn small_tensors() -> Vec<Tensor> {
    vec![
        Tensor::from_f32(&[special_f32s().len()], special_f32s()).unwrap(),
        Tensor::from_f32(&[], vec![-0.0]).unwrap(),
        Tensor::from_f32(&[0, 3], vec![]).unwrap(),
        Tensor::from_f16(
            &[8],
            vec![
                f16::from_f32(0.1),
                f16::NEG_ZERO,
                f16::MAX,
                f16::MIN_POSITIVE_SUBNORMAL,
                f16::INFINITY,
                f16::NEG_INFINITY,
                f16::NAN,
                f16::from_bits(0xfe01),
            ],
        )
        .unwrap(),
        Tensor::from_f64(
            &[2, 4],
            vec![
                0.1,
                -0.0,
                f64::MAX,
                5e-324,
                f64::INFINITY,
                f64::NAN,
                f64::from_bits(0x7ff0_0000_0000_0001),
                1.0 / 3.0,
            ],
        )
        .unwrap(),
        Tensor::from_i8(&[4], vec![-128, 127, 0, -1]).unwrap(),
        Tensor::from_u8(&[2, 2], vec![0, 255, 1, 128]).unwrap(),
        Tensor::from_i32(&[3], vec![i32::MIN, i32::MAX, 0]).unwrap(),
        Tensor::from_i64(&[1, 1, 3], vec![i64::MIN, i64::MAX, -7]).unwrap(),
        Tensor::from_bool(&[3], vec![true, false, true]).unwrap(),
        Tensor::from_f32(&[4, 4], (0..16).map(|i| i as f32 * 0.37).collect()).unwrap(),
    ]
}

/// Tensors above the inline limit, one per dtype.
fn large_tensors() -> Vec<Tensor> {
    let n = 17;
    vec![
        Tensor::from_f32(&[n], (0..n).map(|i| i as f32 / 7.0).collect()).unwrap(),
        Tensor::from_f16(&[n], (0..n).map(|i| f16::from_f32(i as f32)).collect()).unwrap(),
        Tensor::from_f64(&[1, n], (0..n).map(|i| i as f64 / 3.0).collect()).unwrap(),
        Tensor::from_i8(&[n], (0..n).map(|i| i as i8 - 8).collect()).unwrap(),
        Tensor::from_u8(&[n], (0..n).map(|i| i as u8 * 15).collect()).unwrap(),
        Tensor::from_i32(&[n], (0..n).map(|i| i as i32 * 1000).collect()).unwrap(),
        Tensor::from_i64(&[n, 1], (0..n).map(|i| i as i64 - 3).collect()).unwrap(),
        Tensor::from_bool(&[n], (0..n).map(|i| i % 3 == 0).collect()).unwrap(),
        Tensor::from_f32(&[2, 3, 3, 3], (0..54).map(|i| (i as f32).sin()).collect()).unwrap(),
    ]
}

/// Every op variant, with default and non-default values of every attribute.
fn op_samples() -> Vec<Op> {
    let mut v = vec![];
    let fs = special_f32s();
    for u in [
        UnaryOp::Abs,
        UnaryOp::Neg,
        UnaryOp::Ceil,
        UnaryOp::Floor,
        UnaryOp::Round,
        UnaryOp::Sqrt,
        UnaryOp::Reciprocal,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Erf,
        UnaryOp::Sigmoid,
        UnaryOp::Tanh,
        UnaryOp::Relu,
        UnaryOp::Identity,
        UnaryOp::HardSwish,
        UnaryOp::Gelu { tanh: false },
        UnaryOp::Gelu { tanh: true },
        UnaryOp::Not,
        UnaryOp::IsNaN,
        UnaryOp::Sign,
        UnaryOp::Sin,
        UnaryOp::Cos,
        UnaryOp::Tan,
        UnaryOp::Asin,
        UnaryOp::Acos,
        UnaryOp::Atan,
        UnaryOp::Sinh,
        UnaryOp::Cosh,
        UnaryOp::Asinh,
        UnaryOp::Acosh,
        UnaryOp::Atanh,
        UnaryOp::Softplus,
        UnaryOp::Softsign,
        UnaryOp::Mish,
    ] {
        v.push(Op::Unary(u));
    }
    for &f in &fs {
        v.push(Op::Unary(UnaryOp::Swish { alpha: f }));
        v.push(Op::Unary(UnaryOp::ThresholdedRelu { alpha: f }));
        v.push(Op::Unary(UnaryOp::Celu { alpha: f }));
        v.push(Op::Unary(UnaryOp::Selu {
            alpha: f,
            gamma: SELU_GAMMA,
        }));
        v.push(Op::Unary(UnaryOp::Selu {
            alpha: SELU_ALPHA,
            gamma: f,
        }));
        v.push(Op::Unary(UnaryOp::Shrink {
            bias: f,
            lambd: 0.5,
        }));
        v.push(Op::Unary(UnaryOp::Shrink {
            bias: 0.0,
            lambd: f,
        }));
    }
    for detect_positive in [false, true] {
        for detect_negative in [false, true] {
            v.push(Op::Unary(UnaryOp::IsInf {
                detect_positive,
                detect_negative,
            }));
        }
    }
    for &f in &fs {
        v.push(Op::Unary(UnaryOp::Elu { alpha: f }));
        v.push(Op::Unary(UnaryOp::LeakyRelu { alpha: f }));
        v.push(Op::Unary(UnaryOp::HardSigmoid {
            alpha: f,
            beta: 0.5,
        }));
        v.push(Op::Unary(UnaryOp::HardSigmoid {
            alpha: 0.2,
            beta: f,
        }));
        v.push(Op::Gemm {
            alpha: f,
            beta: -f,
            trans_a: f > 0.0,
            trans_b: true,
        });
        v.push(Op::BatchNorm {
            epsilon: f,
            training: true,
            momentum: f,
        });
        v.push(Op::LayerNorm {
            axis: -3,
            epsilon: f,
        });
        v.push(Op::RmsNorm {
            axis: -2,
            epsilon: f,
        });
        v.push(Op::InstanceNorm { epsilon: f });
        v.push(Op::GroupNorm {
            num_groups: 2,
            epsilon: f,
        });
        v.push(Op::Lrn {
            alpha: f,
            beta: f,
            bias: f,
            size: 3,
        });
    }
    v.push(Op::Lrn {
        alpha: 1e-4,
        beta: 0.75,
        bias: 1.0,
        size: 1,
    });
    v.push(Op::MeanVarianceNorm {
        axes: vec![0, 2, 3],
    });
    v.push(Op::MeanVarianceNorm { axes: vec![-1] });
    v.push(Op::CausalConvWithState { silu: false });
    v.push(Op::CausalConvWithState { silu: true });
    v.push(Op::MaxUnpool {
        kernel: vec![2, 2],
        pads: vec![],
        strides: vec![],
    });
    v.push(Op::MaxUnpool {
        kernel: vec![3],
        pads: vec![1, 0],
        strides: vec![2],
    });
    v.push(Op::Unary(UnaryOp::Elu { alpha: 1.0 }));
    v.push(Op::Unary(UnaryOp::LeakyRelu { alpha: 0.01 }));
    v.push(Op::Gemm {
        alpha: 1.0,
        beta: 1.0,
        trans_a: false,
        trans_b: false,
    });
    v.push(Op::BatchNorm {
        epsilon: 1e-5,
        training: false,
        momentum: 0.9,
    });
    for to in DType::ALL {
        v.push(Op::Unary(UnaryOp::Cast { to }));
        v.push(Op::Unary(UnaryOp::BitCast { to }));
        v.push(Op::QuantizeLinear {
            q: QuantAxis {
                axis: -1,
                block_size: 32,
            },
            dtype: to,
        });
        v.push(Op::ConstantOfShape {
            value: Arc::new(Tensor::zeros(to, &[1])),
        });
    }
    for b in [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Pow,
        BinaryOp::Mod,
        BinaryOp::Fmod,
        BinaryOp::Max,
        BinaryOp::Min,
        BinaryOp::Equal,
        BinaryOp::PRelu,
        BinaryOp::Greater,
        BinaryOp::Less,
        BinaryOp::GreaterOrEqual,
        BinaryOp::LessOrEqual,
        BinaryOp::And,
        BinaryOp::Or,
        BinaryOp::Xor,
    ] {
        v.push(Op::Binary(b));
    }
    v.extend([
        Op::Clip,
        Op::Where,
        Op::MatMul,
        Op::MatMulInteger,
        Op::QLinearMatMul,
        Op::GlobalAveragePool,
        Op::GlobalMaxPool,
        Op::Squeeze,
        Op::Unsqueeze,
        Op::Expand,
        Op::Slice,
        Op::Range,
        Op::DynamicQuantizeLinear,
        Op::QMatMul,
        Op::Requantize,
        Op::QAdd,
        Op::Lut,
    ]);
    for c in conv_samples() {
        v.push(Op::Conv(c.clone()));
        v.push(Op::ConvInteger(c.clone()));
        v.push(Op::QLinearConv(c.clone()));
        v.push(Op::QConv(c.clone()));
        v.push(Op::ConvTranspose {
            conv: c.clone(),
            output_padding: vec![],
            output_shape: vec![],
        });
        v.push(Op::ConvTranspose {
            conv: c,
            output_padding: vec![1, 0],
            output_shape: vec![31, 17],
        });
    }
    for (i, p) in pool_samples().into_iter().enumerate() {
        v.push(Op::MaxPool {
            pool: p.clone(),
            storage_order: i as i64 % 2,
        });
        v.push(Op::AveragePool {
            pool: p.clone(),
            count_include_pad: i % 2 == 1,
        });
        v.push(Op::LpPool {
            pool: p,
            p: 1 + i as i64,
        });
    }
    for axis in [i64::MIN, -1, 0, 1, 3, i64::MAX] {
        v.push(Op::Softmax {
            axis,
            coerce_2d: axis > 0,
        });
        v.push(Op::LogSoftmax {
            axis,
            coerce_2d: axis <= 0,
        });
        v.push(Op::Hardmax {
            axis,
            coerce_2d: axis > 0,
        });
        v.push(Op::LpNormalization {
            axis,
            p: if axis > 0 { 1 } else { 2 },
        });
        v.push(Op::Concat { axis });
        v.push(Op::Flatten { axis });
        v.push(Op::Gather { axis });
        v.push(Op::Split {
            axis,
            num_outputs: 3,
        });
        v.push(Op::ShapeOf {
            start: axis,
            end: None,
        });
        v.push(Op::ShapeOf {
            start: 0,
            end: Some(axis),
        });
        v.push(Op::DequantizeLinear {
            q: QuantAxis {
                axis,
                block_size: 0,
            },
        });
        v.push(Op::LayerNorm {
            axis,
            epsilon: 1e-5,
        });
        v.push(Op::RmsNorm {
            axis,
            epsilon: 1e-5,
        });
    }
    for op in ReduceOp::ALL {
        for (keepdims, noop_with_empty_axes) in
            [(true, false), (false, true), (true, true), (false, false)]
        {
            v.push(Op::Reduce {
                op,
                keepdims,
                noop_with_empty_axes,
            });
        }
    }
    v.push(Op::Split {
        axis: 0,
        num_outputs: 0,
    });
    v.push(Op::Reshape { allowzero: false });
    v.push(Op::Reshape { allowzero: true });
    v.push(Op::Transpose { perm: vec![] });
    v.push(Op::Transpose {
        perm: vec![0, 3, 1, 2],
    });
    let reductions = [
        ScatterReduction::None,
        ScatterReduction::Add,
        ScatterReduction::Mul,
        ScatterReduction::Max,
        ScatterReduction::Min,
    ];
    for (k, reduction) in reductions.into_iter().enumerate() {
        v.push(Op::ScatterElements {
            axis: k as i64 - 2,
            reduction,
        });
        v.push(Op::ScatterNd { reduction });
    }
    v.push(Op::GatherElements { axis: -1 });
    v.push(Op::GatherNd { batch_dims: 0 });
    v.push(Op::GatherNd { batch_dims: 2 });
    v.push(Op::Tile);
    v.push(Op::CastLike);
    v.push(Op::Size);
    for (axis, keepdims, select_last_index) in [(0, true, false), (-1, false, true)] {
        let a = ArgAttrs {
            axis,
            keepdims,
            select_last_index,
        };
        v.push(Op::ArgMax(a));
        v.push(Op::ArgMin(a));
    }
    v.push(Op::TopK {
        axis: -1,
        largest: true,
    });
    v.push(Op::TopK {
        axis: 1,
        largest: false,
    });
    v.push(Op::Trilu { upper: true });
    v.push(Op::Trilu { upper: false });
    v.push(Op::Unary(UnaryOp::BitwiseNot));
    for b in [
        BinaryOp::BitwiseAnd,
        BinaryOp::BitwiseOr,
        BinaryOp::BitwiseXor,
        BinaryOp::BitShiftLeft,
        BinaryOp::BitShiftRight,
    ] {
        v.push(Op::Binary(b));
    }
    for exclusive in [false, true] {
        for reverse in [false, true] {
            v.push(Op::CumSum { exclusive, reverse });
            v.push(Op::CumProd { exclusive, reverse });
        }
    }
    v.push(Op::OneHot { axis: -1 });
    v.push(Op::OneHot { axis: 1 });
    v.push(Op::EyeLike { k: 0 });
    v.push(Op::EyeLike { k: -2 });
    v.push(Op::Compress { axis: None });
    v.push(Op::Compress { axis: Some(-1) });
    v.push(Op::NonZero);
    v.push(Op::Unique {
        sorted: true,
        axis: None,
    });
    v.push(Op::Unique {
        sorted: false,
        axis: Some(0),
    });
    v.push(Op::ReverseSequence {
        batch_axis: 1,
        time_axis: 0,
    });
    v.push(Op::ReverseSequence {
        batch_axis: 0,
        time_axis: 1,
    });
    v.push(Op::CenterCropPad { axes: vec![] });
    v.push(Op::CenterCropPad { axes: vec![0, -1] });
    v.push(Op::Det);
    v.push(Op::Einsum {
        equation: "i->i".into(),
    });
    v.push(Op::Einsum {
        equation: "...ii,bj->...b".into(),
    });
    v.push(Op::RotaryEmbedding {
        interleaved: false,
        rotary_embedding_dim: 0,
        num_heads: 0,
    });
    v.push(Op::RotaryEmbedding {
        interleaved: true,
        rotary_embedding_dim: 4,
        num_heads: 2,
    });
    v.push(Op::TensorScatter {
        axis: -2,
        circular: false,
    });
    v.push(Op::TensorScatter {
        axis: 1,
        circular: true,
    });
    v.push(Op::NonMaxSuppression {
        center_point_box: false,
    });
    v.push(Op::NonMaxSuppression {
        center_point_box: true,
    });
    v.push(Op::LinearAttention {
        q_num_heads: 4,
        kv_num_heads: 4,
        scale: 0.0,
        gated: true,
        delta: true,
    });
    v.push(Op::LinearAttention {
        q_num_heads: 8,
        kv_num_heads: 2,
        scale: 0.25,
        gated: false,
        delta: false,
    });
    v.push(Op::SwiGlu { alpha: 1.0 });
    v.push(Op::SwiGlu { alpha: 0.5 });
    v.push(Op::RoiAlign {
        output_height: 1,
        output_width: 1,
        sampling_ratio: 0,
        spatial_scale: 1.0,
        max: false,
        half_pixel: true,
    });
    v.push(Op::RoiAlign {
        output_height: 5,
        output_width: 7,
        sampling_ratio: 2,
        spatial_scale: 0.0625,
        max: true,
        half_pixel: false,
    });
    v.push(Op::DeformConv {
        conv: ConvAttrs::default(),
        offset_group: 1,
    });
    v.push(Op::DeformConv {
        conv: ConvAttrs {
            kernel: vec![3, 3],
            strides: vec![2, 1],
            pads: vec![1, 1, 1, 1],
            dilations: vec![1, 2],
            group: 2,
            auto_pad: AutoPad::NotSet,
        },
        offset_group: 2,
    });
    for pixel_format in [PixelFormat::Rgb, PixelFormat::Bgr, PixelFormat::Grayscale] {
        v.push(Op::ImageDecoder { pixel_format });
    }
    for (mode, w) in [
        (TfIdfMode::Tf, vec![]),
        (TfIdfMode::Idf, vec![0.5, 1.25, -3.0]),
        (TfIdfMode::TfIdf, vec![0.1, 0.2, 0.3]),
    ] {
        v.push(Op::TfIdfVectorizer(TfIdfAttrs {
            mode,
            min_gram_length: 1,
            max_gram_length: 2,
            max_skip_count: 3,
            ngram_counts: vec![0, 2],
            ngram_indexes: vec![2, 0, 1],
            pool: vec![7, -1, 7, 8],
            weights: Arc::new(Tensor::from_f32(&[w.len()], w).unwrap()),
        }));
    }
    v.push(Op::MelWeightMatrix { dtype: DType::F32 });
    v.push(Op::MelWeightMatrix { dtype: DType::F64 });
    v.push(Op::GridSample {
        mode: ResizeMode::Linear,
        padding: GridPadding::Zeros,
        align_corners: false,
    });
    v.push(Op::GridSample {
        mode: ResizeMode::Cubic,
        padding: GridPadding::Border,
        align_corners: true,
    });
    v.push(Op::GridSample {
        mode: ResizeMode::Nearest,
        padding: GridPadding::Reflection,
        align_corners: false,
    });
    for align_corners in [false, true] {
        v.push(Op::AffineGrid { align_corners });
    }
    v.push(Op::Col2Im {
        dilations: vec![],
        pads: vec![],
        strides: vec![],
    });
    v.push(Op::Dft {
        inverse: false,
        onesided: false,
    });
    v.push(Op::Dft {
        inverse: true,
        onesided: true,
    });
    v.push(Op::Stft { onesided: true });
    v.push(Op::Stft { onesided: false });
    for window in [WindowKind::Hann, WindowKind::Hamming, WindowKind::Blackman] {
        v.push(Op::Window {
            window,
            periodic: true,
            dtype: DType::F32,
        });
    }
    v.push(Op::Window {
        window: WindowKind::Hann,
        periodic: false,
        dtype: DType::F64,
    });
    v.push(Op::Col2Im {
        dilations: vec![1, 2],
        pads: vec![0, 1, 1, 0],
        strides: vec![2, 1],
    });
    for (k, reduction) in [LossReduction::None, LossReduction::Sum, LossReduction::Mean]
        .into_iter()
        .enumerate()
    {
        let ignore_index = [None, Some(-100), Some(i64::MIN)][k];
        v.push(Op::NegativeLogLikelihoodLoss {
            reduction,
            ignore_index,
        });
        v.push(Op::SoftmaxCrossEntropyLoss {
            reduction,
            ignore_index: [Some(0), None, Some(i64::MAX)][k],
        });
    }
    for mode in [BlockOrder::Dcr, BlockOrder::Crd] {
        v.push(Op::DepthToSpace { blocksize: 2, mode });
    }
    v.push(Op::SpaceToDepth {
        blocksize: 3,
        mode: BlockOrder::Crd,
    });
    for mode in [
        PadMode::Constant,
        PadMode::Reflect,
        PadMode::Edge,
        PadMode::Wrap,
    ] {
        v.push(Op::Pad { mode });
    }
    let modes = [ResizeMode::Nearest, ResizeMode::Linear, ResizeMode::Cubic];
    let coords = [
        CoordTransform::HalfPixel,
        CoordTransform::HalfPixelSymmetric,
        CoordTransform::PytorchHalfPixel,
        CoordTransform::AlignCorners,
        CoordTransform::Asymmetric,
        CoordTransform::TfCropAndResize,
    ];
    let nearests = [
        NearestMode::RoundPreferFloor,
        NearestMode::RoundPreferCeil,
        NearestMode::Floor,
        NearestMode::Ceil,
    ];
    let policies = [
        AspectPolicy::Stretch,
        AspectPolicy::NotLarger,
        AspectPolicy::NotSmaller,
    ];
    for i in 0..24 {
        v.push(Op::Resize(ResizeAttrs {
            mode: modes[i % 3],
            coord: coords[i % 6],
            nearest: nearests[i % 4],
            cubic_a: fs[i % fs.len()],
            exclude_outside: i % 2 == 1,
            extrapolation: fs[(i + 5) % fs.len()],
            antialias: i % 5 == 0,
            axes: if i % 3 == 0 {
                vec![]
            } else {
                vec![-1, 2, i as i64]
            },
            policy: policies[i % 3],
        }));
    }
    for t in small_tensors().into_iter().chain(large_tensors()) {
        v.push(Op::ConstantOfShape { value: Arc::new(t) });
    }
    for q in [
        QuantAxis {
            axis: 1,
            block_size: 0,
        },
        QuantAxis {
            axis: 0,
            block_size: 128,
        },
    ] {
        v.push(Op::QuantizeLinear {
            q: q.clone(),
            dtype: DType::I8,
        });
        v.push(Op::DequantizeLinear { q });
    }
    for levels in [0, 2, 255, 256, 65536, u32::MAX] {
        v.push(Op::FakeQuantize { levels });
    }
    v.extend(rnn_samples());
    v.extend(control_samples());
    v.extend(attention_samples());
    v.push(Op::Input { index: 5 });
    v.push(Op::Const(Arc::new(Tensor::scalar_f32(2.5))));
    v
}

/// Attention with default attributes and with each attribute and word value set.
fn attention_samples() -> Vec<Op> {
    let base = match OpKind::Attention.template() {
        Op::Attention(a) => a,
        _ => unreachable!(),
    };
    let mut v = vec![Op::Attention(base.clone())];
    let modes = [QkOutput::Softcapped, QkOutput::Biased, QkOutput::Softmax];
    let precisions = [Some(DType::F32), Some(DType::F16), Some(DType::F64)];
    for (qk_output, softmax_precision) in modes.into_iter().zip(precisions) {
        v.push(Op::Attention(AttentionAttrs {
            is_causal: true,
            q_num_heads: 8,
            kv_num_heads: 2,
            scale: Some(0.125),
            softcap: 30.0,
            softmax_precision,
            qk_output,
            left_window: 4,
            right_window: 0,
        }));
    }
    v
}

/// Output count for an op in the generated graphs (what the op would produce).
fn n_outputs(op: &Op) -> usize {
    match op {
        Op::MaxPool { .. } => 2,
        Op::BatchNorm { training: true, .. } | Op::LayerNorm { .. } | Op::DynamicQuantizeLinear => {
            3
        }
        Op::Split { num_outputs, .. } => *num_outputs,
        Op::Lstm { .. } => 3,
        Op::Gru { .. } | Op::Rnn(_) => 2,
        Op::Attention(_) => 4,
        Op::CausalConvWithState { .. } => 2,
        _ => 1,
    }
}

fn types() -> Vec<ValueType> {
    vec![
        ValueType::unknown(),
        ValueType::new(
            DType::F32,
            Shape(vec![
                Dim::Sym("N".into()),
                Dim::Known(8),
                Dim::Known(16),
                Dim::Known(16),
            ]),
        ),
        ValueType {
            dtype: Some(DType::I64),
            shape: None,
        },
        ValueType {
            dtype: None,
            shape: Some(Shape(vec![Dim::Known(3), Dim::Sym("batch size".into())])),
        },
        ValueType::new(DType::Bool, Shape(vec![])),
        ValueType::new(
            DType::U8,
            Shape(vec![
                Dim::Sym("".into()),
                Dim::Sym("3".into()),
                Dim::Sym("unk__7".into()),
                Dim::Sym("a\"b".into()),
            ]),
        ),
    ]
}

/// A graph holding every sample op, fed by inputs and earlier values, with absent slots.
fn op_graph() -> Graph {
    let mut g = Graph::new("all_ops");
    let x = g.add_input("x", types()[1].clone());
    let y = g.add_input("gpu_0/data_0", types()[3].clone());
    let mut avail = vec![x, y];
    for (i, op) in op_samples().into_iter().enumerate() {
        let (req, max) = op.arity();
        let slots = max.unwrap_or(req + 2);
        let inputs: Vec<Option<ValueRef>> = (0..slots)
            .map(|s| {
                if s >= req && (i + s) % 2 == 0 {
                    None
                } else {
                    Some(avail[(i * 7 + s * 3) % avail.len()])
                }
            })
            .collect();
        let outs = (0..n_outputs(&op))
            .map(|k| Output {
                name: format!("v{i}_{k}"),
                ty: types()[(i + k) % types().len()].clone(),
            })
            .collect();
        let name = if i % 3 == 0 {
            format!("node {i}")
        } else {
            format!("v{i}_0")
        };
        let id = g.add_node(name, op, &inputs, outs);
        for k in 0..g.node(id).outputs.len() {
            avail.push(ValueRef {
                node: id,
                output: k,
            });
        }
    }
    let last = *avail.last().unwrap();
    g.set_outputs(vec![last, x]);
    g
}

/// Asserts that `g` prints, parses back equal, and prints the same text again.
fn roundtrip(g: &Graph) -> String {
    let (text, w) = print_with_weights(g);
    let back = parse_with_weights(&text, &w).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let (text2, w2) = print_with_weights(&back);
    assert_eq!(text, text2, "second print differs");
    assert_eq!(w.len(), w2.len());
    // Graph's PartialEq compares floats with `==`: NaN never equals itself; the text equality
    // above is bitwise (NaNs print with their bits), and the Debug comparison below is structural.
    if !text.contains("nan") {
        assert!(back == *g, "parse(print(g)) != g\n{text}");
    }
    let debug = |g: &Graph| {
        let order = g.topo_order().unwrap();
        let pos = |v: ValueRef| (order.iter().position(|&n| n == v.node).unwrap(), v.output);
        let nodes: Vec<String> = order
            .iter()
            .map(|&n| {
                format!(
                    "{:?} {:?}",
                    g.node(n),
                    g.node_inputs(n)
                        .into_iter()
                        .map(|v| v.map(pos))
                        .collect::<Vec<_>>()
                )
            })
            .collect();
        let ins: Vec<_> = g
            .inputs()
            .iter()
            .map(|&n| pos(ValueRef::first(n)))
            .collect();
        let outs: Vec<_> = g.outputs().iter().map(|&v| pos(v)).collect();
        format!("{} {nodes:?} {ins:?} {outs:?}", g.name)
    };
    assert_eq!(debug(g), debug(&back));
    text
}

#[test]
fn every_variant_is_generated() {
    let samples = op_samples();
    let mut seen = [false; KINDS];
    let mut seen_words: Vec<Vec<bool>> = WORD_COUNTS.iter().map(|&n| vec![false; n]).collect();
    for op in &samples {
        seen[kind(op)] = true;
        for (e, w) in words(op) {
            seen_words[e][w] = true;
        }
    }
    let missing: Vec<usize> = (0..KINDS).filter(|&k| !seen[k]).collect();
    assert!(missing.is_empty(), "op kinds without samples: {missing:?}");
    for (e, s) in seen_words.iter().enumerate() {
        assert!(
            s.iter().all(|&b| b),
            "enum {e} has values without samples: {s:?}"
        );
    }
}

#[test]
fn every_op_roundtrips() {
    let g = op_graph();
    let text = roundtrip(&g);
    // Every op name appears in the text.
    for op in op_samples() {
        assert!(
            text.contains(&format!(" = {}", op.name())),
            "{} missing",
            op.name()
        );
    }
}

#[test]
fn each_op_alone_roundtrips() {
    // One small graph per sample, so that a failure names the op.
    for op in op_samples() {
        let mut g = Graph::new("one");
        let x = g.add_input("x", ValueType::unknown());
        let (req, max) = op.arity();
        let inputs: Vec<_> = (0..max.unwrap_or(req))
            .map(|s| if s < req { Some(x) } else { None })
            .collect();
        let outs = (0..n_outputs(&op))
            .map(|k| Output::named(format!("y{k}")))
            .collect();
        let id = g.add_node("n", op.clone(), &inputs, outs);
        let outs: Vec<_> = (0..g.node(id).outputs.len())
            .map(|k| ValueRef {
                node: id,
                output: k,
            })
            .collect();
        g.set_outputs(outs);
        let (text, w) = print_with_weights(&g);
        let back =
            parse_with_weights(&text, &w).unwrap_or_else(|e| panic!("{:?}: {e}\n{text}", op));
        assert_eq!(print(&back), print(&g), "{op:?}");
        let back_op = &back.node(back.topo_order().unwrap()[1]).op;
        assert_eq!(format!("{back_op:?}"), format!("{op:?}"));
    }
}

#[test]
fn constants_of_every_dtype_roundtrip() {
    let mut g = Graph::new("consts");
    let mut outs = vec![];
    for (i, t) in small_tensors()
        .into_iter()
        .chain(large_tensors())
        .enumerate()
    {
        outs.push(g.add_const(format!("c{i}"), t));
    }
    g.set_outputs(outs);
    let text = roundtrip(&g);
    assert!(text.contains("nan:0x7fc00001"), "{text}");
    assert!(text.contains("-0.0"), "{text}");
    assert!(text.contains("[true, false, true]"), "{text}");
    assert!(text.contains("[-128, 127, 0, -1]"), "{text}");
    assert!(
        text.contains(&"f32[4,4] [0.0, 0.37, ".to_string()),
        "16 elements are inline: {text}"
    );
    // Bit-exact content after the round trip.
    let (text, w) = print_with_weights(&g);
    assert_eq!(w.len(), large_tensors().len());
    let back = parse_with_weights(&text, &w).unwrap();
    for (&a, &b) in g.outputs().iter().zip(back.outputs()) {
        let (ta, tb) = (g.const_value(a).unwrap(), back.const_value(b).unwrap());
        assert_eq!(ta.to_le_bytes(), tb.to_le_bytes());
        assert_eq!(ta.shape(), tb.shape());
        assert_eq!(ta.dtype(), tb.dtype());
    }
}

#[test]
fn interned_and_duplicate_constants() {
    let mut g = Graph::new("interned");
    let x = g.add_input("x", ValueType::unknown());
    let t = Tensor::from_f32(&[2], vec![1.0, 2.0]).unwrap();
    let a = g.add_const("a", t.clone());
    let b = g.add_const("b", t.clone());
    assert_eq!(a, b, "add_const interns");
    // A second node with equal content, made without interning, stays a separate node.
    let c = g.add_node(
        "c",
        Op::Const(Arc::new(t.clone())),
        &[],
        vec![Output {
            name: "c".into(),
            ty: ValueType::unknown(),
        }],
    );
    let s = g.add_node(
        "s",
        Op::Binary(BinaryOp::Add),
        &[Some(a), Some(ValueRef::first(c))],
        vec![Output::named("s")],
    );
    let m = g.add_node(
        "m",
        Op::Binary(BinaryOp::Mul),
        &[Some(x), Some(ValueRef::first(s))],
        vec![Output::named("m")],
    );
    g.set_outputs(vec![ValueRef::first(m)]);
    roundtrip(&g);
    // The parsed graph interns its constants too.
    let mut back = parse(&print(&g)).unwrap();
    let n = back.len();
    let again = back.add_const("again", t);
    assert_eq!(back.len(), n);
    assert_eq!(back.value_name(again), "a");
}

#[test]
fn weird_names_and_types() {
    let names = [
        "gpu_0/conv1_1",
        "481",
        "",
        "with space",
        "quote\"back\\slash",
        "line\nbreak\ttab\rcr",
        "ünïcödé→",
        "\u{1}\u{7f}",
        "#not a comment",
        "%pct",
        "@at",
        "a.b.c",
        "_",
        "nan",
        "sha256:00",
    ];
    let mut g = Graph::new("weird graph/name\"");
    let x = g.add_input("in put", types()[5].clone());
    g.node_mut(x.node).name = "input node".into();
    let mut prev = x;
    for (i, n) in names.iter().enumerate() {
        let id = g.add_node(
            format!("node:{n}"),
            Op::Unary(UnaryOp::Relu),
            &[Some(prev)],
            vec![Output {
                name: n.to_string(),
                ty: types()[i % types().len()].clone(),
            }],
        );
        prev = ValueRef::first(id);
    }
    // A node with no outputs and an empty name, and one whose name equals its output's.
    g.add_node("", Op::Unary(UnaryOp::Identity), &[Some(prev)], vec![]);
    g.add_node("", Op::Unary(UnaryOp::Identity), &[Some(x)], vec![]);
    let id = g.add_node(
        "same",
        Op::Unary(UnaryOp::Neg),
        &[Some(prev)],
        vec![Output::named("same")],
    );
    g.set_outputs(vec![ValueRef::first(id), prev, prev]);
    let text = roundtrip(&g);
    assert!(text.contains("%\"gpu_0/conv1_1\""), "{text}");
    assert!(text.contains("%481 = relu"), "{text}");
    assert!(text.contains("u8[\"\",\"3\",unk__7,\"a\\\"b\"]"), "{text}");
    assert!(text.contains("() = identity"), "{text}");
}

#[test]
fn inputs_after_other_nodes_are_placed() {
    let mut g = Graph::new("late_inputs");
    let c = g.add_const("c", Tensor::scalar_f32(1.0));
    let a = g.add_input("a", ValueType::unknown());
    let m = g.add_node(
        "m",
        Op::Binary(BinaryOp::Add),
        &[Some(a), Some(c)],
        vec![Output::named("m")],
    );
    let b = g.add_input("b", ValueType::unknown());
    let n = g.add_node(
        "n",
        Op::Binary(BinaryOp::Add),
        &[Some(ValueRef::first(m)), Some(b)],
        vec![Output::named("n")],
    );
    g.set_outputs(vec![ValueRef::first(n)]);
    let text = roundtrip(&g);
    assert!(text.contains("  input %a\n"), "{text}");
    assert!(text.contains("  input %b\n"), "{text}");
    // The common case has no input lines.
    let g = op_graph();
    assert!(!print(&g).contains("  input %"));
}

#[test]
fn empty_graph_roundtrips() {
    let g = Graph::new("");
    let text = roundtrip(&g);
    assert_eq!(text, "graph @\"\"() -> () {\n  return\n}\n");
}

#[test]
fn hand_written_text_parses() {
    let text = r#"
# a comment line
graph @digits_cnn(%input: f32[N,1,16,16]) -> (%logits) {
  %w1 = const f32[2,1,1,1] [0.5, -1.25]   # trailing comment
  %b1 = const f32[2] [0.0, nan]
  %conv1_out = conv(%input, %w1, %b1) {strides=[1,1], pads=[0,0,0,0], group=1} : f32[N,2,16,16] @"conv1"
  %y, %idx = max_pool(%conv1_out) {kernel=[2,2], strides=[2,2]} : f32[N,2,8,8], i64[N,2,8,8]
  %c = clip(%y, _, %b1) : ?[*]
  %logits = reduce_mean(%c) {keepdims=false}
  return %logits
}
"#;
    let g = parse(text).unwrap();
    assert_eq!(g.name, "digits_cnn");
    assert_eq!(g.len(), 7);
    let conv = g.find_node("conv1").unwrap();
    assert_eq!(
        g.node(conv).op,
        Op::Conv(ConvAttrs {
            strides: vec![1, 1],
            pads: vec![0, 0, 0, 0],
            ..ConvAttrs::default()
        })
    );
    let clip = g.find_value("c").unwrap();
    assert_eq!(g.node_inputs(clip.node)[1], None);
    assert_eq!(g.node(clip.node).num_inputs, 3);
    let mp = g.find_value("idx").unwrap();
    assert_eq!(mp.output, 1);
    assert_eq!(g.value_type(mp).dtype, Some(DType::I64));
    roundtrip(&g);
}

#[test]
fn missing_weights_is_a_clear_error() {
    let mut g = Graph::new("w");
    let c = g.add_const("big", large_tensors()[0].clone());
    g.set_outputs(vec![c]);
    let text = print(&g);
    let e = parse(&text).unwrap_err();
    assert_eq!((e.line, e.col), (2, 24), "{e}");
    assert!(e.message.contains("no weights for constant sha256:"), "{e}");
    // Weights of another shape under that digest are refused too.
    let mut w = Weights::new();
    w.insert(Arc::new(large_tensors()[0].clone()));
    let bad = text.replace("f32[17]", "f32[17,1]");
    let e = parse_with_weights(&bad, &w).unwrap_err();
    assert!(e.message.contains("the text says f32[17, 1]"), "{e}");
}

#[test]
fn file_pair_roundtrips() {
    let dir = std::env::temp_dir().join(format!("lpc-text-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.lir");
    let mut g = Graph::new("files");
    let x = g.add_input("x", ValueType::unknown());
    let w = g.add_const("w", large_tensors()[8].clone());
    let y = g.add_node(
        "y",
        Op::Conv(ConvAttrs::default()),
        &[Some(x), Some(w)],
        vec![Output::named("y")],
    );
    g.set_outputs(vec![ValueRef::first(y)]);
    write_lir(&path, &g).unwrap();
    assert!(dir.join("model.lir.weights").exists());
    let back = read_lir(&path).unwrap();
    assert!(back == g);
    // Without large constants the sidecar goes away.
    let mut small = Graph::new("small");
    let x = small.add_input("x", ValueType::unknown());
    small.set_outputs(vec![x]);
    write_lir(&path, &small).unwrap();
    assert!(!dir.join("model.lir.weights").exists());
    assert!(read_lir(&path).unwrap() == small);
    // A corrupt sidecar is reported with its path.
    write_lir(&path, &g).unwrap();
    let wp = dir.join("model.lir.weights");
    let mut bytes = std::fs::read(&wp).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&wp, &bytes).unwrap();
    let e = read_lir(&path).unwrap_err().to_string();
    assert!(
        e.contains("model.lir.weights") && e.contains("digest"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn dot_output() {
    let g = parse(
        "graph @g(%x: f32[N,3]) -> (%z) {\n  %y = relu(%x) : f32[N,3] @\"r\\\"1\"\n  %z = add(%y, %x) : f32[N,3]\n  return %z\n}\n",
    )
    .unwrap();
    let d = to_dot(&g);
    assert!(d.starts_with("digraph \"g\" {"), "{d}");
    assert!(d.contains("n1 [label=\"relu\\nr\\\"1\"]"), "{d}");
    assert!(
        d.contains("n0 -> n1 [label=\"f32[N,3]\", headlabel=\"0\"]"),
        "{d}"
    );
    assert!(
        d.contains("n0 -> n2 [label=\"f32[N,3]\", headlabel=\"1\"]"),
        "{d}"
    );
    assert!(d.contains("n2 -> out0"), "{d}");
    assert_eq!(d.matches(" -> ").count(), 4, "{d}");
}

#[test]
fn doc_example_parses() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/ir-text-format.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let start = doc.find("```lir\n").unwrap() + 7;
    let block = &doc[start..start + doc[start..].find("```").unwrap()];
    let big = Tensor::from_f32(&[8, 1, 3, 3], (0..72).map(|i| i as f32 / 10.0).collect()).unwrap();
    let mut w = Weights::new();
    let digest = w.insert(Arc::new(big));
    let text: String = block
        .lines()
        .map(|l| {
            if l.contains("sha256:<") {
                format!("  %w1 = const f32[8,1,3,3] sha256:{digest}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let g = parse_with_weights(&text, &w).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(g.len(), 9);
    assert_eq!(
        g.node(g.find_node("gpu_0/flatten").unwrap()).outputs[0].name,
        "gpu_0/flat"
    );
    roundtrip(&g);
}
