//! The inventory of topf repositories: `topf.yaml` for the nodes and the
//! cluster endpoint, and the per-node machine configs `topf render -o DIR`
//! writes (`DIR/<host>.yaml`).
//!
//! talstrap reads only what it needs from topf.yaml: `clusterName`,
//! `clusterEndpoint` and, per node, `host`, `ip` and `role`
//! (`control-plane` or `worker`). Patches, secrets and the other fields are
//! topf's business: the rendered configs already carry their result. A node
//! without `ip` is refused (topf would resolve `host` through DNS; talstrap
//! dials node addresses only), unless `host` is itself an address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use yaml_serde::Value;

use super::error::InputError;
use super::machine_config::MachineConfig;
use super::validate::check_endpoint;
use super::yaml::{kind_of, parse_single, scalar_string, to_utf8};
use super::{Inventory, InventorySource, NodeEntry, Role};

/// Where `topf render` writes by default, next to topf.yaml.
pub(crate) const DEFAULT_RENDER_DIR: &str = "output";

fn invalid(path: &Path, field: String, reason: impl Into<String>) -> InputError {
    InputError::InvalidField {
        path: path.to_path_buf(),
        field,
        reason: reason.into(),
    }
}

fn string_field(
    path: &Path,
    v: &Value,
    key: &str,
    field: &str,
) -> Result<Option<String>, InputError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => match scalar_string(x) {
            Ok(Some(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
            Ok(_) => Ok(None),
            Err(kind) => Err(invalid(
                path,
                field.to_string(),
                format!("expected a string, found {kind}"),
            )),
        },
    }
}

/// One `nodes[]` entry as talstrap needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopfNode {
    pub(crate) host: String,
    pub(crate) ip: IpAddr,
    pub(crate) role: Role,
}

/// What talstrap reads from topf.yaml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopfFile {
    pub(crate) cluster_name: String,
    pub(crate) endpoint: String,
    pub(crate) nodes: Vec<TopfNode>,
}

/// Parses topf.yaml text (`path` is for messages).
pub(crate) fn parse(path: &Path, text: &str) -> Result<TopfFile, InputError> {
    let root = parse_single(path, text)?;
    if !root.is_mapping() {
        return Err(invalid(
            path,
            "(top level)".into(),
            format!("expected a mapping, found {}", kind_of(&root)),
        ));
    }
    let required = |key: &str| -> Result<String, InputError> {
        string_field(path, &root, key, key)?.ok_or_else(|| InputError::MissingField {
            path: path.to_path_buf(),
            field: key.to_string(),
        })
    };
    let cluster_name = required("clusterName")?;
    let endpoint = required("clusterEndpoint")?;
    check_endpoint(&endpoint).map_err(|r| invalid(path, "clusterEndpoint".into(), r))?;
    let list = node_list(path, &root)?;
    let mut nodes = Vec::with_capacity(list.len());
    let mut seen_ip: HashMap<IpAddr, String> = HashMap::new();
    let mut seen_host: HashMap<String, ()> = HashMap::new();
    for (i, n) in list.iter().enumerate() {
        let node = parse_node(path, i, n)?;
        let at = |f: &str| format!("nodes[{i}].{f}");
        if let Some(first) = seen_ip.insert(node.ip, node.host.clone()) {
            return Err(invalid(
                path,
                at("ip"),
                format!("{} is also the address of {first}", node.ip),
            ));
        }
        if seen_host
            .insert(node.host.to_ascii_lowercase(), ())
            .is_some()
        {
            return Err(invalid(
                path,
                at("host"),
                format!("{} is listed twice", node.host),
            ));
        }
        nodes.push(node);
    }
    Ok(TopfFile {
        cluster_name,
        endpoint,
        nodes,
    })
}

/// The `nodes` list: present, a list, not empty.
fn node_list<'a>(path: &Path, root: &'a Value) -> Result<&'a Vec<Value>, InputError> {
    match root.get("nodes") {
        Some(Value::Sequence(s)) if !s.is_empty() => Ok(s),
        Some(Value::Sequence(_)) | None | Some(Value::Null) => Err(invalid(
            path,
            "nodes".into(),
            "no nodes: topf.yaml must list at least one",
        )),
        Some(other) => Err(invalid(
            path,
            "nodes".into(),
            format!("expected a list, found {}", kind_of(other)),
        )),
    }
}

