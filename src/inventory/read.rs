//! Reading input files defensively: only regular files (not `/dev/zero`, a
//! FIFO or a directory), and never more than a sane size, so a hostile or
//! mistaken path cannot hang or exhaust the process.

use std::io::Read;
use std::path::Path;

/// `f` over `items` on up to the machine's cores (at least 64 items per
/// thread), in order: the result is what a plain loop stopping at the first
/// error would give, the same error included. For reading and parsing the
/// nodes' configs, the only part of a run's start that grows with the fleet.
pub(crate) fn load_each<T: Sync, R: Send, E: Send>(
    items: &[T],
    f: impl Fn(&T) -> Result<R, E> + Sync,
) -> Result<Vec<R>, E> {
    const PER_THREAD: usize = 64;
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let threads = cores.min(items.len() / PER_THREAD).max(1);
    if threads == 1 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    let parts: Vec<Result<Vec<R>, E>> = std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(f).collect::<Result<Vec<R>, E>>()))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut out = Vec::with_capacity(items.len());
    for part in parts {
        out.extend(part?);
    }
    Ok(out)
}

/// Largest input file talstrap reads (machine configs are a few KiB).
pub(crate) const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024;

/// Read a regular file of at most [`MAX_INPUT_BYTES`].
pub(crate) fn read_input_file(path: &Path) -> std::io::Result<Vec<u8>> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if meta.len() > MAX_INPUT_BYTES {
        return Err(std::io::Error::other(format!(
            "{} bytes is larger than the {} MiB talstrap reads",
            meta.len(),
            MAX_INPUT_BYTES / (1024 * 1024)
        )));
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(path)?
        .take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_INPUT_BYTES {
        return Err(std::io::Error::other(
            "file grew past the size limit while being read",
        ));
    }
    Ok(buf)
}

/// How long a pipe given as a config may take to deliver all of it.
const PIPE_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Read a config named on the command line: a regular file as
/// [`read_input_file`] does, or, for render-and-pipe workflows that keep
/// secrets off disk, `-` (stdin) or a pipe (`<(sops -d cp.yaml)`, a FIFO),
/// with the same size bound. A pipe that delivers nothing within a minute is
/// an error, never a hang; devices and directories are still refused.
pub(crate) fn read_config_source(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::IsTerminal;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    if path == Path::new("-") {
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            return Err(std::io::Error::other(
                "`-` reads the config from stdin, but stdin is a terminal: pipe the config in",
            ));
        }
        return read_bounded(stdin.lock());
    }
    let meta = std::fs::metadata(path)?;
    if !meta.file_type().is_fifo() {
        return read_input_file(path);
    }
    // Non-blocking, so a FIFO nobody writes to reads as empty instead of
    // blocking in open() or read() forever.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    read_pipe(file, PIPE_WAIT)
}

fn read_bounded(reader: impl Read) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    reader.take(MAX_INPUT_BYTES + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_INPUT_BYTES {
        return Err(std::io::Error::other(format!(
            "more than the {} MiB talstrap reads",
            MAX_INPUT_BYTES / (1024 * 1024)
        )));
    }
    Ok(buf)
}

fn read_pipe(mut file: std::fs::File, wait: std::time::Duration) -> std::io::Result<Vec<u8>> {
    let until = std::time::Instant::now() + wait;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match file.read(&mut chunk) {
            Ok(0) => return Ok(buf),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() as u64 > MAX_INPUT_BYTES {
                    return Err(std::io::Error::other(format!(
                        "more than the {} MiB talstrap reads",
                        MAX_INPUT_BYTES / (1024 * 1024)
                    )));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if std::time::Instant::now() >= until {
                    return Err(std::io::Error::other(format!(
                        "the pipe delivered no end of data within {}s",
                        wait.as_secs()
                    )));
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_each_keeps_the_order_and_the_first_error_in_order() {
        let items: Vec<u32> = (0..1000).collect();
        let doubled = load_each(&items, |i| Ok::<_, String>(i * 2)).unwrap();
        assert_eq!(doubled, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        // Errors in several chunks: the earliest item's error wins, as in a loop.
        let err = load_each(&items, |i| {
            if i % 300 == 299 {
                Err(format!("item {i}"))
            } else {
                Ok(*i)
            }
        })
        .unwrap_err();
        assert_eq!(err, "item 299");
        assert_eq!(
            load_each(&[] as &[u32], |i| Ok::<_, ()>(*i)).unwrap(),
            Vec::<u32>::new()
        );
    }

    #[test]
    fn refuses_devices_and_directories() {
        assert!(
            read_input_file(Path::new("/dev/zero"))
                .unwrap_err()
                .to_string()
                .contains("regular file")
        );
        assert!(read_input_file(Path::new("/")).is_err());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.yaml");
        std::fs::write(&p, b"a: 1\n").unwrap();
        assert_eq!(read_input_file(&p).unwrap(), b"a: 1\n");
    }

    #[test]
    fn pipes_are_read_bounded_and_never_hang() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("cfg");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        // No writer at all: empty, at once.
        assert_eq!(read_config_source(&fifo).unwrap(), b"");
        // A writer that takes its time: its end is open before the read
        // starts (O_RDWR opens a FIFO without waiting for a reader), so the
        // read must wait for the data and the close, however the threads run.
        let w = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .unwrap();
        let writer = std::thread::spawn(move || {
            let mut w = w;
            std::thread::sleep(std::time::Duration::from_millis(50));
            std::io::Write::write_all(&mut w, b"machine: {}\n").unwrap();
        });
        let got = read_config_source(&fifo).unwrap();
        writer.join().unwrap();
        assert_eq!(got, b"machine: {}\n");
        // Too much is refused.
        let (mut r, mut w) = std::io::pipe().unwrap();
        let big = std::thread::spawn(move || {
            let block = vec![b'a'; 1024 * 1024];
            for _ in 0..(MAX_INPUT_BYTES / block.len() as u64 + 2) {
                if std::io::Write::write_all(&mut w, &block).is_err() {
                    return;
                }
            }
        });
        let err = read_bounded(&mut r).unwrap_err();
        assert!(err.to_string().contains("MiB"), "{err}");
        drop(r);
        big.join().unwrap();
        // Devices are still refused.
        assert!(read_config_source(Path::new("/dev/zero")).is_err());
    }
}
