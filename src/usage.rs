//! The command line as operators type it, before and around clap.
//!
//! - talosctl habits: flags of a subcommand given before it
//!   (`talstrap -n cp1 verify`, `talstrap --talosconfig F preflight`) are
//!   moved after it, so clap sees them where it looks; talosctl's
//!   `-e/--endpoints` and `-i/--insecure` get an explanation instead of a
//!   bare "unexpected argument"; talosctl subcommand names point to the
//!   talstrap command that does the job.
//! - Usage errors keep the JSON contract: with `-o json` they still end with
//!   a report line on stdout.
//! - The man pages (with ENVIRONMENT and EXIT STATUS) and the completion
//!   scripts (with `-n <TAB>` completing node names) are rendered here, for
//!   `talstrap man` / `talstrap completions` and the tests that keep
//!   `man/` and `completions/` fresh.

use std::ffi::{OsStr, OsString};
use std::io::Write;

use clap::{Arg, ArgAction, Command, CommandFactory};

use crate::cli::{Cli, GlobalArgs};
use crate::exit::Exit;

/// How an argument is spelled on the command line, for the reordering.
fn takes_value(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Set | ArgAction::Append)
        && arg.get_num_args().is_none_or(|r| r.min_values() > 0)
}

/// Finds the definition of `--long` or `-s` among `args`.
fn find<'a>(
    args: impl Iterator<Item = &'a Arg>,
    long: Option<&str>,
    short: Option<char>,
) -> Option<&'a Arg> {
    let mut args = args;
    args.find(|a| match (long, short) {
        (Some(l), _) => {
            a.get_long() == Some(l) || a.get_all_aliases().is_some_and(|al| al.contains(&l))
        }
        (None, Some(s)) => a.get_short() == Some(s),
        _ => false,
    })
}

/// The flag name in a token: `--name[=v]` → long, `-xVALUE` → short `x`.
fn flag_of(token: &str) -> (Option<&str>, Option<char>, bool) {
    if let Some(rest) = token.strip_prefix("--") {
        match rest.split_once('=') {
            Some((name, _)) => (Some(name), None, true),
            None => (Some(rest), None, false),
        }
    } else {
        let mut chars = token[1..].chars();
        let c = chars.next();
        (None, c, chars.next().is_some())
    }
}

/// Moves the flags of a subcommand that were typed before it to just after
/// it: `talstrap -n cp1 --talosconfig F verify --phase x` becomes
/// `talstrap verify -n cp1 --talosconfig F --phase x`. Flags of talstrap
/// itself stay where they are; anything unknown leaves argv untouched, so
/// clap reports it as typed.
pub fn normalize_args(argv: Vec<OsString>) -> Vec<OsString> {
    let cmd = Cli::command();
    reorder(&cmd, argv)
}

fn reorder(cmd: &Command, argv: Vec<OsString>) -> Vec<OsString> {
    let mut moved: Vec<OsString> = Vec::new();
    let mut kept: Vec<OsString> = argv.iter().take(1).cloned().collect();
    let mut i = 1;
    while i < argv.len() {
        let Some(token) = argv[i].to_str() else {
            return argv;
        };
        if token == "--" {
            return argv;
        }
        if !token.starts_with('-') || token == "-" {
            // The subcommand: the moved flags go right after it.
            if moved.is_empty() || cmd.find_subcommand(token).is_none() {
                return argv;
            }
            kept.push(argv[i].clone());
            kept.extend(moved);
            kept.extend(argv[i + 1..].iter().cloned());
            return kept;
        }
        let (long, short, inline) = flag_of(token);
        let top = find(cmd.get_arguments(), long, short);
        let is_help = matches!(long, Some("help" | "version")) || matches!(short, Some('h' | 'V'));
        if top.is_some() || is_help {
            kept.push(argv[i].clone());
            if let Some(a) = top
                && takes_value(a)
                && !inline
                && i + 1 < argv.len()
            {
                kept.push(argv[i + 1].clone());
                i += 1;
            }
            i += 1;
            continue;
        }
        let Some(sub_arg) = cmd
            .get_subcommands()
            .find_map(|s| find(s.get_arguments(), long, short))
        else {
            return argv;
        };
        moved.push(argv[i].clone());
        if takes_value(sub_arg) && !inline && i + 1 < argv.len() {
            moved.push(argv[i + 1].clone());
            i += 1;
        }
        i += 1;
    }
    argv
}

