//! ONNX op type names that the importer and the exporter both use.

use lpc_ir::ReduceOp;

/// The ONNX op type of a reduction (read by the import table, written by the export).
pub(crate) fn reduce(r: ReduceOp) -> &'static str {
    match r {
        ReduceOp::Max => "ReduceMax",
        ReduceOp::Mean => "ReduceMean",
        ReduceOp::Sum => "ReduceSum",
        ReduceOp::Min => "ReduceMin",
        ReduceOp::Prod => "ReduceProd",
        ReduceOp::L1 => "ReduceL1",
        ReduceOp::L2 => "ReduceL2",
        ReduceOp::LogSum => "ReduceLogSum",
        ReduceOp::LogSumExp => "ReduceLogSumExp",
        ReduceOp::SumSquare => "ReduceSumSquare",
    }
}
