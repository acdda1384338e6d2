//! Issue 5, secrets: no command prints key material or tokens, in any
//! output format or verbosity, and files holding credentials are private.
//!
//! The secrets are read from the cluster's own files (talsecret.yaml, every
//! machine config, the talosconfig, and the kubeconfig once written), in
//! every form they could leak in: the value as stored, its base64 decoding,
//! and the base64 body of a decoded PEM block.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use yaml_serde::Value;

use crate::support::*;

/// Field names whose values are secret wherever they appear.
const SECRET_FIELDS: &[&str] = &[
    "key",
    "token",
    "secret",
    "bootstraptoken",
    "secretboxencryptionsecret",
    "secretboxEncryptionSecret",
    "aescbcEncryptionSecret",
    "client-key-data",
    "token-data",
];

/// A secret value and where it came from (what a failure message shows).
struct Secret {
    origin: String,
    needle: String,
}

#[derive(Default)]
struct Secrets(Vec<Secret>);

impl Secrets {
    fn add(&mut self, origin: String, value: &str) {
        let value = value.trim();
        // Very short strings would match by accident; real secrets are long.
        if value.len() < 12 {
            return;
        }
        self.0.push(Secret {
            origin: origin.clone(),
            needle: value.to_string(),
        });
        let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
        if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(compact.as_bytes())
            && let Ok(text) = String::from_utf8(bytes)
        {
            self.add_text(format!("{origin} (decoded)"), &text);
        }
    }

    /// A decoded value: itself, and if it is PEM, its body as one string and
    /// line by line.
    fn add_text(&mut self, origin: String, text: &str) {
        if text.trim().len() >= 12 {
            self.0.push(Secret {
                origin: origin.clone(),
                needle: text.trim().to_string(),
            });
        }
        if !text.contains("-----BEGIN") {
            return;
        }
        let body: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("-----"))
            .collect();
        if body.is_empty() {
            return;
        }
        self.0.push(Secret {
            origin: format!("{origin} (PEM body)"),
            needle: body.concat(),
        });
        for (i, line) in body.iter().enumerate() {
            if line.len() >= 20 {
                self.0.push(Secret {
                    origin: format!("{origin} (PEM line {i})"),
                    needle: line.to_string(),
                });
            }
        }
    }

    /// Every secret field of a YAML document, recursively.
    fn add_yaml(&mut self, origin: &str, v: &Value) {
        match v {
            Value::Mapping(m) => {
                for (k, val) in m {
                    let key = k.as_str().unwrap_or_default();
                    let here = format!("{origin}.{key}");
                    match val {
                        Value::String(s) if SECRET_FIELDS.contains(&key) => self.add(here, s),
                        other => self.add_yaml(&here, other),
                    }
                }
            }
            Value::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.add_yaml(&format!("{origin}[{i}]"), item);
                }
            }
            _ => {}
        }
    }

    fn add_yaml_file(&mut self, path: &Path) {
        let text = std::fs::read_to_string(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for (i, doc) in yaml_serde::Deserializer::from_str(&text).enumerate() {
            let v: Value = serde::Deserialize::deserialize(doc).unwrap();
            self.add_yaml(&format!("{name}#{i}"), &v);
        }
    }

    /// Fail naming the secret's origin (never its value) if `out` holds one.
    fn assert_absent(&self, what: &str, out: &str) {
        for s in &self.0 {
            assert!(
                !out.contains(&s.needle),
                "{what}: output contains the secret {} (value withheld)",
                s.origin
            );
        }
    }
}

