//! Shapes with known and symbolic dimensions.

use std::fmt;

/// One dimension of a shape: a known size or a named symbol (`N`, `batch`, ...).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    /// A known size.
    Known(usize),
    /// A symbolic size, equal wherever the same name appears in one graph.
    Sym(String),
}

impl Dim {
    /// The size if known.
    pub fn known(&self) -> Option<usize> {
        match self {
            Dim::Known(n) => Some(*n),
            Dim::Sym(_) => None,
        }
    }
}

impl From<usize> for Dim {
    fn from(n: usize) -> Dim {
        Dim::Known(n)
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Known(n) => write!(f, "{n}"),
            Dim::Sym(s) => f.write_str(s),
        }
    }
}

/// A shape of known rank; dimensions may be symbolic.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Shape(pub Vec<Dim>);

impl Shape {
    /// A fully known shape.
    pub fn known(dims: &[usize]) -> Shape {
        Shape(dims.iter().map(|&d| Dim::Known(d)).collect())
    }

    /// The rank.
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// All dimensions if every one is known.
    pub fn as_known(&self) -> Option<Vec<usize>> {
        self.0.iter().map(Dim::known).collect()
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

/// What is known about a value: its dtype and, when known, its shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ValueType {
    /// Element type.
    pub dtype: DTypeOrUnknown,
    /// Shape, or `None` when not even the rank is known.
    pub shape: Option<Shape>,
}

/// A dtype, or unknown before shape inference has run.
pub type DTypeOrUnknown = Option<crate::DType>;

impl ValueType {
    /// Nothing known.
    pub fn unknown() -> ValueType {
        ValueType {
            dtype: None,
            shape: None,
        }
    }

    /// A dtype and a known shape.
    pub fn new(dtype: crate::DType, shape: Shape) -> ValueType {
        ValueType {
            dtype: Some(dtype),
            shape: Some(shape),
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.dtype {
            Some(d) => write!(f, "{d}")?,
            None => f.write_str("?")?,
        }
        match &self.shape {
            Some(s) => write!(f, "{s}"),
            None => f.write_str("[*]"),
        }
    }
}
