//! A plain WASI command: exports `wasi:cli/run`, no Patron world.

fn main() {}
