//! The rollout's I/O around the pure decision in `rollout`: the nodes whose
//! change reboots them (deferred by the first, parallel stage of apply) go
//! in waves. On a bootstrapped cluster each node of a wave is applied, seen
//! rebooting and coming back ready, and (a control plane) etcd is checked
//! healthy with every member before the next wave starts. A degraded etcd
//! stops the rollout before it starts unless `--allow-degraded-etcd`.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::time::Instant;

use crate::pipeline::{
    Done, ErrorKind, Event, EventSink, NodeCtx, NodeOutcome, NodeStatus, RetryPolicy, StepError,
    run_nodes,
};

use super::super::Session;
use super::super::plan::{Access, Endpoint, Plan, PlannedNode};
use super::super::verify::{ExpectReboot, Phase, WaitSettings, wait_node};
use super::mode::Reboot;
use super::rollout::{self, Item, Next, Progress};
use super::{
    ApplyPolicy, DEFERRED, NEW_CONFIG, Prepared, gate, prepare_configured, send_configured,
};
use crate::ops::node::talos_err;

/// Fact: the rollout saw this node reboot and come back (verify need not wait again).
pub(super) const ROLLED: &str = "rolled";
/// Fact: what rebooted the node for its change: `apply` (the node itself,
/// REBOOT or AUTO on v1.12/v1.13) or `reboot_call` (talstrap's Reboot call
/// after a NO_REBOOT apply, v1.14).
const REBOOT_VIA: &str = "reboot_via";

/// Drops the first-stage end of deferred nodes: their outcome comes from the rollout.
pub(super) struct HideDeferred(pub Arc<dyn EventSink>);

impl EventSink for HideDeferred {
    fn emit(&self, event: Event) {
        if let Event::NodeFinished { outcome } = &event
            && outcome.status == NodeStatus::Ok
            && outcome.facts.get(DEFERRED) == Some(&Value::Bool(true))
        {
            return;
        }
        self.0.emit(event);
    }
}

/// What the rollout adds to the report.
pub(super) struct RolloutReport {
    pub messages: Vec<String>,
    pub details: Value,
}

pub(super) struct Rolled {
    pub outcomes: Vec<NodeOutcome>,
    pub report: Option<RolloutReport>,
}

/// Apply the deferred nodes of `outcomes` (in plan order) as the rollout
/// decides; every other outcome is kept as it is.
pub(super) async fn roll(
    session: &Session,
    plan: &Plan,
    s: &ApplyPolicy,
    mut outcomes: Vec<NodeOutcome>,
) -> Rolled {
    let deferred: Vec<usize> = (0..outcomes.len())
        .filter(|&i| {
            outcomes[i].status == NodeStatus::Ok
                && outcomes[i].facts.get(DEFERRED) == Some(&Value::Bool(true))
        })
        .collect();
    let nodes: Vec<PlannedNode> = deferred
        .iter()
        .filter_map(|&i| {
            plan.nodes
                .iter()
                .find(|n| n.node == outcomes[i].node)
                .cloned()
        })
        .collect();
    if nodes.is_empty() || nodes.len() != deferred.len() {
        return Rolled {
            outcomes,
            report: None,
        };
    }
    let cps: Vec<Endpoint> = plan
        .control_planes
        .iter()
        .map(PlannedNode::endpoint)
        .collect();
    let views = gate::read(&plan.access, &cps).await;
    let bootstrapped = views.iter().any(|v| {
        v.state.as_deref() == Some("Running") || v.members.as_ref().is_some_and(|m| !m.is_empty())
    });
    let before = gate::assess(&views);
    let mut state = Waves {
        items: nodes
            .iter()
            .map(|n| Item {
                control_plane: n.is_control_plane(),
                reboots: true,
                progress: Progress::Pending,
            })
            .collect(),
        results: vec![None; nodes.len()],
        order: Vec::new(),
        stopped: None,
    };
    if bootstrapped && !before.healthy && !s.allow_degraded_etcd {
        state.stopped = Some(format!("etcd was already degraded ({})", before.summary()));
    } else {
        if bootstrapped && !before.healthy {
            session.output.events().emit(Event::Warning {
                node: None,
                message: format!(
                    "etcd is degraded ({}); rolling anyway (--allow-degraded-etcd): another control plane going down can lose quorum",
                    before.summary()
                ),
            });
        }
        if bootstrapped {
            session.output.events().emit(Event::Info {
                message: format!(
                    "rolling out a change that reboots {} node{}: control planes one at a time, workers {} at a time, each back and etcd healthy before the next",
                    nodes.len(),
                    if nodes.len() == 1 { "" } else { "s" },
                    s.max_unavailable
                ),
            });
        }
        state
            .run(session, plan, s, &nodes, Arc::new(cps), bootstrapped)
            .await;
    }
    state.finish_unstarted(session, plan, &nodes).await;

    for (k, &i) in deferred.iter().enumerate() {
        if let Some(second) = state.results[k].take() {
            let first = std::mem::replace(&mut outcomes[i], second.clone());
            outcomes[i] = merge(first, second);
        }
    }
    let report = state.report(&outcomes, &nodes, bootstrapped, &before);
    Rolled {
        outcomes,
        report: Some(report),
    }
}

