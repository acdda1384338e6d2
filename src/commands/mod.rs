//! One file per subcommand. Each wires inventory → plan → pipeline →
//! outcomes → output; none of them speaks gRPC directly.

mod common;

pub use common::{CommandError, Session};

use crate::cli::{Cli, Command};
use crate::exit::Exit;

/// Run the parsed command line; returns how the run ended.
pub async fn run(cli: Cli) -> Exit {
    let session = Session::new(&cli.global);
    let result = match cli.command {
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "talstrap", &mut std::io::stdout());
            Ok(Exit::Success)
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            match clap_mangen::Man::new(cmd).render(&mut std::io::stdout()) {
                Ok(()) => Ok(Exit::Success),
                Err(e) => Err(CommandError::Runtime(anyhow::anyhow!("writing the man page: {e}"))),
            }
        }
        _ => Err(CommandError::Runtime(anyhow::anyhow!("not implemented yet"))),
    };
    session.finish(result)
}
