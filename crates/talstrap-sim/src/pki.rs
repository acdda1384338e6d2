//! Certificates and keys for the simulated fleet, shaped like Talos's own.
//!
//! The Talos OS CA is Ed25519, self-signed, `O=talos`, valid ten years, with
//! KeyUsage CertSign+DigitalSignature and EKU ServerAuth+ClientAuth. Client
//! certificates carry their roles in Subject O and EKU exactly ClientAuth;
//! node API server certificates live 24 h. Talos writes Ed25519 keys as
//! PKCS#8 under the label `ED25519 PRIVATE KEY`, which we reproduce (and
//! accept) so generated files look like real talosctl output.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, SanType,
};
use thiserror::Error;
use x509_parser::prelude::{FromDer, ParsedExtension, X509Certificate};

/// PEM label Talos uses for Ed25519 keys (PKCS#8 inside).
pub const TALOS_ED25519_LABEL: &str = "ED25519 PRIVATE KEY";

/// How long the OS CA lives (Talos: 87600 h).
pub const CA_VALIDITY: Duration = Duration::from_secs(87_600 * 3600);
/// Admin client certificate lifetime (talhelper `--crt-ttl` default 8760 h).
pub const CLIENT_VALIDITY: Duration = Duration::from_secs(8_760 * 3600);
/// Node API server certificates are re-issued constantly and live 24 h.
pub const SERVER_VALIDITY: Duration = Duration::from_secs(24 * 3600);

/// Errors while making or reading certificates.
#[derive(Debug, Error)]
pub enum PkiError {
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{what} is not valid PEM")]
    BadPem { what: &'static str },
    #[error("{what} could not be parsed: {reason}")]
    BadCert { what: &'static str, reason: String },
}

/// A PEM certificate and its PEM private key. `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CertAndKey {
    pub cert_pem: String,
    pub key_pem: String,
}

impl fmt::Debug for CertAndKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertAndKey")
            .field("cert_pem", &format_args!("<{} bytes>", self.cert_pem.len()))
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `(not_before, not_after)` for a certificate valid from an hour ago (clock
/// skew, as Talos does) for `validity`.
fn validity_window(params: &mut CertificateParams, validity: Duration) {
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    let now = Duration::from_secs(unix_now());
    params.not_before = epoch + now.saturating_sub(Duration::from_secs(3600));
    params.not_after = epoch + now + validity;
}

/// A new random Ed25519 key: 32 bytes from the system's random source, as
/// ring's own key generation takes them, read as PKCS#8 v1 (the seed
/// alone). rcgen's `generate_for` writes PKCS#8 v2 and reads it back,
/// deriving the public key twice; this derives it once.
fn ed25519_key() -> Result<KeyPair, PkiError> {
    use ring::rand::SecureRandom as _;
    let mut seed = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut seed)
        .map_err(|_| PkiError::Generate(rcgen::Error::RingUnspecified))?;
    let mut der = ED25519_PKCS8_V1_PREFIX.to_vec();
    der.extend_from_slice(&seed);
    let pkcs8 = rustls::pki_types::PrivatePkcs8KeyDer::from(der);
    Ok(KeyPair::from_pkcs8_der_and_sign_algo(
        &pkcs8,
        &rcgen::PKCS_ED25519,
    )?)
}

/// PKCS#8 v1 (RFC 5208) of an Ed25519 key, up to the 32-byte seed:
/// `SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 }, OCTET STRING {
/// OCTET STRING seed } }`, with no public key.
const ED25519_PKCS8_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Writes an Ed25519 key the way Talos does: siderolabs/crypto
/// `x509/key.go` (`NewEd25519Key`) marshals it with Go's
/// `x509.MarshalPKCS8PrivateKey`, which writes PKCS#8 **v1** (version 0, the
/// seed only, no public key), under the PEM label `ED25519 PRIVATE KEY`
/// (`x509/constants.go`). ring writes v2 (version 1, public key included),
/// which OpenSSL-based clients refuse, so the seed is re-wrapped as v1.
/// Other key types keep rcgen's encoding under their usual label.
pub fn talos_key_pem(key: &KeyPair) -> String {
    use base64::Engine as _;
    let der = key.serialize_der();
    // ring's v2: `SEQUENCE { INTEGER 1, the same algorithm, the same
    // wrapped seed, [1] public key }`: bytes 5..16 match the v1 header, the
    // seed follows them.
    let is_ed25519_v2 = der.len() > 48
        && der[0] == 0x30
        && der[2..5] == [0x02, 0x01, 0x01]
        && der[5..16] == ED25519_PKCS8_V1_PREFIX[5..16];
    // Already v1 (the seed alone, as `ed25519_key` makes them).
    let is_ed25519_v1 = der.len() == 48 && der[..16] == ED25519_PKCS8_V1_PREFIX;
    let body = if is_ed25519_v2 {
        let mut v1 = ED25519_PKCS8_V1_PREFIX.to_vec();
        v1.extend_from_slice(&der[16..48]);
        v1
    } else if is_ed25519_v1 {
        der.to_vec()
    } else {
        return key.serialize_pem();
    };
    let b64 = base64::engine::general_purpose::STANDARD.encode(&body);
    let mut pem = format!("-----BEGIN {TALOS_ED25519_LABEL}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {TALOS_ED25519_LABEL}-----\n"));
    pem
}

