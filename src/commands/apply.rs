//! `talstrap apply`: send every node its machine config, the right way.
//!
//! Per node: probe the mode, then
//! - maintenance → one insecure `ApplyConfiguration` (AUTO) dialling the node
//!   IP; a connection dropped right after the request (the node stops its
//!   maintenance service to install) counts as "sent", confirmed by verify;
//! - configured by our CA → mTLS with `--mode`, skipped when the node already
//!   runs the identical config;
//! - configured by another CA → refused, never an insecure write.
//!
//! Only transient errors are retried. `--dry-run` asks each node what would
//! change. `--wait` chains verify.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

use crate::exit::Exit;
use crate::output::Report;
use crate::pipeline::{
    Done, ErrorKind, Event, NodeCtx, NodeOutcome, NodeStatus, RetryPolicy, StepError, run_nodes,
};
use crate::settings::ApplySettings;
use crate::talos::probe::{HeldConnection, ProbeResult, probe};
use crate::talos::{ApplyMode, ApplyResult, NodeClient};

use super::plan::{Access, Plan, PlannedNode};
use super::verify::{
    BootIdentity, ExpectReboot, Handover, MaintenanceCert, Phase, WaitSettings, decide_phase,
    verify_nodes,
};
use super::{CommandError, Session};
use crate::ops::node::{
    client_step, connect_maintenance_over, connect_secure, probe_step_holding, talos_err,
    unusable_mode,
};

mod diff;
mod gate;
mod mode;
mod rollout;
mod wave;

use mode::{ModeDecision, ModeQuery, Reboot};

#[derive(Clone)]
struct ApplyPolicy {
    mode: ApplyMode,
    try_timeout: std::time::Duration,
    dry_run: bool,
    retry: RetryPolicy,
    /// Configured nodes whose change reboots them wait for the rollout
    /// (stage 2) instead of being applied in the parallel first stage.
    defer_reboots: bool,
    stuck_after: std::time::Duration,
    poll_interval: std::time::Duration,
    max_unavailable: usize,
    allow_degraded_etcd: bool,
}

/// Fact: the node's change reboots it; it is applied by the rollout.
const DEFERRED: &str = "deferred";
/// Fact: the change is expected to reboot the node.
const REBOOT_EXPECTED: &str = "reboot";
/// Fact: the node runs (or was sent) the new config.
const NEW_CONFIG: &str = "new_config";

pub(crate) async fn run(session: &Session, args: ApplySettings) -> Result<Exit, CommandError> {
    let plan = session.plan(&args.inventory, &args.pacing).await?;
    for w in &plan.warnings {
        session.output.events().emit(Event::Warning {
            node: None,
            message: w.clone(),
        });
    }
    let mut run = session.run_context(plan.retry.clone());
    run.emit(Event::RunStarted {
        command: if args.dry_run {
            "apply --dry-run".into()
        } else {
            "apply".into()
        },
        nodes: plan.nodes.len(),
        parallel: run.parallel,
    });
    let access = Arc::new(plan.access.clone());
    let settings = ApplyPolicy {
        mode: args.mode,
        try_timeout: args.try_timeout,
        dry_run: args.dry_run,
        retry: plan.retry.clone(),
        defer_reboots: !args.dry_run,
        stuck_after: args.stuck_after,
        poll_interval: args.pacing.poll_interval,
        max_unavailable: args.max_unavailable,
        allow_degraded_etcd: args.allow_degraded_etcd,
    };
    // A deferred node finishes only in the rollout: its first-stage end is
    // not an outcome anyone should read.
    run.sink = Arc::new(wave::HideDeferred(run.sink.clone()));
    let items = plan
        .nodes
        .iter()
        .map(|n| (n.node.clone(), n.clone()))
        .collect();
    let stage = settings.clone();
    // With --wait, the maintenance clients are handed to verify, which
    // watches each until its node closes it: no probe while it installs.
    let handover = Arc::new(Handover::default());
    let keep = args.wait.then(|| handover.clone());
    let outcomes = run_nodes(&run, items, move |ctx, node| {
        let access = access.clone();
        let settings = stage.clone();
        let keep = keep.clone();
        async move { apply_node(&ctx, &access, &node, &settings, keep.as_deref()).await }
    })
    .await;
    if args.dry_run {
        let report = diff_report(Report::new("apply", outcomes, session.elapsed(), None));
        session.output.report(&report);
        return Ok(report.exit());
    }
    let rolled = wave::roll(session, &plan, &settings, outcomes).await;
    let (outcomes, rollout) = (rolled.outcomes, rolled.report);

    if !args.wait {
        let mut report = Report::new("apply", outcomes, session.elapsed(), None);
        if let Some(r) = rollout {
            report = report.with_messages(r.messages).with_details(r.details);
        }
        session.output.report(&report);
        return Ok(report.exit());
    }

    let report = wait_for_nodes(
        session, &plan, &args, &settings, outcomes, rollout, handover,
    )
    .await;
    session.output.report(&report);
    Ok(report.exit())
}

