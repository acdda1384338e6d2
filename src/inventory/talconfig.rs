//! Reading talhelper's talconfig.yaml and the machine configs that
//! `talhelper genconfig` wrote for it.
//!
//! The text goes through talhelper's env substitution first, then YAML
//! (anchors and `<<` merge keys work). Only the fields talstrap needs are
//! read; everything else (patches, schematic, networkInterfaces, …) is
//! ignored, as talhelper's own non-strict decoder ignores unknown keys.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use yaml_serde::Value;

use super::envfile::{Environment, Variables, default_env_files, load_files};
use super::envsubst::{strip_comments, substitute};
use super::error::InputError;
use super::machine_config::MachineConfig;
use super::template::{DEFAULT_FILENAME_TMPL, TemplateVars, render};
use super::validate::{check_endpoint, check_hostname, parse_ip_list};
use super::yaml::{kind_of, parse_single, scalar_string, to_utf8};
use super::{Inventory, InventorySource, NodeEntry, Role};

/// Where to find the talhelper files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    /// Path of talconfig.yaml.
    pub talconfig: PathBuf,
    /// Directory of generated machine configs; default
    /// `<talconfig dir>/clusterconfig`.
    pub config_dir: Option<PathBuf>,
    /// Env files for `${VAR}` substitution. Empty means the defaults
    /// ([`super::DEFAULT_ENV_FILES`]) that exist in the working directory
    /// and next to talconfig.yaml. Listed files must exist.
    pub env_files: Vec<PathBuf>,
}

impl LoadOptions {
    /// Options with defaults for everything but the talconfig path.
    pub fn new(talconfig: impl Into<PathBuf>) -> Self {
        LoadOptions {
            talconfig: talconfig.into(),
            config_dir: None,
            env_files: Vec::new(),
        }
    }

    fn talconfig_dir(&self) -> &Path {
        match self.talconfig.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    }

    /// The config directory these options resolve to.
    pub fn resolved_config_dir(&self) -> PathBuf {
        self.config_dir
            .clone()
            .unwrap_or_else(|| self.talconfig_dir().join("clusterconfig"))
    }
}

/// Loads the talconfig and every node's machine config with `env` (the
/// process's own, or the tests' variables and `sops` program).
pub fn load_talconfig_in(opts: &LoadOptions, env: &Environment) -> Result<Inventory, InputError> {
    let path = opts.talconfig.as_path();
    let bytes = super::read::read_input_file(path).map_err(|source| InputError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let text = to_utf8(path, &bytes)?;
    let stripped = strip_comments(text);
    if stripped.trim().is_empty() {
        return Err(InputError::Empty {
            path: path.to_path_buf(),
        });
    }
    // Default env files are only read when something refers to them, so a
    // talconfig without variables never needs sops. Listed files always are.
    let substituted = if stripped.contains('$') || !opts.env_files.is_empty() {
        let vars = load_env_for(opts, env)?;
        let lookup = |name: &str| vars.get(name);
        substitute(path, &stripped, &lookup)?
    } else {
        stripped
    };
    let talconfig = read_talconfig(path, &substituted)?;

    let config_dir = opts.resolved_config_dir();
    let nodes = super::read::load_each(&talconfig.nodes, |node| {
        load_node(path, &config_dir, &talconfig, node)
    })?;
    Ok(Inventory {
        cluster_name: Some(talconfig.cluster_name),
        endpoint: Some(talconfig.endpoint),
        nodes,
        source: InventorySource::Talconfig {
            path: path.to_path_buf(),
            config_dir,
        },
    })
}

/// The substitution variables for `opts`: its env files (or the default
/// ones that exist) layered over `env`.
pub fn load_env_for<'a>(
    opts: &LoadOptions,
    env: &'a Environment,
) -> Result<Variables<'a>, InputError> {
    let files = if opts.env_files.is_empty() {
        default_env_files(opts.talconfig_dir(), env.cwd())
    } else {
        opts.env_files.clone()
    };
    load_files(&files, env)
}

