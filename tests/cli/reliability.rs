//! Issue 5, the failure matrix: every fault the simulator can inject, run
//! end to end through the real binary, and what the operator sees (exit
//! code, node status, message). RELIABILITY.md lists these tests by name.
//!
//! Each test keeps the simulated clock fast (time scale 0.02) and the
//! retry/timeout knobs small; timeouts in here only guard against hangs.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use talstrap::disksel::DiskSelector;
use talstrap::sim::{EtcdService, Fleet, FleetSpec, InstallTarget, Scenario};

use crate::support::*;

/// A cluster whose spec a test adjusts (install targets, ...).
async fn cluster_with(
    cps: usize,
    workers: usize,
    scenario: &str,
    adjust: impl FnOnce(&mut FleetSpec),
) -> Cluster {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut spec = FleetSpec::new(cps, workers, tmp.path().join("cluster"));
    spec.time_scale = 0.02;
    spec.port = 0;
    spec.scenario = Scenario::from_yaml(scenario, "test scenario").expect("scenario");
    adjust(&mut spec);
    let fleet = Fleet::start(spec).await.expect("fleet start");
    Cluster { fleet, tmp }
}

fn ip_of(c: &Cluster, host: &str) -> IpAddr {
    c.fleet.ip(host).expect("node")
}

fn status(run: &Run, node: &str) -> String {
    run.node(node)["status"].as_str().unwrap_or("").to_string()
}

fn error_message(run: &Run, node: &str) -> String {
    run.node(node)["error"]["message"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn text_of(v: &Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

// ---------------------------------------------------------------- case 1

/// A node that silently drops SYNs: preflight fails it (it never times out
/// the whole run), the other nodes are all checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_node_fails_preflight_others_complete() {
    let c = cluster(2, 1, Some("nodes: { cp2: { unreachable: true } }")).await;
    let run = run_with(
        &c,
        &json_args(&c, "preflight", &["--timeout", "60s"]),
        &[
            ("TALSTRAP_ATTEMPTS", "2"),
            ("TALSTRAP_CONNECT_TIMEOUT", "300ms"),
        ],
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.dump());
    // Failed by its own bounded retries, not by the command deadline.
    assert_eq!(status(&run, "cp2"), "failed", "{}", run.dump());
    let msg = error_message(&run, "cp2");
    assert!(msg.contains("unreachable"), "{msg}");
    assert!(msg.contains("gave up after 2 attempts"), "{msg}");
    assert!(
        text_of(&run.node("cp2")["hint"]).contains("powered on"),
        "{}",
        run.dump()
    );
    for n in ["cp1", "w1"] {
        assert_eq!(status(&run, n), "ok", "{n}: {}", run.dump());
    }
    assert_eq!(run.report()["summary"]["ok"], 2);
}

/// Same node during `apply --wait`: the others are applied and verified
/// ready for bootstrap; the silent one fails at its probe and is never sent
/// a config.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_node_fails_apply_others_complete() {
    let c = cluster(2, 1, Some("nodes: { cp2: { unreachable: true } }")).await;
    let run = run_with(
        &c,
        &json_args(
            &c,
            "apply",
            &["--wait", "--timeout", "60s", "--stuck-after", "20s"],
        ),
        &[
            ("TALSTRAP_ATTEMPTS", "2"),
            ("TALSTRAP_CONNECT_TIMEOUT", "300ms"),
        ],
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.dump());
    assert_eq!(status(&run, "cp2"), "failed", "{}", run.dump());
    assert_eq!(run.node("cp2")["steps"][0]["name"], "probe");
    assert!(error_message(&run, "cp2").contains("unreachable"));
    let cp1 = text_of(&run.node("cp1")["summary"]);
    assert!(cp1.contains("ready for bootstrap"), "{}", run.dump());
    assert_eq!(status(&run, "w1"), "ok", "{}", run.dump());
    assert_eq!(c.fleet.stats(ip_of(&c, "cp2")).applies_accepted, 0);
    assert_eq!(c.fleet.stats(ip_of(&c, "cp1")).applies_accepted, 1);
}

// ---------------------------------------------------------------- case 2

/// ApplyConfiguration answers Unavailable three times, then works: apply
/// retries with growing delays, reports the attempts, and sends exactly one
/// config that the node took.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_unavailable_on_apply_is_retried_with_growing_delays() {
    let c = cluster(
        1,
        0,
        Some("nodes: { cp1: { flaky: { method: ApplyConfiguration, count: 3 } } }"),
    )
    .await;
    let run = c.json("apply", &[]).await;
    assert_eq!(run.code, 0, "{}", run.dump());
    let node = run.node("cp1");
    assert_eq!(node["status"], "ok");
    assert_eq!(node["attempts"], 4, "{}", run.dump());
    let apply_step = node["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "apply")
        .cloned()
        .unwrap();
    assert_eq!(apply_step["attempts"], 4);
    let retries: Vec<Value> = run
        .events("step_retry")
        .into_iter()
        .filter(|e| e["step"] == "apply")
        .collect();
    assert_eq!(retries.len(), 3, "{}", run.dump());
    let delays: Vec<u64> = retries
        .iter()
        .map(|e| e["delay_ms"].as_u64().unwrap())
        .collect();
    assert!(
        delays.windows(2).all(|w| w[1] > w[0]),
        "delays must grow: {delays:?}"
    );
    assert!(
        retries
            .iter()
            .all(|e| text_of(&e["error"]).to_lowercase().contains("unavailable")),
        "{retries:?}"
    );
    let stats = c.fleet.stats(ip_of(&c, "cp1"));
    assert_eq!(stats.calls("ApplyConfiguration"), 4);
    assert_eq!(stats.applies_accepted, 1);
}

/// A connection reset (the reply-lost fault) on a node that still turns out
/// to be in maintenance would be retried; here the node took the config, so
/// the reset is "sent", see case 8. This test covers the bounded side:
/// Unavailable forever ends the node with the attempts it used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_forever_gives_up_after_the_configured_attempts() {
    let c = cluster(
        2,
        0,
        Some("nodes: { cp1: { flaky: { method: ApplyConfiguration, count: 1000 } } }"),
    )
    .await;
    let run = run_with(
        &c,
        &json_args(&c, "apply", &[]),
        &[("TALSTRAP_ATTEMPTS", "3")],
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.dump());
    assert_eq!(status(&run, "cp1"), "failed");
    assert_eq!(run.node("cp1")["attempts"], 3);
    assert!(
        error_message(&run, "cp1").contains("gave up after 3 attempts"),
        "{}",
        run.dump()
    );
    assert_eq!(status(&run, "cp2"), "ok", "{}", run.dump());
    assert_eq!(
        c.fleet.stats(ip_of(&c, "cp1")).calls("ApplyConfiguration"),
        3
    );
}

