//! Writes a throwaway cluster in the talhelper layout, so the simulator and
//! talstrap read the very same files an operator would have after
//! `talhelper gensecret` + `talhelper genconfig`:
//!
//! ```text
//! dir/talconfig.yaml
//! dir/talsecret.yaml                      secrets bundle (0600)
//! dir/clusterconfig/<cluster>-<host>.yaml one machine config per node (0600)
//! dir/clusterconfig/talosconfig           admin client config (0600)
//! dir/clusterconfig/.gitignore
//! ```

use std::fmt;
use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;
use yaml_serde::{Mapping, Value};

use super::pki::{self, CertAndKey};
use crate::disksel::DiskSelector;

/// What to generate.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    pub cluster_name: String,
    /// e.g. `v1.12.11`.
    pub talos_version: String,
    /// e.g. `v1.34.1`.
    pub kubernetes_version: String,
    /// Address used in `endpoint: https://<ip>:6443`: a VIP-like address that
    /// nobody listens on and that must never be dialled.
    pub endpoint_ip: IpAddr,
    /// Discovery and whether the endpoint is the control planes' VIP.
    pub network: ClusterNetwork,
    /// Control planes should come first (talconfig order matters).
    pub nodes: Vec<NodeSpec>,
}

/// How nodes find each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterNetwork {
    /// `cluster.discovery.enabled`, as `talosctl gen config` writes it (on).
    pub discovery: bool,
    /// The endpoint address is a VIP (`machine.network.interfaces[].vip`) of
    /// every control plane: it answers only once a control plane holds it,
    /// after etcd is healthy.
    pub vip_endpoint: bool,
}

impl Default for ClusterNetwork {
    fn default() -> Self {
        Self {
            discovery: true,
            vip_endpoint: false,
        }
    }
}

/// One machine of the cluster.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub hostname: String,
    pub ip: IpAddr,
    pub control_plane: bool,
    pub install: InstallTarget,
}

/// `installDisk` or `installDiskSelector`; or, for a v1.14 cluster, the CEL
/// expression of its UnattendedInstallConfig as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallTarget {
    Disk(String),
    Selector(DiskSelector),
    /// `provisioning.diskSelector.match` (v1.14 only).
    Cel(String),
}

impl InstallTarget {
    /// The UnattendedInstallConfig selector a v1.14 `talosctl gen config`
    /// would write for this target: `disk.dev_path == "<disk>"` (Talos
    /// v1.14.0-rc.1 pkg/machinery/config/generate/init.go), a link through
    /// `disk.symlinks`, or the legacy selector's own expression.
    fn cel(&self) -> anyhow::Result<String> {
        Ok(match self {
            InstallTarget::Disk(d) if d.starts_with("/dev/disk/") => {
                format!("{d:?} in disk.symlinks")
            }
            InstallTarget::Disk(d) => format!("disk.dev_path == {d:?}"),
            InstallTarget::Selector(sel) => {
                super::installdisk::legacy_expression(&selector_value(sel)?)
                    .map_err(|e| anyhow::anyhow!("install selector: {e}"))?
            }
            InstallTarget::Cel(expr) => expr.clone(),
        })
    }
}

/// One generated machine config.
#[derive(Debug, Clone)]
pub struct GeneratedNode {
    pub hostname: String,
    pub ip: IpAddr,
    pub control_plane: bool,
    pub config_path: PathBuf,
}

/// Paths of everything [`generate_cluster`] wrote, plus the OS CA so the
/// simulator and tests can mint more client certificates.
#[derive(Clone)]
pub struct GeneratedCluster {
    pub dir: PathBuf,
    pub talconfig: PathBuf,
    pub config_dir: PathBuf,
    pub talosconfig: PathBuf,
    pub secrets: PathBuf,
    pub cluster_name: String,
    /// `https://<endpoint_ip>:6443`.
    pub endpoint: String,
    pub nodes: Vec<GeneratedNode>,
    os_ca: CertAndKey,
}

