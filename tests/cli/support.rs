//! Test harness: start a simulated fleet in this process, run the real
//! binary against it, and read its JSON events and report.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use talstrap::sim::{Fleet, FleetSpec, Scenario};

/// A simulated cluster plus the directory holding its files.
pub struct Cluster {
    pub fleet: Fleet,
    pub tmp: tempfile::TempDir,
}

/// Start `cps` control planes and `workers` workers with an optional
/// scenario (YAML text) at a small time scale.
pub async fn cluster(cps: usize, workers: usize, scenario: Option<&str>) -> Cluster {
    cluster_scaled(cps, workers, scenario, 0.02).await
}

pub async fn cluster_scaled(
    cps: usize,
    workers: usize,
    scenario: Option<&str>,
    time_scale: f64,
) -> Cluster {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut spec = FleetSpec::new(cps, workers, tmp.path().join("cluster"));
    spec.time_scale = time_scale;
    spec.port = 0;
    if let Some(text) = scenario {
        spec.scenario = Scenario::from_yaml(text, "test scenario").expect("scenario");
    }
    let fleet = Fleet::start(spec).await.expect("fleet start");
    Cluster { fleet, tmp }
}

/// The result of one run of the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// JSON lines on stdout (with `-o json`), each checked against the
    /// published contract (`schema/events-v1.json`).
    pub fn lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: Value = serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n--- stderr:\n{}", self.stderr));
                let errors = schema_errors(&v);
                assert!(
                    errors.is_empty(),
                    "line breaks the JSON contract (schema/events-v1.json; update it with the change): {errors:?}\n{l}"
                );
                v
            })
            .collect()
    }

    /// The final report (last JSON line, and the only report).
    pub fn report(&self) -> Value {
        let lines = self.lines();
        let last = lines.last().cloned().unwrap_or(Value::Null);
        assert_eq!(
            last["type"], "report",
            "last line is not a report:\n{}\n--- stderr:\n{}",
            self.stdout, self.stderr
        );
        let reports = lines.iter().filter(|l| l["type"] == "report").count();
        assert_eq!(reports, 1, "one report per invocation:\n{}", self.stdout);
        last
    }

    /// The report entry of one node.
    pub fn node(&self, name: &str) -> Value {
        self.report()["nodes"]
            .as_array()
            .and_then(|ns| ns.iter().find(|n| n["node"] == name).cloned())
            .unwrap_or_else(|| panic!("node {name} not in report:\n{}", self.stdout))
    }

    /// Events of one kind.
    pub fn events(&self, kind: &str) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|l| l["type"] == "event" && l["event"] == kind)
            .collect()
    }

    pub fn dump(&self) -> String {
        format!(
            "exit {}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

const REPORT_SCHEMA_ID: &str = "https://talstrap.invalid/schema/report-v1.json";

fn schema_file(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schema")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A validator for `schema/<name>`, with report-v1.json resolvable by its id.
pub fn schema_validator(name: &str) -> jsonschema::Validator {
    static REGISTRY: std::sync::OnceLock<jsonschema::Registry<'static>> =
        std::sync::OnceLock::new();
    let registry = REGISTRY.get_or_init(|| {
        jsonschema::Registry::new()
            .add(REPORT_SCHEMA_ID, schema_file("report-v1.json"))
            .expect("report schema resource")
            .prepare()
            .expect("schema registry")
    });
    jsonschema::options()
        .with_registry(registry)
        .should_validate_formats(true)
        .build(&schema_file(name))
        .unwrap_or_else(|e| panic!("schema/{name} is not a valid schema: {e}"))
}

/// How `line` breaks `schema/events-v1.json` (empty: it does not).
pub fn schema_errors(line: &Value) -> Vec<String> {
    static EVENTS: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    EVENTS
        .get_or_init(|| schema_validator("events-v1.json"))
        .iter_errors(line)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// The binary under test: this build's, or `TALSTRAP_TEST_BIN` (to run the
/// same scenarios against another build, e.g. a pre-fix one; see
/// `tests/prefix-evidence.sh`).
pub fn bin() -> PathBuf {
    match std::env::var_os("TALSTRAP_TEST_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_talstrap")),
    }
}

impl Cluster {
    pub fn dir(&self) -> &Path {
        &self.fleet.paths().dir
    }

    pub fn talconfig(&self) -> PathBuf {
        self.fleet.paths().talconfig.clone()
    }

    pub fn talosconfig(&self) -> PathBuf {
        self.fleet.paths().talosconfig.clone()
    }

    pub fn ip(&self, hostname: &str) -> String {
        self.fleet
            .ip(hostname)
            .unwrap_or_else(|| panic!("no node {hostname}"))
            .to_string()
    }

    /// The arguments every command needs to find this cluster.
    pub fn target_args(&self) -> Vec<String> {
        vec![
            "--talconfig".into(),
            self.talconfig().display().to_string(),
            "--talosconfig".into(),
            self.talosconfig().display().to_string(),
            "--port".into(),
            self.fleet.port().to_string(),
        ]
    }

    /// Run `talstrap <args>` (with fast pacing) and wait for it, while the
    /// fleet keeps serving on this runtime.
    pub async fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[]).await
    }

    pub async fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        run_bin(args, env, Some(self.tmp.path())).await
    }

    /// `talstrap <cmd> <cluster args> -o json <extra>`.
    pub async fn json(&self, cmd: &str, extra: &[&str]) -> Run {
        let mut args: Vec<String> = vec![cmd.into()];
        args.extend(self.target_args());
        args.extend(["-o".into(), "json".into()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&refs).await
    }
}

