//! The fuzz properties of talstrap's input readers, in one place.
//!
//! Each `check_*` function feeds one reader an input and asserts what must
//! hold for *every* input: the reader returns instead of panicking, an error
//! it returns carries a non-empty message, and a success is internally
//! consistent. A failed assertion is a panic, which libFuzzer records as a
//! crash and proptest as a failing case. The libFuzzer targets in
//! `fuzz_targets/` and the proptest run in `tests/fuzz_props.rs` (which
//! includes this file by path) share these functions, so both check the
//! same thing.
//!
//! Nothing here touches the network; the talconfig check only reads and
//! writes files inside its own temporary directory.

use std::fmt::Display;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use talstrap::disksel::{self, DiskFacts, DiskSelector};
use talstrap::talos::{kubeconfig, talosconfig};
use talstrap::testing::parse_targets;
use talstrap::testing::{Environment, LoadOptions, MachineConfig};

/// How many addresses of a parsed target set are walked (sets can hold up
/// to 2^128 addresses; the walk is lazy).
pub const TARGET_WALK: usize = 2048;

/// The size cap the kubeconfig reader promises (16 MiB).
const KUBECONFIG_MAX: usize = 16 * 1024 * 1024;

/// Variables the talconfig checks substitute from (no real process
/// environment is read).
pub const TALCONFIG_VARS: [(&str, &str); 5] = [
    ("VIP", "127.0.0.10"),
    ("CLUSTER", "demo"),
    ("CP1_IP", "127.0.0.11"),
    ("TALOS_VERSION", "v1.12.0"),
    ("EMPTY", ""),
];

/// Panics when `err` renders as an empty (or blank) message.
fn assert_message(reader: &str, err: &dyn Display) {
    let msg = err.to_string();
    assert!(
        !msg.trim().is_empty(),
        "{reader}: returned an error whose message is empty"
    );
}

/// Splits a fuzz input into talconfig text and optional talenv text at the
/// first NUL byte.
pub fn split_at_nul(data: &[u8]) -> (&[u8], Option<&[u8]>) {
    match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    }
}

/// A private directory laid out like a talhelper project: `talconfig.yaml`
/// (rewritten for every input), optionally `talenv.yaml`, and a
/// `clusterconfig/` holding valid machine configs for the node names the
/// seeds use.
pub struct TalconfigDir {
    dir: tempfile::TempDir,
    talconfig: PathBuf,
    talenv: PathBuf,
    env: Environment,
}

impl TalconfigDir {
    /// Creates the directory and writes `configs` (file name, contents)
    /// into its `clusterconfig/`.
    pub fn new(configs: &[(String, String)]) -> io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("talstrap-fuzz-")
            .tempdir()?;
        let config_dir = dir.path().join("clusterconfig");
        std::fs::create_dir(&config_dir)?;
        for (name, text) in configs {
            std::fs::write(config_dir.join(name), text)?;
        }
        // A talenv with a top-level `sops:` key would run sops: point at a
        // program that does not exist, so the reader reports that instead.
        let env = Environment::from_vars(TALCONFIG_VARS)
            .with_sops_program(dir.path().join("no-such-sops"));
        Ok(TalconfigDir {
            talconfig: dir.path().join("talconfig.yaml"),
            talenv: dir.path().join("talenv.yaml"),
            dir,
            env,
        })
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// talconfig reader (with env substitution and talenv.yaml): loads
/// `talconfig` (and `talenv`, when given) through
/// `inventory::load_talconfig_in`.
pub fn check_talconfig(dir: &TalconfigDir, talconfig: &[u8], talenv: Option<&[u8]>) {
    // Writing our own temp files must work; failing here is a harness
    // problem, not a finding.
    std::fs::write(&dir.talconfig, talconfig).expect("write talconfig.yaml");
    match talenv {
        Some(text) => std::fs::write(&dir.talenv, text).expect("write talenv.yaml"),
        None => match std::fs::remove_file(&dir.talenv) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => panic!("remove talenv.yaml: {e}"),
        },
    }
    let opts = LoadOptions::new(&dir.talconfig);
    match talstrap::testing::load_talconfig_in(&opts, &dir.env) {
        Ok(inv) => {
            assert!(!inv.nodes.is_empty(), "talconfig: loaded with no nodes");
            for node in &inv.nodes {
                assert!(
                    !node.addresses.is_empty(),
                    "talconfig: node {} loaded without an address",
                    node.hostname
                );
                assert_eq!(
                    node.role,
                    node.config.role(),
                    "talconfig: node {} loaded with a role its config contradicts",
                    node.hostname
                );
            }
            let _ = inv.warnings();
            let _ = inv.bootstrap_target();
        }
        Err(e) => assert_message("talconfig", &e),
    }
}

