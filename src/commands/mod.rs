//! One file (or file + directory of its parts) per subcommand, plus what
//! only the commands share: `common` (session, errors) and `plan` (flags to
//! a validated plan). Services several commands use live in `crate::ops`.
//! Each subcommand wires inventory → plan → pipeline →
//! outcomes → output; none of them speaks gRPC directly (the talos layer
//! does).

pub mod apply;
pub mod bootstrap;
mod common;
pub mod demo;
pub mod discover;
pub mod plan;
pub mod preflight;
pub mod sim;
pub mod verify;

pub use common::{CommandError, Session};

use crate::cli::{Cli, Command};
use crate::exit::Exit;

/// Run the parsed command line; returns how the run ended.
pub async fn run(cli: Cli) -> Exit {
    let session = Session::new(&cli.global);
    let name = command_name(&cli.command);
    if let Some(answer) = crate::usage::talosctl_habit(&cli.global) {
        return session.finish(name, Err(CommandError::input(answer)));
    }
    let result = match cli.command {
        Command::Preflight(args) => preflight::run(&session, args).await,
        Command::Apply(args) => apply::run(&session, args).await,
        Command::Verify(args) => verify::run(&session, args).await,
        Command::Bootstrap(args) => bootstrap::run(&session, args).await,
        Command::Discover(args) => discover::run(&session, args).await,
        Command::Sim(args) => sim::run(&session, args).await,
        Command::Demo(args) => demo::run(&session, args).await,
        Command::Completions { shell } => write_stdout(
            &crate::usage::completion_script(shell),
            "the completion script",
        ),
        Command::Man { subcommand } => match crate::usage::man_page(subcommand.as_deref()) {
            Ok(page) => write_stdout(&page, "the man page"),
            Err(e) => Err(CommandError::input(e)),
        },
        Command::CompleteNodes { talconfig, topf } => {
            let names = crate::inventory::completion_names(talconfig.as_deref(), topf.as_deref());
            write_stdout(names.join("\n").as_bytes(), "node names")
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
        Command::Man { .. } => "man",
        Command::CompleteNodes { .. } => "__complete-nodes",
    }
}

/// Generated text on stdout.
fn write_stdout(bytes: &[u8], _what: &str) -> Result<Exit, CommandError> {
    // A closed pipe ends quietly, any other failure is reported at the end
    // (see output::stdout).
    crate::output::stdout::write(bytes);
    Ok(Exit::Success)
}
