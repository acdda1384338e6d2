//! Output for people: live per-node lines on a terminal, or plain
//! line-oriented text when stdout is not a terminal (CI logs, pipes).

use std::collections::HashMap;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{OutputConfig, OutputSink, Report, render_report_text};
use crate::duration::format_duration;
use crate::pipeline::{Event, EventSink, NodeRef, NodeStatus, StepStatus};

fn label(node: &NodeRef) -> String {
    format!("{} ({})", node.node, node.ip)
}

fn status_mark(status: NodeStatus) -> &'static str {
    match status {
        NodeStatus::Ok => "✓",
        NodeStatus::Skipped => "=",
        NodeStatus::Warning => "!",
        NodeStatus::Failed | NodeStatus::TimedOut => "✗",
        NodeStatus::Interrupted => "■",
    }
}

fn step_words(
    step: &str,
    status: StepStatus,
    attempts: u32,
    ms: u64,
    detail: Option<&str>,
) -> String {
    let took = format_duration(std::time::Duration::from_millis(ms));
    let tries = if attempts > 1 {
        format!(", {attempts} attempts")
    } else {
        String::new()
    };
    let word = match status {
        StepStatus::Ok => "ok",
        StepStatus::Skipped => "skipped",
        StepStatus::Warning => "warning",
        StepStatus::Failed => "failed",
        StepStatus::Interrupted => "interrupted",
    };
    match detail {
        Some(d) => format!("{step}: {word} ({took}{tries}): {d}"),
        None => format!("{step}: {word} ({took}{tries})"),
    }
}

/// Plain lines on stdout, one per event worth a line.
pub(super) struct PlainSink {
    cfg: OutputConfig,
}

impl PlainSink {
    pub(super) fn new(cfg: OutputConfig) -> Self {
        PlainSink { cfg }
    }

    fn line(&self, text: &str) {
        super::stdout::line(text);
    }
}

impl EventSink for PlainSink {
    fn emit(&self, event: Event) {
        let quiet = self.cfg.quiet;
        match event {
            Event::RunStarted {
                command,
                nodes,
                parallel,
            } if !quiet => {
                self.line(&format!(
                    "{command}: {nodes} node{}, up to {parallel} at a time",
                    if nodes == 1 { "" } else { "s" }
                ));
            }
            Event::StepStarted { node, step } if self.cfg.verbose > 0 && !quiet => {
                self.line(&format!("[{}] {step}: started", label(&node)));
            }
            Event::StepRetry {
                node,
                step,
                attempt,
                delay_ms,
                error,
            } if !quiet => {
                self.line(&format!(
                    "[{}] {step}: attempt {attempt} failed, retrying in {}: {error}",
                    label(&node),
                    format_duration(std::time::Duration::from_millis(delay_ms))
                ));
            }
            Event::StepFinished {
                node,
                step,
                status,
                attempts,
                duration_ms,
                detail,
            } if !quiet && (self.cfg.verbose > 0 || status != StepStatus::Ok) => {
                self.line(&format!(
                    "[{}] {}",
                    label(&node),
                    step_words(&step, status, attempts, duration_ms, detail.as_deref())
                ));
            }
            Event::Progress {
                node,
                step,
                message,
            } if !quiet => {
                self.line(&format!("[{}] {step}: {message}", label(&node)));
            }
            Event::NodeFinished { outcome } => {
                if quiet && outcome.status.is_success() {
                    return;
                }
                let err = outcome
                    .error
                    .as_ref()
                    .map(|e| format!(": {}", e.message))
                    .unwrap_or_default();
                self.line(&format!(
                    "[{}] {} {}: {}{err}",
                    label(&outcome.node),
                    status_mark(outcome.status),
                    outcome.status.label(),
                    outcome.summary
                ));
            }
            Event::Warning { node, message } => match node {
                Some(n) => self.line(&format!("warning: {n}: {message}")),
                None => self.line(&format!("warning: {message}")),
            },
            Event::Info { message } if !quiet => self.line(&message),
            _ => {}
        }
    }
}

impl OutputSink for PlainSink {
    fn report(&self, report: &Report) {
        self.line("");
        let text = render_report_text(report, &self.cfg);
        super::stdout::write(text.as_bytes());
    }

    fn text(&self, text: &str) {
        self.line(text);
    }
}

fn new_multi() -> MultiProgress {
    MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(12))
}