// ---------------------------------------------------------------- case 3

/// The worker's selector `type: nvme` matches nothing on a node that only
/// has a SATA HDD: preflight fails it and lists the disks that exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_selector_without_match_lists_the_disks() {
    let c = cluster(
        1,
        1,
        Some(
            "disks: { w1: [ { dev_path: /dev/sdb, size: 2TB, transport: sata, rotational: true, model: \"Big HDD\" } ] }",
        ),
    )
    .await;
    let run = c.json("preflight", &[]).await;
    assert_eq!(run.code, 1, "{}", run.dump());
    assert_eq!(status(&run, "w1"), "failed");
    let msg = error_message(&run, "w1");
    assert!(msg.contains("matches no disk"), "{msg}");
    assert!(msg.contains("/dev/sdb"), "{msg}");
    assert!(msg.contains("Big HDD"), "{msg}");
    assert_eq!(
        run.node("w1")["steps"].as_array().unwrap().last().unwrap()["name"],
        "install-disk"
    );
    assert_eq!(status(&run, "cp1"), "ok");
}

/// `type: ssd` matches the NVMe drive too (Talos counts NVMe as SSD): with a
/// SATA SSD next to it, preflight warns and names both disks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssd_selector_matching_two_disks_warns_with_both_names() {
    let c = cluster_with(
        0,
        1,
        "disks: { w1: [ { dev_path: /dev/nvme0n1, size: 512GB, transport: nvme }, { dev_path: /dev/sdb, size: 1TB, transport: sata, rotational: false, model: \"Data SSD\" } ] }",
        |spec| {
            spec.install.insert(
                "w1".into(),
                InstallTarget::Selector(DiskSelector {
                    disk_type: Some("ssd".into()),
                    ..DiskSelector::default()
                }),
            );
        },
    )
    .await;
    let run = c.json("preflight", &[]).await;
    assert_eq!(run.code, 0, "{}", run.dump());
    let w1 = run.node("w1");
    assert_eq!(w1["status"], "warning", "{}", run.dump());
    let warnings: Vec<String> = w1["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(text_of)
        .collect();
    let w = warnings
        .iter()
        .find(|w| w.contains("matches 2 disks"))
        .unwrap_or_else(|| panic!("no two-disk warning: {}", run.dump()));
    assert!(w.contains("/dev/nvme0n1") && w.contains("/dev/sdb"), "{w}");
    // The warning is also shown live, not only in the report.
    assert!(
        run.events("warning")
            .iter()
            .any(|e| e["node"] == "w1" && text_of(&e["message"]).contains("/dev/sdb")),
        "{}",
        run.dump()
    );
}

// ---------------------------------------------------------------- case 4

/// The install fails and the node boots back into maintenance: `apply
/// --wait` says so for that node, with the likely cause; the others reach
/// ready for bootstrap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_install_back_in_maintenance_is_named_by_verify() {
    let c = cluster(2, 0, Some("nodes: { cp2: { install_fails: true } }")).await;
    let run = c
        .json(
            "apply",
            &["--wait", "--stuck-after", "10s", "--timeout", "60s"],
        )
        .await;
    assert_eq!(run.code, 1, "{}", run.dump());
    let cp2 = run.node("cp2");
    assert_eq!(cp2["status"], "failed", "{}", run.dump());
    assert_eq!(cp2["error"]["kind"], "stuck");
    let msg = error_message(&run, "cp2");
    assert!(msg.contains("back in maintenance"), "{msg}");
    assert!(msg.contains("install failed"), "{msg}");
    assert!(
        text_of(&cp2["hint"]).contains("diskSelector"),
        "{}",
        run.dump()
    );
    assert!(text_of(&run.node("cp1")["summary"]).contains("ready for bootstrap"));
    assert_eq!(c.fleet.stats(ip_of(&c, "cp2")).installs_failed, 1);
}

// ---------------------------------------------------------------- case 5

