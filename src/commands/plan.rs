//! From raw flags to a validated plan: which nodes, at which addresses, with
//! which config, and which credentials. Every input error is raised here,
//! before any node is contacted.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::cli::{InventoryArgs, PacingArgs, RoleArg};
use crate::inventory::{self, Filter, Inventory, LoadOptions, NodeEntry, Role};
use crate::pipeline::{NodeRef, RetryPolicy};
use crate::talos::talosconfig::{self, Talosconfig};
use crate::talos::{Timeouts, tls};

use super::CommandError;

/// One node the command will work on.
#[derive(Clone)]
pub struct PlannedNode {
    pub node: NodeRef,
    pub addr: SocketAddr,
    pub entry: NodeEntry,
}

impl PlannedNode {
    pub fn is_control_plane(&self) -> bool {
        self.entry.role == Role::ControlPlane
    }

    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            node: self.node.clone(),
            addr: self.addr,
        }
    }
}

/// A node known only by name and address (bootstrap targets, scan results).
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub node: NodeRef,
    pub addr: SocketAddr,
}

/// Credentials and TLS settings shared by every node of a run (built once).
#[derive(Clone)]
pub struct Access {
    pub talosconfig: Option<Arc<Talosconfig>>,
    /// mTLS client config from the talosconfig (None without one).
    pub secure: Option<Arc<rustls::ClientConfig>>,
    /// No-client-cert config for maintenance mode (optionally fingerprint-pinned).
    pub maintenance: Arc<rustls::ClientConfig>,
    pub timeouts: Timeouts,
}

/// Everything a node pipeline needs, validated.
pub struct Plan {
    pub inventory: Inventory,
    /// The selected nodes (after -n/--role), in inventory order.
    pub nodes: Vec<PlannedNode>,
    /// Every control plane of the inventory (for cluster-wide checks), in order.
    pub control_planes: Vec<PlannedNode>,
    pub access: Access,
    pub retry: RetryPolicy,
    pub warnings: Vec<String>,
}

impl Plan {
    /// Load and validate everything; nothing is contacted.
    pub fn build(
        inv: &InventoryArgs,
        pacing: &PacingArgs,
        port: u16,
    ) -> Result<Plan, CommandError> {
        let inventory = load_inventory(inv)?;
        let filter = Filter {
            nodes: inv.nodes.clone(),
            role: inv.role.map(|r| match r {
                RoleArg::ControlPlane => Role::ControlPlane,
                RoleArg::Worker => Role::Worker,
            }),
        };
        let selected = inventory.filter(&filter).map_err(CommandError::input)?;
        let planned = |e: &NodeEntry| PlannedNode {
            node: NodeRef::new(e.hostname.clone(), e.primary_ip(), Some(e.role.to_string())),
            addr: SocketAddr::new(e.primary_ip(), port),
            entry: e.clone(),
        };
        let nodes: Vec<PlannedNode> = selected.iter().map(planned).collect();
        let control_planes: Vec<PlannedNode> = inventory
            .nodes
            .iter()
            .filter(|e| e.role == Role::ControlPlane)
            .map(planned)
            .collect();

        let mut warnings = Vec::new();
        for e in &inventory.nodes {
            for w in &e.config.warnings {
                warnings.push(format!("{}: {w}", e.config_path.display()));
            }
        }

        let talosconfig = find_talosconfig(inv, Some(&inventory))?;
        if let Some(tc) = &talosconfig {
            warnings.extend(tc.warnings.iter().cloned());
            check_talosconfig_matches(tc, &inventory)?;
        }
        let access = build_access(talosconfig, &inv.cert_fingerprints, pacing)?;
        let retry = RetryPolicy {
            attempts: pacing.attempts,
            base: pacing.retry_delay,
            max: std::time::Duration::from_secs(30).max(pacing.retry_delay),
        };
        Ok(Plan {
            inventory,
            nodes,
            control_planes,
            access,
            retry,
            warnings,
        })
    }
}

/// The talconfig layout, or `--node IP=FILE` flags.
pub fn load_inventory(inv: &InventoryArgs) -> Result<Inventory, CommandError> {
    if !inv.node_configs.is_empty() {
        if inv.talconfig.is_some() {
            return Err(CommandError::input(
                "--node IP=FILE and --talconfig cannot be combined: give the nodes one way",
            ));
        }
        return inventory::from_node_flags(&inv.node_configs).map_err(CommandError::input);
    }
    let talconfig = inv
        .talconfig
        .clone()
        .unwrap_or_else(|| PathBuf::from("talconfig.yaml"));
    if inv.talconfig.is_none() && !talconfig.exists() {
        return Err(CommandError::input(
            "no nodes given: there is no ./talconfig.yaml; pass --talconfig FILE or --node IP=path/to/config.yaml",
        ));
    }
    let opts = LoadOptions {
        talconfig,
        config_dir: inv.config_dir.clone(),
        env_files: inv.env_files.clone(),
    };
    inventory::load_talconfig(&opts).map_err(CommandError::input)
}

