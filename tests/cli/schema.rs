//! The JSON contract: every `-o json` invocation prints events, then exactly
//! one report, and every line matches `schema/events-v1.json` (reports:
//! `schema/report-v1.json`). The harness checks each line any test reads;
//! these tests run every command once and check the sequence rules.

use serde_json::Value;

use crate::support::{Run, cluster, run_bin, schema_errors, schema_validator};

fn repo_file(rel: &str) -> Value {
    let text = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel))
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn schemas_accept_the_example_and_reject_broken_lines() {
    let report = schema_validator("report-v1.json");
    let example = repo_file("examples/report.json");
    let errors: Vec<String> = report
        .iter_errors(&example)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "examples/report.json: {errors:?}");
    assert!(schema_errors(&example).is_empty());

    // Each of these must be caught: the schema is not a blank check.
    let mut bad = Vec::new();
    let mut v = example.clone();
    v["exit_code"] = 0.into(); // status node_failure with exit 0
    bad.push(("status/exit_code disagree", v));
    let mut v = example.clone();
    v.as_object_mut().unwrap().remove("summary");
    bad.push(("no summary", v));
    let mut v = example.clone();
    v["nodes"][0]["status"] = "done".into();
    bad.push(("unknown node status", v));
    let mut v = example.clone();
    v["nodes"][0]["ip"] = "not-an-ip".into();
    bad.push(("bad ip", v));
    bad.push((
        "text line",
        serde_json::json!({"type": "text", "text": "hello"}),
    ));
    bad.push((
        "event of no known kind",
        serde_json::json!({"type": "event", "t_ms": 1, "event": "mystery"}),
    ));
    bad.push((
        "run_started without nodes",
        serde_json::json!({"type": "event", "t_ms": 1, "event": "run_started", "command": "apply", "parallel": 4}),
    ));
    for (what, line) in bad {
        assert!(
            !schema_errors(&line).is_empty(),
            "{what} passed the schema: {line}"
        );
    }
}

/// The lines of a run, with the sequence rules of the contract checked.
fn check_sequence(run: &Run) -> Vec<Value> {
    let lines = run.lines();
    let report = run.report();
    assert_eq!(report["exit_code"], run.code, "{}", run.dump());
    // Each node of a run finishes once in that run.
    let mut finished = std::collections::BTreeMap::<(String, String), usize>::new();
    let mut started_runs = Vec::new();
    for l in &lines {
        match l["event"].as_str() {
            Some("run_started") => started_runs.push(l["command"].as_str().unwrap().to_string()),
            Some("node_finished") => {
                let run = l["run"]
                    .as_str()
                    .expect("node_finished names its run")
                    .to_string();
                assert!(
                    started_runs.contains(&run),
                    "node_finished before its run_started: {l}"
                );
                *finished
                    .entry((run, l["outcome"]["node"].as_str().unwrap().into()))
                    .or_default() += 1;
            }
            _ => {}
        }
    }
    assert!(finished.values().all(|&n| n == 1), "{finished:?}");
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_ends_with_one_report_that_matches_the_schema() {
    let c = cluster(1, 1, None).await;
    for (cmd, extra) in [
        ("preflight", vec![]),
        ("apply", vec!["--dry-run"]),
        ("apply", vec!["--wait"]),
        ("verify", vec![]),
        ("bootstrap", vec!["--etcd-timeout", "30s"]),
        ("verify", vec!["--phase", "post-bootstrap"]),
    ] {
        let run = c.json(cmd, &extra).await;
        assert_eq!(run.code, 0, "{cmd} {extra:?}: {}", run.dump());
        let lines = check_sequence(&run);
        assert!(
            lines.iter().any(|l| l["event"] == "run_started"),
            "{cmd}: no run_started"
        );
        assert_eq!(run.report()["command"], cmd);
    }
    let subnet = format!("{}/30", c.ip("cp1"));
    let run = run_bin(
        &[
            "discover",
            &subnet,
            "--port",
            &c.fleet.port().to_string(),
            "--skeleton",
            "-o",
            "json",
        ],
        &[],
        Some(c.tmp.path()),
    )
    .await;
    check_sequence(&run);
    let skeleton = run.report()["details"]["skeleton"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(skeleton.contains("nodes:"), "{}", run.dump());

    // Usage and input errors: nothing contacted, still a report.
    let before = c.fleet.total_connections();
    for args in [
        vec!["bogus", "-o", "json"],
        vec!["-o", "json", "apply", "--mode", "sideways"],
        vec!["preflight", "-o", "json", "--timeout", "soon"],
        vec!["-o", "json", "-e", "127.0.0.1", "preflight"],
        vec!["--output=json", "apply", "--insecure"],
        vec!["-ojson", "health"],
        vec![
            "apply",
            "-o",
            "json",
            "--talconfig",
            "/nonexistent/talconfig.yaml",
        ],
    ] {
        let run = run_bin(&args, &[], Some(c.tmp.path())).await;
        assert_eq!(run.code, 2, "{args:?}: {}", run.dump());
        let report = run.report();
        assert_eq!(report["status"], "input", "{args:?}");
        assert!(
            report["messages"][0]
                .as_str()
                .unwrap()
                .starts_with("error: "),
            "{report}"
        );
    }
    // TALSTRAP_OUTPUT counts as -o json for usage errors too.
    let run = run_bin(
        &["preflight", "--bogus"],
        &[("TALSTRAP_OUTPUT", "json")],
        Some(c.tmp.path()),
    )
    .await;
    assert_eq!(run.report()["exit_code"], 2, "{}", run.dump());
    assert_eq!(
        c.fleet.total_connections(),
        before,
        "a usage error contacted a node"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_wait_has_one_node_finished_per_node_per_run() {
    let c = cluster(1, 2, None).await;
    let run = c.json("apply", &["--wait"]).await;
    assert_eq!(run.code, 0, "{}", run.dump());
    let lines = check_sequence(&run);
    let runs: Vec<&str> = lines
        .iter()
        .filter(|l| l["event"] == "run_started")
        .map(|l| l["command"].as_str().unwrap())
        .collect();
    assert_eq!(runs, ["apply", "apply --wait"]);
    for run_name in runs {
        let n = lines
            .iter()
            .filter(|l| l["event"] == "node_finished" && l["run"] == run_name)
            .count();
        assert_eq!(n, 3, "{run_name}");
    }
    // The report merges both runs: one entry per node.
    assert_eq!(run.report()["nodes"].as_array().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_json_nests_stage_reports_and_ends_with_its_own() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let dir_arg = dir.display().to_string();
    let run = run_bin(
        &[
            "demo",
            "--time-scale",
            "0.05",
            "--dir",
            &dir_arg,
            "--control-planes",
            "1",
            "--workers",
            "1",
            "-o",
            "json",
        ],
        &[],
        Some(tmp.path()),
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.dump());
    let lines = run.lines();
    let report = run.report();
    assert_eq!(report["command"], "demo");
    assert_eq!(report["details"]["dir"], dir_arg);
    let stages: Vec<&str> = lines
        .iter()
        .filter(|l| l["event"] == "stage_finished")
        .map(|l| l["report"]["command"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["preflight", "apply", "bootstrap", "verify"]);
    assert!(
        lines.iter().all(|l| l["type"] != "text"),
        "text lines are gone"
    );
    // README: `tail -n1 | jq` reads the report.
    let last: Value = serde_json::from_str(run.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["type"], "report");
}
