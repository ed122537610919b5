//! lpc's graph IR: tensors, dtypes, symbolic shapes, the `Op` set, the graph, quantization parameters, the `.lir`
//! text format, shape inference and the verifier.
#![deny(missing_docs)]

mod dot;
mod dtype;
mod einsum;
mod graph;
pub mod host;
mod infer;
mod op;
mod op_kind;
pub mod quant;
mod shape;
mod tensor;
pub mod text;
mod verify;

pub use dot::to_dot;
pub use dtype::DType;
pub use einsum::{einsum_spec, EinsumSpec};
pub use graph::{Edge, Graph, GraphError, Node, NodeId, Output, ValueRef};
pub use infer::{
    broadcast_dim, broadcast_dims, broadcasts_to, infer_types, BroadcastError, InferError,
};
pub use op::{
    col2im_blocks, dft_axis, dft_lengths, max_unpool_shape, rnn_default_activations, stft_dims,
    ArgAttrs, AspectPolicy, AttentionAttrs, AutoPad, BinaryOp, BlockOrder, BodyIo, ConvAttrs,
    CoordTransform, GridPadding, LossReduction, NearestMode, Op, PadMode, PixelFormat, PoolAttrs,
    QkOutput, QuantAxis, ReduceOp, ResizeAttrs, ResizeMode, RnnActivation, RnnAttrs, RnnDirection,
    ScanAttrs, ScatterReduction, TfIdfAttrs, TfIdfMode, UnaryOp, WindowKind, SELU_ALPHA,
    SELU_GAMMA,
};
pub use op_kind::OpKind;
pub use shape::{DTypeOrUnknown, Dim, Shape, ValueType};
pub use tensor::{Tensor, TensorData, TensorError};
pub use verify::{output_count, verify, VerifyError};
