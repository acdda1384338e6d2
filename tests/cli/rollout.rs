//! Day-2 apply on a bootstrapped cluster: rollouts that reboot control
//! planes one at a time, the stop on a failed node, the refusal on a
//! degraded etcd, joining nodes, and the redacted dry-run diff.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use talstrap::sim::{EtcdService, NodeMode, Stage};

use crate::support::{Cluster, cluster};

const CPS: [&str; 3] = ["cp1", "cp2", "cp3"];
const ALL: [&str; 5] = ["cp1", "cp2", "cp3", "w1", "w2"];

fn ip(c: &Cluster, host: &str) -> IpAddr {
    c.fleet.ip(host).unwrap()
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn config_path(c: &Cluster, host: &str) -> std::path::PathBuf {
    c.fleet
        .nodes()
        .into_iter()
        .find(|n| n.hostname == host)
        .unwrap()
        .config_path
}

/// Add a kernel argument (`install.extraKernelArgs`), as in the issue.
fn change_kernel_args(c: &Cluster, host: &str) {
    let path = config_path(c, host);
    let cfg = std::fs::read_to_string(&path).unwrap();
    assert_eq!(cfg.matches("\n  install:\n").count(), 1, "{cfg}");
    let changed = cfg.replace(
        "\n  install:\n",
        "\n  install:\n    extraKernelArgs: [talstrap.rollout=1]\n",
    );
    std::fs::write(&path, changed).unwrap();
}

/// A bootstrapped 3 + 2 cluster (cp1 bootstrapped, the others configured),
/// every node running and ready, etcd with all three members.
async fn bootstrapped(extra: &str) -> Cluster {
    let scenario = format!(
        "nodes: {{ cp1: {{ already_bootstrapped: true }}, cp2: {{ configured: true{extra} }}, cp3: {{ configured: true }}, w1: {{ configured: true }}, w2: {{ configured: true }} }}"
    );
    let c = cluster(3, 2, Some(&scenario)).await;
    for n in ALL {
        c.fleet
            .wait_for(ip(&c, n), Duration::from_secs(30), |s| {
                s.stage == Stage::Running && s.ready
            })
            .await
            .unwrap_or_else(|| panic!("{n} never became ready"));
    }
    let members = c.fleet.etcd_clusters();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].len(), 3, "{members:?}");
    c
}

/// A control plane is down while it does not serve with a healthy etcd.
fn cp_down(c: &Cluster, host: &str) -> bool {
    let s = c.fleet.snapshot(ip(c, host));
    !(s.mode == NodeMode::Configured && s.etcd.service == EtcdService::Running && s.etcd.healthy)
}

