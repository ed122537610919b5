//! FakeQuantize, the one quantization operation of OpenVINO IR.

use super::{need, Table, R};
use crate::builder::Builder;
use crate::net::Layer;
use lpc_ir::{Op, ValueRef};

/// Registers this family's converters.
pub(super) fn register(t: &mut Table) {
    t.add("FakeQuantize", fake_quantize);
}

/// `FakeQuantize`.
fn fake_quantize(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
    need(l, ins, 5, 5)?;
    l.check_broadcast()?;
    let levels = l.i64_attr("levels", -1)?;
    if !(2..=65536).contains(&levels) {
        return Err(l.err(format!("levels {levels} is outside 2..=65536")));
    }
    let inputs: Vec<_> = ins.iter().map(|&v| Some(v)).collect();
    Ok(b.main(
        l,
        Op::FakeQuantize {
            levels: levels as u32,
        },
        &inputs,
    ))
}
