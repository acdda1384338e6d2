//! `talstrap verify`: wait until every node reaches the stage expected for
//! its role and the cluster's phase, and say why a node does not.
//!
//! Expected states:
//! - before bootstrap, a control plane is `booting` with only etcd-dependent
//!   conditions unmet ("ready for bootstrap"); a worker is `booting` waiting
//!   for the control plane (kubelet/node readiness only);
//! - after bootstrap, every node is `running` and ready.
//!
//! Stuck detection: the same stage and unmet conditions for `--stuck-after`;
//! a node back in maintenance after an apply (install failed); a reboot loop
//! (boot time keeps changing); unreachable for `--stuck-after`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio::time::Instant;

use crate::exit::Exit;
use crate::output::Report;
use crate::pipeline::{Done, ErrorKind, Event, NodeCtx, RetryPolicy, StepError, run_nodes};
use crate::settings::VerifySettings;
use crate::talos::probe::{ProbeResult, probe};
use crate::talos::{ErrorClass, MachineStatus, NodeClient, TalosError};

pub(crate) use self::watch::{BootIdentity, ExpectReboot, MaintenanceCert, Phase};
use self::watch::{Failure, NodeWatch, Observation, Verdict, Watch};
use super::plan::{Access, Plan, PlannedNode};
use super::{CommandError, Session};
use crate::ops::cluster::cluster_bootstrapped;
use crate::ops::node::{connect_secure, talos_err, unusable_mode};

mod etcd_health;
mod trustd;
pub(crate) mod watch;

/// Nodes watched at once by verify (unless --serial).
pub(crate) const WATCH_PARALLEL: usize = 512;

/// How a node is waited for.
#[derive(Debug, Clone)]
pub(crate) struct WaitSettings {
    pub phase: Phase,
    pub stuck_after: Duration,
    pub poll_interval: Duration,
    /// The config was sent in this run: seeing maintenance again means the install failed.
    pub applied_now: bool,
    /// Node name → the maintenance certificate its config was sent to. A
    /// certificate from another CA (Talos makes one per boot) means the node
    /// rebooted back into maintenance (the install failed), even when verify
    /// never saw it go down; a new certificate from the same CA is a refresh.
    pub sent_in_maintenance: HashMap<String, MaintenanceCert>,
    /// Node name → a reboot the apply asked for, which must be seen before
    /// the node counts as ready.
    pub expect_reboot: HashMap<String, ExpectReboot>,
    /// The maintenance clients the apply sent configs over.
    pub handover: Arc<Handover>,
}

/// Maintenance clients an apply opened over its probes' connections, by
/// node name. verify takes a node's client and watches it instead of
/// probing: while the connection is open the node is still in maintenance
/// mode; Talos stops the maintenance server (closing every connection)
/// once it has taken the config (Talos v1.12.11
/// internal/app/machined/pkg/controllers/runtime/maintenance_service.go,
/// `shutdownServer`). That spares a probe, and its handshake, per node.
/// A client is kept only while its connection is open: once the node has
/// closed it, only that fact is (a fleet's worth of idle clients would
/// hold tens of kilobytes each until verify reached them).
#[derive(Debug, Default)]
pub(crate) struct Handover(Arc<std::sync::Mutex<HashMap<String, HandedOver>>>);

/// What verify gets from the apply for one node.
#[derive(Debug, Clone)]
enum HandedOver {
    /// The maintenance connection the config went over, still open.
    Open(NodeClient),
    /// The node closed that connection before verify reached it.
    Closed,
}

impl Handover {
    /// Keeps `client` for `node` if it was opened over a probe's connection,
    /// until the node closes that connection.
    pub(crate) fn put(&self, node: &str, client: NodeClient) {
        let Some(closed) = client.held_connection_closed() else {
            return;
        };
        lock(&self.0).insert(node.to_string(), HandedOver::Open(client));
        let map = Arc::downgrade(&self.0);
        let node = node.to_string();
        tokio::spawn(async move {
            closed.await;
            if let Some(map) = map.upgrade()
                && let Some(entry) = lock(&map).get_mut(&node)
            {
                *entry = HandedOver::Closed;
            }
        });
    }

