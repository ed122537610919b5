//! Differential tests of QConv lowered to the GEMM kernels (im2col, 1×1 and grouped convs, every
//! GEMM tier the host has) against `lpc_ref`, bit for bit: random shapes, strides, pads,
//! dilations, groups, zero points, per-channel scales and u8/i8/f32 outputs.

use lpc_ir::Tensor;
use lpc_jit::Dot;
use lpc_jit::{CodeModule, CompileOptions, CompiledModel, LowerOptions};

mod common;
use common::Rng;

fn list(v: impl Iterator<Item = String>) -> String {
    v.collect::<Vec<_>>().join(", ")
}

/// One random QConv graph (text) and its input.
fn case(r: &mut Rng) -> (String, Tensor) {
    case_of(r, false)
}

/// A random QConv; `big`: one image, many input channels and pixels, a 3×3 to 5×5 kernel at
/// stride 1, so its packed columns fill several of im2col's cache-sized blocks (the last one
/// partial).
fn case_of(r: &mut Rng, big: bool) -> (String, Tensor) {
    let group = if big { 1 } else { r.pick(&[1, 1, 1, 2, 3]) };
    let cg = if big {
        40 + r.below(30)
    } else {
        1 + r.below(5)
    };
    let wide = r.below(3) == 0;
    let mg = 1 + r.below(if wide { 40 } else { 9 });
    let (c, m) = (cg * group, mg * group);
    let k = if big {
        [r.pick(&[3, 5]), r.pick(&[3, 5])]
    } else {
        [r.pick(&[1, 1, 2, 3, 3, 5]), r.pick(&[1, 1, 2, 3, 3, 5])]
    };
    let s = if big {
        [1, 1]
    } else {
        [r.pick(&[1, 1, 2, 3]), r.pick(&[1, 1, 2, 3])]
    };
    let d = [r.pick(&[1, 1, 1, 2]), r.pick(&[1, 1, 1, 2])];
    let p = [r.below(k[0]), r.below(k[1]), r.below(k[0]), r.below(k[1])];
    let ext = |a: usize| (k[a] - 1) * d[a] + 1;
    let (hmax, wmax) = if big { (40, 40) } else { (14, 40) };
    let h = ext(0).max(1 + r.below(hmax));
    let w = ext(1).max(1 + r.below(wmax));
    let (h, w) = if big { (h.max(24), w.max(24)) } else { (h, w) };
    // Big cases: one image, so two threads share its blocks.
    let n = if big { 1 } else { 1 + r.below(2) };
    let xd = r.pick(&["u8", "i8"]);
    let (xlo, xhi) = if xd == "u8" { (0, 255) } else { (-128, 127) };
    let xz = r.int(xlo, xhi);
    let wts = list((0..m * cg * k[0] * k[1]).map(|_| r.int(-127, 127).to_string()));
    let bias = list((0..m).map(|_| r.int(-50_000, 50_000).to_string()));
    let scale = list((0..m).map(|_| format!("{:e}", 10f64.powf(r.int(-500, -150) as f64 / 100.0))));
    let out = r.pick(&["u8", "i8", "f32"]);
    let tail = match out {
        "f32" => String::new(),
        t => {
            let (lo, hi) = if t == "u8" { (0, 255) } else { (-128, 127) };
            let yz = r.int(lo, hi);
            let (a, b) = (r.int(lo, hi), r.int(lo, hi));
            let (a, b) = (a.min(b), a.max(b));
            format!(
                "  %yz = const {t}[] [{yz}]\n  %lo = const {t}[] [{a}]\n  %hi = const {t}[] [{b}]\n"
            )
        }
    };
    let extra = if out == "f32" { "" } else { ", %yz, %lo, %hi" };
    let text = format!(
        "graph @c(%x: {xd}[N,{c},{h},{w}]) -> (%y) {{
  %xz = const {xd}[] [{xz}]
  %w = const i8[{m},{cg},{kh},{kw}] [{wts}]
  %b = const i32[{m}] [{bias}]
  %s = const f32[{m}] [{scale}]
{tail}  %y = qconv(%x, %xz, %w, %b, %s{extra}) {{kernel=[{kh},{kw}], strides=[{s0},{s1}], pads=[{p0},{p1},{p2},{p3}], dilations=[{d0},{d1}], group={group}}}
  return %y
}}
",
        kh = k[0],
        kw = k[1],
        s0 = s[0],
        s1 = s[1],
        p0 = p[0],
        p1 = p[1],
        p2 = p[2],
        p3 = p[3],
        d0 = d[0],
        d1 = d[1],
    );
    let len = n * c * h * w;
    let x = Tensor::from_i64(&[n, c, h, w], (0..len).map(|_| r.int(xlo, xhi)).collect())
        .unwrap()
        .cast(if xd == "u8" {
            lpc_ir::DType::U8
        } else {
            lpc_ir::DType::I8
        });
    (text, x)
}

