//! Differential tests of the f32 JIT kernels (fused elementwise chains, chain + quantize,
//! GlobalAveragePool) against lpc-ref on random graphs, shapes and special values.

use lpc_ir::{
    BinaryOp, DType, Graph, Op, Output, QuantAxis, Shape, Tensor, UnaryOp, ValueRef, ValueType,
};
use lpc_jit::kernels::float::{canonicalize, Operand};
use lpc_jit::{CodeModule, CompileOptions, CompiledModel, LowerOptions, VecTier};

mod common;
use common::Rng;

/// A value: mostly ordinary numbers around the activations' bends, some specials.
fn value(r: &mut Rng) -> f32 {
    match r.below(40) {
        0 => f32::NAN,
        1 => f32::INFINITY,
        2 => f32::NEG_INFINITY,
        3 => -0.0,
        4 => 0.0,
        5 => 3.0,
        6 => -3.0,
        7 => 6.0,
        8 => 1e-40,
        _ => (r.unit() - 0.5) * 16.0,
    }
}

fn tensor(r: &mut Rng, shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_f32(shape, (0..n).map(|_| value(r)).collect()).unwrap()
}

/// Equal bits, or both NaN, or both zeros (lpc-ref leaves the sign of a zero from
/// Relu/Max/Min/Clip to Rust's `f32::max`/`min`, which does not specify it).
fn same(a: &Tensor, b: &Tensor) -> Result<(), String> {
    if a.shape() != b.shape() || a.dtype() != b.dtype() {
        return Err(format!(
            "{:?} {} vs {:?} {}",
            a.shape(),
            a.dtype(),
            b.shape(),
            b.dtype()
        ));
    }
    if a.dtype() != DType::F32 {
        return if a.same_content(b) {
            Ok(())
        } else {
            Err(format!("{:?}\nvs\n{:?}", a.to_f32_vec(), b.to_f32_vec()))
        };
    }
    for (i, (x, y)) in a
        .as_f32()
        .unwrap()
        .iter()
        .zip(b.as_f32().unwrap())
        .enumerate()
    {
        let ok =
            x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()) || (*x == 0.0 && *y == 0.0);
        if !ok {
            return Err(format!("element {i}: jit {x:?} vs ref {y:?}"));
        }
    }
    Ok(())
}

fn f32_ty(shape: &[usize]) -> ValueType {
    ValueType::new(DType::F32, Shape::known(shape))
}

fn node(g: &mut Graph, name: &str, op: Op, ins: &[Option<ValueRef>]) -> ValueRef {
    ValueRef::first(g.add_node(name, op, ins, vec![Output::named(name)]))
}

fn compile(g: &Graph, inputs: &[Tensor], threads: usize, float: bool) -> CompiledModel {
    compile_tier(g, inputs, threads, float, VecTier::Auto)
}

fn compile_tier(
    g: &Graph,
    inputs: &[Tensor],
    threads: usize,
    float: bool,
    vec_tier: VecTier,
) -> CompiledModel {
    let shapes: Vec<Vec<usize>> = inputs.iter().map(|t| t.shape().to_vec()).collect();
    CompiledModel::compile(
        g,
        &shapes,
        &CompileOptions {
            threads: Some(threads),
            lower: LowerOptions {
                float,
                vec_tier,
                ..Default::default()
            },
        },
    )
    .expect("compile")
}

/// The float chain tiers of this host: xmm everywhere, zmm with AVX512F.
fn tiers() -> Vec<VecTier> {
    let mut t = vec![VecTier::Xmm];
    if CodeModule::new().unwrap().features().zmm_f32 {
        t.push(VecTier::Zmm);
    } else {
        eprintln!("VecTier::Zmm not tested: this host lacks AVX512F + BMI2");
    }
    t
}

/// Compiles `g` on every chain tier of the host and runs it: the xmm tier's outputs and step
/// kinds; every other tier's outputs must be the same, and its chains on that tier.
fn run_tiers(g: &Graph, inputs: &[Tensor], threads: usize) -> (Vec<Tensor>, Vec<String>) {
    let mut first: Option<(Vec<Tensor>, Vec<String>)> = None;
    for tier in tiers() {
        let m = compile_tier(g, inputs, threads, true, tier);
        let got = m.run(inputs).expect("jit");
        let steps = &m.plan().steps;
        let kinds: Vec<String> = steps.iter().map(|s| s.kind()).collect();
        if tier == VecTier::Zmm {
            for s in steps
                .iter()
                .filter(|s| s.kind().starts_with("jit float (chain"))
            {
                assert_eq!(s.tier(), Some("zmm"), "{}: {}", s.node, m.stats());
            }
        }
        match &first {
            None => first = Some((got, kinds)),
            Some((want, want_kinds)) => {
                assert_eq!(&kinds, want_kinds, "{tier:?}");
                for (a, b) in got.iter().zip(want) {
                    if let Err(e) = same(a, b) {
                        panic!("{tier:?} vs xmm: {e}\nplan:\n{}", m.stats());
                    }
                }
            }
        }
    }
    first.expect("at least one tier")
}

