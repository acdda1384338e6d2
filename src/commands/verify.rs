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
use tokio::time::Instant;

use crate::cli::{PhaseArg, VerifyArgs};
use crate::exit::Exit;
use crate::output::Report;
use crate::pipeline::{Done, ErrorKind, Event, NodeCtx, RetryPolicy, StepError, run_nodes};
use crate::talos::probe::{NodeMode, probe};
use crate::talos::{MachineStatus, NodeClient, Stage};

use super::cluster::cluster_bootstrapped;
use super::nodeops::{connect_secure, talos_err, unusable_mode};
use super::plan::{Access, Plan, PlannedNode};
use super::{CommandError, Session};

/// Nodes watched at once by verify (unless --serial).
pub const WATCH_PARALLEL: usize = 512;

/// Which state the nodes should reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    PreBootstrap,
    PostBootstrap,
}

/// How a node is waited for.
#[derive(Debug, Clone)]
pub struct WaitSettings {
    pub phase: Phase,
    pub stuck_after: Duration,
    pub poll_interval: Duration,
    /// The config was sent in this run: seeing maintenance again means the install failed.
    pub applied_now: bool,
    /// Node name → SPKI fingerprint of the maintenance certificate its config
    /// was sent to. Talos creates that certificate afresh at every boot, so
    /// a different one means the node rebooted back into maintenance (the
    /// install failed), even when verify never saw it go down.
    pub sent_in_maintenance: HashMap<String, String>,
}

pub async fn run(session: &Session, args: VerifyArgs) -> Result<Exit, CommandError> {
    let plan = Plan::build(&args.inventory, &args.pacing, session.port())?;
    for w in &plan.warnings {
        session.output.events().emit(Event::Warning {
            node: None,
            message: w.clone(),
        });
    }
    let phase = match args.phase {
        PhaseArg::PreBootstrap => Phase::PreBootstrap,
        PhaseArg::PostBootstrap => Phase::PostBootstrap,
        PhaseArg::Auto => decide_phase(session, &plan).await,
    };
    let settings = WaitSettings {
        phase,
        stuck_after: args.stuck_after,
        poll_interval: args.pacing.poll_interval,
        applied_now: false,
        sent_in_maintenance: HashMap::new(),
    };
    let report = verify_nodes(session, &plan, &plan.nodes, settings, "verify").await;
    session.output.report(&report);
    Ok(report.exit())
}

