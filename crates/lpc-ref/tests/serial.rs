//! `lpc_ref::util::serial` (how lpc-jit runs one-thread models) computes what the parallel
//! paths compute, bit for bit: conv (the row-split sgemm and the panel-split im2col), batched
//! matmul and max pool are all big enough here to take their parallel paths outside it.

use lpc_ir::Tensor;

fn input(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let v = (0..n as u64)
        .map(|i| (((i + seed) * 2654435761) % 2001) as f32 / 1000.0 - 1.0)
        .collect();
    Tensor::from_f32(shape, v).unwrap()
}

#[test]
fn serial_runs_match_parallel_runs() {
    assert!(
        rayon::current_num_threads() > 1,
        "needs a pool of more than one thread to compare with"
    );
    let g = lpc_ir::text::parse(
        r#"graph @g(%x: f32[2,16,40,40], %w: f32[32,16,3,3], %a: f32[4,96,64], %b: f32[4,64,80]) -> (%p, %mm) {
  %y = conv(%x, %w) {kernel=[3,3], strides=[1,1], pads=[1,1,1,1], dilations=[1,1], group=1} : f32[2,32,40,40]
  %p = max_pool(%y) {kernel=[3,3], strides=[1,1], pads=[1,1,1,1], dilations=[1,1]} : f32[2,32,40,40]
  %mm = matmul(%a, %b) : f32[4,96,80]
  return %p, %mm
}"#,
    )
    .unwrap();
    let xs = [
        input(&[2, 16, 40, 40], 1),
        input(&[32, 16, 3, 3], 2),
        input(&[4, 96, 64], 3),
        input(&[4, 64, 80], 4),
    ];
    let par = lpc_ref::run(&g, &xs).unwrap();
    let ser = lpc_ref::util::serial(|| lpc_ref::run(&g, &xs)).unwrap();
    assert_eq!(lpc_ref::util::threads(), rayon::current_num_threads());
    for (a, b) in par.iter().zip(&ser) {
        assert!(a.same_content(b), "{a} vs {b}");
    }
}
