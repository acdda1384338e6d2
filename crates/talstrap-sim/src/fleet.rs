//! A fleet of simulated Talos nodes on loopback: one 127.x.y.z address per
//! node, one shared port, a throwaway cluster written to disk, faults from a
//! scenario. This is the in-process API tests and `talstrap sim`/`demo` use.
//!
//! ```ignore
//! let tmp = tempfile::tempdir()?;
//! let mut spec = FleetSpec::new(3, 2, tmp.path());
//! spec.time_scale = 0.02; // milliseconds instead of seconds
//! spec.scenario = Scenario::from_yaml("nodes: { cp2: { install_fails: true } }", "test")?;
//! let fleet = Fleet::start(spec).await?;
//! let talconfig = &fleet.paths().talconfig; // dial fleet.nodes()[i].addr
//! assert_eq!(fleet.etcd_clusters().len(), 0);
//! fleet.shutdown().await;
//! ```

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context;
use ipnet::Ipv4Net;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::applied_config;
use super::genconfig::{
    ClusterNetwork, ClusterSpec, GeneratedCluster, InstallTarget, NodeSpec, generate_cluster,
};
use super::node::{self, SimNode};
use super::pki;
use super::scenario::{Scenario, Timing};
use super::state::{EtcdRegistry, FleetView, Lifecycle, NodeIdent, NodeSnapshot, NodeStats, Role};
use crate::disksel::{DiskFacts, DiskSelector};

/// `host:port`, with brackets for IPv6.
pub fn host_port(ip: IpAddr, port: u16) -> String {
    SocketAddr::new(ip, port).to_string()
}

/// The default disks of every simulated machine: a 512 GB NVMe SSD and a
/// 2 TB SATA HDD.
pub fn default_disks() -> Vec<DiskFacts> {
    vec![
        DiskFacts {
            dev_path: "/dev/nvme0n1".into(),
            size: 512_000_000_000,
            model: "Simulated NVMe SSD".into(),
            serial: "SIMNVME0001".into(),
            modalias: "nvme:v144DdA808".into(),
            wwid: "eui.0025385b71b0a001".into(),
            bus_path: "/pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme".into(),
            transport: "nvme".into(),
            rotational: false,
            // Talos v1.14.0-rc.1 internal/app/machined/pkg/controllers/block/disks.go:
            // every /dev/disk/* link of the device.
            symlinks: vec![
                "/dev/disk/by-id/nvme-Simulated_NVMe_SSD_SIMNVME0001".into(),
                "/dev/disk/by-id/nvme-eui.0025385b71b0a001".into(),
                "/dev/disk/by-path/pci-0000:3d:00.0-nvme-1".into(),
            ],
            ..DiskFacts::default()
        },
        DiskFacts {
            dev_path: "/dev/sda".into(),
            size: 2_000_000_000_000,
            model: "Simulated HDD".into(),
            serial: "SIMHDD0001".into(),
            modalias: "scsi:t-0x00".into(),
            wwid: "naa.5000c500a1b2c3d4".into(),
            bus_path: "/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0".into(),
            transport: "sata".into(),
            rotational: true,
            symlinks: vec![
                "/dev/disk/by-id/ata-Simulated_HDD_SIMHDD0001".into(),
                "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4".into(),
                "/dev/disk/by-path/pci-0000:00:17.0-ata-1".into(),
            ],
            ..DiskFacts::default()
        },
    ]
}

/// What fleet to start.
#[derive(Debug, Clone)]
pub struct FleetSpec {
    pub control_planes: usize,
    pub workers: usize,
    /// Node addresses come from here (`.11`, `.12`, ...); the cluster
    /// endpoint is `.254`, which nobody serves. Random 127.x.y.0/24 if unset.
    pub subnet: Option<Ipv4Net>,
    /// Shared port; 0 picks one that is free on every node address.
    pub port: u16,
    /// Where the cluster files are written.
    pub dir: PathBuf,
    /// Multiplies every duration (0.02 in tests, 1.0 in the demo).
    pub time_scale: f64,
    pub scenario: Scenario,
    pub cluster_name: String,
    pub talos_version: String,
    pub kubernetes_version: String,
    /// Disks of every node unless the scenario overrides a node's.
    pub disks: Vec<DiskFacts>,
    /// Per-hostname install target overrides written into the configs.
    /// Default: control planes `installDisk: /dev/nvme0n1`, workers
    /// `installDiskSelector: {type: nvme}`.
    pub install: BTreeMap<String, InstallTarget>,
}

