//! `talstrap bootstrap`: bootstrap etcd exactly once, on exactly one control
//! plane, then wait for it to be healthy and fetch the kubeconfig.
//!
//! Safety rules, in order:
//! 1. **Guard, fail closed**: every control plane of the inventory is asked
//!    about etcd (service state, local member, member list). If any has it,
//!    the cluster is already bootstrapped: success, no Bootstrap call. If
//!    any cannot be asked, nothing is sent (it may be the one with etcd),
//!    unless `--allow-unreachable-control-planes` accepts that risk.
//! 2. **One target**: `-n NODE`, else the first control plane in talconfig
//!    order, else (`--auto`) the elected one.
//! 3. **One sender per cluster**: a local lock keyed by the cluster's CA is
//!    held from the last guard round through the send until etcd is
//!    healthy, so concurrent runs on one machine converge; a target that is
//!    not the first control plane waits a settle window per rank and looks
//!    again, so runs on different machines rarely both send.
//! 4. **Send policy** (`send`): bounded retries of "not yet"; no
//!    resend within `--resend-after` of a request that may have landed; a
//!    worker or a config without an etcd CA is final.
//! 5. **After**: every control plane is asked again, and two etcd clusters
//!    are a loud failure with the recovery steps, never a success.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::exit::Exit;
use crate::output::Report;
use crate::pipeline::{Done, ErrorKind, Event, NodeCtx, RetryPolicy, StepError, run_nodes};
use crate::settings::BootstrapSettings;
use crate::settings::MAX_RETRY_DELAY;

use self::election::{Election, ElectionSettings, elect_leader};
use self::flow::{
    BootstrapPolicy, Target, check_clusters, connect_target, guard_until_answered, keep_or_write,
    send_under_lock, wait_etcd_healthy, wait_members,
};
use self::guard::Verdict;
use self::kubeconfig_file::KubeconfigPlan;
use super::plan::{Access, Endpoint};
use super::{CommandError, Session};

mod cluster_lock;
pub(crate) mod election;
mod flow;
mod guard;
mod kubeconfig_file;
mod send;

/// What the inventory gave: credentials, every control plane, the selection.
struct Inputs {
    access: Access,
    control_planes: Vec<Target>,
    selected: Vec<super::plan::PlannedNode>,
    warnings: Vec<String>,
    scan_mode: bool,
    cluster_ca: Option<Vec<u8>>,
    planned_cps: Vec<super::plan::PlannedNode>,
}

pub(crate) async fn run(session: &Session, args: BootstrapSettings) -> Result<Exit, CommandError> {
    let inputs = load_inputs(session, &args).await?;
    let kubeconfig = match &args.kubeconfig {
        Some(p) => Some(
            kubeconfig_file::plan(p, args.force, inputs.cluster_ca.as_deref())
                .map_err(CommandError::input)?,
        ),
        None => None,
    };
    for w in &inputs.warnings {
        session.output.events().emit(Event::Warning {
            node: None,
            message: w.clone(),
        });
    }
    let quorum = quorum(&args, &inputs)?;
    let mut details = serde_json::Map::new();
    let mut messages = Vec::new();
    let mut discovered = Vec::new();
    let target = match pick_target(
        session,
        &args,
        &inputs,
        quorum,
        (&mut details, &mut discovered),
    )
    .await?
    {
        Ok(t) => t,
        Err((exit, message)) => {
            messages.push(message);
            return Ok(report(session, Vec::new(), messages, details, Some(exit)));
        }
    };
    details.insert(
        "target".into(),
        json!({"node": target.ep.node.node, "ip": target.ep.node.ip}),
    );
    let settings = Arc::new(settings(&args, &inputs, &target, kubeconfig));
    let run = session.run_context(settings.retry.clone());
    run.emit(Event::RunStarted {
        command: "bootstrap".into(),
        nodes: 1,
        parallel: 1,
    });
    let guard_set = Arc::new(guard_set(&inputs.control_planes, discovered, &target));
    let access = Arc::new(inputs.access);
    let outcomes = run_nodes(&run, vec![(target.ep.node.clone(), target.clone())], {
        move |ctx, target| {
            let (access, settings, guard_set) =
                (access.clone(), settings.clone(), guard_set.clone());
            async move { bootstrap_node(&ctx, &access, &target, &guard_set, &settings).await }
        }
    })
    .await;
    let mut overall = None;
    if let Some(o) = outcomes.first() {
        for key in ["guard", "clusters"] {
            if let Some(g) = o.facts.get(key) {
                details.insert(key.into(), g.clone());
            }
        }
        // Say it at run level too (as `--auto` does): the operator's first
        // question is "did this run bootstrap anything, and who has etcd?".
        if let Some(proof) = o.facts.get("proof").and_then(|p| p.as_str()) {
            messages.push(format!(
                "cluster already bootstrapped: {proof}; no Bootstrap call was made"
            ));
        }
        if let Some(p) = o.facts.get("kubeconfig").and_then(|p| p.as_str()) {
            let kept = o.facts.get("kubeconfig_kept").is_some();
            messages.push(if kept {
                format!("kubeconfig kept: {p} already holds this cluster's kubeconfig")
            } else {
                format!("kubeconfig written to {p}")
            });
        }
        if o.error.as_ref().is_some_and(|e| e.kind == ErrorKind::Input) {
            overall = Some(Exit::Input);
        }
    }
    Ok(report(session, outcomes, messages, details, overall))
}

