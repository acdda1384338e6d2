//! Exactly one etcd cluster under races and partial views: concurrent
//! `bootstrap` runs with different targets (one machine, and "different
//! machines" with separate lock directories), control planes that cannot be
//! asked (fail closed, and the explicit override), and the one-cluster check
//! after sending. Clusters are counted from the simulator's own records of
//! each control plane's etcd membership, an outside view.

use std::time::Duration;

use talstrap::sim::EtcdService;

use crate::support::*;

const CONFIGURED: &str =
    "nodes: { cp1: { configured: true }, cp2: { configured: true }, cp3: { configured: true } }";

/// Every control plane booted far enough to take a Bootstrap.
async fn ready(c: &Cluster) {
    for n in c.fleet.nodes() {
        if n.role != talstrap::sim::Role::ControlPlane {
            continue;
        }
        let ok = c
            .fleet
            .wait_for(n.ip, Duration::from_secs(20), |s| {
                s.etcd.service == EtcdService::Preparing
            })
            .await;
        assert!(ok.is_some(), "{} never became ready", n.hostname);
    }
}

fn bootstrap_args(c: &Cluster, target: Option<&str>) -> Vec<String> {
    let mut a = vec!["bootstrap".to_string()];
    a.extend(c.target_args());
    a.extend(["-o".into(), "json".into(), "--attempts".into(), "3".into()]);
    if let Some(t) = target {
        a.extend(["-n".into(), t.into()]);
    }
    a
}

async fn run_in(c: &Cluster, args: &[String], runtime_dir: &std::path::Path) -> Run {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let dir = runtime_dir.display().to_string();
    c.run_env(&refs, &[("TALSTRAP_RUNTIME_DIR", dir.as_str())])
        .await
}

/// Whether a run says it bootstrapped (sent a Bootstrap that was taken).
fn bootstrapped(run: &Run) -> bool {
    run.code == 0
        && run.report()["nodes"]
            .as_array()
            .is_some_and(|ns| ns.iter().any(|n| n["status"] == "ok"))
}

/// One race: two runs at once with different targets. Returns the number of
/// etcd clusters and whether both runs ended in success.
async fn race(pair: (Option<&str>, Option<&str>), same_machine: bool) -> (usize, bool, String) {
    let c = cluster(3, 0, Some(CONFIGURED)).await;
    ready(&c).await;
    let a_dir = c.tmp.path().join("rt-a");
    let b_dir = if same_machine {
        a_dir.clone()
    } else {
        c.tmp.path().join("rt-b")
    };
    let (a_args, b_args) = (bootstrap_args(&c, pair.0), bootstrap_args(&c, pair.1));
    let (a, b) = tokio::join!(run_in(&c, &a_args, &a_dir), run_in(&c, &b_args, &b_dir));
    let clusters = c.fleet.etcd_clusters();
    // Never two "bootstrapped": one sent, the other found etcd or failed.
    assert!(
        !(bootstrapped(&a) && bootstrapped(&b)),
        "both runs bootstrapped ({clusters:?}):\nA {}\nB {}",
        a.dump(),
        b.dump()
    );
    let both_ok = a.code == 0 && b.code == 0;
    let note = format!("{pair:?} exits {} {}", a.code, b.code);
    (clusters.len(), both_ok, note)
}

const PAIRS: [(Option<&str>, Option<&str>); 3] = [
    (Some("cp1"), Some("cp2")),
    (None, Some("cp3")),
    (Some("cp3"), Some("cp2")),
];

/// Runs on one machine share the cluster lock: one cluster, every trial.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_with_different_targets_on_one_machine_make_one_cluster() {
    let trials = 12;
    let mut results = Vec::new();
    for i in 0..trials {
        let (n, both_ok, note) = race(PAIRS[i % PAIRS.len()], true).await;
        assert_eq!(n, 1, "trial {i}: {n} etcd clusters ({note})");
        assert!(both_ok, "trial {i}: {note}");
        results.push(n);
    }
    eprintln!("one machine: {trials} trials, clusters per trial {results:?}");
}

/// A copy of the talconfig with cp2 listed first, so that its default
/// target is cp2 (an operator whose inventory is ordered differently).
fn reordered_talconfig(c: &Cluster) -> String {
    let text = std::fs::read_to_string(c.talconfig()).unwrap();
    let mut v: yaml_serde::Value = yaml_serde::from_str(&text).unwrap();
    let nodes = v
        .get_mut("nodes")
        .and_then(|n| n.as_sequence_mut())
        .unwrap();
    nodes.swap(0, 1);
    let path = c.talconfig().with_file_name("talconfig-cp2-first.yaml");
    std::fs::write(&path, yaml_serde::to_string(&v).unwrap()).unwrap();
    path.display().to_string()
}