/// Auto phase: bootstrapped if any reachable control plane has etcd.
pub async fn decide_phase(session: &Session, plan: &Plan) -> Phase {
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
pub async fn verify_nodes(
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
    let items = nodes.iter().map(|n| (n.node.clone(), n.clone())).collect();
    let outcomes = run_nodes(&run, items, move |ctx, node| {
        let access = access.clone();
        let settings = settings.clone();
        async move { wait_node(&ctx, &access, &node, &settings).await }
    })
    .await;
    Report::new(command, outcomes, session.elapsed(), None)
}

const NOT_READY_WITHOUT_CNI: &str = "running; Kubernetes node NotReady until a CNI is installed";

/// After bootstrap, a node whose only unmet condition is its Kubernetes
/// node readiness is as far as it can get when the cluster has no CNI yet
/// (`cni: none`, the usual homelab setup that installs Cilium afterwards).
fn waits_only_for_a_cni(status: &MachineStatus, phase: Phase) -> bool {
    phase == Phase::PostBootstrap
        && status.stage == Stage::Running
        && !status.unmet.is_empty()
        && status.unmet.iter().all(|c| c.name == "nodeReady")
}

/// `cluster.network.cni.name: none` in the node's v1alpha1 document.
pub fn config_has_no_cni(raw: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(raw) else {
        return false;
    };
    for doc in yaml_serde::Deserializer::from_str(text) {
        let Ok(v) = <yaml_serde::Value as serde::Deserialize>::deserialize(doc) else {
            continue;
        };
        if let Some(name) = v
            .get("cluster")
            .and_then(|c| c.get("network"))
            .and_then(|n| n.get("cni"))
            .and_then(|c| c.get("name"))
            .and_then(|n| n.as_str())
        {
            return name == "none";
        }
    }
    false
}

/// What the node looks like relative to the goal.
fn goal_reached(status: &MachineStatus, control_plane: bool, phase: Phase) -> Option<String> {
    if status.stage == Stage::Running && status.ready {
        return Some("running, ready".into());
    }
    if phase == Phase::PostBootstrap {
        return None;
    }
    // Before bootstrap only what depends on etcd (and the Kubernetes API it
    // carries) may be missing.
    let etcd_only = |reason: &str| {
        reason
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .all(|s| s.starts_with("etcd") || s.starts_with("kubelet"))
    };
    let waits_on_cluster = status.unmet.iter().all(|c| match c.name.as_str() {
        "services" => etcd_only(&c.reason),
        "staticPods" | "nodeReady" => true,
        _ => false,
    });
    if !waits_on_cluster {
        return None;
    }
    match (control_plane, status.stage) {
        (true, Stage::Booting) => status
            .unmet
            .iter()
            .any(|c| c.name == "services" && c.reason.contains("etcd"))
            .then(|| "ready for bootstrap".into()),
        (false, Stage::Booting | Stage::Running) if !status.unmet.is_empty() => {
            Some("waiting for the control plane".into())
        }
        _ => None,
    }
}

fn describe(status: &MachineStatus) -> String {
    if status.unmet.is_empty() {
        format!(
            "{}{}",
            status.stage,
            if status.ready { ", ready" } else { "" }
        )
    } else {
        let conds: Vec<String> = status
            .unmet
            .iter()
            .map(|c| format!("{}: {}", c.name, c.reason))
            .collect();
        format!("{} ({})", status.stage, conds.join("; "))
    }
}

/// A hint that matches why a node stopped moving.
fn stuck_hint(status: &MachineStatus, control_plane: bool, phase: Phase) -> String {
    for c in &status.unmet {
        match c.name.as_str() {
            "time" => return "time is not in sync: make sure the node reaches its NTP servers (machine.time.servers)".into(),
            "network" => return format!("network is not ready ({}): check addresses, routes and nameservers in the node's config", c.reason),
            "services" if c.reason.contains("etcd") && control_plane && phase == Phase::PostBootstrap => {
                return "etcd is not running on this control plane: it may not have joined yet; check `talstrap bootstrap` ran and the other control planes are reachable".into()
            }
            "services" => return format!("services not up: {}; see `talosctl services` / `talosctl logs` on the node", c.reason),
            "nodeReady" if phase == Phase::PostBootstrap => {
                return "the Kubernetes node is not Ready: with `cni: none` nodes stay NotReady until a CNI is installed".into()
            }
            _ => {}
        }
    }
    match status.stage {
        Stage::Installing => "the install makes no progress: check the console; the installer image must be reachable".into(),
        Stage::Booting if phase == Phase::PostBootstrap => "still booting after the bootstrap: check `talstrap bootstrap` succeeded".into(),
        _ => format!("stage {} has not changed: check the node's console", status.stage),
    }
}

/// How long a state that may be a passing moment (maintenance right after
/// an apply, a handshake cut by a reboot) must last before it counts.
fn transient_grace(settings: &WaitSettings) -> Duration {
    (settings.poll_interval * 5).min(settings.stuck_after)
}

/// Whether `node`, in maintenance now, is no longer in the maintenance
/// session its config was sent to.
fn rebooted_into_maintenance(settings: &WaitSettings, node: &str, fingerprint: &str) -> bool {
    settings
        .sent_in_maintenance
        .get(node)
        .is_some_and(|sent_to| sent_to != fingerprint)
}

struct Tracker {
    last: Option<(Stage, Vec<(String, String)>)>,
    last_status: Option<MachineStatus>,
    last_note: String,
    since: Instant,
    boot_time: Option<u64>,
    reboots: u32,
    left_maintenance: bool,
    unreachable_since: Option<Instant>,
    maintenance_since: Option<Instant>,
    not_talos_since: Option<Instant>,
}

impl Tracker {
    /// Report a state change once, not on every poll.
    fn note(&mut self, ctx: &NodeCtx, text: String) {
        if text != self.last_note {
            ctx.progress("verify", text.clone());
            self.last_note = text;
        }
    }
}

/// Wait for one node. Runs as one observing step (cut at once by Ctrl-C).
pub async fn wait_node(
    ctx: &Arc<NodeCtx>,
    access: &Access,
    node: &PlannedNode,
    settings: &WaitSettings,
) -> Result<Done, StepError> {
    let cp = node.is_control_plane();
    let cni_none = config_has_no_cni(node.entry.config.raw());
    let summary = ctx
        .step_with("verify", &RetryPolicy::once(), |_| async {
            let mut t = Tracker {
                last: None,
                last_status: None,
                last_note: String::new(),
                since: Instant::now(),
                boot_time: None,
                reboots: 0,
                left_maintenance: false,
                unreachable_since: None,
                maintenance_since: None,
                not_talos_since: None,
            };
            let mut client: Option<NodeClient> = None;
            let mut watch: Option<futures_util::stream::BoxStream<'static, Result<MachineStatus, crate::talos::TalosError>>> = None;
            let mut watch_supported = true;
            loop {
                // 1. Get a status: from the watch when there is one, else by polling.
                let status = match (&client, watch.as_mut()) {
                    (Some(_), Some(stream)) => {
                        match tokio::time::timeout(settings.poll_interval, stream.next()).await {
                            Ok(Some(Ok(s))) => Some(s),
                            Ok(Some(Err(_))) | Ok(None) => {
                                watch = None;
                                None
                            }
                            Err(_) => None, // no change within the interval: periodic checks below
                        }
                    }
                    (Some(c), None) => match c.machine_status().await {
                        Ok(s) => Some(s),
                        Err(e) if e.class() == crate::talos::ErrorClass::Trust => return Err(talos_err(e)),
                        Err(_) => {
                            client = None;
                            None
                        }
                    },
                    (None, _) => None,
                };

                if client.is_none() {
                    // 2. (Re)connect, or find out why we cannot.
                    let mode = probe(node.addr, access.talosconfig.as_ref().map(|t| &*t.credentials), &access.timeouts).await;
                    if !matches!(mode, NodeMode::NotTalos { .. }) {
                        t.not_talos_since = None;
                    }
                    let mut pause = settings.poll_interval;
                    match mode {
                        NodeMode::Configured { ours: Some(true), .. } | NodeMode::Configured { ours: None, .. } => {
                            t.left_maintenance = true;
                            t.maintenance_since = None;
                            t.unreachable_since = None;
                            match connect_secure(access, node).await {
                                Ok(c) => {
                                    if watch_supported {
                                        match c.watch_machine_status().await {
                                            Ok(s) => watch = Some(s),
                                            Err(e) if e.unimplemented() => watch_supported = false,
                                            Err(_) => {}
                                        }
                                    }
                                    client = Some(c);
                                    continue; // read the state right away
                                }
                                Err(e) if e.kind == ErrorKind::Trust || e.kind == ErrorKind::Input => return Err(e),
                                Err(_) => {}
                            }
                        }
                        mode @ NodeMode::Configured { ours: Some(false), .. } => {
                            if let Some(err) = unusable_mode(&mode, access) {
                                return Err(err);
                            }
                        }
                        mode @ NodeMode::NotTalos { .. } => {
                            pause = pause.min(Duration::from_millis(250));
                            // A node going down for a reboot cuts handshakes
                            // in flight: one failed handshake proves nothing.
                            // Only a steady non-Talos answer does.
                            let since = *t.not_talos_since.get_or_insert_with(Instant::now);
                            if since.elapsed() >= transient_grace(settings)
                                && let Some(err) = unusable_mode(&mode, access)
                            {
                                return Err(err);
                            }
                        }
                        NodeMode::Maintenance { fingerprint } => {
                            t.unreachable_since = None;
                            if t.left_maintenance || rebooted_into_maintenance(settings, &node.node.node, &fingerprint) {
                                return Err(StepError::new(ErrorKind::Stuck, "back in maintenance mode after the config was applied: the install failed")
                                    .with_hint("Talos could not install: most often machine.install.disk / diskSelector matches no disk. Run `talstrap preflight` for this node to see its disks"));
                            }
                            let since = *t.maintenance_since.get_or_insert_with(Instant::now);
                            // The maintenance service stops right after it takes a config;
                            // allow a few polls before calling the node unconfigured.
                            if since.elapsed() >= transient_grace(settings) {
                                return Err(if settings.applied_now {
                                    StepError::new(ErrorKind::Stuck, "still in maintenance mode after the apply: the node did not take its config")
                                        .with_hint("run `talstrap apply` for this node again and check its console")
                                } else {
                                    StepError::new(ErrorKind::Permanent, "node is in maintenance mode: it has no config")
                                        .with_hint("apply its config first: talstrap apply -n <node>")
                                });
                            }
                            if settings.applied_now { pause = pause.min(Duration::from_millis(250)); }
                            t.note(ctx, "in maintenance mode, waiting for it to take its config".into());
                        }
                        NodeMode::Unreachable { ref reason } => {
                            t.left_maintenance = true;
                            let since = *t.unreachable_since.get_or_insert_with(Instant::now);
                            if since.elapsed() >= settings.stuck_after {
                                return Err(StepError::stuck(format!(
                                    "unreachable for {} ({reason})",
                                    crate::duration::format_duration(since.elapsed())
                                ))
                                .with_hint("the node did not come back: it may have crashed during install or reboot, or its address changed (DHCP). Check its console"));
                            }
                            let why = if mode.refused() { "connection refused" } else { "no answer" };
                            pause = pause.min(Duration::from_millis(250));
                            t.note(ctx, format!("down ({why}): installing or rebooting"));
                        }
                    }
                    tokio::time::sleep(pause).await;
                    continue;
                }

                // 3. Boot time: a changed value means the node rebooted. This
                // call also proves the connection is alive: a watch on a node
                // that went away can stay silent forever.
                if let Some(c) = &client {
                    match c.system_stat().await {
                        Ok(stat) => {
                            if let Some(prev) = t.boot_time
                                && prev != stat.boot_time
                            {
                                t.reboots += 1;
                                ctx.progress("verify", format!("rebooted (boot time {prev} → {})", stat.boot_time));
                                if t.reboots >= 3 {
                                    return Err(StepError::stuck(format!("reboot loop: the node rebooted {} times while being watched", t.reboots))
                                        .with_hint("the node keeps rebooting: check its console for a kernel panic, a failing extension or a bad machine config"));
                                }
                            }
                            t.boot_time = Some(stat.boot_time);
                        }
                        Err(e) if e.class() == crate::talos::ErrorClass::Trust => return Err(talos_err(e)),
                        Err(_) => {
                            client = None;
                            watch = None;
                            continue;
                        }
                    }
                }

                // 4. Evaluate the newest status (or the last one when nothing changed).
                if let Some(status) = status {
                    t.last_status = Some(status);
                }
                if let Some(status) = t.last_status.clone() {
                    if cni_none && waits_only_for_a_cni(&status, settings.phase) {
                        ctx.fact("stage", status.stage.to_string());
                        ctx.fact("ready", false);
                        ctx.warn("the Kubernetes node stays NotReady until a CNI is installed (cluster.network.cni.name: none): install one (e.g. Cilium) next");
                        return Ok(NOT_READY_WITHOUT_CNI.to_string());
                    }
                    if let Some(done) = goal_reached(&status, cp, settings.phase) {
                        ctx.fact("stage", status.stage.to_string());
                        ctx.fact("ready", status.ready);
                        return Ok(done);
                    }
                    let sig = (
                        status.stage,
                        status.unmet.iter().map(|c| (c.name.clone(), c.reason.clone())).collect::<Vec<_>>(),
                    );
                    if t.last.as_ref() != Some(&sig) {
                        t.note(ctx, describe(&status));
                        t.last = Some(sig);
                        t.since = Instant::now();
                    } else if t.since.elapsed() >= settings.stuck_after {
                        ctx.fact("stage", status.stage.to_string());
                        return Err(StepError::stuck(format!(
                            "stuck: {} unchanged for {}",
                            describe(&status),
                            crate::duration::format_duration(t.since.elapsed())
                        ))
                        .with_hint(stuck_hint(&status, cp, settings.phase)));
                    }
                }
                if watch.is_none() && client.is_some() {
                    tokio::time::sleep(settings.poll_interval).await;
                }
            }
        })
        .await?;
    if summary == NOT_READY_WITHOUT_CNI {
        return Ok(Done::Warning(summary));
    }
    Ok(Done::Ok(summary))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::talos::UnmetCondition;

    fn st(stage: Stage, ready: bool, unmet: &[(&str, &str)]) -> MachineStatus {
        MachineStatus {
            stage,
            ready,
            unmet: unmet
                .iter()
                .map(|(n, r)| UnmetCondition {
                    name: n.to_string(),
                    reason: r.to_string(),
                })
                .collect(),
        }
    }

    #[test]
    fn control_plane_waiting_only_for_etcd_is_ready_for_bootstrap() {
        let s = st(
            Stage::Booting,
            false,
            &[
                ("services", "etcd not running"),
                ("staticPods", "kube-apiserver-cp1 pending"),
                ("nodeReady", "node \"cp1\" status is not available yet"),
            ],
        );
        assert!(goal_reached(&s, true, Phase::PreBootstrap).is_some());
        assert!(goal_reached(&s, true, Phase::PostBootstrap).is_none());
    }

    #[test]
    fn other_unmet_conditions_are_not_ready_for_bootstrap() {
        let s = st(
            Stage::Booting,
            false,
            &[
                ("services", "etcd not running"),
                ("time", "time is not synced"),
            ],
        );
        assert!(goal_reached(&s, true, Phase::PreBootstrap).is_none());
        let s = st(
            Stage::Booting,
            false,
            &[("services", "etcd not running, apid not healthy")],
        );
        assert!(goal_reached(&s, true, Phase::PreBootstrap).is_none());
        let s = st(Stage::Installing, true, &[]);
        assert!(goal_reached(&s, true, Phase::PreBootstrap).is_none());
    }

    #[test]
    fn running_and_ready_is_always_the_goal() {
        let s = st(Stage::Running, true, &[]);
        assert!(goal_reached(&s, false, Phase::PostBootstrap).is_some());
        assert!(goal_reached(&s, true, Phase::PreBootstrap).is_some());
        let s = st(
            Stage::Running,
            false,
            &[("nodeReady", "node \"w1\" is not ready")],
        );
        assert!(goal_reached(&s, false, Phase::PostBootstrap).is_none());
    }

    fn wait_settings(sent: &[(&str, &str)]) -> WaitSettings {
        WaitSettings {
            phase: Phase::PreBootstrap,
            stuck_after: Duration::from_secs(300),
            poll_interval: Duration::from_secs(2),
            applied_now: true,
            sent_in_maintenance: sent
                .iter()
                .map(|(n, f)| (n.to_string(), f.to_string()))
                .collect(),
        }
    }

    #[test]
    fn a_new_maintenance_certificate_means_the_node_rebooted() {
        let s = wait_settings(&[("w1", "AAAA")]);
        assert!(rebooted_into_maintenance(&s, "w1", "BBBB"));
        assert!(!rebooted_into_maintenance(&s, "w1", "AAAA"));
        // Nothing known (plain verify, or configured before this run).
        assert!(!rebooted_into_maintenance(&s, "w2", "BBBB"));
    }

    #[test]
    fn transient_states_get_a_few_polls_but_never_more_than_stuck_after() {
        let mut s = wait_settings(&[]);
        assert_eq!(transient_grace(&s), Duration::from_secs(10));
        s.stuck_after = Duration::from_secs(3);
        assert_eq!(transient_grace(&s), Duration::from_secs(3));
    }

    #[test]
    fn without_a_cni_running_not_ready_is_as_far_as_a_node_gets() {
        let s = st(
            Stage::Running,
            false,
            &[("nodeReady", "node \"w1\" is not ready")],
        );
        assert!(waits_only_for_a_cni(&s, Phase::PostBootstrap));
        assert!(!waits_only_for_a_cni(&s, Phase::PreBootstrap));
        let s = st(
            Stage::Running,
            false,
            &[("nodeReady", "x"), ("staticPods", "y")],
        );
        assert!(!waits_only_for_a_cni(&s, Phase::PostBootstrap));
        let cfg = b"version: v1alpha1\nmachine: {type: worker}\ncluster:\n  network:\n    cni:\n      name: none\n";
        assert!(config_has_no_cni(cfg));
        let cfg = b"version: v1alpha1\ncluster: {network: {cni: {name: flannel}}}\n";
        assert!(!config_has_no_cni(cfg));
        assert!(!config_has_no_cni(
            b"version: v1alpha1\nmachine: {type: worker}\n"
        ));
    }

    #[test]
    fn hints_follow_the_cause() {
        let s = st(Stage::Booting, false, &[("time", "time is not synced")]);
        assert!(stuck_hint(&s, true, Phase::PreBootstrap).contains("NTP"));
        let s = st(Stage::Booting, false, &[("services", "etcd not running")]);
        assert!(stuck_hint(&s, true, Phase::PostBootstrap).contains("etcd"));
    }
}
