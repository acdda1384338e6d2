//! A Talos machine config file as talstrap needs it: the exact bytes (sent
//! unchanged by `apply`), plus the few facts read from it: role, hostname,
//! install disk or selector, cluster name, endpoint and the OS CA
//! certificate. The file is a multi-document YAML stream; its structure is
//! checked the way Talos's own decoder checks it, so that a config Talos
//! would refuse is refused here, before any node is contacted.
//!
//! These files hold CA keys and tokens: `Debug` never shows the bytes, and
//! no error message quotes a value from them.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use yaml_serde::Value;

use super::Role;
use super::error::InputError;
use super::validate::{check_endpoint, check_hostname};
use super::yaml::{get, kind_of, opt_string, parse_documents, scalar_string, to_utf8};
use crate::disksel::DiskSelector;

/// `machine.type` as Talos reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MachineType {
    ControlPlane,
    Worker,
    /// Legacy first control plane that bootstraps etcd by itself.
    Init,
}

impl MachineType {
    /// The role a node of this type plays.
    pub fn role(self) -> Role {
        match self {
            MachineType::ControlPlane | MachineType::Init => Role::ControlPlane,
            MachineType::Worker => Role::Worker,
        }
    }

    /// The spelling used in machine configs.
    pub fn as_str(self) -> &'static str {
        match self {
            MachineType::ControlPlane => "controlplane",
            MachineType::Worker => "worker",
            MachineType::Init => "init",
        }
    }
}

impl fmt::Display for MachineType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed machine config. See the module docs.
#[derive(Clone)]
pub struct MachineConfig {
    /// Shared: every copy of a node's plan refers to the same bytes.
    raw: std::sync::Arc<[u8]>,
    path: PathBuf,
    pub machine_type: MachineType,
    /// The `HostnameConfig` document's `hostname`, else `machine.network.hostname`
    /// (Talos refuses both together).
    pub hostname: Option<String>,
    /// `machine.install.disk`.
    pub install_disk: Option<String>,
    /// `machine.install.diskSelector`.
    pub disk_selector: Option<DiskSelector>,
    /// v1.14 `UnattendedInstallConfig` `provisioning.diskSelector.match`: a
    /// CEL boolean over `disk`.
    pub unattended_match: Option<String>,
    /// Flannel is configured: a `KubeFlannelCNIConfig` document, or a legacy
    /// `cluster.network` whose CNI is flannel or unset. Without either,
    /// Talos v1.14 runs no CNI (Talos v1.14.0-rc.1
    /// pkg/machinery/config/types/v1alpha1/v1alpha1_k8s_bridge.go).
    pub flannel_configured: bool,
    /// `cluster.clusterName`.
    pub cluster_name: Option<String>,
    /// `cluster.controlPlane.endpoint` (validated as an https URL).
    pub endpoint: Option<String>,
    /// `machine.ca.crt`, base64-decoded: the OS CA certificate in PEM.
    pub os_ca_crt_pem: Option<Vec<u8>>,
    /// Whether `machine.ca.key` is present (the key itself is never kept).
    pub has_ca_key: bool,
    /// Every document other than v1alpha1: (kind, name).
    pub extra_documents: Vec<(String, Option<String>)>,
    /// What verify's wait reads from the documents (CNI, discovery, VIPs).
    pub wait_facts: super::wait_facts::WaitFacts,
    /// Things worth telling the operator that do not stop talstrap, about
    /// this file (callers add the path or node).
    pub warnings: Vec<String>,
}

impl fmt::Debug for MachineConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MachineConfig")
            .field("path", &self.path)
            .field("raw", &format_args!("<{} bytes redacted>", self.raw.len()))
            .field("machine_type", &self.machine_type)
            .field("hostname", &self.hostname)
            .field("install_disk", &self.install_disk)
            .field("disk_selector", &self.disk_selector)
            .field("unattended_match", &self.unattended_match)
            .field("cluster_name", &self.cluster_name)
            .field("endpoint", &self.endpoint)
            .field(
                "os_ca_crt_pem",
                &self
                    .os_ca_crt_pem
                    .as_ref()
                    .map(|c| format!("<{} bytes>", c.len())),
            )
            .field("has_ca_key", &self.has_ca_key)
            .field("extra_documents", &self.extra_documents)
            .field("wait_facts", &self.wait_facts)
            .field("warnings", &self.warnings)
            .finish()
    }
}

