//! Variables for talconfig substitution: talenv files (plain or
//! sops-encrypted) layered over the process environment, as talhelper does.
//!
//! Values may be secrets (a talenv.sops.yaml typically holds them), so the
//! types here never show values in `Debug`, and errors name lines, not text.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use super::error::InputError;
use super::yaml::to_utf8;

/// The env file names talhelper looks for, in load order (later files
/// override earlier ones).
pub(crate) const DEFAULT_ENV_FILES: [&str; 4] = [
    "talenv.yaml",
    "talenv.sops.yaml",
    "talenv.yml",
    "talenv.sops.yml",
];

type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

/// Where the inventory gets outside facts from: variable lookup (normally
/// the process environment), the `sops` program, and the working directory
/// searched for default env files. Tests build one from a map instead of
/// touching the real process environment.
pub struct Environment {
    lookup: Box<Lookup>,
    sops_program: OsString,
    cwd: Option<PathBuf>,
    /// Set when the command gave up on loading (`--timeout`, Ctrl-C): a
    /// running `sops -d` is killed and loading ends.
    stop: Option<Arc<AtomicBool>>,
}

impl Environment {
    /// The real process: `std::env::var`, `sops` from PATH, the current
    /// directory.
    pub fn process() -> Self {
        Environment {
            lookup: Box::new(|name| std::env::var(name).ok()),
            sops_program: OsString::from("sops"),
            cwd: std::env::current_dir().ok(),
            stop: None,
        }
    }

    /// A fixed set of variables and no working directory (only the
    /// talconfig's directory is searched for env files).
    pub fn from_vars<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let map: BTreeMap<String, String> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Environment {
            lookup: Box::new(move |name| map.get(name).cloned()),
            sops_program: OsString::from("sops"),
            cwd: None,
            stop: None,
        }
    }

    /// Uses another program (path or name) in place of `sops`.
    pub fn with_sops_program(mut self, program: impl Into<OsString>) -> Self {
        self.sops_program = program.into();
        self
    }

    /// Loading stops (and a running `sops` is killed) once `stop` is set.
    pub fn with_stop(mut self, stop: Arc<AtomicBool>) -> Self {
        self.stop = Some(stop);
        self
    }

    /// Sets (or clears) the directory searched for default env files in
    /// addition to the talconfig's own directory.
    pub fn with_cwd(mut self, cwd: Option<PathBuf>) -> Self {
        self.cwd = cwd;
        self
    }

    pub(crate) fn cwd(&self) -> Option<&Path> {
        self.cwd.as_deref()
    }

    fn lookup(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
    }
}

impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Environment")
            .field("lookup", &"<redacted>")
            .field("sops_program", &self.sops_program)
            .field("cwd", &self.cwd)
            .finish()
    }
}

/// Variables from env files, overriding the environment's own lookup.
pub struct Variables<'a> {
    from_files: BTreeMap<String, String>,
    files: Vec<PathBuf>,
    env: &'a Environment,
}

impl Variables<'_> {
    /// The value of `name`: env files first, then the environment.
    pub fn get(&self, name: &str) -> Option<String> {
        self.from_files
            .get(name)
            .cloned()
            .or_else(|| self.env.lookup(name))
    }

    /// The env files that were read, in order.
    #[cfg(test)]
    pub(crate) fn files(&self) -> &[PathBuf] {
        &self.files
    }
}

impl fmt::Debug for Variables<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Variables")
            .field("names", &self.from_files.keys().collect::<Vec<_>>())
            .field("values", &"<redacted>")
            .field("files", &self.files)
            .finish()
    }
}

/// Lists the default env files that exist: in `cwd` (if any), then next to
/// the talconfig, each directory in [`DEFAULT_ENV_FILES`] order, without
/// reading the same file twice.
pub(crate) fn default_env_files(talconfig_dir: &Path, cwd: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for dir in cwd.into_iter().chain(std::iter::once(talconfig_dir)) {
        let canon = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        if !dirs.contains(&canon) {
            dirs.push(canon);
        }
    }
    let mut out = Vec::new();
    for dir in dirs {
        for name in DEFAULT_ENV_FILES {
            let p = dir.join(name);
            if p.is_file() {
                out.push(p);
            }
        }
    }
    out
}

