//! The lpc driver.
fn main() {}
