//! The configuration layer: raw flags ([`crate::cli`]) → validated settings
//! per command, in one step ([`resolve`]) before any command runs.
//!
//! clap parses each value on its own (types, ranges, durations through
//! [`crate::duration`]); everything else that can be wrong with a command
//! line is decided here: flags that conflict, talosctl habits, addresses
//! and ranges, fingerprints, the simulator's fleet (scenario file, Talos
//! release, subnet). A failure is bad input (exit 2) naming the flag, and
//! nothing has been created or contacted. Commands take these settings,
//! never clap structs, and `demo` composes them for the commands it runs.

mod commands;
mod fleet;

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{Command, GlobalArgs, InventoryArgs, PacingArgs, RoleArg};
use crate::inventory::Role;
use crate::output::OutputConfig;
use crate::pipeline::RetryPolicy;
use crate::talos::Timeouts;

pub(crate) use commands::{
    ApplySettings, BootstrapSettings, DiscoverSettings, PreflightSettings, VerifySettings,
};
pub(crate) use fleet::{DemoSettings, SimSettings};

/// A command line, validated: what to run, with which settings.
pub(crate) enum CommandSettings {
    Preflight(PreflightSettings),
    Apply(ApplySettings),
    Verify(VerifySettings),
    Bootstrap(BootstrapSettings),
    Discover(DiscoverSettings),
    Sim(SimSettings),
    Demo(DemoSettings),
    Completions(clap_complete::Shell),
    Man(Option<String>),
    CompleteNodes {
        talconfig: Option<PathBuf>,
        topf: Option<PathBuf>,
    },
}

/// Validate the command line: `Err` is the bad-input message (exit 2).
/// talosctl flags that talstrap answers come first, as they apply to every
/// command.
pub(crate) fn resolve(
    global: &GlobalSettings,
    args: &GlobalArgs,
    command: Command,
) -> Result<CommandSettings, String> {
    if let Some(answer) = crate::usage::talosctl_habit(args) {
        return Err(answer);
    }
    Ok(match command {
        Command::Preflight(a) => CommandSettings::Preflight(PreflightSettings::resolve(a)?),
        Command::Apply(a) => CommandSettings::Apply(ApplySettings::resolve(a)?),
        Command::Verify(a) => CommandSettings::Verify(VerifySettings::resolve(a)?),
        Command::Bootstrap(a) => CommandSettings::Bootstrap(BootstrapSettings::resolve(a)?),
        Command::Discover(a) => CommandSettings::Discover(DiscoverSettings::resolve(a)?),
        Command::Sim(a) => CommandSettings::Sim(SimSettings::resolve(a, global.port)?),
        Command::Demo(a) => CommandSettings::Demo(DemoSettings::resolve(a)?),
        Command::Completions { shell } => CommandSettings::Completions(shell),
        Command::Man { subcommand } => CommandSettings::Man(subcommand),
        Command::CompleteNodes { talconfig, topf } => {
            CommandSettings::CompleteNodes { talconfig, topf }
        }
    })
}

/// The flags every command shares, resolved.
#[derive(Debug, Clone)]
pub(crate) struct GlobalSettings {
    /// Format, colour, live progress: decided from the flags, `NO_COLOR`
    /// and whether stdout/stderr are terminals.
    pub(crate) output: OutputConfig,
    /// `--timeout`: the deadline of the whole command.
    pub(crate) timeout: Option<Duration>,
    /// Nodes worked on at once, after `--serial`.
    pub(crate) parallel: usize,
    /// `--serial`: one node at a time, even where waiting would allow more.
    pub(crate) serial: bool,
    /// The Talos API port of every node.
    pub(crate) port: u16,
}

impl GlobalSettings {
    /// Nothing here can be wrong on its own (clap checked every value); the
    /// talosctl flags are answered by [`resolve`].
    pub(crate) fn from_args(g: &GlobalArgs) -> Self {
        GlobalSettings {
            output: OutputConfig::detect(g.output, g.no_color, g.quiet, g.verbose),
            timeout: g.timeout,
            parallel: if g.serial { 1 } else { g.parallel as usize },
            serial: g.serial,
            port: g.port,
        }
    }
}

