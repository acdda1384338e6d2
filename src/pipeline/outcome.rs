//! What each node reached: the outcome record every command reports, and the
//! error type steps return.
//!
//! A step error carries its class (retryable, permanent, trust, input) so the
//! runner can decide to retry without knowing anything about gRPC; the
//! protocol layer's errors are mapped into it at the command edge.

use std::net::IpAddr;

use serde::Serialize;

/// Final state of one node in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    /// Reached the goal.
    Ok,
    /// Nothing to do (already in the desired state); counts as success.
    Skipped,
    /// Reached the goal with something the operator should look at.
    Warning,
    /// Did not reach the goal.
    Failed,
    /// The command's deadline ran out first.
    TimedOut,
    /// Stopped by Ctrl-C before finishing (or before starting).
    Interrupted,
}

impl NodeStatus {
    /// Whether this outcome counts as success for the exit code.
    pub fn is_success(self) -> bool {
        matches!(
            self,
            NodeStatus::Ok | NodeStatus::Skipped | NodeStatus::Warning
        )
    }

    /// Short word used in tables and plain output.
    pub fn label(self) -> &'static str {
        match self {
            NodeStatus::Ok => "ok",
            NodeStatus::Skipped => "skipped",
            NodeStatus::Warning => "warning",
            NodeStatus::Failed => "failed",
            NodeStatus::TimedOut => "timed out",
            NodeStatus::Interrupted => "interrupted",
        }
    }
}

/// Why a step failed, as far as retrying and reporting are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Transient (unavailable, refused, reset, deadline of one attempt): retried.
    Retryable,
    /// Will not change by retrying (unimplemented, not found, wrong state).
    Permanent,
    /// TLS trust or authorization failure: never retried.
    Trust,
    /// The node rejected our input (invalid config): never retried.
    Input,
    /// The command's overall deadline ran out.
    Deadline,
    /// Ctrl-C.
    Interrupted,
    /// The node stopped making progress (same state for too long).
    Stuck,
}

/// A failed step: class, one-line message, and an optional hint for the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepError {
    pub kind: ErrorKind,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// gRPC status code name when the error came from a node (e.g. "Unavailable").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl StepError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        StepError {
            kind,
            message: message.into(),
            hint: None,
            code: None,
        }
    }
    pub fn retryable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Retryable, message)
    }
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Permanent, message)
    }
    pub fn stuck(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Stuck, message)
    }
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }
    /// Same error, but permanent (e.g. a retryable error that ran out of attempts).
    pub fn into_kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }
    pub fn is_retryable(&self) -> bool {
        self.kind == ErrorKind::Retryable
    }
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StepError {}

/// Final state of one step of a node's pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Ok,
    Skipped,
    Warning,
    Failed,
    Interrupted,
}

/// One step as it ended, for the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepRecord {
    pub name: String,
    pub status: StepStatus,
    pub attempts: u32,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Who a node is, as shown to the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeRef {
    /// Hostname from the inventory (or the IP when there is none).
    pub node: String,
    pub ip: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

impl NodeRef {
    pub fn new(node: impl Into<String>, ip: IpAddr, role: Option<String>) -> Self {
        NodeRef {
            node: node.into(),
            ip,
            role,
        }
    }
}

/// Everything the report says about one node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeOutcome {
    #[serde(flatten)]
    pub node: NodeRef,
    pub status: NodeStatus,
    /// One line: what happened ("applied (auto → reboot)", "ready for bootstrap", ...).
    pub summary: String,
    /// Attempts of the step that needed the most.
    pub attempts: u32,
    pub duration_ms: u64,
    pub steps: Vec<StepRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<StepError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Command-specific facts (mode, stage, version, disks, ...).
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub facts: serde_json::Map<String, serde_json::Value>,
}

impl NodeOutcome {
    /// The name of the last step this node was in (for interrupted/timed-out reports).
    pub fn last_step(&self) -> Option<&str> {
        self.steps.last().map(|s| s.name.as_str())
    }
}