/// Rewrites Talos's `ED25519 PRIVATE KEY` label to the standard PKCS#8 one
/// so that rcgen and rustls can read it. Other labels pass unchanged.
pub fn normalize_key_pem(pem: &str) -> String {
    pem.replace(&format!("BEGIN {TALOS_ED25519_LABEL}"), "BEGIN PRIVATE KEY")
        .replace(&format!("END {TALOS_ED25519_LABEL}"), "END PRIVATE KEY")
}

/// Parses a private key PEM (PKCS#8, `ED25519 PRIVATE KEY` accepted).
pub fn load_key(pem: &str) -> Result<KeyPair, PkiError> {
    KeyPair::from_pem(&normalize_key_pem(pem)).map_err(|_| PkiError::BadPem {
        what: "private key",
    })
}

/// First certificate of a PEM bundle, as DER.
pub fn first_cert_der(pem: &str, what: &'static str) -> Result<Vec<u8>, PkiError> {
    all_certs_der(pem, what)?
        .into_iter()
        .next()
        .ok_or(PkiError::BadPem { what })
}

/// Every certificate of a PEM bundle, as DER.
pub fn all_certs_der(pem: &str, what: &'static str) -> Result<Vec<Vec<u8>>, PkiError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|c| c.map(|c| c.as_ref().to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| PkiError::BadPem { what })
}

fn base_params(dn: DistinguishedName, validity: Duration) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    validity_window(&mut params, validity);
    params
}

/// A self-signed CA with Talos's CA shape: CertSign+DigitalSignature,
/// EKU ServerAuth+ClientAuth, ten years.
fn self_signed_ca(key: &KeyPair, dn: DistinguishedName) -> Result<String, PkiError> {
    let mut params = base_params(dn, CA_VALIDITY);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    Ok(params.self_signed(key)?.pem())
}

/// A new Talos OS CA (see module docs).
pub fn new_talos_ca() -> Result<CertAndKey, PkiError> {
    let key = ed25519_key()?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "talos");
    Ok(CertAndKey {
        cert_pem: self_signed_ca(&key, dn)?,
        key_pem: talos_key_pem(&key),
    })
}

/// A self-signed ECDSA P-256 CA (Kubernetes, etcd, aggregator CAs), as
/// `talosctl gen secrets` makes them. The key is PKCS#8 PEM.
pub fn new_ecdsa_ca(organization: Option<&str>, common_name: &str) -> Result<CertAndKey, PkiError> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut dn = DistinguishedName::new();
    if let Some(o) = organization {
        dn.push(DnType::OrganizationName, o);
    }
    if !common_name.is_empty() {
        dn.push(DnType::CommonName, common_name);
    }
    Ok(CertAndKey {
        cert_pem: self_signed_ca(&key, dn)?,
        key_pem: key.serialize_pem(),
    })
}

