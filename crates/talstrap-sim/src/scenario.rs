//! Fault-injection scenarios: a YAML file that overrides timings, injects
//! faults per node (by hostname; several faults may combine on one node)
//! and overrides disk layouts. Every duration is multiplied by the fleet's
//! `time_scale`, so the same scenario runs in milliseconds in tests and in
//! seconds in the demo.
//!
//! ```yaml
//! cluster: { discovery: false, vip_endpoint: true }
//! timing: { install: 3s, reboot: 2s, boot: 2s, etcd_start: 1s, join: 1.5s, apiserver: 1.5s, worker_join: 2s, shutdown: 200ms }
//! nodes:
//!   cp2: { unreachable: true }
//!   cp1: { flaky: { method: ApplyConfiguration, count: 2 }, latency: 200ms }
//!   w1:  { stuck_in: booting }
//!   w2:  { clock_step: { after: 1s, by: 2h }, cert_refresh_every: 5s }
//!   cp3: { power_off_after: 4s }
//! disks:
//!   cp1: [ { dev_path: /dev/sda, size: 500GB, transport: sata, rotational: false } ]
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use thiserror::Error;

use crate::disksel::DiskFacts;
use crate::proto::Stage;

/// Problems reading a scenario.
#[derive(Debug, Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {path}: {cause}")]
    Read { path: String, cause: std::io::Error },
    #[error("scenario {path}: {message}")]
    Parse { path: String, message: String },
    #[error("scenario {path}: node {hostname:?} is not part of the fleet (nodes: {known})")]
    UnknownNode {
        path: String,
        hostname: String,
        known: String,
    },
}

/// Stage durations at time scale 1.0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    pub install: Duration,
    pub reboot: Duration,
    /// From the end of a reboot until the container runtime and kubelet are up.
    pub boot: Duration,
    /// From etcd start until etcd is healthy.
    pub etcd_start: Duration,
    /// From the first API server being up until another control plane joins etcd.
    pub join: Duration,
    /// From etcd healthy until the local kube-apiserver is up.
    pub apiserver: Duration,
    /// From a control plane API server being up until a worker is ready.
    pub worker_join: Duration,
    /// From an apply (or Reboot) that reboots the node until it goes down:
    /// Talos stops its services (and drains the node) first.
    pub shutdown: Duration,
    /// Talos's `BootTimeout` (70 min): a boot whose services are not all up
    /// by then fails, and machined reboots (v1.12.11
    /// pkg/machinery/constants/constants.go, internal/app/machined/main.go).
    pub boot_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            install: Duration::from_secs(3),
            reboot: Duration::from_secs(2),
            boot: Duration::from_secs(2),
            etcd_start: Duration::from_secs(1),
            join: Duration::from_millis(1500),
            apiserver: Duration::from_millis(1500),
            worker_join: Duration::from_secs(2),
            shutdown: Duration::from_millis(200),
            boot_timeout: Duration::from_secs(70 * 60),
        }
    }
}

impl Timing {
    /// Every duration multiplied by `scale`.
    pub fn scaled(&self, scale: f64) -> Timing {
        let f = |d: Duration| scale_duration(d, scale);
        Timing {
            install: f(self.install),
            reboot: f(self.reboot),
            boot: f(self.boot),
            etcd_start: f(self.etcd_start),
            join: f(self.join),
            apiserver: f(self.apiserver),
            worker_join: f(self.worker_join),
            shutdown: f(self.shutdown),
            boot_timeout: f(self.boot_timeout),
        }
    }
}

/// Longest duration a scenario may give (a year): longer ones are typos,
/// and keeping every scaled duration far from the clock's limits means no
/// `Instant + Duration` in the simulator can overflow.
pub const MAX_SCENARIO_SECS: f64 = 365.0 * 24.0 * 3600.0;

/// Longest scaled duration: a year at the largest `--time-scale` (1000).
const MAX_SCALED_SECS: f64 = MAX_SCENARIO_SECS * 1000.0;

/// `d × scale`, never negative, never longer than [`MAX_SCALED_SECS`], and
/// zero for a scale that is not a number.
pub fn scale_duration(d: Duration, scale: f64) -> Duration {
    let secs = d.as_secs_f64() * scale;
    if secs.is_nan() {
        return Duration::ZERO;
    }
    Duration::from_secs_f64(secs.clamp(0.0, MAX_SCALED_SECS))
}

