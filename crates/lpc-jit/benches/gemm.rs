//! INT8 GEMM kernel throughput per code tier (criterion): `cargo bench -p lpc-jit --bench gemm`.
//!
//! Throughput is reported in elements/s with 2·M·N·K "elements" per call, so criterion's
//! `Gelem/s` reads directly as GOPS. Peaks measured on the reference machine
//! (`../shared/notes/cranelift-int8.md`): `vpdpbusd zmm` 940 GOPS, `vpdpbusd xmm` 257 GOPS.
//! One thread (`run`), plus the rayon split (`run_par`) for the u8 epilogue.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lpc_jit::gemm::{
    define_gemm, gemm_tier, pack_a, pack_b, packed_b_len, Dot, Epilogue, GemmKernel, GemmSpec,
};
use lpc_jit::CodeModule;
use std::time::Duration;

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

fn bench(c: &mut Criterion) {
    let shapes: [(&str, usize, usize, usize); 4] = [
        ("48x64x512", 48, 64, 512),
        ("256x256x256", 256, 256, 256),
        ("1024x1024x1024", 1024, 1024, 1024),
        ("resnet_s1_M64_N3136_K576", 64, 3136, 576),
    ];
    for (shape, m, n, k) in shapes {
        let mut group = c.benchmark_group(format!("gemm/{shape}"));
        group
            .throughput(Throughput::Elements(2 * (m * n * k) as u64))
            .sample_size(20)
            .measurement_time(Duration::from_secs(3));
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
        for dot in tiers() {
            let quant = Epilogue::Quant {
                zp: 0,
                lo: 0,
                hi: 255,
                signed: false,
            };
            let sq = GemmSpec {
                dot,
                ..GemmSpec::new(m, k, quant)
            };
            let si = GemmSpec {
                dot,
                ..GemmSpec::new(m, k, Epilogue::I32)
            };
            let mut cm = CodeModule::new().expect("JIT module");
            let tier = gemm_tier(&cm, &sq).expect("tier").name();
            let (id_q, id_i) = (
                define_gemm(&mut cm, &sq).expect("u8 kernel"),
                define_gemm(&mut cm, &si).expect("i32 kernel"),
            );
            cm.finalize().expect("finalize");
            // SAFETY: the ids come from define_gemm with these specs on `cm`, which outlives
            // the kernels (both dropped at the end of this iteration).
            let (kq, ki) = unsafe {
                (
                    GemmKernel::new(&cm, id_q, &sq).expect("u8 kernel"),
                    GemmKernel::new(&cm, id_i, &si).expect("i32 kernel"),
                )
            };
            let nr = kq.nr();
            let mut b = vec![0u8; packed_b_len(nr, k, n)];
            pack_b(&x, k, n, n, nr, &mut b).expect("pack B");
            let mut out_u8 = vec![0u8; m * n];
            let mut out_i32 = vec![0i32; m * n];
            group.bench_function(BenchmarkId::new(tier, "u8"), |bch| {
                bch.iter(|| {
                    kq.run(&a, &b, n, &bias, &scale, &mut out_u8, n)
                        .expect("run")
                })
            });
            group.bench_function(BenchmarkId::new(tier, "i32"), |bch| {
                bch.iter(|| ki.run(&a, &b, n, &bias, &[], &mut out_i32, n).expect("run"))
            });
            group.bench_function(BenchmarkId::new(tier, "u8_par"), |bch| {
                bch.iter(|| {
                    kq.run_par(&a, &b, n, &bias, &scale, &mut out_u8, n)
                        .expect("run")
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
