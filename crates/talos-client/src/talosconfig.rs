//! talosctl-compatible talosconfig: where to find it, how to read it, and
//! the admin credentials it holds.
//!
//! A talosconfig is YAML with a current `context` and a map of `contexts`;
//! each context holds `endpoints`, optional `nodes`, and `ca`/`crt`/`key`,
//! each **base64 (standard) of PEM**. Talos writes Ed25519 keys under the PEM
//! label `ED25519 PRIVATE KEY` with PKCS#8 inside, which Rust PEM parsers do
//! not know: the label is rewritten to `PRIVATE KEY` before parsing.
//!
//! The file holds the cluster admin key. Nothing here prints or logs key
//! material; [`Credentials`] has a redacting `Debug`, and errors name the
//! file, context and field but never quote values.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use yaml_serde::Value;

/// Where a credentials problem was found: a context of a talosconfig file,
/// or in-memory PEM handed to [`Credentials::from_pem`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File { path: PathBuf, context: String },
    Memory,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, context } => {
                write!(f, "talosconfig {}: context \"{context}\"", path.display())
            }
            Origin::Memory => f.write_str("client credentials"),
        }
    }
}

/// Everything that can be wrong with a talosconfig, each naming the file,
/// the context and the field involved.
#[derive(Debug, thiserror::Error)]
pub enum TalosconfigError {
    #[error("talosconfig {path} (from {via}) does not exist")]
    NotFound { path: PathBuf, via: &'static str },
    #[error(
        "no talosconfig found (looked at: {}); pass --talosconfig or set TALOSCONFIG",
        .tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NoneFound { tried: Vec<PathBuf> },
    #[error("talosconfig {path}: cannot read: {detail}")]
    Read { path: PathBuf, detail: String },
    #[error("talosconfig {path}: not valid YAML: {detail}")]
    Yaml { path: PathBuf, detail: String },
    #[error("talosconfig {path}: {detail}")]
    Shape { path: PathBuf, detail: String },
    #[error(
        "talosconfig {path}: no context selected (the file has no current `context`; \
         pass --context, one of: {})",
        .available.join(", ")
    )]
    NoContext {
        path: PathBuf,
        available: Vec<String>,
    },
    #[error(
        "talosconfig {path}: context \"{context}\" does not exist (contexts: {})",
        .available.join(", ")
    )]
    UnknownContext {
        path: PathBuf,
        context: String,
        available: Vec<String>,
    },
    #[error("{origin}: field \"{field}\": {detail}")]
    BadField {
        origin: Origin,
        field: &'static str,
        detail: String,
    },
    #[error("{origin}: field \"{field}\" is missing or empty")]
    MissingField { origin: Origin, field: &'static str },
    #[error(
        "{origin}: no client certificate: fields \"crt\" and \"key\" are missing{has}. talstrap \
         talks to nodes with a client certificate only (as apid checks it): use an admin \
         talosconfig with \"ca\", \"crt\" and \"key\", as `talosctl gen config` and talhelper write it"
    )]
    NoClientCertificate { origin: Origin, has: String },
    #[error("{origin}: field \"{field}\": invalid base64: {detail}")]
    Base64 {
        origin: Origin,
        field: &'static str,
        detail: String,
    },
    #[error("{origin}: field \"{field}\": invalid PEM: {detail}")]
    Pem {
        origin: Origin,
        field: &'static str,
        detail: String,
    },
    #[error("{origin}: field \"{field}\": certificate does not parse: {detail}")]
    Certificate {
        origin: Origin,
        field: &'static str,
        detail: String,
    },
    #[error("{origin}: field \"key\": unusable private key: {detail}")]
    Key { origin: Origin, detail: String },
    #[error(
        "{origin}: field \"key\": the private key does not belong to the certificate in \"crt\""
    )]
    KeyMismatch { origin: Origin },
    #[error(
        "{origin}: field \"crt\": the client certificate expired at {not_after} (unix {not_after_unix}); \
         generate a new talosconfig"
    )]
    ClientCertExpired {
        origin: Origin,
        not_after: String,
        not_after_unix: i64,
    },
    #[error(
        "{origin}: field \"crt\": the client certificate is not valid before {not_before}; check the clock"
    )]
    ClientCertNotYetValid { origin: Origin, not_before: String },
    #[error(
        "{origin}: field \"crt\": the client certificate's extended key usage is {found}, but Talos's \
         apid accepts only a client certificate whose extended key usage is exactly client \
         authentication and refuses any other during the TLS handshake; use an admin certificate \
         issued for client authentication only, as `talosctl gen config` and talhelper issue it"
    )]
    ClientCertUsage { origin: Origin, found: String },
}

/// A loaded talosconfig context.
#[derive(Debug, Clone)]
pub struct Talosconfig {
    pub path: PathBuf,
    pub context_name: String,
    pub endpoints: Vec<String>,
    pub nodes: Vec<String>,
    pub credentials: Arc<Credentials>,
    /// Non-fatal findings (e.g. a file readable by others).
    pub warnings: Vec<String>,
}

/// Admin credentials from a talosconfig: the cluster's Talos CA, the client
/// certificate chain and its key. `Debug` never shows the key.
pub struct Credentials {
    ca: Vec<CertificateDer<'static>>,
    ca_subjects: Vec<String>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    not_after: i64,
    roles: Vec<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("ca_subjects", &self.ca_subjects)
            .field("client_chain_len", &self.chain.len())
            .field("roles", &self.roles)
            .field("not_after", &self.not_after)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// Builds credentials from PEM text (CA bundle, client cert chain,
    /// client key). Checks that everything parses, that the key matches the
    /// certificate, and that the client certificate is valid now.
    pub fn from_pem(
        ca_pem: &[u8],
        crt_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<Self, TalosconfigError> {
        Self::build(&Origin::Memory, ca_pem, crt_pem, key_pem, unix_now())
    }

    /// The cluster CA certificate(s) to trust for node server certificates.
    pub fn ca_certs(&self) -> &[CertificateDer<'static>] {
        &self.ca
    }

    /// The subjects of the CA certificate(s), e.g. `O=talos`.
    pub fn ca_subjects(&self) -> &[String] {
        &self.ca_subjects
    }

    /// End of the client certificate's validity, Unix seconds.
    pub fn client_cert_not_after(&self) -> i64 {
        self.not_after
    }

    /// Talos roles granted by the client certificate (its Organization
    /// values, e.g. `os:admin`).
    pub fn roles(&self) -> Vec<String> {
        self.roles.clone()
    }

    /// The client certificate chain (leaf first).
    pub(crate) fn client_chain(&self) -> Vec<CertificateDer<'static>> {
        self.chain.clone()
    }

