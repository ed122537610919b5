//! Differential tests of the JIT GEMM kernel against a scalar reference (`lpc_ref::nn::requantize`).

use lpc_ir::{Op, Tensor};
use lpc_jit::kernels::gemm::{
    define_gemm, fold_zero_point, gemm_tier, pack_a, pack_b, pack_b_i8, packed_b_len, panel_len,
    panels, zmm_code, Dot, Epilogue, GemmInputs, GemmKernel, GemmSpec, GemmTier, NR, NR_ZMM,
};
use lpc_jit::CodeModule;

/// xorshift64*: a tiny seeded generator.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn i8(&mut self) -> i8 {
        self.next() as i8
    }
    fn u8(&mut self) -> u8 {
        self.next() as u8
    }
    fn f32_in(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next() >> 40) as f32 / (1u64 << 24) as f32)
    }
}

/// One problem: weights, activations, bias, scales.
struct Case {
    m: usize,
    k: usize,
    n: usize,
    w: Vec<i8>,
    x: Vec<u8>,
    bias: Vec<i32>,
    scale: Vec<f32>,
}

impl Case {
    fn random(rng: &mut Rng, m: usize, k: usize, n: usize) -> Case {
        let w = (0..m * k).map(|_| rng.i8()).collect();
        let x = (0..k * n).map(|_| rng.u8()).collect();
        let bias = (0..m)
            .map(|_| (rng.next() as i32) >> rng.below(32) as u32)
            .collect();
        let scale = (0..m)
            .map(|_| rng.f32_in(1e-6, 1e-3) * if rng.below(8) == 0 { 1e4 } else { 1.0 })
            .collect();
        Case {
            m,
            k,
            n,
            w,
            x,
            bias,
            scale,
        }
    }

    fn acc(&self, m: usize, n: usize) -> i32 {
        (0..self.k).fold(self.bias[m], |s, k| {
            s.wrapping_add(self.w[m * self.k + k] as i32 * self.x[k * self.n + n] as i32)
        })
    }
}

/// Expected outputs `[m][n]` (as i64; f32 as bits). Quant and F32 come from the reference
/// interpreter's QMatMul (`lpc_ref::eval`, which uses `requantize`) on the transposed problem:
/// activations `[N, K]` u8 (zero point 0) times weights `[K, M]` i8, per-column bias and scale.
fn expected(c: &Case, e: Epilogue) -> Vec<Vec<i64>> {
    let (m, n, k) = (c.m, c.n, c.k);
    if e == Epilogue::I32 {
        return (0..m)
            .map(|mm| (0..n).map(|nn| c.acc(mm, nn) as i64).collect())
            .collect();
    }
    let xt: Vec<u8> = (0..n * k).map(|i| c.x[(i % k) * n + i / k]).collect();
    let wt: Vec<i8> = (0..k * m).map(|i| c.w[(i % m) * k + i / m]).collect();
    let a = Tensor::from_u8(&[n, k], xt).unwrap();
    let az = Tensor::from_u8(&[], vec![0]).unwrap();
    let b = Tensor::from_i8(&[k, m], wt).unwrap();
    let bias = Tensor::from_i32(&[m], c.bias.clone()).unwrap();
    let scale = Tensor::from_f32(&[m], c.scale.clone()).unwrap();
    let y = match e {
        Epilogue::Quant { zp, lo, hi, signed } => {
            let yz = if signed {
                Tensor::from_i8(&[], vec![zp as i8]).unwrap()
            } else {
                Tensor::from_u8(&[], vec![zp as u8]).unwrap()
            };
            let (lo, hi) = (Tensor::scalar_i64(lo as i64), Tensor::scalar_i64(hi as i64));
            let ins = [
                Some(&a),
                Some(&az),
                Some(&b),
                Some(&bias),
                Some(&scale),
                Some(&yz),
                Some(&lo),
                Some(&hi),
            ];
            lpc_ref::eval(&Op::QMatMul, &ins, 1)
                .unwrap()
                .remove(0)
                .to_i64_vec()
        }
        Epilogue::F32 => {
            let ins = [Some(&a), Some(&az), Some(&b), Some(&bias), Some(&scale)];
            let t = lpc_ref::eval(&Op::QMatMul, &ins, 1).unwrap().remove(0);
            t.as_f32()
                .unwrap()
                .iter()
                .map(|v| v.to_bits() as i64)
                .collect()
        }
        Epilogue::I32 => unreachable!("handled above"),
    };
    (0..m)
        .map(|mm| (0..n).map(|nn| y[nn * m + mm]).collect())
        .collect()
}

