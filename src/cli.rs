//! Command-line definitions (clap derive), and nothing else.
//!
//! This is the first of two stages: clap turns argv and `TALSTRAP_*`
//! environment variables into these raw structs; the commands then validate
//! them into a typed plan before any node is contacted. Flags follow
//! talosctl habits (`--talosconfig`, `--context`, `-n/--nodes`).
//!
//! The help text is written for operators who know talosctl and talhelper:
//! each command says what it does, what it never does, and shows examples.
//! Keep example lines under 80 columns; `tests/cli/docs.rs` snapshots every
//! `--help` at 80 columns, and the completions and man pages under
//! `completions/` and `man/` are generated from these definitions
//! (`task completions`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::duration;

/// Take Talos Linux nodes from maintenance mode to a bootstrapped, verified
/// cluster
///
/// talstrap reads what talhelper writes (talconfig.yaml and the generated
/// clusterconfig/), or plain machine configs given with --node, and works on
/// every node in parallel: each node has its own steps, bounded retries and
/// outcome, and one failing node never stops or hides the others. It detects
/// whether each node is in maintenance mode or already configured, so every
/// command can be run again safely; it bootstraps etcd exactly once and ends
/// with a kubeconfig.
#[derive(Debug, Parser)]
#[command(
    name = "talstrap",
    version,
    propagate_version = true,
    max_term_width = 100,
    after_help = TOP_EXAMPLES,
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Every long flag, with the subcommand that takes it (global flags
    /// under every subcommand): the property tests and fuzz targets feed
    /// each one, so a new flag is covered without editing a list.
    #[doc(hidden)]
    pub fn long_flags() -> Vec<(String, String)> {
        let cmd = <Cli as clap::CommandFactory>::command();
        let mut out = Vec::new();
        for sub in cmd.get_subcommands() {
            for arg in sub.get_arguments().chain(cmd.get_arguments()) {
                if let Some(long) = arg.get_long() {
                    out.push((sub.get_name().to_string(), format!("--{long}")));
                }
            }
        }
        out
    }

    /// Parses `argv` (program name first) without printing or exiting.
    #[doc(hidden)]
    pub fn try_parse_argv(argv: &[String]) -> Result<Cli, String> {
        <Cli as Parser>::try_parse_from(argv).map_err(|e| e.to_string())
    }
}

/// Clap's own heading style (bold, underlined); stripped when the output is
/// not a terminal and in the man pages.
macro_rules! heading {
    ($text:literal) => {
        concat!("\x1b[1m\x1b[4m", $text, "\x1b[0m")
    };
}

const TOP_EXAMPLES: &str = concat!(
    heading!("Examples:"),
    r#"
  # See the whole job against a simulated cluster on loopback first
  talstrap demo

  # Next to talconfig.yaml, after `talhelper genconfig`
  talstrap preflight
  talstrap apply --wait
  talstrap bootstrap --kubeconfig ./kubeconfig

  # In CI: JSON lines (the report last) and a meaningful exit code
  talstrap apply --wait -o json > apply.jsonl

"#,
    heading!("Exit codes:"),
    r#"
  0 success, 1 a node failed, 2 bad input (no node was contacted),
  3 --timeout reached, 130 interrupted

Every flag can also be set with the TALSTRAP_* variable named in each
command's --help; TALOSCONFIG is honoured as talosctl does."#
);

const PREFLIGHT_EXAMPLES: &str = concat!(
    heading!("Examples:"),
    r#"
  # talhelper layout: ./talconfig.yaml and ./clusterconfig/
  talstrap preflight

  # Also let maintenance-mode nodes validate their configs themselves
  talstrap preflight --server-dry-run

  # Only the control planes of a cluster kept in another directory
  talstrap preflight --role controlplane \
                     --talconfig talos/talconfig.yaml

  # Without talhelper: one machine config per node address
  talstrap preflight --node 127.0.42.11=controlplane.yaml \
                     --node 127.0.42.14=worker.yaml"#
);

const APPLY_EXAMPLES: &str = concat!(
    heading!("Examples:"),
    r#"
  # Fresh nodes: apply, then wait until they are ready for bootstrap
  talstrap apply --wait

  # What would change on each node; nothing is sent for real
  talstrap apply --dry-run

  # One configured node, without a reboot (refused if it needs one)
  talstrap apply -n cp2 --mode no-reboot

  # Workers one at a time
  talstrap apply --role worker --serial --wait"#
);

