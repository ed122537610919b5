//! The `lpc calibrate`, `lpc quantize` and `lpc accuracy` verbs (wired in by lpc-cli).