impl MachineConfig {
    /// Reads and parses the machine config at `path`.
    pub fn load(path: &Path) -> Result<Self, InputError> {
        let bytes = super::read::read_input_file(path).map_err(|source| InputError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, bytes)
    }

    /// Parses `bytes` read from `path` (used only in messages).
    pub fn parse(path: &Path, bytes: Vec<u8>) -> Result<Self, InputError> {
        let text = to_utf8(path, &bytes)?;
        let docs = parse_documents(path, text)?;
        if docs.is_empty() {
            return Err(InputError::Empty {
                path: path.to_path_buf(),
            });
        }
        let layout = classify(path, &docs)?;
        let v1 = layout.v1alpha1;
        let mut warnings = Vec::new();

        if let Some(version) = opt_string(path, v1, &["version"])?
            && version != "v1alpha1"
        {
            warnings.push(format!("`version` is {version:?}; Talos expects v1alpha1"));
        }

        let machine_type = machine_type(path, v1, &mut warnings)?;

        let mut hostname = opt_string(path, v1, &["machine", "network", "hostname"])?;
        if let Some(doc) = layout.hostname_doc {
            hostname_conflict(path, v1, hostname.as_deref())?;
            hostname = opt_string(path, doc, &["hostname"])?;
        }
        if let Some(h) = &hostname
            && let Err(reason) = check_hostname(h)
        {
            warnings.push(format!("hostname: {reason}"));
        }

        let install_disk = opt_string(path, v1, &["machine", "install", "disk"])?;
        let disk_selector = match get(v1, &["machine", "install", "diskSelector"]) {
            None | Some(Value::Null) => None,
            Some(v) => Some(disk_selector(path, v)?),
        };

        let DocumentFacts {
            unattended_match,
            cluster_name,
            endpoint,
            flannel_configured,
        } = document_facts(path, v1, &layout, &mut warnings)?;

        let os_ca_crt_pem = match opt_string(path, v1, &["machine", "ca", "crt"])? {
            Some(b64) => Some(decode_ca_cert(path, &b64)?),
            None => None,
        };
        let has_ca_key = opt_string(path, v1, &["machine", "ca", "key"])?.is_some();
        check_ca_keys(path, v1, machine_type, has_ca_key, &mut warnings)?;
        if install_disk.is_none() && disk_selector.is_none() && unattended_match.is_none() {
            warnings.push(
                "neither machine.install.disk nor machine.install.diskSelector is set; \
                 a metal install needs one"
                    .to_string(),
            );
        }

        let wait_facts = super::wait_facts::WaitFacts::of(docs.iter().map(|(_, d)| d));
        Ok(MachineConfig {
            raw: bytes.into(),
            path: path.to_path_buf(),
            machine_type,
            hostname,
            install_disk,
            disk_selector,
            unattended_match,
            flannel_configured,
            cluster_name,
            endpoint,
            os_ca_crt_pem,
            has_ca_key,
            extra_documents: layout.extra,
            wait_facts,
            warnings,
        })
    }

    /// The exact file bytes.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The file this config was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The node role implied by `machine.type`.
    pub fn role(&self) -> Role {
        self.machine_type.role()
    }
}

/// A `HostnameConfig` document next to the v1alpha1 settings it replaces:
/// Talos refuses the config (Talos v1.12.11 and v1.13.9
/// pkg/machinery/config/types/network/hostname.go `V1Alpha1ConflictValidate`:
/// "static hostname is already set in v1alpha1 config", "stable hostname
/// is already set in v1alpha1 config").
fn hostname_conflict(path: &Path, v1: &Value, v1_hostname: Option<&str>) -> Result<(), InputError> {
    let conflict = |field: &str, talos: &str| InputError::InvalidField {
        path: path.to_path_buf(),
        field: field.into(),
        reason: format!(
            "cannot be combined with a HostnameConfig document (Talos refuses the config: {talos}); keep the hostname in one place, the HostnameConfig document on Talos v1.12+"
        ),
    };
    if v1_hostname.is_some_and(|h| !h.is_empty()) {
        return Err(conflict(
            "machine.network.hostname",
            "static hostname is already set in v1alpha1 config",
        ));
    }
    if get(v1, &["machine", "features", "stableHostname"]).and_then(Value::as_bool) == Some(true) {
        return Err(conflict(
            "machine.features.stableHostname",
            "stable hostname is already set in v1alpha1 config",
        ));
    }
    Ok(())
}