/// Both runs see their target as the first control plane (no settle wait):
/// on one machine only the cluster lock and the last look under it keep
/// the second run from sending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_default_runs_with_differently_ordered_inventories_make_one_cluster() {
    let trials = 8;
    let mut waited = 0;
    for i in 0..trials {
        let c = cluster(3, 0, Some(CONFIGURED)).await;
        ready(&c).await;
        let rt = c.tmp.path().join("rt");
        let a_args = bootstrap_args(&c, None);
        let mut b_args = bootstrap_args(&c, None);
        let pos = b_args.iter().position(|a| a == "--talconfig").unwrap();
        b_args[pos + 1] = reordered_talconfig(&c);
        let (a, b) = tokio::join!(run_in(&c, &a_args, &rt), run_in(&c, &b_args, &rt));
        let clusters = c.fleet.etcd_clusters();
        assert_eq!(
            clusters.len(),
            1,
            "trial {i}: {clusters:?}\nA {}\nB {}",
            a.dump(),
            b.dump()
        );
        assert!(
            !(bootstrapped(&a) && bootstrapped(&b)),
            "trial {i}: both bootstrapped"
        );
        assert_eq!(
            (a.code, b.code),
            (0, 0),
            "trial {i}:\nA {}\nB {}",
            a.dump(),
            b.dump()
        );
        if [&a, &b].iter().any(|r| {
            r.stdout
                .contains("another bootstrap of this cluster runs on this machine")
        }) {
            waited += 1;
        }
    }
    eprintln!(
        "reordered inventories, one machine: {trials} trials, one cluster each; the lock was waited for in {waited}"
    );
}

/// Runs on "different machines" (separate lock directories) rely on the
/// settle window of later-ranked targets; whatever happens, never two
/// clusters with both runs reporting success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_on_different_machines_never_both_succeed_with_two_clusters() {
    let trials = 12;
    let mut results = Vec::new();
    for i in 0..trials {
        let (n, both_ok, note) = race(PAIRS[i % PAIRS.len()], false).await;
        assert!(n >= 1, "trial {i}: no cluster ({note})");
        assert!(
            n == 1 || !both_ok,
            "trial {i}: {n} clusters and both runs succeeded ({note})"
        );
        results.push(n);
    }
    eprintln!("two machines: {trials} trials, clusters per trial {results:?}");
    assert!(
        results.iter().all(|n| *n == 1),
        "clusters per trial: {results:?}"
    );
}

/// The reproduction: cp2 runs etcd but is silent; cp1 and cp3 are
/// ready. Bootstrapping cp1 would make a second cluster: refused, exit 1,
/// nothing sent; the same with `--auto --quorum 2`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_control_plane_with_etcd_is_never_bootstrapped_around() {
    let c = cluster(
        3,
        0,
        Some(
            "timing: { join: 100000s }\nnodes: { cp1: { configured: true }, cp2: { already_bootstrapped: true, unreachable: true }, cp3: { configured: true } }",
        ),
    )
    .await;
    let run = c
        .json(
            "bootstrap",
            &["--attempts", "2", "--connect-timeout", "200ms"],
        )
        .await;
    assert_eq!(run.code, 1, "{}", run.dump());
    let node = run.node("cp1");
    assert_eq!(node["status"], "failed", "{}", run.dump());
    let err = node["error"]["message"].as_str().unwrap_or_default();
    assert!(
        err.contains("cp2") && err.contains("second etcd cluster"),
        "{err}"
    );
    let hint = node["hint"].as_str().unwrap_or_default();
    assert!(
        hint.contains("--allow-unreachable-control-planes"),
        "{hint}"
    );
    let total: u64 = ["cp1", "cp2", "cp3"]
        .iter()
        .map(|h| c.fleet.stats(c.ip(h).parse().unwrap()).bootstrap_calls)
        .sum();
    assert_eq!(total, 0, "a Bootstrap was sent");
    assert_eq!(c.fleet.etcd_clusters().len(), 1);

    let auto = c
        .json(
            "bootstrap",
            &[
                "--auto",
                "--quorum",
                "2",
                "--attempts",
                "2",
                "--connect-timeout",
                "200ms",
            ],
        )
        .await;
    assert_ne!(auto.code, 0, "{}", auto.dump());
    assert_eq!(c.fleet.etcd_clusters().len(), 1, "{}", auto.dump());
    let total: u64 = ["cp1", "cp2", "cp3"]
        .iter()
        .map(|h| c.fleet.stats(c.ip(h).parse().unwrap()).bootstrap_calls)
        .sum();
    assert_eq!(
        total,
        0,
        "--auto --quorum 2 sent a Bootstrap:\n{}",
        auto.dump()
    );
}

