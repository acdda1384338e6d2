//! Reading input files defensively: only regular files (not `/dev/zero`, a
//! FIFO or a directory), and never more than a sane size, so a hostile or
//! mistaken path cannot hang or exhaust the process.

use std::io::Read;
use std::path::Path;

/// Largest input file talstrap reads (machine configs are a few KiB).
pub const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024;

/// Read a regular file of at most [`MAX_INPUT_BYTES`].
pub fn read_input_file(path: &Path) -> std::io::Result<Vec<u8>> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
