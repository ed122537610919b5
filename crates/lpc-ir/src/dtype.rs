//! Element types of tensors.

use std::fmt;

/// The element type of a tensor.
///
/// lpc's working set is f32, i8, u8, i32, i64 and bool; f16 and f64 exist so that models and
/// conformance cases that use them at their edges (casts, a few float16 tests) import and run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// 32-bit IEEE float.
    F32,
    /// 16-bit IEEE float.
    F16,
    /// 64-bit IEEE float.
    F64,
    /// Signed 8-bit integer.
    I8,
    /// Unsigned 8-bit integer.
    U8,
    /// Signed 32-bit integer.
    I32,
    /// Signed 64-bit integer.
    I64,
    /// Boolean (one byte per element).
    Bool,
}

impl DType {
    /// Every dtype, in a fixed order.
    pub const ALL: [DType; 8] = [
        DType::F32,
        DType::F16,
        DType::F64,
        DType::I8,
        DType::U8,
        DType::I32,
        DType::I64,
        DType::Bool,
    ];

    /// The short name used in the `.lir` text format (`f32`, `i8`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::F64 => "f64",
            DType::I8 => "i8",
            DType::U8 => "u8",
            DType::I32 => "i32",
            DType::I64 => "i64",
            DType::Bool => "bool",
        }
    }

    /// Parses a short name (`f32`, `u8`, ...).
    pub fn from_name(s: &str) -> Option<DType> {
        DType::ALL.iter().copied().find(|d| d.name() == s)
    }

    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::F16 => 2,
            DType::F64 | DType::I64 => 8,
            DType::I8 | DType::U8 | DType::Bool => 1,
        }
    }

    /// True for f16, f32 and f64.
    pub fn is_float(self) -> bool {
        match self {
            DType::F32 | DType::F16 | DType::F64 => true,
            DType::I8 | DType::U8 | DType::I32 | DType::I64 | DType::Bool => false,
        }
    }

    /// True for the integer types (not bool).
    pub fn is_int(self) -> bool {
        match self {
            DType::I8 | DType::U8 | DType::I32 | DType::I64 => true,
            DType::F32 | DType::F16 | DType::F64 | DType::Bool => false,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
