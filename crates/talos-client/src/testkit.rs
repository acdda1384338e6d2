//! Test fixtures for the protocol layer: rcgen PKIs shaped like Talos's
//! (Ed25519 CA `O=talos`, admin client certificates with `O=<role>` and EKU
//! ClientAuth only, node certificates with IP SANs) and small in-process
//! TLS/gRPC servers on random loopback addresses.

#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A CA like Talos's OS CA.
pub(crate) struct Pki {
    pub ca_pem: String,
    pub ca_der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    /// Ed25519 CA with subject `O=<org>` (empty `org`: empty subject, like
    /// the ephemeral maintenance CA).
    pub(crate) fn new(org: &str) -> Self {
        let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = DistinguishedName::new();
        if !org.is_empty() {
            params
                .distinguished_name
                .push(DnType::OrganizationName, org);
        }
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.self_signed(&key).unwrap();
        Pki {
            ca_pem: cert.pem(),
            ca_der: cert.der().to_vec(),
            issuer: Issuer::new(params, key),
        }
    }

    pub(crate) fn ca(&self) -> CertificateDer<'static> {
        CertificateDer::from(self.ca_der.clone())
    }
}

/// A server certificate and its key.
pub(crate) struct Leaf {
    pub cert_der: Vec<u8>,
    pub key_der: Vec<u8>,
}

/// A node API certificate: CN `cn`, IP SAN `ip`, EKU ServerAuth.
pub(crate) fn server_cert(pki: &Pki, ip: IpAddr, cn: &str) -> Leaf {
    let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.subject_alt_names = vec![SanType::IpAddress(ip)];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &pki.issuer).unwrap();
    Leaf {
        cert_der: cert.der().to_vec(),
        key_der: key.serialize_der(),
    }
}

/// An admin-style client certificate (PEM) and its key, the key written
/// under Talos's `ED25519 PRIVATE KEY` label.
pub(crate) fn client_cert(pki: &Pki, roles: &[&str]) -> (String, String) {
    client_cert_with_validity(pki, roles, (2020, 1, 1), (2080, 1, 1))
}

pub(crate) fn client_cert_with_validity(
    pki: &Pki,
    roles: &[&str],
    not_before: (i32, u8, u8),
    not_after: (i32, u8, u8),
) -> (String, String) {
    client_cert_full(
        pki,
        roles,
        (not_before, not_after),
        &[ExtendedKeyUsagePurpose::ClientAuth],
    )
}

/// A client certificate with chosen extended key usages (empty: none).
pub(crate) fn client_cert_with_usages(
    pki: &Pki,
    usages: &[ExtendedKeyUsagePurpose],
) -> (String, String) {
    client_cert_full(pki, &["os:admin"], ((2020, 1, 1), (2080, 1, 1)), usages)
}

type Ymd = (i32, u8, u8);

fn client_cert_full(
    pki: &Pki,
    roles: &[&str],
    (not_before, not_after): (Ymd, Ymd),
    usages: &[ExtendedKeyUsagePurpose],
) -> (String, String) {
    let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    for role in roles {
        params
            .distinguished_name
            .push(DnType::OrganizationName, *role);
    }
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = usages.to_vec();
    params.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
    params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
    let cert = params.signed_by(&key, &pki.issuer).unwrap();
    let key_pem = key
        .serialize_pem()
        .replace("PRIVATE KEY-----", "ED25519 PRIVATE KEY-----");
    (cert.pem(), key_pem)
}

/// Admin credentials (talosconfig-style) for `pki`.
pub(crate) fn admin_credentials(pki: &Pki) -> crate::Credentials {
    let (crt, key) = client_cert(pki, &["os:admin"]);
    crate::Credentials::from_pem(pki.ca_pem.as_bytes(), crt.as_bytes(), key.as_bytes()).unwrap()
}