fn report(
    session: &Session,
    outcomes: Vec<crate::pipeline::NodeOutcome>,
    messages: Vec<String>,
    details: serde_json::Map<String, serde_json::Value>,
    overall: Option<Exit>,
) -> Exit {
    let report = Report::new("bootstrap", outcomes, session.elapsed(), overall)
        .with_messages(messages)
        .with_details(serde_json::Value::Object(details));
    session.output.report(&report);
    report.exit()
}

fn settings(
    args: &BootstrapSettings,
    inputs: &Inputs,
    target: &Target,
    kubeconfig: Option<KubeconfigPlan>,
) -> BootstrapPolicy {
    // Rank in talconfig order: the first control plane (the default target)
    // sends at once; a later one waits a settle window per rank first.
    let rank = inputs
        .control_planes
        .iter()
        .position(|c| c.ep.node.ip == target.ep.node.ip)
        .unwrap_or(0);
    BootstrapPolicy {
        etcd_timeout: args.etcd_timeout,
        wait_members: args.wait_members,
        kubeconfig,
        poll_interval: args.pacing.poll_interval,
        resend_after: args.resend_after,
        retry: RetryPolicy {
            attempts: args.pacing.attempts,
            base: args.pacing.retry_delay.min(MAX_RETRY_DELAY),
            max: MAX_RETRY_DELAY,
        },
        allow_unasked: args.allow_unreachable_control_planes,
        settle: rank as u32 * settle_window(args.pacing.poll_interval),
        lock_key: inputs
            .access
            .talosconfig
            .as_ref()
            .and_then(|t| {
                t.credentials
                    .ca_certs()
                    .first()
                    .map(|c| c.as_ref().to_vec())
            })
            .and_then(|der| self::cluster_lock::cluster_key(&der)),
        target_config: inputs
            .selected
            .iter()
            .chain(&inputs.planned_cps)
            .find(|n| n.node.ip == target.ep.node.ip)
            .map(|n| n.entry.config_path.clone()),
    }
}

/// Every control plane known to the run: the inventory's, then those an
/// `--auto --cidr` scan found that may run etcd, then the target; one entry
/// per address. The guard asks each of them before sending.
fn guard_set(inventory: &[Target], discovered: Vec<Target>, target: &Target) -> Vec<Target> {
    let mut set: Vec<Target> = Vec::new();
    let extra = discovered
        .into_iter()
        .chain(std::iter::once(target.clone()));
    for t in inventory.iter().cloned().chain(extra) {
        if !set.iter().any(|s| s.ep.node.ip == t.ep.node.ip) {
            set.push(t);
        }
    }
    set
}

/// How long a later-ranked target waits for an earlier one's etcd to show.
pub(crate) fn settle_window(poll: Duration) -> Duration {
    (poll * 5).max(Duration::from_secs(2))
}

