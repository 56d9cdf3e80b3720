//! sender binary.

fn main() {}
