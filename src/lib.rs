//! talstrap: take a Talos Linux cluster from maintenance mode to a
//! bootstrapped, verified cluster.
//!
//! Data flows one way: `inventory` (what nodes and configs exist) → a plan
//! → `pipeline` (per-node steps over the [`talos`] protocol layer) →
//! outcomes → `output`. Flags become validated per-command settings
//! (`settings`) before any command runs. [`sim`] is the simulated fleet used
//! by the tests and by `talstrap demo`; `discovery` scans networks and
//! elects a bootstrap leader.
//!
//! The library is the binary's: it exports what `main` calls ([`Cli`],
//! [`normalize_args`], [`usage_error`], [`run`]); everything else is
//! crate-private. Tests and fuzz targets reach the input readers and the
//! report types through [`testing`].

mod cli;
mod commands;
mod discovery;
mod duration;
mod exit;
mod inventory;
mod ops;
mod output;
mod pipeline;
mod settings;
mod usage;

pub use cli::Cli;
pub use commands::run;
pub use exit::Exit;
pub use usage::{normalize_args, usage_error};

// The layers below the commands live in their own crates (see Cargo.toml's
// workspace): the wire types, the Talos client, and the simulator.
pub use talos_api as proto;
pub use talos_api::disksel;
pub use talos_client as talos;
pub use talstrap_sim as sim;

/// What tests/ and fuzz/ drive directly besides the binary: the input
/// readers, the report and its rendering, the generated docs, and the
/// simulator's topf layout. Not an API.
#[doc(hidden)]
pub mod testing {
    pub use crate::cli::OutputFormat;
    pub use crate::commands::sim::{TopfFiles, write_topf_layout};
    pub use crate::discovery::parse_targets;
    pub use crate::duration::format_duration;
    pub use crate::inventory::{
        Environment, LoadOptions, MachineConfig, Role, Variables, load_env_for, load_talconfig_in,
    };
    pub use crate::output::{OutputConfig, REPORT_SCHEMA, Report, render_report_text};
    pub use crate::pipeline::{
        ErrorKind, NodeOutcome, NodeRef, NodeStatus, StepError, StepRecord, StepStatus,
    };
    pub use crate::usage::man_page;
}
