//! Rule files: located parse errors, the analysis conflict check, `rules check` catching an
//! unsound rule, and a rule set that stops at its limits.

use lpc_fold::check::check_rules;
use lpc_fold::pipeline::parse_sources;
use lpc_fold::{fold, FoldError, FoldOptions, Limits, Phase, Pipeline};
use std::time::Duration;

fn err(src: &str) -> String {
    match lpc_fold::parse_rules("t.rules", src) {
        Ok(_) => panic!("expected an error for:\n{src}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn patterns_nest_at_most_max_pattern_depth() {
    use lpc_fold::rules::MAX_PATTERN_DEPTH;
    let nested = |n: usize| {
        format!(
            "rule a\n  match {}?x{}\n  rewrite ?x\n",
            "(relu ".repeat(n),
            ")".repeat(n)
        )
    };
    lpc_fold::parse_rules("t.rules", &nested(MAX_PATTERN_DEPTH)).expect("the deepest allowed");
    // The first '(' is column 9 and each "(relu " six columns: the one too deep is named.
    assert_eq!(
        err(&nested(20_000)),
        format!(
            "t.rules:2:{}: pattern nested deeper than {MAX_PATTERN_DEPTH} levels",
            9 + 6 * MAX_PATTERN_DEPTH
        )
    );
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
    assert!(!lpc_fold::pipeline::BUILTIN_RULES.is_empty());
    for (file, _) in lpc_fold::pipeline::BUILTIN_RULES {
        let rules_path = passes.join(file);
        let report = lpc_fold::rules_check(&rules_path, None).expect("rules check");
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

#[test]
fn every_rule_file_under_passes_is_in_the_builtin_pipeline() {
    // The table build.rs generates is exactly the `*.rules` files on disk...
    let passes = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../passes");
    fn walk(dir: &std::path::Path, base: &std::path::Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).expect("dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, base, out);
            } else if p.extension().is_some_and(|x| x == "rules") {
                let rel = p.strip_prefix(base).expect("under passes/");
                let parts: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.push(parts.join("/"));
            }
        }
    }
    let mut on_disk = vec![];
    walk(&passes, &passes, &mut on_disk);
    on_disk.sort();
    let table: Vec<String> = lpc_fold::pipeline::BUILTIN_RULES
        .iter()
        .map(|(p, _)| p.to_string())
        .collect();
    assert_eq!(table, on_disk);
    // ... and every rule of every file in it runs in a phase of the built-in pipeline.
    let p = Pipeline::builtin().expect("builtin pipeline");
    let names: Vec<String> = p.all_rules().iter().map(|r| r.name.clone()).collect();
    for (file, text) in lpc_fold::pipeline::BUILTIN_RULES {
        for r in lpc_fold::parse_rules(file, text).expect("parses") {
            assert!(
                names.contains(&r.name),
                "passes/{file}: rule '{}' is in no phase of passes/pipeline.toml",
                r.name
            );
        }
    }
    let phases: Vec<&str> = p.phases.iter().map(|ph| ph.name.as_str()).collect();
    assert_eq!(phases, ["legalize", "propagate", "fuse"]);
}

#[test]
fn stop_after_an_unknown_phase_names_the_phases() {
    let g = lpc_ir::text::parse(
        "graph @g(%x: f32[4]) -> (%y) {\n  %y = relu(%x) : f32[4]\n  return %y\n}",
    )
    .unwrap();
    let p = Pipeline::builtin().expect("builtin pipeline");
    let e = fold(
        &g,
        &p,
        &FoldOptions {
            stop_after: Some("lower".into()),
            ..Default::default()
        },
    )
    .err()
    .expect("unknown phase");
    assert_eq!(
        e.to_string(),
        "no phase 'lower' (phases: legalize, propagate, fuse)"
    );
}

#[test]
fn fold_with_check_rules_refuses_an_unsound_rule() {
    let bad = "rule rq-swapped\n  match (q (dq ?x ?s1 ?z1) ?s2 ?z2)\n  rewrite (requantize ?x ?s2 ?z1 ?s1 ?z2)\n";
    let check = FoldOptions {
        check_rules: true,
        ..Default::default()
    };
    match fold(&qdq_graph(), &one_phase(bad, Limits::default()), &check) {
        Err(FoldError::UnsoundRule {
            rule, loc, failure, ..
        }) => {
            assert_eq!(rule, "rq-swapped");
            assert_eq!(loc, "t.rules:1:6");
            assert!(failure.contains("sides differ"), "{failure}");
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("the unsound rule was trusted"),
    }
    // Unchecked, the same fold goes through (what --trust-rules asks for).
    fold(
        &qdq_graph(),
        &one_phase(bad, Limits::default()),
        &FoldOptions::default(),
    )
    .expect("unchecked fold");
    // The built-in rules pass the check on the same graph.
    let r = fold(&qdq_graph(), &Pipeline::builtin().unwrap(), &check).expect("sound");
    assert!(!r.unexercised.is_empty());
}