fn compile(spec: &GemmSpec) -> (CodeModule, GemmKernel) {
    let mut cm = CodeModule::new().expect("module");
    let id = define_gemm(&mut cm, spec).expect("define");
    cm.finalize().expect("finalize");
    // SAFETY: `cm` is returned with the kernel and outlives every use in the tests.
    let k = unsafe { GemmKernel::new(&cm, id, spec) }.expect("kernel");
    (cm, k)
}

fn has_zmm() -> bool {
    let cm = CodeModule::new().expect("module");
    cm.features().zmm_vnni && cm.system_v()
}

/// Every tier the host can run: the exact i16 path, 128-bit VNNI, the zmm tier.
fn dots() -> Vec<Dot> {
    let mut v = vec![Dot::ExactI16];
    if CodeModule::new().expect("module").features().vnni {
        v.push(Dot::Vnni);
    } else {
        eprintln!("host has no VNNI: only the exact i16 path is tested");
    }
    if has_zmm() {
        v.push(Dot::Zmm);
    } else {
        eprintln!("skipped: no avx512vnni (zmm tier)");
    }
    v
}

/// Runs the kernel on `rows` and returns the outputs as i64 (f32 as bits), `ldc` = n + pad,
/// and the value the output buffer was filled with beforehand.
fn run_case(k: &GemmKernel, c: &Case, rows: std::ops::Range<usize>, pad: usize) -> (Vec<i64>, i64) {
    let a = pack_a(&c.w, c.m, c.k).expect("pack a");
    let nr = k.nr();
    let mut b = vec![0xa5u8; packed_b_len(nr, c.k, c.n)];
    pack_b(&c.x, c.k, c.n, c.n, nr, &mut b).expect("pack b");
    // Padding of the last panel may hold anything: scribble on it.
    for p in 0..panels(nr, c.n) {
        for col in 0..nr {
            if p * nr + col >= c.n {
                for kk in 0..c.k {
                    b[p * panel_len(nr, c.k) + (kk / 4) * nr * 4 + col * 4 + kk % 4] = 0x77;
                }
            }
        }
    }
    let ldc = c.n + pad;
    let len = rows.len() * ldc;
    let np = panels(nr, c.n);
    macro_rules! go {
        ($t:ty, $fill:expr, $conv:expr) => {{
            let mut out: Vec<$t> = vec![$fill; len];
            k.run_block(
                &GemmInputs {
                    a: &a,
                    b_panels: &b,
                    n: c.n,
                    bias: &c.bias,
                    scale: &c.scale,
                },
                &mut out,
                ldc,
                rows.clone(),
                0..np,
            )
            .expect("run");
            (out.iter().map(|&v| $conv(v)).collect(), $conv($fill))
        }};
    }
    match k.spec().epilogue {
        Epilogue::Quant { signed: false, .. } => go!(u8, 0x5a, |v: u8| v as i64),
        Epilogue::Quant { signed: true, .. } => go!(i8, 0x5a, |v: i8| v as i64),
        Epilogue::F32 => go!(f32, f32::from_bits(0x7fc0_1234), |v: f32| v.to_bits()
            as i64),
        Epilogue::I32 => go!(i32, 0x5a5a_5a5a, |v: i32| v as i64),
    }
}

fn check(c: &Case, spec: &GemmSpec, rows: std::ops::Range<usize>, pad: usize) {
    let (_cm, k) = compile(spec);
    let (got, fill) = run_case(&k, c, rows.clone(), pad);
    let ldc = c.n + pad;
    let want_all = expected(c, spec.epilogue);
    for (i, m) in rows.clone().enumerate() {
        for n in 0..c.n {
            let want = want_all[m][n];
            assert_eq!(
                got[i * ldc + n],
                want,
                "m={m} n={n} shape {}x{}x{} {spec:?} rows {rows:?}",
                c.m,
                c.n,
                c.k
            );
        }
        // The padding between rows is untouched.
        for n in c.n..ldc {
            assert_eq!(got[i * ldc + n], fill, "padding m={m} n={n}");
        }
    }
}

