//! The bad-input inventory (issue 11): several hundred wrong flags, files
//! and environment values, each run through the real binary against a live
//! simulated fleet, each checked for the same contract:
//! - exit code 2 (bad input), an error on stderr starting with `error:`;
//! - no panic (no exit 101, no "panicked at");
//! - no hang (every run ends within [`HANG`]);
//! - nothing contacted (the fleet's accept counter does not move).
//!
//! RELIABILITY.md's "Bad-input inventory" table is this test's output: the
//! test fails when the table there differs from what it measured, and
//! `TALSTRAP_WRITE_INVENTORY=1` rewrites the table in place.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use futures_util::StreamExt;
use yaml_serde::Value;

use crate::support::*;

/// A run that takes longer than this is a hang.
const HANG: Duration = Duration::from_secs(30);

/// One bad input.
struct Case {
    category: &'static str,
    what: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

/// What one run did.
struct Outcome {
    code: Option<i32>,
    panicked: bool,
    hung: bool,
    stderr: String,
}

impl Outcome {
    fn handled(&self) -> bool {
        // clap answers a missing subcommand with the usage, not an error line.
        let explained = self.stderr.trim_start().starts_with("error:")
            || self.stderr.contains("\nUsage: talstrap");
        self.code == Some(2) && !self.panicked && !self.hung && explained
    }
}

/// Files for the cases, each in a directory of its own.
struct Fix {
    c: Cluster,
    root: PathBuf,
    n: AtomicUsize,
}

impl Fix {
    fn new_dir(&self) -> PathBuf {
        let d = self
            .root
            .join(format!("case{}", self.n.fetch_add(1, Ordering::SeqCst)));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn file(&self, name: &str, body: &[u8]) -> String {
        let p = self.new_dir().join(name);
        std::fs::write(&p, body).unwrap();
        s(&p)
    }

    fn fifo(&self) -> String {
        let p = self.new_dir().join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&p)
                .status()
                .unwrap()
                .success()
        );
        s(&p)
    }

    /// 100 MiB, sparse (nothing is written).
    fn big(&self) -> String {
        let p = self.new_dir().join("big");
        std::fs::File::create(&p)
            .unwrap()
            .set_len(100 << 20)
            .unwrap();
        s(&p)
    }

    fn symlink_loop(&self) -> String {
        let p = self.new_dir().join("loop");
        std::os::unix::fs::symlink(&p, &p).unwrap();
        s(&p)
    }

    fn dangling(&self) -> String {
        let d = self.new_dir();
        let p = d.join("dangling");
        std::os::unix::fs::symlink(d.join("gone"), &p).unwrap();
        s(&p)
    }

    fn talconfig_text(&self) -> String {
        std::fs::read_to_string(self.c.talconfig()).unwrap()
    }

    fn config_dir(&self) -> String {
        s(&self.c.fleet.paths().config_dir)
    }

    fn ip(&self, host: &str) -> String {
        self.c.ip(host)
    }

    /// `cmd` against the good cluster.
    fn base(&self, cmd: &str) -> Vec<String> {
        let mut a = vec![cmd.to_string()];
        a.extend(self.c.target_args());
        a
    }

    /// `preflight` with another talconfig.yaml (the good machine configs).
    fn with_talconfig(&self, body: &[u8]) -> Vec<String> {
        let p = self.file("talconfig.yaml", body);
        self.talconfig_path(&p)
    }

    fn talconfig_path(&self, p: &str) -> Vec<String> {
        let mut a = vec!["preflight".to_string(), "--talconfig".into(), p.to_string()];
        a.extend(["--config-dir".into(), self.config_dir()]);
        a.extend(self.tail());
        a
    }

    /// `--talosconfig` and `--port` of the good cluster.
    fn tail(&self) -> Vec<String> {
        vec![
            "--talosconfig".into(),
            s(&self.c.talosconfig()),
            "--port".into(),
            self.c.fleet.port().to_string(),
        ]
    }

    /// `preflight` with another talosconfig.
    fn with_talosconfig_path(&self, p: &str) -> Vec<String> {
        vec![
            "preflight".into(),
            "--talconfig".into(),
            s(&self.c.talconfig()),
            "--talosconfig".into(),
            p.to_string(),
            "--port".into(),
            self.c.fleet.port().to_string(),
        ]
    }

    /// The talosconfig with its one context edited.
    fn talosconfig_edited(&self, edit: impl FnOnce(&mut yaml_serde::Mapping)) -> Vec<String> {
        let text = std::fs::read_to_string(self.c.talosconfig()).unwrap();
        let mut doc: Value = yaml_serde::from_str(&text).unwrap();
        let name = doc["context"].as_str().unwrap().to_string();
        edit(doc["contexts"][name.as_str()].as_mapping_mut().unwrap());
        let p = self.file(
            "talosconfig",
            yaml_serde::to_string(&doc).unwrap().as_bytes(),
        );
        self.with_talosconfig_path(&p)
    }