/// `--auto --cidr`: a control plane the scan finds that already runs etcd
/// but hangs (TCP open, TLS never answers) is excluded from the election,
/// and the guard must still hear from it before sending: the elected
/// target is not bootstrapped around it. It used to be (the guard asked the
/// target only), forming a second etcd cluster reported as success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_cidr_never_bootstraps_around_a_discovered_control_plane_that_hangs() {
    let c = cluster(
        3,
        0,
        Some(
            "timing: { join: 100000s }\nnodes: { cp1: { configured: true }, cp2: { configured: true }, cp3: { already_bootstrapped: true, hang_after_accept: true } }",
        ),
    )
    .await;
    ready_cp(&c, "cp1").await;
    ready_cp(&c, "cp2").await;
    let net = format!("{}/24", c.ip("cp1"));
    let tc = c.talosconfig().display().to_string();
    let port = c.fleet.port().to_string();
    let args = [
        "bootstrap",
        "--auto",
        "--cidr",
        &net,
        "--quorum",
        "2",
        "--talosconfig",
        &tc,
        "--port",
        &port,
        "--attempts",
        "2",
        "--connect-timeout",
        "200ms",
        "--timeout",
        "90s",
        "-o",
        "json",
    ];
    let run = c.run(&args).await;
    assert_eq!(run.code, 1, "{}", run.dump());
    let cp3 = c.ip("cp3");
    let report = run.report();
    let nodes = report["nodes"].as_array().cloned().unwrap_or_default();
    assert_eq!(nodes.len(), 1, "{}", run.dump());
    let node = &nodes[0];
    assert_eq!(node["status"], "failed", "{}", run.dump());
    let err = node["error"]["message"].as_str().unwrap_or_default();
    assert!(
        err.starts_with("not bootstrapping:")
            && err.contains(&cp3)
            && err.contains("second etcd cluster"),
        "{err}"
    );
    let hint = node["hint"].as_str().unwrap_or_default();
    assert!(
        hint.contains("--allow-unreachable-control-planes"),
        "{hint}"
    );
    let guard = report["details"]["guard"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        guard.iter().any(|v| v["ip"] == cp3.as_str()),
        "the guard did not ask the discovered {cp3}: {}",
        run.dump()
    );
    let total: u64 = ["cp1", "cp2", "cp3"]
        .iter()
        .map(|h| c.fleet.stats(c.ip(h).parse().unwrap()).bootstrap_calls)
        .sum();
    assert_eq!(total, 0, "a Bootstrap was sent:\n{}", run.dump());
    assert_eq!(c.fleet.etcd_clusters().len(), 1, "{}", run.dump());
}

/// With the override the run bootstraps, says what it risked, and the
/// one-cluster check says what it could not confirm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_override_bootstraps_and_says_what_it_could_not_check() {
    let c = cluster(
        3,
        0,
        Some("nodes: { cp1: { configured: true }, cp2: { unreachable: true }, cp3: { configured: true } }"),
    )
    .await;
    ready_cp(&c, "cp1").await;
    let run = c
        .json(
            "bootstrap",
            &[
                "--allow-unreachable-control-planes",
                "--attempts",
                "2",
                "--connect-timeout",
                "200ms",
            ],
        )
        .await;
    assert_eq!(run.code, 0, "{}", run.dump());
    let warnings = run.node("cp1")["warnings"].to_string();
    assert!(warnings.contains("second etcd cluster"), "{warnings}");
    assert!(warnings.contains("could not confirm"), "{warnings}");
    assert_eq!(c.fleet.etcd_clusters().len(), 1);
}

async fn ready_cp(c: &Cluster, host: &str) {
    let ip = c.ip(host).parse().unwrap();
    let ok = c
        .fleet
        .wait_for(ip, Duration::from_secs(20), |s| {
            s.etcd.service == EtcdService::Preparing
        })
        .await;
    assert!(ok.is_some(), "{host} never became ready");
}

