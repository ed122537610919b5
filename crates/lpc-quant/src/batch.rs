//! The batch runner: samples of a [`SampleSource`] stacked into batches and run over the
//! rayon threads, with a progress line.

use crate::progress::Progress;
use crate::QuantError;
use lpc_data::{concat_rows, SampleSource};
use lpc_ir::Tensor;
use rayon::prelude::*;

/// Input values per interpreter run that `--batch 0` (auto) aims for: batches of large inputs
/// (e.g. 3×320×320 images) make every intermediate tensor fall out of the caches — on ppocr det
/// batch 32 collected statistics ~1.6× slower than batch 1–4 — while tiny inputs (digits)
/// gain from batching the per-op overhead away.
pub const AUTO_BATCH_VALUES: usize = 1 << 16;

/// The batch `for_batches` uses for a requested `batch`: itself, or for 0 (auto) about
/// [`AUTO_BATCH_VALUES`] input values per run, between 1 and 32 samples.
pub fn resolve_batch(src: &dyn SampleSource, batch: usize) -> Result<usize, QuantError> {
    if batch > 0 || src.is_empty() {
        return Ok(batch.max(1));
    }
    let values: usize = src.get(0)?.iter().map(Tensor::len).sum();
    Ok((AUTO_BATCH_VALUES / values.max(1)).clamp(1, 32))
}

/// Runs `f(state, batch_inputs, first_sample, batch_len)` over all samples of `src` in batches of
/// up to `batch` samples (0: auto, see [`resolve_batch`]), on all rayon threads (contiguous
/// chunks of samples per thread), and merges the per-thread states in chunk order (deterministic
/// for a given thread count).
pub fn for_batches<S: Send>(
    src: &dyn SampleSource,
    batch: usize,
    label: &str,
    progress: bool,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, &[Tensor], usize, usize) -> Result<(), QuantError> + Sync,
    merge: impl Fn(&mut S, S),
) -> Result<S, QuantError> {
    let n = src.len();
    let batch = resolve_batch(src, batch)?;
    let threads = rayon::current_num_threads().max(1).min(n.max(1));
    let per = n.div_ceil(threads);
    let bar = Progress::new(label, n, progress);
    let states: Vec<Result<S, QuantError>> = (0..threads)
        .into_par_iter()
        .map(|t| {
            let mut st = init();
            let (a, b) = (t * per, ((t + 1) * per).min(n));
            let mut i = a;
            while i < b {
                let k = batch.max(1).min(b - i);
                let samples: Vec<Vec<Tensor>> =
                    (i..i + k).map(|j| src.get(j)).collect::<Result<_, _>>()?;
                let inputs: Vec<Tensor> = (0..samples[0].len())
                    .map(|x| {
                        let col: Vec<Tensor> = samples.iter().map(|s| s[x].clone()).collect();
                        if col.len() == 1 {
                            Ok(col.into_iter().next().expect("one"))
                        } else {
                            concat_rows(&col)
                        }
                    })
                    .collect::<Result<_, _>>()?;
                f(&mut st, &inputs, i, k)?;
                bar.add(k);
                i += k;
            }
            Ok(st)
        })
        .collect();
    bar.finish();
    let mut it = states.into_iter();
    let mut acc = it.next().ok_or(QuantError::NoSamples {
        what: "calibration",
    })??;
    for s in it {
        merge(&mut acc, s?);
    }
    Ok(acc)
}
