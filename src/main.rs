//! The `talstrap` binary: parse, set up logging, run, map the outcome to an
//! exit code. Everything else lives in the library.

use clap::Parser;
use tracing_subscriber::EnvFilter;

use talstrap::Cli;

fn main() {
    // talosctl habits: `talstrap -n cp1 verify` means `talstrap verify -n cp1`.
    let argv = talstrap::normalize_args(std::env::args_os().collect());
    let cli = match Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(e) => std::process::exit(talstrap::usage_error(e, &argv)),
    };
    init_logging(cli.global.verbose, cli.global.quiet, cli.global.no_color);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let exit = runtime.block_on(talstrap::run(cli));
    // Do not wait for lingering connections of nodes that stopped answering.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    std::process::exit(exit.code());
}

/// Logs go to stderr. `-v` debug, `-vv` trace, `RUST_LOG` overrides. Log
/// lines never carry config contents, keys or tokens (see the talos layer).
fn init_logging(verbose: u8, quiet: bool, no_color: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "talstrap=debug,warn",
        (false, _) => "talstrap=trace,info",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let ansi = !no_color
        && std::env::var_os("NO_COLOR").is_none()
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .try_init();
}