    /// A machine config of `host` replaced by `body`, through `--node`.
    fn with_node_config(&self, host: &str, body: &[u8]) -> Vec<String> {
        let p = self.file("config.yaml", body);
        self.node_flag(&format!("{}={p}", self.ip(host)))
    }

    fn node_flag(&self, flag: &str) -> Vec<String> {
        let mut a = vec!["preflight".to_string(), "--node".into(), flag.to_string()];
        a.extend(self.tail());
        a
    }

    fn machine_config(&self, host: &str) -> String {
        let p = self.c.fleet.paths().node_config(host).unwrap();
        std::fs::read_to_string(p).unwrap()
    }

    /// `sim` with a scenario file (bad ones end before anything listens).
    fn sim_scenario(&self, body: &str) -> Vec<String> {
        let p = self.file("scenario.yaml", body.as_bytes());
        let dir = self.new_dir();
        strings(&["sim", "--scenario", &p, "--dir", &s(&dir.join("c"))])
    }
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|x| x.to_string()).collect()
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Collects cases by category.
struct Cases(Vec<Case>);

impl Cases {
    fn add(&mut self, category: &'static str, what: impl Into<String>, args: Vec<String>) {
        self.add_env(category, what, args, &[]);
    }

    fn add_env(
        &mut self,
        category: &'static str,
        what: impl Into<String>,
        args: Vec<String>,
        env: &[(&str, &str)],
    ) {
        self.0.push(Case {
            category,
            what: what.into(),
            args,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        });
    }
}

/// Every duration flag, with the command that takes it.
const DURATION_FLAGS: &[(&str, &str)] = &[
    ("preflight", "--timeout"),
    ("preflight", "--connect-timeout"),
    ("preflight", "--rpc-timeout"),
    ("preflight", "--retry-delay"),
    ("preflight", "--poll-interval"),
    ("apply", "--stuck-after"),
    ("apply", "--try-timeout"),
    ("verify", "--stuck-after"),
    ("bootstrap", "--etcd-timeout"),
    ("bootstrap", "--resend-after"),
    ("discover", "--connect-timeout"),
];

/// Values no duration flag takes (`--resend-after` takes 0: see below).
const BAD_DURATIONS: &[&str] = &[
    "0",
    "0s",
    "0ms",
    "-1s",
    "soon",
    "1e300",
    "inf",
    "NaN",
    "99999999999999999999h",
    "1x",
    "1h30",
    "",
];