/// What talstrap reads from talconfig.yaml.
#[derive(Debug)]
struct Talconfig {
    cluster_name: String,
    endpoint: String,
    nodes: Vec<TalNode>,
    /// `controlPlane.filenameTmpl` / `worker.filenameTmpl` group defaults.
    group_tmpl: HashMap<Role, String>,
}

#[derive(Debug)]
struct TalNode {
    hostname: String,
    ip_raw: String,
    addresses: Vec<IpAddr>,
    role: Role,
    filename_tmpl: Option<String>,
    install_disk: Option<String>,
}

fn top_string(path: &Path, root: &Value, field: &str) -> Result<String, InputError> {
    let missing = || InputError::MissingField {
        path: path.to_path_buf(),
        field: field.to_string(),
    };
    let v = root.get(field).ok_or_else(missing)?;
    match scalar_string(v) {
        Ok(Some(s)) if !s.trim().is_empty() => Ok(s),
        Ok(_) => Err(missing()),
        Err(kind) => Err(InputError::InvalidField {
            path: path.to_path_buf(),
            field: field.to_string(),
            reason: format!("expected a string, found {kind}"),
        }),
    }
}

/// Parses substituted talconfig text.
fn read_talconfig(path: &Path, text: &str) -> Result<Talconfig, InputError> {
    let root = parse_single(path, text)?;
    if root.is_null() {
        return Err(InputError::Empty {
            path: path.to_path_buf(),
        });
    }
    if !root.is_mapping() {
        return Err(InputError::InvalidField {
            path: path.to_path_buf(),
            field: "(top level)".into(),
            reason: format!("expected a mapping, found {}", kind_of(&root)),
        });
    }
    let cluster_name = top_string(path, &root, "clusterName")?;
    let endpoint = top_string(path, &root, "endpoint")?;
    check_endpoint(&endpoint).map_err(|reason| InputError::InvalidField {
        path: path.to_path_buf(),
        field: "endpoint".into(),
        reason,
    })?;

    let mut group_tmpl = HashMap::new();
    for (key, role) in [
        ("controlPlane", Role::ControlPlane),
        ("worker", Role::Worker),
    ] {
        match root.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Mapping(group)) => {
                if let Some(v) = group.get("filenameTmpl") {
                    let field = format!("{key}.filenameTmpl");
                    match scalar_string(v) {
                        Ok(Some(t)) if !t.is_empty() => {
                            group_tmpl.insert(role, t);
                        }
                        Ok(_) => {}
                        Err(kind) => {
                            return Err(InputError::InvalidField {
                                path: path.to_path_buf(),
                                field,
                                reason: format!("expected a string, found {kind}"),
                            });
                        }
                    }
                }
            }
            Some(other) => {
                return Err(InputError::InvalidField {
                    path: path.to_path_buf(),
                    field: key.into(),
                    reason: format!(
                        "expected a mapping of group settings, found {}",
                        kind_of(other)
                    ),
                });
            }
        }
    }

    let nodes_value = root.get("nodes").ok_or_else(|| InputError::MissingField {
        path: path.to_path_buf(),
        field: "nodes".into(),
    })?;
    let list = match nodes_value {
        Value::Sequence(list) => list.as_slice(),
        Value::Null => &[],
        other => {
            return Err(InputError::InvalidField {
                path: path.to_path_buf(),
                field: "nodes".into(),
                reason: format!("expected a list of nodes, found {}", kind_of(other)),
            });
        }
    };
    if list.is_empty() {
        return Err(InputError::NoNodes {
            path: path.to_path_buf(),
        });
    }
    let mut nodes = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        nodes.push(read_node(path, i, v)?);
    }
    check_unique(path, &nodes)?;
    Ok(Talconfig {
        cluster_name,
        endpoint,
        nodes,
        group_tmpl,
    })
}