impl FleetSpec {
    /// `control_planes` + `workers` nodes in a random 127.x.y.0/24, free port,
    /// Talos v1.12.11 (`talstrap sim` and `demo` default to the newest
    /// release, [`super::version::NEWEST`]), time scale 1.
    pub fn new(control_planes: usize, workers: usize, dir: impl Into<PathBuf>) -> Self {
        Self {
            control_planes,
            workers,
            subnet: Some(random_subnet()),
            port: 0,
            dir: dir.into(),
            time_scale: 1.0,
            scenario: Scenario::default(),
            cluster_name: "sim".to_string(),
            talos_version: "v1.12.11".to_string(),
            kubernetes_version: "v1.34.1".to_string(),
            disks: default_disks(),
            install: BTreeMap::new(),
        }
    }

    /// Checks what a user can get wrong (node counts, time scale, subnet,
    /// scenario hostnames) without starting anything, so a command can
    /// refuse it as bad input before any listener exists.
    pub fn check(&self) -> Result<(), String> {
        let total = self
            .control_planes
            .checked_add(self.workers)
            .ok_or_else(|| "too many simulated nodes".to_string())?;
        if total == 0 {
            return Err("a fleet needs at least one node".into());
        }
        if !(self.time_scale.is_finite() && self.time_scale >= 0.0) {
            return Err("time scale must be a finite, non-negative number".into());
        }
        if let Some(subnet) = self.subnet {
            if subnet.network().octets()[0] != 127 || subnet.prefix_len() > 24 {
                return Err(format!(
                    "subnet {subnet} must be inside 127.0.0.0/8 and at least a /24: the simulator only uses loopback"
                ));
            }
            // Nodes start at .11; the last address before broadcast is the endpoint.
            let room =
                (u32::from(subnet.broadcast()) - 1 - u32::from(subnet.network()) - 11) as usize;
            if total > room {
                return Err(format!(
                    "{total} simulated nodes do not fit in {subnet}: at most {room} do"
                ));
            }
        } else if total > 243 {
            return Err(format!(
                "{total} simulated nodes do not fit in a /24: at most 243 do; give a larger subnet"
            ));
        }
        let origin = match self.scenario.origin.as_str() {
            "" => "given",
            o => o,
        };
        self.scenario
            .check_hostnames(&self.hostnames(), origin)
            .map_err(|e| e.to_string())
    }

    /// Hostnames in talconfig order: `cp1..cpN`, then `w1..wM`.
    pub fn hostnames(&self) -> Vec<String> {
        (1..=self.control_planes)
            .map(|i| format!("cp{i}"))
            .chain((1..=self.workers).map(|i| format!("w{i}")))
            .collect()
    }
}

/// A random 127.x.y.0/24 with x, y in 1..=254.
pub fn random_subnet() -> Ipv4Net {
    let mut b = [0u8; 2];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    let x = 1 + b[0] % 254;
    let y = 1 + b[1] % 254;
    Ipv4Net::new(Ipv4Addr::new(127, x, y, 0), 24).unwrap_or_else(|_| Ipv4Net::default())
}

/// Public facts about one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimNodeInfo {
    pub hostname: String,
    pub ip: IpAddr,
    pub role: Role,
    pub addr: SocketAddr,
    pub config_path: PathBuf,
}

