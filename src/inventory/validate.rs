//! Pure validators for values operators type into talconfig.yaml and
//! machine configs: hostnames, `https://` endpoints and `ipAddress` lists.
//! Each returns a human reason on failure; callers add file and field.

use std::net::IpAddr;

/// Checks an RFC 1123 hostname; dotted FQDNs are allowed (talhelper
/// accepts `delta.bjw-s.casa` and uses it in file names).
pub(crate) fn check_hostname(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("hostname is empty".into());
    }
    if name.len() > 253 {
        return Err(format!(
            "hostname is {} characters long (at most 253)",
            name.len()
        ));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!(
                "{name:?} has an empty label (two dots or a leading/trailing dot)"
            ));
        }
        if label.len() > 63 {
            return Err(format!("label {label:?} is longer than 63 characters"));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(format!(
                "{name:?} contains {c:?}; hostnames use letters, digits, '-' and '.'"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label {label:?} starts or ends with '-'"));
        }
    }
    Ok(())
}

/// The parts of an endpoint URL talstrap cares about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub host: String,
    pub port: Option<u16>,
}

/// Checks a Kubernetes API endpoint such as `https://10.0.0.10:6443`: the
/// scheme must be https and a host must be present. The endpoint is only
/// read, never dialled (a VIP does not exist before bootstrap).
pub(crate) fn check_endpoint(url: &str) -> Result<Endpoint, String> {
    let example = "e.g. https://10.0.0.10:6443";
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("{url:?} is not a URL ({example})"));
    };
    if !scheme.eq_ignore_ascii_case("https") {
        return Err(format!(
            "{url:?} uses scheme {scheme:?}; the endpoint must be https ({example})"
        ));
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    if authority.is_empty() {
        return Err(format!("{url:?} has no host ({example})"));
    }
    if authority.contains('@') {
        return Err(format!("{url:?} must not carry user information"));
    }
    if authority.chars().any(char::is_whitespace) {
        return Err(format!("{url:?} contains whitespace"));
    }
    let (host, port) = if let Some(after) = authority.strip_prefix('[') {
        let Some((v6, tail)) = after.split_once(']') else {
            return Err(format!("{url:?} has an unclosed '['"));
        };
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("{url:?}: {v6:?} is not an IPv6 address"));
        }
        let port = match tail {
            "" => None,
            t => Some(
                t.strip_prefix(':')
                    .ok_or_else(|| format!("{url:?}: unexpected {t:?} after the IPv6 address"))?,
            ),
        };
        (v6.to_string(), port)
    } else {
        match authority.matches(':').count() {
            0 => (authority.to_string(), None),
            1 => {
                let (h, p) = authority.split_once(':').unwrap_or((authority, ""));
                (h.to_string(), Some(p))
            }
            _ => {
                return Err(format!(
                    "{url:?}: an IPv6 host must be written in brackets, e.g. https://[fd00::10]:6443"
                ));
            }
        }
    };
    if host.is_empty() {
        return Err(format!("{url:?} has no host ({example})"));
    }
    if host.parse::<IpAddr>().is_err() {
        // Not an IP literal: it must then be a DNS name.
        if looks_numeric(&host) {
            return Err(format!("{url:?}: bad host: {host:?} is not an IP address"));
        }
        check_hostname(&host).map_err(|r| format!("{url:?}: bad host: {r}"))?;
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(format!("{url:?}: port {p:?} is not a number in 1..65535")),
        },
    };
    Ok(Endpoint { host, port })
}

/// Parses talconfig's `ipAddress`: one address or a comma-separated list,
/// spaces trimmed. DNS names are accepted by talhelper but talstrap dials
/// nodes directly, so it needs addresses.
pub(crate) fn parse_ip_list(raw: &str) -> Result<Vec<IpAddr>, String> {
    let mut out = Vec::new();
    for (i, entry) in raw.split(',').enumerate() {
        let entry = entry.trim();
        if entry.is_empty() {
            return Err(format!("entry {} of {raw:?} is empty", i + 1));
        }
        let bare = entry
            .strip_prefix('[')
            .and_then(|e| e.strip_suffix(']'))
            .unwrap_or(entry);
        match bare.parse::<IpAddr>() {
            Ok(ip) => {
                check_node_ip(ip)?;
                out.push(ip);
            }
            Err(_) if check_hostname(entry).is_ok() && !looks_numeric(entry) => {
                return Err(format!(
                    "{entry:?} is a DNS name; talstrap dials nodes by address, so put the node's IP here \
                     (e.g. ipAddress: \"10.0.0.11\")"
                ));
            }
            Err(_) => return Err(format!("{entry:?} is not an IP address")),
        }
    }
    Ok(out)
}

