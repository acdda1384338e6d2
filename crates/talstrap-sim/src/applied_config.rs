//! The simulator's reading of an applied machine config: Talos's multi-
//! document decoding rules, the validation subset that decides whether an
//! apply is accepted, and the "can this be applied without a reboot" check.
//!
//! Error texts follow Talos (hashicorp/go-multierror formatting included),
//! because clients show them to operators and tests match on them.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use yaml_serde::Value;

use super::installdisk::{self, DiskMatcher};
use super::version;
use crate::disksel::DiskFacts;
use crate::proto::Role;

/// Document kinds Talos v1.9 registers besides v1alpha1.
const KINDS_V1_9: &[&str] = &[
    "ExtensionServiceConfig",
    "EventSinkConfig",
    "KmsgLogConfig",
    "KubeSpanEndpointsConfig",
    "NetworkRuleConfig",
    "NetworkDefaultActionConfig",
    "SideroLinkConfig",
    "TrustedRootsConfig",
    "VolumeConfig",
    "WatchdogTimerConfig",
];

/// Kinds added by v1.12.
const KINDS_V1_12: &[&str] = &[
    "UserVolumeConfig",
    "RawVolumeConfig",
    "ExistingVolumeConfig",
    "SwapVolumeConfig",
    "ZswapConfig",
    "HostnameConfig",
    "ResolverConfig",
    "TimeSyncConfig",
    "StaticHostConfig",
    "LinkConfig",
    "LinkAliasConfig",
    "BondConfig",
    "BridgeConfig",
    "VLANConfig",
    "DummyLinkConfig",
    "WireguardConfig",
    "DHCPv4Config",
    "DHCPv6Config",
    "Layer2VIPConfig",
    "HCloudVIPConfig",
    "EthernetConfig",
    "RegistryMirrorConfig",
    "RegistryAuthConfig",
    "RegistryTLSConfig",
    "OOMConfig",
    "PCIDriverRebindConfig",
];

/// Kinds added by v1.13 (Talos v1.13.9 pkg/machinery/config/types).
const KINDS_V1_13: &[&str] = &[
    "BlackholeRouteConfig",
    "EnvironmentConfig",
    "ExternalVolumeConfig",
    "ImageVerificationConfig",
    "KubeSpanConfig",
    "RoutingRuleConfig",
    "TCPProbeConfig",
    "VRFConfig",
];

/// Kinds added by v1.14 (Talos v1.14.0-rc.1 pkg/machinery/config/types).
const KINDS_V1_14: &[&str] = &[
    "BGPInstanceConfig",
    "CRIBaseRuntimeSpecConfig",
    "CRICustomizationConfig",
    "ContainerConfig",
    "DiscoveryIdentityConfig",
    "DiscoveryServiceConfig",
    "EtcFileConfig",
    "FilesystemScrubConfig",
    "FilesystemTrimConfig",
    "HTTPProbeConfig",
    "ImageCacheConfig",
    "KernelModuleConfig",
    "KubeAPIServerCAConfig",
    "KubeAPIServerConfig",
    "KubeAdmissionControlConfig",
    "KubeAggregatorCAConfig",
    "KubeAuditPolicyConfig",
    "KubeAuthenticationConfig",
    "KubeAuthorizerConfig",
    "KubeClusterConfig",
    "KubeControllerManagerConfig",
    "KubeCoreDNSConfig",
    "KubeCredentialProviderConfig",
    "KubeEtcdEncryptionConfig",
    "KubeExternalManifestConfig",
    "KubeFlannelCNIConfig",
    "KubeInlineManifestConfig",
    "KubeNetworkConfig",
    "KubeNodeConfig",
    "KubePrismConfig",
    "KubeProxyConfig",
    "KubeSchedulerConfig",
    "KubeServiceAccountConfig",
    "KubeStaticPodConfig",
    "KubeTalosAPIAccessConfig",
    "KubeletConfig",
    "LVMLogicalVolumeConfig",
    "LVMVolumeGroupConfig",
    "RAIDArrayConfig",
    "SecurityProfileConfig",
    "SysctlConfig",
    "SysfsConfig",
    "UdevRulesConfig",
    "UnattendedInstallConfig",
    "VethConfig",
];

/// Whether a node running `talos_version` registers document `kind`.
fn kind_known(kind: &str, talos_version: &str) -> bool {
    KINDS_V1_9.contains(&kind)
        || (version::at_least(talos_version, 1, 12) && KINDS_V1_12.contains(&kind))
        || (version::at_least(talos_version, 1, 13) && KINDS_V1_13.contains(&kind))
        || (version::at_least(talos_version, 1, 14) && KINDS_V1_14.contains(&kind))
}

