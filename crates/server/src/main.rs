//! server binary.

fn main() {}
