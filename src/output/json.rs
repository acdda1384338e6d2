//! `--output json`: one JSON object per line on stdout.
//!
//! Events look like `{"type":"event","event":"step_started","node":"cp1",...}`;
//! the last line is the report (`{"type":"report","schema":"talstrap.report/v1",...}`).

use std::io::Write;
use std::sync::Mutex;

use serde::Serialize;

use super::{OutputSink, Report};
use crate::pipeline::{Event, EventSink};

pub(super) struct JsonSink {
    out: Mutex<std::io::Stdout>,
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
            out: Mutex::new(std::io::stdout()),
            started: std::time::Instant::now(),
        }
    }

    fn line(&self, value: &impl Serialize) {
        if let (Ok(text), Ok(mut out)) = (serde_json::to_string(value), self.out.lock()) {
            // A closed pipe (e.g. `| head`) must not crash the run.
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
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
