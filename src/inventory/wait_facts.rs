//! What a config says that verify's wait needs (whether a CNI runs, whether
//! discovery finds trustd, which VIPs a control plane holds), read once
//! with the rest of the config rather than once per watch.

use std::net::IpAddr;

use yaml_serde::Value;

/// The wait-relevant facts of one config's documents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WaitFacts {
    /// The first `cluster.network.cni.name` set is `none`.
    pub cni_none: bool,
    /// `cluster.discovery.enabled: true` (off when unset, as in Talos), or
    /// a `DiscoveryServiceConfig` document.
    pub discovery_enabled: bool,
    /// `machine.network.interfaces[].vip.ip` and `Layer2VIPConfig` names.
    pub vips: Vec<IpAddr>,
}

impl WaitFacts {
    pub(crate) fn of<'a>(docs: impl IntoIterator<Item = &'a Value> + Clone) -> Self {
        WaitFacts {
            cni_none: cni_none(docs.clone()),
            discovery_enabled: docs.clone().into_iter().any(enables_discovery),
            vips: docs.into_iter().flat_map(vips).collect(),
        }
    }
}

fn cni_none<'a>(docs: impl IntoIterator<Item = &'a Value>) -> bool {
    docs.into_iter()
        .find_map(|d| {
            d.get("cluster")?
                .get("network")?
                .get("cni")?
                .get("name")?
                .as_str()
        })
        .is_some_and(|name| name == "none")
}

fn enables_discovery(d: &Value) -> bool {
    d.get("cluster")
        .and_then(|c| c.get("discovery"))
        .and_then(|c| c.get("enabled"))
        .and_then(Value::as_bool)
        == Some(true)
        || d.get("kind").and_then(Value::as_str) == Some("DiscoveryServiceConfig")
}

fn vips(d: &Value) -> Vec<IpAddr> {
    let mut out = Vec::new();
    if let Some(ifaces) = d
        .get("machine")
        .and_then(|m| m.get("network"))
        .and_then(|n| n.get("interfaces"))
        .and_then(Value::as_sequence)
    {
        out.extend(
            ifaces
                .iter()
                .filter_map(|i| i.get("vip")?.get("ip")?.as_str()?.parse::<IpAddr>().ok()),
        );
    }
    if d.get("kind").and_then(Value::as_str) == Some("Layer2VIPConfig")
        && let Some(ip) = d
            .get("name")
            .and_then(Value::as_str)
            .and_then(|n| n.parse::<IpAddr>().ok())
    {
        out.push(ip);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn facts(yaml: &str) -> WaitFacts {
        let docs: Vec<Value> = yaml_serde::Deserializer::from_str(yaml)
            .map(|d| <Value as serde::Deserialize>::deserialize(d).unwrap())
            .collect();
        WaitFacts::of(docs.iter())
    }

    #[test]
    fn cni_none_is_read_from_the_first_document_that_names_a_cni() {
        assert!(
            facts("version: v1alpha1\ncluster:\n  network:\n    cni:\n      name: none\n").cni_none
        );
        assert!(!facts("version: v1alpha1\ncluster: {network: {cni: {name: flannel}}}\n").cni_none);
        assert!(!facts("version: v1alpha1\nmachine: {type: worker}\n").cni_none);
    }

    #[test]
    fn discovery_and_vips_come_from_any_document() {
        let f = facts(
            "version: v1alpha1\nmachine:\n  network:\n    interfaces:\n      - interface: eth0\n        vip: { ip: 127.0.10.5 }\n---\napiVersion: v1alpha1\nkind: Layer2VIPConfig\nname: 127.0.10.6\nlink: eth0\n---\napiVersion: v1alpha1\nkind: DiscoveryServiceConfig\n",
        );
        assert!(f.discovery_enabled);
        assert_eq!(
            f.vips,
            vec![
                "127.0.10.5".parse::<IpAddr>().unwrap(),
                "127.0.10.6".parse().unwrap()
            ]
        );
        let f = facts("version: v1alpha1\ncluster: { discovery: { enabled: false } }\n");
        assert!(!f.discovery_enabled && f.vips.is_empty());
    }
}