    /// A copy of the client key for building a TLS config.
    pub(crate) fn client_key(&self) -> PrivateKeyDer<'static> {
        self.key.clone_key()
    }

    fn build(
        origin: &Origin,
        ca_pem: &[u8],
        crt_pem: &[u8],
        key_pem: &[u8],
        now: i64,
    ) -> Result<Self, TalosconfigError> {
        let ca = parse_certs(origin, "ca", ca_pem)?;
        let mut ca_subjects = Vec::new();
        for der in &ca {
            let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| {
                TalosconfigError::Certificate {
                    origin: origin.clone(),
                    field: "ca",
                    detail: e.to_string(),
                }
            })?;
            ca_subjects.push(cert.subject().to_string());
        }

        let chain = parse_certs(origin, "crt", crt_pem)?;
        let (not_before, not_after, roles) = {
            let (_, leaf) = x509_parser::parse_x509_certificate(&chain[0]).map_err(|e| {
                TalosconfigError::Certificate {
                    origin: origin.clone(),
                    field: "crt",
                    detail: e.to_string(),
                }
            })?;
            let validity = leaf.validity();
            let roles = leaf
                .subject()
                .iter_organization()
                .filter_map(|attr| attr.as_str().ok())
                .filter(|role| !role.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>();
            (validity.not_before, validity.not_after, roles)
        };
        if now > not_after.timestamp() {
            return Err(TalosconfigError::ClientCertExpired {
                origin: origin.clone(),
                not_after: not_after.to_string(),
                not_after_unix: not_after.timestamp(),
            });
        }
        if now < not_before.timestamp() {
            return Err(TalosconfigError::ClientCertNotYetValid {
                origin: origin.clone(),
                not_before: not_before.to_string(),
            });
        }

        check_client_usage(origin, &chain)?;
        let key = parse_key(origin, key_pem)?;
        check_key_matches(origin, &chain, &key)?;

        Ok(Credentials {
            ca,
            ca_subjects,
            chain,
            key,
            not_after: not_after.timestamp(),
            roles,
        })
    }
}

/// apid checks every non-CA certificate of the client's verified chain:
/// its extended key usage must be exactly `[ClientAuth]` (Talos v1.12.11
/// `internal/app/apid/main.go` and v1.13.9/v1.14 `internal/app/apid/service.go`,
/// `verifyExtKeyUsage`: `slices.Equal(cert.ExtKeyUsage, {ClientAuth})`), so
/// no extension at all fails too. Go lists only the usages it knows in
/// `ExtKeyUsage` (unknown OIDs go to `UnknownExtKeyUsage`), so those alone
/// are not held against the certificate here.
fn check_client_usage(
    origin: &Origin,
    chain: &[CertificateDer<'static>],
) -> Result<(), TalosconfigError> {
    for der in chain {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
            continue; // the leaf parsed already; a broken intermediate fails in TLS
        };
        if cert.is_ca() {
            continue;
        }
        let found = match cert.extended_key_usage() {
            Ok(Some(ext)) => {
                let e = ext.value;
                let mut names = Vec::new();
                for (on, name) in [
                    (e.any, "any"),
                    (e.server_auth, "server authentication"),
                    (e.client_auth, "client authentication"),
                    (e.code_signing, "code signing"),
                    (e.email_protection, "e-mail protection"),
                    (e.time_stamping, "time stamping"),
                    (e.ocsp_signing, "OCSP signing"),
                ] {
                    if on {
                        names.push(name.to_string());
                    }
                }
                names.extend(
                    e.other
                        .iter()
                        .map(|oid| oid.to_id_string())
                        .filter(|oid| GO_KNOWN_USAGES.contains(&oid.as_str())),
                );
                names
            }
            Ok(None) => Vec::new(),
            Err(_) => vec!["unreadable".to_string()],
        };
        if found != ["client authentication"] {
            let found = if found.is_empty() {
                "missing".to_string()
            } else {
                found.join(" + ")
            };
            return Err(TalosconfigError::ClientCertUsage {
                origin: origin.clone(),
                found,
            });
        }
    }
    Ok(())
}

/// Extended key usages Go's crypto/x509 knows beyond the named ones above
/// (IPsec end system, tunnel, user; Microsoft and Netscape server-gated
/// crypto; Microsoft commercial and kernel code signing).
const GO_KNOWN_USAGES: [&str; 7] = [
    "1.3.6.1.5.5.7.3.5",
    "1.3.6.1.5.5.7.3.6",
    "1.3.6.1.5.5.7.3.7",
    "1.3.6.1.4.1.311.10.3.3",
    "2.16.840.1.113730.4.1",
    "1.3.6.1.4.1.311.2.1.22",
    "1.3.6.1.4.1.311.61.1.1",
];

fn parse_certs(
    origin: &Origin,
    field: &'static str,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TalosconfigError> {
    let mut certs = Vec::new();
    for item in CertificateDer::pem_slice_iter(pem) {
        let der = item.map_err(|e| TalosconfigError::Pem {
            origin: origin.clone(),
            field,
            detail: describe_pem_error(&e),
        })?;
        certs.push(der);
    }
    if certs.is_empty() {
        return Err(TalosconfigError::Pem {
            origin: origin.clone(),
            field,
            detail: "no CERTIFICATE block found".to_string(),
        });
    }
    Ok(certs)
}