/// The CA keys a config may hold for its role: a control plane needs the
/// OS CA key, a worker must not have it (Talos refuses both), and a
/// worker with the cluster CA key is warned about.
fn check_ca_keys(
    path: &Path,
    v1: &Value,
    machine_type: MachineType,
    has_ca_key: bool,
    warnings: &mut Vec<String>,
) -> Result<(), InputError> {
    match (machine_type.role(), has_ca_key) {
        (Role::Worker, true) => {
            return Err(InputError::WorkerWithCaKey {
                path: path.to_path_buf(),
            });
        }
        (Role::ControlPlane, false) => {
            return Err(InputError::ControlPlaneWithoutCaKey {
                path: path.to_path_buf(),
                machine_type: machine_type.to_string(),
            });
        }
        _ => {}
    }
    if machine_type.role() == Role::Worker
        && opt_string(path, v1, &["cluster", "ca", "key"])?.is_some()
    {
        warnings.push(
            "cluster.ca.key is set on a worker config; Talos rejects CA keys on workers"
                .to_string(),
        );
    }
    Ok(())
}

/// What the v1.12–v1.14 documents say beside v1alpha1: the v1.14
/// UnattendedInstallConfig selector, the cluster name and endpoint
/// (KubeClusterConfig first, then the legacy fields), whether Flannel is
/// configured, and warnings for document kinds no release knows.
struct DocumentFacts {
    unattended_match: Option<String>,
    cluster_name: Option<String>,
    endpoint: Option<String>,
    flannel_configured: bool,
}

fn document_facts(
    path: &Path,
    v1: &Value,
    layout: &Layout<'_>,
    warnings: &mut Vec<String>,
) -> Result<DocumentFacts, InputError> {
    let unattended_match = match layout.doc("UnattendedInstallConfig") {
        Some(doc) => Some(
            opt_string(path, doc, &["provisioning", "diskSelector", "match"])?.ok_or_else(
                || InputError::InvalidField {
                    path: path.to_path_buf(),
                    field: "UnattendedInstallConfig provisioning.diskSelector.match".into(),
                    reason: "is required (a CEL expression over `disk`)".into(),
                },
            )?,
        ),
        None => None,
    };
    if unattended_match.is_some() && get(v1, &["machine", "install"]).is_some_and(|v| !v.is_null())
    {
        return Err(InputError::InvalidField {
            path: path.to_path_buf(),
            field: "machine.install".into(),
            reason: "cannot be combined with an UnattendedInstallConfig document (Talos: UnattendedInstallConfig config is incompatible with v1alpha1 config (.machine.install)); keep one of them"
                .into(),
        });
    }
    // v1.14 moves the name and endpoint to KubeClusterConfig; read it first.
    let kube_cluster = layout.doc("KubeClusterConfig");
    let (cluster_name, endpoint, endpoint_field) = match kube_cluster {
        Some(doc) => (
            opt_string(path, doc, &["clusterName"])?,
            opt_string(path, doc, &["endpoint"])?,
            "KubeClusterConfig endpoint",
        ),
        None => (
            opt_string(path, v1, &["cluster", "clusterName"])?,
            opt_string(path, v1, &["cluster", "controlPlane", "endpoint"])?,
            "cluster.controlPlane.endpoint",
        ),
    };
    match &endpoint {
        Some(url) => {
            check_endpoint(url).map_err(|reason| InputError::InvalidField {
                path: path.to_path_buf(),
                field: endpoint_field.into(),
                reason,
            })?;
        }
        None => warnings.push(format!(
            "{endpoint_field} is not set; Talos will reject this config"
        )),
    }
    let flannel_configured = layout.doc("KubeFlannelCNIConfig").is_some()
        || match get(v1, &["cluster", "network"]) {
            None | Some(Value::Null) => false,
            Some(net) => get(net, &["cni", "name"])
                .and_then(Value::as_str)
                .is_none_or(|n| n == "flannel"),
        };
    for (kind, _) in &layout.extra {
        if !super::config_kinds::known(kind) {
            warnings.push(format!(
                "unknown document kind {kind:?}: no Talos release from v1.12 to v1.14 knows it, and a node rejects the config"
            ));
        }
    }

    Ok(DocumentFacts {
        unattended_match,
        cluster_name,
        endpoint,
        flannel_configured,
    })
}

