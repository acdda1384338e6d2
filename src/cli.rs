//! Command-line definitions (clap derive), and nothing else.
//!
//! This is the first of two stages: clap turns argv and `TALSTRAP_*`
//! environment variables into these raw structs; the commands then validate
//! them into a typed plan before any node is contacted. Flags follow
//! talosctl habits (`--talosconfig`, `--context`, `-n/--nodes`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::duration::parse_duration;

/// Take Talos Linux nodes from maintenance mode to a bootstrapped, verified
/// cluster: per-node pipelines with bounded retries, mode detection, an
/// idempotent bootstrap and a kubeconfig at the end.
#[derive(Debug, Parser)]
#[command(
    name = "talstrap",
    version,
    propagate_version = true,
    max_term_width = 100,
    after_help = "Start with `talstrap demo` to watch a whole bootstrap against a simulated cluster.\n\
                  Every flag can also be set with a TALSTRAP_* environment variable (shown in each --help)."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Output format of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Progress and tables for people; plain lines when stdout is not a terminal.
    Human,
    /// One JSON object per line on stdout: events, then a final report.
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
pub struct GlobalArgs {
    /// Output format [default: human]
    #[arg(long, short = 'o', global = true, value_enum, env = "TALSTRAP_OUTPUT")]
    pub output: Option<OutputFormat>,

    /// More detail on stderr (-v: debug, -vv: trace). Secrets are never logged.
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Only errors and the final summary.
    #[arg(long, short = 'q', global = true, env = "TALSTRAP_QUIET")]
    pub quiet: bool,

    /// Disable colours (also honoured: NO_COLOR).
    #[arg(long, global = true, env = "TALSTRAP_NO_COLOR")]
    pub no_color: bool,

    /// Deadline for the whole command, e.g. 90s, 10m, 1h30m.
    #[arg(long, global = true, value_parser = parse_duration, env = "TALSTRAP_TIMEOUT")]
    pub timeout: Option<Duration>,

    /// Nodes worked on at the same time.
    #[arg(long, global = true, default_value_t = 16, env = "TALSTRAP_PARALLEL",
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub parallel: u32,

    /// One node at a time (same as --parallel 1).
    #[arg(long, global = true, env = "TALSTRAP_SERIAL")]
    pub serial: bool,

    /// Talos API port on every node.
    #[arg(long, global = true, default_value_t = 50000, env = "TALSTRAP_PORT",
          value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,
}

/// Where the nodes and their machine configs come from, and how to reach them.
#[derive(Debug, Args, Clone, Default)]
pub struct InventoryArgs {
    /// talhelper's talconfig.yaml [default: ./talconfig.yaml]
    #[arg(long, env = "TALSTRAP_TALCONFIG", value_name = "FILE")]
    pub talconfig: Option<PathBuf>,

    /// Directory with the generated machine configs [default: clusterconfig/ next to talconfig.yaml]
    #[arg(long, env = "TALSTRAP_CONFIG_DIR", value_name = "DIR")]
    pub config_dir: Option<PathBuf>,

    /// Extra talenv file for ${VAR} substitution (repeatable) [default: talenv.yaml, talenv.sops.yaml, … next to talconfig.yaml]
    #[arg(long = "env-file", short = 'e', value_name = "FILE")]
    pub env_files: Vec<PathBuf>,

    /// A node given directly, without talconfig.yaml: IP=path/to/config.yaml (repeatable)
    #[arg(
        long = "node",
        value_name = "IP=FILE",
        env = "TALSTRAP_NODE",
        value_delimiter = ','
    )]
    pub node_configs: Vec<String>,

    /// Only these nodes: IP or hostname (repeatable, or comma-separated)
    #[arg(
        long = "nodes",
        short = 'n',
        value_name = "NODE",
        env = "TALSTRAP_NODES",
        value_delimiter = ','
    )]
    pub nodes: Vec<String>,

    /// Only nodes of this role
    #[arg(long, value_enum, env = "TALSTRAP_ROLE")]
    pub role: Option<RoleArg>,

    /// talosconfig file [default: $TALOSCONFIG, $TALOS_HOME/config, ~/.talos/config; then clusterconfig/talosconfig]
    #[arg(long, env = "TALSTRAP_TALOSCONFIG", value_name = "FILE")]
    pub talosconfig: Option<PathBuf>,

    /// talosconfig context [default: the file's current context]
    #[arg(long, env = "TALSTRAP_CONTEXT")]
    pub context: Option<String>,

    /// SPKI SHA-256 fingerprint(s) a maintenance-mode node must present (as printed on its console)
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
pub struct PacingArgs {
    /// Timeout of one TCP connect
    #[arg(long, value_parser = parse_duration, default_value = "3s", env = "TALSTRAP_CONNECT_TIMEOUT")]
    pub connect_timeout: Duration,