fn read_node(path: &Path, index: usize, v: &Value) -> Result<TalNode, InputError> {
    let Value::Mapping(_) = v else {
        return Err(InputError::InvalidField {
            path: path.to_path_buf(),
            field: format!("nodes[{index}]"),
            reason: format!("expected a mapping, found {}", kind_of(v)),
        });
    };
    // Until the hostname is known, a node is named by its position.
    let mut label = format!("nodes[{index}]");
    let node_err = |label: &str, field: &str, reason: String| InputError::NodeField {
        path: path.to_path_buf(),
        node: label.to_string(),
        field: field.to_string(),
        reason,
    };
    let string_field = |label: &str, field: &str| -> Result<Option<String>, InputError> {
        match v.get(field) {
            None => Ok(None),
            Some(x) => scalar_string(x)
                .map(|s| s.filter(|s| !s.trim().is_empty()))
                .map_err(|kind| node_err(label, field, format!("expected a string, found {kind}"))),
        }
    };

    let hostname = string_field(&label, "hostname")?
        .ok_or_else(|| node_err(&label, "hostname", "required field is missing".into()))?;
    check_hostname(&hostname).map_err(|r| node_err(&label, "hostname", r))?;
    label = hostname.clone();

    let ip_raw = string_field(&label, "ipAddress")?.ok_or_else(|| {
        node_err(
            &label,
            "ipAddress",
            "required field is missing (the node's IP address)".into(),
        )
    })?;
    let addresses = parse_ip_list(&ip_raw).map_err(|r| node_err(&label, "ipAddress", r))?;

    let role = match v.get("controlPlane").map(yaml_bool) {
        None | Some(Ok(None)) | Some(Ok(Some(false))) => Role::Worker,
        Some(Ok(Some(true))) => Role::ControlPlane,
        Some(Err(found)) => {
            return Err(node_err(
                &label,
                "controlPlane",
                format!("expected true or false, found {found}"),
            ));
        }
    };
    let filename_tmpl = string_field(&label, "filenameTmpl")?;
    let install_disk = string_field(&label, "installDisk")?;
    Ok(TalNode {
        hostname,
        ip_raw,
        addresses,
        role,
        filename_tmpl,
        install_disk,
    })
}

/// Reads a boolean as talhelper's Go decoder does for a bool field: YAML
/// booleans plus the YAML 1.1 words (`yes`, `no`, `on`, `off`, `y`, `n`).
fn yaml_bool(v: &Value) -> Result<Option<bool>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "on" => Ok(Some(true)),
            "false" | "no" | "n" | "off" => Ok(Some(false)),
            _ => Err(format!("{s:?}")),
        },
        other => Err(kind_of(other).to_string()),
    }
}

/// Hostnames and addresses must each belong to one node only.
fn check_unique(path: &Path, nodes: &[TalNode]) -> Result<(), InputError> {
    let source_name = path.display().to_string();
    let mut hostnames: HashMap<String, usize> = HashMap::new();
    let mut addresses: HashMap<IpAddr, &str> = HashMap::new();
    for (i, node) in nodes.iter().enumerate() {
        if let Some(first) = hostnames.insert(node.hostname.to_ascii_lowercase(), i) {
            return Err(InputError::DuplicateHostname {
                source_name,
                hostname: node.hostname.clone(),
                first: format!("nodes[{first}]"),
                second: format!("nodes[{i}]"),
            });
        }
        for ip in &node.addresses {
            if let Some(first) = addresses.insert(*ip, &node.hostname) {
                return Err(InputError::DuplicateAddress {
                    source_name,
                    address: *ip,
                    first: format!("node {first}"),
                    second: format!("node {}", node.hostname),
                });
            }
        }
    }
    Ok(())
}

