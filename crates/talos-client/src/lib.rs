//! talstrap's Talos client: talosconfig, TLS (mTLS, maintenance mode,
//! fingerprint pins), mode probing, and a typed per-node gRPC client.
//!
//! Everything here talks to exactly one node address at a time and returns
//! typed results or a classified [`TalosError`]; it never prints. Retries,
//! concurrency and reporting belong to the pipeline.

// The wire types and shared domain words, under the names the modules use.
use talos_api as proto;
use talos_api::disksel;

pub mod bootstrap_answer;
pub mod client;
pub mod connect;
pub mod error;
pub mod kubeconfig;
mod primed;
pub mod probe;
mod release;
mod reply;
pub mod resources;
pub mod talosconfig;
pub mod tls;
pub mod types;

#[cfg(test)]
mod client_tests;
#[cfg(test)]
mod fake_node;
#[cfg(test)]
pub(crate) mod testkit;

pub use bootstrap_answer::{BootstrapAnswer, bootstrap_answer};
pub use client::{ChannelKind, NodeClient};
pub use connect::Timeouts;
pub use error::{Cause, ErrorClass, TalosError, TrustKind};
pub use kubeconfig::{KubeconfigError, extract_kubeconfig};
pub use probe::{HeldConnection, MAINTENANCE_CN, ProbeResult, probe, probe_holding};
pub use release::{Release, version_minor};
pub use talosconfig::{Credentials, Talosconfig, TalosconfigError, load, locate, locate_with};
pub use tls::{maintenance_config, secure_config, spki_fingerprint};
pub use types::{
    ApplyMode, ApplyResult, EtcdMember, EtcdMemberStatus, InstallPhase, InstallStatus, MachineRole,
    MachineStatus, ServiceEventInfo, ServiceStatus, Stage, SystemStatInfo, UnmetCondition,
    VersionInfo,
};
