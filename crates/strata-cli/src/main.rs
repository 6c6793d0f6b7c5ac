//! The `strata` command-line interface: thin glue over the store, model and runtime crates.

fn main() {}
