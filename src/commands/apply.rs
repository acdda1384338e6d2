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

use crate::cli::{ApplyArgs, ApplyModeArg};
use crate::exit::Exit;
use crate::output::Report;
use crate::pipeline::{
    Done, ErrorKind, Event, NodeCtx, NodeOutcome, NodeStatus, RetryPolicy, StepError, run_nodes,
};
use crate::talos::probe::{NodeMode, probe};
use crate::talos::{ApplyMode, ApplyResult, NodeClient};

use super::nodeops::{connect_maintenance, connect_secure, probe_step, talos_err, unusable_mode};
use super::plan::{Access, Plan, PlannedNode};
use super::verify::{
    BootIdentity, ExpectReboot, MaintenanceCert, Phase, WaitSettings, decide_phase, verify_nodes,
};
use super::{CommandError, Session};

fn mode_of(arg: ApplyModeArg) -> ApplyMode {
    match arg {
        ApplyModeArg::Auto => ApplyMode::Auto,
        ApplyModeArg::NoReboot => ApplyMode::NoReboot,
        ApplyModeArg::Reboot => ApplyMode::Reboot,
        ApplyModeArg::Staged => ApplyMode::Staged,
        ApplyModeArg::Try => ApplyMode::Try,
    }
}

#[derive(Clone)]
struct ApplySettings {
    mode: ApplyMode,
    try_timeout: std::time::Duration,
    dry_run: bool,
    retry: RetryPolicy,
}

pub async fn run(session: &Session, args: ApplyArgs) -> Result<Exit, CommandError> {
    if args.dry_run && args.wait {
        return Err(CommandError::input(
            "--dry-run and --wait cannot be combined: a dry run changes nothing to wait for",
        ));
    }
    let plan = Plan::build(&args.inventory, &args.pacing, session.port())?;
    for w in &plan.warnings {
        session.output.events().emit(Event::Warning {
            node: None,
            message: w.clone(),
        });
    }
    let run = session.run_context(plan.retry.clone());
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
    let settings = ApplySettings {
        mode: mode_of(args.mode),
        try_timeout: args.try_timeout,
        dry_run: args.dry_run,
        retry: plan.retry.clone(),
    };
    let items = plan
        .nodes
        .iter()
        .map(|n| (n.node.clone(), n.clone()))
        .collect();
    let outcomes = run_nodes(&run, items, move |ctx, node| {
        let access = access.clone();
        let settings = settings.clone();
        async move { apply_node(&ctx, &access, &node, &settings).await }
    })
    .await;

    if !args.wait {
        let report = Report::new("apply", outcomes, session.elapsed(), None);
        session.output.report(&report);
        return Ok(report.exit());
    }

    // --wait: verify the nodes whose apply succeeded; keep failures as they are.
    let to_verify: Vec<PlannedNode> = plan
        .nodes
        .iter()
        .filter(|n| {
            outcomes
                .iter()
                .any(|o| o.node == n.node && o.status.is_success())
        })
        .cloned()
        .collect();
    let phase = decide_phase(session, &plan).await;
    let settings = WaitSettings {
        phase,
        stuck_after: args.stuck_after,
        poll_interval: args.pacing.poll_interval,
        applied_now: true,
        sent_in_maintenance: sent_in_maintenance(&outcomes),
        expect_reboot: expected_reboots(&outcomes),
    };
    let verified = verify_nodes(session, &plan, &to_verify, settings, "apply --wait").await;
    let mut merged = Vec::with_capacity(outcomes.len());
    for applied in outcomes {
        match verified.nodes.iter().find(|v| v.node == applied.node) {
            Some(v) => {
                let mut o = v.clone();
                let mut steps = applied.steps.clone();
                steps.extend(o.steps);
                o.steps = steps;
                o.attempts = o.attempts.max(applied.attempts);
                o.duration_ms += applied.duration_ms;
                o.summary = format!("{}; {}", applied.summary, o.summary);
                for (k, val) in applied.facts {
                    o.facts.entry(k).or_insert(val);
                }
                o.warnings.splice(0..0, applied.warnings);
                if o.status == NodeStatus::Ok && applied.status == NodeStatus::Warning {
                    o.status = NodeStatus::Warning;
                }
                merged.push(o);
            }
            None => merged.push(applied),
        }
    }
    let not_ready = merged.iter().filter(|o| !o.status.is_success()).count();
    let report = Report::new("apply", merged, session.elapsed(), None)
        .with_messages(next_steps(phase, not_ready));
    session.output.report(&report);
    Ok(report.exit())
}

