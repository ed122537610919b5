//! INT8 GEMM kernel throughput per code tier (criterion): `cargo bench -p lpc-jit --bench gemm`.
//!
//! Throughput is reported in elements/s with 2·M·N·K "elements" per call, so criterion's
//! `Gelem/s` reads directly as GOPS. Peaks measured on the reference machine
//! (`../shared/notes/cranelift-int8.md`): `vpdpbusd zmm` 940 GOPS, `vpdpbusd xmm` 257 GOPS.
//! One thread (`run`), plus the rayon split (`run_par`) for the u8 epilogue.
//!
//! With `LPC_GEMM_MEDIANS=<shape>` (a label below, e.g. `256x256x256`) it instead times the zmm
//! (else best) tier's u8 and i32 kernels on that shape in units of `LPC_GEMM_BATCH` calls
//! (default 1), `LPC_GEMM_RUNS` units (default 200, after warm-up), and prints one line
//! `tier <name> u8 <GOPS> i32 <GOPS>` of medians: `benches/gemm_vs_ort.py` times ORT in the same
//! units, so both see the same share of a busy machine (criterion's long samples average every
//! preemption in, a per-call median skips them).

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use lpc_jit::kernels::gemm::{
    define_gemm, gemm_tier, pack_a, pack_b, packed_b_len, Dot, Epilogue, GemmInputs, GemmKernel,
    GemmSpec, PackedA,
};
use lpc_jit::CodeModule;
use std::time::{Duration, Instant};

/// The tiers this host has, best first.
fn tiers() -> Vec<Dot> {
    let cm = CodeModule::new().expect("JIT module");
    let f = cm.features();
    let mut dots = Vec::new();
    if f.zmm_vnni && cm.system_v() {
        dots.push(Dot::Zmm);
    }
    if f.vnni {
        dots.push(Dot::Vnni);
    }
    if dots.is_empty() {
        dots.push(Dot::ExactI16);
    }
    dots
}

const SHAPES: [(&str, usize, usize, usize); 4] = [
    ("48x64x512", 48, 64, 512),
    ("256x256x256", 256, 256, 256),
    ("1024x1024x1024", 1024, 1024, 1024),
    ("resnet_s1_M64_N3136_K576", 64, 3136, 576),
];

/// Random operands of one M×N×K shape (B packed per tier).
struct Operands {
    m: usize,
    n: usize,
    k: usize,
    x: Vec<u8>,
    bias: Vec<i32>,
    scale: Vec<f32>,
    a: PackedA,
}

impl Operands {
    fn new(m: usize, n: usize, k: usize) -> Self {
        let mut seed = 0x1234_5678_9abc_def1u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let w: Vec<i8> = (0..m * k).map(|_| next() as i8).collect();
        let x: Vec<u8> = (0..k * n).map(|_| next() as u8).collect();
        let bias: Vec<i32> = (0..m).map(|_| (next() as i32) >> 12).collect();
        let scale: Vec<f32> = (0..m).map(|i| 1e-5 * (1.0 + i as f32 / m as f32)).collect();
        let a = pack_a(&w, m, k).expect("pack A");
        Operands {
            m,
            n,
            k,
            x,
            bias,
            scale,
            a,
        }
    }
}

/// The u8-out (requantize) and i32-out kernels of one tier, their module and packed B.
struct Kernels {
    tier: &'static str,
    kq: GemmKernel,
    ki: GemmKernel,
    b: Vec<u8>,
    // Keeps the code alive; declared last so it is dropped after the kernels.
    _cm: CodeModule,
}

impl Kernels {
    fn new(o: &Operands, dot: Dot) -> Self {
        let quant = Epilogue::Quant {
            zp: 0,
            lo: 0,
            hi: 255,
            signed: false,
        };
        let sq = GemmSpec {
            dot,
            ..GemmSpec::new(o.m, o.k, quant)
        };
        let si = GemmSpec {
            dot,
            ..GemmSpec::new(o.m, o.k, Epilogue::I32)
        };
        let mut cm = CodeModule::new().expect("JIT module");
        let tier = gemm_tier(&cm, &sq).expect("tier").name();
        let (id_q, id_i) = (
            define_gemm(&mut cm, &sq).expect("u8 kernel"),
            define_gemm(&mut cm, &si).expect("i32 kernel"),
        );
        cm.finalize().expect("finalize");
        // SAFETY: the ids come from define_gemm with these specs on `cm`, which is stored with
        // the kernels and dropped after them.
        let (kq, ki) = unsafe {
            (
                GemmKernel::new(&cm, id_q, &sq).expect("u8 kernel"),
                GemmKernel::new(&cm, id_i, &si).expect("i32 kernel"),
            )
        };
        let nr = kq.nr();
        let mut b = vec![0u8; packed_b_len(nr, o.k, o.n)];
        pack_b(&o.x, o.k, o.n, o.n, nr, &mut b).expect("pack B");
        Kernels {
            tier,
            kq,
            ki,
            b,
            _cm: cm,
        }
    }