    fn take(&self, node: &str) -> Option<HandedOver> {
        lock(&self.0).remove(node)
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) async fn run(session: &Session, args: VerifySettings) -> Result<Exit, CommandError> {
    let plan = session.plan(&args.inventory, &args.pacing).await?;
    for w in &plan.warnings {
        session.output.events().emit(Event::Warning {
            node: None,
            message: w.clone(),
        });
    }
    let phase = match args.phase {
        Some(phase) => phase,
        None => decide_phase(session, &plan).await,
    };
    let settings = WaitSettings {
        phase,
        stuck_after: args.stuck_after,
        poll_interval: args.pacing.poll_interval,
        applied_now: false,
        sent_in_maintenance: HashMap::new(),
        expect_reboot: HashMap::new(),
        handover: Arc::default(),
    };
    let mut report = verify_nodes(session, &plan, &plan.nodes, settings, "verify").await;
    if phase == Phase::PostBootstrap && !plan.control_planes.is_empty() {
        with_etcd_health(&mut report, &plan).await;
    }
    session.output.report(&report);
    Ok(report.exit())
}

/// After bootstrap, the cluster as a whole: etcd's member lists agree, hold
/// the inventory's control planes, and every member is healthy. In the
/// report's details and summary; an unhealthy etcd fails a run whose nodes
/// all passed.
async fn with_etcd_health(report: &mut Report, plan: &Plan) {
    let health = self::etcd_health::check(&plan.access, &plan.control_planes).await;
    report.messages.push(health.summary());
    if !health.healthy && report.status == Exit::Success {
        report.status = Exit::NodeFailure;
        report.exit_code = Exit::NodeFailure.code();
    }
    let details = match std::mem::take(&mut report.details) {
        serde_json::Value::Object(mut m) => {
            m.insert("etcd".into(), serde_json::json!(health));
            serde_json::Value::Object(m)
        }
        _ => serde_json::json!({ "etcd": health }),
    };
    report.details = details;
}

/// Auto phase: bootstrapped if any reachable control plane has etcd.
pub(crate) async fn decide_phase(session: &Session, plan: &Plan) -> Phase {
    let cps: Vec<_> = plan
        .control_planes
        .iter()
        .map(PlannedNode::endpoint)
        .collect();
    let found = cluster_bootstrapped(&plan.access, &cps).await;
    let phase = if found.is_some() {
        Phase::PostBootstrap
    } else {
        Phase::PreBootstrap
    };
    let text = match (&found, phase) {
        (Some(proof), _) => format!(
            "cluster is bootstrapped ({proof}): waiting for every node to be running and ready"
        ),
        (None, _) => "cluster is not bootstrapped yet: waiting for nodes to be ready for bootstrap"
            .to_string(),
    };
    session.output.events().emit(Event::Info { message: text });
    phase
}

/// Wait for `nodes` and build the report (used by verify and `apply --wait`).
pub(crate) async fn verify_nodes(
    session: &Session,
    plan: &Plan,
    nodes: &[PlannedNode],
    settings: WaitSettings,
    command: &str,
) -> Report {
    let mut run = session.run_context(RetryPolicy::once());
    // Waiting is cheap (one watch per node): --parallel bounds the nodes being
    // changed at once, not the nodes being watched. --serial still means one.
    if !session.global.serial {
        run.parallel = run.parallel.max(WATCH_PARALLEL);
    }
    run.emit(Event::RunStarted {
        command: command.into(),
        nodes: nodes.len(),
        parallel: run.parallel,
    });
    let access = Arc::new(plan.access.clone());
    let settings = Arc::new(settings);
    let cps = Arc::new(ControlPlanes::new(plan));
    let items = nodes.iter().map(|n| (n.node.clone(), n.clone())).collect();
    let outcomes = run_nodes(&run, items, move |ctx, node| {
        let access = access.clone();
        let settings = settings.clone();
        let cps = cps.clone();
        async move { watch_node(&ctx, &access, &node, &settings, &cps).await }
    })
    .await;
    Report::new(command, outcomes, session.elapsed(), None)
}

/// A config only Talos v1.14+ takes (it has a v1.14 document kind) and
/// that configures no Flannel (no `KubeFlannelCNIConfig`, no legacy
/// `cluster.network` with flannel or an unset CNI): v1.14 then runs no CNI
/// at all (Talos v1.14.0-rc.1
/// pkg/machinery/config/types/v1alpha1/v1alpha1_k8s_bridge.go), where v1.12
/// and v1.13 default to Flannel.
pub(crate) fn runs_without_cni(cfg: &crate::inventory::machine_config::MachineConfig) -> bool {
    let v1_14_only = cfg
        .extra_documents
        .iter()
        .any(|(kind, _)| crate::inventory::config_kind_since(kind).is_some_and(|m| m >= 14));
    v1_14_only && !cfg.flannel_configured
}

/// The control planes of the inventory, as the watches of one run share
/// them: their addresses and VIPs (a worker's route to trustd) and whether
/// one is up.
struct ControlPlanes {
    endpoints: Vec<super::plan::Endpoint>,
    addrs: Vec<std::net::IpAddr>,
    /// The VIPs their configs hold, read once for every watch of the run.
    vips: Vec<std::net::IpAddr>,
    /// When they were last asked, and whether one had healthy etcd.
    checked: tokio::sync::Mutex<(Option<Instant>, bool)>,
}

impl ControlPlanes {
    fn new(plan: &Plan) -> Self {
        ControlPlanes {
            endpoints: plan
                .control_planes
                .iter()
                .map(PlannedNode::endpoint)
                .collect(),
            addrs: plan.control_planes.iter().map(|n| n.addr.ip()).collect(),
            vips: self::trustd::control_plane_vips(
                plan.control_planes
                    .iter()
                    .map(|n| &n.entry.config.wait_facts),
            ),
            checked: tokio::sync::Mutex::new((None, false)),
        }
    }

