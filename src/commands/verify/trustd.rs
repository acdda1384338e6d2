//! Whether a worker's API can open before bootstrap. A worker's apid
//! serves only once trustd on a control plane has signed its certificate,
//! and the worker looks for trustd at the cluster endpoint's host and, with
//! discovery on, at the control planes discovery lists (Talos v1.12.11
//! internal/app/machined/pkg/controllers/secrets/api.go,
//! controllers/k8s/static_endpoint.go, controllers/cluster/endpoint.go).
//! A VIP endpoint answers only once a control plane holds it, after its
//! etcd is healthy (controllers/network/operator/vip.go): with discovery
//! off, such a worker refuses connections until the cluster is bootstrapped.

use std::net::IpAddr;

use crate::inventory::wait_facts::WaitFacts;

/// Why `worker_config`'s apid may stay closed until bootstrap, or None when
/// it finds trustd on a control plane before (discovery on, or the endpoint
/// is a control plane's own address). `control_planes`: their addresses and
/// raw configs (for their VIPs).
#[cfg(test)]
pub(crate) fn waits_for_bootstrap(
    worker_config: &[u8],
    endpoint: Option<&str>,
    control_planes: &[(IpAddr, &[u8])],
) -> Option<String> {
    let facts = |raw: &[u8]| {
        let docs: Vec<yaml_serde::Value> =
            yaml_serde::Deserializer::from_str(std::str::from_utf8(raw).unwrap_or_default())
                .filter_map(|doc| <yaml_serde::Value as serde::Deserialize>::deserialize(doc).ok())
                .collect();
        WaitFacts::of(docs.iter())
    };
    let addrs: Vec<IpAddr> = control_planes.iter().map(|(a, _)| *a).collect();
    let cps: Vec<WaitFacts> = control_planes.iter().map(|(_, raw)| facts(raw)).collect();
    waits_for_bootstrap_at(
        &facts(worker_config),
        endpoint,
        &addrs,
        &control_plane_vips(cps.iter()),
    )
}

/// The VIPs the control planes' configs hold (gathered once per run, not
/// once per worker).
pub(crate) fn control_plane_vips<'a>(
    configs: impl IntoIterator<Item = &'a WaitFacts>,
) -> Vec<IpAddr> {
    configs
        .into_iter()
        .flat_map(|f| f.vips.iter().copied())
        .collect()
}

/// [`waits_for_bootstrap`] with the worker config's facts, and the control
/// planes' addresses and VIPs ([`control_plane_vips`]) already known.
pub(crate) fn waits_for_bootstrap_at(
    worker: &WaitFacts,
    endpoint: Option<&str>,
    control_planes: &[IpAddr],
    control_plane_vips: &[IpAddr],
) -> Option<String> {
    if worker.discovery_enabled {
        return None;
    }
    let host = endpoint.and_then(endpoint_host)?;
    let ip = host.parse::<IpAddr>().ok();
    if ip.is_some_and(|ip| control_planes.contains(&ip)) {
        return None;
    }
    let is_vip = ip.is_some_and(|ip| control_plane_vips.contains(&ip));
    Some(if is_vip {
        format!(
            "its apid opens once trustd is reachable, and the cluster endpoint {host} is the control planes' VIP, up only after bootstrap (discovery is off)"
        )
    } else {
        format!(
            "its apid opens once trustd is reachable, and the cluster endpoint {host} is no control plane's own address (discovery is off)"
        )
    })
}

/// The host of `https://<host>:6443`.
fn endpoint_host(url: &str) -> Option<String> {
    let rest = url.strip_prefix("https://")?;
    let authority = rest.split('/').next()?;
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    (!host.is_empty()).then(|| host.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const CP_VIP: &[u8] = b"version: v1alpha1\nmachine:\n  type: controlplane\n  network:\n    interfaces:\n      - interface: eth0\n        vip: { ip: 127.0.10.5 }\n";
    const CP: &[u8] = b"version: v1alpha1\nmachine: { type: controlplane }\n";

    fn cps(cfg: &[u8]) -> Vec<(IpAddr, &[u8])> {
        vec![("127.0.10.11".parse().unwrap(), cfg)]
    }

    #[test]
    fn a_vip_endpoint_without_discovery_waits_for_bootstrap() {
        let w = b"version: v1alpha1\nmachine: { type: worker }\ncluster: { discovery: { enabled: false } }\n";
        let why = waits_for_bootstrap(w, Some("https://127.0.10.5:6443"), &cps(CP_VIP)).unwrap();
        assert!(why.contains("VIP") && why.contains("127.0.10.5"), "{why}");
        // Unset discovery is off too.
        let w = b"version: v1alpha1\nmachine: { type: worker }\n";
        assert!(waits_for_bootstrap(w, Some("https://127.0.10.5:6443"), &cps(CP_VIP)).is_some());
        // A name or a load balancer: no control plane's own address.
        let why = waits_for_bootstrap(w, Some("https://k8s.lan:6443"), &cps(CP)).unwrap();
        assert!(why.contains("no control plane's own address"), "{why}");
    }

    #[test]
    fn discovery_or_a_control_plane_endpoint_finds_trustd_before_bootstrap() {
        let w = b"version: v1alpha1\nmachine: { type: worker }\ncluster: { discovery: { enabled: true } }\n";
        assert_eq!(
            waits_for_bootstrap(w, Some("https://127.0.10.5:6443"), &cps(CP_VIP)),
            None
        );
        let w = b"version: v1alpha1\nmachine: { type: worker }\n---\napiVersion: v1alpha1\nkind: DiscoveryServiceConfig\n";
        assert_eq!(
            waits_for_bootstrap(w, Some("https://127.0.10.5:6443"), &cps(CP_VIP)),
            None
        );
        let w = b"version: v1alpha1\nmachine: { type: worker }\n";
        assert_eq!(
            waits_for_bootstrap(w, Some("https://127.0.10.11:6443"), &cps(CP)),
            None
        );
        assert_eq!(
            endpoint_host("https://[fd00::5]:6443").as_deref(),
            Some("fd00::5")
        );
        assert_eq!(endpoint_host("https://k8s.lan").as_deref(), Some("k8s.lan"));
    }
}