fn parse_key(origin: &Origin, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TalosconfigError> {
    let text = std::str::from_utf8(pem).map_err(|_| TalosconfigError::Pem {
        origin: origin.clone(),
        field: "key",
        detail: "not text".to_string(),
    })?;
    let normalized = normalize_key_labels(text);
    PrivateKeyDer::from_pem_slice(normalized.as_bytes()).map_err(|e| TalosconfigError::Pem {
        origin: origin.clone(),
        field: "key",
        detail: match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "no PRIVATE KEY block found (expected ED25519/EC/RSA PRIVATE KEY or PRIVATE KEY)"
                    .to_string()
            }
            other => describe_pem_error(&other),
        },
    })
}

/// Checks the key against the leaf certificate the way rustls will when the
/// TLS config is built, so a mismatch is reported here with the file name.
fn check_key_matches(
    origin: &Origin,
    chain: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
) -> Result<(), TalosconfigError> {
    let provider = rustls::crypto::ring::default_provider();
    match rustls::sign::CertifiedKey::from_der(chain.to_vec(), key.clone_key(), &provider) {
        Ok(_) => Ok(()),
        Err(rustls::Error::InconsistentKeys(_)) => Err(TalosconfigError::KeyMismatch {
            origin: origin.clone(),
        }),
        Err(e) => Err(TalosconfigError::Key {
            origin: origin.clone(),
            detail: e.to_string(),
        }),
    }
}

/// A PEM error described without echoing any of the input.
fn describe_pem_error(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error as E;
    match e {
        E::MissingSectionEnd { .. } => "a PEM block has no END line".to_string(),
        E::IllegalSectionStart { .. } => "malformed BEGIN line".to_string(),
        E::Base64Decode(_) => "the PEM body is not valid base64".to_string(),
        E::NoItemsFound => "no PEM block found".to_string(),
        _ => "unreadable PEM".to_string(),
    }
}