    /// Timeout of one RPC (one attempt)
    #[arg(long, value_parser = parse_duration, default_value = "15s", env = "TALSTRAP_RPC_TIMEOUT")]
    pub rpc_timeout: Duration,

    /// Attempts per step for transient errors (Unavailable, refused, reset, deadline)
    #[arg(long, default_value_t = 5, env = "TALSTRAP_RETRIES",
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub attempts: u32,

    /// First retry delay; doubles per attempt with jitter, capped at 30s
    #[arg(long, value_parser = parse_duration, default_value = "1s", env = "TALSTRAP_RETRY_DELAY")]
    pub retry_delay: Duration,

    /// How often to poll a node's state when watching is not possible
    #[arg(long, value_parser = parse_duration, default_value = "2s", env = "TALSTRAP_POLL_INTERVAL")]
    pub poll_interval: Duration,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check every node before touching it: reachability, mode, stage, version, disks and the install disk
    Preflight(PreflightArgs),
    /// Send each node its machine config (maintenance → insecure, configured → mTLS), in parallel
    Apply(ApplyArgs),
    /// Wait until every node reaches the expected stage; report stuck nodes with a cause
    Verify(VerifyArgs),
    /// Bootstrap etcd exactly once, wait for it to be healthy, and fetch the kubeconfig
    Bootstrap(BootstrapArgs),
    /// Find Talos nodes in address ranges and say what state each is in
    Discover(DiscoverArgs),
    /// Run a simulated Talos fleet on loopback until Ctrl-C
    Sim(SimArgs),
    /// Simulated cluster + preflight → apply → verify → bootstrap → kubeconfig, end to end
    Demo(DemoArgs),
    /// Print a shell completion script
    #[command(hide = true)]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff)
    #[command(hide = true)]
    Man,
}

#[derive(Debug, Args)]
pub struct PreflightArgs {
    #[command(flatten)]
    pub inventory: InventoryArgs,
    #[command(flatten)]
    pub pacing: PacingArgs,

    /// Also ask each maintenance-mode node to validate its config (ApplyConfiguration with dry_run)
    #[arg(long, env = "TALSTRAP_SERVER_DRY_RUN")]
    pub server_dry_run: bool,
}

/// `--mode` of apply, as talosctl names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApplyModeArg {
    Auto,
    NoReboot,
    Reboot,
    Staged,
    Try,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub inventory: InventoryArgs,
    #[command(flatten)]
    pub pacing: PacingArgs,

    /// Apply mode for configured nodes (maintenance nodes always get auto)
    #[arg(
        long,
        short = 'm',
        value_enum,
        default_value = "auto",
        env = "TALSTRAP_MODE"
    )]
    pub mode: ApplyModeArg,

    /// How long a --mode try config stays before it is rolled back
    #[arg(long, value_parser = parse_duration, default_value = "1m")]
    pub try_timeout: Duration,

    /// Show per node what would change; change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// After applying, wait for the nodes like `talstrap verify`
    #[arg(long)]
    pub wait: bool,

    /// With --wait: how long unchanged stage and conditions count as stuck
    #[arg(long, value_parser = parse_duration, default_value = "5m", env = "TALSTRAP_STUCK_AFTER")]
    pub stuck_after: Duration,
}

