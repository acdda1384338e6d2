//! Typed results of Talos calls, free of protobuf details, for the pipeline
//! and the output layer.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::proto::machine::apply_configuration_request::Mode as ProtoApplyMode;

pub use crate::proto::Stage;

/// One readiness check that is not met yet (e.g. `services`: "etcd not running").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnmetCondition {
    pub name: String,
    pub reason: String,
}

/// The phase of a v1.14 unattended install (`UnattendedInstallStatuses`;
/// Talos v1.14.0-rc.1 pkg/machinery/resources/runtime/unattended_install_status.go).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InstallPhase {
    Pending,
    Installing,
    Installed,
    WaitingForReboot,
    Failed,
}

impl InstallPhase {
    const ALL: [InstallPhase; 5] = [
        InstallPhase::Pending,
        InstallPhase::Installing,
        InstallPhase::Installed,
        InstallPhase::WaitingForReboot,
        InstallPhase::Failed,
    ];

    /// The YAML/`talosctl get` spelling (`waiting-for-reboot`).
    pub fn as_str(self) -> &'static str {
        match self {
            InstallPhase::Pending => "pending",
            InstallPhase::Installing => "installing",
            InstallPhase::Installed => "installed",
            InstallPhase::WaitingForReboot => "waiting-for-reboot",
            InstallPhase::Failed => "failed",
        }
    }

    /// From the YAML text; an absent phase (`omitempty`) is pending.
    pub fn from_yaml_text(text: &str) -> Option<InstallPhase> {
        let t = text.trim();
        if t.is_empty() {
            return Some(InstallPhase::Pending);
        }
        Self::ALL.into_iter().find(|p| p.as_str() == t)
    }

    /// From the protobuf enum number.
    pub fn from_i32(value: i32) -> Option<InstallPhase> {
        usize::try_from(value)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
    }
}

impl fmt::Display for InstallPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `UnattendedInstallStatuses.runtime.talos.dev/unattended-install`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallStatus {
    pub phase: InstallPhase,
    /// Why the install failed or waits (e.g. "no disk matched the selector").
    pub error: String,
    /// `installer.image` as configured (empty: from the boot's schematic).
    pub image: String,
}

/// `MachineStatuses.runtime.talos.dev/machine`.
///
/// `ready` means something only in `booting` and `running`: in every other
/// stage Talos reports `ready: true` without running any check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MachineStatus {
    pub stage: Stage,
    pub ready: bool,
    pub unmet: Vec<UnmetCondition>,
}

/// The node's role from `MachineTypes.config.talos.dev`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MachineRole {
    Unknown,
    Init,
    ControlPlane,
    Worker,
}

impl MachineRole {
    pub fn as_str(&self) -> &'static str {
        match self {
            MachineRole::Unknown => "unknown",
            MachineRole::Init => "init",
            MachineRole::ControlPlane => "controlplane",
            MachineRole::Worker => "worker",
        }
    }

    /// Parses Talos's text (`controlplane`, `worker`, `init`, `unknown`;
    /// the deprecated `join` means worker).
    pub fn from_yaml_text(text: &str) -> Option<MachineRole> {
        match text.trim() {
            "unknown" => Some(MachineRole::Unknown),
            "init" => Some(MachineRole::Init),
            "controlplane" => Some(MachineRole::ControlPlane),
            "worker" | "join" => Some(MachineRole::Worker),
            _ => None,
        }
    }

    /// From `MachineType` numbers (INIT=1, CONTROL_PLANE=2, WORKER=3).
    pub fn from_i32(value: i32) -> MachineRole {
        match value {
            1 => MachineRole::Init,
            2 => MachineRole::ControlPlane,
            3 => MachineRole::Worker,
            _ => MachineRole::Unknown,
        }
    }

    /// Init nodes are control planes (legacy self-bootstrapping ones).
    pub fn is_control_plane(&self) -> bool {
        matches!(self, MachineRole::ControlPlane | MachineRole::Init)
    }
}

impl fmt::Display for MachineRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for MachineRole {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The `Version` RPC's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionInfo {
    /// e.g. `v1.12.11`.
    pub tag: String,
    pub sha: String,
    /// Platform name, e.g. `metal`, `nocloud`.
    pub platform: String,
    /// Platform mode: `metal`, `cloud`, `container`, `metal-agent`.
    pub mode: String,
}

/// ApplyConfiguration modes, numbered as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApplyMode {
    Reboot = 0,
    Auto = 1,
    NoReboot = 2,
    Staged = 3,
    Try = 4,
}

