//! `--output json`: one JSON object per line on stdout.
//!
//! Events look like `{"type":"event","event":"step_started","node":"cp1",...}`;
//! the last line is the report (`{"type":"report","schema":"talstrap.report/v1",...}`).

use serde::Serialize;

use super::{OutputSink, Report};
use crate::pipeline::{Event, EventSink};

pub(super) struct JsonSink {
    started: std::time::Instant,
}

#[derive(Serialize)]
struct EventLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    /// Milliseconds since the command started.
    t_ms: u64,
    #[serde(flatten)]
    event: &'a Event,
}

#[derive(Serialize)]
struct TextLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
}

impl JsonSink {
    pub(super) fn new() -> Self {
        JsonSink {
            started: std::time::Instant::now(),
        }
    }

    fn line(&self, value: &impl Serialize) {
        if let Ok(text) = serde_json::to_string(value) {
            super::stdout::line(&text);
        }
    }
}

impl EventSink for JsonSink {
    fn emit(&self, event: Event) {
        self.line(&EventLine {
            kind: "event",
            t_ms: self.started.elapsed().as_millis() as u64,
            event: &event,
        });
    }
}

impl OutputSink for JsonSink {
    fn report(&self, report: &Report) {
        self.line(report);
    }

    fn text(&self, text: &str) {
        self.line(&TextLine { kind: "text", text });
    }
}