async fn load_inputs(session: &Session, args: &BootstrapSettings) -> Result<Inputs, CommandError> {
    let scan_mode = !args.cidr.is_empty();
    let inputs = if scan_mode
        && args.inventory.talconfig.is_none()
        && args.inventory.node_configs.is_empty()
        && !std::path::Path::new("talconfig.yaml").exists()
    {
        let tc = super::plan::find_talosconfig(&args.inventory, None)?;
        let access =
            super::plan::build_access(tc, &args.inventory.cert_fingerprints, &args.pacing)?;
        Inputs {
            access,
            control_planes: Vec::new(),
            selected: Vec::new(),
            warnings: Vec::new(),
            scan_mode,
            cluster_ca: None,
            planned_cps: Vec::new(),
        }
    } else {
        let plan = session.plan(&args.inventory, &args.pacing).await?;
        if let Some(n) = plan
            .control_planes
            .iter()
            .find(|n| !kubeconfig_file::has_etcd_ca(n.entry.config.raw()))
        {
            return Err(CommandError::input(format!(
                "{}: cluster.etcd.ca is not set in the config of control plane {}: Talos cannot create etcd from it (v1.14 refuses Bootstrap with InvalidArgument); regenerate the configs with the cluster secrets",
                n.entry.config_path.display(),
                n.node.node
            )));
        }
        let cluster_ca = plan
            .control_planes
            .iter()
            .find_map(|n| kubeconfig_file::cluster_ca_of_config(n.entry.config.raw()));
        Inputs {
            control_planes: plan.control_planes.iter().map(Target::of).collect(),
            planned_cps: plan.control_planes.clone(),
            selected: plan.nodes.clone(),
            access: plan.access,
            warnings: plan.warnings,
            scan_mode,
            cluster_ca,
        }
    };
    if inputs.access.secure.is_none() {
        return Err(CommandError::input(
            "bootstrap needs a talosconfig (the nodes are configured and require a client certificate): pass --talosconfig or set TALOSCONFIG",
        ));
    }
    if !scan_mode && inputs.control_planes.is_empty() {
        return Err(CommandError::input(
            "the inventory has no control plane (controlPlane: true) to bootstrap",
        ));
    }
    Ok(inputs)
}

fn quorum(args: &BootstrapSettings, inputs: &Inputs) -> Result<usize, CommandError> {
    let quorum = match (args.quorum, inputs.scan_mode) {
        (Some(q), _) => q as usize,
        (None, true) => {
            return Err(CommandError::input(
                "--auto --cidr needs --quorum N: how many control planes must be present before electing",
            ));
        }
        (None, false) => inputs.control_planes.len(),
    };
    if args.auto && !inputs.scan_mode && quorum > inputs.control_planes.len() {
        return Err(CommandError::input(format!(
            "--quorum {quorum} can never be reached: the inventory has only {} control planes",
            inputs.control_planes.len()
        )));
    }
    Ok(quorum)
}

