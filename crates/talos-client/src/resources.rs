//! Decoding the specs of the COSI resources talstrap reads.
//!
//! Talos fills both `yaml_spec` and `proto_spec` on Get/List/Watch. The YAML
//! is preferred (it is what `talosctl get` shows and needs no spec protos);
//! when it is empty the protobuf bytes are decoded with the messages in
//! `crate::proto::talos::resource::definitions`.

use serde::Deserialize;

use super::types::{
    InstallPhase, InstallStatus, MachineRole, MachineStatus, Stage, UnmetCondition,
};
use crate::disksel::DiskFacts;
use crate::proto::cosi::resource::Resource;
use crate::proto::talos::resource::definitions as defs;

/// Canonical resource types and namespaces (Talos resolves no aliases
/// server-side, and the namespace must always be sent).
pub(crate) mod kinds {
    pub(crate) const MACHINE_STATUS: (&str, &str, &str) =
        ("runtime", "MachineStatuses.runtime.talos.dev", "machine");
    pub(crate) const VERSION: (&str, &str, &str) =
        ("runtime", "Versions.runtime.talos.dev", "version");
    pub(crate) const MACHINE_TYPE: (&str, &str, &str) =
        ("config", "MachineTypes.config.talos.dev", "machine-type");
    pub(crate) const ETCD_LOCAL_MEMBER: (&str, &str, &str) =
        ("etcd", "EtcdMembers.etcd.talos.dev", "local");
    pub(crate) const MACHINE_CONFIG: (&str, &str, &str) =
        ("config", "MachineConfigs.config.talos.dev", "v1alpha1");
    pub(crate) const DISKS: (&str, &str) = ("runtime", "Disks.block.talos.dev");
    /// v1.14 only (Talos v1.14.0-rc.1
    /// pkg/machinery/resources/runtime/unattended_install_status.go).
    pub(crate) const UNATTENDED_INSTALL_STATUS: (&str, &str, &str) = (
        "runtime",
        "UnattendedInstallStatuses.runtime.talos.dev",
        "unattended-install",
    );
}

/// Which encoding of a spec to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpecSource<'a> {
    Yaml(&'a str),
    Proto(&'a [u8]),
}

/// Picks the YAML spec when present, else the protobuf bytes (possibly
/// empty: an all-default message encodes to nothing).
pub(crate) fn spec_source(resource: &Resource) -> SpecSource<'_> {
    match &resource.spec {
        Some(spec) if !spec.yaml_spec.trim().is_empty() => SpecSource::Yaml(&spec.yaml_spec),
        Some(spec) => SpecSource::Proto(&spec.proto_spec),
        None => SpecSource::Proto(&[]),
    }
}

fn yaml<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, String> {
    yaml_serde::from_str(text).map_err(|e| format!("YAML spec: {e}"))
}

fn proto<T: prost::Message + Default>(bytes: &[u8]) -> Result<T, String> {
    T::decode(bytes).map_err(|e| format!("protobuf spec: {e}"))
}

#[derive(Deserialize)]
struct YamlMachineStatus {
    #[serde(default)]
    stage: String,
    #[serde(default)]
    status: Option<YamlMachineStatusStatus>,
}

#[derive(Deserialize, Default)]
struct YamlMachineStatusStatus {
    #[serde(default)]
    ready: bool,
    #[serde(default, rename = "unmetConditions")]
    unmet_conditions: Option<Vec<YamlUnmet>>,
}

#[derive(Deserialize)]
struct YamlUnmet {
    #[serde(default)]
    name: String,
    #[serde(default)]
    reason: String,
}

