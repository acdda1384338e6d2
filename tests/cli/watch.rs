//! verify's watch end to end: what a node does within one boot (a clock
//! step, a re-issued maintenance certificate) is not a reboot, and a reboot
//! the apply asked for is seen before `--wait` says ready.

use std::net::IpAddr;

use serde_json::Value;

use crate::support::*;

fn ip(c: &Cluster, host: &str) -> IpAddr {
    c.ip(host).parse().unwrap()
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// Progress lines of one node.
fn progress(run: &Run, node: &str) -> Vec<String> {
    run.events("progress")
        .iter()
        .filter(|e| e["node"] == node)
        .map(|e| text(&e["message"]))
        .collect()
}

/// Change cp1's config in a way Talos cannot apply live (machine.env).
fn needs_reboot_change(c: &Cluster) {
    let path = c.fleet.nodes()[0].config_path.clone();
    let cfg = std::fs::read_to_string(&path).unwrap();
    assert_eq!(cfg.matches("\nmachine:\n").count(), 1, "{cfg}");
    let changed = cfg.replace(
        "\nmachine:\n",
        "\nmachine:\n  env:\n    TALSTRAP_TEST: \"1\"\n",
    );
    std::fs::write(&path, changed).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_steps_while_watched_are_no_reboot_loop() {
    // Time stays unsynced for about a second (scaled), and NTP steps the
    // clock by 2 h four times meanwhile: the boot time moves four times.
    let c = cluster(
        1,
        0,
        Some(
            "nodes: { cp1: { configured: true, time_not_synced_for: 60s, clock_step: { after: 10s, by: 2h, count: 4 } } }",
        ),
    )
    .await;
    let boot_before = c.fleet.snapshot(ip(&c, "cp1")).boot_time;
    let verify = c.json("verify", &[]).await;
    assert_eq!(verify.code, 0, "{}", verify.dump());
    let cp1 = verify.node("cp1");
    assert_eq!(cp1["status"], "ok", "{cp1:#}");
    assert!(
        text(&cp1["summary"]).contains("ready for bootstrap"),
        "{cp1:#}"
    );
    let lines = progress(&verify, "cp1");
    assert!(
        lines.iter().any(|l| l.contains("the clock was stepped")),
        "{lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("rebooted")),
        "{lines:#?}"
    );
    // The simulator really stepped the clock, and never rebooted.
    let snap = c.fleet.snapshot(ip(&c, "cp1"));
    assert!(snap.boot_time >= boot_before + 3 * 7200, "{snap:?}");
    assert_eq!(c.fleet.stats(ip(&c, "cp1")).reboots, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reissued_maintenance_certificate_is_not_a_failed_install() {
    // The node takes the config (its certificate is re-issued for the new
    // hostname) but stays in maintenance: verify must not blame the install.
    let c = cluster(1, 0, Some("nodes: { cp1: { stuck_in: maintenance } }")).await;
    let apply = c.json("apply", &["--wait"]).await;
    assert_eq!(apply.code, 1, "{}", apply.dump());
    let cp1 = apply.node("cp1");
    let msg = text(&cp1["error"]["message"]);
    assert!(!msg.contains("install failed"), "{}", apply.dump());
    assert!(msg.contains("did not take its config"), "{}", apply.dump());
    let lines = progress(&apply, "cp1");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("re-issued within the same boot")),
        "{lines:#?}"
    );
    assert_eq!(c.fleet.stats(ip(&c, "cp1")).installs_failed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_wait_sees_the_reboot_it_asked_for_before_saying_ready() {
    // The node takes about a second (scaled) to stop its services before it
    // goes down: long enough to look running and ready on the old boot.
    let c = cluster(
        1,
        0,
        Some("timing: { shutdown: 50s }\nnodes: { cp1: { already_bootstrapped: true } }"),
    )
    .await;
    needs_reboot_change(&c);
    let apply = c.json("apply", &["--mode", "reboot", "--wait"]).await;
    // An outside observer: the node rebooted before --wait returned.
    let reboots = c.fleet.stats(ip(&c, "cp1")).reboots;
    assert_eq!(apply.code, 0, "{}", apply.dump());
    assert_eq!(
        reboots,
        1,
        "--wait returned before the reboot: {}",
        apply.dump()
    );
    let cp1 = apply.node("cp1");
    assert!(text(&cp1["summary"]).contains("running, ready"), "{cp1:#}");
    assert_eq!(cp1["facts"]["expect_reboot"], true, "{cp1:#}");
    let lines = progress(&apply, "cp1");
    assert!(
        lines.iter().any(|l| l.contains("waiting for the reboot")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("rebooted as the apply asked (new boot id)")),
        "{lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reboot_that_does_not_come_gets_its_own_cause() {
    let c = cluster(
        1,
        0,
        Some("timing: { shutdown: 1h }\nnodes: { cp1: { already_bootstrapped: true } }"),
    )
    .await;
    needs_reboot_change(&c);
    let apply = c
        .json(
            "apply",
            &["--mode", "reboot", "--wait", "--stuck-after", "1s"],
        )
        .await;
    assert_eq!(apply.code, 1, "{}", apply.dump());
    let cp1 = apply.node("cp1");
    assert_eq!(cp1["error"]["kind"], "stuck", "{cp1:#}");
    let msg = text(&cp1["error"]["message"]);
    assert!(
        msg.contains("reboot the apply asked for did not happen"),
        "{msg}"
    );
    assert!(text(&cp1["hint"]).contains("has not rebooted"), "{cp1:#}");
    assert_eq!(c.fleet.stats(ip(&c, "cp1")).reboots, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_behind_a_vip_without_discovery_wait_for_bootstrap() {
    let c = cluster(
        1,
        2,
        Some("cluster: { discovery: false, vip_endpoint: true }"),
    )
    .await;
    // A short bound: the workers stay closed for longer than this.
    let apply = c.json("apply", &["--wait", "--stuck-after", "3s"]).await;
    assert_eq!(apply.code, 0, "{}", apply.dump());
    assert!(
        text(&apply.node("cp1")["summary"]).contains("ready for bootstrap"),
        "{}",
        apply.dump()
    );
    for w in ["w1", "w2"] {
        let s = text(&apply.node(w)["summary"]);
        assert!(s.contains("waiting for the control plane"), "{s}");
        assert!(s.contains("VIP"), "{s}");
        // The simulator really keeps the worker's API closed.
        let snap = c.fleet.snapshot(ip(&c, w));
        assert!(snap.config_applied, "{snap:?}");
        assert_eq!(snap.mode, talstrap::sim::NodeMode::Down, "{snap:?}");
    }
    let boot = c.json("bootstrap", &[]).await;
    assert_eq!(boot.code, 0, "{}", boot.dump());
    let verify = c.json("verify", &[]).await;
    assert_eq!(verify.code, 0, "{}", verify.dump());
    for n in ["cp1", "w1", "w2"] {
        assert_eq!(
            text(&verify.node(n)["summary"]),
            "running, ready",
            "{}",
            verify.dump()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_still_closed_after_the_control_planes_are_up_fails_with_the_trustd_cause() {
    // Discovery off and an endpoint nobody serves: the worker never finds trustd.
    let c = cluster(1, 1, Some("cluster: { discovery: false }")).await;
    let apply = c.json("apply", &["--wait", "--stuck-after", "3s"]).await;
    assert_eq!(apply.code, 0, "{}", apply.dump());
    let boot = c.json("bootstrap", &[]).await;
    assert_eq!(boot.code, 0, "{}", boot.dump());
    let verify = c.json("verify", &["--stuck-after", "1s"]).await;
    assert_eq!(verify.code, 1, "{}", verify.dump());
    assert_eq!(verify.node("cp1")["status"], "ok", "{}", verify.dump());
    let w1 = verify.node("w1");
    let msg = text(&w1["error"]["message"]);
    assert!(msg.contains("after the control planes came up"), "{msg}");
    assert!(msg.contains("no control plane's own address"), "{msg}");
    assert!(text(&w1["hint"]).contains("50001"), "{w1:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_after_bootstrap_checks_etcd_across_the_control_planes() {
    let c = cluster(3, 1, None).await;
    let apply = c.json("apply", &["--wait"]).await;
    assert_eq!(apply.code, 0, "{}", apply.dump());
    let boot = c.json("bootstrap", &["--wait-members"]).await;
    assert_eq!(boot.code, 0, "{}", boot.dump());
    let verify = c.json("verify", &[]).await;
    assert_eq!(verify.code, 0, "{}", verify.dump());
    let report = verify.report();
    let etcd = &report["details"]["etcd"];
    assert_eq!(etcd["healthy"], true, "{report:#}");
    assert_eq!(etcd["consistent"], true, "{report:#}");
    assert_eq!(etcd["per_node"].as_array().unwrap().len(), 3, "{report:#}");
    let messages = report["messages"].to_string();
    assert!(messages.contains("etcd healthy: 3 members"), "{messages}");
    // The human summary says it too.
    let plain = c
        .run(
            &[
                &["verify"][..],
                &c.target_args()
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>(),
            ]
            .concat(),
        )
        .await;
    assert_eq!(plain.code, 0, "{}", plain.dump());
    assert!(
        plain.stdout.contains("etcd healthy: 3 members"),
        "{}",
        plain.dump()
    );

    // An inventory that lacks cp3, which etcd still lists: not healthy.
    let nodes = c.fleet.nodes();
    let mut args: Vec<String> = vec!["verify".into(), "-o".into(), "json".into()];
    for n in &nodes[..2] {
        args.push("--node".into());
        args.push(format!("{}={}", n.ip, n.config_path.display()));
    }
    args.extend([
        "--talosconfig".into(),
        c.talosconfig().display().to_string(),
        "--port".into(),
        c.fleet.port().to_string(),
    ]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let partial = c.run(&refs).await;
    assert_eq!(partial.code, 1, "{}", partial.dump());
    let report = partial.report();
    assert_eq!(report["summary"]["failed"], 0, "{report:#}");
    let etcd = &report["details"]["etcd"];
    assert_eq!(etcd["healthy"], false, "{report:#}");
    assert_eq!(
        etcd["unknown_members"],
        serde_json::json!(["cp3"]),
        "{report:#}"
    );
    assert!(
        report["messages"]
            .to_string()
            .contains("no control plane of the inventory: cp3"),
        "{report:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_plane_waiting_long_for_bootstrap_is_warned_of_the_boot_timeout() {
    // cp1 booted an hour ago and still waits for bootstrap; cp2 just booted.
    let c = cluster(
        2,
        0,
        Some("nodes: { cp1: { configured: true, booted_ago: 60m }, cp2: { configured: true } }"),
    )
    .await;
    let verify = c.json("verify", &[]).await;
    assert_eq!(verify.code, 0, "{}", verify.dump());
    let cp1 = verify.node("cp1");
    assert_eq!(cp1["status"], "warning", "{cp1:#}");
    assert!(
        text(&cp1["summary"]).contains("ready for bootstrap"),
        "{cp1:#}"
    );
    let warnings = cp1["warnings"].to_string();
    assert!(warnings.contains("70-minute boot timeout"), "{warnings}");
    assert!(warnings.contains("talstrap bootstrap"), "{warnings}");
    let cp2 = verify.node("cp2");
    assert_eq!(cp2["status"], "ok", "{cp2:#}");
}
