//! The COSI resources a simulated node exposes (`cosi.resource.State`), with
//! Talos's access policy: canonical type names and a namespace are required
//! (unknown type → PermissionDenied `resource type "X" is not supported`,
//! sensitive type without admin → `not authorized`, unknown namespace →
//! `namespace "X" is not supported`). Specs carry both `proto_spec` and a
//! `yaml_spec` printed like Talos prints it (4-space indents).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;
use tonic::Status;

use super::node::SimNode;
use super::rbac::Roles;
use super::state::{Health, Lifecycle, NodeState, Role};
use super::version;
use crate::proto::common::NetIpPrefix;
use crate::proto::cosi::resource::{Metadata, Resource, Spec};
use crate::proto::talos::resource::definitions as defs;

/// One resource type Talos registers.
#[derive(Debug, Clone, Copy)]
pub struct TypeDef {
    pub name: &'static str,
    pub namespace: &'static str,
    pub sensitive: bool,
    owner: &'static str,
}

const fn def(
    name: &'static str,
    namespace: &'static str,
    sensitive: bool,
    owner: &'static str,
) -> TypeDef {
    TypeDef {
        name,
        namespace,
        sensitive,
        owner,
    }
}

pub const MACHINE_STATUS: &str = "MachineStatuses.runtime.talos.dev";
pub const MACHINE_TYPE: &str = "MachineTypes.config.talos.dev";
pub const VERSIONS: &str = "Versions.runtime.talos.dev";
pub const DISKS: &str = "Disks.block.talos.dev";
pub const SYSTEM_DISKS: &str = "SystemDisks.block.talos.dev";
pub const ETCD_MEMBERS: &str = "EtcdMembers.etcd.talos.dev";
pub const MACHINE_CONFIGS: &str = "MachineConfigs.config.talos.dev";
pub const SERVICES: &str = "Services.v1alpha1.talos.dev";
pub const NODE_ADDRESSES: &str = "NodeAddresses.net.talos.dev";
pub const UNATTENDED_INSTALL: &str = "UnattendedInstallStatuses.runtime.talos.dev";

/// Types served with content, plus a few registered ones that stay empty.
const TYPES: &[TypeDef] = &[
    def(
        MACHINE_STATUS,
        "runtime",
        false,
        "runtime.MachineStatusController",
    ),
    def(
        MACHINE_TYPE,
        "config",
        false,
        "config.MachineTypeController",
    ),
    def(VERSIONS, "runtime", false, "runtime.VersionController"),
    def(DISKS, "runtime", false, "block.DisksController"),
    def(SYSTEM_DISKS, "runtime", false, "block.SystemDiskController"),
    def(ETCD_MEMBERS, "etcd", false, "etcd.MemberController"),
    def(MACHINE_CONFIGS, "config", true, "config.AcquireController"),
    def(SERVICES, "runtime", false, "v1alpha1.ServiceController"),
    def(
        NODE_ADDRESSES,
        "network",
        false,
        "network.NodeAddressController",
    ),
    def(
        UNATTENDED_INSTALL,
        "runtime",
        false,
        "runtime.UnattendedInstallController",
    ),
    def("Diagnostics.runtime.talos.dev", "runtime", false, ""),
    def("Members.cluster.talos.dev", "cluster", false, ""),
    def("OSRootSecrets.secrets.talos.dev", "secrets", true, ""),
    def("EtcdRootSecrets.secrets.talos.dev", "secrets", true, ""),
    def(
        "KubernetesRootSecrets.secrets.talos.dev",
        "secrets",
        true,
        "",
    ),
];

/// Namespaces Talos registers.
const NAMESPACES: &[&str] = &[
    "runtime",
    "config",
    "etcd",
    "network",
    "network-config",
    "cluster",
    "meta",
    "secrets",
    "k8s",
    "controlplane",
    "v1alpha1",
    "cri",
    "files",
    "hardware",
    "perf",
    "siderolink",
    "kubespan",
];