fn quant(rng: &mut Rng) -> Epilogue {
    let signed = rng.below(2) == 1;
    let (tlo, thi) = if signed { (-128, 127) } else { (0, 255) };
    let zp = match rng.below(4) {
        0 => 0,
        1 => tlo + 128,
        2 => thi,
        _ => tlo + rng.below(256) as i32,
    };
    let (lo, hi) = match rng.below(3) {
        0 => (tlo, thi),
        1 => (zp.max(tlo), (zp + 6 * 10).min(thi)), // ReLU6-like
        _ => {
            let a = tlo + rng.below(256) as i32;
            let b = tlo + rng.below(256) as i32;
            (a.min(b), a.max(b))
        }
    };
    Epilogue::Quant { zp, lo, hi, signed }
}

#[test]
fn random_shapes_all_epilogues() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let dims = [
        1, 2, 3, 5, 6, 7, 8, 9, 12, 13, 16, 17, 24, 25, 31, 32, 33, 40,
    ];
    let ks = [1, 3, 4, 5, 15, 16, 17, 20, 33, 64, 100];
    for dot in dots() {
        for i in 0..60 {
            let m = dims[rng.below(dims.len())];
            let n = dims[rng.below(dims.len())];
            let k = ks[rng.below(ks.len())];
            let c = Case::random(&mut rng, m, k, n);
            let e = match i % 4 {
                0 => Epilogue::I32,
                1 => Epilogue::F32,
                _ => quant(&mut rng),
            };
            let spec = GemmSpec {
                m,
                k,
                epilogue: e,
                dot,
            };
            check(&c, &spec, 0..m, rng.below(3));
        }
    }
}

/// M, N uniform in 1..=40, K in 1..=2049, every epilogue, zero points 0/128/255 and tight bounds.
#[test]
fn random_shapes_wide_k() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for dot in dots() {
        for i in 0..40 {
            let m = 1 + rng.below(40);
            let n = 1 + rng.below(40);
            let k = 1 + rng.below(2049);
            let c = Case::random(&mut rng, m, k, n);
            let e = match i % 4 {
                0 => Epilogue::I32,
                1 => Epilogue::F32,
                2 => {
                    let zp = [0, 128, 255][rng.below(3)];
                    let lo = rng.below(256) as i32;
                    let hi = (lo + rng.below(8) as i32).min(255);
                    Epilogue::Quant {
                        zp,
                        lo,
                        hi,
                        signed: false,
                    }
                }
                _ => quant(&mut rng),
            };
            let spec = GemmSpec {
                m,
                k,
                epilogue: e,
                dot,
            };
            check(&c, &spec, 0..m, rng.below(3));
        }
    }
}

#[test]
fn large_k_and_n() {
    let mut rng = Rng(42);
    for dot in dots() {
        // (7, 2049, 300): several cache-blocking chunks of panels, the last one partial.
        for &(m, k, n) in &[(7, 1003, 29), (13, 1024, 70), (1, 2049, 9), (7, 2049, 300)] {
            let c = Case::random(&mut rng, m, k, n);
            for e in [Epilogue::I32, quant(&mut rng)] {
                check(
                    &c,
                    &GemmSpec {
                        m,
                        k,
                        epilogue: e,
                        dot,
                    },
                    0..m,
                    0,
                );
            }
        }
    }
}

#[test]
fn saturating_scales_and_extremes() {
    let mut rng = Rng(7);
    for dot in dots() {
        let (m, k, n) = (8, 37, 19);
        let mut c = Case::random(&mut rng, m, k, n);
        // Extreme data: all-max activations and ±max weights, scales that saturate both ways,
        // a bias near the i32 edge (wraps), and non-finite scales.
        for v in c.x.iter_mut().step_by(3) {
            *v = 255;
        }
        for (i, v) in c.w.iter_mut().enumerate() {
            if i % 5 == 0 {
                *v = if i % 2 == 0 { 127 } else { -128 };
            }
        }
        c.scale = vec![
            1e30,
            -1e30,
            3e9,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            0.0,
            1.0,
        ];
        c.bias[2] = i32::MAX - 10;
        c.bias[3] = 0;
        for e in [
            Epilogue::Quant {
                zp: 0,
                lo: 0,
                hi: 255,
                signed: false,
            },
            Epilogue::Quant {
                zp: 128,
                lo: 128,
                hi: 200,
                signed: false,
            },
            Epilogue::Quant {
                zp: 255,
                lo: 0,
                hi: 255,
                signed: false,
            },
            Epilogue::Quant {
                zp: -128,
                lo: -128,
                hi: 127,
                signed: true,
            },
            Epilogue::Quant {
                zp: 3,
                lo: -5,
                hi: 5,
                signed: true,
            },
            Epilogue::I32,
        ] {
            check(
                &c,
                &GemmSpec {
                    m,
                    k,
                    epilogue: e,
                    dot,
                },
                0..m,
                1,
            );
        }
        // acc = 0 with infinite scale is NaN in the reference (→ zp): make some accs zero.
        let mut z = Case::random(&mut rng, 6, 4, 8);
        z.w.iter_mut().for_each(|v| *v = 0);
        z.bias = vec![0, 1, -1, 0, 0, 5];
        z.scale = vec![
            f32::INFINITY,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            -0.0,
            1e-45,
        ];
        for e in [
            Epilogue::Quant {
                zp: 7,
                lo: 0,
                hi: 255,
                signed: false,
            },
            Epilogue::Quant {
                zp: 7,
                lo: 10,
                hi: 20,
                signed: false,
            },
            Epilogue::Quant {
                zp: -7,
                lo: -128,
                hi: 127,
                signed: true,
            },
        ] {
            check(
                &z,
                &GemmSpec {
                    m: 6,
                    k: 4,
                    epilogue: e,
                    dot,
                },
                0..6,
                0,
            );
        }
    }
}