/// Every GEMM tier the host has (their panel widths differ: 32 columns for zmm, 8 otherwise);
/// a missing one is reported as skipped by `test`.
fn tiers(test: &str) -> Vec<Dot> {
    let f = CodeModule::new().unwrap().features();
    let mut dots = vec![Dot::Auto, Dot::ExactI16];
    if f.vnni {
        dots.push(Dot::Vnni);
    } else {
        eprintln!("{test}: Dot::Vnni skipped (no VNNI on this host)");
    }
    dots
}

/// `g` compiled for `x`'s shape on `threads` threads with GEMM tier `dot`.
fn compile(
    g: &lpc_ir::Graph,
    x: &Tensor,
    threads: usize,
    dot: Dot,
) -> Result<CompiledModel, lpc_jit::JitError> {
    CompiledModel::compile(
        g,
        &[x.shape().to_vec()],
        &CompileOptions {
            threads: Some(threads),
            lower: LowerOptions {
                dot,
                ..Default::default()
            },
        },
    )
}

/// Compiles case `i` (`text`, input `x`) with tier `dot` on 1 or 2 threads, demands lpc-ref's
/// output bit for bit, and returns how many plan steps are of a kind starting with `kind`.
fn check_case(i: usize, text: &str, x: &Tensor, dot: Dot, kind: &str) -> usize {
    let g = lpc_ir::text::parse(text).unwrap_or_else(|e| panic!("case {i}: {e}\n{text}"));
    let want = lpc_ref::run(&g, std::slice::from_ref(x)).expect("ref");
    let threads = 1 + i % 2;
    let m = compile(&g, x, threads, dot).unwrap_or_else(|e| panic!("case {i}: {e}\n{text}"));
    let steps = m
        .plan()
        .steps
        .iter()
        .filter(|s| s.kind().starts_with(kind))
        .count();
    let got = m.run(std::slice::from_ref(x)).expect("jit");
    assert_eq!(got[0].shape(), want[0].shape(), "case {i}");
    assert!(
        got[0].same_content(&want[0]),
        "case {i} ({threads} threads, {dot:?}): {}\n{text}\ngot  {}\nwant {}",
        m.stats(),
        got[0],
        want[0]
    );
    steps
}

#[test]
fn qconv_through_gemm_matches_reference() {
    let dots = tiers("qconv_through_gemm_matches_reference");
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let mut gemm_steps = 0;
    for i in 0..150 {
        let dot = dots[i % dots.len()];
        let (text, x) = case(&mut r);
        gemm_steps += check_case(i, &text, &x, dot, "jit gemm");
    }
    // Most cases must have run on the GEMM (not on a fallback).
    assert!(
        gemm_steps >= 120,
        "only {gemm_steps} of 150 cases lowered to a GEMM"
    );
}

/// Convs whose im2col spans several blocks: the blocked pack-and-multiply loop (1 thread) and
/// its split over threads (2 threads, C blocks copied into place), on every tier.
#[test]
fn large_k_convs_run_in_blocks() {
    let dots = tiers("large_k_convs_run_in_blocks");
    let mut r = Rng(0xb10c_5eed);
    for i in 0..12 {
        let dot = dots[i % dots.len()];
        let (text, x) = case_of(&mut r, true);
        let g = lpc_ir::text::parse(&text).unwrap_or_else(|e| panic!("case {i}: {e}"));
        let want = lpc_ref::run(&g, std::slice::from_ref(&x)).expect("ref");
        let threads = 1 + (i / dots.len()) % 2;
        let m = compile(&g, &x, threads, dot).unwrap_or_else(|e| panic!("case {i}: {e}"));
        let kind = m.plan().steps[0].kind();
        assert!(kind.starts_with("jit gemm (im2col"), "case {i}: {kind}");
        let got = m.run(std::slice::from_ref(&x)).expect("jit");
        assert!(
            got[0].same_content(&want[0]),
            "case {i} ({threads} threads, {dot:?}, x {:?}): {}",
            x.shape(),
            m.stats()
        );
    }
}