fn load_node(
    talconfig_path: &Path,
    config_dir: &Path,
    talconfig: &Talconfig,
    node: &TalNode,
) -> Result<NodeEntry, InputError> {
    let file_name = config_file_name(talconfig_path, talconfig, node)?;
    let config_path = config_dir.join(&file_name);
    let mut config = read_config(node, &config_path)?;
    if config.role() != node.role {
        return Err(InputError::RoleMismatch {
            node: node.hostname.clone(),
            talconfig: talconfig_path.to_path_buf(),
            config: config_path,
            talconfig_cp: node.role == Role::ControlPlane,
            config_type: config.machine_type.to_string(),
        });
    }
    let warnings = stale_warnings(talconfig, node, &config);
    config.warnings.extend(warnings);
    Ok(NodeEntry {
        hostname: node.hostname.clone(),
        addresses: node.addresses.clone(),
        role: node.role,
        config_path,
        config,
    })
}

/// The node's config file name inside the config directory, from its
/// `filenameTmpl` (or its group's, or talhelper's default). A name that is
/// empty, absolute or climbs out with `..` is refused.
fn config_file_name(
    talconfig_path: &Path,
    talconfig: &Talconfig,
    node: &TalNode,
) -> Result<String, InputError> {
    let template = node
        .filename_tmpl
        .as_deref()
        .or_else(|| talconfig.group_tmpl.get(&node.role).map(String::as_str))
        .unwrap_or(DEFAULT_FILENAME_TMPL);
    let vars = TemplateVars {
        cluster_name: &talconfig.cluster_name,
        hostname: &node.hostname,
        ip_address: &node.ip_raw,
        role: node.role.as_str(),
    };
    let template_err = |reason: String| InputError::Template {
        path: talconfig_path.to_path_buf(),
        node: node.hostname.clone(),
        template: template.to_string(),
        reason,
    };
    let file_name = render(template, &vars).map_err(template_err)?;
    if file_name.trim().is_empty() {
        return Err(template_err("renders to an empty file name".into()));
    }
    if Path::new(&file_name)
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(template_err(format!(
            "renders to {file_name:?}, which leaves the config directory (\"..\"); it must name a file inside it"
        )));
    }
    if Path::new(&file_name).is_absolute() {
        return Err(template_err(format!(
            "renders to the absolute path {file_name:?}; it must name a file inside the config directory"
        )));
    }
    Ok(file_name)
}

/// Reads and parses one node's machine config; errors name the node.
fn read_config(node: &TalNode, config_path: &Path) -> Result<MachineConfig, InputError> {
    let bytes = match super::read::read_input_file(config_path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(InputError::ConfigMissing {
                node: node.hostname.clone(),
                path: config_path.to_path_buf(),
            });
        }
        Err(source) => {
            return Err(InputError::for_node(
                &node.hostname,
                InputError::Io {
                    path: config_path.to_path_buf(),
                    source,
                },
            ));
        }
    };
    MachineConfig::parse(config_path, bytes).map_err(|e| InputError::for_node(&node.hostname, e))
}

/// Signs that clusterconfig/ is older than talconfig.yaml: the config names
/// another hostname, cluster or install disk than talconfig does.
fn stale_warnings(talconfig: &Talconfig, node: &TalNode, config: &MachineConfig) -> Vec<String> {
    let stale = "(stale clusterconfig? run `talhelper genconfig` again)";
    let mut warnings = Vec::new();
    if let Some(h) = &config.hostname
        && !h.eq_ignore_ascii_case(&node.hostname)
    {
        warnings.push(format!(
            "sets hostname {h} but talconfig names the node {} {stale}",
            node.hostname
        ));
    }
    if let Some(c) = &config.cluster_name
        && c != &talconfig.cluster_name
    {
        warnings.push(format!(
            "is for cluster {c} but talconfig's clusterName is {} {stale}",
            talconfig.cluster_name
        ));
    }
    if let (Some(want), Some(have)) = (&node.install_disk, &config.install_disk)
        && want != have
    {
        warnings.push(format!(
            "installs to {have} but talconfig says installDisk {want} {stale}"
        ));
    }
    warnings
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
#[path = "talconfig_tests.rs"]
mod tests;
