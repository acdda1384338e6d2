//! Client side for the simulator tests: insecure (maintenance) and mTLS
//! (talosconfig) channels built with tonic's rustls, raw TLS probes, and a
//! fleet starter with a small time scale.

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use talstrap::proto::cosi::resource::state_client::StateClient;
use talstrap::proto::machine::machine_service_client::MachineServiceClient;
use talstrap::proto::storage::storage_service_client::StorageServiceClient;
use talstrap::sim::{Fleet, FleetSpec, Scenario};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// Guards every await that talks to the simulator.
pub async fn within<F: Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

pub struct Env {
    pub fleet: Fleet,
    pub tmp: tempfile::TempDir,
}

impl Env {
    pub fn ip(&self, hostname: &str) -> std::net::IpAddr {
        self.fleet
            .nodes()
            .into_iter()
            .find(|n| n.hostname == hostname)
            .unwrap_or_else(|| panic!("no node {hostname}"))
            .ip
    }

    pub fn addr(&self, hostname: &str) -> SocketAddr {
        SocketAddr::new(self.ip(hostname), self.fleet.port())
    }

    pub fn config(&self, hostname: &str) -> Vec<u8> {
        std::fs::read(self.fleet.paths().node_config(hostname).unwrap()).unwrap()
    }

    pub fn machine(&self, hostname: &str) -> MachineServiceClient<Channel> {
        MachineServiceClient::new(mtls(self.addr(hostname), &self.fleet.paths().talosconfig))
    }

    pub fn state(&self, hostname: &str) -> StateClient<Channel> {
        StateClient::new(mtls(self.addr(hostname), &self.fleet.paths().talosconfig))
    }

    pub fn insecure_machine(&self, hostname: &str) -> MachineServiceClient<Channel> {
        MachineServiceClient::new(insecure(self.addr(hostname)))
    }

    pub fn insecure_state(&self, hostname: &str) -> StateClient<Channel> {
        StateClient::new(insecure(self.addr(hostname)))
    }

    pub fn insecure_storage(&self, hostname: &str) -> StorageServiceClient<Channel> {
        StorageServiceClient::new(insecure(self.addr(hostname)))
    }

    /// Applies each node's generated config in maintenance mode (AUTO).
    pub async fn apply_all(&self, hostnames: &[&str]) {
        for h in hostnames {
            let mut c = self.insecure_machine(h);
            within(
                "maintenance apply",
                c.apply_configuration(apply_req(self.config(h), 1, false)),
            )
            .await
            .unwrap_or_else(|e| panic!("apply to {h}: {e:?}"));
        }
    }

    /// Waits until `pred` holds for the node.
    pub async fn wait(
        &self,
        hostname: &str,
        what: &str,
        pred: impl Fn(&talstrap::sim::NodeSnapshot) -> bool,
    ) -> talstrap::sim::NodeSnapshot {
        self.fleet
            .wait_for(self.ip(hostname), Duration::from_secs(20), pred)
            .await
            .unwrap_or_else(|| {
                panic!(
                    "{hostname}: {what} never happened; now {:?}",
                    self.fleet.snapshot(self.ip(hostname))
                )
            })
    }

    /// Waits until a control plane is booted and only waits for etcd.
    pub async fn wait_ready_for_bootstrap(&self, hostname: &str) {
        self.wait(hostname, "ready for bootstrap", |s| {
            s.etcd.service == talstrap::sim::EtcdService::Preparing
                && s.mode == talstrap::sim::NodeMode::Configured
        })
        .await;
    }
}

pub fn apply_req(
    data: Vec<u8>,
    mode: i32,
    dry_run: bool,
) -> talstrap::proto::machine::ApplyConfigurationRequest {
    talstrap::proto::machine::ApplyConfigurationRequest {
        data,
        mode,
        dry_run,
        try_mode_timeout: None,
    }
}

/// Starts a fleet at time scale 0.02 with `scenario` YAML.
pub async fn start(control_planes: usize, workers: usize, scenario: &str) -> Env {
    start_with(control_planes, workers, scenario, |_| {}).await
}

pub async fn start_with(
    control_planes: usize,
    workers: usize,
    scenario: &str,
    tweak: impl FnOnce(&mut FleetSpec),
) -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let mut spec = FleetSpec::new(control_planes, workers, tmp.path().join("cluster"));
    spec.time_scale = 0.02;
    spec.scenario = Scenario::from_yaml(scenario, "test scenario").unwrap();
    tweak(&mut spec);
    let fleet = within("fleet start", Fleet::start(spec)).await.unwrap();
    Env { fleet, tmp }
}

/// Accepts any server certificate but still checks handshake signatures.
#[derive(Debug)]
pub struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl AcceptAny {
    pub fn new() -> Self {
        AcceptAny(Arc::new(rustls::crypto::ring::default_provider()))
    }
}

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A maintenance-mode channel: no client certificate, any server certificate.
pub fn insecure(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .tls_config_with_verifier(ClientTlsConfig::new(), Arc::new(AcceptAny::new()))
        .unwrap()
        .connect_lazy()
}

/// ca, crt, key PEMs of a talosconfig's current context.
pub fn creds(path: &Path) -> (String, String, String) {
    let v: yaml_serde::Value =
        yaml_serde::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let ctx = v["context"].as_str().unwrap().to_string();
    let c = &v["contexts"][ctx.as_str()];
    let d = |k: &str| String::from_utf8(B64.decode(c[k].as_str().unwrap()).unwrap()).unwrap();
    (d("ca"), d("crt"), d("key"))
}

/// An mTLS channel with the talosconfig's credentials.
pub fn mtls(addr: SocketAddr, talosconfig: &Path) -> Channel {
    let (ca, crt, key) = creds(talosconfig);
    mtls_with(addr, &ca, &crt, &key)
}

pub fn mtls_with(addr: SocketAddr, ca: &str, crt: &str, key: &str) -> Channel {
    // talosctl writes Ed25519 keys as `ED25519 PRIVATE KEY` (PKCS#8 inside).
    let key = key.replace("ED25519 PRIVATE KEY", "PRIVATE KEY");
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .identity(Identity::from_pem(crt, key));
    Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .tls_config(tls)
        .unwrap()
        .connect_lazy()
}

/// The server's leaf certificate, fetched with a raw insecure handshake.
pub async fn peer_leaf(addr: SocketAddr) -> Vec<u8> {
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(AcceptAny::new()))
    .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::IpAddress(addr.ip().into()), tcp)
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0]
        .as_ref()
        .to_vec()
}

/// Subject CN values of a DER certificate.
pub fn common_names(der: &[u8]) -> Vec<String> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, c) = X509Certificate::from_der(der).unwrap();
    c.subject()
        .iter_common_name()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}
