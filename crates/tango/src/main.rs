//! The `tango` binary.

fn main() {}
