//! Running a lowered plan: the compiled model and its executor, the buffer pool, and how many
//! threads a kernel may use.

pub mod exec;
pub mod memory;
pub mod par;
