//! A talconfig `nodes:` skeleton for the maintenance-mode hosts `discover`
//! found, ready to paste into `talconfig.yaml` and edit.
//!
//! Each entry gets the node's IP, its reported hostname (or a `node-<last
//! octet>` placeholder), `controlPlane: false` with a reminder to edit it,
//! and an `installDisk` guess. The guess follows the rules Talos applies to
//! every install-disk selector: the disk must have a transport and be neither
//! read-only nor a CD-ROM; among those the first by device path is taken and
//! the other disks are listed in a comment so the operator can choose.
//!
//! Everything here came off the network, so every value is emitted as a
//! safe YAML scalar and comments are stripped of control characters.

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::disksel::DiskFacts;

/// A host found in maintenance mode, with what phase 2 learnt about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MaintenanceHost {
    pub ip: IpAddr,
    /// Hostname the node reported, if any.
    pub hostname: Option<String>,
    pub disks: Vec<DiskFacts>,
}

/// Renders the `nodes:` block for `hosts`, sorted by IP (numerically).
pub(crate) fn render_nodes_skeleton(hosts: &[MaintenanceHost]) -> String {
    let mut out = String::new();
    out.push_str("# Nodes found in maintenance mode by talstrap discover.\n");
    out.push_str(
        "# Review every entry: hostnames, which nodes are control planes, install disks.\n",
    );
    if hosts.is_empty() {
        out.push_str("nodes: [] # no maintenance-mode node was found\n");
        return out;
    }
    out.push_str("nodes:\n");
    let mut sorted: Vec<&MaintenanceHost> = hosts.iter().collect();
    sorted.sort_by_key(|h| h.ip);
    for host in sorted {
        render_host(&mut out, host);
    }
    out
}

fn render_host(out: &mut String, host: &MaintenanceHost) {
    // Writing into a String cannot fail; the results are ignored on purpose.
    match host.hostname.as_deref().filter(|h| !h.trim().is_empty()) {
        Some(name) => {
            let _ = writeln!(out, "  - hostname: {}", yaml_scalar(name));
        }
        None => {
            let _ = writeln!(
                out,
                "  - hostname: {} # placeholder: the node reported no hostname",
                placeholder_name(host.ip)
            );
        }
    }
    let ip = match host.ip {
        // Dotted quads are always plain YAML strings; IPv6 may start with ':'.
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => yaml_quoted(&a.to_string()),
    };
    let _ = writeln!(out, "    ipAddress: {ip}");
    let _ = writeln!(
        out,
        "    controlPlane: false # edit: set true for control-plane nodes"
    );

    let mut disks: Vec<&DiskFacts> = host.disks.iter().collect();
    disks.sort_by(|a, b| a.dev_path.cmp(&b.dev_path));
    let chosen = disks.iter().position(|d| installable(d));
    let others: Vec<String> = disks
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != chosen)
        .map(|(_, d)| format!("{} ({})", comment_safe(&d.dev_path), describe(d)))
        .collect();
    match chosen {
        Some(i) => {
            let disk = disks[i];
            let mut comment = describe(disk);
            if !others.is_empty() {
                let _ = write!(comment, "; other disks: {}", others.join(", "));
            }
            let _ = writeln!(
                out,
                "    installDisk: {} # {comment}",
                yaml_scalar(&disk.dev_path)
            );
        }
        None if others.is_empty() => {
            let _ = writeln!(out, "    # installDisk: edit: the node reported no disks");
        }
        None => {
            let _ = writeln!(
                out,
                "    # installDisk: edit: no writable disk with a transport; disks: {}",
                others.join(", ")
            );
        }
    }
}

/// Talos's implicit install-disk conditions.
fn installable(d: &DiskFacts) -> bool {
    !d.transport.is_empty() && !d.readonly && !d.cdrom
}

/// `512 GB, nvme`, `cdrom`, `16 GB, usb, read-only`, `2.1 GB, no transport`.
fn describe(d: &DiskFacts) -> String {
    if d.cdrom {
        return "cdrom".to_string();
    }
    let mut parts = vec![human_size(d.size)];
    if d.transport.is_empty() {
        parts.push("no transport".to_string());
    } else {
        parts.push(comment_safe(&d.transport));
    }
    if d.readonly {
        parts.push("read-only".to_string());
    }
    parts.join(", ")
}

/// Decimal size as Talos prints it: `16 GB`, `1.0 TB`, `512 B`.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

/// `node-<last octet>` (IPv4) or `node-<last group in hex>` (IPv6).
fn placeholder_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => format!("node-{}", a.octets()[3]),
        IpAddr::V6(a) => format!("node-{:x}", a.segments()[7]),
    }
}

/// A plain scalar when that is unambiguous (starts with a letter or `/`,
/// only name-like characters, not a YAML boolean or null word), otherwise a
/// double-quoted one.
fn yaml_scalar(s: &str) -> String {
    const WORDS: [&str; 11] = [
        "true", "false", "yes", "no", "on", "off", "y", "n", "null", "nan", "inf",
    ];
    let plain = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '/')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/'))
        && !WORDS.contains(&s.to_ascii_lowercase().as_str());
    if plain { s.to_string() } else { yaml_quoted(s) }
}