/// The node takes its config, reboots to install and never comes back:
/// verify reports it unreachable once `--stuck-after` passes (exit 1); the
/// other node is unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_lost_during_install_is_reported_stuck_unreachable() {
    let c = cluster(2, 0, Some("nodes: { cp2: { stuck_in: rebooting } }")).await;
    let run = c
        .json(
            "apply",
            &["--wait", "--stuck-after", "1s", "--timeout", "60s"],
        )
        .await;
    assert_eq!(run.code, 1, "{}", run.dump());
    let cp2 = run.node("cp2");
    assert_eq!(cp2["status"], "failed", "{}", run.dump());
    assert_eq!(cp2["error"]["kind"], "stuck");
    assert!(
        error_message(&run, "cp2").contains("unreachable for"),
        "{}",
        run.dump()
    );
    assert!(text_of(&cp2["hint"]).contains("did not come back"));
    assert!(text_of(&run.node("cp1")["summary"]).contains("ready for bootstrap"));
}

/// Same fault, but the command's `--timeout` comes first: the node is
/// reported timed out in its verify step and the exit code is 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_lost_during_install_hits_the_deadline_with_exit_3() {
    let c = cluster(2, 0, Some("nodes: { cp2: { stuck_in: rebooting } }")).await;
    let apply = c.json("apply", &[]).await;
    assert_eq!(apply.code, 0, "{}", apply.dump());
    let run = c
        .json(
            "verify",
            &[
                "--phase",
                "pre-bootstrap",
                "--stuck-after",
                "10m",
                "--timeout",
                "2s",
            ],
        )
        .await;
    assert_eq!(run.code, 3, "{}", run.dump());
    assert_eq!(run.report()["status"], "deadline");
    let cp2 = run.node("cp2");
    assert_eq!(cp2["status"], "timed_out", "{}", run.dump());
    assert_eq!(text_of(&cp2["summary"]), "deadline reached during verify");
    assert_eq!(status(&run, "cp1"), "ok", "{}", run.dump());
}

// ---------------------------------------------------------------- case 6

/// A node that serves a certificate from another CA: refused at once (one
/// attempt, no retry), the message names both CAs, nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_with_foreign_ca_is_refused_not_retried() {
    let c = cluster(
        2,
        0,
        Some("nodes: { cp1: { configured: true }, cp2: { configured: true, wrong_ca: true } }"),
    )
    .await;
    for cmd in ["preflight", "apply"] {
        let run = c.json(cmd, &[]).await;
        assert_eq!(run.code, 1, "{cmd}: {}", run.dump());
        let cp2 = run.node("cp2");
        assert_eq!(cp2["status"], "failed", "{cmd}: {}", run.dump());
        assert_eq!(cp2["error"]["kind"], "trust");
        assert_eq!(cp2["attempts"], 1, "{cmd}: {}", run.dump());
        assert_eq!(cp2["facts"]["mode"], "foreign-ca");
        let msg = error_message(&run, "cp2");
        assert!(msg.contains("configured by another cluster"), "{msg}");
        assert!(msg.contains("not by the talosconfig CA"), "{msg}");
        assert!(msg.contains("key id"), "{msg}");
        assert!(run.events("step_retry").iter().all(|e| e["node"] != "cp2"));
        assert!(
            run.node("cp1")["status"] != "failed",
            "{cmd}: {}",
            run.dump()
        );
    }
    assert_eq!(
        c.fleet.stats(ip_of(&c, "cp2")).calls("ApplyConfiguration"),
        0
    );
}

/// Every Talos CA has the subject `O=talos`, so naming the node's issuer by
/// subject does not say which CA it is: the message should identify both
/// CAs (serial or key id), so the operator can tell which cluster the node
/// belongs to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn foreign_ca_message_identifies_the_nodes_ca() {
    let c = cluster(
        1,
        0,
        Some("nodes: { cp1: { configured: true, wrong_ca: true } }"),
    )
    .await;
    let run = c.json("preflight", &[]).await;
    assert_eq!(run.code, 1, "{}", run.dump());
    let msg = error_message(&run, "cp1");
    let ids = msg.matches("serial").count() + msg.matches("key id").count();
    assert!(ids >= 2, "only one CA is identified: {msg}");
}

/// The bootstrap target serves a foreign certificate: the connect step is
/// refused once, with the trust hint, and no Bootstrap is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_target_with_foreign_ca_is_refused_once() {
    let scenario = format!(
        "nodes: {{ {} }}",
        CONFIGURED_CPS.replace(
            "cp1: { configured: true }",
            "cp1: { configured: true, wrong_ca: true }"
        )
    );
    let c = cluster(3, 0, Some(&scenario)).await;
    let run = c.json("bootstrap", &["--etcd-timeout", "5s"]).await;
    assert_eq!(run.code, 1, "{}", run.dump());
    let cp1 = run.node("cp1");
    assert_eq!(cp1["error"]["kind"], "trust", "{}", run.dump());
    assert_eq!(cp1["attempts"], 1);
    assert!(
        text_of(&cp1["hint"]).contains("talosconfig"),
        "{}",
        run.dump()
    );
    assert!(bootstrap_calls(&c).is_empty());
    assert!(c.fleet.etcd_clusters().is_empty());
}

