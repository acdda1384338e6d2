//! What every command shares: output, the run context (parallelism,
//! deadline, retry policy), Ctrl-C handling and the error → exit mapping.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio_util::sync::CancellationToken;

use crate::exit::Exit;
use crate::output::{Output, stdout};
use crate::pipeline::{RetryPolicy, RunContext};
use crate::settings::{GlobalSettings, InventorySettings, PacingSettings};

use super::plan::Plan;

/// A command-level failure (not a node's): decides the exit code.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CommandError {
    /// Bad input or usage: nothing was contacted.
    #[error("{0}")]
    Input(String),
    /// The command's `--timeout` ran out before it got as far as node
    /// outcomes (e.g. an election that never settled): exit code 3, as for
    /// nodes that timed out.
    #[error("{0}")]
    Deadline(String),
    /// Anything else that ended the command early.
    #[error("{0:#}")]
    Runtime(anyhow::Error),
}

impl CommandError {
    pub(crate) fn input(msg: impl std::fmt::Display) -> Self {
        CommandError::Input(msg.to_string())
    }

    pub(crate) fn deadline(msg: impl std::fmt::Display) -> Self {
        CommandError::Deadline(msg.to_string())
    }

    /// The exit status this error ends the run with (`interrupted`: Ctrl-C
    /// was pressed before it).
    pub(crate) fn exit(&self, interrupted: bool) -> Exit {
        match self {
            CommandError::Input(_) => Exit::Input,
            _ if interrupted => Exit::Interrupted,
            CommandError::Deadline(_) => Exit::Deadline,
            CommandError::Runtime(_) => Exit::NodeFailure,
        }
    }
}

/// One command invocation's shared state. Building it has no side
/// effects; [`Session::start`] installs the process-wide parts.
pub(crate) struct Session {
    pub(crate) global: GlobalSettings,
    pub output: Arc<Output>,
    pub cancel: CancellationToken,
    started: std::time::Instant,
    deadline: Option<tokio::time::Instant>,
}

impl Session {
    pub(crate) fn new(global: &GlobalSettings) -> Self {
        Session {
            global: global.clone(),
            output: Arc::new(Output::new(global.output)),
            cancel: CancellationToken::new(),
            started: std::time::Instant::now(),
            deadline: global.timeout.map(|t| tokio::time::Instant::now() + t),
        }
    }

    /// What the process needs once before a command runs: Ctrl-C and
    /// SIGTERM handling for this session, and (many nodes at once means many
    /// sockets) the hard open-file limit as the soft one.
    pub(crate) fn start(&self) {
        spawn_signal_handler(self.cancel.clone());
        let _ = crate::discovery::rlimit::raise_nofile_soft_limit();
    }

    /// A session for one stage of a multi-command run (demo): the same
    /// output, Ctrl-C and deadline, its own clock, nodes on `port`.
    pub(crate) fn stage(&self, port: u16) -> Session {
        Session {
            global: GlobalSettings {
                port,
                ..self.global.clone()
            },
            output: self.output.clone(),
            cancel: self.cancel.clone(),
            started: std::time::Instant::now(),
            deadline: self.deadline,
        }
    }