/// `MachineStatuses.runtime.talos.dev/machine`.
pub(crate) fn machine_status(resource: &Resource) -> Result<MachineStatus, String> {
    match spec_source(resource) {
        SpecSource::Yaml(text) => {
            let spec: YamlMachineStatus = yaml(text)?;
            let status = spec.status.unwrap_or_default();
            Ok(MachineStatus {
                stage: Stage::from_yaml_text(&spec.stage).unwrap_or(Stage::Unknown),
                ready: status.ready,
                unmet: status
                    .unmet_conditions
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| UnmetCondition {
                        name: c.name,
                        reason: c.reason,
                    })
                    .collect(),
            })
        }
        SpecSource::Proto(bytes) => {
            let spec: defs::MachineStatusSpec = proto(bytes)?;
            let status = spec.status.unwrap_or_default();
            Ok(MachineStatus {
                stage: Stage::from_i32(spec.stage),
                ready: status.ready,
                unmet: status
                    .unmet_conditions
                    .into_iter()
                    .map(|c| UnmetCondition {
                        name: c.name,
                        reason: c.reason,
                    })
                    .collect(),
            })
        }
    }
}

#[derive(Deserialize)]
struct YamlVersion {
    #[serde(default)]
    version: String,
}

/// `Versions.runtime.talos.dev/version`: e.g. `v1.12.11`.
pub(crate) fn version(resource: &Resource) -> Result<String, String> {
    match spec_source(resource) {
        SpecSource::Yaml(text) => Ok(yaml::<YamlVersion>(text)?.version),
        SpecSource::Proto(bytes) => Ok(proto::<defs::VersionSpec>(bytes)?.version),
    }
}

/// `MachineTypes.config.talos.dev/machine-type`: the YAML spec is a bare
/// scalar (`controlplane`), not a mapping.
pub(crate) fn machine_type(resource: &Resource) -> Result<MachineRole, String> {
    match spec_source(resource) {
        SpecSource::Yaml(text) => {
            let value: String = yaml(text)?;
            MachineRole::from_yaml_text(&value)
                .ok_or_else(|| format!("unknown machine type \"{value}\""))
        }
        SpecSource::Proto(bytes) => Ok(MachineRole::from_i32(
            proto::<defs::MachineTypeSpec>(bytes)?.machine_type,
        )),
    }
}

#[derive(Deserialize)]
struct YamlEtcdMember {
    #[serde(default, rename = "memberID")]
    member_id: String,
}

/// `EtcdMembers.etcd.talos.dev/local`: the member id (16 hex digits).
pub(crate) fn etcd_member_id(resource: &Resource) -> Result<String, String> {
    match spec_source(resource) {
        SpecSource::Yaml(text) => Ok(yaml::<YamlEtcdMember>(text)?.member_id),
        SpecSource::Proto(bytes) => Ok(proto::<defs::EtcdMemberSpec>(bytes)?.member_id),
    }
}

/// `MachineConfigs.config.talos.dev`: the YAML spec is the whole config as
/// one YAML string scalar; the proto carries it as `yaml_marshalled`.
pub(crate) fn machine_config(resource: &Resource) -> Result<Vec<u8>, String> {
    match spec_source(resource) {
        SpecSource::Yaml(text) => Ok(yaml::<String>(text)?.into_bytes()),
        SpecSource::Proto(bytes) => Ok(proto::<defs::MachineConfigSpec>(bytes)?.yaml_marshalled),
    }
}

#[derive(Deserialize)]
struct YamlInstallStatus {
    #[serde(default)]
    image: String,
    #[serde(default)]
    phase: String,
    #[serde(default)]
    error: String,
}

/// `UnattendedInstallStatuses.runtime.talos.dev/unattended-install`. The
/// phase is `omitempty`: absent means pending.
pub(crate) fn install_status(resource: &Resource) -> Result<InstallStatus, String> {
    match spec_source(resource) {
        SpecSource::Yaml(text) => {
            let s: YamlInstallStatus = yaml(text)?;
            Ok(InstallStatus {
                phase: InstallPhase::from_yaml_text(&s.phase)
                    .ok_or_else(|| format!("unknown install phase \"{}\"", s.phase))?,
                error: s.error,
                image: s.image,
            })
        }
        SpecSource::Proto(bytes) => {
            let s: defs::UnattendedInstallStatusSpec = proto(bytes)?;
            Ok(InstallStatus {
                phase: InstallPhase::from_i32(s.phase)
                    .ok_or_else(|| format!("unknown install phase {}", s.phase))?,
                error: s.error,
                image: s.image,
            })
        }
    }
}