/// Samples the control planes until stopped; returns the most that were
/// down at once.
fn watch_control_planes(c: &Arc<Cluster>) -> (Arc<AtomicBool>, tokio::task::JoinHandle<usize>) {
    let stop = Arc::new(AtomicBool::new(false));
    let (c, flag) = (c.clone(), stop.clone());
    let handle = tokio::spawn(async move {
        let max = AtomicUsize::new(0);
        while !flag.load(Ordering::SeqCst) {
            let down = CPS.iter().filter(|n| cp_down(&c, n)).count();
            max.fetch_max(down, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        max.load(Ordering::SeqCst)
    });
    (stop, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reboot_rollout_takes_one_control_plane_down_at_a_time_and_waits_for_every_reboot() {
    let c = Arc::new(bootstrapped("").await);
    for n in ALL {
        change_kernel_args(&c, n);
    }
    let (stop, watcher) = watch_control_planes(&c);
    let apply = c.json("apply", &["--mode", "reboot", "--wait"]).await;
    // What the cluster looks like the moment --wait returned.
    let at_return: Vec<(u64, bool)> = ALL
        .iter()
        .map(|n| {
            let s = c.fleet.snapshot(ip(&c, n));
            (
                c.fleet.stats(ip(&c, n)).reboots,
                s.stage == Stage::Running && s.ready,
            )
        })
        .collect();
    stop.store(true, Ordering::SeqCst);
    let max_down = watcher.await.unwrap();
    assert_eq!(apply.code, 0, "{}", apply.dump());
    assert_eq!(max_down, 1, "control planes down at once: {max_down}");
    for (n, (reboots, ready)) in ALL.iter().zip(&at_return) {
        assert_eq!(
            *reboots, 1,
            "{n} rebooted {reboots} times before --wait returned"
        );
        assert!(ready, "{n} not running and ready when --wait returned");
        let node = apply.node(n);
        assert_eq!(node["status"], "ok", "{node:#}");
        assert_eq!(node["facts"]["new_config"], true, "{node:#}");
        let seen = apply.events("progress").iter().any(|e| {
            e["node"] == *n && text(&e["message"]).contains("rebooted as the apply asked")
        });
        assert!(seen, "no reboot seen for {n}: {}", apply.dump());
    }
    let rollout = &apply.report()["details"]["rollout"];
    assert_eq!(rollout["bootstrapped"], true, "{rollout:#}");
    assert_eq!(
        rollout["waves"],
        serde_json::json!([["cp1"], ["cp2"], ["cp3"], ["w1"], ["w2"]]),
        "{rollout:#}"
    );
    for n in CPS {
        let etcd_step = apply.node(n)["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "etcd" && s["status"] == "ok");
        assert!(etcd_step, "{n} went on without the etcd gate");
    }
    let members = c.fleet.etcd_clusters();
    assert_eq!(members.len(), 1, "{members:?}");
    let verify = c.json("verify", &[]).await;
    assert_eq!(verify.code, 0, "{}", verify.dump());

    // Workers two at a time: never more than two down together.
    for n in ALL {
        let path = config_path(&c, n);
        let cfg = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            cfg.replace("talstrap.rollout=1", "talstrap.rollout=2"),
        )
        .unwrap();
    }
    let again = c
        .json(
            "apply",
            &[
                "--mode",
                "reboot",
                "--max-unavailable",
                "2",
                "--role",
                "worker",
            ],
        )
        .await;
    assert_eq!(again.code, 0, "{}", again.dump());
    assert_eq!(
        again.report()["details"]["rollout"]["waves"],
        serde_json::json!([["w1", "w2"]]),
        "{}",
        again.dump()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_plane_that_does_not_come_back_stops_the_rollout() {
    let c = bootstrapped(", stuck_in: rebooting").await;
    for n in ALL {
        change_kernel_args(&c, n);
    }
    let apply = c
        .json(
            "apply",
            &["--mode", "reboot", "--wait", "--stuck-after", "2s"],
        )
        .await;
    assert_eq!(apply.code, 1, "{}", apply.dump());
    let cp1 = apply.node("cp1");
    assert_eq!(cp1["status"], "ok", "{cp1:#}");
    let cp2 = apply.node("cp2");
    assert_eq!(cp2["status"], "failed", "{cp2:#}");
    assert_eq!(cp2["error"]["kind"], "stuck", "{cp2:#}");
    for n in ["cp3", "w1", "w2"] {
        let node = apply.node(n);
        assert_eq!(node["status"], "failed", "{n}: {node:#}");
        assert!(
            text(&node["summary"]).contains("not applied: the rollout stopped (cp2 failed)"),
            "{n}: {node:#}"
        );
        assert_eq!(node["facts"]["new_config"], false, "{n}");
        let s = c.fleet.stats(ip(&c, n));
        assert_eq!(s.applies_accepted, 0, "{n} was changed after cp2 failed");
        assert_eq!(s.reboots, 0, "{n}");
    }
    let rollout = &apply.report()["details"]["rollout"];
    assert_eq!(
        rollout["new_config"],
        serde_json::json!(["cp1", "cp2"]),
        "{rollout:#}"
    );
    assert_eq!(
        rollout["not_applied"],
        serde_json::json!(["cp3", "w1", "w2"]),
        "{rollout:#}"
    );
    let messages = apply.report()["messages"].to_string();
    assert!(
        messages.contains("rollout stopped: cp2 failed"),
        "{messages}"
    );
    assert!(
        messages.contains("new config on: cp1, cp2; not applied: cp3, w1, w2"),
        "{messages}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_on_a_degraded_etcd_is_refused_unless_allowed() {
    let c = cluster(
        3,
        1,
        Some("nodes: { cp1: { already_bootstrapped: true }, cp2: { configured: true }, cp3: { configured: true, etcd_never_healthy: true }, w1: { configured: true } }"),
    )
    .await;
    for n in ["cp1", "cp2", "w1"] {
        c.fleet
            .wait_for(ip(&c, n), Duration::from_secs(30), |s| {
                s.stage == Stage::Running && s.ready
            })
            .await
            .unwrap_or_else(|| panic!("{n} never became ready"));
    }
    c.fleet
        .wait_for(ip(&c, "cp3"), Duration::from_secs(30), |s| {
            s.etcd.service == EtcdService::Running
        })
        .await
        .unwrap();
    for n in ["cp1", "cp2", "w1"] {
        change_kernel_args(&c, n);
    }
    let apply = c
        .json(
            "apply",
            &["--mode", "reboot", "-n", "cp1", "-n", "cp2", "-n", "w1"],
        )
        .await;
    assert_eq!(apply.code, 1, "{}", apply.dump());
    for n in ["cp1", "cp2", "w1"] {
        let node = apply.node(n);
        assert_eq!(node["status"], "failed", "{node:#}");
        assert!(
            text(&node["summary"]).contains("etcd was already degraded"),
            "{node:#}"
        );
        assert!(text(&node["summary"]).contains("cp3"), "{node:#}");
        assert!(
            text(&node["hint"]).contains("--allow-degraded-etcd"),
            "{node:#}"
        );
        assert_eq!(c.fleet.stats(ip(&c, n)).applies_accepted, 0, "{n}");
    }
    // Told to: it goes ahead (and cp1's turn fails on the etcd gate, since
    // cp3 stays unhealthy).
    let forced = c
        .json(
            "apply",
            &[
                "--mode",
                "reboot",
                "-n",
                "cp1",
                "--allow-degraded-etcd",
                "--stuck-after",
                "1s",
            ],
        )
        .await;
    assert_eq!(
        c.fleet.stats(ip(&c, "cp1")).applies_accepted,
        1,
        "{}",
        forced.dump()
    );
    assert!(
        forced
            .events("warning")
            .iter()
            .any(|w| text(&w["message"]).contains("--allow-degraded-etcd")),
        "{}",
        forced.dump()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_nodes_join_a_running_cluster_with_apply_wait() {
    // cp3 and w2 are switched on later (300 ms): machines added to a running cluster.
    let c = cluster(
        3,
        2,
        Some("nodes: { cp1: { already_bootstrapped: true }, cp2: { configured: true }, w1: { configured: true }, cp3: { power_on_after: 15s }, w2: { power_on_after: 15s } }"),
    )
    .await;
    for n in ["cp1", "cp2", "w1"] {
        c.fleet
            .wait_for(ip(&c, n), Duration::from_secs(30), |s| {
                s.stage == Stage::Running && s.ready
            })
            .await
            .unwrap_or_else(|| panic!("{n} never became ready"));
    }
    assert!(!c.fleet.snapshot(ip(&c, "cp3")).powered);
    let apply = c.json("apply", &["-n", "cp3", "-n", "w2", "--wait"]).await;
    assert_eq!(apply.code, 0, "{}", apply.dump());
    let cp3 = apply.node("cp3");
    assert_eq!(cp3["facts"]["etcd_member"], true, "{cp3:#}");
    assert!(text(&cp3["summary"]).contains("joined etcd"), "{cp3:#}");
    let mut members = c.fleet.etcd_clusters();
    assert_eq!(members.len(), 1, "{members:?}");
    members[0].sort();
    assert_eq!(members[0], ["cp1", "cp2", "cp3"]);
    let w2 = c.fleet.snapshot(ip(&c, "w2"));
    assert!(w2.stage == Stage::Running && w2.ready, "{w2:?}");
    assert!(text(&apply.node("w2")["summary"]).contains("running, ready"));
}

/// Every secret of the generated cluster: the leaves of its secrets bundle.
fn bundle_secrets(c: &Cluster) -> Vec<String> {
    let text = std::fs::read_to_string(c.dir().join("talsecret.yaml")).unwrap();
    let v: yaml_serde::Value = yaml_serde::from_str(&text).unwrap();
    let mut out = Vec::new();
    fn walk(v: &yaml_serde::Value, out: &mut Vec<String>) {
        match v {
            yaml_serde::Value::Mapping(m) => m.values().for_each(|v| walk(v, out)),
            yaml_serde::Value::Sequence(s) => s.iter().for_each(|v| walk(v, out)),
            yaml_serde::Value::String(s) if s.len() >= 16 => out.push(s.clone()),
            _ => {}
        }
    }
    walk(&v, &mut out);
    assert!(out.len() >= 6, "{out:?}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_shows_the_change_per_document_and_no_secret() {
    let c = cluster(
        1,
        1,
        Some("nodes: { cp1: { configured: true }, w1: { configured: true } }"),
    )
    .await;
    c.fleet
        .wait_for(ip(&c, "cp1"), Duration::from_secs(30), |s| {
            s.mode == NodeMode::Configured
        })
        .await
        .unwrap();
    let mut secrets = bundle_secrets(&c);
    change_kernel_args(&c, "cp1");
    // A new trustd token: a secret that changes.
    let path = config_path(&c, "cp1");
    let cfg = std::fs::read_to_string(&path).unwrap();
    let token = cfg
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .unwrap()
        .to_string();
    let new_token = "q1w2e3.r4t5y6u7i8o9p0a1s2";
    std::fs::write(&path, cfg.replacen(&token, new_token, 1)).unwrap();
    secrets.push(new_token.to_string());

    let json = c.json("apply", &["--dry-run", "-vv"]).await;
    assert_eq!(json.code, 0, "{}", json.dump());
    let mut args: Vec<String> = vec!["apply".into()];
    args.extend(c.target_args());
    args.push("--dry-run".into());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let human = c.run(&refs).await;
    assert_eq!(human.code, 0, "{}", human.dump());

    let cp1 = json.node("cp1");
    let lines: Vec<String> = cp1["facts"]["diff"]["documents"][0]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| text(&l["text"]))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l == "+ machine.install.extraKernelArgs: [talstrap.rollout=1]"),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l == "~ machine.token: <redacted> (changed)"),
        "{lines:?}"
    );
    assert_eq!(
        cp1["facts"]["reboot"], true,
        "machine.token needs a reboot: {cp1:#}"
    );
    assert!(human.stdout.contains("diff for cp1"), "{}", human.stdout);
    assert!(
        human
            .stdout
            .contains("+ machine.install.extraKernelArgs: [talstrap.rollout=1]"),
        "{}",
        human.stdout
    );
    assert!(
        human
            .stdout
            .contains("~ machine.token: <redacted> (changed)  [reboot]"),
        "{}",
        human.stdout
    );
    for out in [&json.stdout, &json.stderr, &human.stdout, &human.stderr] {
        for s in &secrets {
            assert!(!out.contains(s.as_str()), "a secret leaked: {out}");
        }
    }
    // The CI contract: changes pending, and on which nodes.
    let details = &json.report()["details"];
    assert_eq!(details["changes_pending"], true, "{details:#}");
    assert_eq!(
        details["pending_nodes"],
        serde_json::json!(["cp1"]),
        "{details:#}"
    );
    assert!(
        human.stdout.contains("changes pending on 1 node: cp1"),
        "{}",
        human.stdout
    );
    let none = c.json("apply", &["--dry-run", "-n", "w1"]).await;
    assert_eq!(none.code, 0, "{}", none.dump());
    assert_eq!(none.report()["details"]["changes_pending"], false);
    for n in ["cp1", "w1"] {
        assert_eq!(c.fleet.stats(ip(&c, n)).applies_accepted, 0, "{n}");
    }
}

/// A change Talos cannot apply live (machine.env): an auto apply reboots.
fn change_env(c: &Cluster, host: &str) {
    let path = config_path(c, host);
    let cfg = std::fs::read_to_string(&path).unwrap();
    assert_eq!(cfg.matches("\nmachine:\n").count(), 1, "{cfg}");
    let changed = cfg.replace(
        "\nmachine:\n",
        "\nmachine:\n  env:\n    TALSTRAP_TEST: \"1\"\n",
    );
    std::fs::write(&path, changed).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_apply_waits_send_each_node_its_config_once() {
    // On a loaded machine one run may find a node down, rebooting for the
    // other run's config; once it answers again it must ask what the node
    // runs before sending (it used to send the config a second time).
    let c = cluster(
        1,
        1,
        Some("nodes: { cp1: { configured: true }, w1: { configured: true } }"),
    )
    .await;
    for n in ["cp1", "w1"] {
        c.fleet
            .wait_for(ip(&c, n), Duration::from_secs(30), |s| {
                s.mode == NodeMode::Configured
            })
            .await
            .unwrap_or_else(|| panic!("{n} never came up configured"));
        change_env(&c, n);
    }
    let (a, b) = tokio::join!(c.json("apply", &["--wait"]), c.json("apply", &["--wait"]));
    assert_eq!(a.code, 0, "{}", a.dump());
    assert_eq!(b.code, 0, "{}", b.dump());
    for n in ["cp1", "w1"] {
        let s = c.fleet.stats(ip(&c, n));
        assert_eq!(
            s.applies_accepted,
            1,
            "{n} was sent its config by both runs:\n{}\n{}",
            a.dump(),
            b.dump()
        );
        assert_eq!(s.reboots, 1, "{n}");
    }
}