    /// Time since the command (or the demo stage) started.
    pub(crate) fn elapsed(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// The Talos API port (`--port`, or the simulator's in a demo stage).
    pub(crate) fn port(&self) -> u16 {
        self.global.port
    }

    /// Parallelism after `--serial`.
    pub(crate) fn parallel(&self) -> usize {
        self.global.parallel
    }

    pub(crate) fn deadline(&self) -> Option<tokio::time::Instant> {
        self.deadline
    }

    /// Loads and validates the inputs ([`Plan::build`]) on a blocking
    /// thread, within `--timeout` and until Ctrl-C: a `sops -d` that never
    /// returns, or a slow disk, cannot hold the command past either. When
    /// the command gives up, the loader is told to stop (and kills `sops`).
    pub(crate) async fn plan(
        &self,
        inv: &InventorySettings,
        pacing: &PacingSettings,
    ) -> Result<Plan, CommandError> {
        let stop = Arc::new(AtomicBool::new(false));
        let (inv, pacing, flag) = (inv.clone(), pacing.clone(), stop.clone());
        let at = (self.port(), self.parallel());
        let load = tokio::task::spawn_blocking(move || Plan::build_until(&inv, &pacing, at, flag));
        let deadline = async {
            match self.deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let gave_up = tokio::select! {
            done = load => {
                return done.map_err(|e| CommandError::Runtime(anyhow::anyhow!("loading the inputs: {e}")))?;
            }
            () = deadline => "--timeout reached while reading the inputs (talconfig, env files, machine configs, talosconfig)",
            () = self.cancel.cancelled() => "interrupted while reading the inputs",
        };
        stop.store(true, Ordering::SeqCst);
        Err(CommandError::deadline(format!(
            "{gave_up}; no node was contacted"
        )))
    }

    /// The run context for a pipeline.
    pub(crate) fn run_context(&self, retry: RetryPolicy) -> RunContext {
        RunContext {
            parallel: self.parallel(),
            deadline: self.deadline,
            cancel: self.cancel.clone(),
            retry,
            sink: self.output.events(),
        }
    }

    /// Map the command's result to an exit status, printing command-level
    /// errors (on stderr, and as a report line with `-o json` so a CI step
    /// reading stdout sees why the run ended).
    pub(crate) fn finish(&self, command: &str, result: Result<Exit, CommandError>) -> Exit {
        self.output.finish();
        let exit = self.finish_result(command, result);
        match crate::output::stdout::failure() {
            // The report never reached its reader: a run that went well is
            // not reported as such.
            Some(why) => {
                stdout::error_line(&format!(
                    "error: writing to stdout failed ({why}): the output of this run is incomplete"
                ));
                exit.max(Exit::NodeFailure)
            }
            None => exit,
        }
    }

    fn finish_result(&self, command: &str, result: Result<Exit, CommandError>) -> Exit {
        match result {
            Ok(exit) => exit,
            Err(err) => {
                // A demo stage that ended the demo: this report is the run's.
                let _ = self.output.end_stages();
                stdout::error_line(&format!("error: {err}"));
                let exit = err.exit(self.cancel.is_cancelled());
                if self.output.config().format == crate::cli::OutputFormat::Json {
                    let report =
                        crate::output::Report::new(command, Vec::new(), self.elapsed(), Some(exit))
                            .with_messages(vec![format!("error: {err}")]);
                    self.output.report(&report);
                }
                exit
            }
        }
    }
}

/// First Ctrl-C (or SIGTERM): stop starting new work and let the command
/// report. Second: exit at once with the interrupted code.
fn spawn_signal_handler(cancel: CancellationToken) {
    static SEEN: AtomicBool = AtomicBool::new(false);
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    handle.spawn(async move {
        #[cfg(unix)]
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        loop {
            #[cfg(unix)]
            let got = tokio::select! {
                r = tokio::signal::ctrl_c() => r.is_ok(),
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; }, None => std::future::pending::<()>().await } } => true,
            };
            #[cfg(not(unix))]
            let got = tokio::signal::ctrl_c().await.is_ok();
            if !got {
                return;
            }
            if SEEN.swap(true, Ordering::SeqCst) {
                stdout::error_line("\ninterrupted again: exiting now");
                std::process::exit(Exit::Interrupted.code());
            }
            stdout::error_line("\ninterrupt: finishing requests already sent, starting nothing new (Ctrl-C again to exit now)");
            cancel.cancel();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_errors_map_to_their_exit_codes() {
        assert_eq!(CommandError::input("bad").exit(false), Exit::Input);
        // Bad input is reported as such even after Ctrl-C.
        assert_eq!(CommandError::input("bad").exit(true), Exit::Input);
        assert_eq!(CommandError::deadline("late").exit(false), Exit::Deadline);
        assert_eq!(CommandError::deadline("late").exit(true), Exit::Interrupted);
        let rt = CommandError::Runtime(anyhow::anyhow!("boom"));
        assert_eq!(rt.exit(false), Exit::NodeFailure);
        assert_eq!(rt.exit(true), Exit::Interrupted);
        let chained = CommandError::Runtime(anyhow::anyhow!("inner").context("outer"));
        assert_eq!(chained.to_string(), "outer: inner");
    }
}