    /// Nothing known about the control planes.
    fn none() -> Self {
        ControlPlanes {
            endpoints: Vec::new(),
            addrs: Vec::new(),
            vips: Vec::new(),
            checked: tokio::sync::Mutex::new((None, false)),
        }
    }

    /// Why `node`, a worker, may stay closed until bootstrap.
    fn trustd_wait(&self, node: &PlannedNode) -> Option<String> {
        if node.is_control_plane() || self.addrs.is_empty() {
            return None;
        }
        self::trustd::waits_for_bootstrap_at(
            &node.entry.config.wait_facts,
            node.entry.config.endpoint.as_deref(),
            &self.addrs,
            &self.vips,
        )
    }

    /// Whether a control plane has healthy etcd (so its VIP can be up);
    /// asked at most once per `every` across all the watches.
    async fn up(&self, access: &Access, every: Duration) -> bool {
        let mut checked = self.checked.lock().await;
        if checked.1 {
            return true;
        }
        if checked.0.is_some_and(|at| at.elapsed() < every) {
            return false;
        }
        let views = crate::ops::cluster::etcd_views(access, &self.endpoints).await;
        *checked = (
            Some(Instant::now()),
            views.iter().any(|v| {
                v.etcd_state.as_deref() == Some("Running") && v.etcd_healthy == Some(true)
            }),
        );
        checked.1
    }
}

/// The watch settings of one node.
fn node_watch(node: &PlannedNode, settings: &WaitSettings, cps: &ControlPlanes) -> NodeWatch {
    NodeWatch {
        phase: settings.phase,
        control_plane: node.is_control_plane(),
        stuck_after: settings.stuck_after,
        poll_interval: settings.poll_interval,
        applied_now: settings.applied_now,
        sent_to: settings.sent_in_maintenance.get(&node.node.node).cloned(),
        expect_reboot: settings.expect_reboot.get(&node.node.node).cloned(),
        cni_none: node.entry.config.wait_facts.cni_none || runs_without_cni(&node.entry.config),
        trustd_wait: cps.trustd_wait(node),
        install_selector: node.entry.config.unattended_match.clone(),
    }
}

/// Wait for one node on its own (a rollout's step): as [`verify_nodes`]
/// does, without the other control planes' configs, so a worker is not
/// taken to wait for trustd.
pub(crate) async fn wait_node(
    ctx: &Arc<NodeCtx>,
    access: &Access,
    node: &PlannedNode,
    settings: &WaitSettings,
) -> Result<Done, StepError> {
    watch_node(ctx, access, node, settings, &ControlPlanes::none()).await
}

/// Wait for one node. Runs as one observing step (cut at once by Ctrl-C).
async fn watch_node(
    ctx: &Arc<NodeCtx>,
    access: &Access,
    node: &PlannedNode,
    settings: &WaitSettings,
    cps: &ControlPlanes,
) -> Result<Done, StepError> {
    let poll = settings.poll_interval;
    let handed_over = settings.handover.take(&node.node.node);
    let reached = ctx
        .step_with("verify", &RetryPolicy::once(), |_| async {
            let mut watch = Watch::new(node_watch(node, settings, cps), Instant::now());
            let mut link = Link::new(access, settings, node, handed_over.clone());
            loop {
                let obs = link.observe(access, node, poll).await?;
                if matches!(obs, Observation::Down { refused: true, .. })
                    && watch.wants_control_planes()
                    && cps.up(access, poll).await
                {
                    watch.observe(Observation::ControlPlanesUp, Instant::now());
                }
                let sampled = matches!(obs, Observation::Sample { .. });
                let mut next = watch.observe(obs, Instant::now());
                // Still waiting: a v1.14 unattended install may say why.
                if sampled
                    && matches!(next.verdict, Verdict::Wait { .. })
                    && watch.wants_install_status()
                    && let Some(client) = link.client.clone()
                    // A failed read is left to the next sample.
                    && let Ok(Some(status)) = client.unattended_install_status().await
                {
                    let more = watch.observe(Observation::Install(status), Instant::now());
                    next.notes.extend(more.notes);
                    if matches!(more.verdict, Verdict::Failed(_)) {
                        next.verdict = more.verdict;
                    }
                }
                for line in next.notes {
                    ctx.progress("verify", line);
                }
                match next.verdict {
                    Verdict::Ready(r) => return Ok(r),
                    Verdict::Failed(f) => {
                        if let Some(status) = watch.status() {
                            ctx.fact("stage", status.stage.to_string());
                        }
                        return Err(link.step_error(f, access));
                    }
                    // A watch stream waits for changes by itself.
                    Verdict::Wait { .. } if sampled && link.stream.is_some() => {}
                    Verdict::Wait { pause } => tokio::time::sleep(pause).await,
                }
            }
        })
        .await?;
    ctx.fact("stage", reached.stage.to_string());
    ctx.fact("ready", reached.ready);
    match reached.warning {
        Some(w) => {
            ctx.warn(w);
            Ok(Done::Warning(reached.summary))
        }
        None => Ok(Done::Ok(reached.summary)),
    }
}

type StatusStream = BoxStream<'static, Result<MachineStatus, TalosError>>;

/// The I/O side of a watch: the connection to the node, if any, and the
/// machine-status stream on it.
struct Link {
    client: Option<NodeClient>,
    stream: Option<StatusStream>,
    watch_supported: bool,
    /// The boot id read for this boot time on this connection.
    boot_id: Option<(u64, Option<String>)>,
    last_mode: Option<ProbeResult>,
    /// The maintenance client the config was just sent over: watched
    /// until the node closes it.
    held: Option<HandedOver>,
    /// Open the mTLS connection before probing: the node is expected to be
    /// configured (or down), and a probe would cost a second handshake.
    /// Anything but a failed TCP connect is then told apart by a probe.
    secure_first: bool,
}

impl Link {
    fn new(
        access: &Access,
        settings: &WaitSettings,
        node: &PlannedNode,
        handed_over: Option<HandedOver>,
    ) -> Self {
        let sent_to = settings.sent_in_maintenance.get(&node.node.node).cloned();
        Link {
            client: None,
            stream: None,
            watch_supported: true,
            boot_id: None,
            last_mode: None,
            held: handed_over.filter(|_| sent_to.is_some()),
            secure_first: access.secure.is_some() && sent_to.is_none(),
        }
    }

