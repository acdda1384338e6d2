//! talstrap: take a Talos Linux cluster from maintenance mode to a
//! bootstrapped, verified cluster.
//!
//! Data flows one way: [`inventory`] (what nodes and configs exist) → a plan
//! → [`pipeline`] (per-node steps over the [`talos`] protocol layer) →
//! outcomes → [`output`]. [`sim`] is the simulated fleet used by the tests
//! and by `talstrap demo`; [`discovery`] scans networks and elects a
//! bootstrap leader.

pub mod cli;
pub mod commands;
pub mod discovery;
pub mod duration;
pub mod exit;
pub mod inventory;
pub mod ops;
pub mod output;
pub mod pipeline;
mod settings;
pub mod usage;

// The layers below the commands live in their own crates (see Cargo.toml's
// workspace): the wire types, the Talos client, and the simulator.
pub use talos_api as proto;
pub use talos_api::disksel;
pub use talos_client as talos;
pub use talstrap_sim as sim;
