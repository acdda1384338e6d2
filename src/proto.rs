//! Generated code for the hand-written Talos API subset in `proto/`.
//!
//! Package layout mirrors the wire: `machine`, `storage`, `common`,
//! `cosi::resource`, `google::rpc`, `talos::resource::definitions`.

#![allow(clippy::all, unreachable_pub, missing_docs)]

include!(concat!(env!("OUT_DIR"), "/talos_api.rs"));
