//! From raw flags to a validated plan: which nodes, at which addresses, with
//! which config, and which credentials. Every input error is raised here,
//! before any node is contacted.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::inventory::{self, Filter, Inventory, LoadOptions, NodeEntry, Role};
use crate::pipeline::{NodeRef, RetryPolicy};
use crate::settings::{InventorySettings, PacingSettings};
use crate::talos::talosconfig::{self, Talosconfig};
use crate::talos::{Timeouts, tls};

use super::CommandError;

/// One node the command will work on.
#[derive(Clone)]
pub(crate) struct PlannedNode {
    pub node: NodeRef,
    pub addr: SocketAddr,
    pub entry: NodeEntry,
}

impl PlannedNode {
    pub(crate) fn is_control_plane(&self) -> bool {
        self.entry.role == Role::ControlPlane
    }

    pub(crate) fn endpoint(&self) -> Endpoint {
        Endpoint {
            node: self.node.clone(),
            addr: self.addr,
        }
    }
}

/// A node known only by name and address (bootstrap targets, scan results).
#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    pub node: NodeRef,
    pub addr: SocketAddr,
}

/// Credentials and TLS settings shared by every node of a run (built once).
#[derive(Clone)]
pub(crate) struct Access {
    pub talosconfig: Option<Arc<Talosconfig>>,
    /// mTLS client config from the talosconfig (None without one).
    pub secure: Option<Arc<rustls::ClientConfig>>,
    /// No-client-cert config for maintenance mode (optionally fingerprint-pinned).
    pub maintenance: Arc<rustls::ClientConfig>,
    /// The `--cert-fingerprint` pins `maintenance` was built with.
    pub pins: Vec<String>,
    pub timeouts: Timeouts,
    /// Tells a wrong `--port` after one round (see [`crate::ops::node::FirstRound`]).
    pub first_round: Option<Arc<crate::ops::node::FirstRound>>,
}

impl Access {
    /// The talosconfig's CA as messages name it ("none" without one).
    pub(crate) fn talosconfig_ca(&self) -> String {
        self.talosconfig.as_ref().map_or_else(
            || "none".into(),
            |t| describe_cert(t.credentials.ca_certs().first().map(|c| c.as_ref())),
        )
    }
}

/// Everything a node pipeline needs, validated.
pub(crate) struct Plan {
    /// The selected nodes (after -n/--role), in inventory order.
    pub nodes: Vec<PlannedNode>,
    /// Every control plane of the inventory (for cluster-wide checks), in order.
    pub control_planes: Vec<PlannedNode>,
    pub access: Access,
    pub retry: RetryPolicy,
    pub warnings: Vec<String>,
}

impl Plan {
    /// Load and check everything; nothing is contacted. Gives up (killing
    /// a running `sops -d`) once `stop` is set: see `Session::plan`.
    /// `(port, parallel)`: the API port and how many nodes run at once.
    pub(crate) fn build_until(
        inv: &InventorySettings,
        pacing: &PacingSettings,
        (port, parallel): (u16, usize),
        stop: Arc<AtomicBool>,
    ) -> Result<Plan, CommandError> {
        let (inventory, config_dir_note) = load_inventory_until(inv, stop)?;
        let filter = Filter {
            nodes: inv.nodes.clone(),
            role: inv.role,
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

        let mut warnings: Vec<String> = config_dir_note.into_iter().collect();
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
        let mut access = build_access(talosconfig, &inv.cert_fingerprints, pacing)?;
        let whole = nodes.len() == inventory.nodes.len();
        access.first_round = crate::ops::node::FirstRound::new(nodes.len(), parallel, port, whole);
        let retry = pacing.retry();
        Ok(Plan {
            nodes,
            control_planes,
            access,
            retry,
            warnings,
        })
    }
}

/// The inventory, and a note when the machine-config directory had to be
/// picked between two candidates (see [`pick_config_dir`]).
fn load_inventory_until(
    inv: &InventorySettings,
    stop: Arc<AtomicBool>,
) -> Result<(Inventory, Option<String>), CommandError> {
    // `--node` with a talconfig.yaml or topf.yaml was refused by the settings.
    if !inv.node_configs.is_empty() {
        return inventory::from_node_flags(&inv.node_configs)
            .map(|i| (i, None))
            .map_err(CommandError::input);
    }
    if let Some(topf) = &inv.topf {
        return inventory::load_topf(topf, inv.config_dir.as_deref())
            .map(|i| (i, None))
            .map_err(CommandError::input);
    }
    let talconfig = inv
        .talconfig
        .clone()
        .unwrap_or_else(|| PathBuf::from("talconfig.yaml"));
    if inv.talconfig.is_none() && !talconfig.exists() {
        // A topf repository: ./topf.yaml and its render output.
        let topf = PathBuf::from("topf.yaml");
        if topf.exists() {
            return inventory::load_topf(&topf, inv.config_dir.as_deref())
                .map(|i| (i, None))
                .map_err(CommandError::input);
        }
        return Err(CommandError::input(
            "no nodes given: there is no ./talconfig.yaml or ./topf.yaml; pass --talconfig FILE, --topf FILE or --node IP=path/to/config.yaml",
        ));
    }
    let (config_dir, note) = match &inv.config_dir {
        Some(d) => (Some(d.clone()), None),
        None => {
            let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
            let (dir, note) = pick_config_dir(&LoadOptions::new(&talconfig), &cwd);
            (Some(dir), note)
        }
    };
    let opts = LoadOptions {
        talconfig,
        config_dir,
        env_files: inv.env_files.clone(),
    };
    let env = inventory::Environment::process().with_stop(stop);
    inventory::load_talconfig_in(&opts, &env)
        .map(|i| (i, note))
        .map_err(CommandError::input)
}

/// `p` relative to the working directory when it is under it, for messages.
fn short_path(p: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| p.strip_prefix(cwd).ok().map(|r| r.display().to_string()))
        .unwrap_or_else(|| p.display().to_string())
}