/// A bare ECDSA P-256 private key (PKCS#8 PEM), e.g. the service account key.
pub fn new_ecdsa_key_pem() -> Result<String, PkiError> {
    Ok(KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?.serialize_pem())
}

/// Rebuilds an rcgen issuer from a CA certificate and key in PEM, keeping
/// the CA's subject and subject key identifier so that issued certificates
/// chain to it by name and by key id.
fn issuer_from(ca: &CertAndKey) -> Result<Issuer<'static, KeyPair>, PkiError> {
    let der = first_cert_der(&ca.cert_pem, "CA certificate")?;
    let (_, cert) = X509Certificate::from_der(&der).map_err(|e| PkiError::BadCert {
        what: "CA certificate",
        reason: e.to_string(),
    })?;
    let mut dn = DistinguishedName::new();
    for attr in cert.subject().iter_attributes() {
        let Ok(value) = attr.as_str() else { continue };
        let oid: Vec<u64> = attr
            .attr_type()
            .iter()
            .map(|it| it.collect())
            .unwrap_or_default();
        dn.push(DnType::from_oid(&oid), value);
    }
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    for ext in cert.extensions() {
        if let ParsedExtension::SubjectKeyIdentifier(ski) = ext.parsed_extension() {
            params.key_identifier_method = KeyIdMethod::PreSpecified(ski.0.to_vec());
        }
    }
    Ok(Issuer::new(params, load_key(&ca.key_pem)?))
}

/// A CA ready to sign: its subject, key identifier and private key, read
/// from the PEM once for every certificate it issues.
pub struct CaSigner {
    issuer: Issuer<'static, KeyPair>,
}

impl CaSigner {
    /// Reads `ca` (see `issuer_from`).
    pub fn new(ca: &CertAndKey) -> Result<Self, PkiError> {
        Ok(Self {
            issuer: issuer_from(ca)?,
        })
    }
}

/// Most CAs [`signer_for`] keeps; beyond it the cache starts over (a fleet
/// has a few long-lived CAs: each cluster's OS and Kubernetes CAs).
const SIGNER_CACHE_LIMIT: usize = 64;

static SIGNERS: LazyLock<Mutex<HashMap<CertAndKey, Arc<CaSigner>>>> = LazyLock::new(Mutex::default);

/// The signer of a long-lived CA, read once per process: every node of a
/// cluster has its apid certificate issued by the same OS CA, and parsing
/// the key is most of the cost of an issue. Errors are not kept (a bad CA
/// is read, and refused, at each use).
fn signer_for(ca: &CertAndKey) -> Result<Arc<CaSigner>, PkiError> {
    if let Some(hit) = recall(&SIGNERS, ca) {
        return Ok(hit);
    }
    let signer = Arc::new(CaSigner::new(ca)?);
    remember(&SIGNERS, SIGNER_CACHE_LIMIT, ca.clone(), signer.clone());
    Ok(signer)
}

/// What a process-wide cache holds for `key`.
pub(crate) fn recall<K, Q, V>(cache: &Mutex<HashMap<K, V>>, key: &Q) -> Option<V>
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: std::hash::Hash + Eq + ?Sized,
    V: Clone,
{
    cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(key)
        .cloned()
}

/// Puts `value` in a process-wide cache of at most `limit` entries (it
/// starts over when full: the fleets a process runs use a handful).
pub(crate) fn remember<K: std::hash::Hash + Eq, V>(
    cache: &Mutex<HashMap<K, V>>,
    limit: usize,
    key: K,
    value: V,
) {
    let mut map = cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if map.len() >= limit {
        map.clear();
    }
    map.insert(key, value);
}