/// Where the nodes and their configs come from, and how to trust them.
#[derive(Debug, Clone, Default)]
pub(crate) struct InventorySettings {
    pub(crate) talconfig: Option<PathBuf>,
    pub(crate) config_dir: Option<PathBuf>,
    pub(crate) topf: Option<PathBuf>,
    pub(crate) env_files: Vec<PathBuf>,
    /// `--node IP=FILE`; never combined with a talconfig.yaml or topf.yaml.
    pub(crate) node_configs: Vec<String>,
    /// `-n/--nodes`: the selection.
    pub(crate) nodes: Vec<String>,
    pub(crate) role: Option<Role>,
    pub(crate) talosconfig: Option<PathBuf>,
    pub(crate) context: Option<String>,
    /// Maintenance pins, each a base64 SHA-256 digest.
    pub(crate) cert_fingerprints: Vec<String>,
}

impl InventorySettings {
    pub(crate) fn resolve(a: InventoryArgs) -> Result<Self, String> {
        if !a.node_configs.is_empty()
            && let Some(other) = [
                (a.talconfig.is_some(), "--talconfig"),
                (a.topf.is_some(), "--topf"),
            ]
            .into_iter()
            .find_map(|(given, flag)| given.then_some(flag))
        {
            return Err(format!(
                "--node IP=FILE and {other} cannot be combined: give the nodes one way"
            ));
        }
        for pin in &a.cert_fingerprints {
            check_fingerprint(pin)?;
        }
        Ok(InventorySettings {
            talconfig: a.talconfig,
            config_dir: a.config_dir,
            topf: a.topf,
            env_files: a.env_files,
            node_configs: a.node_configs,
            nodes: a.nodes,
            role: a.role.map(|r| match r {
                RoleArg::ControlPlane => Role::ControlPlane,
                RoleArg::Worker => Role::Worker,
            }),
            talosconfig: a.talosconfig,
            context: a.context,
            cert_fingerprints: a.cert_fingerprints,
        })
    }

    /// The files of a generated cluster (talhelper layout), every node.
    pub(crate) fn cluster_files(paths: &crate::sim::GeneratedCluster) -> Self {
        InventorySettings {
            talconfig: Some(paths.talconfig.clone()),
            config_dir: Some(paths.config_dir.clone()),
            talosconfig: Some(paths.talosconfig.clone()),
            ..InventorySettings::default()
        }
    }
}

/// Timeouts, retries and polling of the commands that talk to nodes.
#[derive(Debug, Clone)]
pub(crate) struct PacingSettings {
    pub(crate) connect_timeout: Duration,
    pub(crate) rpc_timeout: Duration,
    pub(crate) attempts: u32,
    pub(crate) retry_delay: Duration,
    pub(crate) poll_interval: Duration,
}

/// The longest delay between two attempts (`--retry-delay` help).
pub(crate) const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

impl PacingSettings {
    pub(crate) fn resolve(a: PacingArgs) -> Self {
        PacingSettings {
            connect_timeout: a.connect_timeout,
            rpc_timeout: a.rpc_timeout,
            attempts: a.attempts,
            retry_delay: a.retry_delay,
            poll_interval: a.poll_interval,
        }
    }

    /// Retries of one step: `--attempts`, from `--retry-delay` doubling up
    /// to 30 s (or the delay itself when it is longer).
    pub(crate) fn retry(&self) -> RetryPolicy {
        RetryPolicy {
            attempts: self.attempts,
            base: self.retry_delay,
            max: MAX_RETRY_DELAY.max(self.retry_delay),
        }
    }

    /// Connect, handshake and call timeouts of one attempt. The handshake
    /// gets twice the connect timeout, at least 4 s.
    pub(crate) fn timeouts(&self) -> Timeouts {
        Timeouts {
            connect: self.connect_timeout,
            tls: self.connect_timeout.max(Duration::from_secs(2)) * 2,
            rpc: self.rpc_timeout,
        }
    }
}