/// `bootstrap --auto --cidr` with a talosconfig of another cluster: every
/// candidate fails the CA check, so the election should refuse at once and
/// name the CA, not poll until the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_bootstrap_scan_with_foreign_talosconfig_refuses_at_once() {
    let c = cluster(3, 0, Some(&format!("nodes: {{ {CONFIGURED_CPS} }}"))).await;
    let foreign = c.tmp.path().join("foreign-talosconfig");
    talstrap::sim::foreign_talosconfig(c.fleet.paths(), &foreign).unwrap();
    let net = format!("{}/24", c.ip("cp1"));
    let tc = foreign.display().to_string();
    let port = c.fleet.port().to_string();
    let args: Vec<String> = [
        "bootstrap",
        "--auto",
        "--cidr",
        &net,
        "--quorum",
        "3",
        "--talosconfig",
        &tc,
        "--port",
        &port,
        "--timeout",
        "20s",
        "-o",
        "json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let run = run_with(&c, &args, &[]).await;
    assert_ne!(run.code, 0, "{}", run.dump());
    assert!(
        !run.stderr.contains("before the deadline"),
        "waited for the deadline instead of refusing: {}",
        run.dump()
    );
    assert!(run.stderr.contains("talosconfig"), "{}", run.dump());
    assert!(bootstrap_calls(&c).is_empty());
}

// ---------------------------------------------------------------- case 7

/// The plan expected maintenance but the node is already configured with
/// this very config: apply detects it, goes over mTLS, skips it; no insecure
/// write, no config change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn already_configured_node_is_skipped_over_mtls() {
    let c = cluster(2, 0, Some("nodes: { cp1: { configured: true } }")).await;
    let run = c.json("apply", &[]).await;
    assert_eq!(run.code, 0, "{}", run.dump());
    let cp1 = run.node("cp1");
    assert_eq!(cp1["status"], "skipped", "{}", run.dump());
    assert_eq!(cp1["facts"]["mode"], "configured");
    assert!(cp1["facts"].get("insecure").is_none(), "{}", run.dump());
    assert!(text_of(&cp1["summary"]).contains("already runs this config"));
    let stats = c.fleet.stats(ip_of(&c, "cp1"));
    assert_eq!(stats.calls("ApplyConfiguration"), 0);
    assert_eq!(stats.applies_accepted, 0);
    // The maintenance node next to it got the insecure apply.
    assert_eq!(run.node("cp2")["facts"]["insecure"], true);
}

/// Already configured, but the config on disk changed since: the change goes
/// over mTLS (never the insecure maintenance path).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn already_configured_node_with_a_new_config_gets_it_over_mtls() {
    let c = cluster(1, 0, Some("nodes: { cp1: { configured: true } }")).await;
    let path = c.fleet.paths().node_config("cp1").unwrap().to_path_buf();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\nmachine:\n"), "unexpected config layout");
    let changed = text.replacen(
        "\nmachine:\n",
        "\nmachine:\n  sysctls:\n    net.core.somaxconn: \"65535\"\n",
        1,
    );
    std::fs::write(&path, changed).unwrap();
    let run = c.json("apply", &[]).await;
    assert_eq!(run.code, 0, "{}", run.dump());
    let cp1 = run.node("cp1");
    assert_eq!(cp1["status"], "ok", "{}", run.dump());
    assert!(cp1["facts"].get("insecure").is_none());
    assert_eq!(cp1["facts"]["changed"], true);
    assert!(
        text_of(&cp1["summary"]).contains("over mTLS"),
        "{}",
        run.dump()
    );
    assert_eq!(c.fleet.stats(ip_of(&c, "cp1")).applies_accepted, 1);
}

// ---------------------------------------------------------------- case 8

/// The node takes the config and resets the connection before replying (it
/// leaves maintenance): apply counts it as sent and `--wait` confirms it;
/// the config was sent once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_reply_lost_to_reboot_ends_verified() {
    let c = cluster(2, 0, Some("nodes: { cp1: { apply_reply_lost: true } }")).await;
    let run = c
        .json(
            "apply",
            &["--wait", "--stuck-after", "10s", "--timeout", "60s"],
        )
        .await;
    assert_eq!(run.code, 0, "{}", run.dump());
    let cp1 = run.node("cp1");
    assert_eq!(cp1["status"], "ok", "{}", run.dump());
    let summary = text_of(&cp1["summary"]);
    assert!(summary.contains("reply lost"), "{summary}");
    assert!(summary.contains("ready for bootstrap"), "{summary}");
    let stats = c.fleet.stats(ip_of(&c, "cp1"));
    assert_eq!(stats.applies_accepted, 1);
    assert_eq!(stats.calls("ApplyConfiguration"), 1);
}

// ---------------------------------------------------------------- case 9

/// Control planes that booted with their config and wait for bootstrap.
const CONFIGURED_CPS: &str =
    "cp1: { configured: true }, cp2: { configured: true }, cp3: { configured: true }";

/// Wait until every control plane has booted far enough to take a
/// Bootstrap (etcd Preparing), so call counts do not depend on how fast the
/// test machine is.
async fn wait_ready_for_bootstrap(c: &Cluster) {
    for n in c.fleet.nodes() {
        if n.role != talstrap::sim::Role::ControlPlane {
            continue;
        }
        let ready = c
            .fleet
            .wait_for(n.ip, Duration::from_secs(20), |s| {
                s.etcd.service == EtcdService::Preparing
            })
            .await;
        assert!(
            ready.is_some(),
            "{} never became ready for bootstrap",
            n.hostname
        );
    }
}

