//! Extracting the admin kubeconfig from the Kubeconfig RPC's payload.
//!
//! Talos streams a gzip'd tar holding one file, `kubeconfig`, but never
//! closes the tar writer: there is no end-of-archive marker and the last
//! block is not padded to 512 bytes. Strict tar readers choke on that, so
//! the single ustar header is read by hand and exactly `size` bytes are
//! taken after it.

use std::io::Read as _;

/// Size of a tar header block.
const BLOCK: usize = 512;
/// Refuse to inflate beyond this: a kubeconfig is a few KiB.
const MAX_INFLATED: u64 = 16 * 1024 * 1024;

/// Why the payload is not a kubeconfig archive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KubeconfigError {
    #[error("kubeconfig payload is not gzip data: {0}")]
    Gzip(String),
    #[error("kubeconfig archive is shorter than a tar header ({0} bytes)")]
    ShortHeader(usize),
    #[error("kubeconfig archive header checksum does not match")]
    Checksum,
    #[error("kubeconfig archive entry has an invalid size field")]
    BadSize,
    #[error("kubeconfig archive entry is \"{0}\", expected \"kubeconfig\"")]
    WrongName(String),
    #[error("kubeconfig archive entry is not a regular file (type {0:?})")]
    NotAFile(char),
    #[error("kubeconfig archive is truncated: header says {expected} bytes, {got} present")]
    Truncated { expected: u64, got: usize },
    #[error("kubeconfig archive is larger than {MAX_INFLATED} bytes")]
    TooLarge,
}

/// Un-gzips `payload` and returns the bytes of its `kubeconfig` entry.
pub fn extract_kubeconfig(payload: &[u8]) -> Result<Vec<u8>, KubeconfigError> {
    let tar = gunzip(payload)?;
    extract_first_entry(&tar)
}

/// Inflates all of `payload`. A gzip stream cut short after the data we
/// need is tolerated: the tar parser then decides whether enough arrived.
fn gunzip(payload: &[u8]) -> Result<Vec<u8>, KubeconfigError> {
    let mut out = Vec::new();
    let mut reader = flate2::read::GzDecoder::new(payload).take(MAX_INFLATED + 1);
    match reader.read_to_end(&mut out) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !out.is_empty() => {}
        Err(e) => return Err(KubeconfigError::Gzip(e.to_string())),
    }
    if out.len() as u64 > MAX_INFLATED {
        return Err(KubeconfigError::TooLarge);
    }
    Ok(out)
}

/// Reads the first ustar entry of `tar` (no end marker or padding needed).
pub(crate) fn extract_first_entry(tar: &[u8]) -> Result<Vec<u8>, KubeconfigError> {
    let header = tar
        .get(..BLOCK)
        .ok_or(KubeconfigError::ShortHeader(tar.len()))?;
    verify_checksum(header)?;

    let name = cstr(&header[0..100]);
    let prefix = if &header[257..262] == b"ustar" {
        cstr(&header[345..500])
    } else {
        String::new()
    };
    let full_name = if prefix.is_empty() {
        name
    } else {
        format!("{prefix}/{name}")
    };
    let typeflag = header[156];
    if typeflag != b'0' && typeflag != 0 {
        return Err(KubeconfigError::NotAFile(char::from(typeflag)));
    }
    let trimmed = full_name.trim_start_matches("./");
    if trimmed != "kubeconfig" {
        return Err(KubeconfigError::WrongName(full_name));
    }
    let size = parse_size(&header[124..136])?;
    let body = &tar[BLOCK..];
    let size_usize = usize::try_from(size).map_err(|_| KubeconfigError::BadSize)?;
    if body.len() < size_usize {
        return Err(KubeconfigError::Truncated {
            expected: size,
            got: body.len(),
        });
    }
    Ok(body[..size_usize].to_vec())
}

/// The header checksum: the sum of all header bytes with the checksum field
/// (148..156) counted as spaces, stored as octal.
fn verify_checksum(header: &[u8]) -> Result<(), KubeconfigError> {
    let stored = parse_octal(&header[148..156]).ok_or(KubeconfigError::Checksum)?;
    let computed: u64 = header
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                u64::from(b' ')
            } else {
                u64::from(*b)
            }
        })
        .sum();
    if stored == computed {
        Ok(())
    } else {
        Err(KubeconfigError::Checksum)
    }
}

/// The size field: octal ASCII, or GNU base-256 when the high bit is set.
fn parse_size(field: &[u8]) -> Result<u64, KubeconfigError> {
    if field[0] & 0x80 != 0 {
        let mut value: u64 = u64::from(field[0] & 0x7f);
        for b in &field[1..] {
            value = value
                .checked_mul(256)
                .and_then(|v| v.checked_add(u64::from(*b)))
                .ok_or(KubeconfigError::BadSize)?;
        }
        return Ok(value);
    }
    parse_octal(field).ok_or(KubeconfigError::BadSize)
}