const VERIFY_EXAMPLES: &str = concat!(
    heading!("Examples:"),
    r#"
  # Wait for what the cluster's state calls for
  talstrap verify

  # After bootstrap: every node running and ready, within 15 minutes
  talstrap verify --phase post-bootstrap --timeout 15m

  # Report a node stuck after 2 minutes without progress
  talstrap verify --phase pre-bootstrap --stuck-after 2m"#
);

const BOOTSTRAP_EXAMPLES: &str = concat!(
    heading!("Examples:"),
    r#"
  # First control plane of talconfig.yaml; kubeconfig to ./kubeconfig
  talstrap bootstrap --kubeconfig ./kubeconfig

  # A chosen control plane; wait until every control plane joined etcd
  talstrap bootstrap -n cp2 --wait-members --kubeconfig ./kubeconfig

  # Two CI jobs may both run this: they elect the same node, and Talos
  # refuses a second bootstrap: never two etcd clusters
  talstrap bootstrap --auto --quorum 3

  # A fresh kubeconfig from a cluster that is already bootstrapped
  talstrap bootstrap --kubeconfig ./kubeconfig --force"#
);

const DISCOVER_EXAMPLES: &str = concat!(
    heading!("Examples:"),
    r#"
  # Nodes of a `talstrap sim --subnet 127.0.42.0/24` fleet
  talstrap discover 127.0.42.0/24

  # Also a talconfig.yaml `nodes:` list for the maintenance-mode nodes
  talstrap discover 127.0.42.0/24 --skeleton

  # Ranges and single addresses; configured nodes read via talosconfig
  talstrap discover 127.0.42.0/28 127.0.43.7 \
      --talosconfig clusterconfig/talosconfig -o json"#
);

const SIM_EXAMPLES: &str = concat!(
    heading!("Examples:"),
    r#"
  # 3 control planes and 2 workers; prints the commands to try next
  talstrap sim --dir /tmp/sim

  # A fixed subnet, ten times faster, with faults from a scenario file
  talstrap sim --subnet 127.0.42.0/24 --time-scale 0.1 \
      --scenario examples/scenarios/flaky.yaml

  # In another terminal, against the fleet above
  talstrap preflight --talconfig /tmp/sim/talconfig.yaml

  # A topf repository instead: topf.yaml and rendered/<host>.yaml
  talstrap sim --dir /tmp/topf --layout topf"#
);

const DEMO_EXAMPLES: &str = concat!(
    heading!("Examples:"),
    r#"
  # The whole job, a few seconds per stage
  talstrap demo

  # Faster, keeping the files and the kubeconfig in ./demo
  talstrap demo --time-scale 0.2 --dir ./demo

  # Keep the throwaway cluster in its temp dir to look at it afterwards
  talstrap demo --keep

  # How failures look: an install that fails on one node
  talstrap demo --scenario examples/scenarios/install-fails.yaml"#
);

const COMPLETIONS_EXAMPLES: &str = concat!(
    heading!("Examples:"),
    r#"
  # bash: load now, or install for every new shell
  source <(talstrap completions bash)
  talstrap completions bash > /etc/bash_completion.d/talstrap

  # zsh: a directory on $fpath
  talstrap completions zsh > ~/.zfunc/_talstrap"#
);

const MAN_EXAMPLES: &str = concat!(
    heading!("Examples:"),
    r#"
  # Read the page without installing it
  talstrap man | man -l -
  talstrap man apply | man -l -"#
);

/// Most simulated control planes (`--control-planes`).
const MAX_SIM_CONTROL_PLANES: u64 = 64;
/// Most simulated workers (`--workers`); a /16 subnet holds about 65,000 nodes,
/// but every node is a listener and a task in one process (5,000 take about
/// 0.5 GB and the benchmarks run that many).
const MAX_SIM_WORKERS: u64 = 16_384;

/// `--time-scale`: a finite factor from 0.001 (a thousand times faster) to
/// 1000. Outside that, simulated durations round to nothing or to centuries.
fn time_scale(text: &str) -> Result<f64, String> {
    let v: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number (e.g. 0.1 or 2)"))?;
    if !(0.001..=1000.0).contains(&v) {
        return Err(format!("{text} is outside 0.001 to 1000"));
    }
    Ok(v)
}

