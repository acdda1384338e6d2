//! `talstrap sim`: serve a simulated fleet until Ctrl-C (see `crate::sim`).

use std::path::PathBuf;

use crate::cli::SimLayout;
use crate::exit::Exit;
use crate::settings::SimSettings;

use super::{CommandError, Session};

/// A fresh directory for throwaway cluster files (keys included): a random
/// name under the temp dir, created new (never an existing path or a
/// symlink someone planted) with mode 0700.
pub(crate) fn fresh_dir(prefix: &str) -> Result<PathBuf, CommandError> {
    use std::os::unix::fs::DirBuilderExt as _;
    let tmp = std::env::temp_dir();
    let mut last = None;
    for _ in 0..8 {
        let name = format!("{:016x}", unpredictable_u64());
        let dir = tmp.join(format!("{prefix}-{name}"));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => {
                return Err(CommandError::Runtime(anyhow::anyhow!(
                    "creating {}: {e}",
                    dir.display()
                )));
            }
        }
    }
    Err(CommandError::Runtime(anyhow::anyhow!(
        "creating a directory under {}: {}",
        tmp.display(),
        last.map(|e| e.to_string()).unwrap_or_default()
    )))
}

/// 64 bits no one else can guess: SipHash under the process's random keys
/// (std seeds them from the OS; each `RandomState` gets new ones).
fn unpredictable_u64() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.finish()
}

pub(crate) async fn run(session: &Session, settings: SimSettings) -> Result<Exit, CommandError> {
    let SimSettings {
        mut spec,
        dir,
        layout,
    } = settings;
    spec.dir = match dir {
        Some(d) => d,
        None => fresh_dir("talstrap-sim")?,
    };
    let asked = spec.port;
    let fleet = match crate::sim::Fleet::start(spec.clone()).await {
        Ok(f) => f,
        Err(first) if asked != 0 => {
            // The default port is often taken (a real Talos API, another sim): pick a free one.
            spec.port = 0;
            let f = crate::sim::Fleet::start(spec).await.map_err(|e| {
                CommandError::Runtime(e.context(format!(
                    "starting the fleet (port {asked} failed first: {first:#})"
                )))
            })?;
            crate::output::stdout::error_line(&format!(
                "note: port {asked} is busy; the fleet uses port {}",
                f.port()
            ));
            f
        }
        Err(e) => {
            return Err(CommandError::Runtime(
                e.context("starting the simulated fleet"),
            ));
        }
    };
    let guide = match layout {
        SimLayout::Talhelper => crate::sim::cli::guide(&fleet),
        SimLayout::Topf => {
            let files = write_topf_layout(fleet.paths()).map_err(|e| {
                CommandError::Runtime(anyhow::anyhow!("writing the topf layout: {e}"))
            })?;
            topf_guide(&fleet, &files)
        }
    };
    crate::output::stdout::write(guide.as_bytes());
    session.cancel.cancelled().await;
    let (handshakes, most) = fleet.handshakes();
    let (nodes, connections) = (fleet.nodes().len(), fleet.total_connections());
    fleet.shutdown().await;
    crate::output::stdout::line(&format!(
        "talstrap sim: stopped; {nodes} nodes accepted {connections} TCP connections and completed {handshakes} TLS handshakes (at most {most} on one node)"
    ));
    Ok(Exit::Success)
}

/// The files of a topf-shaped cluster written by [`write_topf_layout`].
#[derive(Debug, Clone)]
pub struct TopfFiles {
    pub topf: PathBuf,
    pub rendered: PathBuf,
    pub talosconfig: PathBuf,
}

/// Turn the generated talhelper layout into what a topf repository holds
/// after `topf render -o rendered` and `topf talosconfig > talosconfig`:
/// `topf.yaml` (clusterName, clusterEndpoint, kubernetesVersion, nodes with
/// host, ip and role), `rendered/<host>.yaml` and `talosconfig`, all beside
/// each other. talconfig.yaml and clusterconfig/ are removed, so the
/// directory is unambiguous.
pub fn write_topf_layout(cluster: &crate::sim::GeneratedCluster) -> std::io::Result<TopfFiles> {
    use std::fmt::Write as _;
    let dir = &cluster.dir;
    let rendered = dir.join("rendered");
    std::fs::create_dir_all(&rendered)?;
    let mut topf = format!(
        "# topf.yaml written by `talstrap sim --layout topf`\nclusterName: {}\nclusterEndpoint: {}\nkubernetesVersion: 1.34.1\nnodes:\n",
        cluster.cluster_name, cluster.endpoint
    );
    for n in &cluster.nodes {
        let role = if n.control_plane {
            "control-plane"
        } else {
            "worker"
        };
        let _ = write!(
            topf,
            "  - host: {}\n    ip: {}\n    role: {role}\n",
            n.hostname, n.ip
        );
        copy_private(
            &n.config_path,
            &rendered.join(format!("{}.yaml", n.hostname)),
        )?;
    }
    let topf_path = dir.join("topf.yaml");
    std::fs::write(&topf_path, topf)?;
    let talosconfig = dir.join("talosconfig");
    copy_private(&cluster.talosconfig, &talosconfig)?;
    let _ = std::fs::remove_file(&cluster.talconfig);
    let _ = std::fs::remove_dir_all(&cluster.config_dir);
    Ok(TopfFiles {
        topf: topf_path,
        rendered,
        talosconfig,
    })
}

/// Copy a file holding credentials: the copy is mode 0600.
fn copy_private(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let bytes = std::fs::read(from)?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(to)?;
    f.write_all(&bytes)
}

fn topf_guide(fleet: &crate::sim::Fleet, files: &TopfFiles) -> String {
    let port = fleet.port();
    let dir = files
        .topf
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .display();
    format!(
        "talstrap sim: {} simulated Talos nodes on loopback, port {port}, in a topf layout\n\
         cluster files in {dir}\n  topf.yaml    {}\n  rendered     {}\n  talosconfig  {}\n\n\
         Try next (in {dir}):\n  \
         talstrap preflight --topf topf.yaml --config-dir rendered --port {port}\n  \
         talstrap apply --topf topf.yaml --config-dir rendered --port {port} --wait\n  \
         talstrap bootstrap --topf topf.yaml --config-dir rendered --port {port} --kubeconfig kubeconfig\n  \
         talstrap verify --topf topf.yaml --config-dir rendered --port {port}\n\n\
         Serving until interrupted (Ctrl-C).\n",
        fleet.nodes().len(),
        files.topf.display(),
        files.rendered.display(),
        files.talosconfig.display(),
    )
}
