//! Rule files: located parse errors, the analysis conflict check, `rules check` catching an
//! unsound rule, and a rule set that stops at its limits.

use lpc_fold::check::check_rules;
use lpc_fold::engine::parse_sources;
use lpc_fold::{fold, FoldError, FoldOptions, Limits, Phase, Pipeline};
use std::time::Duration;

fn err(src: &str) -> String {
    match lpc_fold::parse_rules("t.rules", src) {
        Ok(_) => panic!("expected an error for:\n{src}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn malformed_rule_files_give_located_errors() {
    assert_eq!(
        err("rule a\n  match (q (dq ?x ?s ?z) ?s ?z\n  rewrite ?x\n"),
        "t.rules:2:9: unbalanced parentheses: this '(' is never closed"
    );
    assert_eq!(
        err("rule a\n  match (frobnicate ?x)\n  rewrite ?x\n"),
        "t.rules:2:10: unknown op 'frobnicate'"
    );
    assert_eq!(
        err("rule a\n  match (relu ?x)\n  rewrite (relu ?y)\n"),
        "t.rules:3:17: unbound variable ?y"
    );
    assert!(
        err("rule a\n  match (relu ?x)\n  where shiny ?x\n  rewrite ?x\n")
            .starts_with("t.rules:3:9: unknown condition 'shiny'")
    );
    assert!(
        err("rule a\n  match (relu ?x)\n  let ?y = magic(?x)\n  rewrite ?y\n")
            .starts_with("t.rules:3:12: unknown helper 'magic'")
    );
    assert!(err(
        "rule a\n  match (relu ?x)\n  rewrite ?x\nrule a\n  match (neg ?x)\n  rewrite ?x\n"
    )
    .starts_with("t.rules:4:6: duplicate rule name 'a'"));
    assert!(err("rule a\n  match (conv ?x ?w)\n  rewrite ?x\n")
        .starts_with("t.rules:2:10: 'conv' takes an attribute variable and 3 inputs"));
    assert_eq!(
        err("rule a\n  match (relu ?x))\n  rewrite ?x\n"),
        "t.rules:2:18: expected match, where, let or rewrite, found ')'"
    );
    assert!(
        err("rule a\n  match (relu ?x)\n  where dtype ?x == u9\n  rewrite ?x\n")
            .contains("unknown dtype 'u9'")
    );
}

fn qdq_graph() -> lpc_ir::Graph {
    lpc_ir::text::parse(
        r#"graph @g(%x: u8[2,8]) -> (%q) {
  %s1 = const f32[] [0.03]
  %z1 = const u8[] [100]
  %d = dequantize_linear(%x, %s1, %z1) {axis=1, block_size=0} : f32[2,8]
  %s2 = const f32[] [0.07]
  %z2 = const u8[] [3]
  %q = quantize_linear(%d, %s2, %z2) {axis=1, block_size=0, dtype=u8} : u8[2,8]
  return %q
}"#,
    )
    .expect("parse")
}

fn one_phase(src: &str, limits: Limits) -> Pipeline {
    let rules = parse_sources(&[("t.rules".into(), src.into())]).expect("rules parse");
    Pipeline {
        phases: vec![Phase {
            name: "t".into(),
            rules,
            limits,
        }],
    }
}

#[test]
fn analysis_conflict_names_the_rule() {
    // Drops a dequantize: unions an f32 class with a u8 one.
    let p = one_phase(
        "rule drop-dq\n  match (dq ?x ?s ?z)\n  rewrite ?x\n",
        Limits::default(),
    );
    match fold(&qdq_graph(), &p, &FoldOptions::default()) {
        Err(FoldError::Conflict { msg, .. }) => {
            assert!(
                msg.contains("rule 'drop-dq'") && msg.contains("dtype"),
                "{msg}"
            )
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("the conflict was not detected"),
    }
}

#[test]
fn rules_check_catches_swapped_scales_and_passes_the_right_rule() {
    let good = parse_sources(&[(
        "g.rules".into(),
        "rule rq\n  match (q (dq ?x ?s1 ?z1) ?s2 ?z2)\n  rewrite (requantize ?x ?s1 ?z1 ?s2 ?z2)\n"
            .into(),
    )])
    .unwrap();
    let bad = parse_sources(&[("b.rules".into(), "rule rq-swapped\n  match (q (dq ?x ?s1 ?z1) ?s2 ?z2)\n  rewrite (requantize ?x ?s2 ?z1 ?s1 ?z2)\n".into())]).unwrap();
    let g = qdq_graph();
    let r = check_rules(&good, std::slice::from_ref(&g), 8).unwrap();
    assert_eq!(r[0].checked, 1);
    assert!(r[0].failures.is_empty(), "{:?}", r[0].failures);
    assert_eq!(r[0].worst_steps, 0.0);
    let r = check_rules(&bad, &[g], 8).unwrap();
    assert_eq!(r[0].checked, 1);
    assert!(!r[0].failures.is_empty() && r[0].worst_steps > 1.0, "{r:?}");
}

#[test]
fn builtin_rules_pass_rules_check_on_their_cases() {
    let passes = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../passes");
    for (dir, file) in [
        ("fuse", "conv-gemm"),
        ("fuse", "requantize"),
        ("fuse", "eltwise"),
        ("fuse", "epilogue"),
        ("fuse", "depthwise"),
        ("propagate", "move-dequantize"),
        ("lower", "fake-quantize"),
    ] {
        let rules_path = passes.join(dir).join(format!("{file}.rules"));
        let report = lpc_fold::cli::rules_check(&rules_path, None).expect("rules check");
        eprintln!("{}:\n{}", rules_path.display(), report.text);
        assert!(report.ok, "{}", report.text);
    }
}

#[test]
fn blowup_stops_at_the_node_limit() {
    // x → neg(neg(x)) grows without end.
    let p = one_phase(
        "rule grow\n  match (relu ?x)\n  rewrite (relu (neg (neg ?x)))\n",
        Limits {
            iterations: 1000,
            nodes: 500,
            time: Duration::from_secs(5),
        },
    );
    let g = lpc_ir::text::parse(
        "graph @g(%x: f32[4]) -> (%y) {\n  %y = relu(%x) : f32[4]\n  return %y\n}",
    )
    .unwrap();
    let r = fold(&g, &p, &FoldOptions::default()).expect("fold");
    assert!(
        r.phases[0].stop.starts_with("node limit"),
        "{}",
        r.phases[0].stop
    );
}