/// Output format of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Progress and a summary table; plain lines when stdout is not a terminal
    Human,
    /// One JSON object per line on stdout: events, then the final report
    Json,
}

/// Node role, as used by `--role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    #[value(name = "controlplane", alias = "control-plane", alias = "cp")]
    ControlPlane,
    Worker,
}

/// Flags shared by every subcommand.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// How results are shown [default: human]
    #[arg(long, short = 'o', global = true, value_enum, env = "TALSTRAP_OUTPUT")]
    pub output: Option<OutputFormat>,

    /// More detail on stderr (-v debug, -vv trace); secrets are never logged
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Print only errors and the final summary
    #[arg(long, short = 'q', global = true, env = "TALSTRAP_QUIET")]
    pub quiet: bool,

    /// No colours (NO_COLOR is honoured too)
    #[arg(long, global = true, env = "TALSTRAP_NO_COLOR")]
    pub no_color: bool,

    /// Deadline for the whole command, e.g. 90s, 10m, 1h30m [default: none]
    #[arg(long, global = true, value_parser = duration::command_timeout, env = "TALSTRAP_TIMEOUT",
          value_name = "DURATION")]
    pub timeout: Option<Duration>,

    /// Nodes worked on at the same time (up to 65,536). 16 keep this
    /// machine's cores busy while each node's part is a few milliseconds of
    /// TLS and a reply; raise it for large fleets whose nodes answer slowly
    /// (each node in flight holds a connection and its buffers)
    #[arg(long, global = true, default_value_t = 16, env = "TALSTRAP_PARALLEL",
          value_parser = clap::value_parser!(u32).range(1..=65_536), value_name = "N")]
    pub parallel: u32,

    /// One node at a time (same as --parallel 1)
    #[arg(long, global = true, env = "TALSTRAP_SERIAL")]
    pub serial: bool,

    /// Talos API (apid) port on every node
    #[arg(long, global = true, default_value_t = 50000, env = "TALSTRAP_PORT",
          value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,

    /// talosctl's `-e/--endpoints`: accepted only to be answered with an
    /// explanation (talstrap never dials endpoints), exit 2.
    #[arg(long = "endpoints", short = 'e', global = true, hide = true,
          value_name = "ENDPOINT", num_args = 0..=1, value_delimiter = ',')]
    pub endpoints: Option<Vec<String>>,

    /// talosctl's `-i/--insecure`: answered with an explanation (the mode is
    /// detected per node), exit 2.
    #[arg(long, short = 'i', global = true, hide = true)]
    pub insecure: bool,
}

/// Where the nodes and their machine configs come from, and how to reach them.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Nodes and credentials")]
pub struct InventoryArgs {
    /// talhelper's talconfig.yaml [default: ./talconfig.yaml]
    #[arg(long, env = "TALSTRAP_TALCONFIG", value_name = "FILE")]
    pub talconfig: Option<PathBuf>,

    /// Machine configs written by `talhelper genconfig` [default: clusterconfig/
    /// next to talconfig.yaml], or by `topf render -o DIR` with --topf
    /// [default: output/ next to topf.yaml]
    #[arg(long, env = "TALSTRAP_CONFIG_DIR", value_name = "DIR")]
    pub config_dir: Option<PathBuf>,

