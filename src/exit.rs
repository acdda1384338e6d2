//! Process exit codes: one place, documented in the README.

use serde::Serialize;

/// How a run ended, from the caller's point of view (CI reads this).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Exit {
    /// Every node reached its goal (skipped-as-already-done counts as success).
    Success,
    /// At least one node failed; the others were still worked on and reported.
    NodeFailure,
    /// Bad input or usage; no node was contacted.
    Input,
    /// The command's `--timeout` ran out before every node finished.
    Deadline,
    /// Interrupted (Ctrl-C / SIGTERM): no new work was started after the signal.
    Interrupted,
}

impl Exit {
    /// The numeric process exit code.
    pub fn code(self) -> i32 {
        match self {
            Exit::Success => 0,
            Exit::NodeFailure => 1,
            Exit::Input => 2,
            Exit::Deadline => 3,
            Exit::Interrupted => 130,
        }
    }
}