fn bootstrap_calls(c: &Cluster) -> BTreeMap<String, u64> {
    c.fleet
        .nodes()
        .iter()
        .map(|n| (n.hostname.clone(), c.fleet.stats(n.ip).bootstrap_calls))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Bootstrap is accepted but the reply is lost: talstrap does not resend,
/// watches etcd come up instead, and succeeds with one call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_reply_lost_is_confirmed_by_etcd_without_resending() {
    let scenario = format!(
        "nodes: {{ {} }}",
        CONFIGURED_CPS.replace(
            "cp1: { configured: true }",
            "cp1: { configured: true, bootstrap_reply_lost: true }"
        )
    );
    let c = cluster(3, 0, Some(&scenario)).await;
    wait_ready_for_bootstrap(&c).await;
    let run = c.json("bootstrap", &["--etcd-timeout", "20s"]).await;
    assert_eq!(run.code, 0, "{}", run.dump());
    let cp1 = run.node("cp1");
    assert_eq!(cp1["status"], "ok", "{}", run.dump());
    assert_eq!(cp1["facts"]["bootstrap_calls"], 1);
    let step = cp1["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "bootstrap")
        .cloned()
        .unwrap();
    assert!(
        text_of(&step["detail"]).contains("reply lost"),
        "{}",
        run.dump()
    );
    assert_eq!(
        bootstrap_calls(&c),
        BTreeMap::from([("cp1".to_string(), 1)])
    );
    assert_eq!(c.fleet.etcd_clusters().len(), 1);
}

/// Same fault with the resend window at zero: the second Bootstrap meets
/// AlreadyExists, which counts as success once etcd is confirmed; both calls
/// went to the same node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_retry_meeting_already_exists_is_success() {
    let scenario = format!(
        "nodes: {{ {} }}",
        CONFIGURED_CPS.replace(
            "cp1: { configured: true }",
            "cp1: { configured: true, bootstrap_reply_lost: true }"
        )
    );
    let c = cluster(3, 0, Some(&scenario)).await;
    wait_ready_for_bootstrap(&c).await;
    let run = c
        .json(
            "bootstrap",
            &["--resend-after", "0s", "--etcd-timeout", "20s"],
        )
        .await;
    assert_eq!(run.code, 0, "{}", run.dump());
    let cp1 = run.node("cp1");
    // A call on the connection the reset killed may fail locally too; the
    // node itself saw exactly two: the accepted one and the AlreadyExists.
    assert!(
        cp1["facts"]["bootstrap_calls"].as_u64().unwrap() >= 2,
        "{}",
        run.dump()
    );
    let step = cp1["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "bootstrap")
        .cloned()
        .unwrap();
    assert!(
        text_of(&step["detail"]).contains("etcd data present"),
        "{}",
        run.dump()
    );
    assert_eq!(
        bootstrap_calls(&c),
        BTreeMap::from([("cp1".to_string(), 2)])
    );
    let clusters = c.fleet.etcd_clusters();
    assert_eq!(clusters.len(), 1, "{clusters:?}");
    assert_eq!(c.fleet.stats(ip_of(&c, "cp1")).bootstraps_accepted, 1);
}

// ---------------------------------------------------------------- case 10

/// Another control plane already runs etcd: no Bootstrap call anywhere, the
/// run succeeds and says the cluster was already bootstrapped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_on_another_control_plane_means_no_bootstrap_call() {
    // cp1 and cp3 never join cp2's etcd here (`join` far away): otherwise,
    // on a slow machine, they have joined by the time bootstrap looks, and
    // the proof names whichever member it asks first.
    let scenario = format!(
        "timing: {{ join: 100000s }}\nnodes: {{ {} }}",
        CONFIGURED_CPS.replace(
            "cp2: { configured: true }",
            "cp2: { already_bootstrapped: true }"
        )
    );
    let c = cluster(3, 0, Some(&scenario)).await;
    let run = c.json("bootstrap", &["--etcd-timeout", "20s"]).await;
    assert_eq!(run.code, 0, "{}", run.dump());
    let node = &run.report()["nodes"][0];
    assert_eq!(node["status"], "skipped", "{}", run.dump());
    assert_eq!(node["facts"]["already_bootstrapped"], true);
    assert_eq!(node["facts"]["bootstrap_calls"], 0);
    let summary = text_of(&node["summary"]);
    assert!(summary.contains("already bootstrapped"), "{summary}");
    assert!(summary.contains("cp2"), "{summary}");
    assert!(bootstrap_calls(&c).is_empty(), "{:?}", bootstrap_calls(&c));
    assert_eq!(c.fleet.etcd_clusters().len(), 1);
}

/// With `--auto` the election sees etcd on cp2 and refuses: reported as
/// already bootstrapped, no Bootstrap call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_bootstrap_with_existing_etcd_sends_nothing() {
    let scenario = format!(
        "nodes: {{ {} }}",
        CONFIGURED_CPS.replace(
            "cp2: { configured: true }",
            "cp2: { already_bootstrapped: true }"
        )
    );
    let c = cluster(3, 0, Some(&scenario)).await;
    let run = c.json("bootstrap", &["--auto", "--timeout", "30s"]).await;
    assert_eq!(run.code, 0, "{}", run.dump());
    let messages = run.report()["messages"].to_string();
    assert!(messages.contains("already bootstrapped"), "{}", run.dump());
    assert!(messages.contains("no Bootstrap call"), "{}", run.dump());
    assert!(bootstrap_calls(&c).is_empty());
}

// ---------------------------------------------------------------- case 11

