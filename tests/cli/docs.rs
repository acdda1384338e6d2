//! What operators read besides the live output: shell completions and man
//! pages (generated from the CLI, checked in, kept fresh), every `--help` at
//! 80 columns (insta snapshots), the end-of-run summary table at 80 columns,
//! the files under `examples/` and the Taskfile, and the README quickstart
//! run literally.
//!
//! `task completions` rewrites `completions/` and `man/` (this file's
//! freshness test with `TALSTRAP_UPDATE_DOCS=1`); `task snapshots` accepts
//! new help and table snapshots.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{CommandFactory, Parser};
use serde_json::Value;
use talstrap::Cli;
use talstrap::disksel::DiskSelector;
use talstrap::sim::{FleetSpec, Scenario};
use talstrap::testing::OutputFormat;
use talstrap::testing::{Environment, LoadOptions, Role, load_talconfig_in};
use talstrap::testing::{
    ErrorKind, NodeOutcome, NodeRef, NodeStatus, StepError, StepRecord, StepStatus,
};
use talstrap::testing::{OutputConfig, REPORT_SCHEMA, Report, render_report_text};

use crate::support::run_bin;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every line of `text` fits in `width` columns (counted in characters).
fn assert_fits(text: &str, width: usize, what: &str) {
    for (i, line) in text.lines().enumerate() {
        let n = line.chars().count();
        assert!(
            n <= width,
            "{what}: line {} is {n} columns wide (limit {width}):\n{line}",
            i + 1
        );
    }
}

// ---------------------------------------------------------------------------
// Completions and man pages
// ---------------------------------------------------------------------------

/// Shell → file under `completions/`, named as each shell looks for it.
const COMPLETIONS: [(&str, &str); 5] = [
    ("bash", "talstrap.bash"),
    ("zsh", "_talstrap"),
    ("fish", "talstrap.fish"),
    ("powershell", "_talstrap.ps1"),
    ("elvish", "talstrap.elv"),
];

