//! One file per subcommand. Each wires inventory → plan → pipeline →
//! outcomes → output; none of them speaks gRPC directly (the talos layer
//! does).

pub mod apply;
pub mod bootstrap;
mod bootstrap_flow;
mod bootstrap_guard;
mod bootstrap_send;
pub mod cluster;
mod cluster_lock;
mod common;
pub mod demo;
pub mod discover;
pub mod election;
mod kubeconfig_file;
pub mod nodeops;
pub mod plan;
pub mod preflight;
pub mod secret_file;
pub mod sim;
pub mod verify;
pub mod watch;

pub use common::{CommandError, Session};

use crate::cli::{Cli, Command};
use crate::exit::Exit;

/// Run the parsed command line; returns how the run ended.
pub async fn run(cli: Cli) -> Exit {
    let session = Session::new(&cli.global);
    let name = command_name(&cli.command);
    let result = match cli.command {
        Command::Preflight(args) => preflight::run(&session, args).await,
        Command::Apply(args) => apply::run(&session, args).await,
        Command::Verify(args) => verify::run(&session, args).await,
        Command::Bootstrap(args) => bootstrap::run(&session, args).await,
        Command::Discover(args) => discover::run(&session, args).await,
        Command::Sim(args) => sim::run(&session, args).await,
        Command::Demo(args) => demo::run(&session, args).await,
        Command::Completions { shell } => {
            // Rendered in memory first: clap_complete panics when its
            // writer fails (`| true`, `> /dev/full`).
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "talstrap", &mut script);
            crate::output::stdout::write(&script);
            Ok(Exit::Success)
        }
        Command::Man => {
            // No `help` subcommand in the page: it has no man page of its own.
            let cmd = <Cli as clap::CommandFactory>::command().disable_help_subcommand(true);
            let mut page = Vec::new();
            match clap_mangen::Man::new(cmd).render(&mut page) {
                Ok(()) => {
                    crate::output::stdout::write(&page);
                    Ok(Exit::Success)
                }
                Err(e) => Err(CommandError::Runtime(anyhow::anyhow!(
                    "rendering the man page: {e}"
                ))),
            }
        }
    };
    session.finish(name, result)
}

fn command_name(cmd: &Command) -> &'static str {
    match cmd {
        Command::Preflight(_) => "preflight",
        Command::Apply(_) => "apply",
        Command::Verify(_) => "verify",
        Command::Bootstrap(_) => "bootstrap",
        Command::Discover(_) => "discover",
        Command::Sim(_) => "sim",
        Command::Demo(_) => "demo",
        Command::Completions { .. } => "completions",
        Command::Man => "man",
    }
}