/// Rewrites PEM labels such as `ED25519 PRIVATE KEY` (PKCS#8 inside, as
/// Talos writes them) to `PRIVATE KEY`. `RSA PRIVATE KEY` and
/// `EC PRIVATE KEY` keep their labels: their bodies are PKCS#1 and SEC1.
pub(crate) fn normalize_key_labels(pem: &str) -> String {
    let mut out = String::with_capacity(pem.len());
    for line in pem.lines() {
        let trimmed = line.trim_end();
        let rewritten = ["-----BEGIN ", "-----END "].iter().find_map(|prefix| {
            let label = trimmed.strip_prefix(prefix)?.strip_suffix("-----")?;
            let keep = matches!(label, "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY");
            (label.ends_with(" PRIVATE KEY") && !keep).then(|| format!("{prefix}PRIVATE KEY-----"))
        });
        match rewritten {
            Some(line) => out.push_str(&line),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Finds the talosconfig the way talosctl does
/// (`pkg/machinery/client/config/path.go`, Talos v1.12.11): `explicit`
/// (`--talosconfig`), then `$TALOSCONFIG`, then `config` in the Talos
/// directory, then `/var/run/secrets/talos.dev/config`. The Talos directory
/// is `$TALOS_HOME` when it is an absolute path (a relative one is ignored,
/// as talosctl ignores it), else `~/.talos`; it replaces `~/.talos`, it is
/// not searched in addition. An empty `$TALOSCONFIG` counts as unset, as in
/// talosctl, where it names no file.
///
/// Two differences, both on the safe side: a `$TALOSCONFIG` naming a
/// missing file is an error here (talosctl would quietly use the next
/// file, possibly another cluster's), and a default path that exists but
/// cannot be looked at (a symlink loop, a directory without permission) is
/// an error naming it rather than skipped.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, TalosconfigError> {
    locate_with(explicit, &|name| std::env::var(name).ok())
}

/// [`locate`] without `--talosconfig`, where having none is fine (a
/// maintenance-mode node needs none): `Ok(None)` when no default path
/// exists, an error when one exists but is unusable.
pub fn locate_optional() -> Result<Option<PathBuf>, TalosconfigError> {
    match locate(None) {
        Ok(p) => Ok(Some(p)),
        Err(TalosconfigError::NoneFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// [`locate`] with an injectable environment lookup.
pub(crate) fn locate_with(
    explicit: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<PathBuf, TalosconfigError> {
    if let Some(path) = explicit {
        return existing(path.to_path_buf(), "--talosconfig");
    }
    if let Some(path) = env("TALOSCONFIG").filter(|v| !v.is_empty()) {
        return existing(PathBuf::from(path), "$TALOSCONFIG");
    }
    let mut tried = Vec::new();
    let talos_home = env("TALOS_HOME").filter(|v| Path::new(v).is_absolute());
    if let Some(dir) = talos_home {
        tried.push(Path::new(&dir).join("config"));
    } else if let Some(home) = env("HOME").filter(|v| !v.is_empty()) {
        tried.push(Path::new(&home).join(".talos").join("config"));
    }
    tried.push(PathBuf::from("/var/run/secrets/talos.dev/config"));
    for p in &tried {
        match std::fs::metadata(p) {
            Ok(_) => return Ok(p.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // A dangling symlink is "not found" too, but it is a
                // mistake worth naming, not a file that is absent.
                if std::fs::symlink_metadata(p).is_ok() {
                    return Err(TalosconfigError::Read {
                        path: p.clone(),
                        detail: "a symlink to a file that does not exist".into(),
                    });
                }
            }
            Err(e) => {
                return Err(TalosconfigError::Read {
                    path: p.clone(),
                    detail: describe_io(&e),
                });
            }
        }
    }
    Err(TalosconfigError::NoneFound { tried })
}

fn existing(path: PathBuf, via: &'static str) -> Result<PathBuf, TalosconfigError> {
    match std::fs::metadata(&path) {
        Ok(_) => Ok(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(TalosconfigError::NotFound { path, via })
        }
        Err(e) => Err(TalosconfigError::Read {
            detail: describe_io(&e),
            path,
        }),
    }
}

/// An I/O error in words; a symlink loop says so (the OS text is terse).
fn describe_io(e: &std::io::Error) -> String {
    // ELOOP: 40 on Linux, 62 on the BSDs and macOS.
    const ELOOP: i32 = if cfg!(target_os = "linux") { 40 } else { 62 };
    if e.raw_os_error() == Some(ELOOP) {
        "a symlink loop (the link points back at itself)".to_string()
    } else {
        e.to_string()
    }
}

/// Largest talosconfig read (a file with dozens of contexts is a few
/// dozen KiB).
pub(crate) const MAX_TALOSCONFIG_BYTES: u64 = 1024 * 1024;

/// Reads a talosconfig defensively: a regular file (not a FIFO, which would
/// block, nor a device such as `/dev/zero`, which never ends) of at most
/// [`MAX_TALOSCONFIG_BYTES`], as UTF-8 without a byte order mark.
fn read_talosconfig(path: &Path) -> Result<String, TalosconfigError> {
    use std::io::Read as _;
    let fail = |detail: String| TalosconfigError::Read {
        path: path.to_path_buf(),
        detail,
    };
    let meta = std::fs::metadata(path).map_err(|e| fail(describe_io(&e)))?;
    if !meta.is_file() {
        return Err(fail("not a regular file".into()));
    }
    let too_big = || {
        fail(format!(
            "larger than the {} MiB a talosconfig may be",
            MAX_TALOSCONFIG_BYTES / (1024 * 1024)
        ))
    };
    if meta.len() > MAX_TALOSCONFIG_BYTES {
        return Err(too_big());
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_TALOSCONFIG_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| fail(describe_io(&e)))?;
    if bytes.len() as u64 > MAX_TALOSCONFIG_BYTES {
        return Err(too_big());
    }
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes);
    String::from_utf8(bytes.to_vec()).map_err(|_| fail("not UTF-8 text".into()))
}

/// Reads a talosconfig and selects `context` (or the file's current one).
pub fn load(path: &Path, context: Option<&str>) -> Result<Talosconfig, TalosconfigError> {
    let text = read_talosconfig(path)?;
    let mut config = parse(path, &text, context)?;
    config.warnings.extend(permission_warning(path));
    Ok(config)
}

/// Parses talosconfig text; `path` is only used in messages.
pub fn parse(
    path: &Path,
    text: &str,
    context: Option<&str>,
) -> Result<Talosconfig, TalosconfigError> {
    parse_at(path, text, context, unix_now())
}

fn parse_at(
    path: &Path,
    text: &str,
    context: Option<&str>,
    now: i64,
) -> Result<Talosconfig, TalosconfigError> {
    let shape = |detail: String| TalosconfigError::Shape {
        path: path.to_path_buf(),
        detail,
    };
    // Parse into a generic value first: typed deserialisation errors would
    // quote offending values, and those values may be key material.
    let doc: Value = yaml_serde::from_str(text).map_err(|e| TalosconfigError::Yaml {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    let top = match &doc {
        Value::Mapping(m) => m,
        Value::Null => return Err(shape("the file is empty".to_string())),
        _ => return Err(shape("the top level is not a mapping".to_string())),
    };
    let contexts = match top.get("contexts") {
        Some(Value::Mapping(m)) => m,
        Some(Value::Null) | None => return Err(shape("has no `contexts`".to_string())),
        Some(_) => return Err(shape("`contexts` is not a mapping".to_string())),
    };
    let available: Vec<String> = contexts
        .keys()
        .filter_map(|k| k.as_str().map(str::to_string))
        .collect();
    let current = match top.get("context") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::String(_)) | Some(Value::Null) | None => None,
        Some(_) => return Err(shape("`context` is not a string".to_string())),
    };
    let name = match context.map(str::to_string).or(current) {
        Some(name) => name,
        None => {
            return Err(TalosconfigError::NoContext {
                path: path.to_path_buf(),
                available,
            });
        }
    };
    let ctx = match contexts.get(name.as_str()) {
        Some(Value::Mapping(m)) => m,
        Some(_) => {
            return Err(shape(format!("context \"{name}\" is not a mapping")));
        }
        None => {
            return Err(TalosconfigError::UnknownContext {
                path: path.to_path_buf(),
                context: name,
                available,
            });
        }
    };
    let origin = Origin::File {
        path: path.to_path_buf(),
        context: name.clone(),
    };

    let mut endpoints = string_list(&origin, ctx, "endpoints")?;
    // Deprecated single `target`, folded into endpoints as talosctl does.
    if endpoints.is_empty()
        && let Some(Value::String(t)) = ctx.get("target")
        && !t.is_empty()
    {
        endpoints.push(t.clone());
    }
    let nodes = string_list(&origin, ctx, "nodes")?;

    check_has_client_certificate(&origin, ctx)?;
    let ca = decoded_field(&origin, ctx, "ca")?;
    let crt = decoded_field(&origin, ctx, "crt")?;
    let key = decoded_field(&origin, ctx, "key")?;
    let credentials = Credentials::build(&origin, &ca, &crt, &key, now)?;

    Ok(Talosconfig {
        path: path.to_path_buf(),
        context_name: name,
        endpoints,
        nodes,
        credentials: Arc::new(credentials),
        warnings: Vec::new(),
    })
}

/// A context with neither `crt` nor `key` (an Omni talosconfig signs in
/// with `auth.siderov1` instead, Talos's config.go `Auth`) cannot be used:
/// say what it lacks and what it has, before the generic "field missing".
fn check_has_client_certificate(
    origin: &Origin,
    ctx: &yaml_serde::Mapping,
) -> Result<(), TalosconfigError> {
    let present = |field: &str| match ctx.get(field) {
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(Value::Null) | None => false,
        Some(_) => true,
    };
    if present("crt") || present("key") {
        return Ok(());
    }
    let auth = match ctx.get("auth") {
        Some(Value::Mapping(m)) if m.contains_key("siderov1") => {
            Some("Omni (SideroV1) sign-in, `auth.siderov1`")
        }
        Some(Value::Mapping(m)) if m.contains_key("basic") => {
            Some("a user name and password, `auth.basic`")
        }
        _ => None,
    };
    Err(TalosconfigError::NoClientCertificate {
        origin: origin.clone(),
        has: auth
            .map(|a| format!("; it authenticates with {a} instead"))
            .unwrap_or_default(),
    })
}

fn string_list(
    origin: &Origin,
    ctx: &yaml_serde::Mapping,
    field: &'static str,
) -> Result<Vec<String>, TalosconfigError> {
    match ctx.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Sequence(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s.clone()),
                _ => Err(TalosconfigError::BadField {
                    origin: origin.clone(),
                    field,
                    detail: format!("item {i} is not a string"),
                }),
            })
            .collect(),
        Some(_) => Err(TalosconfigError::BadField {
            origin: origin.clone(),
            field,
            detail: "not a list of strings".to_string(),
        }),
    }
}

/// A `ca`/`crt`/`key` field: base64 (standard alphabet) of PEM.
fn decoded_field(
    origin: &Origin,
    ctx: &yaml_serde::Mapping,
    field: &'static str,
) -> Result<Vec<u8>, TalosconfigError> {
    let text = match ctx.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => s,
        Some(Value::String(_)) | Some(Value::Null) | None => {
            return Err(TalosconfigError::MissingField {
                origin: origin.clone(),
                field,
            });
        }
        Some(_) => {
            return Err(TalosconfigError::BadField {
                origin: origin.clone(),
                field,
                detail: "not a string".to_string(),
            });
        }
    };
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| TalosconfigError::Base64 {
            origin: origin.clone(),
            field,
            detail: e.to_string(),
        })
}

