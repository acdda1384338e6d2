//! Node selection: `-n/--nodes IP|hostname` (repeatable) and `--role`.
//!
//! A `-n` value that matches nothing is an error listing the known nodes
//! (a typo must never silently shrink the set of nodes acted on). When a
//! node is selected by one of its addresses, only that address is kept, so
//! the caller dials exactly what the operator asked for; selecting it by
//! hostname keeps all of its addresses.

use std::net::IpAddr;

use super::error::InputError;
use super::{Inventory, NodeEntry, Role};

/// Which nodes a command works on. The default selects every node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// IPs or hostnames; empty means all nodes.
    pub nodes: Vec<String>,
    /// Keep only nodes of this role.
    pub role: Option<Role>,
}

impl Filter {
    fn describe(&self) -> String {
        let mut parts: Vec<String> = self.nodes.iter().map(|n| format!("-n {n}")).collect();
        if let Some(r) = self.role {
            parts.push(format!("--role {r}"));
        }
        if parts.is_empty() {
            "(no filter)".into()
        } else {
            parts.join(" ")
        }
    }
}

/// How much of a node a filter selected.
#[derive(Debug, Clone)]
enum Picked {
    Whole,
    Addresses(Vec<IpAddr>),
}

fn parse_ip(value: &str) -> Option<IpAddr> {
    let v = value.trim();
    let v = v
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(v);
    v.parse().ok()
}

fn describe_node(n: &NodeEntry) -> String {
    let addrs: Vec<String> = n.addresses.iter().map(IpAddr::to_string).collect();
    format!("{} ({})", n.hostname, addrs.join(", "))
}

impl Inventory {
    fn known_nodes(&self) -> Vec<String> {
        self.nodes.iter().map(describe_node).collect()
    }

