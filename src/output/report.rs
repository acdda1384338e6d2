//! The final report of a run: the last JSON object in `--output json`, and
//! the source of the summary table.

use serde::Serialize;

use crate::exit::Exit;
use crate::pipeline::{NodeOutcome, NodeStatus};

/// Version of the JSON report shape. Bumped on incompatible changes.
pub const REPORT_SCHEMA: &str = "talstrap.report/v1";

/// Counts per node status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub total: usize,
    pub ok: usize,
    pub skipped: usize,
    pub warning: usize,
    pub failed: usize,
    pub timed_out: usize,
    pub interrupted: usize,
}

/// Everything a run produced, for people and for machines.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub schema: &'static str,
    pub command: String,
    pub status: Exit,
    pub exit_code: i32,
    pub duration_ms: u64,
    pub summary: Counts,
    pub nodes: Vec<NodeOutcome>,
    /// Run-level conclusions ("cluster already bootstrapped: cp2 has etcd", ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<String>,
    /// Command-specific results (bootstrap target, election, kubeconfig path, scan stats, ...).
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
}

impl Report {
    /// Build a report; the exit status follows from the node outcomes unless
    /// `overall` says worse (a run-level failure such as a refused election).
    pub fn new(
        command: &str,
        nodes: Vec<NodeOutcome>,
        duration: std::time::Duration,
        overall: Option<Exit>,
    ) -> Self {
        let mut counts = Counts {
            total: nodes.len(),
            ..Counts::default()
        };
        for n in &nodes {
            match n.status {
                NodeStatus::Ok => counts.ok += 1,
                NodeStatus::Skipped => counts.skipped += 1,
                NodeStatus::Warning => counts.warning += 1,
                NodeStatus::Failed => counts.failed += 1,
                NodeStatus::TimedOut => counts.timed_out += 1,
                NodeStatus::Interrupted => counts.interrupted += 1,
            }
        }
        let from_nodes = if counts.interrupted > 0 {
            Exit::Interrupted
        } else if counts.timed_out > 0 {
            Exit::Deadline
        } else if counts.failed > 0 {
            Exit::NodeFailure
        } else {
            Exit::Success
        };
        let status = match overall {
            Some(o) => o.max(from_nodes),
            None => from_nodes,
        };
        Report {
            kind: "report",
            schema: REPORT_SCHEMA,
            command: command.to_string(),
            status,
            exit_code: status.code(),
            duration_ms: duration.as_millis() as u64,
            summary: counts,
            nodes,
            messages: Vec::new(),
            details: serde_json::Value::Null,
        }
    }

    pub fn with_messages(mut self, messages: Vec<String>) -> Self {
        self.messages = messages;
        self
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }

    pub fn exit(&self) -> Exit {
        self.status
    }
}