/// An Ed25519 client certificate for the Talos API: Subject O = `roles`
/// (no CN), KeyUsage DigitalSignature, EKU exactly ClientAuth.
pub fn issue_client_cert(ca: &CertAndKey, roles: &[&str]) -> Result<CertAndKey, PkiError> {
    issue_client_cert_with(ca, roles, &[ExtendedKeyUsagePurpose::ClientAuth])
}

/// Like [`issue_client_cert`] but with any EKU list (tests use this to
/// prove a node rejects certificates whose EKU is not exactly ClientAuth).
pub fn issue_client_cert_with(
    ca: &CertAndKey,
    roles: &[&str],
    eku: &[ExtendedKeyUsagePurpose],
) -> Result<CertAndKey, PkiError> {
    let signer = signer_for(ca)?;
    let key = ed25519_key()?;
    let mut dn = DistinguishedName::new();
    for role in roles {
        dn.push(DnType::OrganizationName, *role);
    }
    let mut params = base_params(dn, CLIENT_VALIDITY);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = eku.to_vec();
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, &signer.issuer)?;
    Ok(CertAndKey {
        cert_pem: cert.pem(),
        key_pem: talos_key_pem(&key),
    })
}

/// A node API (apid) server certificate: Ed25519, CN = hostname, IP SANs =
/// the node's addresses, DNS SAN = hostname, EKU ServerAuth, 24 h.
pub fn issue_server_cert(
    ca: &CertAndKey,
    hostname: &str,
    ips: &[IpAddr],
    extra_sans: &[String],
) -> Result<CertAndKey, PkiError> {
    Ok(issue_server_leaf(ca, hostname, ips, extra_sans)?.pem)
}

/// An issued certificate and its key in hand, so that a listener can serve
/// it without reading the key back from the PEM.
pub struct IssuedLeaf {
    pub pem: CertAndKey,
    pub key: KeyPair,
}

/// [`issue_server_cert`], keeping the key.
pub fn issue_server_leaf(
    ca: &CertAndKey,
    hostname: &str,
    ips: &[IpAddr],
    extra_sans: &[String],
) -> Result<IssuedLeaf, PkiError> {
    let signer = signer_for(ca)?;
    let key = ed25519_key()?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, hostname);
    let mut params = base_params(dn, SERVER_VALIDITY);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.subject_alt_names = sans(hostname, ips, extra_sans);
    let cert = params.signed_by(&key, &signer.issuer)?;
    Ok(IssuedLeaf {
        pem: CertAndKey {
            cert_pem: cert.pem(),
            key_pem: talos_key_pem(&key),
        },
        key,
    })
}

fn sans(hostname: &str, ips: &[IpAddr], extra: &[String]) -> Vec<SanType> {
    let mut out: Vec<SanType> = ips.iter().map(|ip| SanType::IpAddress(*ip)).collect();
    let mut names = vec![hostname.to_string()];
    for e in extra {
        match e.parse::<IpAddr>() {
            Ok(ip) if !ips.contains(&ip) => out.push(SanType::IpAddress(ip)),
            Ok(_) => {}
            Err(_) => names.push(e.clone()),
        }
    }
    for n in names {
        if let Ok(ia5) = n.as_str().try_into() {
            out.push(SanType::DnsName(ia5));
        }
    }
    out
}

/// The ephemeral maintenance CA of one boot: Ed25519, empty subject. Talos
/// creates it once per boot and never changes it (v1.12.11
/// internal/app/machined/pkg/controllers/secrets/maintenance_root.go).
pub fn maintenance_ca() -> Result<CertAndKey, PkiError> {
    Ok(maintenance_ca_with_signer()?.0)
}