    /// topf's topf.yaml instead of talconfig.yaml: nodes (host, ip, role)
    /// from it, their configs from `topf render` output (--config-dir)
    #[arg(
        long,
        env = "TALSTRAP_TOPF",
        value_name = "FILE",
        conflicts_with = "talconfig"
    )]
    pub topf: Option<PathBuf>,

    /// talenv file with values for ${VAR} in talconfig.yaml; *.sops.yaml files
    /// are decrypted with `sops -d` (repeatable; replaces the defaults)
    /// [default: talenv.yaml, talenv.sops.yaml, talenv.yml, talenv.sops.yml,
    /// in the current directory and next to talconfig.yaml]
    // No short flag: `-e` is talosctl's --endpoints, answered with an
    // explanation (see GlobalArgs::endpoints).
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_files: Vec<PathBuf>,

    /// A node without talconfig.yaml: its address and machine config; FILE
    /// may be `-` (stdin) or a pipe such as <(sops -d cp.yaml) (repeatable)
    #[arg(
        long = "node",
        value_name = "IP=FILE",
        env = "TALSTRAP_NODE",
        value_delimiter = ','
    )]
    pub node_configs: Vec<String>,

    /// Work only on these nodes: IP or hostname (repeatable, or
    /// comma-separated)
    #[arg(
        long = "nodes",
        short = 'n',
        value_name = "NODE",
        env = "TALSTRAP_NODES",
        value_delimiter = ','
    )]
    pub nodes: Vec<String>,

    /// Work only on nodes of this role
    #[arg(long, value_enum, env = "TALSTRAP_ROLE")]
    pub role: Option<RoleArg>,

    /// talosconfig with the admin client certificate [default: $TALOSCONFIG,
    /// else clusterconfig/talosconfig, else $TALOS_HOME/config or
    /// ~/.talos/config]
    #[arg(long, env = "TALSTRAP_TALOSCONFIG", value_name = "FILE")]
    pub talosconfig: Option<PathBuf>,

    /// talosconfig context [default: the file's current context]
    #[arg(long, env = "TALSTRAP_CONTEXT", value_name = "NAME")]
    pub context: Option<String>,

    /// Pin maintenance-mode nodes: the SPKI SHA-256 fingerprint a node must
    /// present, as its console prints it (repeatable). Pins go stale: Talos
    /// re-issues the certificate with a new key at every boot, on address,
    /// hostname or time changes, and every 12 h [default: not checked, like
    /// talosctl --insecure]
    #[arg(
        long = "cert-fingerprint",
        value_name = "BASE64",
        env = "TALSTRAP_CERT_FINGERPRINT",
        value_delimiter = ','
    )]
    pub cert_fingerprints: Vec<String>,
}