/// `--wait`: verify the nodes whose apply succeeded and that the rollout
/// has not already seen come back (keeping failures as they are), then
/// wait for joining control planes to be etcd members.
async fn wait_for_nodes(
    session: &Session,
    plan: &Plan,
    args: &ApplySettings,
    settings: &ApplyPolicy,
    outcomes: Vec<NodeOutcome>,
    rollout: Option<wave::RolloutReport>,
    handover: Arc<Handover>,
) -> Report {
    let to_verify: Vec<PlannedNode> = plan
        .nodes
        .iter()
        .filter(|n| {
            outcomes.iter().any(|o| {
                o.node == n.node
                    && o.status.is_success()
                    && o.facts.get(wave::ROLLED) != Some(&Value::Bool(true))
            })
        })
        .cloned()
        .collect();
    let cps: Vec<&str> = plan
        .control_planes
        .iter()
        .map(|n| n.node.node.as_str())
        .collect();
    let phase = if every_control_plane_was_in_maintenance(&cps, &outcomes) {
        // No need to ask them (a connect and a probe each): a node in
        // maintenance mode runs no etcd, so none can be bootstrapped.
        session.output.events().emit(Event::Info {
            message: "cluster is not bootstrapped yet (every control plane was in maintenance mode): waiting for nodes to be ready for bootstrap".into(),
        });
        Phase::PreBootstrap
    } else {
        decide_phase(session, plan).await
    };
    let wait = WaitSettings {
        phase,
        stuck_after: args.stuck_after,
        poll_interval: args.pacing.poll_interval,
        applied_now: true,
        sent_in_maintenance: sent_in_maintenance(&outcomes),
        expect_reboot: expected_reboots(&outcomes),
        handover,
    };
    let verified = if to_verify.is_empty() {
        Report::new("apply --wait", Vec::new(), session.elapsed(), None)
    } else {
        verify_nodes(session, plan, &to_verify, wait, "apply --wait").await
    };
    let mut merged = Vec::with_capacity(outcomes.len());
    for applied in outcomes {
        match verified.nodes.iter().find(|v| v.node == applied.node) {
            Some(v) => merged.push(wave::merge(applied, v.clone())),
            None => merged.push(applied),
        }
    }
    if phase == Phase::PostBootstrap {
        merged = wave::wait_joined(session, plan, settings, merged).await;
    }
    let not_ready = merged.iter().filter(|o| !o.status.is_success()).count();
    let mut messages = next_steps(phase, not_ready);
    let mut report = Report::new("apply", merged, session.elapsed(), None);
    if let Some(r) = rollout {
        messages.splice(0..0, r.messages);
        report = report.with_details(r.details);
    }
    report.with_messages(messages)
}

async fn apply_node(
    ctx: &Arc<NodeCtx>,
    access: &Access,
    node: &PlannedNode,
    s: &ApplyPolicy,
    handover: Option<&Handover>,
) -> Result<Done, StepError> {
    let (mode, held) = probe_step_holding(ctx, access, node.addr).await?;
    if let Some(err) = unusable_mode(&mode, access) {
        ctx.amend_last_step(crate::pipeline::StepStatus::Failed, err.message.clone());
        return Err(err);
    }
    let data = Arc::new(node.entry.config.raw().to_vec());
    match mode {
        ProbeResult::Maintenance {
            fingerprint,
            ca_key_id,
        } => {
            // Lets verify tell a failed install (the node comes back with
            // a certificate from a new boot's CA) from a node still leaving.
            ctx.fact(MAINTENANCE_FINGERPRINT, &fingerprint);
            if let Some(ca) = &ca_key_id {
                ctx.fact(MAINTENANCE_CA, ca);
            }
            apply_maintenance(ctx, access, node, s, &data, held, handover).await
        }
        ProbeResult::Configured { .. } => {
            match prepare_configured(ctx, access, node, s, &data).await? {
                Prepared::Done(done) => Ok(done),
                Prepared::Send { reboot, .. } if s.defer_reboots && reboot != Reboot::No => {
                    ctx.fact(DEFERRED, true);
                    Ok(Done::Ok(
                        "deferred: the change reboots the node; the rollout applies it".into(),
                    ))
                }
                Prepared::Send {
                    client,
                    wire,
                    reboot,
                    next_reboot,
                    ..
                } => {
                    let (summary, _) =
                        send_configured(ctx, &client, &data, s, wire, reboot).await?;
                    // Only when this run's config went to the node.
                    let sent = summary.starts_with("applied") || summary.starts_with("sent");
                    if next_reboot.is_empty() || !sent {
                        return Ok(Done::Ok(summary));
                    }
                    note_next_reboot(ctx, access, node, &next_reboot);
                    Ok(Done::Warning(format!(
                        "{summary}; {} takes effect at the next reboot",
                        next_reboot.join(", ")
                    )))
                }
            }
        }
        other => Err(StepError::permanent(format!("unexpected mode {other:?}"))),
    }
}

