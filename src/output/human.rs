//! Output for people: live per-node lines on a terminal, or plain
//! line-oriented text when stdout is not a terminal (CI logs, pipes).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{OutputConfig, OutputSink, Report, render_report_text};
use crate::duration::format_duration;
use crate::pipeline::{Event, EventSink, NodeRef, NodeStatus, StepStatus};

/// `cp1 (127.0.0.11)`, or just the address when the node has no other
/// name (discover).
fn label(node: &NodeRef) -> String {
    if node.node == node.ip.to_string() {
        node.node.clone()
    } else {
        format!("{} ({})", node.node, node.ip)
    }
}

/// `text` cut to `width` columns with an ellipsis, so a cut line says so.
fn fit(text: &str, width: usize) -> String {
    if console::measure_text_width(text) <= width {
        text.to_string()
    } else {
        console::truncate_str(text, width, "…").into_owned()
    }
}

/// The first line of a run: `apply: 5 nodes, up to 2 at a time`, or `all at
/// once` when the limit is no limit (waiting watches every node at once).
fn run_words(command: &str, nodes: usize, parallel: usize) -> String {
    let s = if nodes == 1 { "" } else { "s" };
    if parallel >= nodes {
        format!("{command}: {nodes} node{s}, all at once")
    } else {
        format!("{command}: {nodes} node{s}, up to {parallel} at a time")
    }
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

/// Text for people: on stdout, or on stderr once stdout carries data.
fn write_for_people(to_stderr: &AtomicBool, text: &str) {
    if to_stderr.load(Ordering::Relaxed) {
        let mut err = std::io::stderr().lock();
        let _ = std::io::Write::write_all(&mut err, text.as_bytes());
        let _ = std::io::Write::flush(&mut err);
    } else {
        super::stdout::write(text.as_bytes());
    }
}

/// Plain lines on stdout, one per event worth a line.
pub(super) struct PlainSink {
    cfg: OutputConfig,
    /// Everything for people goes to stderr (stdout carries data).
    to_stderr: AtomicBool,
}

impl PlainSink {
    pub(super) fn new(cfg: OutputConfig) -> Self {
        PlainSink {
            cfg,
            to_stderr: AtomicBool::new(false),
        }
    }

    fn write(&self, text: &str) {
        write_for_people(&self.to_stderr, text);
    }

    fn line(&self, text: &str) {
        self.write(&format!("{text}\n"));
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
                self.line(&run_words(&command, nodes, parallel));
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
                    super::summary_words(&outcome)
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
        self.write(&render_report_text(report, &self.cfg));
    }

    fn text(&self, text: &str) {
        self.line(text);
    }

    fn people_to_stderr(&self) {
        self.to_stderr.store(true, Ordering::Relaxed);
    }
}

fn new_multi() -> MultiProgress {
    MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(12))
}

/// Live per-node lines on a terminal (stderr), summary table on stdout.
pub(super) struct LiveSink {
    cfg: OutputConfig,
    /// The summary and text go to stderr too (stdout carries data).
    to_stderr: AtomicBool,
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
            to_stderr: AtomicBool::new(false),
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

    fn write(&self, text: &str) {
        write_for_people(&self.to_stderr, text);
    }
}

impl EventSink for LiveSink {
    fn emit(&self, event: Event) {
        match event {
            Event::RunStarted {
                command,
                nodes,
                parallel,
            } => {
                // A new run (apply --wait's wait, the demo's next stage):
                // its nodes get fresh live lines below the finished ones.
                self.finish();
                self.println(&run_words(&command, nodes, parallel));
            }
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
                    let line = format!(
                        "{} {}: {}{err}",
                        status_mark(outcome.status),
                        outcome.status.label(),
                        super::summary_words(&outcome)
                    );
                    // The prefix takes 30 columns and a space; the full
                    // error stays in the summary table.
                    let room = (self.cfg.width as usize).saturating_sub(31);
                    pb.finish_with_message(fit(&line, room));
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
        self.write(&render_report_text(report, &self.cfg));
    }

    fn text(&self, text: &str) {
        self.finish();
        self.write(&format!("{text}\n"));
    }

    fn people_to_stderr(&self) {
        self.to_stderr.store(true, Ordering::Relaxed);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_end_in_an_ellipsis_within_the_width() {
        let line = "✗ failed: apply: the node refused the config: invalid machine.install.disk";
        let cut = fit(line, 40);
        assert_eq!(console::measure_text_width(&cut), 40, "{cut}");
        assert!(
            cut.ends_with('…') && cut.starts_with("✗ failed: apply"),
            "{cut}"
        );
        assert_eq!(fit("✓ ok: ready", 40), "✓ ok: ready");
    }

    fn outcome(node: &NodeRef) -> crate::pipeline::NodeOutcome {
        crate::pipeline::NodeOutcome {
            node: node.clone(),
            status: NodeStatus::Ok,
            summary: "applied".into(),
            attempts: 1,
            duration_ms: 1,
            steps: Vec::new(),
            error: None,
            hint: None,
            warnings: Vec::new(),
            facts: serde_json::Map::new(),
        }
    }

    /// apply --wait: after the apply run finished a node's line, the wait
    /// run gives it a new, live (spinning, timed) line instead of updating
    /// the finished one, which never redraws.
    #[test]
    fn a_new_run_gets_live_lines_again() {
        let sink = LiveSink::new(OutputConfig {
            format: crate::cli::OutputFormat::Human,
            live: true,
            color: false,
            quiet: false,
            verbose: 0,
            width: 80,
        });
        let node = NodeRef::new("cp1", "127.0.0.1".parse().unwrap(), None);
        let run = |command: &str| Event::RunStarted {
            command: command.into(),
            nodes: 1,
            parallel: 1,
        };
        sink.emit(run("apply"));
        sink.emit(Event::StepStarted {
            node: node.clone(),
            step: "apply".into(),
        });
        sink.emit(Event::NodeFinished {
            outcome: Box::new(outcome(&node)),
        });
        assert!(sink.bar(&node).unwrap().is_finished());
        sink.emit(run("apply --wait"));
        sink.emit(Event::StepStarted {
            node: node.clone(),
            step: "verify".into(),
        });
        let bar = sink.bar(&node).unwrap();
        assert!(!bar.is_finished(), "the wait shows a live line");
        assert_eq!(bar.message(), "verify …");
    }

    #[test]
    fn labels_and_run_lines_read_well() {
        let ip = "127.0.0.5".parse().unwrap();
        assert_eq!(label(&NodeRef::new("127.0.0.5", ip, None)), "127.0.0.5");
        assert_eq!(label(&NodeRef::new("cp1", ip, None)), "cp1 (127.0.0.5)");
        assert_eq!(
            run_words("apply", 5, 2),
            "apply: 5 nodes, up to 2 at a time"
        );
        assert_eq!(
            run_words("apply --wait", 5, 512),
            "apply --wait: 5 nodes, all at once"
        );
        assert_eq!(run_words("verify", 1, 512), "verify: 1 node, all at once");
    }
}