/// Two clusters already exist (made behind talstrap's back): bootstrap
/// fails loudly with the recovery steps, never "already bootstrapped, ok".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_existing_clusters_are_a_loud_failure_with_recovery_steps() {
    let c = cluster(
        3,
        0,
        Some(
            "timing: { join: 100000s }\nnodes: { cp1: { already_bootstrapped: true }, cp2: { already_bootstrapped: true }, cp3: { configured: true } }",
        ),
    )
    .await;
    assert_eq!(c.fleet.etcd_clusters().len(), 2);
    let run = c.json("bootstrap", &["--attempts", "2"]).await;
    assert_eq!(run.code, 1, "{}", run.dump());
    let node = run.node("cp1");
    let err = node["error"]["message"].as_str().unwrap_or_default();
    assert!(err.contains("2 etcd clusters"), "{}", run.dump());
    let hint = node["hint"].as_str().unwrap_or_default();
    assert!(
        hint.contains("talosctl") && hint.contains("reset"),
        "{hint}"
    );
    assert!(hint.contains("cp2"), "{hint}");
}

/// talhelper clusters often use FQDN hostnames; Talos names each etcd
/// member by the short hostname. `--wait-members` matches members to nodes
/// by the IPs in their URLs (short hostname as a fallback) and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fqdn_hostnames_with_wait_members_exit_0() {
    let c = cluster(3, 0, None).await;
    let dir = c.dir().to_path_buf();
    let fqdn = |h: &str| format!("{h}.lab.example.com");
    let talconfig = std::fs::read_to_string(c.talconfig()).unwrap();
    let mut rewritten = talconfig.clone();
    for h in ["cp1", "cp2", "cp3"] {
        rewritten = rewritten.replace(
            &format!("hostname: {h}\n"),
            &format!("hostname: {}\n", fqdn(h)),
        );
    }
    assert_ne!(
        rewritten, talconfig,
        "talconfig has no hostname lines:\n{talconfig}"
    );
    std::fs::write(c.talconfig(), rewritten).unwrap();
    let config_dir = dir.join("clusterconfig");
    for entry in std::fs::read_dir(&config_dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for h in ["cp1", "cp2", "cp3"] {
            if let Some(prefix) = name.strip_suffix(&format!("-{h}.yaml")) {
                let text = std::fs::read_to_string(&path).unwrap();
                let text = text.replace(
                    &format!("hostname: {h}\n"),
                    &format!("hostname: {}\n", fqdn(h)),
                );
                assert!(text.contains(&fqdn(h)), "no hostname in {name}");
                let new = config_dir.join(format!("{prefix}-{}.yaml", fqdn(h)));
                std::fs::write(&new, text).unwrap();
                std::fs::remove_file(&path).unwrap();
            }
        }
    }
    let apply = c.json("apply", &["--wait"]).await;
    assert_eq!(apply.code, 0, "{}", apply.dump());
    let boot = c.json("bootstrap", &["--wait-members"]).await;
    assert_eq!(boot.code, 0, "{}", boot.dump());
    let node = boot.node(&fqdn("cp1"));
    let mut members: Vec<String> =
        serde_json::from_value(node["facts"]["etcd_members"].clone()).unwrap();
    members.sort();
    // The members carry Talos's short names, not the talconfig FQDNs.
    assert_eq!(members, ["cp1", "cp2", "cp3"], "{}", boot.dump());
    let clusters = c.fleet.etcd_clusters();
    assert_eq!(clusters.len(), 1);
    let mut sim_members = clusters[0].clone();
    sim_members.sort();
    assert_eq!(sim_members, ["cp1", "cp2", "cp3"]);
}

/// A cluster whose nodes run `version` (all configured and booting).
async fn versioned(version: &str, cps: usize, workers: usize) -> Cluster {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut spec = talstrap::sim::FleetSpec::new(cps, workers, tmp.path().join("cluster"));
    spec.time_scale = 0.02;
    spec.port = 0;
    spec.talos_version = version.into();
    let mut nodes: Vec<String> = (1..=cps)
        .map(|i| format!("cp{i}: {{ configured: true }}"))
        .collect();
    nodes.extend((1..=workers).map(|i| format!("w{i}: {{ configured: true }}")));
    spec.scenario = talstrap::sim::Scenario::from_yaml(
        &format!("nodes: {{ {} }}", nodes.join(", ")),
        "test scenario",
    )
    .expect("scenario");
    let fleet = talstrap::sim::Fleet::start(spec)
        .await
        .expect("fleet start");
    Cluster { fleet, tmp }
}