/// State shared by every node of a fleet.
pub struct FleetShared {
    pub nodes: Vec<Arc<SimNode>>,
    pub port: u16,
    etcd: Mutex<EtcdRegistry>,
    /// Bumped when what a node adds to the fleet view changed.
    tick: watch::Sender<u64>,
    /// The view as of a tick: built once per tick, not once per node.
    view_cache: Mutex<(u64, Arc<FleetView>)>,
}

impl FleetShared {
    /// The etcd registry. Lock order: a node's state, then this.
    pub fn etcd(&self) -> MutexGuard<'_, EtcdRegistry> {
        self.etcd
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn bump(&self) {
        self.tick.send_modify(|g| *g = g.wrapping_add(1));
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tick.subscribe()
    }

    /// A node by IP string or hostname.
    pub fn resolve(&self, target: &str) -> Option<Arc<SimNode>> {
        self.nodes
            .iter()
            .find(|n| {
                n.id.ip.to_string() == target
                    || n.id.hostname == target
                    || n.lock().hostname(&n.id) == target
            })
            .cloned()
    }

    /// [`FleetShared::view`], built at most once per tick (the view only
    /// changes with what the nodes' `NodeState::view_key` covers, and a
    /// change of that bumps the tick).
    pub fn current_view(&self) -> Arc<FleetView> {
        let generation = *self.tick.borrow();
        {
            let cache = lock_cache(&self.view_cache);
            if cache.0 == generation {
                return cache.1.clone();
            }
        }
        let view = Arc::new(self.view());
        *lock_cache(&self.view_cache) = (generation, view.clone());
        view
    }

    /// What nodes need to know about each other (locks one node at a time).
    pub fn view(&self) -> FleetView {
        let mut view = FleetView::default();
        for n in &self.nodes {
            let st = n.lock();
            // trustd waits for the unattended install on v1.14 (Talos
            // v1.14.0-rc.1 internal/app/machined/pkg/system/services/trustd.go).
            if st.lifecycle != Lifecycle::Configured
                || st.role(&n.id) != Role::ControlPlane
                || !st.install_done()
            {
                continue;
            }
            let Some(cfg) = &st.config else { continue };
            let Some(ca_id) = cfg.ca_id() else { continue };
            if st.boot.apid_up
                && let Some(ca) = cfg.ca.clone().filter(|c| c.key_pem.is_some())
            {
                view.trust.insert(ca_id.to_string(), ca);
                let at = view.trustd_at.entry(ca_id.to_string()).or_default();
                at.nodes.push(n.id.ip);
                // The VIP campaign starts once etcd is up and healthy
                // (Talos v1.12.11 controllers/network/operator/vip.go).
                if st.etcd.service == super::state::EtcdService::Running && st.etcd.healthy {
                    at.vips.extend(cfg.vips());
                }
            }
            if st.boot.apiserver_up {
                view.apiserver_up.insert(ca_id.to_string());
            }
        }
        view
    }

    fn node(&self, ip: IpAddr) -> Option<&Arc<SimNode>> {
        self.nodes.iter().find(|n| n.id.ip == ip)
    }
}

fn lock_cache<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A running simulated fleet.
pub struct Fleet {
    shared: Arc<FleetShared>,
    cluster: GeneratedCluster,
    tasks: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

/// Picks a port that can be bound on every address (and holds none).
fn pick_port(ips: &[IpAddr]) -> anyhow::Result<u16> {
    for _ in 0..50 {
        let first = std::net::TcpListener::bind(SocketAddr::new(ips[0], 0))
            .with_context(|| format!("cannot bind {}", ips[0]))?;
        let port = first.local_addr()?.port();
        let all_free = ips[1..]
            .iter()
            .all(|ip| std::net::TcpListener::bind(SocketAddr::new(*ip, port)).is_ok());
        if all_free {
            return Ok(port);
        }
    }
    anyhow::bail!("no port is free on every node address")
}

/// The nodes to generate: control planes first, each on its own address
/// in the subnet; the default install target is an NVMe disk (a path on
/// control planes, a selector on workers).
fn node_specs(spec: &FleetSpec, hostnames: &[String], base: u32) -> Vec<NodeSpec> {
    hostnames
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let control_plane = i < spec.control_planes;
            let install = spec.install.get(h).cloned().unwrap_or_else(|| {
                if control_plane {
                    InstallTarget::Disk("/dev/nvme0n1".into())
                } else {
                    InstallTarget::Selector(DiskSelector {
                        disk_type: Some("nvme".into()),
                        ..DiskSelector::default()
                    })
                }
            });
            NodeSpec {
                hostname: h.clone(),
                ip: IpAddr::V4(Ipv4Addr::from(base + 11 + i as u32)),
                control_plane,
                install,
            }
        })
        .collect()
}