/// A double-quoted scalar; JSON string syntax is valid YAML.
fn yaml_quoted(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// Text for a `#` comment: control characters (a newline would end the
/// comment and inject YAML) become `?`.
fn comment_safe(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn disk(path: &str, size: u64, transport: &str) -> DiskFacts {
        DiskFacts {
            dev_path: path.to_string(),
            size,
            transport: transport.to_string(),
            ..DiskFacts::default()
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn renders_hosts_sorted_with_disk_choice() {
        let cdrom = DiskFacts {
            cdrom: true,
            ..disk("/dev/sr0", 0, "ata")
        };
        let hosts = vec![
            MaintenanceHost {
                ip: ip("127.0.0.10"),
                hostname: Some("cp-b".into()),
                disks: vec![
                    disk("/dev/sdb", 1_000_204_886_016, "sata"),
                    disk("/dev/nvme0n1", 512_110_190_592, "nvme"),
                ],
            },
            MaintenanceHost {
                ip: ip("127.0.0.9"),
                hostname: None,
                disks: vec![
                    cdrom,
                    disk("/dev/loop0", 2_100_000_000, ""),
                    DiskFacts {
                        readonly: true,
                        ..disk("/dev/mmcblk0", 16_000_000_000, "mmc")
                    },
                    disk("/dev/vda", 10_737_418_240, "virtio"),
                ],
            },
        ];
        let text = render_nodes_skeleton(&hosts);
        let expected = "\
# Nodes found in maintenance mode by talstrap discover.
# Review every entry: hostnames, which nodes are control planes, install disks.
nodes:
  - hostname: node-9 # placeholder: the node reported no hostname
    ipAddress: 127.0.0.9
    controlPlane: false # edit: set true for control-plane nodes
    installDisk: /dev/vda # 11 GB, virtio; other disks: /dev/loop0 (2.1 GB, no transport), /dev/mmcblk0 (16 GB, mmc, read-only), /dev/sr0 (cdrom)
  - hostname: cp-b
    ipAddress: 127.0.0.10
    controlPlane: false # edit: set true for control-plane nodes
    installDisk: /dev/nvme0n1 # 512 GB, nvme; other disks: /dev/sdb (1.0 TB, sata)
";
        assert_eq!(text, expected);
    }

    #[test]
    fn no_usable_disk_and_no_hosts() {
        let hosts = vec![
            MaintenanceHost {
                ip: ip("127.0.0.3"),
                hostname: Some(String::new()),
                disks: vec![disk("/dev/loop0", 500, "")],
            },
            MaintenanceHost {
                ip: ip("::1"),
                hostname: None,
                disks: vec![],
            },
        ];
        let text = render_nodes_skeleton(&hosts);
        assert!(
            text.contains("  - hostname: node-3 # placeholder: the node reported no hostname\n")
        );
        assert!(text.contains(
            "    # installDisk: edit: no writable disk with a transport; disks: /dev/loop0 (500 B, no transport)\n"
        ));
        assert!(text.contains("  - hostname: node-1 # placeholder"));
        assert!(text.contains("    ipAddress: \"::1\"\n"));
        assert!(text.contains("    # installDisk: edit: the node reported no disks\n"));

        let empty = render_nodes_skeleton(&[]);
        assert!(empty.ends_with("nodes: [] # no maintenance-mode node was found\n"));
        let v: yaml_serde::Value = yaml_serde::from_str(&empty).unwrap();
        assert_eq!(v["nodes"].as_sequence().map(|s| s.len()), Some(0));
    }

    #[test]
    fn hostile_values_stay_inside_their_scalars() {
        let hosts = vec![MaintenanceHost {
            ip: ip("fd00::a1b2"),
            hostname: Some("evil\ncontrolPlane: true".into()),
            disks: vec![
                disk("/dev/sda", 1_000_000_000, "sata"),
                disk("/dev/sdb\n    controlPlane: true", 1_000_000_000, "sata"),
            ],
        }];
        let text = render_nodes_skeleton(&hosts);
        let v: yaml_serde::Value = yaml_serde::from_str(&text).unwrap();
        let node = &v["nodes"][0];
        assert_eq!(node["hostname"].as_str(), Some("evil\ncontrolPlane: true"));
        assert_eq!(node["ipAddress"].as_str(), Some("fd00::a1b2"));
        assert_eq!(node["controlPlane"].as_bool(), Some(false));
        assert_eq!(node["installDisk"].as_str(), Some("/dev/sda"));
        assert_eq!(node.as_mapping().map(|m| m.len()), Some(4));
    }

    #[test]
    fn scalars_and_sizes() {
        assert_eq!(yaml_scalar("node-1.example.com"), "node-1.example.com");
        assert_eq!(yaml_scalar("/dev/sda"), "/dev/sda");
        assert_eq!(yaml_scalar("true"), "\"true\"");
        assert_eq!(yaml_scalar("No"), "\"No\"");
        assert_eq!(yaml_scalar("1e3"), "\"1e3\"");
        assert_eq!(yaml_scalar("a b"), "\"a b\"");
        assert_eq!(placeholder_name(ip("fd00::a1b2")), "node-a1b2");
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(1_000), "1.0 kB");
        assert_eq!(human_size(16_000_000_000), "16 GB");
        assert_eq!(human_size(u64::MAX), "18 EB");
    }
}