/// [`maintenance_ca`] and its signer, made from the key in hand (the boot
/// issues its leaves with it, and never reads the key back from PEM). The
/// signer names the CA's subject and, as the CA's own subject key
/// identifier does, the SHA-256-derived identifier of its key.
pub fn maintenance_ca_with_signer() -> Result<(CertAndKey, CaSigner), PkiError> {
    let ca_key = ed25519_key()?;
    let mut ca_params = base_params(DistinguishedName::new(), SERVER_VALIDITY);
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let pair = CertAndKey {
        cert_pem: ca_cert.pem(),
        key_pem: ca_key.serialize_pem(),
    };
    let signer = CaSigner {
        issuer: Issuer::new(ca_params, ca_key),
    };
    Ok((pair, signer))
}

/// A maintenance server certificate from the boot's CA, with a new key each
/// time (v1.12.11 controllers/secrets/maintenance.go re-issues it on SAN or
/// time changes and every 12 h). Like Go's x509, the leaf names its issuer
/// by authority key identifier, so the CA (the boot) can be told apart from
/// the leaf (any re-issue).
pub fn maintenance_leaf(ca: &CertAndKey, node_ip: IpAddr) -> Result<CertAndKey, PkiError> {
    Ok(maintenance_leaf_from(&CaSigner::new(ca)?, node_ip)?.pem)
}

/// [`maintenance_leaf`] from the boot CA's signer. A boot's CA is never
/// seen again after the boot, so its signer lives with the boot, not in
/// the process-wide cache.
pub fn maintenance_leaf_from(signer: &CaSigner, node_ip: IpAddr) -> Result<IssuedLeaf, PkiError> {
    let key = ed25519_key()?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "maintenance-service.talos.dev");
    let mut params = base_params(dn, SERVER_VALIDITY);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let mut ips = vec![
        IpAddr::from([127, 0, 0, 1]),
        IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
    ];
    if !ips.contains(&node_ip) {
        ips.push(node_ip);
    }
    params.subject_alt_names = ips.into_iter().map(SanType::IpAddress).collect();
    let leaf = params.signed_by(&key, &signer.issuer)?;
    Ok(IssuedLeaf {
        pem: CertAndKey {
            cert_pem: leaf.pem(),
            key_pem: key.serialize_pem(),
        },
        key,
    })
}

