//! web binary.

fn main() {}