/// `talstrap <args>` with a clean environment: no TALOSCONFIG, HOME in a
/// temp dir (so ~/.talos/config is never read), fast retries and polls, no
/// inherited TALSTRAP_* settings except those in `env`.
pub fn command(
    args: &[&str],
    env: &[(&str, &str)],
    home: Option<&Path>,
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(bin());
    cmd.args(args)
        .env_remove("TALOSCONFIG")
        .env_remove("TALOS_HOME")
        .env("NO_COLOR", "1")
        .env("TALSTRAP_RETRY_DELAY", "50ms")
        .env("TALSTRAP_POLL_INTERVAL", "50ms")
        .env("TALSTRAP_CONNECT_TIMEOUT", "1s")
        .env("TALSTRAP_RPC_TIMEOUT", "5s")
        .kill_on_drop(true);
    for (k, _) in std::env::vars() {
        if k.starts_with("TALSTRAP_") && !env.iter().any(|(e, _)| *e == k) {
            cmd.env_remove(&k);
        }
    }
    if let Some(h) = home {
        cmd.env("HOME", h);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Run the binary (see [`command`]) and wait for it.
pub async fn run_bin(args: &[&str], env: &[(&str, &str)], home: Option<&Path>) -> Run {
    let out: Output =
        tokio::time::timeout(Duration::from_secs(120), command(args, env, home).output())
            .await
            .expect("talstrap did not finish within 120 s")
            .expect("spawn talstrap");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A running `talstrap` whose JSON lines are read as they come (for tests
/// that act while it runs: power a node on, send Ctrl-C).
pub struct Live {
    child: tokio::process::Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
    stderr: tokio::task::JoinHandle<String>,
}

impl Live {
    pub fn spawn(c: &Cluster, args: &[String], env: &[(&str, &str)]) -> Live {
        use tokio::io::AsyncBufReadExt;
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = command(&refs, env, Some(c.tmp.path()));
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("spawn talstrap");
        let stdout = child.stdout.take().expect("stdout");
        let mut stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Drained all along, so a chatty stderr never blocks the child.
        let stderr = tokio::spawn(async move {
            let mut s = String::new();
            let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut s).await;
            s
        });
        Live {
            child,
            lines: rx,
            seen: Vec::new(),
            stderr,
        }
    }

    /// Wait (hang guard: 60 s) for a JSON line matching `pred`, and return it.
    pub async fn wait_for(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let found = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = self.lines.recv().await {
                self.seen.push(line.clone());
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && pred(&v)
                {
                    return Some(v);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(v)) => v,
            _ => panic!("never saw {what}; output so far:\n{}", self.seen.join("\n")),
        }
    }

    /// Let the process handle a signal before the next one (the handler
    /// runs on the process's own runtime).
    pub async fn let_the_signal_land(&self) {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    /// Send SIGINT, as Ctrl-C does.
    pub fn interrupt(&self) {
        let pid = self.child.id().expect("child pid");
        let status = std::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Wait for the exit and collect everything it printed.
    pub async fn finish(mut self) -> Run {
        let status = tokio::time::timeout(Duration::from_secs(120), self.child.wait())
            .await
            .expect("talstrap did not finish within 120 s")
            .expect("wait for talstrap");
        while let Some(line) = self.lines.recv().await {
            self.seen.push(line);
        }
        Run {
            code: status.code().unwrap_or(-1),
            stdout: self.seen.join("\n"),
            stderr: self.stderr.await.unwrap_or_default(),
        }
    }
}
