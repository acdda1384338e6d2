//! `talstrap discover` end to end over the fleet's loopback /24: exactly the
//! listening hosts are found and each is classified (maintenance, ours,
//! another CA, not Talos); `--skeleton` prints a usable `nodes:` block;
//! oversized ranges are refused before any packet is sent.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::support::*;

/// The fleet's /24, e.g. `127.12.34.0/24`.
fn subnet_of(c: &Cluster) -> String {
    let IpAddr::V4(ip) = c.fleet.ip("cp1").unwrap() else {
        panic!("IPv4 fleet expected")
    };
    let o = ip.octets();
    format!("{}.{}.{}.0/24", o[0], o[1], o[2])
}

/// An address in the fleet's /24 that no simulated node uses.
fn spare_ip(c: &Cluster, last: u8) -> IpAddr {
    let IpAddr::V4(ip) = c.fleet.ip("cp1").unwrap() else {
        panic!("IPv4 fleet expected")
    };
    let o = ip.octets();
    let spare = IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], last));
    assert!(c.fleet.nodes().iter().all(|n| n.ip != spare));
    spare
}

/// A TCP listener that is no TLS server: it greets like an SSH daemon and
/// hangs up. Dropped with the test.
async fn plain_listener(addr: SocketAddr) -> tokio::task::JoinHandle<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let _ = sock.write_all(b"SSH-2.0-NotTalos_1.0\r\n").await;
            let _ = sock.shutdown().await;
        }
    })
}

async fn discover(c: &Cluster, extra: &[&str]) -> Run {
    let port = c.fleet.port().to_string();
    let subnet = subnet_of(c);
    let mut args = vec![
        "discover",
        subnet.as_str(),
        "--port",
        port.as_str(),
        "--connect-timeout",
        "300ms",
    ];
    args.extend_from_slice(extra);
    c.run(&args).await
}