/// Reads the given env files in order (later ones override earlier ones).
pub(crate) fn load_files<'a>(
    files: &[PathBuf],
    env: &'a Environment,
) -> Result<Variables<'a>, InputError> {
    let mut from_files = BTreeMap::new();
    for path in files {
        let bytes = super::read::read_input_file(path).map_err(|source| InputError::Io {
            path: path.clone(),
            source,
        })?;
        let text = to_utf8(path, &bytes)?;
        let plain;
        let body = if is_sops_encrypted(text) {
            plain = decrypt(path, env)?;
            plain.as_str()
        } else {
            text
        };
        for (k, v) in parse_env_text(path, body)? {
            from_files.insert(k, v);
        }
    }
    Ok(Variables {
        from_files,
        files: files.to_vec(),
        env,
    })
}

/// A talenv file is sops-encrypted when it has a top-level `sops:` key.
pub(crate) fn is_sops_encrypted(text: &str) -> bool {
    text.lines().any(|l| {
        l.strip_prefix("sops:")
            .is_some_and(|r| r.is_empty() || r.starts_with([' ', '\t', '\r']))
    })
}

/// Most bytes read from `sops -d` (decrypted talenv files are small).
const MAX_SOPS_OUTPUT: u64 = super::read::MAX_INPUT_BYTES;

/// How often a running `sops` is checked for having finished or for the
/// command having given up on it.
const SOPS_POLL: Duration = Duration::from_millis(10);

fn decrypt(path: &Path, env: &Environment) -> Result<String, InputError> {
    let program = &env.sops_program;
    let program_name = program.to_string_lossy().into_owned();
    let failed = |status: &str, stderr: String| InputError::SopsFailed {
        path: path.to_path_buf(),
        program: program_name.clone(),
        status: status.to_string(),
        stderr,
    };
    let mut child = std::process::Command::new(program)
        .arg("-d")
        .arg(path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => InputError::SopsMissing {
                path: path.to_path_buf(),
                program: program_name.clone(),
            },
            _ => failed("could not start", e.to_string()),
        })?;
    // Both pipes drained on their own threads, so a chatty sops never
    // blocks on a full pipe while this thread watches for the stop flag.
    let stdout = child.stdout.take().map(drain);
    let stderr = child.stderr.take().map(drain);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return Err(failed("could not be waited for", e.to_string())),
        }
        if env.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(failed(
                "stopped",
                "it had not finished when the command gave up (--timeout or Ctrl-C)".into(),
            ));
        }
        std::thread::sleep(SOPS_POLL);
    };
    // A process sops left behind may hold the pipes open after it exited:
    // the stop flag still ends the wait.
    let collect = |rx: Option<Receiver<Vec<u8>>>| loop {
        let Some(rx) = &rx else { return Ok(Vec::new()) };
        match rx.recv_timeout(SOPS_POLL) {
            Ok(buf) => return Ok(buf),
            Err(RecvTimeoutError::Disconnected) => return Ok(Vec::new()),
            Err(RecvTimeoutError::Timeout) => {}
        }
        if env.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) {
            return Err(failed(
                "stopped",
                "its output had not ended when the command gave up (--timeout or Ctrl-C)".into(),
            ));
        }
    };
    let (stdout, stderr) = (collect(stdout)?, collect(stderr)?);
    if !status.success() {
        let stderr = String::from_utf8_lossy(&stderr);
        let stderr: String = stderr.trim().chars().take(500).collect();
        return Err(failed(&status.to_string(), stderr));
    }
    if stdout.len() as u64 > MAX_SOPS_OUTPUT {
        return Err(failed(
            "success",
            format!(
                "the decrypted output is larger than the {} MiB talstrap reads",
                MAX_SOPS_OUTPUT / (1024 * 1024)
            ),
        ));
    }
    String::from_utf8(stdout).map_err(|e| {
        failed(
            "success",
            format!(
                "decrypted output is not UTF-8 (byte {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// Reads a pipe to its end on a thread of its own, keeping at most one byte
/// more than [`MAX_SOPS_OUTPUT`] (the rest is read and dropped).
fn drain(pipe: impl std::io::Read + Send + 'static) -> Receiver<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let mut pipe = pipe;
        let _ = (&mut pipe).take(MAX_SOPS_OUTPUT + 1).read_to_end(&mut buf);
        let _ = std::io::copy(&mut pipe, &mut std::io::sink());
        let _ = tx.send(buf);
    });
    rx
}

/// Parses `KEY: value` / `KEY=value` lines (dotenv style, as talhelper
/// reads talenv files). `---` markers, blank lines and `#` comments are
/// skipped; values may be quoted.
pub(crate) fn parse_env_text(path: &Path, text: &str) -> Result<Vec<(String, String)>, InputError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let err = |reason: &str| InputError::EnvFile {
            path: path.to_path_buf(),
            line: line_no,
            reason: reason.to_string(),
        };
        let line = raw.trim_end_matches('\r');
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed == "---" || trimmed == "..." {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            return Err(err(
                "indented line: talenv files hold flat `KEY: value` lines, not nested YAML",
            ));
        }
        let body = trimmed
            .strip_prefix("export ")
            .unwrap_or(trimmed)
            .trim_start();
        let Some(sep) = body.find([':', '=']) else {
            return Err(err("expected `KEY: value` or `KEY=value`"));
        };
        let key = body[..sep].trim();
        let valid_key = key
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
        if !valid_key {
            return Err(err(
                "expected `KEY: value` with a name of letters, digits and '_'",
            ));
        }
        let value = parse_value(body[sep + 1..].trim()).map_err(err)?;
        out.push((key.to_string(), value));
    }
    Ok(out)
}

