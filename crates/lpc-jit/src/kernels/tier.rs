//! The code tiers of the vector kernels (float chains, quantize/dequantize/requantize/QAdd):
//! 16-lane AVX-512 code hand-assembled with iced-x86, or Cranelift's 4-lane code. Lowering asks
//! for `Auto`; tests force each tier the host has and compare them.

use crate::kernels::emit::spec_err;
use crate::{CodeModule, JitError};

/// Which code a vector kernel may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum VecTier {
    /// The zmm tier when the host has it (and, for a float chain, its program fits the tier's
    /// registers), else xmm.
    #[default]
    Auto,
    /// The hand-assembled 16-lane AVX-512 code where it fits, else xmm; an error on a host
    /// without AVX512F + BW + VL + BMI2 or System V calls.
    Zmm,
    /// Cranelift's 4-lane code.
    Xmm,
}

impl VecTier {
    /// Whether to try the zmm code for `kernel` in `m`: an error when zmm is forced on a host
    /// without it.
    pub(crate) fn use_zmm(self, m: &CodeModule, kernel: &str) -> Result<bool, JitError> {
        let zmm = m.features().zmm_f32 && m.system_v();
        if self == VecTier::Zmm && !zmm {
            return Err(spec_err(
                kernel,
                "the zmm tier needs AVX512F, BW and VL, BMI2 and the System V calling \
                 convention; this host lacks them"
                    .into(),
            ));
        }
        Ok(zmm && self != VecTier::Xmm)
    }
}

/// The code a vector kernel was compiled to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VecCode {
    /// 16 lanes, hand-assembled AVX-512.
    Zmm,
    /// 4 lanes, Cranelift.
    Xmm,
}

impl VecCode {
    /// A short name (`zmm`, `xmm`).
    pub fn name(self) -> &'static str {
        match self {
            VecCode::Zmm => "zmm",
            VecCode::Xmm => "xmm",
        }
    }
}