/// A random `127.x.y.1` so parallel tests never share an address.
pub(crate) fn loopback_ip() -> IpAddr {
    use ring::rand::SecureRandom as _;
    let mut b = [0u8; 2];
    ring::rand::SystemRandom::new().fill(&mut b).unwrap();
    let x = 1 + b[0] % 254;
    let y = 1 + b[1] % 254;
    IpAddr::V4(Ipv4Addr::new(127, x, y, 1))
}

/// How a test server does TLS.
pub(crate) enum ServerTls {
    /// Server-only TLS (maintenance mode).
    NoClientAuth,
    /// Require a client certificate issued by this CA (configured apid).
    RequireClientCert(CertificateDer<'static>),
}

/// A rustls server config; `tls12_only` forces the TLS 1.2 behaviour of a
/// rejected client certificate (handshake failure instead of a late alert).
pub(crate) fn server_config(leaf: &Leaf, tls: ServerTls, tls12_only: bool) -> Arc<ServerConfig> {
    let provider = crate::tls::provider();
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12_only {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .unwrap();
    let builder = match tls {
        ServerTls::NoClientAuth => builder.with_no_client_auth(),
        ServerTls::RequireClientCert(ca) => {
            let mut roots = RootCertStore::empty();
            roots.add(ca).unwrap();
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
    };
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der.clone()));
    let mut config = builder
        .with_single_cert(vec![CertificateDer::from(leaf.cert_der.clone())], key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

/// Binds `ip:0` and returns the listener with its address.
pub(crate) async fn bind(ip: IpAddr) -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind(SocketAddr::new(ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// An address on which nothing listens (connections are refused).
pub(crate) async fn refused_addr() -> SocketAddr {
    let (listener, addr) = bind(loopback_ip()).await;
    drop(listener);
    addr
}

/// Accepts TCP connections and never says a word.
pub(crate) async fn silent_server() -> (SocketAddr, JoinHandle<()>) {
    let (listener, addr) = bind(loopback_ip()).await;
    let task = tokio::spawn(async move {
        let mut held: Vec<TcpStream> = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    (addr, task)
}

/// Completes the TLS handshake, sends its HTTP/2 SETTINGS like any gRPC
/// server, reads the first bytes of the request, then drops the
/// connection: what a node does when it reboots mid-call.
pub(crate) async fn dropping_server(config: Arc<ServerConfig>) -> (SocketAddr, JoinHandle<()>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    // An empty SETTINGS frame: length 0, type 4, no flags, stream 0.
    const SETTINGS: [u8; 9] = [0, 0, 0, 4, 0, 0, 0, 0, 0];
    let (listener, addr) = bind(loopback_ip()).await;
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(stream).await {
                    let _ = tls.write_all(&SETTINGS).await;
                    let mut buf = [0u8; 64];
                    let _ = tls.read(&mut buf).await;
                }
            });
        }
    });
    (addr, task)
}

/// Serves the fake Talos services over TLS on a fresh loopback address.
pub(crate) async fn grpc_server(
    ip: IpAddr,
    config: Arc<ServerConfig>,
) -> (SocketAddr, JoinHandle<()>) {
    use crate::proto::cosi::resource::state_server::StateServer;
    use crate::proto::machine::machine_service_server::MachineServiceServer;
    use crate::proto::storage::storage_service_server::StorageServiceServer;

    let (listener, addr) = bind(ip).await;
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let (tx, rx) = tokio::sync::mpsc::channel::<
        Result<tokio_rustls::server::TlsStream<TcpStream>, std::io::Error>,
    >(16);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                // A failed handshake (e.g. a rejected client) only ends that
                // connection, never the server.
                if let Ok(tls) = acceptor.accept(stream).await {
                    let _ = tx.send(Ok(tls)).await;
                }
            });
        }
    });
    let incoming = tokio_stream::wrappers::ReceiverStream::new(rx);
    let task = tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(MachineServiceServer::new(super::fake_node::FakeMachine))
            .add_service(StateServer::new(super::fake_node::FakeState))
            .add_service(StorageServiceServer::new(super::fake_node::FakeStorage))
            .serve_with_incoming(incoming)
            .await;
    });
    (addr, task)
}