/// Pacing knobs shared by the commands that wait on nodes.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Timing and retries")]
pub struct PacingArgs {
    /// Timeout of one TCP connect
    #[arg(long, value_parser = duration::connect_timeout, default_value = "3s", env = "TALSTRAP_CONNECT_TIMEOUT",
          value_name = "DURATION")]
    pub connect_timeout: Duration,

    /// Timeout of one API call (one attempt)
    #[arg(long, value_parser = duration::rpc_timeout, default_value = "15s", env = "TALSTRAP_RPC_TIMEOUT",
          value_name = "DURATION")]
    pub rpc_timeout: Duration,

    /// Attempts per step on transient errors (unavailable, refused, reset,
    /// timed out); other errors are never retried
    #[arg(long, default_value_t = 5, env = "TALSTRAP_ATTEMPTS",
          value_parser = clap::value_parser!(u32).range(1..=1000), value_name = "N")]
    pub attempts: u32,

    /// First retry delay; it doubles each attempt, with jitter, up to 30s
    #[arg(long, value_parser = duration::interval, default_value = "1s", env = "TALSTRAP_RETRY_DELAY",
          value_name = "DURATION")]
    pub retry_delay: Duration,

    /// How often a node's state is read when it cannot be watched
    #[arg(long, value_parser = duration::interval, default_value = "2s", env = "TALSTRAP_POLL_INTERVAL",
          value_name = "DURATION")]
    pub poll_interval: Duration,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check every node before touching it: mode, stage, version, disks
    ///
    /// For each node: can it be reached; is it in maintenance mode, configured
    /// by this cluster's CA, configured by another CA, or not Talos at all;
    /// its stage and Talos version; its disks, and which one
    /// machine.install.disk or diskSelector picks, evaluated locally with
    /// Talos's own rules. No matching disk is an error that lists the disks
    /// the node has; several matches are a warning that names them.
    ///
    /// preflight changes nothing on any node and writes no file. With
    /// --server-dry-run a maintenance-mode node also validates its config
    /// itself, in a dry run it does not keep.
    #[command(after_help = PREFLIGHT_EXAMPLES)]
    Preflight(PreflightArgs),

    /// Send each node its machine config, in parallel and idempotently
    ///
    /// The mode of each node is detected first. A node in maintenance mode
    /// gets its config over the maintenance API, dialled at its own address,
    /// in mode auto (the only way such a node takes one). A node configured by
    /// this cluster's CA gets it over mTLS with --mode, and is skipped when it
    /// already runs the identical config, so apply can be run again safely. A
    /// node configured by another CA is refused. A connection dropped by the
    /// node's reboot right after the request counts as sent; verify (or
    /// --wait) confirms it.
    ///
    /// On a bootstrapped cluster a change that reboots nodes (--mode reboot,
    /// or auto when Talos cannot apply it live) rolls out: control planes one
    /// at a time, each seen rebooting, back ready and etcd healthy with every
    /// member before the next; then workers, --max-unavailable at a time. A
    /// failed node or Ctrl-C stops the rollout before the next node, and the
    /// report names the nodes that have the new config. A cluster whose etcd
    /// is already degraded is refused unless --allow-degraded-etcd. Changes
    /// that apply live, and every node before bootstrap, go in parallel.
    /// --dry-run shows each node's change per document, secrets redacted.
    ///
    /// Only transient errors are retried (unavailable, refused, reset, timed
    /// out, another apply in progress). A rejected config, a permission error
    /// or a TLS trust failure is reported at once and never retried.
    ///
    /// apply never bootstraps etcd, never sends a config without TLS
    /// authentication to a node that is already configured, and never dials
    /// the cluster endpoint (a VIP or DNS name that only exists after
    /// bootstrap). With --dry-run it changes nothing.
    #[command(after_help = APPLY_EXAMPLES)]
    Apply(ApplyArgs),

    /// Wait for every node to reach its expected stage; explain stuck ones
    ///
    /// Before bootstrap a control plane should be booting with only etcd
    /// missing ("ready for bootstrap") and a worker booting, waiting for the
    /// control plane; after bootstrap every node should be running and ready.
    /// --phase auto decides from the cluster: etcd found means after.
    ///
    /// A node is reported stuck, with a hint at the likely cause, when its
    /// stage and unmet conditions stay the same for --stuck-after, when it is
    /// back in maintenance mode after an apply (usually a failed install, such
    /// as a disk selector that matched nothing), or when it keeps rebooting.
    ///
    /// verify only reads: it never applies, reboots or bootstraps anything.
    #[command(after_help = VERIFY_EXAMPLES)]
    Verify(VerifyArgs),

    /// Bootstrap etcd once, wait for it to be healthy, fetch the kubeconfig
    ///
    /// First a cluster-wide guard: every control plane is asked about etcd.
    /// If any already has it, the cluster is reported as already
    /// bootstrapped and no Bootstrap call is made, so running bootstrap again
    /// is safe. If any control plane cannot be asked (down, silent, another
    /// CA), nothing is sent: it may be the one with etcd. Two runs at once
    /// on one machine take turns (a lock per cluster); runs on different
    /// machines are not coordinated beyond a settle wait for targets other
    /// than the first control plane: run bootstrap from one place. After the
    /// bootstrap every control plane is asked again, and two etcd clusters
    /// are reported as a failure with the steps to repair them.
    ///
    /// The target is the node given with -n, else the first control plane in
    /// talconfig.yaml, or with --auto the elected one (oldest boot time, then
    /// lowest IP; every candidate is printed with the reason it won or lost).
    /// "Not ready yet" and "unavailable" answers are retried within bounds;
    /// after a request that may have been accepted, nothing is sent again for
    /// --resend-after. Then etcd must become healthy within --etcd-timeout.
    ///
    /// With --kubeconfig the admin kubeconfig is written there atomically,
    /// with mode 0600. An existing file is never replaced without --force.
    #[command(after_help = BOOTSTRAP_EXAMPLES)]
    Bootstrap(BootstrapArgs),

    /// Find Talos nodes in address ranges and tell what state each is in
    ///
    /// Two phases: a TCP connect scan of the Talos API port (--port) over
    /// every address, with many connects in flight and a short
    /// --connect-timeout; then only the hosts that answered are identified:
    /// maintenance mode (stage, version, disks), configured by the
    /// talosconfig's CA (version, role, boot time, etcd), configured by
    /// another CA, or not Talos.
    ///
    /// discover only reads, and writes no file. It scans only the ranges given
    /// and refuses ranges larger than /16 unless --allow-large-scan is set.
    #[command(after_help = DISCOVER_EXAMPLES)]
    Discover(DiscoverArgs),

    /// Run a simulated Talos cluster on loopback until Ctrl-C
    ///
    /// Each simulated node listens on its own 127.x.y.z address, all on the
    /// same port, and answers like a real node: maintenance mode, install,
    /// reboot, mTLS once configured, etcd bootstrap, kubeconfig. A throwaway
    /// cluster (new keys, talconfig.yaml, clusterconfig/ with a talosconfig)
    /// is written to --dir, and the commands to try next are printed.
    ///
    /// sim listens on loopback (127.0.0.0/8) only and contacts nothing. When
    /// --port is taken, a free port is picked and printed.
    #[command(after_help = SIM_EXAMPLES)]
    Sim(SimArgs),

    /// Run every step against a simulated cluster on loopback: start here
    ///
    /// Starts a simulated cluster (as `talstrap sim` does), then runs the real
    /// commands with the real output against it: preflight with a server-side
    /// dry run, apply --wait, bootstrap (etcd, every control plane joined,
    /// kubeconfig) and a last verify. The cluster files and the kubeconfig stay
    /// in --dir; without it they go to a private temp directory that is
    /// removed at the end unless --keep is given. The simulated nodes stop
    /// when the demo ends.
    ///
    /// demo uses loopback addresses only and touches no real node. With
    /// --scenario, injected faults show how talstrap reports failures.
    #[command(after_help = DEMO_EXAMPLES)]
    Demo(DemoArgs),

    /// Print a shell completion script (bash, zsh, fish, powershell, elvish)
    ///
    /// With bash, zsh and fish, `-n/--nodes <TAB>` offers the hostnames and
    /// addresses of the talconfig.yaml (or --talconfig) in the command line.
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions {
        #[arg(value_enum, value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print a man page (roff): talstrap's, or one subcommand's
    #[command(after_help = MAN_EXAMPLES)]
    Man {
        /// The subcommand whose page to print [default: talstrap's own]
        #[arg(value_name = "SUBCOMMAND")]
        subcommand: Option<String>,
    },
    /// Node names for shell completion of -n (used by the completion scripts)
    #[command(name = "__complete-nodes", hide = true)]
    CompleteNodes {
        /// talconfig.yaml to read [default: ./talconfig.yaml]
        #[arg(long, value_name = "FILE")]
        talconfig: Option<PathBuf>,
        /// --topf file to read instead
        #[arg(long, value_name = "FILE")]
        topf: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct PreflightArgs {
    /// Also have each maintenance-mode node validate its config (a dry-run
    /// apply that the node does not keep)
    #[arg(long, env = "TALSTRAP_SERVER_DRY_RUN")]
    pub server_dry_run: bool,

    // Shared flags last, so the command's own flags head its help under
    // "Options" and the shared ones follow under their own headings.
    #[command(flatten)]
    pub inventory: InventoryArgs,
    #[command(flatten)]
    pub pacing: PacingArgs,
}

/// `--mode` of apply, as talosctl names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApplyModeArg {
    /// Apply live when possible, reboot when the change needs it
    Auto,
    /// Apply live; refused when the change needs a reboot
    NoReboot,
    /// Apply, then reboot
    Reboot,
    /// Store the config; it takes effect at the next reboot
    Staged,
    /// Apply live, and roll back after --try-timeout unless applied again
    Try,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Apply mode for nodes already configured (a node in maintenance mode
    /// always gets auto)
    #[arg(
        long,
        short = 'm',
        value_enum,
        default_value = "auto",
        env = "TALSTRAP_MODE"
    )]
    pub mode: ApplyModeArg,

    /// With --mode try: how long the new config stays before Talos rolls it
    /// back
    #[arg(long, value_parser = duration::wait, default_value = "1m", value_name = "DURATION")]
    pub try_timeout: Duration,

    /// Show per node what would change; change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Then wait for the nodes as `talstrap verify` does
    #[arg(long)]
    pub wait: bool,

    /// On a bootstrapped cluster, how many workers a change that reboots
    /// them may take down at once (control planes always go one at a
    /// time). 1 by default: talstrap does not drain nodes or read
    /// PodDisruptionBudgets, so rebooting more workers together can take
    /// every replica of a workload down; raise it for large pools
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10000),
          env = "TALSTRAP_MAX_UNAVAILABLE", value_name = "N")]
    pub max_unavailable: u32,

    /// Start a rollout that reboots nodes even though etcd is already
    /// degraded (a control plane down, unhealthy or missing from the member
    /// list). Risky: rebooting another control plane of a degraded cluster
    /// can lose etcd quorum, and the Kubernetes API with it, until both are
    /// back
    #[arg(long, env = "TALSTRAP_ALLOW_DEGRADED_ETCD")]
    pub allow_degraded_etcd: bool,

    /// With --wait: a node whose stage and unmet conditions stay unchanged
    /// this long is reported stuck
    #[arg(long, value_parser = duration::wait, default_value = "5m", env = "TALSTRAP_STUCK_AFTER",
          value_name = "DURATION")]
    pub stuck_after: Duration,

    // Shared flags last, so the command's own flags head its help under
    // "Options" and the shared ones follow under their own headings.
    #[command(flatten)]
    pub inventory: InventoryArgs,
    #[command(flatten)]
    pub pacing: PacingArgs,
}

