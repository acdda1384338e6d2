//! Writing files that hold credentials (the kubeconfig): mode 0600 from the
//! first byte, atomically (temp file + fsync + rename), never overwriting an
//! existing file unless asked, and only ever replacing a regular file: a
//! device node, FIFO, socket, directory or symbolic link (dangling too) at
//! the path is refused, with or without `--force`.

use std::io::Write;
use std::path::{Path, PathBuf};

/// What is at the target path today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Existing {
    /// Nothing: the file will be created.
    Nothing,
    /// A regular file (replaced only with `--force`, or kept when it is the
    /// same cluster's kubeconfig).
    Regular,
}

/// Check the target before any node is touched: the path must name a file
/// (no trailing `/`), whatever is there must be a regular file, and its
/// directory must exist and be writable. Does not decide about an existing
/// regular file: the caller knows whether it may be kept or replaced.
pub(crate) fn check_target(path: &Path) -> Result<Existing, String> {
    let shown = path.display();
    let text = path.as_os_str().to_string_lossy();
    if text.is_empty() {
        return Err("the kubeconfig path is empty; give a file path".into());
    }
    if text.ends_with('/') || path.file_name().is_none() {
        return Err(format!(
            "{shown} names a directory (it ends with '/' or '..'); give a file path such as {}kubeconfig",
            if text.ends_with('/') {
                text.to_string()
            } else {
                format!("{text}/")
            }
        ));
    }
    let existing = match std::fs::symlink_metadata(path) {
        Ok(md) => {
            let ft = md.file_type();
            if ft.is_symlink() {
                let to = std::fs::read_link(path)
                    .map(|t| t.display().to_string())
                    .unwrap_or_else(|_| "?".into());
                let dangling = if path.exists() { "" } else { " (dangling)" };
                return Err(format!(
                    "{shown} is a symbolic link{dangling} to {to}; talstrap writes a kubeconfig only to a regular file or a new path, never through a link: give the real path"
                ));
            }
            if !ft.is_file() {
                return Err(format!(
                    "{shown} is {}; talstrap replaces only a regular file (or creates a new one): give another path",
                    kind_of(&ft)
                ));
            }
            Existing::Regular
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Existing::Nothing,
        Err(e) => return Err(format!("cannot inspect {shown}: {e}")),
    };
    let dir = parent_dir(path);
    if !dir.is_dir() {
        return Err(format!(
            "directory {} does not exist (for the kubeconfig {shown})",
            dir.display()
        ));
    }
    if !dir_writable(&dir) {
        return Err(format!(
            "directory {} is not writable: the kubeconfig {shown} could not be written there after the bootstrap; give a writable path",
            dir.display()
        ));
    }
    Ok(existing)
}

/// "a FIFO", "a character device", ... for a file type that is not regular.
fn kind_of(ft: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if ft.is_char_device() {
            return "a character device";
        }
        if ft.is_block_device() {
            return "a block device";
        }
        if ft.is_socket() {
            return "a socket";
        }
    }
    if ft.is_dir() {
        return "a directory";
    }
    "not a regular file"
}

