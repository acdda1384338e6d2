//! The fuzz properties of talstrap's input readers, run under proptest so
//! they hold in every `cargo test`: the talconfig reader (with env
//! substitution and talenv files), the machine config reader, the
//! talosconfig reader, the scan-target parser, disk selection and the
//! kubeconfig archive reader must never panic, and their errors must carry
//! a message.
//!
//! The properties themselves live in `fuzz/src/harness.rs` and the seed
//! inputs in `fuzz/src/seeds.rs`; both are shared with the coverage-guided
//! libFuzzer targets in `fuzz/` (see fuzz/README.md). Here inputs are the
//! seeds under random edits (byte and token insertions, deletions, line
//! duplication, truncation) plus plain random bytes and text.
//!
//! The default run is short. `TALSTRAP_FUZZ_CASES=200000 cargo test
//! --release --test fuzz_props` runs every property at scale.

#![allow(clippy::unwrap_used)] // tests may unwrap

#[allow(unreachable_pub, dead_code)]
#[path = "../fuzz/src/harness.rs"]
mod harness;
#[allow(unreachable_pub, dead_code)]
#[path = "../fuzz/src/seeds.rs"]
mod seeds;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestRunner};
use talstrap::disksel::{DiskFacts, DiskSelector};

/// Cases per property: `TALSTRAP_FUZZ_CASES`, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("TALSTRAP_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn runner(default_cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases: cases(default_cases),
        // Shrinking a panic is what we want; keep it bounded.
        max_shrink_iters: 2048,
        failure_persistence: None,
        ..Config::default()
    })
}

/// One random edit of a seed.
#[derive(Debug, Clone)]
enum Edit {
    Delete(Index, usize),
    InsertBytes(Index, Vec<u8>),
    InsertToken(Index, Index),
    DuplicateLine(Index),
    Truncate(Index),
    FlipBit(Index, u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        1 => (any::<Index>(), 1usize..40).prop_map(|(at, n)| Edit::Delete(at, n)),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..6))
            .prop_map(|(at, b)| Edit::InsertBytes(at, b)),
        3 => (any::<Index>(), any::<Index>()).prop_map(|(at, t)| Edit::InsertToken(at, t)),
        1 => (any::<Index>()).prop_map(Edit::DuplicateLine),
        1 => (any::<Index>()).prop_map(Edit::Truncate),
        1 => (any::<Index>(), 0u8..8).prop_map(|(at, bit)| Edit::FlipBit(at, bit)),
    ]
}

/// Tokens that steer edits toward interesting YAML, template, substitution
/// and address syntax.
const TOKENS: &[&str] = &[
    "\n",
    "  ",
    ": ",
    "- ",
    "---\n",
    "...",
    "#",
    "'",
    "\"",
    "|",
    ">-",
    "&a ",
    "*a",
    "<<: ",
    "{",
    "}",
    "[",
    "]",
    ",",
    "!!str ",
    "!!binary ",
    "~",
    "null",
    "true",
    "yes",
    "1e400",
    "-1",
    "${",
    "$$",
    "${VIP}",
    "${UNSET}",
    "${EMPTY:-x}",
    "${A-${B:-c}}",
    "$VIP",
    "{{",
    "}}",
    "{{ .Hostname }}",
    "{{- .Role -}}",
    "../",
    "/",
    "\\",
    "::",
    "/0",
    "/33",
    "/128",
    ".",
    "%",
    "\t",
    "\r",
    "\u{feff}",
    "\u{e9}",
    "sops:\n",
    "controlPlane: true\n",
    "hostname: ",
    "ipAddress: ",
    "filenameTmpl: ",
    "key: ",
    "crt: ",
    "ca: ",
    "context: ",
    "contexts:\n",
    "type: ",
    "diskSelector:\n",
    "size: ",
];

fn apply(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for e in edits {
        let len = out.len();
        match e {
            Edit::Delete(at, n) if len > 0 => {
                let start = at.index(len);
                let end = (start + n).min(len);
                out.drain(start..end);
            }
            Edit::InsertBytes(at, bytes) => {
                let pos = at.index(len + 1);
                out.splice(pos..pos, bytes.iter().copied());
            }
            Edit::InsertToken(at, tok) => {
                let pos = at.index(len + 1);
                let t = TOKENS[tok.index(TOKENS.len())].as_bytes();
                out.splice(pos..pos, t.iter().copied());
            }
            Edit::DuplicateLine(at) if len > 0 => {
                let pos = at.index(len);
                let start = out[..pos]
                    .iter()
                    .rposition(|b| *b == b'\n')
                    .map_or(0, |i| i + 1);
                let end = out[pos..]
                    .iter()
                    .position(|b| *b == b'\n')
                    .map_or(len, |i| pos + i + 1);
                let line = out[start..end].to_vec();
                out.splice(start..start, line);
            }
            Edit::Truncate(at) => out.truncate(at.index(len + 1)),
            Edit::FlipBit(at, bit) if len > 0 => out[at.index(len)] ^= 1 << bit,
            _ => {}
        }
    }
    out
}