impl ApplyMode {
    /// talosctl's spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            ApplyMode::Reboot => "reboot",
            ApplyMode::Auto => "auto",
            ApplyMode::NoReboot => "no-reboot",
            ApplyMode::Staged => "staged",
            ApplyMode::Try => "try",
        }
    }

    pub fn as_proto(&self) -> ProtoApplyMode {
        match self {
            ApplyMode::Reboot => ProtoApplyMode::Reboot,
            ApplyMode::Auto => ProtoApplyMode::Auto,
            ApplyMode::NoReboot => ProtoApplyMode::NoReboot,
            ApplyMode::Staged => ProtoApplyMode::Staged,
            ApplyMode::Try => ProtoApplyMode::Try,
        }
    }

    /// From the wire number; `None` for numbers this version does not know.
    pub fn from_i32(value: i32) -> Option<ApplyMode> {
        match value {
            0 => Some(ApplyMode::Reboot),
            1 => Some(ApplyMode::Auto),
            2 => Some(ApplyMode::NoReboot),
            3 => Some(ApplyMode::Staged),
            4 => Some(ApplyMode::Try),
            _ => None,
        }
    }
}

impl fmt::Display for ApplyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ApplyMode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// An `--mode` value that is not one of talosctl's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown apply mode \"{0}\" (expected one of: auto, no-reboot, reboot, staged, try)")]
pub struct ApplyModeParseError(pub String);

impl FromStr for ApplyMode {
    type Err = ApplyModeParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(ApplyMode::Auto),
            "no-reboot" => Ok(ApplyMode::NoReboot),
            "reboot" => Ok(ApplyMode::Reboot),
            "staged" => Ok(ApplyMode::Staged),
            "try" => Ok(ApplyMode::Try),
            _ => Err(ApplyModeParseError(s.to_string())),
        }
    }
}

/// The answer to ApplyConfiguration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApplyResult {
    pub warnings: Vec<String>,
    /// The mode the node actually used (AUTO resolves to NO_REBOOT or
    /// REBOOT). Meaningless in maintenance mode, where Talos leaves it 0. A
    /// number unknown to talstrap is reported as `Reboot`, the cautious
    /// reading.
    pub mode: ApplyMode,
    pub mode_details: String,
}

/// One etcd member from EtcdMemberList.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EtcdMember {
    pub id: u64,
    pub hostname: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    pub is_learner: bool,
}

impl EtcdMember {
    /// The IPs in the member's peer and client URLs (`https://IP:2380`), as
    /// `talosctl health` matches members to nodes. Names are not reliable:
    /// Talos names a member by the node's short hostname (the part before
    /// the first dot) or an automatic one (`talos-<ip-with-dashes>`,
    /// `talos-xxx-yyy`), and a learner may have no name yet.
    pub fn ips(&self) -> Vec<std::net::IpAddr> {
        let mut ips: Vec<std::net::IpAddr> = self
            .peer_urls
            .iter()
            .chain(&self.client_urls)
            .filter_map(|u| url_ip(u))
            .collect();
        ips.sort();
        ips.dedup();
        ips
    }

    /// Whether this member is the node with these addresses and hostname:
    /// by URL IP first, else by short hostname (case-insensitive).
    pub fn is_node(&self, addresses: &[std::net::IpAddr], hostname: &str) -> bool {
        let ips = self.ips();
        if addresses.iter().any(|a| ips.contains(a)) {
            return true;
        }
        let short = short_hostname(hostname);
        !self.hostname.is_empty()
            && short.parse::<std::net::IpAddr>().is_err()
            && short_hostname(&self.hostname).eq_ignore_ascii_case(short)
    }
}

/// The part of a hostname before the first dot: what Talos names the etcd
/// member (`ParseFQDN` in Talos's `resources/network/hostname_spec.go`).
/// An IP address is returned whole.
pub(crate) fn short_hostname(name: &str) -> &str {
    if name.parse::<std::net::IpAddr>().is_ok() {
        return name;
    }
    name.split('.').next().unwrap_or(name)
}

/// The host of `https://IP:PORT` (IPv6 in brackets), if it is an IP.
fn url_ip(url: &str) -> Option<std::net::IpAddr> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next()?.parse().ok();
    }
    authority
        .rsplit_once(':')
        .map_or(authority, |(h, _)| h)
        .parse()
        .ok()
}

/// EtcdStatus: healthy when `leader != 0` and `errors` is empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EtcdMemberStatus {
    pub member_id: u64,
    pub leader: u64,
    pub errors: Vec<String>,
    pub is_learner: bool,
    pub raft_index: u64,
}

/// One service state change (oldest first in [`ServiceStatus::events`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceEventInfo {
    pub msg: String,
    pub state: String,
    pub ts_unix: Option<i64>,
}

/// One service from ServiceList.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceStatus {
    pub id: String,
    /// `Running`, `Preparing`, `Waiting`, `Finished`, …
    pub state: String,
    /// `None` while the health is unknown (no check yet, or none defined).
    pub healthy: Option<bool>,
    pub last_message: String,
    pub events: Vec<ServiceEventInfo>,
}

