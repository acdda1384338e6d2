//! The name a control plane's etcd member gets, as Talos names it: the
//! node's hostname up to the first dot (Talos v1.12.11 and v1.13.9
//! `internal/app/machined/pkg/controllers/etcd/spec.go` sets the member name
//! from `HostnameStatus.Hostname`, which `ParseFQDN` in
//! `pkg/machinery/resources/network/hostname_spec.go` cuts at the first
//! dot). Without a configured hostname the name is automatic
//! (`internal/app/machined/pkg/controllers/network/hostname_config.go`):
//! `auto: stable` gives `talos-xxx-yyy` from a hash of the node identity,
//! otherwise the default address gives `talos-<ip-with-dashes>`.

use std::net::IpAddr;

use yaml_serde::Value;

use super::applied_config::AppliedConfig;

/// The etcd member name of a node with config `cfg` and address `ip`;
/// `identity` stands in for Talos's random node ID (`cluster.Identity`).
pub fn member_name(cfg: Option<&AppliedConfig>, ip: IpAddr, identity: &str) -> String {
    if let Some(h) = cfg
        .and_then(|c| c.hostname.as_deref())
        .filter(|h| !h.is_empty())
    {
        return h.split('.').next().unwrap_or(h).to_string();
    }
    let stable = cfg.is_some_and(|c| {
        c.other_docs.iter().any(|d| {
            d.get("kind").and_then(Value::as_str) == Some("HostnameConfig")
                && d.get("auto").and_then(Value::as_str) == Some("stable")
        })
    });
    if stable {
        stable_name(identity)
    } else {
        address_name(ip)
    }
}

/// `talos-` + the address with ':' removed and '.' turned into '-'.
pub fn address_name(ip: IpAddr) -> String {
    format!(
        "talos-{}",
        ip.to_string().replace(':', "").replace('.', "-")
    )
}

/// `talos-xxx-yyy`: characters 1..4 and 4..7 of the base36 form of the
/// first 8 bytes of SHA-256(identity), lower case.
pub fn stable_name(identity: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, identity.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_ref()[..8]);
    let mut n = u64::from_be_bytes(first);
    let mut digits = Vec::new();
    while n > 0 {
        digits.push(b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize]);
        n /= 36;
    }
    while digits.len() < 13 {
        digits.push(b'0');
    }
    digits.reverse();
    let s = String::from_utf8(digits).unwrap_or_default();
    format!("talos-{}-{}", &s[1..4], &s[4..7])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_talos() {
        let ip: IpAddr = "127.0.10.11".parse().unwrap();
        assert_eq!(address_name(ip), "talos-127-0-10-11");
        assert_eq!(address_name("fd00::11".parse().unwrap()), "talos-fd0011");
        let a = stable_name("node-a");
        assert!(
            a.starts_with("talos-") && a.len() == "talos-xxx-yyy".len(),
            "{a}"
        );
        assert_eq!(a, stable_name("node-a"));
        assert_ne!(a, stable_name("node-b"));
        assert_eq!(member_name(None, ip, "x"), "talos-127-0-10-11");
    }
}