/// talosctl flags talstrap answers with an explanation (exit 2).
pub(crate) fn talosctl_habit(global: &GlobalArgs) -> Option<String> {
    if global.endpoints.is_some() {
        return Some(
            "-e/--endpoints is talosctl's: talstrap never dials endpoints (a VIP, load \
             balancer or DNS name that may not exist before bootstrap); it talks to every \
             node at its own IP from the inventory (talconfig.yaml, --topf or --node). To work \
             on some nodes only, use -n/--nodes IP|HOSTNAME."
                .into(),
        );
    }
    if global.insecure {
        return Some(
            "--insecure is not needed: talstrap detects per node whether it is in maintenance \
             mode (then it uses the maintenance API, as talosctl --insecure does) or \
             configured (then mTLS with the talosconfig), and never sends a config without \
             authentication to a configured node. To pin maintenance-mode nodes, use \
             --cert-fingerprint."
                .into(),
        );
    }
    None
}

/// talosctl (and talhelper gencommand) subcommands → what does it here.
fn talosctl_command(name: &str) -> Option<&'static str> {
    Some(match name {
        "apply-config" => {
            "`talstrap apply` sends each node its config (add --wait to wait until ready)"
        }
        "health" => "`talstrap verify` waits for every node and explains stuck ones",
        "kubeconfig" => {
            "`talstrap bootstrap --kubeconfig PATH` fetches it (an already bootstrapped \
             cluster is not bootstrapped again)"
        }
        "gencommand" | "genconfig" => {
            "talstrap reads what `talhelper genconfig` writes: run that first"
        }
        "get" | "disks" => "`talstrap preflight` shows each node's mode, stage, version and disks",
        _ => return None,
    })
}

/// `-o json`, `--output json`, `--output=json`, `-ojson` or
/// `TALSTRAP_OUTPUT=json`.
pub(crate) fn wants_json(argv: &[OsString]) -> bool {
    let mut it = argv.iter().skip(1).map(|a| a.to_str().unwrap_or(""));
    let mut flag_json = None;
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        let v = match a {
            "-o" | "--output" => it.next(),
            _ => a
                .strip_prefix("--output=")
                .or_else(|| a.strip_prefix("-o="))
                .or_else(|| a.strip_prefix("-o").filter(|v| !v.is_empty())),
        };
        if let Some(v) = v {
            flag_json = Some(v == "json");
        }
    }
    flag_json.unwrap_or_else(|| std::env::var("TALSTRAP_OUTPUT").is_ok_and(|v| v == "json"))
}

/// The subcommand named in argv, for the report of a usage error.
fn command_word(argv: &[OsString]) -> String {
    let cmd = Cli::command();
    argv.iter()
        .skip(1)
        .filter_map(|a| a.to_str())
        .find(|a| cmd.find_subcommand(a).is_some())
        .unwrap_or("talstrap")
        .to_string()
}

/// Prints a clap error the way talstrap prints input errors, plus a report
/// line on stdout with `-o json`; returns the exit code.
pub fn usage_error(err: clap::Error, argv: &[OsString]) -> i32 {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        let _ = err.print();
        return 0;
    }
    let typed = match err.get(ContextKind::InvalidSubcommand) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    let message = match typed
        .as_deref()
        .and_then(|t| talosctl_command(t).map(|h| (t, h)))
    {
        Some((typed, hint)) => {
            format!(
                "`{typed}` is not a talstrap command: {hint}.\n\nFor more information, try '--help'."
            )
        }
        None => err.render().to_string(),
    };
    let message = message.trim_end().trim_start_matches("error: ").to_string();
    let _ = writeln!(std::io::stderr(), "error: {message}");
    if wants_json(argv) {
        let first = message.lines().next().unwrap_or_default();
        let report = crate::output::Report::new(
            &command_word(argv),
            Vec::new(),
            std::time::Duration::ZERO,
            Some(Exit::Input),
        )
        .with_messages(vec![format!("error: {first}")]);
        if let Ok(line) = serde_json::to_string(&report) {
            crate::output::stdout::line(&line);
        }
    }
    Exit::Input.code()
}

