//! Support for talstrap's fuzz targets: the properties every input reader
//! must keep ([`harness`]) and realistic seed inputs ([`seeds`]). Both
//! files are also compiled into the main crate's `tests/fuzz_props.rs`, so
//! the same properties run under `cargo test`.

pub mod harness;
pub mod seeds;
