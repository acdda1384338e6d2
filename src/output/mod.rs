//! How results look: one place decides.
//!
//! Three renderings of the same events and report:
//! - **human on a terminal**: a live line per node (indicatif) on stderr and
//!   a summary table on stdout;
//! - **plain** (human, but stdout is not a terminal: CI logs, pipes): one
//!   line per event, no cursor tricks, no colour;
//! - **json**: one JSON object per line on stdout (events, then a report with
//!   a `schema` version); logs stay on stderr.

mod human;
mod json;
mod report;
pub(crate) mod stdout;
mod table;

use std::io::IsTerminal;
use std::sync::Arc;

pub use report::{REPORT_SCHEMA, Report};
pub use table::render_report_text;

use crate::cli::OutputFormat;
use crate::pipeline::EventSink;

/// Resolved output settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputConfig {
    pub format: OutputFormat,
    /// Live progress (only on a terminal, human format).
    pub live: bool,
    pub color: bool,
    pub quiet: bool,
    pub verbose: u8,
    /// Width for tables.
    pub width: u16,
}

impl OutputConfig {
    /// Decide from flags, `NO_COLOR` and whether stdout/stderr are terminals.
    pub fn detect(format: Option<OutputFormat>, no_color: bool, quiet: bool, verbose: u8) -> Self {
        let stdout_tty = std::io::stdout().is_terminal();
        let stderr_tty = std::io::stderr().is_terminal();
        let format = format.unwrap_or(OutputFormat::Human);
        let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let width = terminal_width().unwrap_or(100).clamp(60, 200);
        OutputConfig {
            format,
            live: format == OutputFormat::Human && stderr_tty && stdout_tty && !quiet,
            color: format == OutputFormat::Human && stdout_tty && !no_color && !no_color_env,
            quiet,
            verbose,
            width: if stdout_tty { width } else { 120 },
        }
    }
}

/// `COLUMNS` when set (tests, scripts), else the terminal's own width.
fn terminal_width() -> Option<u16> {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .or_else(|| console::Term::stdout().size_checked().map(|(_, w)| w))
}

/// A node's summary as people read it: with the state it was last seen in
/// when Ctrl-C or the deadline stopped it ("…, last seen: installing").
pub(crate) fn summary_words(o: &crate::pipeline::NodeOutcome) -> String {
    match o
        .facts
        .get(crate::pipeline::LAST_SEEN)
        .and_then(|v| v.as_str())
    {
        Some(seen) => format!("{}, last seen: {seen}", o.summary),
        None => o.summary.clone(),
    }
}

/// The output of one command run: an event sink while it runs, a report at the end.
pub(crate) struct Output {
    config: OutputConfig,
    sink: Arc<dyn OutputSink>,
    /// In a multi-stage run (demo) every report but the last is a stage's.
    staged: std::sync::atomic::AtomicBool,
    last: std::sync::Mutex<Option<Report>>,
}

/// An event sink that can also render the final report.
pub(crate) trait OutputSink: EventSink {
    fn report(&self, report: &Report);
    /// A free-form block for people (e.g. the discover skeleton, the demo's next steps).
    fn text(&self, text: &str);
    /// Stop live drawing (before printing anything else).
    fn finish(&self) {}
    /// The report of one stage of a multi-stage run (demo); JSON nests it in
    /// a `stage_finished` event, people see it as any report.
    fn stage_report(&self, report: &Report) {
        self.report(report);
    }
    /// From now on, everything for people goes to stderr: stdout carries
    /// data only (`discover --skeleton > nodes.yaml`).
    fn people_to_stderr(&self) {}
}

impl Output {
    pub(crate) fn new(config: OutputConfig) -> Self {
        let sink: Arc<dyn OutputSink> = match config.format {
            OutputFormat::Json => Arc::new(json::JsonSink::new()),
            OutputFormat::Human if config.live => Arc::new(human::LiveSink::new(config)),
            OutputFormat::Human => Arc::new(human::PlainSink::new(config)),
        };
        Output {
            config,
            sink,
            staged: std::sync::atomic::AtomicBool::new(false),
            last: std::sync::Mutex::new(None),
        }
    }

    /// Reports from now on are stages of one run ([`Output::end_stages`]
    /// prints the run's own).
    pub(crate) fn begin_stages(&self) {
        self.staged.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Back to one report per run; returns the last stage's report.
    pub(crate) fn end_stages(&self) -> Option<Report> {
        self.staged
            .store(false, std::sync::atomic::Ordering::SeqCst);
        self.last.lock().ok().and_then(|mut l| l.take())
    }

    pub(crate) fn config(&self) -> OutputConfig {
        self.config
    }

    /// The sink the pipelines emit to.
    pub(crate) fn events(&self) -> Arc<dyn EventSink> {
        let s: Arc<dyn OutputSink> = self.sink.clone();
        upcast(s)
    }

    pub(crate) fn report(&self, report: &Report) {
        self.sink.finish();
        if self.staged.load(std::sync::atomic::Ordering::SeqCst) {
            self.sink.stage_report(report);
            if let Ok(mut l) = self.last.lock() {
                *l = Some(report.clone());
            }
        } else {
            self.sink.report(report);
        }
    }

    pub(crate) fn text(&self, text: &str) {
        self.sink.text(text);
    }

    /// Keep stdout for data: progress, tables and text go to stderr.
    pub(crate) fn people_to_stderr(&self) {
        self.sink.people_to_stderr();
    }

    /// Data for stdout as it is (YAML a user redirects to a file).
    pub(crate) fn data(&self, text: &str) {
        self.sink.finish();
        stdout::write(text.as_bytes());
    }

    pub(crate) fn finish(&self) {
        self.sink.finish();
    }
}

fn upcast(s: Arc<dyn OutputSink>) -> Arc<dyn EventSink> {
    s
}