// ---------------------------------------------------------------------------
// Man pages
// ---------------------------------------------------------------------------

/// The man page of `talstrap` (`sub` = None) or of one subcommand.
pub fn man_page(sub: Option<&str>) -> Result<Vec<u8>, String> {
    let mut top = Cli::command().disable_help_subcommand(true);
    top.build();
    let cmd = match sub {
        None => top,
        Some(name) => top
            .get_subcommands()
            .find(|s| s.get_name() == name && !s.is_hide_set())
            .cloned()
            .ok_or_else(|| format!("no man page for {name:?}: not a talstrap subcommand"))?,
    };
    let man = clap_mangen::Man::new(cmd.clone())
        .source(format!("talstrap {}", env!("CARGO_PKG_VERSION")));
    let mut page = Vec::new();
    man.render(&mut page).map_err(|e| e.to_string())?;
    let page = String::from_utf8_lossy(&page).into_owned();
    let page = with_value_names(&page, &cmd);
    Ok(with_environment_and_exit_status(&page, &cmd).into_bytes())
}

fn roff_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('-', "\\-")
}

/// clap_mangen's SYNOPSIS leaves out value names: `[-n|--nodes]` becomes
/// `[-n|--nodes NODE]`.
fn with_value_names(page: &str, cmd: &Command) -> String {
    let Some((head, rest)) = page.split_once(".SH SYNOPSIS\n") else {
        return page.to_string();
    };
    let Some((line, tail)) = rest.split_once('\n') else {
        return page.to_string();
    };
    let mut line = line.to_string();
    for arg in cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !a.is_positional())
    {
        let (Some(long), Some(names)) = (arg.get_long(), arg.get_value_names()) else {
            continue;
        };
        let needle = format!("\\fB\\-\\-{}\\fR]", roff_escape(long));
        let with = format!(
            "\\fB\\-\\-{}\\fR \\fI{}\\fR]",
            roff_escape(long),
            names
                .iter()
                .map(|n| roff_escape(n))
                .collect::<Vec<_>>()
                .join(" ")
        );
        line = line.replacen(&needle, &with, 1);
    }
    format!("{head}.SH SYNOPSIS\n{line}\n{tail}")
}

/// Variables read besides the `TALSTRAP_*` one of each flag.
const OTHER_ENVIRONMENT: &[(&str, &str)] = &[
    (
        "TALOSCONFIG",
        "talosconfig to use when --talosconfig is not given, as for talosctl.",
    ),
    (
        "TALOS_HOME",
        "Directory whose config file is the talosconfig when neither --talosconfig nor TALOSCONFIG is set (default ~/.talos).",
    ),
    ("NO_COLOR", "When set and not empty, no colours."),
    (
        "COLUMNS",
        "Width of tables and help (default: the terminal's).",
    ),
    (
        "RUST_LOG",
        "Log filter for stderr (overrides -v/-q), e.g. talstrap=debug.",
    ),
];

