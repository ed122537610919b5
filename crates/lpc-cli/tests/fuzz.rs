//! The fuzz harness of `tools/fuzz.py` (docs/reliability.md, "The fuzz harness"), a short run:
//! 300 seeded cases of mutated ONNX models, mutated files, mutated flags and every verb, through
//! the `lpc` binary. Any panic, abort, signal, hang, changed input, silent acceptance of an
//! invalid input or error without an `error:` line fails it. Needs python3 with numpy and the
//! onnx package; without them the test fails (it does not skip).

use std::path::Path;
use std::process::Command;

#[test]
fn fuzz_harness_finds_nothing_bad() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = root.join("tools/fuzz.py");
    let work = std::env::temp_dir().join(format!("lpc-fuzz-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);

    let probe = Command::new("python3")
        .args(["-c", "import numpy, onnx"])
        .output()
        .expect("python3 is needed by the fuzz harness (tools/fuzz.py) and was not found");
    assert!(
        probe.status.success(),
        "tools/fuzz.py needs python3 with numpy and onnx (pip install onnx==1.23.2): {}",
        String::from_utf8_lossy(&probe.stderr)
    );

    let o = Command::new("python3")
        .arg(&script)
        .args(["--lpc", env!("CARGO_BIN_EXE_lpc")])
        .args(["--cases", "300", "--seed", "7", "--time-limit", "120"])
        .arg("--work")
        .arg(&work)
        .output()
        .expect("spawn python3 tools/fuzz.py");
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(0),
        "tools/fuzz.py found bad outcomes (inputs kept in {}):\n{out}\n{err}",
        work.display()
    );
    let _ = std::fs::remove_dir_all(&work);
}
