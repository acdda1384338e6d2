//! Progress events the pipelines emit while they run.
//!
//! The pipeline only describes what happens; `output` decides how it looks
//! (progress bars, plain lines or JSON objects).

use serde::Serialize;

use super::outcome::{NodeOutcome, NodeRef, StepStatus};

/// Something worth telling the operator while a run is in progress.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(crate) enum Event {
    /// A command started working on `nodes` nodes.
    RunStarted {
        command: String,
        nodes: usize,
        parallel: usize,
    },
    /// A step of a node started (first attempt).
    StepStarted {
        #[serde(flatten)]
        node: NodeRef,
        step: String,
    },
    /// A step attempt failed with a transient error and will be retried.
    StepRetry {
        #[serde(flatten)]
        node: NodeRef,
        step: String,
        attempt: u32,
        delay_ms: u64,
        error: String,
    },
    /// A step ended.
    StepFinished {
        #[serde(flatten)]
        node: NodeRef,
        step: String,
        status: StepStatus,
        attempts: u32,
        duration_ms: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// A change seen while waiting (stage change, etcd state, ...).
    Progress {
        #[serde(flatten)]
        node: NodeRef,
        step: String,
        message: String,
    },
    /// A node's pipeline ended.
    NodeFinished { outcome: Box<NodeOutcome> },
    /// A warning, about a node or about the run.
    Warning {
        #[serde(skip_serializing_if = "Option::is_none")]
        node: Option<String>,
        message: String,
    },
    /// A run-level note ("elected 127.0.0.2", "cluster already bootstrapped", ...).
    Info { message: String },
}

/// Receives events; implemented by the output formats.
pub(crate) trait EventSink: Send + Sync {
    fn emit(&self, event: Event);
}

/// A sink that keeps every event (tests).
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct RecordingSink {
    events: std::sync::Mutex<Vec<Event>>,
}

#[cfg(test)]
impl RecordingSink {
    pub(crate) fn events(&self) -> Vec<Event> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
impl EventSink for RecordingSink {
    fn emit(&self, event: Event) {
        if let Ok(mut e) = self.events.lock() {
            e.push(event);
        }
    }
}