/// What `completions/` and `man/` must contain, path → bytes.
async fn generated_docs() -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    for (shell, file) in COMPLETIONS {
        let run = run_bin(&["completions", shell], &[], None).await;
        assert_eq!(run.code, 0, "talstrap completions {shell}:\n{}", run.dump());
        assert!(!run.stdout.is_empty(), "empty {shell} completion script");
        files.insert(
            PathBuf::from("completions").join(file),
            run.stdout.into_bytes(),
        );
    }
    let run = run_bin(&["man"], &[], None).await;
    assert_eq!(run.code, 0, "talstrap man:\n{}", run.dump());
    files.insert(PathBuf::from("man/talstrap.1"), run.stdout.into_bytes());

    // `talstrap man` renders the top-level page; the one per subcommand
    // (talstrap-apply.1, …) comes from the same definition through the
    // library, built first so that global flags and names propagate.
    let mut cmd = Cli::command();
    cmd.build();
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let name = sub.get_name();
        let run = run_bin(&["man", name], &[], None).await;
        assert_eq!(run.code, 0, "talstrap man {name}:\n{}", run.dump());
        let page = talstrap::testing::man_page(Some(name)).expect("render man page");
        assert_eq!(
            run.stdout.as_bytes(),
            page.as_slice(),
            "talstrap man {name}"
        );
        files.insert(
            PathBuf::from("man").join(format!("talstrap-{name}.1")),
            page,
        );
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_and_man_pages_are_fresh() {
    let expected = generated_docs().await;
    if std::env::var_os("TALSTRAP_UPDATE_DOCS").is_some() {
        for dir in ["completions", "man"] {
            std::fs::create_dir_all(repo().join(dir)).unwrap();
        }
        for (path, bytes) in &expected {
            std::fs::write(repo().join(path), bytes).unwrap();
        }
        // Pages of subcommands that no longer exist go too.
        for entry in std::fs::read_dir(repo().join("man")).unwrap() {
            let rel = PathBuf::from("man").join(entry.unwrap().file_name());
            if !expected.contains_key(&rel) {
                std::fs::remove_file(repo().join(&rel)).unwrap();
            }
        }
        return;
    }

    let mut stale = Vec::new();
    for (path, bytes) in &expected {
        match std::fs::read(repo().join(path)) {
            Ok(committed) if &committed == bytes => {}
            Ok(_) => stale.push(format!("{} differs", path.display())),
            Err(_) => stale.push(format!("{} is missing", path.display())),
        }
    }
    for dir in ["completions", "man"] {
        if let Ok(entries) = std::fs::read_dir(repo().join(dir)) {
            for entry in entries {
                let rel = PathBuf::from(dir).join(entry.unwrap().file_name());
                if !expected.contains_key(&rel) {
                    stale.push(format!("{} is no longer generated", rel.display()));
                }
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale: run `task completions`\n  {}",
        stale.join("\n  ")
    );
}

#[test]
fn subcommand_man_pages_carry_the_examples() {
    let mut cmd = Cli::command();
    cmd.build();
    let visible: Vec<_> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .collect();
    assert_eq!(
        visible.len(),
        9,
        "preflight apply verify bootstrap discover sim demo completions man"
    );
    for sub in visible {
        let page = talstrap::testing::man_page(Some(sub.get_name())).unwrap();
        let page = String::from_utf8(page).unwrap();
        assert!(
            page.contains(".SH ENVIRONMENT") && page.contains(".SH \"EXIT STATUS\""),
            "{page}"
        );
        let name = sub.get_name();
        assert!(page.contains(&format!(".TH talstrap-{name} 1")), "{page}");
        assert!(
            page.contains("Examples:"),
            "no examples in talstrap-{name}.1"
        );
        assert!(
            page.contains(&format!("talstrap {name}")),
            "talstrap-{name}.1 never shows the command itself"
        );
        // The heading escapes that colour the terminal help stay out of roff.
        assert!(!page.contains('\x1b'), "escape codes in talstrap-{name}.1");
    }
}

// ---------------------------------------------------------------------------
// --help at 80 columns
// ---------------------------------------------------------------------------

async fn help_at_80(args: &[&str]) -> String {
    let run = run_bin(args, &[("COLUMNS", "80")], None).await;
    assert_eq!(run.code, 0, "talstrap {args:?}:\n{}", run.dump());
    assert!(
        run.stderr.is_empty(),
        "help wrote to stderr:\n{}",
        run.stderr
    );
    run.stdout
}

/// `talstrap [cmd] --help` is snapshotted, and both `--help` and `-h` fit in
/// 80 columns.
async fn check_help(name: &str, cmd: &[&str]) {
    let mut long = cmd.to_vec();
    long.push("--help");
    let text = help_at_80(&long).await;
    assert_fits(&text, 80, &format!("talstrap {} --help", cmd.join(" ")));
    let mut short = cmd.to_vec();
    short.push("-h");
    let brief = help_at_80(&short).await;
    assert_fits(&brief, 80, &format!("talstrap {} -h", cmd.join(" ")));
    assert!(brief.len() < text.len(), "-h is not shorter than --help");
    insta::assert_snapshot!(name, text);
}

macro_rules! help_snapshot {
    ($test:ident, $($cmd:literal),*) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $test() {
            check_help(stringify!($test), &[$($cmd),*]).await;
        }
    };
}

help_snapshot!(help_top_level,);
help_snapshot!(help_preflight, "preflight");
help_snapshot!(help_apply, "apply");
help_snapshot!(help_verify, "verify");
help_snapshot!(help_bootstrap, "bootstrap");
help_snapshot!(help_discover, "discover");
help_snapshot!(help_sim, "sim");
help_snapshot!(help_demo, "demo");

/// The example command lines of a help text, continuation lines joined and
/// shell redirections cut off.
fn example_commands(help: &str) -> Vec<String> {
    let examples = help
        .split_once("Examples:\n")
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let mut commands = Vec::new();
    let mut current = String::new();
    for line in examples.lines().map(str::trim) {
        if current.is_empty() && !line.starts_with("talstrap ") {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => current.push_str(head),
            None => {
                current.push_str(line);
                let cmd = current.split(" > ").next().unwrap_or_default();
                commands.push(cmd.trim().to_string());
                current.clear();
            }
        }
    }
    commands
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_shows_working_examples_and_what_it_never_does() {
    // What each command promises not to do, in its long description.
    let promises = [
        ("", ""),
        (
            "preflight",
            "changes nothing on any node and writes no file",
        ),
        ("apply", "apply never bootstraps etcd"),
        ("verify", "verify only reads"),
        ("bootstrap", "never replaced without --force"),
        ("discover", "discover only reads"),
        ("sim", "contacts nothing"),
        ("demo", "touches no real node"),
    ];
    for (sub, promise) in promises {
        let args: Vec<&str> = [sub, "--help"]
            .into_iter()
            .filter(|a| !a.is_empty())
            .collect();
        let text = help_at_80(&args).await;
        let description = text.split("Usage:").next().unwrap_or_default();
        let flat = description.split_whitespace().collect::<Vec<_>>().join(" ");
        if !sub.is_empty() {
            assert!(
                flat.contains(promise),
                "talstrap {sub} --help does not say {promise:?}"
            );
        }
        let commands = example_commands(&text);
        assert!(
            commands
                .iter()
                .any(|c| c.starts_with(&format!("talstrap {sub}"))),
            "talstrap {sub} --help: no example runs the command: {commands:?}"
        );
        for cmd in &commands {
            let argv: Vec<&str> = cmd.split_whitespace().collect();
            Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("example `{cmd}`: {e}"));
            for arg in argv.iter().filter(|a| a.starts_with("examples/")) {
                assert!(
                    repo().join(arg).exists(),
                    "example `{cmd}`: {arg} does not exist"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The summary table
// ---------------------------------------------------------------------------

fn step(
    name: &str,
    status: StepStatus,
    attempts: u32,
    ms: u64,
    detail: Option<&str>,
) -> StepRecord {
    StepRecord {
        name: name.into(),
        status,
        attempts,
        duration_ms: ms,
        detail: detail.map(str::to_string),
    }
}

fn outcome(node: &str, ip: &str, role: &str, status: NodeStatus, summary: &str) -> NodeOutcome {
    NodeOutcome {
        node: NodeRef::new(node, ip.parse().unwrap(), Some(role.into())),
        status,
        summary: summary.into(),
        attempts: 1,
        duration_ms: 0,
        steps: Vec::new(),
        error: None,
        hint: None,
        warnings: Vec::new(),
        facts: serde_json::Map::new(),
    }
}

/// An `apply --wait` run with one node of each kind of ending. Summaries,
/// errors and hints are the ones talstrap prints for these cases.
fn mixed_apply_report() -> Report {
    const READY: &str = "applied in maintenance mode (install and reboot follow); \
                         ready for bootstrap (booting, waiting for etcd)";
    let mut cp1 = outcome("cp1", "127.0.42.11", "controlplane", NodeStatus::Ok, READY);
    cp1.duration_ms = 8_038;
    cp1.steps = vec![
        step("probe", StepStatus::Ok, 1, 1, None),
        step("apply", StepStatus::Ok, 1, 2, None),
        step("verify", StepStatus::Ok, 1, 8_032, None),
    ];

    let mut cp2 = outcome(
        "cp2",
        "127.0.42.12",
        "controlplane",
        NodeStatus::Warning,
        READY,
    );
    cp2.attempts = 3;
    cp2.duration_ms = 9_512;
    cp2.warnings = vec!["node: config validation: machine.install.wipe is ignored".into()];

    let mut cp3 = outcome(
        "cp3",
        "127.0.42.13",
        "controlplane",
        NodeStatus::Skipped,
        "already runs this config: nothing to do",
    );
    cp3.duration_ms = 41;

    let mut w1 = outcome(
        "w1",
        "127.0.42.14",
        "worker",
        NodeStatus::Failed,
        "applied in maintenance mode (install and reboot follow); verify failed",
    );
    w1.duration_ms = 6_016;
    let hint = "Talos could not install: most often machine.install.disk / diskSelector \
                matches no disk. Run `talstrap preflight` for this node to see its disks";
    w1.error = Some(
        StepError::new(
            ErrorKind::Stuck,
            "back in maintenance mode after the config was applied: the install failed",
        )
        .with_hint(hint),
    );
    w1.hint = Some(hint.into());

    let mut w2 = outcome(
        "w2",
        "127.0.42.15",
        "worker",
        NodeStatus::TimedOut,
        "probe failed",
    );
    w2.attempts = 5;
    w2.duration_ms = 600_000;
    w2.error = Some(StepError::new(
        ErrorKind::Deadline,
        "deadline reached (--timeout)",
    ));

    Report::new(
        "apply",
        vec![cp1, cp2, cp3, w1, w2],
        Duration::from_millis(600_004),
        None,
    )
    .with_messages(vec!["next: talstrap bootstrap".into()])
}

#[test]
fn summary_table_at_80_columns() {
    let cfg = OutputConfig {
        format: OutputFormat::Human,
        live: false,
        color: false,
        quiet: false,
        verbose: 0,
        width: 80,
    };
    let report = mixed_apply_report();
    let text = render_report_text(&report, &cfg);
    // The table itself fits; the hint and warning lines under it are plain
    // text that the terminal wraps.
    let table: String = text
        .lines()
        .filter(|l| l.starts_with('+') || l.starts_with('|'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(table.lines().count() > 7, "no table:\n{text}");
    assert_fits(&table, 80, "summary table");
    // Every node and its outcome is there, and the long RESULT cells wrap
    // inside their column instead of widening the table.
    for (node, status) in [
        ("cp1", "ok"),
        ("cp2", "warning"),
        ("cp3", "skipped"),
        ("w1", "failed"),
        ("w2", "timed out"),
    ] {
        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("| {node} ")))
            .unwrap_or_else(|| panic!("no row for {node}:\n{text}"));
        assert!(row.contains(status), "{node} row lacks {status:?}: {row}");
    }
    assert!(
        text.contains("hint for w1: Talos could not install"),
        "{text}"
    );
    assert!(
        text.contains("warning for cp2: node: config validation"),
        "{text}"
    );
    assert!(
        text.trim_end().ends_with("exit 3 (deadline reached)"),
        "closing line:\n{text}"
    );
    insta::assert_snapshot!("summary_table_80", text);
}

// ---------------------------------------------------------------------------
// examples/
// ---------------------------------------------------------------------------

#[test]
fn scenario_examples_load_for_the_default_fleet() {
    let dir = repo().join("examples/scenarios");
    let hostnames = FleetSpec::new(3, 2, "unused").hostnames();
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with('#'),
            "{origin} should open with a comment saying what it shows"
        );
        assert!(
            text.contains(&format!(
                "examples/scenarios/{}",
                path.file_name().unwrap().to_str().unwrap()
            )),
            "{origin}: the comment should show the command that uses it"
        );
        let scenario = Scenario::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
        scenario
            .check_hostnames(&hostnames, &origin)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !scenario.nodes.is_empty() || !scenario.disks.is_empty(),
            "{origin} injects nothing"
        );
        names.push(path.file_stem().unwrap().to_string_lossy().into_owned());
    }
    names.sort();
    for expected in ["flaky", "install-fails", "stuck", "wrong-ca"] {
        assert!(
            names.iter().any(|n| n == expected),
            "missing {expected}.yaml in {names:?}"
        );
    }
}

/// Reads a `KEY: value` line of talenv.yaml.
fn talenv_value(text: &str, key: &str) -> String {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| panic!("talenv.yaml has no {key}"))
}

#[test]
fn talhelper_example_loads_and_matches_its_generated_configs() {
    let dir = repo().join("examples/talhelper-cluster");
    // Only talenv.yaml next to talconfig.yaml: no process environment, no cwd.
    let env = Environment::from_vars(Vec::<(String, String)>::new());
    let inventory = load_talconfig_in(&LoadOptions::new(dir.join("talconfig.yaml")), &env)
        .unwrap_or_else(|e| panic!("{e}"));

    let talenv = std::fs::read_to_string(dir.join("talenv.yaml")).unwrap();
    let vip = talenv_value(&talenv, "clusterEndpointIP");
    assert_eq!(inventory.cluster_name.as_deref(), Some("home"));
    assert_eq!(inventory.endpoint, Some(format!("https://{vip}:6443")));

    let roles: Vec<Role> = inventory.nodes.iter().map(|n| n.role).collect();
    assert_eq!(
        roles,
        [
            Role::ControlPlane,
            Role::ControlPlane,
            Role::ControlPlane,
            Role::Worker,
            Role::Worker
        ]
    );
    let ips: Vec<String> = inventory
        .nodes
        .iter()
        .map(|n| n.primary_ip().to_string())
        .collect();
    assert!(!ips.contains(&vip), "the VIP must not be a node address");

    // Each generated config agrees with its talconfig entry: hostname,
    // address, role, install disk selector, cluster endpoint.
    let raw: yaml_serde::Value =
        yaml_serde::from_str(&std::fs::read_to_string(dir.join("talconfig.yaml")).unwrap())
            .unwrap();
    let entries = raw["nodes"].as_sequence().unwrap();
    assert_eq!(entries.len(), inventory.nodes.len());
    for (entry, node) in entries.iter().zip(&inventory.nodes) {
        let host = node.hostname.as_str();
        assert_eq!(entry["hostname"].as_str(), Some(host));
        let selector: DiskSelector =
            yaml_serde::from_value(entry["installDiskSelector"].clone()).unwrap();
        assert_eq!(
            node.config.disk_selector.as_ref(),
            Some(&selector),
            "{host}"
        );
        assert_eq!(node.config.hostname.as_deref(), Some(host));
        assert_eq!(node.config.cluster_name.as_deref(), Some("home"));
        assert_eq!(node.config.endpoint, inventory.endpoint, "{host}");
        assert!(
            node.config_path
                .ends_with(format!("clusterconfig/home-{host}.yaml")),
            "{}",
            node.config_path.display()
        );
    }

    // talhelper's talosconfig: context = cluster name, endpoints = the
    // control planes' addresses, nodes = every address.
    let tc = talstrap::talos::load(&dir.join("clusterconfig/talosconfig"), None)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(tc.context_name, "home");
    assert_eq!(tc.endpoints, ips[..3].to_vec());
    assert_eq!(tc.nodes, ips);
}

#[test]
fn report_example_is_a_current_report() {
    let text = std::fs::read_to_string(repo().join("examples/report.json")).unwrap();
    let report: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["type"], "report");
    assert_eq!(report["schema"], REPORT_SCHEMA);
    let nodes = report["nodes"].as_array().unwrap();
    assert_eq!(report["summary"]["total"], nodes.len());
    for (key, status) in [("ok", "ok"), ("failed", "failed"), ("skipped", "skipped")] {
        let n = nodes.iter().filter(|n| n["status"] == status).count();
        assert_eq!(report["summary"][key], n, "summary.{key}");
    }
    // The exit code follows from the node outcomes, as in a live run.
    assert_eq!(report["status"], "node_failure");
    assert_eq!(report["exit_code"], 1);
    let failed = nodes.iter().find(|n| n["status"] == "failed").unwrap();
    assert!(failed["error"]["message"].is_string() && failed["hint"].is_string());
}

#[test]
fn ci_workflow_and_taskfile_are_valid_yaml_with_the_expected_steps() {
    let workflow: yaml_serde::Value = yaml_serde::from_str(
        &std::fs::read_to_string(repo().join("examples/ci/github-actions.yaml")).unwrap(),
    )
    .unwrap();
    let steps = workflow["jobs"]["bootstrap"]["steps"]
        .as_sequence()
        .unwrap();
    let runs: Vec<&str> = steps.iter().filter_map(|s| s["run"].as_str()).collect();
    let all = runs.join("\n");
    for needle in [
        "-o json",
        "jq ",
        "exit $code",
        "talstrap-step apply apply --wait",
    ] {
        assert!(all.contains(needle), "workflow lacks {needle:?}");
    }
    assert!(
        steps.iter().any(|s| s["uses"]
            .as_str()
            .is_some_and(|u| u.starts_with("actions/upload-artifact"))),
        "workflow does not upload the reports"
    );

    let taskfile: yaml_serde::Value =
        yaml_serde::from_str(&std::fs::read_to_string(repo().join("Taskfile.yaml")).unwrap())
            .unwrap();
    assert_eq!(taskfile["version"].as_str(), Some("3"));
    let tasks = taskfile["tasks"].as_mapping().unwrap();
    for name in [
        "bootstrap:talos",
        "demo",
        "test",
        "bench",
        "completions",
        "lint",
    ] {
        let task = tasks
            .get(name)
            .unwrap_or_else(|| panic!("Taskfile has no {name} task"));
        // Every command is a plain string: `- foo: bar` would be a mapping.
        for cmd in task["cmds"].as_sequence().unwrap() {
            assert!(cmd.is_string(), "{name}: command is not a string: {cmd:?}");
        }
    }
    let bootstrap: Vec<&str> = tasks.get("bootstrap:talos").unwrap()["cmds"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    let order = [
        "talhelper genconfig",
        "talstrap preflight",
        "talstrap apply --wait",
        "talstrap bootstrap --kubeconfig",
    ];
    let mut at = 0;
    for want in order {
        let found = bootstrap[at..]
            .iter()
            .position(|c| c.contains(want))
            .unwrap_or_else(|| panic!("bootstrap:talos: {want:?} missing or out of order"));
        at += found;
    }
}

// ---------------------------------------------------------------------------
// The README quickstart
// ---------------------------------------------------------------------------

/// README: "`cargo run --release -- demo`" is the first command. The same
/// binary, faster, must bootstrap the simulated cluster and leave a private
/// kubeconfig behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_like_the_readme() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let dir_arg = dir.display().to_string();
    let run = run_bin(
        &["demo", "--time-scale", "0.05", "--dir", &dir_arg],
        &[],
        Some(tmp.path()),
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.dump());
    let out = format!("{}\n{}", run.stdout, run.stderr);
    for stage in ["1/4 preflight", "2/4 apply", "3/4 bootstrap", "4/4 verify"] {
        assert!(out.contains(stage), "no {stage:?} stage:\n{}", run.dump());
    }
    assert!(out.contains("Demo complete"), "{}", run.dump());

    let kubeconfig = dir.join("kubeconfig");
    let meta = std::fs::metadata(&kubeconfig).expect("the demo leaves a kubeconfig");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(
        text.contains("clusters:") && text.contains("users:"),
        "{text}"
    );
    assert!(
        out.contains(&kubeconfig.display().to_string()),
        "path not shown"
    );
}

/// The README shows the repository's own `bootstrap:talos` task, not an older
/// variant, and the CI example keeps the kubeconfig it fetched.
#[test]
fn readme_taskfile_snippet_is_the_repos_task_and_ci_keeps_the_kubeconfig() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let after = readme
        .split_once("After (this repository's `Taskfile.yaml` task")
        .map(|(_, rest)| rest)
        .expect("README has the Taskfile snippet");
    let block = after
        .split_once("```yaml\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(yaml, _)| yaml)
        .unwrap();
    let shown: yaml_serde::Value = yaml_serde::from_str(block).unwrap();
    let taskfile: yaml_serde::Value =
        yaml_serde::from_str(&std::fs::read_to_string(repo().join("Taskfile.yaml")).unwrap())
            .unwrap();
    let task = &taskfile["tasks"]["bootstrap:talos"];
    for key in ["cmds", "dir", "env", "preconditions", "desc"] {
        assert_eq!(
            shown["bootstrap:talos"][key], task[key],
            "README's bootstrap:talos {key}"
        );
    }

    let ci = std::fs::read_to_string(repo().join("examples/ci/github-actions.yaml")).unwrap();
    let cleanup = ci
        .lines()
        .filter(|l| l.trim_start().starts_with("run: rm "))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        !cleanup.contains("kubeconfig"),
        "the CI example deletes its kubeconfig: {cleanup}"
    );
    assert!(
        !ci.contains("exit 2) ends before any node is contacted: no report"),
        "stale comment"
    );
}