/// The rollout in progress.
struct Waves {
    items: Vec<Item>,
    results: Vec<Option<NodeOutcome>>,
    /// Node names, wave by wave.
    order: Vec<Vec<String>>,
    /// Why the rollout stopped early.
    stopped: Option<String>,
}

impl Waves {
    async fn run(
        &mut self,
        session: &Session,
        plan: &Plan,
        s: &ApplyPolicy,
        nodes: &[PlannedNode],
        cps: Arc<Vec<Endpoint>>,
        bootstrapped: bool,
    ) {
        let access = Arc::new(plan.access.clone());
        loop {
            if session.cancel.is_cancelled() || deadline_passed(session) {
                return;
            }
            let wave = match rollout::next_wave(&self.items, bootstrapped, s.max_unavailable) {
                Next::Wave(w) => w,
                Next::Stop { failed } => {
                    let names: Vec<&str> = failed
                        .iter()
                        .map(|&i| nodes[i].node.node.as_str())
                        .collect();
                    self.stopped = Some(format!("{} failed", names.join(", ")));
                    return;
                }
                Next::Finished => return,
            };
            let mut run = session.run_context(plan.retry.clone());
            if bootstrapped {
                run.parallel = wave.len();
            }
            let items = wave
                .iter()
                .map(|&i| (nodes[i].node.clone(), nodes[i].clone()))
                .collect();
            let (access, s2, cps2) = (access.clone(), s.clone(), cps.clone());
            let outs = run_nodes(&run, items, move |ctx, node| {
                let (access, s, cps) = (access.clone(), s2.clone(), cps2.clone());
                async move { roll_node(&ctx, &access, &node, &s, &cps, bootstrapped).await }
            })
            .await;
            self.order
                .push(wave.iter().map(|&i| nodes[i].node.node.clone()).collect());
            for (&i, o) in wave.iter().zip(outs) {
                self.items[i].progress = if o.status.is_success() {
                    Progress::Done
                } else {
                    Progress::Failed
                };
                self.results[i] = Some(o);
            }
        }
    }

    /// Outcomes for the nodes the rollout never reached.
    async fn finish_unstarted(&mut self, session: &Session, plan: &Plan, nodes: &[PlannedNode]) {
        let rest: Vec<usize> = (0..self.items.len())
            .filter(|&i| self.items[i].progress == Progress::Pending)
            .collect();
        if rest.is_empty() {
            return;
        }
        let err = if session.cancel.is_cancelled() {
            StepError::new(
                ErrorKind::Interrupted,
                "not applied: interrupted before its turn in the rollout",
            )
        } else if deadline_passed(session) {
            StepError::new(
                ErrorKind::Deadline,
                "not applied: the deadline came before its turn in the rollout",
            )
        } else {
            let why = self
                .stopped
                .clone()
                .unwrap_or_else(|| "the rollout stopped".into());
            let hint = if why.starts_with("etcd") {
                "bring etcd back first (every control plane up, healthy and a member), or pass --allow-degraded-etcd if you accept that another control plane going down can lose quorum"
            } else {
                "fix the failed node (see its hint), then re-run the same apply: nodes that already run the new config are skipped"
            };
            StepError::permanent(format!("not applied: the rollout stopped ({why})"))
                .with_hint(hint)
        };
        let run = session.run_context(plan.retry.clone());
        let items = rest
            .iter()
            .map(|&i| (nodes[i].node.clone(), err.clone()))
            .collect();
        let outs = run_nodes(&run, items, |_ctx, err: StepError| async move { Err(err) }).await;
        for (&i, mut o) in rest.iter().zip(outs) {
            if let Some(e) = &o.error {
                o.summary = e.message.clone();
            }
            o.facts.insert(NEW_CONFIG.into(), Value::Bool(false));
            self.results[i] = Some(o);
        }
    }