/// Which state `verify` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PhaseArg {
    /// Decide from the cluster: etcd found → post-bootstrap, else pre-bootstrap
    Auto,
    /// Control planes booting with only etcd missing; workers waiting for
    /// the control plane
    PreBootstrap,
    /// Every node running and ready
    PostBootstrap,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// State to wait for
    #[arg(long, value_enum, default_value = "auto", env = "TALSTRAP_PHASE")]
    pub phase: PhaseArg,

    /// A node whose stage and unmet conditions stay unchanged this long is
    /// reported stuck
    #[arg(long, value_parser = duration::wait, default_value = "5m", env = "TALSTRAP_STUCK_AFTER",
          value_name = "DURATION")]
    pub stuck_after: Duration,

    // Shared flags last, so the command's own flags head its help under
    // "Options" and the shared ones follow under their own headings.
    #[command(flatten)]
    pub inventory: InventoryArgs,
    #[command(flatten)]
    pub pacing: PacingArgs,
}

#[derive(Debug, Args)]
pub struct BootstrapArgs {
    /// Elect the target among the control planes (oldest boot time, then
    /// lowest IP) instead of taking the first one
    #[arg(long, env = "TALSTRAP_AUTO")]
    pub auto: bool,

    /// With --auto: find the candidates by scanning these ranges instead of
    /// reading talconfig.yaml (repeatable, or comma-separated)
    #[arg(long, value_name = "CIDR", requires = "auto", value_delimiter = ',')]
    pub cidr: Vec<String>,

