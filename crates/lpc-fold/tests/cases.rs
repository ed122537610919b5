//! Runs every `.lir` case file under `passes/` (each beside its rule file).

use std::path::{Path, PathBuf};

fn case_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("passes dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            case_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "lir") {
            out.push(p);
        }
    }
}

#[test]
fn every_rule_file_has_cases_and_they_pass() {
    let passes = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../passes");
    let mut files = vec![];
    case_files(&passes, &mut files);
    let mut failed = vec![];
    let mut count = 0;
    for f in &files {
        match lpc_fold::filetest::run_case_file(f) {
            Err(e) => failed.push(e),
            Ok(results) => {
                for r in results {
                    count += 1;
                    if !r.failures.is_empty() {
                        failed.push(format!(
                            "{} case {} (line {}): {}\n{}",
                            f.display(),
                            r.index,
                            r.line,
                            r.failures.join("; "),
                            r.output
                        ));
                    }
                }
            }
        }
    }
    // Every rule file has a case file beside it.
    let mut rules = vec![];
    fn rule_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                rule_files(&p, out);
            } else if p.extension().is_some_and(|e| e == "rules") {
                out.push(p);
            }
        }
    }
    rule_files(&passes, &mut rules);
    for r in &rules {
        if !r.with_extension("lir").exists() {
            failed.push(format!(
                "{} has no case file {}",
                r.display(),
                r.with_extension("lir").display()
            ));
        }
    }
    eprintln!("{count} cases in {} files", files.len());
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}