fn with_environment_and_exit_status(page: &str, cmd: &Command) -> String {
    let mut env = String::from(".SH ENVIRONMENT\n");
    let mut seen = std::collections::BTreeSet::new();
    for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        let Some(var) = arg.get_env().and_then(OsStr::to_str) else {
            continue;
        };
        if !seen.insert(var.to_string()) {
            continue;
        }
        let flag = arg
            .get_long()
            .map(|l| format!("\\-\\-{}", roff_escape(l)))
            .unwrap_or_default();
        env.push_str(&format!(
            ".TP\n\\fB{}\\fR\nSame as \\fB{flag}\\fR.\n",
            roff_escape(var)
        ));
    }
    for (var, what) in OTHER_ENVIRONMENT {
        env.push_str(&format!(
            ".TP\n\\fB{}\\fR\n{}\n",
            roff_escape(var),
            roff_escape(what)
        ));
    }
    let exit = ".SH \"EXIT STATUS\"\n\
        .TP\n\\fB0\\fR\nSuccess: every node reached its goal (already done counts).\n\
        .TP\n\\fB1\\fR\nAt least one node failed; the others were still worked on and reported.\n\
        .TP\n\\fB2\\fR\nBad input or usage; no node was contacted.\n\
        .TP\n\\fB3\\fR\nThe \\-\\-timeout deadline was reached.\n\
        .TP\n\\fB130\\fR\nInterrupted (Ctrl\\-C or SIGTERM).\n";
    let sections = format!("{env}{exit}");
    // Before VERSION (clap_mangen's last section), else at the end.
    match page.find(".SH VERSION") {
        Some(at) => format!("{}{sections}{}", &page[..at], &page[at..]),
        None => format!("{page}{sections}"),
    }
}

// ---------------------------------------------------------------------------
// Completion scripts
// ---------------------------------------------------------------------------

/// The completion script for `shell`: clap's, with `-n/--nodes` completing
/// the node names and addresses of the talconfig.yaml (or --topf file) in
/// the command line, through the hidden `talstrap __complete-nodes`.
pub(crate) fn completion_script(shell: clap_complete::Shell) -> Vec<u8> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "talstrap", &mut out);
    let text = without_hidden(&String::from_utf8_lossy(&out));
    let text = match shell {
        clap_complete::Shell::Bash => bash_nodes(&text),
        clap_complete::Shell::Zsh => zsh_nodes(&text),
        clap_complete::Shell::Fish => fish_nodes(&text),
        _ => text,
    };
    text.into_bytes()
}

/// Words of hidden flags and commands clap_complete still lists: talosctl's
/// -e/--endpoints and -i/--insecure (accepted only to explain them) and the
/// `__complete-nodes` helper are not offered.
const HIDDEN_ABOUT: [&str; 3] = [
    "accepted only to be answered with an explanation",
    "answered with an explanation (the mode is detected",
    "Node names for shell completion",
];