/// Talos v1.14 took a change live that it reads only at boot: say so, how
/// to reboot, and put both in the `next_reboot` fact.
fn note_next_reboot(ctx: &Arc<NodeCtx>, access: &Access, node: &PlannedNode, settings: &[String]) {
    let talosconfig = access
        .talosconfig
        .as_ref()
        .map(|t| format!("--talosconfig {} ", t.path.display()))
        .unwrap_or_default();
    let reboot_with = format!("talosctl {talosconfig}-n {} reboot", node.addr.ip());
    ctx.fact(
        "next_reboot",
        serde_json::json!({ "settings": settings, "reboot_with": reboot_with }),
    );
    ctx.warn(format!(
        "{} takes effect at the next reboot: Talos v1.14 applies it without rebooting (AUTO never reboots there). Reboot the node when it suits you: `{reboot_with}`; or next time apply with --mode reboot, which reboots one node at a time and waits for each",
        settings.join(", ")
    ));
}

/// One insecure apply to a node in maintenance mode (then it installs),
/// over the probe's connection when it is `held`. The client goes to
/// `handover` (verify) once the config is sent.
async fn apply_maintenance(
    ctx: &Arc<NodeCtx>,
    access: &Access,
    node: &PlannedNode,
    s: &ApplyPolicy,
    data: &Arc<Vec<u8>>,
    held: Option<HeldConnection>,
    handover: Option<&Handover>,
) -> Result<Done, StepError> {
    let decision = mode::decide(ModeQuery {
        maintenance: true,
        requested: s.mode,
        version: None,
        differs: true,
        reboot_settings: false,
    });
    if let ModeDecision::Send {
        warning: Some(w), ..
    } = &decision
    {
        ctx.warn(w.clone());
    }
    let mut held = held;
    let client = ctx
        .step("connect", |_| {
            connect_maintenance_over(access, node, held.take())
        })
        .await?;
    if s.dry_run {
        let r = dry_run(ctx, &client, data, ApplyMode::Auto).await?;
        return Ok(Done::Ok(format!(
            "maintenance: would install and boot ({})",
            first_line(&r)
        )));
    }
    let sent = ctx
        .mutating_step("apply", &s.retry, |_| {
            let client = client.clone();
            let data = data.clone();
            async move { maintenance_apply(&client, access, node, &data).await }
        })
        .await?;
    ctx.fact("applied_mode", "auto");
    ctx.fact("insecure", true);
    ctx.fact(NEW_CONFIG, true);
    if let Some(h) = handover {
        h.put(&node.node.node, client);
    }
    for w in &sent.warnings {
        ctx.warn(format!("node: {w}"));
    }
    if sent.reply_lost {
        ctx.amend_last_step(
            crate::pipeline::StepStatus::Ok,
            "sent; the connection dropped as the node left maintenance mode (verify confirms)",
        );
        Ok(Done::Ok("sent (reply lost to the reboot)".into()))
    } else {
        Ok(Done::Ok("applied (maintenance → install)".into()))
    }
}

/// What a configured node needs, once compared with what it runs.
enum Prepared {
    /// Nothing to send (unchanged, or a dry run that ended here).
    Done(Done),
    Send {
        client: NodeClient,
        wire: ApplyMode,
        reboot: Reboot,
        /// The boot the config goes to (None if it could not be read).
        boot: Option<BootIdentity>,
        /// Settings the node takes live but reads only at boot (v1.14).
        next_reboot: Vec<String>,
    },
}