/// A warning when the file can be read by group or others: it holds the
/// cluster admin key.
fn permission_warning(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "talosconfig {p} is readable by group/others (mode {mode:04o}); it holds the admin key: chmod 600 {p}",
            p = path.display()
        )
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use crate::testkit::{Pki, client_cert, client_cert_with_validity};
    use std::collections::HashMap;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
    }

    /// A talosconfig with one context `home` built from the given PEMs.
    pub(crate) fn talosconfig_yaml(ca: &str, crt: &str, key: &str) -> String {
        format!(
            "context: home\ncontexts:\n  home:\n    endpoints:\n      - 127.0.0.1\n    nodes:\n      - 127.0.0.2\n    ca: {}\n    crt: {}\n    key: {}\n    cluster: home\n    unknownField: 42\n",
            b64(ca),
            b64(crt),
            b64(key)
        )
    }

    fn good() -> (Pki, String) {
        let pki = Pki::new("talos");
        let (crt, key) = client_cert(&pki, &["os:admin"]);
        let yaml = talosconfig_yaml(&pki.ca_pem, &crt, &key);
        (pki, yaml)
    }

    fn err_of(yaml: &str, ctx: Option<&str>) -> TalosconfigError {
        parse(Path::new("/x/talosconfig"), yaml, ctx).unwrap_err()
    }

    #[test]
    fn ed25519_label_is_rewritten_and_others_kept() {
        let pem = "-----BEGIN ED25519 PRIVATE KEY-----\nAAAA\n-----END ED25519 PRIVATE KEY-----\n";
        assert_eq!(
            normalize_key_labels(pem),
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
        );
        let ec = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
        assert_eq!(normalize_key_labels(ec), ec);
        let rsa = "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        assert_eq!(normalize_key_labels(rsa), rsa);
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert_eq!(normalize_key_labels(cert), cert);
    }

    #[test]
    fn loads_a_talos_style_config_with_ed25519_label() {
        let pki = Pki::new("talos");
        let (crt, key) = client_cert(&pki, &["os:admin"]);
        assert!(key.starts_with("-----BEGIN ED25519 PRIVATE KEY-----"));
        let yaml = talosconfig_yaml(&pki.ca_pem, &crt, &key);
        let cfg = parse(Path::new("/x/talosconfig"), &yaml, None).unwrap();
        assert_eq!(cfg.context_name, "home");
        assert_eq!(cfg.endpoints, vec!["127.0.0.1"]);
        assert_eq!(cfg.nodes, vec!["127.0.0.2"]);
        assert_eq!(cfg.credentials.roles(), vec!["os:admin"]);
        assert_eq!(cfg.credentials.ca_certs().len(), 1);
        assert_eq!(
            cfg.credentials.ca_certs()[0].as_ref(),
            pki.ca_der.as_slice()
        );
        assert!(cfg.credentials.client_cert_not_after() > unix_now());
    }

    #[test]
    fn debug_of_credentials_redacts_the_key() {
        let (_pki, yaml) = good();
        let cfg = parse(Path::new("/x/talosconfig"), &yaml, None).unwrap();
        let debug = format!("{:?}", cfg);
        assert!(debug.contains("<redacted>"));
        let key_der = cfg.credentials.client_key();
        let key_b64 = base64::engine::general_purpose::STANDARD.encode(key_der.secret_der());
        assert!(!debug.contains(&key_b64[..20]));
        assert!(!debug.contains("PRIVATE KEY"));
    }

    #[test]
    fn explicit_context_overrides_current() {
        let (pki, yaml) = good();
        let (crt, key) = client_cert(&pki, &["os:reader"]);
        let second = format!(
            "  work:\n    endpoints: [127.0.0.9]\n    ca: {}\n    crt: {}\n    key: {}\n",
            b64(&pki.ca_pem),
            b64(&crt),
            b64(&key)
        );
        let yaml = format!("{yaml}{second}");
        let cfg = parse(Path::new("/x/t"), &yaml, Some("work")).unwrap();
        assert_eq!(cfg.context_name, "work");
        assert_eq!(cfg.endpoints, vec!["127.0.0.9"]);
        assert_eq!(cfg.credentials.roles(), vec!["os:reader"]);
        let cfg = parse(Path::new("/x/t"), &yaml, None).unwrap();
        assert_eq!(cfg.context_name, "home");
    }

    #[test]
    fn missing_context_is_named() {
        let (_pki, yaml) = good();
        let e = err_of(&yaml, Some("prod"));
        assert!(matches!(e, TalosconfigError::UnknownContext { .. }));
        let text = e.to_string();
        assert!(
            text.contains("/x/talosconfig") && text.contains("\"prod\"") && text.contains("home"),
            "{text}"
        );
    }

    #[test]
    fn no_current_context_lists_choices() {
        let (_pki, yaml) = good();
        let yaml = yaml.replacen("context: home\n", "", 1);
        let e = err_of(&yaml, None);
        assert!(matches!(e, TalosconfigError::NoContext { .. }), "{e}");
        assert!(e.to_string().contains("home"));
    }

    #[test]
    fn missing_and_empty_fields_are_named() {
        let (_pki, yaml) = good();
        for field in ["ca", "crt", "key"] {
            let lines: Vec<&str> = yaml
                .lines()
                .filter(|l| !l.trim_start().starts_with(&format!("{field}:")))
                .collect();
            let e = err_of(&lines.join("\n"), None);
            assert!(matches!(e, TalosconfigError::MissingField { .. }), "{e}");
            assert_eq!(
                e.to_string(),
                format!(
                    "talosconfig /x/talosconfig: context \"home\": field \"{field}\" is missing or empty"
                )
            );
            let emptied: Vec<String> = yaml
                .lines()
                .map(|l| {
                    if l.trim_start().starts_with(&format!("{field}:")) {
                        format!("    {field}: \"\"")
                    } else {
                        l.to_string()
                    }
                })
                .collect();
            let e = err_of(&emptied.join("\n"), None);
            assert!(matches!(e, TalosconfigError::MissingField { .. }), "{e}");
        }
    }

    fn replace_field(yaml: &str, field: &str, value: &str) -> String {
        yaml.lines()
            .map(|l| {
                if l.trim_start().starts_with(&format!("{field}:")) {
                    format!("    {field}: {value}")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn bad_base64_names_file_context_and_field() {
        let (_pki, yaml) = good();
        let e = err_of(&replace_field(&yaml, "ca", "'not*base64'"), None);
        assert!(matches!(e, TalosconfigError::Base64 { .. }));
        assert!(
            e.to_string().starts_with(
                "talosconfig /x/talosconfig: context \"home\": field \"ca\": invalid base64: "
            ),
            "{e}"
        );
    }

    #[test]
    fn bad_pem_is_reported() {
        let (_pki, yaml) = good();
        let e = err_of(&replace_field(&yaml, "crt", &b64("hello, not pem")), None);
        assert!(
            matches!(e, TalosconfigError::Pem { field: "crt", .. }),
            "{e}"
        );
        let e = err_of(&replace_field(&yaml, "key", &b64("no key here")), None);
        assert!(
            matches!(e, TalosconfigError::Pem { field: "key", .. }),
            "{e}"
        );
    }

    #[test]
    fn unparseable_certificate_is_reported() {
        let (_pki, yaml) = good();
        let junk = "-----BEGIN CERTIFICATE-----\nAAECAwQF\n-----END CERTIFICATE-----\n";
        let e = err_of(&replace_field(&yaml, "ca", &b64(junk)), None);
        assert!(
            matches!(e, TalosconfigError::Certificate { field: "ca", .. }),
            "{e}"
        );
        let e = err_of(&replace_field(&yaml, "crt", &b64(junk)), None);
        assert!(
            matches!(e, TalosconfigError::Certificate { field: "crt", .. }),
            "{e}"
        );
    }

    #[test]
    fn expired_and_future_client_certs_are_rejected() {
        let pki = Pki::new("talos");
        let (crt, key) = client_cert_with_validity(&pki, &["os:admin"], (2001, 1, 1), (2002, 1, 1));
        let e = err_of(&talosconfig_yaml(&pki.ca_pem, &crt, &key), None);
        assert!(
            matches!(e, TalosconfigError::ClientCertExpired { .. }),
            "{e}"
        );
        assert!(e.to_string().contains("field \"crt\""));

        let (crt, key) = client_cert_with_validity(&pki, &["os:admin"], (2090, 1, 1), (2091, 1, 1));
        let e = err_of(&talosconfig_yaml(&pki.ca_pem, &crt, &key), None);
        assert!(
            matches!(e, TalosconfigError::ClientCertNotYetValid { .. }),
            "{e}"
        );
    }

    #[test]
    fn key_of_another_cert_is_a_mismatch() {
        let pki = Pki::new("talos");
        let (crt, _key) = client_cert(&pki, &["os:admin"]);
        let (_crt2, key2) = client_cert(&pki, &["os:admin"]);
        let e = err_of(&talosconfig_yaml(&pki.ca_pem, &crt, &key2), None);
        assert!(matches!(e, TalosconfigError::KeyMismatch { .. }), "{e}");
    }

    #[test]
    fn errors_never_contain_key_material() {
        let (_pki, yaml) = good();
        // A key placed where a list is expected must not be echoed back.
        let key_line = yaml
            .lines()
            .find(|l| l.trim_start().starts_with("key:"))
            .unwrap();
        let key_value = key_line
            .trim_start()
            .trim_start_matches("key:")
            .trim()
            .to_string();
        let broken = replace_field(&yaml, "endpoints", &key_value);
        let e = err_of(&broken, None);
        assert!(!e.to_string().contains(&key_value[..16]), "{e}");
        assert!(
            matches!(
                e,
                TalosconfigError::BadField {
                    field: "endpoints",
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn yaml_and_shape_errors_name_the_file() {
        let e = err_of("contexts: [unclosed", None);
        assert!(matches!(e, TalosconfigError::Yaml { .. }));
        assert!(e.to_string().contains("/x/talosconfig"));
        let e = err_of("", None);
        assert!(matches!(e, TalosconfigError::Shape { .. }));
        let e = err_of("context: a\n", None);
        assert!(matches!(e, TalosconfigError::Shape { .. }));
    }

    #[test]
    fn from_pem_accepts_raw_pem() {
        let pki = Pki::new("talos");
        let (crt, key) = client_cert(&pki, &["os:operator"]);
        let creds =
            Credentials::from_pem(pki.ca_pem.as_bytes(), crt.as_bytes(), key.as_bytes()).unwrap();
        assert_eq!(creds.roles(), vec!["os:operator"]);
        assert_eq!(creds.ca_subjects(), &["O=talos".to_string()]);
        let e = Credentials::from_pem(b"", crt.as_bytes(), key.as_bytes()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("client credentials: field \"ca\""),
            "{e}"
        );
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn lookup_order_follows_talosctl() {
        let dir = tempfile::tempdir().unwrap();
        let explicit = dir.path().join("explicit");
        let from_env = dir.path().join("env");
        let talos_home = dir.path().join("th");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&talos_home).unwrap();
        std::fs::create_dir_all(home.join(".talos")).unwrap();
        for p in [
            &explicit,
            &from_env,
            &talos_home.join("config"),
            &home.join(".talos/config"),
        ] {
            std::fs::write(p, "x").unwrap();
        }
        let th = talos_home.to_str().unwrap();
        let hm = home.to_str().unwrap();
        let fe = from_env.to_str().unwrap();
        let all = env_of(&[("TALOSCONFIG", fe), ("TALOS_HOME", th), ("HOME", hm)]);
        assert_eq!(locate_with(Some(&explicit), &all).unwrap(), explicit);
        assert_eq!(locate_with(None, &all).unwrap(), from_env);
        let no_env = env_of(&[("TALOS_HOME", th), ("HOME", hm)]);
        assert_eq!(
            locate_with(None, &no_env).unwrap(),
            talos_home.join("config")
        );
        let only_home = env_of(&[("HOME", hm)]);
        assert_eq!(
            locate_with(None, &only_home).unwrap(),
            home.join(".talos/config")
        );
        // An empty TALOSCONFIG names no file: as if unset.
        let empty = env_of(&[("TALOSCONFIG", ""), ("HOME", hm)]);
        assert_eq!(
            locate_with(None, &empty).unwrap(),
            home.join(".talos/config")
        );
        // TALOS_HOME replaces ~/.talos, as in talosctl: a TALOS_HOME
        // without a config does not fall back to ~/.talos/config.
        let empty_th = dir.path().join("empty");
        let replaced = env_of(&[("TALOS_HOME", empty_th.to_str().unwrap()), ("HOME", hm)]);
        match locate_with(None, &replaced).unwrap_err() {
            TalosconfigError::NoneFound { tried } => {
                assert_eq!(tried[0], empty_th.join("config"));
                assert!(!tried.contains(&home.join(".talos/config")), "{tried:?}");
            }
            other => panic!("{other}"),
        }
        // A relative TALOS_HOME is ignored, as talosctl ignores it.
        let relative = env_of(&[("TALOS_HOME", "th"), ("HOME", hm)]);
        assert_eq!(
            locate_with(None, &relative).unwrap(),
            home.join(".talos/config")
        );
    }

    #[test]
    fn a_symlink_loop_or_dangling_link_on_the_default_path_is_named_not_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let talos = dir.path().join("th");
        std::fs::create_dir_all(&talos).unwrap();
        let config = talos.join("config");
        std::os::unix::fs::symlink(&config, &config).unwrap();
        let env = env_of(&[("TALOS_HOME", talos.to_str().unwrap())]);
        let e = locate_with(None, &env).unwrap_err();
        assert!(e.to_string().contains("symlink loop"), "{e}");
        assert!(e.to_string().contains(config.to_str().unwrap()), "{e}");
        let e = locate_with(Some(&config), &env).unwrap_err();
        assert!(e.to_string().contains("symlink loop"), "{e}");

        std::fs::remove_file(&config).unwrap();
        std::os::unix::fs::symlink(dir.path().join("gone"), &config).unwrap();
        let e = locate_with(None, &env).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        assert!(matches!(e, TalosconfigError::Read { .. }), "{e}");
    }

    #[test]
    fn only_a_regular_file_of_bounded_size_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        // Would block forever if opened for reading.
        let e = load(&fifo, None).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let e = load(dir.path(), None).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let big = dir.path().join("big");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(100 * 1024 * 1024).unwrap(); // sparse: no 100 MB written
        let e = load(&big, None).unwrap_err();
        assert!(e.to_string().contains("larger than the 1 MiB"), "{e}");
        // A byte order mark is not content.
        let (_pki, yaml) = good();
        let bom = dir.path().join("bom");
        std::fs::write(&bom, [b"\xef\xbb\xbf".as_slice(), yaml.as_bytes()].concat()).unwrap();
        assert_eq!(load(&bom, None).unwrap().context_name, "home");
    }

    /// The key as Talos writes it: PKCS#8 v1 (seed only) under
    /// `ED25519 PRIVATE KEY`, re-wrapped from rcgen's v2 document.
    fn as_talos_v1(v2_pem: &str) -> String {
        let body: String = v2_pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        assert_eq!(der[4], 1, "rcgen writes v2");
        let mut v1 = vec![0x30, 0x2e, 0x02, 0x01, 0x00];
        v1.extend_from_slice(&der[5..48]);
        format!(
            "-----BEGIN ED25519 PRIVATE KEY-----\n{}\n-----END ED25519 PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(v1)
        )
    }

    #[test]
    fn ed25519_keys_in_pkcs8_v1_and_v2_both_load() {
        let pki = Pki::new("talos");
        let (crt, key_v2) = client_cert(&pki, &["os:admin"]);
        let key_v1 = as_talos_v1(&key_v2);
        for key in [&key_v2, &key_v1] {
            let cfg = parse(
                Path::new("/x/t"),
                &talosconfig_yaml(&pki.ca_pem, &crt, key),
                None,
            )
            .unwrap();
            crate::tls::secure_config(&cfg.credentials).unwrap();
        }
        // A v1 key of another certificate is still caught.
        let (_, other_v2) = client_cert(&pki, &["os:admin"]);
        let e = err_of(
            &talosconfig_yaml(&pki.ca_pem, &crt, &as_talos_v1(&other_v2)),
            None,
        );
        assert!(matches!(e, TalosconfigError::KeyMismatch { .. }), "{e}");
    }

    #[test]
    fn a_client_certificate_apid_would_refuse_for_its_usage_is_refused_up_front() {
        use rcgen::ExtendedKeyUsagePurpose as U;
        let pki = Pki::new("talos");
        let cases: [(&[U], &str); 4] = [
            (
                &[U::ClientAuth, U::ServerAuth],
                "server authentication + client authentication",
            ),
            (&[U::ServerAuth], "server authentication"),
            (&[], "missing"),
            (&[U::Any], "any"),
        ];
        for (usages, found) in cases {
            let (crt, key) = crate::testkit::client_cert_with_usages(&pki, usages);
            let e = err_of(&talosconfig_yaml(&pki.ca_pem, &crt, &key), None);
            assert!(
                matches!(e, TalosconfigError::ClientCertUsage { .. }),
                "{usages:?}: {e}"
            );
            let text = e.to_string();
            assert!(
                text.contains(&format!("extended key usage is {found},")),
                "{text}"
            );
            assert!(text.contains("exactly client authentication"), "{text}");
        }
        // Exactly ClientAuth passes; an OID Go does not know is not counted.
        let ok: [&[U]; 2] = [
            &[U::ClientAuth],
            &[U::ClientAuth, U::Other(vec![1, 3, 6, 1, 4, 1, 99999, 1])],
        ];
        for usages in ok {
            let (crt, key) = crate::testkit::client_cert_with_usages(&pki, usages);
            parse(
                Path::new("/x/t"),
                &talosconfig_yaml(&pki.ca_pem, &crt, &key),
                None,
            )
            .unwrap_or_else(|e| panic!("{usages:?}: {e}"));
        }
    }

    #[test]
    fn omni_context_without_a_client_certificate_says_what_it_lacks() {
        let omni = "context: omni\ncontexts:\n  omni:\n    endpoints:\n      - https://omni.example.com\n    auth:\n      siderov1:\n        identity: someone@example.com\n    cluster: home\n";
        let e = err_of(omni, None);
        let text = e.to_string();
        assert!(
            matches!(e, TalosconfigError::NoClientCertificate { .. }),
            "{e}"
        );
        for want in [
            "\"crt\" and \"key\" are missing",
            "Omni (SideroV1)",
            "auth.siderov1",
            "context \"omni\"",
        ] {
            assert!(text.contains(want), "{want}: {text}");
        }
        assert!(!text.contains("someone@example.com"), "{text}");
        let bare = "context: a\ncontexts:\n  a:\n    endpoints: [127.0.0.1]\n";
        let e = err_of(bare, None);
        assert!(
            matches!(e, TalosconfigError::NoClientCertificate { ref has, .. } if has.is_empty()),
            "{e}"
        );
    }

    #[test]
    fn lookup_errors_name_the_missing_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let env = env_of(&[]);
        let e = locate_with(Some(&missing), &env).unwrap_err();
        assert!(matches!(
            e,
            TalosconfigError::NotFound {
                via: "--talosconfig",
                ..
            }
        ));
        assert!(e.to_string().contains(missing.to_str().unwrap()));
        let env = env_of(&[("TALOSCONFIG", missing.to_str().unwrap())]);
        let e = locate_with(None, &env).unwrap_err();
        assert!(matches!(
            e,
            TalosconfigError::NotFound {
                via: "$TALOSCONFIG",
                ..
            }
        ));
        let env = env_of(&[("HOME", dir.path().to_str().unwrap())]);
        let e = locate_with(None, &env).unwrap_err();
        assert!(matches!(e, TalosconfigError::NoneFound { .. }), "{e}");
    }

    #[test]
    fn loose_file_mode_warns() {
        use std::os::unix::fs::PermissionsExt as _;
        let (_pki, yaml) = good();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("talosconfig");
        std::fs::write(&path, yaml).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let cfg = load(&path, None).unwrap();
        assert_eq!(cfg.warnings.len(), 1);
        assert!(cfg.warnings[0].contains("mode 0644") && cfg.warnings[0].contains("chmod 600"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let cfg = load(&path, None).unwrap();
        assert!(cfg.warnings.is_empty());
    }

    #[test]
    fn deprecated_target_becomes_an_endpoint() {
        let (_pki, yaml) = good();
        let yaml = yaml.replace(
            "    endpoints:\n      - 127.0.0.1\n",
            "    target: 127.0.0.5\n",
        );
        let cfg = parse(Path::new("/x/t"), &yaml, None).unwrap();
        assert_eq!(cfg.endpoints, vec!["127.0.0.5"]);
    }
}