/// Machine config reader: `MachineConfig::parse` on raw bytes.
pub fn check_machine_config(bytes: &[u8]) {
    let path = Path::new("clusterconfig/fuzz-node.yaml");
    match MachineConfig::parse(path, bytes.to_vec()) {
        Ok(config) => {
            assert_eq!(config.raw(), bytes, "machine config: raw bytes changed");
            assert_eq!(config.path(), path);
            assert_eq!(config.role(), config.machine_type.role());
            if let Some(sel) = &config.disk_selector {
                // A selector the reader accepted must be evaluable without
                // panicking (it may still be one Talos rejects).
                match disksel::cel_expression(sel) {
                    Ok(_) => {}
                    Err(e) => assert_message("machine config diskSelector", &e),
                }
            }
            let _ = format!("{config:?}");
        }
        Err(e) => assert_message("machine config", &e),
    }
}

/// Picks the talosconfig text and `context` argument from a fuzz input: the
/// first byte chooses no context (0), the context `home` (1), or (2) the
/// first line of the rest as the context name and the remainder as text.
pub fn split_talosconfig_input(data: &[u8]) -> Option<(String, Option<String>)> {
    let (&mode, rest) = data.split_first()?;
    let rest = std::str::from_utf8(rest).ok()?;
    Some(match mode % 3 {
        0 => (rest.to_string(), None),
        1 => (rest.to_string(), Some("home".to_string())),
        _ => match rest.split_once('\n') {
            Some((ctx, text)) => (text.to_string(), Some(ctx.to_string())),
            None => (String::new(), Some(rest.to_string())),
        },
    })
}

/// talosconfig reader: `talos::talosconfig::parse`. Besides the common
/// property, a long `key:` value that occurs once in the text must never
/// show up in an error message (the key is the cluster admin key).
pub fn check_talosconfig(text: &str, context: Option<&str>) {
    let path = Path::new("/home/op/.talos/config");
    match talosconfig::parse(path, text, context) {
        Ok(cfg) => {
            assert_eq!(cfg.path, path);
            if let Some(wanted) = context {
                assert_eq!(cfg.context_name, wanted);
            }
            let debug = format!("{:?}", cfg.credentials);
            for secret in key_values(text) {
                assert!(
                    !debug.contains(secret),
                    "talosconfig: Credentials Debug shows key material"
                );
            }
        }
        Err(e) => {
            assert_message("talosconfig", &e);
            let msg = e.to_string();
            for secret in key_values(text) {
                assert!(
                    !msg.contains(secret),
                    "talosconfig: error message quotes the `key` value"
                );
            }
        }
    }
}

/// Values of `key:` lines long enough to be key material and present only
/// once in `text` (so no other field can legitimately echo them).
fn key_values(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix("key:"))
        .map(str::trim)
        .filter(|v| v.len() >= 24 && text.matches(*v).count() == 1)
        .collect()
}

/// Splits a fuzz input into scan-target arguments: the first byte's low
/// bit is `allow_large`, the rest is one argument per line (at most 16).
pub fn split_targets_input(data: &[u8]) -> Option<(Vec<String>, bool)> {
    let (&flags, rest) = data.split_first()?;
    let rest = std::str::from_utf8(rest).ok()?;
    let args = rest.split('\n').take(16).map(str::to_string).collect();
    Some((args, flags & 1 == 1))
}

/// CIDR/address parser: `discovery::parse_targets`, then a walk over the
/// first [`TARGET_WALK`] addresses: ascending (IPv4 first), each one
/// reported as contained, and as many as `len()` says (up to the walk).
pub fn check_targets(args: &[String], allow_large: bool) {
    match parse_targets(args, allow_large) {
        Ok(set) => {
            let len = set.len();
            let mut walked: u128 = 0;
            let mut prev: Option<(bool, u128)> = None;
            for ip in set.iter().take(TARGET_WALK) {
                let key = order_key(ip);
                if let Some(p) = prev {
                    assert!(p < key, "targets: {ip} is out of order or repeated");
                }
                prev = Some(key);
                assert!(
                    set.contains(ip),
                    "targets: iterated {ip} but contains() denies it"
                );
                walked += 1;
            }
            assert_eq!(
                walked,
                len.min(TARGET_WALK as u128),
                "targets: len() disagrees with the iterator"
            );
            assert_eq!(set.is_empty(), len == 0);
            let _ = set.to_string();
            let _ = set.notes();
        }
        Err(e) => assert_message("targets", &e),
    }
}

fn order_key(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(a) => (false, u128::from(u32::from(a))),
        IpAddr::V6(a) => (true, u128::from(a)),
    }
}