/// Runs `g` under lpc-ref and the JIT (every tier); returns the JIT's step kinds.
fn check(g: &Graph, inputs: &[Tensor], threads: usize, what: &str) -> Vec<String> {
    let want = lpc_ref::run(g, inputs).expect("ref");
    let (got, kinds) = run_tiers(g, inputs, threads);
    for (a, b) in got.iter().zip(&want) {
        if let Err(e) = same(a, b) {
            panic!("{what}: {e}\nsteps: {kinds:?}");
        }
    }
    kinds
}

fn rand_shape(r: &mut Rng) -> Vec<usize> {
    let rank = 1 + r.below(4);
    (0..rank)
        .map(|_| {
            if r.chance(0.3) {
                1 + r.below(45)
            } else {
                1 + r.below(6)
            }
        })
        .collect()
}

/// A shape broadcasting to `out`: same, scalar, one axis kept (per-channel), a prefix kept
/// (per-(n,c)), or a suffix kept (a row vector).
fn operand_shape(r: &mut Rng, out: &[usize]) -> Vec<usize> {
    let rank = out.len();
    match r.below(6) {
        0 | 1 => out.to_vec(),
        2 => {
            if r.chance(0.5) {
                vec![]
            } else {
                vec![1; r.below(rank + 1)]
            }
        }
        3 => {
            let ax = r.below(rank);
            (0..rank)
                .map(|d| if d == ax { out[d] } else { 1 })
                .collect()
        }
        4 => {
            let k = r.below(rank + 1);
            (0..rank).map(|d| if d < k { out[d] } else { 1 }).collect()
        }
        _ => {
            let k = r.below(rank + 1);
            out[k..].to_vec()
        }
    }
}

fn unary_op(r: &mut Rng) -> Op {
    match r.below(14) {
        0 => Op::Unary(UnaryOp::Relu),
        1 => Op::Unary(UnaryOp::Neg),
        2 => Op::Unary(UnaryOp::Abs),
        3 => Op::Unary(UnaryOp::HardSwish),
        4 => Op::Unary(UnaryOp::HardSigmoid {
            alpha: 0.2,
            beta: 0.5,
        }),
        5 => Op::Unary(UnaryOp::HardSigmoid {
            alpha: 1.0 / 6.0,
            beta: 0.5,
        }),
        6 => Op::Unary(UnaryOp::LeakyRelu { alpha: 0.1 }),
        7 => Op::Unary(UnaryOp::Sqrt),
        8 => Op::Unary(UnaryOp::Reciprocal),
        9 => Op::Unary(UnaryOp::Floor),
        10 => Op::Unary(UnaryOp::Ceil),
        11 => Op::Unary(UnaryOp::Round),
        12 => Op::Unary(UnaryOp::Identity),
        _ => Op::Clip,
    }
}

fn binary_op(r: &mut Rng) -> BinaryOp {
    [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Max,
        BinaryOp::Min,
        BinaryOp::PRelu,
    ][r.below(7)]
}

/// How a chain's final quantize is parameterised.
#[derive(Clone, Copy, Debug)]
enum Per {
    Tensor,
    Channel,
}

/// A random linear chain on input `x` of shape `out`: unary ops, and binary ops with a second
/// operand that is a new input (any broadcast), a constant, or `x` again. Returns the graph
/// (ending in a quantize to `quant`'s dtype, per tensor or, when asked and the rank allows,
/// per channel along axis 1), its inputs, and the float op count.
fn random_chain(
    r: &mut Rng,
    out: &[usize],
    len: usize,
    quant: Option<(DType, Per)>,
) -> (Graph, Vec<Tensor>) {
    let mut g = Graph::new("chain");
    let x = g.add_input("x", f32_ty(out));
    let mut inputs = vec![tensor(r, out)];
    let mut v = x;
    for k in 0..len {
        let name = format!("n{k}");
        if r.chance(0.4) {
            let op = unary_op(r);
            let ins = if let Op::Clip = op {
                let lo = if r.chance(0.8) {
                    Some(g.add_const("lo", Tensor::scalar_f32(0.0)))
                } else {
                    None
                };
                let hi = if r.chance(0.8) {
                    Some(g.add_const("hi", Tensor::scalar_f32(6.0)))
                } else {
                    None
                };
                vec![Some(v), lo, hi]
            } else {
                vec![Some(v)]
            };
            v = node(&mut g, &name, op, &ins);
        } else {
            let op = binary_op(r);
            let other = match r.below(5) {
                0 => g.add_const(format!("c{k}"), Tensor::scalar_f32(value(r))),
                1 => {
                    let s = operand_shape(r, out);
                    g.add_const(format!("c{k}"), tensor(r, &s))
                }
                2 => x,
                3 if r.chance(0.5) => {
                    let s = operand_shape(r, out);
                    dequantized_input(&mut g, r, &format!("in{k}"), &s, &mut inputs)
                }
                _ => {
                    let s = operand_shape(r, out);
                    inputs.push(tensor(r, &s));
                    g.add_input(format!("in{k}"), f32_ty(&s))
                }
            };
            let ins = if r.chance(0.5) || op == BinaryOp::PRelu {
                [Some(v), Some(other)]
            } else {
                [Some(other), Some(v)]
            };
            v = node(&mut g, &name, Op::Binary(op), &ins);
        }
    }
    if let Some((d, per)) = quant {
        let channels = match per {
            Per::Channel if out.len() >= 2 => Some(out[1]),
            Per::Channel | Per::Tensor => None,
        };
        let mut scale =
            || [0.05f32, 0.3, 1.0, 1e-3][r.below(4)] * (1.0 + r.below(100) as f32 / 37.0);
        let scales: Vec<f32> = (0..channels.unwrap_or(1)).map(|_| scale()).collect();
        let mut zp = || {
            if d == DType::U8 {
                r.below(256) as i64
            } else {
                r.below(256) as i64 - 128
            }
        };
        let zps: Vec<i64> = (0..channels.unwrap_or(1)).map(|_| zp()).collect();
        let (s, z) = match channels {
            None => (
                Tensor::scalar_f32(scales[0]),
                Tensor::scalar_i64(zps[0]).into_dtype(d),
            ),
            Some(c) => (
                Tensor::from_f32(&[c], scales).expect("scales"),
                Tensor::vec_i64(&zps).into_dtype(d),
            ),
        };
        let s = g.add_const("qs", s);
        let z = g.add_const("qz", z);
        v = node(
            &mut g,
            "q",
            Op::QuantizeLinear {
                q: QuantAxis {
                    axis: 1,
                    block_size: 0,
                },
                dtype: d,
            },
            &[Some(v), Some(s), Some(z)],
        );
    }
    g.set_outputs(vec![v]);
    (g, inputs)
}