    /// The next observation: the maintenance connection's end, a probe
    /// while there is no connection, else a reading over it.
    async fn observe(
        &mut self,
        access: &Access,
        node: &PlannedNode,
        poll: Duration,
    ) -> Result<Observation, StepError> {
        if let Some(held) = self.held.take() {
            return self.await_maintenance_end(held, access, node, poll).await;
        }
        match self.client.clone() {
            None if self.secure_first => self.connect_first(access, node).await,
            None => self.probe(access, node).await,
            Some(client) => self.sample(&client, poll).await,
        }
    }

    /// The node leaves maintenance mode once it has taken the config, and
    /// closes the connection the config went over: that is waited for, for
    /// up to `poll`, instead of a probe (and its handshake). From then on,
    /// mTLS first. A node still there after that is probed as usual (what
    /// its certificate says now tells a stuck node from a new boot).
    async fn await_maintenance_end(
        &mut self,
        held: HandedOver,
        access: &Access,
        node: &PlannedNode,
        poll: Duration,
    ) -> Result<Observation, StepError> {
        let client = match held {
            HandedOver::Open(client) => client,
            HandedOver::Closed => {
                self.secure_first = access.secure.is_some();
                return Ok(Observation::Lost);
            }
        };
        let Some(closed) = client.held_connection_closed() else {
            return self.probe(access, node).await;
        };
        if tokio::time::timeout(poll, closed).await.is_ok() {
            self.secure_first = access.secure.is_some();
            Ok(Observation::Lost)
        } else {
            drop(client);
            self.probe(access, node).await
        }
    }