/// etcd starts but never turns healthy: bootstrap ends at `--etcd-timeout`
/// with the etcd service's last events in the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_never_healthy_ends_at_its_deadline_with_last_events() {
    let scenario = format!(
        "nodes: {{ {} }}",
        CONFIGURED_CPS.replace(
            "cp1: { configured: true }",
            "cp1: { configured: true, etcd_never_healthy: true }"
        )
    );
    let c = cluster(3, 0, Some(&scenario)).await;
    wait_ready_for_bootstrap(&c).await;
    let run = c.json("bootstrap", &["--etcd-timeout", "1s"]).await;
    assert_eq!(run.code, 1, "{}", run.dump());
    let cp1 = run.node("cp1");
    assert_eq!(cp1["status"], "failed");
    assert_eq!(cp1["error"]["kind"], "stuck");
    let msg = error_message(&run, "cp1");
    assert!(msg.contains("etcd not healthy after 1.0s"), "{msg}");
    assert!(msg.contains("Health check failed"), "{msg}");
    assert!(msg.contains("last events:"), "{msg}");
    assert!(msg.contains("unhealthy"), "{msg}");
    assert!(text_of(&cp1["hint"]).contains("etcd"), "{}", run.dump());
    assert_eq!(
        cp1["steps"].as_array().unwrap().last().unwrap()["name"],
        "etcd"
    );
    // It was bootstrapped once, and not again.
    assert_eq!(
        bootstrap_calls(&c),
        BTreeMap::from([("cp1".to_string(), 1)])
    );
}

/// The target loses power while bootstrap waits for its etcd (etcd
/// Running, not yet healthy): the report says the node went down during the
/// etcd wait, never its last state ("etcd Running (health unknown)") as if
/// it were still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_dies_during_the_etcd_wait_is_reported_down() {
    let scenario = format!("timing: {{ etcd_start: 100000s }}\nnodes: {{ {CONFIGURED_CPS} }}");
    let c = cluster(3, 0, Some(&scenario)).await;
    wait_ready_for_bootstrap(&c).await;
    let cp1 = ip_of(&c, "cp1");
    let mut live = Live::spawn(
        &c,
        &json_args(&c, "bootstrap", &["--etcd-timeout", "6s"]),
        &[("TALSTRAP_RPC_TIMEOUT", "1s")],
    );
    // The client itself has seen etcd Running (its first look in the wait).
    live.wait_for("etcd Running in the etcd wait", |v| {
        v["event"] == "progress" && v["step"] == "etcd" && v["message"] == "etcd Running"
    })
    .await;
    let running = c
        .fleet
        .wait_for(cp1, Duration::from_secs(20), |s| {
            s.etcd.service == EtcdService::Running
        })
        .await;
    assert!(running.is_some(), "etcd never started on cp1");
    c.fleet.power_off(cp1).await;
    let run = live.finish().await;
    assert_eq!(run.code, 1, "{}", run.dump());
    let node = run.node("cp1");
    assert_eq!(node["status"], "failed", "{}", run.dump());
    assert_eq!(
        node["steps"].as_array().unwrap().last().unwrap()["name"],
        "etcd"
    );
    let msg = error_message(&run, "cp1");
    assert!(
        msg.contains("cp1 went down during the etcd wait: no answer for the last"),
        "{msg}"
    );
    assert!(
        msg.contains("before that, etcd was Running, not yet healthy"),
        "{msg}"
    );
    assert!(!msg.contains("health unknown"), "{msg}");
    assert!(
        text_of(&node["hint"]).contains("stopped answering"),
        "{}",
        run.dump()
    );
    assert!(
        run.events("progress")
            .iter()
            .any(|e| text_of(&e["message"]).starts_with("cp1 stopped answering")),
        "{}",
        run.dump()
    );
    assert_eq!(
        bootstrap_calls(&c),
        BTreeMap::from([("cp1".to_string(), 1)])
    );
}

// ---------------------------------------------------------------- case 12

/// The node's clock is not in sync for a while after boot: Bootstrap answers
/// FailedPrecondition, talstrap retries with backoff, then succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_not_in_sync_is_retried_then_bootstraps() {
    // 100 s at time scale 0.02 = 2 s of FailedPrecondition after boot.
    let scenario = format!(
        "nodes: {{ {} }}",
        CONFIGURED_CPS.replace(
            "cp1: { configured: true }",
            "cp1: { configured: true, time_not_synced_for: 100s }"
        )
    );
    let c = cluster(3, 0, Some(&scenario)).await;
    wait_ready_for_bootstrap(&c).await;
    // --attempts is honoured as given (no longer raised to 10 behind the
    // user's back): give the clock enough attempts to sync.
    let run = c
        .json("bootstrap", &["--etcd-timeout", "20s", "--attempts", "12"])
        .await;
    assert_eq!(run.code, 0, "{}", run.dump());
    let cp1 = run.node("cp1");
    let calls = cp1["facts"]["bootstrap_calls"].as_u64().unwrap();
    assert!(calls >= 2, "expected retries: {}", run.dump());
    let retries = run.events("step_retry");
    assert!(!retries.is_empty());
    assert!(
        retries
            .iter()
            .all(|e| e["step"] == "bootstrap"
                && text_of(&e["error"]).contains("time is not in sync")),
        "{retries:?}"
    );
    let stats = c.fleet.stats(ip_of(&c, "cp1"));
    assert_eq!(stats.bootstrap_calls, calls);
    assert_eq!(stats.bootstraps_accepted, 1);
    assert_eq!(c.fleet.etcd_clusters().len(), 1);
}

// ---------------------------------------------------------------- case 13