/// One `nodes[i]` entry on its own (duplicates across entries are the
/// caller's check).
fn parse_node(path: &Path, i: usize, n: &Value) -> Result<TopfNode, InputError> {
    let at = |f: &str| format!("nodes[{i}].{f}");
    if !n.is_mapping() {
        return Err(invalid(
            path,
            format!("nodes[{i}]"),
            format!("expected a mapping, found {}", kind_of(n)),
        ));
    }
    let host =
        string_field(path, n, "host", &at("host"))?.ok_or_else(|| InputError::MissingField {
            path: path.to_path_buf(),
            field: at("host"),
        })?;
    let role = match string_field(path, n, "role", &at("role"))?.as_deref() {
        Some("control-plane" | "controlplane") => Role::ControlPlane,
        Some("worker") => Role::Worker,
        Some(other) => {
            return Err(invalid(
                path,
                at("role"),
                format!("{other:?}: expected control-plane or worker"),
            ));
        }
        None => {
            return Err(InputError::MissingField {
                path: path.to_path_buf(),
                field: at("role"),
            });
        }
    };
    let ip = match string_field(path, n, "ip", &at("ip"))? {
        Some(ip) => ip
            .parse::<IpAddr>()
            .map_err(|_| invalid(path, at("ip"), format!("{ip:?} is not an IP address")))?,
        None => host.parse::<IpAddr>().map_err(|_| {
            invalid(
                path,
                at("ip"),
                format!("node {host} has no ip: talstrap dials node addresses, never DNS names; add `ip:`"),
            )
        })?,
    };
    if ip.is_unspecified() || ip.is_multicast() {
        return Err(invalid(
            path,
            at("ip"),
            format!("{ip} is not a node address"),
        ));
    }
    Ok(TopfNode { host, ip, role })
}

fn topf_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// The rendered-config directory: `--config-dir`, else `output/` next to
/// topf.yaml (topf render's default).
pub(crate) fn render_dir(path: &Path, config_dir: Option<&Path>) -> PathBuf {
    config_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| topf_dir(path).join(DEFAULT_RENDER_DIR))
}

/// Reads topf.yaml and every node's rendered config.
pub(crate) fn load_topf(path: &Path, config_dir: Option<&Path>) -> Result<Inventory, InputError> {
    let bytes = super::read::read_input_file(path).map_err(|source| InputError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let text = to_utf8(path, &bytes)?;
    let topf = parse(path, text.trim_start_matches('\u{feff}'))?;
    let dir = render_dir(path, config_dir);
    let mut nodes = Vec::with_capacity(topf.nodes.len());
    for n in &topf.nodes {
        let config_path = dir.join(format!("{}.yaml", n.host));
        let bytes = match super::read::read_input_file(&config_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(InputError::TopfConfigMissing {
                    node: n.host.clone(),
                    path: config_path,
                });
            }
            Err(source) => {
                return Err(InputError::for_node(
                    &n.host,
                    InputError::Io {
                        path: config_path,
                        source,
                    },
                ));
            }
        };
        let mut config = MachineConfig::parse(&config_path, bytes)
            .map_err(|e| InputError::for_node(&n.host, e))?;
        if config.role() != n.role {
            return Err(InputError::for_node(
                &n.host,
                invalid(
                    path,
                    "role".into(),
                    format!(
                        "topf.yaml says {} but {} has machine.type {} (render again: `topf render -o {}`)",
                        if n.role == Role::ControlPlane {
                            "control-plane"
                        } else {
                            "worker"
                        },
                        config_path.display(),
                        config.machine_type,
                        dir.display()
                    ),
                ),
            ));
        }
        if let Some(c) = &config.cluster_name
            && c != &topf.cluster_name
        {
            config.warnings.push(format!(
                "is for cluster {c} but topf.yaml's clusterName is {} (stale render? run `topf render` again)",
                topf.cluster_name
            ));
        }
        nodes.push(NodeEntry {
            hostname: n.host.clone(),
            addresses: vec![n.ip],
            role: n.role,
            config_path,
            config,
        });
    }
    Ok(Inventory {
        cluster_name: Some(topf.cluster_name),
        endpoint: Some(topf.endpoint),
        nodes,
        source: InventorySource::Topf {
            path: path.to_path_buf(),
            config_dir: dir,
        },
    })
}

