//! The end-of-run summary: a comfy-table of node outcomes, then hints and
//! run-level messages, then one closing line.

use comfy_table::{Cell, Color, ContentArrangement, Table, presets};

use super::{OutputConfig, Report};
use crate::duration::format_duration;
use crate::exit::Exit;
use crate::pipeline::{NodeOutcome, NodeStatus};

fn status_cell(status: NodeStatus, color: bool) -> Cell {
    let cell = Cell::new(status.label());
    if !color {
        return cell;
    }
    match status {
        NodeStatus::Ok => cell.fg(Color::Green),
        NodeStatus::Skipped => cell.fg(Color::Cyan),
        NodeStatus::Warning => cell.fg(Color::Yellow),
        NodeStatus::Failed | NodeStatus::TimedOut => cell.fg(Color::Red),
        NodeStatus::Interrupted => cell.fg(Color::Magenta),
    }
}

/// One line per node: what it reached.
pub fn outcome_table(nodes: &[NodeOutcome], cfg: &OutputConfig) -> Table {
    let mut table = Table::new();
    table
        .load_style(if cfg.color {
            presets::UTF8_BORDERS_ONLY
        } else {
            presets::ASCII_BORDERS_ONLY_CONDENSED
        })
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(cfg.width)
        .set_header(vec![
            "NODE", "IP", "ROLE", "STATUS", "TRIES", "TIME", "RESULT",
        ]);
    if !cfg.color {
        table.force_no_tty();
    }
    for n in nodes {
        let mut result = n.summary.clone();
        if let Some(err) = &n.error {
            result = format!("{result}: {}", err.message);
        }
        table.add_row(vec![
            Cell::new(&n.node.node),
            Cell::new(n.node.ip.to_string()),
            Cell::new(n.node.role.as_deref().unwrap_or("-")),
            status_cell(n.status, cfg.color),
            Cell::new(n.attempts.to_string()),
            Cell::new(format_duration(std::time::Duration::from_millis(
                n.duration_ms,
            ))),
            Cell::new(result),
        ]);
    }
    table
}

fn exit_words(exit: Exit) -> &'static str {
    match exit {
        Exit::Success => "success",
        Exit::NodeFailure => "a node failed",
        Exit::Input => "bad input",
        Exit::Deadline => "deadline reached",
        Exit::Interrupted => "interrupted",
    }
}

/// The whole human report as text (table, hints, messages, closing line).
pub fn render_report_text(report: &Report, cfg: &OutputConfig) -> String {
    let mut out = String::new();
    if !report.nodes.is_empty() {
        out.push_str(&outcome_table(&report.nodes, cfg).to_string());
        out.push('\n');
    }
    for n in &report.nodes {
        if let Some(hint) = &n.hint
            && !n.status.is_success()
        {
            out.push_str(&format!("hint for {}: {hint}\n", n.node.node));
        }
        for w in &n.warnings {
            out.push_str(&format!("warning for {}: {w}\n", n.node.node));
        }
    }
    for m in &report.messages {
        out.push_str(m);
        out.push('\n');
    }
    let c = &report.summary;
    let mut parts = Vec::new();
    for (count, word) in [
        (c.ok, "ok"),
        (c.skipped, "skipped"),
        (c.warning, "warning"),
        (c.failed, "failed"),
        (c.timed_out, "timed out"),
        (c.interrupted, "interrupted"),
    ] {
        if count > 0 {
            parts.push(format!("{count} {word}"));
        }
    }
    let counts = if parts.is_empty() {
        String::new()
    } else {
        format!(": {}", parts.join(", "))
    };
    out.push_str(&format!(
        "{} {}{counts} · {} · exit {} ({})\n",
        report.command,
        plural(c.total, "node"),
        format_duration(std::time::Duration::from_millis(report.duration_ms)),
        report.exit_code,
        exit_words(report.status),
    ));
    out
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}