#[test]
fn row_sub_ranges() {
    let mut rng = Rng(99);
    for dot in dots() {
        let (m, k, n) = (31, 21, 37);
        let c = Case::random(&mut rng, m, k, n);
        let spec = GemmSpec {
            m,
            k,
            epilogue: quant(&mut rng),
            dot,
        };
        let (_cm, kern) = compile(&spec);
        let mr = kern.mr();
        let cuts = [0, mr, 2 * mr, m];
        for w in cuts.windows(2) {
            check(&c, &spec, w[0]..w[1], 0);
        }
        check(&c, &spec, mr..m, 2);
        check(&c, &spec, 0..0, 0);
    }
}

#[test]
fn panel_ranges_and_parallel() {
    let mut rng = Rng(5);
    for dot in dots() {
        let (m, k, n) = (29, 50, 105);
        let c = Case::random(&mut rng, m, k, n);
        let spec = GemmSpec {
            dot,
            ..GemmSpec::new(m, k, Epilogue::I32)
        };
        let (_cm, kern) = compile(&spec);
        let a = pack_a(&c.w, m, k).unwrap();
        let nr = kern.nr();
        let mut b = vec![0u8; packed_b_len(nr, k, n)];
        pack_b(&c.x, k, n, n, nr, &mut b).unwrap();
        let np = panels(nr, n);
        assert!(np > 2);
        // Two column halves into the same C.
        let x = GemmInputs {
            a: &a,
            b_panels: &b,
            n,
            bias: &c.bias,
            scale: &[],
        };
        let mut out = vec![0i32; m * n];
        kern.run_block(&x, &mut out, n, 0..m, 0..2).unwrap();
        kern.run_block(&x, &mut out, n, 0..m, 2..np).unwrap();
        let mut par = vec![0i32; m * n];
        kern.run_par(&x, &mut par, n).unwrap();
        for mm in 0..m {
            for nn in 0..n {
                assert_eq!(out[mm * n + nn], c.acc(mm, nn), "m={mm} n={nn}");
                assert_eq!(par[mm * n + nn], c.acc(mm, nn), "par m={mm} n={nn}");
            }
        }
    }
}

#[test]
fn zero_point_folding_and_i8_activations() {
    let mut rng = Rng(11);
    let (m, k, n) = (5, 30, 9);
    let w: Vec<i8> = (0..m * k).map(|_| rng.i8()).collect();
    let x: Vec<i8> = (0..k * n).map(|_| rng.i8()).collect();
    let bias: Vec<i32> = (0..m as i32).map(|i| i * 1000 - 2000).collect();
    let zp_x: i32 = -3;
    let a = pack_a(&w, m, k).unwrap();
    let folded = fold_zero_point(&bias, &a, zp_x + 128).unwrap();
    let spec = GemmSpec::new(m, k, Epilogue::I32);
    let (_cm, kern) = compile(&spec);
    let nr = kern.nr();
    let mut b = vec![0u8; packed_b_len(nr, k, n)];
    pack_b_i8(&x, k, n, n, nr, &mut b).unwrap();
    let mut out = vec![0i32; m * n];
    kern.run(
        &GemmInputs {
            a: &a,
            b_panels: &b,
            n,
            bias: &folded,
            scale: &[],
        },
        &mut out,
        n,
    )
    .unwrap();
    for mm in 0..m {
        for nn in 0..n {
            let want = (0..k).fold(bias[mm], |s, kk| {
                s + w[mm * k + kk] as i32 * (x[kk * n + nn] as i32 - zp_x)
            });
            assert_eq!(out[mm * n + nn], want);
        }
    }
}