/// Each node's identity: its faults, Talos version and disks from the
/// scenario, and a foreign CA for `wrong_ca`.
fn node_idents(
    spec: &FleetSpec,
    nodes: &[NodeSpec],
    timing: Timing,
) -> anyhow::Result<Vec<NodeIdent>> {
    let mut idents = Vec::new();
    for n in nodes {
        let faults = spec.scenario.faults(&n.hostname);
        let talos_version = spec
            .scenario
            .talos_version(&n.hostname, &spec.talos_version)
            .map_err(anyhow::Error::from)?;
        let disks = spec
            .scenario
            .disks
            .get(&n.hostname)
            .map(|d| d.iter().cloned().map(DiskFacts::from).collect())
            .unwrap_or_else(|| spec.disks.clone());
        let foreign_ca = if faults.wrong_ca {
            Some(pki::new_talos_ca()?)
        } else {
            None
        };
        idents.push(NodeIdent {
            hostname: n.hostname.clone(),
            ip: n.ip,
            role: if n.control_plane {
                Role::ControlPlane
            } else {
                Role::Worker
            },
            disks,
            faults,
            timing,
            time_scale: spec.time_scale,
            talos_version,
            foreign_ca,
        });
    }
    Ok(idents)
}

/// A node's state at start from its faults: configured already, powered
/// on, and with etcd bootstrapped (or its data kept for a node that boots
/// later).
fn initial_state(
    shared: &FleetShared,
    n: &SimNode,
    config_path: &std::path::Path,
    now: Instant,
) -> anyhow::Result<()> {
    let f = &n.id.faults;
    if f.configured || f.already_bootstrapped {
        let raw = std::fs::read(config_path)
            .with_context(|| format!("cannot read {}", config_path.display()))?;
        let cfg = applied_config::parse(&raw, &n.id.talos_version).map_err(|e| {
            anyhow::anyhow!("generated config of {} is invalid: {e:?}", n.id.hostname)
        })?;
        n.lock().preconfigure(Arc::new(cfg), &n.id.disks);
    }
    let mut st = n.lock();
    if !f.powered_off && f.power_on_after.is_none() {
        st.power_on(&n.id, now);
    }
    if f.already_bootstrapped {
        let mut registry = shared.etcd();
        if f.powered_off || f.power_on_after.is_some() {
            // etcd data survives; it starts with the node.
            let ca = st
                .config
                .as_ref()
                .and_then(|c| c.ca_id())
                .unwrap_or_default()
                .to_string();
            let member = super::state::EtcdMemberRec {
                hostname: st.member_name(&n.id),
                ip: n.id.ip,
                member_id: st.etcd.member_id,
            };
            st.etcd.cluster = Some(registry.create(&ca, member));
            st.etcd.has_data = true;
        } else {
            st.prebootstrap(&n.id, now, &mut registry);
        }
    }
    Ok(())
}

/// A task that runs `event` on the node after `after` (scaled), unless the
/// fleet stops first.
fn power_event(
    n: &Arc<SimNode>,
    after: Duration,
    time_scale: f64,
    stop: &watch::Receiver<bool>,
    event: fn(&SimNode),
) -> JoinHandle<()> {
    let after = super::scenario::scale_duration(after, time_scale);
    let weak = Arc::downgrade(n);
    let mut stop = stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::time::sleep(after) => {}
            _ = stop.changed() => return,
        }
        if let Some(n) = weak.upgrade() {
            event(&n);
            n.touch();
        }
    })
}