struct Layout<'a> {
    v1alpha1: &'a Value,
    hostname_doc: Option<&'a Value>,
    extra: Vec<(String, Option<String>)>,
    docs: Vec<&'a Value>,
}

impl<'a> Layout<'a> {
    /// The first document of `kind`.
    fn doc(&self, kind: &str) -> Option<&'a Value> {
        self.docs
            .iter()
            .copied()
            .find(|d| d.get("kind").and_then(Value::as_str) == Some(kind))
    }
}

/// Keys that make a document the v1alpha1 document (Talos's decoder rule).
const V1ALPHA1_KEYS: [&str; 4] = ["machine", "cluster", "debug", "persist"];

fn classify<'a>(path: &Path, docs: &'a [(usize, Value)]) -> Result<Layout<'a>, InputError> {
    let mut v1: Option<(usize, &Value)> = None;
    let mut hostname_doc = None;
    let mut extra = Vec::new();
    let mut docs_by_kind = Vec::new();
    let mut seen: HashMap<(String, Option<String>), usize> = HashMap::new();
    for (index, doc) in docs {
        let index = *index;
        let Value::Mapping(map) = doc else {
            return Err(InputError::InvalidField {
                path: path.to_path_buf(),
                field: format!("document {index}"),
                reason: format!("expected a mapping, found {}", kind_of(doc)),
            });
        };
        if V1ALPHA1_KEYS.iter().any(|k| map.contains_key(*k)) {
            if let Some((first, _)) = v1 {
                return Err(InputError::MultipleV1alpha1 {
                    path: path.to_path_buf(),
                    first,
                    second: index,
                });
            }
            v1 = Some((index, doc));
            continue;
        }
        let field_str = |field: &'static str| -> Result<Option<String>, InputError> {
            match doc.get(field) {
                None => Ok(None),
                Some(v) => scalar_string(v)
                    .map(|s| s.filter(|s| !s.is_empty()))
                    .map_err(|kind| InputError::InvalidField {
                        path: path.to_path_buf(),
                        field: format!("document {index}: {field}"),
                        reason: format!("expected a string, found {kind}"),
                    }),
            }
        };
        let Some(kind) = field_str("kind")? else {
            return Err(InputError::DocumentWithoutKind {
                path: path.to_path_buf(),
                index,
                field: "kind",
            });
        };
        if field_str("apiVersion")?.is_none() {
            return Err(InputError::DocumentWithoutKind {
                path: path.to_path_buf(),
                index,
                field: "apiVersion",
            });
        }
        let name = field_str("name")?;
        let key = (kind.clone(), name.clone());
        if let Some(first) = seen.insert(key, index) {
            return Err(InputError::DuplicateDocument {
                path: path.to_path_buf(),
                kind,
                name,
                first,
                second: index,
            });
        }
        if kind == "HostnameConfig" {
            hostname_doc = Some(doc);
        }
        docs_by_kind.push(doc);
        extra.push((kind, name));
    }
    let Some((_, v1alpha1)) = v1 else {
        return Err(InputError::NoV1alpha1 {
            path: path.to_path_buf(),
        });
    };
    Ok(Layout {
        v1alpha1,
        hostname_doc,
        extra,
        docs: docs_by_kind,
    })
}