fn without_hidden(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if HIDDEN_ABOUT.iter().any(|h| line.contains(h)) {
            continue;
        }
        let trimmed = line.trim_start();
        if trimmed.starts_with("opts=\"") {
            let kept: Vec<&str> = line
                .split(' ')
                .filter(|w| {
                    !matches!(
                        *w,
                        "-e" | "-i" | "--endpoints" | "--insecure" | "__complete-nodes"
                    )
                })
                .collect();
            out.push_str(&kept.join(" "));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// bash: after `--nodes`/`-n`, the words come from `__complete-nodes`,
/// given the --talconfig/--topf already typed.
const BASH_NODES: &str =
    r#"COMPREPLY=($(compgen -W "$(_talstrap_nodes "${COMP_WORDS[@]}")" -- "${cur}"))"#;

const BASH_HELPER: &str = r#"
_talstrap_nodes() {
    local args=() i
    for ((i = 1; i < $#; i++)); do
        case "${!i}" in
            --talconfig|--topf) local j=$((i + 1)); args+=("${!i}" "${!j}") ;;
        esac
    done
    talstrap __complete-nodes "${args[@]}" 2>/dev/null
}
"#;

fn bash_nodes(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 512);
    let mut in_nodes = false;
    for line in text.lines() {
        let t = line.trim();
        if t == "--nodes)" || t == "-n)" {
            in_nodes = true;
        } else if in_nodes && t.starts_with("COMPREPLY=") {
            let indent = &line[..line.len() - line.trim_start().len()];
            out.push_str(indent);
            out.push_str(BASH_NODES);
            out.push('\n');
            in_nodes = false;
            continue;
        } else if t.ends_with(')') && !t.starts_with("COMPREPLY") {
            in_nodes = false;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(BASH_HELPER);
    out
}

const ZSH_HELPER: &str = r#"
(( $+functions[_talstrap_nodes] )) ||
_talstrap_nodes() {
    local -a args nodes
    local i
    for ((i = 1; i < ${#words}; i++)); do
        case "${words[i]}" in
            --talconfig|--topf) args+=("${words[i]}" "${words[i+1]}") ;;
        esac
    done
    nodes=(${(f)"$(talstrap __complete-nodes "${args[@]}" 2>/dev/null)"})
    _describe 'node' nodes
}
"#;

fn zsh_nodes(text: &str) -> String {
    // clap writes the value part of -n/--nodes as `:NODE:_default`.
    let mut out = String::with_capacity(text.len() + 512);
    for line in text.lines() {
        if (line.contains("'*-n+[") || line.contains("'*--nodes=["))
            && line.contains(":NODE:_default'")
        {
            out.push_str(&line.replace(":NODE:_default'", ":NODE:_talstrap_nodes'"));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    // The helper must be defined before `_talstrap "$@"` runs it.
    match out.rfind("\nif [ \"$funcstack[1]\" = \"_talstrap\" ]") {
        Some(at) => format!("{}{ZSH_HELPER}{}", &out[..at], &out[at..]),
        None => format!("{out}{ZSH_HELPER}"),
    }
}

const FISH_NODES: &str = "complete -c talstrap -s n -l nodes -x -a \"(talstrap __complete-nodes (commandline -opc | string match -r -- '^--(?:talconfig|topf)=.*'))\"\n";

fn fish_nodes(text: &str) -> String {
    let mut out: String = text
        .lines()
        .filter(|l| !(l.contains(" -s n -l nodes ")))
        .map(|l| format!("{l}\n"))
        .collect();
    out.push_str(FISH_NODES);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<OsString> {
        s.split_whitespace().map(OsString::from).collect()
    }

    fn joined(v: Vec<OsString>) -> String {
        v.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn subcommand_flags_before_the_subcommand_move_after_it() {
        let cases = [
            ("talstrap -n cp1 verify", "talstrap verify -n cp1"),
            (
                "talstrap --talosconfig F preflight",
                "talstrap preflight --talosconfig F",
            ),
            (
                "talstrap --talosconfig=F -o json apply --wait",
                "talstrap -o json apply --talosconfig=F --wait",
            ),
            (
                "talstrap -ncp1 --role worker verify --phase auto",
                "talstrap verify -ncp1 --role worker --phase auto",
            ),
            // Already in place, or unknown: untouched.
            ("talstrap verify -n cp1", "talstrap verify -n cp1"),
            (
                "talstrap -o json --timeout 5m verify",
                "talstrap -o json --timeout 5m verify",
            ),
            ("talstrap --bogus x verify", "talstrap --bogus x verify"),
            ("talstrap -n cp1 nosuch", "talstrap -n cp1 nosuch"),
            ("talstrap -n cp1", "talstrap -n cp1"),
        ];
        for (given, want) in cases {
            assert_eq!(joined(normalize_args(argv(given))), want, "{given}");
        }
    }

    #[test]
    fn reordered_command_lines_parse() {
        use clap::Parser;
        let cli = Cli::try_parse_from(normalize_args(argv(
            "talstrap -n cp1 --talosconfig F verify",
        )))
        .unwrap();
        match cli.command {
            crate::cli::Command::Verify(v) => {
                assert_eq!(v.inventory.nodes, vec!["cp1"]);
                assert_eq!(
                    v.inventory.talosconfig.as_deref(),
                    Some(std::path::Path::new("F"))
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn talosctl_flags_are_answered() {
        use clap::Parser;
        for line in [
            "talstrap -e 127.0.0.1 preflight",
            "talstrap preflight --endpoints 127.0.0.1",
            "talstrap apply --insecure",
            "talstrap -i apply",
        ] {
            let cli = Cli::try_parse_from(normalize_args(argv(line)))
                .unwrap_or_else(|e| panic!("{line}: {e}"));
            let msg = talosctl_habit(&cli.global).unwrap_or_else(|| panic!("{line}: no answer"));
            assert!(
                msg.contains("-n/--nodes") || msg.contains("detects per node"),
                "{msg}"
            );
        }
        let cli = Cli::try_parse_from(argv("talstrap preflight")).unwrap();
        assert!(talosctl_habit(&cli.global).is_none());
    }

    #[test]
    fn json_is_detected_in_every_spelling() {
        for line in [
            "t -o json x",
            "t --output json",
            "t --output=json",
            "t -ojson",
            "t -o=json",
        ] {
            assert!(wants_json(&argv(line)), "{line}");
        }
        for line in ["t -o human", "t x", "t -- -o json", "t -o json -o human"] {
            assert!(
                !wants_json(&argv(line)) || std::env::var("TALSTRAP_OUTPUT").is_ok(),
                "{line}"
            );
        }
    }

    #[test]
    fn talosctl_commands_point_to_ours() {
        assert!(
            talosctl_command("apply-config")
                .unwrap()
                .contains("talstrap apply")
        );
        assert!(
            talosctl_command("health")
                .unwrap()
                .contains("talstrap verify")
        );
        assert!(
            talosctl_command("kubeconfig")
                .unwrap()
                .contains("--kubeconfig")
        );
        assert!(talosctl_command("aply").is_none());
    }

    #[test]
    fn man_pages_have_environment_exit_status_and_value_names() {
        let page = String::from_utf8(man_page(Some("apply")).unwrap()).unwrap();
        assert!(page.contains(".SH ENVIRONMENT"), "{page}");
        assert!(page.contains(".SH \"EXIT STATUS\""), "{page}");
        assert!(page.contains("\\fBTALSTRAP_NODES\\fR"), "{page}");
        assert!(page.contains("\\fB\\-\\-nodes\\fR \\fINODE\\fR]"), "{page}");
        assert!(page.contains("\\fB130\\fR"), "{page}");
        let top = String::from_utf8(man_page(None).unwrap()).unwrap();
        assert!(
            top.contains(".SH \"EXIT STATUS\"") && top.contains("TALOSCONFIG"),
            "{top}"
        );
        assert!(man_page(Some("nosuch")).is_err());
    }

    #[test]
    fn completion_scripts_complete_nodes_from_the_talconfig() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let s = String::from_utf8(completion_script(shell)).unwrap();
            assert!(s.contains("talstrap __complete-nodes"), "{shell}: {s}");
        }
        let bash = String::from_utf8(completion_script(clap_complete::Shell::Bash)).unwrap();
        // Every --nodes/-n case of every subcommand uses the helper.
        let cases = bash.matches("--nodes)").count();
        assert!(cases >= 4, "{cases}");
        assert_eq!(
            bash.matches("_talstrap_nodes \"${COMP_WORDS[@]}\"").count(),
            bash.matches("--nodes)").count() + bash.matches("\n                -n)").count()
        );
        let zsh = String::from_utf8(completion_script(clap_complete::Shell::Zsh)).unwrap();
        assert!(!zsh.contains(":NODE:_default"), "{zsh}");
        // Hidden flags are not offered.
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let s = String::from_utf8(completion_script(shell)).unwrap();
            // bash keeps inert `--endpoints)` value arms; what it offers is `opts`.
            let offered: String = match shell {
                clap_complete::Shell::Bash => s
                    .lines()
                    .filter(|l| l.trim_start().starts_with("opts="))
                    .collect(),
                _ => s.clone(),
            };
            assert!(HIDDEN_ABOUT.iter().all(|h| !offered.contains(h)), "{shell}");
            if shell == clap_complete::Shell::Bash {
                assert!(!offered.contains("--insecure") && !offered.contains("--endpoints"));
            }
        }
    }
}