/// v1.14's `UnattendedInstallConfig` (Talos v1.14.0-rc.1
/// pkg/machinery/config/types/runtime/unattended_install.go).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnattendedInstall {
    /// `provisioning.diskSelector.match`: a CEL boolean over `disk`.
    pub disk_match: String,
    /// `installer.image` (empty: the booted Image Factory schematic).
    pub image: String,
    /// `reboot`; when unset, reboot only if an installer image is set.
    pub reboot: Option<bool>,
}

impl UnattendedInstall {
    /// Whether the node reboots after installing (`reboot`, else "an image is set").
    pub fn reboots(&self) -> bool {
        self.reboot.unwrap_or(!self.image.is_empty())
    }
}

/// Why a config was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The bytes are not a Talos config stream (YAML, unknown kinds...).
    Parse(String),
    /// No v1alpha1 document.
    NoV1Alpha1,
    /// Validation failed; one message per problem.
    Invalid(Vec<String>),
}

/// `hashicorp/go-multierror`'s text, as Talos returns it.
pub fn multierror(errors: &[String]) -> String {
    let head = if errors.len() == 1 {
        "1 error occurred:".to_string()
    } else {
        format!("{} errors occurred:", errors.len())
    };
    let body: String = errors.iter().map(|e| format!("\n\t* {e}")).collect();
    format!("{head}{body}\n\n")
}

/// The Talos OS CA as found in `machine.ca`. `Debug` hides the key.
#[derive(Clone, PartialEq, Eq)]
pub struct CaPair {
    pub crt_pem: String,
    pub key_pem: Option<String>,
}

impl fmt::Debug for CaPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaPair")
            .field("has_key", &self.key_pem.is_some())
            .finish()
    }
}

/// A parsed machine config. Holds secrets: `Debug` shows only the shape.
#[derive(Clone)]
pub struct AppliedConfig {
    pub raw: Vec<u8>,
    pub v1alpha1: Value,
    pub other_docs: Vec<Value>,
    pub machine_type: String,
    pub hostname: Option<String>,
    pub ca: Option<CaPair>,
    pub accepted_cas: Vec<String>,
    pub cert_sans: Vec<String>,
    pub install_disk: Option<String>,
    /// `machine.install.diskSelector` as written (evaluated by [`installdisk`]).
    pub disk_selector: Option<Value>,
    pub has_install: bool,
    pub cluster_name: String,
    pub endpoint: String,
    pub cluster_ca: Option<CaPair>,
    /// `cluster.etcd.ca` is set (v1.14 Bootstrap refuses a config without it).
    pub has_etcd_ca: bool,
    /// v1.14's `UnattendedInstallConfig`, when the config has one.
    pub unattended: Option<UnattendedInstall>,
}

impl fmt::Debug for AppliedConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppliedConfig")
            .field("machine_type", &self.machine_type)
            .field("hostname", &self.hostname)
            .field("cluster_name", &self.cluster_name)
            .field("bytes", &self.raw.len())
            .finish_non_exhaustive()
    }
}

impl AppliedConfig {
    /// Control plane or worker (`init` counts as a control plane; empty,
    /// `worker` and legacy `join` as worker).
    pub fn role(&self) -> Option<Role> {
        match self.machine_type.as_str() {
            "controlplane" | "init" => Some(Role::ControlPlane),
            "worker" | "join" | "" => Some(Role::Worker),
            _ => None,
        }
    }

    /// Identity of the trust domain: the OS CA certificate PEM.
    pub fn ca_id(&self) -> Option<&str> {
        self.ca.as_ref().map(|c| c.crt_pem.trim())
    }

    /// Every CA a client certificate may chain to.
    pub fn client_cas(&self) -> Vec<String> {
        self.ca
            .iter()
            .map(|c| c.crt_pem.clone())
            .chain(self.accepted_cas.iter().cloned())
            .collect()
    }
}

fn is_v1alpha1(doc: &Value) -> bool {
    let Some(m) = doc.as_mapping() else {
        return false;
    };
    ["machine", "cluster", "debug", "persist"]
        .iter()
        .any(|k| m.contains_key(*k))
        || (doc.get("version").and_then(Value::as_str) == Some("v1alpha1")
            && doc.get("kind").is_none())
}