/// Talos: empty or missing type parses as worker; `join` is the deprecated
/// spelling of worker.
fn machine_type(
    path: &Path,
    v1: &Value,
    warnings: &mut Vec<String>,
) -> Result<MachineType, InputError> {
    let raw = opt_string(path, v1, &["machine", "type"])?;
    Ok(match raw.as_deref() {
        None | Some("worker") => MachineType::Worker,
        Some("controlplane") => MachineType::ControlPlane,
        Some("init") => {
            warnings.push(
                "machine.type is the legacy `init`: Talos bootstraps etcd on this node by itself"
                    .to_string(),
            );
            MachineType::Init
        }
        Some("join") => {
            warnings.push("machine.type `join` is deprecated; treated as worker".to_string());
            MachineType::Worker
        }
        Some(other) => {
            return Err(InputError::InvalidField {
                path: path.to_path_buf(),
                field: "machine.type".into(),
                reason: format!(
                    "unknown machine type {other:?}; expected controlplane, worker, init or join"
                ),
            });
        }
    })
}

fn disk_selector(path: &Path, value: &Value) -> Result<DiskSelector, InputError> {
    let field = "machine.install.diskSelector";
    let Value::Mapping(map) = value else {
        return Err(InputError::InvalidField {
            path: path.to_path_buf(),
            field: field.into(),
            reason: format!("expected a mapping, found {}", kind_of(value)),
        });
    };
    // Sizes such as `size: 500000000` arrive as numbers; Talos reads them as text.
    let mut normalised = yaml_serde::Mapping::new();
    for (k, v) in map {
        let v = match v {
            Value::Number(n) => Value::String(n.to_string()),
            other => other.clone(),
        };
        normalised.insert(k.clone(), v);
    }
    let selector: DiskSelector =
        yaml_serde::from_value(Value::Mapping(normalised)).map_err(|e| {
            InputError::InvalidField {
                path: path.to_path_buf(),
                field: field.into(),
                reason: e.to_string(),
            }
        })?;
    // The node would refuse the config for a size it cannot read (after
    // the apply was sent): refuse it here, with the same rules.
    if let Some(size) = &selector.size
        && let Err(e) = crate::disksel::parse_size_expr(size)
    {
        return Err(InputError::InvalidField {
            path: path.to_path_buf(),
            field: format!("{field}.size"),
            reason: e.to_string(),
        });
    }
    Ok(selector)
}

fn decode_ca_cert(path: &Path, b64: &str) -> Result<Vec<u8>, InputError> {
    let bad = |reason: String| InputError::InvalidField {
        path: path.to_path_buf(),
        field: "machine.ca.crt".into(),
        reason,
    };
    let compact: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
    let pem = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| bad(format!("not valid base64 ({e})")))?;
    let (_, parsed) = x509_parser::pem::parse_x509_pem(&pem)
        .map_err(|_| bad("decodes to something that is not a PEM certificate".into()))?;
    if parsed.label != "CERTIFICATE" {
        return Err(bad(format!(
            "holds a PEM {:?} block, expected CERTIFICATE",
            parsed.label
        )));
    }
    parsed
        .parse_x509()
        .map_err(|e| bad(format!("certificate does not parse ({e})")))?;
    Ok(pem)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
pub(crate) mod tests {
    use super::*;