/// Live per-node lines on a terminal (stderr), summary table on stdout.
pub(super) struct LiveSink {
    cfg: OutputConfig,
    multi: Mutex<MultiProgress>,
    bars: Mutex<HashMap<String, ProgressBar>>,
    style: ProgressStyle,
}

impl LiveSink {
    pub(super) fn new(cfg: OutputConfig) -> Self {
        let style =
            ProgressStyle::with_template("{spinner:.cyan} {prefix:<28} {elapsed:>4} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner())
                .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ");
        LiveSink {
            cfg,
            multi: Mutex::new(new_multi()),
            bars: Mutex::new(HashMap::new()),
            style,
        }
    }

    fn bar(&self, node: &NodeRef) -> Option<ProgressBar> {
        let mut bars = self.bars.lock().ok()?;
        let key = format!("{}|{}", node.node, node.ip);
        Some(
            bars.entry(key)
                .or_insert_with(|| {
                    let pb = match self.multi.lock() {
                        Ok(m) => m.add(ProgressBar::new_spinner()),
                        Err(_) => ProgressBar::hidden(),
                    };
                    pb.set_style(self.style.clone());
                    pb.set_prefix(label(node));
                    pb.enable_steady_tick(std::time::Duration::from_millis(100));
                    pb
                })
                .clone(),
        )
    }

    fn println(&self, text: &str) {
        if let Ok(m) = self.multi.lock() {
            let _ = m.println(text);
        }
    }
}

impl EventSink for LiveSink {
    fn emit(&self, event: Event) {
        match event {
            Event::RunStarted {
                command,
                nodes,
                parallel,
            } => self.println(&format!(
                "{command}: {nodes} node{}, up to {parallel} at a time",
                if nodes == 1 { "" } else { "s" }
            )),
            Event::StepStarted { node, step } => {
                if let Some(pb) = self.bar(&node) {
                    pb.set_message(format!("{step} …"));
                }
            }
            Event::StepRetry {
                node,
                step,
                attempt,
                delay_ms,
                error,
            } => {
                if let Some(pb) = self.bar(&node) {
                    pb.set_message(format!(
                        "{step}: attempt {attempt} failed, retry in {} ({error})",
                        format_duration(std::time::Duration::from_millis(delay_ms))
                    ));
                }
            }
            Event::StepFinished {
                node,
                step,
                status,
                attempts,
                duration_ms,
                detail,
            } => {
                if let Some(pb) = self.bar(&node) {
                    pb.set_message(step_words(
                        &step,
                        status,
                        attempts,
                        duration_ms,
                        detail.as_deref(),
                    ));
                }
            }
            Event::Progress {
                node,
                step,
                message,
            } => {
                if let Some(pb) = self.bar(&node) {
                    pb.set_message(format!("{step}: {message}"));
                }
            }
            Event::NodeFinished { outcome } => {
                if let Some(pb) = self.bar(&outcome.node) {
                    let err = outcome
                        .error
                        .as_ref()
                        .map(|e| format!(": {}", e.message))
                        .unwrap_or_default();
                    pb.set_style(
                        ProgressStyle::with_template("{prefix:<30} {wide_msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    pb.finish_with_message(format!(
                        "{} {}: {}{err}",
                        status_mark(outcome.status),
                        outcome.status.label(),
                        outcome.summary
                    ));
                }
            }
            Event::Warning { node, message } => match node {
                Some(n) => self.println(&format!("warning: {n}: {message}")),
                None => self.println(&format!("warning: {message}")),
            },
            Event::Info { message } => self.println(&message),
        }
    }
}

impl OutputSink for LiveSink {
    fn report(&self, report: &Report) {
        self.finish();
        let text = render_report_text(report, &self.cfg);
        super::stdout::write(text.as_bytes());
    }

    fn text(&self, text: &str) {
        self.finish();
        super::stdout::line(text);
    }

    /// Freeze every line where it is and hand the terminal back: finished
    /// bars stay on screen, and later bars (the demo's next stage) start
    /// below whatever is printed next instead of redrawing over it.
    fn finish(&self) {
        if let Ok(mut bars) = self.bars.lock() {
            for pb in bars.values() {
                if !pb.is_finished() {
                    pb.abandon();
                }
            }
            bars.clear();
        }
        // A fresh MultiProgress: the old one keeps no claim on the lines it drew.
        if let Ok(mut m) = self.multi.lock() {
            *m = new_multi();
        }
    }
}