/// A u8 or i8 graph input of shape `s` (random codes appended to `inputs`) through a
/// DequantizeLinear with one-element constant parameters.
fn dequantized_input(
    g: &mut Graph,
    r: &mut Rng,
    name: &str,
    s: &[usize],
    inputs: &mut Vec<Tensor>,
) -> ValueRef {
    let d = if r.chance(0.5) { DType::U8 } else { DType::I8 };
    let n: usize = s.iter().product();
    let codes: Vec<i64> = (0..n).map(|_| r.below(256) as i64).collect();
    let (codes, zp) = if d == DType::U8 {
        (codes, r.below(256) as i64)
    } else {
        (
            codes.iter().map(|c| c - 128).collect(),
            r.below(256) as i64 - 128,
        )
    };
    inputs.push(Tensor::from_i64(s, codes).unwrap().into_dtype(d));
    let x = g.add_input(name, ValueType::new(d, Shape::known(s)));
    let sc = g.add_const(
        format!("{name}_s"),
        Tensor::scalar_f32(0.01 + r.unit() * 0.2),
    );
    let z = g.add_const(format!("{name}_z"), Tensor::scalar_i64(zp).into_dtype(d));
    let q = QuantAxis {
        axis: 1,
        block_size: 0,
    };
    node(
        g,
        &format!("{name}_dq"),
        Op::DequantizeLinear { q },
        &[Some(x), Some(sc), Some(z)],
    )
}

/// Chains read a DequantizeLinear's u8/i8 input through when the chain is its only reader
/// (the residual `DQ(a) + DQ(b)` of folded models): no dequantize step, lpc-ref's values, odd
/// lengths for the tails; a DequantizeLinear with a reader outside the chain stays a step.
#[test]
fn dequantized_operands_are_read_through() {
    let mut r = Rng(0xd0_0dad);
    for shape in [
        vec![1usize, 8, 37],
        vec![2, 3, 5],
        vec![1, 64, 300],
        vec![5],
    ] {
        for quantize in [false, true] {
            let mut g = Graph::new("dq_add");
            let mut inputs = vec![];
            let a = dequantized_input(&mut g, &mut r, "a", &shape, &mut inputs);
            let b = dequantized_input(&mut g, &mut r, "b", &shape, &mut inputs);
            let mut y = node(
                &mut g,
                "add",
                Op::Binary(BinaryOp::Add),
                &[Some(a), Some(b)],
            );
            if quantize {
                let s = g.add_const("qs", Tensor::scalar_f32(0.07));
                let z = g.add_const("qz", Tensor::scalar_i64(3).into_dtype(DType::U8));
                let q = QuantAxis {
                    axis: 1,
                    block_size: 0,
                };
                y = node(
                    &mut g,
                    "q",
                    Op::QuantizeLinear {
                        q,
                        dtype: DType::U8,
                    },
                    &[Some(y), Some(s), Some(z)],
                );
            }
            g.set_outputs(vec![y]);
            let kinds = check(&g, &inputs, 1, &format!("{shape:?}"));
            let want = if quantize {
                "jit float (chain of 1 + quantize)"
            } else {
                "jit float (chain of 1)"
            };
            assert_eq!(kinds, [want], "{shape:?}");
        }
    }
    // `a` also read by a graph output: it stays a dequantize step.
    let mut g = Graph::new("dq_shared");
    let mut inputs = vec![];
    let a = dequantized_input(&mut g, &mut r, "a", &[3, 17], &mut inputs);
    let e = node(&mut g, "e", Op::Unary(UnaryOp::Relu), &[Some(a)]);
    g.set_outputs(vec![e, a]);
    let kinds = check(&g, &inputs, 1, "shared");
    assert_eq!(
        kinds,
        ["jit elementwise (dequantize)", "jit float (chain of 1)"]
    );
}