    /// mTLS straight away; a failed TCP connect is the node being down,
    /// any other failure is left to a probe to explain.
    async fn connect_first(
        &mut self,
        access: &Access,
        node: &PlannedNode,
    ) -> Result<Observation, StepError> {
        let Some(tls) = access.secure.clone() else {
            return self.probe(access, node).await;
        };
        match NodeClient::connect_secure(node.addr, tls, &access.timeouts).await {
            Ok(c) => Ok(self.connected(c).await),
            Err(e) => match e.connect_failed() {
                Some(refused) => Ok(Observation::Down {
                    refused,
                    reason: e.message(),
                }),
                None => self.probe(access, node).await,
            },
        }
    }

    /// An mTLS connection is open: the status watch on it, if the node has one.
    async fn connected(&mut self, c: NodeClient) -> Observation {
        if self.watch_supported {
            match c.watch_machine_status().await {
                Ok(s) => self.stream = Some(s),
                Err(e) if e.unimplemented() => self.watch_supported = false,
                Err(_) => {}
            }
        }
        self.client = Some(c);
        self.boot_id = None;
        Observation::Connected
    }

    async fn probe(
        &mut self,
        access: &Access,
        node: &PlannedNode,
    ) -> Result<Observation, StepError> {
        let creds = access.talosconfig.as_ref().map(|t| &*t.credentials);
        let mode = probe(node.addr, creds, &access.timeouts).await;
        // A node seen in maintenance is probed, one seen gone is dialled.
        self.secure_first = access.secure.is_some()
            && matches!(
                mode,
                ProbeResult::Unreachable { .. } | ProbeResult::Configured { .. }
            );
        let obs = match &mode {
            ProbeResult::Configured {
                ours: Some(true) | None,
                ..
            } => match connect_secure(access, node).await {
                Ok(c) => self.connected(c).await,
                Err(e) if e.kind == ErrorKind::Trust || e.kind == ErrorKind::Input => {
                    return Err(e);
                }
                // apid answered the probe but not the connection: it is
                // going down or coming up.
                Err(e) => Observation::Down {
                    refused: false,
                    reason: e.message,
                },
            },
            ProbeResult::Configured {
                ours: Some(false), ..
            } => {
                if let Some(err) = unusable_mode(&mode, access) {
                    return Err(err);
                }
                Observation::NotTalos
            }
            ProbeResult::NotTalos { .. } => Observation::NotTalos,
            ProbeResult::Maintenance {
                fingerprint,
                ca_key_id,
            } => Observation::Maintenance(MaintenanceCert {
                fingerprint: fingerprint.clone(),
                ca_key_id: ca_key_id.clone(),
            }),
            ProbeResult::Unreachable { reason } => Observation::Down {
                refused: mode.refused(),
                reason: reason.clone(),
            },
        };
        self.last_mode = Some(mode);
        Ok(obs)
    }