/// 1-D QConvs ([N, C, L], kernel [M, Cg, K]: the audio and signal models' convs) run as 2-D ones
/// over a height of 1, on the GEMM or the depthwise kernel, bit for bit as lpc-ref.
#[test]
fn qconv_1d_matches_reference() {
    let dots = tiers("qconv_1d_matches_reference");
    let mut r = Rng(0x1d_c0_4e);
    let mut jit_steps = 0;
    let cases = 80;
    for i in 0..cases {
        let dot = dots[i % dots.len()];
        let depthwise = r.below(4) == 0;
        let (group, cg, mg) = if depthwise {
            (1 + r.below(12), 1, 1)
        } else {
            (r.pick(&[1, 1, 2]), 1 + r.below(6), 1 + r.below(20))
        };
        let (c, m) = (cg * group, mg * group);
        let k = r.pick(&[1, 2, 3, 5, 7]);
        let (s, d) = (r.pick(&[1, 1, 2, 3]), r.pick(&[1, 1, 2]));
        let p = [r.below(k), r.below(k)];
        let l = ((k - 1) * d + 1).max(1 + r.below(60));
        let n = 1 + r.below(2);
        let xd = r.pick(&["u8", "i8"]);
        let (xlo, xhi) = if xd == "u8" { (0, 255) } else { (-128, 127) };
        let xz = r.int(xlo, xhi);
        let wts = list((0..m * cg * k).map(|_| r.int(-127, 127).to_string()));
        let bias = list((0..m).map(|_| r.int(-50_000, 50_000).to_string()));
        let scale =
            list((0..m).map(|_| format!("{:e}", 10f64.powf(r.int(-500, -150) as f64 / 100.0))));
        let out = r.pick(&["u8", "i8", "f32"]);
        let (tail, extra) = match out {
            "f32" => (String::new(), ""),
            t => {
                let (lo, hi) = if t == "u8" { (0, 255) } else { (-128, 127) };
                let yz = r.int(lo, hi);
                (
                    format!(
                        "  %yz = const {t}[] [{yz}]\n  %lo = const {t}[] [{lo}]\n  %hi = const {t}[] [{hi}]\n"
                    ),
                    ", %yz, %lo, %hi",
                )
            }
        };
        let text = format!(
            "graph @c(%x: {xd}[N,{c},{l}]) -> (%y) {{
  %xz = const {xd}[] [{xz}]
  %w = const i8[{m},{cg},{k}] [{wts}]
  %b = const i32[{m}] [{bias}]
  %s = const f32[{m}] [{scale}]
{tail}  %y = qconv(%x, %xz, %w, %b, %s{extra}) {{kernel=[{k}], strides=[{s}], pads=[{p0},{p1}], dilations=[{d}], group={group}}}
  return %y
}}
",
            p0 = p[0],
            p1 = p[1],
        );
        let x = Tensor::from_i64(
            &[n, c, l],
            (0..n * c * l).map(|_| r.int(xlo, xhi)).collect(),
        )
        .unwrap()
        .cast(if xd == "u8" {
            lpc_ir::DType::U8
        } else {
            lpc_ir::DType::I8
        });
        jit_steps += check_case(i, &text, &x, dot, "jit");
    }
    assert!(
        jit_steps >= cases * 9 / 10,
        "only {jit_steps} of {cases} 1-D convs ran on a JIT kernel"
    );
}

