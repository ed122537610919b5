//! lpc's graph IR: tensors, dtypes, symbolic shapes, the `Op` set, the graph, the `.lir`
//! text format, shape inference and the verifier.
#![deny(missing_docs)]

mod dtype;
mod graph;
mod op;
mod shape;
mod tensor;

pub use dtype::DType;
pub use graph::{Edge, Graph, GraphError, Node, NodeId, Output, ValueRef};
pub use op::{
    AspectPolicy, AutoPad, BinaryOp, ConvAttrs, CoordTransform, NearestMode, Op, PadMode, PoolAttrs, QuantAxis,
    ReduceOp, ResizeAttrs, ResizeMode, UnaryOp,
};
pub use shape::{DTypeOrUnknown, Dim, Shape, ValueType};
pub use tensor::{Tensor, TensorData, TensorError};