    /// With --auto: control planes that must be present before electing
    /// [default: every control plane in talconfig.yaml; required with --cidr]
    #[arg(long, requires = "auto", env = "TALSTRAP_QUORUM",
          value_parser = clap::value_parser!(u32).range(1..=64), value_name = "N")]
    pub quorum: Option<u32>,

    /// Also wait until every control plane has joined etcd
    #[arg(long)]
    pub wait_members: bool,

    /// Bootstrap even when some control planes cannot be asked about etcd.
    /// RISK: if one of them already runs etcd, this creates a second etcd
    /// cluster (a split cluster that needs a reset to repair). Use it only
    /// for control planes known to be wiped or gone for good
    #[arg(long)]
    pub allow_unreachable_control_planes: bool,

    /// How long etcd may take to become healthy after the bootstrap
    #[arg(long, value_parser = duration::wait, default_value = "10m", value_name = "DURATION")]
    pub etcd_timeout: Duration,

    /// Write the admin kubeconfig to this file (atomically, mode 0600)
    /// [default: not fetched]
    #[arg(long, value_name = "PATH", env = "TALSTRAP_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// Replace the --kubeconfig file if it holds another cluster's
    /// kubeconfig (the same cluster's is kept without it; only a regular
    /// file is ever replaced)
    #[arg(long, requires = "kubeconfig")]
    pub force: bool,

    /// After a Bootstrap request that may have been accepted, send no other
    /// for this long
    #[arg(long, value_parser = duration::resend_window, default_value = "5m", env = "TALSTRAP_RESEND_AFTER",
          value_name = "DURATION")]
    pub resend_after: Duration,

    // Shared flags last, so the command's own flags head its help under
    // "Options" and the shared ones follow under their own headings.
    #[command(flatten)]
    pub inventory: InventoryArgs,
    #[command(flatten)]
    pub pacing: PacingArgs,
}

#[derive(Debug, Args)]
pub struct DiscoverArgs {
    /// Address ranges to scan: CIDRs or single IPs
    #[arg(required = true, value_name = "CIDR")]
    pub cidrs: Vec<String>,

