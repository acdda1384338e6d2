//! The whole CLI flow on each Talos release the simulator models and on a
//! mixed fleet; v1.14 UnattendedInstallConfig selectors in preflight;
//! install disks given as /dev/disk/by-id links; `demo --talos-version`.

use std::net::IpAddr;

use serde_json::Value;
use talstrap::sim::{Fleet, FleetSpec, InstallTarget, Scenario};

use crate::support::*;

async fn versioned(
    cps: usize,
    workers: usize,
    version: &str,
    scenario: &str,
    tweak: impl FnOnce(&mut FleetSpec),
) -> Cluster {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut spec = FleetSpec::new(cps, workers, tmp.path().join("cluster"));
    spec.time_scale = 0.02;
    spec.port = 0;
    spec.talos_version = version.to_string();
    spec.scenario = Scenario::from_yaml(scenario, "test scenario").expect("scenario");
    tweak(&mut spec);
    let fleet = Fleet::start(spec).await.expect("fleet start");
    Cluster { fleet, tmp }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// Every message a node's report entry carries, for "says X" assertions.
fn all_text(node: &Value) -> String {
    let mut parts = vec![
        text(&node["summary"]),
        text(&node["error"]["message"]),
        text(&node["hint"]),
    ];
    for w in node["warnings"].as_array().into_iter().flatten() {
        parts.push(text(w));
    }
    parts.join("\n")
}

async fn full_flow(c: &Cluster, hosts: &[&str]) {
    let pre = c.json("preflight", &[]).await;
    assert_eq!(pre.code, 0, "preflight:\n{}", pre.dump());
    for h in hosts {
        let want = c.fleet.talos_version(h).unwrap();
        assert_eq!(
            pre.node(h)["facts"]["version"],
            want.as_str(),
            "{}",
            pre.dump()
        );
    }
    let apply = c.json("apply", &["--wait"]).await;
    assert_eq!(apply.code, 0, "apply --wait:\n{}", apply.dump());
    let boot = c.json("bootstrap", &["--wait-members"]).await;
    assert_eq!(boot.code, 0, "bootstrap:\n{}", boot.dump());
    let verify = c.json("verify", &[]).await;
    assert_eq!(verify.code, 0, "verify:\n{}", verify.dump());
    assert_eq!(c.fleet.etcd_clusters().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_apply_bootstrap_verify_on_every_version() {
    for version in ["v1.12.11", "v1.13.9", "v1.14.0-rc.1"] {
        let c = versioned(2, 1, version, "", |_| {}).await;
        full_flow(&c, &["cp1", "cp2", "w1"]).await;
        if version.starts_with("v1.14") {
            // The v1.14 files install through UnattendedInstallConfig.
            let cfg = std::fs::read_to_string(c.fleet.paths().node_config("cp1").unwrap()).unwrap();
            assert!(cfg.contains("kind: UnattendedInstallConfig"), "{cfg}");
            assert!(!cfg.contains("install:"), "{cfg}");
        }
        for h in ["cp1", "cp2", "w1"] {
            let ip: IpAddr = c.ip(h).parse().unwrap();
            let snap = c.fleet.snapshot(ip);
            assert_eq!(
                snap.installed_disk.as_deref(),
                Some("/dev/nvme0n1"),
                "{version} {h}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_apply_bootstrap_verify_on_a_mixed_fleet() {
    // Mid-upgrade: v1.13-shaped files, nodes on all three releases.
    let c = versioned(
        2,
        1,
        "v1.13.9",
        "nodes: { cp2: { talos_version: '1.14' }, w1: { talos_version: '1.12' } }",
        |_| {},
    )
    .await;
    full_flow(&c, &["cp1", "cp2", "w1"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unattended_install_selectors_are_checked_before_anything_is_sent() {
    let cdrom = "disks:\n  w2:\n    - { dev_path: /dev/sr0, size: 700MB, transport: sata, cdrom: true, readonly: true }\n    - { dev_path: /dev/vda, size: 20GB, transport: virtio }\n";
    let c = versioned(2, 2, "v1.14.0-rc.1", cdrom, |spec| {
        let cel = |e: &str| InstallTarget::Cel(e.to_string());
        spec.install
            .insert("cp1".into(), cel(r#"disk.transport == "nvme""#));
        spec.install
            .insert("cp2".into(), cel("disk.size >= 100u * GB"));
        spec.install
            .insert("w1".into(), cel("disk.size > 100u * TB"));
        spec.install.insert("w2".into(), cel("disk.size < 1u * GB"));
    })
    .await;
    let pre = c.json("preflight", &[]).await;
    // A node failed (its selector matches nothing): exit 1.
    assert_eq!(pre.code, 1, "{}", pre.dump());
    let one = pre.node("cp1");
    assert_eq!(one["status"], "ok", "{}", pre.dump());
    assert_eq!(one["facts"]["install_disk"], "/dev/nvme0n1");
    let several = pre.node("cp2");
    assert_eq!(several["status"], "warning", "{}", pre.dump());
    let w = all_text(&several);
    assert!(
        w.contains("matches 2 disks") && w.contains("/dev/sda"),
        "{w}"
    );
    let none = pre.node("w1");
    assert_eq!(none["status"], "failed", "{}", pre.dump());
    let e = all_text(&none);
    assert!(
        e.contains("disk.size > 100u * TB") && e.contains("matches no disk"),
        "{e}"
    );
    assert!(
        e.contains("/dev/nvme0n1") && e.contains("/dev/sda"),
        "lists the disks: {e}"
    );
    let cd = pre.node("w2");
    assert_eq!(cd["status"], "warning", "{}", pre.dump());
    assert!(all_text(&cd).contains("CD-ROM"), "{}", all_text(&cd));
    for h in ["cp1", "cp2", "w1", "w2"] {
        let ip: IpAddr = c.ip(h).parse().unwrap();
        assert_eq!(c.fleet.stats(ip).calls("ApplyConfiguration"), 0, "{h}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn machine_install_together_with_unattended_install_is_an_input_error() {
    let c = versioned(1, 0, "v1.14.0-rc.1", "", |_| {}).await;
    let path = c.fleet.paths().node_config("cp1").unwrap().to_path_buf();
    let cfg = std::fs::read_to_string(&path).unwrap();
    let both = cfg.replacen(
        "machine:\n",
        "machine:\n  install:\n    disk: /dev/sda\n",
        1,
    );
    assert_ne!(both, cfg);
    std::fs::write(&path, both).unwrap();
    let pre = c.json("preflight", &[]).await;
    assert_eq!(pre.code, 2, "{}", pre.dump());
    let all = format!("{}{}", pre.stdout, pre.stderr);
    assert!(
        all.contains("machine.install") && all.contains("UnattendedInstallConfig"),
        "{all}"
    );
    let ip: IpAddr = c.ip("cp1").parse().unwrap();
    assert_eq!(c.fleet.stats(ip).connections, 0, "nothing contacted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_id_install_disks_go_through_preflight_and_apply() {
    let link = "/dev/disk/by-id/nvme-Simulated_NVMe_SSD_SIMNVME0001";
    for version in ["v1.12.11", "v1.14.0-rc.1"] {
        let c = versioned(1, 0, version, "", |spec| {
            spec.install
                .insert("cp1".into(), InstallTarget::Disk(link.into()));
        })
        .await;
        let pre = c.json("preflight", &[]).await;
        assert_eq!(pre.code, 0, "{version}: {}", pre.dump());
        let chosen = text(&pre.node("cp1")["facts"]["install_disk"]);
        assert!(chosen.contains("/dev/nvme0n1"), "{version}: {chosen}");
        if version.starts_with("v1.12") {
            assert!(chosen.contains(link), "names the link too: {chosen}");
        }
        let apply = c.json("apply", &["--wait"]).await;
        assert_eq!(apply.code, 0, "{version}: {}", apply.dump());
        let ip: IpAddr = c.ip("cp1").parse().unwrap();
        assert_eq!(
            c.fleet.snapshot(ip).installed_disk.as_deref(),
            Some("/dev/nvme0n1")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v1_14_config_is_refused_for_a_v1_13_node_in_preflight() {
    let c = versioned(
        2,
        0,
        "v1.14.0-rc.1",
        "nodes: { cp2: { talos_version: '1.13' } }",
        |_| {},
    )
    .await;
    let pre = c.json("preflight", &[]).await;
    assert_eq!(pre.code, 1, "{}", pre.dump());
    assert_eq!(pre.node("cp1")["status"], "ok");
    let e = all_text(&pre.node("cp2"));
    assert!(
        e.contains("v1.13.9") && e.contains("UnattendedInstallConfig (v1.14+)"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_exits_zero_on_every_version() {
    for v in ["1.12", "1.13", "1.14"] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("demo");
        let run = run_bin(
            &[
                "demo",
                "--talos-version",
                v,
                "--time-scale",
                "0.02",
                "--control-planes",
                "1",
                "--workers",
                "1",
                "--dir",
                &dir.display().to_string(),
            ],
            &[],
            Some(tmp.path()),
        )
        .await;
        assert_eq!(run.code, 0, "demo {v}:\n{}\n{}", run.stdout, run.stderr);
    }
    let bad = run_bin(&["demo", "--talos-version", "1.11"], &[], None).await;
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("1.12, 1.13, 1.14"), "{}", bad.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_only_calls_in_v1_13_maintenance_are_not_trust_failures() {
    use talstrap::talos::tls::maintenance_config;
    use talstrap::talos::{NodeClient, Timeouts};
    for version in ["v1.12.11", "v1.13.9"] {
        let c = versioned(1, 0, version, "", |_| {}).await;
        let addr = std::net::SocketAddr::new(c.ip("cp1").parse().unwrap(), c.fleet.port());
        let t = Timeouts {
            connect: std::time::Duration::from_secs(2),
            tls: std::time::Duration::from_secs(2),
            rpc: std::time::Duration::from_secs(5),
        };
        let client = NodeClient::connect_maintenance(addr, maintenance_config(&[]), &t)
            .await
            .unwrap();
        // v1.12 answers Unimplemented, v1.13+ PermissionDenied for the
        // reader role: both mean "not in maintenance mode", never "distrust".
        let e = client.reboot().await.unwrap_err();
        assert!(e.unimplemented(), "{version}: {e:?}");
        assert_eq!(e.trust_kind(), None, "{version}: {e:?}");
        assert_ne!(e.class(), talstrap::talos::ErrorClass::Trust, "{version}");
        // Reads work on both; Version is the v1.13+ extra.
        assert!(client.talos_version().await.unwrap().is_some());
        assert_eq!(
            client.version().await.is_ok(),
            version != "v1.12.11",
            "{version}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v1alpha1_hostname_next_to_a_hostname_document_is_an_input_error() {
    for version in ["v1.12.11", "v1.13.9", "v1.14.0-rc.1"] {
        let c = versioned(1, 0, version, "", |_| {}).await;
        let path = c.fleet.paths().node_config("cp1").unwrap().to_path_buf();
        let cfg = std::fs::read_to_string(&path).unwrap();
        let both = cfg.replacen("  network: {}\n", "  network:\n    hostname: cp1\n", 1);
        assert_ne!(both, cfg, "{version}");
        std::fs::write(&path, both).unwrap();
        let pre = c.json("preflight", &[]).await;
        assert_eq!(pre.code, 2, "{version}: {}", pre.dump());
        let all = format!("{}{}", pre.stdout, pre.stderr);
        assert!(
            all.contains(&path.display().to_string())
                && all.contains("machine.network.hostname")
                && all.contains("static hostname is already set in v1alpha1 config"),
            "{version}: {all}"
        );
        let ip: IpAddr = c.ip("cp1").parse().unwrap();
        assert_eq!(c.fleet.stats(ip).connections, 0, "nothing contacted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_says_when_the_unattended_install_waits_forever_or_failed() {
    // cp1's selector matches none of its disks (apply does not check it:
    // Talos takes the config and waits); cp2's installer fails. (Control
    // planes: a worker's apid would wait for a control plane's trustd,
    // which waits for its install.)
    let expr = "disk.size > 100u * TB";
    let c = versioned(
        2,
        0,
        "v1.14.0-rc.1",
        "nodes: { cp2: { install_fails: true } }",
        |spec| {
            spec.install
                .insert("cp1".into(), InstallTarget::Cel(expr.to_string()));
        },
    )
    .await;
    let apply = c.json("apply", &["--wait", "--stuck-after", "60s"]).await;
    assert_eq!(apply.code, 1, "{}", apply.dump());
    let cp = all_text(&apply.node("cp1"));
    assert!(
        cp.contains("no disk matched the selector") && cp.contains(expr) && cp.contains("forever"),
        "{cp}"
    );
    assert!(
        cp.contains("preflight"),
        "the hint names the way to see the disks: {cp}"
    );
    let w = all_text(&apply.node("cp2"));
    assert!(
        w.contains("unattended install failed")
            && w.contains("task \"upgrade\" failed: exit code 1"),
        "{w}"
    );
    assert_eq!(
        apply.node("cp1")["error"]["kind"],
        "stuck",
        "{}",
        apply.dump()
    );
    // verify alone says the same, long before --stuck-after.
    let verify = c.json("verify", &["--stuck-after", "60s"]).await;
    assert_eq!(verify.code, 1, "{}", verify.dump());
    let cp = all_text(&verify.node("cp1"));
    assert!(cp.contains(expr) && cp.contains("no disk matched"), "{cp}");
    assert!(
        all_text(&verify.node("cp2")).contains("exit code 1"),
        "{}",
        verify.dump()
    );
}

/// Adds `machine.env` (read only at boot) to a node's config file.
fn add_env(c: &Cluster, host: &str, value: &str) {
    let path = c.fleet.paths().node_config(host).unwrap().to_path_buf();
    let cfg = std::fs::read_to_string(&path).unwrap();
    let changed = cfg.replacen(
        "machine:\n",
        &format!("machine:\n  env:\n    TALSTRAP_TEST: \"{value}\"\n"),
        1,
    );
    assert_ne!(changed, cfg);
    std::fs::write(&path, changed).unwrap();
}

async fn running_cluster(version: &str) -> Cluster {
    let c = versioned(
        1,
        1,
        version,
        "nodes: { cp1: { already_bootstrapped: true }, w1: { configured: true } }",
        |_| {},
    )
    .await;
    for h in ["cp1", "w1"] {
        let ip: IpAddr = c.ip(h).parse().unwrap();
        c.fleet
            .wait_for(ip, std::time::Duration::from_secs(30), |s| {
                s.stage == talstrap::sim::Stage::Running && s.ready
            })
            .await
            .unwrap_or_else(|| panic!("{version}: {h} never became ready"));
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_mode_reboot_on_a_configured_node_per_version() {
    for version in ["v1.12.11", "v1.13.9", "v1.14.0-rc.1"] {
        let v114 = version.starts_with("v1.14");
        let c = running_cluster(version).await;
        let before: Vec<String> = ["cp1", "w1"]
            .iter()
            .map(|h| c.fleet.snapshot(c.ip(h).parse().unwrap()).boot_id)
            .collect();
        for h in ["cp1", "w1"] {
            add_env(&c, h, "1");
        }
        let apply = c.json("apply", &["--mode", "reboot", "--wait"]).await;
        assert_eq!(apply.code, 0, "{version}: {}", apply.dump());
        for (h, boot_before) in ["cp1", "w1"].iter().zip(&before) {
            let ip: IpAddr = c.ip(h).parse().unwrap();
            let stats = c.fleet.stats(ip);
            let node = apply.node(h);
            // The node really rebooted: a new boot id, one reboot.
            let snap = c.fleet.snapshot(ip);
            assert_ne!(&snap.boot_id, boot_before, "{version} {h}: same boot");
            assert_eq!(node["facts"]["boot_id_before"], boot_before.as_str());
            assert_eq!(stats.reboots, 1, "{version} {h}");
            let summary = text(&node["summary"]);
            if v114 {
                // Never REBOOT (nor an unset mode, which is REBOOT) on the wire.
                assert_eq!(
                    stats.applies_with_mode("REBOOT"),
                    0,
                    "{version} {h}: {stats:?}"
                );
                assert_eq!(
                    stats.apply_modes.keys().collect::<Vec<_>>(),
                    ["NO_REBOOT"],
                    "{version} {h}"
                );
                assert_eq!(stats.calls("Reboot"), 1, "{version} {h}");
                assert_eq!(node["facts"]["reboot_via"], "reboot_call", "{node:#}");
                assert!(summary.contains("Reboot call"), "{version} {h}: {summary}");
            } else {
                assert_eq!(
                    stats.applies_with_mode("REBOOT"),
                    1,
                    "{version} {h}: {stats:?}"
                );
                assert_eq!(stats.calls("Reboot"), 0, "{version} {h}");
                assert_eq!(node["facts"]["reboot_via"], "apply", "{node:#}");
            }
            assert!(summary.contains("rebooted"), "{version} {h}: {summary}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_on_v1_14_never_reboots_and_says_what_waits_for_the_next_reboot() {
    let c = running_cluster("v1.14.0-rc.1").await;
    let ip: IpAddr = c.ip("w1").parse().unwrap();
    let before = c.fleet.snapshot(ip).boot_id;
    // machine.env is read only at boot (v1.13.9's CanApplyImmediate list).
    add_env(&c, "w1", "1");
    let apply = c.json("apply", &["-n", "w1", "--wait"]).await;
    assert_eq!(apply.code, 0, "{}", apply.dump());
    let stats = c.fleet.stats(ip);
    assert_eq!(stats.reboots, 0, "AUTO on v1.14 never reboots");
    assert_eq!(stats.calls("Reboot"), 0);
    assert_eq!(stats.applies_with_mode("AUTO"), 1, "{stats:?}");
    assert_eq!(c.fleet.snapshot(ip).boot_id, before, "same boot");
    let node = apply.node("w1");
    assert_eq!(node["status"], "warning", "{node:#}");
    assert_eq!(node["facts"]["applied_mode"], "no-reboot", "{node:#}");
    let note = &node["facts"]["next_reboot"];
    assert_eq!(
        note["settings"],
        serde_json::json!(["machine.env.TALSTRAP_TEST"]),
        "{node:#}"
    );
    let how = text(&note["reboot_with"]);
    assert!(how.contains("reboot") && how.contains(&c.ip("w1")), "{how}");
    let all = all_text(&node);
    assert!(
        all.contains("machine.env.TALSTRAP_TEST takes effect at the next reboot")
            && all.contains(&how),
        "{all}"
    );
    // A change Talos applies live carries no such note.
    let path = c.fleet.paths().node_config("w1").unwrap().to_path_buf();
    let cfg = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        cfg.replacen(
            "machine:\n",
            "machine:\n  nodeLabels:\n    talstrap: \"1\"\n",
            1,
        ),
    )
    .unwrap();
    let live = c.json("apply", &["-n", "w1"]).await;
    assert_eq!(live.code, 0, "{}", live.dump());
    assert_eq!(live.node("w1")["status"], "ok", "{}", live.dump());
    assert!(live.node("w1")["facts"].get("next_reboot").is_none());
}