/// Which state `verify` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PhaseArg {
    /// Decide from the cluster: bootstrapped (etcd found) → running; otherwise ready for bootstrap
    Auto,
    /// Control planes booting with only etcd missing; workers waiting for the control plane
    PreBootstrap,
    /// Every node running and ready
    PostBootstrap,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub inventory: InventoryArgs,
    #[command(flatten)]
    pub pacing: PacingArgs,

    /// Expected state
    #[arg(long, value_enum, default_value = "auto", env = "TALSTRAP_PHASE")]
    pub phase: PhaseArg,

    /// A node whose stage and unmet conditions stay unchanged this long is reported stuck
    #[arg(long, value_parser = parse_duration, default_value = "5m", env = "TALSTRAP_STUCK_AFTER")]
    pub stuck_after: Duration,
}

#[derive(Debug, Args)]
pub struct BootstrapArgs {
    #[command(flatten)]
    pub inventory: InventoryArgs,
    #[command(flatten)]
    pub pacing: PacingArgs,

    /// Elect the control plane to bootstrap (oldest boot time, then lowest IP) instead of the first one
    #[arg(long, env = "TALSTRAP_AUTO")]
    pub auto: bool,

    /// With --auto: find candidates by scanning these ranges instead of using talconfig's control planes
    #[arg(long, value_name = "CIDR", requires = "auto", value_delimiter = ',')]
    pub cidr: Vec<String>,

    /// With --auto: control planes that must be present before electing
    #[arg(long, requires = "auto", env = "TALSTRAP_QUORUM",
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub quorum: Option<u32>,

    /// Also wait until every control plane has joined etcd
    #[arg(long)]
    pub wait_members: bool,

    /// How long etcd may take to become healthy after the bootstrap
    #[arg(long, value_parser = parse_duration, default_value = "10m")]
    pub etcd_timeout: Duration,

    /// Write the admin kubeconfig here (mode 0600, atomically)
    #[arg(long, value_name = "PATH", env = "TALSTRAP_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// Replace an existing --kubeconfig file
    #[arg(long, requires = "kubeconfig")]
    pub force: bool,

    /// After a Bootstrap request that may have been accepted, send no other for this long
    #[arg(long, value_parser = parse_duration, default_value = "5m", env = "TALSTRAP_RESEND_AFTER")]
    pub resend_after: Duration,
}

#[derive(Debug, Args)]
pub struct DiscoverArgs {
    /// Address ranges to scan (CIDR or single IPs)
    #[arg(required = true, value_name = "CIDR")]
    pub cidrs: Vec<String>,

    /// Timeout of one TCP connect in the scan
    #[arg(long, value_parser = parse_duration, default_value = "1s", env = "TALSTRAP_CONNECT_TIMEOUT")]
    pub connect_timeout: Duration,

    /// Connects in flight [default: sized from the open-file limit]
    #[arg(long, env = "TALSTRAP_WINDOW")]
    pub window: Option<usize>,

    /// Allow ranges larger than /16
    #[arg(long)]
    pub allow_large_scan: bool,

    /// Print a talconfig `nodes:` skeleton for the maintenance-mode nodes found
    #[arg(long)]
    pub skeleton: bool,

    /// talosconfig used to identify configured nodes (optional)
    #[arg(long, env = "TALSTRAP_TALOSCONFIG", value_name = "FILE")]
    pub talosconfig: Option<PathBuf>,

    /// talosconfig context
    #[arg(long, env = "TALSTRAP_CONTEXT")]
    pub context: Option<String>,
}

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Simulated control planes
    #[arg(long, default_value_t = 3)]
    pub control_planes: usize,

    /// Simulated workers
    #[arg(long, default_value_t = 2)]
    pub workers: usize,

    /// Where to write the throwaway cluster (talconfig.yaml, clusterconfig/, talosconfig)
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Loopback /24 for the nodes, e.g. 127.0.42.0/24 [default: random]
    #[arg(long)]
    pub subnet: Option<String>,

    /// Scenario file with faults and timings
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,

    /// Multiply every simulated duration (1.0 = seconds, as in the demo)
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to leave the cluster files and the kubeconfig [default: a new directory under the temp dir]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Multiply every simulated duration (smaller = faster)
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,

    /// Simulated control planes
    #[arg(long, default_value_t = 3)]
    pub control_planes: usize,

    /// Simulated workers
    #[arg(long, default_value_t = 2)]
    pub workers: usize,

    /// Scenario file with faults, to see how failures look
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
}