impl Fleet {
    /// Writes the cluster, starts every node and returns once every powered
    /// node listens as its state says (maintenance or apid).
    pub async fn start(spec: FleetSpec) -> anyhow::Result<Fleet> {
        spec.check().map_err(anyhow::Error::msg)?;
        let subnet = spec.subnet.unwrap_or_else(random_subnet);
        let base = u32::from(subnet.network());
        let endpoint = u32::from(subnet.broadcast()) - 1;
        let hostnames = spec.hostnames();

        let nodes = node_specs(&spec, &hostnames, base);
        let cluster = generate_cluster(
            &ClusterSpec {
                cluster_name: spec.cluster_name.clone(),
                talos_version: spec.talos_version.clone(),
                kubernetes_version: spec.kubernetes_version.clone(),
                endpoint_ip: IpAddr::V4(Ipv4Addr::from(endpoint)),
                network: ClusterNetwork {
                    discovery: spec.scenario.cluster.discovery,
                    vip_endpoint: spec.scenario.cluster.vip_endpoint,
                },
                nodes: nodes.clone(),
            },
            &spec.dir,
        )?;

        let ips: Vec<IpAddr> = nodes.iter().map(|n| n.ip).collect();
        let port = if spec.port == 0 {
            pick_port(&ips)?
        } else {
            spec.port
        };
        let timing = spec
            .scenario
            .timing
            .apply(Timing::default())
            .scaled(spec.time_scale);

        let idents = node_idents(&spec, &nodes, timing)?;
        let shared = Arc::new_cyclic(|weak| FleetShared {
            nodes: idents
                .into_iter()
                .enumerate()
                .map(|(i, id)| {
                    Arc::new(SimNode::new(
                        id,
                        weak.clone(),
                        0x1000_0000_0000_0000 + i as u64 * 0x9e37_79b9 + 1,
                    ))
                })
                .collect(),
            port,
            etcd: Mutex::new(EtcdRegistry::default()),
            tick: watch::channel(0).0,
            // Tick 0 has not been seen: the first reader builds the view.
            view_cache: Mutex::new((u64::MAX, Arc::default())),
        });

        // Initial states from the scenario.
        let now = Instant::now();
        for (n, gen_node) in shared.nodes.iter().zip(&cluster.nodes) {
            initial_state(&shared, n, &gen_node.config_path, now)?;
        }

        let (stop, stop_rx) = watch::channel(false);
        let mut tasks: Vec<_> = shared
            .nodes
            .iter()
            .map(|n| tokio::spawn(node::drive(n.clone(), stop_rx.clone())))
            .collect();
        for n in &shared.nodes {
            let f = &n.id.faults;
            if let Some(after) = f.power_on_after {
                tasks.push(power_event(n, after, spec.time_scale, &stop_rx, |n| {
                    n.lock().power_on(&n.id, Instant::now())
                }));
            }
            if let Some(after) = f.power_off_after {
                tasks.push(power_event(n, after, spec.time_scale, &stop_rx, |n| {
                    n.lock().power_off(Instant::now())
                }));
            }
        }
        let fleet = Fleet {
            shared,
            cluster,
            tasks,
            stop,
        };
        fleet.wait_settled().await?;
        Ok(fleet)
    }