/// A scenario duration in seconds, checked: finite, not negative, at most
/// [`MAX_SCENARIO_SECS`]. `text` is what the file said, for the message.
fn checked_secs(secs: f64, text: &str) -> Result<Duration, String> {
    if secs.is_nan() || secs < 0.0 {
        return Err(format!("invalid duration {text}: must be zero or more"));
    }
    if secs > MAX_SCENARIO_SECS {
        return Err(format!(
            "duration {text} is longer than a year (365 days), the most a scenario may give"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Optional overrides of [`Timing`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimingOverrides {
    #[serde(default, deserialize_with = "opt_duration")]
    pub install: Option<Duration>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub reboot: Option<Duration>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub boot: Option<Duration>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub etcd_start: Option<Duration>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub join: Option<Duration>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub apiserver: Option<Duration>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub worker_join: Option<Duration>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub shutdown: Option<Duration>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub boot_timeout: Option<Duration>,
}

impl TimingOverrides {
    /// `base` with these overrides applied.
    pub fn apply(&self, base: Timing) -> Timing {
        Timing {
            install: self.install.unwrap_or(base.install),
            reboot: self.reboot.unwrap_or(base.reboot),
            boot: self.boot.unwrap_or(base.boot),
            etcd_start: self.etcd_start.unwrap_or(base.etcd_start),
            join: self.join.unwrap_or(base.join),
            apiserver: self.apiserver.unwrap_or(base.apiserver),
            worker_join: self.worker_join.unwrap_or(base.worker_join),
            shutdown: self.shutdown.unwrap_or(base.shutdown),
            boot_timeout: self.boot_timeout.unwrap_or(base.boot_timeout),
        }
    }
}

/// The first `count` calls of `method` fail with Unavailable.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flaky {
    /// Short name (`ApplyConfiguration`) or full path (`/machine.MachineService/ApplyConfiguration`).
    pub method: String,
    pub count: u32,
}

impl Flaky {
    /// Whether this fault covers the gRPC method `path`.
    pub fn covers(&self, path: &str) -> bool {
        path == self.method || path.rsplit('/').next() == Some(self.method.as_str())
    }
}

fn one_or_many_flaky<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Flaky>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(Flaky),
        Many(Vec<Flaky>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => Vec::new(),
        Some(OneOrMany::One(f)) => vec![f],
        Some(OneOrMany::Many(v)) => v,
    })
}

/// Faults of one node. All default to off.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeFaults {
    /// SYNs are silently dropped: connects time out instead of being refused.
    #[serde(default)]
    pub unreachable: bool,
    /// Accepts TCP connections and never speaks TLS.
    #[serde(default)]
    pub hang_after_accept: bool,
    /// First N calls of a method fail with Unavailable.
    #[serde(default, deserialize_with = "one_or_many_flaky")]
    pub flaky: Vec<Flaky>,
    /// Every RPC is delayed by this (scaled).
    #[serde(default, deserialize_with = "opt_duration")]
    pub latency: Option<Duration>,
    /// ApplyConfiguration takes the config, then resets the connection without a reply.
    #[serde(default)]
    pub apply_reply_lost: bool,
    /// The install fails; the node comes back in maintenance after the reboot.
    #[serde(default)]
    pub install_fails: bool,
    /// The node never leaves this stage once it gets there.
    #[serde(default)]
    pub stuck_in: Option<Stage>,
    /// The node keeps rebooting once configured (boot time changes each time).
    #[serde(default)]
    pub reboot_loop: bool,
    /// Once configured, apid serves a certificate from a foreign CA.
    #[serde(default)]
    pub wrong_ca: bool,
    /// Bootstrap is accepted, then the connection is reset before the reply.
    #[serde(default)]
    pub bootstrap_reply_lost: bool,
    /// etcd runs but never becomes healthy.
    #[serde(default)]
    pub etcd_never_healthy: bool,
    /// Starts configured with etcd already running as a one-node cluster.
    #[serde(default)]
    pub already_bootstrapped: bool,
    /// Bootstrap answers "time is not in sync yet" for this long after boot (scaled).
    #[serde(default, deserialize_with = "opt_duration")]
    pub time_not_synced_for: Option<Duration>,
    /// No listener until `Fleet::power_on`.
    #[serde(default)]
    pub powered_off: bool,
    /// Powered off at the start, switched on by the fleet after this long
    /// (scaled): a machine added to a running cluster.
    #[serde(default, deserialize_with = "opt_duration")]
    pub power_on_after: Option<Duration>,
    /// Powered off this long (scaled) after the fleet started: a machine
    /// that dies mid-run (power cut, kernel panic, pulled cable). Modelled
    /// pessimistically: the address goes silent (new connects time out,
    /// requests on open connections never get an answer), its disk (config,
    /// etcd data and membership) survives.
    #[serde(default, deserialize_with = "opt_duration")]
    pub power_off_after: Option<Duration>,
    /// Starts already configured with its generated config.
    #[serde(default)]
    pub configured: bool,
    /// This node runs another Talos release than the fleet (`1.13`,
    /// `v1.13.3`): a mixed fleet, e.g. mid-upgrade.
    #[serde(default)]
    pub talos_version: Option<String>,
    /// In maintenance, the certificate is re-issued (new key, same boot) this
    /// often (scaled), as Talos does every 12 h and on address, hostname or
    /// time changes.
    #[serde(default, deserialize_with = "opt_duration")]
    pub cert_refresh_every: Option<Duration>,
    /// NTP steps the wall clock after each boot: the boot time the node
    /// reports moves although it did not reboot.
    #[serde(default)]
    pub clock_step: Option<ClockStep>,
    /// The node's first boot began this long before the fleet started: its
    /// boot time is that far back (not scaled: a clock value) and its boot
    /// timeout that much nearer (scaled).
    #[serde(default, deserialize_with = "opt_duration")]
    pub booted_ago: Option<Duration>,
}

/// `clock_step: { after: 1s, by: 2h, count: 1 }`: `after` (scaled) into each
/// boot, and again every `after` until `count` steps happened, the clock
/// jumps by `by` (signed; not scaled: it is a wall-clock amount).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockStep {
    #[serde(deserialize_with = "duration")]
    pub after: Duration,
    #[serde(rename = "by", deserialize_with = "signed_secs")]
    pub by_secs: i64,
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    opt_duration(d)?.ok_or_else(|| serde::de::Error::custom("a duration is required"))
}

