//! Writing files that hold credentials (the kubeconfig): mode 0600 from the
//! first byte, atomically (temp file + fsync + rename), never overwriting an
//! existing file unless asked.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Refuse early (before any node is touched) when the target exists and
/// `force` is not set, or when its directory does not exist.
pub fn check_writable(path: &Path, force: bool) -> Result<(), String> {
    if path.exists() && !force {
        return Err(format!(
            "{} already exists; pass --force to replace it (talstrap never overwrites a kubeconfig silently)",
            path.display()
        ));
    }
    if path.is_dir() {
        return Err(format!(
            "{} is a directory; give a file path",
            path.display()
        ));
    }
    let dir = parent_dir(path);
    if !dir.is_dir() {
        return Err(format!("directory {} does not exist", dir.display()));
    }
    Ok(())
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Write `bytes` to `path` atomically with mode 0600.
pub fn write_secret_file(path: &Path, bytes: &[u8], force: bool) -> std::io::Result<()> {
    if path.exists() && !force {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} already exists", path.display()),
        ));
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
}