impl fmt::Debug for GeneratedCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedCluster")
            .field("dir", &self.dir)
            .field("cluster_name", &self.cluster_name)
            .field("endpoint", &self.endpoint)
            .field("nodes", &self.nodes)
            .field("os_ca", &"<redacted>")
            .finish()
    }
}

impl GeneratedCluster {
    /// The Talos OS CA of this cluster (certificate and key).
    pub fn os_ca(&self) -> &CertAndKey {
        &self.os_ca
    }

    /// Path of the machine config generated for `hostname`.
    pub fn node_config(&self, hostname: &str) -> Option<&Path> {
        self.nodes
            .iter()
            .find(|n| n.hostname == hostname)
            .map(|n| n.config_path.as_path())
    }
}

/// Random material of a secrets bundle. `Debug` is redacted.
#[derive(Clone)]
struct Secrets {
    cluster_id: String,
    cluster_secret: String,
    bootstrap_token: String,
    secretbox: String,
    trustd_token: String,
    os: CertAndKey,
    k8s: CertAndKey,
    k8s_aggregator: CertAndKey,
    etcd: CertAndKey,
    service_account_key: String,
}

fn random_bytes<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut buf = [0u8; N];
    SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| anyhow::anyhow!("system random generator failed"))?;
    Ok(buf)
}

/// A token shaped like Talos's `[a-z0-9]{6}.[a-z0-9]{16}`.
fn token() -> anyhow::Result<String> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let raw = random_bytes::<22>()?;
    let chars: String = raw
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    Ok(format!("{}.{}", &chars[..6], &chars[6..]))
}

impl Secrets {
    fn generate() -> anyhow::Result<Self> {
        Ok(Self {
            cluster_id: B64.encode(random_bytes::<32>()?),
            cluster_secret: B64.encode(random_bytes::<32>()?),
            bootstrap_token: token()?,
            secretbox: B64.encode(random_bytes::<32>()?),
            trustd_token: token()?,
            os: pki::new_talos_ca()?,
            k8s: pki::new_ecdsa_ca(None, "kubernetes")?,
            k8s_aggregator: pki::new_ecdsa_ca(None, "")?,
            etcd: pki::new_ecdsa_ca(None, "etcd")?,
            service_account_key: pki::new_ecdsa_key_pem()?,
        })
    }
}

fn b64(s: &str) -> String {
    B64.encode(s.as_bytes())
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    let mut m = Mapping::new();
    for (k, v) in entries {
        m.insert(Value::String(k.to_string()), v);
    }
    Value::Mapping(m)
}

fn s(v: impl Into<String>) -> Value {
    Value::String(v.into())
}

fn pair(ck: &CertAndKey, with_key: bool) -> Value {
    let mut e = vec![("crt", s(b64(&ck.cert_pem)))];
    if with_key {
        e.push(("key", s(b64(&ck.key_pem))));
    }
    map(e)
}

fn selector_value(sel: &DiskSelector) -> anyhow::Result<Value> {
    Ok(yaml_serde::to_value(sel)?)
}

/// Whether the node's hostname goes in a `HostnameConfig` document: talhelper
/// (pkg/talos/nodeconfig.go, `MultidocNetworkConfigSupported`) and `talosctl
/// gen config` (Talos v1.12.11 pkg/machinery/config/generate/network.go) do
/// so for Talos 1.12+, and then leave `machine.network.hostname` unset:
/// Talos refuses the two together (v1.12.11 and v1.13.9
/// pkg/machinery/config/types/network/hostname.go `V1Alpha1ConflictValidate`).
fn hostname_document(spec: &ClusterSpec) -> bool {
    super::version::at_least(&spec.talos_version, 1, 12)
}

