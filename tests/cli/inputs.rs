//! Issue 11 items 4, 6, 8, 10 and 13 and issue 12 item 8 end to end: what
//! happens to stdout that cannot be written, scans and input loading cut
//! short by `--timeout` or Ctrl-C, the demo's temp directory, and inputs
//! that are accepted (a byte order mark, talhelper's ./clusterconfig).
//!
//! Scans here go to port 1 on loopback, where nothing listens: every
//! connect is refused at once, and no simulated node is ever reached.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

/// Runs `talstrap args` with stdout going to `stdout`.
async fn run_with_stdout(args: &[&str], stdout: Stdio, home: &Path) -> Run {
    let mut cmd = command(args, &[], Some(home));
    cmd.stdout(stdout).stderr(Stdio::piped());
    // Not `output()`: tokio's replaces the stdout given here with a pipe.
    let child = cmd.spawn().expect("spawn talstrap");
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("talstrap did not finish within 120 s")
        .expect("wait for talstrap");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A pipe whose reader is already gone, as after `| true` or `| head`.
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    Stdio::from(writer)
}

/// `/dev/full`, opened for writing as a shell redirect would (nothing is
/// created, renamed or deleted under /dev).
fn dev_full() -> Stdio {
    Stdio::from(
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("open /dev/full"),
    )
}