fn by_ip(report: &Value) -> BTreeMap<String, Value> {
    report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["ip"].as_str().unwrap().to_string(), n.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finds_exactly_the_nodes_and_classifies_each() {
    // cp1 and w1 in maintenance, cp2 configured by our CA, cp3 configured
    // with a certificate from another CA, cp4 running etcd (nobody joins it within the test), w2 dropping SYNs.
    let c = cluster(
        4,
        2,
        Some(
            "timing: { join: 1h }\nnodes: { cp2: { configured: true }, cp3: { configured: true, wrong_ca: true }, cp4: { already_bootstrapped: true }, w2: { unreachable: true } }",
        ),
    )
    .await;
    let stranger = SocketAddr::new(spare_ip(&c, 200), c.fleet.port());
    let _listener = plain_listener(stranger).await;
    let tc = c.talosconfig().display().to_string();

    let run = discover(&c, &["--talosconfig", &tc, "-o", "json"]).await;
    assert_eq!(run.code, 0, "{}", run.dump());
    let report = run.report();
    let nodes = by_ip(&report);
    let mut want: Vec<String> = ["cp1", "cp2", "cp3", "cp4", "w1"]
        .iter()
        .map(|h| c.ip(h))
        .collect();
    want.push(stranger.ip().to_string());
    want.sort();
    assert_eq!(
        nodes.keys().cloned().collect::<Vec<_>>(),
        want,
        "{}",
        run.dump()
    );
    let scan = &report["details"]["scan"];
    // A /24 without its network and broadcast addresses.
    assert_eq!(scan["scanned"], 254, "{}", run.dump());
    assert_eq!(scan["open"], 6, "{}", run.dump());
    // w2 drops SYNs: it times out within --connect-timeout and is not listed.
    assert_eq!(scan["timed_out"], 1, "{}", run.dump());
    assert_eq!(scan["connect_timeout_ms"], 300);
    assert_eq!(scan["port"], c.fleet.port());

    for h in ["cp1", "w1"] {
        let n = &nodes[&c.ip(h)];
        assert_eq!(n["facts"]["mode"], "maintenance", "{h}: {n}");
        assert_eq!(n["status"], "ok", "{h}: {n}");
        assert!(
            !n["facts"]["disks"].as_array().unwrap().is_empty(),
            "{h}: no disks: {n}"
        );
        assert!(n["facts"]["fingerprint"].as_str().is_some(), "{h}: {n}");
    }
    let ours = &nodes[&c.ip("cp2")];
    assert_eq!(ours["facts"]["mode"], "configured", "{ours}");
    assert_eq!(ours["facts"]["role"], "controlplane", "{ours}");
    assert_eq!(ours["facts"]["hostname"], "cp2", "{ours}");
    assert_eq!(ours["facts"]["etcd"], "not bootstrapped", "{ours}");
    assert!(ours["facts"]["boot_time"].as_u64().is_some(), "{ours}");
    let member = &nodes[&c.ip("cp4")];
    assert_eq!(member["facts"]["mode"], "configured", "{member}");
    assert_eq!(member["facts"]["etcd"], "member", "{member}");
    let foreign = &nodes[&c.ip("cp3")];
    assert_eq!(foreign["facts"]["mode"], "foreign-ca", "{foreign}");
    assert!(
        foreign["summary"].as_str().unwrap().contains("another CA"),
        "{foreign}"
    );
    // Nothing about the foreign node was read beyond its certificate.
    assert!(foreign["facts"].get("role").is_none(), "{foreign}");
    // Only the one-line disk descriptions travel in events and report.
    assert!(
        !run.stdout.contains("disk_facts"),
        "internal disk facts leaked into the output:\n{}",
        run.dump()
    );
    let other = &nodes[&stranger.ip().to_string()];
    assert_eq!(other["facts"]["mode"], "not-talos", "{other}");
    assert_eq!(other["status"], "skipped", "{other}");
    assert!(
        other["summary"].as_str().unwrap().contains("not Talos"),
        "{other}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_talosconfig_configured_nodes_are_reported_unverified() {
    let c = cluster(2, 0, Some("nodes: { cp2: { configured: true } }")).await;
    let run = discover(&c, &["-o", "json"]).await;
    assert_eq!(run.code, 0, "{}", run.dump());
    let nodes = by_ip(&run.report());
    assert_eq!(nodes.len(), 2, "{}", run.dump());
    assert_eq!(nodes[&c.ip("cp1")]["facts"]["mode"], "maintenance");
    let cp2 = &nodes[&c.ip("cp2")];
    assert_eq!(cp2["facts"]["mode"], "configured-unverified", "{cp2}");
    assert!(
        cp2["summary"].as_str().unwrap().contains("--talosconfig"),
        "{cp2}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skeleton_lists_the_maintenance_nodes_as_talconfig_yaml() {
    let c = cluster(2, 1, Some("nodes: { cp2: { configured: true } }")).await;
    let tc = c.talosconfig().display().to_string();

    // Human (plain) output: the skeleton is printed as YAML on stdout.
    let run = discover(&c, &["--talosconfig", &tc, "--skeleton"]).await;
    assert_eq!(run.code, 0, "{}", run.dump());
    let start = run
        .stdout
        .find("# Nodes found in maintenance mode")
        .unwrap_or_else(|| panic!("no skeleton:\n{}", run.dump()));
    let doc: yaml_serde::Value =
        yaml_serde::from_str(&run.stdout[start..]).expect("skeleton is YAML");
    let nodes = doc["nodes"].as_sequence().expect("nodes: list");
    let mut ips: Vec<String> = nodes
        .iter()
        .map(|n| n["ipAddress"].as_str().unwrap().to_string())
        .collect();
    ips.sort();
    let mut want = vec![c.ip("cp1"), c.ip("w1")];
    want.sort();
    assert_eq!(ips, want, "only maintenance nodes belong in the skeleton");
    for n in nodes {
        assert!(n["hostname"].as_str().is_some(), "{n:?}");
        assert_eq!(n["controlPlane"].as_bool(), Some(false), "{n:?}");
        // The default simulated disks include an NVMe drive with a transport.
        assert_eq!(n["installDisk"].as_str(), Some("/dev/nvme0n1"), "{n:?}");
    }

    // JSON output: the report stays the last line (the only one that is not
    // an event); the skeleton is its `details.skeleton`.
    let run = discover(&c, &["--talosconfig", &tc, "--skeleton", "-o", "json"]).await;
    assert_eq!(run.code, 0, "{}", run.dump());
    let report = run.report();
    assert_eq!(report["summary"]["total"], 3, "{}", run.dump());
    assert!(
        run.lines()
            .iter()
            .all(|l| l["type"] == "event" || l["type"] == "report")
    );
    let skeleton = report["details"]["skeleton"].as_str().unwrap_or_default();
    let doc: yaml_serde::Value = yaml_serde::from_str(skeleton).unwrap();
    assert_eq!(doc["nodes"].as_sequence().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slash_8_needs_allow_large_scan() {
    let c = cluster(1, 0, None).await;
    let before = c.fleet.total_connections();
    let port = c.fleet.port().to_string();
    let run = c
        .run(&["discover", "127.0.0.0/8", "--port", &port, "-o", "json"])
        .await;
    assert_eq!(run.code, 2, "{}", run.dump());
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(said.contains("--allow-large-scan"), "{said}");
    assert!(
        said.contains("127.0.0.0/8"),
        "the range is not named: {said}"
    );
    assert_eq!(c.fleet.total_connections(), before, "a node was contacted");
}