/// Talos's access filter, in its order: type, sensitivity, namespace.
pub fn check_access(
    node: &SimNode,
    type_name: &str,
    namespace: &str,
    roles: &Roles,
) -> Result<TypeDef, Status> {
    let lower = type_name.to_lowercase();
    let known = TYPES
        .iter()
        .find(|t| t.name.to_lowercase() == lower)
        .copied();
    let Some(t) = known.filter(|t| match t.name {
        VERSIONS => version::at_least(&node.id.talos_version, 1, 10),
        UNATTENDED_INSTALL => version::unattended_install(&node.id.talos_version),
        _ => true,
    }) else {
        return Err(Status::permission_denied(format!(
            "resource type {type_name:?} is not supported"
        )));
    };
    if t.sensitive && !roles.is_admin() {
        return Err(Status::permission_denied("not authorized"));
    }
    if !NAMESPACES.contains(&namespace) {
        return Err(Status::permission_denied(format!(
            "namespace {namespace:?} is not supported"
        )));
    }
    Ok(t)
}

/// One resource's current content.
#[derive(Debug, Clone, PartialEq)]
pub struct Content {
    pub id: String,
    pub yaml: String,
    pub proto: Vec<u8>,
}

/// Version bookkeeping per (type, id).
#[derive(Debug, Clone)]
struct Versioned {
    version: u64,
    yaml: String,
    proto: Vec<u8>,
    created: SystemTime,
    updated: SystemTime,
}

/// Per-node cache that turns "current content" into versioned resources.
#[derive(Debug, Default)]
pub struct ResourceVersions {
    entries: Mutex<HashMap<(String, String), Versioned>>,
}