fn assert_no_panic(run: &Run) {
    assert!(
        run.code != 101 && !run.stderr.contains("panicked"),
        "{}",
        run.dump()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_and_man_page_into_a_closed_pipe_end_quietly() {
    let home = tempfile::tempdir().unwrap();
    for args in [
        &["completions", "bash"][..],
        &["completions", "zsh"],
        &["man"],
    ] {
        let run = run_with_stdout(args, closed_pipe(), home.path()).await;
        assert_no_panic(&run);
        assert_eq!(run.code, 0, "{args:?}\n{}", run.dump());
        assert!(run.stderr.trim().is_empty(), "{args:?}\n{}", run.dump());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_that_cannot_be_written_is_an_error_not_a_success() {
    let home = tempfile::tempdir().unwrap();
    for args in [&["completions", "bash"][..], &["man"]] {
        let run = run_with_stdout(args, dev_full(), home.path()).await;
        assert_no_panic(&run);
        assert_eq!(run.code, 1, "{args:?}\n{}", run.dump());
        assert!(
            run.stderr.contains("writing to stdout failed")
                && run.stderr.contains("No space left on device"),
            "{args:?}\n{}",
            run.dump()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_lost_to_a_full_disk_fails_the_run_a_closed_pipe_does_not() {
    let c = cluster(1, 1, None).await;
    let mut args: Vec<String> = vec!["preflight".into()];
    args.extend(c.target_args());
    args.extend(["-o".into(), "json".into()]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();

    // Both nodes answer, so the run itself succeeds ...
    let ok = c.run(&refs).await;
    assert_eq!(ok.code, 0, "{}", ok.dump());
    // ... but a report nobody could store is not a success.
    let full = run_with_stdout(&refs, dev_full(), c.tmp.path()).await;
    assert_no_panic(&full);
    assert_eq!(full.code, 1, "{}", full.dump());
    assert_eq!(
        full.stderr.matches("writing to stdout failed").count(),
        1,
        "said once\n{}",
        full.dump()
    );
    // A reader that went away (`| head`) is not an error of the run.
    let closed = run_with_stdout(&refs, closed_pipe(), c.tmp.path()).await;
    assert_no_panic(&closed);
    assert_eq!(closed.code, 0, "{}", closed.dump());
    assert!(!closed.stderr.contains("error"), "{}", closed.dump());
    // Human output too.
    let human = run_with_stdout(&refs[..refs.len() - 2], dev_full(), c.tmp.path()).await;
    assert_eq!(human.code, 1, "{}", human.dump());
}

fn scan_details(run: &Run) -> Value {
    run.report()["details"]["scan"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_stops_at_the_deadline_with_exit_3_and_what_it_scanned() {
    let home = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let run = run_bin(
        &[
            "discover",
            "127.240.0.0/12",
            "--allow-large-scan",
            "--port",
            "1",
            "--window",
            "1",
            "--timeout",
            "500ms",
            "-o",
            "json",
        ],
        &[],
        Some(home.path()),
    )
    .await;
    assert_eq!(run.code, 3, "{}", run.dump());
    // A million refused connects one at a time take far longer than this.
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    let scan = scan_details(&run);
    assert_eq!(scan["deadline_reached"], true, "{}", run.dump());
    assert_eq!(scan["interrupted"], false);
    let scanned = scan["scanned"].as_u64().unwrap();
    assert!(scanned < 1_048_574, "{}", run.dump());
    assert_eq!(run.report()["status"], "deadline", "{}", run.dump());
    let info = run
        .events("info")
        .iter()
        .filter_map(|e| e["message"].as_str().map(str::to_string))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(info.contains("stopped by --timeout"), "{info}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_stops_on_ctrl_c_with_exit_130_and_what_it_scanned() {
    let c = cluster(1, 0, None).await;
    let args: Vec<String> = [
        "discover",
        "127.240.0.0/12",
        "--allow-large-scan",
        "--port",
        "1",
        "--window",
        "1",
        "-o",
        "json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut live = Live::spawn(&c, &args, &[]);
    live.wait_for("the scan to start", |v| {
        v["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("discover: scanning"))
    })
    .await;
    live.let_the_signal_land().await;
    live.interrupt();
    let run = live.finish().await;
    assert_eq!(run.code, 130, "{}", run.dump());
    let scan = scan_details(&run);
    assert_eq!(scan["interrupted"], true, "{}", run.dump());
    assert!(scan["scanned"].as_u64().unwrap() < 1_048_574);
    assert_eq!(run.report()["status"], "interrupted");
}

/// A fake `sops` that records its PID and never returns.
fn hanging_sops(dir: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let sops = bin.join("sops");
    std::fs::write(
        &sops,
        format!(
            "#!/bin/sh\necho $$ > {}\nexec sleep 600\n",
            dir.join("sops.pid").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&sops, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_covers_a_sops_that_never_returns() {
    let c = cluster(1, 1, None).await;
    let bin = hanging_sops(c.tmp.path());
    let talenv = c.tmp.path().join("talenv.sops.yaml");
    std::fs::write(
        &talenv,
        "X: ENC[AES256_GCM,data:xx]\nsops:\n  version: 3.9.0\n",
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut args: Vec<String> = vec!["preflight".into()];
    args.extend(c.target_args());
    args.extend(["--env-file".into(), talenv.display().to_string()]);
    args.extend([
        "--timeout".into(),
        "1500ms".into(),
        "-o".into(),
        "json".into(),
    ]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let before = c.fleet.total_connections();
    let started = Instant::now();
    let run = c.run_env(&refs, &[("PATH", &path)]).await;
    assert_eq!(run.code, 3, "{}", run.dump());
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    assert!(
        run.stderr
            .contains("--timeout reached while reading the inputs"),
        "{}",
        run.dump()
    );
    assert_eq!(c.fleet.total_connections(), before, "no node is contacted");
    let pid = std::fs::read_to_string(c.tmp.path().join("sops.pid")).unwrap();
    // Killed before talstrap exited; allow the kernel a moment to reap it.
    for _ in 0..50 {
        if !alive(pid.trim()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !alive(pid.trim()),
        "sops (pid {}) was left running",
        pid.trim()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_input_errors_exit_2_with_the_message_once() {
    let home = tempfile::tempdir().unwrap();
    let scenario = home.path().join("s.yaml");
    std::fs::write(&scenario, "nodes:\n  cp9: { unreachable: true }\n").unwrap();
    let dir = home.path().join("c");
    let run = run_bin(
        &[
            "sim",
            "--scenario",
            &scenario.display().to_string(),
            "--dir",
            &dir.display().to_string(),
        ],
        &[],
        Some(home.path()),
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.dump());
    assert_eq!(run.stderr.matches("cp9").count(), 1, "{}", run.dump());
    assert_eq!(
        run.stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .count(),
        1
    );
}

/// The demo directory named last in the output.
fn demo_dir(stdout: &str) -> std::path::PathBuf {
    let at = stdout
        .rfind("talstrap-demo-")
        .unwrap_or_else(|| panic!("no demo directory in:\n{stdout}"));
    let start = stdout[..at].rfind(char::is_whitespace).map_or(0, |i| i + 1);
    let end = (at + "talstrap-demo-".len() + 16).min(stdout.len());
    std::path::PathBuf::from(&stdout[start..end])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_temp_dir_is_private_unpredictable_and_removed_unless_kept() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let tmpdir = tmp.path().display().to_string();
    let env = [("TMPDIR", tmpdir.as_str())];
    let run = run_bin(&["demo", "--time-scale", "0.05"], &env, Some(tmp.path())).await;
    assert_eq!(run.code, 0, "{}", run.dump());
    let gone = demo_dir(&run.stdout);
    assert!(gone.starts_with(tmp.path()), "{}", gone.display());
    assert!(!gone.exists(), "{} was left behind", gone.display());
    assert!(
        run.stdout.contains("are removed now; pass --keep"),
        "{}",
        run.dump()
    );

    let run = run_bin(
        &["demo", "--time-scale", "0.05", "--keep"],
        &env,
        Some(tmp.path()),
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.dump());
    let kept = demo_dir(&run.stdout);
    let mode = std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "{}", kept.display());
    assert!(kept.join("kubeconfig").is_file());
    // 16 random hex digits, not a PID and a clock.
    let name = kept.file_name().unwrap().to_str().unwrap();
    let suffix = name.strip_prefix("talstrap-demo-").unwrap();
    assert_eq!(suffix.len(), 16, "{name}");
    assert!(suffix.chars().all(|c| c.is_ascii_hexdigit()), "{name}");
    assert_ne!(kept, gone, "two runs, two names");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_talconfig_with_a_byte_order_mark_is_read() {
    let c = cluster(1, 1, None).await;
    let text = std::fs::read(c.talconfig()).unwrap();
    std::fs::write(c.talconfig(), [b"\xef\xbb\xbf".as_slice(), &text].concat()).unwrap();
    let run = c.json("preflight", &[]).await;
    assert_eq!(run.code, 0, "{}", run.dump());
    assert_eq!(run.report()["summary"]["ok"], 2, "{}", run.dump());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talhelpers_working_directory_clusterconfig_is_found_and_named() {
    // talhelper ran in the cluster directory and wrote ./clusterconfig
    // there; talconfig.yaml lives in another directory.
    let c = cluster(1, 1, None).await;
    let elsewhere = c.tmp.path().join("talos");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let talconfig = elsewhere.join("talconfig.yaml");
    std::fs::copy(c.talconfig(), &talconfig).unwrap();
    let port = c.fleet.port().to_string();
    let talosconfig = c.talosconfig().display().to_string();
    let args = [
        "preflight",
        "--talconfig",
        &talconfig.display().to_string(),
        "--talosconfig",
        &talosconfig,
        "--port",
        &port,
        "-o",
        "json",
    ];
    let mut cmd = command(&args, &[], Some(c.tmp.path()));
    cmd.current_dir(c.dir());
    let out = cmd.output().await.unwrap();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_eq!(run.code, 0, "{}", run.dump());
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(said.contains("using ./clusterconfig"), "{}", run.dump());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_role_refused_by_the_node_is_not_called_a_trust_problem() {
    let c = cluster(1, 0, Some("nodes: { cp1: { configured: true } }")).await;
    let reader = c.tmp.path().join("reader-talosconfig");
    talstrap::sim::reader_talosconfig(c.fleet.paths(), &reader).unwrap();
    let port = c.fleet.port().to_string();
    let talconfig = c.talconfig().display().to_string();
    let reader = reader.display().to_string();
    let args = [
        "apply",
        "--talconfig",
        &talconfig,
        "--talosconfig",
        &reader,
        "--port",
        &port,
        "-o",
        "json",
    ];
    let run = c.run(&args).await;
    assert_eq!(run.code, 1, "{}", run.dump());
    let node = run.node("cp1");
    let said = format!("{} {}", node["hint"], node["error"]);
    assert!(said.contains("os:admin"), "{}", run.dump());
    assert!(!said.contains("do not trust each other"), "{}", run.dump());
    assert_eq!(
        c.fleet.stats(c.fleet.ip("cp1").unwrap()).applies_accepted,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_port_is_named_once_after_the_first_round() {
    let c = cluster(2, 1, None).await;
    let talconfig = c.talconfig().display().to_string();
    let started = Instant::now();
    // Port 1: nothing listens there on any loopback address.
    let run = c
        .run(&[
            "preflight",
            "--talconfig",
            &talconfig,
            "--port",
            "1",
            "-o",
            "json",
        ])
        .await;
    assert_eq!(run.code, 1, "{}", run.dump());
    let warnings: Vec<String> = run
        .events("warning")
        .iter()
        .filter_map(|w| w["message"].as_str().map(str::to_string))
        .filter(|m| m.contains("Is --port right?"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", run.dump());
    assert!(warnings[0].contains("port 1 (3 of 3)"), "{}", warnings[0]);
    for n in ["cp1", "cp2", "w1"] {
        let node = run.node(n);
        assert_eq!(node["status"], "failed", "{}", run.dump());
        assert_eq!(
            node["steps"][0]["attempts"],
            1,
            "no retries: {}",
            run.dump()
        );
        assert!(node["hint"].is_null(), "no per-node hint: {}", run.dump());
    }
    // One round, not five attempts with backoff per node.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}