/// `machine.network`: the hostname (before 1.12 only; later it lives in
/// `HostnameConfig`), and on control planes the endpoint's VIP.
fn network_value(spec: &ClusterSpec, node: &NodeSpec) -> Value {
    let mut entries = Vec::new();
    if !hostname_document(spec) {
        entries.push(("hostname", s(node.hostname.clone())));
    }
    if node.control_plane && spec.network.vip_endpoint {
        entries.push((
            "interfaces",
            Value::Sequence(vec![map(vec![
                ("interface", s("eth0")),
                ("vip", map(vec![("ip", s(spec.endpoint_ip.to_string()))])),
            ])]),
        ));
    }
    map(entries)
}

/// The v1alpha1 document for one node, as talhelper would render it.
fn v1alpha1_doc(
    spec: &ClusterSpec,
    node: &NodeSpec,
    sec: &Secrets,
    endpoint: &str,
) -> anyhow::Result<Value> {
    let cp = node.control_plane;
    let mut install = vec![(
        "image",
        s(format!(
            "ghcr.io/siderolabs/installer:{}",
            spec.talos_version
        )),
    )];
    match &node.install {
        InstallTarget::Disk(d) => install.push(("disk", s(d.clone()))),
        InstallTarget::Selector(sel) => install.push(("diskSelector", selector_value(sel)?)),
        InstallTarget::Cel(_) => anyhow::bail!(
            "{}: a CEL install selector needs a Talos v1.14 cluster",
            node.hostname
        ),
    }
    install.push(("wipe", Value::Bool(false)));
    let k8s_version = spec.kubernetes_version.trim_start_matches('v');
    let machine = map(vec![
        ("type", s(if cp { "controlplane" } else { "worker" })),
        ("token", s(sec.trustd_token.clone())),
        ("ca", pair(&sec.os, cp)),
        ("certSANs", Value::Sequence(vec![s(node.ip.to_string())])),
        (
            "kubelet",
            map(vec![(
                "image",
                s(format!("ghcr.io/siderolabs/kubelet:v{k8s_version}")),
            )]),
        ),
        ("network", network_value(spec, node)),
        ("install", map(install)),
        (
            "features",
            map(vec![
                ("rbac", Value::Bool(true)),
                ("apidCheckExtKeyUsage", Value::Bool(true)),
            ]),
        ),
    ]);
    let mut cluster = vec![
        (
            "discovery",
            map(vec![("enabled", Value::Bool(spec.network.discovery))]),
        ),
        ("id", s(sec.cluster_id.clone())),
        ("secret", s(sec.cluster_secret.clone())),
        ("controlPlane", map(vec![("endpoint", s(endpoint))])),
        ("clusterName", s(spec.cluster_name.clone())),
        (
            "network",
            map(vec![
                ("dnsDomain", s("cluster.local")),
                // Kubernetes defaults written as config text; nothing dials them.
                ("podSubnets", Value::Sequence(vec![s("10.244.0.0/16")])),
                ("serviceSubnets", Value::Sequence(vec![s("10.96.0.0/12")])),
            ]),
        ),
        ("token", s(sec.bootstrap_token.clone())),
        ("ca", pair(&sec.k8s, cp)),
    ];
    if cp {
        cluster.push(("secretboxEncryptionSecret", s(sec.secretbox.clone())));
        cluster.push(("aggregatorCA", pair(&sec.k8s_aggregator, true)));
        cluster.push((
            "serviceAccount",
            map(vec![("key", s(b64(&sec.service_account_key)))]),
        ));
        cluster.push(("etcd", map(vec![("ca", pair(&sec.etcd, true))])));
    }
    Ok(map(vec![
        ("version", s("v1alpha1")),
        ("debug", Value::Bool(false)),
        ("persist", Value::Bool(true)),
        ("machine", machine),
        ("cluster", map(cluster)),
    ]))
}

