#!/usr/bin/env bash
# The Python package on a fresh machine: a new venv with maturin, pytest and numpy from PyPI,
# the wheel built (release) and installed into it, then the README's Python example and the
# pytest suite (tests/, which compares every verb with the `lpc` binary built here).
# Needs the Rust toolchain, python3 (3.11+) with venv, and ../shared beside the repository.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 -m venv "$work/venv"
py=$work/venv/bin/python
"$py" -m pip install --quiet --disable-pip-version-check maturin==1.16.0 pytest==9.2.0 numpy==2.4.6

# One release build of the crates: the `lpc` binary the tests compare with, then the wheel.
# lpc-py is in the first build too, so that the shared dependencies get the features maturin
# builds them with (numpy's ndarray adds some): maturin then recompiles only pyo3 and lpc-py.
cargo build --release --locked -p lpc-cli -p lpc-py
(cd crates/lpc-py && "$work/venv/bin/maturin" build --release --locked --out "$work/wheels")
"$py" -m pip install --quiet --disable-pip-version-check "$work"/wheels/lpc-*.whl

# The README's Python example, run where its ../shared paths hold.
mkdir "$work/example"
ln -s "$root/../shared" "$work/shared"
awk '/^<!-- python-example -->/{on=1; next} on && /^```python/{next} on && /^```/{exit} on' README.md > "$work/example/example.py"
test -s "$work/example/example.py" || { echo "error: no Python example in README.md" >&2; exit 1; }
(cd "$work/example" && "$py" example.py)

LPC_BIN=$target/release/lpc "$py" -m pytest -q crates/lpc-py/tests
