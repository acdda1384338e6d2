//! `talstrap bootstrap` end to end: exactly one etcd cluster, a private
//! kubeconfig, the cluster-wide guard, no early resend after a lost reply,
//! `--auto` elections (quorum, oldest boot time, concurrent runners) and the
//! failure paths the operator sees (etcd never healthy, time not in sync,
//! an existing kubeconfig).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use serde_json::Value;
use talstrap::testing::format_duration;

use crate::support::*;

const CPS: [&str; 3] = ["cp1", "cp2", "cp3"];

/// `apply --wait` on the whole cluster: every control plane ready for bootstrap.
async fn apply_all(c: &Cluster) {
    let apply = c.json("apply", &["--wait"]).await;
    assert_eq!(apply.code, 0, "apply --wait failed:\n{}", apply.dump());
}

/// Bootstrap requests each node has received (counted on arrival, before
/// any injected latency or failure), by hostname.
fn bootstrap_calls(c: &Cluster, hosts: &[&str]) -> BTreeMap<String, u64> {
    hosts
        .iter()
        .map(|h| {
            let ip: IpAddr = c.ip(h).parse().unwrap();
            (h.to_string(), c.fleet.stats(ip).calls("Bootstrap"))
        })
        .collect()
}

/// Bootstraps the simulator accepted (a new etcd cluster each), summed.
fn bootstraps_accepted(c: &Cluster, hosts: &[&str]) -> u64 {
    hosts
        .iter()
        .map(|h| {
            let ip: IpAddr = c.ip(h).parse().unwrap();
            c.fleet.stats(ip).bootstraps_accepted
        })
        .sum()
}

fn ip_of(c: &Cluster, host: &str) -> IpAddr {
    c.ip(host).parse().unwrap()
}