fn decode_pem_field(v: &Value, field: &str) -> Result<Option<String>, ConfigError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => {
            let bytes = B64
                .decode(s.trim())
                .map_err(|e| ConfigError::Parse(format!("{field}: illegal base64 data: {e}")))?;
            String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| ConfigError::Parse(format!("{field}: not UTF-8 PEM")))
        }
        _ => Err(ConfigError::Parse(format!(
            "{field}: expected a base64 string"
        ))),
    }
}

fn ca_pair(v: &Value, field: &str) -> Result<Option<CaPair>, ConfigError> {
    let crt = decode_pem_field(&v["crt"], &format!("{field}.crt"))?;
    let key = decode_pem_field(&v["key"], &format!("{field}.key"))?;
    Ok(match (crt, key) {
        (None, None) => None,
        (crt, key) => Some(CaPair {
            crt_pem: crt.unwrap_or_default(),
            key_pem: key,
        }),
    })
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// What the v1.14 documents say: the UnattendedInstallConfig, and the
/// cluster name and endpoint (KubeClusterConfig first, Talos v1.14.0-rc.1
/// pkg/machinery/config/types/k8s/cluster.go; else the v1alpha1 fields).
fn v1_14_facts(v1: &Value, others: &[Value]) -> (Option<UnattendedInstall>, String, String) {
    let doc = |kind: &str| {
        others
            .iter()
            .find(|d| d.get("kind").and_then(Value::as_str) == Some(kind))
    };
    let unattended = doc("UnattendedInstallConfig").map(|d| UnattendedInstall {
        disk_match: d["provisioning"]["diskSelector"]["match"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        image: d["installer"]["image"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        reboot: d["reboot"].as_bool(),
    });
    let kube_cluster = doc("KubeClusterConfig");
    let from_kube = |key: &str| {
        kube_cluster
            .and_then(|d| d[key].as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let endpoint = from_kube("endpoint").unwrap_or_else(|| {
        v1["cluster"]["controlPlane"]["endpoint"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    });
    let cluster_name = from_kube("clusterName").unwrap_or_else(|| {
        v1["cluster"]["clusterName"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    });
    (unattended, cluster_name, endpoint)
}

/// Decodes a machine config stream as Talos's config loader does, for a
/// node running `talos_version`.
pub fn parse(raw: &[u8], talos_version: &str) -> Result<AppliedConfig, ConfigError> {
    let text =
        std::str::from_utf8(raw).map_err(|_| ConfigError::Parse("config is not UTF-8".into()))?;
    let mut v1alpha1 = None;
    let mut others = Vec::new();
    for doc in yaml_serde::Deserializer::from_str(text) {
        let value = Value::deserialize(doc).map_err(|e| ConfigError::Parse(e.to_string()))?;
        if value.is_null() {
            continue;
        }
        if is_v1alpha1(&value) {
            if v1alpha1.is_some() {
                return Err(ConfigError::Parse("duplicate v1alpha1 document".into()));
            }
            v1alpha1 = Some(value);
            continue;
        }
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let api = value
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if kind.is_empty() || api.is_empty() {
            return Err(ConfigError::Parse(
                "missing kind or apiVersion in a config document".into(),
            ));
        }
        if !kind_known(kind, talos_version) {
            return Err(ConfigError::Parse(format!(
                "\"{kind}\" \"{api}\": not registered"
            )));
        }
        others.push(value);
    }
    let Some(v1) = v1alpha1 else {
        return Err(ConfigError::NoV1Alpha1);
    };
    let machine = &v1["machine"];
    let install = &machine["install"];
    let disk_selector = match install.get("diskSelector") {
        None | Some(Value::Null) => None,
        Some(v) if v.is_mapping() => Some(v.clone()),
        Some(_) => {
            return Err(ConfigError::Parse(
                "machine.install.diskSelector: expected a mapping".into(),
            ));
        }
    };
    let hostname = others
        .iter()
        .find(|d| d.get("kind").and_then(Value::as_str) == Some("HostnameConfig"))
        .and_then(|d| d.get("hostname").and_then(Value::as_str))
        .or_else(|| machine["network"]["hostname"].as_str())
        .filter(|h| !h.is_empty())
        .map(str::to_string);
    let (unattended, cluster_name, endpoint) = v1_14_facts(&v1, &others);
    Ok(AppliedConfig {
        has_etcd_ca: v1["cluster"]["etcd"]["ca"]["crt"]
            .as_str()
            .is_some_and(|c| !c.is_empty()),
        unattended,
        raw: raw.to_vec(),
        machine_type: machine["type"].as_str().unwrap_or_default().to_string(),
        hostname,
        ca: ca_pair(&machine["ca"], "machine.ca")?,
        accepted_cas: machine["acceptedCAs"]
            .as_sequence()
            .map(|s| {
                s.iter()
                    .filter_map(|c| {
                        decode_pem_field(&c["crt"], "machine.acceptedCAs")
                            .ok()
                            .flatten()
                    })
                    .collect()
            })
            .unwrap_or_default(),
        cert_sans: strings(&machine["certSANs"]),
        install_disk: install["disk"]
            .as_str()
            .filter(|d| !d.is_empty())
            .map(str::to_string),
        disk_selector,
        has_install: install.is_mapping(),
        cluster_name,
        endpoint,
        cluster_ca: ca_pair(&v1["cluster"]["ca"], "cluster.ca")?,
        v1alpha1: v1,
        other_docs: others,
    })
}

impl AppliedConfig {
    /// `cluster.discovery.enabled`; off when unset (v1.12.11
    /// pkg/machinery/config/types/v1alpha1/v1alpha1_discoveryconfig.go
    /// `Enabled` dereferences a nil pointer as false). A
    /// `DiscoveryServiceConfig` document (1.14's form) counts as on.
    pub fn discovery_enabled(&self) -> bool {
        self.v1alpha1["cluster"]["discovery"]["enabled"]
            .as_bool()
            .unwrap_or(false)
            || self
                .other_docs
                .iter()
                .any(|d| d.get("kind").and_then(Value::as_str) == Some("DiscoveryServiceConfig"))
    }

    /// Shared addresses this node campaigns for: `machine.network.interfaces[].vip.ip`
    /// and `Layer2VIPConfig` documents (named by the address; v1.12.11
    /// pkg/machinery/config/types/network/layer2_vip.go).
    pub fn vips(&self) -> Vec<std::net::IpAddr> {
        let mut out: Vec<std::net::IpAddr> = self.v1alpha1["machine"]["network"]["interfaces"]
            .as_sequence()
            .map(|s| {
                s.iter()
                    .filter_map(|i| i["vip"]["ip"].as_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        out.extend(self.other_docs.iter().filter_map(|d| {
            (d.get("kind").and_then(Value::as_str) == Some("Layer2VIPConfig"))
                .then(|| {
                    d.get("name")
                        .and_then(Value::as_str)?
                        .parse::<std::net::IpAddr>()
                        .ok()
                })
                .flatten()
        }));
        out
    }

    /// The host of `cluster.controlPlane.endpoint` (`https://<host>:6443`).
    pub fn endpoint_host(&self) -> Option<String> {
        let rest = self.endpoint.strip_prefix("https://")?;
        let authority = rest.split('/').next()?;
        let host = match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next()?,
            None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
        };
        (!host.is_empty()).then(|| host.to_string())
    }
}

/// Talos's `Validate` subset (metal mode). `requires_install` is true while
/// the node has not been installed yet. Returns warnings or the errors.
pub fn validate(
    cfg: &AppliedConfig,
    requires_install: bool,
    talos_version: &str,
) -> Result<Vec<String>, Vec<String>> {
    let mut errors = Vec::new();
    let v14 = version::unattended_install(talos_version);
    if let Some(u) = &cfg.unattended {
        // Talos v1.14.0-rc.1 pkg/machinery/config/types/runtime/unattended_install.go
        // (`Validate`, `V1Alpha1ConflictValidate`).
        if u.disk_match.trim().is_empty() {
            errors.push("provisioning.volumeSelector.match is required".to_string());
        }
        if cfg.has_install {
            errors.push(
                "UnattendedInstallConfig config is incompatible with v1alpha1 config (.machine.install)"
                    .to_string(),
            );
        }
    }
    errors.extend(hostname_conflicts(cfg));
    // v1.14: `.machine.install` is no longer required in metal mode.
    let requires_install = requires_install && !v14;
    let warnings = Vec::new();
    if cfg.v1alpha1.get("machine").is_none_or(Value::is_null) {
        return Err(vec!["machine instructions are required".into()]);
    }
    let endpoint = cfg.endpoint.as_str();
    if endpoint.is_empty() {
        errors.push("cluster controlplane endpoint is required".to_string());
    } else if !endpoint.starts_with("https://") {
        errors.push(format!(
            "invalid controlplane endpoint: {endpoint:?}: must be an https URL"
        ));
    }
    if requires_install {
        if !cfg.has_install {
            errors.push("install instructions are required in \"metal\" mode".to_string());
        } else {
            if let Some(sel) = &cfg.disk_selector
                && let Err(e) = installdisk::legacy_expression(sel)
            {
                errors.push(format!("install disk selector is invalid: {e}"));
            }
            if cfg.install_disk.is_none() && cfg.disk_selector.is_none() {
                errors.push("either install disk or diskSelector should be defined".to_string());
            }
        }
    }
    if cfg.ca.is_none() && cfg.accepted_cas.is_empty() {
        errors.push(
            "issuing CA or some accepted CAs are required (.machine.ca, machine.acceptedCAs)"
                .to_string(),
        );
    }
    if let Some(ca) = &cfg.ca
        && !ca.crt_pem.is_empty()
        && super::pki::first_cert_der(&ca.crt_pem, "machine.ca.crt").is_err()
    {
        errors.push("machine.ca.crt is not a PEM certificate".to_string());
    }
    match cfg.role() {
        Some(Role::ControlPlane) => match &cfg.ca {
            None => errors.push("issuing CA is required (.machine.ca)".to_string()),
            Some(ca) if ca.key_pem.is_none() => errors.push(
                "issuing CA key is required for controlplane nodes (.machine.ca.key)".to_string(),
            ),
            Some(_) => {}
        },
        Some(Role::Worker) => {
            if let Some(ca) = &cfg.ca {
                if ca.key_pem.is_some() {
                    errors.push(
                        "issuing Talos API CA key is not allowed on non-controlplane nodes (.machine.ca)"
                            .to_string(),
                    );
                }
                if ca.crt_pem.is_empty() && cfg.accepted_cas.is_empty() {
                    errors.push("trusted CA certificates are required on non-controlplane nodes (.machine.ca.crt, .machine.acceptedCAs)".to_string());
                }
            }
            if cfg.cluster_ca.as_ref().is_some_and(|c| c.key_pem.is_some()) {
                errors.push(
                    "issuing Kubernetes API CA key is not allowed on non-controlplane nodes (.cluster.ca)"
                        .to_string(),
                );
            }
        }
        None => errors.push(format!("unknown machine type {:?}", cfg.machine_type)),
    }
    if errors.is_empty() {
        Ok(warnings)
    } else {
        Err(errors)
    }
}

/// A `HostnameConfig` document next to the v1alpha1 hostname settings it
/// replaces: Talos's container validation appends these cross-document
/// errors without a document prefix (Talos v1.12.11 and v1.13.9
/// pkg/machinery/config/types/network/hostname.go `V1Alpha1ConflictValidate`,
/// pkg/machinery/config/container/container.go `Validate`; the same at
/// v1.14.0-rc.1).
fn hostname_conflicts(cfg: &AppliedConfig) -> Vec<String> {
    let has_doc = cfg
        .other_docs
        .iter()
        .any(|d| d.get("kind").and_then(Value::as_str) == Some("HostnameConfig"));
    if !has_doc {
        return Vec::new();
    }
    let machine = &cfg.v1alpha1["machine"];
    if machine["network"]["hostname"]
        .as_str()
        .is_some_and(|h| !h.is_empty())
    {
        return vec!["static hostname is already set in v1alpha1 config".to_string()];
    }
    if machine["features"]["stableHostname"].as_bool() == Some(true) {
        return vec!["stable hostname is already set in v1alpha1 config".to_string()];
    }
    Vec::new()
}

/// Talos's `RuntimeValidate` for a node that still has to install: a legacy
/// disk selector must match at least one of the node's disks (Talos v1.12.11
/// pkg/machinery/config/types/v1alpha1/v1alpha1_validation.go). Nothing
/// checks an UnattendedInstallConfig selector at apply time.
pub fn runtime_validate(cfg: &AppliedConfig, disks: &[DiskFacts]) -> Result<(), Vec<String>> {
    let Some(sel) = &cfg.disk_selector else {
        return Ok(());
    };
    let invalid = |e: String| vec![format!("install disk selector is invalid: {e}")];
    let expr = installdisk::legacy_expression(sel).map_err(invalid)?;
    let found = DiskMatcher::cached(&expr)
        .and_then(|m| m.matching(disks).map(|f| f.len()))
        .map_err(invalid)?;
    if found == 0 {
        return Err(vec![format!("no disks matched the expression: {expr}")]);
    }
    Ok(())
}

/// The disk a legacy (`machine.install`) install would write to, if any.
pub fn install_target<'a>(cfg: &AppliedConfig, disks: &'a [DiskFacts]) -> Option<&'a DiskFacts> {
    if let Some(sel) = &cfg.disk_selector {
        let expr = installdisk::legacy_expression(sel).ok()?;
        return DiskMatcher::cached(&expr)
            .ok()?
            .matching(disks)
            .ok()?
            .into_iter()
            .next();
    }
    installdisk::resolve_path(cfg.install_disk.as_deref()?, disks)
}

/// The disk an UnattendedInstallConfig install writes to: `Ok(None)` when no
/// disk matches (Talos keeps the status pending: "no disk matched the
/// selector"), `Err` when the expression cannot be evaluated.
pub fn unattended_target<'a>(
    cfg: &AppliedConfig,
    disks: &'a [DiskFacts],
) -> Result<Option<&'a DiskFacts>, String> {
    let Some(u) = &cfg.unattended else {
        return Ok(None);
    };
    let m = DiskMatcher::cached(&u.disk_match)?;
    Ok(m.matching(disks)?.into_iter().next())
}

/// Subtrees of `.machine` Talos can change without a reboot.
const LIVE_MACHINE_KEYS: &[&str] = &[
    "ca",
    "acceptedCAs",
    "time",
    "certSANs",
    "install",
    "network",
    "sysfs",
    "sysctls",
    "logging",
    "controlPlane",
    "kubelet",
    "kernel",
    "registries",
    "pods",
    "seccompProfiles",
    "nodeAnnotations",
    "nodeLabels",
    "nodeTaints",
];

const LIVE_FEATURE_KEYS: &[&str] = &[
    "kubernetesTalosAPIAccess",
    "kubePrism",
    "hostDNS",
    "imageCache",
    "nodeAddressSortAlgorithm",
];

/// Talos's `CanApplyImmediate`: copies every live-applicable part of the
/// current v1alpha1 document into the new one; any remaining difference
/// needs a reboot. Only the v1alpha1 document is compared.
pub fn can_apply_immediate(current: &AppliedConfig, new: &AppliedConfig) -> Result<(), String> {
    let mut adjusted = new.v1alpha1.clone();
    let cur = &current.v1alpha1;
    let copy = |dst: &mut Value, src: &Value, key: &str| {
        let Some(m) = dst.as_mapping_mut() else {
            return;
        };
        match src.get(key) {
            Some(v) => {
                m.insert(Value::String(key.into()), v.clone());
            }
            None => {
                m.remove(key);
            }
        }
    };
    copy(&mut adjusted, cur, "debug");
    copy(&mut adjusted, cur, "cluster");
    if let (Some(cur_m), Some(_)) = (cur.get("machine"), adjusted.get("machine")) {
        let cur_m = cur_m.clone();
        if let Some(new_m) = adjusted.get_mut("machine") {
            for key in LIVE_MACHINE_KEYS {
                copy(new_m, &cur_m, key);
            }
            if let (Some(cur_f), Some(new_f)) = (cur_m.get("features"), new_m.get_mut("features")) {
                for key in LIVE_FEATURE_KEYS {
                    copy(new_f, cur_f, key);
                }
            }
        }
    }
    if &adjusted == cur {
        return Ok(());
    }
    Err(format!(
        "this config change can't be applied in immediate mode\ndiff:\n{}",
        yaml_diff(cur, &adjusted)
    ))
}

/// The v1.13+ maintenance dry-run diff: the old side is empty, so every
/// line of every document is added (Talos v1.13.9 pkg/machinery/textdiff).
pub fn diff_from_empty(new: &AppliedConfig) -> String {
    let body: String = std::iter::once(&new.v1alpha1)
        .chain(new.other_docs.iter())
        .map(|d| yaml_serde::to_string(d).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("---\n");
    let lines: Vec<&str> = body.lines().collect();
    let mut out = format!("--- a\n+++ b\n@@ -0,0 +1,{} @@\n", lines.len());
    for l in lines {
        out.push('+');
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// A unified-style line diff of two YAML values ("" when equal).
pub fn yaml_diff(old: &Value, new: &Value) -> String {
    let a = yaml_serde::to_string(old).unwrap_or_default();
    let b = yaml_serde::to_string(new).unwrap_or_default();
    line_diff(&a, &b)
}

/// Diff of the whole config (all documents), as the dry-run summary shows it.
pub fn config_diff(old: &AppliedConfig, new: &AppliedConfig) -> String {
    let render = |c: &AppliedConfig| {
        std::iter::once(&c.v1alpha1)
            .chain(c.other_docs.iter())
            .map(|d| yaml_serde::to_string(d).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("---\n")
    };
    line_diff(&render(old), &render(new))
}

fn line_diff(a: &str, b: &str) -> String {
    if a == b {
        return String::new();
    }
    let x: Vec<&str> = a.lines().collect();
    let y: Vec<&str> = b.lines().collect();
    // Longest common subsequence table (configs are small).
    let mut lcs = vec![vec![0u32; y.len() + 1]; x.len() + 1];
    for i in (0..x.len()).rev() {
        for j in (0..y.len()).rev() {
            lcs[i][j] = if x[i] == y[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut out = String::from("--- a\n+++ b\n");
    let (mut i, mut j) = (0, 0);
    while i < x.len() || j < y.len() {
        if i < x.len() && j < y.len() && x[i] == y[j] {
            i += 1;
            j += 1;
        } else if j < y.len() && (i == x.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push_str(&format!("+{}\n", y[j]));
            j += 1;
        } else {
            out.push_str(&format!("-{}\n", x[i]));
            i += 1;
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::genconfig::{ClusterSpec, InstallTarget, NodeSpec, generate_cluster};

    fn generated() -> (tempfile::TempDir, Vec<u8>, Vec<u8>) {
        let tmp = tempfile::tempdir().unwrap();
        let spec = ClusterSpec {
            cluster_name: "mc".into(),
            talos_version: "v1.12.11".into(),
            kubernetes_version: "v1.34.1".into(),
            endpoint_ip: "127.5.5.254".parse().unwrap(),
            network: Default::default(),
            nodes: vec![
                NodeSpec {
                    hostname: "cp1".into(),
                    ip: "127.5.5.11".parse().unwrap(),
                    control_plane: true,
                    install: InstallTarget::Disk("/dev/nvme0n1".into()),
                },
                NodeSpec {
                    hostname: "w1".into(),
                    ip: "127.5.5.12".parse().unwrap(),
                    control_plane: false,
                    install: InstallTarget::Selector(crate::disksel::DiskSelector {
                        size: Some(">= 1TB".into()),
                        ..Default::default()
                    }),
                },
            ],
        };
        let g = generate_cluster(&spec, tmp.path()).unwrap();
        let cp = std::fs::read(&g.nodes[0].config_path).unwrap();
        let w = std::fs::read(&g.nodes[1].config_path).unwrap();
        (tmp, cp, w)
    }

    #[test]
    fn generated_configs_parse_and_validate() {
        let (_t, cp, w) = generated();
        let cp = parse(&cp, "v1.12.11").unwrap();
        assert_eq!(cp.role(), Some(Role::ControlPlane));
        assert_eq!(cp.hostname.as_deref(), Some("cp1"));
        assert!(cp.ca.as_ref().unwrap().key_pem.is_some());
        assert_eq!(cp.install_disk.as_deref(), Some("/dev/nvme0n1"));
        assert_eq!(cp.endpoint, "https://127.5.5.254:6443");
        assert_eq!(validate(&cp, true, "v1.12.11"), Ok(vec![]));
        let w = parse(&w, "v1.12.11").unwrap();
        assert_eq!(w.role(), Some(Role::Worker));
        assert_eq!(
            w.disk_selector.as_ref().unwrap()["size"].as_str(),
            Some(">= 1TB")
        );
        assert_eq!(validate(&w, true, "v1.12.11"), Ok(vec![]));
        assert_eq!(cp.ca_id(), w.ca_id());
        assert!(!format!("{cp:?}").contains("PRIVATE"));
    }

    #[test]
    fn a_v1alpha1_hostname_next_to_a_hostname_document_is_refused() {
        let (_t, cp, _) = generated();
        let text = String::from_utf8(cp).unwrap();
        assert!(!text.contains("    hostname: cp1\n"), "{text}");
        let both = text.replacen("  network: {}\n", "  network:\n    hostname: cp1\n", 1);
        assert_ne!(both, text);
        let stable = text.replacen(
            "  features:\n",
            "  features:\n    stableHostname: true\n",
            1,
        );
        assert_ne!(stable, text);
        for v in ["v1.12.11", "v1.13.9", "v1.14.0-rc.1"] {
            let cfg = parse(both.as_bytes(), v).unwrap();
            assert_eq!(
                validate(&cfg, false, v),
                Err(vec![
                    "static hostname is already set in v1alpha1 config".to_string()
                ]),
                "{v}"
            );
            let cfg = parse(stable.as_bytes(), v).unwrap();
            assert_eq!(
                validate(&cfg, false, v),
                Err(vec![
                    "stable hostname is already set in v1alpha1 config".to_string()
                ]),
                "{v}"
            );
            // The v1alpha1 hostname alone is fine.
            let alone = both.split("\n---\n").next().unwrap();
            let cfg = parse(alone.as_bytes(), v).unwrap();
            assert_eq!(validate(&cfg, false, v), Ok(vec![]), "{v}");
        }
    }

    #[test]
    fn hostname_config_is_unknown_before_1_12() {
        let (_t, cp, _) = generated();
        assert_eq!(
            parse(&cp, "v1.11.0").unwrap_err(),
            ConfigError::Parse("\"HostnameConfig\" \"v1alpha1\": not registered".into())
        );
    }

    #[test]
    fn rejects_what_talos_rejects() {
        assert!(matches!(
            parse(b"machine: [", "v1.12.0"),
            Err(ConfigError::Parse(_))
        ));
        assert_eq!(
            parse(
                b"apiVersion: v1alpha1\nkind: HostnameConfig\nhostname: x\n",
                "v1.12.0"
            )
            .unwrap_err(),
            ConfigError::NoV1Alpha1
        );
        let (_t, cp, w) = generated();
        // A worker carrying the CA key.
        let cp_cfg = parse(&cp, "v1.12.0").unwrap();
        let mut bad = String::from_utf8(w.clone()).unwrap();
        bad = bad.replace("type: worker", "type: worker\n  x: 1");
        let mut worker = parse(bad.as_bytes(), "v1.12.0").unwrap();
        worker.ca = cp_cfg.ca.clone();
        let errs = validate(&worker, true, "v1.12.11").unwrap_err();
        assert!(
            errs.iter().any(|e| e.contains("CA key is not allowed")),
            "{errs:?}"
        );
        // No install section.
        let mut no_install = parse(&cp, "v1.12.0").unwrap();
        no_install.install_disk = None;
        no_install.disk_selector = None;
        let errs = validate(&no_install, true, "v1.12.11").unwrap_err();
        assert_eq!(
            errs,
            ["either install disk or diskSelector should be defined"]
        );
        assert_eq!(validate(&no_install, false, "v1.12.11"), Ok(vec![]));
        assert_eq!(
            multierror(&errs),
            "1 error occurred:\n\t* either install disk or diskSelector should be defined\n\n"
        );
    }

    #[test]
    fn runtime_validation_needs_a_matching_disk() {
        let (_t, _, w) = generated();
        let w = parse(&w, "v1.12.0").unwrap();
        let small = vec![DiskFacts {
            dev_path: "/dev/nvme0n1".into(),
            size: 512_000_000_000,
            transport: "nvme".into(),
            ..DiskFacts::default()
        }];
        let errs = runtime_validate(&w, &small).unwrap_err();
        assert_eq!(
            errs,
            [
                "no disks matched the expression: disk.size >= 1000000000000u && disk.transport != \"\" && !disk.readonly && !disk.cdrom"
            ]
        );
        let mut big = small.clone();
        big.push(DiskFacts {
            dev_path: "/dev/sda".into(),
            size: 2_000_000_000_000,
            transport: "sata".into(),
            rotational: true,
            ..DiskFacts::default()
        });
        assert!(runtime_validate(&w, &big).is_ok());
        assert_eq!(install_target(&w, &big).unwrap().dev_path, "/dev/sda");
    }

    #[test]
    fn immediate_apply_rules() {
        let (_t, cp, _) = generated();
        let cur = parse(&cp, "v1.12.0").unwrap();
        assert_eq!(can_apply_immediate(&cur, &cur), Ok(()));
        let text = String::from_utf8(cp.clone()).unwrap();
        let labels = parse(
            text.replace("certSANs:", "nodeLabels:\n    a: b\n  certSANs:")
                .as_bytes(),
            "v1.12.0",
        )
        .unwrap();
        assert_eq!(can_apply_immediate(&cur, &labels), Ok(()));
        let retyped = parse(
            text.replace("type: controlplane", "type: init").as_bytes(),
            "v1.12.0",
        )
        .unwrap();
        let err = can_apply_immediate(&cur, &retyped).unwrap_err();
        assert!(
            err.starts_with("this config change can't be applied in immediate mode\ndiff:\n"),
            "{err}"
        );
        assert!(
            err.contains("-  type: controlplane") && err.contains("+  type: init"),
            "{err}"
        );
        assert_eq!(config_diff(&cur, &cur), "");
        assert!(config_diff(&cur, &labels).contains("+    a: b"));
    }
}