/// Two CI runners start `bootstrap --auto` at the same moment: both elect the
/// same node, exactly one etcd cluster results, and Bootstrap reached only
/// that node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_auto_bootstraps_make_one_etcd_cluster() {
    let c = cluster(3, 0, Some(&format!("nodes: {{ {CONFIGURED_CPS} }}"))).await;
    let args = ["--auto", "--timeout", "60s", "--etcd-timeout", "20s"];
    let (a, b) = tokio::join!(c.json("bootstrap", &args), c.json("bootstrap", &args));
    assert_eq!(a.code, 0, "{}", a.dump());
    assert_eq!(b.code, 0, "{}", b.dump());
    let clusters = c.fleet.etcd_clusters();
    assert_eq!(clusters.len(), 1, "{clusters:?}");
    let called = bootstrap_calls(&c);
    assert_eq!(
        called.len(),
        1,
        "Bootstrap reached several nodes: {called:?}"
    );
    let bootstrapped = called.keys().next().unwrap().clone();
    let ip = c.ip(&bootstrapped);
    // Each run either targeted that node, or found etcd already there.
    for r in [&a, &b] {
        let target = &r.report()["details"]["target"]["ip"];
        if target.is_null() {
            assert!(
                r.report()["messages"]
                    .to_string()
                    .contains("already bootstrapped"),
                "{}",
                r.dump()
            );
        } else {
            assert_eq!(target, &Value::String(ip.clone()), "{}", r.dump());
        }
    }
    let total: u64 = c
        .fleet
        .nodes()
        .iter()
        .map(|n| c.fleet.stats(n.ip).bootstraps_accepted)
        .sum();
    assert_eq!(total, 1);
}

/// `bootstrap --auto` where a control plane never answers: the quorum is
/// never reached, nothing is bootstrapped, and the run ends at `--timeout`
/// with the deadline exit code (3), saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_bootstrap_without_quorum_ends_at_the_deadline_with_exit_3() {
    let scenario = format!(
        "nodes: {{ {} }}",
        CONFIGURED_CPS.replace(
            "cp3: { configured: true }",
            "cp3: { configured: true, unreachable: true }"
        )
    );
    let c = cluster(3, 0, Some(&scenario)).await;
    let run = run_with(
        &c,
        &json_args(&c, "bootstrap", &["--auto", "--timeout", "3s"]),
        &[("TALSTRAP_CONNECT_TIMEOUT", "300ms")],
    )
    .await;
    assert_eq!(run.code, 3, "{}", run.dump());
    assert!(
        run.stdout.contains("quorum not reached") || run.stderr.contains("quorum not reached"),
        "{}",
        run.dump()
    );
    assert!(bootstrap_calls(&c).is_empty());
    assert!(c.fleet.etcd_clusters().is_empty());
}

// ---------------------------------------------------------------- case 14

fn is_step_started(v: &Value, node: &str, step: &str) -> bool {
    v["type"] == "event" && v["event"] == "step_started" && v["node"] == node && v["step"] == step
}

/// Wait until the node has received the ApplyConfiguration request (the
/// simulator counts it on arrival, before its latency), so that Ctrl-C
/// lands while the request is on the wire and not in the instant between
/// the step's start event and its first attempt.
async fn apply_on_the_wire(c: &Cluster, node: &str) {
    let ip = ip_of(c, node);
    // A hang guard only (60 s), not a timing assumption.
    for _ in 0..12_000 {
        if c.fleet.stats(ip).calls("ApplyConfiguration") >= 1 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("{node} never received its ApplyConfiguration");
}

/// Ctrl-C while the first node's config is on the wire (one node at a
/// time): that request finishes, no other node is started, every node is in
/// the report with its last step, exit 130. Which node `--serial` starts
/// first is not fixed (the nodes queue for one permit), so every node is
/// slow and the test follows whichever started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_apply_starts_nothing_new() {
    // Every RPC takes 1 s (50 s at time scale 0.02).
    let c = cluster(
        3,
        0,
        Some("nodes: { cp1: { latency: 50s }, cp2: { latency: 50s }, cp3: { latency: 50s } }"),
    )
    .await;
    let mut live = Live::spawn(&c, &json_args(&c, "apply", &["--serial"]), &[]);
    let started = live
        .wait_for("the first apply step", |v| {
            v["type"] == "event" && v["event"] == "step_started" && v["step"] == "apply"
        })
        .await;
    let first = text_of(&started["node"]);
    apply_on_the_wire(&c, &first).await;
    live.interrupt();
    let run = live.finish().await;
    assert_eq!(run.code, 130, "{}", run.dump());
    assert_eq!(run.report()["status"], "interrupted");
    assert!(run.stderr.contains("interrupt"), "{}", run.dump());
    // The request already sent was allowed to finish: the node has its config.
    let node = run.node(&first);
    assert_eq!(
        node["steps"].as_array().unwrap().last().unwrap()["name"],
        "apply"
    );
    assert_eq!(c.fleet.stats(ip_of(&c, &first)).applies_accepted, 1);
    for n in ["cp1", "cp2", "cp3"].into_iter().filter(|n| *n != first) {
        let node = run.node(n);
        assert_eq!(node["status"], "interrupted", "{}", run.dump());
        assert_eq!(text_of(&node["summary"]), "interrupted before starting");
        assert_eq!(node["steps"].as_array().unwrap().len(), 0);
        assert_eq!(c.fleet.stats(ip_of(&c, n)).calls("ApplyConfiguration"), 0);
    }
}