/// The Kubernetes admin client certificate Talos puts in the kubeconfig:
/// ECDSA P-256, O=system:masters, CN=admin, EKU ClientAuth, one year.
pub fn issue_k8s_admin(k8s_ca: &CertAndKey) -> Result<CertAndKey, PkiError> {
    let signer = signer_for(k8s_ca)?;
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "system:masters");
    dn.push(DnType::CommonName, "admin");
    let mut params = base_params(dn, CLIENT_VALIDITY);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, &signer.issuer)?;
    Ok(CertAndKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Subject Organization values of a DER certificate (Talos roles).
pub fn subject_organizations(der: &[u8]) -> Vec<String> {
    X509Certificate::from_der(der)
        .map(|(_, c)| {
            c.subject()
                .iter_organization()
                .filter_map(|a| a.as_str().ok().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a DER certificate's EKU is exactly `[ClientAuth]`, the check
/// apid applies to every non-CA certificate of a client chain.
pub fn eku_is_exactly_client_auth(der: &[u8]) -> bool {
    X509Certificate::from_der(der).is_ok_and(|(_, cert)| exactly_client_auth(&cert))
}

fn exactly_client_auth(cert: &X509Certificate<'_>) -> bool {
    match cert.extended_key_usage() {
        Ok(Some(ext)) => {
            let e = ext.value;
            e.client_auth
                && !e.any
                && !e.server_auth
                && !e.code_signing
                && !e.email_protection
                && !e.time_stamping
                && !e.ocsp_signing
                && e.other.is_empty()
        }
        _ => false,
    }
}

/// Whether a DER certificate is a CA (basicConstraints cA = true).
pub fn is_ca_cert(der: &[u8]) -> bool {
    X509Certificate::from_der(der).is_ok_and(|(_, cert)| is_ca(&cert))
}

fn is_ca(cert: &X509Certificate<'_>) -> bool {
    cert.basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|b| b.value.ca)
}

/// apid's rule for each certificate of a client chain: a CA, or EKU
/// exactly `[ClientAuth]` (`is_ca_cert || eku_is_exactly_client_auth`,
/// reading the certificate once).
pub fn ca_or_exactly_client_auth(der: &[u8]) -> bool {
    X509Certificate::from_der(der).is_ok_and(|(_, cert)| is_ca(&cert) || exactly_client_auth(&cert))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(pem: &str) -> Vec<u8> {
        first_cert_der(pem, "test").unwrap()
    }

    #[test]
    fn talos_ca_has_talos_shape() {
        let ca = new_talos_ca().unwrap();
        assert!(
            ca.key_pem
                .starts_with("-----BEGIN ED25519 PRIVATE KEY-----")
        );
        let der = parse(&ca.cert_pem);
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        assert_eq!(subject_organizations(&der), ["talos"]);
        assert!(is_ca_cert(&der));
        let ku = cert.key_usage().unwrap().unwrap().value;
        assert!(ku.key_cert_sign() && ku.digital_signature());
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && eku.client_auth);
        let life = cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp();
        assert!(life >= 87_600 * 3600, "CA lifetime {life}s");
        assert_eq!(
            cert.signature_algorithm.algorithm,
            x509_parser::oid_registry::OID_SIG_ED25519
        );
    }

    #[test]
    fn ed25519_keys_are_pkcs8_v1_without_the_public_key_as_talos_writes_them() {
        use base64::Engine as _;
        let ca = new_talos_ca().unwrap();
        let admin = issue_client_cert(&ca, &["os:admin"]).unwrap();
        for pem in [&ca.key_pem, &admin.key_pem] {
            let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            assert!(
                pem.starts_with("-----BEGIN ED25519 PRIVATE KEY-----\n"),
                "{}",
                pem.lines().next().unwrap()
            );
            assert!(pem.ends_with("-----END ED25519 PRIVATE KEY-----\n"));
            let der = base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap();
            // 48 bytes: version 0, the Ed25519 OID, the seed; nothing after.
            assert_eq!(der.len(), 48);
            assert_eq!(&der[..16], &ED25519_PKCS8_V1_PREFIX);
            assert_eq!(der[4], 0, "version v1");
            // And it still loads, and still signs what the certificate says.
            let key = load_key(pem).unwrap();
            assert_eq!(key.public_key_raw().len(), 32);
        }
        let key = load_key(&admin.key_pem).unwrap();
        let admin_der = parse(&admin.cert_pem);
        let (_, cert) = X509Certificate::from_der(&admin_der).unwrap();
        assert_eq!(
            cert.public_key().subject_public_key.data.as_ref(),
            key.public_key_raw(),
            "the v1 key is the certificate's key"
        );
    }

    #[test]
    fn admin_cert_has_roles_and_only_client_auth() {
        let ca = new_talos_ca().unwrap();
        let admin = issue_client_cert(&ca, &["os:admin"]).unwrap();
        let der = parse(&admin.cert_pem);
        assert_eq!(subject_organizations(&der), ["os:admin"]);
        assert!(eku_is_exactly_client_auth(&der));
        assert!(!is_ca_cert(&der));
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        assert!(cert.subject().iter_common_name().next().is_none(), "no CN");
        assert!(admin.key_pem.contains("ED25519 PRIVATE KEY"));
        // The key loads once relabelled.
        load_key(&admin.key_pem).unwrap();
        let both = client_and_server_auth(&ca);
        assert!(!eku_is_exactly_client_auth(&parse(&both.cert_pem)));
    }

    #[test]
    fn issued_certs_chain_to_the_ca_by_name() {
        let ca = new_talos_ca().unwrap();
        let srv = issue_server_cert(&ca, "cp1", &["127.1.2.3".parse().unwrap()], &[]).unwrap();
        let leaf_der = parse(&srv.cert_pem);
        let (_, leaf) = X509Certificate::from_der(&leaf_der).unwrap();
        let ca_der = parse(&ca.cert_pem);
        let (_, ca_cert) = X509Certificate::from_der(&ca_der).unwrap();
        assert_eq!(leaf.issuer(), ca_cert.subject());
        assert_eq!(key_id_of_issuer(&leaf), own_key_id(&ca_cert));
        let sans = leaf.subject_alternative_name().unwrap().unwrap().value;
        let text = format!("{:?}", sans.general_names);
        assert!(text.contains("cp1"), "{text}");
    }

    #[test]
    fn maintenance_leaf_has_the_maintenance_cn() {
        let ca = maintenance_ca().unwrap();
        let leaf = maintenance_leaf(&ca, "127.9.9.9".parse().unwrap()).unwrap();
        let again = maintenance_leaf(&ca, "127.9.9.9".parse().unwrap()).unwrap();
        assert_ne!(leaf.cert_pem, again.cert_pem, "a re-issue has a new key");
        let aki = |pem: &str| issuer_and_aki(pem).1;
        assert_eq!(
            aki(&leaf.cert_pem),
            aki(&again.cert_pem),
            "same boot, same issuer"
        );
        let other =
            maintenance_leaf(&maintenance_ca().unwrap(), "127.9.9.9".parse().unwrap()).unwrap();
        assert_ne!(aki(&leaf.cert_pem), aki(&other.cert_pem));
        let der = parse(&leaf.cert_pem);
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        let cn: Vec<_> = cert
            .subject()
            .iter_common_name()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        assert_eq!(cn, ["maintenance-service.talos.dev"]);
    }

    /// An admin client certificate that may also serve (two EKUs).
    fn client_and_server_auth(ca: &CertAndKey) -> CertAndKey {
        issue_client_cert_with(
            ca,
            &["os:admin"],
            &[
                ExtendedKeyUsagePurpose::ClientAuth,
                ExtendedKeyUsagePurpose::ServerAuth,
            ],
        )
        .unwrap()
    }

    /// A certificate's subject key identifier.
    fn own_key_id(cert: &X509Certificate<'_>) -> Vec<u8> {
        cert.extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
                _ => None,
            })
            .unwrap()
    }

    /// The authority key identifier a certificate names.
    fn key_id_of_issuer(cert: &X509Certificate<'_>) -> Vec<u8> {
        cert.extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::AuthorityKeyIdentifier(a) => {
                    a.key_identifier.as_ref().map(|k| k.0.to_vec())
                }
                _ => None,
            })
            .unwrap()
    }

    fn issuer_and_aki(pem: &str) -> (Vec<u8>, Vec<u8>) {
        let der = parse(pem);
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        (cert.issuer().as_raw().to_vec(), key_id_of_issuer(&cert))
    }

    fn subject_and_ski(pem: &str) -> (Vec<u8>, Vec<u8>) {
        let der = parse(pem);
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        (cert.subject().as_raw().to_vec(), own_key_id(&cert))
    }

    #[test]
    fn a_cached_signer_names_its_ca_as_a_freshly_read_one_does() {
        let ca = new_talos_ca().unwrap();
        let ip = ["127.1.2.3".parse().unwrap()];
        let first = issue_server_cert(&ca, "cp1", &ip, &[]).unwrap();
        let second = issue_server_cert(&ca, "cp1", &ip, &[]).unwrap();
        assert_ne!(first.key_pem, second.key_pem, "every issue has a new key");
        // Read from PEM afresh, outside the cache.
        let fresh = maintenance_leaf(&ca, ip[0]).unwrap();
        assert_eq!(
            issuer_and_aki(&first.cert_pem),
            issuer_and_aki(&fresh.cert_pem)
        );
        assert_eq!(
            issuer_and_aki(&second.cert_pem),
            subject_and_ski(&ca.cert_pem)
        );
        assert!(Arc::ptr_eq(
            &signer_for(&ca).unwrap(),
            &signer_for(&ca).unwrap()
        ));
        // Another CA is another signer.
        let other = new_talos_ca().unwrap();
        let theirs = issue_server_cert(&other, "cp1", &ip, &[]).unwrap();
        assert_eq!(
            issuer_and_aki(&theirs.cert_pem),
            subject_and_ski(&other.cert_pem)
        );
        assert_ne!(
            issuer_and_aki(&theirs.cert_pem),
            issuer_and_aki(&first.cert_pem)
        );
        // A CA whose key does not parse fails every time, cached or not.
        let broken = CertAndKey {
            cert_pem: ca.cert_pem.clone(),
            key_pem: "not a key".into(),
        };
        for _ in 0..2 {
            assert!(matches!(
                issue_server_cert(&broken, "cp1", &ip, &[]),
                Err(PkiError::BadPem { .. })
            ));
        }
    }

    #[test]
    fn the_boot_signer_names_the_maintenance_ca_as_its_pem_does() {
        let (ca, signer) = maintenance_ca_with_signer().unwrap();
        let ip = "127.9.9.9".parse().unwrap();
        let from_signer = maintenance_leaf_from(&signer, ip).unwrap().pem;
        let from_pem = maintenance_leaf(&ca, ip).unwrap();
        assert_eq!(
            issuer_and_aki(&from_signer.cert_pem),
            issuer_and_aki(&from_pem.cert_pem)
        );
        assert_eq!(
            issuer_and_aki(&from_signer.cert_pem),
            subject_and_ski(&ca.cert_pem)
        );
    }

    #[test]
    fn fresh_ed25519_keys_are_whole_keys_and_rustls_reads_them() {
        use rustls::pki_types::PrivateKeyDer;
        use rustls::pki_types::pem::PemObject;
        let a = ed25519_key().unwrap();
        let b = ed25519_key().unwrap();
        assert_ne!(a.public_key_raw(), b.public_key_raw(), "random seeds");
        // Its public half is the one its seed gives, as read back from PEM.
        let again = load_key(&talos_key_pem(&a)).unwrap();
        assert_eq!(again.public_key_raw(), a.public_key_raw());
        // Both PEM forms (Talos's label, rcgen's own) load in rustls, as the
        // listeners load them.
        for pem in [talos_key_pem(&a), a.serialize_pem()] {
            let der = PrivateKeyDer::from_pem_slice(normalize_key_pem(&pem).as_bytes()).unwrap();
            rustls::crypto::ring::sign::any_supported_type(&der).unwrap();
        }
        // A v2 key (rcgen's own generation) still becomes v1, same seed.
        let v2 = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let pem = talos_key_pem(&v2);
        assert!(pem.starts_with("-----BEGIN ED25519 PRIVATE KEY-----\n"));
        assert_eq!(
            load_key(&pem).unwrap().public_key_raw(),
            v2.public_key_raw()
        );
    }

    #[test]
    fn the_chain_rule_reads_a_certificate_once_and_answers_as_both_checks() {
        let ca = new_talos_ca().unwrap();
        let admin = issue_client_cert(&ca, &["os:admin"]).unwrap();
        let both = client_and_server_auth(&ca);
        let server = issue_server_cert(&ca, "cp1", &["127.1.2.3".parse().unwrap()], &[]).unwrap();
        let cases = [
            (parse(&ca.cert_pem), true),
            (parse(&admin.cert_pem), true),
            (parse(&both.cert_pem), false),
            (parse(&server.cert_pem), false),
            (b"not a certificate".to_vec(), false),
        ];
        for (der, want) in cases {
            assert_eq!(ca_or_exactly_client_auth(&der), want);
            assert_eq!(
                ca_or_exactly_client_auth(&der),
                is_ca_cert(&der) || eku_is_exactly_client_auth(&der)
            );
        }
    }

    #[test]
    fn debug_redacts_keys() {
        let ca = new_talos_ca().unwrap();
        let shown = format!("{ca:?}");
        assert!(!shown.contains("PRIVATE"));
        assert!(shown.contains("redacted"));
    }
}
