//! Every byte talstrap prints on stdout goes through here, so that a failed
//! write is never lost silently and never panics (`println!` does both).
//!
//! Two kinds of failure, two outcomes:
//! - the reader went away (`| head`, `| true`): a broken pipe. Nobody is
//!   left to read, so the rest of the output is dropped quietly and the run
//!   ends with the exit code it would have had;
//! - anything else (`> /dev/full`, a disk that filled up, an I/O error): the
//!   report is lost, which is an error: the first failure is kept, the rest
//!   of the output is dropped, and the command ends with a message on stderr
//!   and a non-zero exit code ([`failure`]).

use std::io::{self, Write};
use std::sync::Mutex;

/// What happened to stdout so far.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Open,
    /// The reader closed the pipe: drop output, say nothing.
    Closed,
    /// A write failed for another reason: drop output, report at the end.
    Failed(String),
}

static STATE: Mutex<State> = Mutex::new(State::Open);

/// Writes `bytes` to stdout and flushes. After the first failure nothing
/// more is written.
pub(crate) fn write(bytes: &[u8]) {
    write_to(&mut io::stdout().lock(), bytes);
}

/// [`write`] followed by a newline.
pub(crate) fn line(text: &str) {
    let mut buf = Vec::with_capacity(text.len() + 1);
    buf.extend_from_slice(text.as_bytes());
    buf.push(b'\n');
    write(&buf);
}

fn write_to(out: &mut dyn Write, bytes: &[u8]) {
    let Ok(mut state) = STATE.lock() else {
        return;
    };
    if *state != State::Open {
        return;
    }
    let result = out.write_all(bytes).and_then(|()| out.flush());
    if let Err(err) = result {
        *state = classify(&err);
    }
}

fn classify(err: &io::Error) -> State {
    if err.kind() == io::ErrorKind::BrokenPipe {
        State::Closed
    } else {
        State::Failed(err.to_string())
    }
}

/// Writes one line to stderr; a failure there has nowhere left to be
/// reported, so it is ignored instead of panicking as `eprintln!` does.
pub(crate) fn error_line(text: &str) {
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "{text}");
    let _ = err.flush();
}

/// Why output was lost, when it was lost for another reason than the
/// reader closing the pipe: the caller reports it and exits non-zero.
pub(crate) fn failure() -> Option<String> {
    match STATE.lock().map(|s| s.clone()) {
        Ok(State::Failed(why)) => Some(why),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer failing with a chosen error kind.
    struct Failing(io::ErrorKind);

    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::new(self.0, "refused"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn closed_pipe_is_quiet_other_errors_are_kept() {
        assert_eq!(
            classify(&io::Error::from(io::ErrorKind::BrokenPipe)),
            State::Closed
        );
        let full = io::Error::from_raw_os_error(libc::ENOSPC);
        assert!(matches!(classify(&full), State::Failed(m) if m.contains("space")));
    }

    // One test touches the process-wide state, so the order is its own.
    #[test]
    fn first_failure_stops_every_later_write() {
        let mut sink = Vec::new();
        write_to(&mut sink, b"a\n");
        assert_eq!(sink, b"a\n");
        assert_eq!(failure(), None);
        write_to(&mut Failing(io::ErrorKind::StorageFull), b"lost");
        let why = failure().expect("kept");
        write_to(&mut sink, b"b\n");
        assert_eq!(sink, b"a\n", "nothing written after the failure");
        write_to(&mut Failing(io::ErrorKind::BrokenPipe), b"x");
        assert_eq!(
            failure(),
            Some(why),
            "the first failure is the one reported"
        );
    }
}
