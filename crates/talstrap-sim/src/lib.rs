//! The simulated Talos fleet: the server side of the same protos talstrap
//! speaks, on loopback, with fault injection. Every talstrap test talks to
//! it, and `talstrap demo` embeds it.
//!
//! Layout: [`pki`] and [`genconfig`] write a throwaway cluster in the
//! talhelper layout; [`fleet`] starts one simulated node per machine, each
//! on its own 127.x.y.z address and a shared port; [`state`] is the per-node
//! state machine (maintenance → install → reboot → apid → bootstrap → etcd →
//! running); [`services`] and [`handlers`] answer the gRPC calls;
//! [`scenario`] injects faults; [`cli`] is the `talstrap sim` entry point.

// The simulator depends on the API crate only: never on the client, so a
// wrong assumption in the client cannot leak into the model of Talos.
use talos_api as proto;
use talos_api::disksel;

pub mod applied_config;
pub mod cli;
pub mod cosi;
pub mod etcd_name;
pub mod fleet;
pub mod genconfig;
pub mod handlers;
pub mod installdisk;
pub mod kubeconfig;
pub mod node;
pub mod pki;
pub mod rbac;
pub mod route;
pub mod scenario;
pub mod server;
pub mod services;
pub mod state;
pub mod tls;
pub mod version;

pub use fleet::{Fleet, FleetSpec, SimNodeInfo, default_disks, random_subnet};
pub use genconfig::{ClusterSpec, GeneratedCluster, InstallTarget, NodeSpec, generate_cluster};
#[cfg(feature = "testing")]
pub use genconfig::{foreign_talosconfig, reader_talosconfig, role_talosconfig};
pub use scenario::{NodeFaults, Scenario, Timing};
pub use state::{EtcdService, InstallPhase, NodeMode, NodeSnapshot, NodeStats};
pub use talos_api::{Role, Stage};
