//! The ops with bodies: If, Loop and Scan. Each body is a graph of its own, run with
//! [`crate::run`] on the node's values (captured outer values are its trailing inputs).

use crate::shape_ops::check_count;
use crate::util::norm_axis;
use crate::{invalid, EvalError, EvalResult, Inputs};
use lpc_ir::{DType, Graph, Op, ScanAttrs, Tensor, TensorData, ValueType};

/// Runs a body, its errors naming it.
fn run_body(body: &Graph, inputs: &[Tensor]) -> EvalResult<Vec<Tensor>> {
    crate::run(body, inputs).map_err(|e| invalid!("body '{}': {e}", body.name))
}

/// The single element of a bool condition (one element, any rank).
fn condition(t: &Tensor, what: &'static str, slot: usize) -> EvalResult<bool> {
    match t.data() {
        TensorData::Bool(v) if v.len() == 1 => Ok(v[0]),
        TensorData::Bool(v) => Err(invalid!("{what} has {} elements, expected 1", v.len())),
        _ => Err(EvalError::DType {
            slot,
            what,
            got: t.dtype(),
            expected: "bool",
        }),
    }
}

/// The input slots from `from` on, all required, as owned tensors.
fn owned(i: Inputs, from: usize) -> EvalResult<Vec<Tensor>> {
    (from..i.len())
        .map(|s| i.req(s, "body operand").cloned())
        .collect()
}

/// Slice `idx` of `t` along `axis`, the axis removed.
fn slice_axis(t: &Tensor, axis: usize, idx: usize) -> EvalResult<Tensor> {
    let shape = t.shape();
    let es = t.dtype().size();
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product::<usize>() * es;
    let bytes = t.to_le_bytes();
    let mut out = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        let at = (o * shape[axis] + idx) * inner;
        out.extend_from_slice(&bytes[at..at + inner]);
    }
    let mut s = shape.to_vec();
    s.remove(axis);
    Tensor::from_le_bytes(t.dtype(), &s, &out).map_err(|e| invalid!("{e}"))
}

/// The tensors of `parts` (one dtype and shape) stacked along a new axis `axis` (of the
/// result's rank, may be negative); `empty` gives the result's dtype and slice shape when
/// there are no parts.
fn stack(parts: &[Tensor], axis: i64, empty: &ValueType) -> EvalResult<Tensor> {
    let Some(first) = parts.first() else {
        // No iterations: an empty stack, shaped by the body's declared output when known.
        let dtype = empty
            .dtype
            .ok_or_else(|| invalid!("no iterations, and the body's output dtype is unknown"))?;
        let dims = empty
            .shape
            .as_ref()
            .and_then(|s| s.as_known())
            .unwrap_or_default();
        let a = norm_axis(axis, dims.len() + 1)?;
        let mut shape = dims;
        shape.insert(a, 0);
        return Ok(Tensor::zeros(dtype, &shape));
    };
    let a = norm_axis(axis, first.rank() + 1)?;
    for p in parts {
        if p.dtype() != first.dtype() || p.shape() != first.shape() {
            return Err(invalid!(
                "body outputs to stack differ: {} {:?} and {} {:?}",
                first.dtype(),
                first.shape(),
                p.dtype(),
                p.shape()
            ));
        }
    }
    let mut shape = first.shape().to_vec();
    shape.insert(a, parts.len());
    let es = first.dtype().size();
    let outer: usize = first.shape()[..a].iter().product();
    let inner: usize = first.shape()[a..].iter().product::<usize>() * es;
    let raw: Vec<Vec<u8>> = parts.iter().map(Tensor::to_le_bytes).collect();
    let mut bytes = Vec::with_capacity(check_count(&shape)? * es);
    for o in 0..outer {
        for r in &raw {
            bytes.extend_from_slice(&r[o * inner..(o + 1) * inner]);
        }
    }
    Tensor::from_le_bytes(first.dtype(), &shape, &bytes).map_err(|e| invalid!("{e}"))
}

/// The declared type of body output `k`.
fn out_type(body: &Graph, k: usize) -> ValueType {
    body.outputs()
        .get(k)
        .map_or_else(ValueType::unknown, |&v| body.value_type(v).clone())
}

/// The split of a node's inputs and outputs (see `Op::body_io`).
fn io(op: &Op, i: Inputs, n_out: usize) -> EvalResult<lpc_ir::BodyIo> {
    match op.body_io(i.len(), n_out) {
        Some(r) => r.map_err(EvalError::Invalid),
        None => Err(invalid!("{} has no body", op.name())),
    }
}