/// Seeds under 0..8 random edits, or (one time in four) random bytes.
fn inputs(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let mutated = (
        prop::sample::select(seeds),
        prop::collection::vec(edit(), 0..8),
    )
        .prop_map(|(seed, edits)| apply(&seed, &edits));
    prop_oneof![
        3 => mutated,
        1 => prop::collection::vec(any::<u8>(), 0..600),
    ]
}

fn bytes_of(seeds: Vec<(&'static str, Vec<u8>)>) -> Vec<Vec<u8>> {
    seeds.into_iter().map(|(_, b)| b).collect()
}

#[test]
fn seeds_reach_the_success_paths() {
    let pki = seeds::Pki::new();
    let dir = harness::TalconfigDir::new(&seeds::clusterconfig(&pki)).unwrap();
    for (name, data) in seeds::talconfig() {
        let (talconfig, talenv) = harness::split_at_nul(&data);
        std::fs::write(dir.path().join("talconfig.yaml"), talconfig).unwrap();
        let env_path = dir.path().join("talenv.yaml");
        match talenv {
            Some(t) => std::fs::write(&env_path, t).unwrap(),
            None => {
                let _ = std::fs::remove_file(&env_path);
            }
        }
        let env = talstrap::testing::Environment::from_vars(harness::TALCONFIG_VARS)
            .with_sops_program(dir.path().join("no-such-sops"));
        let opts = talstrap::testing::LoadOptions::new(dir.path().join("talconfig.yaml"));
        let result = talstrap::testing::load_talconfig_in(&opts, &env);
        if name == "sops-talenv" {
            let err = result.unwrap_err().to_string();
            assert!(err.contains("talenv.yaml"), "{name}: {err}");
        } else {
            let inv = result.unwrap_or_else(|e| panic!("seed {name}: {e}"));
            assert_eq!(inv.cluster_name.as_deref(), Some("demo"), "{name}");
            assert!(inv.bootstrap_target().is_some(), "{name}");
        }
    }

    for (name, data) in seeds::machine_configs(&pki) {
        let path = std::path::Path::new("clusterconfig/seed.yaml");
        let mc = talstrap::testing::MachineConfig::parse(path, data)
            .unwrap_or_else(|e| panic!("seed {name}: {e}"));
        assert!(mc.hostname.is_some(), "{name}");
    }

    for (name, data) in seeds::talosconfigs(&pki) {
        let (text, context) = harness::split_talosconfig_input(&data).unwrap();
        let result = talstrap::talos::talosconfig::parse(
            std::path::Path::new("talosconfig"),
            &text,
            context.as_deref(),
        );
        match name {
            "expired" | "key-mismatch" | "no-context" => {
                assert!(result.is_err(), "seed {name} should be refused");
            }
            _ => {
                let cfg = result.unwrap_or_else(|e| panic!("seed {name}: {e}"));
                assert_eq!(cfg.credentials.roles(), vec!["os:admin".to_string()]);
            }
        }
    }

    for (name, data) in seeds::targets() {
        let (args, allow_large) = harness::split_targets_input(&data).unwrap();
        let result = talstrap::testing::parse_targets(&args, allow_large);
        assert_eq!(
            result.is_ok(),
            name != "large-refused",
            "seed {name}: {result:?}"
        );
    }

    for (name, data) in seeds::kubeconfigs() {
        let (mode, rest) = data.split_first().unwrap();
        let payload = if mode % 2 == 0 {
            rest.to_vec()
        } else {
            harness::gzip(rest)
        };
        let result = talstrap::talos::kubeconfig::extract_kubeconfig(&payload);
        match name {
            "wrong-name" | "truncated-gzip" => assert!(result.is_err(), "seed {name}"),
            _ => assert_eq!(
                result.unwrap_or_else(|e| panic!("seed {name}: {e}")),
                seeds::KUBECONFIG.as_bytes(),
                "{name}"
            ),
        }
    }
}

#[test]
fn talconfig_reader_never_panics() {
    let pki = seeds::Pki::new();
    let dir = harness::TalconfigDir::new(&seeds::clusterconfig(&pki)).unwrap();
    runner(300)
        .run(&inputs(bytes_of(seeds::talconfig())), |data| {
            let (talconfig, talenv) = harness::split_at_nul(&data);
            harness::check_talconfig(&dir, talconfig, talenv);
            Ok(())
        })
        .unwrap();
}

#[test]
fn machine_config_reader_never_panics() {
    let pki = seeds::Pki::new();
    runner(500)
        .run(&inputs(bytes_of(seeds::machine_configs(&pki))), |data| {
            harness::check_machine_config(&data);
            Ok(())
        })
        .unwrap();
}

#[test]
fn talosconfig_reader_never_panics() {
    let pki = seeds::Pki::new();
    runner(500)
        .run(&inputs(bytes_of(seeds::talosconfigs(&pki))), |data| {
            if let Some((text, context)) = harness::split_talosconfig_input(&data) {
                harness::check_talosconfig(&text, context.as_deref());
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn target_parser_never_panics() {
    runner(1000)
        .run(&inputs(bytes_of(seeds::targets())), |data| {
            if let Some((args, allow_large)) = harness::split_targets_input(&data) {
                harness::check_targets(&args, allow_large);
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn kubeconfig_reader_never_panics() {
    runner(1000)
        .run(&inputs(bytes_of(seeds::kubeconfigs())), |data| {
            if let Some((mode, rest)) = data.split_first() {
                if mode % 2 == 0 {
                    harness::check_kubeconfig(rest);
                } else {
                    harness::check_kubeconfig(&harness::gzip(rest));
                }
            }
            Ok(())
        })
        .unwrap();
}

/// Size-selector-like text: operators, digits, separators and units.
fn size_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "(>=|<=|==|>|<|=)? ?[0-9.,]{0,24} ?([kKmMgGtTpPeE][iI]?[bB]?|[bB]|xb)?",
        "\\PC{0,16}",
    ]
}

fn glob_text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-c*?/\\[\\]]{0,10}", "\\PC{0,8}"]
}

fn selector() -> impl Strategy<Value = DiskSelector> {
    let opt = |s: BoxedStrategy<String>| prop::option::weighted(0.4, s);
    (
        opt(size_text().boxed()),
        prop::option::weighted(0.05, "[a-z]{0,3}"),
        opt(glob_text().boxed()),
        opt(glob_text().boxed()),
        opt(glob_text().boxed()),
        opt(glob_text().boxed()),
        opt(glob_text().boxed()),
        prop::option::weighted(
            0.4,
            prop::sample::select(vec!["ssd", "hdd", "nvme", "sd", "", "SSD", "usb"])
                .prop_map(str::to_string),
        ),
        opt(glob_text().boxed()),
    )
        .prop_map(
            |(size, name, model, serial, modalias, uuid, wwid, disk_type, bus_path)| DiskSelector {
                size,
                name,
                model,
                serial,
                modalias,
                uuid,
                wwid,
                disk_type,
                bus_path,
            },
        )
}

fn disk() -> impl Strategy<Value = DiskFacts> {
    (
        (
            "/dev/[a-z]{2,4}",
            prop_oneof![
                any::<u64>(),
                Just(0u64),
                (0u64..4).prop_map(|k| k * 100_000_000_000)
            ],
            "[a-c*]{0,6}",
            "[a-c*]{0,6}",
            "[a-c*]{0,6}",
            "[a-c*]{0,6}",
        ),
        (
            "[a-c*]{0,6}",
            "[a-c/*]{0,6}",
            prop::sample::select(vec!["nvme", "sata", "mmc", "", "usb", "virtio"]),
            any::<bool>(),
            prop::bool::weighted(0.1),
            prop::bool::weighted(0.1),
        ),
    )
        .prop_map(
            |(
                (dev_path, size, model, serial, modalias, uuid),
                (wwid, bus_path, transport, rotational, readonly, cdrom),
            )| DiskFacts {
                dev_path,
                size,
                model,
                serial,
                modalias,
                uuid,
                wwid,
                bus_path,
                transport: transport.to_string(),
                rotational,
                readonly,
                cdrom,
                symlinks: Vec::new(),
            },
        )
}

#[test]
fn disk_selection_never_panics() {
    let strategy = (
        size_text(),
        glob_text(),
        glob_text(),
        selector(),
        prop::collection::vec(disk(), 0..6),
    );
    runner(1000)
        .run(&strategy, |(size, pattern, subject, sel, disks)| {
            harness::check_disksel(&size, &pattern, &subject, &sel, &disks);
            Ok(())
        })
        .unwrap();
}

// --- every flag and every scenario field ----------------------------------

/// Values that have broken parsers before, and random text.
fn flag_value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "0",
            "-1",
            "1",
            "0s",
            "0ms",
            "1e300",
            "-1e300",
            "inf",
            "-inf",
            "NaN",
            ".inf",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999h",
            "1h30",
            "1.5s",
            "0.0000001",
            "",
            " ",
            "127.0.0.0/8",
            "::/0",
            "0.0.0.0",
            "x",
            "☃",
        ])
        .prop_map(str::to_string),
        "[0-9.eE+-]{0,24}",
        "[0-9]{1,6}(ms|s|m|h|x|)",
        any::<String>(),
    ]
}

#[test]
fn every_flag_value_is_parsed_without_panicking() {
    let flags = talstrap::Cli::long_flags();
    assert!(flags.len() > 50, "{} flags", flags.len());
    let mut runner = runner(3000);
    let strategy = (
        any::<Index>(),
        prop::collection::vec((any::<Index>(), flag_value()), 1..5),
    );
    runner
        .run(&strategy, |(first, picks)| {
            let (sub, _) = first.get(&flags);
            let mut argv = vec!["talstrap".to_string(), sub.clone()];
            for (i, value) in picks {
                let (s, flag) = i.get(&flags);
                if s == sub {
                    argv.push(format!("{flag}={value}"));
                }
            }
            harness::check_cli(&argv);
            Ok(())
        })
        .unwrap();
}

/// Every scenario key the simulator reads, at each level.
const SCENARIO_TIMING: &[&str] = &[
    "install",
    "reboot",
    "boot",
    "etcd_start",
    "join",
    "apiserver",
    "worker_join",
    "shutdown",
    "boot_timeout",
];
const SCENARIO_FAULTS: &[&str] = &[
    "unreachable",
    "hang_after_accept",
    "flaky",
    "latency",
    "apply_reply_lost",
    "install_fails",
    "stuck_in",
    "reboot_loop",
    "wrong_ca",
    "bootstrap_reply_lost",
    "etcd_never_healthy",
    "already_bootstrapped",
    "time_not_synced_for",
    "powered_off",
    "power_on_after",
    "power_off_after",
    "configured",
    "talos_version",
    "cert_refresh_every",
    "clock_step",
    "booted_ago",
];
const SCENARIO_DISK: &[&str] = &[
    "dev_path",
    "size",
    "transport",
    "rotational",
    "model",
    "serial",
    "readonly",
    "cdrom",
];

fn scenario_value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "1e20",
            "1e300",
            ".inf",
            "-.inf",
            ".nan",
            "-1",
            "0",
            "1.5",
            "99999999999999999999h",
            "3s",
            "200ms",
            "true",
            "false",
            "null",
            "booting",
            "{ method: Version, count: 2 }",
            "{ method: Version, count: -1 }",
            "{ after: 1s, by: -2h, count: 3 }",
            "{ after: 1e300, by: 99999999999999999999h }",
            "[]",
            "{}",
            "500GB",
            "\">= 1TB\"",
            "18446744073709551616",
        ])
        .prop_map(str::to_string),
        "[0-9.eE+-]{1,30}",
        "[0-9]{1,25}(ms|s|m|h|us|)",
    ]
}

