//! The inventory of plain talosctl users: `--node IP=path/to/config.yaml`,
//! repeatable. The role comes from each config's `machine.type`, the
//! hostname from the config (or the IP when the config sets none).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;

use super::error::InputError;
use super::machine_config::MachineConfig;
use super::{Inventory, InventorySource, NodeEntry};

/// Builds an inventory from `--node IP=path` values, in flag order.
pub(crate) fn from_node_flags(flags: &[String]) -> Result<Inventory, InputError> {
    if flags.is_empty() {
        return Err(InputError::NoNodeFlags);
    }
    let mut nodes: Vec<NodeEntry> = Vec::with_capacity(flags.len());
    let mut by_ip: HashMap<IpAddr, &str> = HashMap::new();
    let mut by_host: HashMap<String, &str> = HashMap::new();
    // A pipe or stdin can be read once: the same source for two nodes is
    // read once and parsed for each.
    let mut read: HashMap<PathBuf, Vec<u8>> = HashMap::new();
    for flag in flags {
        let (ip, path) = parse_flag(flag)?;
        if let Some(first) = by_ip.insert(ip, flag) {
            return Err(InputError::DuplicateAddress {
                source_name: "--node flags".into(),
                address: ip,
                first: format!("--node {first}"),
                second: format!("--node {flag}"),
            });
        }
        let bytes = match read.get(&path) {
            Some(b) => b.clone(),
            None => {
                let b = super::read::read_config_source(&path).map_err(|source| {
                    InputError::for_node(
                        &ip.to_string(),
                        InputError::Io {
                            path: path.clone(),
                            source,
                        },
                    )
                })?;
                read.insert(path.clone(), b.clone());
                b
            }
        };
        let mut config = MachineConfig::parse(&path, bytes)
            .map_err(|e| InputError::for_node(&ip.to_string(), e))?;
        let hostname = config.hostname.clone().unwrap_or_else(|| ip.to_string());
        if let Some(first) = by_host.insert(hostname.to_ascii_lowercase(), flag) {
            return Err(InputError::DuplicateHostname {
                source_name: "--node flags".into(),
                hostname,
                first: format!("--node {first}"),
                second: format!("--node {flag}"),
            });
        }
        if let (Some(first), Some(this)) = (
            nodes.first().and_then(|n| n.config.cluster_name.clone()),
            config.cluster_name.clone(),
        ) && first != this
        {
            config.warnings.push(format!(
                "is for cluster {this} but {} is for cluster {first}",
                nodes[0].config_path.display()
            ));
        }
        nodes.push(NodeEntry {
            hostname,
            addresses: vec![ip],
            role: config.role(),
            config_path: path,
            config,
        });
    }
    let cluster_name = nodes.iter().find_map(|n| n.config.cluster_name.clone());
    let endpoint = nodes.iter().find_map(|n| n.config.endpoint.clone());
    Ok(Inventory {
        cluster_name,
        endpoint,
        nodes,
        source: InventorySource::NodeFlags,
    })
}

fn parse_flag(flag: &str) -> Result<(IpAddr, PathBuf), InputError> {
    let bad = |reason: String| InputError::NodeFlag {
        flag: flag.to_string(),
        reason,
    };
    let Some((ip, path)) = flag.split_once('=') else {
        return Err(bad("expected IP=path/to/config.yaml".into()));
    };
    let ip_text = ip.trim();
    let bare = ip_text
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(ip_text);
    let ip: IpAddr = bare
        .parse()
        .map_err(|_| bad(format!("{ip_text:?} is not an IP address")))?;
    super::validate::check_node_ip(ip).map_err(bad)?;
    if path.trim().is_empty() {
        return Err(bad("the config path after '=' is empty".into()));
    }
    Ok((ip, PathBuf::from(path)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use crate::inventory::Role;
    use crate::inventory::machine_config::tests::config_yaml;

    fn write(dir: &std::path::Path, name: &str, body: &str) -> String {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        p.display().to_string()
    }

    #[test]
    fn builds_nodes_in_flag_order_with_roles_and_hostnames() {
        let dir = tempfile::tempdir().unwrap();
        let cp = write(
            dir.path(),
            "cp.yaml",
            &config_yaml("controlplane", "cp1", true),
        );
        let generic_worker = config_yaml("worker", "w", false).replace("    hostname: w\n", "");
        let w = write(dir.path(), "worker.yaml", &generic_worker);
        let inv = from_node_flags(&[
            format!("10.0.0.11={cp}"),
            format!("10.0.0.21={w}"),
            format!("[fd00::22]={w}"),
        ])
        .unwrap();
        assert_eq!(inv.source, InventorySource::NodeFlags);
        assert_eq!(inv.cluster_name.as_deref(), Some("home"));
        assert_eq!(inv.endpoint.as_deref(), Some("https://10.0.0.10:6443"));
        let got: Vec<(&str, Role)> = inv
            .nodes
            .iter()
            .map(|n| (n.hostname.as_str(), n.role))
            .collect();
        assert_eq!(
            got,
            vec![
                ("cp1", Role::ControlPlane),
                ("10.0.0.21", Role::Worker),
                ("fd00::22", Role::Worker)
            ]
        );
        assert_eq!(inv.nodes[2].primary_ip().to_string(), "fd00::22");
        assert_eq!(inv.nodes[1].config_path, PathBuf::from(&w));
    }

    #[test]
    fn bad_flags_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let cp = write(
            dir.path(),
            "cp.yaml",
            &config_yaml("controlplane", "cp1", true),
        );
        let cases = [
            (
                vec!["10.0.0.11".to_string()],
                "--node 10.0.0.11: expected IP=path",
            ),
            (
                vec![format!("node1={cp}")],
                "\"node1\" is not an IP address",
            ),
            (vec!["10.0.0.11=".to_string()], "path after '=' is empty"),
            (vec![], "no nodes given: pass --node IP=path"),
            (
                vec![format!("10.0.0.11={cp}"), format!("10.0.0.11={cp}")],
                "address 10.0.0.11 is listed for --node 10.0.0.11=",
            ),
            (
                vec![format!("10.0.0.11={cp}"), format!("10.0.0.12={cp}")],
                "hostname cp1 is used by two nodes",
            ),
        ];
        for (flags, want) in cases {
            let msg = from_node_flags(&flags).unwrap_err().to_string();
            assert!(msg.contains(want), "{want:?} not in {msg:?}");
        }
    }

    #[test]
    fn unreadable_or_broken_file_names_node_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("absent.yaml").display().to_string();
        let msg = from_node_flags(&[format!("10.0.0.11={missing}")])
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("node 10.0.0.11: cannot read "), "{msg}");
        assert!(msg.contains("absent.yaml"), "{msg}");

        let broken = write(dir.path(), "b.yaml", "machine: [\n");
        let msg = from_node_flags(&[format!("10.0.0.11={broken}")])
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("b.yaml:") && msg.contains("malformed YAML"),
            "{msg}"
        );
    }
}