    fn report(
        &self,
        outcomes: &[NodeOutcome],
        nodes: &[PlannedNode],
        bootstrapped: bool,
        before: &gate::Health,
    ) -> RolloutReport {
        let has_new = |o: &NodeOutcome| o.facts.get(NEW_CONFIG) == Some(&Value::Bool(true));
        let new_config: Vec<&str> = outcomes
            .iter()
            .filter(|o| has_new(o))
            .map(|o| o.node.node.as_str())
            .collect();
        let not_applied: Vec<&str> = outcomes
            .iter()
            .filter(|o| !has_new(o))
            .map(|o| o.node.node.as_str())
            .collect();
        let mut messages = Vec::new();
        if let Some(why) = &self.stopped {
            messages.push(format!("rollout stopped: {why}"));
            messages.push(format!(
                "new config on: {}; not applied: {}",
                list(&new_config),
                list(&not_applied)
            ));
        } else if bootstrapped && !self.order.is_empty() {
            let waves: Vec<String> = self.order.iter().map(|w| w.join("+")).collect();
            messages.push(format!("rolled out in order: {}", waves.join(" → ")));
        }
        let rolling: Vec<&str> = nodes.iter().map(|n| n.node.node.as_str()).collect();
        RolloutReport {
            messages,
            details: json!({
                "rollout": {
                    "bootstrapped": bootstrapped,
                    "nodes": rolling,
                    "waves": self.order,
                    "etcd_before": before,
                    "stopped": self.stopped,
                    "new_config": new_config,
                    "not_applied": not_applied,
                }
            }),
        }
    }
}