/// The v1.14 shape (Talos v1.14.0-rc.1
/// pkg/machinery/config/types/v1alpha1/testdata/stability/v1.14/base-controlplane.yaml):
/// the install moves to UnattendedInstallConfig, the cluster name and
/// endpoint to KubeClusterConfig, the network to KubeNetworkConfig with a
/// KubeFlannelCNIConfig; the deprecated v1alpha1 fields they replace are
/// left out (Talos refuses a field together with its replacement).
fn v1_14_documents(
    spec: &ClusterSpec,
    node: &NodeSpec,
    sec: &Secrets,
    endpoint: &str,
) -> anyhow::Result<Vec<Value>> {
    let mut v1 = v1alpha1_doc(
        spec,
        &NodeSpec {
            install: InstallTarget::Disk(String::new()),
            ..node.clone()
        },
        sec,
        endpoint,
    )?;
    if let Some(m) = v1.get_mut("machine").and_then(Value::as_mapping_mut) {
        m.remove("install");
    }
    if let Some(c) = v1.get_mut("cluster").and_then(Value::as_mapping_mut) {
        for key in ["clusterName", "controlPlane", "network"] {
            c.remove(key);
        }
    }
    let doc = |kind: &str, rest: Vec<(&str, Value)>| {
        let mut e = vec![("apiVersion", s("v1alpha1")), ("kind", s(kind))];
        e.extend(rest);
        map(e)
    };
    Ok(vec![
        v1,
        doc(
            "UnattendedInstallConfig",
            vec![
                (
                    "installer",
                    map(vec![(
                        "image",
                        s(format!(
                            "factory.talos.dev/metal-installer/376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba:{}",
                            spec.talos_version
                        )),
                    )]),
                ),
                (
                    "provisioning",
                    map(vec![
                        ("diskSelector", map(vec![("match", s(node.install.cel()?))])),
                        ("wipe", Value::Bool(false)),
                    ]),
                ),
            ],
        ),
        hostname_config(node),
        doc(
            "KubeClusterConfig",
            vec![
                ("clusterName", s(spec.cluster_name.clone())),
                ("endpoint", s(endpoint)),
            ],
        ),
        doc(
            "KubeNetworkConfig",
            vec![
                ("dnsDomain", s("cluster.local")),
                ("podSubnets", Value::Sequence(vec![s("10.244.0.0/16")])),
                ("serviceSubnets", Value::Sequence(vec![s("10.96.0.0/12")])),
            ],
        ),
        doc("KubeFlannelCNIConfig", vec![]),
    ])
}

/// Renders the full multi-document machine config of one node.
fn machine_config(
    spec: &ClusterSpec,
    node: &NodeSpec,
    sec: &Secrets,
    endpoint: &str,
) -> anyhow::Result<String> {
    if super::version::unattended_install(&spec.talos_version) {
        let docs = v1_14_documents(spec, node, sec, endpoint)?;
        let texts = docs
            .iter()
            .map(yaml_serde::to_string)
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(texts.join("---\n"));
    }
    let main = yaml_serde::to_string(&v1alpha1_doc(spec, node, sec, endpoint)?)?;
    // talhelper emits a HostnameConfig document only for Talos 1.12+, which
    // is the first release that knows the kind (older ones reject it).
    if !hostname_document(spec) {
        return Ok(main);
    }
    let hostname = yaml_serde::to_string(&hostname_config(node))?;
    Ok(format!("{main}---\n{hostname}"))
}

/// talhelper's `HostnameConfig` for a node with a hostname: the name with
/// `auto: off` (talhelper pkg/talos/networkconfig.go).
fn hostname_config(node: &NodeSpec) -> Value {
    map(vec![
        ("apiVersion", s("v1alpha1")),
        ("kind", s("HostnameConfig")),
        ("auto", s("off")),
        ("hostname", s(node.hostname.clone())),
    ])
}

/// One talosconfig context.
#[derive(Serialize)]
struct TalosContext {
    endpoints: Vec<String>,
    nodes: Vec<String>,
    ca: String,
    crt: String,
    key: String,
}

#[derive(Serialize)]
struct Talosconfig {
    context: String,
    contexts: std::collections::BTreeMap<String, TalosContext>,
}

