//! The Talos API subset talstrap speaks, generated from the hand-written
//! protos in `proto/` (package layout mirrors the wire: `machine`, `storage`,
//! `common`, `cosi::resource`, `google::rpc`, `talos::resource::definitions`),
//! and the domain words the client and the simulator share ([`Stage`],
//! [`Role`], [`disksel`]).
//!
//! Both sides of the wire depend on this crate and on nothing else of
//! talstrap's, so the simulator can never borrow the client's assumptions.

#[allow(clippy::all, unreachable_pub, missing_docs)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/talos_api.rs"));
}
pub use generated::*;

pub mod disksel;
mod role;
mod stage;

pub use role::{ParseRoleError, Role};
pub use stage::Stage;
