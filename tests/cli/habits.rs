//! What operators type from habit (talosctl, talhelper, shell pipelines) and
//! what the files they have look like: global flags before the subcommand,
//! talosctl-only flags and commands, configs from pipes, discover's
//! talosconfig lookup and skeleton, topf repositories, the just module.

use crate::support::{Cluster, cluster, command, run_bin};

fn lines_of(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_flags_work_before_the_subcommand() {
    let c = cluster(2, 1, None).await;
    let tc = c.talosconfig().display().to_string();
    let tal = c.talconfig().display().to_string();
    let port = c.fleet.port().to_string();
    // talosctl order: talstrap -n NODE --talosconfig F <command>.
    let run = c
        .run(&[
            "-n",
            "cp1",
            "--talosconfig",
            &tc,
            "--talconfig",
            &tal,
            "-o",
            "json",
            "preflight",
            "--port",
            &port,
        ])
        .await;
    assert_eq!(run.code, 0, "{}", run.dump());
    let nodes: Vec<String> = run.report()["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(nodes, ["cp1"]);
    // Same with = spellings and several flags.
    let run = c
        .run(&[
            &format!("--talosconfig={tc}"),
            &format!("--talconfig={tal}"),
            "--role",
            "worker",
            "preflight",
            "--port",
            &port,
            "-o",
            "json",
        ])
        .await;
    assert_eq!(run.code, 0, "{}", run.dump());
    assert_eq!(run.report()["nodes"][0]["node"], "w1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talosctl_flags_and_commands_are_answered_and_contact_nothing() {
    let c = cluster(1, 0, None).await;
    let mut base = vec!["preflight".to_string()];
    base.extend(c.target_args());
    for (extra, needle) in [
        (vec!["-e", "127.0.0.1"], "never dials endpoints"),
        (
            vec!["--endpoints", "127.0.0.1,127.0.0.2"],
            "never dials endpoints",
        ),
        (vec!["--endpoints"], "never dials endpoints"),
        (vec!["--insecure"], "detects per node"),
        (vec!["-i"], "detects per node"),
    ] {
        let mut args: Vec<&str> = base.iter().map(String::as_str).collect();
        args.extend(extra.iter().copied());
        let run = c.run(&args).await;
        assert_eq!(run.code, 2, "{extra:?}: {}", run.dump());
        let err = lines_of(&run.stderr);
        assert!(err.contains(needle), "{extra:?}: {err}");
        assert!(
            err.contains("-n/--nodes") || err.contains("--cert-fingerprint"),
            "{err}"
        );
    }
    // -e before the subcommand too.
    let run = run_bin(&["-e", "127.0.0.1", "verify"], &[], Some(c.tmp.path())).await;
    assert_eq!(run.code, 2);
    assert!(
        lines_of(&run.stderr).contains("never dials endpoints"),
        "{}",
        run.dump()
    );
    for (typo, points_to) in [
        ("apply-config", "talstrap apply"),
        ("health", "talstrap verify"),
        ("kubeconfig", "talstrap bootstrap --kubeconfig"),
    ] {
        let run = run_bin(&[typo], &[], Some(c.tmp.path())).await;
        assert_eq!(run.code, 2, "{typo}: {}", run.dump());
        assert!(
            lines_of(&run.stderr).contains(points_to),
            "{typo}: {}",
            run.stderr
        );
    }
    assert_eq!(
        c.fleet.total_connections(),
        0,
        "a refused flag contacted a node"
    );
}

/// A node's config written to a file of the test's own.
fn config_copy(c: &Cluster, host: &str) -> (String, std::path::PathBuf) {
    let node = c
        .fleet
        .paths()
        .nodes
        .iter()
        .find(|n| n.hostname == host)
        .unwrap();
    (node.ip.to_string(), node.config_path.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configs_come_from_stdin_and_process_substitution() {
    let c = cluster(1, 1, None).await;
    let (cp_ip, cp_cfg) = config_copy(&c, "cp1");
    let (w_ip, w_cfg) = config_copy(&c, "w1");
    let port = c.fleet.port().to_string();
    // --node IP=- reads stdin.
    let mut cmd = command(
        &[
            "preflight",
            "--node",
            &format!("{cp_ip}=-"),
            "--port",
            &port,
            "-o",
            "json",
        ],
        &[],
        Some(c.tmp.path()),
    );
    cmd.stdin(std::fs::File::open(&cp_cfg).unwrap());
    let out = cmd.output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("\"node\":\"cp1\""), "{stdout}");

    // <(…) in bash: /dev/fd/N, a pipe.
    let script = format!(
        "exec \"$0\" preflight --node {cp_ip}=<(cat {}) --node {w_ip}=<(cat {}) --port {port} -o json",
        cp_cfg.display(),
        w_cfg.display()
    );
    let mut cmd = tokio::process::Command::new("bash");
    cmd.arg("-c").arg(&script).arg(crate::support::bin());
    cmd.env_remove("TALOSCONFIG")
        .env("HOME", c.tmp.path())
        .env("NO_COLOR", "1");
    let out = cmd.output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("\"node\":\"cp1\"") && stdout.contains("\"node\":\"w1\""),
        "{stdout}"
    );

    // Devices stay refused, naming the node and the file.
    let run = run_bin(
        &["preflight", "--node", &format!("{cp_ip}=/dev/zero")],
        &[],
        Some(c.tmp.path()),
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.dump());
    assert!(run.stderr.contains("/dev/zero"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_skeleton_to_a_file_is_yaml_and_the_talosconfig_is_found() {
    let c = cluster(1, 1, None).await;
    let port = c.fleet.port().to_string();
    // The cp gets configured, the worker stays in maintenance.
    let run = c.json("apply", &["-n", "cp1", "--wait"]).await;
    assert_eq!(run.code, 0, "{}", run.dump());
    let range = format!("{}/28", c.ip("cp1"));
    // Run where talhelper's files are: clusterconfig/talosconfig is found.
    let mut cmd = command(
        &["discover", &range, "--port", &port, "--skeleton"],
        &[],
        Some(c.tmp.path()),
    );
    cmd.current_dir(c.dir());
    let out = cmd.output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let yaml: yaml_serde::Value =
        yaml_serde::from_str(&stdout).unwrap_or_else(|e| panic!("not YAML ({e}):\n{stdout}"));
    let nodes = yaml["nodes"].as_sequence().unwrap();
    assert_eq!(nodes.len(), 1, "{stdout}");
    assert_eq!(nodes[0]["ipAddress"].as_str(), Some(c.ip("w1").as_str()));
    // The table went to stderr, and the configured node was read with the
    // talosconfig (its role is known), not merely seen.
    assert!(stderr.contains("discover 2 nodes"), "{stderr}");
    let cp_row = stderr
        .lines()
        .find(|l| l.contains(&c.ip("cp1")) && l.contains('|'))
        .unwrap_or_default();
    assert!(cp_row.contains("controlplane"), "{stderr}");
    // Labels name a bare address once.
    let twice = format!("{} ({})", c.ip("w1"), c.ip("w1"));
    assert!(!stderr.contains(&twice), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_names_complete_from_the_talconfig() {
    let c = cluster(1, 1, None).await;
    let tal = c.talconfig().display().to_string();
    let run = run_bin(&["__complete-nodes", "--talconfig", &tal], &[], None).await;
    assert_eq!(run.code, 0, "{}", run.dump());
    let names: Vec<&str> = run.stdout.lines().collect();
    for want in ["cp1", "w1"] {
        assert!(names.contains(&want), "{names:?}");
    }
    assert!(names.contains(&c.ip("w1").as_str()), "{names:?}");
    // The bash script hands the typed --talconfig to the helper.
    let run = run_bin(&["completions", "bash"], &[], None).await;
    assert!(
        run.stdout.contains("talstrap __complete-nodes"),
        "{}",
        run.stdout
    );
}