/// Connect, read the config the node runs, and decide the mode. A dry run
/// ends here with the redacted diff.
async fn prepare_configured(
    ctx: &Arc<NodeCtx>,
    access: &Access,
    node: &PlannedNode,
    s: &ApplyPolicy,
    data: &Arc<Vec<u8>>,
) -> Result<Prepared, StepError> {
    let client = ctx
        .step("connect", |_| connect_secure(access, node))
        .await?;
    let current = client_step(ctx, "compare", &client, |c| async move {
        c.machine_config().await
    })
    .await?;
    // The boot the config goes to, so that a reboot can be seen.
    let mut boot = None;
    if let Ok(stat) = client.system_stat().await {
        ctx.fact(BOOT_TIME_BEFORE, stat.boot_time);
        let boot_id = client.boot_id().await.ok().flatten();
        if let Some(id) = &boot_id {
            ctx.fact(BOOT_ID_BEFORE, id);
        }
        boot = Some(BootIdentity {
            boot_time: stat.boot_time,
            boot_id,
        });
    }
    let differs = !current.as_ref().is_some_and(|c| same_config(c, data));
    let diff = current
        .as_ref()
        .and_then(|c| diff::config_diff(c, data).ok());
    // The version rules need it only when something is sent.
    let version = if differs {
        client.talos_version().await.ok().flatten()
    } else {
        None
    };
    let decision = mode::decide(ModeQuery {
        maintenance: false,
        requested: s.mode,
        version: version.as_deref().and_then(mode::minor_version),
        differs,
        // Unknown (unreadable config): assume the worst.
        reboot_settings: diff.as_ref().is_none_or(diff::ConfigDiff::needs_reboot),
    });
    let ModeDecision::Send {
        wire,
        reboot,
        next_reboot,
        ..
    } = decision
    else {
        ctx.fact("changed", false);
        ctx.fact(NEW_CONFIG, true);
        return Ok(Prepared::Done(Done::Skipped(
            "unchanged: already runs this config".into(),
        )));
    };
    ctx.fact("changed", true);
    ctx.fact(REBOOT_EXPECTED, reboot != Reboot::No);
    if s.dry_run {
        // The node validates; its own words are kept in the `dry_run` fact.
        dry_run(ctx, &client, data, wire).await?;
        let what = match &diff {
            Some(d) => {
                ctx.fact("diff", d);
                format!(
                    "{} setting{} in {} document{}",
                    d.changed_settings(),
                    if d.changed_settings() == 1 { "" } else { "s" },
                    d.documents.len(),
                    if d.documents.len() == 1 { "" } else { "s" }
                )
            }
            None => "the running config could not be read".into(),
        };
        let reboots = if reboot == Reboot::No {
            ""
        } else {
            ", reboots"
        };
        return Ok(Prepared::Done(Done::Ok(format!(
            "would apply ({wire}{reboots}): {what}"
        ))));
    }
    let next_reboot = if next_reboot {
        diff.iter()
            .flat_map(|d| &d.documents)
            .flat_map(|d| &d.lines)
            .filter(|l| l.reboot)
            .map(|l| l.path.clone())
            .collect()
    } else {
        Vec::new()
    };
    Ok(Prepared::Send {
        client,
        wire,
        reboot,
        boot,
        next_reboot,
    })
}