/// Hostnames and addresses for shell completion of `-n`: best effort, from
/// the raw file (no `${VAR}` substitution, no machine configs read).
pub(crate) fn completion_names(talconfig: Option<&Path>, topf: Option<&Path>) -> Vec<String> {
    let (path, host_key, ip_key) = match (topf, talconfig) {
        (Some(t), _) => (t.to_path_buf(), "host", "ip"),
        (None, Some(t)) => (t.to_path_buf(), "hostname", "ipAddress"),
        (None, None) if Path::new("talconfig.yaml").exists() => {
            ("talconfig.yaml".into(), "hostname", "ipAddress")
        }
        (None, None) => ("topf.yaml".into(), "host", "ip"),
    };
    let Ok(bytes) = super::read::read_input_file(&path) else {
        return Vec::new();
    };
    let Ok(root) = yaml_serde::from_slice::<Value>(&bytes) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    for n in root
        .get("nodes")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
    {
        if let Some(h) = n.get(host_key).and_then(Value::as_str) {
            names.push(h.to_string());
        }
        if let Some(ips) = n.get(ip_key).and_then(Value::as_str) {
            names.extend(
                ips.split(',')
                    .map(str::trim)
                    .filter(|s| s.parse::<IpAddr>().is_ok())
                    .map(String::from),
            );
        }
    }
    names.retain(|n| !n.contains('$') && !n.chars().any(char::is_whitespace));
    names
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Written from topf's documented schema (docs/configuration.md): the
    /// fields talstrap ignores are there too.
    pub(crate) const TOPF_YAML: &str = "\
clusterName: home
clusterEndpoint: https://k8s.home.arpa:6443
kubernetesVersion: 1.34.1
talosVersion: 1.12.7
schematicId: 376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba
secretsPath: secrets.yaml
data:
  region: lab
nodes:
  - host: cp1.home.arpa
    ip: 127.0.61.11
    role: control-plane
    data:
      uuid: \"550e8400-e29b-41d4-a716-446655440000\"
  - host: w1
    ip: 127.0.61.21
    role: worker
    platform: metal
";

    #[test]
    fn reads_nodes_roles_and_the_endpoint() {
        let t = parse(Path::new("topf.yaml"), TOPF_YAML).unwrap();
        assert_eq!(t.cluster_name, "home");
        assert_eq!(t.endpoint, "https://k8s.home.arpa:6443");
        assert_eq!(
            t.nodes,
            vec![
                TopfNode {
                    host: "cp1.home.arpa".into(),
                    ip: "127.0.61.11".parse().unwrap(),
                    role: Role::ControlPlane
                },
                TopfNode {
                    host: "w1".into(),
                    ip: "127.0.61.21".parse().unwrap(),
                    role: Role::Worker
                },
            ]
        );
    }

    #[test]
    fn bad_topf_files_name_the_field() {
        let cases = [
            (
                TOPF_YAML.replace("role: worker", "role: master"),
                "nodes[1].role",
            ),
            (
                TOPF_YAML.replace("    ip: 127.0.61.21\n", ""),
                "nodes[1].ip",
            ),
            (
                TOPF_YAML.replace("127.0.61.21", "127.0.61.11"),
                "nodes[1].ip",
            ),
            (
                TOPF_YAML.replace("clusterEndpoint: https://k8s.home.arpa:6443\n", ""),
                "clusterEndpoint",
            ),
            (
                TOPF_YAML.replace("  - host: w1\n", "  - hostname: w1\n"),
                "nodes[1].host",
            ),
            (
                "clusterName: x\nclusterEndpoint: https://a:6443\nnodes: []\n".to_string(),
                "nodes",
            ),
            ("- a\n".to_string(), "(top level)"),
        ];
        for (text, field) in cases {
            let err = parse(Path::new("topf.yaml"), &text)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(field) && err.contains("topf.yaml"),
                "{field}: {err}"
            );
        }
        // A host that is an address needs no ip.
        let t = parse(
            Path::new("t"),
            &TOPF_YAML.replace(
                "  - host: w1\n    ip: 127.0.61.21\n",
                "  - host: 127.0.61.21\n",
            ),
        )
        .unwrap();
        assert_eq!(t.nodes[1].ip.to_string(), "127.0.61.21");
    }

    #[test]
    fn completion_names_come_from_either_layout() {
        let dir = tempfile::tempdir().unwrap();
        let topf = dir.path().join("topf.yaml");
        std::fs::write(&topf, TOPF_YAML).unwrap();
        assert_eq!(
            completion_names(None, Some(&topf)),
            vec!["cp1.home.arpa", "127.0.61.11", "w1", "127.0.61.21"]
        );
        let tal = dir.path().join("talconfig.yaml");
        std::fs::write(&tal, "nodes:\n  - hostname: a\n    ipAddress: \"127.0.0.5, 127.0.0.6\"\n  - hostname: b\n    ipAddress: ${B_IP}\n").unwrap();
        assert_eq!(
            completion_names(Some(&tal), None),
            vec!["a", "127.0.0.5", "127.0.0.6", "b"]
        );
        assert!(completion_names(Some(&dir.path().join("missing.yaml")), None).is_empty());
    }
}
