//! Small, realistic starting inputs for the fuzzers: talconfig projects,
//! machine configs, talosconfigs, scan targets and kubeconfig archives of
//! the shapes operators really have. Certificates and keys are minted
//! fresh with rcgen for every run (nothing secret is stored), shaped like
//! Talos's: an Ed25519 CA with `O=talos` and an admin client certificate
//! with `O=os:admin` whose key sits under the `ED25519 PRIVATE KEY` label.
//!
//! Seeds that take a leading selector byte are encoded as the matching
//! `harness::split_*` function expects.

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

/// A throwaway PKI shaped like a Talos cluster's.
pub struct Pki {
    pub ca_pem: String,
    /// Admin client certificate, valid 2020..2080.
    pub client_crt_pem: String,
    /// Its key, under Talos's `ED25519 PRIVATE KEY` label.
    pub client_key_pem: String,
    /// A client certificate that expired in 2021, and its key.
    pub expired_crt_pem: String,
    pub expired_key_pem: String,
}

impl Pki {
    /// Mints a CA and two client certificates.
    pub fn new() -> Self {
        let ca_key = KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("ed25519 key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "talos");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_pem = params.self_signed(&ca_key).expect("self-signed CA").pem();
        let issuer = Issuer::new(params, ca_key);
        let (client_crt_pem, client_key_pem) = client(&issuer, (2020, 1, 1), (2080, 1, 1));
        let (expired_crt_pem, expired_key_pem) = client(&issuer, (2020, 1, 1), (2021, 1, 1));
        Pki {
            ca_pem,
            client_crt_pem,
            client_key_pem,
            expired_crt_pem,
            expired_key_pem,
        }
    }
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}

fn client(
    issuer: &Issuer<'_, KeyPair>,
    from: (i32, u8, u8),
    until: (i32, u8, u8),
) -> (String, String) {
    let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("ed25519 key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "os:admin");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
    params.not_after = rcgen::date_time_ymd(until.0, until.1, until.2);
    let cert = params.signed_by(&key, issuer).expect("signed client cert");
    let key_pem = key
        .serialize_pem()
        .replace("PRIVATE KEY-----", "ED25519 PRIVATE KEY-----");
    (cert.pem(), key_pem)
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// How a machine config says where to install.
#[derive(Clone, Copy)]
pub enum Install {
    Disk,
    Selector,
    Neither,
}

/// A machine config as `talhelper genconfig` writes one (v1alpha1 plus,
/// optionally, extra documents). Control planes carry the CA key.
pub fn machine_config(
    machine_type: &str,
    hostname: &str,
    cluster: &str,
    ca_pem: &str,
    install: Install,
    extra_docs: bool,
) -> String {
    let with_key = matches!(machine_type, "controlplane" | "init");
    let mut out = String::new();
    out.push_str("version: v1alpha1\ndebug: false\npersist: true\nmachine:\n");
    out.push_str(&format!(
        "  type: {machine_type}\n  token: fuzztok.fuzzseedtoken00\n"
    ));
    out.push_str(&format!("  ca:\n    crt: {}\n", b64(ca_pem)));
    if with_key {
        out.push_str(&format!(
            "    key: {}\n",
            b64("-----BEGIN ED25519 PRIVATE KEY-----\nbm90IGEgcmVhbCBrZXk=\n-----END ED25519 PRIVATE KEY-----\n")
        ));
    }
    out.push_str("  certSANs:\n    - 127.0.0.10\n");
    // With a HostnameConfig document the hostname lives there alone (Talos
    // refuses both: "static hostname is already set in v1alpha1 config").
    if !extra_docs {
        out.push_str(&format!("  network:\n    hostname: {hostname}\n"));
    }
    match install {
        Install::Disk => out.push_str("  install:\n    disk: /dev/sda\n    wipe: false\n"),
        Install::Selector => out.push_str(
            "  install:\n    diskSelector:\n      size: '>= 100GB'\n      model: 'QEMU*'\n      type: ssd\n",
        ),
        Install::Neither => {}
    }
    out.push_str("cluster:\n  id: ZnV6eg==\n  secret: ZnV6emluZw==\n");
    out.push_str("  controlPlane:\n    endpoint: https://127.0.0.10:6443\n");
    out.push_str(&format!("  clusterName: {cluster}\n"));
    out.push_str(
        "  network:\n    dnsDomain: cluster.local\n    podSubnets:\n      - 10.244.0.0/16\n",
    );
    if extra_docs {
        out.push_str(&format!(
            "---\napiVersion: v1alpha1\nkind: HostnameConfig\nhostname: {hostname}\nauto: off\n"
        ));
        out.push_str(
            "---\napiVersion: v1alpha1\nkind: UserVolumeConfig\nname: data\nprovisioning:\n  diskSelector:\n    match: disk.transport == \"nvme\"\n",
        );
    }
    out
}

/// The machine configs the talconfig seeds refer to, by file name: the
/// default template (`<cluster>-<hostname>.yaml`) and the
/// `{{ .Role }}-{{ .Hostname }}.yaml` template.
pub fn clusterconfig(pki: &Pki) -> Vec<(String, String)> {
    let ca = &pki.ca_pem;
    let mut out = Vec::new();
    for (host, ty) in [
        ("cp1", "controlplane"),
        ("cp2", "controlplane"),
        ("w1", "worker"),
    ] {
        let install = if ty == "worker" {
            Install::Selector
        } else {
            Install::Disk
        };
        let text = machine_config(ty, host, "demo", ca, install, host == "cp2");
        out.push((format!("demo-{host}.yaml"), text.clone()));
        out.push((format!("{ty}-{host}.yaml"), text));
    }
    out
}

/// Talconfig seeds: talconfig text, then (after a NUL byte) talenv text
/// when the seed has one; see `harness::split_at_nul`.
pub fn talconfig() -> Vec<(&'static str, Vec<u8>)> {
    let plain = "\
clusterName: demo
talosVersion: v1.12.0
kubernetesVersion: v1.35.0
endpoint: https://127.0.0.10:6443
domain: cluster.local
nodes:
  - hostname: cp1
    ipAddress: 127.0.0.11
    controlPlane: true
    installDisk: /dev/sda
  - hostname: cp2
    ipAddress: 127.0.0.12, fd00::12
    controlPlane: yes
    installDisk: /dev/sda
  - hostname: w1
    ipAddress: 127.0.0.21
    controlPlane: false
    installDiskSelector:
      size: '>= 100GB'
";
    let substituted = "\
# cluster ${CLUSTER} (comment, not substituted)
clusterName: ${CLUSTER:-demo}
talosVersion: $TALOS_VERSION
endpoint: https://${VIP}:6443 # the VIP
additionalApiServerCertSans:
  - \"${VIP}\"
  - '$$literal'
nodes:
  - hostname: cp1
    ipAddress: ${CP1_IP}
    controlPlane: true
    patches:
      - |-
        machine:
          # block-scalar text is not a comment: ${VIP}
          network: {}
  - hostname: w1
    ipAddress: ${W1_IP-127.0.0.21}
    controlPlane: ${IS_CP:-false}
";
    let templated = "\
clusterName: demo
endpoint: https://127.0.0.10:6443
common: &common
  installDisk: /dev/sda
  schematic:
    customization:
      extraKernelArgs: [net.ifnames=0]
controlPlane:
  filenameTmpl: '{{ .Role }}-{{ .Hostname }}.yaml'
worker:
  filenameTmpl: \"{{- .Role -}}-{{ .Hostname }}.yaml\"
nodes:
  - <<: *common
    hostname: cp1
    ipAddress: 127.0.0.11
    controlPlane: true
  - <<: *common
    hostname: w1
    ipAddress: \"[fd00::21]\"
    filenameTmpl: '{{ .ClusterName }}-{{ .Hostname }}.yaml'
";
    let with_env = "\
clusterName: ${CLUSTER}
endpoint: https://${ENDPOINT_IP}:6443
nodes:
  - hostname: ${CP_NAME}
    ipAddress: ${CP1_IP}
    controlPlane: true
";
    let talenv = "\
---
# talenv
ENDPOINT_IP: 127.0.0.10
CP_NAME: \"cp1\"
export EXTRA='x # y'
";
    let sops_env = "ENDPOINT_IP: ENC[AES256_GCM,data:abc,type:str]\nsops:\n  version: 3.9.0\n";
    let mut with_env_seed = with_env.as_bytes().to_vec();
    with_env_seed.push(0);
    with_env_seed.extend_from_slice(talenv.as_bytes());
    let mut sops_seed = with_env.as_bytes().to_vec();
    sops_seed.push(0);
    sops_seed.extend_from_slice(sops_env.as_bytes());
    vec![
        ("plain", plain.as_bytes().to_vec()),
        ("substituted", substituted.as_bytes().to_vec()),
        ("templated", templated.as_bytes().to_vec()),
        ("talenv", with_env_seed),
        ("sops-talenv", sops_seed),
    ]
}

/// Machine config seeds.
pub fn machine_configs(pki: &Pki) -> Vec<(&'static str, Vec<u8>)> {
    let ca = &pki.ca_pem;
    let anchored = "\
version: v1alpha1
machine:
  type: worker
  install: &inst
    diskSelector:
      size: 500000000
      wwid: naa.*
  network:
    <<: {hostname: w9}
cluster:
  clusterName: demo
  controlPlane: {endpoint: 'https://[::1]:6443'}
";
    vec![
        (
            "controlplane",
            machine_config("controlplane", "cp1", "demo", ca, Install::Disk, false).into_bytes(),
        ),
        (
            "controlplane-docs",
            machine_config("controlplane", "cp2", "demo", ca, Install::Selector, true).into_bytes(),
        ),
        (
            "worker",
            machine_config("worker", "w1", "demo", ca, Install::Selector, false).into_bytes(),
        ),
        (
            "init",
            machine_config("init", "cp1", "other", ca, Install::Neither, true).into_bytes(),
        ),
        ("anchored", anchored.as_bytes().to_vec()),
    ]
}

/// A talosconfig with a `home` context (and a second `lab` one).
pub fn talosconfig_text(crt_pem: &str, key_pem: &str, ca_pem: &str, current: &str) -> String {
    format!(
        "context: {current}\ncontexts:\n  home:\n    endpoints:\n      - 127.0.0.11\n      - 127.0.0.12\n    nodes:\n      - 127.0.0.11\n    ca: {ca}\n    crt: {crt}\n    key: {key}\n  lab:\n    target: 127.0.0.99\n    ca: {ca}\n    crt: {crt}\n    key: {key}\n",
        ca = b64(ca_pem),
        crt = b64(crt_pem),
        key = b64(key_pem),
    )
}

/// talosconfig seeds, each led by the selector byte of
/// `harness::split_talosconfig_input`.
pub fn talosconfigs(pki: &Pki) -> Vec<(&'static str, Vec<u8>)> {
    let good = talosconfig_text(
        &pki.client_crt_pem,
        &pki.client_key_pem,
        &pki.ca_pem,
        "home",
    );
    let lab = talosconfig_text(&pki.client_crt_pem, &pki.client_key_pem, &pki.ca_pem, "lab");
    let plain_label = talosconfig_text(
        &pki.client_crt_pem,
        &pki.client_key_pem
            .replace("ED25519 PRIVATE KEY", "PRIVATE KEY"),
        &pki.ca_pem,
        "home",
    );
    let expired = talosconfig_text(
        &pki.expired_crt_pem,
        &pki.expired_key_pem,
        &pki.ca_pem,
        "home",
    );
    let mismatched = talosconfig_text(
        &pki.client_crt_pem,
        &pki.expired_key_pem,
        &pki.ca_pem,
        "home",
    );
    let with = |mode: u8, text: &str| {
        let mut v = vec![mode];
        v.extend_from_slice(text.as_bytes());
        v
    };
    vec![
        ("current-context", with(0, &good)),
        ("named-home", with(1, &lab)),
        ("named-lab", with(2, &format!("lab\n{good}"))),
        ("plain-key-label", with(0, &plain_label)),
        ("expired", with(0, &expired)),
        ("key-mismatch", with(0, &mismatched)),
        ("no-context", with(0, "contexts:\n  a: {}\n  b: {}\n")),
    ]
}

/// Scan-target seeds, led by the `allow_large` flag byte.
pub fn targets() -> Vec<(&'static str, Vec<u8>)> {
    let with = |flag: u8, text: &str| {
        let mut v = vec![flag];
        v.extend_from_slice(text.as_bytes());
        v
    };
    vec![
        ("v4-cidr", with(0, "127.0.0.0/24")),
        (
            "mixed",
            with(0, "127.0.0.5/24,127.0.1.9\n127.0.2.0/31\n::1"),
        ),
        ("v6", with(0, "fd00::/120, fd00::ff")),
        ("slash16", with(0, "127.1.0.0/16\n127.1.2.3/32")),
        ("large-allowed", with(1, "127.0.0.0/8\n::/0")),
        ("large-refused", with(0, "10.0.0.0/8")),
        ("trailing-comma", with(0, "127.0.0.1,")),
    ]
}

/// A kubeconfig as Talos returns it.
pub const KUBECONFIG: &str = "apiVersion: v1\nkind: Config\nclusters:\n  - name: demo\n    cluster:\n      server: https://127.0.0.10:6443\ncontexts:\n  - name: admin@demo\n    context: {cluster: demo, user: admin@demo}\ncurrent-context: admin@demo\nusers:\n  - name: admin@demo\n    user: {}\n";

/// Kubeconfig archive seeds, led by a mode byte: 0 = the payload as is,
/// 1 = the rest is gzipped by the target first (a raw tar stream).
pub fn kubeconfigs() -> Vec<(&'static str, Vec<u8>)> {
    use talstrap::talos::kubeconfig::build_unterminated_archive;
    let with = |mode: u8, bytes: Vec<u8>| {
        let mut v = vec![mode];
        v.extend(bytes);
        v
    };
    let good = build_unterminated_archive("kubeconfig", KUBECONFIG.as_bytes());
    let dotted = build_unterminated_archive("./kubeconfig", KUBECONFIG.as_bytes());
    let wrong = build_unterminated_archive("etc/passwd", b"root:x:0:0\n");
    let raw_tar = gunzip(&good);
    let mut truncated = good.clone();
    truncated.truncate(good.len() / 2);
    vec![
        ("archive", with(0, good)),
        ("dotted-name", with(0, dotted)),
        ("wrong-name", with(0, wrong)),
        ("truncated-gzip", with(0, truncated)),
        ("raw-tar", with(1, raw_tar)),
    ]
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    use std::io::Read as _;
    let mut out = Vec::new();
    // An unterminated archive is still a complete gzip stream.
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .expect("gunzip our own archive");
    out
}
