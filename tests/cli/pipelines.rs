//! preflight, apply and verify end to end: the real binary against a
//! simulated fleet, one test per behaviour an operator relies on (happy path,
//! retries, unreachable, bad install disk, failed install, stuck node,
//! idempotent re-run, lost reply, dry run, serial/parallel, filters, reboot
//! loop). Each asserts the exit code, the JSON report and, where it matters,
//! what the simulated nodes actually saw.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::Value;
use talstrap::sim::NodeMode;

use crate::support::*;

const ALL: [&str; 5] = ["cp1", "cp2", "cp3", "w1", "w2"];

fn ip(c: &Cluster, host: &str) -> IpAddr {
    c.ip(host).parse().unwrap()
}

fn applies(c: &Cluster, host: &str) -> u64 {
    c.fleet.stats(ip(c, host)).calls("ApplyConfiguration")
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// The named step of a node's report entry.
fn step(node: &Value, name: &str) -> Value {
    node["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name).cloned())
        .unwrap_or_else(|| panic!("no step {name} in {node:#}"))
}

/// Lines of the plain summary table that name `host` with its IP.
fn table_rows<'a>(out: &'a str, c: &Cluster, host: &str) -> Vec<&'a str> {
    let ip = c.ip(host);
    out.lines()
        .filter(|l| !l.starts_with('[') && l.contains(host) && l.contains(&ip))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_nodes_are_applied_then_verified_ready_for_bootstrap() {
    let c = cluster(3, 2, None).await;

    let pre = c.json("preflight", &[]).await;
    assert_eq!(pre.code, 0, "{}", pre.dump());
    for n in ALL {
        let node = pre.node(n);
        assert_eq!(node["status"], "ok", "{n}: {node:#}");
        assert_eq!(node["facts"]["mode"], "maintenance", "{n}");
        assert_eq!(node["facts"]["install_disk"], "/dev/nvme0n1", "{n}");
    }

    let apply = c.json("apply", &[]).await;
    assert_eq!(apply.code, 0, "{}", apply.dump());
    let report = apply.report();
    assert_eq!(report["summary"]["ok"], 5, "{}", apply.dump());
    assert_eq!(report["status"], "success");
    for n in ALL {
        let node = apply.node(n);
        assert_eq!(node["facts"]["mode"], "maintenance", "{n}");
        assert_eq!(node["facts"]["applied_mode"], "auto", "{n}");
        assert_eq!(step(&node, "apply")["status"], "ok", "{n}");
        assert_eq!(applies(&c, n), 1, "{n}: one ApplyConfiguration per node");
    }

    // The plain (non-JSON) verify output: a table row per node.
    let plain = run_env(&c, &args(&c, "verify", false, &[]), &[]).await;
    assert_eq!(plain.code, 0, "{}", plain.dump());
    for n in ALL {
        let rows = table_rows(&plain.stdout, &c, n);
        assert!(
            rows.iter().any(|r| r.contains("ok")),
            "no ok row for {n} in the table:\n{}",
            plain.stdout
        );
    }
    assert!(
        plain.stdout.contains("verify 5 nodes: 5 ok"),
        "{}",
        plain.stdout
    );
    assert!(plain.stdout.contains("exit 0"), "{}", plain.stdout);

    let verify = c.json("verify", &[]).await;
    assert_eq!(verify.code, 0, "{}", verify.dump());
    assert_eq!(verify.report()["summary"]["ok"], 5);
    for n in ["cp1", "cp2", "cp3"] {
        let s = text(&verify.node(n)["summary"]);
        assert!(s.contains("ready for bootstrap"), "{n}: {s}");
        assert_eq!(verify.node(n)["facts"]["stage"], "booting");
    }
    for n in ["w1", "w2"] {
        let s = text(&verify.node(n)["summary"]);
        assert!(s.contains("waiting for the control plane"), "{n}: {s}");
    }
    for n in ALL {
        let snap = c.fleet.snapshot(ip(&c, n));
        assert!(snap.config_applied, "{n}");
        assert_eq!(snap.installed_disk.as_deref(), Some("/dev/nvme0n1"), "{n}");
    }
    // Nothing was bootstrapped along the way.
    assert!(c.fleet.etcd_clusters().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flaky_node_succeeds_on_the_third_attempt_with_growing_backoff() {
    let c = cluster(
        3,
        2,
        Some("nodes: { w1: { flaky: { method: ApplyConfiguration, count: 2 } } }"),
    )
    .await;
    let apply = c.json("apply", &["--wait"]).await;
    assert_eq!(apply.code, 0, "{}", apply.dump());

    let w1 = apply.node("w1");
    assert_eq!(w1["status"], "ok", "{w1:#}");
    assert_eq!(w1["attempts"], 3, "{w1:#}");
    let apply_step = step(&w1, "apply");
    assert_eq!(apply_step["attempts"], 3, "{apply_step:#}");
    assert_eq!(apply_step["status"], "ok");
    assert!(text(&w1["summary"]).contains("waiting for the control plane"));

    let retries: Vec<Value> = apply
        .events("step_retry")
        .into_iter()
        .filter(|e| e["node"] == "w1" && e["step"] == "apply")
        .collect();
    assert_eq!(retries.len(), 2, "{}", apply.dump());
    assert_eq!(
        apply.report()["messages"],
        serde_json::json!(["next: talstrap bootstrap"])
    );
    assert_eq!(retries[0]["attempt"], 1);
    assert_eq!(retries[1]["attempt"], 2);
    let d1 = retries[0]["delay_ms"].as_u64().unwrap();
    let d2 = retries[1]["delay_ms"].as_u64().unwrap();
    assert!(d1 >= 50, "first delay {d1} ms below the 50 ms base");
    assert!(d2 > d1, "backoff must grow: {d1} ms then {d2} ms");
    assert!(
        text(&retries[0]["error"])
            .to_lowercase()
            .contains("unavailable"),
        "{:#}",
        retries[0]
    );

    // Three calls reached the node; only the last one was taken.
    assert_eq!(applies(&c, "w1"), 3);
    assert_eq!(c.fleet.stats(ip(&c, "w1")).applies_accepted, 1);
    for n in ["cp1", "cp2", "cp3", "w2"] {
        assert_eq!(apply.node(n)["attempts"], 1, "{n}");
        assert_eq!(applies(&c, n), 1, "{n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_node_fails_alone() {
    let c = cluster(3, 2, Some("nodes: { cp3: { unreachable: true } }")).await;
    let apply = run_env(
        &c,
        &args(&c, "apply", true, &["--wait"]),
        &[("TALSTRAP_ATTEMPTS", "2")],
    )
    .await;
    assert_eq!(apply.code, 1, "{}", apply.dump());
    let report = apply.report();
    assert_eq!(report["status"], "node_failure", "{report:#}");
    assert_eq!(report["summary"]["failed"], 1);
    assert_eq!(report["summary"]["ok"], 4);

    let cp3 = apply.node("cp3");
    assert_eq!(cp3["status"], "failed");
    assert_eq!(cp3["attempts"], 2, "{cp3:#}");
    let msg = text(&cp3["error"]["message"]);
    assert!(msg.contains("unreachable"), "{msg}");
    assert!(
        msg.contains(&c.ip("cp3")),
        "the error names the node: {msg}"
    );
    assert!(text(&cp3["hint"]).contains("powered on"), "{cp3:#}");
    assert_eq!(step(&cp3, "probe")["status"], "failed");
    assert_eq!(applies(&c, "cp3"), 0);

    for n in ["cp1", "cp2"] {
        assert!(text(&apply.node(n)["summary"]).contains("ready for bootstrap"));
    }
    for n in ["w1", "w2"] {
        assert_eq!(apply.node(n)["status"], "ok", "{n}");
    }

    // The plain table still lists every node, the failure with its reason.
    let plain = run_env(
        &c,
        &args(&c, "apply", false, &["-n", "cp3"]),
        &[("TALSTRAP_ATTEMPTS", "1")],
    )
    .await;
    assert_eq!(plain.code, 1, "{}", plain.dump());
    let rows = table_rows(&plain.stdout, &c, "cp3");
    assert!(
        rows.iter().any(|r| r.contains("failed")),
        "{}",
        plain.stdout
    );
    let table = &plain.stdout[plain.stdout.find("NODE").expect("no table")..];
    assert!(table.contains("unreachable"), "{}", plain.stdout);
    assert!(plain.stdout.contains("hint for cp3"), "{}", plain.stdout);
}

/// `talstrap <cmd> <cluster args> [-o json] <extra>` as an argument list.
fn args(c: &Cluster, cmd: &str, json: bool, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec![cmd.into()];
    args.extend(c.target_args());
    if json {
        args.extend(["-o".into(), "json".into()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Run with extra environment variables.
async fn run_env(c: &Cluster, args: &[String], env: &[(&str, &str)]) -> Run {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    c.run_env(&refs, env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_selector_matching_nothing_fails_preflight_without_touching_the_node() {
    let c = cluster(3, 2, None).await;
    // w2 gets a selector no disk matches, in its machine config and in talconfig.
    let w2 = c
        .fleet
        .nodes()
        .into_iter()
        .find(|n| n.hostname == "w2")
        .unwrap();
    let cfg = std::fs::read_to_string(&w2.config_path).unwrap();
    let old = "    diskSelector:\n      type: nvme\n";
    assert_eq!(cfg.matches(old).count(), 1, "{cfg}");
    std::fs::write(
        &w2.config_path,
        cfg.replace(old, "    diskSelector:\n      model: NoSuchDisk*\n"),
    )
    .unwrap();
    let tc_path = c.talconfig();
    let mut tc: Value = yaml_serde::from_str(&std::fs::read_to_string(&tc_path).unwrap()).unwrap();
    let nodes = tc["nodes"].as_array_mut().unwrap();
    let entry = nodes.iter_mut().find(|n| n["hostname"] == "w2").unwrap();
    entry["installDiskSelector"] = serde_json::json!({ "model": "NoSuchDisk*" });
    std::fs::write(&tc_path, yaml_serde::to_string(&tc).unwrap()).unwrap();

    let pre = c.json("preflight", &["--server-dry-run"]).await;
    assert_eq!(pre.code, 1, "{}", pre.dump());
    assert_eq!(pre.report()["summary"]["failed"], 1, "{}", pre.dump());
    let node = pre.node("w2");
    assert_eq!(node["status"], "failed");
    assert_eq!(step(&node, "install-disk")["status"], "failed");
    let msg = text(&node["error"]["message"]);
    assert!(msg.contains("NoSuchDisk*"), "{msg}");
    assert!(msg.contains("matches no disk"), "{msg}");
    assert!(
        msg.contains("/dev/nvme0n1") && msg.contains("/dev/sda"),
        "the error lists the disks that exist: {msg}"
    );
    assert!(
        text(&node["hint"]).contains("installDiskSelector"),
        "{node:#}"
    );

    // w2 saw no ApplyConfiguration at all (not even the dry run the others got).
    assert_eq!(applies(&c, "w2"), 0);
    assert_eq!(c.fleet.stats(ip(&c, "w2")).applies_accepted, 0);
    let snap = c.fleet.snapshot(ip(&c, "w2"));
    assert_eq!(snap.mode, NodeMode::Maintenance);
    assert!(!snap.config_applied);
    for n in ["cp1", "cp2", "cp3", "w1"] {
        assert_eq!(pre.node(n)["status"], "ok", "{n}");
        assert_eq!(applies(&c, n), 1, "{n}: the server dry run");
        assert_eq!(c.fleet.stats(ip(&c, n)).applies_accepted, 0, "{n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_install_is_reported_back_in_maintenance_with_the_disk_hint() {
    let c = cluster(3, 2, Some("nodes: { w1: { install_fails: true } }")).await;
    let apply = c.json("apply", &["--wait", "--stuck-after", "20s"]).await;
    assert_eq!(apply.code, 1, "{}", apply.dump());
    let w1 = apply.node("w1");
    assert_eq!(w1["status"], "failed", "{w1:#}");
    assert_eq!(step(&w1, "apply")["status"], "ok");
    assert_eq!(step(&w1, "verify")["status"], "failed");
    let msg = text(&w1["error"]["message"]);
    assert!(msg.contains("back in maintenance"), "{msg}");
    assert_eq!(w1["error"]["kind"], "stuck");
    let hint = text(&w1["hint"]);
    assert!(
        hint.contains("machine.install.disk") && hint.contains("diskSelector"),
        "{hint}"
    );
    assert_eq!(c.fleet.stats(ip(&c, "w1")).installs_failed, 1);
    let report = apply.report();
    assert_eq!(report["summary"]["ok"], 4, "{}", apply.dump());
    // Bootstrap is not the next step while a node is down; a re-run is.
    let messages = report["messages"].to_string();
    assert!(!messages.contains("next: talstrap bootstrap"), "{messages}");
    assert!(messages.contains("1 node is not ready"), "{messages}");
    assert!(
        messages.contains("re-run `talstrap apply --wait`"),
        "{messages}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_node_is_reported_before_the_deadline() {
    let c = cluster(3, 2, Some("nodes: { cp2: { stuck_in: booting } }")).await;
    let apply = c
        .json(
            "apply",
            &["--wait", "--stuck-after", "1s", "--timeout", "60s"],
        )
        .await;
    assert_eq!(apply.code, 1, "not the deadline code: {}", apply.dump());
    let report = apply.report();
    assert_eq!(report["summary"]["failed"], 1, "{report:#}");
    assert_eq!(report["summary"]["timed_out"], 0);
    let cp2 = apply.node("cp2");
    assert_eq!(cp2["status"], "failed");
    assert_eq!(cp2["error"]["kind"], "stuck");
    assert_eq!(cp2["facts"]["stage"], "booting");
    let msg = text(&cp2["error"]["message"]);
    assert!(msg.contains("stuck") && msg.contains("booting"), "{msg}");
    assert!(msg.contains("cri not running"), "{msg}");
    let hint = text(&cp2["hint"]);
    assert!(
        hint.contains("services not up") && hint.contains("cri not running"),
        "{hint}"
    );
    for n in ["cp1", "cp3"] {
        assert!(text(&apply.node(n)["summary"]).contains("ready for bootstrap"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_before_stuck_after_ends_with_the_deadline_code() {
    let c = cluster(1, 1, Some("nodes: { cp1: { stuck_in: booting } }")).await;
    let apply = c
        .json(
            "apply",
            &["--wait", "--stuck-after", "5m", "--timeout", "2s"],
        )
        .await;
    assert_eq!(apply.code, 3, "{}", apply.dump());
    let report = apply.report();
    assert_eq!(report["status"], "deadline", "{report:#}");
    let cp1 = apply.node("cp1");
    assert_eq!(cp1["status"], "timed_out", "{cp1:#}");
    assert!(
        text(&cp1["summary"]).contains("deadline reached during verify"),
        "{cp1:#}"
    );
    // The config itself went out before the deadline.
    assert_eq!(step(&cp1, "apply")["status"], "ok");
    assert_eq!(c.fleet.stats(ip(&c, "cp1")).applies_accepted, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerunning_apply_on_a_configured_cluster_changes_nothing() {
    let c = cluster(3, 2, None).await;
    let first = c.json("apply", &["--wait"]).await;
    assert_eq!(first.code, 0, "{}", first.dump());
    let before: BTreeMap<&str, (u64, u64)> = ALL
        .iter()
        .map(|n| {
            let s = c.fleet.stats(ip(&c, n));
            (*n, (s.calls("ApplyConfiguration"), s.reboots))
        })
        .collect();

    let again = c.json("apply", &[]).await;
    assert_eq!(again.code, 0, "{}", again.dump());
    let report = again.report();
    assert_eq!(report["summary"]["skipped"], 5, "{report:#}");
    assert_eq!(report["summary"]["ok"], 0);
    for n in ALL {
        let node = again.node(n);
        assert_eq!(node["status"], "skipped", "{n}");
        assert_eq!(node["facts"]["mode"], "configured", "{n}");
        assert_eq!(node["facts"]["changed"], false, "{n}");
        assert!(
            text(&node["summary"]).contains("already runs this config"),
            "{n}: {node:#}"
        );
        let s = c.fleet.stats(ip(&c, n));
        assert_eq!(
            (s.calls("ApplyConfiguration"), s.reboots),
            before[n],
            "{n}: no new apply, no reboot"
        );
    }

    // The plain output says so too, for every node.
    let plain = run_env(&c, &args(&c, "apply", false, &[]), &[]).await;
    assert_eq!(plain.code, 0, "{}", plain.dump());
    for n in ALL {
        let rows = table_rows(&plain.stdout, &c, n);
        assert!(
            rows.iter().any(|r| r.contains("skipped")),
            "no skipped row for {n}:\n{}",
            plain.stdout
        );
    }
    assert!(
        plain.stdout.contains("apply 5 nodes: 5 skipped"),
        "{}",
        plain.stdout
    );
    assert!(plain.stdout.contains("already runs this config"));
    for n in ALL {
        assert_eq!(applies(&c, n), before[n].0, "{n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_reply_lost_to_the_reboot_still_ends_verified() {
    let c = cluster(3, 2, Some("nodes: { cp1: { apply_reply_lost: true } }")).await;
    let apply = c.json("apply", &["--wait"]).await;
    assert_eq!(apply.code, 0, "{}", apply.dump());
    let cp1 = apply.node("cp1");
    assert_eq!(cp1["status"], "ok", "{cp1:#}");
    let s = text(&cp1["summary"]);
    assert!(s.contains("reply lost"), "{s}");
    assert!(s.contains("ready for bootstrap"), "{s}");
    // Sent once, taken once: the lost reply was not answered with a resend.
    assert_eq!(applies(&c, "cp1"), 1);
    assert_eq!(c.fleet.stats(ip(&c, "cp1")).applies_accepted, 1);
    assert!(c.fleet.snapshot(ip(&c, "cp1")).config_applied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_on_maintenance_nodes_changes_nothing() {
    let c = cluster(3, 2, None).await;
    let dry = c.json("apply", &["--dry-run"]).await;
    assert_eq!(dry.code, 0, "{}", dry.dump());
    assert_eq!(dry.report()["summary"]["ok"], 5);
    for n in ALL {
        let node = dry.node(n);
        assert!(
            text(&node["summary"]).contains("would install"),
            "{n}: {node:#}"
        );
        assert!(
            text(&node["facts"]["dry_run"]).contains("maintenance mode"),
            "{n}: {node:#}"
        );
        assert!(
            node["steps"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["name"] != "apply")
        );
        let stats = c.fleet.stats(ip(&c, n));
        assert_eq!(stats.applies_accepted, 0, "{n}");
        assert_eq!(stats.installs, 0, "{n}");
        let snap = c.fleet.snapshot(ip(&c, n));
        assert!(!snap.config_applied, "{n}");
        assert_eq!(snap.mode, NodeMode::Maintenance, "{n}");
    }
}

/// Per node: index of its first `step_started` and of its `node_finished`.
fn spans(run: &Run) -> BTreeMap<String, (usize, usize)> {
    let mut out: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (i, l) in run.lines().iter().enumerate() {
        if l["type"] != "event" {
            continue;
        }
        if l["event"] == "step_started" {
            let name = text(&l["node"]);
            out.entry(name).or_insert((i, usize::MAX));
        } else if l["event"] == "node_finished" {
            let name = text(&l["outcome"]["node"]);
            out.entry(name).or_insert((usize::MAX, i)).1 = i;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_gives_the_same_results_one_node_at_a_time() {
    let (serial_c, parallel_c) = tokio::join!(cluster(3, 2, None), cluster(3, 2, None));
    let serial = serial_c.json("apply", &["--serial"]).await;
    let parallel = parallel_c.json("apply", &[]).await;
    assert_eq!(serial.code, 0, "{}", serial.dump());
    assert_eq!(parallel.code, 0, "{}", parallel.dump());
    for n in ALL {
        let (s, p) = (serial.node(n), parallel.node(n));
        assert_eq!(s["status"], p["status"], "{n}");
        assert_eq!(s["summary"], p["summary"], "{n}");
        let names = |v: &Value| -> Vec<String> {
            v["steps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| text(&s["name"]))
                .collect()
        };
        assert_eq!(names(&s), names(&p), "{n}");
        assert_eq!(applies(&serial_c, n), 1, "{n}");
    }
    assert_eq!(
        serial.events("run_started")[0]["parallel"],
        1,
        "{}",
        serial.dump()
    );

    // Serial: each node starts after the previous one finished.
    let mut s: Vec<(usize, usize)> = spans(&serial).into_values().collect();
    assert_eq!(s.len(), 5);
    s.sort();
    for w in s.windows(2) {
        assert!(w[1].0 > w[0].1, "overlap in serial run: {s:?}");
    }
    // Parallel: some node starts before another one finished.
    let mut p: Vec<(usize, usize)> = spans(&parallel).into_values().collect();
    p.sort();
    assert!(
        p.windows(2).any(|w| w[1].0 < w[0].1),
        "parallel run never had two nodes in flight: {p:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_and_role_filters_touch_only_those_nodes() {
    let c = cluster(3, 2, None).await;
    let one = c.json("apply", &["-n", "cp2"]).await;
    assert_eq!(one.code, 0, "{}", one.dump());
    let nodes = one.report()["nodes"].as_array().unwrap().clone();
    assert_eq!(nodes.len(), 1, "{}", one.dump());
    assert_eq!(nodes[0]["node"], "cp2");
    assert_eq!(applies(&c, "cp2"), 1);
    for n in ["cp1", "cp3", "w1", "w2"] {
        assert_eq!(c.fleet.stats(ip(&c, n)).connections, 0, "{n} was contacted");
    }

    let workers = c.json("apply", &["--role", "worker"]).await;
    assert_eq!(workers.code, 0, "{}", workers.dump());
    let names: Vec<String> = workers.report()["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| text(&n["node"]))
        .collect();
    assert_eq!(names, ["w1", "w2"]);
    for n in ["w1", "w2"] {
        assert_eq!(applies(&c, n), 1, "{n}");
    }
    for n in ["cp1", "cp3"] {
        assert_eq!(c.fleet.stats(ip(&c, n)).connections, 0, "{n} was contacted");
    }
    assert_eq!(applies(&c, "cp2"), 1, "cp2 not applied again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reboot_loop_is_reported_by_verify() {
    let c = cluster(3, 2, Some("nodes: { cp3: { reboot_loop: true } }")).await;
    let apply = c.json("apply", &[]).await;
    assert_eq!(apply.code, 0, "{}", apply.dump());
    let verify = c.json("verify", &["--stuck-after", "20s"]).await;
    assert_eq!(verify.code, 1, "{}", verify.dump());
    let cp3 = verify.node("cp3");
    assert_eq!(cp3["status"], "failed", "{cp3:#}");
    assert_eq!(cp3["error"]["kind"], "stuck", "{}", verify.dump());
    assert!(
        text(&cp3["error"]["message"]).contains("reboot loop"),
        "{cp3:#}"
    );
    assert!(text(&cp3["hint"]).contains("keeps rebooting"), "{cp3:#}");
    assert!(c.fleet.stats(ip(&c, "cp3")).reboots >= 3);
    assert_eq!(verify.report()["summary"]["ok"], 4, "{}", verify.dump());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_failing_faster_than_verify_looks_is_still_reported_as_install_failure() {
    // The node is back in maintenance before verify's first probe: only the
    // new maintenance certificate tells that it rebooted.
    let c = cluster(
        1,
        1,
        Some("timing: { install: 0s, reboot: 0s }\nnodes: { w1: { install_fails: true } }"),
    )
    .await;
    let apply = c.json("apply", &["--wait", "--stuck-after", "20s"]).await;
    assert_eq!(apply.code, 1, "{}", apply.dump());
    let w1 = apply.node("w1");
    assert_eq!(w1["status"], "failed", "{w1:#}");
    let msg = text(&w1["error"]["message"]);
    assert!(msg.contains("install failed"), "{}", apply.dump());
    assert!(text(&w1["hint"]).contains("diskSelector"), "{w1:#}");
    assert_eq!(c.fleet.stats(ip(&c, "w1")).installs_failed, 1);
    assert_eq!(applies(&c, "w1"), 1, "verify never re-sends the config");
}

/// Change cp1's config in a way Talos cannot apply live (machine.env), so
/// an auto apply reboots the node.
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
async fn mtls_apply_whose_reply_is_lost_to_the_reboot_is_sent_once() {
    let c = cluster(
        1,
        0,
        Some("nodes: { cp1: { configured: true, apply_reply_lost: true } }"),
    )
    .await;
    needs_reboot_change(&c);

    let apply = c.json("apply", &["--wait"]).await;
    assert_eq!(apply.code, 0, "{}", apply.dump());
    let cp1 = apply.node("cp1");
    assert_eq!(cp1["facts"]["mode"], "configured", "{cp1:#}");
    assert_eq!(cp1["facts"]["reply_lost"], true, "{cp1:#}");
    let detail = text(&step(&cp1, "apply")["detail"]);
    assert!(
        detail.contains("reply was lost") || detail.contains("connection dropped"),
        "{detail}"
    );
    eprintln!("apply step: {detail}");
    assert!(
        text(&cp1["summary"]).contains("ready for bootstrap"),
        "{cp1:#}"
    );
    let stats = c.fleet.stats(ip(&c, "cp1"));
    assert_eq!(
        stats.applies_accepted,
        1,
        "the config was sent again after the lost reply: {}",
        apply.dump()
    );
    assert_eq!(stats.reboots, 1, "one reboot for one apply");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_resend_refused_while_the_node_reboots_counts_as_sent() {
    // At half speed the node waits 100 ms between the lost reply and its
    // reboot; the retry (20-40 ms later) lands in that window, where Talos
    // refuses a second apply because it is rebooting for the first.
    let c = cluster_scaled(
        1,
        0,
        Some("nodes: { cp1: { configured: true, apply_reply_lost: true } }"),
        0.5,
    )
    .await;
    needs_reboot_change(&c);
    let apply = run_env(
        &c,
        &args(&c, "apply", true, &["--wait"]),
        &[("TALSTRAP_RETRY_DELAY", "20ms")],
    )
    .await;
    assert_eq!(apply.code, 0, "{}", apply.dump());
    let cp1 = apply.node("cp1");
    assert!(
        text(&cp1["summary"]).contains("ready for bootstrap"),
        "{cp1:#}"
    );
    let detail = text(&step(&cp1, "apply")["detail"]);
    assert!(detail.contains("went down to reboot"), "{detail}");
    let stats = c.fleet.stats(ip(&c, "cp1"));
    assert_eq!(stats.applies_accepted, 1, "{}", apply.dump());
    assert_eq!(stats.calls("ApplyConfiguration"), 2, "{}", apply.dump());
    assert_eq!(stats.reboots, 1);
}