fn ts(t: SystemTime) -> prost_types::Timestamp {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    prost_types::Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

impl ResourceVersions {
    /// Stamps `content` with a version that changes whenever the spec does.
    pub fn resource(&self, t: &TypeDef, namespace: &str, c: &Content) -> Resource {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = SystemTime::now();
        let e = entries
            .entry((t.name.to_string(), c.id.clone()))
            .or_insert_with(|| Versioned {
                version: 0,
                yaml: String::new(),
                proto: Vec::new(),
                created: now,
                updated: now,
            });
        if e.version == 0 || e.yaml != c.yaml || e.proto != c.proto {
            e.version += 1;
            e.yaml = c.yaml.clone();
            e.proto = c.proto.clone();
            e.updated = now;
        }
        Resource {
            metadata: Some(Metadata {
                namespace: namespace.to_string(),
                r#type: t.name.to_string(),
                id: c.id.clone(),
                version: e.version.to_string(),
                owner: t.owner.to_string(),
                phase: "running".to_string(),
                created: Some(ts(e.created)),
                updated: Some(ts(e.updated)),
                ..Default::default()
            }),
            spec: Some(Spec {
                proto_spec: c.proto.clone(),
                yaml_spec: c.yaml.clone(),
            }),
        }
    }
}

/// The tombstone a single-resource watch sends when the resource is absent.
pub fn tombstone(t: &TypeDef, namespace: &str, id: &str) -> Resource {
    Resource {
        metadata: Some(Metadata {
            namespace: namespace.to_string(),
            r#type: t.name.to_string(),
            id: id.to_string(),
            version: "undefined".to_string(),
            phase: "running".to_string(),
            ..Default::default()
        }),
        spec: None,
    }
}

/// A YAML scalar as Go's yaml prints it (quoted only when needed).
fn scalar(s: &str) -> String {
    yaml_serde::to_string(&s)
        .map(|t| t.trim_end().to_string())
        .unwrap_or_else(|_| format!("{s:?}"))
}

#[derive(Clone, PartialEq, Message)]
struct SystemDiskSpec {
    #[prost(string, tag = "1")]
    disk_id: String,
    #[prost(string, tag = "2")]
    dev_path: String,
}

/// go-humanize `Bytes`: decimal units, one decimal below 10.
fn pretty_size(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    if n < 10 {
        return format!("{n} B");
    }
    let e = ((n as f64).ln() / 1000f64.ln()).floor() as usize;
    let e = e.min(UNITS.len() - 1);
    let val = ((n as f64) / 1000f64.powi(e as i32) * 10.0 + 0.5).floor() / 10.0;
    if val < 10.0 {
        format!("{val:.1} {}", UNITS[e])
    } else {
        format!("{val:.0} {}", UNITS[e])
    }
}

fn machine_status(st: &NodeState, node: &SimNode) -> Content {
    let stage = st.stage(&node.id);
    let conditions = st.unmet_conditions(&node.id);
    let ready = conditions.is_empty();
    let mut yaml = format!(
        "stage: {}\nstatus:\n    ready: {ready}\n",
        scalar(stage.as_str())
    );
    if conditions.is_empty() {
        yaml.push_str("    unmetConditions: []\n");
    } else {
        yaml.push_str("    unmetConditions:\n");
        for (name, reason) in &conditions {
            yaml.push_str(&format!(
                "        - name: {}\n          reason: {}\n",
                scalar(name),
                scalar(reason)
            ));
        }
    }
    let proto = defs::MachineStatusSpec {
        stage: stage.proto(),
        status: Some(defs::MachineStatusStatus {
            ready,
            unmet_conditions: conditions
                .into_iter()
                .map(|(name, reason)| defs::UnmetCondition { name, reason })
                .collect(),
        }),
    }
    .encode_to_vec();
    Content {
        id: "machine".to_string(),
        yaml,
        proto,
    }
}

fn disk_content(d: &crate::disksel::DiskFacts) -> Content {
    let id = d.dev_path.trim_start_matches("/dev/").to_string();
    let mut yaml = format!(
        "dev_path: {}\nsize: {}\npretty_size: {}\nio_size: 512\nsector_size: 512\nreadonly: {}\ncdrom: {}\n",
        scalar(&d.dev_path),
        d.size,
        scalar(&pretty_size(d.size)),
        d.readonly,
        d.cdrom
    );
    for (k, v) in [
        ("model", &d.model),
        ("serial", &d.serial),
        ("modalias", &d.modalias),
        ("wwid", &d.wwid),
        ("uuid", &d.uuid),
        ("bus_path", &d.bus_path),
    ] {
        if !v.is_empty() {
            yaml.push_str(&format!("{k}: {}\n", scalar(v)));
        }
    }
    yaml.push_str("sub_system: /sys/class/block\n");
    if !d.symlinks.is_empty() {
        yaml.push_str("symlinks:\n");
        for l in &d.symlinks {
            yaml.push_str(&format!("    - {}\n", scalar(l)));
        }
    }
    if !d.transport.is_empty() {
        yaml.push_str(&format!("transport: {}\n", scalar(&d.transport)));
    }
    if d.rotational {
        yaml.push_str("rotational: true\n");
    }
    let proto = defs::DiskSpec {
        size: d.size,
        io_size: 512,
        sector_size: 512,
        readonly: d.readonly,
        model: d.model.clone(),
        serial: d.serial.clone(),
        modalias: d.modalias.clone(),
        wwid: d.wwid.clone(),
        bus_path: d.bus_path.clone(),
        sub_system: "/sys/class/block".to_string(),
        transport: d.transport.clone(),
        rotational: d.rotational,
        cdrom: d.cdrom,
        dev_path: d.dev_path.clone(),
        pretty_size: pretty_size(d.size),
        secondary_disks: Vec::new(),
        uuid: d.uuid.clone(),
        symlinks: d.symlinks.clone(),
        firmware_version: String::new(),
    }
    .encode_to_vec();
    Content { id, yaml, proto }
}

/// `UnattendedInstallStatuses.runtime.talos.dev/unattended-install`, while
/// the node has an UnattendedInstallConfig.
fn unattended_content(st: &NodeState) -> Option<Content> {
    let u = st.unattended.as_ref()?;
    let mut yaml = String::new();
    if !u.image.is_empty() {
        yaml.push_str(&format!("image: {}\n", scalar(&u.image)));
    }
    // `omitempty`: pending (0) is not printed.
    if u.phase != super::state::InstallPhase::Pending {
        yaml.push_str(&format!("phase: {}\n", u.phase.as_str()));
    }
    if !u.error.is_empty() {
        yaml.push_str(&format!("error: {}\n", scalar(&u.error)));
    }
    Some(Content {
        id: "unattended-install".to_string(),
        yaml,
        proto: defs::UnattendedInstallStatusSpec {
            image: u.image.clone(),
            phase: u.phase.proto(),
            error: u.error.clone(),
        }
        .encode_to_vec(),
    })
}

/// Every resource of type `t` the node has right now.
pub fn contents(node: &SimNode, t: &TypeDef) -> Vec<Content> {
    let st = node.lock();
    let configured = st.lifecycle == Lifecycle::Configured;
    match t.name {
        MACHINE_STATUS => vec![machine_status(&st, node)],
        MACHINE_TYPE => vec![machine_type_content(&st, node, configured)],
        VERSIONS => vec![Content {
            id: "version".to_string(),
            yaml: format!("version: {}\n", scalar(&node.id.talos_version)),
            proto: defs::VersionSpec {
                version: node.id.talos_version.clone(),
            }
            .encode_to_vec(),
        }],
        DISKS => node.id.disks.iter().map(disk_content).collect(),
        UNATTENDED_INSTALL => unattended_content(&st).into_iter().collect(),
        SYSTEM_DISKS if configured => system_disk_content(&st).into_iter().collect(),
        ETCD_MEMBERS if configured => etcd_member_content(&st).into_iter().collect(),
        MACHINE_CONFIGS if configured => machine_config_content(&st).into_iter().collect(),
        SERVICES if configured => service_contents(&st, node),
        NODE_ADDRESSES => node_address_contents(node),
        _ => Vec::new(),
    }
}

/// `MachineTypes`: the role once the node has a config, else `unknown`.
fn machine_type_content(st: &NodeState, node: &SimNode, configured: bool) -> Content {
    let (text, num) = if configured || st.config.is_some() {
        match st.role(&node.id) {
            Role::ControlPlane => ("controlplane", 2),
            Role::Worker => ("worker", 3),
        }
    } else {
        ("unknown", 0)
    };
    Content {
        id: "machine-type".to_string(),
        yaml: format!("{text}\n"),
        proto: defs::MachineTypeSpec { machine_type: num }.encode_to_vec(),
    }
}

/// `SystemDisks` of a configured node: the disk it installed to.
fn system_disk_content(st: &NodeState) -> Option<Content> {
    let dev = st.installed_disk.as_ref()?;
    let id = dev.trim_start_matches("/dev/").to_string();
    Some(Content {
        id: "system-disk".to_string(),
        yaml: format!("diskID: {}\ndevPath: {}\n", scalar(&id), scalar(dev)),
        proto: SystemDiskSpec {
            disk_id: id,
            dev_path: dev.clone(),
        }
        .encode_to_vec(),
    })
}

/// `EtcdMembers` of a configured node: the local member, once etcd runs healthy.
fn etcd_member_content(st: &NodeState) -> Option<Content> {
    let e = &st.etcd;
    if e.service != super::state::EtcdService::Running || !e.healthy {
        return None;
    }
    let id = format!("{:016x}", e.member_id);
    Some(Content {
        id: "local".to_string(),
        yaml: format!("memberID: {}\n", scalar(&id)),
        proto: defs::EtcdMemberSpec { member_id: id }.encode_to_vec(),
    })
}

/// `MachineConfigs` of a configured node: the active config.
fn machine_config_content(st: &NodeState) -> Option<Content> {
    let cfg = st.config.as_ref()?;
    let text = String::from_utf8_lossy(&cfg.raw).to_string();
    Some(Content {
        id: "v1alpha1".to_string(),
        // The whole config as one YAML string scalar.
        yaml: yaml_serde::to_string(&text).unwrap_or_default(),
        proto: defs::MachineConfigSpec {
            yaml_marshalled: cfg.raw.clone(),
        }
        .encode_to_vec(),
    })
}

/// `Services` of a configured node.
fn service_contents(st: &NodeState, node: &SimNode) -> Vec<Content> {
    st.services(&node.id)
        .into_iter()
        .map(|s| {
            let healthy = s.health == Health::Healthy;
            let unknown = s.health == Health::Unknown;
            Content {
                id: s.id.to_string(),
                yaml: format!(
                    "running: {}\nhealthy: {healthy}\nunknown: {unknown}\n",
                    s.running
                ),
                proto: defs::ServiceSpec {
                    running: s.running,
                    healthy,
                    unknown,
                }
                .encode_to_vec(),
            }
        })
        .collect()
}

/// `NodeAddresses`: the node's one address in each of Talos's four lists.
fn node_address_contents(node: &SimNode) -> Vec<Content> {
    let prefix = match node.id.ip {
        std::net::IpAddr::V4(_) => 24,
        std::net::IpAddr::V6(_) => 64,
    };
    let ip_bytes = match node.id.ip {
        std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
        std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    ["accumulative", "current", "default", "routed"]
        .iter()
        .map(|id| Content {
            id: (*id).to_string(),
            yaml: format!(
                "addresses:\n    - {}/{prefix}\nsortAlgorithm: v1\n",
                node.id.ip
            ),
            proto: defs::NodeAddressSpec {
                addresses: vec![NetIpPrefix {
                    ip: ip_bytes.clone(),
                    prefix_length: prefix,
                }],
                sort_algorithm: 0,
            }
            .encode_to_vec(),
        })
        .collect()
}

/// The current resource `id` of type `t`, versioned.
pub fn get(
    node: &SimNode,
    versions: &ResourceVersions,
    t: &TypeDef,
    namespace: &str,
    id: &str,
) -> Option<Resource> {
    if namespace != t.namespace {
        return None;
    }
    contents(node, t)
        .into_iter()
        .find(|c| c.id == id)
        .map(|c| versions.resource(t, namespace, &c))
}

/// Every current resource of type `t`, versioned, sorted by id.
pub fn list(
    node: &SimNode,
    versions: &ResourceVersions,
    t: &TypeDef,
    namespace: &str,
) -> Vec<Resource> {
    if namespace != t.namespace {
        return Vec::new();
    }
    let mut all = contents(node, t);
    all.sort_by(|a, b| a.id.cmp(&b.id));
    all.iter()
        .map(|c| versions.resource(t, namespace, c))
        .collect()
}

/// NotFound as the COSI runtime words it.
pub fn not_found(t: &TypeDef, namespace: &str, id: &str) -> Status {
    Status::not_found(format!(
        "resource {}({namespace}/{id}@undefined) doesn't exist",
        t.name
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn humanized_sizes() {
        assert_eq!(pretty_size(512_000_000_000), "512 GB");
        assert_eq!(pretty_size(2_000_000_000_000), "2.0 TB");
        assert_eq!(pretty_size(1_500_000_000_000), "1.5 TB");
        assert_eq!(pretty_size(5), "5 B");
    }

    #[test]
    fn scalars_are_quoted_only_when_needed() {
        assert_eq!(scalar("booting"), "booting");
        assert_eq!(scalar("shutting down"), "shutting down");
        assert_eq!(
            scalar("node \"cp1\" status is not available yet"),
            "node \"cp1\" status is not available yet"
        );
        assert_eq!(scalar("true"), "'true'");
    }
}