async fn apply_node(
    ctx: &Arc<NodeCtx>,
    access: &Access,
    node: &PlannedNode,
    s: &ApplySettings,
) -> Result<Done, StepError> {
    let mode = probe_step(ctx, access, node.addr).await?;
    if let Some(err) = unusable_mode(&mode, access) {
        ctx.amend_last_step(crate::pipeline::StepStatus::Failed, err.message.clone());
        return Err(err);
    }
    let data = Arc::new(node.entry.config.raw().to_vec());
    match mode {
        NodeMode::Maintenance {
            fingerprint,
            ca_key_id,
        } => {
            // Lets verify tell a failed install (the node comes back with
            // a certificate from a new boot's CA) from a node still leaving.
            ctx.fact(MAINTENANCE_FINGERPRINT, &fingerprint);
            if let Some(ca) = &ca_key_id {
                ctx.fact(MAINTENANCE_CA, ca);
            }
            if s.mode != ApplyMode::Auto && s.mode != ApplyMode::Try && s.mode != ApplyMode::Reboot
            {
                ctx.warn(format!(
                    "--mode {} is not accepted in maintenance mode; sending auto",
                    s.mode
                ));
            }
            let client = ctx
                .step("connect", |_| connect_maintenance(access, node))
                .await?;
            if s.dry_run {
                let r = dry_run(ctx, &client, &data, ApplyMode::Auto).await?;
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
        NodeMode::Configured { .. } => {
            let client = ctx
                .step("connect", |_| connect_secure(access, node))
                .await?;
            let current = ctx
                .step("compare", |_| {
                    let c = client.clone();
                    async move { c.machine_config().await.map_err(talos_err) }
                })
                .await?;
            // The boot the config goes to, so that verify can see the reboot.
            if let Ok(stat) = client.system_stat().await {
                ctx.fact(BOOT_TIME_BEFORE, stat.boot_time);
                if let Ok(Some(id)) = client.boot_id().await {
                    ctx.fact(BOOT_ID_BEFORE, id);
                }
            }
            if let Some(current) = current
                && same_config(&current, &data)
            {
                ctx.fact("changed", false);
                return Ok(Done::Skipped("unchanged: already runs this config".into()));
            }
            ctx.fact("changed", true);
            if s.dry_run {
                let r = dry_run(ctx, &client, &data, s.mode).await?;
                return Ok(Done::Ok(format!(
                    "would apply ({}): {}",
                    s.mode,
                    first_line(&r)
                )));
            }
            let try_timeout = (s.mode == ApplyMode::Try).then_some(s.try_timeout);
            let maybe_taken = Arc::new(AtomicBool::new(false));
            let sent = ctx
                .mutating_step("apply", &s.retry, |_| {
                    let c = client.clone();
                    let data = data.clone();
                    let mode = s.mode;
                    let maybe_taken = maybe_taken.clone();
                    async move { secure_apply(&c, &data, mode, try_timeout, &maybe_taken).await }
                })
                .await?;
            let result = match sent {
                SecureApply::Replied(result) => result,
                SecureApply::ReplyLost(how) => {
                    ctx.fact("applied_mode", s.mode.to_string());
                    ctx.fact("reply_lost", true);
                    let (detail, summary) = match how {
                        LostReply::Confirmed => (
                            "sent; the reply was lost, and the node now runs this config",
                            "applied over mTLS (reply lost; the node runs this config)",
                        ),
                        LostReply::Rebooting => {
                            ctx.fact(EXPECT_REBOOT, true);
                            (
                                "sent; the connection dropped as the node went down to reboot (verify confirms)",
                                "sent over mTLS (reply lost to the reboot; verify confirms)",
                            )
                        }
                    };
                    ctx.amend_last_step(crate::pipeline::StepStatus::Ok, detail);
                    return Ok(Done::Ok(summary.into()));
                }
            };
            for w in &result.warnings {
                ctx.warn(format!("node: {w}"));
            }
            ctx.fact("applied_mode", result.mode.to_string());
            if result.mode == ApplyMode::Reboot {
                ctx.fact(EXPECT_REBOOT, true);
            }
            if !result.mode_details.is_empty() {
                ctx.fact(
                    "mode_details",
                    super::nodeops::safe_mode_details(&result.mode_details),
                );
            }
            let how = if result.mode == s.mode {
                format!("{}", s.mode)
            } else {
                format!("{} → {}", s.mode, result.mode)
            };
            Ok(Done::Ok(format!("applied over mTLS ({how})")))
        }
        other => Err(StepError::permanent(format!("unexpected mode {other:?}"))),
    }
}

/// How an mTLS apply ended.
enum SecureApply {
    /// The node answered.
    Replied(ApplyResult),
    /// An earlier attempt lost its reply, and the node showed it took it.
    ReplyLost(LostReply),
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
async fn secure_apply(
    client: &NodeClient,
    data: &[u8],
    mode: ApplyMode,
    try_timeout: Option<std::time::Duration>,
    maybe_taken: &AtomicBool,
) -> Result<SecureApply, StepError> {
    let earlier_lost = maybe_taken.load(Ordering::SeqCst);
    if earlier_lost {
        match client.machine_config().await {
            Ok(Some(current)) if same_config(&current, data) => {
                return Ok(SecureApply::ReplyLost(LostReply::Confirmed));
            }
            Ok(_) => {} // not taken (or staged for the next boot): send again
            Err(e) if e.node_down() => return Ok(SecureApply::ReplyLost(LostReply::Rebooting)),
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
        Err(e) => {
            if e.reply_may_be_lost() {
                maybe_taken.store(true, Ordering::SeqCst);
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
                NodeMode::Maintenance { .. } => Err(talos_err(e)),
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
    let r = ctx
        .step("dry-run", |_| {
            let c = client.clone();
            let data = data.clone();
            async move {
                c.apply_configuration(&data, mode, true, None)
                    .await
                    .map_err(talos_err)
            }
        })
        .await?;
    let details = super::nodeops::safe_mode_details(&r.mode_details);
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
pub fn same_config(current: &[u8], wanted: &[u8]) -> bool {
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