fn flag_cases(f: &Fix, out: &mut Cases) {
    for (cmd, flag) in DURATION_FLAGS {
        for v in BAD_DURATIONS {
            if *flag == "--resend-after" && v.starts_with('0') {
                continue; // 0 means "resend at once", a deliberate setting
            }
            let mut a = if *cmd == "discover" {
                strings(&["discover", &format!("{}/30", f.ip("cp1"))])
            } else {
                f.base(cmd)
            };
            // `--flag=value`: a value starting with '-' reaches the parser.
            a.push(format!("{flag}={v}"));
            out.add("duration flags", format!("{cmd} {flag} {v:?}"), a);
        }
    }
    let counts: &[(&str, &str, &[&str])] = &[
        (
            "preflight",
            "--parallel",
            &["0", "-1", "65537", "1e3", "x", "18446744073709551616"],
        ),
        ("preflight", "--attempts", &["0", "1001", "-3", "many"]),
        ("preflight", "--port", &["0", "65536", "-1", "http"]),
        ("discover", "--window", &["0", "65537", "-5", "lots"]),
        (
            "sim",
            "--workers",
            &["18446744073709551615", "16385", "-1", "two"],
        ),
        ("sim", "--control-planes", &["0", "65", "-1"]),
        ("demo", "--workers", &["18446744073709551615", "16385"]),
        ("demo", "--control-planes", &["0", "65"]),
        (
            "sim",
            "--time-scale",
            &["1e300", "0", "-1", "inf", "NaN", "0.0001", "1001", "fast"],
        ),
        (
            "demo",
            "--time-scale",
            &["1e300", "0", "-1", "inf", "NaN", "0.0001", "1001"],
        ),
    ];
    for (cmd, flag, values) in counts {
        for v in *values {
            let mut a = match *cmd {
                "discover" => strings(&["discover", &format!("{}/30", f.ip("cp1"))]),
                "sim" | "demo" => {
                    let d = f.new_dir();
                    strings(&[cmd, "--dir", &s(&d.join("c"))])
                }
                _ => f.base(cmd),
            };
            if let Some(at) = a.iter().position(|x| x == flag) {
                a.drain(at..at + 2); // the harness's own --port
            }
            a.push(format!("{flag}={v}"));
            out.add("counts and factors", format!("{cmd} {flag} {v}"), a);
        }
    }
    let mut bootstrap_quorum = |v: &str| {
        let mut a = f.base("bootstrap");
        a.extend(strings(&["--auto", &format!("--quorum={v}")]));
        out.add(
            "counts and factors",
            format!("bootstrap --auto --quorum {v}"),
            a,
        );
    };
    for v in ["0", "65", "x"] {
        bootstrap_quorum(v);
    }
    for (flag, v) in [("-o", "xml"), ("--role", "boss"), ("--output", "")] {
        let mut a = f.base("preflight");
        a.push(format!("{flag}={v}"));
        out.add("enum flags", format!("preflight {flag} {v:?}"), a);
    }
    let mut a = f.base("apply");
    a.extend(strings(&["--mode", "yolo"]));
    out.add("enum flags", "apply --mode yolo", a);
    let mut a = f.base("verify");
    a.extend(strings(&["--phase", "later"]));
    out.add("enum flags", "verify --phase later", a);
    out.add(
        "enum flags",
        "completions tcsh",
        strings(&["completions", "tcsh"]),
    );
    for (var, v) in [
        ("TALSTRAP_PARALLEL", "0"),
        ("TALSTRAP_TIMEOUT", "0"),
        ("TALSTRAP_TIMEOUT", "forever"),
        ("TALSTRAP_RPC_TIMEOUT", "0"),
        ("TALSTRAP_CONNECT_TIMEOUT", "0s"),
        ("TALSTRAP_RETRY_DELAY", "0"),
        ("TALSTRAP_POLL_INTERVAL", "1e300"),
        ("TALSTRAP_ATTEMPTS", "0"),
        ("TALSTRAP_PORT", "0"),
        ("TALSTRAP_OUTPUT", "yaml"),
        ("TALSTRAP_ROLE", "boss"),
        ("TALSTRAP_STUCK_AFTER", "0"),
    ] {
        out.add_env(
            "environment variables",
            format!("{var}={v}"),
            f.base("verify"),
            &[(var, v)],
        );
    }
}