#[test]
fn bad_lengths_are_errors() {
    let (m, k, n) = (13, 9, 10);
    let spec = GemmSpec::new(
        m,
        k,
        Epilogue::Quant {
            zp: 0,
            lo: 0,
            hi: 255,
            signed: false,
        },
    );
    let (_cm, kern) = compile(&spec);
    let a = pack_a(&vec![1i8; m * k], m, k).unwrap();
    let nr = kern.nr();
    let b = vec![1u8; packed_b_len(nr, k, n)];
    let bias = vec![0i32; m];
    let scale = vec![1.0f32; m];
    let mut out = vec![0u8; m * n];
    let ok = GemmInputs {
        a: &a,
        b_panels: &b,
        n,
        bias: &bias,
        scale: &scale,
    };
    assert!(kern.run(&ok, &mut out, n).is_ok());
    let short_b = GemmInputs {
        b_panels: &b[1..],
        ..ok
    };
    assert!(kern.run(&short_b, &mut out, n).is_err());
    let short_bias = GemmInputs {
        bias: &bias[1..],
        ..ok
    };
    assert!(kern.run(&short_bias, &mut out, n).is_err());
    let short_scale = GemmInputs {
        scale: &scale[1..],
        ..ok
    };
    assert!(kern.run(&short_scale, &mut out, n).is_err());
    assert!(kern.run(&ok, &mut out[1..], n).is_err());
    assert!(kern.run(&ok, &mut out, n - 1).is_err());
    let wide = GemmInputs { n: n + nr, ..ok };
    assert!(kern.run(&wide, &mut out, n + nr).is_err());
    let mut wrong_type = vec![0i32; m * n];
    assert!(kern.run(&ok, &mut wrong_type, n).is_err());
    let other = pack_a(&vec![1i8; m * (k + 1)], m, k + 1).unwrap();
    let other_a = GemmInputs { a: &other, ..ok };
    assert!(kern.run(&other_a, &mut out, n).is_err());
    let mr = kern.mr();
    assert!(kern.run_rows(&ok, &mut out, n, 1..m).is_err());
    assert!(kern.run_rows(&ok, &mut out, n, 0..m + 1).is_err());
    assert!(kern.run_rows(&ok, &mut out, n, mr..m).is_ok());
    assert!(kern.run_block(&ok, &mut out, n, 0..m, 0..3).is_err());
    // Bad specs and packing inputs.
    let mut cm = CodeModule::new().unwrap();
    assert!(define_gemm(&mut cm, &GemmSpec::new(0, 4, Epilogue::I32)).is_err());
    assert!(define_gemm(
        &mut cm,
        &GemmSpec::new(
            4,
            4,
            Epilogue::Quant {
                zp: 0,
                lo: 10,
                hi: 5,
                signed: false
            }
        )
    )
    .is_err());
    assert!(define_gemm(
        &mut cm,
        &GemmSpec::new(
            4,
            4,
            Epilogue::Quant {
                zp: 0,
                lo: -1,
                hi: 5,
                signed: false
            }
        )
    )
    .is_err());
    assert!(pack_a(&[1i8; 5], 2, 3).is_err());
    assert!(pack_b(
        &[1u8; 5],
        2,
        3,
        3,
        NR,
        &mut vec![0u8; packed_b_len(NR, 2, 3)]
    )
    .is_err());
    assert!(pack_b(&[1u8; 6], 2, 3, 3, NR, &mut [0u8; 4]).is_err());
    assert!(pack_b(&[1u8; 6], 2, 3, 3, 6, &mut [0u8; 64]).is_err());
    assert!(fold_zero_point(&[1, 2], &a, 3).is_err());
}

