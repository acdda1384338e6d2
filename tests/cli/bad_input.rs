//! Issue 5, bad input: every way an operator's files or flags can be wrong
//! ends with exit code 2, a one-paragraph error that names the file, field,
//! flag or node, and **no connection to any node** (the fleet's accept
//! counter does not move).
//!
//! Addresses in these fixtures are the fleet's loopback ones: if a check
//! ever let the input through, the run would dial loopback and the
//! connection counter would catch it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use talstrap::sim::pki::CertAndKey;
use yaml_serde::Value;

use crate::support::*;

/// One control plane and one worker, in maintenance mode.
async fn small() -> Cluster {
    cluster(1, 1, None).await
}

/// Run the binary with the harness's clean environment, in `cwd`.
async fn run_in(args: &[String], env: &[(&str, &str)], cwd: &Path, home: &Path) -> Run {
    let mut cmd = tokio::process::Command::new(bin());
    cmd.args(args)
        .current_dir(cwd)
        .env_remove("TALOSCONFIG")
        .env_remove("TALOS_HOME")
        .env("HOME", home)
        .env("NO_COLOR", "1")
        .env("TALSTRAP_RETRY_DELAY", "50ms")
        .env("TALSTRAP_POLL_INTERVAL", "50ms")
        .env("TALSTRAP_CONNECT_TIMEOUT", "1s")
        .env("TALSTRAP_RPC_TIMEOUT", "5s")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (k, _) in std::env::vars() {
        if k.starts_with("TALSTRAP_") && !env.iter().any(|(e, _)| *e == k) {
            cmd.env_remove(&k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("talstrap did not finish within 60 s")
        .expect("spawn talstrap");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// `<cmd> <cluster args> -o json <extra>`.
fn cmd_args(c: &Cluster, cmd: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec![cmd.to_string()];
    args.extend(c.target_args());
    args.extend(strings(&["-o", "json"]));
    args.extend(strings(extra));
    args
}

/// Run `args` and check the bad-input contract: exit 2, every `wants`
/// fragment in the error on stderr, and no connection to any node.
async fn expect_bad(c: &Cluster, args: &[String], wants: &[&str]) -> Run {
    expect_bad_env(c, args, &[], wants).await
}

async fn expect_bad_env(c: &Cluster, args: &[String], env: &[(&str, &str)], wants: &[&str]) -> Run {
    expect_bad_in(c, args, env, c.tmp.path(), wants).await
}

async fn expect_bad_in(
    c: &Cluster,
    args: &[String],
    env: &[(&str, &str)],
    cwd: &Path,
    wants: &[&str],
) -> Run {
    let before = c.fleet.total_connections();
    let run = run_in(args, env, cwd, c.tmp.path()).await;
    // Give the simulator's accept loops a moment to count anything that
    // reached them before the process exited.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(run.code, 2, "expected the input exit code\n{}", run.dump());
    for want in wants {
        assert!(
            run.stderr.contains(want),
            "error does not mention {want:?}\n{}",
            run.dump()
        );
    }
    assert!(
        run.stderr.trim_start().starts_with("error:"),
        "{}",
        run.dump()
    );
    assert_eq!(
        c.fleet.total_connections(),
        before,
        "a node was contacted despite bad input\n{}",
        run.dump()
    );
    run
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

fn config_of(c: &Cluster, host: &str) -> PathBuf {
    c.fleet.paths().node_config(host).unwrap().to_path_buf()
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// Edit the one context of the cluster's talosconfig, writing a copy.
fn edited_talosconfig(
    c: &Cluster,
    name: &str,
    edit: impl FnOnce(&mut yaml_serde::Mapping),
) -> PathBuf {
    let mut doc: Value = yaml_serde::from_str(&read(&c.talosconfig())).unwrap();
    let ctx_name = doc["context"].as_str().unwrap().to_string();
    let ctx = doc["contexts"][ctx_name.as_str()].as_mapping_mut().unwrap();
    edit(ctx);
    let out = c.tmp.path().join(name);
    std::fs::write(&out, yaml_serde::to_string(&doc).unwrap()).unwrap();
    out
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn set(ctx: &mut yaml_serde::Mapping, field: &str, value: String) {
    ctx.insert(Value::String(field.into()), Value::String(value));
}

/// Replace the text `from` in talconfig.yaml (which must contain it).
fn edit_talconfig(c: &Cluster, from: &str, to: &str) {
    let text = read(&c.talconfig());
    assert!(text.contains(from), "talconfig has no {from:?}:\n{text}");
    std::fs::write(c.talconfig(), text.replacen(from, to, 1)).unwrap();
}

// ----------------------------------------------------------- files

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_talconfig_file() {
    let c = small().await;
    let missing = c.tmp.path().join("nope").join("talconfig.yaml");
    let args = strings(&["preflight", "--talconfig", &path_str(&missing)]);
    expect_bad(&c, &args, &["cannot read", &path_str(&missing)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_talconfig_in_the_working_directory_and_no_nodes() {
    let c = small().await;
    let empty = tempfile::tempdir().unwrap();
    let args = strings(&["apply", "--port", &c.fleet.port().to_string()]);
    expect_bad_in(
        &c,
        &args,
        &[],
        empty.path(),
        &["no nodes given", "talconfig.yaml", "--node IP="],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_talconfig_a_directory() {
    let c = small().await;
    let dir = c.tmp.path().join("talconfig.yaml");
    std::fs::create_dir(&dir).unwrap();
    let args = strings(&["preflight", "--talconfig", &path_str(&dir)]);
    expect_bad(&c, &args, &["cannot read", &path_str(&dir)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_machine_config_names_node_and_file() {
    let c = small().await;
    let cfg = config_of(&c, "w1");
    std::fs::remove_file(&cfg).unwrap();
    std::fs::create_dir(&cfg).unwrap();
    expect_bad(
        &c,
        &cmd_args(&c, "apply", &[]),
        &["node w1", "cannot read", &path_str(&cfg)],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_machine_config_names_node_and_file() {
    let c = small().await;
    let cfg = config_of(&c, "w1");
    std::fs::remove_file(&cfg).unwrap();
    expect_bad(
        &c,
        &cmd_args(&c, "preflight", &[]),
        &[
            "node w1",
            &path_str(&cfg),
            "does not exist",
            "talhelper genconfig",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_talconfig_yaml_names_line() {
    let c = small().await;
    edit_talconfig(&c, "nodes:", "nodes: [\n  - {hostname: }}\n");
    let tc = path_str(&c.talconfig());
    expect_bad(
        &c,
        &cmd_args(&c, "preflight", &[]),
        &[&tc, "malformed YAML"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_machine_config_yaml_names_node_and_file() {
    let c = small().await;
    let cfg = config_of(&c, "cp1");
    std::fs::write(
        &cfg,
        "version: v1alpha1\nmachine: [\n  type: controlplane\n",
    )
    .unwrap();
    expect_bad(
        &c,
        &cmd_args(&c, "apply", &[]),
        &["node cp1", &path_str(&cfg), "malformed YAML"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talconfig_with_an_empty_node_list() {
    let c = small().await;
    let text = read(&c.talconfig());
    let head = text.split("nodes:").next().unwrap().to_string();
    std::fs::write(c.talconfig(), format!("{head}nodes: []\n")).unwrap();
    expect_bad(
        &c,
        &cmd_args(&c, "preflight", &[]),
        &[&path_str(&c.talconfig()), "`nodes` is empty"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talconfig_without_a_nodes_field() {
    let c = small().await;
    let text = read(&c.talconfig());
    let head = text.split("nodes:").next().unwrap().to_string();
    std::fs::write(c.talconfig(), head).unwrap();
    expect_bad(
        &c,
        &cmd_args(&c, "preflight", &[]),
        &[&path_str(&c.talconfig()), "`nodes` is missing"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_ip_in_talconfig() {
    let c = small().await;
    let cp1 = c.ip("cp1");
    let w1 = c.ip("w1");
    edit_talconfig(
        &c,
        &format!("ipAddress: {w1}"),
        &format!("ipAddress: {cp1}"),
    );
    expect_bad(
        &c,
        &cmd_args(&c, "apply", &[]),
        &[
            &path_str(&c.talconfig()),
            &format!("address {cp1} is listed for node cp1 and for node w1"),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_hostname_in_talconfig() {
    let c = small().await;
    edit_talconfig(&c, "hostname: w1", "hostname: cp1");
    expect_bad(
        &c,
        &cmd_args(&c, "apply", &[]),
        &[
            &path_str(&c.talconfig()),
            "hostname cp1 is used by two nodes",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_address_written_as_a_dns_name() {
    let c = small().await;
    let w1 = c.ip("w1");
    edit_talconfig(
        &c,
        &format!("ipAddress: {w1}"),
        "ipAddress: w1.cluster.example",
    );
    expect_bad(
        &c,
        &cmd_args(&c, "preflight", &[]),
        &[
            &path_str(&c.talconfig()),
            "node w1",
            "ipAddress",
            "DNS name",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_endpoint_url_in_talconfig() {
    let c = small().await;
    let endpoint = c.fleet.paths().endpoint.clone();
    let plain = endpoint.replace("https://", "http://");
    edit_talconfig(&c, &endpoint, &plain);
    expect_bad(
        &c,
        &cmd_args(&c, "preflight", &[]),
        &[&path_str(&c.talconfig()), "field `endpoint`", "https"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unset_variable_in_talconfig() {
    let c = small().await;
    let w1 = c.ip("w1");
    edit_talconfig(
        &c,
        &format!("ipAddress: {w1}"),
        "ipAddress: ${TALSTRAP_TEST_W1_IP}",
    );
    expect_bad(
        &c,
        &cmd_args(&c, "preflight", &[]),
        &[
            &path_str(&c.talconfig()),
            "${TALSTRAP_TEST_W1_IP} is not set",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_role_contradicts_control_plane() {
    let c = small().await;
    // The talconfig says worker, the generated config says controlplane.
    let text = read(&c.talconfig());
    let cp_block_start = text.find("hostname: cp1").unwrap();
    let rel = text[cp_block_start..].find("controlPlane: true").unwrap();
    let at = cp_block_start + rel;
    let edited = format!(
        "{}controlPlane: false{}",
        &text[..at],
        &text[at + "controlPlane: true".len()..]
    );
    std::fs::write(c.talconfig(), edited).unwrap();
    expect_bad(
        &c,
        &cmd_args(&c, "apply", &[]),
        &[
            "node cp1",
            "controlPlane: false",
            "machine.type controlplane",
            &path_str(&config_of(&c, "cp1")),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_without_a_v1alpha1_document() {
    let c = small().await;
    let cfg = config_of(&c, "w1");
    std::fs::write(
        &cfg,
        "apiVersion: v1alpha1\nkind: HostnameConfig\nauto: off\nhostname: w1\n",
    )
    .unwrap();
    expect_bad(
        &c,
        &cmd_args(&c, "apply", &[]),
        &["node w1", &path_str(&cfg), "no v1alpha1 document"],
    )
    .await;
}

// ----------------------------------------------------------- filters and flags

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_nodes_filter_lists_known_nodes() {
    let c = small().await;
    expect_bad(
        &c,
        &cmd_args(&c, "apply", &["-n", "cp9"]),
        &["-n cp9: no such node", "known nodes", "cp1", "w1"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_filter_matching_nothing() {
    let c = cluster(1, 0, None).await;
    expect_bad(
        &c,
        &cmd_args(&c, "preflight", &["--role", "worker"]),
        &["no node matches", "--role worker", "cp1"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_zero_is_refused() {
    let c = small().await;
    expect_bad(
        &c,
        &cmd_args(&c, "apply", &["--parallel", "0"]),
        &["--parallel", "0"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_zero_from_the_environment_is_refused() {
    let c = small().await;
    expect_bad_env(
        &c,
        &cmd_args(&c, "apply", &[]),
        &[("TALSTRAP_PARALLEL", "0")],
        &["--parallel", "0"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_duration_is_refused() {
    let c = small().await;
    expect_bad(
        &c,
        &cmd_args(&c, "preflight", &["--timeout", "soon"]),
        &["--timeout", "soon"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_zero_is_refused() {
    let c = small().await;
    let mut args = cmd_args(&c, "preflight", &[]);
    let at = args.iter().position(|a| a == "--port").unwrap();
    args[at + 1] = "0".into();
    expect_bad(&c, &args, &["--port", "0"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_flag_combined_with_talconfig() {
    let c = small().await;
    let node = format!("{}={}", c.ip("cp1"), path_str(&config_of(&c, "cp1")));
    expect_bad(
        &c,
        &cmd_args(&c, "apply", &["--node", &node]),
        &["--node IP=FILE and --talconfig cannot be combined"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_flag_with_a_name_instead_of_an_ip() {
    let c = small().await;
    let cfg = path_str(&config_of(&c, "cp1"));
    let node = format!("cp1={cfg}");
    let args = strings(&[
        "preflight",
        "--node",
        &node,
        "--talosconfig",
        &path_str(&c.talosconfig()),
        "--port",
        &c.fleet.port().to_string(),
    ]);
    expect_bad(&c, &args, &["--node cp1=", "\"cp1\" is not an IP address"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_flag_with_a_missing_file() {
    let c = small().await;
    let missing = c.tmp.path().join("absent.yaml");
    let node = format!("{}={}", c.ip("cp1"), path_str(&missing));
    let args = strings(&[
        "preflight",
        "--node",
        &node,
        "--port",
        &c.fleet.port().to_string(),
    ]);
    expect_bad(
        &c,
        &args,
        &[
            &format!("node {}", c.ip("cp1")),
            "cannot read",
            &path_str(&missing),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_dry_run_with_wait() {
    let c = small().await;
    expect_bad(
        &c,
        &cmd_args(&c, "apply", &["--dry-run", "--wait"]),
        &["--dry-run and --wait cannot be combined"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_cert_fingerprint_is_refused() {
    let c = small().await;
    expect_bad(
        &c,
        &cmd_args(&c, "apply", &["--cert-fingerprint", "not-a-fingerprint"]),
        &["--cert-fingerprint", "not-a-fingerprint"],
    )
    .await;
}

// ----------------------------------------------------------- bootstrap flags

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_on_a_worker_is_refused() {
    let c = small().await;
    expect_bad(
        &c,
        &cmd_args(&c, "bootstrap", &["-n", "w1"]),
        &["w1 is a worker", "control plane"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_auto_with_a_node_filter_is_refused() {
    let c = small().await;
    expect_bad(
        &c,
        &cmd_args(&c, "bootstrap", &["--auto", "-n", "cp1"]),
        &["--auto", "-n/--nodes"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_kubeconfig_already_exists_without_force() {
    let c = small().await;
    let kc = c.tmp.path().join("kubeconfig");
    std::fs::write(&kc, "existing: true\n").unwrap();
    expect_bad(
        &c,
        &cmd_args(&c, "bootstrap", &["--kubeconfig", &path_str(&kc)]),
        &[&path_str(&kc), "already exists", "--force"],
    )
    .await;
    assert_eq!(read(&kc), "existing: true\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_kubeconfig_in_a_missing_directory() {
    let c = small().await;
    let kc = c.tmp.path().join("no-such-dir").join("kubeconfig");
    expect_bad(
        &c,
        &cmd_args(&c, "bootstrap", &["--kubeconfig", &path_str(&kc)]),
        &["no-such-dir", "does not exist"],
    )
    .await;
}

// ----------------------------------------------------------- talosconfig

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talosconfig_path_does_not_exist() {
    let c = small().await;
    let missing = c.tmp.path().join("missing-talosconfig");
    let mut args = cmd_args(&c, "preflight", &[]);
    let at = args.iter().position(|a| a == "--talosconfig").unwrap();
    args[at + 1] = path_str(&missing);
    expect_bad(&c, &args, &[&path_str(&missing), "does not exist"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talosconfig_from_env_does_not_exist() {
    let c = small().await;
    let missing = c.tmp.path().join("missing-talosconfig");
    let args = strings(&[
        "preflight",
        "--talconfig",
        &path_str(&c.talconfig()),
        "--port",
        &c.fleet.port().to_string(),
    ]);
    expect_bad_env(
        &c,
        &args,
        &[("TALOSCONFIG", &path_str(&missing))],
        &[&path_str(&missing), "$TALOSCONFIG", "does not exist"],
    )
    .await;
}

/// Point the cluster args at another talosconfig.
fn with_talosconfig(c: &Cluster, cmd: &str, tc: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = cmd_args(c, cmd, extra);
    let at = args.iter().position(|a| a == "--talosconfig").unwrap();
    args[at + 1] = path_str(tc);
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talosconfig_malformed_yaml() {
    let c = small().await;
    let tc = c.tmp.path().join("broken-talosconfig");
    std::fs::write(&tc, "context: sim\ncontexts: [\n").unwrap();
    expect_bad(
        &c,
        &with_talosconfig(&c, "preflight", &tc, &[]),
        &[&path_str(&tc), "not valid YAML"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talosconfig_bad_base64() {
    let c = small().await;
    let tc = edited_talosconfig(&c, "bad-b64", |ctx| {
        set(ctx, "ca", "%%% not base64 %%%".into())
    });
    let run = expect_bad(
        &c,
        &with_talosconfig(&c, "preflight", &tc, &[]),
        &[&path_str(&tc), "field \"ca\"", "invalid base64"],
    )
    .await;
    assert!(
        !run.stderr.contains("%%%"),
        "echoes the value: {}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talosconfig_bad_pem() {
    let c = small().await;
    let tc = edited_talosconfig(&c, "bad-pem", |ctx| {
        set(ctx, "crt", b64(b"this is not a certificate"))
    });
    expect_bad(
        &c,
        &with_talosconfig(&c, "apply", &tc, &[]),
        &[&path_str(&tc), "field \"crt\"", "invalid PEM"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talosconfig_key_of_another_certificate() {
    let c = small().await;
    let other = talstrap::sim::pki::new_talos_ca().unwrap();
    let tc = edited_talosconfig(&c, "wrong-key", |ctx| {
        set(ctx, "key", b64(other.key_pem.as_bytes()))
    });
    expect_bad(
        &c,
        &with_talosconfig(&c, "apply", &tc, &[]),
        &[
            &path_str(&tc),
            "field \"key\"",
            "does not belong to the certificate",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talosconfig_context_that_does_not_exist() {
    let c = small().await;
    expect_bad(
        &c,
        &cmd_args(&c, "preflight", &["--context", "production"]),
        &[
            &path_str(&c.talosconfig()),
            "context \"production\" does not exist",
            "contexts: sim",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talosconfig_without_a_current_context() {
    let c = small().await;
    let text = read(&c.talosconfig());
    let tc = c.tmp.path().join("no-context");
    let edited: String = text
        .lines()
        .filter(|l| !l.starts_with("context:"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&tc, edited).unwrap();
    expect_bad(
        &c,
        &with_talosconfig(&c, "preflight", &tc, &[]),
        &[&path_str(&tc), "no context selected", "--context"],
    )
    .await;
}

/// An admin client certificate signed by the cluster's own CA whose
/// validity ended in 2021.
fn expired_client(ca: &CertAndKey) -> CertAndKey {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
        IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    };
    use x509_parser::prelude::ParsedExtension;
    let ca_der = talstrap::sim::pki::first_cert_der(&ca.cert_pem, "CA").unwrap();
    let (_, ca_cert) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
    let mut ca_params = CertificateParams::default();
    let mut ca_dn = DistinguishedName::new();
    ca_dn.push(DnType::OrganizationName, "talos");
    ca_params.distinguished_name = ca_dn;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    for ext in ca_cert.extensions() {
        if let ParsedExtension::SubjectKeyIdentifier(ski) = ext.parsed_extension() {
            ca_params.key_identifier_method = KeyIdMethod::PreSpecified(ski.0.to_vec());
        }
    }
    let issuer = Issuer::new(
        ca_params,
        talstrap::sim::pki::load_key(&ca.key_pem).unwrap(),
    );

    let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "os:admin");
    params.distinguished_name = dn;
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, &issuer).unwrap();
    CertAndKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talosconfig_with_an_expired_client_certificate() {
    let c = small().await;
    let expired = expired_client(c.fleet.paths().os_ca());
    let tc = edited_talosconfig(&c, "expired", |ctx| {
        set(ctx, "crt", b64(expired.cert_pem.as_bytes()));
        set(ctx, "key", b64(expired.key_pem.as_bytes()));
    });
    expect_bad(
        &c,
        &with_talosconfig(&c, "apply", &tc, &[]),
        &[&path_str(&tc), "field \"crt\"", "expired", "2021"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talosconfig_from_another_cluster() {
    let c = small().await;
    let foreign = c.tmp.path().join("foreign-talosconfig");
    talstrap::sim::foreign_talosconfig(c.fleet.paths(), &foreign).unwrap();
    let run = expect_bad(
        &c,
        &with_talosconfig(&c, "apply", &foreign, &[]),
        &[
            &path_str(&foreign),
            "does not belong to this cluster",
            "is not the OS CA of cp1",
            &path_str(&config_of(&c, "cp1")),
        ],
    )
    .await;
    // Both CAs are told apart by their key ids.
    assert_eq!(run.stderr.matches("key id").count(), 2, "{}", run.stderr);
}

// ----------------------------------------------------------- discover

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_invalid_cidr_scans_nothing() {
    let c = small().await;
    // A valid range (the fleet's own) next to a broken one: nothing is scanned.
    let net = format!("{}/24", c.ip("cp1"));
    let args = strings(&[
        "discover",
        &net,
        "127.0.0.0/33",
        "--port",
        &c.fleet.port().to_string(),
    ]);
    expect_bad(&c, &args, &["127.0.0.0/33"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_slash_8_needs_the_explicit_flag() {
    let c = small().await;
    let args = strings(&[
        "discover",
        "127.0.0.0/8",
        "--port",
        &c.fleet.port().to_string(),
    ]);
    expect_bad(&c, &args, &["127.0.0.0/8", "--allow-large-scan"]).await;
}
