#!/usr/bin/env bash
# The main job: quantize a model post-training, fold it to integer kernels, JIT-compile and run it, and compare
# with the FP32 model. Defaults to the bundled digits model; override with
#   MODEL=... CALIB=... DATA=... LABELS=... examples/main-job.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-examples/digits/digits_cnn.onnx}
CALIB=${CALIB:-examples/digits/calib_x.npy}
DATA=${DATA:-examples/digits/test_x8.npy}
LABELS=${LABELS:-examples/digits/test_y8.npy}
OUT=${OUT:-target/main-job}
cargo build --release -q -p lpc-cli
LPC=target/release/lpc
mkdir -p "$OUT"
stem=$(basename "${MODEL%.*}")
echo "== quantize $MODEL (calibration: $CALIB)"
$LPC quantize "$MODEL" --calib "$CALIB" -o "$OUT/$stem.int8.lir" --report "$OUT/$stem.report.json"
$LPC quantize "$MODEL" --calib "$CALIB" -o "$OUT/$stem.int8.onnx" > /dev/null   # QDQ for ORT/OpenVINO
echo "== fold to integer ops"
$LPC fold "$OUT/$stem.int8.lir" --stats -o "$OUT/$stem.folded.lir"
echo "== compile the folded model to fused INT8 kernels (Cranelift JIT) and run it on $DATA"
$LPC compile "$OUT/$stem.folded.lir" --stats
$LPC run "$OUT/$stem.folded.lir" --backend jit --input "$DATA" --output-dir "$OUT/jit"
$LPC run "$OUT/$stem.folded.lir" --backend ref --input "$DATA" --output-dir "$OUT/ref"
for f in "$OUT"/ref/*.npy; do cmp "$f" "$OUT/jit/$(basename "$f")"; done
echo "jit and ref outputs are identical"
$LPC bench "$OUT/$stem.folded.lir" --backend jit --input "$DATA"
echo "== accuracy against the FP32 model"
$LPC accuracy "$OUT/$stem.folded.lir" --data "$DATA" --labels "$LABELS" --reference "$MODEL" --subset 0
echo "outputs in $OUT/"