#[test]
fn vnni_kernel_emits_vpdpbusd() {
    let mut cm = CodeModule::new().unwrap();
    if !cm.features().vnni {
        eprintln!("skipped: the host has no VNNI");
        return;
    }
    cm.set_disasm(true);
    let spec = GemmSpec {
        m: 13,
        k: 70,
        epilogue: Epilogue::Quant {
            zp: 3,
            lo: 0,
            hi: 255,
            signed: false,
        },
        dot: Dot::Vnni,
    };
    define_gemm(&mut cm, &spec).unwrap();
    let text = cm.last_disasm().expect("disassembly").to_string();
    let count = text.matches("vpdpbusd").count();
    // Full blocks (6 rows) and the 1-row tail: 2 per row per k-group, in the unrolled loop
    // (4 groups) and the tail groups (70 -> 18 groups = 4 chunks + 2).
    let per_groups = 4 + 2;
    assert_eq!(count, 2 * (6 + 1) * per_groups, "{text}");
    assert!(!text.contains("pmaddubsw"), "{text}");
    // The exact path on the same shape: pmaddwd, no vpdpbusd.
    let mut cm2 = CodeModule::new().unwrap();
    cm2.set_disasm(true);
    define_gemm(
        &mut cm2,
        &GemmSpec {
            dot: Dot::ExactI16,
            ..spec
        },
    )
    .unwrap();
    let text2 = cm2.last_disasm().unwrap();
    assert!(
        !text2.contains("vpdpbusd") && text2.contains("pmaddwd"),
        "{text2}"
    );
}

/// The zmm tier's bytes decode to `vpdpbusd zmm, zmm, zmm` fed by one `vpbroadcastd` of the
/// row's 4 weights per row and k-group, 2 per row per k-group, with two B prefetches per k-group,
/// and Auto picks it.
#[test]
fn zmm_kernel_emits_vpdpbusd_zmm() {
    use iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter, Mnemonic, OpKind};
    if !has_zmm() {
        eprintln!("skipped: no avx512vnni");
        return;
    }
    let cm = CodeModule::new().unwrap();
    let spec = GemmSpec {
        m: 13,
        k: 70,
        epilogue: Epilogue::Quant {
            zp: 3,
            lo: 0,
            hi: 255,
            signed: false,
        },
        dot: Dot::Auto,
    };
    assert_eq!(gemm_tier(&cm, &spec).unwrap(), GemmTier::Zmm);
    assert_eq!(GemmTier::Zmm.nr(), NR_ZMM);
    let code = zmm_code(&cm, &spec).unwrap().expect("zmm code");
    let mut dec = Decoder::new(64, &code, DecoderOptions::NONE);
    let mut fmt = IntelFormatter::new();
    let (mut dots, mut bcasts, mut prefetches, mut text) = (0, 0, 0, String::new());
    for ins in dec.iter() {
        assert!(!ins.is_invalid(), "undecodable bytes in {text}");
        fmt.format(&ins, &mut text);
        text.push('\n');
        if ins.mnemonic() == Mnemonic::Vpdpbusd {
            assert!(
                ins.op0_register().is_zmm()
                    && ins.op1_register().is_zmm()
                    && ins.op2_register().is_zmm(),
                "{text}"
            );
            dots += 1;
        }
        if ins.mnemonic() == Mnemonic::Vpbroadcastd
            && ins.op0_register().is_zmm()
            && ins.op1_kind() == OpKind::Memory
        {
            bcasts += 1;
        }
        if ins.mnemonic() == Mnemonic::Prefetcht0 {
            prefetches += 1;
        }
    }
    // 12-row blocks and the 1-row tail: 2 per row per k-group, in the unrolled loop (4 groups)
    // and the tail groups (70 -> 18 groups = 4 chunks + 2).
    let groups = 4 + 2;
    assert_eq!(dots, 2 * (12 + 1) * groups, "{text}");
    // One weight broadcast per row and k-group, plus the bias broadcasts per row.
    assert_eq!(bcasts, (12 + 1) * groups + (12 + 1), "{text}");
    assert!(text.contains("vpdpbusd zmm0,zmm30,zmm28"), "{text}");
    // Two B-stream prefetches per k-group (both row blocks).
    assert_eq!(prefetches, 2 * 2 * groups, "{text}");
    // Forcing the 128-bit tiers still works on this host.
    for (dot, tier) in [
        (Dot::Vnni, GemmTier::Vnni),
        (Dot::ExactI16, GemmTier::ExactI16),
    ] {
        let s = GemmSpec { dot, ..spec };
        if dot == Dot::Vnni && !cm.features().vnni {
            continue;
        }
        assert_eq!(gemm_tier(&cm, &s).unwrap(), tier);
        assert!(zmm_code(&cm, &s).unwrap().is_none());
    }
}