/// Every secret of the generated cluster.
fn cluster_secrets(c: &Cluster) -> Secrets {
    let mut s = Secrets::default();
    let p = c.fleet.paths();
    s.add_yaml_file(&p.secrets);
    s.add_yaml_file(&p.talosconfig);
    for n in &p.nodes {
        s.add_yaml_file(&n.config_path);
    }
    // Sanity: the fields the issue names were all found.
    for want in [
        "machine.ca.key",
        "machine.token",
        "cluster.ca.key",
        "cluster.token",
        "cluster.secret",
        "talosconfig#0.contexts.sim.key",
        "talsecret.yaml#0.secrets.bootstraptoken",
        "talsecret.yaml#0.certs.os.key",
    ] {
        assert!(
            s.0.iter().any(|x| x.origin.contains(want)),
            "no secret collected from {want}"
        );
    }
    s
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn s(v: &str) -> String {
    v.to_string()
}

/// Run one command line and check its output against every secret known.
async fn run_checked(c: &Cluster, secrets: &Secrets, args: &[String], env: &[(&str, &str)]) -> Run {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = c.run_env(&refs, env).await;
    let what = args.join(" ");
    secrets.assert_absent(&format!("{what} (stdout)"), &run.stdout);
    secrets.assert_absent(&format!("{what} (stderr)"), &run.stderr);
    run
}

fn with_cluster(c: &Cluster, cmd: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec![s(cmd)];
    args.extend(c.target_args());
    args.extend(extra.iter().map(|x| s(x)));
    args
}

/// Every command, in every output format and at the highest verbosity,
/// from maintenance to a bootstrapped cluster: no secret in any output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_command_prints_a_secret() {
    let c = cluster(1, 1, None).await;
    let mut secrets = cluster_secrets(&c);
    let subnet = format!("{}/24", c.ip("cp1"));
    let port = c.fleet.port().to_string();
    let tc = c.talosconfig().display().to_string();

    // Maintenance mode.
    for extra in [
        &[][..],
        &["-o", "json"][..],
        &["-vv"][..],
        &["-vv", "-o", "json", "--server-dry-run"][..],
    ] {
        let run = run_checked(&c, &secrets, &with_cluster(&c, "preflight", extra), &[]).await;
        assert_eq!(run.code, 0, "{}", run.dump());
    }
    let run = run_checked(
        &c,
        &secrets,
        &with_cluster(&c, "apply", &["--dry-run", "-vv", "-o", "json"]),
        &[],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.dump());
    let run = run_checked(
        &c,
        &secrets,
        &[
            s("discover"),
            subnet.clone(),
            s("--port"),
            port.clone(),
            s("-vv"),
            s("--skeleton"),
        ],
        &[],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.dump());

    // Apply for real (plain output, everything traced), then the idempotent
    // re-run that reads the node's current config to compare.
    let run = run_checked(
        &c,
        &secrets,
        &with_cluster(&c, "apply", &["--wait", "-vv", "--stuck-after", "20s"]),
        &[("RUST_LOG", "trace")],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.dump());
    for extra in [&["-vv", "-o", "json"][..], &["-vv", "--dry-run"][..]] {
        let run = run_checked(&c, &secrets, &with_cluster(&c, "apply", extra), &[]).await;
        assert_eq!(run.code, 0, "{}", run.dump());
    }
    for extra in [&["-vv"][..], &["-o", "json", "-vv"][..]] {
        let run = run_checked(&c, &secrets, &with_cluster(&c, "verify", extra), &[]).await;
        assert_eq!(run.code, 0, "{}", run.dump());
        let run = run_checked(&c, &secrets, &with_cluster(&c, "preflight", extra), &[]).await;
        assert_eq!(run.code, 0, "{}", run.dump());
    }

    // Bootstrap with a kubeconfig: then its client key is a secret too.
    let kubeconfig = c.tmp.path().join("kubeconfig");
    let kc = kubeconfig.display().to_string();
    let run = run_checked(
        &c,
        &secrets,
        &with_cluster(&c, "bootstrap", &["--kubeconfig", &kc, "-vv", "-o", "json"]),
        &[("RUST_LOG", "trace")],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.dump());
    assert_eq!(mode(&kubeconfig), 0o600, "kubeconfig must be private");
    let before = secrets.0.len();
    secrets.add_yaml_file(&kubeconfig);
    assert!(secrets.0.len() > before, "no key found in the kubeconfig");
    secrets.assert_absent("bootstrap (stdout)", &run.stdout);
    secrets.assert_absent("bootstrap (stderr)", &run.stderr);

    // After the bootstrap: guard path, verify, discover with the talosconfig.
    let second = c.tmp.path().join("kubeconfig-2");
    let kc2 = second.display().to_string();
    let run = run_checked(
        &c,
        &secrets,
        &with_cluster(&c, "bootstrap", &["--kubeconfig", &kc2, "-vv"]),
        &[],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.dump());
    assert_eq!(mode(&second), 0o600);
    let run = run_checked(
        &c,
        &secrets,
        &with_cluster(
            &c,
            "verify",
            &["--phase", "post-bootstrap", "-vv", "-o", "json"],
        ),
        &[],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.dump());
    let run = run_checked(
        &c,
        &secrets,
        &[
            s("discover"),
            subnet,
            s("--port"),
            port,
            s("--talosconfig"),
            tc,
            s("-vv"),
            s("-o"),
            s("json"),
        ],
        &[],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.dump());
    assert!(
        run.stdout.contains("\"role\":\"controlplane\""),
        "{}",
        run.dump()
    );
}