/// Send the config over mTLS. Returns the summary and whether the node
/// reboots for it (the reply decides for AUTO).
async fn send_configured(
    ctx: &Arc<NodeCtx>,
    client: &NodeClient,
    data: &Arc<Vec<u8>>,
    s: &ApplyPolicy,
    wire: ApplyMode,
    expected: Reboot,
) -> Result<(String, Reboot), StepError> {
    let try_timeout = (wire == ApplyMode::Try).then_some(s.try_timeout);
    let memory = Arc::new(AttemptMemory::default());
    let sent = ctx
        .mutating_step("apply", &s.retry, |_| {
            let c = client.clone();
            let data = data.clone();
            let memory = memory.clone();
            async move { secure_apply(&c, &data, wire, try_timeout, &memory).await }
        })
        .await?;
    let result = match sent {
        SecureApply::AlreadyThere => {
            ctx.fact(NEW_CONFIG, true);
            ctx.amend_last_step(
                crate::pipeline::StepStatus::Ok,
                "not sent: another apply gave the node this config meanwhile",
            );
            return Ok((
                "unchanged: another apply gave the node this config meanwhile".into(),
                Reboot::No,
            ));
        }
        SecureApply::InFlight => {
            ctx.fact("in_flight", true);
            ctx.fact(EXPECT_REBOOT, true);
            ctx.amend_last_step(
                crate::pipeline::StepStatus::Ok,
                "not sent: the node is rebooting for a config another apply gave it",
            );
            return Ok((
                "not sent: another apply is rebooting the node for its config (re-run to compare once it is back)".into(),
                Reboot::ByNode,
            ));
        }
        SecureApply::Replied(result) => {
            ctx.fact(NEW_CONFIG, true);
            result
        }
        SecureApply::ReplyLost(how) => {
            ctx.fact(NEW_CONFIG, true);
            ctx.fact("applied_mode", wire.to_string());
            ctx.fact("reply_lost", true);
            let (detail, summary) = match how {
                LostReply::Confirmed => (
                    "sent; the reply was lost, and the node now runs this config",
                    "applied over mTLS (reply lost; the node runs this config)",
                ),
                LostReply::Rebooting => (
                    "sent; the connection dropped as the node went down to reboot (verify confirms)",
                    "sent over mTLS (reply lost to the reboot; verify confirms)",
                ),
            };
            ctx.amend_last_step(crate::pipeline::StepStatus::Ok, detail);
            // Going down cut the reply: the node reboots for the config.
            let reboot = if how == LostReply::Rebooting {
                mode::reboots_after(expected, ApplyMode::Reboot)
            } else {
                expected
            };
            if reboot != Reboot::No {
                ctx.fact(EXPECT_REBOOT, true);
            }
            return Ok((summary.into(), reboot));
        }
    };
    for w in &result.warnings {
        ctx.warn(format!("node: {w}"));
    }
    ctx.fact("applied_mode", result.mode.to_string());
    if !result.mode_details.is_empty() {
        ctx.fact(
            "mode_details",
            crate::ops::node::safe_mode_details(&result.mode_details),
        );
    }
    let how = if result.mode == wire {
        format!("{wire}")
    } else {
        format!("{wire} → {}", result.mode)
    };
    let reboot = mode::reboots_after(expected, result.mode);
    if reboot != Reboot::No {
        ctx.fact(EXPECT_REBOOT, true);
    }
    Ok((format!("applied over mTLS ({how})"), reboot))
}

/// The dry-run report: each node's redacted diff in the messages, and the
/// CI contract in the details (`changes_pending`, `pending_nodes`).
fn diff_report(report: Report) -> Report {
    let mut messages = Vec::new();
    let mut pending = Vec::new();
    for n in &report.nodes {
        let changed =
            n.facts.get("changed") != Some(&Value::Bool(false)) && n.status == NodeStatus::Ok;
        if !changed {
            continue;
        }
        pending.push(n.node.node.clone());
        let Some(d) = n
            .facts
            .get("diff")
            .and_then(|d| serde_json::from_value::<diff::ConfigDiff>(d.clone()).ok())
        else {
            continue;
        };
        messages.push(format!(
            "diff for {}{}:",
            n.node.node,
            if d.needs_reboot() {
                " ([reboot]: Talos reboots the node to apply it)"
            } else {
                ""
            }
        ));
        messages.extend(d.render());
    }
    messages.push(if pending.is_empty() {
        "nothing to do: every node already runs its config".to_string()
    } else {
        format!(
            "changes pending on {} node{}: {}",
            pending.len(),
            if pending.len() == 1 { "" } else { "s" },
            pending.join(", ")
        )
    });
    let failed = report.nodes.iter().any(|n| !n.status.is_success());
    let details = serde_json::json!({
        "changes_pending": !pending.is_empty(),
        "pending_nodes": pending,
        "complete": !failed,
    });
    report.with_messages(messages).with_details(details)
}

/// How an mTLS apply ended.
enum SecureApply {
    /// The node answered.
    Replied(ApplyResult),
    /// An earlier attempt lost its reply, and the node showed it took it.
    ReplyLost(LostReply),
    /// Another apply (a concurrent run) gave the node this very config
    /// while this one waited: nothing sent.
    AlreadyThere,
    /// The node refuses: it is rebooting for a config another apply gave
    /// it. Nothing sent; the reboot is awaited, not added to.
    InFlight,
}

/// What earlier attempts of one apply step saw.
#[derive(Default)]
struct AttemptMemory {
    /// A reply may have been lost: the config may have been taken.
    maybe_taken: AtomicBool,
    /// The node was busy with another apply.
    busy: AtomicBool,
    /// The node was down at an attempt although it answered before: it may
    /// be rebooting for another run's apply, so ask what it runs before
    /// sending again.
    seen_down: AtomicBool,
}

/// What showed that a config whose reply was lost had been taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LostReply {
    /// The node runs the config now.
    Confirmed,
    /// The node went down, or says it is rebooting for an applied config.
    Rebooting,
}

