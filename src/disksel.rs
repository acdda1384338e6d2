//! Talos install-disk selection rules, evaluated locally.
//!
//! `machine.install.diskSelector` is compiled by Talos into a CEL expression
//! over `Disks.block.talos.dev` resources. This module reproduces those rules
//! so that preflight can say, before anything is written, which disk a node
//! would install to; the simulator uses the same rules as its server side.

use serde::{Deserialize, Serialize};

/// `machine.install.diskSelector` as written in a machine config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DiskSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modalias: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wwid: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub disk_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bus_path: Option<String>,
}

/// One disk as Talos reports it in `Disks.block.talos.dev` (the fields the
/// selector rules read).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskFacts {
    /// Device path, e.g. `/dev/sda`.
    pub dev_path: String,
    pub size: u64,
    pub model: String,
    pub serial: String,
    pub modalias: String,
    pub uuid: String,
    pub wwid: String,
    pub bus_path: String,
    pub transport: String,
    pub rotational: bool,
    pub readonly: bool,
    pub cdrom: bool,
}
