//! talstrap in the repositories people have: a topf one (topf.yaml plus
//! `topf render` output) and a just one (the `talstrap.just` module), both
//! against a simulated cluster written in topf's layout.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::support::{Cluster, bin, cluster};

/// The fleet's files rewritten as a topf repository (what `sim --layout
/// topf` writes).
fn topf_layout(c: &Cluster) -> talstrap::testing::TopfFiles {
    talstrap::testing::write_topf_layout(c.fleet.paths()).expect("topf layout")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topf_cluster_goes_through_apply_bootstrap_and_verify() {
    let c = cluster(1, 1, None).await;
    let files = topf_layout(&c);
    assert!(!c.talconfig().exists(), "the talhelper files are gone");
    let topf = files.topf.display().to_string();
    let rendered = files.rendered.display().to_string();
    let port = c.fleet.port().to_string();
    let base = |cmd: &str| -> Vec<String> {
        [
            cmd,
            "--topf",
            &topf,
            "--config-dir",
            &rendered,
            "--port",
            &port,
            "-o",
            "json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let home = c.tmp.path().to_path_buf();
    let run = |args: Vec<String>| {
        let home = home.clone();
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            crate::support::run_bin(&refs, &[], Some(&home)).await
        }
    };
    let r = run(base("preflight")).await;
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.node("cp1")["role"], "controlplane");
    assert_eq!(r.node("w1")["role"], "worker");
    let r = run(base("apply")
        .into_iter()
        .chain(["--wait".to_string()])
        .collect())
    .await;
    assert_eq!(r.code, 0, "{}", r.dump());
    // The talosconfig beside topf.yaml (`topf talosconfig > talosconfig`)
    // is found without --talosconfig.
    let kubeconfig = c.tmp.path().join("kubeconfig").display().to_string();
    let r = run(base("bootstrap")
        .into_iter()
        .chain(["--kubeconfig".to_string(), kubeconfig])
        .collect())
    .await;
    assert_eq!(r.code, 0, "{}", r.dump());
    // The done-when line: verify --topf topf.yaml --config-dir rendered, run
    // where the files are.
    let mut cmd = crate::support::command(
        &[
            "verify",
            "--topf",
            "topf.yaml",
            "--config-dir",
            "rendered",
            "--port",
            &port,
            "-o",
            "json",
        ],
        &[],
        Some(c.tmp.path()),
    );
    cmd.current_dir(c.dir());
    let out = cmd.output().await.unwrap();
    let r = crate::support::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_eq!(r.code, 0, "{}", r.dump());
    for n in ["cp1", "w1"] {
        assert_eq!(r.node(n)["status"], "ok", "{}", r.dump());
    }
    // A missing render names the node and what to run.
    std::fs::remove_file(files.rendered.join("w1.yaml")).unwrap();
    let r = run(base("verify")).await;
    assert_eq!(r.code, 2, "{}", r.dump());
    assert!(
        r.stderr.contains("w1") && r.stderr.contains("topf render"),
        "{}",
        r.stderr
    );
}

fn just_on_path() -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("just"))
            .find(|j| j.is_file())
    })
}

/// `just ARGS` in `root`, with talstrap and a stand-in `topf` (the configs
/// are already rendered) first on PATH.
async fn just(root: &Path, port: u16, args: &[&str]) -> crate::support::Run {
    let path = format!(
        "{}:{}:{}",
        root.join("bin").display(),
        bin().parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = tokio::process::Command::new("just");
    cmd.args(args)
        .current_dir(root)
        .env("PATH", path)
        .env("HOME", root)
        .env("NO_COLOR", "1")
        .env_remove("TALOSCONFIG")
        .env_remove("TALOS_DIR")
        .env_remove("KUBECONFIG_PATH")
        .env("TALSTRAP_PORT", port.to_string())
        .env("TALSTRAP_RETRY_DELAY", "50ms")
        .env("TALSTRAP_POLL_INTERVAL", "50ms")
        .kill_on_drop(true);
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), cmd.output())
        .await
        .expect("just did not finish in 120 s")
        .expect("spawn just");
    crate::support::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn just_module_bootstraps_a_topf_repository_and_runs_day_two_recipes() {
    if just_on_path().is_none() {
        // .ci/run installs just (PyPI rust-just); elsewhere say why this is skipped.
        assert!(
            std::env::var_os("CI").is_none(),
            "just is not installed in CI"
        );
        eprintln!("skipped: `just` is not on PATH (pip install rust-just)");
        return;
    }
    let c = cluster(1, 1, None).await;
    let files = topf_layout(&c);
    let root = c.tmp.path();
    // The repository: justfile at the root, the module beside topf.yaml.
    let module = Path::new(env!("CARGO_MANIFEST_DIR")).join("talstrap.just");
    std::fs::copy(&module, c.dir().join("talstrap.just")).unwrap();
    std::fs::write(
        root.join("justfile"),
        "mod talstrap 'cluster/talstrap.just'\n",
    )
    .unwrap();
    let bin_dir = root.join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let calls = root.join("topf-calls");
    let stub = bin_dir.join("topf");
    std::fs::write(
        &stub,
        format!("#!/bin/sh\necho \"$PWD $*\" >> '{}'\n", calls.display()),
    )
    .unwrap();
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
    let port = c.fleet.port();

    let list = just(root, port, &["--list", "talstrap"]).await;
    assert_eq!(list.code, 0, "{}", list.dump());
    for recipe in [
        "bootstrap",
        "render",
        "preflight",
        "apply",
        "apply-node node",
        "diff",
        "verify",
        "[bootstrap]",
        "[talos]",
    ] {
        assert!(
            list.stdout.contains(recipe),
            "just --list lacks {recipe:?}:\n{}",
            list.stdout
        );
    }

    let run = just(root, port, &["talstrap", "bootstrap"]).await;
    assert_eq!(run.code, 0, "{}", run.dump());
    let rendered = std::fs::read_to_string(&calls).unwrap();
    assert!(
        rendered.contains(&format!("render --output {}", files.rendered.display())),
        "{rendered}"
    );
    let kubeconfig = root.join("kubeconfig");
    let mode = std::fs::metadata(&kubeconfig)
        .expect("kubeconfig written")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(run.stdout.contains("bootstrap"), "{}", run.dump());

    for args in [
        vec!["talstrap", "verify"],
        vec!["talstrap", "diff"],
        vec!["talstrap", "apply-node", "cp1"],
        vec!["talstrap", "preflight"],
        // Run again: nothing applied twice, etcd not bootstrapped twice,
        // the kubeconfig kept.
        vec!["talstrap", "bootstrap"],
    ] {
        let run = just(root, port, &args).await;
        assert_eq!(run.code, 0, "{args:?}: {}", run.dump());
    }
    assert_eq!(
        c.fleet.stats(c.ip("cp1").parse().unwrap()).applies_accepted,
        1,
        "cp1 got its config twice"
    );
}
