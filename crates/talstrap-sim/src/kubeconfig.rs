//! The admin kubeconfig a control plane hands out, packed exactly as Talos
//! packs it: a gzip'd tar holding one file `kubeconfig` (mode 0600) whose
//! writer is never closed, so the last entry has no padding to 512 bytes and
//! there is no end-of-archive marker. Clients must read one header and
//! exactly `size` bytes.

use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use flate2::Compression;
use flate2::write::GzEncoder;

use super::applied_config::AppliedConfig;
use super::pki::{self, CertAndKey, PkiError};

/// The admin kubeconfig YAML for `cfg`'s cluster: server = the cluster's
/// control-plane endpoint, CA = `cluster.ca.crt`, client certificate signed
/// by the cluster CA (O=system:masters, CN=admin).
pub fn kubeconfig_yaml(cfg: &AppliedConfig) -> Result<String, PkiError> {
    let ca = cfg
        .cluster_ca
        .as_ref()
        .ok_or(PkiError::BadPem { what: "cluster.ca" })?;
    let key = ca.key_pem.as_ref().ok_or(PkiError::BadPem {
        what: "cluster.ca.key",
    })?;
    let admin = pki::issue_k8s_admin(&CertAndKey {
        cert_pem: ca.crt_pem.clone(),
        key_pem: key.clone(),
    })?;
    let name = if cfg.cluster_name.is_empty() {
        "talos"
    } else {
        cfg.cluster_name.as_str()
    };
    let user = format!("admin@{name}");
    Ok(format!(
        "apiVersion: v1\nkind: Config\nclusters:\n    - name: {name}\n      cluster:\n        server: {server}\n        certificate-authority-data: {ca}\nusers:\n    - name: {user}\n      user:\n        client-certificate-data: {crt}\n        client-key-data: {key}\ncontexts:\n    - context:\n        cluster: {name}\n        namespace: default\n        user: {user}\n      name: {user}\ncurrent-context: {user}\n",
        server = cfg.endpoint,
        ca = B64.encode(&ca.crt_pem),
        crt = B64.encode(&admin.cert_pem),
        key = B64.encode(&admin.key_pem),
    ))
}

fn octal(field: &mut [u8], value: u64) {
    // Zero-padded octal digits followed by a NUL, filling the field.
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&text.as_bytes()[text.len() - digits..]);
    field[digits] = 0;
}

/// One ustar header for a regular file.
pub fn ustar_header(name: &str, mode: u32, size: u64, mtime: u64) -> [u8; 512] {
    let mut h = [0u8; 512];
    let n = name.as_bytes();
    h[..n.len().min(100)].copy_from_slice(&n[..n.len().min(100)]);
    octal(&mut h[100..108], u64::from(mode));
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], mtime);
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    // The checksum is computed with its own field set to spaces.
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    let text = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(text.as_bytes());
    h
}

/// gzip(ustar header + contents), with no padding and no end marker.
pub fn pack(contents: &[u8], mtime: u64) -> std::io::Result<Vec<u8>> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&ustar_header(
        "kubeconfig",
        0o600,
        contents.len() as u64,
        mtime,
    ))?;
    gz.write_all(contents)?;
    gz.finish()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn archive_has_one_entry_and_no_end_marker() {
        let body = b"apiVersion: v1\nkind: Config\n";
        let packed = pack(body, 1_700_000_000).unwrap();
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(&packed[..])
            .read_to_end(&mut raw)
            .unwrap();
        assert_eq!(raw.len(), 512 + body.len(), "no padding, no end marker");
        let h = &raw[..512];
        assert_eq!(&h[..10], b"kubeconfig");
        assert_eq!(&h[257..263], b"ustar\0");
        assert_eq!(h[156], b'0');
        let size = std::str::from_utf8(&h[124..135]).unwrap();
        assert_eq!(u64::from_str_radix(size, 8).unwrap(), body.len() as u64);
        let mode = std::str::from_utf8(&h[100..107]).unwrap();
        assert_eq!(u32::from_str_radix(mode, 8).unwrap(), 0o600);
        let stored: u32 =
            u32::from_str_radix(std::str::from_utf8(&h[148..154]).unwrap(), 8).unwrap();
        let mut copy = h.to_vec();
        copy[148..156].copy_from_slice(b"        ");
        assert_eq!(stored, copy.iter().map(|b| u32::from(*b)).sum::<u32>());
        assert_eq!(&raw[512..], body);
    }
}