fn list(names: &[&str]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

fn deadline_passed(session: &Session) -> bool {
    session.deadline().is_some_and(|d| Instant::now() >= d)
}

/// One node's turn: apply, and on a bootstrapped cluster see it reboot,
/// come back ready and (a control plane) etcd healthy again.
async fn roll_node(
    ctx: &Arc<NodeCtx>,
    access: &Access,
    node: &PlannedNode,
    s: &ApplyPolicy,
    cps: &[Endpoint],
    bootstrapped: bool,
) -> Result<Done, StepError> {
    let data = Arc::new(node.entry.config.raw().to_vec());
    // Compare again: another run may have applied it in the meantime.
    let (client, wire, reboot, boot) = match prepare_configured(ctx, access, node, s, &data).await?
    {
        Prepared::Done(done) => return Ok(done),
        Prepared::Send {
            client,
            wire,
            reboot,
            boot,
            ..
        } => (client, wire, reboot, boot),
    };
    let (mut summary, reboot) = send_configured(ctx, &client, &data, s, wire, reboot).await?;
    match reboot {
        Reboot::ByRequest => {
            // Talos v1.14: the apply never reboots; ask for it.
            ctx.mutating_step("reboot", &s.retry, |_| {
                let c = client.clone();
                async move { c.reboot().await.map_err(talos_err) }
            })
            .await?;
            ctx.fact(REBOOT_VIA, "reboot_call");
            summary.push_str(", then the Reboot call (Talos v1.14 has no REBOOT apply mode)");
        }
        Reboot::ByNode => ctx.fact(REBOOT_VIA, "apply"),
        Reboot::No => {}
    }
    if !bootstrapped {
        return Ok(Done::Ok(summary));
    }
    if reboot == Reboot::No {
        return Ok(Done::Ok(format!("{summary}; applied without a reboot")));
    }
    // Verify's watch: ready only once the reboot was seen.
    let wait = WaitSettings {
        phase: Phase::PostBootstrap,
        stuck_after: s.stuck_after,
        poll_interval: s.poll_interval,
        applied_now: false,
        sent_in_maintenance: HashMap::new(),
        expect_reboot: HashMap::from([(node.node.node.clone(), ExpectReboot { since: boot })]),
        handover: Default::default(),
    };
    let (ready, warned) = match wait_node(ctx, access, node, &wait).await? {
        Done::Warning(w) => (w, true),
        Done::Ok(w) | Done::Skipped(w) => (w, false),
    };
    let etcd = if node.is_control_plane() {
        format!("; {}", wait_etcd(ctx, access, cps, s).await?)
    } else {
        String::new()
    };
    ctx.fact(ROLLED, true);
    // wait_node returns only once the expected reboot was seen.
    let text = format!("{summary}; rebooted, {ready}{etcd}");
    Ok(if warned {
        Done::Warning(text)
    } else {
        Done::Ok(text)
    })
}

/// Wait until etcd is healthy with every control plane a member, bounded
/// by `--stuck-after`.
async fn wait_etcd(
    ctx: &Arc<NodeCtx>,
    access: &Access,
    cps: &[Endpoint],
    s: &ApplyPolicy,
) -> Result<String, StepError> {
    let health = ctx
        .step_with("etcd", &RetryPolicy::once(), |_| async {
            let start = Instant::now();
            let mut last = String::new();
            loop {
                let h = gate::assess(&gate::read(access, cps).await);
                if h.healthy {
                    return Ok(h);
                }
                if h.summary() != last {
                    last = h.summary();
                    ctx.progress("etcd", format!("waiting for etcd: {last}"));
                }
                if start.elapsed() >= s.stuck_after {
                    return Err(StepError::stuck(format!(
                        "etcd did not recover within {} after the reboot: {last}",
                        crate::duration::format_duration(start.elapsed())
                    ))
                    .with_hint("the rollout stopped here so that no second control plane goes down; check `talosctl etcd members` and the etcd service on the control planes"));
                }
                tokio::time::sleep(s.poll_interval).await;
            }
        })
        .await?;
    ctx.fact("etcd", &health);
    Ok(health.summary())
}

/// One outcome from two stages of the same node (steps in order).
pub(super) fn merge(first: NodeOutcome, second: NodeOutcome) -> NodeOutcome {
    let deferred = first.facts.get(DEFERRED) == Some(&Value::Bool(true));
    let mut o = second;
    let mut steps = first.steps;
    steps.extend(o.steps);
    o.steps = steps;
    o.attempts = o.attempts.max(first.attempts);
    o.duration_ms += first.duration_ms;
    if !deferred {
        o.summary = format!("{}; {}", first.summary, o.summary);
    }
    for (k, val) in first.facts {
        o.facts.entry(k).or_insert(val);
    }
    o.facts.remove(DEFERRED);
    o.warnings.splice(0..0, first.warnings);
    if o.status == NodeStatus::Ok && first.status == NodeStatus::Warning {
        o.status = NodeStatus::Warning;
    }
    o
}

/// After `apply --wait` on a bootstrapped cluster: control planes that were
/// sent their config in maintenance mode (joining the cluster) are done
/// once they are etcd members. Other outcomes are returned unchanged.
pub(super) async fn wait_joined(
    session: &Session,
    plan: &Plan,
    s: &ApplyPolicy,
    outcomes: Vec<NodeOutcome>,
) -> Vec<NodeOutcome> {
    let joining: Vec<PlannedNode> = plan
        .nodes
        .iter()
        .filter(|n| n.is_control_plane())
        .filter(|n| {
            outcomes.iter().any(|o| {
                o.node == n.node
                    && o.status.is_success()
                    && o.facts.get("insecure") == Some(&Value::Bool(true))
            })
        })
        .cloned()
        .collect();
    if joining.is_empty() {
        return outcomes;
    }
    let cps: Arc<Vec<Endpoint>> = Arc::new(
        plan.control_planes
            .iter()
            .map(PlannedNode::endpoint)
            .collect(),
    );
    let access = Arc::new(plan.access.clone());
    let run = session.run_context(RetryPolicy::once());
    let (stuck_after, poll) = (s.stuck_after, s.poll_interval);
    let items = joining
        .iter()
        .map(|n| (n.node.clone(), n.node.node.clone()))
        .collect();
    let joined = run_nodes(&run, items, move |ctx, name: String| {
        let (access, cps) = (access.clone(), cps.clone());
        async move {
            let text = ctx
                .step_with("etcd-join", &RetryPolicy::once(), |_| async {
                    let start = Instant::now();
                    loop {
                        let views = gate::read(&access, &cps).await;
                        let why = match gate::joined(&views, &name) {
                            Ok(()) => return Ok("joined etcd".to_string()),
                            Err(why) => why,
                        };
                        if start.elapsed() >= stuck_after {
                            return Err(StepError::stuck(format!("did not join etcd within {}: {why}", crate::duration::format_duration(start.elapsed())))
                                .with_hint("the control plane runs but is not an etcd member: check that it reaches the other control planes on 2379/2380 and `talosctl etcd members`"));
                        }
                        tokio::time::sleep(poll).await;
                    }
                })
                .await?;
            ctx.fact("etcd_member", true);
            Ok(Done::Ok(text))
        }
    })
    .await;
    outcomes
        .into_iter()
        .map(|o| match joined.iter().find(|j| j.node == o.node) {
            Some(j) => merge(o, j.clone()),
            None => o,
        })
        .collect()
}