/// Where the machine configs are when `--config-dir` is not given.
/// talhelper writes `./clusterconfig` relative to the working directory
/// (`genconfig -o` defaults to it), while talstrap's default is
/// `clusterconfig/` next to talconfig.yaml: when talconfig.yaml is
/// elsewhere both are looked at. The one next to talconfig.yaml wins when
/// both exist; the note says which was used whenever there was a choice.
fn pick_config_dir(opts: &LoadOptions, cwd: &Path) -> (PathBuf, Option<String>) {
    let beside = opts.resolved_config_dir();
    let here = cwd.join("clusterconfig");
    let same = match (beside.canonicalize(), here.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => beside == here || beside == Path::new("clusterconfig"),
    };
    if same {
        return (beside, None);
    }
    match (beside.is_dir(), here.is_dir()) {
        (false, true) => {
            let note = format!(
                "machine configs: using ./clusterconfig (talhelper's default output, in the working directory): there is no {} next to {}; pass --config-dir to choose",
                short_path(&beside),
                short_path(&opts.talconfig)
            );
            (here, Some(note))
        }
        (true, true) => {
            let note = format!(
                "machine configs: using {} (next to {}); ./clusterconfig in the working directory exists too and was not used; pass --config-dir to choose",
                short_path(&beside),
                short_path(&opts.talconfig)
            );
            (beside, Some(note))
        }
        _ => (beside, None),
    }
}

/// talosctl's lookup order, with talhelper's `clusterconfig/talosconfig` after
/// `$TALOSCONFIG`. A missing talosconfig is not an error here: maintenance
/// nodes need none; a configured node without one fails with a hint.
pub(crate) fn find_talosconfig(
    inv: &InventorySettings,
    inventory: Option<&Inventory>,
) -> Result<Option<Arc<Talosconfig>>, CommandError> {
    let env_set = std::env::var_os("TALOSCONFIG").is_some_and(|v| !v.is_empty());
    let path: Option<PathBuf> = if inv.talosconfig.is_some() || env_set {
        Some(talosconfig::locate(inv.talosconfig.as_deref()).map_err(CommandError::input)?)
    } else if let Some(p) = inventory.and_then(talhelper_talosconfig) {
        Some(p)
    } else {
        talosconfig::locate_optional().map_err(CommandError::input)?
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
        // cluster-template: `topf talosconfig > talosconfig` next to topf.yaml.
        inventory::InventorySource::Topf { path, .. } => {
            let p = path
                .parent()
                .unwrap_or(std::path::Path::new("."))
                .join("talosconfig");
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
pub(crate) fn describe_cert(der: Option<&[u8]>) -> String {
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

/// `pins` were checked by the settings (base64 SHA-256 digests).
pub(crate) fn build_access(
    talosconfig: Option<Arc<Talosconfig>>,
    pins: &[String],
    pacing: &PacingSettings,
) -> Result<Access, CommandError> {
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
        pins: pins.to_vec(),
        timeouts: pacing.timeouts(),
        first_round: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_dir_is_looked_for_next_to_talconfig_and_in_the_working_directory() {
        let root = tempfile::tempdir().unwrap();
        let talos = root.path().join("talos");
        std::fs::create_dir_all(&talos).unwrap();
        let opts = LoadOptions::new(talos.join("talconfig.yaml"));
        let cwd = root.path();
        // Neither exists: the usual default, nothing to say.
        assert_eq!(
            pick_config_dir(&opts, cwd),
            (talos.join("clusterconfig"), None)
        );
        // Only ./clusterconfig (talhelper run from the repository root).
        std::fs::create_dir_all(cwd.join("clusterconfig")).unwrap();
        let (dir, note) = pick_config_dir(&opts, cwd);
        assert_eq!(dir, cwd.join("clusterconfig"));
        assert!(note.unwrap().contains("using ./clusterconfig"));
        // Both: the one next to talconfig.yaml, and the note says so.
        std::fs::create_dir_all(talos.join("clusterconfig")).unwrap();
        let (dir, note) = pick_config_dir(&opts, cwd);
        assert_eq!(dir, talos.join("clusterconfig"));
        assert!(note.unwrap().contains("exists too and was not used"));
        // talconfig.yaml in the working directory: one candidate only.
        let opts = LoadOptions::new(cwd.join("talconfig.yaml"));
        assert_eq!(
            pick_config_dir(&opts, cwd),
            (cwd.join("clusterconfig"), None)
        );
    }
}