fn talconfig_cases(f: &Fix, out: &mut Cases) {
    let good = f.talconfig_text();
    let cp1 = f.ip("cp1");
    let w1 = f.ip("w1");
    let replaced = |from: &str, to: &str| {
        assert!(good.contains(from), "talconfig has no {from:?}");
        good.replacen(from, to, 1).into_bytes()
    };
    let mut add = |what: &str, body: Vec<u8>| {
        out.add("talconfig.yaml contents", what, f.with_talconfig(&body));
    };
    add("empty file", Vec::new());
    add("only comments", b"# nothing here\n".to_vec());
    add("a list at the top", b"- a\n- b\n".to_vec());
    add("a scalar at the top", b"just text\n".to_vec());
    add("malformed YAML", b"clusterName: [unclosed\n".to_vec());
    add("tab indentation", good.replace("  ", "\t").into_bytes());
    add("nodes: []", replaced_nodes(&good, "nodes: []\n"));
    add(
        "no nodes field",
        good.split("nodes:").next().unwrap().as_bytes().to_vec(),
    );
    add("nodes is a string", replaced_nodes(&good, "nodes: cp1\n"));
    add(
        "nodes is a mapping",
        replaced_nodes(&good, "nodes: {cp1: {}}\n"),
    );
    add(
        "node without hostname",
        replaced("- hostname: cp1\n", "- \n"),
    );
    add(
        "node without ipAddress",
        replaced(&format!("  ipAddress: {cp1}\n"), ""),
    );
    for ip in [
        "0.0.0.0",
        "255.255.255.255",
        "224.0.0.1",
        "::",
        "ff02::1",
        "10.0.0.300",
        "cp1.example.com",
        "",
        "127.0.0.1,",
    ] {
        add(
            &format!("ipAddress {ip:?}"),
            replaced(
                &format!("ipAddress: {cp1}"),
                &format!("ipAddress: \"{ip}\""),
            ),
        );
    }
    add(
        "duplicate IP",
        replaced(&format!("ipAddress: {w1}"), &format!("ipAddress: {cp1}")),
    );
    add(
        "duplicate hostname",
        replaced("hostname: w1", "hostname: cp1"),
    );
    for h in ["-cp1", "cp_1", "a..b", "cp1-"] {
        add(
            &format!("hostname {h:?}"),
            replaced("hostname: cp1", &format!("hostname: \"{h}\"")),
        );
    }
    // Refusal fixtures only: each of these is rejected before any dial, and
    // the inventory run checks that no address was contacted.
    for ep in ["http://10.0.0.1:6443", "not a url", "https://", ""] {
        add(
            &format!("endpoint {ep:?}"),
            good.lines()
                .map(|l| {
                    if l.starts_with("endpoint:") {
                        format!("endpoint: \"{ep}\"")
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
                .into_bytes(),
        );
    }
    add(
        "controlPlane: maybe",
        replaced("controlPlane: true", "controlPlane: maybe"),
    );
    add(
        "unset ${VAR}",
        replaced(
            &format!("ipAddress: {cp1}"),
            "ipAddress: ${TALSTRAP_TEST_UNSET_VAR}",
        ),
    );
    add(
        "controlPlane contradicts the config",
        replaced("controlPlane: true", "controlPlane: false"),
    );
    add(
        "filenameTmpl leaving the config dir",
        replaced(
            "  installDisk:",
            "  filenameTmpl: ../../../../etc/passwd\n  installDisk:",
        ),
    );
    add(
        "filenameTmpl with an unknown field",
        replaced(
            "  installDisk:",
            "  filenameTmpl: \"{{ .Nope }}\"\n  installDisk:",
        ),
    );
    add("two documents", format!("{good}\n---\n{good}").into_bytes());
    add("not UTF-8", [good.as_bytes(), b"\n# \xff\xfe\n"].concat());
    add("binary garbage", (0u8..=255).cycle().take(4096).collect());
    let laughs = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n\
        b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n\
        d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n\
        f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n\
        h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n\
        clusterName: *i\nnodes: []\n";
    add("YAML bomb (billion laughs)", laughs.as_bytes().to_vec());
    add(
        "deep nesting",
        format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
    );

    let mut path_case = |what: &str, p: String| {
        out.add("talconfig.yaml path", what, f.talconfig_path(&p));
    };
    path_case("missing", s(&f.new_dir().join("nope.yaml")));
    path_case("a directory", s(&f.new_dir()));
    path_case("a FIFO", f.fifo());
    path_case("100 MiB", f.big());
    path_case("a symlink loop", f.symlink_loop());
    path_case("a dangling symlink", f.dangling());
    let empty = f.new_dir();
    out.add_env(
        "talconfig.yaml path",
        "no ./talconfig.yaml and no --node",
        {
            let mut a = strings(&["preflight"]);
            a.extend(f.tail());
            a.extend(strings(&["--config-dir", &s(&empty)]));
            a
        },
        &[],
    );
}

/// `good` with everything from `nodes:` on replaced by `nodes`.
fn replaced_nodes(good: &str, nodes: &str) -> Vec<u8> {
    let head = good.split("nodes:").next().unwrap();
    format!("{head}{nodes}").into_bytes()
}

fn machine_config_cases(f: &Fix, out: &mut Cases) {
    let good = f.machine_config("w1");
    let mut add = |what: &str, body: Vec<u8>| {
        out.add("machine configs", what, f.with_node_config("w1", &body));
    };
    add("empty", Vec::new());
    add(
        "malformed YAML",
        b"version: v1alpha1\nmachine: [\n".to_vec(),
    );
    add(
        "no v1alpha1 document",
        b"apiVersion: v1alpha1\nkind: HostnameConfig\nhostname: w1\n".to_vec(),
    );
    add("a list", b"- 1\n".to_vec());
    add("not UTF-8", [good.as_bytes(), b"\n# \xff\n"].concat());
    add(
        "machine.type unknown",
        good.replacen("type: worker", "type: captain", 1)
            .into_bytes(),
    );
    add(
        "two v1alpha1 documents",
        format!("{good}\n---\n{good}").into_bytes(),
    );
    add(
        "install.disk not a path",
        good.replacen("machine:\n", "machine:\n  install:\n    disk: 12\n", 1)
            .into_bytes(),
    );
    let mut flag = |what: &str, v: String| out.add("--node flags", what, f.node_flag(&v));
    let cfg = f.file("w1.yaml", good.as_bytes());
    flag("no '='", f.ip("w1"));
    flag("a name instead of an IP", format!("w1={cfg}"));
    flag("0.0.0.0", format!("0.0.0.0={cfg}"));
    flag("255.255.255.255", format!("255.255.255.255={cfg}"));
    flag("multicast", format!("239.1.2.3={cfg}"));
    flag("empty path", format!("{}=", f.ip("w1")));
    flag(
        "missing file",
        format!("{}={}", f.ip("w1"), s(&f.new_dir().join("nope.yaml"))),
    );
    flag("a FIFO", format!("{}={}", f.ip("w1"), f.fifo()));
    flag("100 MiB", format!("{}={}", f.ip("w1"), f.big()));
    flag("a directory", format!("{}={}", f.ip("w1"), s(&f.new_dir())));
    flag(
        "a symlink loop",
        format!("{}={}", f.ip("w1"), f.symlink_loop()),
    );
    let mut a = f.node_flag(&format!("{}={cfg}", f.ip("w1")));
    a.extend(strings(&["--node", &format!("{}={cfg}", f.ip("w1"))]));
    out.add("--node flags", "the same IP twice", a);
    let mut a = f.node_flag(&format!("{}={cfg}", f.ip("w1")));
    a.extend(strings(&["--talconfig", &s(&f.c.talconfig())]));
    out.add("--node flags", "with --talconfig", a);
}

fn talosconfig_cases(f: &Fix, out: &mut Cases) {
    let mut path_case = |what: &str, p: String| {
        out.add("talosconfig path", what, f.with_talosconfig_path(&p));
    };
    path_case("missing", s(&f.new_dir().join("nope")));
    path_case("a directory", s(&f.new_dir()));
    path_case("a FIFO", f.fifo());
    path_case("100 MiB", f.big());
    path_case("a symlink loop", f.symlink_loop());
    path_case("a dangling symlink", f.dangling());
    let talosconfig_env_missing = s(&f.new_dir().join("nope"));
    out.add_env(
        "talosconfig path",
        "$TALOSCONFIG missing",
        without_talosconfig(f),
        &[("TALOSCONFIG", &talosconfig_env_missing)],
    );
    let looped = f.symlink_loop();
    out.add_env(
        "talosconfig path",
        "$TALOSCONFIG a symlink loop",
        without_talosconfig(f),
        &[("TALOSCONFIG", &looped)],
    );
    let home = f.new_dir();
    let th = home.join("talos");
    std::fs::create_dir_all(&th).unwrap();
    std::os::unix::fs::symlink(th.join("config"), th.join("config")).unwrap();
    out.add_env(
        "talosconfig path",
        "$TALOS_HOME/config a symlink loop",
        without_talosconfig(f),
        &[("TALOS_HOME", &s(&th))],
    );

    let mut text = |what: &str, body: &[u8]| {
        let p = f.file("talosconfig", body);
        out.add("talosconfig contents", what, f.with_talosconfig_path(&p));
    };
    text("empty", b"");
    text("malformed YAML", b"context: [\n");
    text("a list", b"- a\n");
    text("no contexts", b"context: a\n");
    text("contexts is a list", b"context: a\ncontexts: [a]\n");
    text("no current context", b"contexts:\n  a: {}\n");
    text(
        "unknown current context",
        b"context: b\ncontexts:\n  a: {}\n",
    );
    text("context not a mapping", b"context: a\ncontexts:\n  a: 1\n");
    text("not UTF-8", b"context: a\n\xff\xfe\n");
    text(
        "Omni-style (auth.siderov1, no crt/key)",
        b"context: omni\ncontexts:\n  omni:\n    endpoints: [https://omni.example.com]\n    auth:\n      siderov1:\n        identity: ops@example.com\n",
    );
    for field in ["ca", "crt", "key"] {
        let mut edit = |what: String, value: Option<String>| {
            let args = f.talosconfig_edited(|ctx| match value {
                Some(v) => {
                    ctx.insert(Value::String(field.into()), Value::String(v));
                }
                None => {
                    ctx.remove(field);
                }
            });
            out.add("talosconfig contents", what, args);
        };
        edit(format!("{field} missing"), None);
        edit(format!("{field} empty"), Some(String::new()));
        edit(
            format!("{field} not base64"),
            Some("!!!not base64!!!".into()),
        );
        edit(
            format!("{field} base64 of junk"),
            Some(b64(b"hello, not PEM")),
        );
        edit(
            format!("{field} PEM of garbage"),
            Some(b64(
                b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            )),
        );
    }
    let other = talstrap::sim::pki::new_talos_ca().unwrap();
    let other_admin = talstrap::sim::pki::issue_client_cert(&other, &["os:admin"]).unwrap();
    let args = f.talosconfig_edited(|ctx| {
        ctx.insert(
            "key".into(),
            Value::String(b64(other_admin.key_pem.as_bytes())),
        );
    });
    out.add("talosconfig contents", "key of another certificate", args);
    let args = f.talosconfig_edited(|ctx| {
        ctx.insert("ca".into(), Value::String(b64(other.cert_pem.as_bytes())));
        ctx.insert(
            "crt".into(),
            Value::String(b64(other_admin.cert_pem.as_bytes())),
        );
        ctx.insert(
            "key".into(),
            Value::String(b64(other_admin.key_pem.as_bytes())),
        );
    });
    out.add(
        "talosconfig contents",
        "another cluster's talosconfig",
        args,
    );
    let ca = f.c.fleet.paths().os_ca();
    for (what, usages) in [
        (
            "client certificate also for server auth",
            vec![
                rcgen::ExtendedKeyUsagePurpose::ClientAuth,
                rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            ],
        ),
        (
            "client certificate for server auth only",
            vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth],
        ),
        ("client certificate without extended key usage", vec![]),
    ] {
        let cert = talstrap::sim::pki::issue_client_cert_with(ca, &["os:admin"], &usages).unwrap();
        let args = f.talosconfig_edited(|ctx| {
            ctx.insert("crt".into(), Value::String(b64(cert.cert_pem.as_bytes())));
            ctx.insert("key".into(), Value::String(b64(cert.key_pem.as_bytes())));
        });
        out.add("talosconfig contents", what, args);
    }
    let mut a = f.base("preflight");
    a.extend(strings(&["--context", "production"]));
    out.add("talosconfig contents", "--context that does not exist", a);

    for pin in ["not-a-fingerprint", "AAAA", "", &b64(&[0u8; 31])] {
        let mut a = f.base("preflight");
        a.extend(strings(&["--cert-fingerprint", pin]));
        out.add("fingerprint pins", format!("--cert-fingerprint {pin:?}"), a);
    }
}

/// `preflight --node` with no `--talosconfig` and no talhelper
/// talosconfig next to the configs: the lookup decides.
fn without_talosconfig(f: &Fix) -> Vec<String> {
    let cfg = f.file("w1.yaml", f.machine_config("w1").as_bytes());
    strings(&[
        "preflight",
        "--node",
        &format!("{}={cfg}", f.ip("w1")),
        "--port",
        &f.c.fleet.port().to_string(),
    ])
}

fn scenario_cases(f: &Fix, out: &mut Cases) {
    let bodies = [
        ("unknown node", "nodes:\n  cp9: { unreachable: true }\n"),
        ("unknown fault", "nodes:\n  cp1: { explode: true }\n"),
        ("unknown top-level field", "faults: {}\n"),
        ("latency 1e20", "nodes:\n  cp1: { latency: 1e20 }\n"),
        (
            "latency 99999999999999999999h",
            "nodes:\n  cp1: { latency: 99999999999999999999h }\n",
        ),
        ("latency .inf", "nodes:\n  cp1: { latency: .inf }\n"),
        ("latency .nan", "nodes:\n  cp1: { latency: .nan }\n"),
        ("latency -1", "nodes:\n  cp1: { latency: -1 }\n"),
        ("latency soon", "nodes:\n  cp1: { latency: soon }\n"),
        (
            "time_not_synced_for .inf",
            "nodes:\n  cp1: { time_not_synced_for: .inf }\n",
        ),
        ("timing install 1e300", "timing: { install: 1e300 }\n"),
        ("timing join 400d", "timing: { join: 9600h }\n"),
        ("timing with an unknown stage", "timing: { coffee: 1s }\n"),
        (
            "stuck_in an unknown stage",
            "nodes:\n  cp1: { stuck_in: lunch }\n",
        ),
        (
            "flaky without a count",
            "nodes:\n  cp1: { flaky: { method: Version } }\n",
        ),
        (
            "disk size garbage",
            "disks:\n  cp1: [ { dev_path: /dev/sda, size: huge } ]\n",
        ),
        (
            "disk size with an operator",
            "disks:\n  cp1: [ { dev_path: /dev/sda, size: \">= 1TB\" } ]\n",
        ),
        ("malformed YAML", "nodes: [\n"),
        ("a list", "- 1\n"),
    ];
    for (what, body) in bodies {
        out.add("scenario files (sim)", what, f.sim_scenario(body));
    }
    let p = f.file("scenario.yaml", b"nodes:\n  cp1: { latency: 1e20 }\n");
    out.add(
        "scenario files (sim)",
        "demo with latency 1e20",
        strings(&["demo", "--scenario", &p]),
    );
    for (what, p) in [
        ("missing", s(&f.new_dir().join("nope.yaml"))),
        ("a FIFO", f.fifo()),
        ("100 MiB", f.big()),
        ("a directory", s(&f.new_dir())),
    ] {
        let d = f.new_dir();
        out.add(
            "scenario files (sim)",
            format!("scenario path {what}"),
            strings(&["sim", "--scenario", &p, "--dir", &s(&d.join("c"))]),
        );
    }
    // `sim --subnet` binds loopback only: a private range must be refused.
    for subnet in [
        "10.0.0.0/24",
        "127.0.0.0/8",
        "127.0.0.0/25",
        "garbage",
        "::1/120",
        "127.0.0.0/33",
    ] {
        let d = f.new_dir();
        out.add(
            "simulator flags",
            format!("sim --subnet {subnet}"),
            strings(&["sim", "--subnet", subnet, "--dir", &s(&d.join("c"))]),
        );
    }
    let d = f.new_dir();
    out.add(
        "simulator flags",
        "sim --workers 300 in a /24",
        strings(&["sim", "--workers", "300", "--dir", &s(&d.join("c"))]),
    );
}

fn discover_cases(f: &Fix, out: &mut Cases) {
    let cp1 = f.ip("cp1");
    let o: Vec<&str> = cp1.split('.').collect();
    let net16 = |third: u32| {
        format!(
            "{}.{}.{third}.0/16",
            o[0],
            (o[1].parse::<u32>().unwrap() + third) % 256
        )
    };
    let sets: Vec<(String, Vec<String>)> = vec![
        ("prefix /33".into(), vec![format!("{cp1}/33")]),
        ("not an address".into(), vec!["node.example".into()]),
        ("empty argument".into(), vec![String::new()]),
        ("a bare comma".into(), vec![",".into()]),
        (
            "a /8 without --allow-large-scan".into(),
            vec!["127.0.0.0/8".into()],
        ),
        ("::/0".into(), vec!["::/0".into()]),
        ("IPv6 zone id".into(), vec!["fe80::1%eth0".into()]),
        ("a dash range".into(), vec![format!("{cp1}-20")]),
        ("prefix not a number".into(), vec![format!("{cp1}/x")]),
        ("four /16 together".into(), (0..4).map(&net16).collect()),
        (
            "two /16 in one argument".into(),
            vec![format!("{},{}", net16(0), net16(1))],
        ),
        (
            "a valid /30 next to a bad one".into(),
            vec![format!("{cp1}/30"), "bad".into()],
        ),
    ];
    for (what, targets) in sets {
        let mut a = vec!["discover".to_string()];
        a.extend(targets);
        a.extend(["--port".to_string(), f.c.fleet.port().to_string()]);
        out.add("discover targets", what, a);
    }
    let mut a = strings(&["discover", &format!("{cp1}/30")]);
    a.extend(strings(&["--talosconfig", &f.fifo()]));
    out.add("discover targets", "--talosconfig a FIFO", a);
}

fn command_cases(f: &Fix, out: &mut Cases) {
    let mut add = |cmd: &str, what: &str, extra: &[&str]| {
        let mut a = f.base(cmd);
        a.extend(strings(extra));
        out.add("command combinations", what, a);
    };
    add("bootstrap", "bootstrap -n on a worker", &["-n", "w1"]);
    add(
        "bootstrap",
        "bootstrap --auto -n cp1",
        &["--auto", "-n", "cp1"],
    );
    add("bootstrap", "--force without --kubeconfig", &["--force"]);
    add("bootstrap", "--quorum without --auto", &["--quorum", "1"]);
    add(
        "bootstrap",
        "--cidr without --auto",
        &["--cidr", "127.0.0.0/30"],
    );
    add(
        "bootstrap",
        "--auto --cidr /33",
        &["--auto", "--cidr", "127.0.0.0/33", "--quorum", "1"],
    );
    add("apply", "apply --dry-run --wait", &["--dry-run", "--wait"]);
    add("preflight", "-n unknown node", &["-n", "cp9"]);
    add(
        "preflight",
        "--role matching nothing",
        &["--role", "worker", "-n", "cp1"],
    );
    add("preflight", "unknown flag", &["--frobnicate"]);
    add("preflight", "-v with -q", &["-v", "-q"]);
    let existing = f.file("kubeconfig", b"apiVersion: v1\n");
    add(
        "bootstrap",
        "--kubeconfig exists, no --force",
        &["--kubeconfig", &existing],
    );
    let missing_dir = s(&f.new_dir().join("no/such/dir/kubeconfig"));
    add(
        "bootstrap",
        "--kubeconfig in a missing directory",
        &["--kubeconfig", &missing_dir],
    );
    out.add("command combinations", "no subcommand", Vec::new());
    out.add(
        "command combinations",
        "unknown subcommand",
        strings(&["frobnicate"]),
    );
    out.add(
        "command combinations",
        "discover without a target",
        strings(&["discover"]),
    );

    let mut env_file = |what: &str, p: String| {
        let mut a = f.base("preflight");
        a.extend(strings(&["--env-file", &p]));
        out.add("env files", what, a);
    };
    env_file("missing", s(&f.new_dir().join("talenv.yaml")));
    env_file("a directory", s(&f.new_dir()));
    env_file("a FIFO", f.fifo());
    env_file("100 MiB", f.big());
    env_file(
        "malformed line",
        f.file("talenv.yaml", b"this is not a variable\n"),
    );
    env_file("not UTF-8", f.file("talenv.yaml", b"A: \xff\n"));
    let sops = f.file(
        "talenv.sops.yaml",
        b"A: ENC[AES256_GCM,data:xx]\nsops:\n  version: 3.9.0\n",
    );
    let mut a = f.base("preflight");
    a.extend(strings(&["--env-file", &sops]));
    out.add_env(
        "env files",
        "encrypted, and no sops on PATH",
        a,
        &[("PATH", "/nonexistent-talstrap-test-bin")],
    );
}

async fn run_case(case: &Case, home: &Path) -> Outcome {
    let env: Vec<(&str, &str)> = case
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
    let mut cmd = command(&args, &env, Some(home));
    cmd.current_dir(home).stdin(std::process::Stdio::null());
    match tokio::time::timeout(HANG, cmd.output()).await {
        Err(_) => Outcome {
            code: None,
            panicked: false,
            hung: true,
            stderr: String::new(),
        },
        Ok(out) => {
            let out = out.expect("spawn talstrap");
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            Outcome {
                code: out.status.code(),
                panicked: out.status.code() == Some(101) || stderr.contains("panicked at"),
                hung: false,
                stderr,
            }
        }
    }
}

/// Per category: cases, handled, panics, hangs.
type Tally = BTreeMap<&'static str, [usize; 4]>;

fn render(tally: &Tally) -> String {
    let mut t = String::from(
        "| category | bad inputs | refused with exit 2, nothing contacted | panics | hangs |\n|---|---|---|---|---|\n",
    );
    let mut sum = [0usize; 4];
    for (cat, n) in tally {
        t.push_str(&format!(
            "| {cat} | {} | {} | {} | {} |\n",
            n[0], n[1], n[2], n[3]
        ));
        for i in 0..4 {
            sum[i] += n[i];
        }
    }
    t.push_str(&format!(
        "| **total** | **{}** | **{}** | **{}** | **{}** |\n",
        sum[0], sum[1], sum[2], sum[3]
    ));
    t
}

const START: &str = "<!-- bad-input inventory: generated by tests/cli/inventory.rs -->\n";
const END: &str = "<!-- end of bad-input inventory -->";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_is_refused_without_panic_hang_or_contact() {
    let c = cluster(1, 1, None).await;
    let root = c.tmp.path().join("inventory");
    let f = Fix {
        root,
        c,
        n: AtomicUsize::new(0),
    };
    let mut cases = Cases(Vec::new());
    flag_cases(&f, &mut cases);
    talconfig_cases(&f, &mut cases);
    machine_config_cases(&f, &mut cases);
    talosconfig_cases(&f, &mut cases);
    scenario_cases(&f, &mut cases);
    discover_cases(&f, &mut cases);
    command_cases(&f, &mut cases);
    let cases = cases.0;
    assert!(cases.len() >= 250, "only {} cases", cases.len());

    let home = f.new_dir();
    let before = f.c.fleet.total_connections();
    let outcomes: Vec<Outcome> = futures_util::stream::iter(cases.iter())
        .map(|case| run_case(case, &home))
        .buffered(6)
        .collect()
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let contacted = f.c.fleet.total_connections() - before;

    let mut tally = Tally::new();
    let mut failures = Vec::new();
    let dump = std::env::var_os("TALSTRAP_INVENTORY_DUMP").is_some();
    for (case, o) in cases.iter().zip(&outcomes) {
        if dump {
            let first = o.stderr.lines().next().unwrap_or("");
            eprintln!("[{}] {} => {:?}: {first}", case.category, case.what, o.code);
        }
        let t = tally.entry(case.category).or_default();
        t[0] += 1;
        t[1] += usize::from(o.handled());
        t[2] += usize::from(o.panicked);
        t[3] += usize::from(o.hung);
        if !o.handled() {
            failures.push(format!(
                "[{}] {}: exit {:?}{}{}\n  args: {:?}\n  stderr: {}",
                case.category,
                case.what,
                o.code,
                if o.panicked { " PANIC" } else { "" },
                if o.hung { " HANG" } else { "" },
                case.args,
                o.stderr.trim()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} bad inputs not handled:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert_eq!(contacted, 0, "bad input reached a simulated node");

    let table = render(&tally);
    let doc_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("RELIABILITY.md");
    let doc = std::fs::read_to_string(&doc_path).unwrap();
    let (head, rest) = doc
        .split_once(START)
        .expect("RELIABILITY.md has the inventory start marker");
    let (_, tail) = rest
        .split_once(END)
        .expect("RELIABILITY.md has the end marker");
    let want = format!("{head}{START}{table}{END}{tail}");
    if want != doc {
        if std::env::var_os("TALSTRAP_WRITE_INVENTORY").is_some() {
            std::fs::write(&doc_path, &want).unwrap();
        } else {
            panic!(
                "RELIABILITY.md's inventory table differs from this run; rerun with \
                 TALSTRAP_WRITE_INVENTORY=1 to update it. This run:\n{table}"
            );
        }
    }
}