/// Disk selection: `disksel::parse_size_expr` on free text, `glob_match`
/// on a free pattern/subject, and `select_disks` with a free selector over
/// free disks, checked against `disk_matches` and `cel_expression`.
pub fn check_disksel(
    size_expr: &str,
    pattern: &str,
    subject: &str,
    sel: &DiskSelector,
    disks: &[DiskFacts],
) {
    if let Err(e) = disksel::parse_size_expr(size_expr) {
        assert_message("parse_size_expr", &e);
    }

    let matched = disksel::glob_match(pattern, subject);
    if !pattern.contains('*') {
        assert_eq!(
            matched,
            pattern == subject,
            "glob without `*` must be equality"
        );
    }
    assert!(disksel::glob_match("*", subject), "`*` must match anything");
    if !subject.contains('*') {
        assert!(
            disksel::glob_match(subject, subject),
            "a literal must match itself"
        );
    }

    match disksel::select_disks(sel, disks) {
        Ok(selected) => {
            let expected = disks
                .iter()
                .filter(|d| disksel::disk_matches(sel, d) == Ok(true))
                .count();
            assert_eq!(
                selected.len(),
                expected,
                "select_disks disagrees with disk_matches"
            );
            for d in &selected {
                assert!(
                    !d.transport.is_empty() && !d.readonly && !d.cdrom,
                    "select_disks picked a disk Talos always excludes"
                );
            }
            assert!(
                disksel::cel_expression(sel).is_ok(),
                "a selector that selects must also render"
            );
        }
        Err(e) => {
            assert_message("select_disks", &e);
            assert!(disksel::cel_expression(sel).is_err());
            for d in disks {
                assert!(disksel::disk_matches(sel, d).is_err());
            }
        }
    }
}

/// Kubeconfig archive reader: `talos::kubeconfig::extract_kubeconfig`.
pub fn check_kubeconfig(payload: &[u8]) {
    match kubeconfig::extract_kubeconfig(payload) {
        Ok(bytes) => assert!(
            bytes.len() <= KUBECONFIG_MAX,
            "kubeconfig: returned more than the size cap"
        ),
        Err(e) => assert_message("kubeconfig", &e),
    }
}

/// Gzips `data` (lets a fuzzer reach the tar parser behind the gzip layer).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).expect("gzip into memory");
    gz.finish().expect("gzip into memory")
}

/// Command lines: NUL-separated arguments after the program name.
pub fn split_cli_input(data: &[u8]) -> Vec<String> {
    let mut argv = vec!["talstrap".to_string()];
    argv.extend(
        data.split(|b| *b == 0)
            .take(16)
            .map(|a| String::from_utf8_lossy(a).into_owned()),
    );
    argv
}

/// Property: clap and every value parser behind it (durations, counts,
/// time scales, enums) refuse or accept any command line without a panic,
/// and a refusal says why.
pub fn check_cli(argv: &[String]) {
    if let Err(msg) = talstrap::Cli::try_parse_argv(argv) {
        assert!(!msg.trim().is_empty(), "empty clap error for {argv:?}");
    }
}

/// Scenario time scales tried on every accepted scenario: the ends of what
/// `--time-scale` takes, and the values tests and the demo use.
pub const SCENARIO_SCALES: [f64; 4] = [0.001, 0.02, 1.0, 1000.0];

/// Property: a scenario file is refused or read without a panic, and every
/// duration it gives, scaled at any accepted time scale, can be added to
/// the clock (the simulator does `now + d`); the fleet check never panics.
pub fn check_scenario(text: &str, scale: f64) {
    let scenario = match talstrap::sim::Scenario::from_yaml(text, "fuzz") {
        Ok(s) => s,
        Err(e) => {
            assert!(!e.to_string().trim().is_empty(), "empty scenario error");
            return;
        }
    };
    let t = scenario
        .timing
        .apply(talstrap::sim::Timing::default())
        .scaled(scale);
    let now = std::time::Instant::now();
    for d in [
        t.install,
        t.reboot,
        t.boot,
        t.etcd_start,
        t.join,
        t.apiserver,
        t.worker_join,
        t.shutdown,
        t.boot_timeout,
    ] {
        assert!(now.checked_add(d).is_some(), "{d:?} overflows the clock");
    }
    for faults in scenario.nodes.values() {
        for d in [
            faults.latency,
            faults.time_not_synced_for,
            faults.power_on_after,
            faults.power_off_after,
            faults.cert_refresh_every,
            faults.booted_ago,
            faults.clock_step.as_ref().map(|c| c.after),
        ]
        .into_iter()
        .flatten()
        {
            let scaled = talstrap::sim::scenario::scale_duration(d, scale);
            assert!(
                now.checked_add(scaled).is_some(),
                "{scaled:?} overflows the clock"
            );
        }
    }
    let mut spec = talstrap::sim::FleetSpec::new(3, 2, "/nonexistent");
    spec.time_scale = scale;
    spec.scenario = scenario;
    let _ = spec.check();
}