/// Whole seconds, signed: `-2h`, `90s`, `3600`.
fn signed_secs<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Num(i64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Num(n) => Ok(n),
        Raw::Text(t) => {
            let (sign, rest) = match t.trim().strip_prefix('-') {
                Some(rest) => (-1, rest.to_string()),
                None => (1, t.trim().trim_start_matches('+').to_string()),
            };
            let d = parse_duration(&rest).map_err(serde::de::Error::custom)?;
            i64::try_from(d.as_secs())
                .map(|s| sign * s)
                .map_err(|_| serde::de::Error::custom(format!("clock step {t:?} is too large")))
        }
    }
}

/// One disk in a scenario's `disks:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskDef {
    pub dev_path: String,
    #[serde(deserialize_with = "size_value")]
    pub size: u64,
    #[serde(default)]
    pub transport: String,
    #[serde(default)]
    pub rotational: bool,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub serial: String,
    #[serde(default)]
    pub modalias: String,
    #[serde(default)]
    pub uuid: String,
    #[serde(default)]
    pub wwid: String,
    #[serde(default)]
    pub bus_path: String,
    #[serde(default)]
    pub readonly: bool,
    #[serde(default)]
    pub cdrom: bool,
    /// `/dev/disk/by-id/…`, `by-path/…` links to the device.
    #[serde(default)]
    pub symlinks: Vec<String>,
}

impl From<DiskDef> for DiskFacts {
    fn from(d: DiskDef) -> Self {
        DiskFacts {
            dev_path: d.dev_path,
            size: d.size,
            model: d.model,
            serial: d.serial,
            modalias: d.modalias,
            uuid: d.uuid,
            wwid: d.wwid,
            bus_path: d.bus_path,
            transport: d.transport,
            rotational: d.rotational,
            readonly: d.readonly,
            cdrom: d.cdrom,
            symlinks: d.symlinks,
        }
    }
}

/// `cluster:`: how the generated configs let nodes find each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterOptions {
    /// `cluster.discovery.enabled` (default on, as `talosctl gen config`).
    #[serde(default = "yes")]
    pub discovery: bool,
    /// The endpoint is a VIP of the control planes (up only after bootstrap).
    #[serde(default)]
    pub vip_endpoint: bool,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            discovery: true,
            vip_endpoint: false,
        }
    }
}

fn yes() -> bool {
    true
}

/// A whole scenario file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(default)]
    pub timing: TimingOverrides,
    #[serde(default)]
    pub cluster: ClusterOptions,
    #[serde(default)]
    pub nodes: BTreeMap<String, NodeFaults>,
    #[serde(default)]
    pub disks: BTreeMap<String, Vec<DiskDef>>,
    /// Where the scenario came from, for messages (the file's path).
    #[serde(skip)]
    pub origin: String,
}