#[test]
fn every_scenario_field_is_read_and_scaled_without_panicking() {
    let mut runner = runner(2000);
    let strategy = (
        prop::collection::vec((any::<Index>(), scenario_value()), 0..4),
        prop::collection::vec((any::<Index>(), scenario_value()), 0..6),
        prop::collection::vec((any::<Index>(), scenario_value()), 0..4),
        prop::sample::select(harness::SCENARIO_SCALES.to_vec()),
    );
    runner
        .run(&strategy, |(timing, faults, disk, scale)| {
            let pairs = |list: &[(Index, String)], keys: &[&str]| {
                list.iter()
                    .map(|(i, v)| format!("{}: {v}", i.get(keys)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let text = format!(
                "timing: {{ {} }}\nnodes:\n  cp1: {{ {} }}\ndisks:\n  w1: [ {{ {} }} ]\n",
                pairs(&timing, SCENARIO_TIMING),
                pairs(&faults, SCENARIO_FAULTS),
                pairs(&disk, SCENARIO_DISK),
            );
            harness::check_scenario(&text, scale);
            Ok(())
        })
        .unwrap();
}

#[test]
fn random_command_lines_never_panic() {
    let mut runner = runner(1000);
    runner
        .run(&prop::collection::vec(any::<u8>(), 0..200), |data| {
            harness::check_cli(&harness::split_cli_input(&data));
            Ok(())
        })
        .unwrap();
}