/// One attempt of an apply to a configured node.
///
/// An apply with mode auto/reboot ends in a reboot that can take the reply
/// with it, so a dropped connection may mean "taken". After such a drop
/// (`maybe_taken`) the config is never re-sent blindly: first ask what the
/// node runs; if it is down, it is rebooting for our config (verify
/// confirms); Talos ≥ v1.12.x also refuses a second apply while it reboots
/// for the first, which likewise means ours was taken.
///
/// Two runs at once: a node busy with another apply ("in progress") is
/// asked again what it runs before anything is re-sent, and one that
/// reboots for another apply's config is not sent a second one.
async fn secure_apply(
    client: &NodeClient,
    data: &[u8],
    mode: ApplyMode,
    try_timeout: Option<std::time::Duration>,
    memory: &AttemptMemory,
) -> Result<SecureApply, StepError> {
    let earlier_lost = memory.maybe_taken.load(Ordering::SeqCst);
    let was_busy = memory.busy.load(Ordering::SeqCst);
    let was_down = memory.seen_down.load(Ordering::SeqCst);
    if earlier_lost || was_busy || was_down {
        match client.machine_config().await {
            Ok(Some(current)) if same_config(&current, data) => {
                return Ok(if earlier_lost {
                    SecureApply::ReplyLost(LostReply::Confirmed)
                } else {
                    SecureApply::AlreadyThere
                });
            }
            Ok(_) => {} // not taken (or staged for the next boot): send again
            Err(e) if e.node_down() && earlier_lost => {
                return Ok(SecureApply::ReplyLost(LostReply::Rebooting));
            }
            // Down while another apply was in progress: that one reboots it.
            Err(e) if e.node_down() && was_busy => return Ok(SecureApply::InFlight),
            // Still down: ask again at the next attempt, send nothing now.
            Err(e) => return Err(talos_err(e)),
        }
    }
    match client
        .apply_configuration(data, mode, false, try_timeout)
        .await
    {
        Ok(r) => Ok(SecureApply::Replied(r)),
        Err(e) if earlier_lost && e.rebooting_for_applied_config() => {
            Ok(SecureApply::ReplyLost(LostReply::Rebooting))
        }
        Err(e) if e.rebooting_for_applied_config() => Ok(SecureApply::InFlight),
        Err(e) => {
            if e.reply_may_be_lost() {
                memory.maybe_taken.store(true, Ordering::SeqCst);
            }
            if e.apply_in_progress() {
                memory.busy.store(true, Ordering::SeqCst);
            }
            if e.node_down() {
                memory.seen_down.store(true, Ordering::SeqCst);
            }
            Err(talos_err(e))
        }
    }
}

/// What the operator should do after `apply --wait`. Bootstrap is only the
/// next step once every node got ready; otherwise a re-run is, and it is
/// cheap: nodes that already run their config are skipped.
fn next_steps(phase: Phase, not_ready: usize) -> Vec<String> {
    let mut out = Vec::new();
    if phase == Phase::PostBootstrap {
        out.push("cluster already bootstrapped".to_string());
    }
    if not_ready > 0 {
        out.push(format!(
            "{not_ready} node{} not ready: fix the cause (see the hints), then re-run `talstrap apply --wait`; nodes that already run their config are skipped",
            if not_ready == 1 { " is" } else { "s are" }
        ));
    } else if phase == Phase::PreBootstrap {
        out.push("next: talstrap bootstrap".to_string());
    }
    out
}

/// Fact: SPKI fingerprint of the maintenance certificate the config went to.
const MAINTENANCE_FINGERPRINT: &str = "fingerprint";

/// Fact: key id of the per-boot CA that issued that certificate.
const MAINTENANCE_CA: &str = "maintenance_ca";
/// Facts: the boot a configured node's config was sent to.
const BOOT_TIME_BEFORE: &str = "boot_time_before";
const BOOT_ID_BEFORE: &str = "boot_id_before";
/// Fact: the apply reboots the node (the reply said so, or the reboot cut it).
const EXPECT_REBOOT: &str = "expect_reboot";

/// Node name → the maintenance certificate, for the nodes that were sent
/// their config in maintenance mode in this run.
fn sent_in_maintenance(outcomes: &[NodeOutcome]) -> HashMap<String, MaintenanceCert> {
    outcomes
        .iter()
        .filter(|o| o.status.is_success() && o.facts.get("insecure") == Some(&Value::Bool(true)))
        .filter_map(|o| {
            let f = o.facts.get(MAINTENANCE_FINGERPRINT)?.as_str()?;
            let ca = o.facts.get(MAINTENANCE_CA).and_then(Value::as_str);
            Some((
                o.node.node.clone(),
                MaintenanceCert {
                    fingerprint: f.to_string(),
                    ca_key_id: ca.map(str::to_string),
                },
            ))
        })
        .collect()
}