/// Configured nodes whose config changed in a secret field: `apply
/// --dry-run` shows what would change, but never the key or token values
/// (the node's diff holds them in plain text).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_diff_does_not_print_secrets() {
    let c = cluster(1, 0, Some("nodes: { cp1: { configured: true } }")).await;
    let secrets = cluster_secrets(&c);
    // Rotate the trustd token in the file (a regenerated config would).
    let path = c.fleet.paths().node_config("cp1").unwrap().to_path_buf();
    let text = std::fs::read_to_string(&path).unwrap();
    let mut doc: Vec<Value> = yaml_serde::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let new_token = "q1w2e3.r4t5y6u7i8o9p0a1";
    doc[0]["machine"]["token"] = Value::String(new_token.into());
    let rendered: Vec<String> = doc
        .iter()
        .map(|d| yaml_serde::to_string(d).unwrap())
        .collect();
    std::fs::write(&path, rendered.join("---\n")).unwrap();
    let mut all = secrets;
    all.add("new machine.token".into(), new_token);

    for extra in [&["--dry-run"][..], &["--dry-run", "-o", "json", "-vv"][..]] {
        let run = run_checked(&c, &all, &with_cluster(&c, "apply", extra), &[]).await;
        assert_eq!(run.code, 0, "{}", run.dump());
        assert!(
            run.stdout.contains("would apply"),
            "the dry run still says what would happen: {}",
            run.dump()
        );
    }
    assert_eq!(
        c.fleet.stats(c.fleet.ip("cp1").unwrap()).applies_accepted,
        0
    );
}

/// The demo writes a whole cluster: every file with credentials is 0600 and
/// its output shows none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_files_are_private_and_its_output_clean() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let d = dir.display().to_string();
    let run = run_bin(
        &[
            "demo",
            "--dir",
            &d,
            "--time-scale",
            "0.02",
            "--control-planes",
            "1",
            "--workers",
            "1",
        ],
        &[],
        Some(tmp.path()),
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.dump());
    let mut secrets = Secrets::default();
    let mut private: Vec<PathBuf> = Vec::new();
    for entry in walk(&dir) {
        let name = entry.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".yaml") && name != "talconfig.yaml"
            || name == "talosconfig"
            || name == "kubeconfig"
        {
            secrets.add_yaml_file(&entry);
            private.push(entry);
        }
    }
    assert!(
        private.iter().any(|p| p.ends_with("kubeconfig")),
        "demo left no kubeconfig: {private:?}"
    );
    assert!(private.iter().any(|p| p.ends_with("talosconfig")));
    assert!(private.iter().any(|p| p.ends_with("talsecret.yaml")));
    for p in &private {
        assert_eq!(mode(p), 0o600, "{} is not private", p.display());
    }
    assert!(secrets.0.len() > 10);
    secrets.assert_absent("demo (stdout)", &run.stdout);
    secrets.assert_absent("demo (stderr)", &run.stderr);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A talosconfig others can read draws a warning naming it (in plain and
/// JSON output); the run goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readable_talosconfig_is_warned_about_and_the_run_proceeds() {
    let c = cluster(1, 0, None).await;
    let loose = c.tmp.path().join("talosconfig-loose");
    std::fs::copy(c.talosconfig(), &loose).unwrap();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut args = with_cluster(&c, "preflight", &[]);
    let at = args.iter().position(|a| a == "--talosconfig").unwrap();
    args[at + 1] = loose.display().to_string();

    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let plain = c.run(&refs).await;
    assert_eq!(plain.code, 0, "{}", plain.dump());
    let all = format!("{}{}", plain.stdout, plain.stderr);
    assert!(
        all.contains(&format!(
            "talosconfig {} is readable by group/others (mode 0644)",
            loose.display()
        )),
        "{}",
        plain.dump()
    );
    assert!(all.contains("chmod 600"), "{}", plain.dump());

    let mut json = args.clone();
    json.extend([s("-o"), s("json")]);
    let refs: Vec<&str> = json.iter().map(String::as_str).collect();
    let run = c.run(&refs).await;
    assert_eq!(run.code, 0, "{}", run.dump());
    assert!(
        run.events("warning").iter().any(|w| w["message"]
            .as_str()
            .unwrap_or("")
            .contains("readable by group/others")),
        "{}",
        run.dump()
    );
    assert_eq!(run.report()["summary"]["ok"], 1);

    // The private original draws no such warning.
    let clean = c.json("preflight", &[]).await;
    assert!(
        !clean.stdout.contains("readable by group/others"),
        "{}",
        clean.dump()
    );
}
