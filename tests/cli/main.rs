//! CLI-level tests: the real `talstrap` binary against an in-process
//! simulated fleet on a random loopback /24. One test binary, one module
//! per area.

mod support;

mod bad_input;
mod bootstrap;
mod bootstrap_files;
mod bootstrap_races;
mod client;
mod connections;
mod discover;
mod docs;
mod dropins;
mod habits;
mod inputs;
mod inventory;
mod pipelines;
mod real_cluster;
mod reliability;
mod rollout;
mod schema;
mod secrets;
mod smoke;
mod versions;
mod watch;
