#!/usr/bin/env bash
# The main job: quantize a model post-training, fold it to integer kernels, run it, and compare
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
echo "== run the folded INT8 model on $DATA"
$LPC run "$OUT/$stem.folded.lir" --input "$DATA"
echo "== accuracy against the FP32 model"
$LPC accuracy "$OUT/$stem.folded.lir" --data "$DATA" --labels "$LABELS" --reference "$MODEL" --subset 0
echo "outputs in $OUT/"
