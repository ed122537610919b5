//! `lpc explain MODEL --node NAME` on lpc's own quantized digits_mbv (a checked-in fixture made
//! with `lpc quantize`): which rules fired on a node that became integer, and why the
//! depthwise conv (per-channel activation zero points) stayed float.

use lpc_fold::explain;
use std::path::Path;

fn mbv() -> lpc_ir::Graph {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/digits_mbv.lpc-int8.lir");
    lpc_load::load_model(&p).expect("fixture loads")
}

#[test]
fn explain_names_the_rules_that_fired() {
    let text = explain(&mbv(), &[], None, "fc").expect("explain");
    assert!(text.contains("node 'fc' (gemm)"), "{text}");
    assert!(text.contains("[fuse] gemm-f32"), "{text}");
    assert!(text.contains("(qmatmul)"), "{text}");
    assert!(!text.contains("stays float"), "{text}");
}

#[test]
fn explain_says_why_the_depthwise_conv_stays_float() {
    let text = explain(&mbv(), &[], None, "dwconv2").expect("explain");
    assert!(text.contains("node 'dwconv2' (conv)"), "{text}");
    assert!(text.contains("stays float"), "{text}");
    // The depthwise rule matches but its input zero points differ per channel.
    assert!(text.contains("rule conv-dw-f32"), "{text}");
    assert!(text.contains("common-zero gave no value"), "{text}");
    // The per-tensor rules refuse on the per-channel input scale.
    assert!(
        text.contains("rule conv-f32") && text.contains("condition false: per-tensor ?sx"),
        "{text}"
    );
}

#[test]
fn explain_rejects_an_unknown_node() {
    let err = explain(&mbv(), &[], None, "no-such-node").expect_err("unknown node");
    assert!(
        err.to_string().contains("no node named 'no-such-node'"),
        "{err}"
    );
}
