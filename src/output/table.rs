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

/// One line per node: what it reached. Below 100 columns the IP and TRIES
/// columns go and roles are abbreviated, so RESULT keeps room to read.
pub(crate) fn outcome_table(nodes: &[NodeOutcome], cfg: &OutputConfig) -> Table {
    let narrow = cfg.width < 100;
    let mut table = Table::new();
    table
        .load_style(if cfg.color {
            presets::UTF8_BORDERS_ONLY
        } else {
            presets::ASCII_BORDERS_ONLY_CONDENSED
        })
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(cfg.width);
    if narrow {
        table.set_header(vec!["NODE", "ROLE", "STATUS", "TIME", "RESULT"]);
    } else {
        table.set_header(vec![
            "NODE", "IP", "ROLE", "STATUS", "TRIES", "TIME", "RESULT",
        ]);
    }
    if !cfg.color {
        table.force_no_tty();
    }
    for n in nodes {
        // A failed node's error says more than its summary ("apply failed").
        let result = match &n.error {
            Some(err) if narrow => err.message.clone(),
            Some(err) => format!("{}: {}", super::summary_words(n), err.message),
            None => super::summary_words(n),
        };
        let role = n.node.role.as_deref().unwrap_or("-");
        let role = if narrow && role == "controlplane" {
            "cp"
        } else {
            role
        };
        let time = format_duration(std::time::Duration::from_millis(n.duration_ms));
        if narrow {
            table.add_row(vec![
                Cell::new(&n.node.node),
                Cell::new(role),
                status_cell(n.status, cfg.color),
                Cell::new(time),
                Cell::new(result),
            ]);
        } else {
            table.add_row(vec![
                Cell::new(&n.node.node),
                Cell::new(n.node.ip.to_string()),
                Cell::new(role),
                status_cell(n.status, cfg.color),
                Cell::new(n.attempts.to_string()),
                Cell::new(time),
                Cell::new(result),
            ]);
        }
    }
    table
}

/// Wrap `text` at `width` columns; continuation lines get `indent`.
fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            out.push_str(&line);
            out.push('\n');
            line = indent.to_string();
        } else if len > 0 && line != indent {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
    out
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
            out.push_str(&wrap(
                &format!("hint for {}: {hint}", n.node.node),
                cfg.width as usize,
                "  ",
            ));
        }
        for w in &n.warnings {
            out.push_str(&wrap(
                &format!("warning for {}: {w}", n.node.node),
                cfg.width as usize,
                "  ",
            ));
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

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wraps_at_width_with_indent() {
        let w = wrap(
            "hint for cp1: check that the node is powered on and reachable",
            20,
            "  ",
        );
        for line in w.lines() {
            assert!(line.chars().count() <= 20, "{line:?}");
        }
        assert!(w.lines().skip(1).all(|l| l.starts_with("  ")), "{w}");
        assert_eq!(w.split_whitespace().count(), 12);
    }
}