/// If: runs the branch the condition picks on the captured values.
pub fn if_(then_branch: &Graph, else_branch: &Graph, i: Inputs) -> EvalResult<Vec<Tensor>> {
    let branch = if condition(i.req(0, "cond")?, "cond", 0)? {
        then_branch
    } else {
        else_branch
    };
    run_body(branch, &owned(i, 1)?)
}

/// Loop: runs the body while the iteration count is below the trip count (when given) and the
/// condition holds (the initial one when given, then the body's); loop-carried values are fed
/// back, scan outputs stacked along a new leading axis.
pub fn loop_(op: &Op, body: &Graph, i: Inputs, n_out: usize) -> EvalResult<Vec<Tensor>> {
    let io = io(op, i, n_out)?;
    let trips = match i.opt(0) {
        Some(t) if t.dtype() != DType::I64 => {
            return Err(EvalError::DType {
                slot: 0,
                what: "max_trip_count",
                got: t.dtype(),
                expected: "i64",
            })
        }
        Some(t) if t.len() != 1 => {
            return Err(invalid!(
                "max_trip_count has {} elements, expected 1",
                t.len()
            ))
        }
        Some(t) => Some(t.to_i64_vec()[0]),
        None => None,
    };
    let mut cond = match i.opt(1) {
        Some(t) => condition(t, "cond", 1)?,
        None => true,
    };
    if trips.is_none() && i.opt(1).is_none() {
        return Err(invalid!(
            "a loop needs a trip count or a condition (it would never end)"
        ));
    }
    let mut carried: Vec<Tensor> = owned(i, 2)?;
    let captures = carried.split_off(io.carried);
    let mut scans: Vec<Vec<Tensor>> = vec![vec![]; io.scan_outputs];
    let mut it: i64 = 0;
    while cond && trips.is_none_or(|m| it < m) {
        let mut ins = vec![
            Tensor::scalar_i64(it),
            Tensor::new(&[], TensorData::Bool(vec![cond])).map_err(|e| invalid!("{e}"))?,
        ];
        ins.append(&mut carried);
        ins.extend(captures.iter().cloned());
        let mut outs = run_body(body, &ins)?.into_iter();
        let c = outs.next().ok_or_else(|| invalid!("body has no outputs"))?;
        cond = condition(&c, "the body's condition", 0)?;
        carried = outs.by_ref().take(io.carried).collect();
        for (s, t) in scans.iter_mut().zip(outs) {
            s.push(t);
        }
        it += 1;
    }
    for (j, s) in scans.into_iter().enumerate() {
        let t = stack(&s, 0, &out_type(body, 1 + io.carried + j))?;
        carried.push(t);
    }
    Ok(carried)
}