/// `Disks.block.talos.dev` (namespace `runtime`).
pub(crate) fn disk(resource: &Resource) -> Result<DiskFacts, String> {
    let mut facts = match spec_source(resource) {
        SpecSource::Yaml(text) => yaml::<DiskFacts>(text)?,
        SpecSource::Proto(bytes) => DiskFacts::from(proto::<defs::DiskSpec>(bytes)?),
    };
    if facts.dev_path.is_empty() {
        // The resource id is the device name (e.g. `sda`).
        if let Some(id) = resource
            .metadata
            .as_ref()
            .map(|m| m.id.as_str())
            .filter(|id| !id.is_empty())
        {
            facts.dev_path = format!("/dev/{id}");
        }
    }
    Ok(facts)
}

/// Builds a resource with the given specs (the tests' fake node).
#[cfg(test)]
pub(crate) fn make_resource(
    ns: &str,
    ty: &str,
    id: &str,
    yaml_spec: &str,
    proto_spec: Vec<u8>,
) -> Resource {
    use crate::proto::cosi::resource::{Metadata, Spec};
    Resource {
        metadata: Some(Metadata {
            namespace: ns.to_string(),
            r#type: ty.to_string(),
            id: id.to_string(),
            version: "1".to_string(),
            phase: "running".to_string(),
            ..Default::default()
        }),
        spec: Some(Spec {
            proto_spec,
            yaml_spec: yaml_spec.to_string(),
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use prost::Message as _;

    fn res(yaml_spec: &str, proto_spec: Vec<u8>) -> Resource {
        make_resource("runtime", "X", "sda", yaml_spec, proto_spec)
    }

    #[test]
    fn yaml_is_preferred_over_proto() {
        let r = res("stage: running\n", vec![1, 2]);
        assert_eq!(spec_source(&r), SpecSource::Yaml("stage: running\n"));
        let r = res("  \n", vec![1, 2]);
        assert_eq!(spec_source(&r), SpecSource::Proto(&[1, 2]));
        let none = Resource {
            metadata: None,
            spec: None,
        };
        assert_eq!(spec_source(&none), SpecSource::Proto(&[]));
    }

    #[test]
    fn machine_status_from_yaml() {
        let text = "stage: booting\nstatus:\n    ready: false\n    unmetConditions:\n        - name: services\n          reason: etcd not running\n";
        let s = machine_status(&res(text, vec![])).unwrap();
        assert_eq!(s.stage, Stage::Booting);
        assert!(!s.ready);
        assert_eq!(
            s.unmet,
            vec![UnmetCondition {
                name: "services".into(),
                reason: "etcd not running".into()
            }]
        );
        let s = machine_status(&res(
            "stage: shutting down\nstatus:\n    ready: true\n",
            vec![],
        ))
        .unwrap();
        assert_eq!(s.stage, Stage::ShuttingDown);
        assert!(s.ready && s.unmet.is_empty());
    }

    #[test]
    fn machine_status_from_proto() {
        let spec = defs::MachineStatusSpec {
            stage: defs::RuntimeMachineStage::MachineStageMaintenance as i32,
            status: Some(defs::MachineStatusStatus {
                ready: true,
                unmet_conditions: vec![defs::UnmetCondition {
                    name: "time".into(),
                    reason: "time is not synced".into(),
                }],
            }),
        };
        let s = machine_status(&res("", spec.encode_to_vec())).unwrap();
        assert_eq!(s.stage, Stage::Maintenance);
        assert!(s.ready);
        assert_eq!(s.unmet[0].name, "time");
    }

    #[test]
    fn machine_type_is_a_bare_scalar_in_yaml() {
        assert_eq!(
            machine_type(&res("controlplane\n", vec![])).unwrap(),
            MachineRole::ControlPlane
        );
        let spec = defs::MachineTypeSpec {
            machine_type: defs::MachineType::Worker as i32,
        };
        assert_eq!(
            machine_type(&res("", spec.encode_to_vec())).unwrap(),
            MachineRole::Worker
        );
        assert!(machine_type(&res("overlord\n", vec![])).is_err());
    }

    #[test]
    fn version_etcd_member_and_config() {
        assert_eq!(
            version(&res("version: v1.12.11\n", vec![])).unwrap(),
            "v1.12.11"
        );
        let spec = defs::VersionSpec {
            version: "v1.10.0".into(),
        };
        assert_eq!(version(&res("", spec.encode_to_vec())).unwrap(), "v1.10.0");
        assert_eq!(
            etcd_member_id(&res("memberID: 0a1b2c3d4e5f6a7b\n", vec![])).unwrap(),
            "0a1b2c3d4e5f6a7b"
        );
        let config = "version: v1alpha1\nmachine:\n  type: worker\n";
        let yaml_spec = yaml_serde::to_string(config).unwrap();
        assert_eq!(
            machine_config(&res(&yaml_spec, vec![])).unwrap(),
            config.as_bytes()
        );
        let spec = defs::MachineConfigSpec {
            yaml_marshalled: config.as_bytes().to_vec(),
        };
        assert_eq!(
            machine_config(&res("", spec.encode_to_vec())).unwrap(),
            config.as_bytes()
        );
    }

    #[test]
    fn disks_from_yaml_and_proto() {
        let text = "dev_path: /dev/nvme0n1\nsize: 512110190592\npretty_size: 512 GB\nmodel: Samsung SSD 970\nserial: S4EW\nwwid: eui.0025\nbus_path: /pci0000:00/0000:00:1d.0/nvme\ntransport: nvme\nrotational: false\nreadonly: false\ncdrom: false\nsecondary_disks: []\n";
        let d = disk(&res(text, vec![])).unwrap();
        assert_eq!(d.dev_path, "/dev/nvme0n1");
        assert_eq!(d.size, 512_110_190_592);
        assert_eq!(d.transport, "nvme");
        assert_eq!(d.model, "Samsung SSD 970");
        let spec = defs::DiskSpec {
            size: 1024,
            transport: "virtio".into(),
            rotational: true,
            cdrom: false,
            ..Default::default()
        };
        let d = disk(&res("", spec.encode_to_vec())).unwrap();
        assert_eq!(d.size, 1024);
        assert!(d.rotational);
        // dev_path missing: derived from the resource id.
        assert_eq!(d.dev_path, "/dev/sda");
    }

    #[test]
    fn unattended_install_status_from_yaml_and_proto() {
        // `phase` is omitempty: absent means pending.
        let s = install_status(&res("error: no disk matched the selector\n", vec![])).unwrap();
        assert_eq!(s.phase, InstallPhase::Pending);
        assert_eq!(s.error, "no disk matched the selector");
        let s = install_status(&res("image: f/i:v1\nphase: waiting-for-reboot\n", vec![])).unwrap();
        assert_eq!(
            (s.phase, s.image.as_str()),
            (InstallPhase::WaitingForReboot, "f/i:v1")
        );
        assert!(install_status(&res("phase: sideways\n", vec![])).is_err());
        let bytes = defs::UnattendedInstallStatusSpec {
            image: String::new(),
            phase: 4,
            error: "exit status 1".into(),
        }
        .encode_to_vec();
        let s = install_status(&res("", bytes)).unwrap();
        assert_eq!(
            (s.phase, s.error.as_str()),
            (InstallPhase::Failed, "exit status 1")
        );
        // An all-default message encodes to nothing: pending.
        assert_eq!(
            install_status(&res("", vec![])).unwrap().phase,
            InstallPhase::Pending
        );
    }

    #[test]
    fn malformed_yaml_is_an_error() {
        assert!(machine_status(&res("stage: [unclosed", vec![])).is_err());
        assert!(disk(&res("size: not-a-number\n", vec![])).is_err());
    }
}