    /// The newest status (from the stream, or polled) and the boot. The
    /// SystemStat call also proves the connection is alive: a watch on a
    /// node that went away can stay silent forever.
    async fn sample(
        &mut self,
        client: &NodeClient,
        poll: Duration,
    ) -> Result<Observation, StepError> {
        let status = match self.stream.as_mut() {
            Some(stream) => match tokio::time::timeout(poll, stream.next()).await {
                Ok(Some(Ok(s))) => Some(s),
                Ok(Some(Err(_)) | None) => return Ok(self.lost()),
                Err(_) => None, // no change within the interval
            },
            None => match client.machine_status().await {
                Ok(s) => Some(s),
                Err(e) if e.class() == ErrorClass::Trust => return Err(talos_err(e)),
                Err(_) => return Ok(self.lost()),
            },
        };
        let boot_time = match client.system_stat().await {
            Ok(stat) => stat.boot_time,
            Err(e) if e.class() == ErrorClass::Trust => return Err(talos_err(e)),
            Err(_) => return Ok(self.lost()),
        };
        // The boot id only needs reading again when the boot time moved.
        let boot_id = match &self.boot_id {
            Some((t, id)) if *t == boot_time => id.clone(),
            _ => match client.boot_id().await {
                Ok(id) => {
                    self.boot_id = Some((boot_time, id.clone()));
                    id
                }
                Err(e) if e.class() == ErrorClass::Trust => return Err(talos_err(e)),
                Err(_) => return Ok(self.lost()),
            },
        };
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(Observation::Sample {
            status,
            boot: BootIdentity { boot_time, boot_id },
            wall,
        })
    }

    fn lost(&mut self) -> Observation {
        self.client = None;
        self.stream = None;
        self.boot_id = None;
        Observation::Lost
    }

    /// The step error for a failure; a steady non-Talos answer is worded by
    /// the probe that saw it.
    fn step_error(&self, f: Failure, access: &Access) -> StepError {
        if f == Failure::NotTalos
            && let Some(mode) = &self.last_mode
            && let Some(err) = unusable_mode(mode, access)
        {
            return err;
        }
        let (message, hint) = f.message_and_hint();
        let kind = match f {
            Failure::NoConfig => ErrorKind::Permanent,
            _ => ErrorKind::Stuck,
        };
        StepError::new(kind, message).with_hint(hint)
    }
}