/// Whether this run's probes found every control plane of the inventory
/// (`cps`, by name) in maintenance mode, whatever came of the apply.
fn every_control_plane_was_in_maintenance(cps: &[&str], outcomes: &[NodeOutcome]) -> bool {
    !cps.is_empty()
        && cps.iter().all(|cp| {
            outcomes.iter().any(|o| {
                o.node.node == *cp
                    && o.facts.get("mode").and_then(Value::as_str) == Some("maintenance")
            })
        })
}

/// Node name → the reboot its apply asked for, with the boot it was sent to.
fn expected_reboots(outcomes: &[NodeOutcome]) -> HashMap<String, ExpectReboot> {
    outcomes
        .iter()
        .filter(|o| o.status.is_success() && o.facts.get(EXPECT_REBOOT) == Some(&Value::Bool(true)))
        .map(|o| {
            let since = o
                .facts
                .get(BOOT_TIME_BEFORE)
                .and_then(Value::as_u64)
                .map(|boot_time| BootIdentity {
                    boot_time,
                    boot_id: o
                        .facts
                        .get(BOOT_ID_BEFORE)
                        .and_then(Value::as_str)
                        .map(str::to_string),
                });
            (o.node.node.clone(), ExpectReboot { since })
        })
        .collect()
}

struct Sent {
    warnings: Vec<String>,
    reply_lost: bool,
}

/// One insecure apply. A transport failure after the request may mean the
/// node took the config and stopped its maintenance service: re-probe, and
/// count it as sent unless the node is still in maintenance mode.
async fn maintenance_apply(
    client: &NodeClient,
    access: &Access,
    node: &PlannedNode,
    data: &[u8],
) -> Result<Sent, StepError> {
    match client
        .apply_configuration(data, ApplyMode::Auto, false, None)
        .await
    {
        Ok(r) => Ok(Sent {
            warnings: r.warnings,
            reply_lost: false,
        }),
        Err(e) if e.is_retryable() => {
            let after = probe(node.addr, None, &access.timeouts).await;
            match after {
                ProbeResult::Maintenance { .. } => Err(talos_err(e)),
                _ => Ok(Sent {
                    warnings: Vec::new(),
                    reply_lost: true,
                }),
            }
        }
        Err(e) => {
            let err = talos_err(e);
            if err.kind == ErrorKind::Input {
                Err(err.with_hint("the node rejected the config: run `talstrap preflight --server-dry-run` to see its validation, then fix talconfig.yaml and re-run talhelper genconfig"))
            } else {
                Err(err)
            }
        }
    }
}

async fn dry_run(
    ctx: &NodeCtx,
    client: &NodeClient,
    data: &Arc<Vec<u8>>,
    mode: ApplyMode,
) -> Result<String, StepError> {
    let r = client_step(ctx, "dry-run", client, |c| {
        let data = data.clone();
        async move { c.apply_configuration(&data, mode, true, None).await }
    })
    .await?;
    let details = crate::ops::node::safe_mode_details(&r.mode_details);
    ctx.fact("dry_run", &details);
    Ok(details)
}

fn first_line(details: &str) -> String {
    if details.is_empty() {
        "no details".to_string()
    } else {
        details.to_string()
    }
}

