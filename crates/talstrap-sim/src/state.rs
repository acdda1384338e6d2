//! The per-node state machine of a simulated Talos node, free of I/O.
//!
//! A node is powered off, in maintenance, leaving maintenance (the apply
//! reply is on its way), installing, rebooting, or configured (stage
//! `booting` until its services are up, then `running`). Everything that
//! happens "later" is a deadline; [`NodeState::step`] advances the state to
//! a given instant, reading a [`FleetView`] of the other nodes (trustd for
//! workers, API servers for etcd joins) and the fleet's [`EtcdRegistry`].
//! The driver in `node.rs` calls it and turns the wanted listener into
//! sockets.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::time::Instant;

use super::applied_config::{self, AppliedConfig, CaPair};
use super::pki::{self, CertAndKey};
use super::scenario::{NodeFaults, Timing, scale_duration};
use super::tls;
use crate::disksel::DiskFacts;

pub use crate::proto::{Role, Stage};

/// What a client sees on the node's port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeMode {
    /// Server-only TLS, maintenance API.
    Maintenance,
    /// apid with mutual TLS.
    Configured,
    /// Nothing listens (powered off, installing, rebooting, worker waiting for trustd).
    Down,
}

/// State of the etcd service (`ServiceList` state strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum EtcdService {
    /// Workers have no etcd; control planes before boot.
    Absent,
    Waiting,
    Preparing,
    Running,
}

impl EtcdService {
    pub fn as_str(self) -> &'static str {
        match self {
            EtcdService::Absent => "Finished",
            EtcdService::Waiting => "Waiting",
            EtcdService::Preparing => "Preparing",
            EtcdService::Running => "Running",
        }
    }
}

/// etcd as seen in a [`NodeSnapshot`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EtcdSnapshot {
    pub service: EtcdService,
    pub healthy: bool,
    /// `/var/lib/etcd` is not empty (bootstrapped or joined).
    pub has_data: bool,
    pub cluster_id: Option<u64>,
    pub member_id: Option<u64>,
}

/// A point-in-time view of one node, for test assertions.
#[derive(Debug, Clone, Serialize)]
pub struct NodeSnapshot {
    pub hostname: String,
    pub ip: IpAddr,
    pub role: Role,
    pub stage: Stage,
    pub ready: bool,
    pub unmet_conditions: Vec<(String, String)>,
    pub mode: NodeMode,
    pub powered: bool,
    /// Unix seconds of the current (simulated) boot.
    pub boot_time: u64,
    /// The boot id of the current boot (new on every boot).
    pub boot_id: String,
    pub etcd: EtcdSnapshot,
    pub config_applied: bool,
    pub installed_disk: Option<String>,
    pub staged_config: bool,
    /// v1.14 UnattendedInstallStatus phase, when the config has one.
    pub install_phase: Option<InstallPhase>,
}

/// Counters of what clients did to one node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NodeStats {
    /// TCP connections accepted (any mode, faults included).
    pub connections: u64,
    /// TLS handshakes that completed.
    pub handshakes: u64,
    /// Requests per full gRPC method path (`/machine.MachineService/Version`),
    /// counting calls proxied to this node.
    pub requests: BTreeMap<String, u64>,
    /// ApplyConfiguration calls that changed or staged config (dry runs excluded).
    pub applies_accepted: u64,
    pub bootstrap_calls: u64,
    pub bootstraps_accepted: u64,
    pub reboots: u64,
    pub installs: u64,
    pub installs_failed: u64,
    /// ApplyConfiguration requests by the `mode` on the wire (`REBOOT`,
    /// `AUTO`, ...; dry runs and refused calls included), so tests can
    /// assert what a client actually sent.
    pub apply_modes: BTreeMap<String, u64>,
}

impl NodeStats {
    /// Counts the wire mode of an ApplyConfiguration call.
    pub fn record_apply_mode(&mut self, call: &super::handlers::Call) {
        if let super::handlers::Call::Apply(req) = call {
            let name = crate::proto::machine::apply_configuration_request::Mode::try_from(req.mode)
                .map(|m| m.as_str_name().to_string())
                .unwrap_or_else(|_| req.mode.to_string());
            *self.apply_modes.entry(name).or_default() += 1;
        }
    }

    /// ApplyConfiguration requests that carried `mode` (`REBOOT`, `AUTO`, ...).
    pub fn applies_with_mode(&self, mode: &str) -> u64 {
        self.apply_modes.get(mode).copied().unwrap_or(0)
    }

    /// Calls of `method`, given as a short name (`Version`) or a full path.
    pub fn calls(&self, method: &str) -> u64 {
        self.requests
            .iter()
            .filter(|(path, _)| path.as_str() == method || path.rsplit('/').next() == Some(method))
            .map(|(_, n)| n)
            .sum()
    }
}

/// Which listener the node wants on its port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    None,
    Maintenance,
    Apid,
    /// Powered off: the address is silent (SYNs dropped, no RST), as a
    /// machine that lost power looks from the network.
    Silent,
}

/// How to take the current listener down when it is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopStyle {
    /// Stop accepting, let in-flight replies finish (leaving maintenance).
    Graceful,
    /// Kill every connection at once (reboot).
    Abort,
    /// Power cut: stop serving without closing anything; open connections
    /// stay open and never answer again.
    Freeze,
}

/// The listener the node wants; `generation` changes whenever a new
/// incarnation (new TLS identity or kind) is needed.
#[derive(Clone)]
pub struct ListenerWant {
    pub kind: ListenerKind,
    pub generation: u64,
    pub stop: StopStyle,
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// Where the node is in its life (powered off, maintenance, installing,
/// rebooting, configured): what drives the Talos [`Stage`] it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Off,
    Maintenance,
    LeavingMaintenance { at: Instant },
    Installing { until: Instant },
    Rebooting { until: Instant },
    Configured,
}

/// Boot progress of a configured node.
#[derive(Debug, Clone)]
pub struct Boot {
    pub apid_up: bool,
    pub cri_at: Instant,
    pub cri_up: bool,
    /// `stuck_in: booting`: services never come up.
    pub frozen: bool,
    pub time_synced_at: Instant,
    pub time_synced: bool,
    pub apiserver_due: Option<Instant>,
    pub apiserver_up: bool,
    pub worker_ready_due: Option<Instant>,
    pub worker_ready: bool,
    pub reboot_at: Option<Instant>,
    /// The boot timeout: a control plane whose boot has not finished by
    /// then (etcd never bootstrapped or joined) reboots.
    pub timeout_at: Option<Instant>,
}

impl Boot {
    fn idle(now: Instant) -> Self {
        Self {
            apid_up: false,
            cri_at: now,
            cri_up: false,
            frozen: false,
            time_synced_at: now,
            time_synced: false,
            apiserver_due: None,
            apiserver_up: false,
            worker_ready_due: None,
            worker_ready: false,
            reboot_at: None,
            timeout_at: None,
        }
    }
}

/// One service event (`ServiceEvent`).
#[derive(Debug, Clone)]
pub struct SvcEvent {
    pub msg: String,
    pub state: &'static str,
    pub ts: SystemTime,
}

/// Local etcd of a control plane.
#[derive(Debug, Clone)]
pub struct Etcd {
    pub has_data: bool,
    pub service: EtcdService,
    pub healthy: bool,
    /// Health checks ran and failed (`etcd_never_healthy`).
    pub health_failed: bool,
    pub healthy_due: Option<Instant>,
    pub join_due: Option<Instant>,
    pub cluster: Option<u64>,
    pub member_id: u64,
    pub events: Vec<SvcEvent>,
}

impl Etcd {
    fn new(member_id: u64) -> Self {
        Self {
            has_data: false,
            service: EtcdService::Absent,
            healthy: false,
            health_failed: false,
            healthy_due: None,
            join_due: None,
            cluster: None,
            member_id,
            events: Vec::new(),
        }
    }

    fn event(&mut self, state: EtcdService, msg: impl Into<String>) {
        self.events.push(SvcEvent {
            msg: msg.into(),
            state: state.as_str(),
            ts: SystemTime::now(),
        });
        // Talos keeps the last 64 events.
        if self.events.len() > 64 {
            self.events.remove(0);
        }
    }

    /// etcd process started (after bootstrap, a join, or on boot with data).
    fn start_running(&mut self, now: Instant, timing: &Timing) {
        self.service = EtcdService::Running;
        self.healthy = false;
        self.health_failed = false;
        self.healthy_due = Some(now + timing.etcd_start);
        self.event(
            EtcdService::Running,
            "Started task etcd (PID 4242) for container etcd",
        );
    }
}

/// Health of a service as `ServiceList` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Healthy,
    Unhealthy,
}

/// One row of `ServiceList` / `Services.v1alpha1.talos.dev`.
#[derive(Debug, Clone)]
pub struct SvcStatus {
    pub id: &'static str,
    pub state: &'static str,
    pub running: bool,
    pub health: Health,
    pub last_message: String,
    pub events: Vec<SvcEvent>,
}

/// `UnattendedInstallStatuses.runtime.talos.dev` phases (Talos v1.14.0-rc.1
/// pkg/machinery/resources/runtime/unattended_install_status.go).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstallPhase {
    Pending,
    Installing,
    Installed,
    WaitingForReboot,
    Failed,
}

