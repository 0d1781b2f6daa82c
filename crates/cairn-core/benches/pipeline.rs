//! Pipeline benchmarks (written next).

fn main() {}