/// SystemStat: the kernel boot time (Unix seconds). A change means a reboot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SystemStatInfo {
    pub boot_time: u64,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn etcd_members_match_nodes_by_url_ip_then_short_hostname() {
        let m = EtcdMember {
            id: 7,
            hostname: "cp1".into(),
            peer_urls: vec!["https://127.0.10.11:2380".into()],
            client_urls: vec![
                "https://127.0.10.11:2379".into(),
                "https://[fd00::11]:2379".into(),
            ],
            is_learner: false,
        };
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert_eq!(m.ips(), vec![ip("127.0.10.11"), ip("fd00::11")]);
        // FQDN hostname in talconfig, short name in etcd.
        assert!(m.is_node(&[ip("127.0.9.9")], "cp1.example.com"));
        assert!(
            m.is_node(&[ip("127.0.9.9")], "CP1.lab.example"),
            "names match case-insensitively"
        );
        assert!(m.is_node(&[ip("127.0.10.11")], "whatever"));
        assert!(m.is_node(&[ip("fd00::11")], "x"));
        assert!(!m.is_node(&[ip("127.0.10.12")], "cp2.example.com"));
        // Automatic names match by IP only; an IP "hostname" never matches by name.
        let auto = EtcdMember {
            hostname: "talos-10-0-0-11".into(),
            ..m.clone()
        };
        assert!(auto.is_node(&[ip("127.0.10.11")], "127.0.10.11"));
        let nameless = EtcdMember {
            hostname: String::new(),
            peer_urls: vec![],
            client_urls: vec![],
            ..m
        };
        assert!(!nameless.is_node(&[ip("127.0.10.11")], ""));
        assert_eq!(short_hostname("cp1.example.com"), "cp1");
        assert_eq!(short_hostname("127.0.10.1"), "127.0.10.1");
    }

    #[test]
    fn stage_text_round_trips() {
        for stage in Stage::ALL {
            assert_eq!(Stage::from_yaml_text(stage.as_str()), Some(stage));
            assert_eq!(stage.to_string(), stage.as_str());
        }
        assert_eq!(Stage::ShuttingDown.to_string(), "shutting down");
        assert_eq!(Stage::from_yaml_text("shutting_down"), None);
        assert_eq!(
            serde_json::to_string(&Stage::ShuttingDown).unwrap(),
            "\"shutting down\""
        );
    }

    #[test]
    fn stage_numbers_follow_the_enum() {
        assert_eq!(Stage::from_i32(0), Stage::Unknown);
        assert_eq!(Stage::from_i32(1), Stage::Booting);
        assert_eq!(Stage::from_i32(3), Stage::Maintenance);
        assert_eq!(Stage::from_i32(4), Stage::Running);
        assert_eq!(Stage::from_i32(6), Stage::ShuttingDown);
        assert_eq!(Stage::from_i32(8), Stage::Upgrading);
        assert_eq!(Stage::from_i32(9), Stage::Unknown);
        assert_eq!(Stage::from_i32(-1), Stage::Unknown);
    }

    #[test]
    fn roles_parse_and_print() {
        assert_eq!(MachineRole::ControlPlane.to_string(), "controlplane");
        assert_eq!(
            MachineRole::from_yaml_text("controlplane"),
            Some(MachineRole::ControlPlane)
        );
        assert_eq!(
            MachineRole::from_yaml_text("join"),
            Some(MachineRole::Worker)
        );
        assert_eq!(MachineRole::from_yaml_text("boss"), None);
        assert_eq!(MachineRole::from_i32(2), MachineRole::ControlPlane);
        assert_eq!(MachineRole::from_i32(3), MachineRole::Worker);
        assert!(MachineRole::Init.is_control_plane());
        assert!(!MachineRole::Worker.is_control_plane());
    }

    #[test]
    fn apply_modes_parse_like_talosctl() {
        assert_eq!("auto".parse::<ApplyMode>().unwrap(), ApplyMode::Auto);
        assert_eq!(
            "no-reboot".parse::<ApplyMode>().unwrap(),
            ApplyMode::NoReboot
        );
        assert_eq!("reboot".parse::<ApplyMode>().unwrap(), ApplyMode::Reboot);
        assert_eq!("staged".parse::<ApplyMode>().unwrap(), ApplyMode::Staged);
        assert_eq!("try".parse::<ApplyMode>().unwrap(), ApplyMode::Try);
        let err = "interactive".parse::<ApplyMode>().unwrap_err();
        assert!(err.to_string().contains("interactive"));
        for mode in [
            ApplyMode::Reboot,
            ApplyMode::Auto,
            ApplyMode::NoReboot,
            ApplyMode::Staged,
            ApplyMode::Try,
        ] {
            assert_eq!(mode.as_proto() as i32, mode as i32);
            assert_eq!(ApplyMode::from_i32(mode as i32), Some(mode));
            assert_eq!(mode.to_string().parse::<ApplyMode>().unwrap(), mode);
        }
        assert_eq!(ApplyMode::from_i32(7), None);
    }
}