/// An address a node can have: not "any" (`0.0.0.0`, `::`), not the
/// broadcast address, not multicast. Dialling one of those reaches no node
/// (or, for `0.0.0.0`, this machine).
pub(crate) fn check_node_ip(ip: IpAddr) -> Result<(), String> {
    let why = match ip {
        _ if ip.is_unspecified() => "the unspecified (\"any\") address",
        IpAddr::V4(v4) if v4.is_broadcast() => "the broadcast address",
        _ if ip.is_multicast() => "a multicast address",
        _ => return Ok(()),
    };
    Err(format!("{ip} is {why}, not the address of a node"))
}

/// `10.0.0.300` is a broken IP, not a DNS name.
fn looks_numeric(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_digit() || c == '.')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn addresses_no_node_can_have_are_refused() {
        for bad in [
            "0.0.0.0",
            "255.255.255.255",
            "::",
            "224.0.0.1",
            "ff02::1",
            "127.0.0.1,0.0.0.0",
        ] {
            let err = parse_ip_list(bad).unwrap_err();
            assert!(err.contains("not the address of a node"), "{bad}: {err}");
        }
        for ok in [
            "127.0.0.255",
            "127.0.0.1",
            "fd00::1",
            "[fd00::2]",
            "127.1.1.0",
        ] {
            assert!(parse_ip_list(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn hostnames() {
        for ok in [
            "cp1",
            "main-k8s-1.zinn.tech",
            "delta.bjw-s.casa",
            "a",
            "K8S-0",
        ] {
            assert!(check_hostname(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "a..b",
            "a_b",
            "a b",
            ".a",
            "a.",
            &"x".repeat(64),
        ] {
            assert!(check_hostname(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn endpoints() {
        let e = check_endpoint("https://10.0.0.10:6443").unwrap();
        assert_eq!(e.host, "10.0.0.10");
        assert_eq!(e.port, Some(6443));
        let e = check_endpoint("https://k8s.example.com").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("k8s.example.com", None));
        let e = check_endpoint("https://[fd00::10]:6443/").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("fd00::10", Some(6443)));

        let cases = [
            ("http://10.0.0.10:6443", "scheme"),
            ("10.0.0.10:6443", "not a URL"),
            ("https://", "no host"),
            ("https://:6443", "no host"),
            ("https://10.0.0.10:0", "port"),
            ("https://10.0.0.10:99999", "port"),
            ("https://fd00::10:6443", "brackets"),
            ("https://user@h:6443", "user"),
            ("https://bad_host:6443", "bad host"),
            ("https://[fd00::10", "unclosed"),
            ("https://10.0.0.300:6443", "bad host"),
        ];
        for (url, want) in cases {
            let err = check_endpoint(url).unwrap_err();
            assert!(err.contains(want), "{url}: {err}");
        }
    }

    #[test]
    fn ip_lists() {
        let ips = parse_ip_list("10.0.0.1, 10.0.0.2 ,fd00::1").unwrap();
        assert_eq!(ips.len(), 3);
        assert_eq!(ips[2], "fd00::1".parse::<IpAddr>().unwrap());
        assert_eq!(
            parse_ip_list("[fd00::2]").unwrap()[0],
            "fd00::2".parse::<IpAddr>().unwrap()
        );
        assert!(parse_ip_list("node1.lan").unwrap_err().contains("DNS name"));
        assert!(
            parse_ip_list("10.0.0.300")
                .unwrap_err()
                .contains("not an IP address")
        );
        assert!(parse_ip_list("10.0.0.1,").unwrap_err().contains("entry 2"));
        assert!(parse_ip_list("").unwrap_err().contains("empty"));
    }
}