    /// Timeout of one TCP connect in the scan
    #[arg(long, value_parser = duration::connect_timeout, default_value = "1s", env = "TALSTRAP_CONNECT_TIMEOUT",
          value_name = "DURATION")]
    pub connect_timeout: Duration,

    /// Connects in flight at once [default: sized from the open-file limit]
    #[arg(long, env = "TALSTRAP_WINDOW", value_name = "N",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=65536))]
    pub window: Option<usize>,

    /// Allow ranges larger than /16
    #[arg(long)]
    pub allow_large_scan: bool,

    /// Print a talconfig.yaml `nodes:` list for the maintenance-mode nodes
    /// found: stdout carries only that YAML (the table goes to stderr), so
    /// `> nodes.yaml` works; with -o json it is the report's
    /// details.skeleton
    #[arg(long)]
    pub skeleton: bool,

    /// talosconfig to read nodes configured by its CA (version, role, boot
    /// time, etcd) [default: $TALOSCONFIG, else clusterconfig/talosconfig,
    /// else $TALOS_HOME/config or ~/.talos/config, if one exists]
    #[arg(long, env = "TALSTRAP_TALOSCONFIG", value_name = "FILE")]
    pub talosconfig: Option<PathBuf>,

    /// talosconfig context [default: the file's current context]
    #[arg(long, env = "TALSTRAP_CONTEXT", value_name = "NAME")]
    pub context: Option<String>,
}

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Simulated control planes (cp1, cp2, …)
    #[arg(long, default_value_t = 3, value_name = "N",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=MAX_SIM_CONTROL_PLANES))]
    pub control_planes: usize,

    /// Simulated workers (w1, w2, …)
    #[arg(long, default_value_t = 2, value_name = "N",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=MAX_SIM_WORKERS))]
    pub workers: usize,

    /// Where to write the throwaway cluster: talconfig.yaml and clusterconfig/
    /// [default: a new directory under the temp dir]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Loopback range for the nodes, a /16 to /24 inside 127.0.0.0/8, e.g.
    /// 127.0.42.0/24 [default: random 127.x.y.0/24]
    #[arg(long, value_name = "CIDR")]
    pub subnet: Option<String>,

    /// Scenario file (YAML) with faults, timings and disks per node
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,

    /// Multiply every simulated duration (1: a few seconds per install or
    /// reboot; 0.1: ten times faster)
    #[arg(long, default_value_t = 1.0, value_name = "FACTOR", value_parser = time_scale)]
    pub time_scale: f64,

    /// Talos release to simulate: 1.12, 1.13 or 1.14 (or a full tag such as
    /// v1.13.3); nodes can differ per scenario (`talos_version` per node)
    #[arg(long, default_value = "1.14", value_name = "VERSION")]
    pub talos_version: String,
    /// Files to write: talhelper's (talconfig.yaml, clusterconfig/) or
    /// topf's (topf.yaml, `topf render` output in rendered/, talosconfig)
    #[arg(long, value_enum, default_value = "talhelper", value_name = "LAYOUT")]
    pub layout: SimLayout,
}

/// Which repository layout `sim` writes its cluster files in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SimLayout {
    /// talconfig.yaml and clusterconfig/ (as `talhelper genconfig` writes)
    Talhelper,
    /// topf.yaml, rendered/<host>.yaml (as `topf render -o rendered`) and
    /// talosconfig
    Topf,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to leave the cluster files and the kubeconfig [default: a new
    /// private directory under the temp dir, removed at the end]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Talos release to simulate: 1.12, 1.13 or 1.14 (or a full tag such as
    /// v1.13.3); nodes can differ per scenario (`talos_version` per node)
    #[arg(long, default_value = "1.14", value_name = "VERSION")]
    pub talos_version: String,
    /// Keep the temp directory (cluster files, keys, kubeconfig) instead of
    /// removing it when the demo ends
    #[arg(long)]
    pub keep: bool,

    /// Multiply every simulated duration (1: a few seconds per install or
    /// reboot; 0.1: ten times faster)
    #[arg(long, default_value_t = 1.0, value_name = "FACTOR", value_parser = time_scale)]
    pub time_scale: f64,

    /// Simulated control planes (cp1, cp2, …)
    #[arg(long, default_value_t = 3, value_name = "N",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=MAX_SIM_CONTROL_PLANES))]
    pub control_planes: usize,

    /// Simulated workers (w1, w2, …)
    #[arg(long, default_value_t = 2, value_name = "N",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=MAX_SIM_WORKERS))]
    pub workers: usize,

    /// Scenario file (YAML) with faults, to see how failures are reported
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
}
