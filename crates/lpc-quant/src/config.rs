//! Quantization settings: [`Preset`], [`BiasCorrectionMode`] and [`Config`].

use crate::stats::Estimator;

/// Quantization presets (as in OpenVINO POT/NNCF).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// Symmetric activations (i8 `[-a, a·127/128]`, u8 `[0, a]` after ReLU-like values).
    Performance,
    /// Asymmetric activations (`[lo, hi]` with an integer zero point).
    Mixed,
}

impl std::str::FromStr for Preset {
    type Err = String;
    fn from_str(s: &str) -> Result<Preset, String> {
        match s {
            "performance" => Ok(Preset::Performance),
            "mixed" => Ok(Preset::Mixed),
            _ => Err(format!("unknown preset '{s}' (performance, mixed)")),
        }
    }
}

impl std::fmt::Display for Preset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Preset::Performance => "performance",
            Preset::Mixed => "mixed",
        })
    }
}

/// How bias correction computes the shift of each quantized layer's bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BiasCorrectionMode {
    /// FastBiasCorrection: each layer's own error, measured on FP32 inputs
    /// (`bias_samples` samples; upstream quantization error is not seen).
    Fast,
    /// Sequential ("empirical") bias correction: layers in topological order, each measured in
    /// the quantized model with the corrections of all earlier layers applied, so its inputs
    /// carry the upstream quantization error (`sequential_samples` samples, kept in memory
    /// together).
    Sequential,
}

impl std::str::FromStr for BiasCorrectionMode {
    type Err = String;
    fn from_str(s: &str) -> Result<BiasCorrectionMode, String> {
        match s {
            "fast" => Ok(BiasCorrectionMode::Fast),
            "sequential" => Ok(BiasCorrectionMode::Sequential),
            _ => Err(format!(
                "unknown bias correction mode '{s}' (fast, sequential)"
            )),
        }
    }
}

impl std::fmt::Display for BiasCorrectionMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BiasCorrectionMode::Fast => "fast",
            BiasCorrectionMode::Sequential => "sequential",
        })
    }
}

/// Quantization settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Activation grid preset.
    pub preset: Preset,
    /// Activation range estimator.
    pub estimator: Estimator,
    /// `--ignore` patterns (node names, op types, node-name regexes).
    pub ignore: Vec<String>,
    /// Bias correction on/off.
    pub bias_correction: bool,
    /// How bias correction measures the shifts (when `bias_correction` is on).
    pub bias_correction_mode: BiasCorrectionMode,
    /// Samples per interpreter run (models with a symbolic batch dimension; 0 = auto, see
    /// [`crate::batch::resolve_batch`]).
    pub batch: usize,
    /// Show progress bars on a terminal.
    pub progress: bool,
    /// Samples used for the per-layer SQNR of the report (0 skips it).
    pub report_samples: usize,
    /// Per-channel (axis 1) activation ranges for values read only by depthwise convolutions
    /// (integer-friendly: each output channel reads one input channel).
    pub per_channel_depthwise: bool,
    /// Calibration samples used by bias correction, spread evenly over the set (NNCF's
    /// FastBiasCorrection uses 100); the statistics always use every sample.
    pub bias_samples: usize,
    /// Calibration samples used by sequential bias correction, spread evenly over the set. Their
    /// live activations are all held at once (quantized model), so memory grows with this.
    pub sequential_samples: usize,
    /// Most bytes of activations sequential bias correction may hold (0 = half the available
    /// memory); past it, fast correction runs instead, reported.
    pub sequential_memory: usize,
    /// Keep in float the layers that feed a graph output through a Sigmoid/HardSigmoid and
    /// elementwise ops only (near-saturated probability maps such as DBNet's).
    pub float_sigmoid_outputs: bool,
    /// Keep in float the layers of squeeze-and-excitation gates: layers whose 1×1-pixel output
    /// reaches, through elementwise ops and further such layers only, a Mul with a larger
    /// activation (one step of error in a gate value scales a whole channel).
    pub float_gates: bool,
    /// Split MatMul/Gemm layers by input channel where a few channels of their input reach
    /// four or more times the range of the others: those channels go through a small float
    /// layer beside the INT8 one (`outliers.rs`; one more pass over the calibration data).
    pub split_outliers: bool,
}

impl Config {
    /// Sets the sample count of both bias correction modes to `n` (0 keeps the defaults).
    pub fn with_bias_samples(self, n: usize) -> Config {
        if n == 0 {
            return self;
        }
        Config {
            bias_samples: n,
            sequential_samples: n,
            ..self
        }
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            preset: Preset::Mixed,
            estimator: Estimator::Mse,
            ignore: vec![],
            bias_correction: true,
            bias_correction_mode: BiasCorrectionMode::Sequential,
            batch: 0,
            progress: false,
            report_samples: 32,
            per_channel_depthwise: true,
            bias_samples: 100,
            sequential_samples: 32,
            sequential_memory: 0,
            float_sigmoid_outputs: true,
            float_gates: true,
            split_outliers: true,
        }
    }
}