fn parse_value(v: &str) -> Result<String, &'static str> {
    let rest_ok = |rest: &str| {
        let r = rest.trim();
        r.is_empty() || r.starts_with('#')
    };
    if let Some(body) = v.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, other)) => out.push(other),
                    None => return Err("unterminated double quote"),
                },
                '"' => {
                    return if rest_ok(&body[i + 1..]) {
                        Ok(out)
                    } else {
                        Err("text after the closing quote")
                    };
                }
                c => out.push(c),
            }
        }
        Err("unterminated double quote")
    } else if let Some(body) = v.strip_prefix('\'') {
        match body.find('\'') {
            Some(end) if rest_ok(&body[end + 1..]) => Ok(body[..end].to_string()),
            Some(_) => Err("text after the closing quote"),
            None => Err("unterminated single quote"),
        }
    } else {
        let cut = v.find(" #").or_else(|| v.find("\t#")).unwrap_or(v.len());
        Ok(v[..cut].trim_end().to_string())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<(String, String)>, InputError> {
        parse_env_text(Path::new("talenv.yaml"), text)
    }

    #[test]
    fn dotenv_and_yaml_styles() {
        let vars = parse(
            "---\n# versions\ntalosVersion: v1.13.0\nkubernetesVersion: \"v1.36.0\" # pinned\nexport VIP=10.0.0.10\nQ: 'a # b'\nE:\nURL: https://x/#frag\n",
        )
        .unwrap();
        let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("talosVersion"), Some("v1.13.0"));
        assert_eq!(get("kubernetesVersion"), Some("v1.36.0"));
        assert_eq!(get("VIP"), Some("10.0.0.10"));
        assert_eq!(get("Q"), Some("a # b"));
        assert_eq!(get("E"), Some(""));
        assert_eq!(get("URL"), Some("https://x/#frag"));
    }

    #[test]
    fn malformed_lines_name_file_and_line_without_values() {
        let err = parse("A: 1\nsecretvalue-without-separator\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("talenv.yaml: line 2: "), "{msg}");
        assert!(!msg.contains("secretvalue"), "{msg}");
        let err = parse("A: 1\nnested:\n  b: 2\n").unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
        let err = parse("A: \"open\n").unwrap_err();
        assert!(err.to_string().contains("unterminated"), "{err}");
        let err = parse("9X: 1\n").unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn sops_marker_must_be_top_level() {
        assert!(is_sops_encrypted("A: ENC[...]\nsops:\n  age: []\n"));
        assert!(!is_sops_encrypted("A: 1\n  sops: nested\nsopsy: 2\n"));
    }

    #[test]
    fn file_values_override_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("talenv.yaml");
        let b = dir.path().join("talenv.yml");
        std::fs::write(&a, "VIP: 10.0.0.10\nONLY_A: a\n").unwrap();
        std::fs::write(&b, "VIP: 10.0.0.20\n").unwrap();
        let env = Environment::from_vars([("VIP", "from-env"), ("HOME_ONLY", "h")]);
        let vars = load_files(&[a, b], &env).unwrap();
        assert_eq!(vars.get("VIP").as_deref(), Some("10.0.0.20"));
        assert_eq!(vars.get("ONLY_A").as_deref(), Some("a"));
        assert_eq!(vars.get("HOME_ONLY").as_deref(), Some("h"));
        assert_eq!(vars.get("NOPE"), None);
        let dbg = format!("{vars:?}");
        assert!(!dbg.contains("10.0.0.20"), "{dbg}");
    }

    #[test]
    fn default_files_are_found_in_order_and_deduplicated() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("talenv.sops.yaml"), "A: 1\n").unwrap();
        std::fs::write(dir.path().join("talenv.yaml"), "A: 2\n").unwrap();
        let files = default_env_files(dir.path(), Some(dir.path()));
        let names: Vec<_> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["talenv.yaml", "talenv.sops.yaml"]);
    }

    #[test]
    fn encrypted_file_without_sops_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("talenv.sops.yaml");
        std::fs::write(
            &f,
            "VIP: ENC[AES256_GCM,data:xx]\nsops:\n  version: 3.9.0\n",
        )
        .unwrap();
        let env = Environment::from_vars(Vec::<(String, String)>::new())
            .with_sops_program("talstrap-test-no-such-sops-binary");
        let err = load_files(&[f], &env).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, InputError::SopsMissing { .. }), "{msg}");
        assert!(
            msg.contains("talenv.sops.yaml") && msg.contains("sops"),
            "{msg}"
        );
    }

    #[cfg(unix)]
    fn fake_sops(dir: &Path, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join("fake-sops");
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[cfg(unix)]
    #[test]
    fn encrypted_file_is_read_through_sops_d() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("talenv.sops.yaml");
        std::fs::write(
            &f,
            "VIP: ENC[AES256_GCM,data:xx]\nsops:\n  version: 3.9.0\n",
        )
        .unwrap();
        // The fake checks it was called as `sops -d <file>`.
        let sops = fake_sops(
            dir.path(),
            "[ \"$1\" = \"-d\" ] || exit 3\ncase \"$2\" in *talenv.sops.yaml) ;; *) exit 4;; esac\necho 'VIP: 10.0.0.10'",
        );
        let env = Environment::from_vars(Vec::<(String, String)>::new()).with_sops_program(&sops);
        let vars = load_files(&[f], &env).unwrap();
        assert_eq!(vars.get("VIP").as_deref(), Some("10.0.0.10"));
    }

    #[cfg(unix)]
    #[test]
    fn failing_sops_reports_its_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("talenv.sops.yaml");
        std::fs::write(&f, "sops:\n  version: 3.9.0\n").unwrap();
        let sops = fake_sops(dir.path(), "echo 'no age key found' >&2; exit 1");
        let env = Environment::from_vars(Vec::<(String, String)>::new()).with_sops_program(&sops);
        let err = load_files(&[f], &env).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("no age key found") && msg.contains("talenv.sops.yaml"),
            "{msg}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_sops_that_never_returns_is_killed_when_loading_stops() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("talenv.sops.yaml");
        std::fs::write(&f, "sops:\n  version: 3.9.0\n").unwrap();
        let pid_file = dir.path().join("pid");
        let sops = fake_sops(
            dir.path(),
            &format!("echo $$ > {}\nexec sleep 600", pid_file.display()),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let env = Environment::from_vars(Vec::<(String, String)>::new())
            .with_sops_program(&sops)
            .with_stop(stop.clone());
        let setter = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            stop.store(true, Ordering::SeqCst);
        });
        let started = std::time::Instant::now();
        let err = load_files(&[f], &env).unwrap_err();
        setter.join().unwrap();
        assert!(err.to_string().contains("stopped"), "{err}");
        // Generous bound: the point is "not 600 s".
        assert!(started.elapsed() < Duration::from_secs(60));
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let alive = std::path::Path::new(&format!("/proc/{}", pid.trim())).exists()
            && !std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()))
                .unwrap_or_default()
                .contains(") Z ");
        assert!(!alive, "the sops process {} is still running", pid.trim());
    }
}