/// Renders a talosconfig for `client` signed by `ca`.
fn talosconfig_text(
    context: &str,
    endpoints: &[String],
    nodes: &[String],
    ca_pem: &str,
    client: &CertAndKey,
) -> anyhow::Result<String> {
    let cfg = Talosconfig {
        context: context.to_string(),
        contexts: [(
            context.to_string(),
            TalosContext {
                endpoints: endpoints.to_vec(),
                nodes: nodes.to_vec(),
                ca: b64(ca_pem),
                crt: b64(&client.cert_pem),
                key: b64(&client.key_pem),
            },
        )]
        .into_iter()
        .collect(),
    };
    Ok(yaml_serde::to_string(&cfg)?)
}

/// Writes `contents` to `path` with mode 0600 (credentials).
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    // An existing file keeps its old mode on open: force 0600.
    f.set_permissions(fs::Permissions::from_mode(0o600))?;
    f.write_all(contents)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn make_private_dir(path: &Path) -> anyhow::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))?;
    Ok(())
}

fn talconfig_text(spec: &ClusterSpec, endpoint: &str) -> anyhow::Result<String> {
    let mut nodes = Vec::new();
    for n in &spec.nodes {
        let mut e = vec![
            ("hostname", s(n.hostname.clone())),
            ("ipAddress", s(n.ip.to_string())),
            ("controlPlane", Value::Bool(n.control_plane)),
        ];
        match &n.install {
            InstallTarget::Disk(d) => e.push(("installDisk", s(d.clone()))),
            InstallTarget::Selector(sel) => e.push(("installDiskSelector", selector_value(sel)?)),
            // talhelper has no UnattendedInstallConfig field: the selector
            // lives only in the generated config.
            InstallTarget::Cel(_) => {}
        }
        nodes.push(map(e));
    }
    let doc = map(vec![
        ("clusterName", s(spec.cluster_name.clone())),
        ("endpoint", s(endpoint)),
        ("talosVersion", s(spec.talos_version.clone())),
        ("kubernetesVersion", s(spec.kubernetes_version.clone())),
        ("nodes", Value::Sequence(nodes)),
    ]);
    Ok(yaml_serde::to_string(&doc)?)
}

fn secrets_text(sec: &Secrets) -> anyhow::Result<String> {
    let doc = map(vec![
        (
            "cluster",
            map(vec![
                ("id", s(sec.cluster_id.clone())),
                ("secret", s(sec.cluster_secret.clone())),
            ]),
        ),
        (
            "secrets",
            map(vec![
                ("bootstraptoken", s(sec.bootstrap_token.clone())),
                ("secretboxencryptionsecret", s(sec.secretbox.clone())),
            ]),
        ),
        (
            "trustdinfo",
            map(vec![("token", s(sec.trustd_token.clone()))]),
        ),
        (
            "certs",
            map(vec![
                ("etcd", pair(&sec.etcd, true)),
                ("k8s", pair(&sec.k8s, true)),
                ("k8saggregator", pair(&sec.k8s_aggregator, true)),
                (
                    "k8sserviceaccount",
                    map(vec![("key", s(b64(&sec.service_account_key)))]),
                ),
                ("os", pair(&sec.os, true)),
            ]),
        ),
    ]);
    Ok(yaml_serde::to_string(&doc)?)
}