    fn run_u8(&self, o: &Operands, out: &mut [u8]) {
        self.kq
            .run(
                &GemmInputs {
                    a: &o.a,
                    b_panels: &self.b,
                    n: o.n,
                    bias: &o.bias,
                    scale: &o.scale,
                },
                out,
                o.n,
            )
            .expect("run")
    }

    fn run_i32(&self, o: &Operands, out: &mut [i32]) {
        self.ki
            .run(
                &GemmInputs {
                    a: &o.a,
                    b_panels: &self.b,
                    n: o.n,
                    bias: &o.bias,
                    scale: &[],
                },
                out,
                o.n,
            )
            .expect("run")
    }
}

fn bench(c: &mut Criterion) {
    for (shape, m, n, k) in SHAPES {
        let mut group = c.benchmark_group(format!("gemm/{shape}"));
        group
            .throughput(Throughput::Elements(2 * (m * n * k) as u64))
            .sample_size(20)
            .measurement_time(Duration::from_secs(3));
        let o = Operands::new(m, n, k);
        for dot in tiers() {
            let ks = Kernels::new(&o, dot);
            let mut out_u8 = vec![0u8; m * n];
            let mut out_i32 = vec![0i32; m * n];
            group.bench_function(BenchmarkId::new(ks.tier, "u8"), |bch| {
                bch.iter(|| ks.run_u8(&o, &mut out_u8))
            });
            group.bench_function(BenchmarkId::new(ks.tier, "i32"), |bch| {
                bch.iter(|| ks.run_i32(&o, &mut out_i32))
            });
            group.bench_function(BenchmarkId::new(ks.tier, "u8_par"), |bch| {
                bch.iter(|| {
                    ks.kq
                        .run_par(
                            &GemmInputs {
                                a: &o.a,
                                b_panels: &ks.b,
                                n,
                                bias: &o.bias,
                                scale: &o.scale,
                            },
                            &mut out_u8,
                            n,
                        )
                        .expect("run")
                })
            });
        }
        group.finish();
    }
}

/// Median seconds of `runs` timed units of `batch` calls of `f`, after `runs / 10 + 2` units.
fn median_secs(batch: usize, runs: usize, mut f: impl FnMut()) -> f64 {
    let mut unit = || {
        let t = Instant::now();
        for _ in 0..batch {
            f();
        }
        t.elapsed().as_secs_f64()
    };
    for _ in 0..runs / 10 + 2 {
        unit();
    }
    let mut ts: Vec<f64> = (0..runs.max(1)).map(|_| unit()).collect();
    ts.sort_by(f64::total_cmp);
    ts[ts.len() / 2]
}

/// The `LPC_GEMM_MEDIANS` mode (see the module doc).
fn medians(shape: &str) {
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .map(|v| v.parse::<usize>().expect(name))
            .unwrap_or(default)
            .max(1)
    };
    let (batch, runs) = (env("LPC_GEMM_BATCH", 1), env("LPC_GEMM_RUNS", 200));
    let Some(&(_, m, n, k)) = SHAPES.iter().find(|s| s.0 == shape) else {
        eprintln!("unknown shape {shape}; one of {:?}", SHAPES.map(|s| s.0));
        std::process::exit(2);
    };
    let o = Operands::new(m, n, k);
    let ks = Kernels::new(&o, tiers()[0]);
    let (mut out_u8, mut out_i32) = (vec![0u8; m * n], vec![0i32; m * n]);
    let ops = 2.0 * (m * n * k) as f64 * batch as f64;
    let u8_gops = ops / median_secs(batch, runs, || ks.run_u8(&o, &mut out_u8)) / 1e9;
    let i32_gops = ops / median_secs(batch, runs, || ks.run_i32(&o, &mut out_i32)) / 1e9;
    println!("tier {} u8 {u8_gops:.1} i32 {i32_gops:.1}", ks.tier);
}

fn main() {
    if let Ok(shape) = std::env::var("LPC_GEMM_MEDIANS") {
        medians(&shape);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}

criterion_group!(benches, bench);