/// Bootstrap that reaches a worker (here: `--node IP=<a control plane
/// config>` pointing at a worker's address) is answered FailedPrecondition
/// by v1.12 and Unimplemented by v1.13+: one request, never retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_answered_by_a_worker_is_never_retried() {
    for version in ["v1.12.11", "v1.13.9"] {
        let c = versioned(version, 1, 1).await;
        let w1 = c.ip("w1");
        let cp_config = c.fleet.paths().dir.join("clusterconfig");
        let cfg = std::fs::read_dir(&cp_config)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with("-cp1.yaml"))
            .unwrap();
        let w1_ip: std::net::IpAddr = w1.parse().unwrap();
        c.fleet
            .wait_for(w1_ip, Duration::from_secs(20), |s| {
                s.mode == talstrap::sim::NodeMode::Configured
            })
            .await
            .expect("w1 configured");
        let node_flag = format!("{w1}={}", cfg.display());
        let talosconfig = c.talosconfig().display().to_string();
        let port = c.fleet.port().to_string();
        let run = c
            .run(&[
                "bootstrap",
                "--node",
                &node_flag,
                "--talosconfig",
                &talosconfig,
                "--port",
                &port,
                "-o",
                "json",
                "--attempts",
                "5",
            ])
            .await;
        assert_eq!(run.code, 1, "{version}: {}", run.dump());
        // The worker may first say "not available yet" (its CRI still
        // starting), which is retried; its "not a control plane" answer
        // ends the sending: one request more than the retries, and no
        // retry of the worker's answer.
        let calls = c.fleet.stats(w1_ip).bootstrap_calls;
        let retries = run.events("step_retry");
        assert_eq!(
            calls,
            retries.len() as u64 + 1,
            "{version}:\n{}",
            run.dump()
        );
        assert!(calls < 5, "{version}: every attempt spent:\n{}", run.dump());
        assert!(
            retries
                .iter()
                .all(|r| !r["error"].to_string().contains("control plane")),
            "{version}: retried a worker's answer:\n{}",
            run.dump()
        );
        let err = run.report()["nodes"][0]["error"]["message"].to_string();
        assert!(err.contains("not a control plane"), "{version}: {err}");
    }
}

/// A control plane config without the etcd CA is an input error naming the
/// file, before any node is contacted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_without_etcd_ca_is_refused_up_front() {
    let c = cluster(1, 0, Some("nodes: { cp1: { configured: true } }")).await;
    let cfg = std::fs::read_dir(c.dir().join("clusterconfig"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("-cp1.yaml"))
        .unwrap();
    let text = std::fs::read_to_string(&cfg).unwrap();
    let stripped = strip_etcd_ca(&text);
    assert_ne!(stripped, text, "no etcd CA found in the generated config");
    std::fs::write(&cfg, stripped).unwrap();
    let ip: std::net::IpAddr = c.ip("cp1").parse().unwrap();
    let before = c.fleet.stats(ip).calls("ServiceList");
    let run = c.json("bootstrap", &[]).await;
    assert_eq!(run.code, 2, "{}", run.dump());
    assert!(
        run.stderr.contains("cluster.etcd.ca") || run.stdout.contains("cluster.etcd.ca"),
        "{}",
        run.dump()
    );
    assert!(
        run.stderr.contains("-cp1.yaml") || run.stdout.contains("-cp1.yaml"),
        "{}",
        run.dump()
    );
    assert_eq!(c.fleet.stats(ip).bootstrap_calls, 0);
    assert_eq!(
        c.fleet.stats(ip).calls("ServiceList"),
        before,
        "a node was contacted"
    );
}

/// The config without `cluster.etcd` (every document re-serialised).
fn strip_etcd_ca(text: &str) -> String {
    text.split("\n---\n")
        .map(|doc| {
            let mut v: yaml_serde::Value = yaml_serde::from_str(doc).unwrap();
            if let Some(c) = v.get_mut("cluster").and_then(|c| c.as_mapping_mut()) {
                c.remove("etcd");
            }
            yaml_serde::to_string(&v).unwrap()
        })
        .collect::<Vec<_>>()
        .join("---\n")
}