    /// The nodes selected by `f`, in inventory order.
    pub fn filter(&self, f: &Filter) -> Result<Vec<NodeEntry>, InputError> {
        let mut picked: Vec<Option<Picked>> = if f.nodes.is_empty() {
            vec![Some(Picked::Whole); self.nodes.len()]
        } else {
            vec![None; self.nodes.len()]
        };
        for value in &f.nodes {
            let mut matched = false;
            match parse_ip(value) {
                Some(ip) => {
                    for (i, node) in self.nodes.iter().enumerate() {
                        if node.addresses.contains(&ip) {
                            matched = true;
                            match &mut picked[i] {
                                Some(Picked::Whole) => {}
                                Some(Picked::Addresses(list)) => {
                                    if !list.contains(&ip) {
                                        list.push(ip);
                                    }
                                }
                                slot @ None => *slot = Some(Picked::Addresses(vec![ip])),
                            }
                        }
                    }
                }
                None => {
                    let want = value.trim();
                    for (i, node) in self.nodes.iter().enumerate() {
                        if node.hostname.eq_ignore_ascii_case(want) {
                            matched = true;
                            picked[i] = Some(Picked::Whole);
                        }
                    }
                }
            }
            if !matched {
                return Err(InputError::UnknownNode {
                    value: value.clone(),
                    known: self.known_nodes(),
                });
            }
        }

        let out: Vec<NodeEntry> = self
            .nodes
            .iter()
            .zip(picked)
            .filter_map(|(node, pick)| {
                let pick = pick?;
                if f.role.is_some_and(|r| r != node.role) {
                    return None;
                }
                let mut entry = node.clone();
                if let Picked::Addresses(chosen) = pick {
                    // Keep the node's own order among the chosen addresses.
                    entry.addresses.retain(|a| chosen.contains(a));
                }
                Some(entry)
            })
            .collect();
        if out.is_empty() {
            return Err(InputError::EmptySelection {
                filter: f.describe(),
                known: self
                    .nodes
                    .iter()
                    .map(|n| format!("{} [{}]", describe_node(n), n.role))
                    .collect(),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use crate::inventory::machine_config::tests::config_yaml;
    use crate::inventory::{InventorySource, MachineConfig};
    use std::path::{Path, PathBuf};

    fn entry(host: &str, ips: &[&str], role: Role) -> NodeEntry {
        let (t, key) = match role {
            Role::ControlPlane => ("controlplane", true),
            Role::Worker => ("worker", false),
        };
        let config =
            MachineConfig::parse(Path::new("x.yaml"), config_yaml(t, host, key).into_bytes())
                .unwrap();
        NodeEntry {
            hostname: host.into(),
            addresses: ips.iter().map(|s| s.parse().unwrap()).collect(),
            role,
            config_path: PathBuf::from(format!("{host}.yaml")),
            config,
        }
    }

    fn inventory() -> Inventory {
        Inventory {
            cluster_name: Some("home".into()),
            endpoint: None,
            nodes: vec![
                entry("cp1", &["10.0.0.11"], Role::ControlPlane),
                entry(
                    "cp2.example.com",
                    &["10.0.0.12", "fd00::12"],
                    Role::ControlPlane,
                ),
                entry("w1", &["10.0.0.21", "10.0.0.22"], Role::Worker),
            ],
            source: InventorySource::NodeFlags,
        }
    }

    fn names(v: &[NodeEntry]) -> Vec<&str> {
        v.iter().map(|n| n.hostname.as_str()).collect()
    }

    #[test]
    fn empty_filter_selects_everything_in_order() {
        let inv = inventory();
        let all = inv.filter(&Filter::default()).unwrap();
        assert_eq!(names(&all), vec!["cp1", "cp2.example.com", "w1"]);
        assert_eq!(all[2].addresses.len(), 2);
        assert_eq!(inv.bootstrap_target().unwrap().hostname, "cp1");
        assert_eq!(inv.control_planes().count(), 2);
    }

    #[test]
    fn hostnames_and_addresses_match_and_order_is_kept() {
        let inv = inventory();
        let f = Filter {
            nodes: vec!["w1".into(), "CP1".into()],
            role: None,
        };
        assert_eq!(names(&inv.filter(&f).unwrap()), vec!["cp1", "w1"]);
    }

    #[test]
    fn ipv6_is_normalised_and_address_selection_narrows_addresses() {
        let inv = inventory();
        let f = Filter {
            nodes: vec!["fd00:0:0:0::12".into()],
            role: None,
        };
        let got = inv.filter(&f).unwrap();
        assert_eq!(names(&got), vec!["cp2.example.com"]);
        assert_eq!(
            got[0].addresses,
            vec!["fd00::12".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(got[0].primary_ip(), "fd00::12".parse::<IpAddr>().unwrap());

        let f = Filter {
            nodes: vec!["10.0.0.22".into(), "[10.0.0.21]".into()],
            role: None,
        };
        let got = inv.filter(&f).unwrap();
        // Node order of addresses, not flag order.
        assert_eq!(got[0].addresses.len(), 2);
        assert_eq!(got[0].primary_ip().to_string(), "10.0.0.21");

        // Hostname wins over a narrower address pick.
        let f = Filter {
            nodes: vec!["10.0.0.22".into(), "w1".into()],
            role: None,
        };
        assert_eq!(inv.filter(&f).unwrap()[0].addresses.len(), 2);
    }

    #[test]
    fn role_narrows() {
        let inv = inventory();
        let f = Filter {
            nodes: vec![],
            role: Some(Role::Worker),
        };
        assert_eq!(names(&inv.filter(&f).unwrap()), vec!["w1"]);
        let f = Filter {
            nodes: vec!["cp1".into(), "w1".into()],
            role: Some(Role::ControlPlane),
        };
        assert_eq!(names(&inv.filter(&f).unwrap()), vec!["cp1"]);
    }

    #[test]
    fn unknown_value_lists_known_nodes() {
        let inv = inventory();
        let f = Filter {
            nodes: vec!["cp1".into(), "cp3".into()],
            role: None,
        };
        let msg = inv.filter(&f).unwrap_err().to_string();
        assert!(
            msg.starts_with("-n cp3: no such node; known nodes: "),
            "{msg}"
        );
        for known in [
            "cp1 (10.0.0.11)",
            "cp2.example.com (10.0.0.12, fd00::12)",
            "w1",
        ] {
            assert!(msg.contains(known), "{known} missing in {msg}");
        }
        let f = Filter {
            nodes: vec!["10.0.0.99".into()],
            role: None,
        };
        assert!(matches!(
            inv.filter(&f),
            Err(InputError::UnknownNode { .. })
        ));
    }

    #[test]
    fn empty_result_is_an_error_naming_the_filter() {
        let inv = inventory();
        let f = Filter {
            nodes: vec!["w1".into()],
            role: Some(Role::ControlPlane),
        };
        let msg = inv.filter(&f).unwrap_err().to_string();
        assert!(
            msg.starts_with("no node matches -n w1 --role controlplane"),
            "{msg}"
        );
        assert!(msg.contains("w1 (10.0.0.21, 10.0.0.22) [worker]"), "{msg}");
    }
}
