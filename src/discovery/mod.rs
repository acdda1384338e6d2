//! Network discovery and bootstrap-leader election.
//!
//! `talstrap discover CIDR...` runs in two phases:
//!
//! 1. [`scan()`]: a TCP connect sweep of the [`targets`] on the Talos API port
//!    with a wide, descriptor-bounded window ([`rlimit`]). Cheap, and it
//!    reduces a /16 to the handful of hosts that accept connections.
//! 2. Identification of the open hosts ([`ScanResult::open`]) over TLS and
//!    gRPC (maintenance, configured by our CA, configured by another CA, not
//!    Talos). That phase lives on top of the protocol layer in
//!    [`crate::talos`]; its results feed [`skeleton`] (a talconfig `nodes:`
//!    block for the maintenance hosts) and [`election`].
//!
//! [`election`] is pure: given what is known about each control plane it
//! picks the bootstrap leader (oldest boot time, ties to the numerically
//! lowest IP) the same way on every machine, so `discover` and
//! `bootstrap --auto` agree, and two concurrent runs pick the same node.

pub(crate) mod election;
pub(crate) mod rlimit;
pub(crate) mod scan;
pub(crate) mod skeleton;
pub(crate) mod targets;

pub(crate) use scan::{ScanOptions, ScanResult, scan};
pub(crate) use targets::TargetSet;
pub use targets::parse_targets;