/// Identical bytes, or the same YAML documents once parsed (the node may
/// re-serialise what it stores).
pub(crate) fn same_config(current: &[u8], wanted: &[u8]) -> bool {
    if current == wanted {
        return true;
    }
    let parse = |b: &[u8]| -> Option<Vec<yaml_serde::Value>> {
        let text = std::str::from_utf8(b).ok()?;
        let mut docs = Vec::new();
        for doc in yaml_serde::Deserializer::from_str(text) {
            let v: yaml_serde::Value = serde::Deserialize::deserialize(doc).ok()?;
            if !v.is_null() {
                docs.push(v);
            }
        }
        Some(docs)
    };
    match (parse(current), parse(wanted)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_compare_by_content() {
        let a = b"version: v1alpha1\nmachine:\n  type: worker\n---\napiVersion: v1alpha1\nkind: HostnameConfig\nhostname: w1\n";
        let b = b"version: v1alpha1\nmachine: {type: worker}\n---\nkind: HostnameConfig\napiVersion: v1alpha1\nhostname: w1\n";
        assert!(same_config(a, b));
        let c = b"version: v1alpha1\nmachine: {type: controlplane}\n";
        assert!(!same_config(a, c));
        assert!(same_config(a, a));
    }

    #[test]
    fn bootstrap_is_the_next_step_only_when_every_node_is_ready() {
        assert_eq!(
            next_steps(Phase::PreBootstrap, 0),
            ["next: talstrap bootstrap"]
        );
        let failed = next_steps(Phase::PreBootstrap, 2);
        assert_eq!(failed.len(), 1);
        assert!(failed[0].starts_with("2 nodes are not ready"), "{failed:?}");
        assert!(failed[0].contains("re-run `talstrap apply --wait`"));
        assert_eq!(
            next_steps(Phase::PostBootstrap, 0),
            ["cluster already bootstrapped"]
        );
        let post = next_steps(Phase::PostBootstrap, 1);
        assert_eq!(post[0], "cluster already bootstrapped");
        assert!(post[1].starts_with("1 node is not ready"), "{post:?}");
    }

    fn outcome(name: &str, status: NodeStatus, facts: serde_json::Value) -> NodeOutcome {
        NodeOutcome {
            node: crate::pipeline::NodeRef::new(name, [127, 0, 0, 1].into(), None),
            status,
            summary: String::new(),
            attempts: 1,
            duration_ms: 0,
            steps: vec![],
            error: None,
            hint: None,
            warnings: vec![],
            facts: facts.as_object().cloned().unwrap_or_default(),
        }
    }

    #[test]
    fn the_phase_is_known_only_when_every_control_plane_was_in_maintenance() {
        let m = |name, status| outcome(name, status, serde_json::json!({"mode": "maintenance"}));
        let configured = outcome(
            "cp2",
            NodeStatus::Ok,
            serde_json::json!({"mode": "configured"}),
        );
        let cps = ["cp1", "cp2"];
        assert!(every_control_plane_was_in_maintenance(
            &cps,
            &[
                m("cp1", NodeStatus::Ok),
                m("cp2", NodeStatus::Failed),
                m("w1", NodeStatus::Ok)
            ]
        ));
        // One was configured already: it may run etcd.
        assert!(!every_control_plane_was_in_maintenance(
            &cps,
            &[m("cp1", NodeStatus::Ok), configured]
        ));
        // One was left out of the run (-n, --role), or never probed.
        assert!(!every_control_plane_was_in_maintenance(
            &cps,
            &[m("cp1", NodeStatus::Ok)]
        ));
        assert!(!every_control_plane_was_in_maintenance(
            &cps,
            &[
                m("cp1", NodeStatus::Ok),
                outcome("cp2", NodeStatus::Failed, serde_json::json!({}))
            ]
        ));
        // No control plane in the inventory: nothing to conclude from.
        assert!(!every_control_plane_was_in_maintenance(
            &[],
            &[m("w1", NodeStatus::Ok)]
        ));
    }

    #[test]
    fn only_configs_sent_in_maintenance_keep_their_fingerprint() {
        let outcomes = vec![
            outcome(
                "cp1",
                NodeStatus::Ok,
                serde_json::json!({"insecure": true, "fingerprint": "AAA"}),
            ),
            // Dry run: probed in maintenance, nothing sent.
            outcome(
                "cp2",
                NodeStatus::Ok,
                serde_json::json!({"fingerprint": "BBB"}),
            ),
            // The apply failed.
            outcome(
                "w1",
                NodeStatus::Failed,
                serde_json::json!({"insecure": true, "fingerprint": "CCC"}),
            ),
            // Configured node, applied over mTLS.
            outcome("w2", NodeStatus::Ok, serde_json::json!({"changed": true})),
        ];
        let sent = sent_in_maintenance(&outcomes);
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent["cp1"].fingerprint, "AAA");
        assert_eq!(sent["cp1"].ca_key_id, None);
    }

    #[test]
    fn a_reboot_is_expected_where_the_apply_said_so_with_the_boot_it_left() {
        let outcomes = vec![
            outcome(
                "cp1",
                NodeStatus::Ok,
                serde_json::json!({"expect_reboot": true, "boot_time_before": 1000, "boot_id_before": "b0"}),
            ),
            outcome(
                "cp2",
                NodeStatus::Ok,
                serde_json::json!({"expect_reboot": true}),
            ),
            outcome(
                "w1",
                NodeStatus::Ok,
                serde_json::json!({"boot_time_before": 5}),
            ),
            outcome(
                "w2",
                NodeStatus::Failed,
                serde_json::json!({"expect_reboot": true}),
            ),
        ];
        let e = expected_reboots(&outcomes);
        assert_eq!(e.len(), 2, "{e:?}");
        assert_eq!(
            e["cp1"].since,
            Some(BootIdentity {
                boot_time: 1000,
                boot_id: Some("b0".into())
            })
        );
        assert_eq!(e["cp2"].since, None);
    }
}