/// A second Ctrl-C while a request is still on the wire exits at once with
/// the interrupted code, without waiting for that request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_ctrl_c_exits_at_once() {
    // cp1 answers every RPC after 3 s (150 s at time scale 0.02).
    let c = cluster(1, 0, Some("nodes: { cp1: { latency: 150s } }")).await;
    let mut live = Live::spawn(
        &c,
        &json_args(&c, "apply", &[]),
        &[("TALSTRAP_RPC_TIMEOUT", "30s")],
    );
    live.wait_for("cp1's apply step", |v| is_step_started(v, "cp1", "apply"))
        .await;
    apply_on_the_wire(&c, "cp1").await;
    live.interrupt();
    live.let_the_signal_land().await;
    live.interrupt();
    let run = live.finish().await;
    assert_eq!(run.code, 130, "{}", run.dump());
    assert!(
        run.stderr.contains("interrupted again: exiting now"),
        "{}",
        run.dump()
    );
}

fn dir_entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Ctrl-C while bootstrap waits for etcd: exit 130, the node's last step is
/// `etcd`, and no kubeconfig (nor a temp file of one) is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_bootstrap_leaves_no_kubeconfig() {
    let scenario = format!("timing: {{ etcd_start: 1000s }}\nnodes: {{ {CONFIGURED_CPS} }}");
    let c = cluster(3, 0, Some(&scenario)).await;
    let out = c.tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let kubeconfig = out.join("kubeconfig");
    let kc = kubeconfig.display().to_string();
    let mut live = Live::spawn(&c, &json_args(&c, "bootstrap", &["--kubeconfig", &kc]), &[]);
    live.wait_for("the etcd wait", |v| is_step_started(v, "cp1", "etcd"))
        .await;
    live.interrupt();
    let run = live.finish().await;
    assert_eq!(run.code, 130, "{}", run.dump());
    let cp1 = run.node("cp1");
    assert_eq!(cp1["status"], "interrupted", "{}", run.dump());
    assert_eq!(text_of(&cp1["summary"]), "interrupted during etcd");
    assert_eq!(
        cp1["steps"].as_array().unwrap().last().unwrap()["name"],
        "etcd"
    );
    assert!(!kubeconfig.exists());
    assert!(
        dir_entries(&out).is_empty(),
        "left behind: {:?}",
        dir_entries(&out)
    );
    assert_eq!(c.fleet.stats(ip_of(&c, "cp1")).calls("Kubeconfig"), 0);
}

/// Ctrl-C while bootstrap is backing off before a retry (time not in sync):
/// the retry is never sent, nothing is bootstrapped, exit 130.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_while_bootstrap_waits_to_retry_sends_nothing_more() {
    let scenario = format!(
        "nodes: {{ {} }}",
        CONFIGURED_CPS.replace(
            "cp1: { configured: true }",
            "cp1: { configured: true, time_not_synced_for: 100000s }"
        )
    );
    let c = cluster(3, 0, Some(&scenario)).await;
    let out = c.tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let kc = out.join("kubeconfig").display().to_string();
    let mut live = Live::spawn(
        &c,
        &json_args(&c, "bootstrap", &["--kubeconfig", &kc]),
        &[("TALSTRAP_RETRY_DELAY", "2s")],
    );
    live.wait_for("a bootstrap retry", |v| {
        v["event"] == "step_retry" && v["step"] == "bootstrap"
    })
    .await;
    let calls_before = c.fleet.stats(ip_of(&c, "cp1")).bootstrap_calls;
    live.interrupt();
    let run = live.finish().await;
    assert_eq!(run.code, 130, "{}", run.dump());
    assert_eq!(run.node("cp1")["status"], "interrupted");
    assert_eq!(
        c.fleet.stats(ip_of(&c, "cp1")).bootstrap_calls,
        calls_before
    );
    assert!(c.fleet.etcd_clusters().is_empty());
    assert!(dir_entries(&out).is_empty());
}

// ---------------------------------------------------------------- case 15

/// A node that accepts TCP and then says nothing: each command gives up on
/// it after the TLS handshake limit instead of hanging; the others finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_that_hangs_after_accept_is_bounded_per_attempt() {
    // Two fleets, so that apply cannot change a node preflight is reading.
    let scenario = "nodes: { cp2: { hang_after_accept: true } }";
    let c = cluster(2, 0, Some(scenario)).await;
    let d = cluster(2, 0, Some(scenario)).await;
    let (pre, apply) = tokio::join!(c.json("preflight", &[]), d.json("apply", &[]));
    for (c, run) in [(&c, &pre), (&d, &apply)] {
        assert_eq!(run.code, 1, "{}", run.dump());
        assert_eq!(status(run, "cp2"), "failed", "{}", run.dump());
        let msg = error_message(run, "cp2");
        assert!(msg.contains("TLS handshake did not finish"), "{msg}");
        assert_eq!(status(run, "cp1"), "ok", "{}", run.dump());
        assert!(c.fleet.stats(ip_of(c, "cp2")).connections >= 1);
        assert_eq!(c.fleet.stats(ip_of(c, "cp2")).handshakes, 0);
    }
}

/// `talstrap <cmd> <cluster args> -o json <extra>` as an argument list.
fn json_args(c: &Cluster, cmd: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec![cmd.into()];
    args.extend(c.target_args());
    args.extend(["-o".into(), "json".into()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Run with extra environment; `args` as owned strings.
async fn run_with(c: &Cluster, args: &[String], env: &[(&str, &str)]) -> Run {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    c.run_env(&refs, env).await
}