    /// Waits until every node's listener matches its state.
    async fn wait_settled(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.shared.nodes.iter().all(|n| node::settled(n)) {
            anyhow::ensure!(
                Instant::now() < deadline,
                "simulated nodes did not start listening in time"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    /// Every node, in talconfig order.
    pub fn nodes(&self) -> Vec<SimNodeInfo> {
        self.shared
            .nodes
            .iter()
            .zip(&self.cluster.nodes)
            .map(|(n, g)| SimNodeInfo {
                hostname: n.id.hostname.clone(),
                ip: n.id.ip,
                role: n.id.role,
                addr: n.addr(self.shared.port),
                config_path: g.config_path.clone(),
            })
            .collect()
    }

    /// The distinct Talos tags the nodes run, in talconfig order.
    pub fn talos_versions(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for n in &self.shared.nodes {
            if !out.contains(&n.id.talos_version) {
                out.push(n.id.talos_version.clone());
            }
        }
        out
    }

    /// The Talos tag the node called `hostname` runs.
    pub fn talos_version(&self, hostname: &str) -> Option<String> {
        self.shared
            .nodes
            .iter()
            .find(|n| n.id.hostname == hostname)
            .map(|n| n.id.talos_version.clone())
    }

    /// Address of the node called `hostname`.
    pub fn ip(&self, hostname: &str) -> Option<IpAddr> {
        self.shared
            .nodes
            .iter()
            .find(|n| n.id.hostname == hostname)
            .map(|n| n.id.ip)
    }

    /// The shared port.
    pub fn port(&self) -> u16 {
        self.shared.port
    }

    /// Files of the generated cluster.
    pub fn paths(&self) -> &GeneratedCluster {
        &self.cluster
    }

    /// Counters of the node at `ip` (all zero for an unknown address).
    pub fn stats(&self, ip: IpAddr) -> NodeStats {
        self.shared
            .node(ip)
            .map(|n| n.lock().stats.clone())
            .unwrap_or_default()
    }

    /// TLS handshakes completed by all nodes together, and by the node
    /// with the most.
    pub fn handshakes(&self) -> (u64, u64) {
        self.shared.nodes.iter().fold((0, 0), |(sum, max), n| {
            let h = n.lock().stats.handshakes;
            (sum + h, max.max(h))
        })
    }

    /// TCP connections accepted by all nodes together.
    pub fn total_connections(&self) -> u64 {
        self.shared
            .nodes
            .iter()
            .map(|n| n.lock().stats.connections)
            .sum()
    }

    /// The node at `ip` right now.
    ///
    /// # Panics
    /// If no simulated node has that address (a test bug).
    pub fn snapshot(&self, ip: IpAddr) -> NodeSnapshot {
        let Some(n) = self.shared.node(ip) else {
            panic!("no simulated node at {ip}");
        };
        let settled = node::settled(n);
        let mut snap = n.lock().snapshot(&n.id);
        // `mode` describes what a client meets now: until the wanted
        // listener is actually bound, nothing answers.
        if !settled {
            snap.mode = super::state::NodeMode::Down;
        }
        snap
    }

    /// Distinct etcd clusters and their members' hostnames.
    pub fn etcd_clusters(&self) -> Vec<Vec<String>> {
        self.shared
            .etcd()
            .clusters
            .iter()
            .map(|c| c.members.iter().map(|m| m.hostname.clone()).collect())
            .collect()
    }

    /// Powers on a node declared `powered_off`; returns once it listens.
    pub async fn power_on(&self, ip: IpAddr) {
        let Some(n) = self.shared.node(ip) else {
            return;
        };
        n.lock().power_on(&n.id, Instant::now());
        n.touch();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !node::settled(n) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Cuts the power of the node at `ip` (see `NodeState::power_off`);
    /// returns once its address is silent.
    pub async fn power_off(&self, ip: IpAddr) {
        let Some(n) = self.shared.node(ip) else {
            return;
        };
        n.lock().power_off(Instant::now());
        n.touch();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !node::settled(n) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits (polling) until `pred` holds for the node at `ip`, up to `timeout`.
    pub async fn wait_for(
        &self,
        ip: IpAddr,
        timeout: Duration,
        pred: impl Fn(&NodeSnapshot) -> bool,
    ) -> Option<NodeSnapshot> {
        let deadline = Instant::now() + timeout;
        loop {
            let snap = self.snapshot(ip);
            if pred(&snap) {
                return Some(snap);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops every node and closes every socket.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for t in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}