impl InstallPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            InstallPhase::Pending => "pending",
            InstallPhase::Installing => "installing",
            InstallPhase::Installed => "installed",
            InstallPhase::WaitingForReboot => "waiting-for-reboot",
            InstallPhase::Failed => "failed",
        }
    }

    /// The `RuntimeUnattendedInstallPhase` enum number.
    pub fn proto(self) -> i32 {
        match self {
            InstallPhase::Pending => 0,
            InstallPhase::Installing => 1,
            InstallPhase::Installed => 2,
            InstallPhase::WaitingForReboot => 3,
            InstallPhase::Failed => 4,
        }
    }
}

/// The v1.14 unattended install of a node that boots with an
/// UnattendedInstallConfig: it runs during the boot, with no `installing`
/// stage (Talos v1.14.0-rc.1
/// internal/app/machined/pkg/controllers/runtime/unattended_install.go).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unattended {
    pub phase: InstallPhase,
    pub error: String,
    pub image: String,
    /// When the running install finishes.
    pub due: Option<Instant>,
}

/// Static facts about one simulated node.
#[derive(Clone)]
pub struct NodeIdent {
    pub hostname: String,
    pub ip: IpAddr,
    pub role: Role,
    pub disks: Vec<DiskFacts>,
    pub faults: NodeFaults,
    /// Already scaled.
    pub timing: Timing,
    pub time_scale: f64,
    pub talos_version: String,
    /// CA used instead of the real one when `wrong_ca` is set.
    pub foreign_ca: Option<CertAndKey>,
}

/// What a node needs to know about the rest of the fleet.
#[derive(Debug, Default)]
pub struct FleetView {
    /// Per OS CA: a control plane with apid up can sign worker certificates.
    pub trust: HashMap<String, CaPair>,
    /// OS CAs for which some control plane's kube-apiserver is up.
    pub apiserver_up: HashSet<String>,
    /// Per OS CA: where a worker can reach trustd.
    pub trustd_at: HashMap<String, TrustdAt>,
}

/// Addresses that answer on trustd's port for one cluster.
#[derive(Debug, Default, Clone)]
pub struct TrustdAt {
    /// Control planes with trustd up (it runs before bootstrap).
    pub nodes: Vec<IpAddr>,
    /// VIPs held by a control plane (only after its etcd is healthy).
    pub vips: Vec<IpAddr>,
}

/// One member of a simulated etcd cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdMemberRec {
    pub hostname: String,
    pub ip: IpAddr,
    pub member_id: u64,
}

/// A simulated etcd cluster (identity tracked so split brains are visible).
#[derive(Debug, Clone)]
pub struct EtcdClusterRec {
    pub id: u64,
    pub ca_id: String,
    pub members: Vec<EtcdMemberRec>,
}

/// Every etcd cluster the fleet has formed.
#[derive(Debug, Default)]
pub struct EtcdRegistry {
    pub clusters: Vec<EtcdClusterRec>,
}

impl EtcdRegistry {
    /// A bootstrap: a new cluster with one member.
    pub fn create(&mut self, ca_id: &str, member: EtcdMemberRec) -> u64 {
        let id = self.clusters.len() as u64 + 1;
        self.clusters.push(EtcdClusterRec {
            id,
            ca_id: ca_id.to_string(),
            members: vec![member],
        });
        id
    }

    /// A join: the oldest cluster of this CA gains a member.
    pub fn join(&mut self, ca_id: &str, member: EtcdMemberRec) -> Option<u64> {
        let c = self.clusters.iter_mut().find(|c| c.ca_id == ca_id)?;
        if !c.members.iter().any(|m| m.member_id == member.member_id) {
            c.members.push(member);
        }
        Some(c.id)
    }

    pub fn cluster(&self, id: u64) -> Option<&EtcdClusterRec> {
        self.clusters.iter().find(|c| c.id == id)
    }
}