/// `Where(IsNaN(x), 0, x)` (the NaN guard exporters put after a masked Softmax) is one chain
/// operation with its IsNaN; an IsNaN read elsewhere too keeps the nodes on lpc-ref.
#[test]
fn nan_replacement_is_a_chain_op() {
    let mut r = Rng(0x4a4);
    let shape = [2usize, 3, 41];
    for shared in [false, true] {
        let mut g = Graph::new("nan_to");
        let x = g.add_input("x", f32_ty(&shape));
        let e = node(&mut g, "e", Op::Unary(UnaryOp::Relu), &[Some(x)]);
        let isnan = node(&mut g, "isnan", Op::Unary(UnaryOp::IsNaN), &[Some(e)]);
        let zero = g.add_const("zero", Tensor::scalar_f32(0.25));
        let w = node(&mut g, "w", Op::Where, &[Some(isnan), Some(zero), Some(e)]);
        g.set_outputs(if shared { vec![w, isnan] } else { vec![w] });
        let t = tensor(&mut r, &shape);
        assert!(t.to_f32_vec().iter().any(|v| v.is_nan()));
        let kinds = check(&g, &[t], 1, "nan_to");
        if shared {
            assert!(kinds.iter().any(|k| k == "fallback:where"), "{kinds:?}");
        } else {
            assert_eq!(kinds, ["jit float (chain of 2)"]);
        }
    }
}

#[test]
fn random_chains_match_ref() {
    let mut r = Rng(0x5eed_f10a7);
    let mut fused = 0;
    for case in 0..300 {
        let out = rand_shape(&mut r);
        let len = 1 + r.below(6);
        let quant = match r.below(6) {
            0 => Some((DType::U8, Per::Tensor)),
            1 => Some((DType::I8, Per::Tensor)),
            2 => Some((DType::U8, Per::Channel)),
            3 => Some((DType::I8, Per::Channel)),
            _ => None,
        };
        let (g, inputs) = random_chain(&mut r, &out, len, quant);
        let threads = 1 + r.below(2);
        let kinds = check(&g, &inputs, threads, &format!("case {case}, shape {out:?}"));
        // Every op of a linear chain with a supported broadcast is in one kernel.
        let floats: Vec<&String> = kinds
            .iter()
            .filter(|k| k.starts_with("jit float"))
            .collect();
        if kinds.len() == 1 && floats.len() == 1 {
            fused += 1;
            let want = match quant {
                Some(_) => format!("jit float (chain of {len} + quantize)"),
                None => format!("jit float (chain of {len})"),
            };
            assert_eq!(floats[0], &want, "case {case}");
        }
    }
    assert!(
        fused > 200,
        "only {fused} of 300 chains fused into one kernel"
    );
}

#[test]
fn large_chains_split_over_threads_match_ref() {
    let mut r = Rng(77);
    for (k, out) in [vec![1, 200, 61, 7], vec![3, 5, 4099], vec![70001]]
        .into_iter()
        .enumerate()
    {
        for quant in [
            None,
            Some((DType::U8, Per::Tensor)),
            Some((DType::I8, Per::Channel)),
        ] {
            let (g, inputs) = random_chain(&mut r, &out, 5, quant);
            check(&g, &inputs, 2, &format!("large case {k}"));
        }
    }
}

/// HardSwish as ppocr writes it, and the squeeze-excite scale: `q(x·clip(x+3, 0, 6)/6)` and
/// `q(h · hardsigmoid(s))` with `s` of shape [N,C,1,1].
#[test]
fn hardswish_and_squeeze_excite_fuse() {
    let mut r = Rng(3);
    for shape in [[1usize, 8, 24, 96], [2, 5, 3, 7], [1, 200, 3, 12]] {
        let mut g = Graph::new("hs");
        let x = g.add_input("x", f32_ty(&shape));
        let se = [shape[0], shape[1], 1, 1];
        let s = g.add_input("s", f32_ty(&se));
        let three = g.add_const("three", Tensor::scalar_f32(3.0));
        let zero = g.add_const("zero", Tensor::scalar_f32(0.0));
        let six = g.add_const("six", Tensor::scalar_f32(6.0));
        let a = node(
            &mut g,
            "add",
            Op::Binary(BinaryOp::Add),
            &[Some(x), Some(three)],
        );
        let c = node(&mut g, "clip", Op::Clip, &[Some(a), Some(zero), Some(six)]);
        let m = node(
            &mut g,
            "mul",
            Op::Binary(BinaryOp::Mul),
            &[Some(x), Some(c)],
        );
        let h = node(
            &mut g,
            "div",
            Op::Binary(BinaryOp::Div),
            &[Some(m), Some(six)],
        );
        let gap = node(&mut g, "gap", Op::GlobalAveragePool, &[Some(h)]);
        let hs = node(
            &mut g,
            "hsig",
            Op::Unary(UnaryOp::HardSigmoid {
                alpha: 0.2,
                beta: 0.5,
            }),
            &[Some(s)],
        );
        let y = node(
            &mut g,
            "scale",
            Op::Binary(BinaryOp::Mul),
            &[Some(h), Some(hs)],
        );
        let qs = g.add_const("qs", Tensor::scalar_f32(0.02));
        let qz = g.add_const("qz", Tensor::scalar_i64(3).into_dtype(DType::U8));
        let q = node(
            &mut g,
            "q",
            Op::QuantizeLinear {
                q: QuantAxis {
                    axis: 1,
                    block_size: 0,
                },
                dtype: DType::U8,
            },
            &[Some(y), Some(qs), Some(qz)],
        );
        g.set_outputs(vec![q, gap]);
        let inputs = [tensor(&mut r, &shape), tensor(&mut r, &se)];
        let kinds = check(&g, &inputs, 1, &format!("{shape:?}"));
        assert_eq!(
            kinds,
            [
                "jit float (chain of 4)",
                "jit float (global_average_pool)",
                "jit float (chain of 1)",
                "jit float (chain of 1 + quantize)"
            ],
            "{shape:?}"
        );
    }
}