/// Generates a fresh cluster (new PKI) into `dir`; see the module docs.
pub fn generate_cluster(spec: &ClusterSpec, dir: &Path) -> anyhow::Result<GeneratedCluster> {
    anyhow::ensure!(!spec.nodes.is_empty(), "cluster spec has no nodes");
    anyhow::ensure!(
        !spec.cluster_name.is_empty(),
        "cluster spec has an empty cluster name"
    );
    make_private_dir(dir)?;
    let config_dir = dir.join("clusterconfig");
    make_private_dir(&config_dir)?;

    let sec = Secrets::generate()?;
    let endpoint = format!("https://{}:6443", fmt_host(spec.endpoint_ip));

    let talconfig = dir.join("talconfig.yaml");
    fs::write(&talconfig, talconfig_text(spec, &endpoint)?)
        .with_context(|| format!("cannot write {}", talconfig.display()))?;
    let secrets = dir.join("talsecret.yaml");
    write_private(&secrets, secrets_text(&sec)?.as_bytes())?;

    let mut nodes = Vec::new();
    let mut ignore = Vec::new();
    for n in &spec.nodes {
        let file = format!("{}-{}.yaml", spec.cluster_name, n.hostname);
        let path = config_dir.join(&file);
        write_private(&path, machine_config(spec, n, &sec, &endpoint)?.as_bytes())?;
        ignore.push(file);
        nodes.push(GeneratedNode {
            hostname: n.hostname.clone(),
            ip: n.ip,
            control_plane: n.control_plane,
            config_path: path,
        });
    }

    let endpoints: Vec<String> = spec
        .nodes
        .iter()
        .filter(|n| n.control_plane)
        .map(|n| n.ip.to_string())
        .collect();
    let all: Vec<String> = spec.nodes.iter().map(|n| n.ip.to_string()).collect();
    let admin = pki::issue_client_cert(&sec.os, &["os:admin"])?;
    let talosconfig = config_dir.join("talosconfig");
    write_private(
        &talosconfig,
        talosconfig_text(
            &spec.cluster_name,
            &endpoints,
            &all,
            &sec.os.cert_pem,
            &admin,
        )?
        .as_bytes(),
    )?;
    ignore.push("talosconfig".to_string());
    fs::write(config_dir.join(".gitignore"), ignore.join("\n") + "\n")?;

    Ok(GeneratedCluster {
        dir: dir.to_path_buf(),
        talconfig,
        config_dir,
        talosconfig,
        secrets,
        cluster_name: spec.cluster_name.clone(),
        endpoint,
        nodes,
        os_ca: sec.os,
    })
}

fn fmt_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// Writes a talosconfig for `cluster` (endpoints = control planes, nodes =
/// all) trusting `ca_pem`, with `client` as its credentials.
#[cfg(feature = "testing")]
fn write_talosconfig(
    cluster: &GeneratedCluster,
    ca_pem: &str,
    client: &CertAndKey,
    path: &Path,
) -> anyhow::Result<()> {
    let endpoints: Vec<String> = cluster
        .nodes
        .iter()
        .filter(|n| n.control_plane)
        .map(|n| n.ip.to_string())
        .collect();
    let all: Vec<String> = cluster.nodes.iter().map(|n| n.ip.to_string()).collect();
    let text = talosconfig_text(&cluster.cluster_name, &endpoints, &all, ca_pem, client)?;
    write_private(path, text.as_bytes())
}

#[cfg(feature = "testing")]
/// Writes a talosconfig for this cluster whose client certificate carries
/// `roles` (e.g. `["os:reader"]`), signed by the cluster's OS CA.
pub fn role_talosconfig(
    cluster: &GeneratedCluster,
    roles: &[&str],
    path: &Path,
) -> anyhow::Result<()> {
    let client = pki::issue_client_cert(&cluster.os_ca, roles)?;
    write_talosconfig(cluster, &cluster.os_ca.cert_pem, &client, path)
}

#[cfg(feature = "testing")]
/// A talosconfig with the `os:reader` role for this cluster.
pub fn reader_talosconfig(cluster: &GeneratedCluster, path: &Path) -> anyhow::Result<()> {
    role_talosconfig(cluster, &["os:reader"], path)
}