/// QMatMul with a constant i8 `[K, N]` weight on the GEMM (the transposed packing and the
/// transpose back into `[rows, N]`), random row counts (one partial panel or many, several 16-row
/// tiles of the copy-back), u8/i8 inputs and u8/i8/f32 outputs, every tier, 1 and 2 threads.
#[test]
fn qmatmul_through_gemm_matches_reference() {
    let dots = tiers("qmatmul_through_gemm_matches_reference");
    let mut r = Rng(0x9a7_3a7);
    let mut gemm_steps = 0;
    let cases = 60;
    for i in 0..cases {
        let dot = dots[i % dots.len()];
        let (b, rows) = (
            1 + r.below(3),
            1 + r.below(if i % 3 == 0 { 90 } else { 20 }),
        );
        let (k, n) = (1 + r.below(70), 1 + r.below(50));
        let xd = r.pick(&["u8", "i8"]);
        let (xlo, xhi) = if xd == "u8" { (0, 255) } else { (-128, 127) };
        let xz = r.int(xlo, xhi);
        let wts = list((0..k * n).map(|_| r.int(-127, 127).to_string()));
        let bias = list((0..n).map(|_| r.int(-50_000, 50_000).to_string()));
        let scale =
            list((0..n).map(|_| format!("{:e}", 10f64.powf(r.int(-500, -150) as f64 / 100.0))));
        let out = r.pick(&["u8", "i8", "f32"]);
        let (tail, extra) = match out {
            "f32" => (String::new(), ""),
            t => {
                let (lo, hi) = if t == "u8" { (0, 255) } else { (-128, 127) };
                let yz = r.int(lo, hi);
                (format!("  %yz = const {t}[] [{yz}]\n"), ", %yz")
            }
        };
        let text = format!(
            "graph @m(%x: {xd}[{b},{rows},{k}]) -> (%y) {{
  %xz = const {xd}[] [{xz}]
  %w = const i8[{k},{n}] [{wts}]
  %bias = const i32[{n}] [{bias}]
  %s = const f32[{n}] [{scale}]
{tail}  %y = qmatmul(%x, %xz, %w, %bias, %s{extra})
  return %y
}}
"
        );
        let len = b * rows * k;
        let x = Tensor::from_i64(&[b, rows, k], (0..len).map(|_| r.int(xlo, xhi)).collect())
            .unwrap()
            .cast(if xd == "u8" {
                lpc_ir::DType::U8
            } else {
                lpc_ir::DType::I8
            });
        gemm_steps += check_case(i, &text, &x, dot, "jit gemm (matmul");
    }
    assert_eq!(gemm_steps, cases, "every QMatMul must run on the GEMM");
}

/// Dynamically quantized matmuls (what dynamic.rules folds DynamicQuantizeLinear →
/// MatMulInteger → Cast → Mul to): the zero point and scale come from DynamicQuantizeLinear at
/// run time, the GEMM folds them in per run, bit-exact to lpc-ref on every tier.
#[test]
fn dynamic_qmatmul_matches_reference() {
    let dots = tiers("dynamic_qmatmul_matches_reference");
    let mut r = Rng(0xd1a_3a7);
    let mut gemm_steps = 0;
    let cases = 40;
    for i in 0..cases {
        let dot = dots[i % dots.len()];
        let (b, rows) = (
            1 + r.below(2),
            1 + r.below(if i % 3 == 0 { 70 } else { 12 }),
        );
        let (k, n) = (1 + r.below(70), 1 + r.below(40));
        let wts = list((0..k * n).map(|_| r.int(-127, 127).to_string()));
        let per_col = i % 2 == 0;
        let sw = if per_col {
            format!(
                "f32[{n}] [{}]",
                list((0..n).map(|_| format!("{:e}", 10f64.powf(r.int(-400, -100) as f64 / 100.0))))
            )
        } else {
            "f32[] [0.0123]".to_string()
        };
        let sshape = if per_col {
            format!("[{n}]")
        } else {
            "[]".into()
        };
        let (bias_line, bias) = match i % 3 {
            0 => (String::new(), "_"),
            _ => (
                format!(
                    "  %bias = const i32[{n}] [{}]\n",
                    list((0..n).map(|_| r.int(-50_000, 50_000).to_string()))
                ),
                "%bias",
            ),
        };
        let text = format!(
            "graph @m(%x: f32[{b},{rows},{k}]) -> (%y) {{
  %xq, %sx, %zx = dynamic_quantize_linear(%x) : u8[{b},{rows},{k}], f32[], u8[]
  %w = const i8[{k},{n}] [{wts}]
  %sw = const {sw}
  %s = mul(%sx, %sw) : f32{sshape}
{bias_line}  %y = qmatmul(%xq, %zx, %w, {bias}, %s)
  return %y
}}
"
        );
        // Inputs of either sign or all of one (zero points 0, 255 and between).
        let (lo, hi) = match i % 4 {
            0 => (0.0, 3.0),
            1 => (-2.0, 0.0),
            _ => (-1.5, 4.0),
        };
        let len = b * rows * k;
        let x = Tensor::from_f32(
            &[b, rows, k],
            (0..len)
                .map(|_| lo + (hi - lo) * r.int(0, 10_000) as f32 / 10_000.0)
                .collect(),
        )
        .unwrap();
        gemm_steps += check_case(i, &text, &x, dot, "jit gemm (matmul");
    }
    assert_eq!(
        gemm_steps, cases,
        "every dynamic QMatMul must run on the GEMM"
    );
}