/// The one target: elected, named with -n, or the first control plane.
/// `Ok(Err((exit, message)))` ends the run without a node pipeline.
async fn pick_target(
    session: &Session,
    args: &BootstrapSettings,
    inputs: &Inputs,
    quorum: usize,
    (details, discovered): (
        &mut serde_json::Map<String, serde_json::Value>,
        &mut Vec<Target>,
    ),
) -> Result<Result<Target, (Exit, String)>, CommandError> {
    if args.auto {
        let es = ElectionSettings {
            quorum,
            cidrs: args.cidr.clone(),
            port: session.port(),
            poll_interval: args.pacing.poll_interval,
            allow_large: false,
        };
        let cps: Vec<Endpoint> = inputs.control_planes.iter().map(|c| c.ep.clone()).collect();
        return Ok(
            match elect_leader(session, &inputs.access, &cps, &es, details).await? {
                Election::Leader { leader, peers } => {
                    discovered.extend(peers.into_iter().map(Target::bare));
                    Ok(inputs
                        .control_planes
                        .iter()
                        .find(|c| c.ep.node.ip == leader.node.ip)
                        .cloned()
                        .unwrap_or_else(|| Target::bare(leader)))
                }
                // Someone already has etcd: the election refused, which means "bootstrapped".
                Election::AlreadyBootstrapped(reason) => Err((
                    Exit::Success,
                    format!("cluster already bootstrapped: {reason}; no Bootstrap call was made"),
                )),
                Election::Unsettled { exit, reason } => Err((exit, reason)),
            },
        );
    }
    if args.inventory.nodes.is_empty() {
        return Ok(Ok(inputs.control_planes[0].clone()));
    }
    match inputs.selected.as_slice() {
        [one] if one.is_control_plane() => Ok(Ok(Target::of(one))),
        [one] => Err(CommandError::input(format!(
            "{} is a worker: bootstrap runs on a control plane",
            one.node.node
        ))),
        many => Err(CommandError::input(format!(
            "bootstrap runs on exactly one control plane, but -n selects {}: {}",
            many.len(),
            many.iter()
                .map(|n| n.node.node.clone())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The whole bootstrap of one target, as steps of one node pipeline.
pub(crate) async fn bootstrap_node(
    ctx: &Arc<NodeCtx>,
    access: &Access,
    target: &Target,
    guard_set: &[Target],
    s: &BootstrapPolicy,
) -> Result<Done, StepError> {
    // 1. Guard (fail closed), retried while control planes cannot be asked.
    let mut verdict =
        guard_until_answered(ctx, "guard", access, (guard_set, target.ep.node.ip), s).await?;
    let mut etcd_node = target.clone();
    let mut client = None;
    if matches!(verdict, Verdict::Send { .. }) {
        let c = connect_target(ctx, access, target).await?;
        // 2-4. Lock, last look, send, etcd healthy.
        verdict = send_under_lock(ctx, access, &c, target, guard_set, s).await?;
        client = Some(c);
    }
    let already = match &verdict {
        Verdict::Bootstrapped { ip, proof } => {
            ctx.progress("guard", format!("already bootstrapped: {proof}"));
            ctx.fact("already_bootstrapped", true);
            ctx.fact("proof", proof);
            ctx.fact("bootstrap_calls", 0);
            ctx.skip_step("bootstrap", format!("already bootstrapped: {proof}"));
            if let Some(t) = guard_set.iter().find(|t| t.ep.node.ip == *ip) {
                etcd_node = t.clone();
            }
            client = None;
            Some(proof.clone())
        }
        _ => None,
    };
    let client = match client {
        Some(c) => c,
        None => {
            let c = connect_target(ctx, access, &etcd_node).await?;
            wait_etcd_healthy(ctx, &c, s).await?;
            c
        }
    };

    // 5. Optionally, every control plane joined.
    if s.wait_members && guard_set.len() > 1 {
        wait_members(ctx, &client, guard_set, s).await?;
    }
    // 6. Exactly one etcd cluster, from every control plane's own view.
    check_clusters(ctx, access, guard_set, &etcd_node, s).await?;

    // 7. kubeconfig.
    if let Some(plan) = &s.kubeconfig {
        if ctx.cancelled() {
            return Err(StepError::new(
                ErrorKind::Interrupted,
                "interrupted before writing the kubeconfig",
            ));
        }
        keep_or_write(ctx, &client, plan).await?;
    }

    Ok(match already {
        Some(proof) => Done::Skipped(format!("already bootstrapped: {proof}; no Bootstrap sent")),
        None => Done::Ok(format!(
            "bootstrapped; etcd healthy{}",
            if s.wait_members {
                ", all control planes joined"
            } else {
                ""
            }
        )),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::pipeline::NodeRef;

    fn t(name: &str, last: u8) -> Target {
        let ip = std::net::IpAddr::from([127, 0, 0, last]);
        Target::bare(Endpoint {
            node: NodeRef::new(name, ip, Some("controlplane".into())),
            addr: std::net::SocketAddr::new(ip, 50000),
        })
    }

    fn names(set: &[Target]) -> Vec<String> {
        set.iter().map(|t| t.ep.node.node.clone()).collect()
    }

    #[test]
    fn the_guard_asks_every_known_control_plane_once() {
        // Inventory only: the target is one of them.
        let inv = [t("cp1", 1), t("cp2", 2)];
        assert_eq!(names(&guard_set(&inv, Vec::new(), &inv[0])), ["cp1", "cp2"]);
        // A scan without inventory: every discovered peer, then the target.
        let set = guard_set(&[], vec![t("127.0.0.3", 3), t("cp2", 2)], &t("cp1", 1));
        assert_eq!(names(&set), ["127.0.0.3", "cp2", "cp1"]);
        // Both: the inventory's name wins for an address found twice.
        let set = guard_set(&inv, vec![t("127.0.0.2", 2), t("127.0.0.3", 3)], &inv[1]);
        assert_eq!(names(&set), ["cp1", "cp2", "127.0.0.3"]);
    }
}