/// Whether this process can create a file in `dir`: tried for real (an
/// empty probe file, removed at once), because permission bits say nothing
/// about root, read-only mounts or pseudo file systems.
fn dir_writable(dir: &Path) -> bool {
    let probe = dir.join(format!(".talstrap-probe-{}.tmp", std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(&probe) {
        Ok(f) => {
            drop(f);
            let _ = std::fs::remove_file(&probe);
            true
        }
        Err(_) => false,
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Write `bytes` to `path` atomically with mode 0600. The target is checked
/// again right before the rename: only a regular file (with `force`) or
/// nothing is ever replaced.
pub(crate) fn write_secret_file(path: &Path, bytes: &[u8], force: bool) -> std::io::Result<()> {
    let refuse = |msg: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, msg);
    match check_target(path).map_err(refuse)? {
        Existing::Regular if !force => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} already exists", path.display()),
            ));
        }
        _ => {}
    }
    let dir = parent_dir(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "kubeconfig".into());
    let tmp = dir.join(format!(".{name}.talstrap-{}.tmp", std::process::id()));
    let result = (|| {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        // Last look before replacing: something may have appeared meanwhile.
        match check_target(path).map_err(refuse)? {
            Existing::Regular if !force => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    format!("{} appeared while writing", path.display()),
                ));
            }
            _ => {}
        }
        std::fs::rename(&tmp, path)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_writable(path: &Path, force: bool) -> Result<(), String> {
        if check_target(path)? == Existing::Regular && !force {
            return Err(format!("{} already exists; pass --force", path.display()));
        }
        Ok(())
    }

    #[test]
    fn writes_0600_and_refuses_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kubeconfig");
        write_secret_file(&p, b"apiVersion: v1\n", false).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert!(write_secret_file(&p, b"other", false).is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"apiVersion: v1\n");
        assert!(check_writable(&p, false).unwrap_err().contains("--force"));
        write_secret_file(&p, b"new", true).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        // No temp files left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn missing_directory_is_reported() {
        let err =
            check_writable(Path::new("/nonexistent-talstrap-dir/kubeconfig"), false).unwrap_err();
        assert!(err.contains("does not exist"));
    }

    #[cfg(unix)]
    #[test]
    fn only_a_regular_file_or_nothing_may_be_replaced() {
        let dir = tempfile::tempdir().unwrap();
        // A FIFO: opening it for writing would block; it must be refused
        // before that, with or without force.
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let err = check_writable(&fifo, true).unwrap_err();
        assert!(err.contains("FIFO"), "{err}");
        assert!(write_secret_file(&fifo, b"x", true).is_err());
        {
            use std::os::unix::fs::FileTypeExt;
            assert!(
                std::fs::symlink_metadata(&fifo)
                    .unwrap()
                    .file_type()
                    .is_fifo()
            );
        }

        // A socket.
        let sock = dir.path().join("sock");
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        assert!(check_writable(&sock, true).unwrap_err().contains("socket"));

        // A symlink to a regular file, and a dangling one: refused even
        // with force, and the link target is left alone.
        let real = dir.path().join("real");
        std::fs::write(&real, b"keep").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(
            check_writable(&link, true)
                .unwrap_err()
                .contains("symbolic link")
        );
        assert!(write_secret_file(&link, b"new", true).is_err());
        assert_eq!(std::fs::read(&real).unwrap(), b"keep");
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        let err = check_writable(&dangling, false).unwrap_err();
        assert!(err.contains("dangling"), "{err}");
        assert!(write_secret_file(&dangling, b"new", false).is_err());
        assert!(!dir.path().join("nowhere").exists());

        // A directory, and a path with a trailing slash.
        assert!(
            check_writable(dir.path(), true)
                .unwrap_err()
                .contains("directory")
        );
        let slash = format!("{}/sub/", dir.path().display());
        assert!(
            check_writable(Path::new(&slash), false)
                .unwrap_err()
                .contains("ends with '/'")
        );

        // A regular file and nothing are fine.
        assert_eq!(check_target(&real).unwrap(), Existing::Regular);
        assert_eq!(
            check_target(&dir.path().join("new")).unwrap(),
            Existing::Nothing
        );
        // No probe or temp files left behind.
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["dangling", "fifo", "link", "real", "sock"]);
    }

    #[cfg(unix)]
    #[test]
    fn unwritable_directory_is_refused_up_front() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let ro = dir.path().join("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o500)).unwrap();
        let target = ro.join("kubeconfig");
        // Root may write anywhere; then the probe succeeds, which is the truth.
        let can_write = std::fs::write(ro.join("x"), b"").is_ok();
        let _ = std::fs::remove_file(ro.join("x"));
        let result = check_writable(&target, false);
        if can_write {
            assert!(result.is_ok(), "{result:?}");
        } else {
            assert!(result.unwrap_err().contains("not writable"));
        }
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
}
