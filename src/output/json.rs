//! `--output json`: one JSON object per line on stdout.
//!
//! Events look like `{"type":"event","event":"step_started","node":"cp1",...}`;
//! the last line is the report (`{"type":"report","schema":"talstrap.report/v1",...}`).
//! The contract (README "JSON output", `schema/events-v1.json`,
//! `schema/report-v1.json`): exactly one report per invocation, last; every
//! other line is an event. Node events carry `run`, the `command` of the
//! `run_started` they belong to (`apply --wait` has two runs: `apply`, then
//! `apply --wait`). Free text for people becomes an `info` event.

use std::sync::Mutex;

use serde::Serialize;

use super::{OutputSink, Report};
use crate::pipeline::{Event, EventSink};

pub(super) struct JsonSink {
    started: std::time::Instant,
    /// The `command` of the latest `run_started`.
    run: Mutex<Option<String>>,
}

#[derive(Serialize)]
struct EventLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    /// Milliseconds since the command started.
    t_ms: u64,
    /// The run (a `run_started` command) a node event belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    run: Option<String>,
    #[serde(flatten)]
    event: &'a Event,
}

/// A finished stage of `demo`: its report, nested in an event, so that the
/// invocation still ends with exactly one report.
#[derive(Serialize)]
struct StageLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    t_ms: u64,
    event: &'static str,
    report: &'a Report,
}

impl JsonSink {
    pub(super) fn new() -> Self {
        JsonSink {
            started: std::time::Instant::now(),
            run: Mutex::new(None),
        }
    }

    fn t_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn line(&self, value: &impl Serialize) {
        if let Ok(text) = serde_json::to_string(value) {
            super::stdout::line(&text);
        }
    }
}

impl EventSink for JsonSink {
    fn emit(&self, event: Event) {
        let run = match &event {
            Event::RunStarted { command, .. } => {
                if let Ok(mut r) = self.run.lock() {
                    *r = Some(command.clone());
                }
                None
            }
            Event::StepStarted { .. }
            | Event::StepRetry { .. }
            | Event::StepFinished { .. }
            | Event::Progress { .. }
            | Event::NodeFinished { .. } => self.run.lock().ok().and_then(|r| r.clone()),
            _ => None,
        };
        self.line(&EventLine {
            kind: "event",
            t_ms: self.t_ms(),
            run,
            event: &event,
        });
    }
}

impl OutputSink for JsonSink {
    fn report(&self, report: &Report) {
        self.line(report);
    }

    fn text(&self, text: &str) {
        let message = text.trim();
        if !message.is_empty() {
            self.emit(Event::Info {
                message: message.to_string(),
            });
        }
    }

    fn stage_report(&self, report: &Report) {
        self.line(&StageLine {
            kind: "event",
            t_ms: self.t_ms(),
            event: "stage_finished",
            report,
        });
    }
}
