//! talstrap's Talos client: talosconfig, TLS (mTLS, maintenance mode,
//! fingerprint pins), mode probing, and a typed per-node gRPC client.
//!
//! Everything here talks to exactly one node address at a time and returns
//! typed results or a classified [`TalosError`]; it never prints. Retries,
//! concurrency and reporting belong to the pipeline.

// The wire types and shared domain words, under the names the modules use.
use talos_api as proto;
use talos_api::disksel;

mod bootstrap_answer;
mod client;
mod connect;
mod error;
pub mod kubeconfig;
mod primed;
pub mod probe;
mod release;
mod reply;
mod resources;
pub mod talosconfig;
pub mod tls;
mod types;

#[cfg(test)]
mod client_tests;
#[cfg(test)]
mod fake_node;
#[cfg(test)]
pub(crate) mod testkit;

// What talstrap uses, by name (plus the probe, tls, talosconfig and
// kubeconfig modules it names by path); the rest is reachable only through
// these (method results, error fields) or stays inside the crate.
pub use bootstrap_answer::{BootstrapAnswer, bootstrap_answer};
pub use client::NodeClient;
pub use connect::Timeouts;
pub use error::{ErrorClass, TalosError, TrustKind};
pub use probe::{HeldConnection, ProbeResult, probe, probe_holding};
// `Release` (what each Talos minor changes) is not used by talstrap today;
// kept public for the per-version work on the commands.
pub use release::{Release, version_minor};
pub use talosconfig::{Credentials, load};
pub use tls::spki_fingerprint;
pub use types::{
    ApplyMode, ApplyResult, EtcdMember, InstallPhase, InstallStatus, MachineRole, MachineStatus,
    ServiceStatus, Stage, UnmetCondition,
};