#[cfg(feature = "testing")]
/// A talosconfig from another CA entirely (an admin of some other cluster),
/// with the same endpoints and nodes, for trust tests.
pub fn foreign_talosconfig(cluster: &GeneratedCluster, path: &Path) -> anyhow::Result<()> {
    let ca = pki::new_talos_ca()?;
    let client = pki::issue_client_cert(&ca, &["os:admin"])?;
    write_talosconfig(cluster, &ca.cert_pem, &client, path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn spec() -> ClusterSpec {
        ClusterSpec {
            cluster_name: "sim".into(),
            talos_version: "v1.12.11".into(),
            kubernetes_version: "v1.34.1".into(),
            endpoint_ip: "127.3.4.254".parse().unwrap(),
            network: ClusterNetwork::default(),
            nodes: vec![
                NodeSpec {
                    hostname: "cp1".into(),
                    ip: "127.3.4.11".parse().unwrap(),
                    control_plane: true,
                    install: InstallTarget::Disk("/dev/nvme0n1".into()),
                },
                NodeSpec {
                    hostname: "w1".into(),
                    ip: "127.3.4.12".parse().unwrap(),
                    control_plane: false,
                    install: InstallTarget::Selector(DiskSelector {
                        disk_type: Some("nvme".into()),
                        ..DiskSelector::default()
                    }),
                },
            ],
        }
    }

    fn docs(path: &Path) -> Vec<Value> {
        let text = fs::read_to_string(path).unwrap();
        yaml_serde::Deserializer::from_str(&text)
            .map(|d| <Value as serde::Deserialize>::deserialize(d).unwrap())
            .collect()
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn writes_the_talhelper_layout() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cluster");
        let g = generate_cluster(&spec(), &dir).unwrap();
        assert_eq!(g.endpoint, "https://127.3.4.254:6443");
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&g.config_dir), 0o700);
        for p in [
            &g.talosconfig,
            &g.secrets,
            &g.nodes[0].config_path,
            &g.nodes[1].config_path,
        ] {
            assert_eq!(mode(p), 0o600, "{}", p.display());
        }
        assert_eq!(
            g.nodes[0].config_path,
            dir.join("clusterconfig/sim-cp1.yaml")
        );

        let tc: Value = yaml_serde::from_str(&fs::read_to_string(&g.talconfig).unwrap()).unwrap();
        assert_eq!(tc["clusterName"], s("sim"));
        assert_eq!(tc["nodes"][0]["installDisk"], s("/dev/nvme0n1"));
        assert_eq!(tc["nodes"][1]["installDiskSelector"]["type"], s("nvme"));
        assert_eq!(tc["nodes"][1]["controlPlane"], Value::Bool(false));

        let cp = docs(&g.nodes[0].config_path);
        assert_eq!(cp.len(), 2);
        assert_eq!(cp[0]["machine"]["type"], s("controlplane"));
        assert!(cp[0]["machine"]["ca"]["key"].is_string());
        assert_eq!(
            cp[0]["cluster"]["controlPlane"]["endpoint"],
            s("https://127.3.4.254:6443")
        );
        assert_eq!(cp[1]["kind"], s("HostnameConfig"));
        assert_eq!(cp[1]["auto"], s("off"));
        assert_eq!(cp[1]["hostname"], s("cp1"));
        // Talos refuses machine.network.hostname next to a HostnameConfig.
        assert!(cp[0]["machine"]["network"].get("hostname").is_none());
        let w = docs(&g.nodes[1].config_path);
        assert_eq!(w[0]["machine"]["type"], s("worker"));
        assert!(w[0]["machine"]["ca"].get("key").is_none());
        assert!(w[0]["cluster"]["ca"].get("key").is_none());
        assert_eq!(
            w[0]["machine"]["install"]["diskSelector"]["type"],
            s("nvme")
        );

        let ignore = fs::read_to_string(g.config_dir.join(".gitignore")).unwrap();
        assert_eq!(ignore, "sim-cp1.yaml\nsim-w1.yaml\ntalosconfig\n");
    }

    #[test]
    fn every_release_gets_its_hostname_from_the_hostname_document_alone() {
        for version in ["v1.12.11", "v1.13.9", "v1.14.0-rc.1"] {
            let tmp = tempfile::tempdir().unwrap();
            let mut sp = spec();
            sp.talos_version = version.into();
            if version.starts_with("v1.14") {
                sp.nodes[1].install = InstallTarget::Disk("/dev/sda".into());
            }
            let g = generate_cluster(&sp, tmp.path()).unwrap();
            for n in &g.nodes {
                let d = docs(&n.config_path);
                assert!(
                    d[0]["machine"]["network"].get("hostname").is_none(),
                    "{version} {}",
                    n.hostname
                );
                let hc: Vec<&Value> = d
                    .iter()
                    .filter(|x| x["kind"] == s("HostnameConfig"))
                    .collect();
                assert_eq!(hc.len(), 1, "{version}");
                assert_eq!(hc[0]["hostname"], s(n.hostname.clone()), "{version}");
                let raw = fs::read(&n.config_path).unwrap();
                let cfg = super::super::applied_config::parse(&raw, version).unwrap();
                assert_eq!(cfg.hostname.as_deref(), Some(n.hostname.as_str()));
                super::super::applied_config::validate(&cfg, true, version)
                    .unwrap_or_else(|e| panic!("{version}: {e:?}"));
            }
        }
    }

    #[test]
    fn talosconfig_has_admin_cert_with_talos_key_label() {
        let tmp = tempfile::tempdir().unwrap();
        let g = generate_cluster(&spec(), tmp.path()).unwrap();
        let tc: Value = yaml_serde::from_str(&fs::read_to_string(&g.talosconfig).unwrap()).unwrap();
        assert_eq!(tc["context"], s("sim"));
        let ctx = &tc["contexts"]["sim"];
        assert_eq!(ctx["endpoints"], Value::Sequence(vec![s("127.3.4.11")]));
        assert_eq!(
            ctx["nodes"],
            Value::Sequence(vec![s("127.3.4.11"), s("127.3.4.12")])
        );
        let decode =
            |v: &Value| String::from_utf8(B64.decode(v.as_str().unwrap()).unwrap()).unwrap();
        assert!(decode(&ctx["key"]).starts_with("-----BEGIN ED25519 PRIVATE KEY-----"));
        let crt = pki::first_cert_der(&decode(&ctx["crt"]), "crt").unwrap();
        assert_eq!(pki::subject_organizations(&crt), ["os:admin"]);
        assert!(pki::eku_is_exactly_client_auth(&crt));
        assert_eq!(decode(&ctx["ca"]), g.os_ca().cert_pem);

        let reader = tmp.path().join("reader");
        reader_talosconfig(&g, &reader).unwrap();
        let r: Value = yaml_serde::from_str(&fs::read_to_string(&reader).unwrap()).unwrap();
        let crt = pki::first_cert_der(&decode(&r["contexts"]["sim"]["crt"]), "crt").unwrap();
        assert_eq!(pki::subject_organizations(&crt), ["os:reader"]);

        let foreign = tmp.path().join("foreign");
        foreign_talosconfig(&g, &foreign).unwrap();
        let f: Value = yaml_serde::from_str(&fs::read_to_string(&foreign).unwrap()).unwrap();
        assert_ne!(decode(&f["contexts"]["sim"]["ca"]), g.os_ca().cert_pem);
        assert_eq!(mode(&foreign), 0o600);
    }

    #[test]
    fn secrets_bundle_has_the_talos_shape() {
        let tmp = tempfile::tempdir().unwrap();
        let g = generate_cluster(&spec(), tmp.path()).unwrap();
        let b: Value = yaml_serde::from_str(&fs::read_to_string(&g.secrets).unwrap()).unwrap();
        for key in ["etcd", "k8s", "k8saggregator", "os"] {
            assert!(
                b["certs"][key]["crt"].is_string() && b["certs"][key]["key"].is_string(),
                "{key}"
            );
        }
        assert!(b["certs"]["k8sserviceaccount"]["key"].is_string());
        let tok = b["trustdinfo"]["token"].as_str().unwrap();
        assert_eq!(tok.len(), 23);
        assert_eq!(tok.as_bytes()[6], b'.');
        assert!(b["cluster"]["id"].is_string() && b["secrets"]["bootstraptoken"].is_string());
        assert!(!format!("{g:?}").contains("PRIVATE"));
    }
}
