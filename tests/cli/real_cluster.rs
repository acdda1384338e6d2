//! Issue 12's done-when, in one run: a talhelper cluster written the way
//! homelab and platform clusters are (FQDN hostnames, install disks given as
//! `/dev/disk/by-id` links, the endpoint a VIP of the control planes with
//! discovery off, so workers wait on trustd until bootstrap) goes through
//! preflight → apply --wait → bootstrap --wait-members → verify, each
//! exiting 0 with the right result per node.

use std::net::IpAddr;

use serde_json::Value;
use talstrap::sim::{Fleet, FleetSpec, InstallTarget, NodeMode, Scenario};

use crate::support::*;

const LINK: &str = "/dev/disk/by-id/nvme-Simulated_NVMe_SSD_SIMNVME0001";
const DEVICE: &str = "/dev/nvme0n1";
const CPS: [&str; 3] = ["cp1", "cp2", "cp3"];
const WORKERS: [&str; 2] = ["w1", "w2"];

fn fqdn(h: &str) -> String {
    format!("{h}.lab.example.com")
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// Give every node an FQDN hostname in talconfig.yaml and in its machine
/// config, and name the config files after it (talhelper's default
/// `<clusterName>-<hostname>.yaml`), as `talhelper genconfig` would.
fn use_fqdn_hostnames(c: &Cluster) {
    let all: Vec<&str> = CPS.iter().chain(&WORKERS).copied().collect();
    let talconfig = std::fs::read_to_string(c.talconfig()).unwrap();
    let mut rewritten = talconfig.clone();
    for h in &all {
        rewritten = rewritten.replace(
            &format!("hostname: {h}\n"),
            &format!("hostname: {}\n", fqdn(h)),
        );
    }
    assert_ne!(rewritten, talconfig, "no hostname lines:\n{talconfig}");
    std::fs::write(c.talconfig(), rewritten).unwrap();
    let config_dir = c.dir().join("clusterconfig");
    for entry in std::fs::read_dir(&config_dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for h in &all {
            if let Some(prefix) = name.strip_suffix(&format!("-{h}.yaml")) {
                let config = std::fs::read_to_string(&path).unwrap();
                let config = config.replace(
                    &format!("hostname: {h}\n"),
                    &format!("hostname: {}\n", fqdn(h)),
                );
                assert!(config.contains(&fqdn(h)), "no hostname in {name}");
                std::fs::write(
                    config_dir.join(format!("{prefix}-{}.yaml", fqdn(h))),
                    config,
                )
                .unwrap();
                std::fs::remove_file(&path).unwrap();
            }
        }
    }
}

fn ip(c: &Cluster, h: &str) -> IpAddr {
    c.fleet.ip(h).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fqdn_by_id_vip_cluster_goes_preflight_apply_bootstrap_verify() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut spec = FleetSpec::new(3, 2, tmp.path().join("cluster"));
    spec.time_scale = 0.02;
    spec.port = 0;
    spec.scenario = Scenario::from_yaml(
        "cluster: { discovery: false, vip_endpoint: true }",
        "test scenario",
    )
    .unwrap();
    for h in CPS.iter().chain(&WORKERS) {
        spec.install
            .insert(h.to_string(), InstallTarget::Disk(LINK.into()));
    }
    let c = Cluster {
        fleet: Fleet::start(spec).await.expect("fleet start"),
        tmp,
    };
    use_fqdn_hostnames(&c);
    let every = || CPS.iter().chain(&WORKERS).map(|h| fqdn(h));

    // preflight: every node ok, the by-id link resolved to its device.
    let pre = c.json("preflight", &[]).await;
    assert_eq!(pre.code, 0, "{}", pre.dump());
    for n in every() {
        let node = pre.node(&n);
        assert_eq!(node["status"], "ok", "{n}: {}", pre.dump());
        let disk = text(&node["facts"]["install_disk"]);
        assert!(disk.contains(LINK) && disk.contains(DEVICE), "{n}: {disk}");
    }

    // apply --wait: control planes ready for bootstrap; workers waiting for
    // the control plane (their apid waits for trustd behind the VIP).
    let apply = c.json("apply", &["--wait", "--stuck-after", "3s"]).await;
    assert_eq!(apply.code, 0, "{}", apply.dump());
    for n in every() {
        assert_eq!(apply.node(&n)["status"], "ok", "{n}: {}", apply.dump());
    }
    for h in CPS {
        let s = text(&apply.node(&fqdn(h))["summary"]);
        assert!(s.contains("ready for bootstrap"), "{h}: {s}");
    }
    for h in WORKERS {
        let s = text(&apply.node(&fqdn(h))["summary"]);
        assert!(
            s.contains("waiting for the control plane") && s.contains("VIP"),
            "{h}: {s}"
        );
        assert_eq!(
            c.fleet.snapshot(ip(&c, h)).mode,
            NodeMode::Down,
            "{h} apid closed"
        );
    }

    // bootstrap --wait-members: members carry the short names.
    let boot = c.json("bootstrap", &["--wait-members"]).await;
    assert_eq!(boot.code, 0, "{}", boot.dump());
    let target = boot.node(&fqdn("cp1"));
    assert_eq!(target["status"], "ok", "{}", boot.dump());
    let mut members: Vec<String> =
        serde_json::from_value(target["facts"]["etcd_members"].clone()).unwrap();
    members.sort();
    assert_eq!(members, CPS, "{}", boot.dump());

    // verify: every node running and ready, etcd the inventory's three.
    let verify = c.json("verify", &[]).await;
    assert_eq!(verify.code, 0, "{}", verify.dump());
    for n in every() {
        let node = verify.node(&n);
        assert_eq!(node["status"], "ok", "{n}: {}", verify.dump());
        assert_eq!(text(&node["summary"]), "running, ready", "{n}");
    }
    let etcd = &verify.report()["details"]["etcd"];
    assert_eq!(etcd["healthy"], true, "{etcd:#}");
    assert_eq!(etcd["missing"], serde_json::json!([]), "{etcd:#}");
    assert_eq!(etcd["unknown_members"], serde_json::json!([]), "{etcd:#}");

    // The simulator's own view: one etcd cluster, every node installed on the device.
    let clusters = c.fleet.etcd_clusters();
    assert_eq!(clusters.len(), 1, "{clusters:?}");
    for h in CPS.iter().chain(&WORKERS) {
        assert_eq!(
            c.fleet.snapshot(ip(&c, h)).installed_disk.as_deref(),
            Some(DEVICE),
            "{h}"
        );
    }
}
