//! A local advisory lock per cluster, so that two `talstrap bootstrap` runs
//! on the same machine never send Bootstrap to two different control planes.
//!
//! The lock is `flock(2)` on a file named after the cluster identity (the
//! SHA-256 of the talosconfig CA's public key) in a private runtime
//! directory: `$TALSTRAP_RUNTIME_DIR`, else `$XDG_RUNTIME_DIR/talstrap`, else
//! `/tmp/talstrap-<uid>` (created mode 0700, refused when another user owns
//! it or it is a symbolic link). The kernel drops the lock when the process
//! exits, however it exits, so a crashed run never blocks the next one.
//! Runs on different machines do not share it (see RELIABILITY.md).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// A held lock; dropping it releases it.
#[derive(Debug)]
pub(crate) struct ClusterLock {
    _file: File,
}

/// Why the lock was not taken.
#[derive(Debug)]
pub(crate) enum LockError {
    /// The runtime directory or lock file cannot be used (a message).
    Unusable(String),
    /// Ctrl-C or the deadline while waiting for another run.
    Cancelled,
}

/// The directory holding the lock files.
pub(crate) fn runtime_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("TALSTRAP_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("talstrap");
    }
    match current_uid() {
        Some(uid) => std::env::temp_dir().join(format!("talstrap-{uid}")),
        None => std::env::temp_dir().join("talstrap"),
    }
}

/// This process's user ID (the owner of `/proc/self`), where it can be read.
fn current_uid() -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").ok().map(|m| m.uid())
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The cluster identity: the SHA-256 fingerprint of the CA certificate's
/// public key, in a file-name-safe alphabet (None when it does not parse).
pub(crate) fn cluster_key(ca_der: &[u8]) -> Option<String> {
    let fp = crate::talos::spki_fingerprint(ca_der).ok()?;
    Some(
        fp.trim_end_matches('=')
            .chars()
            .map(|c| match c {
                '/' => '_',
                '+' => '-',
                c => c,
            })
            .collect(),
    )
}

/// Create (0700) or check the runtime directory: ours, a directory, no link.
fn private_dir(dir: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut b = std::fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                b.mode(0o700);
            }
            b.create(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))
        }
        Err(e) => Err(format!("cannot inspect {}: {e}", dir.display())),
        Ok(md) if !md.file_type().is_dir() => Err(format!(
            "{} is not a directory (or is a symbolic link)",
            dir.display()
        )),
        Ok(md) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt;
                if let Some(uid) = current_uid()
                    && md.uid() != uid
                {
                    return Err(format!(
                        "{} belongs to another user (uid {})",
                        dir.display(),
                        md.uid()
                    ));
                }
            }
            Ok(())
        }
    }
}

fn open_lock_file(path: &Path) -> Result<File, String> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    opts.open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))
}

/// One non-blocking attempt (`flock(2)` on Unix). Ok(false): another
/// process (or another open of the file) holds it.
fn try_flock(file: &File) -> Result<bool, String> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(std::fs::TryLockError::WouldBlock) => Ok(false),
        Err(std::fs::TryLockError::Error(e)) => Err(format!("lock: {e}")),
    }
}

/// Take the lock for `key`, waiting (polling every 50 ms) while another run
/// holds it; `on_wait` is called once with the holder's note. `note` is
/// written into the file for the runs that wait.
pub(crate) async fn acquire(
    dir: &Path,
    key: &str,
    note: &str,
    cancel: &CancellationToken,
    on_wait: impl FnOnce(String),
) -> Result<ClusterLock, LockError> {
    private_dir(dir).map_err(LockError::Unusable)?;
    let path = dir.join(format!("bootstrap-{key}.lock"));
    let mut file = open_lock_file(&path).map_err(LockError::Unusable)?;
    let mut on_wait = Some(on_wait);
    loop {
        if try_flock(&file).map_err(LockError::Unusable)? {
            let _ = file.set_len(0);
            let _ = file.write_all(note.as_bytes());
            return Ok(ClusterLock { _file: file });
        }
        if let Some(f) = on_wait.take() {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            f(if holder.trim().is_empty() {
                "another talstrap run".into()
            } else {
                holder.trim().to_string()
            });
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = cancel.cancelled() => return Err(LockError::Cancelled),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_holder_waits_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let rt = dir.path().join("rt");
        let cancel = CancellationToken::new();
        let first = acquire(&rt, "k", "pid 1, target cp1", &cancel, |_| {})
            .await
            .unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let s2 = seen.clone();
        let c2 = cancel.clone();
        let rt2 = rt.clone();
        let waiter = tokio::spawn(async move {
            acquire(&rt2, "k", "pid 2", &c2, move |h| *s2.lock().unwrap() = h)
                .await
                .map(|_| ())
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!waiter.is_finished(), "took a held lock");
        assert_eq!(*seen.lock().unwrap(), "pid 1, target cp1");
        // Another cluster's lock is independent.
        let other = acquire(&rt, "other", "x", &cancel, |_| {}).await.unwrap();
        drop(other);
        drop(first);
        waiter.await.unwrap().unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&rt).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        // A waiter gives up on cancel.
        let held = acquire(&rt, "k", "x", &cancel, |_| {}).await.unwrap();
        let c3 = CancellationToken::new();
        c3.cancel();
        assert!(matches!(
            acquire(&rt, "k", "y", &c3, |_| {}).await,
            Err(LockError::Cancelled)
        ));
        drop(held);
    }
}