/// talosctl's lookup order, with talhelper's `clusterconfig/talosconfig` after
/// `$TALOSCONFIG`. A missing talosconfig is not an error here: maintenance
/// nodes need none; a configured node without one fails with a hint.
pub fn find_talosconfig(
    inv: &InventoryArgs,
    inventory: Option<&Inventory>,
) -> Result<Option<Arc<Talosconfig>>, CommandError> {
    let env_set = std::env::var_os("TALOSCONFIG").is_some_and(|v| !v.is_empty());
    let path: Option<PathBuf> = if inv.talosconfig.is_some() || env_set {
        Some(talosconfig::locate(inv.talosconfig.as_deref()).map_err(CommandError::input)?)
    } else if let Some(p) = inventory.and_then(talhelper_talosconfig) {
        Some(p)
    } else {
        talosconfig::locate(None).ok()
    };
    let Some(path) = path else {
        return Ok(None);
    };
    let tc = talosconfig::load(&path, inv.context.as_deref()).map_err(CommandError::input)?;
    Ok(Some(Arc::new(tc)))
}

fn talhelper_talosconfig(inventory: &Inventory) -> Option<PathBuf> {
    match &inventory.source {
        inventory::InventorySource::Talconfig { config_dir, .. } => {
            let p = config_dir.join("talosconfig");
            p.exists().then_some(p)
        }
        _ => None,
    }
}

/// A talosconfig from another cluster fails every configured node with a TLS
/// error; say so up front, naming both CAs, instead.
fn check_talosconfig_matches(tc: &Talosconfig, inventory: &Inventory) -> Result<(), CommandError> {
    let ours: Vec<Vec<u8>> = tc
        .credentials
        .ca_certs()
        .iter()
        .map(|c| c.as_ref().to_vec())
        .collect();
    for e in &inventory.nodes {
        let Some(pem) = &e.config.os_ca_crt_pem else {
            continue;
        };
        let node_ca = pem_first_der(pem);
        if let Some(der) = node_ca
            && !ours.iter().any(|c| c == &der)
        {
            return Err(CommandError::input(format!(
                "talosconfig {} (context \"{}\") does not belong to this cluster: its CA ({}) is not the OS CA of {} in {} ({}); use the talosconfig generated with these machine configs",
                tc.path.display(),
                tc.context_name,
                describe_cert(ours.first().map(Vec::as_slice)),
                e.hostname,
                e.config_path.display(),
                describe_cert(Some(&der)),
            )));
        }
    }
    Ok(())
}

fn pem_first_der(pem: &[u8]) -> Option<Vec<u8>> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    CertificateDer::pem_slice_iter(pem)
        .next()
        .and_then(Result::ok)
        .map(|c| c.as_ref().to_vec())
}

/// `subject "O=talos", key id 3f:…` — enough to tell two CAs apart, nothing secret.
pub fn describe_cert(der: Option<&[u8]>) -> String {
    let Some(der) = der else {
        return "none".into();
    };
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => match crate::talos::probe::subject_key_id(&cert) {
            Some(id) => format!("subject \"{}\", key id {id}", cert.subject()),
            None => {
                let serial: String = cert.raw_serial_as_string().chars().take(23).collect();
                format!("subject \"{}\", serial {serial}", cert.subject())
            }
        },
        Err(_) => "unparsable certificate".into(),
    }
}

pub fn build_access(
    talosconfig: Option<Arc<Talosconfig>>,
    pins: &[String],
    pacing: &PacingArgs,
) -> Result<Access, CommandError> {
    for pin in pins {
        check_fingerprint(pin).map_err(CommandError::input)?;
    }
    let secure =
        match &talosconfig {
            Some(tc) => Some(tls::secure_config(&tc.credentials).map_err(|e| {
                CommandError::input(format!("talosconfig {}: {e}", tc.path.display()))
            })?),
            None => None,
        };
    Ok(Access {
        talosconfig,
        secure,
        maintenance: tls::maintenance_config(pins),
        timeouts: Timeouts {
            connect: pacing.connect_timeout,
            tls: pacing
                .connect_timeout
                .max(std::time::Duration::from_secs(2))
                * 2,
            rpc: pacing.rpc_timeout,
        },
    })
}

/// A maintenance pin must be what the node prints on its console: base64
/// (standard alphabet) of a SHA-256 digest. A typo would otherwise fail
/// every node at connect time, after contacting it.
fn check_fingerprint(pin: &str) -> Result<(), String> {
    use base64::Engine as _;
    let text = pin.trim();
    let decoded = base64::engine::general_purpose::STANDARD.decode(text.as_bytes());
    match decoded {
        Ok(bytes) if bytes.len() == 32 => Ok(()),
        Ok(bytes) => Err(format!(
            "--cert-fingerprint {text:?}: decodes to {} bytes, but a fingerprint is a SHA-256 digest (32 bytes, 44 base64 characters) as the node prints it on its console",
            bytes.len()
        )),
        Err(_) => Err(format!(
            "--cert-fingerprint {text:?}: not base64; give the SPKI SHA-256 fingerprint the node prints on its console (44 characters ending in '=')"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_must_be_base64_sha256() {
        // 32 zero bytes, as a node would print a digest.
        assert!(check_fingerprint("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").is_ok());
        assert!(check_fingerprint(" AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= ").is_ok());
        let err = check_fingerprint("not-a-fingerprint").unwrap_err();
        assert!(err.contains("not base64"), "{err}");
        let err = check_fingerprint("AAAA").unwrap_err();
        assert!(err.contains("3 bytes"), "{err}");
    }
}