/// A random version-4 UUID, as the kernel makes the boot id.
fn random_uuid() -> String {
    let mut b = [0u8; 16];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Far enough in the future to mean "never".
fn never(now: Instant) -> Instant {
    now + Duration::from_secs(10 * 365 * 24 * 3600)
}

/// The mutable state of one node.
pub struct NodeState {
    pub powered: bool,
    pub lifecycle: Lifecycle,
    /// The active (installed) config.
    pub config: Option<Arc<AppliedConfig>>,
    /// Saved by a STAGED apply; becomes active on the next reboot.
    pub staged: Option<Arc<AppliedConfig>>,
    /// Accepted in maintenance, waiting for the install.
    pub pending: Option<Arc<AppliedConfig>>,
    pub installed_disk: Option<String>,
    pub boot_time: u64,
    /// `/proc/sys/kernel/random/boot_id`: a new random UUID every boot.
    pub boot_id: String,
    pub boot: Boot,
    pub etcd: Etcd,
    pub apply_busy: bool,
    /// An apply asked for a reboot; further applies are refused until it happens.
    pub apply_rebooting: bool,
    pub try_rollback: Option<(Instant, Arc<AppliedConfig>)>,
    pub listener: ListenerWant,
    pub stats: NodeStats,
    /// Per-method failures left to inject (`flaky`).
    pub flaky_left: Vec<u32>,
    /// v1.14 unattended install status (none without an UnattendedInstallConfig).
    pub unattended: Option<Unattended>,
    /// The maintenance service's CA and certificate of this boot.
    pub maintenance: Option<MaintenanceTls>,
    /// The next clock step (`clock_step`) and how many are left after it.
    pub clock_step_at: Option<Instant>,
    pub clock_steps_left: u32,
    /// The unattended install target last evaluated and the config it was
    /// evaluated for (the disks are the node's own and never change).
    unattended_target: Option<(Arc<AppliedConfig>, UnattendedTarget)>,
}

/// What `applied_config::unattended_target` answered: the target's device
/// path, none matched, or the evaluation error.
type UnattendedTarget = Result<Option<String>, String>;

/// The maintenance service's TLS identity within one boot.
pub struct MaintenanceTls {
    /// Created once per boot.
    pub ca: CertAndKey,
    /// Signs this boot's leaves with `ca`'s key.
    pub signer: pki::CaSigner,
    /// What the listener presents; replaced in place on a re-issue.
    pub cert: Arc<tls::MaintenanceCert>,
    /// Scenario `cert_refresh_every`: the next re-issue.
    pub refresh_at: Option<Instant>,
}

impl NodeState {
    /// A node that has not been powered on yet.
    pub fn new(id: &NodeIdent, now: Instant, member_id: u64) -> Self {
        Self {
            powered: false,
            lifecycle: Lifecycle::Off,
            config: None,
            staged: None,
            pending: None,
            installed_disk: None,
            boot_time: 0,
            boot_id: String::new(),
            boot: Boot::idle(now),
            etcd: Etcd::new(member_id),
            apply_busy: false,
            apply_rebooting: false,
            try_rollback: None,
            listener: ListenerWant {
                kind: ListenerKind::None,
                generation: 0,
                stop: StopStyle::Abort,
                tls: None,
            },
            stats: NodeStats::default(),
            flaky_left: id.faults.flaky.iter().map(|f| f.count).collect(),
            maintenance: None,
            clock_step_at: None,
            clock_steps_left: 0,
            unattended: None,
            unattended_target: None,
        }
    }

    /// [`applied_config::unattended_target`] for `cfg` on this node's disks,
    /// evaluated once per config: a boot asks when it starts and again when
    /// the install finishes, and the answer depends on the config alone.
    fn unattended_target_of(
        &mut self,
        id: &NodeIdent,
        cfg: &Arc<AppliedConfig>,
    ) -> UnattendedTarget {
        if let Some((seen, target)) = &self.unattended_target
            && Arc::ptr_eq(seen, cfg)
        {
            return target.clone();
        }
        let target = applied_config::unattended_target(cfg, &id.disks)
            .map(|d| d.map(|d| d.dev_path.clone()));
        self.unattended_target = Some((cfg.clone(), target.clone()));
        target
    }

    /// Services that wait for the install (CRI, trustd, etcd on v1.14) may
    /// start: there is no unattended install, or it is `installed`.
    pub fn install_done(&self) -> bool {
        self.unattended
            .as_ref()
            .is_none_or(|u| u.phase == InstallPhase::Installed)
    }

    /// v1.14's `IsBootstrapAllowed` beyond CRI: the install is done and no
    /// reboot is pending; earlier versions check CRI only.
    pub fn bootstrap_allowed(&self, id: &NodeIdent) -> bool {
        !super::version::unattended_install(&id.talos_version)
            || (self.install_done() && self.boot.reboot_at.is_none())
    }

    /// After a boot starts: rebuild the in-memory install status. An
    /// installed system reports `installed`; otherwise the selector is
    /// evaluated and the install starts (or stays pending).
    fn refresh_unattended(&mut self, id: &NodeIdent, now: Instant) {
        let Some(cfg) = self.config.clone() else {
            self.unattended = None;
            return;
        };
        let Some(u) = cfg.unattended.as_ref() else {
            self.unattended = None;
            return;
        };
        if self.installed_disk.is_some() {
            self.unattended = Some(Unattended {
                phase: InstallPhase::Installed,
                error: String::new(),
                image: u.image.clone(),
                due: None,
            });
            return;
        }
        let (phase, error, due) = match self.unattended_target_of(id, &cfg) {
            Ok(Some(_)) => {
                let due = if id.faults.stuck_in == Some(Stage::Installing) {
                    never(now)
                } else {
                    now + id.timing.install
                };
                (InstallPhase::Installing, String::new(), Some(due))
            }
            Ok(None) => (
                InstallPhase::Pending,
                "no disk matched the selector".to_string(),
                None,
            ),
            Err(e) => (
                InstallPhase::Pending,
                format!("failed to match install disk: {e}"),
                None,
            ),
        };
        self.unattended = Some(Unattended {
            phase,
            error,
            image: u.image.clone(),
            due,
        });
    }

    /// The running unattended install finished at `now`.
    fn finish_unattended(&mut self, id: &NodeIdent, now: Instant) {
        let Some(cfg) = self.config.clone() else {
            return;
        };
        let target = self.unattended_target_of(id, &cfg).ok().flatten();
        let Some(u) = self.unattended.as_mut() else {
            return;
        };
        u.due = None;
        self.stats.installs += 1;
        match target {
            Some(disk) if !id.faults.install_fails => {
                self.installed_disk = Some(disk);
                if cfg.unattended.as_ref().is_some_and(|c| c.reboots()) {
                    u.phase = InstallPhase::WaitingForReboot;
                    self.begin_reboot(id, now);
                } else {
                    u.phase = InstallPhase::Installed;
                }
            }
            _ => {
                self.stats.installs_failed += 1;
                u.phase = InstallPhase::Failed;
                // The installer's own error goes into the status (Talos
                // v1.14.0-rc.1 internal/pkg/install/install.go: a non-zero
                // exit of the installer task), with no retry modelled: the
                // pessimistic case of the controller's backoff retries.
                u.error = "task \"upgrade\" failed: exit code 1".to_string();
            }
        }
    }

    /// Role: from the active config once there is one, else from the fleet spec.
    pub fn role(&self, id: &NodeIdent) -> Role {
        self.config
            .as_ref()
            .and_then(|c| c.role())
            .unwrap_or(id.role)
    }

    /// The etcd member name Talos gives this node (short or automatic
    /// hostname; see `etcd_name`).
    pub fn member_name(&self, id: &NodeIdent) -> String {
        let identity = format!("{}/{}", id.hostname, id.ip);
        super::etcd_name::member_name(self.config.as_deref(), id.ip, &identity)
    }

    /// Hostname: from the active config once there is one.
    pub fn hostname(&self, id: &NodeIdent) -> String {
        self.config
            .as_ref()
            .and_then(|c| c.hostname.clone())
            .unwrap_or_else(|| id.hostname.clone())
    }

    pub fn stage(&self, id: &NodeIdent) -> Stage {
        match self.lifecycle {
            Lifecycle::Off => Stage::Unknown,
            Lifecycle::Maintenance | Lifecycle::LeavingMaintenance { .. } => Stage::Maintenance,
            Lifecycle::Installing { .. } => Stage::Installing,
            Lifecycle::Rebooting { .. } => Stage::Rebooting,
            Lifecycle::Configured if self.boot_done(id) => Stage::Running,
            Lifecycle::Configured => Stage::Booting,
        }
    }

    /// The boot sequence finished: every service is up (etcd healthy on a
    /// control plane), so the stage is `running`.
    fn boot_done(&self, id: &NodeIdent) -> bool {
        self.boot.cri_up
            && match self.role(id) {
                Role::Worker => true,
                Role::ControlPlane => {
                    self.etcd.service == EtcdService::Running && self.etcd.healthy
                }
            }
    }

    pub fn mode(&self) -> NodeMode {
        match self.listener.kind {
            ListenerKind::None | ListenerKind::Silent => NodeMode::Down,
            ListenerKind::Maintenance => NodeMode::Maintenance,
            ListenerKind::Apid => NodeMode::Configured,
        }
    }

    /// Service rows, sorted by id as Talos lists them.
    pub fn services(&self, id: &NodeIdent) -> Vec<SvcStatus> {
        let ok = |id: &'static str| SvcStatus {
            id,
            state: "Running",
            running: true,
            health: Health::Healthy,
            last_message: String::new(),
            events: Vec::new(),
        };
        let waiting = |id: &'static str, msg: &str| SvcStatus {
            id,
            state: "Waiting",
            running: false,
            health: Health::Unknown,
            last_message: String::new(),
            events: vec![SvcEvent {
                msg: msg.to_string(),
                state: "Waiting",
                ts: SystemTime::now(),
            }],
        };
        let cp = self.role(id) == Role::ControlPlane;
        let mut out = vec![ok("apid"), ok("auditd"), ok("containerd")];
        if self.boot.cri_up {
            out.push(ok("cri"));
        } else {
            out.push(waiting(
                "cri",
                "Waiting for service \"containerd\" to be \"up\"",
            ));
        }
        if cp {
            out.push(self.etcd_status());
        }
        if self.boot.cri_up {
            out.push(ok("kubelet"));
        } else {
            out.push(waiting(
                "kubelet",
                "Waiting for service \"cri\" to be \"up\"",
            ));
        }
        out.push(ok("machined"));
        out.push(ok("syslogd"));
        if cp {
            out.push(ok("trustd"));
        }
        out.push(ok("udevd"));
        out
    }

    fn etcd_status(&self) -> SvcStatus {
        let e = &self.etcd;
        let (running, health, last) = match e.service {
            EtcdService::Running if e.healthy => (true, Health::Healthy, String::new()),
            EtcdService::Running if e.health_failed => (
                true,
                Health::Unhealthy,
                "context deadline exceeded".to_string(),
            ),
            EtcdService::Running => (true, Health::Unknown, String::new()),
            _ => (false, Health::Unknown, String::new()),
        };
        let mut events = e.events.clone();
        if events.is_empty() {
            events.push(SvcEvent {
                msg: "Waiting for service \"cri\" to be \"up\", time sync, network".to_string(),
                state: "Waiting",
                ts: SystemTime::now(),
            });
        }
        SvcStatus {
            id: "etcd",
            state: match e.service {
                EtcdService::Absent | EtcdService::Waiting => "Waiting",
                s => s.as_str(),
            },
            running,
            health,
            last_message: last,
            events,
        }
    }

    /// MachineStatus `unmetConditions`, in Talos's check order.
    pub fn unmet_conditions(&self, id: &NodeIdent) -> Vec<(String, String)> {
        let stage = self.stage(id);
        if !matches!(stage, Stage::Booting | Stage::Running) {
            return Vec::new();
        }
        let host = self.hostname(id);
        let mut out = Vec::new();
        if !self.boot.time_synced {
            out.push(("time".to_string(), "time is not synced".to_string()));
        }
        let problems: Vec<String> = self
            .services(id)
            .iter()
            .filter_map(|s| {
                if !s.running {
                    Some(format!("{} not running", s.id))
                } else if s.health == Health::Unhealthy {
                    Some(format!("{} not healthy", s.id))
                } else {
                    None
                }
            })
            .collect();
        if !problems.is_empty() {
            out.push(("services".to_string(), problems.join(", ")));
        }
        let kubelet_up = self.boot.cri_up;
        let cp = self.role(id) == Role::ControlPlane;
        if cp && kubelet_up && !self.boot.apiserver_up {
            let state = if self.etcd.healthy {
                "not ready"
            } else {
                "pending"
            };
            out.push((
                "staticPods".to_string(),
                format!("kube-apiserver-{host} {state}"),
            ));
        }
        let node_ready = if cp {
            self.boot.apiserver_up
        } else {
            self.boot.worker_ready
        };
        if kubelet_up && !node_ready {
            out.push((
                "nodeReady".to_string(),
                format!("node \"{host}\" status is not available yet"),
            ));
        }
        out
    }

    pub fn ready(&self, id: &NodeIdent) -> bool {
        self.unmet_conditions(id).is_empty()
    }

    pub fn snapshot(&self, id: &NodeIdent) -> NodeSnapshot {
        NodeSnapshot {
            hostname: self.hostname(id),
            ip: id.ip,
            role: self.role(id),
            stage: self.stage(id),
            ready: self.ready(id),
            unmet_conditions: self.unmet_conditions(id),
            mode: self.mode(),
            powered: self.powered,
            boot_time: self.boot_time,
            boot_id: self.boot_id.clone(),
            etcd: EtcdSnapshot {
                service: self.etcd.service,
                healthy: self.etcd.healthy,
                has_data: self.etcd.has_data,
                cluster_id: self.etcd.cluster,
                member_id: self.etcd.has_data.then_some(self.etcd.member_id),
            },
            config_applied: self.config.is_some(),
            installed_disk: self.installed_disk.clone(),
            staged_config: self.staged.is_some(),
            install_phase: self.unattended.as_ref().map(|u| u.phase),
        }
    }

    fn set_listener(
        &mut self,
        kind: ListenerKind,
        tls: Option<Arc<rustls::ServerConfig>>,
        stop: StopStyle,
    ) {
        self.listener = ListenerWant {
            kind,
            generation: self.listener.generation + 1,
            stop,
            tls,
        };
    }

    fn new_boot_time(&mut self) {
        // Unix seconds, strictly increasing, so every reboot is visible.
        self.boot_time = pki::unix_now().max(self.boot_time + 1);
        self.boot_id = random_uuid();
    }

    /// Power on: boot into maintenance, or into the installed config.
    pub fn power_on(&mut self, id: &NodeIdent, now: Instant) {
        if self.powered {
            return;
        }
        self.powered = true;
        if self.config.is_some() {
            self.start_boot(id, now);
        } else {
            self.enter_maintenance(id);
        }
    }

    /// Power cut: every process stops at once; what is on disk (config,
    /// install, etcd data, the member in its cluster's list) survives, so
    /// a later power on boots into it and etcd starts from its data. etcd
    /// keeps a dead member listed until it is removed, so the registry is
    /// left as it is. Pessimistic: no RST, the address goes silent.
    pub fn power_off(&mut self, now: Instant) {
        if !self.powered {
            return;
        }
        self.powered = false;
        self.lifecycle = Lifecycle::Off;
        self.boot = Boot::idle(now);
        self.pending = None;
        self.maintenance = None;
        self.clock_step_at = None;
        self.apply_busy = false;
        self.apply_rebooting = false;
        self.etcd.service = EtcdService::Absent;
        self.etcd.healthy = false;
        self.etcd.health_failed = false;
        self.etcd.healthy_due = None;
        self.etcd.join_due = None;
        self.set_listener(ListenerKind::Silent, None, StopStyle::Freeze);
    }

    /// Start in maintenance with a fresh ephemeral CA and certificate.
    pub fn enter_maintenance(&mut self, id: &NodeIdent) {
        let now = Instant::now();
        self.lifecycle = Lifecycle::Maintenance;
        self.new_boot_time();
        self.arm_clock_steps(id, now);
        self.boot = Boot::idle(now);
        self.apply_rebooting = false;
        let refresh_at = id
            .faults
            .cert_refresh_every
            .map(|d| now + scale_duration(d, id.time_scale));
        let built = pki::maintenance_ca_with_signer().and_then(|(ca, signer)| {
            let leaf = pki::maintenance_leaf_from(&signer, id.ip)?;
            let cert = tls::MaintenanceCert::new(&leaf, &ca.cert_pem)?;
            let cfg = tls::maintenance_config(cert.clone())?;
            Ok((ca, signer, cert, cfg))
        });
        match built {
            Ok((ca, signer, cert, cfg)) => {
                self.maintenance = Some(MaintenanceTls {
                    ca,
                    signer,
                    cert,
                    refresh_at,
                });
                self.set_listener(ListenerKind::Maintenance, Some(cfg), StopStyle::Abort);
            }
            Err(e) => {
                tracing::error!(node = %id.hostname, error = %e, "cannot build maintenance TLS");
                self.maintenance = None;
                self.set_listener(ListenerKind::None, None, StopStyle::Abort);
            }
        }
    }

    /// A v1.14 node whose accepted config has no `machine.install`: it
    /// installs (UnattendedInstallConfig) or runs live during this boot.
    fn installs_during_boot(&self, id: &NodeIdent) -> bool {
        super::version::unattended_install(&id.talos_version)
            && self.pending.as_ref().is_some_and(|c| !c.has_install)
    }

    /// A new maintenance certificate (new key, same boot CA) on the running
    /// listener: Talos re-issues it on an address, hostname or time change
    /// and every 12 h (v1.12.11 controllers/secrets/maintenance.go).
    fn reissue_maintenance_cert(&mut self, id: &NodeIdent) {
        let Some(m) = &self.maintenance else { return };
        let result = pki::maintenance_leaf_from(&m.signer, id.ip)
            .and_then(|leaf| m.cert.replace(&leaf, &m.ca.cert_pem));
        if let Err(e) = result {
            tracing::error!(node = %id.hostname, error = %e, "cannot re-issue the maintenance certificate");
        }
    }

    /// Scenario `clock_step`: the first step comes `after` the boot starts.
    fn arm_clock_steps(&mut self, id: &NodeIdent, now: Instant) {
        match &id.faults.clock_step {
            Some(c) if c.count > 0 => {
                self.clock_step_at = Some(now + scale_duration(c.after, id.time_scale));
                self.clock_steps_left = c.count;
            }
            _ => {
                self.clock_step_at = None;
                self.clock_steps_left = 0;
            }
        }
    }

    /// Clock steps and certificate refreshes: they happen within a boot,
    /// whatever its phase. Returns whether anything changed.
    fn timed_events(&mut self, id: &NodeIdent, now: Instant) -> bool {
        let mut changed = false;
        if let (Some(at), Some(step)) = (self.clock_step_at, &id.faults.clock_step)
            && now >= at
        {
            // A stepped wall clock moves the boot time the kernel reports
            // (`btime` in /proc/stat is wall clock minus uptime), while the
            // boot itself goes on. Talos steps the clock from NTP at any
            // time after boot (v1.12.11 internal/pkg/ntp/ntp.go `adjustTime`).
            self.boot_time = self.boot_time.saturating_add_signed(step.by_secs);
            self.clock_steps_left = self.clock_steps_left.saturating_sub(1);
            self.clock_step_at = (self.clock_steps_left > 0)
                .then(|| now + scale_duration(step.after, id.time_scale));
            if matches!(self.lifecycle, Lifecycle::Maintenance) {
                // The time status is an input of the maintenance certificate.
                self.reissue_maintenance_cert(id);
            }
            changed = true;
        }
        if matches!(self.lifecycle, Lifecycle::Maintenance)
            && let Some(m) = &mut self.maintenance
            && let Some(at) = m.refresh_at
            && now >= at
        {
            m.refresh_at = id
                .faults
                .cert_refresh_every
                .map(|d| now + scale_duration(d, id.time_scale).max(Duration::from_millis(1)));
            self.reissue_maintenance_cert(id);
            changed = true;
        }
        changed
    }

    /// Begin the boot of an installed node: apid (control planes at once,
    /// workers once trustd can sign), services after `timing.boot`.
    pub fn start_boot(&mut self, id: &NodeIdent, now: Instant) {
        self.lifecycle = Lifecycle::Configured;
        self.refresh_unattended(id, now);
        self.new_boot_time();
        self.arm_clock_steps(id, now);
        self.maintenance = None;
        self.apply_rebooting = false;
        let time_skew = id
            .faults
            .time_not_synced_for
            .map(|d| scale_duration(d, id.time_scale))
            .unwrap_or_default();
        // Scenario `booted_ago` makes the first boot older than the fleet.
        let age = match (self.stats.reboots, id.faults.booted_ago) {
            (0, Some(ago)) => {
                self.boot_time = self.boot_time.saturating_sub(ago.as_secs());
                scale_duration(ago, id.time_scale)
            }
            _ => Duration::ZERO,
        };
        self.boot = Boot {
            cri_at: now + id.timing.boot,
            frozen: id.faults.stuck_in == Some(Stage::Booting),
            time_synced_at: now + time_skew,
            time_synced: time_skew.is_zero(),
            timeout_at: Some(now + id.timing.boot_timeout.saturating_sub(age)),
            ..Boot::idle(now)
        };
        self.etcd.service = if self.role(id) == Role::ControlPlane {
            EtcdService::Waiting
        } else {
            EtcdService::Absent
        };
        self.etcd.healthy = false;
        self.etcd.health_failed = false;
        self.etcd.healthy_due = None;
        self.etcd.join_due = None;
        self.etcd.events.clear();
        if self.role(id) == Role::ControlPlane {
            self.etcd.event(
                EtcdService::Waiting,
                "Waiting for service \"cri\" to be \"up\", time sync, network",
            );
            let ca = self.config.as_ref().and_then(|c| c.ca.clone());
            self.bring_apid_up(id, ca.as_ref());
        } else {
            self.set_listener(ListenerKind::None, None, StopStyle::Abort);
        }
    }

    /// Issues the apid certificate from `signer` (the node's own CA on a
    /// control plane, a control plane's CA via trustd on a worker).
    fn bring_apid_up(&mut self, id: &NodeIdent, signer: Option<&CaPair>) {
        let Some(cfg) = self.config.clone() else {
            return;
        };
        let hostname = self.hostname(id);
        let result = (|| {
            let signer = match (&id.foreign_ca, signer) {
                (Some(foreign), _) if id.faults.wrong_ca => foreign.clone(),
                (
                    _,
                    Some(CaPair {
                        crt_pem,
                        key_pem: Some(key),
                    }),
                ) => CertAndKey {
                    cert_pem: crt_pem.clone(),
                    key_pem: key.clone(),
                },
                _ => {
                    return Err(pki::PkiError::BadPem {
                        what: "machine.ca.key (no key to sign the apid certificate)",
                    });
                }
            };
            let leaf = pki::issue_server_cert(&signer, &hostname, &[id.ip], &cfg.cert_sans)?;
            tls::apid_config(&leaf, &signer.cert_pem, &cfg.client_cas())
        })();
        match result {
            Ok(tls_cfg) => {
                self.boot.apid_up = true;
                self.set_listener(ListenerKind::Apid, Some(tls_cfg), StopStyle::Abort);
            }
            Err(e) => {
                tracing::error!(node = %id.hostname, error = %e, "cannot start apid");
            }
        }
    }

    /// Whether a worker reaches trustd: its certificate request goes to the
    /// control-plane endpoints, made of the cluster endpoint's host (Talos
    /// v1.12.11 controllers/k8s/static_endpoint.go) and, with discovery on,
    /// the control planes discovery lists (controllers/cluster/endpoint.go);
    /// the apid certificate waits for them (controllers/secrets/api.go).
    /// A VIP endpoint answers only while a control plane holds it.
    fn finds_trustd(&self, at: Option<&TrustdAt>) -> bool {
        let (Some(at), Some(cfg)) = (at, &self.config) else {
            return false;
        };
        if cfg.discovery_enabled() && !at.nodes.is_empty() {
            return true;
        }
        cfg.endpoint_host()
            .and_then(|h| h.parse::<IpAddr>().ok())
            .is_some_and(|ip| at.nodes.contains(&ip) || at.vips.contains(&ip))
    }

    /// Reboot now: connections die, the port goes quiet for `timing.reboot`.
    pub fn begin_reboot(&mut self, id: &NodeIdent, now: Instant) {
        let until = if id.faults.stuck_in == Some(Stage::Rebooting) {
            never(now)
        } else {
            now + id.timing.reboot
        };
        self.lifecycle = Lifecycle::Rebooting { until };
        self.stats.reboots += 1;
        self.boot.reboot_at = None;
        self.set_listener(ListenerKind::None, None, StopStyle::Abort);
    }

    /// A full config was accepted in maintenance: the reply goes out, then
    /// the maintenance server stops and the install begins.
    pub fn accept_maintenance_config(
        &mut self,
        id: &NodeIdent,
        now: Instant,
        cfg: Arc<AppliedConfig>,
    ) {
        self.stats.applies_accepted += 1;
        // The config names the node's hostname, which is among the
        // maintenance certificate's SANs: a new certificate (same CA), served
        // for as long as the maintenance listener stays up (v1.12.11
        // controllers/secrets/maintenance.go, CertSAN input).
        if cfg.hostname.is_some() {
            self.reissue_maintenance_cert(id);
        }
        self.pending = Some(cfg);
        if id.faults.stuck_in == Some(Stage::Maintenance) {
            return;
        }
        if self.lifecycle == Lifecycle::Maintenance {
            // Enough for the reply to leave; the listener then stops gracefully.
            let grace = Duration::from_millis(20)
                .max(scale_duration(Duration::from_millis(100), id.time_scale));
            self.lifecycle = Lifecycle::LeavingMaintenance { at: now + grace };
        }
    }

    /// A Bootstrap that passed every check: a new etcd cluster of one.
    pub fn bootstrap(&mut self, id: &NodeIdent, now: Instant, registry: &mut EtcdRegistry) -> u64 {
        let ca_id = self
            .config
            .as_ref()
            .and_then(|c| c.ca_id())
            .unwrap_or_default()
            .to_string();
        let cluster = registry.create(
            &ca_id,
            EtcdMemberRec {
                hostname: self.member_name(id),
                ip: id.ip,
                member_id: self.etcd.member_id,
            },
        );
        self.etcd.cluster = Some(cluster);
        self.etcd.has_data = true;
        self.etcd.event(EtcdService::Running, "Bootstrap requested");
        self.etcd.start_running(now, &id.timing);
        self.stats.bootstraps_accepted += 1;
        cluster
    }

    /// Start as an installed, configured node (scenario `configured`).
    pub fn preconfigure(&mut self, cfg: Arc<AppliedConfig>, disks: &[DiskFacts]) {
        let target = match applied_config::unattended_target(&cfg, disks) {
            Ok(Some(d)) => Some(d),
            _ => applied_config::install_target(&cfg, disks),
        };
        self.installed_disk = target.map(|d| d.dev_path.clone());
        self.config = Some(cfg);
    }

    /// Start with etcd already running as a one-node cluster, API server up
    /// (scenario `already_bootstrapped`).
    pub fn prebootstrap(&mut self, id: &NodeIdent, now: Instant, registry: &mut EtcdRegistry) {
        self.boot.cri_up = true;
        self.boot.time_synced = true;
        self.bootstrap(id, now, registry);
        self.stats.bootstraps_accepted = 0;
        self.etcd.healthy = true;
        self.etcd.healthy_due = None;
        self.boot.apiserver_up = true;
    }

    /// Advances the state machine to `now`. Returns whether anything changed.
    pub fn step(
        &mut self,
        id: &NodeIdent,
        now: Instant,
        view: &FleetView,
        registry: &mut EtcdRegistry,
    ) -> bool {
        let mut changed = false;
        // Several transitions may be due at once; a few rounds settle them.
        for _ in 0..16 {
            if !self.step_once(id, now, view, registry) {
                break;
            }
            changed = true;
        }
        changed
    }

    fn step_once(
        &mut self,
        id: &NodeIdent,
        now: Instant,
        view: &FleetView,
        registry: &mut EtcdRegistry,
    ) -> bool {
        let t = &id.timing;
        if self.lifecycle != Lifecycle::Off && self.timed_events(id, now) {
            return true;
        }
        match self.lifecycle {
            Lifecycle::Off | Lifecycle::Maintenance => false,
            Lifecycle::LeavingMaintenance { at } => {
                if now < at {
                    return false;
                }
                if self.installs_during_boot(id) {
                    // v1.14 without `machine.install`: no Install sequence
                    // (Talos v1.14.0-rc.1 v1alpha1_sequencer.go); the
                    // same boot goes on with the config, and apid reopens
                    // with mTLS.
                    self.config = self.pending.take();
                    let boot_time = self.boot_time;
                    self.start_boot(id, now);
                    self.boot_time = boot_time;
                    self.listener.stop = StopStyle::Graceful;
                    return true;
                }
                let until = if id.faults.stuck_in == Some(Stage::Installing) {
                    never(now)
                } else {
                    now + t.install
                };
                self.lifecycle = Lifecycle::Installing { until };
                self.set_listener(ListenerKind::None, None, StopStyle::Graceful);
                true
            }
            Lifecycle::Installing { until } => {
                if now < until {
                    return false;
                }
                self.stats.installs += 1;
                let target = self
                    .pending
                    .as_ref()
                    .and_then(|c| applied_config::install_target(c, &id.disks))
                    .map(|d| d.dev_path.clone());
                match target {
                    Some(disk) if !id.faults.install_fails => {
                        self.installed_disk = Some(disk);
                        self.config = self.pending.take();
                    }
                    _ => {
                        // The install sequence failed: the node reboots back
                        // into the ISO, i.e. into maintenance.
                        self.stats.installs_failed += 1;
                        self.pending = None;
                    }
                }
                self.begin_reboot(id, now);
                true
            }
            Lifecycle::Rebooting { until } => {
                if now < until {
                    return false;
                }
                if let Some(staged) = self.staged.take() {
                    self.config = Some(staged);
                }
                self.try_rollback = None;
                if self.config.is_some() {
                    self.start_boot(id, now);
                } else {
                    self.enter_maintenance(id);
                }
                true
            }
            Lifecycle::Configured => self.progress_boot(id, now, view, registry),
        }
    }

    fn progress_boot(
        &mut self,
        id: &NodeIdent,
        now: Instant,
        view: &FleetView,
        registry: &mut EtcdRegistry,
    ) -> bool {
        let t = id.timing;
        let role = self.role(id);
        let ca_id = self
            .config
            .as_ref()
            .and_then(|c| c.ca_id())
            .unwrap_or_default()
            .to_string();
        if let Some(at) = self.boot.reboot_at
            && now >= at
        {
            self.begin_reboot(id, now);
            return true;
        }
        if let Some(at) = self.boot.timeout_at
            && now >= at
        {
            self.boot.timeout_at = None;
            if !self.boot_done(id) && role == Role::ControlPlane {
                // startAllServices timed out: machined reboots the node.
                self.begin_reboot(id, now);
                return true;
            }
        }
        if let Some((at, previous)) = self.try_rollback.clone()
            && now >= at
        {
            self.config = Some(previous);
            self.try_rollback = None;
            return true;
        }
        if let Some(due) = self.unattended.as_ref().and_then(|u| u.due)
            && now >= due
        {
            self.finish_unattended(id, now);
            return true;
        }
        if !self.boot.apid_up && role == Role::Worker {
            // A worker's apid needs trustd on a control plane of its cluster.
            if let Some(ca) = view.trust.get(&ca_id).cloned()
                && self.finds_trustd(view.trustd_at.get(&ca_id))
            {
                self.bring_apid_up(id, Some(&ca));
                return true;
            }
        }
        if !self.boot.time_synced && now >= self.boot.time_synced_at {
            self.boot.time_synced = true;
            return true;
        }
        if self.boot.frozen {
            return false;
        }
        if !self.boot.cri_up {
            // CRI (and with it etcd, kubelet) waits for the unattended
            // install (Talos v1.14.0-rc.1 internal/app/machined/pkg/system/services/cri.go).
            if now < self.boot.cri_at || !self.install_done() {
                return false;
            }
            if id.faults.reboot_loop {
                self.begin_reboot(id, now);
                return true;
            }
            self.boot.cri_up = true;
            if role == Role::ControlPlane {
                if self.etcd.has_data {
                    self.etcd.start_running(now, &t);
                } else {
                    self.etcd.service = EtcdService::Preparing;
                    self.etcd.event(EtcdService::Preparing, "Running pre state");
                }
            }
            return true;
        }
        match role {
            Role::ControlPlane => self.progress_control_plane(id, now, view, registry, &ca_id),
            Role::Worker => self.progress_worker(now, view, &ca_id, &t),
        }
    }

    /// A booted worker becomes ready a join time after an API server of its
    /// cluster is up.
    fn progress_worker(&mut self, now: Instant, view: &FleetView, ca_id: &str, t: &Timing) -> bool {
        if self.boot.worker_ready {
            return false;
        }
        match self.boot.worker_ready_due {
            None if view.apiserver_up.contains(ca_id) => {
                self.boot.worker_ready_due = Some(now + t.worker_join);
                true
            }
            Some(due) if now >= due => {
                self.boot.worker_ready = true;
                self.boot.worker_ready_due = None;
                true
            }
            _ => false,
        }
    }

    fn progress_control_plane(
        &mut self,
        id: &NodeIdent,
        now: Instant,
        view: &FleetView,
        registry: &mut EtcdRegistry,
        ca_id: &str,
    ) -> bool {
        let t = id.timing;
        if self.etcd.service == EtcdService::Preparing && !self.etcd.has_data {
            match self.etcd.join_due {
                None if view.apiserver_up.contains(ca_id) => {
                    self.etcd.join_due = Some(now + t.join);
                    return true;
                }
                Some(due) if now >= due => {
                    self.etcd.join_due = None;
                    let member = EtcdMemberRec {
                        hostname: self.member_name(id),
                        ip: id.ip,
                        member_id: self.etcd.member_id,
                    };
                    if let Some(cluster) = registry.join(ca_id, member) {
                        self.etcd.cluster = Some(cluster);
                        self.etcd.has_data = true;
                        self.etcd.start_running(now, &t);
                    }
                    return true;
                }
                _ => return false,
            }
        }
        if self.etcd.service == EtcdService::Running
            && !self.etcd.healthy
            && let Some(due) = self.etcd.healthy_due
            && now >= due
        {
            self.etcd.healthy_due = None;
            if id.faults.etcd_never_healthy {
                self.etcd.health_failed = true;
                self.etcd.event(
                    EtcdService::Running,
                    "Health check failed: failed to validate quorum: context deadline exceeded",
                );
            } else {
                self.etcd.healthy = true;
                self.etcd
                    .event(EtcdService::Running, "Health check successful");
                self.boot.apiserver_due = Some(now + t.apiserver);
            }
            return true;
        }
        if !self.boot.apiserver_up
            && let Some(due) = self.boot.apiserver_due
            && now >= due
        {
            self.boot.apiserver_up = true;
            self.boot.apiserver_due = None;
            return true;
        }
        false
    }

    /// The next instant at which [`NodeState::step`] has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut d: Vec<Instant> = Vec::new();
        if self.lifecycle != Lifecycle::Off {
            d.extend(self.clock_step_at);
        }
        if self.lifecycle == Lifecycle::Maintenance {
            d.extend(self.maintenance.as_ref().and_then(|m| m.refresh_at));
        }
        match self.lifecycle {
            Lifecycle::Off | Lifecycle::Maintenance => {}
            Lifecycle::LeavingMaintenance { at } => d.push(at),
            Lifecycle::Installing { until } | Lifecycle::Rebooting { until } => d.push(until),
            Lifecycle::Configured => {
                d.extend(self.boot.reboot_at);
                d.extend(self.unattended.as_ref().and_then(|u| u.due));
                d.extend(self.boot.timeout_at);
                d.extend(self.try_rollback.as_ref().map(|(at, _)| *at));
                if !self.boot.time_synced {
                    d.push(self.boot.time_synced_at);
                }
                if !self.boot.frozen {
                    // CRI also waits for the unattended install, whose
                    // own deadline wakes the node: a past `cri_at` alone
                    // would have the driver step in a loop until then.
                    if !self.boot.cri_up && self.install_done() {
                        d.push(self.boot.cri_at);
                    }
                    d.extend(self.etcd.join_due);
                    if !self.etcd.healthy {
                        d.extend(self.etcd.healthy_due);
                    }
                    d.extend(self.boot.apiserver_due);
                    d.extend(self.boot.worker_ready_due);
                }
            }
        }
        d.into_iter().min()
    }

    /// Whether the next step may read the fleet view (a worker waiting for
    /// trustd or an API server, a control plane that could join etcd);
    /// building the view locks every node, so idle nodes skip it.
    pub fn needs_view(&self, id: &NodeIdent) -> bool {
        if self.lifecycle != Lifecycle::Configured {
            return false;
        }
        match self.role(id) {
            Role::Worker => !self.boot.apid_up || (self.boot.cri_up && !self.boot.worker_ready),
            Role::ControlPlane => {
                self.boot.cri_up
                    && self.etcd.service == EtcdService::Preparing
                    && !self.etcd.has_data
                    && self.etcd.join_due.is_none()
            }
        }
    }

    /// A fingerprint of what this node adds to the fleet view (see
    /// `FleetShared::view`): the other nodes need waking only when it
    /// changes. 0 for a node that adds nothing.
    pub fn view_key(&self, id: &NodeIdent) -> u64 {
        use std::hash::{Hash as _, Hasher as _};
        if self.lifecycle != Lifecycle::Configured
            || self.role(id) != Role::ControlPlane
            || !self.install_done()
        {
            return 0;
        }
        let Some(cfg) = &self.config else { return 0 };
        let mut h = std::collections::hash_map::DefaultHasher::new();
        // A new config (CA, VIPs) is a new allocation.
        (Arc::as_ptr(cfg) as usize).hash(&mut h);
        self.boot.apid_up.hash(&mut h);
        self.boot.apiserver_up.hash(&mut h);
        (self.etcd.service == EtcdService::Running).hash(&mut h);
        self.etcd.healthy.hash(&mut h);
        h.finish() | 1
    }

    /// Consumes one injected failure for `method` if a `flaky` fault covers it.
    pub fn take_flaky(&mut self, id: &NodeIdent, method: &str) -> bool {
        for (i, f) in id.faults.flaky.iter().enumerate() {
            if f.covers(method)
                && let Some(left) = self.flaky_left.get_mut(i)
                && *left > 0
            {
                *left -= 1;
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::genconfig::{ClusterSpec, InstallTarget, NodeSpec, generate_cluster};

    struct Fixture {
        _tmp: tempfile::TempDir,
        cp: Arc<AppliedConfig>,
        worker: Arc<AppliedConfig>,
    }

    fn fixture() -> Fixture {
        fixture_at("v1.12.11")
    }

    /// A control plane's and a worker's config as `talstrap sim` writes them for `version`.
    fn fixture_at(version: &str) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let spec = ClusterSpec {
            cluster_name: "st".into(),
            talos_version: version.into(),
            kubernetes_version: "v1.34.1".into(),
            endpoint_ip: "127.6.6.254".parse().unwrap(),
            network: Default::default(),
            nodes: vec![
                NodeSpec {
                    hostname: "cp1".into(),
                    ip: "127.6.6.11".parse().unwrap(),
                    control_plane: true,
                    install: InstallTarget::Disk("/dev/nvme0n1".into()),
                },
                NodeSpec {
                    hostname: "w1".into(),
                    ip: "127.6.6.12".parse().unwrap(),
                    control_plane: false,
                    install: InstallTarget::Disk("/dev/nvme0n1".into()),
                },
            ],
        };
        let g = generate_cluster(&spec, tmp.path()).unwrap();
        let load = |i: usize| {
            Arc::new(
                applied_config::parse(&std::fs::read(&g.nodes[i].config_path).unwrap(), version)
                    .unwrap(),
            )
        };
        Fixture {
            cp: load(0),
            worker: load(1),
            _tmp: tmp,
        }
    }

    fn ident(hostname: &str, role: Role, faults: NodeFaults) -> NodeIdent {
        NodeIdent {
            hostname: hostname.into(),
            ip: "127.6.6.11".parse().unwrap(),
            role,
            disks: vec![DiskFacts {
                dev_path: "/dev/nvme0n1".into(),
                size: 512_000_000_000,
                transport: "nvme".into(),
                ..DiskFacts::default()
            }],
            faults,
            timing: Timing::default(),
            time_scale: 1.0,
            talos_version: "v1.12.11".into(),
            foreign_ca: None,
        }
    }

    /// Steps repeatedly, jumping to each deadline, until `until` or nothing is left.
    fn run(
        st: &mut NodeState,
        id: &NodeIdent,
        mut now: Instant,
        until: Instant,
        view: &FleetView,
        reg: &mut EtcdRegistry,
    ) -> Instant {
        st.step(id, now, view, reg);
        while let Some(next) = st.next_deadline() {
            // A step at `now` settles everything due by then; a deadline
            // not after it would wake the node's driver in a busy loop.
            assert!(
                next > now,
                "{}: deadline {next:?} not after {now:?}",
                id.hostname
            );
            if next > until {
                break;
            }
            now = next;
            st.step(id, now, view, reg);
        }
        now
    }

    #[tokio::test]
    async fn an_unattended_install_leaves_no_past_deadline_while_it_runs() {
        let f = fixture_at("v1.14.0");
        let cfg = f.cp.clone();
        let mut id = ident("cp1", Role::ControlPlane, NodeFaults::default());
        id.talos_version = "v1.14.0".into();
        // CRI's own delay ends long before the install does.
        id.timing.boot = Duration::from_millis(10);
        id.timing.install = Duration::from_secs(5);
        let t0 = Instant::now();
        let mut st = NodeState::new(&id, t0, 7);
        let mut reg = EtcdRegistry::default();
        st.power_on(&id, t0);
        st.accept_maintenance_config(&id, t0, cfg);
        assert!(st.installs_during_boot(&id) || st.unattended.is_some());
        run(
            &mut st,
            &id,
            t0,
            t0 + Duration::from_secs(60),
            &FleetView::default(),
            &mut reg,
        );
        assert!(st.install_done(), "the install finished");
        assert!(st.boot.cri_up, "CRI came up after the install");
    }

    #[tokio::test]
    async fn the_unattended_target_is_remembered_per_config_and_is_the_uncached_answer() {
        let f = fixture_at("v1.14.0");
        let mut id = ident("cp1", Role::ControlPlane, NodeFaults::default());
        id.disks.push(DiskFacts {
            dev_path: "/dev/vda".into(),
            size: 20 << 30,
            transport: "virtio".into(),
            ..DiskFacts::default()
        });
        let with = |expr: &str| {
            let mut c = (*f.cp).clone();
            c.unattended = Some(applied_config::UnattendedInstall {
                disk_match: expr.into(),
                image: String::new(),
                reboot: None,
            });
            Arc::new(c)
        };
        let nvme = with(r#"disk.transport == "nvme""#);
        let vda = with(r#"disk.dev_path == "/dev/vda""#);
        let nothing = with("disk.size > 10u * TB");
        let broken = with("disk.size >= 12 * GiB");
        let mut st = NodeState::new(&id, Instant::now(), 7);
        // Each config in turn (a new config is a new answer), then the
        // first one again: always what the uncached evaluation says.
        for cfg in [&nvme, &vda, &nothing, &broken, &nvme] {
            let uncached = applied_config::unattended_target(cfg, &id.disks)
                .map(|d| d.map(|d| d.dev_path.clone()));
            assert_eq!(st.unattended_target_of(&id, cfg), uncached);
            assert_eq!(st.unattended_target_of(&id, cfg), uncached);
        }
        assert_eq!(
            st.unattended_target_of(&id, &vda),
            Ok(Some("/dev/vda".to_string()))
        );
        assert_eq!(st.unattended_target_of(&id, &nothing), Ok(None));
        assert!(st.unattended_target_of(&id, &broken).is_err());
        // The same selector in another config (a re-apply) is evaluated
        // again and answers the same.
        let nvme_again = with(r#"disk.transport == "nvme""#);
        assert_eq!(
            st.unattended_target_of(&id, &nvme_again),
            Ok(Some("/dev/nvme0n1".to_string()))
        );
    }

    #[tokio::test]
    async fn maintenance_apply_install_reboot_then_booting_before_bootstrap() {
        let f = fixture();
        let id = ident("cp1", Role::ControlPlane, NodeFaults::default());
        let t0 = Instant::now();
        let mut st = NodeState::new(&id, t0, 7);
        let mut reg = EtcdRegistry::default();
        let view = FleetView::default();
        st.power_on(&id, t0);
        assert_eq!(st.stage(&id), Stage::Maintenance);
        assert_eq!(st.mode(), NodeMode::Maintenance);
        assert!(st.ready(&id), "maintenance reports ready with no checks");
        let boot1 = st.boot_time;
        st.accept_maintenance_config(&id, t0, f.cp.clone());
        let now = run(
            &mut st,
            &id,
            t0,
            t0 + Duration::from_secs(60),
            &view,
            &mut reg,
        );
        assert_eq!(st.stage(&id), Stage::Booting);
        assert_eq!(st.mode(), NodeMode::Configured);
        assert!(st.boot_time > boot1);
        assert_eq!(st.installed_disk.as_deref(), Some("/dev/nvme0n1"));
        assert_eq!(st.etcd.service, EtcdService::Preparing);
        assert_eq!(
            st.unmet_conditions(&id),
            vec![
                ("services".to_string(), "etcd not running".to_string()),
                (
                    "staticPods".to_string(),
                    "kube-apiserver-cp1 pending".to_string()
                ),
                (
                    "nodeReady".to_string(),
                    "node \"cp1\" status is not available yet".to_string()
                ),
            ]
        );
        // Bootstrap: etcd runs, becomes healthy, API server comes up, running+ready.
        st.bootstrap(&id, now, &mut reg);
        run(
            &mut st,
            &id,
            now,
            now + Duration::from_secs(60),
            &view,
            &mut reg,
        );
        assert_eq!(st.stage(&id), Stage::Running);
        assert!(st.ready(&id));
        assert!(st.etcd.healthy);
        assert_eq!(reg.clusters.len(), 1);
    }

    #[tokio::test]
    async fn a_power_cut_silences_the_node_and_keeps_what_is_on_disk() {
        let f = fixture();
        let id = ident("cp1", Role::ControlPlane, NodeFaults::default());
        let t0 = Instant::now();
        let mut st = NodeState::new(&id, t0, 7);
        let mut reg = EtcdRegistry::default();
        let view = FleetView::default();
        st.preconfigure(f.cp.clone(), &id.disks);
        st.power_on(&id, t0);
        st.prebootstrap(&id, t0, &mut reg);
        assert_eq!(st.etcd.service, EtcdService::Running);
        let boot1 = st.boot_time;

        st.power_off(t0);
        assert_eq!(st.mode(), NodeMode::Down);
        assert_eq!(st.listener.kind, ListenerKind::Silent);
        assert_eq!(st.listener.stop, StopStyle::Freeze);
        assert_eq!(st.stage(&id), Stage::Unknown);
        assert_eq!(st.etcd.service, EtcdService::Absent);
        assert!(!st.etcd.healthy && st.etcd.has_data);
        assert_eq!(st.next_deadline(), None, "nothing happens while off");
        assert_eq!(reg.clusters.len(), 1, "the member stays listed");
        assert_eq!(reg.clusters[0].members.len(), 1);

        // Power back: it boots its installed config and etcd starts from its data.
        st.power_on(&id, t0);
        assert!(st.boot_time > boot1, "a new boot");
        run(
            &mut st,
            &id,
            t0,
            t0 + Duration::from_secs(60),
            &view,
            &mut reg,
        );
        assert_eq!(st.mode(), NodeMode::Configured);
        assert_eq!(st.etcd.service, EtcdService::Running);
        assert!(st.etcd.healthy);
        assert_eq!(reg.clusters.len(), 1, "no new cluster");
    }

    #[tokio::test]
    async fn install_failure_returns_to_maintenance() {
        let f = fixture();
        let id = ident(
            "cp1",
            Role::ControlPlane,
            NodeFaults {
                install_fails: true,
                ..NodeFaults::default()
            },
        );
        let t0 = Instant::now();
        let mut st = NodeState::new(&id, t0, 1);
        let mut reg = EtcdRegistry::default();
        st.power_on(&id, t0);
        let gen_before = st.listener.generation;
        st.accept_maintenance_config(&id, t0, f.cp.clone());
        run(
            &mut st,
            &id,
            t0,
            t0 + Duration::from_secs(60),
            &FleetView::default(),
            &mut reg,
        );
        assert_eq!(st.stage(&id), Stage::Maintenance);
        assert!(st.config.is_none());
        assert_eq!(st.stats.installs_failed, 1);
        assert!(
            st.listener.generation > gen_before,
            "a new maintenance listener (new cert)"
        );
    }

    #[tokio::test]
    async fn worker_waits_for_trustd_then_for_an_api_server() {
        let f = fixture();
        let id = ident("w1", Role::Worker, NodeFaults::default());
        let t0 = Instant::now();
        let mut st = NodeState::new(&id, t0, 2);
        let mut reg = EtcdRegistry::default();
        st.preconfigure(f.worker.clone(), &id.disks);
        st.power_on(&id, t0);
        let mut view = FleetView::default();
        let now = run(
            &mut st,
            &id,
            t0,
            t0 + Duration::from_secs(30),
            &view,
            &mut reg,
        );
        assert_eq!(st.mode(), NodeMode::Down, "no apid without trustd");
        let ca_id = f.worker.ca_id().unwrap().to_string();
        view.trust.insert(ca_id.clone(), f.cp.ca.clone().unwrap());
        view.trustd_at.insert(
            ca_id.clone(),
            TrustdAt {
                nodes: vec!["127.6.6.11".parse().unwrap()],
                vips: vec![],
            },
        );
        let now = run(
            &mut st,
            &id,
            now,
            now + Duration::from_secs(30),
            &view,
            &mut reg,
        );
        assert_eq!(st.mode(), NodeMode::Configured);
        assert_eq!(st.stage(&id), Stage::Running);
        assert!(!st.ready(&id));
        view.apiserver_up.insert(ca_id);
        run(
            &mut st,
            &id,
            now,
            now + Duration::from_secs(30),
            &view,
            &mut reg,
        );
        assert!(st.ready(&id));
    }

    #[tokio::test]
    async fn a_worker_behind_a_vip_without_discovery_waits_for_the_vip() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = ClusterSpec {
            cluster_name: "vip".into(),
            talos_version: "v1.12.11".into(),
            kubernetes_version: "v1.34.1".into(),
            endpoint_ip: "127.6.7.254".parse().unwrap(),
            network: crate::genconfig::ClusterNetwork {
                discovery: false,
                vip_endpoint: true,
            },
            nodes: vec![
                NodeSpec {
                    hostname: "cp1".into(),
                    ip: "127.6.7.11".parse().unwrap(),
                    control_plane: true,
                    install: InstallTarget::Disk("/dev/nvme0n1".into()),
                },
                NodeSpec {
                    hostname: "w1".into(),
                    ip: "127.6.7.12".parse().unwrap(),
                    control_plane: false,
                    install: InstallTarget::Disk("/dev/nvme0n1".into()),
                },
            ],
        };
        let g = generate_cluster(&spec, tmp.path()).unwrap();
        let load = |i: usize| {
            Arc::new(
                applied_config::parse(&std::fs::read(&g.nodes[i].config_path).unwrap(), "v1.12.11")
                    .unwrap(),
            )
        };
        let (cp, worker) = (load(0), load(1));
        assert!(!worker.discovery_enabled());
        assert_eq!(cp.vips(), vec!["127.6.7.254".parse::<IpAddr>().unwrap()]);
        assert_eq!(worker.endpoint_host().as_deref(), Some("127.6.7.254"));
        let id = ident("w1", Role::Worker, NodeFaults::default());
        let t0 = Instant::now();
        let mut st = NodeState::new(&id, t0, 2);
        let mut reg = EtcdRegistry::default();
        st.preconfigure(worker.clone(), &id.disks);
        st.power_on(&id, t0);
        let ca_id = worker.ca_id().unwrap().to_string();
        let mut view = FleetView::default();
        view.trust.insert(ca_id.clone(), cp.ca.clone().unwrap());
        // trustd runs on the control plane, but the worker only knows the VIP.
        view.trustd_at.insert(
            ca_id.clone(),
            TrustdAt {
                nodes: vec!["127.6.7.11".parse().unwrap()],
                vips: vec![],
            },
        );
        let now = run(
            &mut st,
            &id,
            t0,
            t0 + Duration::from_secs(30),
            &view,
            &mut reg,
        );
        assert_eq!(
            st.mode(),
            NodeMode::Down,
            "no trustd through a VIP nobody holds"
        );
        view.trustd_at.get_mut(&ca_id).unwrap().vips = cp.vips();
        run(
            &mut st,
            &id,
            now,
            now + Duration::from_secs(30),
            &view,
            &mut reg,
        );
        assert_eq!(st.mode(), NodeMode::Configured);
    }

    #[tokio::test]
    async fn control_planes_join_the_first_cluster() {
        let f = fixture();
        let id = ident("cp2", Role::ControlPlane, NodeFaults::default());
        let t0 = Instant::now();
        let mut st = NodeState::new(&id, t0, 22);
        let mut reg = EtcdRegistry::default();
        let ca_id = f.cp.ca_id().unwrap().to_string();
        reg.create(
            &ca_id,
            EtcdMemberRec {
                hostname: "cp1".into(),
                ip: "127.6.6.1".parse().unwrap(),
                member_id: 11,
            },
        );
        st.preconfigure(f.cp.clone(), &id.disks);
        st.power_on(&id, t0);
        let mut view = FleetView::default();
        view.apiserver_up.insert(ca_id);
        run(
            &mut st,
            &id,
            t0,
            t0 + Duration::from_secs(60),
            &view,
            &mut reg,
        );
        assert_eq!(reg.clusters.len(), 1);
        assert_eq!(reg.clusters[0].members.len(), 2);
        assert!(st.etcd.has_data && st.ready(&id));
    }

    #[tokio::test]
    async fn faults_shape_the_boot() {
        let f = fixture();
        // stuck in booting: conditions never change.
        let id = ident(
            "cp1",
            Role::ControlPlane,
            NodeFaults {
                stuck_in: Some(Stage::Booting),
                ..NodeFaults::default()
            },
        );
        let t0 = Instant::now();
        let mut st = NodeState::new(&id, t0, 3);
        let mut reg = EtcdRegistry::default();
        st.preconfigure(f.cp.clone(), &id.disks);
        st.power_on(&id, t0);
        let before = st.unmet_conditions(&id);
        run(
            &mut st,
            &id,
            t0,
            t0 + Duration::from_secs(600),
            &FleetView::default(),
            &mut reg,
        );
        assert_eq!(st.stage(&id), Stage::Booting);
        assert_eq!(st.unmet_conditions(&id), before);
        assert!(
            before
                .iter()
                .any(|(n, r)| n == "services" && r.contains("cri not running"))
        );

        // reboot loop: boot time keeps changing.
        let id = ident(
            "cp1",
            Role::ControlPlane,
            NodeFaults {
                reboot_loop: true,
                ..NodeFaults::default()
            },
        );
        let mut st = NodeState::new(&id, t0, 4);
        st.preconfigure(f.cp.clone(), &id.disks);
        st.power_on(&id, t0);
        let first = st.boot_time;
        run(
            &mut st,
            &id,
            t0,
            t0 + Duration::from_secs(30),
            &FleetView::default(),
            &mut reg,
        );
        assert!(st.stats.reboots >= 3, "{}", st.stats.reboots);
        assert!(st.boot_time >= first + 3);

        // etcd never healthy: running but "etcd not healthy", still booting.
        let id = ident(
            "cp1",
            Role::ControlPlane,
            NodeFaults {
                etcd_never_healthy: true,
                ..NodeFaults::default()
            },
        );
        let mut st = NodeState::new(&id, t0, 5);
        st.preconfigure(f.cp.clone(), &id.disks);
        st.power_on(&id, t0);
        let now = run(
            &mut st,
            &id,
            t0,
            t0 + Duration::from_secs(30),
            &FleetView::default(),
            &mut reg,
        );
        st.bootstrap(&id, now, &mut reg);
        run(
            &mut st,
            &id,
            now,
            now + Duration::from_secs(30),
            &FleetView::default(),
            &mut reg,
        );
        assert_eq!(st.stage(&id), Stage::Booting);
        assert!(
            st.unmet_conditions(&id)
                .iter()
                .any(|(n, r)| n == "services" && r == "etcd not healthy")
        );
    }

    #[tokio::test]
    async fn an_unbootstrapped_control_plane_reboots_at_the_boot_timeout() {
        let f = fixture();
        let id = ident(
            "cp1",
            Role::ControlPlane,
            NodeFaults {
                booted_ago: Some(Duration::from_secs(60 * 60)),
                ..NodeFaults::default()
            },
        );
        let t0 = Instant::now();
        let mut st = NodeState::new(&id, t0, 1);
        let mut reg = EtcdRegistry::default();
        st.preconfigure(f.cp.clone(), &id.disks);
        st.power_on(&id, t0);
        assert!(st.boot_time + 3000 < pki::unix_now(), "booted an hour ago");
        // 70 min - 60 min: ten minutes in, the boot times out.
        run(
            &mut st,
            &id,
            t0,
            t0 + Duration::from_secs(9 * 60),
            &FleetView::default(),
            &mut reg,
        );
        assert_eq!(st.stats.reboots, 0);
        run(
            &mut st,
            &id,
            t0 + Duration::from_secs(9 * 60),
            t0 + Duration::from_secs(11 * 60),
            &FleetView::default(),
            &mut reg,
        );
        assert_eq!(st.stats.reboots, 1, "the boot timeout rebooted it");
    }

    #[tokio::test]
    async fn clock_steps_and_certificate_refreshes_happen_within_one_boot() {
        let id = ident(
            "cp1",
            Role::ControlPlane,
            NodeFaults {
                clock_step: Some(super::super::scenario::ClockStep {
                    after: Duration::from_secs(1),
                    by_secs: 7200,
                    count: 2,
                }),
                cert_refresh_every: Some(Duration::from_secs(5)),
                ..NodeFaults::default()
            },
        );
        let t0 = Instant::now();
        let mut st = NodeState::new(&id, t0, 1);
        st.power_on(&id, t0);
        let (boot_time, boot_id, generation) =
            (st.boot_time, st.boot_id.clone(), st.listener.generation);
        let leaf = st.maintenance.as_ref().unwrap().cert.leaf_der();
        let mut reg = EtcdRegistry::default();
        run(
            &mut st,
            &id,
            t0,
            t0 + Duration::from_secs(20),
            &FleetView::default(),
            &mut reg,
        );
        assert_eq!(st.boot_time, boot_time + 2 * 7200, "two steps of 2 h");
        assert_eq!(st.boot_id, boot_id, "same boot");
        assert_eq!(st.stats.reboots, 0);
        assert_eq!(st.listener.generation, generation, "the listener stays up");
        assert_ne!(st.maintenance.as_ref().unwrap().cert.leaf_der(), leaf);
        assert_eq!(st.stage(&id), Stage::Maintenance);
    }

    #[test]
    fn flaky_counts_down_per_method() {
        let id = ident(
            "cp1",
            Role::ControlPlane,
            NodeFaults {
                flaky: vec![super::super::scenario::Flaky {
                    method: "ApplyConfiguration".into(),
                    count: 2,
                }],
                ..NodeFaults::default()
            },
        );
        let mut st = NodeState::new(&id, Instant::now(), 1);
        let m = "/machine.MachineService/ApplyConfiguration";
        assert!(st.take_flaky(&id, m));
        assert!(!st.take_flaky(&id, "/machine.MachineService/Version"));
        assert!(st.take_flaky(&id, m));
        assert!(!st.take_flaky(&id, m));
    }
}
