//! A node's role in the cluster (`machine.type` of its config): one
//! definition for the inventory that reads configs and the simulator that
//! runs them. What a node reports about itself (which can also be `init`
//! or `unknown`) is the client's `MachineRole`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Control plane or worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Runs etcd and the Kubernetes control plane.
    ControlPlane,
    /// Runs workloads only.
    Worker,
}

impl Role {
    /// The spelling used on the command line and in machine configs.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::ControlPlane => "controlplane",
            Role::Worker => "worker",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role text that is neither `controlplane` nor `worker`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}; expected controlplane or worker")]
pub struct ParseRoleError(pub String);

impl FromStr for Role {
    type Err = ParseRoleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "controlplane" => Ok(Role::ControlPlane),
            "worker" => Ok(Role::Worker),
            _ => Err(ParseRoleError(s.to_string())),
        }
    }
}