/// A maintenance pin must be what the node prints on its console: base64
/// (standard alphabet) of a SHA-256 digest. A typo would otherwise fail
/// every node at connect time, after contacting it.
fn check_fingerprint(pin: &str) -> Result<(), String> {
    use base64::Engine as _;
    let text = pin.trim();
    let decoded = base64::engine::general_purpose::STANDARD.decode(text.as_bytes());
    match decoded {
        Ok(bytes) if bytes.len() == 32 => Ok(()),
        Ok(bytes) => Err(format!(
            "--cert-fingerprint {text:?}: decodes to {} bytes, but a fingerprint is a SHA-256 digest (32 bytes, 44 base64 characters) as the node prints it on its console",
            bytes.len()
        )),
        Err(_) => Err(format!(
            "--cert-fingerprint {text:?}: not base64; give the SPKI SHA-256 fingerprint the node prints on its console (44 characters ending in '=')"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser as _;

    /// `talstrap …` through clap and [`resolve`].
    pub(super) fn resolve_line(line: &str) -> Result<CommandSettings, String> {
        let argv: Vec<&str> = line.split_whitespace().collect();
        let cli = Cli::try_parse_from(argv).map_err(|e| format!("clap: {e}"))?;
        let global = GlobalSettings::from_args(&cli.global);
        resolve(&global, &cli.global, cli.command)
    }

    #[test]
    fn fingerprints_must_be_base64_sha256() {
        // 32 zero bytes, as a node would print a digest.
        assert!(check_fingerprint("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").is_ok());
        assert!(check_fingerprint(" AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= ").is_ok());
        let err = check_fingerprint("not-a-fingerprint").unwrap_err();
        assert!(err.contains("not base64"), "{err}");
        let err = check_fingerprint("AAAA").unwrap_err();
        assert!(err.contains("3 bytes"), "{err}");
    }

    #[test]
    fn talosctl_flags_are_answered_before_the_command_is_looked_at() {
        // The node flag alone would be fine; -e is answered first.
        let err = resolve_line("talstrap preflight -e 127.0.0.1 --node 127.0.0.1=x.yaml")
            .err()
            .expect("refused");
        assert!(err.contains("-e/--endpoints is talosctl's"), "{err}");
    }

    #[test]
    fn node_flags_and_a_talconfig_conflict() {
        let err = resolve_line("talstrap verify --node 127.0.0.1=x.yaml --talconfig t.yaml")
            .err()
            .expect("refused");
        assert_eq!(
            err,
            "--node IP=FILE and --talconfig cannot be combined: give the nodes one way"
        );
        let err = resolve_line("talstrap apply --cert-fingerprint AAAA")
            .err()
            .expect("refused");
        assert!(
            err.starts_with("--cert-fingerprint \"AAAA\": decodes to 3 bytes"),
            "{err}"
        );
    }

    #[test]
    fn serial_means_one_node_at_a_time() {
        let cli =
            Cli::try_parse_from(["talstrap", "--parallel", "9", "--serial", "verify"]).unwrap();
        let g = GlobalSettings::from_args(&cli.global);
        assert_eq!((g.parallel, g.serial), (1, true));
        let cli = Cli::try_parse_from(["talstrap", "--parallel", "9", "verify"]).unwrap();
        assert_eq!(GlobalSettings::from_args(&cli.global).parallel, 9);
    }

    #[test]
    fn pacing_caps_the_retry_delay_and_sizes_the_handshake() {
        let p = PacingSettings {
            connect_timeout: Duration::from_millis(500),
            rpc_timeout: Duration::from_secs(7),
            attempts: 3,
            retry_delay: Duration::from_secs(1),
            poll_interval: Duration::from_secs(2),
        };
        assert_eq!(p.retry().max, MAX_RETRY_DELAY);
        assert_eq!(p.timeouts().tls, Duration::from_secs(4));
        let slow = PacingSettings {
            retry_delay: Duration::from_secs(45),
            connect_timeout: Duration::from_secs(5),
            ..p
        };
        assert_eq!(slow.retry().max, Duration::from_secs(45));
        assert_eq!(slow.timeouts().tls, Duration::from_secs(10));
    }
}