/// Octal digits padded with spaces or NULs on either side.
fn parse_octal(field: &[u8]) -> Option<u64> {
    let text: &[u8] = {
        let start = field.iter().position(|b| *b != b' ' && *b != 0)?;
        let rest = &field[start..];
        let end = rest
            .iter()
            .position(|b| *b == b' ' || *b == 0)
            .unwrap_or(rest.len());
        &rest[..end]
    };
    text.iter().try_fold(0u64, |acc, b| match b {
        b'0'..=b'7' => acc.checked_mul(8)?.checked_add(u64::from(b - b'0')),
        _ => None,
    })
}

fn cstr(field: &[u8]) -> String {
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// Builds what Talos sends: a ustar header and the file bytes, no padding
/// and no end marker, gzip'd. Used by tests here and by the simulator.
pub fn build_unterminated_archive(name: &str, content: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut tar = tar_header(name, content.len() as u64, b'0');
    tar.extend_from_slice(content);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing into a Vec cannot fail.
    let _ = gz.write_all(&tar);
    gz.finish().unwrap_or_default()
}

/// A 512-byte ustar header for one entry.
fn tar_header(name: &str, size: u64, typeflag: u8) -> Vec<u8> {
    let mut h = vec![0u8; BLOCK];
    let name = name.as_bytes();
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    h[100..108].copy_from_slice(b"0000600\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = typeflag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const KUBECONFIG: &[u8] = b"apiVersion: v1\nkind: Config\nclusters: []\n";

    #[test]
    fn unpadded_archive_without_end_marker_is_read() {
        let gz = build_unterminated_archive("kubeconfig", KUBECONFIG);
        assert_eq!(extract_kubeconfig(&gz).unwrap(), KUBECONFIG);
    }

    #[test]
    fn a_padded_archive_with_end_marker_also_works() {
        let mut tar = tar_header("kubeconfig", KUBECONFIG.len() as u64, b'0');
        tar.extend_from_slice(KUBECONFIG);
        tar.resize(tar.len().div_ceil(BLOCK) * BLOCK + 2 * BLOCK, 0);
        assert_eq!(extract_first_entry(&tar).unwrap(), KUBECONFIG);
    }

    #[test]
    fn truncated_content_is_an_error() {
        let mut tar = tar_header("kubeconfig", KUBECONFIG.len() as u64, b'0');
        tar.extend_from_slice(&KUBECONFIG[..10]);
        assert_eq!(
            extract_first_entry(&tar),
            Err(KubeconfigError::Truncated {
                expected: KUBECONFIG.len() as u64,
                got: 10
            })
        );
    }

    #[test]
    fn truncated_gzip_stream_with_enough_data_is_accepted() {
        let gz = build_unterminated_archive("kubeconfig", KUBECONFIG);
        // Cut off the 8-byte gzip trailer (CRC + size).
        let cut = &gz[..gz.len() - 8];
        assert_eq!(extract_kubeconfig(cut).unwrap(), KUBECONFIG);
    }

    #[test]
    fn short_header_wrong_name_and_type_are_errors() {
        assert_eq!(
            extract_first_entry(&[0u8; 100]),
            Err(KubeconfigError::ShortHeader(100))
        );
        let tar = tar_header("passwd", 3, b'0');
        assert_eq!(
            extract_first_entry(&tar),
            Err(KubeconfigError::WrongName("passwd".into()))
        );
        let tar = tar_header("kubeconfig", 0, b'5');
        assert_eq!(
            extract_first_entry(&tar),
            Err(KubeconfigError::NotAFile('5'))
        );
    }

    #[test]
    fn corrupted_header_fails_the_checksum() {
        let mut tar = tar_header("kubeconfig", KUBECONFIG.len() as u64, b'0');
        tar.extend_from_slice(KUBECONFIG);
        tar[3] ^= 0x01;
        assert_eq!(extract_first_entry(&tar), Err(KubeconfigError::Checksum));
    }

    #[test]
    fn not_gzip_is_an_error() {
        assert!(matches!(
            extract_kubeconfig(b"plain text"),
            Err(KubeconfigError::Gzip(_))
        ));
    }

    #[test]
    fn size_fields_parse_octal_and_base256() {
        assert_eq!(parse_size(b"00000000052\0").unwrap(), 42);
        assert_eq!(parse_size(b"   52 \0\0\0\0\0\0").unwrap(), 42);
        let mut b256 = [0u8; 12];
        b256[0] = 0x80;
        b256[10] = 0x01;
        b256[11] = 0x02;
        assert_eq!(parse_size(&b256).unwrap(), 258);
        assert!(parse_size(b"0000000009x\0").is_err());
    }
}