impl Scenario {
    /// Parses scenario YAML; `origin` names the source in errors.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Self, ScenarioError> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let mut scenario: Scenario =
            yaml_serde::from_str(text).map_err(|e| ScenarioError::Parse {
                path: origin.to_string(),
                message: e.to_string(),
            })?;
        scenario.origin = origin.to_string();
        Ok(scenario)
    }

    /// Reads and parses a scenario file.
    pub fn from_file(path: &Path) -> Result<Self, ScenarioError> {
        let text = read_scenario_file(path).map_err(|cause| ScenarioError::Read {
            path: path.display().to_string(),
            cause,
        })?;
        Self::from_yaml(&text, &path.display().to_string())
    }

    /// Faults of `hostname` (none if unlisted).
    pub fn faults(&self, hostname: &str) -> NodeFaults {
        self.nodes.get(hostname).cloned().unwrap_or_default()
    }

    /// The Talos tag `hostname` runs: its own `talos_version`, else `fleet`.
    pub fn talos_version(&self, hostname: &str, fleet: &str) -> Result<String, ScenarioError> {
        match self
            .nodes
            .get(hostname)
            .and_then(|f| f.talos_version.as_deref())
        {
            None => Ok(fleet.to_string()),
            Some(v) => super::version::resolve(v).map_err(|message| ScenarioError::Parse {
                path: "scenario".to_string(),
                message: format!("nodes.{hostname}.talos_version: {message}"),
            }),
        }
    }

    /// Fails if the scenario names a node the fleet does not have.
    pub fn check_hostnames(&self, known: &[String], origin: &str) -> Result<(), ScenarioError> {
        for h in self.nodes.keys().chain(self.disks.keys()) {
            if !known.contains(h) {
                return Err(ScenarioError::UnknownNode {
                    path: origin.to_string(),
                    hostname: h.clone(),
                    known: known.join(", "),
                });
            }
        }
        Ok(())
    }
}

/// Largest scenario file read (they are a few lines).
const MAX_SCENARIO_BYTES: u64 = 1024 * 1024;

/// Reads a scenario: only a regular file (a FIFO would block, a device never
/// end) of at most [`MAX_SCENARIO_BYTES`], as UTF-8.
fn read_scenario_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_SCENARIO_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_SCENARIO_BYTES {
        return Err(std::io::Error::other(
            "larger than the 1 MiB a scenario may be",
        ));
    }
    Ok(text)
}

/// Parses `3s`, `200ms`, `1.5s`, `2m`, `1h`, `500us` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {text:?} (expected e.g. 200ms, 1.5s, 2m)"))?;
    let secs = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1e3,
        "us" | "µs" => value / 1e6,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("invalid duration unit {other:?} in {text:?}")),
    };
    checked_secs(secs, &format!("{text:?}"))
}

fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Num(f64),
        Text(String),
    }
    match Option::<Raw>::deserialize(d)? {
        None => Ok(None),
        Some(Raw::Num(n)) => checked_secs(n, &short_number(n))
            .map(Some)
            .map_err(serde::de::Error::custom),
        Some(Raw::Text(t)) => parse_duration(&t)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

/// `1e20`, not twenty digits; `1.5` as is.
fn short_number(n: f64) -> String {
    if n.is_finite() && n.abs() < 1e6 {
        n.to_string()
    } else {
        format!("{n:e}")
    }
}

fn size_value<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Num(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Num(n) => Ok(n),
        Raw::Text(t) => super::installdisk::parse_bytes(&t).map_err(|_| {
            serde::de::Error::custom(format!("invalid disk size {t:?} (expected e.g. 512GB)"))
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_faults_timings_and_disks() {
        let s = Scenario::from_yaml(
            r#"
timing: { install: 3s, reboot: 200ms, boot: 1.5, etcd_start: 1s }
nodes:
  cp1: { flaky: { method: ApplyConfiguration, count: 2 }, latency: 200ms, bootstrap_reply_lost: true }
  cp2: { unreachable: true, install_fails: true }
  w1: { stuck_in: booting, time_not_synced_for: 2s }
  w2: { flaky: [ { method: Version, count: 1 }, { method: /cosi.resource.State/Get, count: 3 } ] }
disks:
  cp1: [ { dev_path: /dev/sda, size: 500GB, transport: sata, rotational: false, model: "Samsung SSD", serial: S1 } ]
"#,
            "test.yaml",
        )
        .unwrap();
        let t = s.timing.apply(Timing::default());
        assert_eq!(t.reboot, Duration::from_millis(200));
        assert_eq!(t.boot, Duration::from_millis(1500));
        assert_eq!(t.join, Duration::from_millis(1500));
        let cp1 = s.faults("cp1");
        assert_eq!(
            cp1.flaky,
            vec![Flaky {
                method: "ApplyConfiguration".into(),
                count: 2
            }]
        );
        assert_eq!(cp1.latency, Some(Duration::from_millis(200)));
        assert!(cp1.bootstrap_reply_lost && !cp1.unreachable);
        let cp2 = s.faults("cp2");
        assert!(cp2.unreachable && cp2.install_fails);
        assert_eq!(s.faults("w1").stuck_in, Some(Stage::Booting));
        assert_eq!(s.faults("w2").flaky.len(), 2);
        assert!(s.faults("w2").flaky[1].covers("/cosi.resource.State/Get"));
        assert!(s.faults("w2").flaky[0].covers("/machine.MachineService/Version"));
        assert!(!s.faults("w2").flaky[0].covers("/machine.MachineService/Hostname"));
        assert_eq!(s.faults("nobody"), NodeFaults::default());
        let s2 = Scenario::from_yaml(
            "nodes:\n  cp1: { cert_refresh_every: 300ms, clock_step: { after: 1s, by: -2h } }\n  w1: { clock_step: { after: 2s, by: 90, count: 3 } }\n",
            "t.yaml",
        )
        .unwrap();
        let cp1 = s2.faults("cp1");
        assert_eq!(cp1.cert_refresh_every, Some(Duration::from_millis(300)));
        let step = cp1.clock_step.unwrap();
        assert_eq!(
            (step.after, step.by_secs, step.count),
            (Duration::from_secs(1), -7200, 1)
        );
        assert_eq!(s2.faults("w1").clock_step.unwrap().count, 3);
        let d: DiskFacts = s.disks["cp1"][0].clone().into();
        assert_eq!(d.size, 500_000_000_000);
        assert_eq!(d.model, "Samsung SSD");
    }

    #[test]
    fn errors_name_the_file_and_problem() {
        let err = Scenario::from_yaml("nodes:\n  cp1: { explode: true }\n", "s.yaml").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("s.yaml") && text.contains("explode"),
            "{text}"
        );
        let err = Scenario::from_yaml("nodes:\n  cp1: { latency: soon }\n", "s.yaml").unwrap_err();
        assert!(err.to_string().contains("soon"), "{err}");
        let s = Scenario::from_yaml("nodes:\n  cp9: { unreachable: true }\n", "s.yaml").unwrap();
        let err = s.check_hostnames(&["cp1".into()], "s.yaml").unwrap_err();
        assert!(err.to_string().contains("cp9"), "{err}");
    }

    #[test]
    fn huge_or_non_finite_durations_are_refused_not_panicked_on() {
        for bad in [
            "latency: 1e20",
            "latency: 99999999999999999999h",
            "latency: .inf",
            "latency: .nan",
            "latency: -1",
            "time_not_synced_for: .inf",
            "latency: 366d",
            "latency: 8761h",
        ] {
            let text = format!("nodes:\n  cp1: {{ {bad} }}\n");
            let err = Scenario::from_yaml(&text, "s.yaml").unwrap_err();
            assert!(err.to_string().contains("s.yaml"), "{bad}: {err}");
        }
        let err = Scenario::from_yaml("timing: { install: 1e300 }\n", "s.yaml").unwrap_err();
        assert!(err.to_string().contains("longer than a year"), "{err}");
        let ok = Scenario::from_yaml("timing: { join: 100000s }\n", "s.yaml").unwrap();
        assert_eq!(ok.timing.join, Some(Duration::from_secs(100_000)));
    }

    #[test]
    fn scaling_saturates_instead_of_overflowing() {
        let year = Duration::from_secs_f64(MAX_SCENARIO_SECS);
        assert_eq!(
            scale_duration(year, f64::INFINITY),
            Duration::from_secs_f64(MAX_SCALED_SECS)
        );
        assert_eq!(
            scale_duration(year, 1e300),
            Duration::from_secs_f64(MAX_SCALED_SECS)
        );
        assert_eq!(scale_duration(year, f64::NAN), Duration::ZERO);
        assert_eq!(scale_duration(year, -1.0), Duration::ZERO);
        assert_eq!(
            scale_duration(Duration::MAX, 1.0),
            Duration::from_secs_f64(MAX_SCALED_SECS)
        );
    }

    #[test]
    fn durations_and_scaling() {
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("fast").is_err());
        let t = Timing::default().scaled(0.5);
        assert_eq!(t.install, Duration::from_millis(1500));
        assert_eq!(
            scale_duration(Duration::from_secs(1), 0.02),
            Duration::from_millis(20)
        );
    }
}