#[test]
fn global_average_pool_is_bit_exact() {
    let mut r = Rng(11);
    for case in 0..60 {
        let rank = 3 + r.below(3);
        let shape: Vec<usize> = (0..rank)
            .map(|d| match d {
                0 => 1 + r.below(3),
                1 => 1 + r.below(13),
                _ => {
                    let m = if r.chance(0.3) { 40 } else { 6 };
                    1 + r.below(m)
                }
            })
            .collect();
        let mut g = Graph::new("gap");
        let x = g.add_input("x", f32_ty(&shape));
        let y = node(&mut g, "gap", Op::GlobalAveragePool, &[Some(x)]);
        g.set_outputs(vec![y]);
        // Mostly finite values so the sums are interesting; some cases with specials.
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| {
                if case % 4 == 0 {
                    value(&mut r)
                } else {
                    (r.unit() - 0.3) * 1e3
                }
            })
            .collect();
        let t = Tensor::from_f32(&shape, v).unwrap();
        let kinds = check(&g, &[t], 1 + case % 2, &format!("gap {shape:?}"));
        assert_eq!(kinds, ["jit float (global_average_pool)"]);
    }
}

#[test]
fn unsupported_broadcasts_fall_back_and_stay_correct() {
    let mut r = Rng(5);
    // [2,1,3] against [1,4,1]: neither row, column nor full on any split.
    let mut g = Graph::new("outer");
    let a = g.add_input("a", f32_ty(&[2, 1, 3]));
    let b = g.add_input("b", f32_ty(&[1, 4, 1]));
    let y = node(
        &mut g,
        "add",
        Op::Binary(BinaryOp::Add),
        &[Some(a), Some(b)],
    );
    let z = node(&mut g, "relu", Op::Unary(UnaryOp::Relu), &[Some(y)]);
    g.set_outputs(vec![z]);
    let inputs = [tensor(&mut r, &[2, 1, 3]), tensor(&mut r, &[1, 4, 1])];
    let kinds = check(&g, &inputs, 1, "outer add");
    assert_eq!(kinds, ["fallback:add", "jit float (chain of 1)"]);
    // An op without a chain formula (Log) splits the chain around it.
    let mut g = Graph::new("log");
    let x = g.add_input("x", f32_ty(&[3, 37]));
    let a = node(&mut g, "abs", Op::Unary(UnaryOp::Abs), &[Some(x)]);
    let e = node(&mut g, "log", Op::Unary(UnaryOp::Log), &[Some(a)]);
    let c = node(&mut g, "neg", Op::Unary(UnaryOp::Neg), &[Some(e)]);
    g.set_outputs(vec![c]);
    let kinds = check(&g, &[tensor(&mut r, &[3, 37])], 1, "log");
    assert_eq!(
        kinds,
        [
            "jit float (chain of 1)",
            "fallback:log",
            "jit float (chain of 1)"
        ]
    );
}

#[test]
fn shared_values_are_not_absorbed() {
    let mut r = Rng(9);
    // `h` feeds two consumers and is also a graph output: it gets its own step.
    let mut g = Graph::new("shared");
    let x = g.add_input("x", f32_ty(&[2, 3, 5]));
    let h = node(&mut g, "h", Op::Unary(UnaryOp::HardSwish), &[Some(x)]);
    let a = node(&mut g, "a", Op::Binary(BinaryOp::Mul), &[Some(h), Some(h)]);
    let b = node(&mut g, "b", Op::Unary(UnaryOp::Neg), &[Some(a)]);
    g.set_outputs(vec![b, h]);
    let kinds = check(&g, &[tensor(&mut r, &[2, 3, 5])], 1, "shared");
    assert_eq!(kinds, ["jit float (chain of 1)", "jit float (chain of 2)"]);
}

#[test]
fn float_kernels_off_is_all_fallback() {
    let mut r = Rng(13);
    let (g, inputs) = random_chain(&mut r, &[2, 3, 4, 5], 4, None);
    let m = compile(&g, &inputs, 1, false);
    // Every float op on lpc-ref (a dequantized input may still take the integer kernel).
    assert!(m
        .plan()
        .steps
        .iter()
        .all(|s| s.kind().starts_with("fallback") || s.kind() == "jit elementwise (dequantize)"));
}

