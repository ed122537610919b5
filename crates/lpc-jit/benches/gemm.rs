//! GEMM throughput (GOPS = 2·M·N·K / time) of the JIT kernel per code tier (zmm, 128-bit VNNI),
//! one thread and the rayon split.
//!
//! A plain `harness = false` timer (median of 7 batches of ≥ 50 ms each) instead of criterion,
//! to keep the crate's dependency tree unchanged. Run: `cargo bench -p lpc-jit --bench gemm`.

use std::time::{Duration, Instant};

use lpc_jit::gemm::{
    define_gemm, gemm_tier, pack_a, pack_b, packed_b_len, Dot, Epilogue, GemmKernel, GemmSpec,
    GemmTier,
};
use lpc_jit::CodeModule;

/// The `vpdpbusd` ceilings of a tier's vector width measured on the reference machine
/// (notes/cranelift-int8.md): zmm 940, xmm 257; the exact i16 path against the xmm peak.
fn peak_gops(t: GemmTier) -> f64 {
    match t {
        GemmTier::Zmm => 940.0,
        GemmTier::Vnni | GemmTier::ExactI16 => 257.0,
    }
}

/// Nanoseconds this thread has run on a CPU (Linux `schedstat`), to discount time lost to
/// other processes on a busy machine; None elsewhere.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Median wall time and median on-CPU time (when known) per call.
fn median_secs(mut f: impl FnMut()) -> (f64, Option<f64>) {
    f();
    let mut reps = 1u32;
    loop {
        let t = Instant::now();
        for _ in 0..reps {
            f();
        }
        if t.elapsed() >= Duration::from_millis(50) {
            break;
        }
        reps *= 2;
    }
    let mut wall = Vec::new();
    let mut cpu = Vec::new();
    for _ in 0..7 {
        let c0 = thread_cpu_ns();
        let t = Instant::now();
        for _ in 0..reps {
            f();
        }
        wall.push(t.elapsed().as_secs_f64() / reps as f64);
        if let (Some(a), Some(b)) = (c0, thread_cpu_ns()) {
            cpu.push((b - a) as f64 * 1e-9 / reps as f64);
        }
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let c = if cpu.len() == wall.len() {
        Some(med(&mut cpu))
    } else {
        None
    };
    (med(&mut wall), c)
}

fn bench(name: &str, m: usize, n: usize, k: usize, dot: Dot) -> Result<(), lpc_jit::JitError> {
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
    let a = pack_a(&w, m, k)?;
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
    let mut cm = CodeModule::new()?;
    let tier = gemm_tier(&cm, &sq)?;
    let peak = peak_gops(tier);
    let name = format!("{name} {}", tier.name());
    let t = Instant::now();
    let id_q = define_gemm(&mut cm, &sq)?;
    let id_i = define_gemm(&mut cm, &si)?;
    let compile = t.elapsed().as_secs_f64() / 2.0;
    cm.finalize()?;
    // SAFETY: `cm` lives until the end of this function, after the last use of the kernels.
    let (kq, ki) = unsafe {
        (
            GemmKernel::new(&cm, id_q, &sq)?,
            GemmKernel::new(&cm, id_i, &si)?,
        )
    };
    let nr = kq.nr();
    let mut b = vec![0u8; packed_b_len(nr, k, n)];
    pack_b(&x, k, n, n, nr, &mut b)?;
    let ops = 2.0 * (m * n * k) as f64;
    let mut out_u8 = vec![0u8; m * n];
    let mut out_i32 = vec![0i32; m * n];
    let report = |what: &str, (secs, cpu): (f64, Option<f64>)| {
        let gops = ops / secs / 1e9;
        let on_cpu = match cpu {
            // The caller's on-CPU time says nothing about the workers'.
            Some(_) if what.ends_with("par") => String::new(),
            Some(c) => {
                let g = ops / c / 1e9;
                format!("per CPU-second {g:>6.1} GOPS = {:.2} of peak", g / peak)
            }
            None => String::new(),
        };
        println!(
            "{name:<32} {what:<7} {:>9.3} ms wall {gops:>6.1} GOPS = {:.2} of peak; {on_cpu}",
            secs * 1e3,
            gops / peak
        );
    };
    let mut err = None;
    let s = median_secs(|| {
        if let Err(e) = kq.run(&a, &b, n, &bias, &scale, &mut out_u8, n) {
            err = Some(e);
        }
    });
    report("u8", s);
    let s = median_secs(|| {
        if let Err(e) = ki.run(&a, &b, n, &bias, &[], &mut out_i32, n) {
            err = Some(e);
        }
    });
    report("i32", s);
    let s = median_secs(|| {
        if let Err(e) = kq.run_par(&a, &b, n, &bias, &scale, &mut out_u8, n) {
            err = Some(e);
        }
    });
    report("u8 par", s);
    println!("{name:<32} compile    {:>9.3} ms per kernel", compile * 1e3);
    match err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn main() -> Result<(), lpc_jit::JitError> {
    // `cargo test --benches` passes `--bench`-less args; only run when invoked as a bench.
    if !std::env::args().any(|a| a == "--bench") {
        println!("gemm bench: run with `cargo bench -p lpc-jit --bench gemm`");
        return Ok(());
    }
    let cm = CodeModule::new()?;
    let f = cm.features();
    println!(
        "host VNNI: {}; AVX512-VNNI zmm tier: {}; rayon threads: {}",
        f.vnni,
        f.zmm_vnni && cm.system_v(),
        rayon::current_num_threads()
    );
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
    let shapes: [(&str, usize, usize, usize); 4] = [
        ("48x64x512 (cache-resident)", 48, 64, 512),
        ("256x256x256", 256, 256, 256),
        ("1024x1024x1024", 1024, 1024, 1024),
        ("M64 N3136 K576 (resnet s1)", 64, 3136, 576),
    ];
    for (name, m, n, k) in shapes {
        for &dot in &dots {
            bench(name, m, n, k, dot)?;
        }
    }
    Ok(())
}