/// All the text a run showed the user, in one string (report messages,
/// node summaries, errors, hints, warnings).
fn all_text(run: &Run) -> String {
    let r = run.report();
    let mut parts: Vec<String> = Vec::new();
    for m in r["messages"].as_array().into_iter().flatten() {
        parts.push(m.as_str().unwrap_or_default().to_string());
    }
    for n in r["nodes"].as_array().into_iter().flatten() {
        parts.push(n["summary"].as_str().unwrap_or_default().to_string());
        parts.push(
            n["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
        parts.push(n["hint"].as_str().unwrap_or_default().to_string());
        for w in n["warnings"].as_array().into_iter().flatten() {
            parts.push(w.as_str().unwrap_or_default().to_string());
        }
    }
    parts.join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_cluster_gets_one_etcd_cluster_and_a_private_kubeconfig() {
    let c = cluster(3, 0, None).await;
    apply_all(&c).await;
    assert!(c.fleet.etcd_clusters().is_empty(), "etcd before bootstrap");

    let kubeconfig = c.tmp.path().join("admin.kubeconfig");
    let kc = kubeconfig.display().to_string();
    let boot = c
        .json("bootstrap", &["--kubeconfig", &kc, "--wait-members"])
        .await;
    assert_eq!(boot.code, 0, "{}", boot.dump());

    // Exactly one etcd cluster, with every control plane in it.
    let clusters = c.fleet.etcd_clusters();
    assert_eq!(clusters.len(), 1, "{clusters:?}");
    let mut members = clusters[0].clone();
    members.sort();
    assert_eq!(members, CPS.map(String::from).to_vec());

    // One Bootstrap call in the whole fleet, on the first control plane.
    let calls = bootstrap_calls(&c, &CPS);
    assert_eq!(calls["cp1"], 1, "{calls:?}");
    assert_eq!(calls.values().sum::<u64>(), 1, "{calls:?}");
    let report = boot.report();
    assert_eq!(
        report["details"]["target"]["node"],
        "cp1",
        "{}",
        boot.dump()
    );
    let node = boot.node("cp1");
    assert_eq!(node["status"], "ok");
    assert_eq!(node["facts"]["bootstrap_calls"], 1, "{}", boot.dump());
    let members_fact: Vec<String> =
        serde_json::from_value(node["facts"]["etcd_members"].clone()).unwrap();
    assert_eq!(members_fact.len(), 3, "{}", boot.dump());

    // The kubeconfig: mode 0600, YAML with a cluster and a user, and the
    // report says where it went.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&kubeconfig).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "kubeconfig mode {mode:o}");
    }
    let text = std::fs::read_to_string(&kubeconfig).unwrap();
    let doc: yaml_serde::Value = yaml_serde::from_str(&text).expect("kubeconfig is YAML");
    let clusters = doc["clusters"].as_sequence().expect("clusters: list");
    assert!(!clusters.is_empty(), "no clusters in kubeconfig");
    assert!(
        clusters[0]["cluster"]["server"].as_str().is_some(),
        "cluster without a server"
    );
    let users = doc["users"].as_sequence().expect("users: list");
    assert!(!users.is_empty(), "no users in kubeconfig");
    assert!(
        report["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m.as_str().unwrap().contains(&kc)),
        "{}",
        boot.dump()
    );
    // No temp file left next to it.
    let names: Vec<String> = std::fs::read_dir(c.tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("admin.kubeconfig"))
        .collect();
    assert_eq!(names, vec!["admin.kubeconfig".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_bootstrap_calls_nothing_and_names_the_proof() {
    let c = cluster(3, 0, None).await;
    apply_all(&c).await;
    let first = c.json("bootstrap", &["--wait-members"]).await;
    assert_eq!(first.code, 0, "{}", first.dump());
    let before = bootstrap_calls(&c, &CPS);
    assert_eq!(before.values().sum::<u64>(), 1, "{before:?}");

    let kubeconfig = c.tmp.path().join("second.kubeconfig");
    let kc = kubeconfig.display().to_string();
    let second = c.json("bootstrap", &["--kubeconfig", &kc]).await;
    assert_eq!(second.code, 0, "{}", second.dump());
    // The kubeconfig is still delivered.
    let text = std::fs::read_to_string(&kubeconfig).unwrap();
    let doc: yaml_serde::Value = yaml_serde::from_str(&text).unwrap();
    assert!(!doc["users"].as_sequence().unwrap().is_empty());
    assert_eq!(
        bootstrap_calls(&c, &CPS),
        before,
        "a second Bootstrap was sent"
    );
    assert_eq!(c.fleet.etcd_clusters().len(), 1);

    let node = second.node("cp1");
    assert_eq!(
        node["facts"]["already_bootstrapped"],
        true,
        "{}",
        second.dump()
    );
    assert_eq!(node["facts"]["bootstrap_calls"], 0, "{}", second.dump());
    let bootstrap_step = node["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "bootstrap")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(bootstrap_step["status"], "skipped", "{}", second.dump());
    // The user is told it was already bootstrapped and which node proves it.
    let text = all_text(&second);
    assert!(text.contains("already bootstrapped"), "{text}");
    let proof_node = CPS
        .iter()
        .find(|h| text.contains(&format!("{h} ({})", c.ip(h))))
        .unwrap_or_else(|| panic!("no node named as proof in:\n{text}"));
    // That node really has etcd.
    let snap = c.fleet.snapshot(ip_of(&c, proof_node));
    assert!(
        snap.etcd.has_data,
        "{proof_node} named as proof has no etcd"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_reply_is_not_resent_within_the_window() {
    let c = cluster(3, 0, Some("nodes: { cp1: { bootstrap_reply_lost: true } }")).await;
    apply_all(&c).await;

    let boot = c
        .json(
            "bootstrap",
            &["--resend-after", "10m", "--etcd-timeout", "1m"],
        )
        .await;
    assert_eq!(boot.code, 0, "{}", boot.dump());
    let calls = bootstrap_calls(&c, &CPS);
    assert_eq!(
        calls["cp1"],
        1,
        "Bootstrap resent: {calls:?}\n{}",
        boot.dump()
    );
    assert_eq!(calls.values().sum::<u64>(), 1, "{calls:?}");
    assert_eq!(c.fleet.etcd_clusters().len(), 1);
    let node = boot.node("cp1");
    assert_eq!(node["status"], "ok", "{}", boot.dump());
    assert_eq!(node["facts"]["bootstrap_calls"], 1, "{}", boot.dump());
    // The step says how it concluded the request was taken.
    let step = node["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "bootstrap")
        .cloned()
        .unwrap();
    assert_eq!(step["status"], "ok", "{}", boot.dump());
    assert!(
        step["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("reply lost"),
        "{}",
        boot.dump()
    );
    assert!(
        boot.events("progress").iter().any(|e| e["message"]
            .as_str()
            .unwrap_or_default()
            .contains("no resend for")),
        "{}",
        boot.dump()
    );
    // And etcd really ended healthy on cp1.
    let snap = c.fleet.snapshot(ip_of(&c, "cp1"));
    assert!(snap.etcd.healthy, "etcd not healthy on cp1");
}

/// A lost reply plus an etcd that never turns healthy: a small
/// `--resend-after` must still not cause a second Bootstrap, because etcd
/// running proves the first one was taken; the run ends at `--etcd-timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_reply_with_small_window_is_not_resent_once_etcd_runs() {
    let c = cluster(
        3,
        0,
        Some("nodes: { cp1: { bootstrap_reply_lost: true, etcd_never_healthy: true } }"),
    )
    .await;
    apply_all(&c).await;

    let boot = c
        .json(
            "bootstrap",
            &["--resend-after", "100ms", "--etcd-timeout", "1500ms"],
        )
        .await;
    assert_eq!(boot.code, 1, "{}", boot.dump());
    let calls = bootstrap_calls(&c, &CPS);
    assert_eq!(
        calls,
        [("cp1".into(), 1), ("cp2".into(), 0), ("cp3".into(), 0)].into()
    );
    assert_eq!(c.fleet.etcd_clusters().len(), 1);
    let node = boot.node("cp1");
    assert_eq!(node["status"], "failed", "{}", boot.dump());
    let err = node["error"]["message"].as_str().unwrap_or_default();
    let expected = format!(
        "etcd not healthy after {}",
        format_duration(Duration::from_millis(1500))
    );
    assert!(err.contains(&expected), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_already_on_another_control_plane_means_bootstrapped() {
    // cp2 already runs etcd; cp1 and cp3 are configured and waiting to
    // join (which takes an hour here, so cp2 stays the only member).
    let c = cluster(
        3,
        0,
        Some(
            "timing: { join: 1h }\nnodes: { cp1: { configured: true }, cp2: { already_bootstrapped: true }, cp3: { configured: true } }",
        ),
    )
    .await;
    let clusters_before = c.fleet.etcd_clusters();
    assert_eq!(clusters_before, vec![vec!["cp2".to_string()]]);

    // Default target is cp1, which has no etcd itself.
    let boot = c.json("bootstrap", &[]).await;
    assert_eq!(boot.code, 0, "{}", boot.dump());
    let calls = bootstrap_calls(&c, &CPS);
    assert_eq!(calls.values().sum::<u64>(), 0, "{calls:?}\n{}", boot.dump());
    assert_eq!(bootstraps_accepted(&c, &CPS), 0);
    let clusters = c.fleet.etcd_clusters();
    assert_eq!(clusters.len(), 1, "{clusters:?}");
    assert!(clusters[0].contains(&"cp2".to_string()));

    let text = all_text(&boot);
    assert!(text.contains("already bootstrapped"), "{text}");
    let cp2 = format!("cp2 ({})", c.ip("cp2"));
    assert!(text.contains(&cp2), "cp2 not named as the proof:\n{text}");
    // The run-level messages say it too, not only the node line.
    let messages = boot.report()["messages"].to_string();
    assert!(
        messages.contains("already bootstrapped") && messages.contains(&cp2),
        "report messages do not say who has etcd: {messages}\n{}",
        boot.dump()
    );

    // Naming another control plane does not narrow the guard.
    let named = c.json("bootstrap", &["-n", "cp3"]).await;
    assert_eq!(named.code, 0, "{}", named.dump());
    assert_eq!(bootstrap_calls(&c, &CPS).values().sum::<u64>(), 0);
    assert!(all_text(&named).contains(&cp2), "{}", named.dump());

    // The same with --auto: the election refuses and names cp2.
    let auto = c.json("bootstrap", &["--auto"]).await;
    assert_eq!(auto.code, 0, "{}", auto.dump());
    assert_eq!(bootstrap_calls(&c, &CPS).values().sum::<u64>(), 0);
    let messages = auto.report()["messages"].to_string();
    assert!(
        messages.contains("already bootstrapped") && messages.contains(&cp2),
        "{}",
        auto.dump()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_never_healthy_ends_at_the_timeout_with_its_last_events() {
    let c = cluster(3, 0, Some("nodes: { cp1: { etcd_never_healthy: true } }")).await;
    apply_all(&c).await;
    let boot = c.json("bootstrap", &["--etcd-timeout", "1s"]).await;
    assert_eq!(boot.code, 1, "{}", boot.dump());
    assert_eq!(bootstrap_calls(&c, &CPS).values().sum::<u64>(), 1);
    let node = boot.node("cp1");
    assert_eq!(node["status"], "failed", "{}", boot.dump());
    let err = node["error"]["message"].as_str().unwrap_or_default();
    let expected = format!(
        "etcd not healthy after {}",
        format_duration(Duration::from_secs(1))
    );
    assert!(err.contains(&expected), "{err}");
    // The etcd service's own events are quoted.
    assert!(err.contains("Bootstrap requested"), "{err}");
    assert!(err.contains("Health check failed"), "{err}");
    let hint = node["hint"].as_str().unwrap_or_default();
    assert!(hint.contains("etcd"), "{}", boot.dump());
    let step = node["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "etcd")
        .cloned()
        .unwrap();
    assert_ne!(step["status"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_not_in_sync_is_retried_then_bootstraps() {
    // Installed control planes booting now; cp1's clock stays unsynced for
    // 100 s after boot (2 s at this time scale), so the first Bootstrap
    // calls are refused with FailedPrecondition.
    let c = cluster(
        3,
        0,
        Some(
            "nodes: { cp1: { configured: true, time_not_synced_for: 100s }, cp2: { configured: true }, cp3: { configured: true } }",
        ),
    )
    .await;
    // --attempts is honoured as given: enough for the clock to sync.
    let boot = c
        .json("bootstrap", &["--wait-members", "--attempts", "12"])
        .await;
    assert_eq!(boot.code, 0, "{}", boot.dump());

    let stats = c.fleet.stats(ip_of(&c, "cp1"));
    assert!(
        stats.bootstrap_calls >= 2,
        "expected a refused Bootstrap first: {stats:?}"
    );
    assert_eq!(stats.bootstraps_accepted, 1);
    assert_eq!(
        bootstrap_calls(&c, &CPS).values().sum::<u64>(),
        stats.bootstrap_calls
    );
    assert_eq!(c.fleet.etcd_clusters().len(), 1);
    let retries = boot.events("step_retry");
    assert!(
        retries.iter().any(|e| e["step"] == "bootstrap"
            && e["error"]
                .as_str()
                .unwrap_or_default()
                .contains("time is not in sync")),
        "no retry on 'time is not in sync':\n{}",
        boot.dump()
    );
    let node = boot.node("cp1");
    assert_eq!(node["status"], "ok");
    assert_eq!(
        node["facts"]["bootstrap_calls"].as_u64(),
        Some(stats.bootstrap_calls)
    );
}

/// `apply` without `--wait`, then `bootstrap` at once: the control planes
/// are still installing (maintenance certificate, then a reboot). Bootstrap
/// waits for its target within its retry bound instead of calling the
/// maintenance certificate a foreign cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_right_after_apply_waits_for_the_install() {
    let c = cluster(3, 0, None).await;
    let apply = c.json("apply", &[]).await;
    assert_eq!(apply.code, 0, "{}", apply.dump());
    let boot = c.json("bootstrap", &["--wait-members"]).await;
    assert_eq!(boot.code, 0, "{}", boot.dump());
    let calls = bootstrap_calls(&c, &CPS);
    assert_eq!(calls["cp2"] + calls["cp3"], 0, "{calls:?}");
    assert_eq!(bootstraps_accepted(&c, &["cp1"]), 1);
    let clusters = c.fleet.etcd_clusters();
    assert_eq!(clusters.len(), 1, "{clusters:?}");
    assert_eq!(clusters[0].len(), 3, "{clusters:?}");
    assert!(
        !boot.stdout.contains("belongs to another cluster"),
        "a maintenance-mode node was called foreign:\n{}",
        boot.dump()
    );
}

/// A target that was never applied stays in maintenance: the run fails after
/// its retries and says so, instead of blaming the talosconfig.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_still_in_maintenance_is_named_as_such() {
    let c = cluster(3, 0, None).await;
    let boot = c
        .run_env(
            &[
                "bootstrap",
                "--talconfig",
                &c.talconfig().display().to_string(),
                "--talosconfig",
                &c.talosconfig().display().to_string(),
                "--port",
                &c.fleet.port().to_string(),
                "-o",
                "json",
            ],
            &[("TALSTRAP_RETRY_DELAY", "1ms")],
        )
        .await;
    assert_eq!(boot.code, 1, "{}", boot.dump());
    assert_eq!(bootstrap_calls(&c, &CPS).values().sum::<u64>(), 0);
    let node = boot.node("cp1");
    let err = node["error"]["message"].as_str().unwrap_or_default();
    assert!(err.contains("maintenance"), "{}", boot.dump());
    assert!(!err.contains("another cluster"), "{err}");
    let hint = node["hint"].as_str().unwrap_or_default();
    assert!(hint.contains("apply"), "{}", boot.dump());
    // It stops at the second look instead of spending every attempt (with
    // --attempts 10, it used to try 10 times and print the hint each time).
    let connect = node["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "connect")
        .cloned()
        .unwrap();
    assert_eq!(connect["attempts"], 2, "{}", boot.dump());
}

/// With many attempts allowed, a node in maintenance still ends the run at
/// once: the first answers already say why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_before_apply_stops_at_once_with_the_hint() {
    let c = cluster(3, 0, None).await;
    let boot = c.json("bootstrap", &["--attempts", "10"]).await;
    assert_eq!(boot.code, 1, "{}", boot.dump());
    let node = boot.node("cp1");
    let connect = node["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "connect")
        .cloned()
        .unwrap();
    assert_eq!(connect["attempts"], 2, "{}", boot.dump());
    assert!(
        node["hint"]
            .as_str()
            .unwrap_or_default()
            .contains("talstrap apply")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_kubeconfig_without_force_is_refused_before_any_node() {
    let c = cluster(3, 0, Some("nodes: { cp1: { configured: true } }")).await;
    let kubeconfig = c.tmp.path().join("kubeconfig");
    std::fs::write(&kubeconfig, "precious: true\n").unwrap();
    let kc = kubeconfig.display().to_string();
    let before = c.fleet.total_connections();

    let boot = c.json("bootstrap", &["--kubeconfig", &kc]).await;
    assert_eq!(boot.code, 2, "{}", boot.dump());
    assert_eq!(c.fleet.total_connections(), before, "a node was contacted");
    let said = format!("{}{}", boot.stdout, boot.stderr);
    assert!(said.contains(&kc), "the file is not named:\n{said}");
    assert!(
        said.contains("--force"),
        "the way out is not named:\n{said}"
    );
    assert_eq!(
        std::fs::read_to_string(&kubeconfig).unwrap(),
        "precious: true\n"
    );
    assert_eq!(bootstrap_calls(&c, &CPS).values().sum::<u64>(), 0);
}

/// `talstrap <cmd> <cluster args> -o json <extra>`, read while it runs.
fn live(c: &Cluster, cmd: &str, extra: &[&str]) -> Live {
    let mut args: Vec<String> = vec![cmd.to_string()];
    args.extend(c.target_args());
    args.extend(["-o".to_string(), "json".to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    Live::spawn(c, &args, &[])
}

fn is_info(v: &Value, needle: &str) -> bool {
    v["type"] == "event"
        && v["event"] == "info"
        && v["message"].as_str().unwrap_or_default().contains(needle)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_waits_for_quorum_and_elects_the_oldest_boot_time() {
    // cp2 boots first; cp1 and cp3 are installed but powered off, so the
    // oldest boot time is neither the first node nor the lowest IP.
    let c = cluster(
        3,
        0,
        Some(
            "nodes: { cp1: { configured: true, powered_off: true }, cp2: { configured: true }, cp3: { configured: true, powered_off: true } }",
        ),
    )
    .await;
    let mut live = live(
        &c,
        "bootstrap",
        &["--auto", "--quorum", "3", "--timeout", "60s"],
    );
    live.wait_for("an election round waiting for quorum", |v| {
        is_info(v, "quorum not reached")
    })
    .await;
    assert_eq!(
        bootstrap_calls(&c, &CPS).values().sum::<u64>(),
        0,
        "Bootstrap sent before quorum"
    );

    // Boot times are whole seconds: power the others on strictly later.
    let cp2_boot = c.fleet.snapshot(ip_of(&c, "cp2")).boot_time;
    while unix_now() <= cp2_boot {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    c.fleet.power_on(ip_of(&c, "cp1")).await;
    live.wait_for("a round that sees cp1", |v| is_info(v, "cp1"))
        .await;
    assert_eq!(bootstrap_calls(&c, &CPS).values().sum::<u64>(), 0);
    c.fleet.power_on(ip_of(&c, "cp3")).await;
    let run = live.finish().await;
    assert_eq!(run.code, 0, "{}", run.dump());

    let boots: BTreeMap<&str, u64> = CPS
        .iter()
        .map(|h| (*h, c.fleet.snapshot(ip_of(&c, h)).boot_time))
        .collect();
    assert!(
        boots["cp2"] < boots["cp1"] && boots["cp2"] < boots["cp3"],
        "{boots:?}"
    );

    let report = run.report();
    assert_eq!(report["details"]["target"]["node"], "cp2", "{}", run.dump());
    let calls = bootstrap_calls(&c, &CPS);
    assert_eq!(calls["cp1"] + calls["cp3"], 0, "{calls:?}");
    assert_eq!(bootstraps_accepted(&c, &["cp2"]), 1, "{calls:?}");
    let clusters = c.fleet.etcd_clusters();
    assert_eq!(clusters.len(), 1, "{clusters:?}");
    assert!(clusters[0].contains(&"cp2".to_string()));

    // Every candidate is listed with why it won or lost.
    let election = &report["details"]["election"];
    assert_eq!(election["quorum"], 3);
    let candidates = election["candidates"].as_array().unwrap();
    let mut ips: Vec<String> = candidates
        .iter()
        .map(|c| c["ip"].as_str().unwrap().to_string())
        .collect();
    ips.sort();
    let mut want: Vec<String> = CPS.iter().map(|h| c.ip(h)).collect();
    want.sort();
    assert_eq!(ips, want, "{}", run.dump());
    for cand in candidates {
        let outcome = cand["outcome"].as_str().unwrap();
        if cand["ip"] == c.ip("cp2") {
            assert!(outcome.starts_with("leader"), "{outcome}");
            assert_eq!(cand["hostname"], "cp2");
        } else {
            assert!(outcome.contains("booted later than cp2"), "{outcome}");
        }
    }
    assert!(
        run.events("info").iter().any(|e| e["message"]
            .as_str()
            .unwrap()
            .contains("election settled: cp2")),
        "{}",
        run.dump()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_auto_runs_make_one_etcd_cluster() {
    let c = cluster(
        3,
        0,
        Some(
            "nodes: { cp1: { configured: true }, cp2: { configured: true }, cp3: { configured: true } }",
        ),
    )
    .await;
    let (a, b) = tokio::join!(
        c.json("bootstrap", &["--auto", "--wait-members"]),
        c.json("bootstrap", &["--auto", "--wait-members"])
    );
    assert_eq!(a.code, 0, "{}", a.dump());
    assert_eq!(b.code, 0, "{}", b.dump());
    let clusters = c.fleet.etcd_clusters();
    assert_eq!(clusters.len(), 1, "two etcd clusters: {clusters:?}");
    let mut members = clusters[0].clone();
    members.sort();
    assert_eq!(members, CPS.map(String::from).to_vec());
    assert_eq!(bootstraps_accepted(&c, &CPS), 1);
    // Both runs elected the same node (or one found etcd already there).
    let targets: Vec<Value> = [&a, &b]
        .iter()
        .filter_map(|r| {
            let t = r.report()["details"]["target"]["node"].clone();
            (!t.is_null()).then_some(t)
        })
        .collect();
    assert!(!targets.is_empty(), "{}\n{}", a.dump(), b.dump());
    assert!(targets.iter().all(|t| *t == targets[0]), "{targets:?}");
    let calls = bootstrap_calls(&c, &CPS);
    let elected = targets[0].as_str().unwrap();
    for (host, n) in &calls {
        if host != elected {
            assert_eq!(
                *n, 0,
                "Bootstrap sent to {host}, not the elected {elected}: {calls:?}"
            );
        }
    }
}

/// Bootstrap requests that get no answer at all (every RPC to cp1 outlasts
/// `--rpc-timeout`), so nothing shows whether one was taken: talstrap
/// watches for `--resend-after` before each resend, and gives up after a
/// bounded number of requests instead of resending forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_bootstrap_is_resent_only_after_the_window_and_not_forever() {
    // 10 s of latency is 200 ms at this time scale; the RPC timeout is 60 ms.
    let c = cluster(
        3,
        0,
        Some(
            "nodes: { cp1: { configured: true, latency: 10s }, cp2: { configured: true }, cp3: { configured: true } }",
        ),
    )
    .await;
    let window = Duration::from_millis(250);
    let boot = c
        .run_env(
            &[
                "bootstrap",
                "--talconfig",
                &c.talconfig().display().to_string(),
                "--talosconfig",
                &c.talosconfig().display().to_string(),
                "--port",
                &c.fleet.port().to_string(),
                "-o",
                "json",
                "--rpc-timeout",
                "60ms",
                "--resend-after",
                "250ms",
            ],
            &[("TALSTRAP_RETRY_DELAY", "1ms")],
        )
        .await;
    assert_eq!(boot.code, 1, "{}", boot.dump());
    let node = boot.node("cp1");
    assert_eq!(node["status"], "failed", "{}", boot.dump());
    let sent = node["facts"]["bootstrap_calls"].as_u64().unwrap();
    assert!(sent >= 2, "never resent:\n{}", boot.dump());
    // The node saw what the client sent, and nobody else got a Bootstrap.
    let calls = bootstrap_calls(&c, &CPS);
    assert_eq!(calls["cp1"], sent, "{calls:?}");
    assert_eq!(calls["cp2"] + calls["cp3"], 0, "{calls:?}");
    assert!(c.fleet.etcd_clusters().len() <= 1);
    // Each resend waited out the window: the step cannot have lasted less
    // than (resends × window).
    let step = node["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "bootstrap")
        .cloned()
        .unwrap();
    let lasted = Duration::from_millis(step["duration_ms"].as_u64().unwrap());
    assert!(
        lasted >= window * (sent as u32 - 1),
        "{sent} requests in {lasted:?} with a {window:?} window:\n{}",
        boot.dump()
    );
    let resends = boot
        .events("progress")
        .iter()
        .filter(|e| {
            e["message"]
                .as_str()
                .unwrap_or_default()
                .contains("sending Bootstrap again")
        })
        .count() as u64;
    assert_eq!(resends, sent - 1, "{}", boot.dump());
    // It ended by itself, saying why.
    let err = node["error"]["message"].as_str().unwrap_or_default();
    assert!(
        err.contains(&format!("no reply to {sent} Bootstrap requests")),
        "{}",
        boot.dump()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_without_quorum_ends_at_the_deadline_with_a_report() {
    let c = cluster(
        3,
        0,
        Some(
            "nodes: { cp1: { configured: true }, cp2: { configured: true }, cp3: { configured: true, powered_off: true } }",
        ),
    )
    .await;
    let boot = c
        .json(
            "bootstrap",
            &["--auto", "--quorum", "3", "--timeout", "1500ms"],
        )
        .await;
    assert_eq!(boot.code, 3, "{}", boot.dump());
    assert_eq!(bootstrap_calls(&c, &CPS).values().sum::<u64>(), 0);
    assert!(c.fleet.etcd_clusters().is_empty());
    // JSON consumers still get a report: status, why, and every candidate.
    let report = boot.report();
    assert_eq!(report["status"], "deadline", "{}", boot.dump());
    assert_eq!(report["exit_code"], 3);
    let messages = report["messages"].to_string();
    assert!(messages.contains("quorum not reached"), "{}", boot.dump());
    let candidates = report["details"]["election"]["candidates"]
        .as_array()
        .unwrap();
    assert_eq!(candidates.len(), 3, "{}", boot.dump());
    let cp3 = candidates
        .iter()
        .find(|x| x["ip"] == c.ip("cp3"))
        .unwrap_or_else(|| panic!("cp3 not listed:\n{}", boot.dump()));
    assert!(
        cp3["outcome"].as_str().unwrap().contains("unreachable"),
        "{cp3}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_interrupted_while_waiting_bootstraps_nothing() {
    let c = cluster(
        3,
        0,
        Some(
            "nodes: { cp1: { configured: true }, cp2: { configured: true }, cp3: { configured: true, powered_off: true } }",
        ),
    )
    .await;
    let mut live = live(&c, "bootstrap", &["--auto", "--timeout", "60s"]);
    live.wait_for("an election round waiting for quorum", |v| {
        is_info(v, "quorum not reached")
    })
    .await;
    live.interrupt();
    // cp3 comes up right after the signal: nothing may be bootstrapped now.
    c.fleet.power_on(ip_of(&c, "cp3")).await;
    let run = live.finish().await;
    assert_eq!(run.code, 130, "{}", run.dump());
    assert_eq!(bootstrap_calls(&c, &CPS).values().sum::<u64>(), 0);
    assert!(c.fleet.etcd_clusters().is_empty());
    let report = run.report();
    assert_eq!(report["status"], "interrupted", "{}", run.dump());
    assert!(
        report["messages"]
            .to_string()
            .contains("nothing was bootstrapped"),
        "{}",
        run.dump()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_targets_are_refused_before_any_node_is_contacted() {
    let c = cluster(
        3,
        1,
        Some("nodes: { cp1: { configured: true }, w1: { configured: true } }"),
    )
    .await;
    let before = c.fleet.total_connections();
    let cases: [(&[&str], &[&str]); 4] = [
        (&["-n", "w1"], &["w1", "worker"]),
        (&["-n", "cp1,cp2"], &["exactly one", "cp1", "cp2"]),
        (&["--auto", "-n", "cp1"], &["--auto"]),
        (
            &["--auto", "--quorum", "4"],
            &["--quorum", "4", "3 control planes"],
        ),
    ];
    for (args, words) in cases {
        let run = c.json("bootstrap", args).await;
        assert_eq!(run.code, 2, "{args:?}:\n{}", run.dump());
        let said = format!("{}{}", run.stdout, run.stderr);
        for w in words {
            assert!(said.contains(w), "{args:?}: {w:?} missing from:\n{said}");
        }
    }
    assert_eq!(c.fleet.total_connections(), before, "a node was contacted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_control_plane_is_the_one_bootstrapped() {
    let c = cluster(
        3,
        0,
        Some(
            "nodes: { cp1: { configured: true }, cp2: { configured: true }, cp3: { configured: true } }",
        ),
    )
    .await;
    let boot = c.json("bootstrap", &["-n", "cp2", "--wait-members"]).await;
    assert_eq!(boot.code, 0, "{}", boot.dump());
    let calls = bootstrap_calls(&c, &CPS);
    // cp2 may still be booting at first (FailedPrecondition, retried); it
    // alone gets requests, and exactly one is accepted.
    assert!(calls["cp2"] >= 1, "{calls:?}");
    assert_eq!(calls["cp1"] + calls["cp3"], 0, "{calls:?}");
    assert_eq!(bootstraps_accepted(&c, &CPS), 1);
    assert_eq!(boot.report()["details"]["target"]["node"], "cp2");
    let clusters = c.fleet.etcd_clusters();
    assert_eq!(clusters.len(), 1, "{clusters:?}");
    assert_eq!(clusters[0].len(), 3, "{clusters:?}");
}

/// `--auto --cidr`: no talconfig; candidates come from a scan of the /24,
/// workers and strangers are listed but never elected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_with_a_scan_elects_among_control_planes_only() {
    // w2 was never applied: it answers in maintenance mode.
    let c = cluster(
        3,
        2,
        Some(
            "nodes: { cp1: { configured: true }, cp2: { configured: true }, cp3: { configured: true }, w1: { configured: true } }",
        ),
    )
    .await;
    let IpAddr::V4(cp1) = ip_of(&c, "cp1") else {
        panic!("IPv4 fleet expected")
    };
    let o = cp1.octets();
    let subnet = format!("{}.{}.{}.0/24", o[0], o[1], o[2]);
    let tc = c.talosconfig().display().to_string();
    let port = c.fleet.port().to_string();
    let kubeconfig = c.tmp.path().join("kubeconfig");
    let kc = kubeconfig.display().to_string();
    let run = c
        .run(&[
            "bootstrap",
            "--auto",
            "--cidr",
            &subnet,
            "--quorum",
            "3",
            "--talosconfig",
            &tc,
            "--port",
            &port,
            "--kubeconfig",
            &kc,
            "-o",
            "json",
            "--timeout",
            "60s",
        ])
        .await;
    assert_eq!(run.code, 0, "{}", run.dump());
    let all = ["cp1", "cp2", "cp3", "w1", "w2"];
    assert_eq!(bootstraps_accepted(&c, &all), 1);
    assert_eq!(c.fleet.etcd_clusters().len(), 1);
    // The leader is the control plane with the oldest boot time, ties to the
    // lowest IP, as the simulator's own clocks say.
    let leader = CPS
        .iter()
        .min_by_key(|h| {
            let ip = ip_of(&c, h);
            (c.fleet.snapshot(ip).boot_time, ip)
        })
        .unwrap();
    let report = run.report();
    assert_eq!(
        report["details"]["target"]["ip"],
        c.ip(leader),
        "{}",
        run.dump()
    );
    // Only the leader was ever sent Bootstrap.
    let calls = bootstrap_calls(&c, &all);
    assert_eq!(calls.values().sum::<u64>(), calls[*leader], "{calls:?}");
    assert_eq!(bootstraps_accepted(&c, &[leader]), 1);
    let candidates = report["details"]["election"]["candidates"]
        .as_array()
        .unwrap();
    let w1 = candidates
        .iter()
        .find(|x| x["ip"] == c.ip("w1"))
        .unwrap_or_else(|| panic!("w1 not listed:\n{}", run.dump()));
    assert!(
        w1["outcome"]
            .as_str()
            .unwrap()
            .contains("not a control plane"),
        "{w1}"
    );
    let w2 = candidates
        .iter()
        .find(|x| x["ip"] == c.ip("w2"))
        .unwrap_or_else(|| panic!("w2 not listed:\n{}", run.dump()));
    assert!(
        w2["seen"]
            .as_str()
            .unwrap_or_default()
            .contains("maintenance"),
        "a maintenance node must not pass for a mere worker: {w2}"
    );
    assert_eq!(candidates.len(), 5, "{}", run.dump());
    assert!(kubeconfig.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_replaces_a_kubeconfig_and_tightens_its_mode() {
    let c = cluster(1, 0, Some("nodes: { cp1: { configured: true } }")).await;
    let kubeconfig = c.tmp.path().join("kubeconfig");
    std::fs::write(&kubeconfig, "old: true\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&kubeconfig, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let kc = kubeconfig.display().to_string();
    let boot = c.json("bootstrap", &["--kubeconfig", &kc, "--force"]).await;
    assert_eq!(boot.code, 0, "{}", boot.dump());
    let text = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(!text.contains("old: true"), "not replaced");
    let doc: yaml_serde::Value = yaml_serde::from_str(&text).unwrap();
    assert!(!doc["clusters"].as_sequence().unwrap().is_empty());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&kubeconfig).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    }

    // A kubeconfig in a directory that does not exist: bad input, nothing contacted.
    let before = c.fleet.total_connections();
    let missing = c.tmp.path().join("no-such-dir").join("kubeconfig");
    let m = missing.display().to_string();
    let run = c.json("bootstrap", &["--kubeconfig", &m]).await;
    assert_eq!(run.code, 2, "{}", run.dump());
    assert!(run.stderr.contains("no-such-dir"), "{}", run.dump());
    assert_eq!(c.fleet.total_connections(), before);
}

/// CI reads the JSON report; bad input should end with one too (status
/// "input", exit code 2, the message), not only a line on stderr.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_in_json_mode_still_ends_with_a_report() {
    let c = cluster(1, 0, None).await;
    let kubeconfig = c.tmp.path().join("kubeconfig");
    std::fs::write(&kubeconfig, "x: 1\n").unwrap();
    let kc = kubeconfig.display().to_string();
    let run = c.json("bootstrap", &["--kubeconfig", &kc]).await;
    assert_eq!(run.code, 2, "{}", run.dump());
    let report = run.report();
    assert_eq!(report["exit_code"], 2);
    assert_eq!(report["status"], "input");
    assert!(
        report["messages"].to_string().contains("--force"),
        "{}",
        run.dump()
    );
}