#[test]
fn canonical_splits() {
    let out = [2, 8, 5, 7];
    // Same shape and scalars: one row of everything.
    assert_eq!(
        canonicalize(&out, &[out.to_vec(), vec![], vec![1, 1]]),
        Some((
            1,
            560,
            vec![
                Operand::Full,
                Operand::Row { period: 1 },
                Operand::Row { period: 1 }
            ]
        ))
    );
    // Per-channel and per-(n,c): rows of H·W.
    assert_eq!(
        canonicalize(&out, &[out.to_vec(), vec![1, 8, 1, 1], vec![2, 8, 1, 1]]),
        Some((
            16,
            35,
            vec![
                Operand::Full,
                Operand::Row { period: 8 },
                Operand::Row { period: 16 }
            ]
        ))
    );
    // Trailing vectors are columns.
    assert_eq!(
        canonicalize(&out, &[vec![5, 7]]),
        Some((16, 35, vec![Operand::Col]))
    );
    assert_eq!(
        canonicalize(&out, &[vec![7]]),
        Some((80, 7, vec![Operand::Col]))
    );
    // Both at once only fit as one-element rows (correct, if slow).
    assert_eq!(
        canonicalize(&out, &[vec![5, 7], vec![7]]),
        Some((
            560,
            1,
            vec![Operand::Row { period: 35 }, Operand::Row { period: 7 }]
        ))
    );
    // Not expressible: [2,1,3] with [1,4,1].
    assert_eq!(
        canonicalize(&[2, 4, 3], &[vec![2, 1, 3], vec![1, 4, 1]]),
        None
    );
    // Not broadcastable at all.
    assert_eq!(canonicalize(&[2, 4], &[vec![3, 4]]), None);
}

#[test]
fn max_pool_f32_is_bit_exact_or_falls_back() {
    let mut r = Rng(21);
    let mut jit = 0;
    for case in 0..80 {
        let (kh, kw) = (1 + r.below(3), 1 + r.below(3));
        let (sh, sw) = (1 + r.below(3), 1 + r.below(3));
        let shape = [
            1 + r.below(2),
            1 + r.below(9),
            kh + r.below(12),
            kw + r.below(30),
        ];
        let padded = r.chance(0.2);
        let attrs = lpc_ir::PoolAttrs {
            kernel: vec![kh, kw],
            strides: vec![sh, sw],
            pads: if padded {
                vec![kh / 2, kw / 2, kh / 2, kw / 2]
            } else {
                vec![]
            },
            dilations: vec![],
            ceil_mode: r.chance(0.2),
            auto_pad: lpc_ir::AutoPad::NotSet,
        };
        let mut g = Graph::new("mp");
        let x = g.add_input("x", f32_ty(&shape));
        let y = node(
            &mut g,
            "mp",
            Op::MaxPool {
                pool: attrs,
                storage_order: 0,
            },
            &[Some(x)],
        );
        g.set_outputs(vec![y]);
        let kinds = check(
            &g,
            &[tensor(&mut r, &shape)],
            1 + case % 2,
            &format!("maxpool {case}"),
        );
        if kinds == ["jit float (max_pool)"] {
            jit += 1;
        } else {
            assert_eq!(kinds, ["fallback:max_pool"]);
        }
        if !padded
            && kh == 2
            && kw == 2
            && sh == 2
            && sw == 2
            && shape[2].is_multiple_of(2)
            && shape[3].is_multiple_of(2)
        {
            assert_eq!(kinds, ["jit float (max_pool)"], "{shape:?}");
        }
    }
    assert!(jit > 30, "only {jit} of 80 pools ran on the JIT");
}

/// The distance in ulp between two f32 (0 for two NaNs or two zeros, `u32::MAX` for a NaN
/// against a number or unequal infinities).
fn ulps(a: f32, b: f32) -> u32 {
    if a.is_nan() || b.is_nan() {
        return if a.is_nan() && b.is_nan() {
            0
        } else {
            u32::MAX
        };
    }
    if a.is_infinite() || b.is_infinite() {
        return if a == b { 0 } else { u32::MAX };
    }
    // The bits as a line of integers: −0 and +0 meet at 0.
    let line = |x: f32| {
        let i = x.to_bits() as i32;
        if i < 0 {
            -((i & 0x7fff_ffff) as i64)
        } else {
            i as i64
        }
    };
    u32::try_from((line(a) - line(b)).unsigned_abs()).unwrap_or(u32::MAX)
}

/// The largest ulp distance between JIT and lpc-ref outputs, and the input where it occurs.
fn max_ulps(got: &Tensor, want: &Tensor, x: &[f32]) -> (u32, f32) {
    assert_eq!(got.shape(), want.shape());
    let (g, w) = (got.as_f32().unwrap(), want.as_f32().unwrap());
    let mut worst = (0, 0.0);
    for i in 0..g.len() {
        let d = ulps(g[i], w[i]);
        if d > worst.0 {
            worst = (d, x[i % x.len()]);
        }
    }
    worst
}

