//! The inventory: which nodes exist, at which addresses, with which role and
//! which machine config, read from the files operators really have
//! (talhelper's talconfig.yaml + `clusterconfig/`, or `--node IP=file`
//! flags). It only reads files; it never touches the network.
//!
//! Everything that can be wrong with those files is an [`InputError`]
//! naming the file and the field or node, raised before any node is
//! contacted.

mod config_kinds;
pub(crate) use config_kinds::since_minor as config_kind_since;
mod envfile;
mod envsubst;
pub(crate) mod error;
mod filter;
pub(crate) mod machine_config;
mod node_flags;
pub(crate) mod read;
mod talconfig;
mod template;
pub(crate) mod topf;
mod validate;
pub(crate) mod wait_facts;
mod yaml;

use std::net::IpAddr;
use std::path::PathBuf;

pub use envfile::{Environment, Variables};
pub(crate) use filter::Filter;
pub use machine_config::MachineConfig;
pub(crate) use node_flags::from_node_flags;
pub use talconfig::{LoadOptions, load_env_for, load_talconfig_in};
pub(crate) use topf::{completion_names, load_topf};

/// A node's role in the cluster: the shared domain word.
pub use crate::proto::Role;

/// Where an inventory came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum InventorySource {
    /// talhelper's talconfig.yaml and its generated config directory.
    Talconfig { path: PathBuf, config_dir: PathBuf },
    /// `--node IP=path` flags.
    #[serde(rename = "node_flags")]
    NodeFlags,
    /// topf's topf.yaml and the configs `topf render` wrote.
    Topf { path: PathBuf, config_dir: PathBuf },
}

/// The nodes talstrap works on.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Inventory {
    pub cluster_name: Option<String>,
    /// talconfig `endpoint` (a URL, often a VIP): informational, never dialled.
    pub endpoint: Option<String>,
    /// In talconfig (or flag) order; the first control plane is the
    /// default bootstrap target.
    pub nodes: Vec<NodeEntry>,
    pub source: InventorySource,
}

/// One node: where it is, what it is, what config it gets.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeEntry {
    /// From talconfig; for `--node IP=file`, the config's hostname or the IP.
    pub hostname: String,
    /// Never empty: the first one is the address talstrap dials.
    pub addresses: Vec<IpAddr>,
    pub role: Role,
    pub config_path: PathBuf,
    #[serde(skip)]
    pub config: MachineConfig,
}

impl NodeEntry {
    /// The address talstrap dials for this node.
    pub fn primary_ip(&self) -> IpAddr {
        // Every constructor in this module guarantees at least one address;
        // the fallback keeps this total if a caller builds an empty entry.
        self.addresses
            .first()
            .copied()
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    }
}

impl Inventory {
    /// The control planes, in inventory order.
    pub fn control_planes(&self) -> impl Iterator<Item = &NodeEntry> {
        self.nodes.iter().filter(|n| n.role == Role::ControlPlane)
    }

    /// The default bootstrap target: the first control plane.
    pub fn bootstrap_target(&self) -> Option<&NodeEntry> {
        self.control_planes().next()
    }

    /// Every non-fatal finding about the inputs, prefixed by node.
    pub fn warnings(&self) -> Vec<String> {
        self.nodes
            .iter()
            .flat_map(|n| {
                n.config
                    .warnings
                    .iter()
                    .map(move |w| format!("node {}: {}: {w}", n.hostname, n.config_path.display()))
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn role_parses_and_prints() {
        assert_eq!("controlplane".parse::<Role>().unwrap(), Role::ControlPlane);
        assert_eq!("Worker".parse::<Role>().unwrap(), Role::Worker);
        let err = "master".parse::<Role>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown role \"master\"; expected controlplane or worker"
        );
        assert_eq!(Role::ControlPlane.to_string(), "controlplane");
        assert_eq!(
            serde_json::to_string(&Role::ControlPlane).unwrap(),
            "\"controlplane\""
        );
    }
}