    /// A throwaway self-signed CA (PEM) for fixtures.
    pub(crate) fn test_ca_pem() -> String {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "talos");
        params.self_signed(&key).unwrap().pem()
    }

    pub(crate) fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    /// A realistic machine config: v1alpha1 plus extra documents.
    pub(crate) fn config_yaml(machine_type: &str, hostname: &str, with_key: bool) -> String {
        let ca = b64(&test_ca_pem());
        let key = if with_key {
            format!(
                "    key: {}\n",
                b64(
                    "-----BEGIN ED25519 PRIVATE KEY-----\nSECRETKEYMATERIAL\n-----END ED25519 PRIVATE KEY-----\n"
                )
            )
        } else {
            String::new()
        };
        format!(
            "version: v1alpha1\ndebug: false\npersist: true\nmachine:\n  type: {machine_type}\n  token: tok.SECRETTOKEN\n  ca:\n    crt: {ca}\n{key}  certSANs: [127.0.0.1]\n  network:\n    hostname: {hostname}\n  install:\n    diskSelector:\n      size: '>= 400GB'\n      model: Samsung*\n    image: factory.talos.dev/installer/abc:v1.12.0\n    wipe: false\ncluster:\n  id: abc\n  secret: SECRETCLUSTER\n  controlPlane:\n    endpoint: https://10.0.0.10:6443\n  clusterName: home\n  network:\n    dnsDomain: cluster.local\n---\napiVersion: v1alpha1\nkind: UserVolumeConfig\nname: data\nprovisioning:\n  diskSelector:\n    match: disk.transport == \"nvme\"\n---\napiVersion: v1alpha1\nkind: ExtensionServiceConfig\nname: tailscale\nenvironment:\n  - TS_AUTHKEY=SECRETAUTH\n"
        )
    }

    fn parse(text: &str) -> Result<MachineConfig, InputError> {
        MachineConfig::parse(
            Path::new("clusterconfig/home-cp1.yaml"),
            text.as_bytes().to_vec(),
        )
    }

    #[test]
    fn reads_the_facts_from_a_multi_document_config() {
        let text = config_yaml("controlplane", "cp1", true);
        let c = parse(&text).unwrap();
        assert_eq!(c.machine_type, MachineType::ControlPlane);
        assert_eq!(c.role(), Role::ControlPlane);
        assert_eq!(c.hostname.as_deref(), Some("cp1"));
        assert_eq!(c.install_disk, None);
        let sel = c.disk_selector.as_ref().unwrap();
        assert_eq!(sel.size.as_deref(), Some(">= 400GB"));
        assert_eq!(sel.model.as_deref(), Some("Samsung*"));
        assert_eq!(c.cluster_name.as_deref(), Some("home"));
        assert_eq!(c.endpoint.as_deref(), Some("https://10.0.0.10:6443"));
        let pem = String::from_utf8(c.os_ca_crt_pem.clone().unwrap()).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(c.has_ca_key);
        assert_eq!(
            c.extra_documents,
            vec![
                ("UserVolumeConfig".to_string(), Some("data".to_string())),
                (
                    "ExtensionServiceConfig".to_string(),
                    Some("tailscale".to_string())
                ),
            ]
        );
        assert_eq!(c.raw(), text.as_bytes());
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn debug_never_shows_secrets() {
        let c = parse(&config_yaml("controlplane", "cp1", true)).unwrap();
        let dbg = format!("{c:?}");
        for secret in ["SECRET", "tok.", "BEGIN", "ENC"] {
            assert!(!dbg.contains(secret), "{secret} in {dbg}");
        }
        assert!(dbg.contains("bytes redacted"));
    }

    #[test]
    fn worker_install_disk_and_hostname_config_document() {
        let ca = b64(&test_ca_pem());
        let text = format!(
            "---\napiVersion: v1alpha1\nkind: HostnameConfig\nauto: off\nhostname: w1.example.com\n---\nversion: v1alpha1\nmachine:\n  type: worker\n  ca:\n    crt: {ca}\n  install:\n    disk: /dev/sda\ncluster:\n  controlPlane:\n    endpoint: https://k8s.example.com:6443\n"
        );
        let c = parse(&text).unwrap();
        assert_eq!(c.machine_type, MachineType::Worker);
        assert_eq!(c.hostname.as_deref(), Some("w1.example.com"));
        assert_eq!(c.install_disk.as_deref(), Some("/dev/sda"));
        assert!(c.disk_selector.is_none());
        assert!(!c.has_ca_key);
        assert_eq!(c.extra_documents.len(), 1);
    }

    #[test]
    fn type_spellings() {
        let minimal = |t: &str| {
            format!(
                "machine:\n  {t}\n  install: {{disk: /dev/sda}}\ncluster:\n  controlPlane: {{endpoint: 'https://h:6443'}}\n"
            )
        };
        assert_eq!(
            parse(&minimal("token: x")).unwrap().machine_type,
            MachineType::Worker
        );
        assert_eq!(
            parse(&minimal("type: \"\"")).unwrap().machine_type,
            MachineType::Worker
        );
        let join = parse(&minimal("type: join")).unwrap();
        assert_eq!(join.machine_type, MachineType::Worker);
        assert!(join.warnings.iter().any(|w| w.contains("join")));
        let init = parse(&minimal("type: init\n  ca: {key: a2V5}")).unwrap();
        assert_eq!(init.machine_type, MachineType::Init);
        assert_eq!(init.role(), Role::ControlPlane);
        let err = parse(&minimal("type: master")).unwrap_err();
        assert!(err.to_string().contains("field `machine.type`"), "{err}");
    }

    #[test]
    fn an_unreadable_selector_size_is_refused_before_anything_is_sent() {
        for bad in ["lots", ">= ", "4 parsecs", "=> 4GB", "-1GB", "99999EB"] {
            let text = format!(
                "machine:\n  install:\n    diskSelector:\n      size: '{bad}'\n      type: nvme\ncluster:\n  controlPlane: {{endpoint: 'https://h:6443'}}\n"
            );
            let err = MachineConfig::parse(Path::new("/x/w1.yaml"), text.into_bytes()).unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.contains("machine.install.diskSelector.size") && msg.contains("/x/w1.yaml"),
                "{bad}: {msg}"
            );
        }
        for good in [">= 400GB", "500000000", "<2TB", "== 1TiB"] {
            let text = format!(
                "machine:\n  install:\n    diskSelector:\n      size: '{good}'\ncluster:\n  controlPlane: {{endpoint: 'https://h:6443'}}\n"
            );
            MachineConfig::parse(Path::new("/x/w1.yaml"), text.into_bytes())
                .unwrap_or_else(|e| panic!("{good}: {e}"));
        }
    }

    #[test]
    fn numeric_selector_size_is_read_as_text() {
        let text = "machine:\n  install:\n    diskSelector:\n      size: 500000000\n      type: nvme\ncluster:\n  controlPlane: {endpoint: 'https://h:6443'}\n";
        let c = parse(text).unwrap();
        let sel = c.disk_selector.unwrap();
        assert_eq!(sel.size.as_deref(), Some("500000000"));
        assert_eq!(sel.disk_type.as_deref(), Some("nvme"));
    }

    #[test]
    fn warns_on_missing_endpoint_and_install() {
        let c = parse("machine:\n  type: worker\n").unwrap();
        assert!(c.endpoint.is_none());
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains("cluster.controlPlane.endpoint"))
        );
        assert!(c.warnings.iter().any(|w| w.contains("machine.install")));
    }

    /// Each malformed input and the words its error must contain.
    #[test]
    fn malformed_configs_name_file_and_field() {
        let ca = b64(&test_ca_pem());
        let ep = "cluster:\n  controlPlane:\n    endpoint: https://10.0.0.10:6443\n";
        let cases: Vec<(String, &[&str])> = vec![
            ("".into(), &["home-cp1.yaml", "empty"]),
            ("# only a comment\n---\n".into(), &["home-cp1.yaml", "empty"]),
            ("machine:\n  type: worker\n   bad: indent\n".into(), &["home-cp1.yaml:3:", "malformed YAML"]),
            ("apiVersion: v1alpha1\nkind: HostnameConfig\nhostname: a\n".into(), &["home-cp1.yaml", "no v1alpha1 document"]),
            ("machine: {type: worker}\n---\ncluster: {clusterName: x}\n".to_string(), &["home-cp1.yaml", "documents 1 and 2", "v1alpha1"]),
            (format!("machine: {{type: worker}}\n{ep}---\nname: x\napiVersion: v1alpha1\n"), &["home-cp1.yaml", "document 2", "`kind`"]),
            (format!("machine: {{type: worker}}\n{ep}---\nkind: VolumeConfig\nname: EPHEMERAL\n"), &["home-cp1.yaml", "document 2", "`apiVersion`"]),
            (format!("machine: {{type: worker}}\n{ep}---\napiVersion: v1alpha1\nkind: UserVolumeConfig\nname: d\n---\napiVersion: v1alpha1\nkind: UserVolumeConfig\nname: d\n"), &["home-cp1.yaml", "UserVolumeConfig named d", "documents 2 and 3"]),
            (format!("machine:\n  type: worker\n  ca:\n    crt: {ca}\n    key: a2V5\n{ep}"), &["home-cp1.yaml", "machine.ca.key", "worker"]),
            (format!("machine:\n  type: controlplane\n  ca:\n    crt: {ca}\n{ep}"), &["home-cp1.yaml", "machine.ca.key", "missing"]),
            ("machine: {type: worker}\ncluster:\n  controlPlane:\n    endpoint: http://10.0.0.10:6443\n".into(), &["home-cp1.yaml", "cluster.controlPlane.endpoint", "https"]),
            ("machine: {type: worker}\ncluster:\n  controlPlane:\n    endpoint: 10.0.0.10\n".into(), &["home-cp1.yaml", "cluster.controlPlane.endpoint"]),
            (format!("machine:\n  type: worker\n  ca:\n    crt: '!!notbase64!!'\n{ep}"), &["home-cp1.yaml", "machine.ca.crt", "base64"]),
            (format!("machine:\n  type: worker\n  ca:\n    crt: {}\n{ep}", b64("hello")), &["home-cp1.yaml", "machine.ca.crt", "PEM"]),
            (format!("machine:\n  type: worker\n  install:\n    diskSelector:\n      sizee: 4GB\n{ep}"), &["home-cp1.yaml", "machine.install.diskSelector", "sizee"]),
            (format!("machine:\n  type: worker\n  install:\n    diskSelector: [a]\n{ep}"), &["home-cp1.yaml", "machine.install.diskSelector"]),
            (format!("machine:\n  type: [worker]\n{ep}"), &["home-cp1.yaml", "machine.type"]),
            ("- just\n- a list\n".into(), &["home-cp1.yaml", "document 1", "mapping"]),
            ("a: &x [1]\nb: *y\n".into(), &["home-cp1.yaml", "malformed YAML"]),
            (format!("machine:\n  type: worker\n  network: {{hostname: w1}}\n{ep}---\napiVersion: v1alpha1\nkind: HostnameConfig\nauto: off\nhostname: w1\n"), &["home-cp1.yaml", "machine.network.hostname", "HostnameConfig", "static hostname is already set in v1alpha1 config"]),
            (format!("machine:\n  type: worker\n  features: {{stableHostname: true}}\n{ep}---\napiVersion: v1alpha1\nkind: HostnameConfig\nauto: stable\n"), &["home-cp1.yaml", "machine.features.stableHostname", "stable hostname is already set in v1alpha1 config"]),
        ];
        for (text, needles) in cases {
            let err = parse(&text).expect_err(&text);
            let msg = err.to_string();
            for n in needles {
                assert!(msg.contains(n), "{n:?} not in {msg:?} (input {text:?})");
            }
            assert!(!msg.contains("SECRET"), "{msg}");
        }
    }

    #[test]
    fn non_utf8_is_rejected_with_path() {
        let err = MachineConfig::parse(Path::new("x.yaml"), b"machine:\n  type: \xfe\n".to_vec())
            .unwrap_err();
        assert!(matches!(err, InputError::NotUtf8 { line: 2, .. }), "{err}");
        assert!(err.to_string().contains("x.yaml"));
    }

    #[test]
    fn missing_file_reports_os_error_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nope.yaml");
        let err = MachineConfig::load(&p).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("nope.yaml"), "{msg}");
        assert!(matches!(err, InputError::Io { .. }));
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(256))]
        #[test]
        fn parse_never_panics_on_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = MachineConfig::parse(Path::new("fuzz.yaml"), bytes);
        }

        #[test]
        fn parse_never_panics_on_yamlish_text(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "machine:", "cluster:", "\n", "  ", "type: ", "controlplane", "worker", "---\n",
                    "kind: ", "apiVersion: v1alpha1", "name: a", "ca:", "crt: ", "key: x", "&a ", "*a",
                    "<<: ", "[", "]", "{", "}", "'", "\"", "diskSelector:", "size: 4GB", "install:",
                    "controlPlane:", "endpoint: ", "https://h:1", "- ", "#", ":", "hostname: h",
                ]),
                0..40,
            )
        ) {
            let text: String = parts.concat();
            let _ = MachineConfig::parse(Path::new("fuzz.yaml"), text.into_bytes());
        }
    }
}