/// Every 2⁻¹⁰ step of [−100, 100], the edges of each function (overflow, underflow, the tanh
/// polynomial's bound, where sigmoid and tanh saturate), specials, and random bit patterns.
fn transcendental_inputs() -> Vec<f32> {
    let mut v: Vec<f32> = (-102_400..=102_400).map(|i| i as f32 / 1024.0).collect();
    for e in [
        88.72,
        88.7228,
        88.72284,
        88.723,
        88.73,
        89.0,
        89.5,
        100.0,
        87.33,
        87.34,
        103.9,
        103.97,
        103.98,
        104.0,
        105.0,
        0.625,
        0.624_999_94,
        0.625_000_06,
        9.0,
        9.01,
        16.6,
        17.0,
        44.0,
        45.0,
        1e-40,
        1e-30,
        1e-8,
        1e-4,
        0.1,
        f32::MIN_POSITIVE,
        f32::MAX,
        1e10,
    ] {
        v.extend([e, -e]);
    }
    v.extend([
        f32::NAN,
        -f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        0.0,
        -0.0,
    ]);
    let mut r = Rng(0x7a_11);
    v.extend((0..20_000).map(|_| f32::from_bits(r.next() as u32)));
    v
}

/// A graph computing `op` of a 1-D input of `n` elements.
fn unary_graph(op: UnaryOp, n: usize) -> Graph {
    let mut g = Graph::new("unary");
    let x = g.add_input("x", f32_ty(&[n]));
    let y = node(&mut g, "y", Op::Unary(op), &[Some(x)]);
    g.set_outputs(vec![y]);
    g
}

/// Runs `g` under lpc-ref and the JIT (chains on, every tier; see [`run_tiers`]) and returns
/// (jit, ref, step kinds).
fn both(g: &Graph, inputs: &[Tensor], threads: usize) -> (Vec<Tensor>, Vec<Tensor>, Vec<String>) {
    let want = lpc_ref::run(g, inputs).expect("ref");
    let (got, kinds) = run_tiers(g, inputs, threads);
    (got, want, kinds)
}

/// The functions `lpc_ref::transcendental` defines for lpc-ref and the JIT.
const TRANSCENDENTAL: [UnaryOp; 6] = [
    UnaryOp::Exp,
    UnaryOp::Sigmoid,
    UnaryOp::Tanh,
    UnaryOp::Erf,
    UnaryOp::Gelu { tanh: false },
    UnaryOp::Gelu { tanh: true },
];

/// lpc-ref and the JIT share one definition of each (`lpc_ref::transcendental`): bit for bit
/// equal over a dense grid, the edges and random bit patterns.
#[test]
fn transcendentals_are_bit_exact_to_ref() {
    let x = transcendental_inputs();
    let t = Tensor::from_f32(&[x.len()], x.clone()).unwrap();
    for op in TRANSCENDENTAL {
        let g = unary_graph(op.clone(), x.len());
        for threads in [1, 2] {
            let (got, want, kinds) = both(&g, std::slice::from_ref(&t), threads);
            assert_eq!(kinds, ["jit float (chain of 1)"], "{op:?}");
            let (d, at) = max_ulps(&got[0], &want[0], &x);
            println!(
                "{op:?}: max {d} ulp (at x = {at:e}) over {} inputs",
                x.len()
            );
            assert_eq!(d, 0, "{op:?}: {d} ulp from lpc-ref at x = {at:e}");
        }
    }
}

#[test]
fn transcendental_edges_are_exactly_refs() {
    let x = vec![
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        0.0,
        -0.0,
        89.0,
        1e10,
        -104.0,
        -1e10,
        17.0,
        -89.0,
        9.5,
        -9.5,
        1e-40,
        -1e-40,
        0.921875,
        -0.921875,
        0.921_875_06,
        3.925,
        -3.925,
        4.0,
    ];
    let t = Tensor::from_f32(&[x.len()], x.clone()).unwrap();
    for op in TRANSCENDENTAL {
        let g = unary_graph(op.clone(), x.len());
        let (got, want, _) = both(&g, std::slice::from_ref(&t), 1);
        let (g, w) = (got[0].as_f32().unwrap(), want[0].as_f32().unwrap());
        for i in 0..x.len() {
            let same = g[i].to_bits() == w[i].to_bits() || (g[i].is_nan() && w[i].is_nan());
            assert!(same, "{op:?}({:e}): jit {:e} vs ref {:e}", x[i], g[i], w[i]);
        }
    }
}