/// Scan (opset 9 form): runs the body once per slice of the scan inputs along their axes
/// (backwards where the direction is 1), state fed back, scan outputs stacked along their
/// axes (in reverse order where the direction is 1).
pub fn scan(a: &ScanAttrs, op: &Op, i: Inputs, n_out: usize) -> EvalResult<Vec<Tensor>> {
    let io = io(op, i, n_out)?;
    let mut state: Vec<Tensor> = owned(i, 0)?;
    let mut scan_in = state.split_off(io.carried);
    let captures = scan_in.split_off(io.scan_inputs);
    let attr = |v: &[i64], j: usize| v.get(j).copied().unwrap_or(0);
    let mut axes = vec![];
    let mut len = None;
    for (j, t) in scan_in.iter().enumerate() {
        let ax = norm_axis(attr(&a.input_axes, j), t.rank())?;
        let n = t.shape()[ax];
        if *len.get_or_insert(n) != n {
            return Err(invalid!(
                "scan input {j} has {n} steps along axis {ax}, scan input 0 has {}",
                len.unwrap_or(0)
            ));
        }
        axes.push(ax);
    }
    let len = len.unwrap_or(0);
    let mut scans: Vec<Vec<Tensor>> = vec![vec![]; io.scan_outputs];
    for t in 0..len {
        let mut ins = std::mem::take(&mut state);
        for (j, x) in scan_in.iter().enumerate() {
            let idx = if attr(&a.input_directions, j) == 1 {
                len - 1 - t
            } else {
                t
            };
            ins.push(slice_axis(x, axes[j], idx)?);
        }
        ins.extend(captures.iter().cloned());
        let mut outs = run_body(&a.body, &ins)?.into_iter();
        state = outs.by_ref().take(io.carried).collect();
        for (s, t) in scans.iter_mut().zip(outs) {
            s.push(t);
        }
    }
    for (j, mut s) in scans.into_iter().enumerate() {
        if attr(&a.output_directions, j) == 1 {
            s.reverse();
        }
        let axis = attr(&a.output_axes, j);
        state.push(stack(&s, axis, &out_type(&a.body, io.carried + j))?);
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lpc_ir::text::parse;
    use std::sync::Arc;

    fn f32s(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_f32(shape, v.to_vec()).unwrap()
    }

    fn run1(text: &str, inputs: &[Tensor]) -> Result<Vec<Tensor>, crate::RunError> {
        crate::run(&parse(text).unwrap(), inputs)
    }

    #[test]
    fn if_picks_a_branch_on_captured_values() {
        let text = "graph @g(%c: bool[], %x: f32[2]) -> (%y) {
  %y = if(%c, %x) {then_branch=graph @t(%x: f32[2]) -> (%r) {
    %r = neg(%x)
    return %r
  }, else_branch=graph @e(%x: f32[2]) -> (%x) {
    return %x
  }}
  return %y
}";
        let x = f32s(&[2], &[1.0, -2.0]);
        let yes = Tensor::new(&[], TensorData::Bool(vec![true])).unwrap();
        let no = Tensor::new(&[], TensorData::Bool(vec![false])).unwrap();
        assert_eq!(
            run1(text, &[yes, x.clone()]).unwrap()[0].to_f32_vec(),
            [-1.0, 2.0]
        );
        assert_eq!(run1(text, &[no, x]).unwrap()[0].to_f32_vec(), [1.0, -2.0]);
    }

    #[test]
    fn loop_carries_and_stacks() {
        // y = y + x each iteration; the scan output stacks y after each step.
        let text = "graph @g(%m: i64[], %y0: f32[1], %x: f32[1]) -> (%y, %ys) {
  %y, %ys = loop(%m, _, %y0, %x) {captures=1, body=graph @b(%i: i64[], %c: bool[], %y: f32[1], %x: f32[1]) -> (%c, %s, %s2) {
    %s = add(%y, %x)
    %s2 = identity(%s) : f32[1]
    return %c, %s, %s2
  }}
  return %y, %ys
}";
        let outs = run1(
            text,
            &[
                Tensor::scalar_i64(3),
                f32s(&[1], &[1.0]),
                f32s(&[1], &[2.0]),
            ],
        )
        .unwrap();
        assert_eq!(outs[0].to_f32_vec(), [7.0]);
        assert_eq!(outs[1].shape(), [3, 1]);
        assert_eq!(outs[1].to_f32_vec(), [3.0, 5.0, 7.0]);
        // Zero iterations: the initial value, an empty stack shaped by the body's output.
        let outs = run1(
            text,
            &[
                Tensor::scalar_i64(0),
                f32s(&[1], &[1.0]),
                f32s(&[1], &[2.0]),
            ],
        )
        .unwrap();
        assert_eq!(outs[0].to_f32_vec(), [1.0]);
        assert_eq!(outs[1].shape(), [0, 1]);
    }

    #[test]
    fn loop_without_trip_count_or_condition_is_an_error() {
        let body = parse(
            "graph @b(%i: i64[], %c: bool[]) -> (%c) {
  return %c
}",
        )
        .unwrap();
        let op = Op::Loop {
            body: Arc::new(body.clone()),
            captures: 0,
        };
        let e = loop_(&op, &body, Inputs::new(&[None, None]), 0).unwrap_err();
        assert!(e.to_string().contains("trip count or a condition"), "{e}");
    }

    #[test]
    fn scan_sums_rows_in_both_directions() {
        let text = "graph @g(%s0: f32[2], %x: f32[3,2]) -> (%s, %ys) {
  %s, %ys = scan(%s0, %x) {num_scan_inputs=1, input_directions=[1], output_axes=[1], body=graph @b(%s: f32[2], %r: f32[2]) -> (%t, %u) {
    %t = add(%s, %r)
    %u = identity(%t)
    return %t, %u
  }}
  return %s, %ys
}";
        let x = f32s(&[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let outs = run1(text, &[f32s(&[2], &[0.0, 0.0]), x]).unwrap();
        assert_eq!(outs[0].to_f32_vec(), [9.0, 12.0]);
        // Rows taken last first: 5,6 → 8,10 → 9,12; stacked along axis 1.
        assert_eq!(outs[1].shape(), [2, 3]);
        assert_eq!(outs[1].to_f32_vec(), [5.0, 8.0, 9.0, 6.0, 10.0, 12.0]);
    }
}
