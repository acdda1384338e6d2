//! One file (or file + directory of its parts) per subcommand, plus what
//! only the commands share: `common` (session, errors) and `plan` (flags to
//! a validated plan). Services several commands use live in `crate::ops`.
//! Each subcommand wires inventory → plan → pipeline →
//! outcomes → output; none of them speaks gRPC directly (the talos layer
//! does).

pub(crate) mod apply;
pub(crate) mod bootstrap;
mod common;
pub(crate) mod demo;
pub(crate) mod discover;
pub(crate) mod plan;
pub(crate) mod preflight;
pub(crate) mod sim;
pub(crate) mod verify;

pub(crate) use common::{CommandError, Session};

use crate::cli::{Cli, Command};
use crate::exit::Exit;
use crate::settings::{CommandSettings, GlobalSettings};

/// Run the parsed command line; returns how the run ended. The flags are
/// validated into settings first ([`crate::settings::resolve`]): bad input
/// ends the run before anything is started or contacted.
pub async fn run(cli: Cli) -> Exit {
    let global = GlobalSettings::from_args(&cli.global);
    let session = Session::new(&global);
    session.start();
    let name = command_name(&cli.command);
    let result = match crate::settings::resolve(&global, &cli.global, cli.command) {
        Ok(settings) => dispatch(&session, settings).await,
        Err(message) => Err(CommandError::input(message)),
    };
    session.finish(name, result)
}

async fn dispatch(session: &Session, settings: CommandSettings) -> Result<Exit, CommandError> {
    match settings {
        CommandSettings::Preflight(s) => preflight::run(session, s).await,
        CommandSettings::Apply(s) => apply::run(session, s).await,
        CommandSettings::Verify(s) => verify::run(session, s).await,
        CommandSettings::Bootstrap(s) => bootstrap::run(session, s).await,
        CommandSettings::Discover(s) => discover::run(session, s).await,
        CommandSettings::Sim(s) => sim::run(session, s).await,
        CommandSettings::Demo(s) => demo::run(session, s).await,
        CommandSettings::Completions(shell) => write_stdout(
            &crate::usage::completion_script(shell),
            "the completion script",
        ),
        CommandSettings::Man(subcommand) => match crate::usage::man_page(subcommand.as_deref()) {
            Ok(page) => write_stdout(&page, "the man page"),
            Err(e) => Err(CommandError::input(e)),
        },
        CommandSettings::CompleteNodes { talconfig, topf } => {
            let names = crate::inventory::completion_names(talconfig.as_deref(), topf.as_deref());
            write_stdout(names.join("\n").as_bytes(), "node names")
        }
    }
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