/// SiLU as YOLO-class detectors write it, `x · sigmoid(x)`, alone and followed by a
/// per-channel scale: one fused step, bit-exact to lpc-ref.
#[test]
fn silu_fuses_into_one_chain_and_matches_ref() {
    let mut r = Rng(0x5110);
    for shape in [
        [1usize, 16, 20, 20],
        [2, 5, 3, 7],
        [1, 3, 1, 1],
        [1, 64, 40, 41],
    ] {
        for scaled in [false, true] {
            let mut g = Graph::new("silu");
            let x = g.add_input("x", f32_ty(&shape));
            let s = node(&mut g, "sig", Op::Unary(UnaryOp::Sigmoid), &[Some(x)]);
            let mut y = node(&mut g, "y", Op::Binary(BinaryOp::Mul), &[Some(x), Some(s)]);
            if scaled {
                let c = g.add_const("c", tensor(&mut r, &[1, shape[1], 1, 1]));
                y = node(&mut g, "z", Op::Binary(BinaryOp::Mul), &[Some(y), Some(c)]);
            }
            g.set_outputs(vec![y]);
            let n: usize = shape.iter().product();
            let t = if r.chance(0.5) {
                tensor(&mut r, &shape)
            } else {
                Tensor::from_f32(&shape, (0..n).map(|_| (r.unit() - 0.5) * 40.0).collect()).unwrap()
            };
            let x0 = t.to_f32_vec();
            for threads in [1, 2] {
                let (got, want, kinds) = both(&g, std::slice::from_ref(&t), threads);
                let ops = if scaled { 3 } else { 2 };
                assert_eq!(kinds, [format!("jit float (chain of {ops})")], "{shape:?}");
                let (d, at) = max_ulps(&got[0], &want[0], &x0);
                assert_eq!(d, 0, "{shape:?}: {d} ulp at {at:e}");
            }
        }
    }
}

/// SiLU followed by a QuantizeLinear (the QDQ form): one `chain + quantize` step, with
/// lpc-ref's codes.
#[test]
fn silu_quantize_codes_are_refs() {
    let mut r = Rng(0x5111);
    let shape = [1usize, 8, 30, 30];
    let mut g = Graph::new("silu_q");
    let x = g.add_input("x", f32_ty(&shape));
    let s = node(&mut g, "sig", Op::Unary(UnaryOp::Sigmoid), &[Some(x)]);
    let y = node(&mut g, "y", Op::Binary(BinaryOp::Mul), &[Some(x), Some(s)]);
    let qs = g.add_const("qs", Tensor::scalar_f32(0.037));
    let qz = g.add_const("qz", Tensor::scalar_i64(-100).into_dtype(DType::I8));
    let q = node(
        &mut g,
        "q",
        Op::QuantizeLinear {
            q: QuantAxis {
                axis: 1,
                block_size: 0,
            },
            dtype: DType::I8,
        },
        &[Some(y), Some(qs), Some(qz)],
    );
    g.set_outputs(vec![q]);
    let n: usize = shape.iter().product();
    let t = Tensor::from_f32(&shape, (0..n).map(|_| (r.unit() - 0.5) * 12.0).collect()).unwrap();
    let (got, want, kinds) = both(&g, std::slice::from_ref(&t), 1);
    assert_eq!(kinds, ["jit float (chain of 2 + quantize)"]);
    same(&got[0], &want[0]).unwrap();
}

#[test]
fn transcendental_off_falls_back_to_ref() {
    let mut g = Graph::new("silu_off");
    let x = g.add_input("x", f32_ty(&[2, 9]));
    let s = node(&mut g, "sig", Op::Unary(UnaryOp::Sigmoid), &[Some(x)]);
    let y = node(&mut g, "y", Op::Binary(BinaryOp::Mul), &[Some(x), Some(s)]);
    g.set_outputs(vec![y]);
    let t = tensor(&mut Rng(21), &[2, 9]);
    let m = CompiledModel::compile(
        &g,
        &[vec![2, 9]],
        &CompileOptions {
            threads: Some(1),
            lower: LowerOptions {
                float_transcendental: false,
                ..Default::default()
            },
        },
    )
    .expect("compile");
    let kinds: Vec<String> = m.plan().steps.iter().map(|s| s.kind()).collect();
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    assert!(kinds[0].starts_with("fallback"), "{kinds:?}");
    assert_eq!(kinds[1], "jit float (chain of 1)");
    let want = lpc_ref::run(&g, std::slice::from_ref(&t)).unwrap();
    let got = m.run(std::slice::from_ref(&t)).unwrap();
    same(&got[0], &want[0]).unwrap();
}

/// Pow by a constant 2 or 3 (a decomposed LayerNorm's variance, the tanh-form GELU's cube)
/// joins a chain as products, bit-exact to lpc-ref; another exponent stays with lpc-ref.
#[test]
fn pow_by_two_and_three_chain_as_products() {
    let x = transcendental_inputs();
    let t = Tensor::from_f32(&[x.len()], x.clone()).unwrap();
    for (e, fused) in [(2.0f32, true), (3.0, true), (0.5, false)] {
        let mut g = Graph::new("pow");
        let xv = g.add_input("x", f32_ty(&[x.len()]));
        let c = g.add_const("e", Tensor::from_f32(&[], vec![e]).unwrap());
        let y = node(&mut g, "y", Op::Binary(BinaryOp::Pow), &[Some(xv), Some(c)]);
        g.set_outputs(vec![y]);
        let (got, want, kinds) = both(&g, std::slice::from_ref(&t), 1);
        assert_eq!(
            kinds[0] == "jit float (chain of 1)",
            fused,
            "{e}: {kinds:?}"
        );
        let (d, at) = max_ulps(&got[0], &want[0], &x);
        assert_eq!(d, 0, "pow {e}: {d} ulp at {at:e}");
    }
}
