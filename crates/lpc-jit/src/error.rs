//! The error type of the JIT: compiling, linking and running a model.

/// Errors of compiling or running a model under the JIT.
#[derive(Debug, thiserror::Error)]
pub enum JitError {
    /// Cranelift failed to build or link a kernel (a bug in lpc, or an unsupported host).
    #[error("code generation: {0}")]
    Codegen(String),
    /// The graph cannot be lowered (names the node and why).
    #[error("cannot compile node {node}: {why}")]
    Lower {
        /// The node's name.
        node: String,
        /// Why.
        why: String,
    },
    /// Inputs at run time do not match the compiled model.
    #[error("input {name}: {why}")]
    Input {
        /// The input's name.
        name: String,
        /// What is wrong.
        why: String,
    },
    /// A float-fallback node failed in the reference interpreter.
    #[error("node {node}: {source}")]
    Eval {
        /// The node's name.
        node: String,
        /// The interpreter's error.
        source: lpc_ref::EvalError,
    },
}
